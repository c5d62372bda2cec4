//! GitHub webhooks: the `X-Hub-Signature-256` check and the payload types Ephemera reads.
//! Pure: no network, no REST client (that is `ephemera-github`).

pub mod payload;
pub mod signature;

pub use payload::{
    parse_event, DeleteEvent, InstallationEvent, InstallationRepositoriesEvent, IssueCommentEvent, PayloadError,
    PullRequestEvent, PushEvent, WebhookEvent,
};
pub use signature::{SignatureError, WebhookSecrets};
