//! Keeping the running totals true: a full sweep gives back the claims of environments that are
//! gone and has live environments that hold none take one that only counts (decided by
//! [`ephemera_domain::admission::mend`]). So totals made wrong by a lost release, a stack
//! deleted outside the platform or environments made before claims existed mend themselves.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use ephemera_domain::admission::{claim, counting, mend};
use ephemera_domain::Environment;
use serde::Serialize;
use tracing::{info, warn};

use super::calls::{retry, RateLimit};
use super::{Failure, Reaper};

/// What mending the totals did (in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerReport {
    /// Claims of gone environments given back.
    pub released: usize,
    /// Live environments without a claim, now counted.
    pub counted: usize,
}

impl Reaper {
    /// Mends the totals against the rows and the environments whose stacks live anywhere.
    pub(super) async fn mend_ledger(
        &self,
        envs: &[Environment],
        live: &BTreeSet<String>,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<LedgerReport, Failure> {
        let failed = |target: String, e: crate::ports::PortError| Failure {
            action: "mend totals",
            target,
            error: e.to_string(),
        };
        let limit = RateLimit::new(self.settings.calls_per_second);
        let mut calls = 0;
        let holders =
            retry(&limit, &mut calls, || self.ledger.holders()).await.map_err(|e| failed("claims".into(), e))?;
        let plan = mend(envs, live, &holders, now, self.settings.grace);
        let report = LedgerReport { released: plan.release.len(), counted: plan.take.len() };
        if dry_run || (plan.release.is_empty() && plan.take.is_empty()) {
            return Ok(report);
        }
        info!(release = ?plan.release, count = ?plan.take, "mending the running totals");
        for name in &plan.release {
            if let Err(e) = retry(&limit, &mut calls, || self.ledger.release(name)).await {
                warn!(environment = %name, error = %e, "could not give back a gone environment's claim");
            }
        }
        for e in envs.iter().filter(|e| plan.take.contains(&e.name)) {
            let account = e.account.as_deref().map(|a| (a, 0));
            let counted = counting(claim(e, Default::default(), None, e.cost_monthly_usd.unwrap_or(0.0), account));
            if let Err(err) = retry(&limit, &mut calls, || self.ledger.claim(&e.name, &counted)).await {
                warn!(environment = %e.name, error = %err, "could not count a live environment");
            }
        }
        Ok(report)
    }
}
