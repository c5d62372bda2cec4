//! Desired versus observed: the next step for one environment's stack.
//!
//! The provisioner runs [`plan`] in a loop: observe the stack, take the step, observe again,
//! until it settles. Which steps were already taken in this run is passed in, so that a step
//! that did not change anything settles as failed instead of looping.

use crate::lifecycle::{Desired, Status};
use crate::stack::StackStatus;

/// A stack's state, grouped by what the provisioner can do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackState {
    /// No stack of that name (or only a deleted one).
    Absent,
    /// An operation is running; wait.
    InProgress,
    /// Created or updated, usable; includes `UPDATE_ROLLBACK_COMPLETE` (usable at its old version).
    Usable,
    /// Creation failed; the stack can only be deleted.
    Broken,
    /// Deletion failed; something (usually a non-empty bucket) blocks it.
    DeleteFailed,
}

impl StackState {
    /// Groups a CloudFormation stack status.
    pub fn classify(status: &StackStatus) -> StackState {
        use StackStatus::*;
        match status {
            DeleteComplete => StackState::Absent,
            DeleteFailed => StackState::DeleteFailed,
            CreateFailed | RollbackComplete | RollbackFailed => StackState::Broken,
            s if s.is_in_progress() => StackState::InProgress,
            // CREATE_COMPLETE, UPDATE_COMPLETE, UPDATE_ROLLBACK_COMPLETE, IMPORT_COMPLETE,
            // IMPORT_ROLLBACK_COMPLETE, and UPDATE_FAILED / UPDATE_ROLLBACK_FAILED (usable but stuck)
            _ => StackState::Usable,
        }
    }
}

/// What was seen of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub state: StackState,
    /// CloudFormation's status, for messages.
    pub status: Option<StackStatus>,
    pub reason: Option<String>,
    /// The stack carries the platform's `ephemera:managed-by` tag.
    pub managed: bool,
    /// The stack carries every tag the environment wants now (commit, expiry, ...).
    pub current: bool,
}

impl Observed {
    pub fn absent() -> Self {
        Self { state: StackState::Absent, status: None, reason: None, managed: true, current: false }
    }
}

/// Steps already taken in this run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taken {
    pub create: bool,
    pub update: bool,
    pub delete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Update,
    /// Empty the stack's buckets, then delete it.
    Delete,
    Wait,
    Settle(Status, Option<String>),
}

pub fn plan(desired: Desired, seen: &Observed, taken: Taken) -> Step {
    use StackState::*;
    let failed = |why: &str| {
        let detail = match (&seen.status, &seen.reason) {
            (Some(s), Some(r)) => format!("{why} ({s}: {r})"),
            (Some(s), None) => format!("{why} ({s})"),
            _ => why.to_owned(),
        };
        Step::Settle(Status::Failed, Some(detail))
    };
    if seen.state != Absent && !seen.managed {
        return failed("a stack with this name exists and is not managed by Ephemera; left alone");
    }
    match desired {
        Desired::Up => match seen.state {
            Absent if taken.create => failed("stack disappeared after it was created"),
            Absent => Step::Create,
            InProgress => Step::Wait,
            Usable if seen.current => Step::Settle(Status::Ready, None),
            Usable if taken.update => failed("stack update did not apply"),
            Usable => Step::Update,
            Broken if seen.current || taken.delete => failed("stack creation failed"),
            Broken => Step::Delete,
            DeleteFailed if taken.delete => failed("stack could not be deleted before re-creating"),
            DeleteFailed => Step::Delete,
        },
        Desired::Down => match seen.state {
            Absent => Step::Settle(Status::Deleted, None),
            InProgress => Step::Wait,
            _ if taken.delete => failed("stack deletion failed"),
            _ => Step::Delete,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(state: StackState, current: bool) -> Observed {
        Observed { state, status: Some(StackStatus::parse("X")), reason: None, managed: true, current }
    }
    const NONE: Taken = Taken { create: false, update: false, delete: false };

    #[test]
    fn classify_statuses() {
        use StackState::*;
        for (s, want) in [
            ("CREATE_COMPLETE", Usable),
            ("UPDATE_COMPLETE", Usable),
            ("UPDATE_ROLLBACK_COMPLETE", Usable),
            ("CREATE_IN_PROGRESS", InProgress),
            ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", InProgress),
            ("DELETE_IN_PROGRESS", InProgress),
            ("ROLLBACK_COMPLETE", Broken),
            ("CREATE_FAILED", Broken),
            ("DELETE_FAILED", DeleteFailed),
            ("DELETE_COMPLETE", Absent),
        ] {
            assert_eq!(StackState::classify(&StackStatus::parse(s)), want, "{s}");
        }
    }

    #[test]
    fn up_creates_updates_and_settles() {
        assert_eq!(plan(Desired::Up, &Observed::absent(), NONE), Step::Create);
        assert_eq!(plan(Desired::Up, &seen(StackState::InProgress, false), NONE), Step::Wait);
        assert_eq!(plan(Desired::Up, &seen(StackState::Usable, false), NONE), Step::Update);
        assert_eq!(plan(Desired::Up, &seen(StackState::Usable, true), NONE), Step::Settle(Status::Ready, None));
    }

    #[test]
    fn up_replaces_a_broken_stack_of_an_older_commit_but_not_its_own() {
        assert_eq!(plan(Desired::Up, &seen(StackState::Broken, false), NONE), Step::Delete);
        assert!(matches!(
            plan(Desired::Up, &seen(StackState::Broken, true), NONE),
            Step::Settle(Status::Failed, Some(_))
        ));
    }

    #[test]
    fn steps_that_change_nothing_settle_as_failed() {
        let t = Taken { create: true, update: true, delete: true };
        for (d, s) in [
            (Desired::Up, seen(StackState::Usable, false)),
            (Desired::Up, Observed::absent()),
            (Desired::Up, seen(StackState::DeleteFailed, false)),
            (Desired::Down, seen(StackState::DeleteFailed, false)),
            (Desired::Down, seen(StackState::Usable, true)),
        ] {
            assert!(matches!(plan(d, &s, t), Step::Settle(Status::Failed, Some(_))), "{d:?} {s:?}");
        }
    }

    #[test]
    fn down_deletes_then_settles() {
        assert_eq!(plan(Desired::Down, &seen(StackState::Usable, true), NONE), Step::Delete);
        assert_eq!(plan(Desired::Down, &seen(StackState::DeleteFailed, true), NONE), Step::Delete);
        assert_eq!(plan(Desired::Down, &seen(StackState::InProgress, true), NONE), Step::Wait);
        assert_eq!(plan(Desired::Down, &Observed::absent(), NONE), Step::Settle(Status::Deleted, None));
    }

    #[test]
    fn foreign_stacks_are_never_touched() {
        let foreign = Observed { managed: false, ..seen(StackState::Usable, false) };
        for d in [Desired::Up, Desired::Down] {
            let step = plan(d, &foreign, NONE);
            assert!(matches!(step, Step::Settle(Status::Failed, Some(ref r)) if r.contains("not managed")));
        }
    }
}
