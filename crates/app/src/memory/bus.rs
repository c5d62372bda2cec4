//! EventBridge in memory: the events published, in order.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, Faults};
use crate::events::PlatformEvent;
use crate::ports::{EventBus, PortError};

/// Operation name for [`Faults`]: `publish` (a failed call publishes nothing).
#[derive(Debug, Default)]
pub struct MemoryBus {
    events: Mutex<Vec<PlatformEvent>>,
    pub faults: Faults,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn events(&self) -> Vec<PlatformEvent> {
        lock(&self.events).clone()
    }

    /// The `detail-type` of each event, in order.
    pub fn detail_types(&self) -> Vec<String> {
        lock(&self.events).iter().map(|e| e.detail_type.clone()).collect()
    }

    /// The events published so far, forgotten here.
    pub fn take(&self) -> Vec<PlatformEvent> {
        std::mem::take(&mut *lock(&self.events))
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, events: &[PlatformEvent]) -> Result<(), PortError> {
        self.faults.check("publish")?;
        lock(&self.events).extend(events.iter().cloned());
        Ok(())
    }
}
