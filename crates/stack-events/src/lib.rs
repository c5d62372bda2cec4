//! The stack-events function: one EventBridge "CloudFormation Stack Status Change" event in,
//! recorded on the registry. A retryable failure fails the invocation, so Lambda's asynchronous
//! retries (then the on-failure destination) take over; an event that can never be recorded
//! is logged and dropped.

use ephemera_app::stack_events::{Recorded, StackEventError, StackEvents};
use tracing::{error, info};

pub async fn handle(service: &StackEvents, event: &serde_json::Value) -> Result<Option<Recorded>, StackEventError> {
    match service.handle_message(&event.to_string()).await {
        Ok(recorded) => {
            info!(?recorded, "stack event handled");
            Ok(Some(recorded))
        }
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            error!(error = %e, "dropping an event that cannot be recorded");
            Ok(None)
        }
    }
}
