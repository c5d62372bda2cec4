//! The registry's record of one environment.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::lifecycle::{Desired, EventOrder, Reported, Status};
use crate::names::{EnvironmentName, RepoName, StackName};
use crate::preview::CommitSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentKind {
    /// A pull request's preview.
    Pr,
    /// A developer's own environment.
    Dev,
    /// A branch's, for branches matching `EPHEMERA_BRANCH_ENVIRONMENTS`.
    Branch,
}

impl EnvironmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentKind::Pr => "pr",
            EnvironmentKind::Dev => "dev",
            EnvironmentKind::Branch => "branch",
        }
    }

    pub const ALL: [EnvironmentKind; 3] = [EnvironmentKind::Pr, EnvironmentKind::Dev, EnvironmentKind::Branch];
    /// Every kind in the order of its names (`br-`, `dev-`, `pr-`): environments listed kind
    /// after kind in this order are in name order.
    pub const BY_NAME: [EnvironmentKind; 3] = [EnvironmentKind::Branch, EnvironmentKind::Dev, EnvironmentKind::Pr];

    /// The kind an environment's name says (`pr-`, `dev-` or `br-`).
    pub fn of_name(name: &str) -> Option<Self> {
        let prefix = |k: Self| match k {
            Self::Pr => "pr-",
            Self::Dev => "dev-",
            Self::Branch => "br-",
        };
        Self::ALL.into_iter().find(|k| name.starts_with(prefix(*k)))
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pr" => Some(Self::Pr),
            "dev" => Some(Self::Dev),
            "branch" => Some(Self::Branch),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub name: EnvironmentName,
    pub kind: EnvironmentKind,
    pub repository: Option<RepoName>,
    pub pull_request: Option<u64>,
    /// GitHub login (pull request author) or developer principal.
    pub owner: String,
    /// The commit the environment should run (the last one requested, kept when going down).
    pub commit: Option<String>,
    pub head_ref: Option<String>,
    /// The pull request's head commit (`commit` is the merge commit when built rebase-first).
    pub head_commit: Option<String>,
    /// The branch the pull request merges into.
    pub base_ref: Option<String>,
    /// What `commit` is: GitHub's test merge or the head (see [`crate::preview::Source`]).
    pub source: Option<CommitSource>,
    /// The pull request was merged (not just closed): its preview's measurement may become the
    /// repository's baseline.
    pub merged: bool,
    pub desired: Desired,
    pub status: Status,
    pub status_reason: Option<String>,
    /// When the stack was last seen in `status` (ms since the epoch): a CloudFormation event's
    /// own time, or when the provisioner looked. Older news never overwrites newer.
    pub status_at: Option<i64>,
    /// The last status reported back to GitHub.
    pub notified: Option<Reported>,
    /// Bumped on every accepted change of desired state.
    pub generation: u64,
    /// The generation whose outcome `status` reports.
    pub observed_generation: u64,
    /// The order of the last accepted event (see [`EventOrder`]).
    pub last_event: Option<EventOrder>,
    pub stack_id: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub preview_url: Option<String>,
    pub preserved: bool,
    /// The deploy account it lives in (None: the platform's own) and the region: recorded when
    /// its stack is first created, kept for its life.
    pub account: Option<String>,
    pub region: Option<String>,
    /// A developer environment's preservation lapses then (a pull request's, pinned by label,
    /// has none).
    pub preserved_until: Option<DateTime<Utc>>,
    /// Estimated run rate and cost so far (USD), as the reaper last computed them.
    pub cost_monthly_usd: Option<f64>,
    pub cost_accrued_usd: Option<f64>,
    /// When the platform noticed the environment would expire soon (once per expiry).
    pub expiry_notice_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Environment {
    /// A record with what every environment has, `PENDING` at generation 0, nothing else known
    /// yet.
    pub fn new(
        name: EnvironmentName,
        kind: EnvironmentKind,
        owner: impl Into<String>,
        desired: Desired,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Environment {
            name,
            kind,
            repository: None,
            pull_request: None,
            owner: owner.into(),
            commit: None,
            head_ref: None,
            head_commit: None,
            base_ref: None,
            source: None,
            merged: false,
            desired,
            status: Status::Pending,
            status_reason: None,
            status_at: None,
            notified: None,
            generation: 0,
            observed_generation: 0,
            last_event: None,
            stack_id: None,
            outputs: BTreeMap::new(),
            preview_url: None,
            preserved: false,
            account: None,
            region: None,
            preserved_until: None,
            cost_monthly_usd: None,
            cost_accrued_usd: None,
            expiry_notice_at: None,
            created_at,
            updated_at: created_at,
            expires_at,
        }
    }

    /// Preserved, and not past the time its preservation lapses.
    pub fn is_preserved(&self, now: DateTime<Utc>) -> bool {
        self.preserved && self.preserved_until.is_none_or(|until| until > now)
    }

    /// The reaper warned that it expires soon, and it is still meant to be up and not preserved.
    pub fn expires_soon(&self, now: DateTime<Utc>) -> bool {
        self.expiry_notice_at.is_some() && self.desired == crate::Desired::Up && !self.is_preserved(now)
    }

    pub fn stack_name(&self) -> StackName {
        self.name.stack_name()
    }

    /// Nothing was ever made or tried for it: no outcome observed and no stack recorded (a
    /// stack's id is recorded once `CreateStack` answers; one made by an attempt that crashed
    /// before is found by its name). Earlier stacks of its name, and what they left, can then
    /// only come from before the registry knew it.
    pub fn is_first_life(&self) -> bool {
        self.observed_generation == 0 && self.stack_id.is_none()
    }
    /// Nothing left to do for the current generation.
    pub fn is_converged(&self) -> bool {
        self.observed_generation >= self.generation && self.status.is_terminal()
    }
}

#[cfg(any(test, feature = "test-support"))]
pub mod test_support {
    use super::*;

    pub fn pr_environment() -> Environment {
        let repo = RepoName::parse("octo-org/hello-world").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap().to_utc();
        let name = EnvironmentName::for_pull_request(&repo, 42).unwrap();
        Environment {
            repository: Some(repo),
            pull_request: Some(42),
            commit: Some("6dcb09b5b57875f334f61aebed695e2e4193db5e".into()),
            head_ref: Some("feature".into()),
            head_commit: Some("6dcb09b5b57875f334f61aebed695e2e4193db5e".into()),
            base_ref: Some("main".into()),
            source: Some(CommitSource::Head),
            generation: 1,
            last_event: Some(EventOrder::new(at.timestamp(), EventOrder::RANK_OPEN)),
            ..Environment::new(name, EnvironmentKind::Pr, "octocat", Desired::Up, at, at + chrono::Duration::days(7))
        }
    }
}
