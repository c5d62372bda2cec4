//! CloudFormation "Stack Status Change" events for the platform's stacks: recorded on the
//! environment's registry row (status, reason, outputs), then announced as Ephemera's own
//! `Environment.Ready` / `Failed` / `Deleted`.
//!
//! Events arrive late, twice or out of order. Each carries its own time, and the registry keeps
//! the time of what it holds (`status_at`): older news is dropped. The provisioner's polling
//! writes the same field with the time it looked, so when events are missed (or in local
//! mode, where none are sent) it keeps the registry right, and the two never undo each other.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ephemera_domain::{EnvironmentName, StackStatus, Status};
use serde::Deserialize;
use tracing::{info, instrument, warn};

use crate::events::{environment_of_stack, Envelope, EnvelopeError, PlatformEvent, CLOUDFORMATION_SOURCE};
use crate::outcome::MessageError;
use crate::ports::{EventBus, PortError, StackStatusLog, StackStatusUpdate, Stacks};
use crate::provisioner::preview_url;

/// One CloudFormation status change, as read from the event.
#[derive(Debug, Clone, PartialEq)]
pub struct StackStatusEvent {
    pub environment: EnvironmentName,
    pub stack_id: String,
    pub stack_status: StackStatus,
    pub reason: Option<String>,
    pub time: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct Detail {
    #[serde(rename = "stack-id")]
    stack_id: String,
    #[serde(rename = "status-details")]
    status_details: StatusDetails,
}

#[derive(Debug, Deserialize)]
struct StatusDetails {
    status: StackStatus,
    #[serde(rename = "status-reason", default)]
    status_reason: Option<String>,
}

impl StackStatusEvent {
    /// Reads an EventBridge "CloudFormation Stack Status Change" event about one of the
    /// platform's stacks.
    pub fn parse(body: &str) -> Result<Self, EnvelopeError> {
        Self::from_envelope(serde_json::from_str(body)?)
    }

    /// The same, from the event as the Lambda runtime has already parsed it.
    pub fn from_value(event: serde_json::Value) -> Result<Self, EnvelopeError> {
        Self::from_envelope(serde_json::from_value(event)?)
    }

    fn from_envelope(event: Envelope<Detail>) -> Result<Self, EnvelopeError> {
        if event.source != CLOUDFORMATION_SOURCE {
            return Err(EnvelopeError::ForeignSource(event.source));
        }
        let time = event.time.ok_or_else(|| <serde_json::Error as serde::de::Error>::missing_field("time"))?;
        let stack_id = event.detail.stack_id;
        Ok(Self {
            environment: environment_of_stack(&stack_id)?,
            stack_id,
            stack_status: event.detail.status_details.status,
            reason: event.detail.status_details.status_reason.filter(|r| !r.trim().is_empty()),
            time,
        })
    }

    /// The event's place in time, in ms. EventBridge times are whole seconds, so statuses of
    /// the same second are ordered by where they come in a stack's life (in progress before
    /// complete, create before update before delete).
    pub fn at_ms(&self) -> i64 {
        self.time.timestamp() * 1000 + i64::from(self.stack_status.stage()) * 100
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The registry now says this.
    Status(Status),
    /// The registry already holds later news (or the event is about an older stack).
    Stale,
    /// A status that says nothing new (a rollback under way).
    Uninformative,
    /// No such environment.
    Unknown,
}

pub struct StackEvents {
    pub registry: Arc<dyn StackStatusLog>,
    pub stacks: Arc<dyn Stacks>,
    pub bus: Arc<dyn EventBus>,
}

impl StackEvents {
    pub async fn handle_message(&self, body: &str) -> Result<Recorded, MessageError> {
        Ok(self.handle(&StackStatusEvent::parse(body)?).await?)
    }

    /// One event as the Lambda runtime delivers it (already parsed).
    pub async fn handle_event(&self, event: serde_json::Value) -> Result<Recorded, MessageError> {
        Ok(self.handle(&StackStatusEvent::from_value(event)?).await?)
    }

    #[instrument(skip_all, fields(environment = %e.environment, stack_status = %e.stack_status, time = %e.time))]
    pub async fn handle(&self, e: &StackStatusEvent) -> Result<Recorded, PortError> {
        let Some(status) = e.stack_status.environment_status() else {
            return Ok(Recorded::Uninformative);
        };
        let Some(env) = self.registry.get(&e.environment).await? else {
            return Ok(Recorded::Unknown);
        };
        // Outputs are not in the event: read them from the stack while it is this stack. A
        // stack in a deploy account is not read from here: the provisioner, woken by the same
        // event on its work queue, reads it there and records them.
        let (mut outputs, mut url) = (None, None);
        if status == Status::Ready && env.account.is_none() {
            match self.stacks.describe(&env.stack_name()).await? {
                Some(view) if view.stack_id == e.stack_id => {
                    url = preview_url(&view.outputs);
                    outputs = Some(view.outputs);
                }
                _ => warn!("stack no longer matches the event; outputs not recorded"),
            }
        }
        let reason = match status {
            Status::Failed => Some(match &e.reason {
                Some(r) => format!("{}: {r}", e.stack_status),
                None => e.stack_status.to_string(),
            }),
            // A deletion keeps the reason it was asked for (merged, expired...).
            Status::Deleted | Status::Deleting => env.status_reason.clone(),
            _ => None,
        };
        let update = StackStatusUpdate {
            stack_id: e.stack_id.clone(),
            status,
            reason: reason.clone(),
            outputs,
            preview_url: url.clone(),
            at_ms: e.at_ms(),
        };
        if !self.registry.record_stack_status(&e.environment, &update).await? {
            info!("older than what the registry holds; dropped");
            return Ok(Recorded::Stale);
        }
        info!(status = status.as_str(), "recorded");
        if status.is_terminal() && env.status != status {
            let mut now = env.clone();
            now.preview_url = url.or(if status == Status::Deleted { None } else { env.preview_url.clone() });
            if let Err(err) = self.bus.publish(&[PlatformEvent::status(&now, status, reason)]).await {
                warn!(error = %err, "could not announce the status");
            }
        }
        Ok(Recorded::Status(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../../../events/eventbridge/stack-status-change.json");

    #[test]
    fn reads_the_sample_and_orders_same_second_statuses() {
        let text = std::str::from_utf8(SAMPLE).unwrap();
        let e = StackStatusEvent::parse(text).unwrap();
        assert_eq!(e.environment.as_str(), "pr-7-acme-todo-app-6acfdc9491");
        assert_eq!(e.stack_status, StackStatus::CreateComplete);
        assert_eq!(e.reason, None);
        let started = StackStatusEvent { stack_status: StackStatus::CreateInProgress, ..e.clone() };
        let deleting = StackStatusEvent { stack_status: StackStatus::DeleteInProgress, ..e.clone() };
        assert!(started.at_ms() < e.at_ms() && e.at_ms() < deleting.at_ms());
        let later = StackStatusEvent {
            time: e.time + chrono::Duration::seconds(1),
            stack_status: StackStatus::CreateInProgress,
            ..e.clone()
        };
        assert!(later.at_ms() > deleting.at_ms());
        let foreign = text.replace("stack/ephemera-pr-7-acme-todo-app-6acfdc9491", "stack/payments-prod");
        assert!(matches!(StackStatusEvent::parse(&foreign), Err(EnvelopeError::ForeignStack(_))));
    }
}
