//! The notifier function: one Ephemera status event in (EventBridge rule target), the pull
//! request's comment, deployment and commit statuses brought up to date. A retryable failure
//! (GitHub's rate limit, a 5xx) fails the invocation so Lambda retries it; anything else is
//! logged and dropped.

use ephemera_app::feedback::{Feedback, FeedbackError, Notifier};
use tracing::{error, info};

pub async fn handle(notifier: &Notifier, event: &serde_json::Value) -> Result<Option<Feedback>, FeedbackError> {
    match notifier.handle_message(&event.to_string()).await {
        Ok(done) => {
            info!(?done, "feedback handled");
            Ok(Some(done))
        }
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            error!(error = %e, "dropping an event that cannot be reported");
            Ok(None)
        }
    }
}
