//! The Resource Groups Tagging API (what carries the platform's tags), and direct deletes of
//! resources that no stack owns any more.

use async_trait::async_trait;
use aws_sdk_resourcegroupstagging::types::TagFilter;
use ephemera_app::ports::{Cleaner, Inventory};
use ephemera_app::PortError;
use ephemera_domain::sweep::ResourceInfo;
use ephemera_domain::tags::{ENVIRONMENT, MANAGED_BY, MANAGED_BY_VALUE};
use ephemera_domain::EnvironmentName;
use tracing::instrument;

use crate::error::{code, port_error};

#[derive(Debug, Clone)]
pub struct TaggingInventory {
    client: aws_sdk_resourcegroupstagging::Client,
}

impl TaggingInventory {
    pub fn new(client: aws_sdk_resourcegroupstagging::Client) -> Self {
        Self { client }
    }
}

impl TaggingInventory {
    /// Every resource matching all `filters`, following pagination.
    async fn list(&self, filters: Vec<TagFilter>) -> Result<Vec<ResourceInfo>, PortError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_resources()
                .set_tag_filters(Some(filters.clone()))
                .resources_per_page(100)
                .set_pagination_token(token.take())
                .send()
                .await
                .map_err(|e| port_error("list tagged resources", e))?;
            for m in page.resource_tag_mapping_list.unwrap_or_default() {
                let tags = m.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect();
                out.extend(m.resource_arn.map(|arn| ResourceInfo { arn, tags }));
            }
            match page.pagination_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}

fn managed() -> TagFilter {
    TagFilter::builder().key(MANAGED_BY).values(MANAGED_BY_VALUE).build()
}

#[async_trait]
impl Inventory for TaggingInventory {
    #[instrument(skip(self))]
    async fn tagged(&self) -> Result<Vec<ResourceInfo>, PortError> {
        self.list(vec![managed()]).await
    }

    #[instrument(skip(self))]
    async fn tagged_for(&self, environment: &EnvironmentName) -> Result<Vec<ResourceInfo>, PortError> {
        let this = TagFilter::builder().key(ENVIRONMENT).values(environment.as_str()).build();
        self.list(vec![managed(), this]).await
    }
}

#[derive(Debug, Clone)]
pub struct DirectCleaner {
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl DirectCleaner {
    pub fn new(s3: aws_sdk_s3::Client, dynamodb: aws_sdk_dynamodb::Client) -> Self {
        Self { s3, dynamodb }
    }
}

#[async_trait]
impl Cleaner for DirectCleaner {
    #[instrument(skip(self))]
    async fn delete_bucket(&self, bucket: &str) -> Result<(), PortError> {
        match self.s3.delete_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("NoSuchBucket") => Ok(()),
            Err(e) => Err(port_error("delete bucket", e)),
        }
    }

    #[instrument(skip(self))]
    async fn delete_table(&self, table: &str) -> Result<(), PortError> {
        match self.dynamodb.delete_table().table_name(table).send().await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(port_error("delete table", e)),
        }
    }
}
