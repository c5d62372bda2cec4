//! The `GitHubCatchUp` port's contract, as checks any implementation must pass: the REST adapter
//! against the fake GitHub (`tests/tests/catch_up.rs`) and [`super::MemoryPulls`] (the service
//! tests). Each check sets GitHub up through a [`PullsWorld`] and panics when the port breaks
//! the contract.
//!
//! What is checked: open pull requests listed a hundred a page, closed ones left out, a fork
//! told apart; a page asked for with its `ETag` is 304 until it changes; a pull request read
//! whole says closed and merged; a repository GitHub answers 404 for is inaccessible; the rate limit left is reported and counts down, and at none
//! the answer is a rate limit; delivery attempts are listed newest first with their delivery
//! ids, a page at a time by cursor, and a redelivery is listed as a new attempt of the same
//! delivery.

use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::RepoName;

use crate::ports::{Answer, GitHubCatchUp, Hook};

/// GitHub as a check sets it up, behind the port under test.
pub trait PullsWorld: Send + Sync {
    fn port(&self) -> Arc<dyn GitHubCatchUp>;
    /// The hook whose deliveries `add_attempt` adds to (one of the port's `hooks()`).
    fn hook(&self) -> Hook;
    /// Pull request `number` of `repo`, open at `head` (from a fork, or not).
    fn open(&self, repo: &str, number: u64, head: &str, from_fork: bool);
    /// The pull request closed, merged or not.
    fn close(&self, repo: &str, number: u64, merged: bool);
    fn set_remaining(&self, remaining: u64);
    /// GitHub answers 404 for the repository (the App uninstalled from it).
    fn hide(&self, repo: &str);
    /// A delivery attempt of `hook()`'s, made `age` ago.
    fn add_attempt(&self, guid: &str, event: &str, status_code: u16, age: Duration);
}

const REPO: &str = "acme/todo-app";

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

/// Runs every check on `world`, which must start with no pull requests and no deliveries.
pub async fn check(world: &dyn PullsWorld) {
    listings(world).await;
    conditional(world).await;
    whole(world).await;
    hidden(world).await;
    deliveries(world).await;
    paged_deliveries(world).await;
    rate_limit(world).await;
}

async fn listings(world: &dyn PullsWorld) {
    let (port, repo) = (world.port(), RepoName::parse(REPO).unwrap());
    for n in 1..=102 {
        world.open(REPO, n, &sha(n), n == 3);
    }
    world.close(REPO, 2, false);
    let Answer::Fresh { value: first, etag } = port.open_pulls(&repo, 1, None).await.unwrap().answer else {
        panic!("a listing");
    };
    assert!(first.more && etag.is_some(), "a hundred a page, with an ETag");
    let Answer::Fresh { value: second, .. } = port.open_pulls(&repo, 2, None).await.unwrap().answer else {
        panic!("a second page");
    };
    assert!(!second.more);
    let all: Vec<_> = first.pulls.iter().chain(&second.pulls).collect();
    assert_eq!((first.pulls.len(), all.len()), (100, 101), "closed ones are not listed");
    assert!(all.iter().all(|p| p.number != 2 && p.head == sha(p.number)));
    assert!(all.iter().all(|p| p.from_fork == (p.number == 3)), "a fork told apart");
}

async fn conditional(world: &dyn PullsWorld) {
    let (port, repo) = (world.port(), RepoName::parse("acme/conditional").unwrap());
    // Numbers apart from the other checks' (the fake GitHub keys pull requests by number).
    world.open("acme/conditional", 201, &sha(201), false);
    let Answer::Fresh { etag: Some(etag), .. } = port.open_pulls(&repo, 1, None).await.unwrap().answer else {
        panic!("a listing with an ETag");
    };
    assert_eq!(port.open_pulls(&repo, 1, Some(&etag)).await.unwrap().answer, Answer::NotModified);
    world.open("acme/conditional", 201, &sha(7), false);
    let read = port.open_pulls(&repo, 1, Some(&etag)).await.unwrap().answer;
    assert!(matches!(read, Answer::Fresh { ref value, .. } if value.pulls[0].head == sha(7)), "{read:?}");
}

async fn whole(world: &dyn PullsWorld) {
    let (port, repo) = (world.port(), RepoName::parse("acme/whole").unwrap());
    world.open("acme/whole", 301, &sha(301), false);
    world.close("acme/whole", 301, true);
    let Answer::Fresh { value, .. } = port.pull(&repo, 301).await.unwrap().answer else { panic!("the pull request") };
    assert_eq!((value.number, value.state.as_str(), value.merged), (301, "closed", Some(true)));
    assert_eq!(value.head.sha, sha(301));
    assert_eq!(value.base.repo.map(|r| r.full_name).as_deref(), Some("acme/whole"));
}

async fn hidden(world: &dyn PullsWorld) {
    let (port, repo) = (world.port(), RepoName::parse("acme/hidden").unwrap());
    world.open("acme/hidden", 401, &sha(401), false);
    world.hide("acme/hidden");
    let listed = port.open_pulls(&repo, 1, None).await.unwrap().answer;
    assert!(matches!(listed, Answer::Inaccessible(_)), "{listed:?}");
    assert!(matches!(port.pull(&repo, 401).await.unwrap().answer, Answer::Inaccessible(_)));
}

async fn deliveries(world: &dyn PullsWorld) {
    let (port, hook) = (world.port(), world.hook());
    assert!(port.hooks().contains(&hook));
    world.add_attempt("older", "pull_request", 502, Duration::from_secs(7200));
    world.add_attempt("newer", "push", 202, Duration::from_secs(60));
    let Answer::Fresh { value, .. } = port.deliveries(&hook, None).await.unwrap().answer else { panic!("a list") };
    let seen: Vec<(&str, &str, u16, bool)> =
        value.attempts.iter().map(|a| (a.guid.as_str(), a.event.as_str(), a.status_code, a.redelivery)).collect();
    assert_eq!(seen, [("newer", "push", 202, false), ("older", "pull_request", 502, false)]);
    let older = value.attempts[1].id;
    assert!(matches!(port.redeliver(&hook, older).await.unwrap().answer, Answer::Fresh { .. }));
    let Answer::Fresh { value, .. } = port.deliveries(&hook, None).await.unwrap().answer else { panic!("a list") };
    let again = &value.attempts[0];
    assert!(again.guid == "older" && again.redelivery && again.id != older, "{again:?}");
}

/// Run after [`deliveries`]: three attempts are listed already.
async fn paged_deliveries(world: &dyn PullsWorld) {
    let (port, hook) = (world.port(), world.hook());
    for n in 0..100 {
        world.add_attempt(&format!("old-{n}"), "push", 202, Duration::from_secs(10_000 + n));
    }
    let Answer::Fresh { value: first, .. } = port.deliveries(&hook, None).await.unwrap().answer else { panic!() };
    let cursor = first.next.expect("a next page");
    let Answer::Fresh { value: second, .. } = port.deliveries(&hook, Some(&cursor)).await.unwrap().answer else {
        panic!("the next page")
    };
    assert_eq!((first.attempts.len(), second.attempts.len(), second.next), (100, 3, None));
    assert_eq!(second.attempts.last().unwrap().guid, "old-99", "oldest last");
}

async fn rate_limit(world: &dyn PullsWorld) {
    let (port, repo) = (world.port(), RepoName::parse(REPO).unwrap());
    world.set_remaining(2);
    let read = port.open_pulls(&repo, 1, None).await.unwrap();
    assert_eq!(read.remaining, Some(1), "what is left after this one");
    port.open_pulls(&repo, 1, None).await.unwrap();
    let read = port.open_pulls(&repo, 1, None).await.unwrap();
    assert!(matches!(read.answer, Answer::Limited(_)), "{:?}", read.answer);
    assert!(matches!(port.pull(&repo, 1).await.unwrap().answer, Answer::Limited(_)));
}
