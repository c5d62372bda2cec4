//! Whether a new environment may be created now, or must wait: developer quotas (per owner and
//! in all), the monthly budget and each deploy account's ceiling, kept as running totals. An
//! environment takes its slots ([`Claim`]) when its stack is about to be created and gives them
//! back when it is deleted; a claim is taken only if no counter would pass its limit, atomically
//! (the registry's conditional update), so the cost of deciding does not grow with the number
//! of environments and two creates cannot both take the last slot.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::developer::Quotas;
use crate::environment::{Environment, EnvironmentKind};
use crate::lifecycle::{Desired, Status};
use crate::names::{sha256_hex, EnvironmentName};
use crate::placement::account_counter;

/// Environments holding a claim, of every kind.
pub const LIVE: &str = "live";
/// Developer environments holding a claim.
pub const DEV: &str = "dev";
/// Estimated monthly run rate of the environments holding a claim, in US cents.
pub const BUDGET_CENTS: &str = "budget_cents";

/// One running total an environment adds to while it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    pub counter: String,
    pub amount: i64,
    /// The total may not pass this; None: only counted.
    pub limit: Option<i64>,
}

/// What an environment holds while it lives, and the account it was placed in (None: the
/// platform's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub takes: Vec<Take>,
    pub account: Option<String>,
}

/// A developer's own counter (the owner's principal, hashed to a short key).
pub fn owner_counter(owner: &str) -> String {
    format!("dev:{}", sha256_hex(owner, 16))
}

fn cents(usd: f64) -> i64 {
    (usd * 100.0).ceil().max(0.0) as i64
}

/// The claim `env` takes: counted in all, against the developer quotas for a developer
/// environment, its `monthly` cost (USD) against `budget`, and a slot of its `account` under
/// `ceiling`.
pub fn claim(
    env: &Environment,
    quotas: Quotas,
    budget: Option<f64>,
    monthly: f64,
    account: Option<(&str, u64)>,
) -> Claim {
    let take = |counter: String, amount: i64, limit: Option<i64>| Take { counter, amount, limit };
    let mut takes = vec![take(LIVE.into(), 1, None)];
    if env.kind == EnvironmentKind::Dev {
        takes.push(take(owner_counter(&env.owner), 1, Some(quotas.per_owner as i64)));
        takes.push(take(DEV.into(), 1, Some(quotas.global as i64)));
    }
    takes.push(take(BUDGET_CENTS.into(), cents(monthly), budget.map(cents)));
    if let Some((account, ceiling)) = account {
        takes.push(take(account_counter(account), 1, Some(ceiling as i64)));
    }
    Claim { takes, account: account.map(|(a, _)| a.to_owned()) }
}

/// The first of the claim's takes that would pass its limit, given the running totals.
pub fn overflow<'a>(claim: &'a Claim, totals: &BTreeMap<String, i64>) -> Option<&'a Take> {
    claim.takes.iter().find(|t| t.limit.is_some_and(|limit| total(totals, &t.counter) + t.amount > limit))
}

pub fn total(totals: &BTreeMap<String, i64>, counter: &str) -> i64 {
    totals.get(counter).copied().unwrap_or(0)
}

/// Why an environment waits: `full` could not be taken at these totals.
pub fn wait_reason(env: &Environment, full: &Take, totals: &BTreeMap<String, i64>) -> String {
    let now = total(totals, &full.counter);
    let limit = full.limit.unwrap_or_default();
    match full.counter.as_str() {
        BUDGET_CENTS => format!(
            "waiting for budget: live environments cost ${:.2}/month, this one ${:.2}, the budget is ${:.2}",
            now as f64 / 100.0,
            full.amount as f64 / 100.0,
            limit as f64 / 100.0
        ),
        DEV => format!("waiting for quota: {now} developer environments are live; the limit is {limit}"),
        c if c.starts_with("dev:") => {
            format!("waiting for quota: {} has {now} live environments; the limit is {limit}", env.owner)
        }
        c => format!(
            "waiting for room: account {} holds {now} environments; the ceiling is {limit}",
            c.trim_start_matches("account:")
        ),
    }
}

/// What the full sweep does to keep the running totals true.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mend {
    /// Claims of environments that are gone: no row, or deleted and untouched for the grace.
    pub release: Vec<EnvironmentName>,
    /// Environments meant to be up whose stack lives but that hold no claim (made before claims
    /// existed, or whose claim was lost): each takes one that only counts, never refused.
    pub take: Vec<EnvironmentName>,
}

/// The sweep's mend of the totals, from the rows, the environments whose stacks live (in any
/// account) and the holders of claims.
pub fn mend(
    envs: &[Environment],
    live_stacks: &BTreeSet<String>,
    holders: &[EnvironmentName],
    now: DateTime<Utc>,
    grace: Duration,
) -> Mend {
    let rows: BTreeMap<&str, &Environment> = envs.iter().map(|e| (e.name.as_str(), e)).collect();
    let held: BTreeSet<&str> = holders.iter().map(|h| h.as_str()).collect();
    let gone =
        |e: &Environment| e.desired == Desired::Down && e.status == Status::Deleted && e.updated_at + grace < now;
    let release = holders
        .iter()
        .filter(|h| !live_stacks.contains(h.as_str()))
        .filter(|h| rows.get(h.as_str()).is_none_or(|e| gone(e)))
        .cloned()
        .collect();
    // One going down is not counted again: its stack is being deleted, and its claim given back.
    let take = envs
        .iter()
        .filter(|e| e.desired == Desired::Up)
        .filter(|e| live_stacks.contains(e.name.as_str()) && !held.contains(e.name.as_str()))
        .map(|e| e.name.clone())
        .collect();
    Mend { release, take }
}

/// A claim that only counts: every limit lifted (a live environment is counted, never refused).
pub fn counting(mut claim: Claim) -> Claim {
    claim.takes.iter_mut().for_each(|t| t.limit = None);
    claim
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::test_support::pr_environment;
    use crate::EnvironmentName;

    fn env(name: &str, kind: EnvironmentKind, owner: &str) -> Environment {
        let mut e = pr_environment();
        e.name = EnvironmentName::parse(name).unwrap();
        e.kind = kind;
        e.owner = owner.into();
        e
    }

    fn totals(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn developer_quotas_per_owner_then_in_all() {
        let quotas = Quotas { per_owner: 1, global: 2, queue_when_full: true };
        let new = env("dev-alice-2", EnvironmentKind::Dev, "alice");
        let claim = claim(&new, quotas, None, 1.0, None);
        let mine = owner_counter("alice");
        let full = overflow(&claim, &totals(&[(&mine, 1)])).unwrap();
        let reason = wait_reason(&new, full, &totals(&[(&mine, 1)]));
        assert!(reason.contains("alice has 1 live environments; the limit is 1"), "{reason}");
        let full = overflow(&claim, &totals(&[(DEV, 2)])).unwrap();
        assert!(wait_reason(&new, full, &totals(&[(DEV, 2)])).contains("2 developer environments are live"));
        assert_eq!(overflow(&claim, &totals(&[(DEV, 1), (&owner_counter("bob"), 1)])), None);
        // Pull request environments are not developer quota.
        let pr = env("pr-9-a-b", EnvironmentKind::Pr, "alice");
        assert_eq!(overflow(&super::claim(&pr, quotas, None, 1.0, None), &totals(&[(&mine, 5), (DEV, 5)])), None);
    }

    #[test]
    fn the_budget_counts_the_run_rates_of_the_environments_holding_claims() {
        let new = env("pr-9-a-b", EnvironmentKind::Pr, "octo");
        let quotas = Quotas::default();
        let now = totals(&[(BUDGET_CENTS, 900)]);
        assert_eq!(overflow(&claim(&new, quotas, Some(10.0), 1.0, None), &now), None);
        let over = claim(&new, quotas, Some(10.0), 1.5, None);
        let reason = wait_reason(&new, overflow(&over, &now).unwrap(), &now);
        assert!(reason.contains("$9.00/month, this one $1.50, the budget is $10.00"), "{reason}");
        // Without a budget the cost is counted, never refused.
        let free = claim(&new, quotas, None, 100.0, None);
        assert_eq!(overflow(&free, &now), None);
        assert!(free.takes.iter().any(|t| t.counter == BUDGET_CENTS && t.amount == 10_000));
    }

    #[test]
    fn the_sweep_gives_back_what_is_gone_and_counts_what_lives_unclaimed() {
        let now = pr_environment().created_at + Duration::days(1);
        let mut deleted = env("pr-1-a-b", EnvironmentKind::Pr, "x");
        (deleted.desired, deleted.status, deleted.updated_at) =
            (Desired::Down, Status::Deleted, now - Duration::hours(1));
        let mut just_deleted = env("pr-2-a-b", EnvironmentKind::Pr, "x");
        (just_deleted.desired, just_deleted.status, just_deleted.updated_at) = (Desired::Down, Status::Deleted, now);
        let live = env("pr-3-a-b", EnvironmentKind::Pr, "x");
        let unclaimed = env("pr-4-a-b", EnvironmentKind::Pr, "x");
        let queued = env("pr-5-a-b", EnvironmentKind::Pr, "x");
        // Its stack still there, being deleted, its claim already given back: not counted again.
        let mut going = env("pr-6-a-b", EnvironmentKind::Pr, "x");
        (going.desired, going.status) = (Desired::Down, Status::Deleting);
        let name = |s: &str| EnvironmentName::parse(s).unwrap();
        let holders = [name("pr-1-a-b"), name("pr-2-a-b"), name("pr-3-a-b"), name("pr-5-a-b"), name("pr-9-no-row")];
        let stacks: BTreeSet<String> = ["pr-3-a-b", "pr-4-a-b", "pr-6-a-b"].map(String::from).into();
        let envs = [deleted, just_deleted, live, unclaimed, queued, going];
        let m = mend(&envs, &stacks, &holders, now, Duration::minutes(10));
        assert_eq!(m.release, [name("pr-1-a-b"), name("pr-9-no-row")], "gone past the grace, or never recorded");
        assert_eq!(m.take, [name("pr-4-a-b")]);
        let counted = counting(claim(&envs[3], Quotas::default(), Some(1.0), 5.0, Some(("222222222222", 1))));
        assert!(counted.takes.iter().all(|t| t.limit.is_none()));
    }

    #[test]
    fn an_account_holds_environments_up_to_its_ceiling() {
        let new = env("pr-9-a-b", EnvironmentKind::Pr, "octo");
        let claim = claim(&new, Quotas::default(), None, 0.0, Some(("222222222222", 3)));
        assert_eq!(claim.account.as_deref(), Some("222222222222"));
        assert_eq!(overflow(&claim, &totals(&[("account:222222222222", 2)])), None);
        let full = totals(&[("account:222222222222", 3)]);
        let reason = wait_reason(&new, overflow(&claim, &full).unwrap(), &full);
        assert_eq!(reason, "waiting for room: account 222222222222 holds 3 environments; the ceiling is 3");
    }
}
