//! The accounts a sweep covers: the platform's own, and each deploy target's (its role assumed
//! for the sweep). Each is listed with its own rate limit; one that cannot be reached or listed
//! is reported, never skipped in silence, and the environments placed there wait for the next
//! sweep.

use std::fmt;

use ephemera_domain::placement::Target;
use ephemera_domain::sweep::{ResourceInfo, StackInfo};
use ephemera_domain::{Environment, Status};

use super::calls::{retry, RateLimit};
use super::{AccountReport, Failure, Reaper, Summary, SweepOptions};
use crate::ports::{PortError, Site};

/// An account environments live in: a deploy target's, or (None) the platform's own.
pub(super) struct Place(pub Option<Target>);

impl Place {
    fn account(&self) -> Option<&str> {
        self.0.as_ref().map(|t| t.account.as_str())
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.account().unwrap_or("platform"))
    }
}

/// What was found in one account.
pub(super) struct Facts {
    pub place: String,
    pub account: Option<String>,
    pub site: Site,
    pub resources: Vec<ResourceInfo>,
    pub stacks: Vec<StackInfo>,
    pub limit: RateLimit,
    pub calls: u64,
}

impl Facts {
    pub fn report(&self, environments: usize) -> AccountReport {
        AccountReport {
            account: self.place.clone(),
            environments,
            stacks: self.stacks.len(),
            resources: self.resources.len(),
            operations: self.calls,
            error: None,
        }
    }
}

impl Reaper {
    /// Lists one account's resources (unless light), then its stacks.
    pub(super) async fn gather(&self, place: &Place, opts: SweepOptions) -> Result<Facts, Failure> {
        let failed =
            |action: &'static str, e: PortError| Failure { action, target: place.to_string(), error: e.to_string() };
        let limit = RateLimit::new(self.settings.calls_per_second);
        let mut calls = 0;
        let site = self.sites.for_sweep(place.0.as_ref()).await.map_err(|e| failed("reach account", e))?;
        let resources = match opts.light {
            true => Vec::new(),
            false => {
                retry(&limit, &mut calls, || site.inventory.found()).await.map_err(|e| failed("list resources", e))?
            }
        };
        let stacks = retry(&limit, &mut calls, || site.stacks.list()).await.map_err(|e| failed("list stacks", e))?;
        let account = place.account().map(str::to_owned);
        Ok(Facts { place: place.to_string(), account, site, resources, stacks, limit, calls })
    }
}

/// The environments whose stacks live, in every account gathered.
pub(super) fn live_environments(gathered: &[Result<Facts, Failure>]) -> std::collections::BTreeSet<String> {
    let stacks = gathered.iter().flatten().flat_map(|f| f.stacks.iter());
    let live = stacks.filter(|s| !s.status.is_deleted());
    live.filter_map(|s| ephemera_domain::StackName::environment(&s.name)).map(|e| e.to_string()).collect()
}

/// Each reached account's facts with the environments placed there (one recorded in `own`, the
/// platform's own account, lives in the platform's place). An account not reached is reported
/// in `summary`; environments in an account that is no longer a target are errors.
pub(super) fn partition(
    places: &[Place],
    own: Option<&str>,
    envs: Vec<Environment>,
    gathered: Vec<Result<Facts, Failure>>,
    summary: &mut Summary,
) -> (Vec<(Facts, Vec<Environment>)>, Vec<Failure>) {
    let mut reachable: Vec<(Facts, Vec<Environment>)> = Vec::new();
    for (place, result) in places.iter().zip(gathered) {
        match result {
            Ok(facts) => reachable.push((facts, Vec::new())),
            Err(failure) => {
                summary.accounts.push(AccountReport::failed(place.to_string(), &failure.error));
                summary.errors.push(failure);
            }
        }
    }
    let mut strays = Vec::new();
    for env in envs {
        let account = env.account.as_deref().filter(|a| Some(*a) != own);
        let gone = env.status == Status::Deleted && env.is_converged();
        match places.iter().any(|p| p.account() == account) {
            true => {
                if let Some((_, mine)) = reachable.iter_mut().find(|(f, _)| f.account.as_deref() == account) {
                    mine.push(env);
                }
            }
            // Long gone: nothing of it is left to manage.
            false if gone => {}
            false => strays.push(Failure {
                action: "sweep account",
                target: env.name.to_string(),
                error: format!(
                    "lives in account {}, which is not a deploy target: configure its role to manage it",
                    env.account.as_deref().unwrap_or_default()
                ),
            }),
        }
    }
    (reachable, strays)
}
