//! Webhook intake: verify, parse, record the desired state, announce it, answer.
//!
//! Nothing here calls CloudFormation: the request path is one DynamoDB transaction and one
//! EventBridge put, well inside GitHub's 10 second limit.

use std::sync::Arc;

use ephemera_domain::policy::ExpiryPolicy;
use ephemera_domain::{Desired, EnvironmentKind, EnvironmentName, EventOrder, RepoName};
use ephemera_github::{parse_event, PullRequestEvent, SignatureError, WebhookEvent, WebhookSecrets};
use serde_json::{json, Value};
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::events::PlatformEvent;
use crate::ports::{Change, ChangeOutcome, EventBus, PortError, Registry};

/// One delivery as received.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-GitHub-Event`
    pub event: Option<&'a str>,
    /// `X-GitHub-Delivery`
    pub id: Option<&'a str>,
    /// `X-Hub-Signature-256`
    pub signature: Option<&'a str>,
    /// The raw body, exactly as signed.
    pub body: &'a [u8],
    /// The body is `application/x-www-form-urlencoded` (`payload=<json>`).
    pub form_encoded: bool,
}

/// A successful answer: 200 or 202, with a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub accepted: bool,
    pub body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self { accepted: false, body }
    }
    fn accepted(body: Value) -> Self {
        Self { accepted: true, body }
    }
    fn ignored(reason: impl Into<String>) -> Self {
        Self::accepted(json!({ "status": "ignored", "reason": reason.into() }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{0}")]
    Unauthorized(#[from] SignatureError),
    #[error("{0}")]
    BadRequest(String),
    #[error("environment name conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(#[from] PortError),
}

#[derive(Debug, Clone)]
pub struct IntakeSettings {
    pub secrets: WebhookSecrets,
    /// Lowercase `owner/repo`; empty means every repository.
    pub allowed_repositories: Vec<String>,
    pub deploy_forks: bool,
    pub expiry: ExpiryPolicy,
    /// Per-repository PR inactivity TTLs (lowercase `owner/repo`), overriding `expiry`.
    pub pr_ttl_by_repository: std::collections::HashMap<String, chrono::Duration>,
}

pub struct Intake {
    registry: Arc<dyn Registry>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    settings: IntakeSettings,
}

impl Intake {
    pub fn new(
        registry: Arc<dyn Registry>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        settings: IntakeSettings,
    ) -> Self {
        Self { registry, bus, clock, settings }
    }

    #[instrument(skip_all, fields(event = d.event, delivery = d.id))]
    pub async fn handle(&self, d: Delivery<'_>) -> Result<Reply, IntakeError> {
        // Authenticity first: nothing about an unsigned body is looked at.
        self.settings.secrets.verify(d.body, d.signature).inspect_err(|e| warn!(error = %e, "rejected delivery"))?;
        let event = d.event.ok_or_else(|| IntakeError::BadRequest("missing X-GitHub-Event header".into()))?;
        let id =
            d.id.filter(|id| !id.is_empty() && id.len() <= 128)
                .ok_or_else(|| IntakeError::BadRequest("missing or invalid X-GitHub-Delivery header".into()))?;

        let json_body;
        let body = if d.form_encoded {
            json_body = form_urlencoded::parse(d.body)
                .find(|(k, _)| k == "payload")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| IntakeError::BadRequest("form-encoded delivery has no payload field".into()))?;
            json_body.as_bytes()
        } else {
            d.body
        };
        let parsed = parse_event(event, body).map_err(|e| IntakeError::BadRequest(e.to_string()))?;
        match parsed {
            WebhookEvent::Ping(p) => Ok(Reply::ok(json!({ "status": "pong", "zen": p.zen, "hook_id": p.hook_id }))),
            WebhookEvent::Other(name) => Ok(Reply::ignored(format!("{name} events are not handled"))),
            WebhookEvent::PullRequest(pr) => self.pull_request(id, &pr).await,
        }
    }

    async fn pull_request(&self, delivery: &str, e: &PullRequestEvent) -> Result<Reply, IntakeError> {
        let (desired, rank) = match e.action.as_str() {
            "opened" | "reopened" => (Desired::Up, EventOrder::RANK_OPEN),
            "synchronize" => (Desired::Up, EventOrder::RANK_PUSH),
            "closed" => (Desired::Down, EventOrder::RANK_CLOSE),
            other => return Ok(Reply::ignored(format!("pull_request action {other:?} does not change environments"))),
        };
        let repo = RepoName::parse(&e.repository.full_name).map_err(|err| IntakeError::BadRequest(err.to_string()))?;
        let allowed = &self.settings.allowed_repositories;
        if !allowed.is_empty() && !allowed.contains(&repo.canonical()) {
            return Ok(Reply::ignored(format!("repository {repo} is not in EPHEMERA_ALLOWED_REPOSITORIES")));
        }
        // A fork's code never runs with the platform's role unless the operator opts in. Closing
        // is always processed, so that nothing a fork had can be left behind.
        if desired == Desired::Up && e.is_from_fork() && !self.settings.deploy_forks {
            return Ok(Reply::ignored(format!(
                "pull request #{} comes from a fork; fork previews are off (EPHEMERA_DEPLOY_FORKS)",
                e.number
            )));
        }
        let number = e.pull_request.number;
        let name =
            EnvironmentName::for_pull_request(&repo, number).map_err(|err| IntakeError::BadRequest(err.to_string()))?;
        let sha = &e.pull_request.head.sha;
        if sha.len() < 7 || sha.len() > 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(IntakeError::BadRequest(format!("pull_request.head.sha {sha:?} is not a commit id")));
        }
        let now = self.clock.now();
        let activity = e.pull_request.updated_at;
        let change = Change {
            name: name.clone(),
            kind: EnvironmentKind::Pr,
            repository: Some(repo.clone()),
            pull_request: Some(number),
            owner: e.pull_request.user.login.clone(),
            commit: Some(sha.to_ascii_lowercase()),
            head_ref: Some(e.pull_request.head.ref_name.clone()),
            desired,
            order: EventOrder::new(activity.timestamp(), rank),
            // TTL runs from the last push, but never from a time already past.
            expires_at: self.expiry_for(&repo).expires_at(EnvironmentKind::Pr, activity.max(now)),
            at: now,
        };
        let outcome = self.registry.apply_change(delivery, &change).await?;
        info!(environment = %name, action = %e.action, ?outcome, "pull request event");
        match outcome {
            ChangeOutcome::Accepted { generation } => {
                self.announce(&name).await?;
                Ok(Reply::accepted(json!({
                    "status": "accepted",
                    "environment": name,
                    "desired": desired,
                    "generation": generation,
                    "commit": change.commit,
                })))
            }
            ChangeOutcome::Duplicate => {
                // The first delivery may have been recorded but not announced (the bus failed):
                // announcing again is harmless, the provisioner reconciles to the recorded state.
                if let Some(env) = self.registry.get(&name).await? {
                    if !env.is_converged() {
                        self.bus.publish(&[PlatformEvent::requested(&env)]).await?;
                    }
                }
                Ok(Reply::ok(json!({ "status": "duplicate", "environment": name, "delivery": delivery })))
            }
            ChangeOutcome::Stale => Ok(Reply::ok(json!({
                "status": "stale",
                "environment": name,
                "reason": "a later event for this pull request is already recorded",
            }))),
            ChangeOutcome::Conflict(msg) => Err(IntakeError::Conflict(msg)),
        }
    }

    fn expiry_for(&self, repo: &RepoName) -> ExpiryPolicy {
        match self.settings.pr_ttl_by_repository.get(&repo.canonical()) {
            Some(ttl) => ExpiryPolicy { pr_inactivity: *ttl, ..self.settings.expiry },
            None => self.settings.expiry,
        }
    }

    async fn announce(&self, name: &EnvironmentName) -> Result<(), PortError> {
        let env = self.registry.get(name).await?.ok_or(PortError::Retryable {
            operation: "read environment",
            message: format!("{name} was recorded but cannot be read back"),
        })?;
        self.bus.publish(&[PlatformEvent::requested(&env)]).await
    }
}
