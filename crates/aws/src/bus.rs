//! EventBridge: the platform's own events.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use ephemera_app::events::{PlatformEvent, SOURCE};
use ephemera_app::ports::EventBus;
use ephemera_app::PortError;
use tracing::instrument;

use crate::error::port_error;

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    #[instrument(skip_all, fields(count = events.len()))]
    async fn publish(&self, events: &[PlatformEvent]) -> Result<(), PortError> {
        // PutEvents takes at most 10 entries per call.
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(&e.detail_type)
                        .detail(serde_json::to_string(&e.detail).expect("event details serialize"))
                        .resources(e.detail.environment.to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| port_error("put events", e))?;
            if out.failed_entry_count > 0 {
                let first = out.entries().iter().find_map(|e| e.error_message()).unwrap_or("unknown");
                return Err(PortError::Retryable {
                    operation: "put events",
                    message: format!("{} of {} entries failed: {first}", out.failed_entry_count, chunk.len()),
                });
            }
        }
        Ok(())
    }
}
