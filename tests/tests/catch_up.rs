//! The sweep catching up with GitHub, end to end: the reaper (with its function's own
//! permissions) reads the fake GitHub, records what deliveries missed through the intake, and
//! the provisioner in the emulator acts on it; failed deliveries are asked for again, and the
//! fake sends them to the platform's webhook.

use std::time::Duration;

use ephemera_app::memory::github_conformance::PullsWorld;
use ephemera_app::ports::{GitHubCatchUp, Hook};
use ephemera_app::reaper::SweepOptions;
use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::github::{FakeGitHub, FakePull};
use ephemera_tests::{edit, init_logs, Platform};
use ephemera_wiring::platform;
use serde_json::json;

const FULL: SweepOptions = SweepOptions { dry_run: false, light: false };
const HOUR: Duration = Duration::from_secs(3600);

fn lists(gh: &FakeGitHub) -> usize {
    gh.state().requests.iter().filter(|r| r.operation == "pulls/list").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_push_is_redeployed_and_a_missed_close_sent_down_and_an_unchanged_listing_costs_a_304() {
    init_logs();
    let gh = FakeGitHub::start().await;
    gh.state().pulls.insert(7, FakePull::new(HEAD_OPENED, None, None));
    let p = Platform::with_fake_github(&gh.url, &[]).await;
    assert_eq!(p.deliver("pull_request", "d-open", OPENED).await.0, 202);
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    let reaper = p.reaper_catching_up(platform::clock()).await;

    // Open at the recorded head: listed once, then answered 304 to the conditional request.
    let first = reaper.sweep(FULL).await.unwrap().github.unwrap();
    assert_eq!((first.repositories, first.requests, first.not_modified), (1, 1, 0), "{first:?}");
    let second = reaper.sweep(FULL).await.unwrap().github.unwrap();
    assert_eq!((second.requests, second.not_modified), (1, 1), "{second:?}");
    assert_eq!(lists(&gh), 2);
    assert!(first.missed_pushes.is_empty() && second.missed_closes.is_empty());

    // A push GitHub never delivered: one sweep redeploys the new head.
    {
        let mut s = gh.state();
        let pull = s.pulls.get_mut(&7).unwrap();
        pull.head = HEAD_SYNCHRONIZED.into();
        pull.updated_at = chrono::Utc::now().to_rfc3339();
        // The new commit's own settings apply, as for a delivered push.
        s.files.insert((HEAD_SYNCHRONIZED.into(), ".ephemera.yml".into()), "ttl: 3d\n".into());
    }
    let pushed = reaper.sweep(FULL).await.unwrap().github.unwrap();
    assert_eq!(pushed.missed_pushes, vec![ENVIRONMENT.to_string()], "{pushed:?}");
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!((env.generation, env.commit.as_deref()), (2, Some(HEAD_SYNCHRONIZED)));
    assert!(env.expires_at < chrono::Utc::now() + chrono::Duration::days(4), "the commit's TTL: {}", env.expires_at);
    let tags = p.stack(&format!("ephemera-{ENVIRONMENT}")).await.expect("the stack").1;
    assert!(tags.contains(&("ephemera:commit".into(), HEAD_SYNCHRONIZED.into())), "{tags:?}");

    // A merge GitHub never delivered: one sweep sends the environment down.
    {
        let mut s = gh.state();
        let pull = s.pulls.get_mut(&7).unwrap();
        (pull.closed, pull.merged, pull.updated_at) = (true, true, chrono::Utc::now().to_rfc3339());
    }
    let closed = reaper.sweep(FULL).await.unwrap().github.unwrap();
    assert_eq!(closed.missed_closes, vec![ENVIRONMENT.to_string()], "{closed:?}");
    let gone = p.wait_for(ENVIRONMENT, Status::Deleted).await;
    assert!(gone.merged, "recorded as merged");
    assert!(gone.status_reason.unwrap().contains("the close was missed"));
    assert!(p.live_stacks("ephemera-pr-7").await.is_empty());

    // A late redelivery of the real close changes nothing more.
    let (status, body) = p.deliver("pull_request", "d-close", CLOSED).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(p.environment(ENVIRONMENT).await.unwrap().generation, gone.generation);
    assert!(gh.state().violations.is_empty(), "{:?}", gh.state().violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_redelivered_once_and_acted_on_once() {
    init_logs();
    let gh = FakeGitHub::start().await;
    gh.state().pulls.insert(7, FakePull::new(HEAD_OPENED, None, None));
    let p = Platform::with_fake_github(&gh.url, &[("EPHEMERA_GITHUB_HOOK_IDS", "acme/todo-app=42")]).await;
    let other = edit(OPENED, &[("number", json!(8)), ("pull_request.number", json!(8))]);
    {
        let mut s = gh.state();
        s.webhook_url = Some(format!("{}/webhooks/github", p.base_url));
        let hook = Some(("acme/todo-app", 42));
        s.add_delivery(hook, "lost-open", "pull_request", OPENED, 502, HOUR);
        s.add_delivery(hook, "delivered", "pull_request", &other, 202, 2 * HOUR);
        s.add_delivery(hook, "too-old", "pull_request", &other, 500, 73 * HOUR);
        s.add_delivery(hook, "not-handled", "star", b"{}", 500, HOUR);
    }
    let reaper = p.reaper_catching_up(platform::clock()).await;
    let s = reaper.sweep(FULL).await.unwrap().github.unwrap();
    assert_eq!(s.redelivered, vec!["pull_request lost-open".to_string()], "{s:?}");
    gh.wait_until("the redelivery answered", |s| s.deliveries.iter().any(|d| d.redelivery && d.status_code == 202))
        .await;
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!(env.generation, 1);

    // Once: the next sweep sees it redelivered, and GitHub sending it again is a duplicate.
    let again = reaper.sweep(FULL).await.unwrap().github.unwrap();
    assert!(again.redelivered.is_empty(), "{again:?}");
    assert_eq!(gh.state().redelivered(), vec!["lost-open".to_string()]);
    let (status, body) = p.deliver("pull_request", "lost-open", OPENED).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")), "{body}");
    assert_eq!(p.environment(ENVIRONMENT).await.unwrap().generation, 1, "acted on once");
    assert!(p.environment("pr-8-acme-todo-app-6acfdc9491").await.is_none(), "the old and the delivered are not sent");
    assert!(gh.state().violations.is_empty(), "{:?}", gh.state().violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_rate_limit_nearly_spent_the_sweep_stops_asking_and_tears_nothing_down() {
    init_logs();
    let gh = FakeGitHub::start().await;
    gh.state().pulls.insert(7, FakePull::new(HEAD_OPENED, None, None));
    let p = Platform::with_fake_github(&gh.url, &[("EPHEMERA_GITHUB_RATE_RESERVE", "100")]).await;
    assert_eq!(p.deliver("pull_request", "d-open", OPENED).await.0, 202);
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    // GitHub has it closed, but the budget is spent by the listing that says so.
    {
        let mut s = gh.state();
        s.pulls.get_mut(&7).unwrap().closed = true;
        s.remaining = Some(101);
    }
    let reaper = p.reaper_catching_up(platform::clock()).await;
    let before = gh.state().requests.len();
    let s = reaper.sweep(FULL).await.unwrap().github.unwrap();
    // (The notifier spends from the same budget meanwhile.)
    assert!(s.stopped.as_deref().unwrap_or_default().contains("kept in reserve"), "{s:?}");
    assert!(s.missed_closes.is_empty());
    let asked: Vec<String> = gh.state().requests[before..]
        .iter()
        .filter(|r| r.operation.starts_with("pulls/"))
        .map(|r| r.operation.clone())
        .collect();
    assert_eq!(asked, ["pulls/list"], "nothing asked after the reserve was reached");

    // Refused outright: GitHub's wait is heeded the same way.
    gh.state().remaining = Some(0);
    let s = reaper.sweep(FULL).await.unwrap().github.unwrap();
    assert!(s.stopped.as_deref().unwrap_or_default().contains("GitHub asked to wait"), "{s:?}");
    let env = p.environment(ENVIRONMENT).await.unwrap();
    assert_eq!((env.status, env.generation), (Status::Ready, 1), "nothing torn down for lack of an answer");
}

/// The fake GitHub, set up for the port's conformance checks, behind the REST adapter.
struct FakeWorld(FakeGitHub, std::sync::Arc<dyn GitHubCatchUp>);

const HOOK_REPO: &str = "acme/todo-app";

impl PullsWorld for FakeWorld {
    fn port(&self) -> std::sync::Arc<dyn GitHubCatchUp> {
        self.1.clone()
    }
    fn hook(&self) -> Hook {
        Hook::Repository { repo: ephemera_domain::RepoName::parse(HOOK_REPO).unwrap(), id: 42 }
    }
    fn open(&self, repo: &str, number: u64, head: &str, from_fork: bool) {
        let pull = FakePull { repository: Some(repo.into()), from_fork, ..FakePull::new(head, None, None) };
        self.0.state().pulls.insert(number, pull);
    }
    fn close(&self, _repo: &str, number: u64, merged: bool) {
        let mut s = self.0.state();
        let pull = s.pulls.get_mut(&number).unwrap();
        (pull.closed, pull.merged) = (true, merged);
    }
    fn set_remaining(&self, remaining: u64) {
        self.0.state().remaining = Some(remaining);
    }
    fn hide(&self, repo: &str) {
        self.0.state().inaccessible.insert(repo.to_owned());
    }
    fn add_attempt(&self, guid: &str, event: &str, status_code: u16, age: Duration) {
        self.0.state().add_delivery(Some((HOOK_REPO, 42)), guid, event, b"{}", status_code, age);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_adapter_against_the_fake_github_keeps_the_ports_contract() {
    init_logs();
    let gh = FakeGitHub::start().await;
    // Redeliveries go nowhere here: the attempt is listed all the same.
    gh.state().webhook_url = Some("http://127.0.0.1:9/webhooks/github".into());
    let client = ephemera_github::Client::new(&gh.url, "test-token").unwrap();
    let repo = ephemera_domain::RepoName::parse(HOOK_REPO).unwrap();
    let port = std::sync::Arc::new(ephemera_aws::github_catch_up::GitHubCatchUpRest::new(client, vec![(repo, 42)]));
    let world = FakeWorld(gh, port);
    ephemera_app::memory::github_conformance::check(&world).await;
    assert!(world.0.state().violations.is_empty(), "{:?}", world.0.state().violations);
}
