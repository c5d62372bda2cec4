//! GitHub webhooks: signature verification and the payload types Ephemera reads.

pub mod payload;
pub mod signature;

pub use payload::{parse_event, PayloadError, PullRequestEvent, WebhookEvent};
pub use signature::{SignatureError, WebhookSecrets};
