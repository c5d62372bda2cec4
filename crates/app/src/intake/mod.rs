//! Webhook intake: verify, parse, record the desired state, announce it, answer.
//!
//! Nothing here calls CloudFormation: the request path is one DynamoDB transaction and one
//! EventBridge put, and, with GitHub credentials, a few GitHub reads (mergeability, the
//! commit's `.ephemera.yml`) each within a time limit, inside GitHub's 10 second limit.

mod branch;
mod command;
mod installation;
mod repo_files;

use std::sync::Arc;

use ephemera_domain::branch::BranchPatterns;
use ephemera_domain::policy::ExpiryPolicy;
use ephemera_domain::preview::{decide, is_commit_id, Decision, Labels, PrEvent, Source};
use ephemera_domain::{Desired, EnvironmentKind, EnvironmentName, EventOrder, RepoName};
use ephemera_github_webhook::{parse_event, PullRequestEvent, SignatureError, WebhookEvent, WebhookSecrets};
use serde_json::{json, Value};
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::events::PlatformEvent;
use crate::ports::{Change, ChangeOutcome, DesiredState, EventBus, GitHubApi, PortError};

pub use branch::BRANCH_DELETED;
pub use repo_files::RepoFiles;

/// The status reason recorded when a pull request is merged (the notifier promotes the
/// preview's measurement to the baseline then) or closed unmerged.
pub const PR_MERGED: &str = "pull request merged";
pub const PR_CLOSED: &str = "pull request closed";

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
    /// None: no delivery is taken, only what the sweep read from GitHub ([`Intake::catch_up`]).
    pub secrets: Option<WebhookSecrets>,
    /// Lowercase `owner/repo`; empty means every repository.
    pub allowed_repositories: Vec<String>,
    /// Deploy forks without a maintainer's approval label (trusted forks only).
    pub deploy_forks: bool,
    pub labels: Labels,
    pub expiry: ExpiryPolicy,
    /// Per-repository PR inactivity TTLs (lowercase `owner/repo`), overriding `expiry`.
    pub pr_ttl_by_repository: std::collections::HashMap<String, chrono::Duration>,
    /// Branches that get environments of their own (`EPHEMERA_BRANCH_ENVIRONMENTS`).
    pub branches: BranchPatterns,
}

/// What a pull request event asks of its environment.
struct Intent {
    desired: Desired,
    rank: u8,
    /// Why, kept as the status reason (a merge, a close, a label).
    reason: Option<String>,
    merged: bool,
}

pub struct Intake {
    registry: Arc<dyn DesiredState>,
    bus: Arc<dyn EventBus>,
    github: Option<Arc<dyn GitHubApi>>,
    clock: Arc<dyn Clock>,
    settings: IntakeSettings,
    /// Who may give comment commands, as GitHub said lately.
    writers: command::Writers,
    /// Where repositories' own settings and blueprints are kept (with GitHub).
    files: Option<RepoFiles>,
}

impl Intake {
    pub fn new(
        registry: Arc<dyn DesiredState>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        settings: IntakeSettings,
    ) -> Self {
        Self { registry, bus, github: None, clock, settings, writers: command::Writers::default(), files: None }
    }

    /// Asks GitHub about mergeability (rebase-first) and fork approvers' permissions.
    pub fn with_github(mut self, github: Arc<dyn GitHubApi>) -> Self {
        self.github = Some(github);
        self
    }

    /// Reads each deployed commit's `.ephemera.yml` (with GitHub) and keeps it, and the files it
    /// names, in `files`.
    pub fn with_repo_files(mut self, files: RepoFiles) -> Self {
        self.files = Some(files);
        self
    }

    #[instrument(skip_all, fields(event = d.event, delivery = d.id))]
    pub async fn handle(&self, d: Delivery<'_>) -> Result<Reply, IntakeError> {
        // Authenticity first: nothing about an unsigned body is looked at.
        let secrets = self.settings.secrets.as_ref().ok_or(SignatureError::NoSecret)?;
        secrets.verify(d.body, d.signature).inspect_err(|e| warn!(error = %e, "rejected delivery"))?;
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
            WebhookEvent::PullRequest(pr) => self.pull_request(id, &pr, None).await,
            WebhookEvent::Push(push) => self.push(id, &push).await,
            WebhookEvent::Delete(delete) => self.delete(id, &delete).await,
            WebhookEvent::IssueComment(comment) => self.issue_comment(id, &comment).await,
            WebhookEvent::Installation(i) => self.installation(id, &i).await,
            WebhookEvent::InstallationRepositories(i) => self.installation_repositories(id, &i).await,
        }
    }

    /// A pull request event GitHub never delivered (or failed to), as the sweep read it from
    /// GitHub: recorded and announced as its delivery would have been, under `delivery`, with
    /// `note` added to the reason it records.
    #[instrument(skip_all, fields(delivery, action = %e.action, number = e.number))]
    pub async fn catch_up(&self, delivery: &str, e: &PullRequestEvent, note: &str) -> Result<Reply, IntakeError> {
        self.pull_request(delivery, e, Some(note)).await
    }

    async fn pull_request(
        &self,
        delivery: &str,
        e: &PullRequestEvent,
        note: Option<&str>,
    ) -> Result<Reply, IntakeError> {
        let repo = match self.allowed(&e.repository.full_name)? {
            Ok(repo) => repo,
            Err(reply) => return Ok(reply),
        };
        let name = EnvironmentName::for_pull_request(&repo, e.pull_request.number)
            .map_err(|err| IntakeError::BadRequest(err.to_string()))?;
        if let (Some(github), Some(installation)) = (&self.github, &e.installation) {
            github.remember_installation(&repo, installation.id);
        }
        let head = &e.pull_request.head.sha;
        if !is_commit_id(head) {
            return Err(IntakeError::BadRequest(format!("pull_request.head.sha {head:?} is not a commit id")));
        }
        let intent = match self.intent(&name, &repo, e).await? {
            Ok(intent) => intent,
            Err(reply) => return Ok(reply),
        };
        let source = match intent.desired {
            Desired::Up => match self.source(&repo, e).await {
                conflict @ Source::Conflict { .. } => {
                    let note = conflict.note(&e.pull_request.base.ref_name);
                    self.not_deployed(&name, &repo, e, &note).await;
                    return Ok(Reply::ignored(note));
                }
                source => Some(source),
            },
            Desired::Down => None,
        };
        let mut ttl = None;
        if let Some(commit) = source.as_ref().and_then(Source::commit) {
            let config = self.repository_settings(&repo, commit).await?;
            if let Some(config) = &config {
                if let Some(note) = self.unchanged_paths(&name, &repo, e, config).await? {
                    return Ok(Self::skipped(&name, note));
                }
                ttl = config.ttl;
            }
        }
        let mut change = self.change(name, repo, e, intent, source.as_ref(), ttl);
        if let Some(note) = note {
            change.reason = Some(match change.reason.take() {
                Some(why) => format!("{why} ({note})"),
                None => note.to_owned(),
            });
        }
        let outcome = self.registry.apply_change(delivery, &change).await?;
        info!(environment = %change.name, ?outcome, "recorded");
        let preserve = &self.settings.labels.preserve;
        let pinned = e.pull_request.labels.iter().any(|l| l.name.eq_ignore_ascii_case(preserve));
        self.answer(delivery, &change, pinned, outcome).await
    }

    /// The repository, if the platform serves it; else the reply ignoring the event.
    fn allowed(&self, full_name: &str) -> Result<Result<RepoName, Reply>, IntakeError> {
        let repo = RepoName::parse(full_name).map_err(|err| IntakeError::BadRequest(err.to_string()))?;
        let allowed = &self.settings.allowed_repositories;
        if !allowed.is_empty() && !allowed.contains(&repo.canonical()) {
            return Ok(Err(Reply::ignored(format!("repository {repo} is not in EPHEMERA_ALLOWED_REPOSITORIES"))));
        }
        Ok(Ok(repo))
    }

    /// What the event asks of the environment, or the reply when it asks nothing of it (ignored,
    /// a preserve label, a refused fork approval).
    async fn intent(
        &self,
        name: &EnvironmentName,
        repo: &RepoName,
        e: &PullRequestEvent,
    ) -> Result<Result<Intent, Reply>, IntakeError> {
        let labels: Vec<String> = e.pull_request.labels.iter().map(|l| l.name.clone()).collect();
        // A fork's code never runs with the platform's role until a maintainer approves it
        // (or the operator trusts all forks). Closing is always processed.
        let from_fork = e.is_from_fork() && !self.settings.deploy_forks;
        let label = e.label.as_ref().map(|l| l.name.as_str());
        let decision = decide(PrEvent { action: &e.action, label, labels: &labels, from_fork }, &self.settings.labels);
        info!(environment = %name, action = %e.action, ?decision, "pull request event");
        let up = |rank| Ok(Ok(Intent { desired: Desired::Up, rank, reason: None, merged: false }));
        match decision {
            Decision::Ignore(reason) => {
                if from_fork && matches!(e.action.as_str(), "opened" | "reopened" | "synchronize") {
                    self.not_deployed(name, repo, e, &reason).await;
                }
                Ok(Err(Reply::ignored(reason)))
            }
            Decision::Preserve(on) => {
                let found = self.registry.set_preserved(name, on, None).await?;
                let status = if found { "recorded" } else { "ignored" };
                Ok(Err(Reply::ok(json!({ "status": status, "environment": name, "preserved": on }))))
            }
            Decision::ApproveFork => {
                let login = &e.sender.login;
                if self.is_maintainer(repo, login).await {
                    return up(EventOrder::RANK_PUSH);
                }
                let reason = format!("{login} may not approve fork previews (needs write access to {repo})");
                warn!(%reason, "fork approval refused");
                Ok(Err(Reply::ignored(reason)))
            }
            Decision::Up if e.action == "opened" || e.action == "reopened" => up(EventOrder::RANK_OPEN),
            Decision::Up => up(EventOrder::RANK_PUSH),
            // Closing records whether the pull request was merged (the baseline moves then).
            Decision::Down(_) if e.action == "closed" => {
                let merged = e.pull_request.merged == Some(true);
                let why = if merged { PR_MERGED } else { PR_CLOSED };
                Ok(Ok(Intent {
                    desired: Desired::Down,
                    rank: EventOrder::RANK_CLOSE,
                    reason: Some(why.into()),
                    merged,
                }))
            }
            Decision::Down(reason) => Ok(Ok(Intent {
                desired: Desired::Down,
                rank: EventOrder::RANK_PUSH,
                reason: Some(reason),
                merged: false,
            })),
        }
    }

    /// The change to record for a pull request event.
    fn change(
        &self,
        name: EnvironmentName,
        repo: RepoName,
        e: &PullRequestEvent,
        intent: Intent,
        source: Option<&Source>,
        ttl: Option<chrono::Duration>,
    ) -> Change {
        let now = self.clock.now();
        let activity = e.pull_request.updated_at;
        // TTL runs from the last push, but never from a time already past; the repository's
        // own (`.ephemera.yml`) first.
        let expires_at = self.expiry_with(&repo, ttl).expires_at(EnvironmentKind::Pr, activity.max(now));
        Change {
            pull_request: Some(e.pull_request.number),
            repository: Some(repo),
            // Going down keeps the commit last deployed.
            commit: source.and_then(|s| s.commit()).map(str::to_owned),
            head_ref: Some(e.pull_request.head.ref_name.clone()),
            head_commit: Some(e.pull_request.head.sha.to_ascii_lowercase()),
            base_ref: Some(e.pull_request.base.ref_name.clone()),
            source: source.and_then(Source::recorded),
            merged: intent.merged,
            reason: intent.reason,
            ..Change::new(
                name,
                EnvironmentKind::Pr,
                e.pull_request.user.login.clone(),
                intent.desired,
                EventOrder::new(activity.timestamp(), intent.rank),
                expires_at,
                now,
            )
        }
    }

    /// Announces an accepted change and answers GitHub; `pinned` (the preserve label) preserves
    /// an environment going up.
    async fn answer(
        &self,
        delivery: &str,
        change: &Change,
        pinned: bool,
        outcome: ChangeOutcome,
    ) -> Result<Reply, IntakeError> {
        let name = &change.name;
        match outcome {
            ChangeOutcome::Accepted { generation } => {
                if change.desired == Desired::Up && pinned {
                    self.registry.set_preserved(name, true, None).await?;
                }
                self.announce(name).await?;
                Ok(Reply::accepted(json!({
                    "status": "accepted",
                    "environment": name,
                    "desired": change.desired,
                    "generation": generation,
                    "commit": change.commit,
                    "source": change.source,
                })))
            }
            ChangeOutcome::Duplicate => {
                // The first delivery may have been recorded but not announced (the bus failed):
                // announcing again is harmless, the provisioner reconciles to the recorded state.
                if let Some(env) = self.registry.get(name).await? {
                    if !env.is_converged() {
                        self.bus.publish(&[PlatformEvent::requested(&env)]).await?;
                    }
                }
                Ok(Reply::ok(json!({ "status": "duplicate", "environment": name, "delivery": delivery })))
            }
            ChangeOutcome::Stale => Ok(Reply::ok(json!({
                "status": "stale",
                "environment": name,
                "reason": "a later event for this environment is already recorded",
            }))),
            ChangeOutcome::Conflict(msg) => Err(IntakeError::Conflict(msg)),
        }
    }

    /// Rebase-first: what the payload says about merging, else what GitHub says now of the same
    /// head (the payload's `mergeable` is usually not computed yet when the event is sent).
    async fn source(&self, repo: &RepoName, e: &PullRequestEvent) -> Source {
        let pr = &e.pull_request;
        let (mut mergeable, mut merge_commit) = (pr.mergeable, pr.merge_commit_sha.clone());
        if mergeable.is_none() {
            if let Some(github) = &self.github {
                let ask = github.pull_request(repo, pr.number);
                match tokio::time::timeout(std::time::Duration::from_secs(3), ask).await {
                    // Only a merge GitHub computed for this very head: a later push's is not
                    // what this event (or a fork's approval of it) is about.
                    Ok(Ok(facts)) => (mergeable, merge_commit) = facts.merge_for(&pr.head.sha),
                    Ok(Err(err)) => warn!(error = %err, "could not ask GitHub about mergeability; using the head"),
                    Err(_) => warn!("GitHub did not answer about mergeability in time; using the head"),
                }
            }
        }
        Source::choose(&pr.head.sha, mergeable, merge_commit.as_deref())
    }

    async fn is_maintainer(&self, repo: &RepoName, login: &str) -> bool {
        let Some(github) = &self.github else {
            warn!("no GitHub credentials: fork approvals cannot be verified");
            return false;
        };
        match github.permission(repo, login).await {
            Ok(p) => matches!(p.as_str(), "admin" | "maintain" | "write"),
            Err(err) => {
                warn!(error = %err, "could not check the approver's permission");
                false
            }
        }
    }

    /// Tells the pull request why nothing was deployed (best effort).
    async fn not_deployed(&self, name: &EnvironmentName, repo: &RepoName, e: &PullRequestEvent, why: &str) {
        let event = PlatformEvent::not_deployed(name, repo, e.pull_request.number, &e.pull_request.head.sha, why);
        if let Err(err) = self.bus.publish(&[event]).await {
            warn!(error = %err, "could not announce that nothing was deployed");
        }
    }

    fn expiry_for(&self, repo: &RepoName) -> ExpiryPolicy {
        self.expiry_with(repo, None)
    }

    /// The repository's expiry: its own TTL (`.ephemera.yml`) first, then the operator's for it
    /// (`EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY`), then the default.
    fn expiry_with(&self, repo: &RepoName, own_ttl: Option<chrono::Duration>) -> ExpiryPolicy {
        let configured = self.settings.pr_ttl_by_repository.get(&repo.canonical()).copied();
        match own_ttl.or(configured) {
            Some(ttl) => ExpiryPolicy { pr_inactivity: ttl, ..self.settings.expiry },
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
