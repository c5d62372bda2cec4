//! A small GitHub REST client: the handful of calls Ephemera makes, with retries that honour
//! GitHub's rate limits (`Retry-After`, `x-ratelimit-remaining` / `x-ratelimit-reset`).

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{instrument, warn};

use crate::app::{AppCredentials, Installation, InstallationToken, Installations};

pub const API_VERSION: &str = "2022-11-28";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("GitHub rate limit: retry in {wait_secs} s")]
    RateLimited { wait_secs: u64 },
    #[error("GitHub answered {status} to {method} {path}: {message}")]
    Http { method: String, path: String, status: u16, message: String },
    #[error("could not reach GitHub: {0}")]
    Transport(String),
    #[error("unexpected answer from GitHub to {path}: {message}")]
    Decode { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// Worth trying again later (rate limits, GitHub's 5xx, network trouble).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::RateLimited { .. } | ClientError::Transport(_) => true,
            ClientError::Http { status, .. } => *status >= 500 || *status == 429,
            ClientError::Decode { .. } | ClientError::Invalid(_) => false,
        }
    }
}

/// Retries follow the platform's one policy ([`RetryPolicy::GITHUB`] by default): `attempts`,
/// a backoff from `base` for 5xx and network errors, and `max` as the longest wait: a rate-limit
/// wait GitHub asks for that is longer is not slept through (the call fails, retryably).
pub use ephemera_domain::RetryPolicy;

/// How the client proves itself: one token for every repository, or as a GitHub App, each
/// repository's installation token.
#[derive(Clone)]
enum Auth {
    Token(String),
    App(Arc<Installations>),
}

/// Never the tokens themselves.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(..)"),
            Auth::App(app) => write!(f, "App({:?})", app.credentials),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    retry: RetryPolicy,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Deployment {
    pub id: u64,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
}

/// `POST /repos/{owner}/{repo}/deployments`
#[derive(Debug, Clone, Serialize)]
pub struct NewDeployment<'a> {
    #[serde(rename = "ref")]
    pub git_ref: &'a str,
    pub environment: &'a str,
    pub description: &'a str,
    /// Ephemera deploys what it is told; it does not merge or wait for other checks.
    pub auto_merge: bool,
    pub required_contexts: Vec<String>,
    pub transient_environment: bool,
    pub production_environment: bool,
}

/// `POST /repos/{owner}/{repo}/deployments/{id}/statuses`
#[derive(Debug, Clone, Serialize)]
pub struct NewDeploymentStatus<'a> {
    /// `in_progress`, `success`, `failure`, `error`, `inactive`, `queued` or `pending`.
    pub state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_url: Option<&'a str>,
    pub description: String,
    /// Earlier deployments of the same environment are marked inactive on success.
    pub auto_inactive: bool,
}

/// `POST /repos/{owner}/{repo}/statuses/{sha}`
#[derive(Debug, Clone, Serialize)]
pub struct NewCommitStatus<'a> {
    /// `error`, `failure`, `pending` or `success`.
    pub state: &'a str,
    pub context: &'a str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<&'a str>,
}

/// `POST /repos/{owner}/{repo}/check-runs` (and, without `head_sha`, its `PATCH`).
#[derive(Debug, Clone, Serialize)]
pub struct NewCheckRun<'a> {
    pub name: &'a str,
    pub head_sha: &'a str,
    /// `queued`, `in_progress` or `completed`.
    pub status: &'a str,
    /// With `completed`: `success`, `failure`, `neutral`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_url: Option<&'a str>,
    pub output: CheckOutput,
}

/// A check run's title and Markdown summary (GitHub keeps at most 65,535 characters).
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutput {
    pub title: String,
    pub summary: String,
}

/// `GET /repos/{owner}/{repo}/contents/{path}` for a file.
#[derive(Debug, Deserialize)]
struct Content {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

/// `GET /repos/{owner}/{repo}/compare/{base}...{head}`: the files changed.
#[derive(Debug, Deserialize)]
struct Comparison {
    /// `ahead`, `identical`, `behind` or `diverged` (a force-push).
    #[serde(default)]
    status: String,
    #[serde(default)]
    files: Vec<ChangedFile>,
}

#[derive(Debug, Deserialize)]
struct ChangedFile {
    filename: String,
}

/// GitHub lists at most this many files of a comparison.
const COMPARE_FILES_MAX: usize = 300;

#[derive(Debug, Deserialize)]
struct CheckRuns {
    check_runs: Vec<CheckRunId>,
}

#[derive(Debug, Deserialize)]
struct CheckRunId {
    id: u64,
}

/// What `GET /repos/{owner}/{repo}/pulls/{number}` says of the head, its state and merging.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Pull {
    /// `open` or `closed`.
    pub state: String,
    pub head: PullHead,
    pub base: PullHead,
    #[serde(default)]
    pub mergeable: Option<bool>,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
/// A pull request's head or base: a branch and its commit.
pub struct PullHead {
    pub sha: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
}

#[derive(Debug, Deserialize)]
struct Permission {
    permission: String,
}

/// An error and its causes, `a: b: c`: reqwest's own text alone does not say why a request failed.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// TLS for GitHub and for previews: ring, as for the AWS clients, and Mozilla's roots compiled in
/// (webpki-roots), so that building a client reads and parses no certificate files. Loading the
/// system's bundle cost a Lambda function about 9 ms of its cold start.
pub fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl Client {
    /// `base` is `https://api.github.com` (or a GitHub Enterprise Server's `/api/v3` URL).
    pub fn new(base: &str, token: impl Into<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config())
            .user_agent(concat!("ephemera/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let base = base.trim_end_matches('/').to_owned();
        Ok(Self { http, base, auth: Auth::Token(token.into()), retry: RetryPolicy::GITHUB })
    }

    /// As a GitHub App: each repository's calls are made with its installation's token.
    pub fn for_app(base: &str, app: AppCredentials) -> Result<Self, ClientError> {
        Ok(Self { auth: Auth::App(Arc::new(Installations::new(app))), ..Self::new(base, "")? })
    }

    pub fn is_app(&self) -> bool {
        matches!(self.auth, Auth::App(_))
    }

    /// The installation a webhook delivery named for `owner/repo`: spares looking it up.
    pub fn remember_installation(&self, owner: &str, repo: &str, installation: u64) {
        if let Auth::App(app) = &self.auth {
            app.remember(&format!("{owner}/{repo}"), installation);
        }
    }

    /// The token for a call to `path`, and the installation it is of (App only).
    pub(crate) async fn bearer(&self, path: &str) -> Result<(String, Option<u64>), ClientError> {
        let app = match &self.auth {
            Auth::Token(t) => return Ok((t.clone(), None)),
            Auth::App(app) => app,
        };
        let repository = repository_of(path).ok_or_else(|| {
            ClientError::Invalid(format!("{path} names no repository to find the App's installation by"))
        })?;
        let now = chrono::Utc::now().timestamp();
        let installation = match app.installation_of(&repository) {
            Some(i) => i,
            None => {
                let jwt = app.credentials.jwt(now)?;
                let path = format!("/repos/{repository}/installation");
                let found = self.send::<Installation>(Method::GET, &path, None, &jwt).await;
                let found = found.map_err(|e| not_installed(e, &repository))?;
                app.remember(&repository, found.id);
                found.id
            }
        };
        if let Some(token) = app.token(installation, now) {
            return Ok((token, Some(installation)));
        }
        let jwt = app.credentials.jwt(now)?;
        let path = format!("/app/installations/{installation}/access_tokens");
        let token: InstallationToken = self.send(Method::POST, &path, None, &jwt).await?;
        app.keep(installation, &token);
        Ok((token.token, Some(installation)))
    }

    /// One call with the right token; as an App, once more with a new token if GitHub refused
    /// the one it had (revoked, or expired early).
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let (bearer, installation) = self.bearer(path).await?;
        match (self.send(method.clone(), path, body, &bearer).await, &self.auth, installation) {
            (Err(ClientError::Http { status: 401, .. }), Auth::App(app), Some(installation)) => {
                warn!(installation, "GitHub refused the installation token; asking for a new one");
                app.forget(installation, &bearer, &repository_of(path).unwrap_or_default());
                let (bearer, _) = self.bearer(path).await?;
                self.send(method, path, body, &bearer).await
            }
            (result, _, _) => result,
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// One call with `bearer`, retried on rate limits, 5xx and network errors.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bearer: &str,
    ) -> Result<T, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.request(method.clone(), path, bearer);
            if let Some(b) = body {
                req = req.json(b);
            }
            let wait = match req.send().await {
                Err(e) => match self.backoff(attempt) {
                    Some(wait) => wait,
                    None => return Err(ClientError::Transport(with_causes(&e))),
                },
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        let text = resp.text().await.map_err(|e| ClientError::Transport(with_causes(&e)))?;
                        let text = if text.trim().is_empty() { "null" } else { text.as_str() };
                        return serde_json::from_str(text)
                            .map_err(|e| ClientError::Decode { path: path.to_owned(), message: e.to_string() });
                    }
                    let limit = rate_limit_wait(status, resp.headers(), chrono::Utc::now().timestamp());
                    let message = resp.text().await.unwrap_or_default();
                    let message: String = serde_json::from_str::<Value>(&message)
                        .ok()
                        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                        .unwrap_or(message)
                        .chars()
                        .take(300)
                        .collect();
                    let err = ClientError::Http {
                        method: method.to_string(),
                        path: path.to_owned(),
                        status: status.as_u16(),
                        message,
                    };
                    match (limit, self.backoff(attempt)) {
                        (Some(wait), Some(_)) if wait <= self.retry.max => wait,
                        (Some(wait), _) => return Err(ClientError::RateLimited { wait_secs: wait.as_secs() }),
                        (None, Some(backoff)) if status.is_server_error() => backoff,
                        (None, _) => return Err(err),
                    }
                }
            };
            warn!(%method, path, attempt, wait_ms = wait.as_millis() as u64, "GitHub call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// A request to `path` with GitHub's headers and `bearer`.
    pub(crate) fn request(&self, method: Method, path: &str, bearer: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .bearer_auth(bearer)
    }

    /// Forgets a token GitHub refused for `path`'s repository (App only).
    pub(crate) fn forget_token(&self, installation: u64, refused: &str, path: &str) {
        if let Auth::App(app) = &self.auth {
            app.forget(installation, refused, &repository_of(path).unwrap_or_default());
        }
    }

    /// The App's JWT, for its own endpoints (`/app/...`).
    pub(crate) fn app_jwt(&self) -> Result<String, ClientError> {
        match &self.auth {
            Auth::App(app) => app.credentials.jwt(chrono::Utc::now().timestamp()),
            Auth::Token(_) => Err(ClientError::Invalid("the App's own endpoints need App credentials".into())),
        }
    }

    /// The wait before the next attempt after `failed` attempts, if the policy allows one.
    pub(crate) fn backoff(&self, failed: u32) -> Option<Duration> {
        let draw = {
            use std::hash::{BuildHasher, Hasher};
            let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
            (bits >> 11) as f64 / (1u64 << 53) as f64
        };
        self.retry.backoff(failed, draw)
    }

    pub(crate) fn repo_path(owner: &str, repo: &str) -> Result<String, ClientError> {
        for part in [owner, repo] {
            if part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || part == ".."
            {
                return Err(ClientError::Invalid(format!("{part:?} is not a GitHub owner or repository name")));
            }
        }
        Ok(format!("/repos/{owner}/{repo}"))
    }

    /// Every comment on an issue or pull request, oldest first.
    #[instrument(skip(self))]
    pub async fn list_issue_comments(&self, owner: &str, repo: &str, number: u64) -> Result<Vec<Comment>, ClientError> {
        let base = Self::repo_path(owner, repo)?;
        let mut all = Vec::new();
        for page in 1..=50 {
            let batch: Vec<Comment> = self
                .call(Method::GET, &format!("{base}/issues/{number}/comments?per_page=100&page={page}"), None)
                .await?;
            let last = batch.len() < 100;
            all.extend(batch);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Creates or edits in place the one comment that carries `marker`; if a race ever left
    /// two, the later ones are deleted. Returns the comment's id.
    #[instrument(skip(self, body))]
    pub async fn upsert_marked_comment(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<u64, ClientError> {
        let base = Self::repo_path(owner, repo)?;
        let body = if body.contains(marker) { body.to_owned() } else { format!("{marker}\n{body}") };
        let ours = |c: &Comment| c.body.as_deref().is_some_and(|b| b.contains(marker));
        let existing: Vec<Comment> =
            self.list_issue_comments(owner, repo, number).await?.into_iter().filter(ours).collect();
        let id = match existing.first() {
            Some(c) => {
                if c.body.as_deref() != Some(body.as_str()) {
                    let _: Value = self
                        .call(
                            Method::PATCH,
                            &format!("{base}/issues/comments/{}", c.id),
                            Some(&serde_json::json!({ "body": body })),
                        )
                        .await?;
                }
                c.id
            }
            None => {
                let created: Comment = self
                    .call(
                        Method::POST,
                        &format!("{base}/issues/{number}/comments"),
                        Some(&serde_json::json!({ "body": body })),
                    )
                    .await?;
                created.id
            }
        };
        for extra in existing.iter().skip(1) {
            warn!(comment = extra.id, "removing a duplicate Ephemera comment");
            let _: Value = self.call(Method::DELETE, &format!("{base}/issues/comments/{}", extra.id), None).await?;
        }
        Ok(id)
    }

    /// The deployment of `sha` to `environment`, created if there is none yet.
    #[instrument(skip(self, description))]
    pub async fn ensure_deployment(
        &self,
        owner: &str,
        repo: &str,
        sha: &str,
        environment: &str,
        description: &str,
    ) -> Result<u64, ClientError> {
        let base = Self::repo_path(owner, repo)?;
        if !sha.chars().all(|c| c.is_ascii_hexdigit())
            || !environment.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err(ClientError::Invalid(format!("bad deployment sha {sha:?} or environment {environment:?}")));
        }
        let found: Vec<Deployment> = self
            .call(Method::GET, &format!("{base}/deployments?sha={sha}&environment={environment}&per_page=1"), None)
            .await?;
        if let Some(d) = found.first() {
            return Ok(d.id);
        }
        let new = NewDeployment {
            git_ref: sha,
            environment,
            description,
            auto_merge: false,
            required_contexts: vec![],
            transient_environment: true,
            production_environment: false,
        };
        let body = serde_json::to_value(&new).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let created: Deployment = self.call(Method::POST, &format!("{base}/deployments"), Some(&body)).await?;
        Ok(created.id)
    }

    /// The latest deployment of `environment` (any commit), if any.
    pub async fn latest_deployment(
        &self,
        owner: &str,
        repo: &str,
        environment: &str,
    ) -> Result<Option<u64>, ClientError> {
        let base = Self::repo_path(owner, repo)?;
        let found: Vec<Deployment> =
            self.call(Method::GET, &format!("{base}/deployments?environment={environment}&per_page=1"), None).await?;
        Ok(found.first().map(|d| d.id))
    }

    #[instrument(skip(self, status), fields(state = status.state))]
    pub async fn create_deployment_status(
        &self,
        owner: &str,
        repo: &str,
        deployment: u64,
        status: &NewDeploymentStatus<'_>,
    ) -> Result<(), ClientError> {
        let base = Self::repo_path(owner, repo)?;
        let mut body = serde_json::to_value(status).map_err(|e| ClientError::Invalid(e.to_string()))?;
        truncate_description(&mut body);
        let _: Value =
            self.call(Method::POST, &format!("{base}/deployments/{deployment}/statuses"), Some(&body)).await?;
        Ok(())
    }

    #[instrument(skip(self, status), fields(state = status.state, context = status.context))]
    pub async fn create_commit_status(
        &self,
        owner: &str,
        repo: &str,
        sha: &str,
        status: &NewCommitStatus<'_>,
    ) -> Result<(), ClientError> {
        let base = Self::repo_path(owner, repo)?;
        if !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ClientError::Invalid(format!("{sha:?} is not a commit id")));
        }
        let mut body = serde_json::to_value(status).map_err(|e| ClientError::Invalid(e.to_string()))?;
        truncate_description(&mut body);
        let _: Value = self.call(Method::POST, &format!("{base}/statuses/{sha}"), Some(&body)).await?;
        Ok(())
    }

    /// The pull request's head and state, whether GitHub has computed that it merges cleanly,
    /// and its test merge.
    #[instrument(skip(self))]
    pub async fn pull(&self, owner: &str, repo: &str, number: u64) -> Result<Pull, ClientError> {
        let base = Self::repo_path(owner, repo)?;
        self.call(Method::GET, &format!("{base}/pulls/{number}"), None).await
    }

    /// The latest check run `name` on `sha`, created or updated to what `run` says. Returns
    /// its id. Check runs are open to GitHub Apps only.
    #[instrument(skip(self, run), fields(name = run.name, status = run.status))]
    pub async fn upsert_check_run(&self, owner: &str, repo: &str, run: &NewCheckRun<'_>) -> Result<u64, ClientError> {
        let base = Self::repo_path(owner, repo)?;
        let sha = run.head_sha;
        if !sha.chars().all(|c| c.is_ascii_hexdigit())
            || !run.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c))
        {
            return Err(ClientError::Invalid(format!("bad check run {:?} or commit {sha:?}", run.name)));
        }
        let name = run.name.replace('/', "%2F");
        let found: CheckRuns = self
            .call(Method::GET, &format!("{base}/commits/{sha}/check-runs?check_name={name}&filter=latest"), None)
            .await?;
        let mut body = serde_json::to_value(run).map_err(|e| ClientError::Invalid(e.to_string()))?;
        truncate_summary(&mut body);
        let created: CheckRunId = match found.check_runs.first() {
            Some(existing) => {
                body.as_object_mut().map(|o| o.remove("head_sha"));
                self.call(Method::PATCH, &format!("{base}/check-runs/{}", existing.id), Some(&body)).await?
            }
            None => self.call(Method::POST, &format!("{base}/check-runs"), Some(&body)).await?,
        };
        Ok(created.id)
    }

    /// A file's text at `git_ref` (a commit id), None if there is no such file.
    #[instrument(skip(self))]
    pub async fn file(
        &self,
        owner: &str,
        repo: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<String>, ClientError> {
        use base64::Engine as _;
        let base = Self::repo_path(owner, repo)?;
        let safe = |c: char| c.is_ascii_alphanumeric() || "-_./".contains(c);
        if path.is_empty() || path.starts_with('/') || path.contains("..") || !path.chars().all(safe) {
            return Err(ClientError::Invalid(format!("{path:?} is not a path in a repository")));
        }
        if !git_ref.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ClientError::Invalid(format!("{git_ref:?} is not a commit id")));
        }
        let found: Content = match self.call(Method::GET, &format!("{base}/contents/{path}?ref={git_ref}"), None).await
        {
            Ok(c) => c,
            Err(ClientError::Http { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let invalid = |m: String| ClientError::Decode { path: path.to_owned(), message: m };
        if found.kind != "file" || found.encoding.as_deref() != Some("base64") {
            return Err(invalid(format!("{path} is a {} GitHub did not send as a file", found.kind)));
        }
        let packed: String = found.content.unwrap_or_default().split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD.decode(packed).map_err(|e| invalid(e.to_string()))?;
        String::from_utf8(bytes).map(Some).map_err(|_| invalid(format!("{path} is not UTF-8 text")))
    }

    /// The files changed from `base` to `head`; None when GitHub cannot say that plainly (it
    /// lists only part of them, `head` is not ahead of `base` after a force-push, or `base` is
    /// gone).
    #[instrument(skip(self))]
    pub async fn changed_files(
        &self,
        owner: &str,
        repo: &str,
        base: &str,
        head: &str,
    ) -> Result<Option<Vec<String>>, ClientError> {
        let root = Self::repo_path(owner, repo)?;
        if !base.chars().chain(head.chars()).all(|c| c.is_ascii_hexdigit()) {
            return Err(ClientError::Invalid(format!("{base:?}...{head:?} are not commit ids")));
        }
        let c: Comparison = match self.call(Method::GET, &format!("{root}/compare/{base}...{head}"), None).await {
            Ok(c) => c,
            Err(ClientError::Http { status: 404 | 422, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !matches!(c.status.as_str(), "ahead" | "identical") || c.files.len() >= COMPARE_FILES_MAX {
            return Ok(None);
        }
        Ok(Some(c.files.into_iter().map(|f| f.filename).collect()))
    }

    /// Reacts to an issue or pull request comment: `+1`, `-1`, `laugh`, `confused`, `heart`,
    /// `hooray`, `rocket` or `eyes`. Reacting twice alike is not an error.
    #[instrument(skip(self))]
    pub async fn react_to_comment(
        &self,
        owner: &str,
        repo: &str,
        comment: u64,
        content: &str,
    ) -> Result<(), ClientError> {
        let base = Self::repo_path(owner, repo)?;
        let body = serde_json::json!({ "content": content });
        let _: Value =
            self.call(Method::POST, &format!("{base}/issues/comments/{comment}/reactions"), Some(&body)).await?;
        Ok(())
    }

    /// A new comment on an issue or pull request.
    #[instrument(skip(self, body))]
    pub async fn create_comment(&self, owner: &str, repo: &str, number: u64, body: &str) -> Result<u64, ClientError> {
        let base = Self::repo_path(owner, repo)?;
        let created: Comment = self
            .call(Method::POST, &format!("{base}/issues/{number}/comments"), Some(&serde_json::json!({ "body": body })))
            .await?;
        Ok(created.id)
    }

    /// `admin`, `maintain`, `write`, `triage`, `read` or `none`.
    #[instrument(skip(self))]
    pub async fn permission(&self, owner: &str, repo: &str, login: &str) -> Result<String, ClientError> {
        let base = Self::repo_path(owner, repo)?;
        if login.is_empty() || !login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '[' || c == ']') {
            return Err(ClientError::Invalid(format!("{login:?} is not a GitHub login")));
        }
        let p: Permission = self.call(Method::GET, &format!("{base}/collaborators/{login}/permission"), None).await?;
        Ok(p.permission)
    }
}

/// `owner/repo` of a `/repos/{owner}/{repo}/...` path.
fn repository_of(path: &str) -> Option<String> {
    let mut parts = path.split('?').next()?.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(""), Some("repos"), Some(owner), Some(repo)) if !owner.is_empty() && !repo.is_empty() => {
            Some(format!("{owner}/{repo}"))
        }
        _ => None,
    }
}

/// A repository the App cannot find its installation for is one it is not installed on.
fn not_installed(e: ClientError, repository: &str) -> ClientError {
    match e {
        ClientError::Http { status: 404, method, path, .. } => ClientError::Http {
            method,
            path,
            status: 404,
            message: format!(
                "the GitHub App is not installed on {repository}: install it there, or stop sending its events"
            ),
        },
        other => other,
    }
}

/// GitHub accepts at most 140 characters of description.
fn truncate_description(body: &mut Value) {
    if let Some(Value::String(d)) = body.get_mut("description") {
        if d.chars().count() > 140 {
            *d = d.chars().take(139).collect::<String>() + "…";
        }
    }
}

/// GitHub keeps a check run's summary to 65,535 characters.
fn truncate_summary(body: &mut Value) {
    const MAX: usize = 65_000;
    if let Some(Value::String(summary)) = body.pointer_mut("/output/summary") {
        if summary.chars().count() > MAX {
            *summary = summary.chars().take(MAX).collect::<String>() + "\n\n… (cut)";
        }
    }
}

/// How long GitHub asks us to wait, if this answer is a rate limit: `Retry-After` seconds, or
/// until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0. A 403 or 429 without those
/// headers is a secondary limit: GitHub asks for at least a minute.
pub fn rate_limit_wait(status: StatusCode, headers: &reqwest::header::HeaderMap, now: i64) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok()).unwrap_or(now + 60);
        // One extra second: the reset time is whole seconds.
        return Some(Duration::from_secs((reset - now).max(0) as u64 + 1));
    }
    // A plain 403 (no permission) is not a limit; 429 always is.
    (status == StatusCode::TOO_MANY_REQUESTS).then(|| Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn rate_limit_headers() {
        let now = 1_000;
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1003")]),
                now
            ),
            Some(Duration::from_secs(4))
        );
        assert_eq!(rate_limit_wait(StatusCode::FORBIDDEN, &headers(&[("x-ratelimit-remaining", "12")]), now), None);
        assert_eq!(rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &headers(&[]), now), Some(Duration::from_secs(60)));
        assert_eq!(rate_limit_wait(StatusCode::NOT_FOUND, &headers(&[("retry-after", "7")]), now), None);
    }

    #[test]
    fn no_token_is_ever_printed() {
        let client = Client::new("https://api.github.com", "ghp_secret").unwrap();
        assert!(!format!("{client:?}").contains("ghp_secret"));
        const KEY: &[u8] = include_bytes!("../../../tests/fixtures/github-app/test-only-private-key.pem");
        let app = Client::for_app("https://api.github.com", AppCredentials::new("1", KEY).unwrap()).unwrap();
        let token = InstallationToken { token: "ghs_secret".into(), expires_at: chrono::Utc::now() };
        let Auth::App(installations) = &app.auth else { unreachable!() };
        installations.keep(7, &token);
        assert!(!format!("{app:?} {token:?}").contains("ghs_secret"));
    }

    #[test]
    fn the_repository_of_a_path_finds_the_apps_installation() {
        assert_eq!(repository_of("/repos/acme/todo-app/pulls/7").as_deref(), Some("acme/todo-app"));
        assert_eq!(repository_of("/repos/acme/todo-app?x=1").as_deref(), Some("acme/todo-app"));
        assert_eq!(repository_of("/app/installations/1/access_tokens"), None);
        assert_eq!(repository_of("/repos/acme"), None);
    }

    #[test]
    fn names_are_checked_before_they_reach_a_url() {
        assert!(Client::repo_path("acme", "todo-app").is_ok());
        assert!(Client::repo_path("acme", "../../admin").is_err());
        assert!(Client::repo_path("acme/x", "y").is_err());
    }
}
