//! What happened to each environment: every event announced about it is also kept as a
//! timeline entry (by [`RecordingBus`], around the platform's bus), and the provisioner keeps
//! a settled stack's resources. The dashboard's environment page shows both.

use std::sync::Arc;

use async_trait::async_trait;
use tracing::warn;

use crate::clock::Clock;
use crate::events::PlatformEvent;
use crate::ports::{EventBus, History, PortError, TimelineEntry};

/// Timeline entries are kept this long (DynamoDB TTL).
pub const TIMELINE_DAYS: i64 = 90;
/// The entries an environment page shows.
pub const TIMELINE_SHOWN: usize = 200;

/// An entry's sort key: in time order (within one millisecond, by generation, then by where
/// its status comes in a generation's life), the same entry always the same key.
pub fn event_key(entry: &TimelineEntry) -> String {
    let stage = entry.status.stage();
    format!("EVENT#{:013}#{:010}#{stage}#{}", entry.at_ms, entry.generation, entry.what)
}

/// The bus, keeping each event published in its environment's timeline. The event goes out
/// first; a timeline that cannot be written is logged, and never holds work up.
pub struct RecordingBus {
    pub bus: Arc<dyn EventBus>,
    pub history: Arc<dyn History>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn publish(&self, events: &[PlatformEvent]) -> Result<(), PortError> {
        self.bus.publish(events).await?;
        let at_ms = self.clock.now().timestamp_millis();
        for e in events {
            let d = &e.detail;
            let entry = TimelineEntry {
                at_ms,
                what: e.detail_type.clone(),
                status: d.status,
                desired: d.desired,
                generation: d.generation,
                reason: d.reason.clone(),
            };
            if let Err(err) = self.history.record_event(&d.environment, &entry).await {
                warn!(environment = %d.environment, error = %err, "could not keep the event in the timeline");
            }
        }
        Ok(())
    }
}
