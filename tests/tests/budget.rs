//! The monthly budget: a new environment waits (QUEUED) while live ones would cost more than
//! the budget, and starts, oldest first, when one is deleted.
//!
//! The default blueprint is estimated at $5.10 a month (AppSync API, two tables, a bucket),
//! from its template; the emulator skips the AppSync API, but the estimate is the template's.

use ephemera_domain::Status;
use ephemera_tests::fixtures::{CLOSED, OPENED};
use ephemera_tests::{edit, Platform};
use serde_json::json;

fn pr(fixture: &[u8], number: u64) -> Vec<u8> {
    edit(fixture, &[("number", json!(number)), ("pull_request.number", json!(number))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_budget_environments_wait_and_start_when_room_is_made() {
    let p = Platform::start_with(&[("EPHEMERA_MONTHLY_BUDGET_USD", "8")]).await;
    let (_, first) = p.deliver("pull_request", "d-41", &pr(OPENED, 41)).await;
    let first = first["environment"].as_str().unwrap().to_owned();
    let env = p.wait_for(&first, Status::Ready).await;
    assert_eq!(env.cost_monthly_usd, Some(5.1));

    let (_, second) = p.deliver("pull_request", "d-42", &pr(OPENED, 42)).await;
    let second = second["environment"].as_str().unwrap().to_owned();
    let waiting = loop {
        let e = p.environment(&second).await.unwrap();
        if e.status == Status::Queued {
            break e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(waiting.status_reason.as_deref().unwrap().contains("budget is $8.00"), "{waiting:?}");
    assert!(p.stack(&format!("ephemera-{second}")).await.is_none(), "no stack while queued");

    // Closing the first makes room: the queued one starts.
    p.deliver("pull_request", "d-41-close", &pr(CLOSED, 41)).await;
    p.wait_for(&first, Status::Deleted).await;
    p.wait_for(&second, Status::Ready).await;
    assert!(p.stack(&format!("ephemera-{second}")).await.is_some());
    p.stop().await;
}

/// One slot left (the budget fits one more $5.10 environment): twenty pull requests opened at
/// once, reconciled concurrently, and exactly one is admitted; the others wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_creates_for_the_last_slot_admit_exactly_one() {
    let p = Platform::start_with(&[("EPHEMERA_MONTHLY_BUDGET_USD", "10.5")]).await;
    let (_, first) = p.deliver("pull_request", "d-1", &pr(OPENED, 1)).await;
    p.wait_for(first["environment"].as_str().unwrap(), Status::Ready).await;

    let deliveries = (100..120).map(|n| {
        let p = &p;
        async move {
            let (status, reply) = p.deliver("pull_request", &format!("d-{n}"), &pr(OPENED, n)).await;
            assert_eq!(status, 202, "{reply}");
            reply["environment"].as_str().unwrap().to_owned()
        }
    });
    let envs = futures_util::future::join_all(deliveries).await;
    let mut settled = Vec::new();
    for env in &envs {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let e = loop {
            let e = p.environment(env).await.unwrap();
            if matches!(e.status, Status::Ready | Status::Queued) {
                break e;
            }
            assert!(std::time::Instant::now() < deadline, "{env} neither admitted nor queued: {e:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        settled.push(e.status);
    }
    let admitted = settled.iter().filter(|s| **s == Status::Ready).count();
    assert_eq!(admitted, 1, "{settled:?}");
    assert_eq!(p.live_stacks("ephemera-").await.len(), 2, "the first and the one admitted");
    p.stop().await;
}
