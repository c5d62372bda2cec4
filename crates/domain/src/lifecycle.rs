//! Lifecycle: what an environment should be, what it is, and which events may change that.

use serde::{Deserialize, Serialize};

/// What the environment should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    /// A stack at the environment's commit.
    Up,
    /// No stack.
    Down,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Up => "up",
            Desired::Down => "down",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "up" => Some(Desired::Up),
            "down" => Some(Desired::Down),
            _ => None,
        }
    }
}

/// What the environment is, as last recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Recorded, not yet acted on.
    Pending,
    /// Waiting for capacity (the monthly budget) before its stack is created.
    Queued,
    Creating,
    Updating,
    Ready,
    Deleting,
    Deleted,
    Failed,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::Queued,
        Status::Creating,
        Status::Updating,
        Status::Ready,
        Status::Deleting,
        Status::Deleted,
        Status::Failed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Queued => "QUEUED",
            Status::Creating => "CREATING",
            Status::Updating => "UPDATING",
            Status::Ready => "READY",
            Status::Deleting => "DELETING",
            Status::Deleted => "DELETED",
            Status::Failed => "FAILED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
    /// Settled: nothing is under way.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Ready | Status::Deleted | Status::Failed)
    }
    /// Where a status comes in one generation's life: what is reported back never goes back
    /// to an earlier stage.
    pub fn stage(self) -> u8 {
        match self {
            Status::Pending | Status::Queued => 1,
            Status::Creating | Status::Updating => 2,
            Status::Ready | Status::Failed => 3,
            Status::Deleting => 4,
            Status::Deleted => 5,
        }
    }
}

/// What was last reported back to GitHub about an environment: which generation, status and
/// commit. Recorded as `<generation>:<STATUS>:<commit or ->`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reported {
    pub generation: u64,
    pub status: Status,
    pub commit: Option<String>,
}

impl Reported {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ':');
        let generation = parts.next()?.parse().ok()?;
        let status = Status::parse(parts.next()?)?;
        let commit = Some(parts.next()?).filter(|c| *c != "-").map(str::to_owned);
        Some(Self { generation, status, commit })
    }

    /// Worth reporting after `previous`: another generation or commit, or a later stage of the
    /// same one. A status at or before the one already reported is not news.
    pub fn is_news_after(&self, previous: Option<&Reported>) -> bool {
        match previous {
            Some(p) if p.generation == self.generation && p.commit == self.commit => {
                self.status.stage() > p.status.stage()
            }
            _ => true,
        }
    }
}

impl TryFrom<String> for Reported {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Reported::parse(&text).ok_or_else(|| format!("{text:?} is not <generation>:<STATUS>:<commit>"))
    }
}

impl From<Reported> for String {
    fn from(r: Reported) -> String {
        r.to_string()
    }
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.generation, self.status.as_str(), self.commit.as_deref().unwrap_or("-"))
    }
}

/// Where an event stands in a pull request's history: the payload's own `updated_at` (seconds),
/// then a rank for events that share a second (a push follows the open; a close follows both).
///
/// An event changes the desired state only if its order is strictly later than the recorded one,
/// so a late `synchronize` can never bring back a closed pull request's environment, and a
/// redelivered event (same order) does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventOrder {
    pub at: i64,
    pub rank: u8,
}

impl EventOrder {
    pub const RANK_OPEN: u8 = 1;
    pub const RANK_PUSH: u8 = 2;
    pub const RANK_CLOSE: u8 = 3;

    pub fn new(at: i64, rank: u8) -> Self {
        Self { at, rank }
    }
    pub fn supersedes(self, recorded: Option<EventOrder>) -> bool {
        recorded.is_none_or(|r| self > r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_events_win_and_closes_win_ties() {
        let open = EventOrder::new(100, EventOrder::RANK_OPEN);
        let push = EventOrder::new(100, EventOrder::RANK_PUSH);
        let close = EventOrder::new(100, EventOrder::RANK_CLOSE);
        let reopen = EventOrder::new(101, EventOrder::RANK_OPEN);
        assert!(open.supersedes(None));
        assert!(push.supersedes(Some(open)));
        assert!(close.supersedes(Some(push)));
        assert!(!push.supersedes(Some(close)), "a stale push never resurrects");
        assert!(!open.supersedes(Some(open)), "a redelivery changes nothing");
        assert!(reopen.supersedes(Some(close)));
        assert!(!EventOrder::new(99, EventOrder::RANK_CLOSE).supersedes(Some(open)));
    }

    #[test]
    fn stack_statuses_map_to_environment_statuses() {
        assert_eq!(crate::StackStatus::parse("CREATE_COMPLETE").environment_status(), Some(Status::Ready));
        assert_eq!(crate::StackStatus::parse("UPDATE_ROLLBACK_COMPLETE").environment_status(), Some(Status::Failed));
        assert_eq!(crate::StackStatus::parse("DELETE_COMPLETE").environment_status(), Some(Status::Deleted));
        assert_eq!(
            crate::StackStatus::parse("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS").environment_status(),
            Some(Status::Updating)
        );
        assert_eq!(crate::StackStatus::parse("ROLLBACK_IN_PROGRESS").environment_status(), None);
        assert_eq!(crate::StackStatus::parse("nonsense").environment_status(), None);
    }

    #[test]
    fn status_round_trips() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("nope"), None);
        assert!(Status::Ready.is_terminal() && !Status::Creating.is_terminal());
    }

    #[test]
    fn reported_markers_round_trip_and_only_later_stages_are_news() {
        let r = Reported::parse("3:READY:abc").unwrap();
        assert_eq!(r, Reported { generation: 3, status: Status::Ready, commit: Some("abc".into()) });
        assert_eq!(r.to_string(), "3:READY:abc");
        assert_eq!(Reported::parse("3:PENDING:-").unwrap().commit, None);
        assert_eq!(Reported::parse("x:READY:abc"), None);
        assert_eq!(Reported::parse("3:NOPE:abc"), None);
        let creating = Reported { status: Status::Creating, ..r.clone() };
        assert!(r.is_news_after(Some(&creating)));
        assert!(!creating.is_news_after(Some(&r)));
        assert!(!r.is_news_after(Some(&r)));
        let failed = Reported { status: Status::Failed, ..r.clone() };
        assert!(!failed.is_news_after(Some(&r)), "ready and failed are one stage");
        let next = Reported { generation: 4, status: Status::Pending, commit: None };
        assert!(next.is_news_after(Some(&r)));
        let other_commit = Reported { commit: Some("def".into()), status: Status::Creating, ..r.clone() };
        assert!(other_commit.is_news_after(Some(&r)));
        assert!(creating.is_news_after(None));
    }
}
