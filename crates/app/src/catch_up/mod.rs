//! Catching up with GitHub, in the sweep. GitHub sends each delivery once; a close or a push
//! whose delivery failed never arrives, and the environment lives on, or stays at an old commit.
//!
//! - [`pulls`]: each repository's open pull requests are listed (conditional requests: a page
//!   unchanged since its `ETag` costs no rate limit) and compared with what the registry
//!   recorded ([`ephemera_domain::catch_up::compare`]). What differs is read whole and recorded
//!   through the intake as its delivery would have been ([`Intake::catch_up`]): a missed close
//!   sends the environment down, a missed push redeploys it at the new head.
//! - [`redeliver`]: failed deliveries of handled events are asked of GitHub again, once, within
//!   its three days. They carry their delivery id, so what was recorded once is not again.
//!
//! Every request heeds GitHub's rate limit ([`Budget`]): the pass stops asking before the
//! budget the webhook and the notifier need is spent, and says so. A light sweep checks the
//! repositories checked longest ago, within a number of requests; the nightly sweep checks all.
//! A repository GitHub answers 403 or 404 for is reported, and nothing of it is torn down.

use std::sync::Arc;

use ephemera_domain::catch_up::Budget;
use ephemera_domain::Environment;
use serde::Serialize;

use crate::clock::Clock;
use crate::intake::Intake;
use crate::ports::{GitHubCatchUp, ObjectStore};

mod pulls;
mod redeliver;

/// The catch-up's settings (`EPHEMERA_GITHUB_*`, read by the wiring crate's configuration).
#[derive(Debug, Clone)]
pub struct CatchUpSettings {
    /// `EPHEMERA_GITHUB_RATE_RESERVE` (default 500): requests left to the webhook and notifier;
    /// the pass stops asking when GitHub reports no more than this remaining.
    pub reserve: u64,
    /// `EPHEMERA_GITHUB_LIGHT_REQUESTS` (default 60): requests a light sweep may make, for pull
    /// requests and again for deliveries.
    pub light_requests: u64,
    /// `EPHEMERA_DEPLOY_FORKS`: a fork's new head is deployed without approval.
    pub deploy_forks: bool,
    /// Where what was listed is kept, with its `ETag`s (`catch-up/open-pulls.json`).
    pub bucket: String,
}

pub struct CatchUp {
    pub github: Arc<dyn GitHubCatchUp>,
    /// Records what was missed as its delivery would have.
    pub intake: Arc<Intake>,
    pub store: Arc<dyn ObjectStore>,
    pub clock: Arc<dyn Clock>,
    pub settings: CatchUpSettings,
}

/// What catching up found and did (in a dry run: what it would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CatchUpReport {
    /// Repositories whose open pull requests were listed whole.
    pub repositories: usize,
    /// Repositories left for a later sweep: the budget ran out first.
    pub unchecked: Vec<String>,
    /// Requests made to GitHub, and how many of them were answered 304.
    pub requests: u64,
    pub not_modified: u64,
    /// Environments sent down because their pull request was closed and the close never came.
    pub missed_closes: Vec<String>,
    /// Environments redeployed because their pull request's head moved and the push never came.
    pub missed_pushes: Vec<String>,
    /// Deliveries asked of GitHub again (`event delivery-id`).
    pub redelivered: Vec<String>,
    /// Repositories and hooks GitHub answered 403 or 404 for, once each, with why.
    pub inaccessible: Vec<String>,
    /// Why the pass stopped asking GitHub, if it did before it was done.
    pub stopped: Option<String>,
    pub errors: Vec<String>,
}

impl CatchUpReport {
    /// Reports `what` inaccessible, once.
    fn inaccessible(&mut self, what: String) {
        if !self.inaccessible.contains(&what) {
            tracing::warn!(%what, "GitHub does not let the platform read this; its environments are left as they are");
            self.inaccessible.push(what);
        }
    }
}

impl CatchUp {
    /// One pass over the live pull request environments among `envs`, then the deliveries.
    #[tracing::instrument(skip_all, fields(light, dry_run))]
    pub async fn run(&self, envs: &[Environment], light: bool, dry_run: bool) -> CatchUpReport {
        let limit = light.then_some(self.settings.light_requests);
        let mut report = CatchUpReport::default();
        let mut budget = Budget::new(self.settings.reserve, limit);
        self.pulls(envs, &mut budget, dry_run, &mut report).await;
        // Deliveries have a budget of their own, but not past a rate limit already reached.
        let mut deliveries = Budget { stopped: budget.stopped.clone(), ..Budget::new(self.settings.reserve, limit) };
        self.redeliver(&mut deliveries, dry_run, &mut report).await;
        report.requests = budget.used + deliveries.used;
        report.stopped = budget.stopped.or(deliveries.stopped);
        if let Some(why) = &report.stopped {
            tracing::warn!(%why, "stopped asking GitHub; the rest waits for a later sweep");
        }
        report
    }
}
