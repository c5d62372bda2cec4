//! Feedback on pull requests, against a local server standing in for the GitHub REST API that
//! checks every request against the published REST description (see `tests/src/github.rs`).

use std::time::Duration;

use ephemera_app::feedback::MARKER;
use ephemera_domain::Status;
use ephemera_github::client::{NewCommitStatus, RetryPolicy};
use ephemera_github::Client;
use ephemera_tests::fixtures::*;
use ephemera_tests::github::{FakeGitHub, FakePull};
use ephemera_tests::{edit, init_logs, Platform};
use serde_json::json;

const MERGE_1: &str = "c0ffee00000000000000000000000000000000c1";
const MERGE_2: &str = "c0ffee00000000000000000000000000000000c2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sticky_comment_across_many_updates() {
    init_logs();
    let gh = FakeGitHub::start().await;
    let client = Client::new(&gh.url, "test-token").unwrap();
    // Someone else's comment on the same pull request is left alone.
    gh.state().comments.insert(900, (7, "LGTM".into()));
    for i in 0..6 {
        client.upsert_marked_comment("acme", "todo-app", 7, MARKER, &format!("status {i}")).await.unwrap();
    }
    // Re-sending an identical body is not even an edit.
    client.upsert_marked_comment("acme", "todo-app", 7, MARKER, "status 5").await.unwrap();
    let s = gh.state();
    assert!(s.violations.is_empty(), "{:#?}", s.violations);
    let ours: Vec<_> = s.comments.values().filter(|(n, b)| *n == 7 && b.contains(MARKER)).collect();
    assert_eq!(ours.len(), 1, "{:#?}", s.comments);
    assert!(ours[0].1.ends_with("status 5"));
    assert_eq!(s.comments.get(&900).map(|c| c.1.as_str()), Some("LGTM"));
    let mut want = vec!["issues/create-comment".to_string()];
    want.extend(std::iter::repeat_n("issues/update-comment".to_string(), 5));
    assert_eq!(s.writes(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_comments_left_by_a_race_are_folded_into_one() {
    init_logs();
    let gh = FakeGitHub::start().await;
    {
        let mut s = gh.state();
        s.comments.insert(501, (7, format!("{MARKER}\nfirst")));
        s.comments.insert(502, (7, format!("{MARKER}\nsecond")));
    }
    let client = Client::new(&gh.url, "test-token").unwrap();
    let id = client.upsert_marked_comment("acme", "todo-app", 7, MARKER, "now").await.unwrap();
    let s = gh.state();
    assert_eq!(id, 501, "the oldest is kept");
    assert_eq!(s.comments.len(), 1);
    assert!(s.violations.is_empty(), "{:#?}", s.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_calls_are_retried_after_the_reset() {
    init_logs();
    let gh = FakeGitHub::start().await;
    gh.state().rate_limit_next = 2;
    let client = Client::new(&gh.url, "test-token").unwrap();
    let status = NewCommitStatus {
        state: "success",
        context: "ephemera/performance",
        description: "No regression".into(),
        target_url: None,
    };
    client.create_commit_status("acme", "todo-app", HEAD_OPENED, &status).await.unwrap();
    {
        let s = gh.state();
        assert!(s.violations.is_empty(), "{:#?}", s.violations);
        assert_eq!(s.requests.len(), 3, "two refusals, then the call that went through");
        assert_eq!(s.commit_statuses.len(), 1);
        // Each retry came no earlier than the reset GitHub announced.
        for (i, reset) in s.resets.iter().enumerate() {
            assert!(
                s.requests[i + 1].at >= *reset as f64,
                "retry {} at {} before reset {reset}",
                i + 1,
                s.requests[i + 1].at
            );
        }
    }

    // A reset further away than the client will wait is reported as retryable, not slept on.
    gh.state().rate_limit_next = 1;
    let impatient = Client::new(&gh.url, "test-token")
        .unwrap()
        .with_retry(RetryPolicy { max: Duration::from_millis(100), ..RetryPolicy::GITHUB });
    let err = impatient.create_commit_status("acme", "todo-app", HEAD_OPENED, &status).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

/// The API key the preview blueprint outputs, and its GraphQL endpoint checks.
const PREVIEW_KEY: &str = "da2-previewkeyforthetest0001";

/// A preview target with a known latency: pages for anyone, GraphQL (`POST`) only with the key.
async fn preview_server() -> String {
    let app = axum::Router::new().fallback(|method: axum::http::Method, headers: axum::http::HeaderMap| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let keyed = headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(PREVIEW_KEY);
        match (method, keyed) {
            (axum::http::Method::POST, false) => {
                (axum::http::StatusCode::UNAUTHORIZED, r#"{"errors":[{"message":"no key"}]}"#)
            }
            (axum::http::Method::POST, true) => (axum::http::StatusCode::OK, r#"{"data":{"__typename":"Query"}}"#),
            _ => (axum::http::StatusCode::OK, "ok"),
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/app", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn blueprint(preview_url: &str) -> String {
    format!(
        "AWSTemplateFormatVersion: \"2010-09-09\"\n\
         Parameters:\n  EnvironmentName:\n    Type: String\n\
         Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub \"${{AWS::StackName}}-q\"\n\
         Outputs:\n  PreviewUrl:\n    Value: \"{preview_url}\"\n  GraphQLApiKey:\n    Value: \"{PREVIEW_KEY}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_gets_its_comment_deployments_and_checks() {
    let gh = FakeGitHub::start().await;
    gh.state().pulls.insert(7, FakePull::new(HEAD_OPENED, Some(true), Some(MERGE_1)));
    let target = preview_server().await;
    let p = Platform::start_with(&[
        ("EPHEMERA_GITHUB_TOKEN", "test-token"),
        ("EPHEMERA_GITHUB_API_URL", &gh.url),
        ("EPHEMERA_PROBE_ALLOWED_HOSTS", "127.0.0.1"),
        // The preview server is local: its host is allowed literally in the blueprint.
        ("EPHEMERA_BLUEPRINT_PREVIEW_HOSTS", "127.0.0.1"),
        ("EPHEMERA_SMOKE_CHECKS", "/=200,/health=200"),
        ("EPHEMERA_LOAD_RATE", "20"),
        ("EPHEMERA_LOAD_SECONDS", "1"),
    ])
    .await;
    p.clients
        .s3()
        .put_object()
        .bucket(&p.config.shared.bucket)
        .key("blueprints/acme/todo-app.yaml")
        .body(blueprint(&target).into_bytes().into())
        .send()
        .await
        .unwrap();

    // Opened: built from the merge commit (rebase-first), reported on the head commit.
    assert_eq!(p.deliver("pull_request", "d-open", OPENED).await.0, 202);
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!((env.commit.as_deref(), env.source.map(|s| s.as_str())), (Some(MERGE_1), Some("merge")));
    assert_eq!(env.preview_url.as_deref(), Some(target.as_str()));
    gh.wait_until("the performance status and the ready comment", |s| {
        s.commit_statuses.iter().any(|(_, b)| b["context"] == "ephemera/performance")
            && s.comments.values().any(|(_, b)| b.contains("Load Test Results"))
    })
    .await;
    {
        let s = gh.state();
        assert_eq!(s.deployments.len(), 1);
        assert_eq!(s.deployments[0].1, HEAD_OPENED, "deployments are shown on the head commit");
        assert_eq!(s.deployments[0].2, "pr-7");
        assert_eq!(s.deployment_states(), ["in_progress", "success"]);
        let success = &s.deployment_statuses[1].1;
        assert_eq!(success["environment_url"], json!(target));
        let contexts: Vec<(&str, &str)> = s
            .commit_statuses
            .iter()
            .map(|(sha, b)| {
                assert_eq!(sha, HEAD_OPENED);
                (b["context"].as_str().unwrap(), b["state"].as_str().unwrap())
            })
            .collect();
        assert_eq!(contexts, [("ephemera/smoke", "success"), ("ephemera/performance", "success")]);
        let comment = &s.comments.values().next().unwrap().1;
        assert!(comment.contains("✅ Ready") && comment.contains(&target), "{comment}");
        assert!(comment.contains("merge of this branch into `main`"), "{comment}");
        assert!(comment.contains("Load Test Results") && comment.contains("| Total Requests | 20 |"), "{comment}");
        assert!(comment.contains("No baseline yet"), "{comment}");
        // The load test sent the environment's API key (or the gate would have failed on
        // errors), and it is never shown.
        assert!(!comment.contains(PREVIEW_KEY), "{comment}");
        assert!(s.commit_statuses.iter().all(|(_, b)| !b.to_string().contains(PREVIEW_KEY)));
    }

    // A push: a second deployment for the new head; still one comment.
    gh.state().pulls.insert(7, FakePull::new(HEAD_SYNCHRONIZED, Some(true), Some(MERGE_2)));
    assert_eq!(p.deliver("pull_request", "d-sync", SYNCHRONIZE).await.0, 202);
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    gh.wait_until("the second deployment's success", |s| {
        s.deployment_statuses.iter().any(|(id, b)| *id == s.deployments.last().unwrap().0 && b["state"] == "success")
            && s.deployments.len() == 2
    })
    .await;

    // Merged: torn down, the deployment marked inactive, the measurement becomes the baseline.
    let merged = edit(CLOSED, &[("pull_request.merged", json!(true))]);
    assert_eq!(p.deliver("pull_request", "d-close", &merged).await.0, 202);
    p.wait_for(ENVIRONMENT, Status::Deleted).await;
    gh.wait_until("the inactive deployment", |s| s.deployment_states().last().map(String::as_str) == Some("inactive"))
        .await;
    gh.wait_until("the destroyed comment", |s| s.comments.values().any(|(_, b)| b.contains("Destroyed"))).await;
    {
        let s = gh.state();
        assert!(s.violations.is_empty(), "{:#?}", s.violations);
        assert_eq!(s.comments.len(), 1, "one sticky comment, edited in place");
        let second = s.deployments[1].0;
        let states: Vec<&str> = s
            .deployment_statuses
            .iter()
            .filter(|(id, _)| *id == second)
            .map(|(_, b)| b["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["in_progress", "success", "inactive"]);
    }
    let baseline = p
        .clients
        .s3()
        .get_object()
        .bucket(&p.config.shared.bucket)
        .key("baselines/acme/todo-app/baseline.json")
        .send()
        .await
        .expect("the merged preview's measurement is the new baseline");
    let text = baseline.body.collect().await.unwrap().into_bytes();
    let m: ephemera_domain::perf::Measurement = serde_json::from_slice(&text).unwrap();
    assert_eq!(m.metrics.http_reqs.total, 20);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_forks_are_not_deployed_and_the_comment_says_why() {
    let gh = FakeGitHub::start().await;
    gh.state().pulls.insert(7, FakePull::new(HEAD_OPENED, Some(false), None));
    gh.state().permissions.insert("maintainer".into(), "write".into());
    gh.state().permissions.insert("drive-by".into(), "read".into());
    let p = Platform::with_fake_github(&gh.url, &[]).await;

    // A conflict with the base: nothing recorded, nothing deployed, the comment explains.
    let (status, body) = p.deliver("pull_request", "d-conflict", OPENED).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("ignored")), "{body}");
    assert!(body["reason"].as_str().unwrap().contains("conflicts with `main`"), "{body}");
    gh.wait_until("the conflict comment", |s| s.comments.values().any(|(_, b)| b.contains("conflicts with"))).await;
    assert_eq!(p.table_item_count().await, 0);
    assert!(p.live_stacks("ephemera-").await.is_empty());

    // Mergeability not computed yet: the head commit is built, and the comment says so.
    gh.state().pulls.insert(7, FakePull::new(HEAD_OPENED, None, None));
    assert_eq!(
        p.deliver(
            "pull_request",
            "d-open",
            &edit(OPENED, &[("pull_request.updated_at", json!("2026-11-20T09:00:01Z"))])
        )
        .await
        .0,
        202
    );
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!((env.commit.as_deref(), env.source.map(|s| s.as_str())), (Some(HEAD_OPENED), Some("head")));
    gh.wait_until("the head-commit note", |s| s.comments.values().any(|(_, b)| b.contains("had not yet worked out")))
        .await;

    // Labels: preserve pins the environment; skip takes it down.
    let preserve = edit(
        LABELED,
        &[("label.name", json!("preview:preserve")), ("pull_request.updated_at", json!("2026-11-20T09:00:02Z"))],
    );
    assert_eq!(p.deliver("pull_request", "d-pin", &preserve).await.0, 200);
    assert!(p.environment(ENVIRONMENT).await.unwrap().preserved);
    let skip = edit(
        LABELED,
        &[("label.name", json!("preview:skip")), ("pull_request.updated_at", json!("2026-11-20T09:00:03Z"))],
    );
    assert_eq!(p.deliver("pull_request", "d-skip", &skip).await.0, 202);
    let env = p.wait_for(ENVIRONMENT, Status::Deleted).await;
    assert!(env.status_reason.unwrap().contains("preview:skip"));

    // A fork: held until someone with write access adds the approval label.
    let (status, body) = p.deliver("pull_request", "d-fork", FORK_OPENED).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("ignored")), "{body}");
    let fork: serde_json::Value = serde_json::from_slice(FORK_OPENED).unwrap();
    let fork_env = ephemera_domain::EnvironmentName::for_pull_request(
        &ephemera_domain::RepoName::parse(fork["repository"]["full_name"].as_str().unwrap()).unwrap(),
        fork["number"].as_u64().unwrap(),
    )
    .unwrap();
    let approve = |who: &str, at: &str| {
        edit(
            FORK_OPENED,
            &[
                ("action", json!("labeled")),
                ("label", json!({ "name": "preview" })),
                ("pull_request.labels", json!([{ "name": "preview" }])),
                ("sender.login", json!(who)),
                ("pull_request.updated_at", json!(at)),
            ],
        )
    };
    let (_, body) = p.deliver("pull_request", "d-drive-by", &approve("drive-by", "2026-11-20T10:00:00Z")).await;
    assert_eq!(body["status"], "ignored", "{body}");
    assert!(p.environment(fork_env.as_str()).await.is_none());
    let (status, body) = p.deliver("pull_request", "d-approve", &approve("maintainer", "2026-11-20T10:00:01Z")).await;
    assert_eq!(status, 202, "{body}");
    p.wait_for(fork_env.as_str(), Status::Ready).await;
    // A later push to the fork is not deployed without a new approval.
    let push = edit(
        FORK_OPENED,
        &[
            ("action", json!("synchronize")),
            ("pull_request.labels", json!([{ "name": "preview" }])),
            ("pull_request.head.sha", json!("dddddddddddddddddddddddddddddddddddddddd")),
            ("pull_request.updated_at", json!("2026-11-20T10:05:00Z")),
        ],
    );
    let (_, body) = p.deliver("pull_request", "d-fork-push", &push).await;
    assert_eq!(body["status"], "ignored", "{body}");
    assert_ne!(
        p.environment(fork_env.as_str()).await.unwrap().commit.as_deref(),
        Some("dddddddddddddddddddddddddddddddddddddddd")
    );

    assert!(gh.state().violations.is_empty(), "{:#?}", gh.state().violations);
    p.stop().await;
}
