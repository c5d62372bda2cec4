//! The notifier function: one Ephemera status event in (EventBridge rule target), the pull
//! request's comment, deployment and commit statuses brought up to date. A retryable failure
//! (GitHub's rate limit, a 5xx) fails the invocation so Lambda retries it; anything else is
//! logged and dropped.

use ephemera_app::feedback::{Feedback, Notifier};
use ephemera_app::outcome::{settle, MessageError};

pub async fn handle(notifier: &Notifier, event: serde_json::Value) -> Result<Option<Feedback>, MessageError> {
    settle("feedback", notifier.handle_event(event).await)
}
