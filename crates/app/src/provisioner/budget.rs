//! Where a new environment goes and whether it may be created now: the account with the most
//! room in its pool ([`ephemera_domain::placement`]), then a claim on the running totals for its
//! quotas, the budget and that account's ceiling ([`ephemera_domain::admission`]); and which
//! waiting environment goes next.

use ephemera_domain::admission::{claim, wait_reason, Claim};
use ephemera_domain::placement::{choose, Target};
use ephemera_domain::{Environment, Status};
use tracing::{info, warn};

use super::{Here, Provisioner};
use crate::events::PlatformEvent;
use crate::ports::{Admit, Placement, PortError, Site};

/// Where a new environment may go.
pub(super) enum Choice {
    /// In this target's account (None: the platform's own).
    At(Option<Target>),
    /// Every account of its pool is at the ceiling.
    Full(String),
}

/// What admission came to.
pub(super) enum Admission {
    Admitted(Claim),
    Wait(String),
}

impl Provisioner {
    /// The account an environment not yet placed goes to: the one its `held` claim names if it
    /// holds one already (a placement that was not recorded), else the one with most room in its
    /// pool.
    pub(super) async fn choose(&self, env: &Environment, held: Option<Claim>) -> Result<Choice, PortError> {
        let routes = &self.settings.routes;
        if let Some(held) = held {
            match held.account.as_deref().map(|a| routes.in_account(a)) {
                None => return Ok(Choice::At(None)),
                Some(Some(target)) => return Ok(Choice::At(Some(target.clone()))),
                // Its account is no longer a target: the claim goes, and a place is chosen anew.
                Some(None) => {
                    self.ledger.release(&env.name).await?;
                }
            }
        }
        let pool = routes.pool(env.kind, env.repository.as_ref());
        if pool.is_empty() {
            return Ok(Choice::At(None));
        }
        let totals = self.ledger.totals().await?;
        Ok(match choose(pool, &totals, routes.ceiling) {
            Some(t) => Choice::At(Some(t.clone())),
            None => Choice::Full(format!(
                "waiting for room: every account of its pool holds {} environments, the ceiling",
                routes.ceiling
            )),
        })
    }

    /// Takes `env`'s claim, placed at `target`, with its `monthly` cost; or why it must wait.
    pub(super) async fn admit(
        &self,
        env: &Environment,
        target: Option<&Target>,
        monthly: f64,
    ) -> Result<Admission, PortError> {
        let s = &self.settings;
        let account = target.map(|t| (t.account.as_str(), s.routes.ceiling));
        let wanted = claim(env, s.dev_quotas, s.monthly_budget_usd, monthly, account);
        Ok(match self.ledger.claim(&env.name, &wanted).await? {
            Admit::Admitted(held) => Admission::Admitted(held),
            Admit::Refused { full, totals } => Admission::Wait(wait_reason(env, &full, &totals)),
        })
    }

    /// The place a claim was taken for: its account's target (one no longer configured is an
    /// error naming it), opened for `env`.
    pub(super) async fn open(&self, env: &Environment, claim: &Claim) -> Result<Here, Unreachable> {
        let target = match &claim.account {
            Some(a) => Some(self.settings.routes.in_account(a).cloned().ok_or_else(|| no_longer_a_target(a))?),
            None => None,
        };
        let site = self.reach(target.as_ref(), env).await?;
        let placement = Placement { account: claim.account.clone(), region: self.settings.region.clone() };
        Ok(Here { site, placement })
    }

    /// Where an environment was placed; None for one not placed yet (nothing of it exists
    /// anywhere), or placed in an account that is no longer a target and holding no claim there.
    pub(super) async fn locate(&self, env: &Environment) -> Result<Option<Here>, Unreachable> {
        let target = match &env.account {
            Some(a) => match self.settings.routes.in_account(a) {
                Some(t) => Some(t.clone()),
                None if self.held(env).await?.is_none() => return Ok(None),
                None => return Err(no_longer_a_target(a).into()),
            },
            // Placed in the platform's own account, or made before placement was recorded.
            None if env.region.is_some() || env.stack_id.is_some() || self.settings.routes.is_empty() => None,
            None => return Ok(None),
        };
        let site = self.reach(target.as_ref(), env).await?;
        let region = env.region.clone().unwrap_or_else(|| self.settings.region.clone());
        Ok(Some(Here { site, placement: Placement { account: env.account.clone(), region } }))
    }

    /// The deploy target of the account an environment was placed in (None: the platform's).
    pub(super) fn target_of(&self, here: &Here) -> Option<Target> {
        here.placement.account.as_deref().and_then(|a| self.settings.routes.in_account(a)).cloned()
    }

    async fn held(&self, env: &Environment) -> Result<Option<Claim>, Unreachable> {
        self.ledger.held(&env.name).await.map_err(|e| Unreachable { why: e.to_string(), retryable: e.is_retryable() })
    }

    async fn reach(&self, target: Option<&Target>, env: &Environment) -> Result<Site, Unreachable> {
        self.sites.for_environment(target, &env.name).await.map_err(|e| Unreachable {
            retryable: e.is_retryable(),
            why: match target {
                Some(t) => format!("cannot act in account {} as {}: {e}", t.account, t.role_arn),
                None => format!("cannot act in the platform's account: {e}"),
            },
        })
    }

    /// Nudges the oldest queued environment, now that one is gone.
    pub(super) async fn start_next_queued(&self) {
        let next = match self.registry.list().await {
            Ok(all) => all.into_iter().filter(|e| e.status == Status::Queued).min_by_key(|e| e.created_at),
            Err(e) => return warn!(error = %e, "could not look for queued environments"),
        };
        if let Some(env) = next {
            info!(next = %env.name, "starting the oldest queued environment");
            self.publish(PlatformEvent::requested(&env)).await;
        }
    }
}

/// Why an account could not be reached, and whether trying again later may help (throttled,
/// STS unavailable) or not (the role does not trust the platform, the account is not configured).
#[derive(Debug, Clone)]
pub(super) struct Unreachable {
    pub why: String,
    pub retryable: bool,
}

impl Unreachable {
    /// As a port error worth retrying: the message is delivered again later.
    pub fn retry(self) -> PortError {
        PortError::Retryable { operation: "reach the environment's account", message: self.why }
    }
}

impl From<String> for Unreachable {
    fn from(why: String) -> Self {
        Self { why, retryable: false }
    }
}

fn no_longer_a_target(account: &str) -> String {
    format!(
        "account {account} is no longer a deploy target: add its role back to EPHEMERA_DEPLOY_ROLE_ARN \
         (or _BY_REPOSITORY / EPHEMERA_DEV_DEPLOY_ROLE_ARN) to manage what lives there"
    )
}
