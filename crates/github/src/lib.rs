//! GitHub: webhook signature verification, the payload types Ephemera reads, and the REST
//! calls it makes to report back on pull requests.

pub mod client;
pub mod payload;
pub mod signature;

pub use client::{tls_config, Client, ClientError};
pub use payload::{parse_event, PayloadError, PullRequestEvent, WebhookEvent};
pub use signature::{SignatureError, WebhookSecrets};
