//! S3: blueprints in, buckets emptied before their stacks are deleted.

use async_trait::async_trait;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use ephemera_app::ports::ObjectStore;
use ephemera_app::PortError;
use tracing::instrument;

use crate::error::{code, port_error};

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
}

impl S3Store {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub async fn put_text(&self, bucket: &str, key: &str, body: &str) -> Result<(), PortError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .map_err(|e| port_error("put object", e))?;
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    #[instrument(skip(self, body))]
    async fn put_text(&self, bucket: &str, key: &str, body: &str) -> Result<(), PortError> {
        S3Store::put_text(self, bucket, key, body).await
    }

    #[instrument(skip(self))]
    async fn get_text(&self, bucket: &str, key: &str) -> Result<Option<String>, PortError> {
        let out = match self.client.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(port_error("get object", e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::Retryable { operation: "read object", message: e.to_string() })?;
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| PortError::Permanent {
            operation: "read object",
            message: format!("s3://{bucket}/{key} is not UTF-8 text"),
        })
    }

    #[instrument(skip(self))]
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, PortError> {
        let mut keys = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list objects", e))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    #[instrument(skip(self))]
    async fn empty_bucket(&self, bucket: &str) -> Result<u64, PortError> {
        let mut deleted = 0u64;
        // Versions and delete markers included: a versioned bucket is only empty without them.
        loop {
            let page = match self.client.list_object_versions().bucket(bucket).max_keys(1000).send().await {
                Ok(p) => p,
                Err(e) if code(&e) == Some("NoSuchBucket") => return Ok(deleted),
                Err(e) => return Err(port_error("list object versions", e)),
            };
            let mut ids = Vec::new();
            for v in page.versions() {
                ids.extend(v.key().map(|k| {
                    ObjectIdentifier::builder().key(k).set_version_id(v.version_id().map(str::to_owned)).build()
                }));
            }
            for m in page.delete_markers() {
                ids.extend(m.key().map(|k| {
                    ObjectIdentifier::builder().key(k).set_version_id(m.version_id().map(str::to_owned)).build()
                }));
            }
            let ids: Vec<ObjectIdentifier> = ids
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(|e| PortError::Permanent { operation: "empty bucket", message: e.to_string() })?;
            if ids.is_empty() {
                return Ok(deleted);
            }
            let count = ids.len() as u64;
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| PortError::Permanent { operation: "empty bucket", message: e.to_string() })?;
            let out = self
                .client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| port_error("delete objects", e))?;
            if let Some(err) = out.errors().first() {
                return Err(PortError::Retryable {
                    operation: "delete objects",
                    message: format!("{}: {}", err.key().unwrap_or("?"), err.message().unwrap_or("failed")),
                });
            }
            deleted += count;
        }
    }
}
