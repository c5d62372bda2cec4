//! The parts of GitHub's webhook payloads that Ephemera reads. Unknown fields are ignored.

use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload is not valid JSON for a {event} event: {source}")]
    Json {
        event: String,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
    #[serde(default)]
    pub fork: bool,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub default_branch: Option<String>,
    /// Epoch seconds in `push` payloads, an RFC 3339 time in the others.
    #[serde(default)]
    pub pushed_at: Option<serde_json::Value>,
}

impl Repository {
    /// When the repository was last pushed to, whichever way the payload writes it.
    pub fn pushed_at(&self) -> Option<DateTime<Utc>> {
        match self.pushed_at.as_ref()? {
            serde_json::Value::Number(n) => DateTime::from_timestamp(n.as_i64()?, 0),
            serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc()),
            _ => None,
        }
    }
}

/// `push`: commits pushed to a ref, or the ref created or deleted by a push.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    /// `refs/heads/<branch>` or `refs/tags/<tag>`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    /// The ref's commit after the push (all zeros when the push deleted it).
    pub after: String,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    pub repository: Repository,
    pub sender: User,
}

/// `delete`: a branch or tag was deleted (GitHub sends none when more than three tags are
/// deleted at once).
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteEvent {
    /// The short name: `feature/x`, not `refs/heads/feature/x`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// `branch` or `tag`.
    pub ref_type: String,
    pub repository: Repository,
    pub sender: User,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
    /// Null when the head repository (a fork) has been deleted.
    pub repo: Option<Repository>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub state: String,
    #[serde(default)]
    pub html_url: Option<String>,
    pub user: User,
    pub head: GitRef,
    pub base: GitRef,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    #[serde(default)]
    pub mergeable: Option<bool>,
    #[serde(default)]
    pub draft: Option<bool>,
    #[serde(default)]
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    /// The App installation the delivery is from (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub number: u64,
    /// The head before and after a push (`synchronize` only).
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
    /// The label added or removed (`labeled` and `unlabeled` only).
    #[serde(default)]
    pub label: Option<Label>,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: User,
}

impl PullRequestEvent {
    /// The head branch lives in another repository (a fork), or that repository is gone.
    pub fn is_from_fork(&self) -> bool {
        self.pull_request.is_from_fork()
    }
}

impl PullRequest {
    /// The head branch lives in another repository (a fork), or that repository is gone.
    pub fn is_from_fork(&self) -> bool {
        match &self.head.repo {
            Some(head) => !head.full_name.eq_ignore_ascii_case(&self.base_repo_name()),
            None => true,
        }
    }

    fn base_repo_name(&self) -> String {
        self.base.repo.as_ref().map(|r| r.full_name.clone()).unwrap_or_default()
    }
}

/// `issue_comment`: a comment on an issue or a pull request (GitHub treats both as issues).
#[derive(Debug, Clone, Deserialize)]
pub struct IssueCommentEvent {
    /// `created`, `edited` or `deleted`.
    pub action: String,
    pub issue: Issue,
    pub comment: IssueComment,
    pub repository: Repository,
    pub sender: Sender,
    /// The App installation the delivery is for (App webhooks only).
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl IssueCommentEvent {
    /// On a pull request's conversation, not a plain issue's.
    pub fn is_on_pull_request(&self) -> bool {
        self.issue.pull_request.is_some()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub number: u64,
    /// Who opened it.
    pub user: User,
    /// `open` or `closed`.
    pub state: String,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    pub user: User,
    pub created_at: DateTime<Utc>,
}

/// Who sent a delivery: a user, or a bot (an App, Ephemera's own replies included).
#[derive(Debug, Clone, Deserialize)]
pub struct Sender {
    pub login: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl Sender {
    pub fn is_bot(&self) -> bool {
        self.kind.as_deref() == Some("Bot") || self.login.ends_with("[bot]")
    }
}

/// The App installation a delivery is about or from.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRef {
    pub id: u64,
    /// The user or organization it is installed on (`installation` events).
    #[serde(default)]
    pub account: Option<User>,
}

/// A repository as installation events name it.
#[derive(Debug, Clone, Deserialize)]
pub struct RepositoryRef {
    pub full_name: String,
}

/// `installation`: the App was installed (`created`), uninstalled (`deleted`), suspended, ...
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: InstallationRef,
    /// The repositories it can reach (absent when it reaches all of the account's).
    #[serde(default)]
    pub repositories: Option<Vec<RepositoryRef>>,
    pub sender: User,
}

/// `installation_repositories`: repositories `added` to or `removed` from an installation.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRepositoriesEvent {
    pub action: String,
    pub installation: InstallationRef,
    #[serde(default)]
    pub repositories_added: Vec<RepositoryRef>,
    #[serde(default)]
    pub repositories_removed: Vec<RepositoryRef>,
    pub sender: User,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PingEvent {
    pub zen: Option<String>,
    pub hook_id: Option<u64>,
}

/// A webhook delivery, by its `X-GitHub-Event` header.
#[derive(Debug, Clone)]
pub enum WebhookEvent {
    Ping(PingEvent),
    PullRequest(Box<PullRequestEvent>),
    Push(Box<PushEvent>),
    Delete(Box<DeleteEvent>),
    IssueComment(Box<IssueCommentEvent>),
    Installation(Box<InstallationEvent>),
    InstallationRepositories(Box<InstallationRepositoriesEvent>),
    /// An event type Ephemera does not act on.
    Other(String),
}

/// Parses a delivery's JSON body according to its `X-GitHub-Event` name.
pub fn parse_event(event: &str, body: &[u8]) -> Result<WebhookEvent, PayloadError> {
    let err = |source| PayloadError::Json { event: event.to_owned(), source };
    match event {
        "ping" => Ok(WebhookEvent::Ping(serde_json::from_slice(body).map_err(err)?)),
        "pull_request" => Ok(WebhookEvent::PullRequest(Box::new(serde_json::from_slice(body).map_err(err)?))),
        "push" => Ok(WebhookEvent::Push(Box::new(serde_json::from_slice(body).map_err(err)?))),
        "delete" => Ok(WebhookEvent::Delete(Box::new(serde_json::from_slice(body).map_err(err)?))),
        "issue_comment" => Ok(WebhookEvent::IssueComment(Box::new(serde_json::from_slice(body).map_err(err)?))),
        "installation" => Ok(WebhookEvent::Installation(Box::new(serde_json::from_slice(body).map_err(err)?))),
        "installation_repositories" => {
            Ok(WebhookEvent::InstallationRepositories(Box::new(serde_json::from_slice(body).map_err(err)?)))
        }
        other => {
            // Still insist on JSON, so that a garbled delivery is reported as such.
            serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(err)?;
            Ok(WebhookEvent::Other(other.to_owned()))
        }
    }
}
