//! GitHub App authentication. The App proves itself with a JWT signed with its private key
//! (RS256); with that, it asks for a token for one installation (an account that installed the
//! App), which is good for an hour and reaches that installation's repositories alone. Tokens
//! are kept per installation and asked for again shortly before they expire, or when GitHub
//! refuses one.

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::ClientError;

/// How long before its expiry a token is no longer used.
pub const REFRESH_MARGIN_SECS: i64 = 5 * 60;

/// An App's id and private key.
pub struct AppCredentials {
    id: String,
    key: EncodingKey,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

impl AppCredentials {
    /// `private_key` is the PEM GitHub gave for the App (PKCS#1 or PKCS#8).
    pub fn new(id: &str, private_key: &[u8]) -> Result<Self, ClientError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ClientError::Invalid(format!("{id:?} is not a GitHub App id")));
        }
        let key = EncodingKey::from_rsa_pem(private_key)
            .map_err(|e| ClientError::Invalid(format!("the App's private key is not an RSA key in PEM: {e}")))?;
        Ok(Self { id: id.to_owned(), key })
    }

    /// A JWT for the App at `now` (seconds since the epoch): issued a minute back, for clocks
    /// that differ, and good for nine minutes (GitHub allows ten).
    pub fn jwt(&self, now: i64) -> Result<String, ClientError> {
        let claims = Claims { iat: now - 60, exp: now + 9 * 60, iss: &self.id };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| ClientError::Invalid(format!("could not sign the App's JWT: {e}")))
    }
}

/// `POST /app/installations/{id}/access_tokens`
#[derive(Deserialize)]
pub(crate) struct InstallationToken {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Never the token itself.
impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// `GET /repos/{owner}/{repo}/installation`
#[derive(Debug, Deserialize)]
pub(crate) struct Installation {
    pub id: u64,
}

/// What the App knows: which installation each repository is in, and each installation's
/// token with its expiry (seconds since the epoch). Not `Debug`: it holds tokens.
pub(crate) struct Installations {
    pub credentials: AppCredentials,
    by_repository: Mutex<HashMap<String, u64>>,
    tokens: Mutex<HashMap<u64, (String, i64)>>,
}

impl Installations {
    pub fn new(credentials: AppCredentials) -> Self {
        Self { credentials, by_repository: Mutex::default(), tokens: Mutex::default() }
    }

    pub fn installation_of(&self, repository: &str) -> Option<u64> {
        self.by_repository.lock().expect("not poisoned").get(repository).copied()
    }

    pub fn remember(&self, repository: &str, installation: u64) {
        self.by_repository.lock().expect("not poisoned").insert(repository.to_owned(), installation);
    }

    /// The installation's token, unless it expires within the margin at `now`.
    pub fn token(&self, installation: u64, now: i64) -> Option<String> {
        let tokens = self.tokens.lock().expect("not poisoned");
        tokens.get(&installation).filter(|(_, expires)| expires - now > REFRESH_MARGIN_SECS).map(|(t, _)| t.clone())
    }

    pub fn keep(&self, installation: u64, token: &InstallationToken) {
        let entry = (token.token.clone(), token.expires_at.timestamp());
        self.tokens.lock().expect("not poisoned").insert(installation, entry);
    }

    /// Forgets a token GitHub refused (if a newer one has not taken its place), and which
    /// installation `repository` is in: the App may have been installed anew.
    pub fn forget(&self, installation: u64, refused: &str, repository: &str) {
        let mut tokens = self.tokens.lock().expect("not poisoned");
        if tokens.get(&installation).is_some_and(|(t, _)| t == refused) {
            tokens.remove(&installation);
        }
        drop(tokens);
        self.by_repository.lock().expect("not poisoned").remove(repository);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = include_bytes!("../../../tests/fixtures/github-app/test-only-private-key.pem");

    const PUBLIC_KEY: &[u8] = include_bytes!("../../../tests/fixtures/github-app/test-only-public-key.pem");

    #[test]
    fn the_jwt_is_signed_with_the_apps_key_names_it_and_lasts_under_ten_minutes() {
        let app = AppCredentials::new("12345", KEY).unwrap();
        let jwt = app.jwt(1_000_000).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY).unwrap();
        let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation).unwrap().claims;
        assert_eq!(claims, serde_json::json!({ "iat": 999_940, "exp": 1_000_540, "iss": "12345" }));
    }

    #[test]
    fn a_bad_id_or_key_is_refused_with_what_is_wrong() {
        assert!(AppCredentials::new("12 345", KEY).unwrap_err().to_string().contains("not a GitHub App id"));
        let err = AppCredentials::new("12345", b"not a key").unwrap_err().to_string();
        assert!(err.contains("not an RSA key in PEM"), "{err}");
    }

    #[test]
    fn a_token_is_used_until_shortly_before_it_expires_and_kept_per_installation() {
        let app = Installations::new(AppCredentials::new("1", KEY).unwrap());
        let expires_at = chrono::DateTime::from_timestamp(10_000, 0).unwrap();
        app.keep(7, &InstallationToken { token: "t7".into(), expires_at });
        assert_eq!(app.token(7, 10_000 - REFRESH_MARGIN_SECS - 1).as_deref(), Some("t7"));
        assert_eq!(app.token(7, 10_000 - REFRESH_MARGIN_SECS), None);
        assert_eq!(app.token(8, 0), None);
        app.remember("acme/todo-app", 7);
        app.forget(7, "an older token", "acme/todo-app");
        assert_eq!(app.token(7, 0).as_deref(), Some("t7"), "a newer token stays");
        assert_eq!(app.installation_of("acme/todo-app"), None, "looked up again");
        app.forget(7, "t7", "acme/todo-app");
        assert_eq!(app.token(7, 0), None);
    }
}
