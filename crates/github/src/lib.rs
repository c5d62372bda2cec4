//! GitHub's REST API: the calls Ephemera makes to report back on pull requests, with a token or
//! as a GitHub App. (Webhook payloads and their signature check are `ephemera-github-webhook`.)

pub mod app;
pub mod client;
pub mod reads;

pub use app::AppCredentials;
pub use client::{tls_config, Client, ClientError};
