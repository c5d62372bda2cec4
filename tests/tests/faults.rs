//! The platform under faults: throttling, 5xx answers, dropped connections (before and after
//! the emulator acted) and latency between it and the emulator. It retries, never acts twice,
//! and converges once the faults stop.

use std::time::{Duration, Instant};

use ephemera_domain::{EnvironmentName, RepoName, Status};
use ephemera_tests::faults::Faults;
use ephemera_tests::fixtures::*;
use ephemera_tests::{edit, Platform};
use serde_json::json;

fn env_of(n: u64) -> String {
    EnvironmentName::for_pull_request(&RepoName::parse("acme/todo-app").unwrap(), n).unwrap().to_string()
}

fn numbered(fixture: &[u8], n: u64) -> Vec<u8> {
    edit(fixture, &[("number", json!(n)), ("pull_request.number", json!(n))])
}

/// Delivers as GitHub would redeliver: the same delivery id again while the answer is 5xx.
async fn deliver_until_accepted(p: &Platform, id: &str, body: &[u8]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, reply) = p.deliver("pull_request", id, body).await;
        match status {
            200 | 202 => return reply,
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("delivery {id}: {other} {reply}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_the_platform_retries_acts_once_and_converges() {
    let (p, proxy) = Platform::start_faulty(&[("EPHEMERA_STACK_WAIT_SECONDS", "5")], 7).await;
    proxy.set(Faults {
        throttle: 0.10,
        server_error: 0.05,
        drop_before: 0.03,
        drop_after: 0.03,
        max_latency: Duration::from_millis(20),
    });
    for n in 1..=6 {
        deliver_until_accepted(&p, &format!("open-{n}"), &numbered(OPENED, n)).await;
    }
    for n in 1..=3 {
        deliver_until_accepted(&p, &format!("push-{n}"), &numbered(SYNCHRONIZE, n)).await;
    }
    for n in 4..=6 {
        deliver_until_accepted(&p, &format!("close-{n}"), &numbered(CLOSED, n)).await;
    }
    // Redeliveries of deliveries already recorded change nothing, faults or not.
    for n in 1..=6 {
        deliver_until_accepted(&p, &format!("open-{n}"), &numbered(OPENED, n)).await;
    }
    // Let the provisioner work through the faults for a while, then stop them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = proxy.stats();
    proxy.set(Faults::NONE);

    for n in 1..=3 {
        let env = p.wait_for(&env_of(n), Status::Ready).await;
        assert_eq!(env.commit.as_deref(), Some(HEAD_SYNCHRONIZED));
        assert_eq!(env.generation, 2, "opened and synchronize: two changes, however often delivered");
    }
    for n in 4..=6 {
        let env = p.wait_for(&env_of(n), Status::Deleted).await;
        assert_eq!(env.generation, 2);
    }
    let mut live = p.live_stacks("ephemera-").await;
    live.sort();
    let mut want: Vec<String> = (1..=3).map(|n| format!("ephemera-{}", env_of(n))).collect();
    want.sort();
    assert_eq!(live, want);

    let stats = proxy.stats();
    assert!(
        during.throttled > 0 && during.server_errors > 0 && during.dropped > 0,
        "faults were injected while the work was done: {during:?}"
    );
    // Every stack was created exactly once, whatever was retried (a pull request closed before
    // its stack was started may never have had one).
    for n in 1..=6 {
        let creates = stats.succeeded.get(&format!("CreateStack ephemera-{}", env_of(n))).copied().unwrap_or(0);
        let allowed = if n <= 3 { 1..=1 } else { 0..=1 };
        assert!(allowed.contains(&creates), "CreateStack for PR {n} {creates} times: {:#?}", stats.succeeded);
    }
    p.stop().await;
}
