//! A repository's `.ephemera.yml`, end to end: read through the fake GitHub's contents API at
//! the deployed commit, kept in the bucket, and used by the intake and the provisioner.

use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::github::{FakeGitHub, FakePull};
use ephemera_tests::{edit, init_logs, Platform};
use serde_json::json;

/// The default blueprint with one more queue, so that the stack shows which one was deployed.
fn blueprint_with_queue() -> String {
    ephemera_local::DEFAULT_BLUEPRINT.replacen(
        "Resources:\n",
        "Resources:\n  FromTheRepository:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub \"${AWS::StackName}-from-repo\"\n",
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repositorys_blueprint_ttl_and_paths_are_used_and_a_malformed_file_fails_the_preview() {
    init_logs();
    let gh = FakeGitHub::start().await;
    gh.state().pulls.insert(7, FakePull::new(HEAD_OPENED, None, None));
    let p = Platform::with_fake_github(&gh.url, &[]).await;
    const BROKEN: &str = "f00df00df00df00df00df00df00df00df00df00d";
    let settings = "blueprint: infra/preview.yaml\nttl: 2d\npaths: [\"src/**\"]\n";
    {
        let mut s = gh.state();
        for commit in [HEAD_OPENED, HEAD_SYNCHRONIZED] {
            s.files.insert((commit.into(), ".ephemera.yml".into()), settings.into());
            s.files.insert((commit.into(), "infra/preview.yaml".into()), blueprint_with_queue());
        }
        s.files.insert((BROKEN.into(), ".ephemera.yml".into()), "ttl: 2d\npaths: [src/**\n".into());
        s.comparisons.insert(format!("{HEAD_OPENED}...{HEAD_SYNCHRONIZED}"), vec!["docs/setup.md".into()]);
    }

    // The repository's blueprint and TTL.
    assert_eq!(p.deliver("pull_request", "d-open", OPENED).await.0, 202);
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    let queues = p.clients.sqs().list_queues().send().await.unwrap().queue_urls.unwrap_or_default();
    assert!(queues.iter().any(|q| q.ends_with("-from-repo")), "{queues:?}");
    let ttl = env.expires_at - env.updated_at;
    assert!(ttl <= chrono::Duration::days(2) && ttl > chrono::Duration::days(1), "{ttl}");

    // A push touching no `paths:` glob: not deployed.
    let (status, body) = p.deliver("pull_request", "d-sync", SYNCHRONIZE).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("ignored")), "{body}");
    assert_eq!(p.environment(ENVIRONMENT).await.unwrap().commit.as_deref(), Some(HEAD_OPENED));

    // A push whose .ephemera.yml is malformed: the preview fails, naming the line.
    let push = edit(
        SYNCHRONIZE,
        &[("pull_request.head.sha", json!(BROKEN)), ("pull_request.updated_at", json!("2026-11-20T11:00:00Z"))],
    );
    assert_eq!(p.deliver("pull_request", "d-broken", &push).await.0, 202);
    let env = p.wait_for(ENVIRONMENT, Status::Failed).await;
    let reason = env.status_reason.unwrap();
    assert!(reason.starts_with(".ephemera.yml line "), "{reason}");
    assert!(gh.state().violations.is_empty(), "{:?}", gh.state().violations);
}
