//! The reaper: compares the registry, CloudFormation and the tagging API, and cleans up what
//! outlived its purpose (see [`ephemera_domain::sweep`] for the decisions).
//!
//! Registered environments are sent down through the provisioner (a new generation with the
//! reason, then `Environment.Requested`), which empties buckets and records the outcome. Stacks
//! and resources no environment owns are deleted here. Every mutating call is rate-limited and
//! retried with backoff when throttled; one failure never stops the sweep. A dry run decides
//! the same and changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ephemera_domain::cost::{accrued, resource_type_of, round_cents, PriceTable};
use ephemera_domain::sweep::{self, Action, Reason, Skip, SweepPolicy};
use ephemera_domain::{Desired, Environment, EnvironmentName, RetryPolicy, StackName, StackStatus, Status};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::events::PlatformEvent;
use crate::leftovers::delete_resource;
use crate::ports::Stamp;
use crate::ports::{Cleaner, EventBus, GoDown, Inventory, ObjectStore, PortError, Stacks, Sweeping};

/// The reaper's settings, read by [`crate::Config`].
#[derive(Debug, Clone)]
pub struct ReaperSettings {
    /// `EPHEMERA_REAPER_STUCK_MINUTES` (default 120): an operation in progress longer is stuck.
    pub stuck_after: chrono::Duration,
    /// `EPHEMERA_REAPER_GRACE_MINUTES` (default 10): a row claiming a vanished stack is retired after this.
    pub grace: chrono::Duration,
    /// `EPHEMERA_EXPIRY_NOTICE_HOURS` (default 24): notice is recorded this long before expiry.
    pub notice_before: chrono::Duration,
    /// `EPHEMERA_REAPER_ALLOWED_ACCOUNTS`, `EPHEMERA_REAPER_ALLOWED_REGIONS`: comma-separated; empty means any.
    pub allowed_accounts: Vec<String>,
    pub allowed_regions: Vec<String>,
    /// `EPHEMERA_REAPER_CALLS_PER_SECOND` (default 5): mutating calls per second, at most.
    pub calls_per_second: f64,
    /// `EPHEMERA_PRICE_TABLE`: overrides of the cost table, `AWS::S3::Bucket=0.2,...`.
    pub prices: PriceTable,
    /// `EPHEMERA_REAPER_REPAIR_WAIT_SECONDS` (default 60): how long a repair waits for a retried
    /// delete before retaining what blocks it.
    pub repair_wait: Duration,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SweepOptions {
    pub dry_run: bool,
    /// Registry and stacks only (the frequent sweep); no tagging-API scan for orphan resources.
    pub light: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub action: &'static str,
    pub target: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostSummary {
    /// Environments with a stack, and their estimated monthly run rate (USD).
    pub live_environments: usize,
    pub monthly_usd: f64,
    /// Estimated cost so far of every environment the registry knows (USD).
    pub accrued_usd: f64,
}

/// The run's report: logged as JSON, and as CloudWatch metrics (EMF).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub light: bool,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u128,
    pub environments: usize,
    pub stacks: usize,
    pub resources: usize,
    /// Counts by action, then by reason (what was done, or in a dry run what would be).
    pub actions: BTreeMap<String, BTreeMap<Reason, u64>>,
    pub planned: Vec<Action>,
    pub skipped: Vec<Skip>,
    pub errors: Vec<Failure>,
    pub cost: Option<CostSummary>,
    /// Operations made: each call, each retry; a paginated listing counts once.
    pub operations: u64,
}

impl Summary {
    /// The summary as one CloudWatch Embedded Metric Format document.
    pub fn emf(&self, namespace: &str) -> serde_json::Value {
        let count = |kind: &str| self.actions.get(kind).map(|m| m.values().sum::<u64>()).unwrap_or(0);
        let mut doc = serde_json::json!({
            "_aws": {
                "Timestamp": self.started_at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["Sweep"]],
                    "Metrics": [
                        {"Name": "StacksDeleted", "Unit": "Count"},
                        {"Name": "EnvironmentsSentDown", "Unit": "Count"},
                        {"Name": "StacksRepaired", "Unit": "Count"},
                        {"Name": "ResourcesDeleted", "Unit": "Count"},
                        {"Name": "RowsRetired", "Unit": "Count"},
                        {"Name": "Errors", "Unit": "Count"},
                        {"Name": "DurationMs", "Unit": "Milliseconds"},
                        {"Name": "EstimatedMonthlyUsd", "Unit": "None"}
                    ]
                }]
            },
            "Sweep": if self.light { "light" } else { "full" },
            "DryRun": self.dry_run,
            "StacksDeleted": count("delete_stack"),
            "EnvironmentsSentDown": count("request_down"),
            "StacksRepaired": count("repair_stack"),
            "ResourcesDeleted": count("delete_resource"),
            "RowsRetired": count("retire"),
            "Errors": self.errors.len(),
            "DurationMs": self.duration_ms as u64,
        });
        doc["EstimatedMonthlyUsd"] = serde_json::json!(self.cost.as_ref().map(|c| c.monthly_usd).unwrap_or(0.0));
        doc
    }
}

/// At most one mutating call per interval.
struct RateLimit {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 { per_second } else { 1.0 };
        Self { interval: Duration::from_secs_f64(1.0 / per_second), next: Mutex::new(Instant::now()) }
    }
    async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

pub struct Reaper {
    pub registry: Arc<dyn Sweeping>,
    pub stacks: Arc<dyn Stacks>,
    pub inventory: Arc<dyn Inventory>,
    pub store: Arc<dyn ObjectStore>,
    pub cleaner: Arc<dyn Cleaner>,
    pub bus: Arc<dyn EventBus>,
    pub clock: Arc<dyn Clock>,
    pub settings: ReaperSettings,
}

impl Reaper {
    /// One sweep. Errs only when the facts cannot be gathered; failures of single actions are
    /// in the summary.
    #[instrument(skip(self))]
    pub async fn sweep(&self, opts: SweepOptions) -> Result<Summary, PortError> {
        let started = Instant::now();
        let now = self.clock.now();
        let mut calls = 0u64;
        let limit = RateLimit::new(self.settings.calls_per_second);
        // Resources before stacks: a resource whose stack is being created right now is then
        // seen with its stack, never as an orphan. A throttled or failed listing is retried:
        // without all three facts nothing can be decided.
        let resources =
            if opts.light { Vec::new() } else { retry(&limit, &mut calls, || self.inventory.tagged()).await? };
        let stacks = retry(&limit, &mut calls, || self.stacks.list()).await?;
        let envs = retry(&limit, &mut calls, || self.registry.list()).await?;
        let policy = SweepPolicy {
            now,
            stuck_after: self.settings.stuck_after,
            grace: self.settings.grace,
            notice_before: self.settings.notice_before,
            allowed_accounts: self.settings.allowed_accounts.clone(),
            allowed_regions: self.settings.allowed_regions.clone(),
            include_resources: !opts.light,
        };
        let plan = sweep::plan(&envs, &stacks, &resources, &policy);
        for s in &plan.skipped {
            info!(target = %s.target, why = s.why, "left alone");
        }

        let by_name: HashMap<&str, &Environment> = envs.iter().map(|e| (e.name.as_str(), e)).collect();
        let mut done = Vec::new();
        let mut errors = Vec::new();
        for action in &plan.actions {
            info!(action = action.kind(), reason = ?action.reason(), dry_run = opts.dry_run, ?action, "reap");
            if opts.dry_run {
                done.push(action.clone());
                continue;
            }
            match self.act(action, &by_name, &limit, &mut calls).await {
                Ok(true) => done.push(action.clone()),
                Ok(false) => info!(action = action.kind(), "superseded by a newer change; left to the next sweep"),
                Err(e) => {
                    warn!(action = action.kind(), error = %e, "reap action failed");
                    errors.push(Failure { action: action.kind(), target: target(action), error: e.to_string() });
                }
            }
        }

        let cost = if opts.light {
            None
        } else {
            Some(self.costs(&envs, &stacks, &resources, now, opts.dry_run, &limit, &mut calls).await)
        };
        let summary = Summary {
            dry_run: opts.dry_run,
            light: opts.light,
            started_at: now,
            duration_ms: started.elapsed().as_millis(),
            environments: envs.len(),
            stacks: stacks.len(),
            resources: resources.len(),
            actions: sweep::counts(&done),
            planned: plan.actions,
            skipped: plan.skipped,
            errors,
            cost,
            operations: calls,
        };
        Ok(summary)
    }

    async fn act(
        &self,
        action: &Action,
        envs: &HashMap<&str, &Environment>,
        limit: &RateLimit,
        calls: &mut u64,
    ) -> Result<bool, PortError> {
        let now = self.clock.now();
        match action {
            Action::RequestDown { environment, generation, reason } => {
                let why = describe(*reason);
                let moved = retry(limit, calls, || {
                    self.registry.go_down(environment, Stamp::new(*generation, now), GoDown::Request, why)
                })
                .await?;
                if moved {
                    if let Some(env) = self.registry.get(environment).await? {
                        let event = [PlatformEvent::requested(&env)];
                        retry(limit, calls, || self.bus.publish(&event)).await?;
                    }
                }
                Ok(moved)
            }
            Action::Nudge { environment, .. } => {
                let Some(env) = envs.get(environment.as_str()) else { return Ok(false) };
                let event = [PlatformEvent::requested(env)];
                retry(limit, calls, || self.bus.publish(&event)).await?;
                Ok(true)
            }
            Action::Retire { environment, generation, reason } => {
                retry(limit, calls, || {
                    self.registry.go_down(environment, Stamp::new(*generation, now), GoDown::Retire, describe(*reason))
                })
                .await
            }
            Action::Notice { environment, .. } => {
                let first = retry(limit, calls, || self.registry.record_notice(environment, now)).await?;
                if first {
                    if let Some(env) = envs.get(environment.as_str()) {
                        let event = PlatformEvent {
                            detail_type: "Environment.ExpiringSoon".into(),
                            ..PlatformEvent::status(env, env.status, None)
                        };
                        retry(limit, calls, || self.bus.publish(std::slice::from_ref(&event))).await?;
                    }
                }
                Ok(true)
            }
            Action::DeleteStack { stack, .. } => {
                let name = stack_name(stack)?;
                self.empty_buckets(&name, limit, calls).await?;
                let token = reap_token("delete", &name, now);
                retry(limit, calls, || self.stacks.delete(&name, &token)).await?;
                Ok(true)
            }
            Action::RepairStack { stack, environment, reason } => {
                let name = stack_name(stack)?;
                self.repair(&name, now, limit, calls).await?;
                if let Some(env) = environment.as_ref().and_then(|e| envs.get(e.as_str())) {
                    // The row must not say a stack exists; a new push creates a fresh one.
                    let why = format!("{}; the reaper deleted the stack", describe(*reason));
                    retry(limit, calls, || {
                        self.registry.go_down(&env.name, Stamp::new(env.generation, now), GoDown::Retire, &why)
                    })
                    .await?;
                }
                Ok(true)
            }
            Action::DeleteResource { arn, .. } => {
                retry(limit, calls, || delete_resource(&*self.store, &*self.cleaner, arn)).await?;
                Ok(true)
            }
        }
    }

    async fn empty_buckets(&self, name: &StackName, limit: &RateLimit, calls: &mut u64) -> Result<(), PortError> {
        let buckets = retry(limit, calls, || self.stacks.buckets(name)).await?;
        for b in buckets {
            retry(limit, calls, || self.store.empty_bucket(&b)).await?;
        }
        Ok(())
    }

    /// Empties the buckets and deletes again; if the stack still cannot be deleted, deletes it
    /// retaining what failed, then removes those resources directly.
    async fn repair(
        &self,
        name: &StackName,
        now: DateTime<Utc>,
        limit: &RateLimit,
        calls: &mut u64,
    ) -> Result<(), PortError> {
        self.empty_buckets(name, limit, calls).await?;
        let token = reap_token("repair", name, now);
        retry(limit, calls, || self.stacks.delete(name, &token)).await?;
        let deadline = Instant::now() + self.settings.repair_wait;
        loop {
            let view = retry(limit, calls, || self.stacks.describe(name)).await?;
            match view.map(|v| v.status) {
                None => return Ok(()),
                Some(StackStatus::DeleteFailed) => break,
                Some(_) if Instant::now() >= deadline => {
                    return Err(PortError::Retryable {
                        operation: "repair stack",
                        message: format!("{name} is still being deleted; the next sweep looks again"),
                    })
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        let blocking: Vec<_> = retry(limit, calls, || self.stacks.resources(name))
            .await?
            .into_iter()
            .filter(|r| r.status == StackStatus::DeleteFailed)
            .collect();
        let retain: Vec<String> = blocking.iter().map(|r| r.logical_id.clone()).collect();
        warn!(stack = %name, ?retain, "deleting the stack without what blocks it");
        let token = reap_token("retain", name, now);
        retry(limit, calls, || self.stacks.delete_retaining(name, &token, &retain)).await?;
        for r in blocking {
            let Some(id) = r.physical_id.filter(|id| id.to_ascii_lowercase().starts_with(name.as_str())) else {
                continue;
            };
            match r.resource_type.as_str() {
                "AWS::S3::Bucket" => {
                    retry(limit, calls, || self.store.empty_bucket(&id)).await?;
                    retry(limit, calls, || self.cleaner.delete_bucket(&id)).await?;
                }
                "AWS::DynamoDB::Table" => retry(limit, calls, || self.cleaner.delete_table(&id)).await?,
                other => warn!(stack = %name, resource = %id, r#type = other, "retained resource left in place"),
            }
        }
        Ok(())
    }

    /// Each environment's estimate from its tagged resources; recorded on its row.
    #[allow(clippy::too_many_arguments)]
    async fn costs(
        &self,
        envs: &[Environment],
        stacks: &[ephemera_domain::sweep::StackInfo],
        resources: &[ephemera_domain::sweep::ResourceInfo],
        now: DateTime<Utc>,
        dry_run: bool,
        limit: &RateLimit,
        calls: &mut u64,
    ) -> CostSummary {
        let mut types: HashMap<&str, Vec<&'static str>> = HashMap::new();
        for r in resources {
            if let (Some(env), Some(t)) =
                (r.tags.iter().find(|(k, _)| k == ephemera_domain::tags::ENVIRONMENT), resource_type_of(&r.arn))
            {
                types.entry(env.1.as_str()).or_default().push(t);
            }
        }
        let live: std::collections::HashSet<String> = stacks
            .iter()
            .filter(|s| !s.status.is_deleted())
            .filter_map(|s| StackName::environment(&s.name))
            .map(|e| e.to_string())
            .collect();
        let (mut monthly_total, mut accrued_total, mut live_count) = (0.0, 0.0, 0);
        for e in envs {
            let is_live = live.contains(e.name.as_str());
            let monthly = match types.get(e.name.as_str()) {
                Some(t) => self.settings.prices.monthly_total(t.iter().copied()),
                None => e.cost_monthly_usd.unwrap_or(0.0),
            };
            let until = if is_live || e.desired == Desired::Up { now } else { e.updated_at };
            let so_far = accrued(monthly, e.created_at, until);
            if is_live {
                live_count += 1;
                monthly_total += monthly;
            }
            accrued_total += so_far;
            let changed = e.cost_monthly_usd != Some(monthly) || e.cost_accrued_usd != Some(so_far);
            if !dry_run && changed && (is_live || e.status != Status::Deleted || e.cost_accrued_usd.is_none()) {
                if let Err(err) = retry(limit, calls, || self.registry.record_cost(&e.name, monthly, so_far)).await {
                    warn!(environment = %e.name, error = %err, "could not record cost");
                }
            }
        }
        CostSummary {
            live_environments: live_count,
            monthly_usd: round_cents(monthly_total),
            accrued_usd: round_cents(accrued_total),
        }
    }
}

fn stack_name(stack: &str) -> Result<StackName, PortError> {
    StackName::environment(stack)
        .map(|e: EnvironmentName| e.stack_name())
        .ok_or(PortError::Permanent { operation: "reap", message: format!("{stack} is not an Ephemera stack name") })
}

fn target(action: &Action) -> String {
    match action {
        Action::RequestDown { environment, .. }
        | Action::Retire { environment, .. }
        | Action::Notice { environment, .. }
        | Action::Nudge { environment, .. } => environment.to_string(),
        Action::DeleteStack { stack, .. } | Action::RepairStack { stack, .. } => stack.clone(),
        Action::DeleteResource { arn, .. } => arn.clone(),
    }
}

/// Once per stack, operation and hour: a sweep that is retried does not repeat itself.
fn reap_token(op: &str, name: &StackName, now: DateTime<Utc>) -> String {
    let t = format!("ephemera-reap-{op}-{}-{}", now.format("%Y%m%d%H"), name.as_str());
    t.chars().take(128).collect()
}

pub fn describe(reason: Reason) -> &'static str {
    match reason {
        Reason::Expired => "expired: past ephemera:expires-at",
        Reason::ClosedButAlive => "the pull request is closed but its stack was still there",
        Reason::OrphanStackUnknown => "orphan stack: not in the registry",
        Reason::OrphanStackDeleted => "orphan stack: the registry has it as deleted",
        Reason::OrphanResource => "orphan resource: its stack is gone",
        Reason::StackVanished => "its stack no longer exists",
        Reason::Stuck => "stack operation stuck in progress",
        Reason::DeleteFailed => "stack deletion had failed",
        Reason::ExpiringSoon => "expires soon",
        Reason::Queued => "queued for budget",
    }
}

/// A call to AWS, retried under [`RetryPolicy::AWS`] while it fails retryably (throttling,
/// 5xx); each attempt waits its turn under the rate limit and is counted.
async fn retry<T, F, Fut>(limit: &RateLimit, calls: &mut u64, mut f: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PortError>>,
{
    let attempts = std::sync::atomic::AtomicU64::new(0);
    let result = crate::retry::retry(RetryPolicy::AWS, "reaper call", || {
        let call = f();
        let attempts = &attempts;
        async move {
            limit.wait().await;
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            call.await
        }
    })
    .await;
    *calls += attempts.into_inner();
    result
}
