//! The registry in memory: the same records, conditions and outcomes as the DynamoDB adapter
//! (`ephemera_aws::DynamoRegistry`), which is the reference. Each method below names the
//! adapter's update expression and condition it mirrors; [`super::conformance`] checks that
//! both behave alike.
//!
//! What DynamoDB does to values is done here too: times are stored as whole seconds (the
//! adapter writes `%Y-%m-%dT%H:%M:%SZ`), reasons from changes, progress and stack events are cut
//! to 2,000 characters, lease times are epoch seconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{Desired, Environment, EnvironmentKind, EnvironmentName, Reported, Status};

use super::{lock, Faults};
use crate::clock::{Clock, SystemClock};
use crate::ports::{Admit, History, Ledger, Page, StackResource, TimelineEntry};
use crate::ports::{
    Change, ChangeOutcome, CostLog, DesiredState, Environments, GoDown, Lease, NotifiedLog, PortError, Progress,
    Reconciliation, StackStatusLog, StackStatusUpdate, Stamp, Sweeping,
};
use ephemera_domain::admission::{overflow, Claim};

/// The longest reason kept, in characters (the adapter's `truncate(r, 2000)`).
pub const MAX_REASON: usize = 2000;

/// One environment item: the record, and its lease (`lease_holder`, `lease_until` in epoch
/// seconds), which the record does not show.
#[derive(Debug, Clone)]
struct Item {
    env: Environment,
    lease: Option<(String, i64)>,
}

#[derive(Debug, Default)]
struct State {
    items: BTreeMap<String, Item>,
    /// Delivery ids recorded with an accepted change, and when.
    deliveries: HashMap<String, DateTime<Utc>>,
    /// The ledger: each environment's claim (`CLAIM#` items), and the running totals.
    claims: HashMap<String, Claim>,
    totals: BTreeMap<String, i64>,
    /// Each environment's timeline (`EVENT#` items, keyed by their sort key) and resources.
    timelines: HashMap<String, BTreeMap<String, TimelineEntry>>,
    resources: HashMap<String, Vec<StackResource>>,
}

/// The registry in memory. Operation names for [`Faults`]: `get`, `list`, `apply_change`,
/// `set_preserved`, `mark_delivery`, `unmark_delivery`, `set_expiry`, `record_cost`, `try_lease` (and `try_lease_answer`, after the write),
/// `release_lease`, `record_progress`,
/// `request_down`, `retire`, `record_notice`, `record_stack_status`, `record_notified`,
/// `record_event`, `timeline`, `record_resources`, `resources`.
pub struct MemoryRegistry {
    state: Mutex<State>,
    /// What `record_stack_status` writes as `updated_at` (the adapter uses the wall clock).
    clock: Arc<dyn Clock>,
    pub faults: Faults,
}

impl Default for MemoryRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRegistry {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { state: Mutex::new(State::default()), clock, faults: Faults::default() }
    }

    /// Puts a record as it is, replacing any of the same name (for setting up a test).
    pub fn insert(&self, env: Environment) {
        lock(&self.state).items.insert(env.name.to_string(), Item { env, lease: None });
    }

    /// Changes a record in place (for setting up a test); false if there is none.
    pub fn edit(&self, name: &EnvironmentName, f: impl FnOnce(&mut Environment)) -> bool {
        lock(&self.state).items.get_mut(name.as_str()).map(|i| f(&mut i.env)).is_some()
    }

    /// The record, read without going through the port.
    pub fn snapshot(&self, name: &EnvironmentName) -> Option<Environment> {
        lock(&self.state).items.get(name.as_str()).map(|i| i.env.clone())
    }

    /// Every record, read without going through the port, in `list`'s order.
    pub fn all(&self) -> Vec<Environment> {
        let state = lock(&self.state);
        let of = |kind| state.items.values().filter(move |i| i.env.kind == kind).map(|i| i.env.clone());
        EnvironmentKind::ALL.into_iter().flat_map(of).collect()
    }

    /// Who holds the lease on `name`, and until when (epoch seconds).
    pub fn lease(&self, name: &EnvironmentName) -> Option<(String, i64)> {
        lock(&self.state).items.get(name.as_str()).and_then(|i| i.lease.clone())
    }

    /// Whether a change was recorded under this delivery id.
    pub fn delivery_seen(&self, delivery: &str) -> bool {
        lock(&self.state).deliveries.contains_key(delivery)
    }

    /// One conditional update of an existing item, as the adapter's `conditional`: false (and
    /// nothing written) when there is no item or `write` finds its condition false.
    fn update(&self, name: &EnvironmentName, write: impl FnOnce(&mut Item) -> bool) -> bool {
        lock(&self.state).items.get_mut(name.as_str()).is_some_and(write)
    }
}

/// A time as DynamoDB holds it: whole seconds.
fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// `SET field = :value` only when the change carries a value.
fn keep<T: Clone>(field: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        field.clone_from(value);
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_REASON).collect()
}

/// A new item: what `if_not_exists` falls back to, and nothing else set.
fn blank(change: &Change) -> Environment {
    let (name, owner) = (change.name.clone(), change.owner.clone());
    Environment::new(name, change.kind, owner, change.desired, secs(change.at), secs(change.expires_at))
}

/// The adapter's `apply_change` update: `SET` every field the change carries (optional ones
/// only when present), `generation + 1`, `REMOVE expiry_notice_at` and, without a reason,
/// `status_reason`. `created_at`, `observed_generation` and `preserved` are `if_not_exists`.
fn write_change(env: &mut Environment, c: &Change) {
    env.name = c.name.clone();
    env.kind = c.kind;
    env.owner = c.owner.clone();
    env.desired = c.desired;
    env.status = Status::Pending;
    env.generation += 1;
    env.last_event = Some(c.order);
    env.updated_at = secs(c.at);
    env.status_at = Some(c.at.timestamp_millis());
    env.expires_at = secs(c.expires_at);
    keep(&mut env.repository, &c.repository);
    keep(&mut env.pull_request, &c.pull_request);
    keep(&mut env.commit, &c.commit);
    keep(&mut env.head_ref, &c.head_ref);
    keep(&mut env.head_commit, &c.head_commit);
    keep(&mut env.base_ref, &c.base_ref);
    keep(&mut env.source, &c.source);
    env.merged = c.merged;
    env.status_reason = c.reason.as_deref().map(truncate);
    env.expiry_notice_at = None;
}

/// Why the adapter's condition refuses `c` against an existing record, if it does: the event
/// is not strictly later (`event_at`, `event_rank`), or the record belongs to another repository.
fn refusal(existing: &Environment, c: &Change) -> Option<ChangeOutcome> {
    // An item without `event_at` fails the comparison, as in DynamoDB.
    let later = existing.last_event.is_some_and(|recorded| c.order > recorded);
    let same_repo = match (&c.repository, &existing.repository) {
        (Some(wanted), Some(held)) => wanted.full_name() == held.full_name(),
        _ => true,
    };
    if later && same_repo {
        return None;
    }
    // The adapter's classification once the transaction is cancelled: a record of another
    // repository (or of one, when the change names none) is a conflict, else stale.
    if existing.repository.is_some() && existing.repository != c.repository {
        let owner = existing.repository.as_ref().map(|r| r.full_name()).unwrap_or_default();
        return Some(ChangeOutcome::Conflict(format!("{} already belongs to {owner}", c.name)));
    }
    Some(ChangeOutcome::Stale)
}

#[async_trait]
impl Environments for MemoryRegistry {
    async fn get(&self, name: &EnvironmentName) -> Result<Option<Environment>, PortError> {
        self.faults.check("get")?;
        Ok(self.snapshot(name))
    }

    /// Pull requests' environments, then developers', each by name: the adapter's two queries
    /// of the `by-kind` index.
    async fn list(&self) -> Result<Vec<Environment>, PortError> {
        self.faults.check("list")?;
        Ok(self.all())
    }

    /// The adapter's queries of the `by-kind` index, kind after kind in name order.
    async fn page(
        &self,
        kind: Option<EnvironmentKind>,
        after: Option<&EnvironmentName>,
        limit: usize,
    ) -> Result<Page, PortError> {
        self.faults.check("page")?;
        let state = lock(&self.state);
        let from = after.map_or(std::ops::Bound::Unbounded, |a| std::ops::Bound::Excluded(a.to_string()));
        let mut rest = state.items.range((from, std::ops::Bound::Unbounded)).map(|(_, i)| &i.env);
        let environments: Vec<Environment> =
            rest.by_ref().filter(|e| kind.is_none_or(|k| e.kind == k)).take(limit).cloned().collect();
        let more = environments.len() == limit && rest.any(|e| kind.is_none_or(|k| e.kind == k));
        let next = more.then(|| environments.last().map(|e| e.name.clone())).flatten();
        Ok(Page { environments, next })
    }
}

#[async_trait]
impl DesiredState for MemoryRegistry {
    /// The delivery mark (`attribute_not_exists(pk)`) and the change, together or not at all.
    async fn apply_change(&self, delivery: &str, change: &Change) -> Result<ChangeOutcome, PortError> {
        self.faults.check("apply_change")?;
        let mut state = lock(&self.state);
        if state.deliveries.contains_key(delivery) {
            return Ok(ChangeOutcome::Duplicate);
        }
        let existing = state.items.get(change.name.as_str());
        if let Some(outcome) = existing.and_then(|item| refusal(&item.env, change)) {
            return Ok(outcome);
        }
        // `generation = :expected`, or `attribute_not_exists(pk)` for 0: stale otherwise.
        if let Some(expected) = change.expected_generation {
            if existing.map_or(0, |i| i.env.generation) != expected {
                return Ok(ChangeOutcome::Stale);
            }
        }
        let mut item = existing.cloned().unwrap_or_else(|| Item { env: blank(change), lease: None });
        write_change(&mut item.env, change);
        let generation = item.env.generation;
        state.items.insert(change.name.to_string(), item);
        state.deliveries.insert(delivery.to_owned(), change.at);
        Ok(ChangeOutcome::Accepted { generation })
    }

    /// `SET preserved = :p, preserved_until = :u` (or `REMOVE preserved_until`) if the item exists.
    async fn set_preserved(
        &self,
        name: &EnvironmentName,
        preserved: bool,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, PortError> {
        self.faults.check("set_preserved")?;
        Ok(self.update(name, |i| {
            i.env.preserved = preserved;
            i.env.preserved_until = until.map(secs);
            true
        }))
    }

    /// `PutItem` of the delivery's mark with `attribute_not_exists(pk)`.
    async fn mark_delivery(&self, delivery: &str, _about: &str, at: DateTime<Utc>) -> Result<bool, PortError> {
        self.faults.check("mark_delivery")?;
        let mut state = lock(&self.state);
        if state.deliveries.contains_key(delivery) {
            return Ok(false);
        }
        state.deliveries.insert(delivery.to_owned(), at);
        Ok(true)
    }

    /// `DeleteItem` of the delivery's mark.
    async fn unmark_delivery(&self, delivery: &str) -> Result<(), PortError> {
        self.faults.check("unmark_delivery")?;
        lock(&self.state).deliveries.remove(delivery);
        Ok(())
    }

    /// `SET expires_at = :e REMOVE expiry_notice_at` if the item exists.
    async fn set_expiry(&self, name: &EnvironmentName, expires_at: DateTime<Utc>) -> Result<bool, PortError> {
        self.faults.check("set_expiry")?;
        Ok(self.update(name, |i| {
            i.env.expires_at = secs(expires_at);
            i.env.expiry_notice_at = None;
            true
        }))
    }
}

#[async_trait]
impl CostLog for MemoryRegistry {
    /// `SET cost_monthly_usd, cost_accrued_usd` if the item exists; nothing otherwise.
    async fn record_cost(&self, name: &EnvironmentName, monthly_usd: f64, accrued_usd: f64) -> Result<(), PortError> {
        self.faults.check("record_cost")?;
        self.update(name, |i| {
            i.env.cost_monthly_usd = Some(monthly_usd);
            i.env.cost_accrued_usd = Some(accrued_usd);
            true
        });
        Ok(())
    }
}

#[async_trait]
impl Reconciliation for MemoryRegistry {
    /// `attribute_exists(pk) AND (attribute_not_exists(lease_until) OR lease_until < :now OR
    /// lease_holder = :h)`, in epoch seconds; no record at all is no contention (true).
    async fn try_lease(&self, name: &EnvironmentName, lease: &Lease) -> Result<bool, PortError> {
        let Lease { holder, now, until } = lease;
        let (holder, now, until) = (holder.as_str(), *now, *until);
        self.faults.check("try_lease")?;
        let mut state = lock(&self.state);
        let Some(item) = state.items.get_mut(name.as_str()) else { return Ok(true) };
        let free = match &item.lease {
            None => true,
            Some((held_by, held_until)) => *held_until < now.timestamp() || held_by == holder,
        };
        if free {
            item.lease = Some((holder.to_owned(), until.timestamp()));
        }
        drop(state);
        // The write made, its answer lost (a dropped connection).
        self.faults.check("try_lease_answer")?;
        Ok(free)
    }

    /// `REMOVE lease_holder, lease_until` if `lease_holder = :h`.
    async fn release_lease(&self, name: &EnvironmentName, holder: &str) -> Result<(), PortError> {
        self.faults.check("release_lease")?;
        self.update(name, |i| {
            let ours = i.lease.as_ref().is_some_and(|(h, _)| h == holder);
            if ours {
                i.lease = None;
            }
            ours
        });
        Ok(())
    }

    /// `generation = :g`, then the adapter's `record_progress` expression.
    async fn record_progress(&self, name: &EnvironmentName, stamp: Stamp, p: &Progress) -> Result<bool, PortError> {
        let Stamp { generation, at } = stamp;
        self.faults.check("record_progress")?;
        Ok(self.update(name, |i| {
            if i.env.generation != generation {
                return false;
            }
            write_progress(&mut i.env, generation, p, at);
            true
        }))
    }
}

fn write_progress(env: &mut Environment, generation: u64, p: &Progress, at: DateTime<Utc>) {
    env.updated_at = secs(at);
    if let Some(status) = p.status {
        env.status = status;
        env.status_at = Some(at.timestamp_millis());
        // Without a status, the reason is left as it is, whatever `p.reason` says.
        env.status_reason = p.reason.as_deref().map(truncate);
    }
    if let Some(id) = &p.stack_id {
        env.stack_id = Some(id.clone());
    }
    if let Some(outputs) = &p.outputs {
        env.outputs = outputs.clone();
    }
    match &p.preview_url {
        Some(url) => env.preview_url = Some(url.clone()),
        None if p.settled => env.preview_url = None,
        None => {}
    }
    if p.settled {
        env.observed_generation = generation;
    }
    if let Some(place) = &p.placement {
        env.account.clone_from(&place.account);
        env.region = Some(place.region.clone());
    }
}

impl MemoryRegistry {
    /// The adapter's `go_down`: desired down as generation `g + 1` if still at `g`; `PENDING`,
    /// or when `settled`, `DELETED` and observed, without a preview URL.
    fn send_down(&self, name: &EnvironmentName, g: u64, reason: &str, at: DateTime<Utc>, settled: bool) -> bool {
        self.update(name, |i| {
            if i.env.generation != g {
                return false;
            }
            let env = &mut i.env;
            env.desired = Desired::Down;
            env.status = if settled { Status::Deleted } else { Status::Pending };
            // Not cut to 2,000 characters: the adapter writes the reaper's reasons as they are.
            env.status_reason = Some(reason.to_owned());
            env.generation = g + 1;
            env.updated_at = secs(at);
            if settled {
                env.observed_generation = g + 1;
                env.preview_url = None;
            }
            true
        })
    }
}

#[async_trait]
impl Sweeping for MemoryRegistry {
    async fn go_down(&self, name: &EnvironmentName, stamp: Stamp, how: GoDown, why: &str) -> Result<bool, PortError> {
        let Stamp { generation, at } = stamp;
        self.faults.check(match how {
            GoDown::Request => "request_down",
            GoDown::Retire => "retire",
        })?;
        Ok(self.send_down(name, generation, why, at, how == GoDown::Retire))
    }

    /// `SET expiry_notice_at` if the item exists and has none.
    /// `attribute_exists(pk) AND (attribute_not_exists(expiry_notice_at) OR expiry_notice_at < :since)`.
    async fn record_notice(
        &self,
        name: &EnvironmentName,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.faults.check("record_notice")?;
        Ok(self.update(name, |i| {
            let first = i.env.expiry_notice_at.is_none_or(|noticed| noticed < secs(since));
            if first {
                i.env.expiry_notice_at = Some(secs(at));
            }
            first
        }))
    }
}

#[async_trait]
impl StackStatusLog for MemoryRegistry {
    /// `attribute_exists(pk) AND (attribute_not_exists(status_at) OR status_at < :t) AND
    /// (attribute_not_exists(stack_id) OR stack_id = :sid)`, then the adapter's `stack_status`.
    async fn record_stack_status(&self, name: &EnvironmentName, u: &StackStatusUpdate) -> Result<bool, PortError> {
        self.faults.check("record_stack_status")?;
        let now = secs(self.clock.now());
        Ok(self.update(name, |i| {
            let env = &mut i.env;
            let newer = env.status_at.is_none_or(|t| t < u.at_ms);
            let same_stack = env.stack_id.as_ref().is_none_or(|id| *id == u.stack_id);
            if !(newer && same_stack) {
                return false;
            }
            env.status = u.status;
            env.status_at = Some(u.at_ms);
            env.stack_id = Some(u.stack_id.clone());
            env.updated_at = now;
            env.status_reason = u.reason.as_deref().map(truncate);
            if let Some(outputs) = &u.outputs {
                env.outputs = outputs.clone();
            }
            match &u.preview_url {
                Some(url) => env.preview_url = Some(url.clone()),
                None if u.status == Status::Deleted => env.preview_url = None,
                None => {}
            }
            true
        }))
    }
}

#[async_trait]
impl NotifiedLog for MemoryRegistry {
    /// `SET notified = :k` if the item exists.
    async fn record_notified(&self, name: &EnvironmentName, reported: &Reported) -> Result<(), PortError> {
        self.faults.check("record_notified")?;
        self.update(name, |i| {
            i.env.notified = Some(reported.clone());
            true
        });
        Ok(())
    }
}

/// The adapter's ledger (`ephemera_aws::ledger`): a claim item per environment and one totals
/// item, changed together in one transaction whose condition is every limit.
#[async_trait]
impl Ledger for MemoryRegistry {
    async fn totals(&self) -> Result<BTreeMap<String, i64>, PortError> {
        self.faults.check("totals")?;
        Ok(lock(&self.state).totals.clone())
    }

    async fn claim(&self, env: &EnvironmentName, claim: &Claim) -> Result<Admit, PortError> {
        self.faults.check("claim")?;
        let mut state = lock(&self.state);
        if let Some(held) = state.claims.get(env.as_str()) {
            return Ok(Admit::Admitted(held.clone()));
        }
        if let Some(full) = overflow(claim, &state.totals) {
            return Ok(Admit::Refused { full: full.clone(), totals: state.totals.clone() });
        }
        for t in &claim.takes {
            *state.totals.entry(t.counter.clone()).or_default() += t.amount;
        }
        state.claims.insert(env.to_string(), claim.clone());
        Ok(Admit::Admitted(claim.clone()))
    }

    async fn release(&self, env: &EnvironmentName) -> Result<bool, PortError> {
        self.faults.check("release")?;
        let mut state = lock(&self.state);
        let Some(held) = state.claims.remove(env.as_str()) else { return Ok(false) };
        for t in &held.takes {
            *state.totals.entry(t.counter.clone()).or_default() -= t.amount;
        }
        Ok(true)
    }

    async fn held(&self, env: &EnvironmentName) -> Result<Option<Claim>, PortError> {
        self.faults.check("held")?;
        Ok(lock(&self.state).claims.get(env.as_str()).cloned())
    }

    async fn holders(&self) -> Result<Vec<EnvironmentName>, PortError> {
        self.faults.check("holders")?;
        Ok(lock(&self.state).claims.keys().filter_map(|k| EnvironmentName::parse(k).ok()).collect())
    }
}

#[async_trait]
impl History for MemoryRegistry {
    /// `PutItem` of `EVENT#<at_ms>#<what>#<generation>` (the same entry twice is one item).
    async fn record_event(&self, name: &EnvironmentName, entry: &TimelineEntry) -> Result<(), PortError> {
        self.faults.check("record_event")?;
        let key = crate::history::event_key(entry);
        let entry = TimelineEntry { reason: entry.reason.as_deref().map(truncate), ..entry.clone() };
        lock(&self.state).timelines.entry(name.to_string()).or_default().insert(key, entry);
        Ok(())
    }

    /// `Query` of the `EVENT#` items, latest first, then oldest first.
    async fn timeline(&self, name: &EnvironmentName, limit: usize) -> Result<Vec<TimelineEntry>, PortError> {
        self.faults.check("timeline")?;
        let state = lock(&self.state);
        let Some(items) = state.timelines.get(name.as_str()) else { return Ok(vec![]) };
        let mut latest: Vec<TimelineEntry> = items.values().rev().take(limit).cloned().collect();
        latest.reverse();
        Ok(latest)
    }

    /// `PutItem` of the `RESOURCES` item.
    async fn record_resources(&self, name: &EnvironmentName, resources: &[StackResource]) -> Result<(), PortError> {
        self.faults.check("record_resources")?;
        lock(&self.state).resources.insert(name.to_string(), resources.to_vec());
        Ok(())
    }

    async fn resources(&self, name: &EnvironmentName) -> Result<Vec<StackResource>, PortError> {
        self.faults.check("resources")?;
        Ok(lock(&self.state).resources.get(name.as_str()).cloned().unwrap_or_default())
    }
}
