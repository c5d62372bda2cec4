//! The provisioner: reconciles one environment's stack with its recorded desired state.
//!
//! Level-triggered: an event only says which environment to look at; what to do is read from
//! the registry and from CloudFormation, so a duplicated, late or replayed event is harmless.
//! A lease on the registry row keeps two reconcilers off the same environment.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::reconcile::{plan, Observed, StackState, Step, Taken};
use ephemera_domain::{Environment, EnvironmentName, Status, TagSet};
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::events::{environment_of, EnvelopeError, PlatformEvent};
use crate::leftovers::Leftovers;
use crate::ports::{
    EventBus, ObjectStore, PortError, Progress, Reconciliation, Seeder, StackRequest, StackView, Stacks, UpdateOutcome,
};
use crate::template::{render, TemplateError};

#[derive(Debug, Clone)]
pub struct ProvisionerSettings {
    /// Where blueprints and per-commit templates live.
    pub bucket: String,
    pub cost_tags: TagSet,
    pub role_arn: Option<String>,
    /// Put on every IAM role an environment's template creates.
    pub role_boundary_arn: Option<String>,
    /// How long one reconcile waits for a stack operation before handing back (retryable).
    pub wait: Duration,
    pub poll: Duration,
    /// Monthly budget for live environments (USD); None for no budget.
    pub monthly_budget_usd: Option<f64>,
    pub prices: ephemera_domain::cost::PriceTable,
    /// Live developer environments allowed, per owner and in all.
    pub dev_quotas: ephemera_domain::developer::Quotas,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0} is being reconciled elsewhere; try again later")]
    Busy(EnvironmentName),
    #[error("stack of {0} is still in progress; try again later")]
    StillInProgress(EnvironmentName),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    BadMessage(#[from] EnvelopeError),
}

impl ProvisionError {
    /// Worth delivering the same message again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProvisionError::Busy(_) | ProvisionError::StillInProgress(_) => true,
            ProvisionError::Port(p) => p.is_retryable(),
            ProvisionError::BadMessage(_) => false,
        }
    }
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Settled(Status),
    /// Waiting for budget; it is looked at again when an environment is deleted.
    Queued,
    /// Nothing to do: the current generation's outcome is already recorded.
    AlreadyConverged(Status),
    /// No such environment in the registry.
    Unknown,
}

pub struct Provisioner {
    registry: Arc<dyn Reconciliation>,
    stacks: Arc<dyn Stacks>,
    store: Arc<dyn ObjectStore>,
    bus: Arc<dyn EventBus>,
    seeder: Arc<dyn Seeder>,
    leftovers: Leftovers,
    clock: Arc<dyn Clock>,
    settings: ProvisionerSettings,
}

impl Provisioner {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Arc<dyn Reconciliation>,
        stacks: Arc<dyn Stacks>,
        store: Arc<dyn ObjectStore>,
        bus: Arc<dyn EventBus>,
        seeder: Arc<dyn Seeder>,
        leftovers: Leftovers,
        clock: Arc<dyn Clock>,
        settings: ProvisionerSettings,
    ) -> Self {
        Self { registry, stacks, store, bus, seeder, leftovers, clock, settings }
    }

    /// Handles one work-queue message: an Ephemera event, or a CloudFormation status change of
    /// one of the platform's stacks (an EventBridge event as SQS delivers it).
    pub async fn handle_message(&self, body: &str) -> Result<Outcome, ProvisionError> {
        self.reconcile(&environment_of(body)?).await
    }

    /// Brings `name`'s stack to its desired state, or as far as the wait allows.
    #[instrument(skip(self), fields(environment = %name))]
    pub async fn reconcile(&self, name: &EnvironmentName) -> Result<Outcome, ProvisionError> {
        let holder = uuid::Uuid::new_v4().to_string();
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.settings.wait + Duration::from_secs(60))
            .unwrap_or(chrono::Duration::minutes(15));
        if !self.registry.try_lease(name, &holder, now, now + lease).await? {
            return Err(ProvisionError::Busy(name.clone()));
        }
        let result = self.reconcile_leased(name).await;
        // A lease left behind holds the environment until it expires: worth a few tries.
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=5 {
            match self.registry.release_lease(name, &holder).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() && attempt < 5 => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => warn!(error = %e, "could not release lease; it expires by itself"),
            }
        }
        result
    }

    async fn reconcile_leased(&self, name: &EnvironmentName) -> Result<Outcome, ProvisionError> {
        let deadline = tokio::time::Instant::now() + self.settings.wait;
        'generation: loop {
            let Some(env) = self.registry.get(name).await? else {
                return Ok(Outcome::Unknown);
            };
            if env.is_converged() {
                return Ok(Outcome::AlreadyConverged(env.status));
            }
            let stack = env.stack_name();
            let want = TagSet::for_environment(&env, &self.settings.cost_tags);
            let mut taken = Taken::default();
            loop {
                let view = self.stacks.describe(&stack).await?;
                let seen = observe(view.as_ref(), &want);
                let step = plan(env.desired, &seen, taken);
                info!(?step, stack_status = ?seen.status, generation = env.generation, "reconcile step");
                let progress = match step {
                    Step::Create => {
                        let request = match self.request(&env, &want, "create").await {
                            Ok(r) => r,
                            Err(RequestError::Retry(e)) => return Err(e.into()),
                            Err(RequestError::Refused(reason)) => {
                                if self.settle(&env, Status::Failed, Some(reason), None).await? {
                                    return Ok(Outcome::Settled(Status::Failed));
                                }
                                continue 'generation;
                            }
                        };
                        if let Some(reason) = self.over_budget(&env, &request.1).await? {
                            let queued = Progress {
                                status: Some(Status::Queued),
                                reason: Some(reason.clone()),
                                ..Default::default()
                            };
                            if !self.registry.record_progress(name, env.generation, &queued, self.clock.now()).await? {
                                continue 'generation;
                            }
                            info!(%reason, "queued");
                            self.publish(PlatformEvent::status(&env, Status::Queued, Some(reason))).await;
                            return Ok(Outcome::Queued);
                        }
                        let (request, monthly) = request;
                        // No stack of this name exists: whatever carries its name and tags is
                        // left from an earlier one and would make this creation fail. A
                        // preserved environment's leftovers are kept; creation then reports it.
                        if env.preserved {
                            info!("preserved: leftovers of earlier stacks, if any, are kept");
                        } else {
                            self.leftovers.clear(name).await?;
                        }
                        let id = match self.stacks.create(&request).await {
                            Ok(id) => id,
                            // CloudFormation refused the template or its parameters: retrying
                            // the same generation cannot help, so it is recorded as failed.
                            Err(e @ PortError::Permanent { .. }) => {
                                if self.settle(&env, Status::Failed, Some(e.to_string()), None).await? {
                                    return Ok(Outcome::Settled(Status::Failed));
                                }
                                continue 'generation;
                            }
                            Err(e) => return Err(e.into()),
                        };
                        // Counted against the budget from now on; the reaper refines it.
                        self.registry.record_cost(name, monthly, 0.0).await?;
                        taken.create = true;
                        Progress { status: Some(Status::Creating), stack_id: Some(id), ..Default::default() }
                    }
                    Step::Update => {
                        let request = match self.request(&env, &want, "update").await {
                            Ok((r, _)) => r,
                            Err(RequestError::Retry(e)) => return Err(e.into()),
                            Err(RequestError::Refused(reason)) => {
                                if self.settle(&env, Status::Failed, Some(reason), view.as_ref()).await? {
                                    return Ok(Outcome::Settled(Status::Failed));
                                }
                                continue 'generation;
                            }
                        };
                        let updated = match self.stacks.update(&request).await {
                            Ok(u) => u,
                            Err(e @ PortError::Permanent { .. }) => {
                                if self.settle(&env, Status::Failed, Some(e.to_string()), view.as_ref()).await? {
                                    return Ok(Outcome::Settled(Status::Failed));
                                }
                                continue 'generation;
                            }
                            Err(e) => return Err(e.into()),
                        };
                        if updated == UpdateOutcome::NoChanges {
                            info!("stack already matches the template");
                        }
                        taken.update = true;
                        Progress { status: Some(Status::Updating), ..Default::default() }
                    }
                    Step::Delete => {
                        // CloudFormation cannot delete a bucket that still has objects in it.
                        for bucket in self.stacks.buckets(&stack).await? {
                            let n = self.store.empty_bucket(&bucket).await?;
                            info!(bucket, objects = n, "emptied bucket before delete");
                        }
                        self.stacks.delete(&stack, &token("delete", &env)).await?;
                        taken.delete = true;
                        // Why it is going down (expired, say) stays on the row.
                        Progress {
                            status: Some(Status::Deleting),
                            reason: env.status_reason.clone(),
                            ..Default::default()
                        }
                    }
                    Step::Wait => {
                        if tokio::time::Instant::now() >= deadline {
                            return Err(ProvisionError::StillInProgress(name.clone()));
                        }
                        tokio::time::sleep(self.settings.poll).await;
                        continue;
                    }
                    Step::Settle(status, mut reason) => {
                        // A new stack gets its synthetic fixtures before it is announced ready.
                        if status == Status::Ready && taken.create {
                            if let Err(why) = self.seed(&env, view.as_ref()).await {
                                warn!(%why, "seeding failed; the environment is ready without its fixtures");
                                reason = Some(format!("seed data not loaded: {why}"));
                            }
                        }
                        if self.settle(&env, status, reason, view.as_ref()).await? {
                            return Ok(Outcome::Settled(status));
                        }
                        continue 'generation;
                    }
                };
                let status = progress.status.expect("every step above records a status");
                if !self.registry.record_progress(name, env.generation, &progress, self.clock.now()).await? {
                    // A newer desired state arrived meanwhile: start over from it.
                    continue 'generation;
                }
                self.publish(PlatformEvent::status(&env, status, None)).await;
            }
        }
    }

    /// Records the final status of this generation; false if a newer generation superseded it.
    async fn settle(
        &self,
        env: &Environment,
        status: Status,
        reason: Option<String>,
        view: Option<&StackView>,
    ) -> Result<bool, PortError> {
        // A deletion keeps the reason it was requested with (the reaper's "expired", say).
        let reason = reason.or_else(|| (status == Status::Deleted).then(|| env.status_reason.clone()).flatten());
        let outputs = view.map(|v| v.outputs.clone()).filter(|_| status == Status::Ready);
        let preview_url = outputs.as_ref().and_then(preview_url);
        let progress = Progress {
            status: Some(status),
            reason: reason.clone(),
            stack_id: view.map(|v| v.stack_id.clone()),
            outputs: outputs.or_else(|| (status == Status::Deleted).then(Default::default)),
            preview_url: preview_url.clone(),
            settled: true,
        };
        if !self.registry.record_progress(&env.name, env.generation, &progress, self.clock.now()).await? {
            return Ok(false);
        }
        match &reason {
            Some(r) if status == Status::Failed => warn!(reason = %r, "environment failed"),
            _ => info!(status = status.as_str(), "environment settled"),
        }
        let mut settled = env.clone();
        settled.preview_url = preview_url;
        self.publish(PlatformEvent::status(&settled, status, reason)).await;
        if status == Status::Deleted {
            self.start_next_queued().await;
        }
        Ok(true)
    }

    /// Why `env` must wait: a developer quota is full, or creating it would take the projected
    /// monthly spend past the budget.
    async fn over_budget(&self, env: &Environment, monthly: &f64) -> Result<Option<String>, PortError> {
        let quotas = self.settings.dev_quotas;
        if env.kind == ephemera_domain::EnvironmentKind::Dev || self.settings.monthly_budget_usd.is_some() {
            let all = self.registry.list().await?;
            let live: Vec<&Environment> = all
                .iter()
                .filter(|e| e.name != env.name && e.desired == ephemera_domain::Desired::Up)
                .filter(|e| matches!(e.status, Status::Creating | Status::Updating | Status::Ready))
                .collect();
            if env.kind == ephemera_domain::EnvironmentKind::Dev {
                let dev: Vec<_> = live.iter().filter(|e| e.kind == ephemera_domain::EnvironmentKind::Dev).collect();
                let mine = dev.iter().filter(|e| e.owner == env.owner).count();
                if mine >= quotas.per_owner {
                    return Ok(Some(format!(
                        "waiting for quota: {} has {mine} live environments; the limit is {}",
                        env.owner, quotas.per_owner
                    )));
                }
                if dev.len() >= quotas.global {
                    return Ok(Some(format!(
                        "waiting for quota: {} developer environments are live; the limit is {}",
                        dev.len(),
                        quotas.global
                    )));
                }
            }
            if let Some(budget) = self.settings.monthly_budget_usd {
                let live: f64 = live.iter().filter_map(|e| e.cost_monthly_usd).sum();
                return Ok(self.budget_reason(live, *monthly, budget));
            }
        }
        Ok(None)
    }

    fn budget_reason(&self, live: f64, monthly: f64, budget: f64) -> Option<String> {
        (live + monthly > budget).then(|| {
            format!("waiting for budget: live environments cost ${live:.2}/month, this one ${monthly:.2}, the budget is ${budget:.2}")
        })
    }

    /// Nudges the oldest queued environment, now that one is gone.
    async fn start_next_queued(&self) {
        let next = match self.registry.list().await {
            Ok(all) => all.into_iter().filter(|e| e.status == Status::Queued).min_by_key(|e| e.created_at),
            Err(e) => return warn!(error = %e, "could not look for queued environments"),
        };
        if let Some(env) = next {
            info!(next = %env.name, "starting the oldest queued environment");
            self.publish(PlatformEvent::requested(&env)).await;
        }
    }

    /// Loads `seeds/{owner}/{repo}/<Table>.jsonl` (else `seeds/default/`) into the table the
    /// stack outputs as `<Table>TableName`: JSON lines, one item each. Synthetic data only:
    /// production data is never copied into an environment.
    async fn seed(&self, env: &Environment, view: Option<&StackView>) -> Result<(), String> {
        let Some(view) = view else { return Ok(()) };
        let bucket = &self.settings.bucket;
        let mut prefixes = Vec::new();
        if let Some(repo) = &env.repository {
            prefixes.push(format!("seeds/{}/{}/", repo.owner(), repo.name()));
        }
        prefixes.push("seeds/default/".to_owned());
        for prefix in prefixes {
            let keys: Vec<String> = self
                .store
                .list_keys(bucket, &prefix)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|k| k.ends_with(".jsonl"))
                .collect();
            if keys.is_empty() {
                continue;
            }
            for key in keys {
                let logical = key.trim_start_matches(prefix.as_str()).trim_end_matches(".jsonl");
                let Some(table) = view.outputs.get(&format!("{logical}TableName")) else {
                    warn!(%key, "no {logical}TableName output for this seed file; skipped");
                    continue;
                };
                let text = self.store.get_text(bucket, &key).await.map_err(|e| e.to_string())?.unwrap_or_default();
                let mut items = Vec::new();
                for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    match serde_json::from_str::<serde_json::Value>(line) {
                        Ok(serde_json::Value::Object(m)) => items.push(m),
                        _ => return Err(format!("{key} line {}: not a JSON object", i + 1)),
                    }
                }
                let n = self.seeder.put_items(table, &items).await.map_err(|e| e.to_string())?;
                info!(%key, %table, items = n, "seeded");
            }
            return Ok(());
        }
        Ok(())
    }

    /// Announcements are best effort: the registry is the record, the events are notifications.
    async fn publish(&self, event: PlatformEvent) {
        if let Err(e) = self.bus.publish(&[event]).await {
            warn!(error = %e, "could not publish status event");
        }
    }

    /// The stack request for `env`: its blueprint rendered with its tags. Err is a reason to fail.
    /// With it, the environment's estimated monthly cost from its resource types.
    async fn request(&self, env: &Environment, tags: &TagSet, op: &str) -> Result<(StackRequest, f64), RequestError> {
        let (key, source) = match self.blueprint(env).await {
            Ok(found) => found,
            // S3 throttled or unavailable: try again later, the blueprint is not at fault.
            Err(BlueprintError::Port(e)) if e.is_retryable() => return Err(RequestError::Retry(e)),
            Err(e) => return Err(RequestError::Refused(e.to_string())),
        };
        let known = [
            ("EnvironmentName", env.name.to_string()),
            ("EnvironmentKind", env.kind.as_str().to_owned()),
            ("Repository", env.repository.as_ref().map(|r| r.full_name()).unwrap_or_default()),
            ("PullRequest", env.pull_request.map(|n| n.to_string()).unwrap_or_default()),
            ("Owner", env.owner.clone()),
            ("Commit", env.commit.clone().unwrap_or_default()),
            ("ExpiresAt", tags.get(ephemera_domain::tags::EXPIRES_AT).unwrap_or_default().to_owned()),
            ("ApiKeyExpires", api_key_expiry(env.expires_at, self.clock.now()).to_string()),
        ];
        let rendered = render(&source, tags, &known, self.settings.role_boundary_arn.as_deref())
            .map_err(|e: TemplateError| RequestError::Refused(format!("blueprint {key}: {e}")))?;
        info!(blueprint = %key, tagged = rendered.tagged, "rendered blueprint");
        let monthly = self.settings.prices.monthly_total(rendered.resource_types.iter().map(String::as_str));
        let request = StackRequest {
            name: env.stack_name(),
            template_body: rendered.body,
            parameters: rendered.parameters,
            tags: tags.clone(),
            token: token(op, env),
            role_arn: self.settings.role_arn.clone(),
        };
        Ok((request, monthly))
    }

    /// The template for `env`: the commit's own, else the repository's, else the default.
    async fn blueprint(&self, env: &Environment) -> Result<(String, String), BlueprintError> {
        let mut keys = Vec::new();
        if let Some(repo) = &env.repository {
            if let Some(sha) = &env.commit {
                keys.push(format!("artifacts/{}/{}/{sha}/template.yaml", repo.owner(), repo.name()));
            }
            keys.push(format!("blueprints/{}/{}.yaml", repo.owner(), repo.name()));
        }
        keys.push("blueprints/default.yaml".to_owned());
        for key in &keys {
            if let Some(body) = self.store.get_text(&self.settings.bucket, key).await? {
                return Ok((key.clone(), body));
            }
        }
        Err(BlueprintError::NotFound { bucket: self.settings.bucket.clone(), tried: keys })
    }
}

/// Why no stack request could be made: worth retrying later, or a reason to fail.
enum RequestError {
    Retry(PortError),
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
enum BlueprintError {
    #[error("no blueprint in s3://{bucket}: tried {tried:?}")]
    NotFound { bucket: String, tried: Vec<String> },
    #[error(transparent)]
    Port(#[from] PortError),
}

/// The idempotency token for one operation on one generation: a retry of the same work reuses
/// it, so CloudFormation does not start the operation twice.
fn token(op: &str, env: &Environment) -> String {
    format!("ephemera-{op}-{}-g{}", env.name, env.generation)
}

fn observe(view: Option<&StackView>, want: &TagSet) -> Observed {
    let Some(v) = view else { return Observed::absent() };
    let tags = || v.tags.iter().map(|(k, val)| (k.as_str(), val.as_str()));
    Observed {
        state: StackState::classify(&v.status),
        status: Some(v.status.clone()),
        reason: v.reason.clone(),
        managed: TagSet::marks_managed(tags()),
        current: want.is_subset_of(tags()),
    }
}

/// The URL reviewers open: the blueprint's `PreviewUrl` output, else its GraphQL endpoint
/// (given, or derived from the AppSync API's ARN).
pub fn preview_url(outputs: &std::collections::BTreeMap<String, String>) -> Option<String> {
    if let Some(url) = ["PreviewUrl", "GraphQLUrl"].iter().find_map(|k| outputs.get(*k)) {
        return Some(url.clone());
    }
    // arn:aws:appsync:<region>:<account>:apis/<api-id>
    let arn = outputs.get("GraphQLApiArn")?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "appsync", region, _, resource] => {
            let id = resource.strip_prefix("apis/")?;
            let domain = if partition.ends_with("-cn") { "amazonaws.com.cn" } else { "amazonaws.com" };
            // AWS's ids are alphanumeric (the emulator's are UUIDs, with hyphens); nothing else
            // may reach the URL.
            let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            valid.then(|| format!("https://{id}.appsync-api.{region}.{domain}/graphql"))
        }
        _ => None,
    }
}

/// An AppSync API key's expiry (epoch seconds): the environment's, but at least 25 hours and at
/// most 364 days ahead, rounded down to the hour, as AppSync requires.
pub fn api_key_expiry(expires_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> i64 {
    let lo = (now + chrono::Duration::hours(25)).timestamp();
    let hi = (now + chrono::Duration::days(364)).timestamp();
    let t = expires_at.timestamp().clamp(lo, hi);
    t - t.rem_euclid(3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn outputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn preview_url_prefers_explicit_outputs_then_derives_from_the_api_arn() {
        assert_eq!(
            preview_url(&outputs(&[("PreviewUrl", "https://x"), ("GraphQLUrl", "https://y")])).as_deref(),
            Some("https://x")
        );
        assert_eq!(
            preview_url(&outputs(&[(
                "GraphQLApiArn",
                "arn:aws:appsync:eu-west-1:123456789012:apis/abcdefghij1234567890"
            )]))
            .as_deref(),
            Some("https://abcdefghij1234567890.appsync-api.eu-west-1.amazonaws.com/graphql")
        );
        assert_eq!(preview_url(&outputs(&[("GraphQLApiArn", "arn:aws:s3:::bucket")])), None);
        assert_eq!(preview_url(&outputs(&[("GraphQLApiArn", "arn:aws:appsync:r:1:apis/../evil")])), None);
        assert_eq!(preview_url(&outputs(&[])), None);
    }

    #[test]
    fn api_key_expiry_is_within_appsyncs_bounds_and_on_the_hour() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:30:00Z").unwrap().to_utc();
        let in_8h = now + chrono::Duration::hours(8);
        let in_7d = now + chrono::Duration::days(7);
        assert_eq!(api_key_expiry(in_8h, now), (now + chrono::Duration::hours(25)).timestamp() - 1800);
        assert_eq!(api_key_expiry(in_7d, now), in_7d.timestamp() - 1800);
        let far = now + chrono::Duration::days(900);
        assert!(api_key_expiry(far, now) <= (now + chrono::Duration::days(364)).timestamp());
        assert_eq!(api_key_expiry(in_7d, now) % 3600, 0);
    }
}
