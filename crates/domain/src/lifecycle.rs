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
    /// What a CloudFormation stack status says about the environment; `None` for statuses
    /// that say nothing new (a rollback under way is not yet an outcome).
    pub fn from_stack_status(stack_status: &str) -> Option<Status> {
        Some(match stack_status {
            "CREATE_IN_PROGRESS" => Status::Creating,
            "UPDATE_IN_PROGRESS" | "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS" => Status::Updating,
            "DELETE_IN_PROGRESS" => Status::Deleting,
            "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => Status::Ready,
            "DELETE_COMPLETE" => Status::Deleted,
            "CREATE_FAILED"
            | "ROLLBACK_COMPLETE"
            | "ROLLBACK_FAILED"
            | "DELETE_FAILED"
            | "UPDATE_FAILED"
            | "UPDATE_ROLLBACK_COMPLETE"
            | "UPDATE_ROLLBACK_FAILED"
            | "IMPORT_ROLLBACK_COMPLETE" => Status::Failed,
            _ => return None,
        })
    }
    /// The status an environment settles in when its desired state is reached.
    pub fn settled_for(desired: Desired) -> Status {
        match desired {
            Desired::Up => Status::Ready,
            Desired::Down => Status::Deleted,
        }
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
        assert_eq!(Status::from_stack_status("CREATE_COMPLETE"), Some(Status::Ready));
        assert_eq!(Status::from_stack_status("UPDATE_ROLLBACK_COMPLETE"), Some(Status::Failed));
        assert_eq!(Status::from_stack_status("DELETE_COMPLETE"), Some(Status::Deleted));
        assert_eq!(Status::from_stack_status("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"), Some(Status::Updating));
        assert_eq!(Status::from_stack_status("ROLLBACK_IN_PROGRESS"), None);
        assert_eq!(Status::from_stack_status("nonsense"), None);
    }

    #[test]
    fn status_round_trips() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("nope"), None);
        assert!(Status::Ready.is_terminal() && !Status::Creating.is_terminal());
    }
}
