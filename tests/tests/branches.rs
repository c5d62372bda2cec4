//! Branch environments end to end: GitHub's own `push` and `delete` payloads, signed, over
//! HTTP, through the provisioner to CloudFormation in the emulator.

use ephemera_domain::{EnvironmentName, RepoName, Status};
use ephemera_tests::fixtures::*;
use ephemera_tests::Platform;

fn environment() -> String {
    EnvironmentName::for_branch(&RepoName::parse("acme/todo-app").unwrap(), BRANCH).unwrap().to_string()
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn start() -> Platform {
    Platform::start_with(&[("EPHEMERA_BRANCH_ENVIRONMENTS", "feature/*, release/**")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_branch_gets_an_environment_that_moves_with_its_pushes_and_ends_with_it() {
    let p = start().await;
    let (env, stack) = (environment(), format!("ephemera-{}", environment()));

    let (status, body) = p.deliver("push", "p-created", PUSH_BRANCH_CREATED).await;
    assert_eq!((status, body["environment"].as_str()), (202, Some(env.as_str())), "{body}");
    let row = p.wait_for(&env, Status::Ready).await;
    assert_eq!((row.commit.as_deref(), row.head_ref.as_deref()), (Some(BRANCH_FIRST), Some(BRANCH)));
    let (_, tags) = p.stack(&stack).await.expect("the branch's stack");
    assert_eq!(tag(&tags, "ephemera:kind"), Some("branch"));
    assert_eq!(tag(&tags, "ephemera:branch"), Some(BRANCH));
    assert_eq!(tag(&tags, "ephemera:commit"), Some(BRANCH_FIRST));
    assert_eq!(tag(&tags, "ephemera:repository"), Some("acme/todo-app"));

    // The next push moves it to the new commit.
    let (status, _) = p.deliver("push", "p-updated", PUSH_BRANCH_UPDATED).await;
    assert_eq!(status, 202);
    let row = p.wait_for(&env, Status::Ready).await;
    assert_eq!((row.commit.as_deref(), row.generation), (Some(BRANCH_SECOND), 2));
    let (stack_status, tags) = p.stack(&stack).await.unwrap();
    assert_eq!((stack_status.as_str(), tag(&tags, "ephemera:commit")), ("UPDATE_COMPLETE", Some(BRANCH_SECOND)));

    // A push to a branch no pattern matches gets nothing.
    let (status, body) = p.deliver("push", "p-main", PUSH_MAIN).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("ignored")), "{body}");

    // The push that deletes the branch takes its environment down.
    let (status, _) = p.deliver("push", "p-deleted", PUSH_BRANCH_DELETED).await;
    assert_eq!(status, 202);
    let row = p.wait_for(&env, Status::Deleted).await;
    assert_eq!(row.status_reason.as_deref(), Some("branch deleted"));
    assert!(p.stack(&stack).await.is_none());
    let live: Vec<String> = p.live_stacks("ephemera-br-").await;
    assert!(live.is_empty(), "{live:?}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn githubs_delete_event_for_a_branch_ends_its_environment() {
    let p = start().await;
    let env = environment();
    p.deliver("push", "p-created", PUSH_BRANCH_CREATED).await;
    p.wait_for(&env, Status::Ready).await;
    let (status, body) = p.deliver("delete", "d-branch", DELETE_BRANCH).await;
    assert_eq!(status, 202, "{body}");
    p.wait_for(&env, Status::Deleted).await;
    assert!(p.stack(&format!("ephemera-{env}")).await.is_none());
    // A redelivered push from before the deletion does not bring it back.
    let (_, body) = p.deliver("push", "p-updated-late", PUSH_BRANCH_UPDATED).await;
    assert_eq!(body["status"], "stale", "{body}");
    p.stop().await;
}
