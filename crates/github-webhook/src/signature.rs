//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the raw body, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error("signature does not match the payload")]
    Mismatch,
    /// This intake has no webhook secret: it records only what the platform read from GitHub.
    #[error("no webhook secret is configured here: deliveries cannot be verified")]
    NoSecret,
}

/// The webhook secrets accepted: the current one and, while it is being rotated, the previous.
#[derive(Clone)]
pub struct WebhookSecrets {
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets({} redacted)", self.secrets.len())
    }
}

impl WebhookSecrets {
    /// `current` must not be empty; `previous`, when given and not empty, is accepted too.
    pub fn new(current: impl Into<Vec<u8>>, previous: Option<Vec<u8>>) -> Option<Self> {
        let current = current.into();
        if current.is_empty() {
            return None;
        }
        let mut secrets = vec![current];
        secrets.extend(previous.filter(|p| !p.is_empty()));
        Some(Self { secrets })
    }

    /// Checks `header` (the `X-Hub-Signature-256` value) against `body`.
    pub fn verify(&self, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_sig = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
        if hex_sig.len() != 64 {
            return Err(SignatureError::Malformed);
        }
        let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
        // Every secret is tried, so the time taken does not tell which one (if any) matched.
        let mut ok = false;
        for secret in &self.secrets {
            let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any size");
            mac.update(body);
            ok |= mac.verify_slice(&expected).is_ok();
        }
        if ok {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// The header value GitHub would send for `body` with the current secret.
    pub fn sign(&self, body: &[u8]) -> String {
        sign(&self.secrets[0], body)
    }
}

/// `sha256=<hex>` for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from GitHub's "Validating webhook deliveries" documentation.
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_BODY: &str = "Hello, World!";
    const DOC_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn matches_githubs_documented_example() {
        let s = WebhookSecrets::new(DOC_SECRET, None).unwrap();
        assert_eq!(s.sign(DOC_BODY.as_bytes()), DOC_SIG);
        assert_eq!(s.verify(DOC_BODY.as_bytes(), Some(DOC_SIG)), Ok(()));
    }

    #[test]
    fn rejects_missing_malformed_and_wrong() {
        let s = WebhookSecrets::new(DOC_SECRET, None).unwrap();
        let body = DOC_BODY.as_bytes();
        assert_eq!(s.verify(body, None), Err(SignatureError::Missing));
        assert_eq!(s.verify(body, Some("sha1=abc")), Err(SignatureError::Malformed));
        assert_eq!(s.verify(body, Some("sha256=zz")), Err(SignatureError::Malformed));
        assert_eq!(s.verify(body, Some(&format!("sha256={}", "g".repeat(64)))), Err(SignatureError::Malformed));
        assert_eq!(s.verify(b"Hello, World?", Some(DOC_SIG)), Err(SignatureError::Mismatch));
        let other = WebhookSecrets::new("another", None).unwrap();
        assert_eq!(other.verify(body, Some(DOC_SIG)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn previous_secret_is_accepted_during_rotation() {
        let s = WebhookSecrets::new("new-secret", Some(DOC_SECRET.into())).unwrap();
        assert_eq!(s.verify(DOC_BODY.as_bytes(), Some(DOC_SIG)), Ok(()));
        assert!(WebhookSecrets::new("", None).is_none());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let s = WebhookSecrets::new("hunter2", None).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
