//! The provisioner's work queue, read directly in local mode (in Lambda, the SQS event source
//! mapping reads it).

use aws_sdk_sqs::Client;
use ephemera_app::PortError;
use tracing::instrument;

use crate::error::port_error;

#[derive(Debug, Clone)]
pub struct WorkQueue {
    client: Client,
    url: String,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub receipt: String,
    pub body: String,
}

impl WorkQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    /// Long-polls for up to `max` messages.
    #[instrument(skip(self))]
    pub async fn receive(&self, max: i32, wait_seconds: i32) -> Result<Vec<Message>, PortError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .map_err(|e| port_error("receive messages", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| Some(Message { receipt: m.receipt_handle?, body: m.body? }))
            .collect())
    }

    pub async fn delete(&self, receipt: &str) -> Result<(), PortError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| port_error("delete message", e))?;
        Ok(())
    }

    /// Makes a message visible again after `seconds` (a retry with delay).
    pub async fn retry_after(&self, receipt: &str, seconds: i32) -> Result<(), PortError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| port_error("change visibility", e))?;
        Ok(())
    }
}
