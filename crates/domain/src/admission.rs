//! Whether a new environment may be created now, or must wait: developer quotas (per owner and
//! in all) and the monthly budget, judged against the environments already live.

use crate::developer::Quotas;
use crate::environment::{Environment, EnvironmentKind};
use crate::lifecycle::{Desired, Status};

/// Why `env` must wait, if it must: a developer quota is full, or its `monthly` cost (USD) would
/// take the projected spend of live environments past `budget`. `all` is every registered
/// environment; `env` itself is not counted.
pub fn wait_reason(
    env: &Environment,
    all: &[Environment],
    quotas: Quotas,
    budget: Option<f64>,
    monthly: f64,
) -> Option<String> {
    let live: Vec<&Environment> = all
        .iter()
        .filter(|e| e.name != env.name && e.desired == Desired::Up)
        .filter(|e| matches!(e.status, Status::Creating | Status::Updating | Status::Ready))
        .collect();
    if env.kind == EnvironmentKind::Dev {
        let dev: Vec<&&Environment> = live.iter().filter(|e| e.kind == EnvironmentKind::Dev).collect();
        let mine = dev.iter().filter(|e| e.owner == env.owner).count();
        if mine >= quotas.per_owner {
            return Some(format!(
                "waiting for quota: {} has {mine} live environments; the limit is {}",
                env.owner, quotas.per_owner
            ));
        }
        if dev.len() >= quotas.global {
            return Some(format!(
                "waiting for quota: {} developer environments are live; the limit is {}",
                dev.len(),
                quotas.global
            ));
        }
    }
    let budget = budget?;
    let live: f64 = live.iter().filter_map(|e| e.cost_monthly_usd).sum();
    (live + monthly > budget).then(|| {
        format!("waiting for budget: live environments cost ${live:.2}/month, this one ${monthly:.2}, the budget is ${budget:.2}")
    })
}

/// Whether deciding needs the registry at all (a developer environment, or a budget set).
pub fn needs_registry(env: &Environment, budget: Option<f64>) -> bool {
    env.kind == EnvironmentKind::Dev || budget.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::test_support::pr_environment;
    use crate::EnvironmentName;

    fn live(name: &str, kind: EnvironmentKind, owner: &str, cost: f64) -> Environment {
        let mut e = pr_environment();
        e.name = EnvironmentName::parse(name).unwrap();
        e.kind = kind;
        e.owner = owner.into();
        e.status = Status::Ready;
        e.cost_monthly_usd = Some(cost);
        e
    }

    #[test]
    fn developer_quotas_per_owner_then_in_all() {
        let quotas = Quotas { per_owner: 1, global: 2, queue_when_full: true };
        let new = live("dev-alice-2", EnvironmentKind::Dev, "alice", 0.0);
        let mine = live("dev-alice", EnvironmentKind::Dev, "alice", 1.0);
        let reason = wait_reason(&new, std::slice::from_ref(&mine), quotas, None, 1.0).unwrap();
        assert!(reason.contains("alice has 1 live environments"), "{reason}");
        let bob = live("dev-bob", EnvironmentKind::Dev, "bob", 1.0);
        let carol = live("dev-carol", EnvironmentKind::Dev, "carol", 1.0);
        let reason = wait_reason(&new, &[bob.clone(), carol.clone()], quotas, None, 1.0).unwrap();
        assert!(reason.contains("2 developer environments are live"), "{reason}");
        assert_eq!(wait_reason(&new, &[bob], quotas, None, 1.0), None);
        // Itself, and environments going down or not yet up, do not count.
        let mut down = mine.clone();
        down.desired = Desired::Down;
        assert_eq!(wait_reason(&mine, &[mine.clone(), down], quotas, None, 1.0), None);
    }

    #[test]
    fn the_budget_counts_live_environments_run_rates() {
        let new = live("pr-9-a-b", EnvironmentKind::Pr, "octo", 0.0);
        let others = [live("pr-1-a-b", EnvironmentKind::Pr, "x", 6.0), live("pr-2-a-b", EnvironmentKind::Pr, "y", 3.0)];
        let quotas = Quotas::default();
        assert_eq!(wait_reason(&new, &others, quotas, Some(10.0), 1.0), None);
        let reason = wait_reason(&new, &others, quotas, Some(10.0), 1.5).unwrap();
        assert!(reason.contains("$9.00/month, this one $1.50, the budget is $10.00"), "{reason}");
        assert_eq!(wait_reason(&new, &others, quotas, None, 100.0), None);
        assert!(!needs_registry(&new, None) && needs_registry(&new, Some(1.0)));
    }
}
