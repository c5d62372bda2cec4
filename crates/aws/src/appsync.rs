//! AppSync: client API keys for developer environments.

use async_trait::async_trait;
use ephemera_app::selfservice::ApiKeys;
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
}
