//! Ports: what the services need from the outside world. The AWS adapters implement them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::admission::{Claim, Take};
use ephemera_domain::catalogue::Leftover;
use ephemera_domain::placement::{Routes, Target};
use ephemera_domain::sweep::{ResourceInfo, StackInfo};
use ephemera_domain::{
    CommitSource, Desired, Environment, EnvironmentKind, EnvironmentName, EventOrder, RepoName, Reported, StackName,
    StackStatus, Status, TagSet,
};

use crate::events::PlatformEvent;

/// A failure in an adapter. `Retryable` failures (throttling, timeouts, 5xx) may succeed if the
/// same request is made again later; `Permanent` ones will not.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("{operation} failed (retryable): {message}")]
    Retryable { operation: &'static str, message: String },
    #[error("{operation} failed: {message}")]
    Permanent { operation: &'static str, message: String },
}

impl PortError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PortError::Retryable { .. })
    }
}

/// A change of desired state, as the webhook intake records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub name: EnvironmentName,
    pub kind: EnvironmentKind,
    pub repository: Option<RepoName>,
    pub pull_request: Option<u64>,
    pub owner: String,
    /// The commit to run; for `Down`, the last one seen (kept on the record).
    pub commit: Option<String>,
    pub head_ref: Option<String>,
    /// The pull request's head commit and base branch, and what `commit` is.
    pub head_commit: Option<String>,
    pub base_ref: Option<String>,
    pub source: Option<CommitSource>,
    /// A close that was a merge (kept on the record: the baseline may move).
    pub merged: bool,
    pub desired: Desired,
    /// Why, kept as the status reason (a merge, a close, a label).
    pub reason: Option<String>,
    pub order: EventOrder,
    pub expires_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
    /// Only if the record is still at this generation (0: only if there is no record). A
    /// change decided on what was read (a developer's own request) cannot then overwrite one
    /// made meanwhile: another principal's, or the reaper's.
    pub expected_generation: Option<u64>,
}

impl Change {
    /// A change with what every change has; the optional facts are unset (set them with struct
    /// update syntax: `Change { commit, ..Change::new(..) }`).
    pub fn new(
        name: EnvironmentName,
        kind: EnvironmentKind,
        owner: impl Into<String>,
        desired: Desired,
        order: EventOrder,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            name,
            kind,
            repository: None,
            pull_request: None,
            owner: owner.into(),
            commit: None,
            head_ref: None,
            head_commit: None,
            base_ref: None,
            source: None,
            merged: false,
            desired,
            reason: None,
            order,
            expires_at,
            at,
            expected_generation: None,
        }
    }
}

impl Change {
    /// A change of `env` decided on it as read (`expected_generation`): refused if anything
    /// changed it meanwhile. It keeps what the row records of its commit and pull request.
    pub fn decided_on(
        env: &Environment,
        desired: Desired,
        order: EventOrder,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            repository: env.repository.clone(),
            pull_request: env.pull_request,
            commit: env.commit.clone(),
            head_ref: env.head_ref.clone(),
            head_commit: env.head_commit.clone(),
            base_ref: env.base_ref.clone(),
            source: env.source,
            merged: env.merged,
            expected_generation: Some(env.generation),
            ..Change::new(env.name.clone(), env.kind, env.owner.clone(), desired, order, expires_at, at)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Recorded; the environment's generation is now this.
    Accepted { generation: u64 },
    /// This delivery id was seen before; nothing changed.
    Duplicate,
    /// An event at least as recent is already recorded; nothing changed.
    Stale,
    /// The name is taken by another repository's environment (a hash collision); refused.
    Conflict(String),
}

/// Which generation a write is for (it is made only while the environment is still at it), and
/// when it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub generation: u64,
    pub at: DateTime<Utc>,
}

impl Stamp {
    pub fn new(generation: u64, at: DateTime<Utc>) -> Self {
        Self { generation, at }
    }
}

/// A reconciler's hold on one environment: taken if free, expired (`until` before `now`), or
/// already this holder's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub now: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What the provisioner records as it goes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    pub status: Option<Status>,
    pub reason: Option<String>,
    pub stack_id: Option<String>,
    pub outputs: Option<BTreeMap<String, String>>,
    pub preview_url: Option<String>,
    /// The generation's outcome is final: `observed_generation` moves up to it.
    pub settled: bool,
    /// Where its stack is about to be created: recorded once, kept for the environment's life.
    pub placement: Option<Placement>,
}

/// The account (None: the platform's own) and region an environment lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub account: Option<String>,
    pub region: String,
}

/// A stack's status as CloudFormation reported it in a "Stack Status Change" event.
#[derive(Debug, Clone, PartialEq)]
pub struct StackStatusUpdate {
    pub stack_id: String,
    pub status: Status,
    pub reason: Option<String>,
    /// For a stack that became ready: its outputs and the preview URL from them.
    pub outputs: Option<BTreeMap<String, String>>,
    pub preview_url: Option<String>,
    /// The event's own time, in ms since the epoch.
    pub at_ms: i64,
}

/// Reading environments: every service.
#[async_trait]
pub trait Environments: Send + Sync {
    async fn get(&self, name: &EnvironmentName) -> Result<Option<Environment>, PortError>;
    /// Every environment, all kinds.
    async fn list(&self) -> Result<Vec<Environment>, PortError>;
    /// At most `limit` environments in name order (`kind` only, if given), after `after`;
    /// `next` is where the following page starts, None after the last.
    async fn page(
        &self,
        kind: Option<EnvironmentKind>,
        after: Option<&EnvironmentName>,
        limit: usize,
    ) -> Result<Page, PortError>;
}

/// One page of environments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub environments: Vec<Environment>,
    /// The last name of this page, when there may be more.
    pub next: Option<EnvironmentName>,
}

/// Recording desired state: the webhook intake and developer self-service.
#[async_trait]
pub trait DesiredState: Environments {
    /// Records `change` unless `delivery` was seen before or a later event is already recorded.
    /// Atomic: the delivery mark and the change are written together or not at all.
    async fn apply_change(&self, delivery: &str, change: &Change) -> Result<ChangeOutcome, PortError>;
    /// Pins (or unpins) an environment: the reaper never touches a preserved one.
    /// Sets `preserved`, and when it lapses: `until` None means never (it removes any time set).
    async fn set_preserved(
        &self,
        name: &EnvironmentName,
        preserved: bool,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, PortError>;
    /// Marks `delivery` (about an environment, or an installation) as acted on, unless it was
    /// marked before: true the first time. The mark expires as `apply_change`'s do.
    async fn mark_delivery(&self, delivery: &str, about: &str, at: DateTime<Utc>) -> Result<bool, PortError>;
    /// Removes a delivery's mark: the command could not be carried out, and a redelivery may be.
    async fn unmark_delivery(&self, delivery: &str) -> Result<(), PortError>;
    /// Moves the environment's expiry, forgetting any notice given of the old one; false if
    /// there is no such environment.
    async fn set_expiry(&self, name: &EnvironmentName, expires_at: DateTime<Utc>) -> Result<bool, PortError>;
}

/// Recording an environment's estimated cost: the provisioner (at creation) and the reaper.
#[async_trait]
pub trait CostLog: Environments {
    /// The environment's estimated cost: monthly run rate and accrued so far, in USD.
    async fn record_cost(&self, name: &EnvironmentName, monthly_usd: f64, accrued_usd: f64) -> Result<(), PortError>;
}

/// Reconciling one environment: the provisioner.
#[async_trait]
pub trait Reconciliation: CostLog {
    /// Takes the environment's lease (one reconciler at a time) if free or expired.
    async fn try_lease(&self, name: &EnvironmentName, lease: &Lease) -> Result<bool, PortError>;
    async fn release_lease(&self, name: &EnvironmentName, holder: &str) -> Result<(), PortError>;
    /// Records progress for the stamp's generation; false (and nothing written) if the
    /// environment has moved on to a later generation.
    async fn record_progress(&self, name: &EnvironmentName, stamp: Stamp, p: &Progress) -> Result<bool, PortError>;
}

/// How the reaper sends an environment down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoDown {
    /// `PENDING`, for the provisioner to delete its stack.
    Request,
    /// Already `DELETED`: nothing is left in AWS.
    Retire,
}

/// Sending environments down on the platform's own judgement: the reaper.
#[async_trait]
pub trait Sweeping: CostLog {
    /// Desired down with `reason`, as a new generation, if still at the stamp's generation;
    /// false (and nothing written) if the environment has moved on.
    async fn go_down(&self, name: &EnvironmentName, stamp: Stamp, how: GoDown, reason: &str)
        -> Result<bool, PortError>;
    /// Records that the environment was noticed as expiring soon, unless a notice was recorded
    /// at or after `since` (its notice window's start): true if recorded.
    async fn record_notice(
        &self,
        name: &EnvironmentName,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<bool, PortError>;
}

/// CloudFormation's status events: the stack-events function.
#[async_trait]
pub trait StackStatusLog: Environments {
    /// Records a stack status event, unless the record already holds news at least as recent
    /// (`status_at`) or is about another stack of the same name. False if nothing was written.
    async fn record_stack_status(&self, name: &EnvironmentName, update: &StackStatusUpdate) -> Result<bool, PortError>;
}

/// What was reported back to GitHub: the notifier.
#[async_trait]
pub trait NotifiedLog: Environments {
    /// Remembers what was last reported back to GitHub for this environment.
    async fn record_notified(&self, name: &EnvironmentName, reported: &Reported) -> Result<(), PortError>;
}

/// One thing that happened to an environment: an event announced about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// When it was announced, in ms since the epoch.
    pub at_ms: i64,
    /// The event's detail type (`Environment.Ready`, ...).
    pub what: String,
    pub status: Status,
    pub desired: Desired,
    pub generation: u64,
    pub reason: Option<String>,
}

/// What happened to each environment, and what its stack holds: written as events are
/// announced and stacks settle, read by the dashboard's environment page.
#[async_trait]
pub trait History: Send + Sync {
    /// Records one entry; the same entry twice is kept once.
    async fn record_event(&self, name: &EnvironmentName, entry: &TimelineEntry) -> Result<(), PortError>;
    /// The latest `limit` entries, oldest first.
    async fn timeline(&self, name: &EnvironmentName, limit: usize) -> Result<Vec<TimelineEntry>, PortError>;
    /// Replaces what is recorded of the environment's stack resources.
    async fn record_resources(&self, name: &EnvironmentName, resources: &[StackResource]) -> Result<(), PortError>;
    async fn resources(&self, name: &EnvironmentName) -> Result<Vec<StackResource>, PortError>;
}

/// The registry of environments (DynamoDB in AWS): every narrow port above. Adapters implement
/// the parts; this is what wiring and the conformance suite hold.
pub trait Registry: DesiredState + Reconciliation + Sweeping + StackStatusLog + NotifiedLog + Ledger + History {}

impl<T: DesiredState + Reconciliation + Sweeping + StackStatusLog + NotifiedLog + Ledger + History + ?Sized> Registry
    for T
{
}

/// One resource of a stack.
#[derive(Debug, Clone, PartialEq)]
pub struct StackResource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    pub status: StackStatus,
}

/// Where the sweep finds resources that may be an environment's: the Resource Groups Tagging
/// API, and each kind's own listing where the Tagging API does not reach (see
/// [`ephemera_domain::catalogue`]).
#[async_trait]
pub trait Inventory: Send + Sync {
    /// Every resource tagged `ephemera:managed-by=ephemera`, and every untagged one of a kind
    /// owned by its name that is named like the platform's, following pagination.
    async fn found(&self) -> Result<Vec<ResourceInfo>, PortError>;
    /// Those of them named for `environment` (tagged for it, or untagged and owned by name).
    async fn found_for(&self, environment: &EnvironmentName) -> Result<Vec<ResourceInfo>, PortError>;
    /// Whether anything is tagged for `environment`, through the Tagging API alone: one
    /// indexed lookup, where `found_for` also lists kinds (IAM, Cognito) account-wide.
    async fn any_tagged_for(&self, environment: &EnvironmentName) -> Result<bool, PortError>;
}

/// Deleting resources outside CloudFormation (orphans, and what blocked a stack's deletion).
#[async_trait]
pub trait Cleaner: Send + Sync {
    /// Deletes one resource completely, as its catalogue entry says (a bucket must have been
    /// emptied through the [`ObjectStore`]). One that is gone already is fine.
    async fn delete(&self, leftover: &Leftover) -> Result<(), PortError>;
}

/// A stack as CloudFormation describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct StackView {
    pub stack_id: String,
    pub status: StackStatus,
    pub reason: Option<String>,
    pub tags: Vec<(String, String)>,
    pub outputs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StackRequest {
    pub name: StackName,
    pub template_body: String,
    pub parameters: Vec<(String, String)>,
    pub tags: TagSet,
    /// Idempotency: a retried request with the same token is not mistaken for a new one.
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    Started,
    NoChanges,
}

/// CloudFormation.
#[async_trait]
pub trait Stacks: Send + Sync {
    /// None when there is no such stack (or it was deleted).
    async fn describe(&self, name: &StackName) -> Result<Option<StackView>, PortError>;
    async fn create(&self, request: &StackRequest) -> Result<String, PortError>;
    async fn update(&self, request: &StackRequest) -> Result<UpdateOutcome, PortError>;
    async fn delete(&self, name: &StackName, token: &str) -> Result<(), PortError>;
    /// Physical names of the stack's S3 buckets.
    async fn buckets(&self, name: &StackName) -> Result<Vec<String>, PortError>;
    /// Every stack whose name starts with `ephemera-`, following pagination.
    async fn list(&self) -> Result<Vec<StackInfo>, PortError>;
    async fn resources(&self, name: &StackName) -> Result<Vec<StackResource>, PortError>;
    /// Deletes the stack but keeps `retain` (logical ids), for a stack whose deletion failed.
    async fn delete_retaining(&self, name: &StackName, token: &str, retain: &[String]) -> Result<(), PortError>;
}

/// S3.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn get_text(&self, bucket: &str, key: &str) -> Result<Option<String>, PortError>;
    async fn put_text(&self, bucket: &str, key: &str, body: &str) -> Result<(), PortError>;
    /// Keys under `prefix`, following pagination.
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, PortError>;
    /// Deletes every object and object version; a bucket that does not exist is already empty.
    /// Returns how many were deleted.
    async fn empty_bucket(&self, bucket: &str) -> Result<u64, PortError>;
}

/// DynamoDB, for an environment's own tables: loading seed data.
#[async_trait]
pub trait Seeder: Send + Sync {
    /// Writes every item (plain JSON objects), retrying what DynamoDB leaves unprocessed.
    async fn put_items(
        &self,
        table: &str,
        items: &[serde_json::Map<String, serde_json::Value>],
    ) -> Result<usize, PortError>;
}

/// EventBridge.
#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, events: &[PlatformEvent]) -> Result<(), PortError>;
}

/// GitHub, for what the platform asks of it and reports back to it. Absent when no GitHub
/// credentials are configured: then previews are built from head commits and nothing is reported.
#[async_trait]
pub trait GitHubApi: Send + Sync {
    /// The pull request as GitHub has it now: its head, and whether it merges cleanly.
    async fn pull_request(&self, repo: &RepoName, number: u64) -> Result<PullFacts, PortError>;
    /// The user's permission on the repository: `admin`, `maintain`, `write`, `triage`, `read`, `none`.
    async fn permission(&self, repo: &RepoName, login: &str) -> Result<String, PortError>;
    /// Creates or edits in place the comment carrying `marker`; returns its id.
    async fn upsert_comment(&self, repo: &RepoName, number: u64, marker: &str, body: &str) -> Result<u64, PortError>;
    /// The deployment of `sha` to `environment`, created if needed.
    async fn ensure_deployment(
        &self,
        repo: &RepoName,
        sha: &str,
        environment: &str,
        description: &str,
    ) -> Result<u64, PortError>;
    async fn latest_deployment(&self, repo: &RepoName, environment: &str) -> Result<Option<u64>, PortError>;
    async fn deployment_status(
        &self,
        repo: &RepoName,
        deployment: u64,
        state: &str,
        environment_url: Option<&str>,
        description: &str,
    ) -> Result<(), PortError>;
    async fn commit_status(
        &self,
        repo: &RepoName,
        sha: &str,
        state: &str,
        context: &str,
        description: &str,
    ) -> Result<(), PortError>;
    /// The App installation a delivery named for `repo`: spares looking it up (App only).
    fn remember_installation(&self, _repo: &RepoName, _installation: u64) {}
    /// Whether check runs can be used (GitHub opens them to Apps only); else commit statuses.
    fn has_checks(&self) -> bool;
    /// The check run `run.name` on `sha`, created or moved to `run.state`.
    async fn check_run(&self, repo: &RepoName, sha: &str, run: &CheckRun) -> Result<(), PortError>;
    /// A file's text in the repository at `commit`; None if there is none.
    async fn file(&self, repo: &RepoName, path: &str, commit: &str) -> Result<Option<String>, PortError>;
    /// The files changed from `base` to `head`; None when GitHub cannot list them all.
    async fn changed_files(&self, repo: &RepoName, base: &str, head: &str) -> Result<Option<Vec<String>>, PortError>;
    /// Reacts to a comment (`+1`, `-1`, `confused`, `eyes`, ...).
    async fn react(&self, repo: &RepoName, comment_id: u64, content: &str) -> Result<(), PortError>;
    /// A new comment (not the sticky one): a reply to a command.
    async fn reply(&self, repo: &RepoName, number: u64, body: &str) -> Result<(), PortError>;
}

/// What a read of GitHub came to, and the requests GitHub's rate limit has left
/// (`X-RateLimit-Remaining`), when it said.
#[derive(Debug, Clone, PartialEq)]
pub struct GitHubRead<T> {
    pub answer: Answer<T>,
    pub remaining: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Answer<T> {
    /// The body, and its `ETag` for a conditional request next time.
    Fresh { value: T, etag: Option<String> },
    /// 304: unchanged since the `ETag` sent; it cost no rate limit.
    NotModified,
    /// 403, 404 or 410: not there, or not reachable with these credentials (the App is not
    /// installed on it, the token may not read it).
    Inaccessible(String),
    /// GitHub asked to wait (a rate limit, `Retry-After`): ask nothing more now.
    Limited(String),
}

/// One page of a repository's open pull requests, as GitHub lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct PullsPage {
    pub pulls: Vec<ephemera_domain::catch_up::OpenPull>,
    /// Another page follows.
    pub more: bool,
}

/// A webhook whose deliveries can be listed: the App's own, or one repository's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    App,
    Repository { repo: RepoName, id: u64 },
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hook::App => f.write_str("the App's webhook"),
            Hook::Repository { repo, id } => write!(f, "{repo}'s webhook {id}"),
        }
    }
}

/// One page of a hook's delivery attempts, newest first; `next` is the cursor of the next.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveriesPage {
    pub attempts: Vec<ephemera_domain::catch_up::DeliveryAttempt>,
    pub next: Option<String>,
}

/// GitHub, for the sweep catching up with what deliveries missed: reads that say what the rate
/// limit has left, and ask nothing of a page unchanged since its `ETag`.
#[async_trait]
pub trait GitHubCatchUp: Send + Sync {
    /// Page `page` (from 1) of the repository's open pull requests, a hundred a page.
    async fn open_pulls(
        &self,
        repo: &RepoName,
        page: u32,
        etag: Option<&str>,
    ) -> Result<GitHubRead<PullsPage>, PortError>;
    /// One pull request, whole, as a webhook payload carries it.
    async fn pull(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<GitHubRead<ephemera_github_webhook::payload::PullRequest>, PortError>;
    /// The hooks whose deliveries are listed: the App's, or the repositories' configured.
    fn hooks(&self) -> Vec<Hook>;
    async fn deliveries(&self, hook: &Hook, cursor: Option<&str>) -> Result<GitHubRead<DeliveriesPage>, PortError>;
    /// Asks GitHub to send a delivery attempt again.
    async fn redeliver(&self, hook: &Hook, attempt: u64) -> Result<GitHubRead<()>, PortError>;
}

/// A check run as the notifier reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    pub name: &'static str,
    pub state: CheckState,
    pub title: String,
    /// Markdown.
    pub summary: String,
    /// The environment's page on the dashboard.
    pub details_url: Option<String>,
}

/// Where a check run is: GitHub's `queued`, `in_progress`, or `completed` with a conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckState {
    Queued,
    InProgress,
    Success,
    Failure,
}

impl CheckState {
    /// GitHub's `status` and `conclusion`.
    pub fn github(self) -> (&'static str, Option<&'static str>) {
        match self {
            CheckState::Queued => ("queued", None),
            CheckState::InProgress => ("in_progress", None),
            CheckState::Success => ("completed", Some("success")),
            CheckState::Failure => ("completed", Some("failure")),
        }
    }
}

/// What GitHub says of a pull request now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullFacts {
    /// The head commit (lowercase), and the head and base branches.
    pub head: Option<String>,
    pub head_ref: Option<String>,
    pub base_ref: Option<String>,
    /// Whether the head merges cleanly into the base: None while GitHub computes it.
    pub mergeable: Option<bool>,
    /// GitHub's test merge of that head.
    pub merge_commit: Option<String>,
    /// Closed or merged.
    pub closed: bool,
}

impl PullFacts {
    /// The test merge, only if GitHub computed it for `head` (not for a later push).
    pub fn merge_for(&self, head: &str) -> (Option<bool>, Option<String>) {
        match &self.head {
            Some(h) if h.eq_ignore_ascii_case(head) => (self.mergeable, self.merge_commit.clone()),
            _ => (None, None),
        }
    }
}

/// Smoke checks and load tests against a preview (HTTP in production).
#[async_trait]
pub trait Prober: Send + Sync {
    /// Each check once; Err if the preview URL may not be probed.
    async fn smoke(
        &self,
        preview_url: &str,
        checks: &[ephemera_domain::perf::SmokeCheck],
    ) -> Result<Vec<ephemera_domain::perf::SmokeResult>, PortError>;
    /// The load test: `scenario` on the preview, with the environment's `api_key` when the
    /// scenario sends it. Err if the preview may not be probed or the scenario cannot be sent.
    async fn load(
        &self,
        preview_url: &str,
        plan: &ephemera_domain::perf::LoadPlan,
        scenario: &ephemera_domain::perf::Scenario,
        api_key: Option<&str>,
    ) -> Result<Vec<ephemera_domain::perf::Sample>, PortError>;
}

/// AppSync API keys: a developer's client key (self-service), the load test's own (notifier).
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// A new API key for `api_id`, expiring at `expires` (epoch seconds).
    async fn create(&self, api_id: &str, expires: i64, description: &str) -> Result<String, PortError>;
    /// Deletes the key; one already gone is not an error.
    async fn delete(&self, api_id: &str, key: &str) -> Result<(), PortError>;
}

/// What taking a claim came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Held now: the claim just taken, or the one the environment already held (nothing is
    /// counted twice; its account is where the environment was placed).
    Admitted(Claim),
    /// `full` would pass its limit at `totals`; nothing was taken.
    Refused { full: Take, totals: BTreeMap<String, i64> },
}

/// Running totals for admission (see [`ephemera_domain::admission`]): the provisioner takes and
/// gives back claims, self-service reads the totals.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Every running total, by counter.
    async fn totals(&self) -> Result<BTreeMap<String, i64>, PortError>;
    /// Takes `claim` for `env`, all of it or nothing, unless a total would pass its limit:
    /// atomic, so concurrent claims cannot both take the last slot.
    async fn claim(&self, env: &EnvironmentName, claim: &Claim) -> Result<Admit, PortError>;
    /// Gives back what `env` holds; false if it held nothing.
    async fn release(&self, env: &EnvironmentName) -> Result<bool, PortError>;
    /// The claim `env` holds, if any.
    async fn held(&self, env: &EnvironmentName) -> Result<Option<Claim>, PortError>;
    /// Every environment holding a claim (the full sweep mends the totals with them).
    async fn holders(&self) -> Result<Vec<EnvironmentName>, PortError>;
}

/// What acts in one place (an account and region): its stacks, the buckets and tables its
/// environments create, and what finds and deletes their leftovers.
#[derive(Clone)]
pub struct Site {
    pub stacks: Arc<dyn Stacks>,
    pub store: Arc<dyn ObjectStore>,
    pub seeder: Arc<dyn Seeder>,
    pub inventory: Arc<dyn Inventory>,
    pub cleaner: Arc<dyn Cleaner>,
    /// Its environments' AppSync API keys.
    pub keys: Arc<dyn ApiKeys>,
}

/// Reaching the places environments live: the platform's own account, or a deploy target's
/// (its role assumed, credentials cached until shortly before they expire).
#[async_trait]
pub trait Sites: Send + Sync {
    /// Acting for `environment` (its session tag) at `target` (None: the platform's own account).
    /// Err if the target's role cannot be assumed.
    async fn for_environment(&self, target: Option<&Target>, environment: &EnvironmentName) -> Result<Site, PortError>;
    /// Acting for the sweep of `target`'s whole account.
    async fn for_sweep(&self, target: Option<&Target>) -> Result<Site, PortError>;
    /// The platform's own account id (a deploy target in it is the platform's own place).
    async fn own_account(&self) -> Result<String, PortError>;

    /// Acting for `env` where it lives (its recorded account, one of `routes`' targets).
    async fn of(&self, routes: &Routes, env: &Environment) -> Result<Site, PortError> {
        let target = match &env.account {
            Some(a) => Some(routes.in_account(a).ok_or_else(|| PortError::Permanent {
                operation: "reach the environment's account",
                message: format!("{} lives in account {a}, which is not a deploy target", env.name),
            })?),
            None => None,
        };
        self.for_environment(target, &env.name).await
    }
}

/// The registry's traits, for code that holds a concrete registry and calls it directly:
/// `use ephemera_app::ports::registry_traits::*;`.
pub mod registry_traits {
    pub use super::{
        CostLog as _, DesiredState as _, Environments as _, History as _, Ledger as _, NotifiedLog as _,
        Reconciliation as _, StackStatusLog as _, Sweeping as _,
    };
}
