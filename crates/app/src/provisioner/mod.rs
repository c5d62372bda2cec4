//! The provisioner: reconciles one environment's stack with its recorded desired state.
//!
//! Level-triggered: an event only says which environment to look at; what to do is read from
//! the registry and from CloudFormation, so a duplicated, late or replayed event is harmless.
//! A lease on the registry row keeps two reconcilers off the same environment.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::reconcile::{plan, Observed, StackState, Step, Taken};
use ephemera_domain::{Environment, EnvironmentName, RetryPolicy, Status, TagSet};
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::events::{environment_of, EnvelopeError, PlatformEvent};
use crate::leftovers::Leftovers;
use crate::ports::{
    EventBus, History, Ledger, ObjectStore, Placement, PortError, Progress, Reconciliation, Site, Sites, StackView,
    UpdateOutcome,
};
use crate::ports::{Lease, Stamp};
use crate::retry::retry;

mod blueprint;
mod budget;
mod seed;

use blueprint::RequestError;
pub use blueprint::{
    api_id, api_key_expiry, artifact_key, find_blueprint, known_parameters, own_template_key, preview_url,
    BlueprintError, CONFIG_ARTIFACT, REPOSITORY_TEMPLATE_ARTIFACT, SCENARIO_ARTIFACT, TEMPLATE_ARTIFACT,
};
use budget::{Admission, Choice};

#[derive(Debug, Clone)]
pub struct ProvisionerSettings {
    /// Where blueprints and per-commit templates live.
    pub bucket: String,
    pub cost_tags: TagSet,
    /// Put on every IAM role an environment's template creates.
    pub role_boundary_arn: Option<String>,
    /// What a blueprint may declare; checked before any stack call.
    pub blueprint_policy: ephemera_domain::blueprint::Policy,
    /// How long one reconcile waits for a stack operation before handing back (retryable).
    pub wait: Duration,
    pub poll: Duration,
    /// Monthly budget for live environments (USD); None for no budget.
    pub monthly_budget_usd: Option<f64>,
    pub prices: ephemera_domain::cost::PriceTable,
    /// Live developer environments allowed, per owner and in all.
    pub dev_quotas: ephemera_domain::developer::Quotas,
    /// Deploy targets: where new environments go (empty: the platform's own account).
    pub routes: ephemera_domain::placement::Routes,
    /// The platform's region, where environments are created.
    pub region: String,
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

impl crate::outcome::Retryable for ProvisionError {
    /// Worth delivering the same message again later.
    fn is_retryable(&self) -> bool {
        match self {
            ProvisionError::Busy(_) | ProvisionError::StillInProgress(_) => true,
            ProvisionError::Port(p) => p.is_retryable(),
            ProvisionError::BadMessage(_) => false,
        }
    }
}

/// What taking one step led to.
enum Next {
    /// Progress to record, then look at the stack again.
    Record(Progress),
    /// An operation is under way: look again after a pause, within the deadline.
    Wait,
    Done(Outcome),
    /// A newer generation was recorded meanwhile: start over from it.
    Superseded,
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
    pub registry: Arc<dyn Reconciliation>,
    /// Running totals: quotas, budget, accounts' room.
    pub ledger: Arc<dyn Ledger>,
    /// The accounts environments live in.
    pub sites: Arc<dyn Sites>,
    /// The platform's bucket: blueprints, templates, seed data.
    pub store: Arc<dyn ObjectStore>,
    pub bus: Arc<dyn EventBus>,
    /// Where a ready stack's resources are kept, for the environment's page.
    pub history: Arc<dyn History>,
    pub clock: Arc<dyn Clock>,
    pub settings: ProvisionerSettings,
}

/// Where an environment's stack is: the place's adapters, and the placement recorded.
pub(crate) struct Here {
    site: Site,
    placement: Placement,
}

impl Provisioner {
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
        match self.registry.try_lease(name, &Lease { holder: holder.clone(), now, until: now + lease }).await {
            Ok(true) => {}
            Ok(false) => return Err(ProvisionError::Busy(name.clone())),
            // The answer was lost, not necessarily the write: a lease this attempt may hold
            // would keep every retry out until it expires. Giving it back is harmless if not.
            Err(e) => {
                let _ = self.registry.release_lease(name, &holder).await;
                return Err(e.into());
            }
        }
        let result = self.reconcile_leased(name).await;
        // A lease left behind holds the environment until it expires: worth a few tries.
        let release = retry(RetryPolicy::CONFLICT, "release lease", || self.registry.release_lease(name, &holder));
        if let Err(e) = release.await {
            warn!(error = %e, "could not release lease; it expires by itself");
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
            let want = TagSet::for_environment(&env, &self.settings.cost_tags);
            let mut taken = Taken::default();
            let mut here = match self.locate(&env).await {
                Ok(here) => here,
                Err(why) => match self.unreachable(&env, why).await? {
                    Next::Done(outcome) => return Ok(outcome),
                    _ => continue 'generation,
                },
            };
            loop {
                let view = match &here {
                    Some(h) => h.site.stacks.describe(&env.stack_name()).await?,
                    None => None,
                };
                let seen = observe(view.as_ref(), &want);
                let step = plan(env.desired, &seen, taken);
                info!(?step, stack_status = ?seen.status, generation = env.generation, "reconcile step");
                let progress = match self.take(step, &env, &want, view.as_ref(), &mut taken, &mut here).await? {
                    Next::Record(progress) => progress,
                    Next::Wait if tokio::time::Instant::now() >= deadline => {
                        return Err(ProvisionError::StillInProgress(name.clone()));
                    }
                    Next::Wait => {
                        tokio::time::sleep(self.settings.poll).await;
                        continue;
                    }
                    Next::Done(outcome) => return Ok(outcome),
                    Next::Superseded => continue 'generation,
                };
                let status = progress.status.expect("every recorded step has a status");
                if !self.record(&env, &progress).await? {
                    // A newer desired state arrived meanwhile: start over from it.
                    continue 'generation;
                }
                self.publish(PlatformEvent::status(&env, status, None)).await;
            }
        }
    }

    /// Takes one step of the plan.
    async fn take(
        &self,
        step: Step,
        env: &Environment,
        want: &TagSet,
        view: Option<&StackView>,
        taken: &mut Taken,
        here: &mut Option<Here>,
    ) -> Result<Next, ProvisionError> {
        // A stack was seen, so the environment has a place; only a creation may have none yet.
        let site = || here.as_ref().map(|h| h.site.clone()).ok_or_else(|| unplaced(env));
        match step {
            Step::Create => self.create(env, want, taken, here).await,
            Step::Update => {
                let h = here.as_ref().ok_or_else(|| unplaced(env))?;
                self.update(h, env, want, view, taken).await
            }
            Step::Delete => {
                let (site, stack) = (site()?, env.stack_name());
                // CloudFormation cannot delete a bucket that still has objects in it.
                for bucket in site.stacks.buckets(&stack).await? {
                    let n = site.store.empty_bucket(&bucket).await?;
                    info!(bucket, objects = n, "emptied bucket before delete");
                }
                site.stacks.delete(&stack, &token("delete", env)).await?;
                taken.delete = true;
                // Why it is going down (expired, say) stays on the row.
                let reason = env.status_reason.clone();
                Ok(Next::Record(Progress { status: Some(Status::Deleting), reason, ..Default::default() }))
            }
            Step::Wait => Ok(Next::Wait),
            Step::Settle(status, mut reason) => {
                // A new stack gets its synthetic fixtures before it is announced ready.
                if let (Status::Ready, true, Some(h)) = (status, taken.create, here.as_ref()) {
                    if let Err(why) = self.seed(&h.site, env, view).await {
                        warn!(%why, "seeding failed; the environment is ready without its fixtures");
                        reason = Some(format!("seed data not loaded: {why}"));
                    }
                }
                if let (Status::Ready, Ok(site)) = (status, site()) {
                    self.keep_resources(&site, env).await;
                }
                Ok(self.settled(env, status, reason, view).await?)
            }
        }
    }

    /// What a ready stack holds, kept for the environment's page (best effort: the page then
    /// shows what was kept before).
    async fn keep_resources(&self, site: &Site, env: &Environment) {
        let kept = match site.stacks.resources(&env.stack_name()).await {
            Ok(resources) => self.history.record_resources(&env.name, &resources).await,
            Err(e) => Err(e),
        };
        if let Err(e) = kept {
            warn!(error = %e, "could not keep the stack's resources");
        }
    }

    async fn create(
        &self,
        env: &Environment,
        want: &TagSet,
        taken: &mut Taken,
        here: &mut Option<Here>,
    ) -> Result<Next, ProvisionError> {
        // The claim it holds, if any: read once, for both questions below.
        let held = match here.is_none() || !self.settings.routes.is_empty() {
            true => self.ledger.held(&env.name).await?,
            false => None,
        };
        // Its stack is to be made: where it lived before (a life that ended, its claim given
        // back) does not bind where it goes now.
        if here.is_some() && !self.settings.routes.is_empty() && held.is_none() {
            *here = None;
        }
        let target = match here.as_ref() {
            Some(h) => self.target_of(h),
            None => match self.choose(env, held).await? {
                Choice::At(target) => target,
                Choice::Full(reason) => return self.queue(env, reason).await,
            },
        };
        let (request, monthly) = match self.request(env, want, "create", target.as_ref()).await {
            Ok(r) => r,
            Err(why) => return self.not_made(env, None, why).await,
        };
        let claim = match self.admit(env, target.as_ref(), monthly).await? {
            Admission::Admitted(claim) => claim,
            Admission::Wait(reason) => return self.queue(env, reason).await,
        };
        match here.as_ref() {
            None => match self.place(env, &claim).await? {
                Ok(placed) => *here = Some(placed),
                Err(next) => return Ok(next),
            },
            // Where it lives, recorded once (rows made before placement was recorded say nothing).
            Some(h) if env.region.is_none() => {
                let progress = Progress { placement: Some(h.placement.clone()), ..Default::default() };
                if !self.record(env, &progress).await? {
                    return Ok(Next::Superseded);
                }
            }
            Some(_) => {}
        }
        let site = here.as_ref().map(|h| h.site.clone()).ok_or_else(|| unplaced(env))?;
        // No stack of this name exists: whatever carries its name and tags is left from an
        // earlier one and would make this creation fail. A preserved environment's leftovers are
        // kept; creation then reports it. A first life leaves nothing unless the account kept
        // something tagged for it from before the registry knew it (or a stack of its name was
        // just deleted): one indexed lookup then spares the listings that grow with the account.
        if env.is_preserved(self.clock.now()) {
            info!("preserved: leftovers of earlier stacks, if any, are kept");
        } else if env.is_first_life() && !taken.delete && !site.inventory.any_tagged_for(&env.name).await? {
            info!("first life and nothing tagged for it: no leftovers to clear");
        } else {
            let envs: Arc<dyn crate::ports::Environments> = self.registry.clone();
            let leftovers = Leftovers {
                inventory: site.inventory.clone(),
                store: site.store.clone(),
                cleaner: site.cleaner.clone(),
                registry: envs,
            };
            leftovers.clear(&env.name).await?;
        }
        let id = match site.stacks.create(&request).await {
            Ok(id) => id,
            Err(e) => {
                // Nothing was made: its slots are free again.
                if !e.is_retryable() {
                    self.ledger.release(&env.name).await?;
                }
                return self.not_made(env, None, e.into()).await;
            }
        };
        // Counted in the cost report from now on; the reaper refines it.
        self.registry.record_cost(&env.name, monthly, 0.0).await?;
        taken.create = true;
        Ok(Next::Record(Progress { status: Some(Status::Creating), stack_id: Some(id), ..Default::default() }))
    }

    /// Records where a new environment goes (before anything is made there), and reaches it;
    /// one that cannot be reached gives its claim back and fails with the reason.
    async fn place(
        &self,
        env: &Environment,
        claim: &ephemera_domain::admission::Claim,
    ) -> Result<Result<Here, Next>, ProvisionError> {
        let placed = match self.open(env, claim).await {
            Ok(placed) => placed,
            // Throttled, say: the claim is kept, and the place tried again.
            Err(u) if u.retryable => return Err(u.retry().into()),
            Err(u) => {
                self.ledger.release(&env.name).await?;
                return Ok(Err(self.settled(env, Status::Failed, Some(u.why), None).await?));
            }
        };
        let progress = Progress { placement: Some(placed.placement.clone()), ..Default::default() };
        if !self.record(env, &progress).await? {
            return Ok(Err(Next::Superseded));
        }
        info!(account = ?placed.placement.account, region = %placed.placement.region, "placed");
        Ok(Ok(placed))
    }

    /// Waits for budget, quota or room.
    async fn queue(&self, env: &Environment, reason: String) -> Result<Next, ProvisionError> {
        let queued = Progress { status: Some(Status::Queued), reason: Some(reason.clone()), ..Default::default() };
        if !self.record(env, &queued).await? {
            return Ok(Next::Superseded);
        }
        info!(%reason, "queued");
        self.publish(PlatformEvent::status(env, Status::Queued, Some(reason))).await;
        Ok(Next::Done(Outcome::Queued))
    }

    /// The place an environment lives cannot be reached: a creation or update fails with the
    /// reason; a deletion is retried (the stack is still there).
    async fn unreachable(&self, env: &Environment, u: budget::Unreachable) -> Result<Next, ProvisionError> {
        warn!(why = %u.why, retryable = u.retryable, "the environment's account cannot be reached");
        if u.retryable || env.desired == ephemera_domain::Desired::Down {
            return Err(u.retry().into());
        }
        Ok(self.settled(env, Status::Failed, Some(u.why), None).await?)
    }

    async fn update(
        &self,
        here: &Here,
        env: &Environment,
        want: &TagSet,
        view: Option<&StackView>,
        taken: &mut Taken,
    ) -> Result<Next, ProvisionError> {
        let target = self.target_of(here);
        let request = match self.request(env, want, "update", target.as_ref()).await {
            Ok((r, _)) => r,
            Err(why) => return self.not_made(env, view, why).await,
        };
        match here.site.stacks.update(&request).await {
            Ok(UpdateOutcome::NoChanges) => info!("stack already matches the template"),
            Ok(UpdateOutcome::Started) => {}
            Err(e) => return self.not_made(env, view, e.into()).await,
        }
        taken.update = true;
        Ok(Next::Record(Progress { status: Some(Status::Updating), ..Default::default() }))
    }

    /// A stack request that could not be made, or that CloudFormation refused: retried later, or,
    /// since retrying the same generation cannot help, recorded as failed with the reason.
    async fn not_made(
        &self,
        env: &Environment,
        view: Option<&StackView>,
        why: RequestError,
    ) -> Result<Next, ProvisionError> {
        match why {
            RequestError::Retry(e) => Err(e.into()),
            RequestError::Refused(reason) => Ok(self.settled(env, Status::Failed, Some(reason), view).await?),
        }
    }

    /// Settles the generation in `status`: done, or superseded by a newer generation.
    async fn settled(
        &self,
        env: &Environment,
        status: Status,
        reason: Option<String>,
        view: Option<&StackView>,
    ) -> Result<Next, PortError> {
        Ok(match self.settle(env, status, reason, view).await? {
            true => Next::Done(Outcome::Settled(status)),
            false => Next::Superseded,
        })
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
        if status == Status::Deleted {
            // Its slots are free before it is recorded gone: a crash in between gives them back
            // again on the retry, which finds nothing to give.
            self.ledger.release(&env.name).await?;
        }
        let outputs = view.map(|v| v.outputs.clone()).filter(|_| status == Status::Ready);
        let preview_url = outputs.as_ref().and_then(preview_url);
        let progress = Progress {
            status: Some(status),
            reason: reason.clone(),
            stack_id: view.map(|v| v.stack_id.clone()),
            outputs: outputs.or_else(|| (status == Status::Deleted).then(Default::default)),
            preview_url: preview_url.clone(),
            settled: true,
            placement: None,
        };
        if !self.record(env, &progress).await? {
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

    /// Records progress for `env`'s generation, now; false if a newer generation superseded it.
    async fn record(&self, env: &Environment, progress: &Progress) -> Result<bool, PortError> {
        self.registry.record_progress(&env.name, Stamp::new(env.generation, self.clock.now()), progress).await
    }

    /// Announcements are best effort: the registry is the record, the events are notifications.
    async fn publish(&self, event: PlatformEvent) {
        if let Err(e) = self.bus.publish(&[event]).await {
            warn!(error = %e, "could not publish status event");
        }
    }
}

/// The idempotency token for one operation on one generation: a retry of the same work reuses
/// it, so CloudFormation does not start the operation twice.
fn token(op: &str, env: &Environment) -> String {
    format!("ephemera-{op}-{}-g{}", env.name, env.generation)
}

fn unplaced(env: &Environment) -> PortError {
    PortError::Permanent { operation: "reconcile", message: format!("{} has a stack but no place", env.name) }
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
