//! Environments in sandbox accounts, against the emulator, which keeps each account's state
//! apart by the account of the role assumed (`sts:AssumeRole` always succeeds there; a role
//! that does not trust the platform is played by the fault proxy answering `AccessDenied`).

use std::sync::Arc;

use chrono::{Duration, Utc};
use ephemera_app::memory::FixedClock;
use ephemera_app::reaper::SweepOptions;
use ephemera_app::Clock;
use ephemera_domain::catalogue::Kind;
use ephemera_domain::Status;
use ephemera_tests::fixtures::{CLOSED, OPENED};
use ephemera_tests::resources::Services;
use ephemera_tests::{edit, Platform};
use ephemera_wiring::platform;
use serde_json::json;

const A: &str = "222222222222";
const B: &str = "333333333333";

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/ephemera-deploy")
}

fn pr(fixture: &[u8], number: u64) -> Vec<u8> {
    edit(fixture, &[("number", json!(number)), ("pull_request.number", json!(number))])
}

async fn open(p: &Platform, number: u64) -> String {
    let (status, reply) = p.deliver("pull_request", &format!("d-open-{number}"), &pr(OPENED, number)).await;
    assert_eq!(status, 202, "{reply}");
    reply["environment"].as_str().unwrap().to_owned()
}

async fn close(p: &Platform, number: u64, env: &str) {
    p.deliver("pull_request", &format!("d-close-{number}"), &pr(CLOSED, number)).await;
    p.wait_for(env, Status::Deleted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_requests_stack_lives_and_dies_in_the_deploy_account() {
    let p = Platform::start_with(&[
        ("EPHEMERA_DEPLOY_ROLE_ARN", &role(A)),
        ("EPHEMERA_DEPLOY_EXTERNAL_ID", "ephemera-test"),
        ("EPHEMERA_REAPER_ALLOWED_ACCOUNTS", "123456789012"),
    ])
    .await;
    let env = open(&p, 7).await;
    let e = p.wait_for(&env, Status::Ready).await;
    assert_eq!((e.account.as_deref(), e.region.as_deref()), (Some(A), Some("us-east-1")));
    assert_eq!(p.live_stacks_in(A, "ephemera-").await, [format!("ephemera-{env}")]);
    assert!(p.live_stacks("ephemera-").await.is_empty(), "nothing in the platform's account");
    let in_a = Services::new(p.clients_in(A).await.sdk());
    let tables = in_a.named(&format!("ephemera-{env}")).await.unwrap();
    assert!(!tables.is_empty(), "the blueprint's resources are in the deploy account");

    close(&p, 7, &env).await;
    assert!(p.live_stacks_in(A, "ephemera-").await.is_empty(), "deleted there");

    // Something tagged for the closed environment is left in the deploy account: a sweep finds
    // it there (allowed: the deploy targets join the allowed accounts) and deletes it.
    let leftover = format!("ephemera-{env}-leftover");
    in_a.make(Kind::Queue, &leftover, Some(&env)).await.unwrap();
    let later: Arc<dyn Clock> = Arc::new(FixedClock::new(Utc::now() + Duration::hours(1)));
    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, later);
    let run = reaper.sweep(SweepOptions::default()).await.unwrap();
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let accounts: Vec<&str> = run.accounts.iter().map(|a| a.account.as_str()).collect();
    assert_eq!(accounts, ["platform", A]);
    assert!(!in_a.exists(Kind::Queue, &leftover).await.unwrap(), "the leftover is gone: {:#?}", run.planned);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_spreads_environments_by_room_and_each_is_deleted_in_its_own_account() {
    let pool = format!("{},{}", role(A), role(B));
    let p = Platform::start_with(&[("EPHEMERA_DEPLOY_ROLE_ARN", &pool)]).await;
    let first = open(&p, 7).await;
    p.wait_for(&first, Status::Ready).await;
    let second = open(&p, 8).await;
    p.wait_for(&second, Status::Ready).await;
    let account = |e: ephemera_domain::Environment| e.account.unwrap_or_default();
    assert_eq!(account(p.environment(&first).await.unwrap()), A);
    assert_eq!(account(p.environment(&second).await.unwrap()), B, "the account with more room");
    assert_eq!(p.live_stacks_in(A, "ephemera-").await, [format!("ephemera-{first}")]);
    assert_eq!(p.live_stacks_in(B, "ephemera-").await, [format!("ephemera-{second}")]);

    close(&p, 7, &first).await;
    close(&p, 8, &second).await;
    assert!(p.live_stacks_in(A, "ephemera-").await.is_empty());
    assert!(p.live_stacks_in(B, "ephemera-").await.is_empty());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_cannot_be_assumed_fails_its_environment_and_its_sweep_alone() {
    let routed = format!("acme/todo-app={}", role(B));
    let (p, proxy) = Platform::start_faulty(
        &[("EPHEMERA_DEPLOY_ROLE_ARN", &role(A)), ("EPHEMERA_DEPLOY_ROLE_ARN_BY_REPOSITORY", &routed)],
        7,
    )
    .await;
    proxy.refuse_assume_role(&role(B));
    let env = open(&p, 7).await;
    let failed = p.wait_for(&env, Status::Failed).await;
    let reason = failed.status_reason.unwrap_or_default();
    assert!(reason.starts_with(&format!("cannot act in account {B} as {}", role(B))), "{reason}");
    assert!(reason.contains("AccessDenied"), "{reason}");
    assert!(p.live_stacks_in(B, "ephemera-").await.is_empty() && p.live_stacks("ephemera-").await.is_empty());

    // An orphan stack in A is still swept; B is reported, not skipped.
    let in_a = p.clients_in(A).await;
    let orphan = "ephemera-pr-99-acme-todo-app-0000000000";
    let template = r#"{"Resources":{"Q":{"Type":"AWS::SQS::Queue"}}}"#;
    let tags = [("ephemera:managed-by", "ephemera"), ("ephemera:environment", "pr-99-acme-todo-app-0000000000")];
    let tags: Vec<_> =
        tags.iter().map(|(k, v)| aws_sdk_cloudformation::types::Tag::builder().key(*k).value(*v).build()).collect();
    in_a.cloudformation()
        .create_stack()
        .stack_name(orphan)
        .template_body(template)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
    let later: Arc<dyn Clock> = Arc::new(FixedClock::new(Utc::now() + Duration::hours(1)));
    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, later);
    let run = reaper.sweep(SweepOptions::default()).await.unwrap();
    let report: Vec<(&str, bool)> = run.accounts.iter().map(|a| (a.account.as_str(), a.error.is_some())).collect();
    assert_eq!(report, [(B, true), ("platform", false), (A, false)]);
    assert_eq!((run.errors[0].action, run.errors[0].target.as_str()), ("reach account", B));
    assert!(run.errors[0].error.contains("AccessDenied"), "{:?}", run.errors);
    assert!(p.live_stacks_in(A, "ephemera-").await.is_empty(), "the orphan in {A} was deleted");
    p.stop().await;
}
