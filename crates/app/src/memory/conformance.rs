//! The registry's contract, as checks any implementation must pass: the DynamoDB adapter (on
//! the emulator, `tests/tests/registry_conformance.rs`) and [`super::MemoryRegistry`] (the unit
//! tests below). Each check is given a fresh, empty registry and panics when the registry
//! breaks the contract.
//!
//! What is checked: delivery dedupe (`Duplicate`, and no mark left by a refused change), event
//! order by (`event_at`, rank) (`Stale`), one repository per name (`Conflict`), which fields a
//! change sets, keeps and clears (the expiry notice; the reason when none is given),
//! generations and the `generation = :g` condition of progress, `request_down` and `retire`,
//! leases (free, expired, the same holder again, released by its holder only), stack statuses
//! ordered by `status_at` and about one stack id, the reason and preview URL removal rules,
//! `observed_generation` on settling, reasons cut to 2,000 characters, whole-second times,
//! and that nothing is written for an environment that is not recorded.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ephemera_domain::{
    Desired, Environment, EnvironmentKind, EnvironmentName, EventOrder, RepoName, Reported, StackStatus, Status,
};

use crate::ports::{Admit, Change, ChangeOutcome, GoDown, Placement, Progress, Registry, StackStatusUpdate};
use crate::ports::{Lease, Stamp};
use crate::ports::{StackResource, TimelineEntry};
use ephemera_domain::admission::{Claim, Take};

/// One check, given a fresh registry.
pub type Check = fn(Arc<dyn Registry>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

type Running = Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        /// Every check, by name.
        pub fn checks() -> Vec<(&'static str, Check)> {
            vec![$((stringify!($name), (|r| -> Running { Box::pin($name(r)) }) as Check)),*]
        }

        /// The suite against the in-memory registry: one test per check.
        #[cfg(test)]
        mod memory_registry {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(std::sync::Arc::new(crate::memory::MemoryRegistry::new())).await;
                }
            )*
        }
    };
}

suite![
    a_first_change_records_every_field,
    a_later_change_bumps_the_generation_and_keeps_what_it_does_not_carry,
    a_redelivery_is_a_duplicate_and_changes_nothing,
    only_strictly_later_events_are_accepted,
    another_repositorys_change_is_a_conflict,
    a_change_naming_no_repository_keeps_the_records,
    reasons_are_cut_to_2000_characters,
    a_new_change_clears_the_expiry_notice,
    nothing_is_written_for_an_unknown_environment,
    preserved_cost_and_notified_are_kept_across_changes,
    a_lease_is_held_until_it_expires_or_its_holder_releases_it,
    progress_is_recorded_for_the_current_generation_only,
    progress_writes_what_it_carries,
    settled_progress_moves_observed_generation_and_drops_a_missing_url,
    request_down_starts_a_new_generation_if_still_at_the_given_one,
    retire_settles_a_new_generation_as_deleted,
    stack_status_only_moves_forward_in_time,
    stack_status_is_about_one_stack,
    stack_status_writes_what_it_carries,
    progress_and_stack_events_share_status_at,
    list_holds_every_kind,
    a_retired_environment_comes_back_with_a_new_change,
    a_change_may_require_the_generation_it_was_decided_on,
    a_claim_is_taken_whole_or_not_at_all_and_given_back_once,
    concurrent_claims_for_the_last_slot_admit_exactly_one,
    pages_hold_every_environment_once_in_name_order,
    a_delivery_is_marked_once_and_can_be_unmarked,
    the_timeline_keeps_each_entry_once_in_time_order,
];

/// Runs every check, each on the registry `make` gives for its name (a fresh one each), at
/// the same time; then panics naming every check that failed.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = Arc<dyn Registry>>,
{
    run(checks(), make).await
}

/// Runs `checks` as [`run_all`] does.
pub async fn run<F, Fut>(checks: Vec<(&'static str, Check)>, make: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = Arc<dyn Registry>>,
{
    let mut running = Vec::new();
    for (name, check) in checks {
        let registry = make(name).await;
        running.push((name, tokio::spawn(check(registry))));
    }
    let total = running.len();
    let mut failed = Vec::new();
    for (name, task) in running {
        if let Err(e) = task.await {
            let why = match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            failed.push(format!("{name}: {why}"));
        }
    }
    assert!(failed.is_empty(), "{} of {total} registry checks failed:\n{}", failed.len(), failed.join("\n"));
}

// ---- fixtures ----

/// A time with milliseconds, which the registry keeps only as whole seconds.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T09:00:00.250Z").unwrap().to_utc()
}

fn whole(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

fn repo() -> RepoName {
    RepoName::parse("acme/todo-app").unwrap()
}

fn pr() -> EnvironmentName {
    EnvironmentName::for_pull_request(&repo(), 7).unwrap()
}

fn dev() -> EnvironmentName {
    EnvironmentName::parse("dev-kyle").unwrap()
}

/// The pull request's opening, as the intake records it.
fn open() -> Change {
    let at = t0();
    Change {
        repository: Some(repo()),
        pull_request: Some(7),
        commit: Some("a3b9c1d2e4f5061728394a5b6c7d8e9f01234567".into()),
        head_ref: Some("feature/due-dates".into()),
        head_commit: Some("a3b9c1d2e4f5061728394a5b6c7d8e9f01234567".into()),
        base_ref: Some("main".into()),
        source: Some(ephemera_domain::CommitSource::Head),
        reason: Some("opened".into()),
        ..Change::new(
            pr(),
            EnvironmentKind::Pr,
            "kyle-dev",
            Desired::Up,
            EventOrder::new(at.timestamp(), EventOrder::RANK_OPEN),
            at + Duration::days(7) + Duration::milliseconds(500),
            at,
        )
    }
}

/// A change `secs` seconds after the opening, recorded `secs` seconds later too.
fn later(secs: i64, rank: u8) -> Change {
    let c = open();
    Change { order: EventOrder::new(c.order.at + secs, rank), at: c.at + Duration::seconds(secs), ..c }
}

/// A developer's environment.
fn dev_change() -> Change {
    Change {
        name: dev(),
        kind: EnvironmentKind::Dev,
        repository: None,
        pull_request: None,
        owner: "kyle".into(),
        commit: None,
        head_ref: None,
        head_commit: None,
        base_ref: None,
        source: None,
        reason: None,
        ..open()
    }
}

fn status_update(stack_id: &str, status: Status, at_ms: i64) -> StackStatusUpdate {
    StackStatusUpdate { stack_id: stack_id.into(), status, reason: None, outputs: None, preview_url: None, at_ms }
}

fn outputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/ephemera-pr-7-acme-todo-app-6acfdc9491/one";
const OTHER_STACK: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/ephemera-pr-7-acme-todo-app-6acfdc9491/two";

async fn read(r: &dyn Registry, name: &EnvironmentName) -> Environment {
    r.get(name).await.expect("registry readable").unwrap_or_else(|| panic!("{name} is not recorded"))
}

async fn apply(r: &dyn Registry, delivery: &str, change: &Change) -> ChangeOutcome {
    r.apply_change(delivery, change).await.expect("change recorded or refused")
}

/// Records the opening and returns the record.
async fn opened(r: &dyn Registry) -> Environment {
    assert_eq!(apply(r, "d-open", &open()).await, ChangeOutcome::Accepted { generation: 1 });
    read(r, &pr()).await
}

// ---- changes of desired state ----

pub async fn a_first_change_records_every_field(r: Arc<dyn Registry>) {
    let c = open();
    let e = opened(&*r).await;
    assert_eq!((e.name.clone(), e.kind, e.repository.clone(), e.pull_request), (pr(), c.kind, Some(repo()), Some(7)));
    assert_eq!(
        (e.owner.as_str(), e.commit.as_deref(), e.head_ref.as_deref()),
        ("kyle-dev", c.commit.as_deref(), c.head_ref.as_deref())
    );
    assert_eq!(
        (e.head_commit.as_deref(), e.base_ref.as_deref(), e.source.map(|s| s.as_str())),
        (c.head_commit.as_deref(), Some("main"), Some("head"))
    );
    assert_eq!((e.desired, e.status, e.status_reason.as_deref()), (Desired::Up, Status::Pending, Some("opened")));
    assert_eq!((e.generation, e.observed_generation, e.last_event), (1, 0, Some(c.order)));
    assert_eq!(e.status_at, Some(c.at.timestamp_millis()), "status_at is the change's time in ms");
    assert_eq!((e.created_at, e.updated_at), (whole(c.at), whole(c.at)), "times are whole seconds");
    assert_eq!(e.expires_at, whole(c.expires_at));
    assert_eq!(
        (e.stack_id.clone(), e.outputs.is_empty(), e.preview_url.clone(), e.notified.clone()),
        (None, true, None, None)
    );
    assert_eq!((e.preserved, e.cost_monthly_usd, e.cost_accrued_usd, e.expiry_notice_at), (false, None, None, None));
}

pub async fn a_later_change_bumps_the_generation_and_keeps_what_it_does_not_carry(r: Arc<dyn Registry>) {
    let first = opened(&*r).await;
    // A close: no commit, source, refs or number; a reason.
    let close = Change {
        desired: Desired::Down,
        owner: "acme-lead".into(),
        commit: None,
        source: None,
        head_ref: None,
        base_ref: None,
        pull_request: None,
        head_commit: Some("b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f80".into()),
        reason: Some("pull request merged".into()),
        ..later(3600, EventOrder::RANK_CLOSE)
    };
    assert_eq!(apply(&*r, "d-close", &close).await, ChangeOutcome::Accepted { generation: 2 });
    let e = read(&*r, &pr()).await;
    assert_eq!((e.generation, e.observed_generation, e.desired, e.status), (2, 0, Desired::Down, Status::Pending));
    assert_eq!(
        (e.commit, e.source, e.head_ref, e.base_ref),
        (first.commit, first.source, first.head_ref, first.base_ref)
    );
    assert_eq!((e.pull_request, e.head_commit, e.owner.as_str()), (Some(7), close.head_commit, "acme-lead"));
    assert_eq!(e.status_reason.as_deref(), Some("pull request merged"));
    assert_eq!((e.created_at, e.updated_at), (first.created_at, whole(close.at)));
    assert_eq!(
        (e.status_at, e.last_event, e.expires_at),
        (Some(close.at.timestamp_millis()), Some(close.order), whole(close.expires_at))
    );
    // A change without a reason removes the one recorded.
    let reopen = Change { reason: None, ..later(7200, EventOrder::RANK_OPEN) };
    assert_eq!(apply(&*r, "d-reopen", &reopen).await, ChangeOutcome::Accepted { generation: 3 });
    let e = read(&*r, &pr()).await;
    assert_eq!((e.status_reason, e.desired, e.status), (None, Desired::Up, Status::Pending));
}

pub async fn a_redelivery_is_a_duplicate_and_changes_nothing(r: Arc<dyn Registry>) {
    let before = opened(&*r).await;
    // The same delivery id, even carrying a later event, is not applied again.
    assert_eq!(apply(&*r, "d-open", &later(60, EventOrder::RANK_PUSH)).await, ChangeOutcome::Duplicate);
    assert_eq!(read(&*r, &pr()).await, before);
    // A delivery id is remembered whatever environment it was about.
    assert_eq!(apply(&*r, "d-open", &dev_change()).await, ChangeOutcome::Duplicate);
    assert_eq!(r.get(&dev()).await.unwrap(), None);
}

pub async fn a_delivery_is_marked_once_and_can_be_unmarked(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let at = t0();
    assert!(!r.mark_delivery("d-open", pr().as_str(), at).await.unwrap(), "a change's delivery is marked too");
    assert!(r.mark_delivery("c-1", pr().as_str(), at).await.unwrap());
    assert!(!r.mark_delivery("c-1", pr().as_str(), at).await.unwrap());
    assert_eq!(apply(&*r, "c-1", &later(60, EventOrder::RANK_PUSH)).await, ChangeOutcome::Duplicate, "one id space");
    r.unmark_delivery("c-1").await.unwrap();
    assert!(r.mark_delivery("c-1", pr().as_str(), at).await.unwrap(), "marked again once unmarked");
    r.unmark_delivery("never-seen").await.unwrap();
}

pub async fn the_timeline_keeps_each_entry_once_in_time_order(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let entry = |at_ms: i64, what: &str, status: Status| TimelineEntry {
        at_ms,
        what: what.into(),
        status,
        desired: Desired::Up,
        generation: 1,
        reason: (status == Status::Failed).then(|| "x".repeat(2500)),
    };
    let t = t0().timestamp_millis();
    for e in [entry(t + 2000, "Environment.Ready", Status::Ready), entry(t, "Environment.Requested", Status::Pending)] {
        r.record_event(&pr(), &e).await.unwrap();
    }
    r.record_event(&pr(), &entry(t + 2000, "Environment.Ready", Status::Ready)).await.unwrap();
    r.record_event(&pr(), &entry(t + 3000, "Environment.Failed", Status::Failed)).await.unwrap();
    r.record_event(&dev(), &entry(t + 1000, "Environment.Creating", Status::Creating)).await.unwrap();
    let all = r.timeline(&pr(), 10).await.unwrap();
    let whats: Vec<&str> = all.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(whats, ["Environment.Requested", "Environment.Ready", "Environment.Failed"]);
    assert_eq!(all[2].reason.as_ref().map(|r| r.chars().count()), Some(2000), "reasons are cut");
    let latest = r.timeline(&pr(), 2).await.unwrap();
    assert_eq!(latest.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [t + 2000, t + 3000], "the latest, oldest first");
    assert_eq!(r.get(&pr()).await.unwrap().unwrap().generation, 1, "the environment's own item is untouched");
    assert_eq!(r.list().await.unwrap().len(), 1, "entries are not environments");

    let resource = |id: &str| StackResource {
        logical_id: id.into(),
        resource_type: "AWS::S3::Bucket".into(),
        physical_id: Some(format!("ephemera-{id}")),
        status: StackStatus::parse("CREATE_COMPLETE"),
    };
    assert!(r.resources(&pr()).await.unwrap().is_empty());
    r.record_resources(&pr(), &[resource("A"), resource("B")]).await.unwrap();
    r.record_resources(&pr(), &[resource("C")]).await.unwrap();
    assert_eq!(r.resources(&pr()).await.unwrap(), [resource("C")]);
}

pub async fn only_strictly_later_events_are_accepted(r: Arc<dyn Registry>) {
    let at = open().order.at;
    let push = later(0, EventOrder::RANK_PUSH);
    assert_eq!(apply(&*r, "d-push", &push).await, ChangeOutcome::Accepted { generation: 1 });
    let before = read(&*r, &pr()).await;
    let stale = [
        ("d-same", EventOrder::new(at, EventOrder::RANK_PUSH)),
        ("d-lower-rank", EventOrder::new(at, EventOrder::RANK_OPEN)),
        ("d-earlier", EventOrder::new(at - 1, EventOrder::RANK_CLOSE)),
    ];
    for (delivery, order) in stale {
        let c = Change { order, desired: Desired::Down, ..later(5, 0) };
        assert_eq!(apply(&*r, delivery, &c).await, ChangeOutcome::Stale, "{order:?} after {:?}", push.order);
        assert_eq!(read(&*r, &pr()).await, before, "a stale change writes nothing");
    }
    // A refused change leaves no delivery mark: the same delivery is judged again, not a duplicate.
    let c = Change { order: EventOrder::new(at, EventOrder::RANK_OPEN), ..later(5, 0) };
    assert_eq!(apply(&*r, "d-lower-rank", &c).await, ChangeOutcome::Stale);
    // The same second with a higher rank, or a later second with a lower one, is later.
    let close = Change { order: EventOrder::new(at, EventOrder::RANK_CLOSE), ..later(5, 0) };
    assert_eq!(apply(&*r, "d-close", &close).await, ChangeOutcome::Accepted { generation: 2 });
    let reopen = Change { order: EventOrder::new(at + 1, EventOrder::RANK_OPEN), ..later(6, 0) };
    assert_eq!(apply(&*r, "d-reopen", &reopen).await, ChangeOutcome::Accepted { generation: 3 });
    assert_eq!(read(&*r, &pr()).await.last_event, Some(reopen.order));
}

pub async fn a_change_may_require_the_generation_it_was_decided_on(r: Arc<dyn Registry>) {
    // 0: only if there is no record yet.
    let first = Change { expected_generation: Some(0), ..open() };
    assert_eq!(apply(&*r, "d-first", &first).await, ChangeOutcome::Accepted { generation: 1 });
    let again = Change { expected_generation: Some(0), ..later(5, EventOrder::RANK_PUSH) };
    assert_eq!(apply(&*r, "d-again", &again).await, ChangeOutcome::Stale, "a record exists now");
    let before = read(&*r, &pr()).await;
    let behind = Change { expected_generation: Some(7), ..later(6, EventOrder::RANK_PUSH) };
    assert_eq!(apply(&*r, "d-behind", &behind).await, ChangeOutcome::Stale);
    assert_eq!(read(&*r, &pr()).await, before, "nothing written");
    let current = Change { expected_generation: Some(1), ..later(7, EventOrder::RANK_PUSH) };
    assert_eq!(apply(&*r, "d-current", &current).await, ChangeOutcome::Accepted { generation: 2 });
}

pub async fn another_repositorys_change_is_a_conflict(r: Arc<dyn Registry>) {
    let before = opened(&*r).await;
    let other = Change { repository: Some(RepoName::parse("evil/todo-app").unwrap()), ..later(60, 2) };
    match apply(&*r, "d-other", &other).await {
        ChangeOutcome::Conflict(m) => {
            assert_eq!(m, format!("{} already belongs to acme/todo-app", pr()));
        }
        o => panic!("expected a conflict, got {o:?}"),
    }
    // Names are compared as written: a repository spelt in other case is another repository.
    let cased = Change { repository: Some(RepoName::parse("Acme/todo-app").unwrap()), ..later(60, 2) };
    assert!(matches!(apply(&*r, "d-cased", &cased).await, ChangeOutcome::Conflict(_)));
    assert_eq!(read(&*r, &pr()).await, before, "a conflicting change writes nothing");
    // Nor is its delivery id remembered.
    assert_eq!(apply(&*r, "d-other", &later(60, 2)).await, ChangeOutcome::Accepted { generation: 2 });
}

pub async fn a_change_naming_no_repository_keeps_the_records(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let bare = Change { repository: None, ..later(60, 2) };
    assert_eq!(apply(&*r, "d-bare", &bare).await, ChangeOutcome::Accepted { generation: 2 });
    assert_eq!(read(&*r, &pr()).await.repository, Some(repo()));
    // Refused (an earlier event) while the record names a repository: reported as a conflict.
    let stale_bare = Change { repository: None, ..later(30, 2) };
    assert!(matches!(apply(&*r, "d-stale-bare", &stale_bare).await, ChangeOutcome::Conflict(_)));
    // A record without a repository takes the first one named.
    assert_eq!(apply(&*r, "d-dev", &dev_change()).await, ChangeOutcome::Accepted { generation: 1 });
    let named = Change { repository: Some(repo()), ..later(60, 2) };
    let named = Change { name: dev(), kind: EnvironmentKind::Dev, ..named };
    assert_eq!(apply(&*r, "d-dev-2", &named).await, ChangeOutcome::Accepted { generation: 2 });
    assert_eq!(read(&*r, &dev()).await.repository, Some(repo()));
}

pub async fn reasons_are_cut_to_2000_characters(r: Arc<dyn Registry>) {
    let long = "é".repeat(2500);
    let cut = "é".repeat(2000);
    let c = Change { reason: Some(long.clone()), ..open() };
    apply(&*r, "d-long", &c).await;
    assert_eq!(read(&*r, &pr()).await.status_reason.as_deref(), Some(cut.as_str()), "a change's reason");
    let p = Progress { status: Some(Status::Failed), reason: Some(long.clone()), ..Default::default() };
    assert!(r.record_progress(&pr(), Stamp::new(1, t0() + Duration::seconds(1)), &p).await.unwrap());
    assert_eq!(read(&*r, &pr()).await.status_reason.as_deref(), Some(cut.as_str()), "progress's reason");
    let at_ms = (t0() + Duration::seconds(2)).timestamp_millis();
    let u = StackStatusUpdate { reason: Some(long), ..status_update(STACK, Status::Failed, at_ms) };
    assert!(r.record_stack_status(&pr(), &u).await.unwrap());
    assert_eq!(read(&*r, &pr()).await.status_reason.as_deref(), Some(cut.as_str()), "a stack event's reason");
}

pub async fn a_new_change_clears_the_expiry_notice(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let at = t0() + Duration::days(6) + Duration::milliseconds(700);
    let window = at - Duration::hours(2);
    assert!(r.record_notice(&pr(), at, window).await.unwrap(), "the first notice is recorded");
    assert_eq!(read(&*r, &pr()).await.expiry_notice_at, Some(whole(at)));
    assert!(!r.record_notice(&pr(), at + Duration::hours(1), window).await.unwrap(), "once per window");
    assert_eq!(read(&*r, &pr()).await.expiry_notice_at, Some(whole(at)));
    // The next window (the last hour) gets its own.
    let last = at + Duration::hours(3);
    assert!(r.record_notice(&pr(), last, last - Duration::minutes(1)).await.unwrap(), "a later window");
    assert!(!r.record_notice(&pr(), last + Duration::minutes(5), last - Duration::minutes(1)).await.unwrap());
    // A push gives a new expiry, and it gets its own notice.
    apply(&*r, "d-push", &later(60, EventOrder::RANK_PUSH)).await;
    assert_eq!(read(&*r, &pr()).await.expiry_notice_at, None);
    assert!(r.record_notice(&pr(), at + Duration::hours(2), window).await.unwrap());
    // So does an extension.
    assert!(r.set_expiry(&pr(), at + Duration::days(3)).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!((e.expiry_notice_at, e.expires_at), (None, whole(at + Duration::days(3))));
}

pub async fn nothing_is_written_for_an_unknown_environment(r: Arc<dyn Registry>) {
    let (name, at) = (pr(), t0());
    assert_eq!(r.get(&name).await.unwrap(), None);
    assert!(!r.set_preserved(&name, true, None).await.unwrap());
    r.record_cost(&name, 1.5, 0.25).await.unwrap();
    r.record_notified(&name, &Reported::parse("1:READY:abc").unwrap()).await.unwrap();
    assert!(!r.record_notice(&name, at, at).await.unwrap());
    assert!(!r.set_expiry(&name, at).await.unwrap());
    let p = Progress { status: Some(Status::Creating), ..Default::default() };
    assert!(!r.record_progress(&name, Stamp::new(0, at), &p).await.unwrap());
    assert!(!r.record_progress(&name, Stamp::new(1, at), &p).await.unwrap());
    assert!(!r.go_down(&name, Stamp::new(0, at), GoDown::Request, "expired").await.unwrap());
    assert!(!r.go_down(&name, Stamp::new(0, at), GoDown::Retire, "expired").await.unwrap());
    assert!(!r.record_stack_status(&name, &status_update(STACK, Status::Ready, 1)).await.unwrap());
    r.release_lease(&name, "holder").await.unwrap();
    // No record is no contention: the reconcile then finds nothing to do.
    assert!(r
        .try_lease(&name, &Lease { holder: "holder".into(), now: at, until: at + Duration::minutes(1) })
        .await
        .unwrap());
    assert_eq!(r.get(&name).await.unwrap(), None, "no record was made");
    assert!(r.list().await.unwrap().is_empty());
}

pub async fn preserved_cost_and_notified_are_kept_across_changes(r: Arc<dyn Registry>) {
    opened(&*r).await;
    assert!(r.set_preserved(&pr(), true, None).await.unwrap());
    r.record_cost(&pr(), 4.6, 0.25).await.unwrap();
    r.record_notified(&pr(), &Reported::parse("1:READY:a3b9c1d").unwrap()).await.unwrap();
    let e = read(&*r, &pr()).await;
    assert_eq!((e.preserved, e.cost_monthly_usd, e.cost_accrued_usd), (true, Some(4.6), Some(0.25)));
    assert_eq!(e.notified.as_ref().map(ToString::to_string).as_deref(), Some("1:READY:a3b9c1d"));
    apply(&*r, "d-push", &later(60, EventOrder::RANK_PUSH)).await;
    let e = read(&*r, &pr()).await;
    assert_eq!((e.preserved, e.cost_monthly_usd, e.cost_accrued_usd), (true, Some(4.6), Some(0.25)));
    assert_eq!(e.notified.as_ref().map(ToString::to_string).as_deref(), Some("1:READY:a3b9c1d"));
    assert!(r.set_preserved(&pr(), false, None).await.unwrap());
    assert!(!read(&*r, &pr()).await.preserved);
    let until = t0() + Duration::days(30);
    assert!(r.set_preserved(&pr(), true, Some(until)).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!((e.preserved, e.preserved_until), (true, Some(whole(until))));
    apply(&*r, "d-push-2", &later(120, EventOrder::RANK_PUSH)).await;
    assert_eq!(read(&*r, &pr()).await.preserved_until, Some(whole(until)), "kept across changes");
    assert!(r.set_preserved(&pr(), true, None).await.unwrap());
    assert_eq!(read(&*r, &pr()).await.preserved_until, None);
}

pub async fn a_lease_is_held_until_it_expires_or_its_holder_releases_it(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let (name, now) = (pr(), t0());
    let until = now + Duration::seconds(60);
    let take = |holder: &'static str, at: DateTime<Utc>, until: DateTime<Utc>| {
        let (r, name) = (r.clone(), name.clone());
        async move { r.try_lease(&name, &Lease { holder: holder.into(), now: at, until }).await.unwrap() }
    };
    assert!(take("a", now, until).await, "a free lease is taken");
    assert!(!take("b", now + Duration::seconds(30), until).await, "a held lease is not");
    assert!(take("a", now + Duration::seconds(30), until).await, "its holder takes it again");
    assert!(!take("b", until, until + Duration::seconds(60)).await, "held through its last second");
    assert!(take("b", until + Duration::seconds(1), until + Duration::seconds(61)).await, "an expired lease is taken");
    r.release_lease(&name, "a").await.unwrap();
    assert!(!take("c", until + Duration::seconds(2), until).await, "released only by its holder");
    r.release_lease(&name, "b").await.unwrap();
    assert!(take("c", until + Duration::seconds(2), until + Duration::seconds(62)).await, "a released lease is free");
    let e = read(&*r, &name).await;
    assert_eq!((e.generation, e.status), (1, Status::Pending), "a lease changes nothing else");
}

// ---- progress ----

pub async fn progress_is_recorded_for_the_current_generation_only(r: Arc<dyn Registry>) {
    opened(&*r).await;
    apply(&*r, "d-push", &later(60, EventOrder::RANK_PUSH)).await;
    let before = read(&*r, &pr()).await;
    let p = Progress { status: Some(Status::Ready), settled: true, ..Default::default() };
    let at = t0() + Duration::seconds(90);
    assert!(!r.record_progress(&pr(), Stamp::new(1, at), &p).await.unwrap(), "generation 1 was superseded");
    assert!(!r.record_progress(&pr(), Stamp::new(3, at), &p).await.unwrap(), "generation 3 does not exist yet");
    assert_eq!(read(&*r, &pr()).await, before, "nothing written");
    assert!(r.record_progress(&pr(), Stamp::new(2, at), &p).await.unwrap());
    assert_eq!(read(&*r, &pr()).await.observed_generation, 2);
}

pub async fn progress_writes_what_it_carries(r: Arc<dyn Registry>) {
    let first = opened(&*r).await;
    let at = t0() + Duration::seconds(30) + Duration::milliseconds(123);
    let creating = Progress {
        status: Some(Status::Creating),
        reason: Some("creating".into()),
        stack_id: Some(STACK.into()),
        outputs: Some(outputs(&[("A", "1"), ("B", "2")])),
        preview_url: Some("https://one.example".into()),
        settled: false,
        placement: Some(Placement { account: Some("222222222222".into()), region: "eu-west-1".into() }),
    };
    assert!(r.record_progress(&pr(), Stamp::new(1, at), &creating).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!(
        (e.status, e.status_reason.as_deref(), e.status_at),
        (Status::Creating, Some("creating"), Some(at.timestamp_millis()))
    );
    assert_eq!(
        (e.stack_id.as_deref(), e.outputs.clone(), e.preview_url.as_deref()),
        (Some(STACK), outputs(&[("A", "1"), ("B", "2")]), Some("https://one.example"))
    );
    assert_eq!((e.updated_at, e.created_at, e.observed_generation), (whole(at), first.created_at, 0));
    assert_eq!((e.account.as_deref(), e.region.as_deref()), (Some("222222222222"), Some("eu-west-1")));
    // Without a status: status, reason and status_at are left alone, whatever the reason says.
    let later_at = at + Duration::seconds(10);
    let quiet =
        Progress { reason: Some("ignored".into()), outputs: Some(outputs(&[("C", "3")])), ..Default::default() };
    assert!(r.record_progress(&pr(), Stamp::new(1, later_at), &quiet).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!(
        (e.status, e.status_reason.as_deref(), e.status_at),
        (Status::Creating, Some("creating"), Some(at.timestamp_millis()))
    );
    assert_eq!(
        (e.outputs.clone(), e.stack_id.as_deref(), e.preview_url.as_deref()),
        (outputs(&[("C", "3")]), Some(STACK), Some("https://one.example"))
    );
    assert_eq!(e.updated_at, whole(later_at));
    // A status without a reason removes the reason.
    let updating = Progress { status: Some(Status::Updating), ..Default::default() };
    assert!(r.record_progress(&pr(), Stamp::new(1, later_at), &updating).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!(
        (e.status, e.status_reason, e.preview_url.as_deref()),
        (Status::Updating, None, Some("https://one.example"))
    );
}

pub async fn settled_progress_moves_observed_generation_and_drops_a_missing_url(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let at = t0() + Duration::seconds(30);
    let ready = Progress {
        status: Some(Status::Ready),
        preview_url: Some("https://ready.example".into()),
        settled: true,
        ..Default::default()
    };
    assert!(r.record_progress(&pr(), Stamp::new(1, at), &ready).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!(
        (e.observed_generation, e.status, e.preview_url.as_deref()),
        (1, Status::Ready, Some("https://ready.example"))
    );
    assert!(e.is_converged());
    apply(&*r, "d-close", &Change { desired: Desired::Down, ..later(60, EventOrder::RANK_CLOSE) }).await;
    let deleted =
        Progress { status: Some(Status::Deleted), outputs: Some(BTreeMap::new()), settled: true, ..Default::default() };
    assert!(r.record_progress(&pr(), Stamp::new(2, at + Duration::seconds(60)), &deleted).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!(
        (e.observed_generation, e.status, e.preview_url, e.outputs.is_empty()),
        (2, Status::Deleted, None, true)
    );
}

// ---- the reaper's writes ----

pub async fn request_down_starts_a_new_generation_if_still_at_the_given_one(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let ready = Progress {
        status: Some(Status::Ready),
        preview_url: Some("https://p".into()),
        settled: true,
        ..Default::default()
    };
    let ready_at = t0() + Duration::seconds(30);
    r.record_progress(&pr(), Stamp::new(1, ready_at), &ready).await.unwrap();
    let at = t0() + Duration::days(8) + Duration::milliseconds(900);
    assert!(!r.go_down(&pr(), Stamp::new(0, at), GoDown::Request, "expired").await.unwrap(), "not at generation 0");
    assert!(r.go_down(&pr(), Stamp::new(1, at), GoDown::Request, "expired: past ephemera:expires-at").await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!((e.desired, e.status, e.generation, e.observed_generation), (Desired::Down, Status::Pending, 2, 1));
    assert_eq!((e.status_reason.as_deref(), e.updated_at), (Some("expired: past ephemera:expires-at"), whole(at)));
    assert_eq!(e.status_at, Some(ready_at.timestamp_millis()), "status_at is not moved");
    assert_eq!(e.preview_url.as_deref(), Some("https://p"), "the preview URL stays until the stack is gone");
    assert!(
        !r.go_down(&pr(), Stamp::new(1, at), GoDown::Request, "expired").await.unwrap(),
        "a second request for generation 1 does nothing"
    );
    assert_eq!(read(&*r, &pr()).await.generation, 2);
}

pub async fn retire_settles_a_new_generation_as_deleted(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let ready = Progress {
        status: Some(Status::Ready),
        stack_id: Some(STACK.into()),
        outputs: Some(outputs(&[("PreviewUrl", "https://p")])),
        preview_url: Some("https://p".into()),
        settled: true,
        ..Default::default()
    };
    r.record_progress(&pr(), Stamp::new(1, t0()), &ready).await.unwrap();
    let at = t0() + Duration::hours(1);
    assert!(
        !r.go_down(&pr(), Stamp::new(2, at), GoDown::Retire, "its stack no longer exists").await.unwrap(),
        "not at generation 2"
    );
    assert!(r.go_down(&pr(), Stamp::new(1, at), GoDown::Retire, "its stack no longer exists").await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!((e.desired, e.status, e.generation, e.observed_generation), (Desired::Down, Status::Deleted, 2, 2));
    assert_eq!(
        (e.status_reason.as_deref(), e.preview_url.as_deref(), e.updated_at),
        (Some("its stack no longer exists"), None, whole(at))
    );
    assert_eq!((e.stack_id.as_deref(), e.outputs.len()), (Some(STACK), 1), "stack id and outputs are kept");
    assert!(e.is_converged());
}

// ---- stack status events ----

pub async fn stack_status_only_moves_forward_in_time(r: Arc<dyn Registry>) {
    let e = opened(&*r).await;
    let change_ms = e.status_at.unwrap();
    let at = |ms: i64| status_update(STACK, Status::Creating, ms);
    assert!(!r.record_stack_status(&pr(), &at(change_ms)).await.unwrap(), "not later than the change");
    assert!(!r.record_stack_status(&pr(), &at(change_ms - 1000)).await.unwrap(), "older than the change");
    assert!(r.record_stack_status(&pr(), &at(change_ms + 1000)).await.unwrap());
    let ready = status_update(STACK, Status::Ready, change_ms + 2000);
    assert!(r.record_stack_status(&pr(), &ready).await.unwrap());
    assert!(!r.record_stack_status(&pr(), &ready).await.unwrap(), "the same event twice");
    assert!(!r.record_stack_status(&pr(), &at(change_ms + 1500)).await.unwrap(), "a late, older event");
    let e = read(&*r, &pr()).await;
    assert_eq!((e.status, e.status_at), (Status::Ready, Some(change_ms + 2000)));
}

pub async fn stack_status_is_about_one_stack(r: Arc<dyn Registry>) {
    let ms = opened(&*r).await.status_at.unwrap();
    // No stack id yet: any stack's event is taken, and its id recorded.
    assert!(r.record_stack_status(&pr(), &status_update(STACK, Status::Creating, ms + 1000)).await.unwrap());
    assert_eq!(read(&*r, &pr()).await.stack_id.as_deref(), Some(STACK));
    let other = status_update(OTHER_STACK, Status::Deleted, ms + 5000);
    assert!(!r.record_stack_status(&pr(), &other).await.unwrap(), "another stack of the same name");
    let e = read(&*r, &pr()).await;
    assert_eq!((e.status, e.stack_id.as_deref()), (Status::Creating, Some(STACK)));
}

pub async fn stack_status_writes_what_it_carries(r: Arc<dyn Registry>) {
    let before = opened(&*r).await;
    let ms = before.status_at.unwrap();
    let started = Utc::now();
    let ready = StackStatusUpdate {
        outputs: Some(outputs(&[("PreviewUrl", "https://p")])),
        preview_url: Some("https://p".into()),
        ..status_update(STACK, Status::Ready, ms + 1000)
    };
    assert!(r.record_stack_status(&pr(), &ready).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!(
        (e.status, e.status_reason.clone(), e.preview_url.as_deref(), e.outputs.len()),
        (Status::Ready, None, Some("https://p"), 1)
    );
    assert_eq!(
        (e.generation, e.observed_generation, e.desired),
        (1, 0, Desired::Up),
        "the generation is the provisioner's"
    );
    let (lo, hi) = (whole(started) - Duration::seconds(1), Utc::now() + Duration::seconds(1));
    assert!(e.updated_at >= lo && e.updated_at <= hi, "updated_at is when it was written: {}", e.updated_at);
    // No outputs or URL: those recorded stay, unless the stack is deleted.
    let failed = StackStatusUpdate {
        reason: Some("UPDATE_FAILED: x".into()),
        ..status_update(STACK, Status::Failed, ms + 2000)
    };
    assert!(r.record_stack_status(&pr(), &failed).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!(
        (e.status, e.status_reason.as_deref(), e.preview_url.as_deref(), e.outputs.len()),
        (Status::Failed, Some("UPDATE_FAILED: x"), Some("https://p"), 1)
    );
    // A status without a reason removes it; a deletion removes the URL.
    assert!(r.record_stack_status(&pr(), &status_update(STACK, Status::Deleted, ms + 3000)).await.unwrap());
    let e = read(&*r, &pr()).await;
    assert_eq!((e.status, e.status_reason, e.preview_url, e.outputs.len()), (Status::Deleted, None, None, 1));
}

pub async fn progress_and_stack_events_share_status_at(r: Arc<dyn Registry>) {
    opened(&*r).await;
    let looked = t0() + Duration::seconds(60);
    let p = Progress { status: Some(Status::Ready), settled: true, ..Default::default() };
    assert!(r.record_progress(&pr(), Stamp::new(1, looked), &p).await.unwrap());
    let older = status_update(STACK, Status::Creating, looked.timestamp_millis() - 1);
    assert!(!r.record_stack_status(&pr(), &older).await.unwrap(), "older than what the provisioner saw");
    // Progress without a status does not move status_at.
    let quiet = Progress { stack_id: Some(STACK.into()), ..Default::default() };
    assert!(r.record_progress(&pr(), Stamp::new(1, looked + Duration::seconds(60)), &quiet).await.unwrap());
    let newer = status_update(STACK, Status::Deleting, looked.timestamp_millis() + 1);
    assert!(r.record_stack_status(&pr(), &newer).await.unwrap());
    assert_eq!(read(&*r, &pr()).await.status, Status::Deleting);
}

pub async fn list_holds_every_kind(r: Arc<dyn Registry>) {
    assert!(r.list().await.unwrap().is_empty());
    opened(&*r).await;
    apply(&*r, "d-dev", &dev_change()).await;
    let mut names: Vec<String> = r.list().await.unwrap().iter().map(|e| e.name.to_string()).collect();
    names.sort();
    assert_eq!(names, vec![dev().to_string(), pr().to_string()]);
    let dev_env = read(&*r, &dev()).await;
    assert_eq!(
        (dev_env.kind, dev_env.repository, dev_env.commit, dev_env.pull_request),
        (EnvironmentKind::Dev, None, None, None)
    );
    assert_eq!(r.get(&EnvironmentName::parse("dev-nobody").unwrap()).await.unwrap(), None);
}

pub async fn a_retired_environment_comes_back_with_a_new_change(r: Arc<dyn Registry>) {
    opened(&*r).await;
    r.go_down(&pr(), Stamp::new(1, t0() + Duration::hours(1)), GoDown::Retire, "its stack no longer exists")
        .await
        .unwrap();
    let push = later(7200, EventOrder::RANK_PUSH);
    assert_eq!(apply(&*r, "d-push", &push).await, ChangeOutcome::Accepted { generation: 3 });
    let e = read(&*r, &pr()).await;
    assert_eq!((e.desired, e.status, e.generation, e.observed_generation), (Desired::Up, Status::Pending, 3, 2));
    assert!(!e.is_converged());
}

// ---- pages ----

pub async fn pages_hold_every_environment_once_in_name_order(r: Arc<dyn Registry>) {
    let branch = EnvironmentName::for_branch(&repo(), "feature/x").unwrap();
    let mut names = vec![pr(), branch.clone()];
    for (i, login) in ["dave", "bob", "erin", "carol", "alice"].iter().enumerate() {
        let name = EnvironmentName::parse(&format!("dev-{login}")).unwrap();
        apply(&*r, &format!("d-dev-{i}"), &Change { name: name.clone(), ..dev_change() }).await;
        names.push(name);
    }
    apply(&*r, "d-open", &open()).await;
    apply(&*r, "d-branch", &Change { name: branch, kind: EnvironmentKind::Branch, ..open() }).await;
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    for (kind, limit) in [(None, 2), (None, 7), (None, 100), (Some(EnvironmentKind::Dev), 2)] {
        let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let page = r.page(kind, after.as_ref(), limit).await.unwrap();
            assert!(page.environments.len() <= limit);
            pages += 1;
            seen.extend(page.environments.iter().map(|e| e.name.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
            assert!(pages < 20, "pages never end");
        }
        let want: Vec<EnvironmentName> = names
            .iter()
            .filter(|n| kind.is_none_or(|k| EnvironmentKind::of_name(n.as_str()) == Some(k)))
            .cloned()
            .collect();
        assert_eq!(seen, want, "kind {kind:?}, {limit} a page");
        assert!(pages <= want.len() / limit + 2, "{pages} pages of {limit} for {}", want.len());
    }
}

// ---- the ledger ----

fn take(counter: &str, amount: i64, limit: Option<i64>) -> Take {
    Take { counter: counter.into(), amount, limit }
}

fn claim_of(takes: Vec<Take>, account: Option<&str>) -> Claim {
    Claim { takes, account: account.map(str::to_owned) }
}

pub async fn a_claim_is_taken_whole_or_not_at_all_and_given_back_once(r: Arc<dyn Registry>) {
    assert!(r.totals().await.unwrap().is_empty());
    let first = claim_of(vec![take("live", 1, None), take("account:222222222222", 1, Some(1))], Some("222222222222"));
    let admitted = r.claim(&pr(), &first).await.unwrap();
    assert_eq!(admitted, Admit::Admitted(first.clone()));
    let totals = r.totals().await.unwrap();
    assert_eq!(totals, BTreeMap::from([("live".into(), 1), ("account:222222222222".into(), 1)]));
    // Claiming again is admitted on the claim held (its account), adding nothing.
    let again = claim_of(vec![take("live", 1, None), take("account:333333333333", 1, Some(1))], Some("333333333333"));
    match r.claim(&pr(), &again).await.unwrap() {
        Admit::Admitted(held) => assert_eq!(held.account.as_deref(), Some("222222222222")),
        other => panic!("the claim held was not kept: {other:?}"),
    }
    assert_eq!(r.totals().await.unwrap(), totals);
    assert_eq!(r.held(&pr()).await.unwrap().and_then(|c| c.account).as_deref(), Some("222222222222"));
    assert_eq!((r.held(&dev()).await.unwrap(), r.holders().await.unwrap()), (None, vec![pr()]));
    // A claim one of whose counters is full takes nothing, not even from the others.
    let full = claim_of(vec![take("live", 1, None), take("account:222222222222", 1, Some(1))], None);
    match r.claim(&dev(), &full).await.unwrap() {
        Admit::Refused { full, totals: seen } => {
            assert_eq!((full.counter.as_str(), seen.get("account:222222222222")), ("account:222222222222", Some(&1)))
        }
        other => panic!("a full counter admitted a claim: {other:?}"),
    }
    assert_eq!(r.totals().await.unwrap(), totals);
    // Given back once; then the slot is free again.
    assert!(r.release(&pr()).await.unwrap());
    assert!(!r.release(&pr()).await.unwrap());
    assert!(r.holders().await.unwrap().is_empty() && r.held(&pr()).await.unwrap().is_none());
    let after = r.totals().await.unwrap();
    assert_eq!((after.get("live"), after.get("account:222222222222")), (Some(&0), Some(&0)));
    assert!(matches!(r.claim(&dev(), &full).await.unwrap(), Admit::Admitted(_)));
}

/// Twenty environments race for the last slot of a quota: exactly one is admitted.
pub async fn concurrent_claims_for_the_last_slot_admit_exactly_one(r: Arc<dyn Registry>) {
    let claim = claim_of(vec![take("live", 1, None), take("dev", 1, Some(5))], None);
    for i in 0..4 {
        let name = EnvironmentName::parse(&format!("dev-held-{i}")).unwrap();
        assert!(matches!(r.claim(&name, &claim).await.unwrap(), Admit::Admitted(_)));
    }
    let racing = (0..20).map(|i| {
        let (r, claim) = (r.clone(), claim.clone());
        tokio::spawn(async move {
            let name = EnvironmentName::parse(&format!("dev-racer-{i}")).unwrap();
            loop {
                match r.claim(&name, &claim).await {
                    Ok(admit) => return matches!(admit, Admit::Admitted(_)),
                    Err(e) if e.is_retryable() => tokio::task::yield_now().await,
                    Err(e) => panic!("claim failed: {e}"),
                }
            }
        })
    });
    let mut admitted = 0;
    for task in racing.collect::<Vec<_>>() {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 1, "one slot was left");
    assert_eq!(r.totals().await.unwrap().get("dev"), Some(&5));
}

#[cfg(test)]
mod runner {
    use super::*;
    use crate::memory::MemoryRegistry;

    fn fresh(_: &'static str) -> std::future::Ready<Arc<dyn Registry>> {
        std::future::ready(Arc::new(MemoryRegistry::new()))
    }

    #[tokio::test]
    async fn runs_every_check() {
        assert!(checks().len() >= 20);
        run_all(fresh).await;
    }

    #[tokio::test]
    async fn names_the_checks_that_fail() {
        let broken: Check = |_| Box::pin(async { panic!("generation went backwards") });
        let fine: Check = |_| Box::pin(async {});
        let run = tokio::spawn(run(vec![("fine", fine), ("broken", broken)], fresh));
        let message = run.await.unwrap_err().into_panic();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("1 of 2 registry checks failed"), "{message}");
        assert!(message.contains("broken: generation went backwards"), "{message}");
        assert!(!message.contains("fine:"), "{message}");
    }
}
