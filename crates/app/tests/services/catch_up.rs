//! Catching up with GitHub in the sweep: what deliveries missed is read from GitHub and acted
//! on once; nothing is torn down for lack of an answer.

use chrono::Duration;
use ephemera_app::memory::github_conformance::PullsWorld;
use ephemera_app::memory::PullState;
use ephemera_app::ports::Hook;
use ephemera_app::reaper::SweepOptions;
use ephemera_domain::{Desired, Status};

use crate::harness::*;

const FULL: SweepOptions = SweepOptions { dry_run: false, light: false };
const LIGHT: SweepOptions = SweepOptions { dry_run: false, light: true };
const REPO: &str = "acme/todo-app";

#[tokio::test]
async fn a_pull_request_closed_without_its_close_delivered_is_sent_down_by_one_sweep() {
    let w = World::new();
    w.ready_pr().await;
    w.pulls.set_pull(REPO, 7, HEAD_OPENED, PullState::Merged, w.now());
    let s = w.reaper_catching_up(60).sweep(FULL).await.unwrap();
    let github = s.github.unwrap();
    assert_eq!(github.missed_closes, vec![PR.to_string()]);
    let e = w.env(PR);
    assert_eq!((e.desired, e.status, e.merged), (Desired::Down, Status::Pending, true));
    assert_eq!(
        e.status_reason.as_deref(),
        Some("pull request merged (the close was missed: the sweep found the pull request merged)")
    );
    assert_eq!(
        w.provisioner().reconcile(&name(PR)).await.unwrap(),
        ephemera_app::provisioner::Outcome::Settled(Status::Deleted)
    );
    // Read once: the next sweep has nothing live to ask about.
    let again = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert!(again.missed_closes.is_empty() && again.requests == 0, "{again:?}");
}

#[tokio::test]
async fn a_head_moved_without_a_push_delivered_is_redeployed_at_the_new_commit() {
    let w = World::new();
    w.ready_pr().await;
    w.pulls.set_pull(REPO, 7, HEAD_SYNCHRONIZED, PullState::Open, w.now());
    let s = w.reaper_catching_up(60).sweep(FULL).await.unwrap();
    assert_eq!(s.github.unwrap().missed_pushes, vec![PR.to_string()]);
    let e = w.env(PR);
    assert_eq!((e.desired, e.generation, e.commit.as_deref()), (Desired::Up, 2, Some(HEAD_SYNCHRONIZED)));
    w.provisioner().reconcile(&name(PR)).await.unwrap();
    assert_eq!(w.env(PR).status, Status::Ready);
    // Once: the push is now recorded, and the listing is unchanged.
    let again = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert!(again.missed_pushes.is_empty(), "{again:?}");
    assert_eq!(w.env(PR).generation, 2);
}

#[tokio::test]
async fn an_unchanged_open_pull_request_costs_one_conditional_request_answered_304() {
    let w = World::new();
    w.ready_pr().await;
    w.pulls.set_pull(REPO, 7, HEAD_OPENED, PullState::Open, w.now());
    let first = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert_eq!((first.requests, first.not_modified, first.repositories), (1, 0, 1));
    let second = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert_eq!((second.requests, second.not_modified), (1, 1), "{second:?}");
    let requests = w.pulls.requests();
    assert!(requests[1].starts_with("open_pulls acme/todo-app 1 \""), "sent with the ETag: {requests:?}");
    assert_eq!((w.env(PR).desired, w.env(PR).generation), (Desired::Up, 1));
}

#[tokio::test]
async fn a_forks_new_head_is_not_deployed_without_approval() {
    let w = World::new();
    w.ready_pr().await;
    w.pulls.set_pull(REPO, 7, HEAD_SYNCHRONIZED, PullState::Open, w.now());
    w.pulls.set_fork(REPO, 7);
    let s = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert!(s.missed_pushes.is_empty());
    assert_eq!(w.env(PR).commit.as_deref(), Some(HEAD_OPENED));
}

#[tokio::test]
async fn with_little_rate_limit_left_the_sweep_stops_asking_says_so_and_tears_nothing_down() {
    let w = World::new();
    w.ready_pr().await;
    w.pulls.set_pull(REPO, 7, HEAD_OPENED, PullState::Closed, w.now());
    w.pulls.set_remaining(11);
    let s = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert!(s.stopped.as_deref().unwrap().contains("10 requests left"), "{s:?}");
    assert!(s.missed_closes.is_empty());
    assert_eq!(w.pulls.requests().len(), 1, "nothing asked after the reserve was reached");
    assert_eq!((w.env(PR).desired, w.env(PR).generation), (Desired::Up, 1));

    // GitHub asking to wait is heeded the same way.
    w.pulls.set_remaining(0);
    let s = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert!(s.stopped.as_deref().unwrap().contains("retry in 60 s"), "{s:?}");
    assert_eq!(w.env(PR).desired, Desired::Up);
}

#[tokio::test]
async fn an_inaccessible_repository_is_reported_once_and_its_environments_kept() {
    let w = World::new();
    w.ready_pr().await;
    w.pulls.set_inaccessible(REPO);
    let s = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert_eq!(s.inaccessible, vec!["acme/todo-app: 404 Not Found".to_string()]);
    assert_eq!((w.env(PR).desired, w.env(PR).generation), (Desired::Up, 1));
}

#[tokio::test]
async fn a_light_sweep_checks_the_repositories_checked_longest_ago_within_its_budget() {
    let w = World::new();
    w.ready_pr().await;
    w.pulls.set_pull(REPO, 7, HEAD_OPENED, PullState::Open, w.now());
    // A second repository's environment, through its own delivery.
    let other = edit(fixtures::OPENED, &[("repository.full_name", serde_json::json!("acme/billing"))]);
    w.deliver("pull_request", "d-billing", &other).await.unwrap();
    w.pulls.set_pull("acme/billing", 7, HEAD_OPENED, PullState::Open, w.now());
    let first = w.reaper_catching_up(1).sweep(LIGHT).await.unwrap().github.unwrap();
    let checked = |at: usize| w.pulls.requests()[at].split(' ').nth(1).unwrap().to_owned();
    let first_repo = checked(0);
    assert_eq!((first.repositories, first.unchecked.len()), (1, 1), "{first:?}");
    assert_ne!(first.unchecked[0], first_repo);
    w.clock.advance(Duration::minutes(15));
    let asked = w.pulls.requests().len();
    let second = w.reaper_catching_up(1).sweep(LIGHT).await.unwrap().github.unwrap();
    assert_eq!(checked(asked), first.unchecked[0], "the one left unchecked goes first");
    assert_eq!(second.unchecked, vec![first_repo]);
}

#[tokio::test]
async fn failed_deliveries_are_asked_for_again_once_and_only_those_within_three_days() {
    let w = World::new();
    w.pulls.set_hooks(vec![Hook::App]);
    let now = w.now();
    w.pulls.add_attempt(Hook::App, "failed", "pull_request", 502, now - Duration::hours(1));
    w.pulls.add_attempt(Hook::App, "delivered", "pull_request", 202, now - Duration::hours(2));
    w.pulls.add_attempt(Hook::App, "too-old", "pull_request", 500, now - Duration::hours(73));
    w.pulls.add_attempt(Hook::App, "not-ours", "star", 500, now - Duration::hours(1));
    let s = w.reaper_catching_up(60).sweep(LIGHT).await.unwrap().github.unwrap();
    assert_eq!(s.redelivered, vec!["pull_request failed".to_string()]);
    assert_eq!(w.pulls.redelivered(), vec![1]);
    let again = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert!(again.redelivered.is_empty(), "once: {again:?}");
    assert_eq!(w.pulls.redelivered(), vec![1]);
}

#[tokio::test]
async fn a_dry_run_finds_the_same_and_changes_nothing() {
    let w = World::new();
    w.ready_pr().await;
    w.pulls.set_pull(REPO, 7, HEAD_OPENED, PullState::Closed, w.now());
    w.pulls.set_hooks(vec![Hook::App]);
    w.pulls.add_attempt(Hook::App, "failed", "push", 500, w.now() - Duration::hours(1));
    let dry = SweepOptions { dry_run: true, light: false };
    let s = w.reaper_catching_up(60).sweep(dry).await.unwrap().github.unwrap();
    assert_eq!((s.missed_closes.len(), s.redelivered.len()), (1, 1));
    assert_eq!((w.env(PR).desired, w.env(PR).generation), (Desired::Up, 1));
    assert!(w.pulls.redelivered().is_empty());
}

#[tokio::test]
async fn a_missed_push_paths_leave_undeployed_is_offered_once() {
    let w = World::new();
    let settings = "paths: [\"src/**\"]\n";
    w.github.set_file(HEAD_OPENED, ".ephemera.yml", settings);
    w.github.set_file(HEAD_SYNCHRONIZED, ".ephemera.yml", settings);
    w.ready_pr().await;
    w.github.set_changes(HEAD_OPENED, HEAD_SYNCHRONIZED, &["README.md"]);
    w.pulls.set_pull(REPO, 7, HEAD_SYNCHRONIZED, PullState::Open, w.now());
    let first = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert!(first.missed_pushes.is_empty(), "not deployed: {first:?}");
    assert_eq!(w.env(PR).commit.as_deref(), Some(HEAD_OPENED));
    let reads = |w: &World| w.pulls.requests().iter().filter(|r| r.starts_with("pull ")).count();
    assert_eq!(reads(&w), 1);
    let second = w.reaper_catching_up(60).sweep(FULL).await.unwrap().github.unwrap();
    assert!(second.errors.is_empty(), "{second:?}");
    assert_eq!(reads(&w), 1, "the declined head is not offered again");
}

/// GitHub in memory, set up for the port's conformance checks.
struct MemoryWorld(std::sync::Arc<ephemera_app::memory::MemoryPulls>, chrono::DateTime<chrono::Utc>);

impl PullsWorld for MemoryWorld {
    fn port(&self) -> std::sync::Arc<dyn ephemera_app::ports::GitHubCatchUp> {
        self.0.clone()
    }
    fn hook(&self) -> Hook {
        Hook::App
    }
    fn open(&self, repo: &str, number: u64, head: &str, from_fork: bool) {
        self.0.set_pull(repo, number, head, PullState::Open, self.1);
        if from_fork {
            self.0.set_fork(repo, number);
        }
    }
    fn close(&self, repo: &str, number: u64, merged: bool) {
        self.0.set_state(repo, number, if merged { PullState::Merged } else { PullState::Closed });
    }
    fn set_remaining(&self, remaining: u64) {
        self.0.set_remaining(remaining);
    }
    fn hide(&self, repo: &str) {
        self.0.set_inaccessible(repo);
    }
    fn add_attempt(&self, guid: &str, event: &str, status_code: u16, age: std::time::Duration) {
        let at = self.1 - chrono::Duration::from_std(age).unwrap();
        self.0.add_attempt(Hook::App, guid, event, status_code, at);
    }
}

#[tokio::test]
async fn the_in_memory_github_keeps_the_ports_contract() {
    let w = World::new();
    w.pulls.set_hooks(vec![Hook::App]);
    ephemera_app::memory::github_conformance::check(&MemoryWorld(w.pulls.clone(), w.now())).await;
}
