//! GitHub's REST API: the calls Ephemera makes to report back on pull requests. (Webhook
//! payloads and their signature check are `ephemera-github-webhook`.)

pub mod client;

pub use client::{tls_config, Client, ClientError};
