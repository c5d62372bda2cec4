//! AppSync: client API keys for developer environments, and the load test's own.

use async_trait::async_trait;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ephemera_app::ports::ApiKeys;
use ephemera_app::PortError;
use tracing::instrument;

use crate::error::port_error;

#[derive(Debug, Clone)]
pub struct AppSyncKeys {
    client: aws_sdk_appsync::Client,
}

impl AppSyncKeys {
    pub fn new(client: aws_sdk_appsync::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ApiKeys for AppSyncKeys {
    #[instrument(skip(self))]
    async fn create(&self, api_id: &str, expires: i64, description: &str) -> Result<String, PortError> {
        let out = self
            .client
            .create_api_key()
            .api_id(api_id)
            .expires(expires)
            .description(description)
            .send()
            .await
            .map_err(|e| port_error("create API key", e))?;
        out.api_key
            .and_then(|k| k.id)
            .ok_or(PortError::Retryable { operation: "create API key", message: "no key returned".into() })
    }

    /// Looked up first: the emulator answers a delete of a missing key with HTTP 500 where
    /// AppSync answers `NotFoundException`.
    #[instrument(skip(self, key))]
    async fn delete(&self, api_id: &str, key: &str) -> Result<(), PortError> {
        let mut pages = self.client.list_api_keys().api_id(api_id).into_paginator().send();
        let mut found = false;
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => found |= p.api_keys().iter().any(|k| k.id() == Some(key)),
                Err(e) if e.code() == Some("NotFoundException") => return Ok(()),
                Err(e) => return Err(port_error("list API keys", e)),
            }
        }
        if !found {
            return Ok(());
        }
        match self.client.delete_api_key().api_id(api_id).id(key).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NotFoundException") => Ok(()),
            Err(e) => Err(port_error("delete API key", e)),
        }
    }
}
