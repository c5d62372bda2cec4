//! Reads that the caller budgets: each answer comes back as it is (a 304, a 404, a rate limit)
//! with what GitHub's rate limit has left, instead of being waited out or retried. Only 5xx and
//! network failures are retried. The sweep's catch-up reads this way.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tracing::{instrument, warn};

use crate::client::{rate_limit_wait, Client, ClientError};

/// What GitHub answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub status: u16,
    pub etag: Option<String>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u64>,
    /// The `Link` header's `rel="next"` URL.
    pub next: Option<String>,
    /// How long GitHub asked to wait, if this is a rate limit.
    pub wait: Option<Duration>,
    pub body: String,
}

impl Exchange {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// GitHub's `message`, or the body.
    pub fn message(&self) -> String {
        let text = serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| self.body.clone());
        format!("{} {}", self.status, text.chars().take(200).collect::<String>())
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        serde_json::from_str(&self.body)
            .map_err(|e| ClientError::Decode { path: path.to_owned(), message: e.to_string() })
    }

    /// The `cursor` of the next page's URL.
    pub fn next_cursor(&self) -> Option<String> {
        let query = self.next.as_deref()?.split_once('?')?.1;
        query.split('&').find_map(|kv| kv.strip_prefix("cursor=")).map(str::to_owned)
    }
}

/// One attempt at a webhook delivery, as `GET .../hook(s)/.../deliveries` lists it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HookDelivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub redelivery: bool,
    #[serde(default)]
    pub status_code: u16,
    pub event: String,
}

impl Client {
    /// Page `page` of the repository's open pull requests, a hundred a page; with `etag`, a
    /// conditional request (304 if unchanged).
    #[instrument(skip(self))]
    pub async fn open_pulls(
        &self,
        owner: &str,
        repo: &str,
        page: u32,
        etag: Option<&str>,
    ) -> Result<Exchange, ClientError> {
        let path = format!("{}/pulls?state=open&per_page=100&page={page}", Self::repo_path(owner, repo)?);
        self.exchange(Method::GET, &path, etag).await
    }

    /// One pull request, whole.
    #[instrument(skip(self))]
    pub async fn pull_exchange(&self, owner: &str, repo: &str, number: u64) -> Result<Exchange, ClientError> {
        let path = format!("{}/pulls/{number}", Self::repo_path(owner, repo)?);
        self.exchange(Method::GET, &path, None).await
    }

    /// A page of the App's webhook deliveries (`hook` None), or of a repository hook's
    /// (`owner/repo`, hook id), newest first.
    #[instrument(skip(self))]
    pub async fn hook_deliveries(
        &self,
        hook: Option<(&str, &str, u64)>,
        cursor: Option<&str>,
    ) -> Result<Exchange, ClientError> {
        let mut path = format!("{}/deliveries?per_page=100", Self::hook_path(hook)?);
        if let Some(c) = cursor {
            if !c.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_=%".contains(ch)) {
                return Err(ClientError::Invalid(format!("{c:?} is not a deliveries cursor")));
            }
            path.push_str(&format!("&cursor={c}"));
        }
        self.exchange(Method::GET, &path, None).await
    }

    /// Asks GitHub to send a delivery attempt again (202).
    #[instrument(skip(self))]
    pub async fn redeliver(&self, hook: Option<(&str, &str, u64)>, delivery: u64) -> Result<Exchange, ClientError> {
        let path = format!("{}/deliveries/{delivery}/attempts", Self::hook_path(hook)?);
        self.exchange(Method::POST, &path, None).await
    }

    fn hook_path(hook: Option<(&str, &str, u64)>) -> Result<String, ClientError> {
        match hook {
            None => Ok("/app/hook".into()),
            Some((owner, repo, id)) => Ok(format!("{}/hooks/{id}", Self::repo_path(owner, repo)?)),
        }
    }

    /// One request, answered as it is. The App's own endpoints (`/app/...`) are called with its
    /// JWT, a repository's with its installation's token; a token GitHub refuses (revoked, the
    /// App installed anew) is forgotten and the request made once more with a new one.
    async fn exchange(&self, method: Method, path: &str, etag: Option<&str>) -> Result<Exchange, ClientError> {
        let (bearer, installation) = match self.exchange_bearer(path).await? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
        let answer = self.exchange_with(method.clone(), path, etag, &bearer).await?;
        match (answer.status, installation) {
            (401, Some(installation)) => {
                warn!(installation, "GitHub refused the installation token; asking for a new one");
                self.forget_token(installation, &bearer, path);
                let (bearer, _) = match self.exchange_bearer(path).await? {
                    Ok(found) => found,
                    Err(answer) => return Ok(answer),
                };
                self.exchange_with(method, path, etag, &bearer).await
            }
            _ => Ok(answer),
        }
    }

    /// The bearer for `path` and its installation; or, when the App is not installed there,
    /// GitHub's answer to finding the installation, as the answer to the read.
    async fn exchange_bearer(&self, path: &str) -> Result<Result<(String, Option<u64>), Exchange>, ClientError> {
        if path.starts_with("/app/") {
            return Ok(Ok((self.app_jwt()?, None)));
        }
        match self.bearer(path).await {
            Ok(found) => Ok(Ok(found)),
            Err(ClientError::Http { status, message, .. }) if status == 404 || status == 403 => {
                Ok(Err(Exchange { status, etag: None, remaining: None, next: None, wait: None, body: message }))
            }
            Err(e) => Err(e),
        }
    }

    /// The request with `bearer`, retried on 5xx and network failures.
    async fn exchange_with(
        &self,
        method: Method,
        path: &str,
        etag: Option<&str>,
        bearer: &str,
    ) -> Result<Exchange, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.request(method.clone(), path, bearer);
            if let Some(tag) = etag {
                req = req.header("if-none-match", tag);
            }
            let failed = match req.send().await {
                Ok(resp) if !resp.status().is_server_error() => return Self::answered(resp).await,
                Ok(resp) => ClientError::Http {
                    method: method.to_string(),
                    path: path.to_owned(),
                    status: resp.status().as_u16(),
                    message: "GitHub's server error".into(),
                },
                Err(e) => ClientError::Transport(e.to_string()),
            };
            let Some(wait) = self.backoff(attempt) else { return Err(failed) };
            warn!(%method, path, attempt, error = %failed, "GitHub call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn answered(resp: reqwest::Response) -> Result<Exchange, ClientError> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let wait = rate_limit_wait(status, &headers, chrono::Utc::now().timestamp());
        let next = header("link").and_then(|l| next_link(&l));
        let body = match status {
            StatusCode::NOT_MODIFIED => String::new(),
            _ => resp.text().await.map_err(|e| ClientError::Transport(e.to_string()))?,
        };
        Ok(Exchange {
            status: status.as_u16(),
            etag: header("etag"),
            remaining: header("x-ratelimit-remaining").and_then(|r| r.trim().parse().ok()),
            next,
            wait,
            body,
        })
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.split(';').any(|p| p.trim() == "rel=\"next\"").then(|| url.trim().trim_matches(['<', '>']).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_and_its_cursor_are_read_from_the_link_header() {
        let link = r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12077215967>; rel="next", <https://api.github.com/app/hook/deliveries?per_page=100>; rel="first""#;
        let next = next_link(link);
        assert_eq!(
            next.as_deref(),
            Some("https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12077215967")
        );
        let e = Exchange { status: 200, etag: None, remaining: None, next, wait: None, body: String::new() };
        assert_eq!(e.next_cursor().as_deref(), Some("v1_12077215967"));
        assert_eq!(next_link(r#"<https://x/y?page=1>; rel="prev""#), None);
    }
}
