//! The reaper's decisions: what to do about each stack, registry row and tagged resource.
//! Pure: the reaper gathers the facts, this decides, the reaper acts (or, in a dry run, reports).
//!
//! Safety first: nothing is ever deleted unless it carries `ephemera:managed-by=ephemera` *and*
//! a platform name (`ephemera-pr-*` / `ephemera-dev-*`), and lies in an allowed account and
//! region; the two kinds that cannot carry tags (see [`crate::catalogue`]) go by their name
//! alone, only when every environment the name could belong to is known and gone. Preserved
//! environments are never touched while they are meant to be up; once one is sent down, what it
//! left behind is cleaned up like any other's.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::catalogue::{self, Kind, Leftover};
use crate::lifecycle::{Desired, Status};
use crate::names::{EnvironmentName, StackName};
use crate::stack::StackStatus;
use crate::tags::{TagSet, ENVIRONMENT};
use crate::Environment;

/// A stack as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct StackInfo {
    pub name: String,
    pub id: String,
    pub status: StackStatus,
    pub updated: DateTime<Utc>,
    pub tags: Vec<(String, String)>,
}

/// A resource found by its tags (Resource Groups Tagging API) or its type's own listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceInfo {
    pub arn: String,
    /// Its name, for the kinds whose ARN holds only an id (an AppSync API, a Cognito pool).
    pub name: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl ResourceInfo {
    pub fn new(arn: impl Into<String>, tags: Vec<(String, String)>) -> Self {
        Self { arn: arn.into(), name: None, tags }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Past `ephemera:expires-at` and not preserved.
    Expired,
    /// The pull request is closed but the stack is still there.
    ClosedButAlive,
    /// A managed stack the registry does not know.
    OrphanStackUnknown,
    /// A managed stack the registry knows as deleted.
    OrphanStackDeleted,
    /// A tagged resource whose stack is gone.
    OrphanResource,
    /// The registry says there is a stack; there is none.
    StackVanished,
    /// An operation has been in progress longer than the limit.
    Stuck,
    /// Deletion failed (usually a non-empty bucket).
    DeleteFailed,
    /// Expiry is near: notice recorded.
    ExpiringSoon,
    /// Queued for budget: looked at again, in case room was made.
    Queued,
    /// Left pending or creating, with no stack, long after anything last happened to it (a
    /// permanent error before the stack was made): nothing else would ever look at it again.
    Stranded,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Set the environment's desired state to down (a new generation) and let the provisioner delete it.
    RequestDown { environment: EnvironmentName, generation: u64, reason: Reason },
    /// Delete a stack directly (buckets emptied first).
    DeleteStack { stack: String, reason: Reason },
    /// Empty the stack's buckets and delete again; retain what still blocks it, then remove that.
    RepairStack { stack: String, environment: Option<EnvironmentName>, reason: Reason },
    /// Delete a resource directly, completely, as its catalogue entry says.
    DeleteResource { arn: String, kind: Kind, environment: String, reason: Reason },
    /// Mark the row deleted (desired down) without touching AWS.
    Retire { environment: EnvironmentName, generation: u64, reason: Reason },
    /// Record that expiry is near, unless a notice was recorded at or after `since` (the start
    /// of the notice's window: `notice_before`, then the last hour, before expiry).
    Notice { environment: EnvironmentName, expires_at: DateTime<Utc>, since: DateTime<Utc> },
    /// Ask the provisioner to look again (a queued environment).
    Nudge { environment: EnvironmentName, reason: Reason },
}

impl Action {
    pub fn reason(&self) -> Reason {
        match self {
            Action::RequestDown { reason, .. }
            | Action::DeleteStack { reason, .. }
            | Action::RepairStack { reason, .. }
            | Action::DeleteResource { reason, .. }
            | Action::Retire { reason, .. }
            | Action::Nudge { reason, .. } => *reason,
            Action::Notice { .. } => Reason::ExpiringSoon,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Action::RequestDown { .. } => "request_down",
            Action::DeleteStack { .. } => "delete_stack",
            Action::RepairStack { .. } => "repair_stack",
            Action::DeleteResource { .. } => "delete_resource",
            Action::Retire { .. } => "retire",
            Action::Notice { .. } => "notice",
            Action::Nudge { .. } => "nudge",
        }
    }
}

/// Something seen and deliberately left alone, with why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    pub target: String,
    pub why: &'static str,
}

/// The last notice before expiry is given this long before it, whatever `notice_before` is.
pub fn last_notice() -> Duration {
    Duration::hours(1)
}

/// When the notice window `now` is in began: `notice_before` before expiry, or, within the
/// last hour, an hour before it. One notice is given per window.
pub fn notice_window(expires_at: DateTime<Utc>, now: DateTime<Utc>, notice_before: Duration) -> DateTime<Utc> {
    if expires_at - now <= last_notice() {
        expires_at - last_notice()
    } else {
        expires_at - notice_before
    }
}

#[derive(Debug, Clone)]
pub struct SweepPolicy {
    pub now: DateTime<Utc>,
    /// An operation in progress longer than this is stuck.
    pub stuck_after: Duration,
    /// Rows claiming a stack are only called vanished after this long without an update.
    pub grace: Duration,
    /// Notice is recorded this long before expiry.
    pub notice_before: Duration,
    /// Accounts and regions the reaper may act in; empty means any.
    pub allowed_accounts: Vec<String>,
    pub allowed_regions: Vec<String>,
    /// A light sweep looks at the registry and stacks only: no orphan resources.
    pub include_resources: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub skipped: Vec<Skip>,
}

/// `(account, region)` of an ARN.
fn arn_place(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn").then(|| (parts[4], parts[3]))
}

/// Marked `ephemera:managed-by=ephemera`.
fn managed(tags: &[(String, String)]) -> bool {
    TagSet::marks_managed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A platform environment name, owned by the platform: `pr-*`, `dev-*` or `br-*`.
fn platform_environment(name: &str) -> Option<EnvironmentName> {
    StackName::environment(name)
        .filter(|e| crate::names::ENVIRONMENT_PREFIXES.iter().any(|p| e.as_str().starts_with(p)))
}

impl SweepPolicy {
    /// A bucket's ARN names neither account nor region, a role's no region (IAM is global):
    /// what an ARN does not name is not held against it.
    fn place_allowed(&self, arn: &str) -> bool {
        let Some((account, region)) = arn_place(arn) else { return false };
        let allowed = |list: &[String], v: &str| v.is_empty() || list.is_empty() || list.iter().any(|a| a == v);
        allowed(&self.allowed_accounts, account) && allowed(&self.allowed_regions, region)
    }
}

pub fn plan(envs: &[Environment], stacks: &[StackInfo], resources: &[ResourceInfo], policy: &SweepPolicy) -> Plan {
    let mut planner = Planner {
        policy,
        by_name: envs.iter().map(|e| (e.name.as_str(), e)).collect(),
        live_envs: HashSet::new(),
        handled: HashSet::new(),
        plan: Plan::default(),
    };
    for s in stacks.iter().filter(|s| !s.status.is_deleted()) {
        planner.stack(s);
    }
    // Rows without a stack.
    let without_stack: Vec<&Environment> =
        envs.iter().filter(|e| !planner.handled.contains(e.name.as_str()) && !e.is_preserved(policy.now)).collect();
    for e in without_stack {
        planner.row_without_stack(e);
    }
    if policy.include_resources {
        let mut deletes: Vec<Action> = resources.iter().filter_map(|r| planner.resource(r)).collect();
        // A function's or an API's log group is deleted with it, after it.
        let with_owner: HashSet<String> = deletes
            .iter()
            .filter_map(|a| match a {
                Action::DeleteResource { arn, kind, .. } => Leftover::from_arn(*kind, arn).log_group(),
                _ => None,
            })
            .map(|l| l.id)
            .collect();
        deletes.retain(|a| match a {
            Action::DeleteResource { arn, kind: Kind::LogGroup, .. } => {
                !with_owner.contains(catalogue::id_in_arn(Kind::LogGroup, arn))
            }
            _ => true,
        });
        // The catalogue's order: what uses a thing goes before it.
        deletes.sort_by_key(|a| match a {
            Action::DeleteResource { kind, .. } => Some(*kind),
            _ => None,
        });
        planner.plan.actions.extend(deletes);
    }
    planner.plan
}

/// The facts being planned over, and the plan so far.
struct Planner<'a> {
    policy: &'a SweepPolicy,
    by_name: HashMap<&'a str, &'a Environment>,
    /// Environments that still have a stack: their tagged resources are theirs, not orphans.
    live_envs: HashSet<String>,
    /// Rows whose stack was looked at.
    handled: HashSet<&'a str>,
    plan: Plan,
}

impl<'a> Planner<'a> {
    fn skip(&mut self, target: &str, why: &'static str) {
        self.plan.skipped.push(Skip { target: target.to_owned(), why });
    }

    fn act(&mut self, action: Action) {
        self.plan.actions.push(action);
    }

    /// A stack the platform may act on: its environment's name, or None (refused, with why).
    fn admit_stack(&mut self, s: &StackInfo) -> Option<EnvironmentName> {
        let managed = managed(&s.tags);
        let env_name = platform_environment(&s.name);
        if let Some(e) = &env_name {
            self.live_envs.insert(e.to_string());
        }
        let Some(env_name) = env_name else {
            if managed {
                self.skip(&s.name, "tagged as Ephemera's but not named ephemera-pr-*/-dev-*/-br-*: refused");
            }
            return None;
        };
        let refusal = if !managed {
            Some("named like Ephemera's but not tagged ephemera:managed-by=ephemera: refused")
        } else if tag(&s.tags, ENVIRONMENT) != Some(env_name.as_str()) {
            Some("its ephemera:environment tag does not match its name: refused")
        } else if !self.policy.place_allowed(&s.id) {
            Some("outside the allowed accounts and regions: refused")
        } else {
            None
        };
        match refusal {
            Some(why) => {
                self.skip(&s.name, why);
                None
            }
            None => Some(env_name),
        }
    }

    fn stack(&mut self, s: &StackInfo) {
        let Some(env_name) = self.admit_stack(s) else { return };
        let env = self.by_name.get(env_name.as_str()).copied();
        if let Some(e) = env {
            self.handled.insert(e.name.as_str());
            if e.is_preserved(self.policy.now) && e.desired == Desired::Up {
                return self.skip(&s.name, "preserved");
            }
        }
        let in_progress = s.status.is_in_progress();
        let repair = if s.status == StackStatus::DeleteFailed {
            Some(Reason::DeleteFailed)
        } else if in_progress && self.policy.now - s.updated > self.policy.stuck_after {
            Some(Reason::Stuck)
        } else {
            None
        };
        if let Some(reason) = repair {
            let environment = env.map(|e| e.name.clone());
            return self.act(Action::RepairStack { stack: s.name.clone(), environment, reason });
        }
        let policy = self.policy;
        let down = |e: &Environment, reason| Action::RequestDown {
            environment: e.name.clone(),
            generation: e.generation,
            reason,
        };
        let action = match env {
            None => Action::DeleteStack { stack: s.name.clone(), reason: Reason::OrphanStackUnknown },
            Some(e) if e.desired == Desired::Down && e.status == Status::Deleted => {
                Action::DeleteStack { stack: s.name.clone(), reason: Reason::OrphanStackDeleted }
            }
            Some(_) if in_progress => return,
            Some(e) if e.desired == Desired::Down && e.is_converged() => down(e, Reason::ClosedButAlive),
            Some(e) if e.desired == Desired::Up && e.expires_at <= policy.now => down(e, Reason::Expired),
            Some(e)
                if e.desired == Desired::Up && e.expires_at - policy.now <= policy.notice_before.max(last_notice()) =>
            {
                let since = notice_window(e.expires_at, policy.now, policy.notice_before);
                if e.expiry_notice_at.is_some_and(|noticed| noticed >= since) {
                    return;
                }
                Action::Notice { environment: e.name.clone(), expires_at: e.expires_at, since }
            }
            Some(_) => return,
        };
        self.act(action);
    }

    fn row_without_stack(&mut self, e: &Environment) {
        let quiet = self.policy.now - e.updated_at > self.policy.grace;
        let retire = |reason| Action::Retire { environment: e.name.clone(), generation: e.generation, reason };
        let action = match (e.desired, e.status) {
            (Desired::Up, Status::Ready | Status::Updating) if quiet => retire(Reason::StackVanished),
            (Desired::Up, Status::Failed | Status::Queued) if e.expires_at <= self.policy.now => {
                retire(Reason::Expired)
            }
            (Desired::Up, Status::Queued) => Action::Nudge { environment: e.name.clone(), reason: Reason::Queued },
            (Desired::Down, Status::Deleting) if quiet => retire(Reason::StackVanished),
            (Desired::Up, Status::Pending | Status::Creating)
                if self.policy.now - e.updated_at > self.policy.stuck_after =>
            {
                retire(Reason::Stranded)
            }
            _ => return,
        };
        self.act(action);
    }

    /// A resource that belongs to no live environment: delete it. Tagged ones are their tag's
    /// environment's if also named for it; the kinds owned by name are looked up by name.
    fn resource(&mut self, r: &ResourceInfo) -> Option<Action> {
        let managed = managed(&r.tags);
        let Some(kind) = Kind::of_arn(&r.arn) else {
            if managed {
                self.uncatalogued(r);
            }
            return None;
        };
        // Named by its API's id, it goes with its API.
        if kind == Kind::LogGroup && catalogue::id_in_arn(kind, &r.arn).starts_with(catalogue::APPSYNC_LOG_PREFIX) {
            return None;
        }
        let env = match tag(&r.tags, ENVIRONMENT).filter(|_| managed) {
            Some(env) if self.live_envs.contains(env) => return None,
            Some(env) => match catalogue::name_of(kind, &r.arn, r.name.as_deref()) {
                Some(name) if catalogue::named_or_cut_for(name, env) => env.to_owned(),
                _ => {
                    self.skip(&r.arn, "tagged as Ephemera's but its name is not its environment's: refused");
                    return None;
                }
            },
            None if kind.entry().owned_by_name => self.owner_by_name(kind, r)?,
            None => return None,
        };
        if !self.policy.place_allowed(&r.arn) {
            self.skip(&r.arn, "outside the allowed accounts and regions: refused");
            return None;
        }
        match self.by_name.get(env.as_str()) {
            // Preserved means kept up past its expiry; once it is sent down (its pull
            // request closed, its owner destroyed it), what it left behind is garbage.
            Some(e) if e.is_preserved(self.policy.now) && e.desired == Desired::Up => self.skip(&r.arn, "preserved"),
            // A stack being created right now lists its resources a moment later.
            Some(e) if e.desired == Desired::Up && !e.status.is_terminal() => {
                self.skip(&r.arn, "its environment is being provisioned")
            }
            _ => {
                let arn = r.arn.clone();
                return Some(Action::DeleteResource { arn, kind, environment: env, reason: Reason::OrphanResource });
            }
        }
        None
    }

    /// A resource with the platform's tags that the catalogue has no entry for: a stack (the
    /// stack listing covers those named like the platform's) or a type an operator allowed.
    fn uncatalogued(&mut self, r: &ResourceInfo) {
        let stack = r.arn.split_once(":stack/").filter(|_| r.arn.starts_with("arn:aws:cloudformation:"));
        match stack.and_then(|(_, rest)| rest.split('/').next()) {
            Some(name) if platform_environment(name).is_none() => {
                self.skip(&r.arn, "tagged as Ephemera's but not named ephemera-pr-*/-dev-*/-br-*: refused")
            }
            Some(_) => {}
            None => match tag(&r.tags, ENVIRONMENT) {
                Some(env) if self.live_envs.contains(env) => {}
                _ => self.skip(
                    &r.arn,
                    "tagged as Ephemera's, of a type the resource catalogue does not know: left in place",
                ),
            },
        }
    }

    /// The environment an untagged resource is named for, if every environment its name could
    /// be named for is known and gone (sent down, its stack deleted): the longest such name.
    fn owner_by_name(&mut self, kind: Kind, r: &ResourceInfo) -> Option<String> {
        let name = catalogue::name_of(kind, &r.arn, r.name.as_deref())?;
        let known: Vec<String> = catalogue::environments_named(name)
            .into_iter()
            .filter(|c| self.live_envs.contains(c) || self.by_name.contains_key(c.as_str()))
            .collect();
        let gone = |c: &String| {
            !self.live_envs.contains(c) && self.by_name.get(c.as_str()).is_some_and(|e| e.desired == Desired::Down)
        };
        if known.is_empty() || !known.iter().all(gone) {
            return None;
        }
        known.into_iter().max_by_key(String::len)
    }
}

/// A resource an environment's earlier stacks left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remnant<'a> {
    pub arn: &'a str,
    pub kind: Kind,
    /// For a resource owned by its name alone: the other environments it could be named for
    /// (shorter and longer). It is this environment's only if none of them exists, or each
    /// that does is gone (sent down, its stack deleted).
    pub unless_exists: Vec<String>,
}

/// Resources an environment's earlier stacks left behind (a stack deleted while keeping what
/// blocked its deletion, a log group Lambda made after its function was deleted), found before
/// its stack is created again: they would collide with the new stack's resources of the same
/// names. Only what the reaper could delete as an orphan qualifies: managed, tagged for this
/// environment and named for it, or, for the kinds owned by name, named for it. The caller
/// knows that no stack of this name exists.
pub fn leftovers<'a>(environment: &EnvironmentName, resources: &'a [ResourceInfo]) -> Vec<Remnant<'a>> {
    let env = environment.as_str();
    let mut out: Vec<Remnant<'a>> = resources
        .iter()
        .filter_map(|r| {
            let kind = Kind::of_arn(&r.arn)?;
            let name = catalogue::name_of(kind, &r.arn, r.name.as_deref())?;
            let managed = managed(&r.tags);
            let unless_exists = match tag(&r.tags, ENVIRONMENT).filter(|_| managed) {
                Some(tagged) if tagged == env && catalogue::named_or_cut_for(name, env) => Vec::new(),
                Some(_) => return None,
                // Any other environment the name could belong to, shorter or longer, must not
                // exist: `ephemera-dev-alice-api-X` may be `dev-alice`'s as well as `dev-alice-api`'s.
                None if kind.entry().owned_by_name && catalogue::named_for(name, env) => {
                    catalogue::environments_named(name).into_iter().filter(|c| c != env).collect()
                }
                None => return None,
            };
            Some(Remnant { arn: &r.arn, kind, unless_exists })
        })
        .collect();
    out.sort_by_key(|l| l.kind);
    out
}

/// Resources deleted, by resource type, for the summary and the dry run.
pub fn deletions_by_type(actions: &[Action]) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for a in actions {
        if let Action::DeleteResource { kind, .. } = a {
            *out.entry(kind.resource_type()).or_default() += 1;
        }
    }
    out
}

/// Counts by action and reason, for the summary.
pub fn counts(actions: &[Action]) -> BTreeMap<String, BTreeMap<Reason, u64>> {
    let mut out: BTreeMap<String, BTreeMap<Reason, u64>> = BTreeMap::new();
    for a in actions {
        *out.entry(a.kind().to_owned()).or_default().entry(a.reason()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::test_support::pr_environment;

    const ACCOUNT: &str = "123456789012";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z").unwrap().to_utc()
    }
    fn policy() -> SweepPolicy {
        SweepPolicy {
            now: now(),
            stuck_after: Duration::hours(2),
            grace: Duration::minutes(10),
            notice_before: Duration::hours(24),
            allowed_accounts: vec![ACCOUNT.into()],
            allowed_regions: vec!["us-east-1".into()],
            include_resources: true,
        }
    }
    fn env(name: &str, f: impl FnOnce(&mut Environment)) -> Environment {
        let mut e = pr_environment();
        e.name = EnvironmentName::parse(name).unwrap();
        e.status = Status::Ready;
        e.observed_generation = e.generation;
        e.updated_at = now() - Duration::hours(1);
        e.expires_at = now() + Duration::days(3);
        f(&mut e);
        e
    }
    fn stack(env: &str, status: &str) -> StackInfo {
        StackInfo {
            name: format!("ephemera-{env}"),
            id: format!("arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/ephemera-{env}/uuid"),
            status: StackStatus::parse(status),
            updated: now() - Duration::minutes(5),
            tags: vec![("ephemera:managed-by".into(), "ephemera".into()), ("ephemera:environment".into(), env.into())],
        }
    }
    fn reasons(p: &Plan) -> Vec<(&'static str, Reason)> {
        p.actions.iter().map(|a| (a.kind(), a.reason())).collect()
    }

    #[test]
    fn healthy_environments_are_left_alone() {
        let p = plan(&[env("pr-1-a-b", |_| {})], &[stack("pr-1-a-b", "CREATE_COMPLETE")], &[], &policy());
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn expired_and_closed_but_alive_go_down_through_the_provisioner() {
        let expired = env("pr-1-a-b", |e| e.expires_at = now() - Duration::minutes(1));
        let closed = env("pr-2-a-b", |e| {
            e.desired = Desired::Down;
            e.status = Status::Failed;
        });
        let p = plan(
            &[expired, closed],
            &[stack("pr-1-a-b", "CREATE_COMPLETE"), stack("pr-2-a-b", "UPDATE_COMPLETE")],
            &[],
            &policy(),
        );
        assert_eq!(reasons(&p), vec![("request_down", Reason::Expired), ("request_down", Reason::ClosedButAlive)]);
    }

    #[test]
    fn orphan_stacks_are_deleted_directly() {
        let deleted = env("pr-2-a-b", |e| {
            e.desired = Desired::Down;
            e.status = Status::Deleted;
        });
        let p = plan(
            &[deleted],
            &[stack("pr-1-a-b", "CREATE_COMPLETE"), stack("pr-2-a-b", "CREATE_COMPLETE")],
            &[],
            &policy(),
        );
        assert_eq!(
            reasons(&p),
            vec![("delete_stack", Reason::OrphanStackUnknown), ("delete_stack", Reason::OrphanStackDeleted)]
        );
        // Branch environments' stacks are the platform's too; other names never are.
        let p = plan(&[], &[stack("br-feature-x-0123456789", "CREATE_COMPLETE")], &[], &policy());
        assert_eq!(reasons(&p), vec![("delete_stack", Reason::OrphanStackUnknown)]);
        let p = plan(&[], &[stack("qa-feature-x", "CREATE_COMPLETE")], &[], &policy());
        assert!(p.actions.is_empty());
    }

    #[test]
    fn foreign_stacks_are_refused_whatever_they_carry() {
        let mut untagged = stack("pr-1-a-b", "CREATE_COMPLETE");
        untagged.tags.clear();
        let mut foreign_name = stack("pr-2-a-b", "CREATE_COMPLETE");
        foreign_name.name = "payments-prod".into();
        let mut platform_itself = stack("pr-3-a-b", "CREATE_COMPLETE");
        platform_itself.name = "ephemera".into();
        let mut mismatched = stack("pr-4-a-b", "CREATE_COMPLETE");
        mismatched.tags[1].1 = "pr-5-a-b".into();
        let mut elsewhere = stack("pr-6-a-b", "CREATE_COMPLETE");
        elsewhere.id = elsewhere.id.replace("us-east-1", "eu-west-1");
        let p = plan(&[], &[untagged, foreign_name, platform_itself, mismatched, elsewhere], &[], &policy());
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.skipped.len(), 5, "{:?}", p.skipped);
    }

    #[test]
    fn preserved_environments_are_never_touched_while_meant_to_be_up() {
        let preserved = env("pr-1-a-b", |e| {
            e.preserved = true;
            e.expires_at = now() - Duration::days(30);
        });
        let resource = ResourceInfo::new(
            "arn:aws:s3:::ephemera-pr-1-a-b-storagebucket-x",
            vec![("ephemera:managed-by".into(), "ephemera".into()), ("ephemera:environment".into(), "pr-1-a-b".into())],
        );
        let p = plan(std::slice::from_ref(&preserved), &[stack("pr-1-a-b", "DELETE_FAILED")], &[], &policy());
        assert!(p.actions.is_empty());
        let p = plan(std::slice::from_ref(&preserved), &[], std::slice::from_ref(&resource), &policy());
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        // A developer's preservation that has lapsed protects nothing: expired, it goes.
        let lapsed = Environment { preserved_until: Some(now() - Duration::hours(1)), ..preserved.clone() };
        let p = plan(std::slice::from_ref(&lapsed), &[stack("pr-1-a-b", "CREATE_COMPLETE")], &[], &policy());
        assert_eq!(reasons(&p), vec![("request_down", Reason::Expired)], "{:?}", p.actions);
        let current = Environment { preserved_until: Some(now() + Duration::hours(1)), ..preserved.clone() };
        assert!(plan(&[current], &[stack("pr-1-a-b", "CREATE_COMPLETE")], &[], &policy()).actions.is_empty());

        // Its pull request closed and its stack is gone, but a table or bucket was left behind.
        let closed = Environment { desired: Desired::Down, status: Status::Deleted, ..preserved };
        let p = plan(std::slice::from_ref(&closed), &[], &[resource], &policy());
        assert_eq!(reasons(&p), vec![("delete_resource", Reason::OrphanResource)]);
        let p = plan(&[closed], &[stack("pr-1-a-b", "DELETE_FAILED")], &[], &policy());
        assert_eq!(reasons(&p).len(), 1, "a failed deletion is repaired: {:?}", p.actions);
    }

    #[test]
    fn stuck_and_delete_failed_stacks_are_repaired() {
        let mut stuck = stack("pr-1-a-b", "CREATE_IN_PROGRESS");
        stuck.updated = now() - Duration::hours(3);
        let recent = stack("pr-2-a-b", "CREATE_IN_PROGRESS");
        let failed = stack("pr-3-a-b", "DELETE_FAILED");
        let envs = [env("pr-2-a-b", |e| e.status = Status::Creating)];
        let p = plan(&envs, &[stuck, recent, failed], &[], &policy());
        assert_eq!(reasons(&p), vec![("repair_stack", Reason::Stuck), ("repair_stack", Reason::DeleteFailed)]);
    }

    #[test]
    fn rows_whose_stack_vanished_are_retired_after_a_grace_period() {
        let vanished = env("pr-1-a-b", |_| {});
        let just_updated = env("pr-2-a-b", |e| e.updated_at = now() - Duration::minutes(1));
        let pending = env("pr-3-a-b", |e| e.status = Status::Pending);
        let p = plan(&[vanished, just_updated, pending], &[], &[], &policy());
        assert_eq!(reasons(&p), vec![("retire", Reason::StackVanished)]);
    }

    #[test]
    fn orphan_resources_are_deleted_only_with_tag_and_name() {
        let tags = |env: &str| {
            vec![("ephemera:managed-by".into(), "ephemera".into()), ("ephemera:environment".into(), env.into())]
        };
        let orphan = ResourceInfo::new("arn:aws:s3:::ephemera-pr-1-a-b-storagebucket-x", tags("pr-1-a-b"));
        let table = ResourceInfo::new(
            format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ephemera-pr-1-a-b-Task"),
            tags("pr-1-a-b"),
        );
        let alive = ResourceInfo::new("arn:aws:s3:::ephemera-pr-2-a-b-storagebucket-y", tags("pr-2-a-b"));
        let spoofed = ResourceInfo::new("arn:aws:s3:::customer-data", tags("pr-1-a-b"));
        let p = plan(&[], &[stack("pr-2-a-b", "CREATE_COMPLETE")], &[orphan, table, alive, spoofed.clone()], &policy());
        assert_eq!(
            reasons(&p),
            vec![
                ("delete_stack", Reason::OrphanStackUnknown),
                ("delete_resource", Reason::OrphanResource),
                ("delete_resource", Reason::OrphanResource)
            ]
        );
        assert!(p.skipped.iter().any(|s| s.target == spoofed.arn));
        let light = SweepPolicy { include_resources: false, ..policy() };
        assert_eq!(plan(&[], &[], &[spoofed], &light), Plan::default());
    }

    #[test]
    fn leftovers_are_this_environments_own_managed_resources() {
        let managed = |env: &str| {
            vec![("ephemera:managed-by".into(), "ephemera".into()), ("ephemera:environment".into(), env.into())]
        };
        let table = |name: &str| format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}");
        let resources = vec![
            ResourceInfo::new(table("ephemera-pr-1-a-b-Task"), managed("pr-1-a-b")),
            ResourceInfo::new("arn:aws:s3:::ephemera-pr-1-a-b-storagebucket-x", managed("pr-1-a-b")),
            // Another environment's, even one whose name extends this one's.
            ResourceInfo::new(table("ephemera-pr-1-a-b-c-Task"), managed("pr-1-a-b-c")),
            // Tagged for this environment but named otherwise: a spoof.
            ResourceInfo::new(table("customer-data"), managed("pr-1-a-b")),
            // Named and tagged for it, but not marked as Ephemera's.
            ResourceInfo::new(
                table("ephemera-pr-1-a-b-Other"),
                vec![("ephemera:environment".into(), "pr-1-a-b".into())],
            ),
        ];
        let mut resources = resources;
        // Lambda's own log group for one of its functions: untagged, owned by its name, unless
        // an environment called `pr-1-a-b-fn` exists.
        let runtime_logs = format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/ephemera-pr-1-a-b-Fn");
        resources.push(ResourceInfo::new(runtime_logs.clone(), vec![]));
        // An untagged table is never owned by its name.
        resources.push(ResourceInfo::new(table("ephemera-pr-1-a-b-Untagged"), vec![]));
        let name = EnvironmentName::parse("pr-1-a-b").unwrap();
        let found: Vec<(&str, Kind, Vec<String>)> =
            leftovers(&name, &resources).into_iter().map(|l| (l.arn, l.kind, l.unless_exists)).collect();
        assert_eq!(
            found,
            vec![
                (table("ephemera-pr-1-a-b-Task").as_str(), Kind::Table, vec![]),
                ("arn:aws:s3:::ephemera-pr-1-a-b-storagebucket-x", Kind::Bucket, vec![]),
                (
                    runtime_logs.as_str(),
                    Kind::LogGroup,
                    ["pr", "pr-1", "pr-1-a", "pr-1-a-b-fn"].map(String::from).to_vec()
                ),
            ]
        );
    }

    fn managed_tags(env: &str) -> Vec<(String, String)> {
        vec![("ephemera:managed-by".into(), "ephemera".into()), ("ephemera:environment".into(), env.into())]
    }

    #[test]
    fn every_kind_is_deleted_in_the_catalogues_order_and_counted_by_type() {
        let closed = env("pr-1-a-b", |e| {
            e.desired = Desired::Down;
            e.status = Status::Deleted;
        });
        let arns = [
            format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:ephemera-pr-1-a-b-Logs"),
            format!("arn:aws:iam::{ACCOUNT}:role/ephemera-pr-1-a-b-Role"),
            format!("arn:aws:sqs:us-east-1:{ACCOUNT}:ephemera-pr-1-a-b-Queue"),
            format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:ephemera-pr-1-a-b-Fn"),
            format!("arn:aws:sns:us-east-1:{ACCOUNT}:ephemera-pr-1-a-b-Topic"),
            format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ephemera-pr-1-a-b-Secret-AbCdEf"),
        ];
        let mut resources: Vec<ResourceInfo> =
            arns.iter().map(|a| ResourceInfo::new(a.clone(), managed_tags("pr-1-a-b"))).collect();
        // Known by an id: its listed name says whose it is.
        resources.push(ResourceInfo {
            arn: format!("arn:aws:appsync:us-east-1:{ACCOUNT}:apis/abc"),
            name: Some("ephemera-pr-1-a-b-api".into()),
            tags: managed_tags("pr-1-a-b"),
        });
        resources.push(ResourceInfo {
            arn: format!("arn:aws:appsync:us-east-1:{ACCOUNT}:apis/def"),
            name: Some("payments".into()),
            tags: managed_tags("pr-1-a-b"),
        });
        let p = plan(&[closed], &[], &resources, &policy());
        let kinds: Vec<Kind> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::DeleteResource { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        use Kind::*;
        assert_eq!(kinds, vec![Function, GraphQlApi, Topic, Queue, Secret, Role, LogGroup]);
        assert!(p.skipped.iter().any(|s| s.target.ends_with("apis/def")), "{:?}", p.skipped);
        let by_type = deletions_by_type(&p.actions);
        assert_eq!(by_type.get("AWS::IAM::Role"), Some(&1));
        assert_eq!(by_type.values().sum::<u64>(), 7);
    }

    #[test]
    fn untagged_runtime_log_groups_go_only_when_every_environment_they_could_be_is_gone() {
        let down = |name: &str| {
            env(name, |e| {
                e.desired = Desired::Down;
                e.status = Status::Deleted;
            })
        };
        let logs =
            |f: &str| ResourceInfo::new(format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/{f}"), vec![]);
        let envs = [down("pr-1-a-b"), env("pr-2-a-b", |_| {}), down("pr-3-a-b"), env("pr-3-a-b-c", |_| {})];
        let stacks = [stack("pr-2-a-b", "CREATE_COMPLETE")];
        let resources = [
            logs("ephemera-pr-1-a-b-Fn-XYZ"),   // its environment is gone: deleted
            logs("ephemera-pr-2-a-b-Fn-XYZ"),   // live: kept
            logs("ephemera-pr-3-a-b-c-Fn-XYZ"), // could be pr-3-a-b's, but pr-3-a-b-c is up: kept
            logs("ephemera-pr-9-a-b-Fn-XYZ"),   // no environment of that name known: kept
            logs("payments-api"),               // not the platform's
        ];
        let p = plan(&envs, &stacks, &resources, &policy());
        let deleted: Vec<(&str, &str)> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::DeleteResource { arn, environment, .. } => Some((arn.as_str(), environment.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, vec![(resources[0].arn.as_str(), "pr-1-a-b")]);
        // An untagged resource of a kind not owned by name is never deleted on its name.
        let table =
            ResourceInfo::new(format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ephemera-pr-1-a-b-T"), vec![]);
        assert!(plan(&[down("pr-1-a-b")], &[], &[table], &policy()).actions.is_empty());
    }

    #[test]
    fn iam_is_global_and_other_accounts_are_refused() {
        let closed = env("pr-1-a-b", |e| {
            e.desired = Desired::Down;
            e.status = Status::Deleted;
        });
        let role =
            ResourceInfo::new(format!("arn:aws:iam::{ACCOUNT}:role/ephemera-pr-1-a-b-Role"), managed_tags("pr-1-a-b"));
        let foreign = ResourceInfo::new(
            "arn:aws:iam::999999999999:role/ephemera-pr-1-a-b-Role".to_owned(),
            managed_tags("pr-1-a-b"),
        );
        let p = plan(&[closed], &[], &[role, foreign], &policy());
        assert_eq!(reasons(&p), vec![("delete_resource", Reason::OrphanResource)]);
        assert_eq!(p.skipped.len(), 1, "{:?}", p.skipped);
    }

    #[test]
    fn a_tagged_resource_the_catalogue_does_not_know_is_reported_and_left() {
        let stream = ResourceInfo::new(
            format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/ephemera-pr-1-a-b-S"),
            managed_tags("pr-1-a-b"),
        );
        let live_stack = ResourceInfo::new(
            format!("arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/ephemera-pr-2-a-b/x"),
            managed_tags("pr-2-a-b"),
        );
        let p = plan(&[], &[stack("pr-2-a-b", "CREATE_COMPLETE")], &[stream.clone(), live_stack], &policy());
        assert_eq!(reasons(&p), vec![("delete_stack", Reason::OrphanStackUnknown)]);
        assert_eq!(p.skipped.len(), 1, "{:?}", p.skipped);
        assert!(p.skipped[0].target == stream.arn && p.skipped[0].why.contains("catalogue"));
    }

    #[test]
    fn a_row_stranded_before_its_stack_was_made_is_retired() {
        let stranded = env("pr-1-a-b", |e| {
            e.status = Status::Creating;
            e.updated_at = now() - Duration::hours(3);
            e.status_reason = Some("the blueprint was refused".into());
        });
        let pending = env("pr-2-a-b", |e| {
            e.status = Status::Pending;
            e.updated_at = now() - Duration::hours(3);
        });
        let recent = env("pr-3-a-b", |e| e.status = Status::Creating);
        let p = plan(&[stranded, pending, recent], &[], &[], &policy());
        assert_eq!(reasons(&p), vec![("retire", Reason::Stranded), ("retire", Reason::Stranded)]);
    }

    #[test]
    fn queued_environments_are_nudged_until_they_expire() {
        let queued = env("pr-1-a-b", |e| e.status = Status::Queued);
        let stale = env("pr-2-a-b", |e| {
            e.status = Status::Queued;
            e.expires_at = now() - Duration::minutes(1);
        });
        let p = plan(&[queued, stale], &[], &[], &policy());
        assert_eq!(reasons(&p), vec![("nudge", Reason::Queued), ("retire", Reason::Expired)]);
    }

    #[test]
    fn notice_is_recorded_within_a_day_of_expiry() {
        let soon = env("pr-1-a-b", |e| e.expires_at = now() + Duration::hours(5));
        let p = plan(&[soon], &[stack("pr-1-a-b", "CREATE_COMPLETE")], &[], &policy());
        assert_eq!(reasons(&p), vec![("notice", Reason::ExpiringSoon)]);
    }

    #[test]
    fn one_notice_per_window_then_a_last_one_within_the_hour() {
        let stacks = [stack("pr-1-a-b", "CREATE_COMPLETE")];
        let at = |hours: i64, noticed: Option<i64>| {
            env("pr-1-a-b", |e| {
                e.expires_at = now() + Duration::hours(hours) - Duration::minutes(1);
                e.expiry_notice_at = noticed.map(|h| e.expires_at - Duration::hours(h));
            })
        };
        let notices = |e| plan(&[e], &stacks, &[], &policy()).actions.len();
        assert_eq!(notices(at(25, None)), 0, "not yet");
        assert_eq!(notices(at(5, None)), 1);
        assert_eq!(notices(at(5, Some(20))), 0, "noticed in this window already");
        assert_eq!(notices(at(1, Some(20))), 1, "the last hour has its own notice");
        assert_eq!(notices(at(1, Some(1))), 0);
        let e = at(1, Some(20));
        let expected = e.expires_at - Duration::hours(1);
        match &plan(&[e], &stacks, &[], &policy()).actions[0] {
            Action::Notice { since, .. } => assert_eq!(*since, expected),
            other => panic!("{other:?}"),
        }
    }
}
