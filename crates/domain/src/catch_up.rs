//! Catching up with GitHub. GitHub sends each webhook delivery once: a close or a push whose
//! delivery failed never arrives. The sweep compares what GitHub says of each pull request with
//! what the registry recorded ([`compare`]), within a budget of GitHub requests ([`Budget`]),
//! and asks GitHub to send failed deliveries again ([`to_redeliver`]).

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// An open pull request as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenPull {
    pub number: u64,
    /// The head commit, lowercase.
    pub head: String,
    /// The head branch is in another repository (or that repository is gone).
    pub from_fork: bool,
}

/// What GitHub's account of a live pull request environment's pull request comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Open at the recorded head: nothing was missed.
    InStep,
    /// Not among the open pull requests: closed or merged, and its close never arrived (to
    /// be confirmed by reading the pull request itself).
    NotOpen,
    /// Open at another head than recorded: a push never arrived.
    MovedOn { head: String },
    /// A fork's head moved: a fork's preview runs only the commit a maintainer approved.
    ForkMoved,
}

/// The finding for an environment that recorded `head`, given its pull request among the
/// repository's open ones (`open`; None if it is not among them). Only for a complete listing.
pub fn compare(recorded_head: Option<&str>, open: Option<&OpenPull>, deploy_forks: bool) -> Finding {
    let Some(pull) = open else { return Finding::NotOpen };
    match recorded_head {
        Some(h) if h.eq_ignore_ascii_case(&pull.head) => Finding::InStep,
        _ if pull.from_fork && !deploy_forks => Finding::ForkMoved,
        _ => Finding::MovedOn { head: pull.head.clone() },
    }
}

/// How many GitHub requests a pass may make, and whether GitHub's rate limit still allows more.
/// A pass stops asking once the remaining budget GitHub reports falls to `reserve` (what the
/// webhook and notifier need meanwhile), when GitHub asks it to wait, or after `limit` requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub reserve: u64,
    pub limit: Option<u64>,
    pub used: u64,
    /// Why the pass stopped asking, once it has.
    pub stopped: Option<String>,
}

impl Budget {
    pub fn new(reserve: u64, limit: Option<u64>) -> Self {
        Self { reserve, limit, used: 0, stopped: None }
    }

    /// Whether another request may be made.
    pub fn may_ask(&self) -> bool {
        self.stopped.is_none() && self.limit.is_none_or(|l| self.used < l)
    }

    /// Counts a request made, and heeds the remaining rate limit GitHub reported with it.
    pub fn spent(&mut self, remaining: Option<u64>) {
        self.used += 1;
        if let Some(r) = remaining.filter(|r| *r <= self.reserve) {
            self.stop(format!(
                "GitHub's rate limit has {r} requests left, at most the {} kept in reserve",
                self.reserve
            ));
        }
    }

    /// Stops asking, for `why` (the first reason is kept).
    pub fn stop(&mut self, why: impl Into<String>) {
        self.stopped.get_or_insert_with(|| why.into());
    }

    /// Whether the per-run limit (not the rate limit) is what ended the pass.
    pub fn exhausted(&self) -> bool {
        self.stopped.is_none() && !self.may_ask()
    }
}

/// How long GitHub keeps deliveries and lets them be sent again.
pub fn redelivery_window() -> Duration {
    Duration::days(3)
}

/// The events whose failed deliveries are asked for again: those the platform acts on, but for
/// installation events. Acted on late, an uninstall could take down what a reinstall since
/// brought back; a repository the App no longer reaches is left to its environments' expiry.
pub const REDELIVERED_EVENTS: &[&str] = &["pull_request", "push", "delete", "issue_comment"];

/// One attempt at a delivery, as GitHub lists a hook's deliveries. A redelivery is listed as
/// an attempt of its own, with the same `guid` (the `X-GitHub-Delivery` id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub id: u64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    /// The endpoint's HTTP status; 0 when it never answered.
    pub status_code: u16,
    pub event: String,
}

impl DeliveryAttempt {
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// The attempts to ask GitHub to send again: each failed delivery of a redelivered event, within
/// GitHub's window at `now`, once: not if any attempt of it succeeded or was a redelivery
/// already (by the platform or by hand). One attempt per delivery, the latest.
pub fn to_redeliver(attempts: &[DeliveryAttempt], now: DateTime<Utc>) -> Vec<&DeliveryAttempt> {
    let settled: HashSet<&str> =
        attempts.iter().filter(|a| a.succeeded() || a.redelivery).map(|a| a.guid.as_str()).collect();
    let mut chosen = BTreeSet::new();
    let mut out: Vec<&DeliveryAttempt> = attempts
        .iter()
        .filter(|a| REDELIVERED_EVENTS.contains(&a.event.as_str()))
        .filter(|a| now - a.delivered_at < redelivery_window())
        .filter(|a| !settled.contains(a.guid.as_str()))
        .collect();
    out.sort_by_key(|a| std::cmp::Reverse(a.delivered_at));
    out.retain(|a| chosen.insert(a.guid.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(head: &str, from_fork: bool) -> OpenPull {
        OpenPull { number: 7, head: head.into(), from_fork }
    }

    #[test]
    fn a_pull_request_not_listed_open_was_closed_and_a_moved_head_was_pushed() {
        assert_eq!(compare(Some("aaa"), None, false), Finding::NotOpen);
        assert_eq!(compare(Some("AAA"), Some(&pull("aaa", false)), false), Finding::InStep);
        assert_eq!(compare(Some("aaa"), Some(&pull("bbb", false)), false), Finding::MovedOn { head: "bbb".into() });
        assert_eq!(compare(None, Some(&pull("bbb", false)), false), Finding::MovedOn { head: "bbb".into() });
    }

    #[test]
    fn a_forks_new_head_waits_for_approval_unless_forks_are_trusted() {
        assert_eq!(compare(Some("aaa"), Some(&pull("bbb", true)), false), Finding::ForkMoved);
        assert_eq!(compare(Some("aaa"), Some(&pull("bbb", true)), true), Finding::MovedOn { head: "bbb".into() });
        assert_eq!(compare(Some("aaa"), None, false), Finding::NotOpen, "a fork's close is always acted on");
    }

    #[test]
    fn the_budget_stops_at_the_reserve_at_a_wait_or_at_the_limit() {
        let mut b = Budget::new(100, Some(3));
        b.spent(Some(500));
        assert!(b.may_ask());
        b.spent(Some(100));
        assert!(!b.may_ask() && b.stopped.as_deref().unwrap().contains("100 requests left"));
        assert!(!b.exhausted());
        let mut b = Budget::new(100, Some(2));
        b.spent(None);
        b.spent(None);
        assert!(!b.may_ask() && b.exhausted());
        let mut b = Budget::new(0, None);
        b.stop("GitHub asked to wait 60 s");
        b.stop("later");
        assert_eq!(b.stopped.as_deref(), Some("GitHub asked to wait 60 s"));
    }

    fn attempt(id: u64, guid: &str, hours_ago: i64, code: u16, redelivery: bool, event: &str) -> DeliveryAttempt {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        DeliveryAttempt {
            id,
            guid: guid.into(),
            delivered_at: now - Duration::hours(hours_ago),
            redelivery,
            status_code: code,
            event: event.into(),
        }
    }

    #[test]
    fn failed_deliveries_of_handled_events_are_sent_again_once_within_three_days() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let attempts = vec![
            attempt(1, "failed", 1, 502, false, "pull_request"),
            attempt(2, "ok", 2, 202, false, "pull_request"),
            attempt(3, "old", 73, 500, false, "pull_request"),
            attempt(4, "unhandled", 1, 500, false, "star"),
            attempt(12, "uninstalled", 1, 500, false, "installation"),
            attempt(5, "timed-out", 5, 0, false, "push"),
            // Already sent again: by the platform or by hand, whatever came of it.
            attempt(6, "again", 10, 500, false, "pull_request"),
            attempt(7, "again", 9, 500, true, "pull_request"),
            // Failed, then succeeded on GitHub's own later attempt.
            attempt(8, "healed", 10, 500, false, "issue_comment"),
            attempt(9, "healed", 9, 200, false, "issue_comment"),
            // Twice failed: asked for once.
            attempt(10, "twice", 20, 500, false, "pull_request"),
            attempt(11, "twice", 19, 503, false, "pull_request"),
        ];
        let ids: Vec<u64> = to_redeliver(&attempts, now).iter().map(|a| a.id).collect();
        assert_eq!(ids, vec![1, 5, 11]);
    }
}
