//! The reaper: compares the registry, CloudFormation and the tagging API, and cleans up what
//! outlived its purpose (see [`ephemera_domain::sweep`] for the decisions).
//!
//! Registered environments are sent down through the provisioner (a new generation with the
//! reason, then `Environment.Requested`), which empties buckets and records the outcome. Stacks
//! and resources no environment owns are deleted here. Every mutating call is rate-limited and
//! retried with backoff when throttled; one failure never stops the sweep. A dry run decides
//! the same and changes nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ephemera_domain::catalogue::Leftover;
use ephemera_domain::cost::PriceTable;
use ephemera_domain::sweep::{self, Action, Reason, SweepPolicy};
use ephemera_domain::{Environment, EnvironmentName, StackName};
use tokio::time::Instant;
use tracing::{info, instrument, warn};

use crate::catch_up::CatchUp;
use crate::clock::Clock;
use crate::events::PlatformEvent;
use crate::leftovers::delete_leftover;
use crate::ports::{EventBus, GoDown, Ledger, PortError, Site, Sites, Stamp, Sweeping};

mod calls;
mod costs;
mod ledger;
mod places;
mod repair;
mod summary;

use places::{Facts, Place};

use calls::{retry, RateLimit};
pub use ledger::LedgerReport;
pub use summary::{AccountReport, CostSummary, Failure, Summary};

/// The reaper's settings (`EPHEMERA_REAPER_*`, read by the wiring crate's configuration).
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
    /// The deploy targets: each one's account is swept too, and allowed.
    pub routes: ephemera_domain::placement::Routes,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SweepOptions {
    pub dry_run: bool,
    /// Registry and stacks only (the frequent sweep); no tagging-API scan for orphan resources.
    pub light: bool,
}

pub struct Reaper {
    pub registry: Arc<dyn Sweeping>,
    /// Retired environments give their slots back.
    pub ledger: Arc<dyn Ledger>,
    /// The platform's own account and every deploy target's.
    pub sites: Arc<dyn Sites>,
    pub bus: Arc<dyn EventBus>,
    pub clock: Arc<dyn Clock>,
    pub settings: ReaperSettings,
    /// With GitHub credentials: what deliveries missed, read from GitHub first.
    pub catch_up: Option<Arc<CatchUp>>,
}

impl Reaper {
    /// One sweep of every account environments live in, concurrently, each with its own rate
    /// limit. Errs only when the registry cannot be read; an account that cannot be reached or
    /// listed is an error in the summary, and the others are swept.
    #[instrument(skip(self))]
    pub async fn sweep(&self, opts: SweepOptions) -> Result<Summary, PortError> {
        let started = Instant::now();
        let now = self.clock.now();
        // What GitHub says first, before any fact is gathered: a close it never delivered is
        // acted on in this sweep, and what follows sees the environment going down.
        let github = match &self.catch_up {
            Some(catch_up) => {
                let limit = RateLimit::new(self.settings.calls_per_second);
                let envs = retry(&limit, &mut 0, || self.registry.list()).await?;
                Some(catch_up.run(&envs, opts.light, opts.dry_run).await)
            }
            None => None,
        };
        // Resources before stacks, stacks before the registry: a resource or stack being created
        // right now is then seen with its stack or its row, never as an orphan.
        let (places, own) = self.places().await;
        let gathered = futures_util::future::join_all(places.iter().map(|p| self.gather(p, opts))).await;
        let limit = RateLimit::new(self.settings.calls_per_second);
        let mut calls = 0u64;
        let envs = retry(&limit, &mut calls, || self.registry.list()).await?;
        let mut summary = Summary::new(opts, now, envs.len(), calls);
        summary.github = github;
        // The totals are mended by a full sweep that saw every account's stacks.
        if !opts.light && gathered.iter().all(Result::is_ok) {
            let live = places::live_environments(&gathered);
            match self.mend_ledger(&envs, &live, opts.dry_run, now).await {
                Ok(report) => summary.ledger = Some(report),
                Err(failure) => summary.errors.push(failure),
            }
        }
        let (mut reachable, strays) = places::partition(&places, own.as_deref(), envs, gathered, &mut summary);
        summary.errors.extend(strays);
        let passes = reachable.iter_mut().map(|(facts, mine)| self.reap(facts, mine, opts, now));
        for (report, outcome) in futures_util::future::join_all(passes).await {
            summary.add(report, outcome);
        }
        summary.duration_ms = started.elapsed().as_millis();
        Ok(summary)
    }

    /// Plans and acts on one account's facts and the environments placed there.
    async fn reap(
        &self,
        facts: &mut Facts,
        envs: &[Environment],
        opts: SweepOptions,
        now: DateTime<Utc>,
    ) -> (AccountReport, summary::Outcome) {
        let policy = SweepPolicy {
            now,
            stuck_after: self.settings.stuck_after,
            grace: self.settings.grace,
            notice_before: self.settings.notice_before,
            allowed_accounts: self.allowed_accounts(),
            allowed_regions: self.settings.allowed_regions.clone(),
            include_resources: !opts.light,
        };
        let plan = sweep::plan(envs, &facts.stacks, &facts.resources, &policy);
        for s in &plan.skipped {
            info!(account = %facts.place, target = %s.target, why = s.why, "left alone");
        }
        let by_name: HashMap<&str, &Environment> = envs.iter().map(|e| (e.name.as_str(), e)).collect();
        let mut out = summary::Outcome::default();
        let (limit, site) = (&facts.limit, &facts.site);
        for action in &plan.actions {
            info!(account = %facts.place, action = action.kind(), reason = ?action.reason(), dry_run = opts.dry_run, ?action, "reap");
            if opts.dry_run {
                out.done.push(action.clone());
                continue;
            }
            match self.act(site, action, &by_name, limit, &mut facts.calls).await {
                Ok(true) => out.done.push(action.clone()),
                Ok(false) => info!(action = action.kind(), "superseded by a newer change; left to the next sweep"),
                Err(e) => {
                    warn!(account = %facts.place, action = action.kind(), error = %e, "reap action failed");
                    out.errors.push(Failure { action: action.kind(), target: target(action), error: e.to_string() });
                }
            }
        }
        if !opts.light {
            let cost = self.costs(envs, &facts.stacks, &facts.resources, now, opts.dry_run, limit, &mut facts.calls);
            out.cost = Some(cost.await);
        }
        (out.planned, out.skipped) = (plan.actions, plan.skipped);
        (facts.report(envs.len()), out)
    }

    /// The platform's own account, then each deploy target's; and the platform's account id, when
    /// known. A target in the platform's own account is the platform's place, swept once (twice,
    /// each would take the other's stacks for orphans).
    async fn places(&self) -> (Vec<Place>, Option<String>) {
        let own = self.sites.own_account().await.ok();
        let targets = self.settings.routes.all().into_iter().filter(|t| {
            let mine = own.as_deref() == Some(t.account.as_str());
            if mine {
                warn!(account = %t.account, "a deploy target is the platform's own account: swept as the platform's");
            }
            !mine
        });
        let places = std::iter::once(None).chain(targets.cloned().map(Some)).map(Place).collect();
        (places, own)
    }

    /// `EPHEMERA_REAPER_ALLOWED_ACCOUNTS` and every deploy target's account (empty: any).
    fn allowed_accounts(&self) -> Vec<String> {
        let mut allowed = self.settings.allowed_accounts.clone();
        if !allowed.is_empty() {
            allowed.extend(self.settings.routes.all().into_iter().map(|t| t.account.clone()));
        }
        allowed
    }

    async fn act(
        &self,
        site: &Site,
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
                // A stranded row keeps the error that stranded it in its reason.
                let why = match envs.get(environment.as_str()).and_then(|e| e.status_reason.as_deref()) {
                    Some(was) if *reason == Reason::Stranded => format!("{}: {was}", describe(*reason)),
                    _ => describe(*reason).to_owned(),
                };
                self.retire(environment, *generation, &why, limit, calls).await
            }
            Action::Notice { environment, since, .. } => {
                let first = retry(limit, calls, || self.registry.record_notice(environment, now, *since)).await?;
                if first {
                    if let Some(env) = envs.get(environment.as_str()) {
                        let event = PlatformEvent::expiring_soon(env);
                        retry(limit, calls, || self.bus.publish(std::slice::from_ref(&event))).await?;
                    }
                }
                Ok(true)
            }
            Action::DeleteStack { stack, .. } => {
                let name = stack_name(stack)?;
                self.empty_buckets(site, &name, limit, calls).await?;
                let token = reap_token("delete", &name, now);
                retry(limit, calls, || site.stacks.delete(&name, &token)).await?;
                Ok(true)
            }
            Action::RepairStack { stack, environment, reason } => {
                let name = stack_name(stack)?;
                self.repair(site, &name, now, limit, calls).await?;
                if let Some(env) = environment.as_ref().and_then(|e| envs.get(e.as_str())) {
                    // The row must not say a stack exists; a new push creates a fresh one.
                    let why = format!("{}; the reaper deleted the stack", describe(*reason));
                    self.retire(&env.name, env.generation, &why, limit, calls).await?;
                }
                Ok(true)
            }
            Action::DeleteResource { arn, kind, .. } => {
                let leftover = Leftover::from_arn(*kind, arn);
                retry(limit, calls, || delete_leftover(&*site.store, &*site.cleaner, &leftover)).await?;
                Ok(true)
            }
        }
    }

    /// Records a row as deleted (nothing of it is left) and gives back its slots.
    async fn retire(
        &self,
        environment: &EnvironmentName,
        generation: u64,
        why: &str,
        limit: &RateLimit,
        calls: &mut u64,
    ) -> Result<bool, PortError> {
        let now = self.clock.now();
        let stamp = Stamp::new(generation, now);
        let retired = retry(limit, calls, || self.registry.go_down(environment, stamp, GoDown::Retire, why)).await?;
        if retired {
            retry(limit, calls, || self.ledger.release(environment)).await?;
        }
        Ok(retired)
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
        Reason::Stranded => "stranded: no stack was made and nothing happened to it for longer than the stuck limit",
    }
}
