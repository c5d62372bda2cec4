//! The webhook secret from Secrets Manager, read once at start-up.

use aws_sdk_secretsmanager::Client;
use ephemera_app::PortError;
use ephemera_github_webhook::WebhookSecrets;
use serde::Deserialize;
use tracing::instrument;

use crate::error::port_error;

#[derive(Deserialize)]
struct Rotating {
    current: String,
    #[serde(default)]
    previous: Option<String>,
}

/// A secret's value: the secret itself, or `{"current": "...", "previous": "..."}` while rotating.
pub fn parse_secret_string(value: &str) -> Option<WebhookSecrets> {
    let trimmed = value.trim();
    if trimmed.starts_with('{') {
        let r: Rotating = serde_json::from_str(trimmed).ok()?;
        WebhookSecrets::new(r.current, r.previous.map(String::into_bytes))
    } else {
        WebhookSecrets::new(trimmed, None)
    }
}

#[instrument(skip(client))]
pub async fn webhook_secrets(client: &Client, secret_id: &str) -> Result<WebhookSecrets, PortError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| port_error("read webhook secret", e))?;
    let value = out.secret_string().unwrap_or_default();
    parse_secret_string(value).ok_or(PortError::Permanent {
        operation: "read webhook secret",
        message: format!("{secret_id} is empty, or JSON without a non-empty \"current\""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_rotating_forms() {
        let body = b"payload";
        let plain = parse_secret_string("s3cret\n").unwrap();
        assert!(plain.verify(body, Some(&ephemera_github_webhook::signature::sign(b"s3cret", body))).is_ok());
        let rotating = parse_secret_string(r#"{"current":"new","previous":"old"}"#).unwrap();
        assert!(rotating.verify(body, Some(&ephemera_github_webhook::signature::sign(b"old", body))).is_ok());
        assert!(rotating.verify(body, Some(&ephemera_github_webhook::signature::sign(b"new", body))).is_ok());
        assert!(parse_secret_string("").is_none());
        assert!(parse_secret_string(r#"{"previous":"old"}"#).is_none());
        assert!(parse_secret_string(r#"{"current":""}"#).is_none());
    }
}
