//! `/ephemera` commands in a pull request's conversation, end to end: the webhook, the
//! registry in the emulator, the provisioner and the notifier, against the fake GitHub.

use ephemera_app::feedback::MARKER;
use ephemera_domain::{Desired, Status};
use ephemera_tests::fixtures::*;
use ephemera_tests::github::{FakeGitHub, FakePull, State};
use ephemera_tests::{edit, init_logs, Platform};
use serde_json::json;

/// The fixture comment's id.
const COMMENT: u64 = 5550001;

fn comment(body: &str, login: &str) -> Vec<u8> {
    edit(
        ISSUE_COMMENT,
        &[("comment.body", json!(body)), ("comment.user.login", json!(login)), ("sender.login", json!(login))],
    )
}

fn sticky(s: &State) -> String {
    s.comments.values().find(|(_, b)| b.contains(MARKER)).map(|(_, b)| b.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_command_readers_are_refused_and_a_redelivery_acts_once() {
    init_logs();
    let gh = FakeGitHub::start().await;
    gh.state().pulls.insert(7, FakePull::new(HEAD_OPENED, None, None));
    gh.state().permissions.insert("kyle-dev".into(), "write".into());
    gh.state().permissions.insert("drive-by".into(), "read".into());
    let p = Platform::with_fake_github(&gh.url, &[]).await;
    assert_eq!(p.deliver("pull_request", "d-open", OPENED).await.0, 202);
    let ready = p.wait_for(ENVIRONMENT, Status::Ready).await;

    // A writer extends the preview: a reaction, the new expiry, and the sticky comment says so.
    let extend = comment("/ephemera extend 10d", "kyle-dev");
    let (status, body) = p.deliver("issue_comment", "c-extend", &extend).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")), "{body}");
    let env = p.environment(ENVIRONMENT).await.unwrap();
    assert!(
        env.expires_at > ready.expires_at + chrono::Duration::days(2),
        "{} then {}",
        ready.expires_at,
        env.expires_at
    );
    assert_eq!(env.generation, ready.generation, "an extension does not redeploy");
    gh.wait_until("the extension in the sticky comment", |s| sticky(s).contains("@kyle-dev extended the preview"))
        .await;
    assert_eq!(gh.state().reactions, [(COMMENT, "+1".to_owned())]);

    // GitHub redelivers it: nothing more.
    let (status, body) = p.deliver("issue_comment", "c-extend", &extend).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")), "{body}");
    assert_eq!(gh.state().reactions.len(), 1);

    // A reader may not destroy it; the reply says why.
    let (_, body) = p.deliver("issue_comment", "c-reader", &comment("/ephemera destroy", "drive-by")).await;
    assert_eq!(body["status"], "refused", "{body}");
    assert_eq!(p.environment(ENVIRONMENT).await.unwrap().desired, Desired::Up);
    assert!(gh
        .state()
        .comments
        .values()
        .any(|(n, b)| *n == 7 && b.contains("@drive-by: Ephemera takes commands only")));
    assert_eq!(gh.state().reactions.last().unwrap().1, "-1");

    // An unknown command gets the help, once.
    p.deliver("issue_comment", "c-typo", &comment("/ephemera destory", "kyle-dev")).await;
    p.deliver("issue_comment", "c-typo", &comment("/ephemera destory", "kyle-dev")).await;
    let helps = gh.state().comments.values().filter(|(_, b)| b.contains("`destory` is not a command")).count();
    assert_eq!(helps, 1);

    // Preserve, then destroy: the stack goes.
    p.deliver("issue_comment", "c-preserve", &comment("/ephemera preserve", "kyle-dev")).await;
    assert!(p.environment(ENVIRONMENT).await.unwrap().preserved);
    let (status, body) = p.deliver("issue_comment", "c-destroy", &comment("/ephemera destroy", "kyle-dev")).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("accepted")), "{body}");
    let env = p.wait_for(ENVIRONMENT, Status::Deleted).await;
    assert!(env.status_reason.unwrap().contains("destroyed by @kyle-dev"));
    assert!(p.live_stacks("ephemera-").await.is_empty());
    assert!(gh.state().violations.is_empty(), "{:?}", gh.state().violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_is_deployed_at_the_approved_commit_only() {
    init_logs();
    let gh = FakeGitHub::start().await;
    gh.state().permissions.insert("kyle-dev".into(), "write".into());
    let p = Platform::with_fake_github(&gh.url, &[]).await;
    let fork = ephemera_domain::EnvironmentName::for_pull_request(
        &ephemera_domain::RepoName::parse("acme/todo-app").unwrap(),
        8,
    )
    .unwrap();
    assert_eq!(p.deliver("pull_request", "d-fork", FORK_OPENED).await.1["status"], "ignored");
    gh.wait_until("the approval hint", |s| sticky(s).contains("/ephemera approve")).await;

    // Pushed again before anyone looked: approving the first head deploys nothing.
    const NEWER: &str = "dddddddddddddddddddddddddddddddddddddddd";
    gh.state().pulls.insert(8, FakePull::new(NEWER, Some(true), Some("c0ffee00000000000000000000000000000000c8")));
    let approve =
        |sha: &str| edit(&comment(&format!("/ephemera approve {sha}"), "kyle-dev"), &[("issue.number", json!(8))]);
    let (_, body) = p.deliver("issue_comment", "c-old", &approve(HEAD_FORK)).await;
    assert_eq!(body["status"], "refused", "{body}");
    assert!(p.environment(fork.as_str()).await.is_none());
    // The head named: deployed from GitHub's merge of that head.
    let (status, body) = p.deliver("issue_comment", "c-new", &approve(&NEWER[..10])).await;
    assert_eq!(status, 202, "{body}");
    let env = p.wait_for(fork.as_str(), Status::Ready).await;
    assert_eq!(
        (env.commit.as_deref(), env.head_commit.as_deref()),
        (Some("c0ffee00000000000000000000000000000000c8"), Some(NEWER))
    );
    assert!(gh.state().violations.is_empty(), "{:?}", gh.state().violations);
}
