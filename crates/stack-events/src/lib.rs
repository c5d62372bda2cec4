//! The stack-events function: one EventBridge "CloudFormation Stack Status Change" event in,
//! recorded on the registry. A retryable failure fails the invocation, so Lambda's asynchronous
//! retries (then the on-failure destination) take over; an event that can never be recorded
//! is logged and dropped.

use ephemera_app::outcome::{settle, MessageError};
use ephemera_app::stack_events::{Recorded, StackEvents};

pub async fn handle(service: &StackEvents, event: serde_json::Value) -> Result<Option<Recorded>, MessageError> {
    settle("stack event", service.handle_event(event).await)
}
