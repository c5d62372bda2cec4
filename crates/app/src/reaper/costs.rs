//! Each environment's cost estimate from its tagged resources, recorded on its row.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ephemera_domain::cost::{accrued, resource_type_of, round_cents};
use ephemera_domain::{Desired, Environment, StackName, Status};
use tracing::warn;

use super::calls::{retry, RateLimit};
use super::{CostSummary, Reaper};

impl Reaper {
    /// Each environment's estimate from its tagged resources; recorded on its row.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn costs(
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
