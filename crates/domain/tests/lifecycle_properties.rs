//! Properties of the lifecycle, over random histories of one pull request delivered in any
//! order, with duplicates: the recorded desired state is the latest event's, whatever the
//! delivery order; duplicates and stale events change nothing; reconciling from any stack state
//! ends settled, with a stack exactly when one is wanted; fork and label rules never deploy an
//! unapproved fork.

use ephemera_domain::preview::{decide, Decision, Labels, PrEvent};
use ephemera_domain::reconcile::{plan, Observed, StackState, Step, Taken};
use ephemera_domain::{Desired, EventOrder, Status};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Open,
    Push,
    Close,
    Reopen,
}

impl Action {
    fn desired(self) -> Desired {
        if self == Action::Close {
            Desired::Down
        } else {
            Desired::Up
        }
    }
    fn rank(self) -> u8 {
        match self {
            Action::Open | Action::Reopen => EventOrder::RANK_OPEN,
            Action::Push => EventOrder::RANK_PUSH,
            Action::Close => EventOrder::RANK_CLOSE,
        }
    }
}

/// A plausible history: opened, then pushes, closes and reopens, each at or after the last.
fn history() -> impl Strategy<Value = Vec<(Action, i64)>> {
    prop::collection::vec((0u8..3, 0i64..3), 0..12).prop_map(|steps| {
        let mut t = 1_000;
        let mut open = true;
        let mut out = vec![(Action::Open, t)];
        for (kind, gap) in steps {
            t += gap;
            let a = match (open, kind) {
                (true, 0) | (true, 1) => Action::Push,
                (true, _) => Action::Close,
                (false, _) => Action::Reopen,
            };
            open = a != Action::Close;
            out.push((a, t));
        }
        out
    })
}

/// Delivery: every event at least once, some twice, in a shuffled order.
fn deliveries() -> impl Strategy<Value = (Vec<(Action, i64)>, Vec<usize>)> {
    history().prop_flat_map(|h| {
        let n = h.len();
        let dup = prop::collection::vec(0..n, 0..4);
        (Just(h), dup).prop_flat_map(move |(h, dup)| {
            let mut order: Vec<usize> = (0..n).collect();
            order.extend(dup);
            (Just(h), Just(order).prop_shuffle())
        })
    })
}

/// The registry's rule: a change is accepted only if strictly later than the recorded one.
fn apply(h: &[(Action, i64)], order: &[usize]) -> (Option<EventOrder>, Option<Desired>, usize) {
    let (mut recorded, mut desired, mut accepted) = (None, None, 0);
    for &i in order {
        let (a, t) = h[i];
        let o = EventOrder::new(t, a.rank());
        if o.supersedes(recorded) {
            recorded = Some(o);
            desired = Some(a.desired());
            accepted += 1;
        }
    }
    (recorded, desired, accepted)
}

fn stack_states() -> impl Strategy<Value = StackState> {
    prop_oneof![
        Just(StackState::Absent),
        Just(StackState::Usable),
        Just(StackState::Broken),
        Just(StackState::DeleteFailed),
        Just(StackState::InProgress),
    ]
}

/// Runs the reconcile plan against a simulated stack that does what it is told (an operation in
/// progress completes on the next look). Returns the settled status and whether a stack exists.
fn reconcile(desired: Desired, start: StackState, current: bool) -> (Status, bool) {
    let (mut state, mut current, mut taken) = (start.clone(), current, Taken::default());
    for _ in 0..20 {
        let seen = Observed { state: state.clone(), status: None, reason: None, managed: true, current };
        match plan(desired, &seen, taken) {
            Step::Create => {
                taken.create = true;
                (state, current) = (StackState::Usable, true);
            }
            Step::Update => {
                taken.update = true;
                current = true;
            }
            Step::Delete => {
                taken.delete = true;
                state = StackState::Absent;
            }
            Step::Wait => state = StackState::Usable,
            Step::Settle(status, _) => return (status, state != StackState::Absent),
        }
    }
    panic!("reconcile did not settle from {start:?} toward {desired:?}");
}

proptest! {
    #[test]
    fn the_latest_event_wins_whatever_the_delivery_order((h, order) in deliveries()) {
        let latest = h.iter().max_by_key(|(a, t)| EventOrder::new(*t, a.rank())).unwrap();
        let (recorded, desired, accepted) = apply(&h, &order);
        prop_assert_eq!(recorded, Some(EventOrder::new(latest.1, latest.0.rank())));
        prop_assert_eq!(desired, Some(latest.0.desired()));
        // Each distinct event is accepted at most once: duplicates never count.
        prop_assert!(accepted <= h.len());
        // Delivered in order, every event that is strictly later than the previous is accepted.
        let (_, in_order, _) = apply(&h, &(0..h.len()).collect::<Vec<_>>());
        prop_assert_eq!(in_order, desired);
    }

    #[test]
    fn a_closed_pull_request_stays_closed_against_late_events((h, order) in deliveries()) {
        let (_, desired, _) = apply(&h, &order);
        if h.last().unwrap().0 == Action::Close {
            prop_assert_eq!(desired, Some(Desired::Down));
        }
    }

    #[test]
    fn reconciling_settles_with_a_stack_exactly_when_one_is_wanted(
        up in any::<bool>(), start in stack_states(), current in any::<bool>()
    ) {
        let desired = if up { Desired::Up } else { Desired::Down };
        let (status, exists) = reconcile(desired, start.clone(), current);
        prop_assert!(status.is_terminal());
        match desired {
            Desired::Up => prop_assert!(status == Status::Ready && exists || status == Status::Failed),
            Desired::Down => prop_assert!(status == Status::Deleted && !exists || status == Status::Failed),
        }
        // With a well-behaved stack, only a broken one that is already current ends FAILED.
        if status == Status::Failed {
            prop_assert!(start == StackState::Broken && current);
        }
    }

    #[test]
    fn an_unapproved_fork_is_never_deployed(
        action in prop_oneof![Just("opened"), Just("reopened"), Just("synchronize"), Just("labeled"), Just("unlabeled"), Just("closed"), Just("edited")],
        label in prop_oneof![Just("preview:skip"), Just("preview:preserve"), Just("preview"), Just("bug")],
        labels in prop::collection::vec(prop_oneof![Just("preview:skip".to_string()), Just("preview".to_string())], 0..3),
    ) {
        let d = decide(PrEvent { action, label: Some(label), labels: &labels, from_fork: true }, &Labels::default());
        // Only the approval label's own event can lead to a deployment, and it is then checked.
        prop_assert_ne!(&d, &Decision::Up);
        if d == Decision::ApproveFork {
            prop_assert!(action == "labeled" && label == "preview");
        }
    }
}
