//! The notifier: what is reported back to the pull request, once, and never backwards.

use ephemera_app::events::{PlatformEvent, REQUESTED};
use ephemera_app::feedback::{
    baseline_key, report_key, scenario_key, Feedback, FeedbackSettings, PERFORMANCE_CONTEXT, SMOKE_CONTEXT,
};
use ephemera_app::memory::{retryable, GitHubCall};
use ephemera_domain::perf::Scenario;
use ephemera_domain::{RepoName, Status};

use crate::harness::*;

const REPO: &str = "acme/todo-app";
const MERGE: &str = "c0ffee0000000000000000000000000000000001";

fn repo() -> RepoName {
    RepoName::parse(REPO).unwrap()
}

/// What the provisioner announced, Requested left out (the notifier's rule does not match it).
fn announced(w: &World) -> Vec<PlatformEvent> {
    w.bus.take().into_iter().filter(|e| e.detail_type != REQUESTED).collect()
}

/// Every event published, requests included (what the notifier's rule delivers).
fn all_announced(w: &World) -> Vec<PlatformEvent> {
    w.bus.take()
}

async fn report(w: &World, events: &[PlatformEvent]) -> Vec<Feedback> {
    let notifier = w.notifier();
    let mut out = Vec::new();
    for e in events {
        out.push(notifier.handle(e).await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_deployment_is_reported_as_it_goes_and_the_preview_is_checked() {
    let w = World::new();
    w.ready_pr().await;
    let feedback = report(&w, &announced(&w)).await;
    let key = format!("1:READY:{HEAD_OPENED}");
    assert_eq!(feedback, [Feedback::Reported(format!("1:CREATING:{HEAD_OPENED}")), Feedback::Reported(key.clone())]);
    assert_eq!(w.env(PR).notified.as_ref().map(ToString::to_string).as_deref(), Some(key.as_str()));
    assert_eq!(w.github.deployment_states(), ["in_progress", "success"]);
    let calls = w.github.calls();
    let one_deployment = calls.iter().filter_map(|c| match c {
        GitHubCall::EnsureDeployment { sha, environment, id, .. } => Some((sha.clone(), environment.clone(), *id)),
        _ => None,
    });
    let deployments: Vec<_> = one_deployment.collect();
    assert_eq!(deployments[0], deployments[1], "one deployment per commit");
    assert_eq!((deployments[0].0.as_str(), deployments[0].1.as_str()), (HEAD_OPENED, "pr-7"));
    assert!(calls.contains(&GitHubCall::DeploymentStatus {
        repo: REPO.into(),
        deployment: deployments[0].2,
        state: "success".into(),
        url: Some("https://preview.example.com".into()),
        description: "Preview environment ready".into(),
    }));
    assert_eq!(w.prober.smoke_calls(), ["https://preview.example.com"]);
    assert_eq!(
        w.github.commit_statuses(),
        [(SMOKE_CONTEXT.into(), "success".into()), (PERFORMANCE_CONTEXT.into(), "success".into())]
    );
    assert!(w.store.object(BUCKET, &report_key(&repo(), 7, HEAD_OPENED)).is_some(), "the measurement is kept");
    let comment = w.github.comment(REPO, 7).unwrap();
    assert!(comment.contains("✅ Ready") && comment.contains("https://preview.example.com"), "{comment}");
    assert!(comment.contains("No baseline yet"), "{comment}");
}

#[tokio::test]
async fn as_an_app_check_runs_move_forward_only() {
    let w = World::new();
    w.github.set_app(true);
    w.ready_pr().await;
    let events = all_announced(&w);
    assert_eq!(events.len(), 3, "requested, creating, ready");
    // The ready event first, then the late requested and creating ones, then all again.
    report(&w, &[events[2].clone(), events[0].clone(), events[1].clone()]).await;
    report(&w, &events).await;
    use ephemera_app::ports::CheckState::*;
    assert_eq!(
        w.github.check_runs(),
        [(PERFORMANCE_CONTEXT, InProgress), ("ephemera/preview", Success), (PERFORMANCE_CONTEXT, Success)],
        "late events are not news"
    );
    assert!(w.github.commit_statuses().is_empty(), "checks instead of commit statuses");
    let preview = w.github.calls().into_iter().find_map(|c| match c {
        GitHubCall::CheckRun { run, sha, .. } if run.name == "ephemera/preview" => Some((sha, run)),
        _ => None,
    });
    let (sha, run) = preview.unwrap();
    assert_eq!(sha, HEAD_OPENED);
    assert!(
        run.summary.contains("https://preview.example.com") && run.summary.contains("| `/` | 200 | 200 ✅ |"),
        "{}",
        run.summary
    );
    assert_eq!(run.details_url.as_deref(), Some(format!("https://dashboard.example.com/environments/{PR}").as_str()));

    // A push: the new head's check runs go queued → in progress → success, in order.
    w.github.clear_calls();
    w.deliver("pull_request", "d-push", fixtures::SYNCHRONIZE).await.unwrap();
    w.provisioner().reconcile(&name(PR)).await.unwrap();
    report(&w, &all_announced(&w)).await;
    let previews: Vec<_> =
        w.github.check_runs().into_iter().filter(|(n, _)| *n == "ephemera/preview").map(|(_, s)| s).collect();
    assert_eq!(previews, [Queued, InProgress, Success]);
}

#[tokio::test]
async fn as_an_app_a_request_queues_the_check_without_hiding_what_follows() {
    use ephemera_app::ports::CheckState::*;
    let w = World::new();
    w.github.set_app(true);
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    report(&w, &all_announced(&w)).await;
    assert_eq!(w.github.check_runs(), [("ephemera/preview", Queued)]);
    assert_eq!(w.env(PR).notified, None, "not recorded: what follows is news");
    // Queued for the budget: reported, comment and all.
    w.registry.edit(&name(PR), |e| e.status = Status::Queued);
    let queued = PlatformEvent::status(&w.env(PR), Status::Queued, None);
    assert!(matches!(w.notifier().handle(&queued).await.unwrap(), Feedback::Reported(_)));
    assert!(w.github.comment(REPO, 7).unwrap().contains("Queued"));
    // Going down: a request is not a deployment.
    w.github.clear_calls();
    w.deliver("pull_request", "d-close", fixtures::CLOSED).await.unwrap();
    let closing: Vec<_> = all_announced(&w).into_iter().filter(|e| e.detail_type == REQUESTED).collect();
    assert!(matches!(w.notifier().handle(&closing[0]).await.unwrap(), Feedback::Skipped(_)));
    assert!(w.github.check_runs().is_empty());
}

#[tokio::test]
async fn with_a_token_requests_are_not_reported() {
    let w = World::new();
    w.ready_pr().await;
    let events = all_announced(&w);
    w.github.clear_calls();
    assert!(matches!(w.notifier().handle(&events[0]).await.unwrap(), Feedback::Skipped(_)));
    assert!(w.github.calls().is_empty());
}

#[tokio::test]
async fn nothing_is_reported_twice_or_backwards() {
    let w = World::new();
    w.ready_pr().await;
    let events = announced(&w);
    report(&w, &events).await;
    w.github.clear_calls();
    let again = report(&w, &events).await;
    assert!(again.iter().all(|f| matches!(f, Feedback::Skipped(_))), "{again:?}");
    assert!(w.github.calls().is_empty());
    assert_eq!(w.prober.smoke_calls().len(), 1);
}

#[tokio::test]
async fn events_of_a_superseded_generation_or_no_pull_request_are_skipped() {
    let w = World::new();
    w.ready_pr().await;
    let events = announced(&w);
    w.deliver("pull_request", "d-push", fixtures::SYNCHRONIZE).await.unwrap();
    let skipped = w.notifier().handle(&events[1]).await.unwrap();
    assert_eq!(skipped, Feedback::Skipped("generation 1 is superseded by 2".into()));
    let mut dev = events[1].clone();
    (dev.detail.repository, dev.detail.pull_request) = (None, None);
    assert!(matches!(w.notifier().handle(&dev).await.unwrap(), Feedback::Skipped(_)));
    let mut gone = events[1].clone();
    gone.detail.environment = name("pr-9-acme-todo-app-6acfdc9491");
    assert_eq!(w.notifier().handle(&gone).await.unwrap(), Feedback::Skipped("no such environment".into()));
    assert!(w.github.calls().iter().all(|c| matches!(c, GitHubCall::PullRequest { .. } | GitHubCall::File { .. })));
}

#[tokio::test]
async fn a_queued_or_failed_environment_says_why() {
    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    w.registry.edit(&name(PR), |e| {
        (e.status, e.status_reason) = (Status::Queued, Some("waiting for budget".into()));
    });
    let env = w.env(PR);
    w.notifier().handle(&PlatformEvent::status(&env, Status::Queued, None)).await.unwrap();
    let calls = w.github.calls();
    assert!(calls.iter().any(|c| matches!(c, GitHubCall::DeploymentStatus { state, description, .. } if state == "queued" && description == "waiting for budget")));
    assert!(w.github.comment(REPO, 7).unwrap().contains("> waiting for budget"));

    w.registry.edit(&name(PR), |e| {
        (e.status, e.status_reason) = (Status::Failed, Some("CREATE_FAILED: bucket name taken".into()));
    });
    let env = w.env(PR);
    w.notifier().handle(&PlatformEvent::status(&env, Status::Failed, None)).await.unwrap();
    assert_eq!(w.github.deployment_states(), ["queued", "failure"]);
    assert!(w.github.comment(REPO, 7).unwrap().contains("❌ Failed"));
}

#[tokio::test]
async fn a_preview_that_is_not_deployed_gets_a_comment_saying_why() {
    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::FORK_OPENED).await.unwrap();
    let event = w.bus.take().pop().unwrap();
    let feedback = w.notifier().handle(&event).await.unwrap();
    assert!(
        matches!(&feedback, Feedback::Reported(r) if r.starts_with("not deployed: pull request comes from a fork"))
    );
    let comment = w.github.comment(REPO, 8).unwrap();
    assert!(comment.contains("Preview not deployed") && comment.contains("`e1f2a3b`"), "{comment}");
}

#[tokio::test]
async fn failed_smoke_checks_and_regressions_fail_their_commit_statuses() {
    let w = World::new();
    let fast = serde_json::json!({
        "timestamp": "2026-11-01T00:00:00Z",
        "metrics": {"http_req_duration": {"p95": 10.0, "avg": 10.0}, "http_reqs": {"total": 20}, "errors": {"rate": 0.0}}
    });
    w.store.put(BUCKET, &baseline_key(&repo()), &fast.to_string());
    w.prober.answer("/", 503);
    w.ready_pr().await;
    report(&w, &announced(&w)).await;
    assert_eq!(
        w.github.commit_statuses(),
        [(SMOKE_CONTEXT.into(), "failure".into()), (PERFORMANCE_CONTEXT.into(), "failure".into())]
    );
    let comment = w.github.comment(REPO, 7).unwrap();
    assert!(comment.contains("**Performance regression:**") && comment.contains("503 ❌"), "{comment}");
}

#[tokio::test]
async fn a_retried_event_reuses_the_commits_measurement() {
    let w = World::new();
    w.ready_pr().await;
    let events = announced(&w);
    w.github.faults.fail_next("commit_status", retryable("commit status", "502"));
    let notifier = w.notifier();
    notifier.handle(&events[0]).await.unwrap();
    assert!(notifier.handle(&events[1]).await.unwrap_err().is_retryable());
    assert_eq!(notifier.handle(&events[1]).await.unwrap(), Feedback::Reported(format!("1:READY:{HEAD_OPENED}")));
    assert_eq!((w.prober.smoke_calls().len(), w.prober.load_calls().len()), (1, 1), "measured once");
}

#[tokio::test]
async fn a_merged_previews_measurement_becomes_the_baseline() {
    for (merged, promoted) in [(true, true), (false, false)] {
        let w = World::new();
        w.github.set_mergeability(HEAD_OPENED, Some(true), Some(MERGE));
        w.ready_pr().await;
        report(&w, &announced(&w)).await;
        // Built from the merge commit; reported against the pull request's head.
        let shas: Vec<String> = w
            .github
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                GitHubCall::EnsureDeployment { sha, .. } | GitHubCall::CommitStatus { sha, .. } => Some(sha),
                _ => None,
            })
            .collect();
        assert!(!shas.is_empty() && shas.iter().all(|s| s == HEAD_OPENED), "{shas:?}");
        let close = edit(fixtures::CLOSED, &[("pull_request.merged", serde_json::json!(merged))]);
        w.deliver("pull_request", "d-close", &close).await.unwrap();
        w.provisioner().reconcile(&name(PR)).await.unwrap();
        report(&w, &announced(&w)).await;
        assert_eq!(w.github.deployment_states().last().unwrap(), "inactive");
        assert!(w.github.comment(REPO, 7).unwrap().contains("🗑️ Destroyed"));
        let baseline = w.store.object(BUCKET, &baseline_key(&repo()));
        assert_eq!(baseline.is_some(), promoted, "merged: {merged}");
    }
}

#[tokio::test]
async fn without_checks_configured_nothing_is_probed() {
    let w = World::new();
    w.ready_pr().await;
    let settings = FeedbackSettings { smoke: vec![], load: None, ..World::feedback_settings() };
    let notifier = w.notifier_with(settings);
    for e in announced(&w) {
        notifier.handle(&e).await.unwrap();
    }
    assert!(w.prober.smoke_calls().is_empty() && w.github.commit_statuses().is_empty());
}

#[tokio::test]
async fn the_sample_ready_event_is_read_and_reported() {
    let w = World::new();
    w.ready_pr().await;
    let sample = std::str::from_utf8(fixtures::READY).unwrap();
    let feedback = w.notifier().handle_message(sample).await.unwrap();
    assert_eq!(feedback, Feedback::Reported(format!("1:READY:{HEAD_OPENED}")));
}

#[tokio::test]
async fn the_load_test_speaks_the_previews_protocol_with_its_key_and_never_shows_the_key() {
    let w = World::new();
    w.ready_pr().await;
    w.registry.edit(&name(PR), |e| {
        e.outputs.insert("GraphQLApiKey".into(), "da2-thekeyofthispreview".into());
    });
    report(&w, &announced(&w)).await;
    let scenarios = w.prober.scenarios();
    assert_eq!(scenarios, [(Scenario::graphql(), Some("da2-thekeyofthispreview".to_owned()))]);
    let comment = w.github.comment(REPO, 7).unwrap();
    assert!(comment.contains("Load Test Results") && !comment.contains("da2-"), "{comment}");
    assert!(w.github.calls().iter().all(|c| !format!("{c:?}").contains("da2-")));
}

#[tokio::test]
async fn a_repositorys_own_scenario_is_used_and_an_invalid_one_is_reported_not_run() {
    let w = World::new();
    let own = r#"{"method": "GET", "path": "/health", "api_key": false}"#;
    w.store.put(BUCKET, &scenario_key(&repo()), own);
    w.ready_pr().await;
    report(&w, &announced(&w)).await;
    assert_eq!(w.prober.scenarios(), [(Scenario::get("/health"), None)]);

    let w = World::new();
    w.store.put(BUCKET, &scenario_key(&repo()), r#"{"method": "GET", "headers": {"x-api-key": "da2-x"}}"#);
    w.ready_pr().await;
    report(&w, &announced(&w)).await;
    assert!(w.prober.load_calls().is_empty(), "not run");
    let statuses = w.github.commit_statuses();
    assert_eq!(statuses[1], (PERFORMANCE_CONTEXT.into(), "failure".into()));
    let comment = w.github.comment(REPO, 7).unwrap();
    assert!(
        comment.contains("**Load test not run:** load-test scenario scenarios/acme/todo-app.json is not valid"),
        "{comment}"
    );
}

#[tokio::test]
async fn without_a_key_output_the_load_test_makes_its_own_key_and_deletes_it_after() {
    let w = World::new();
    w.ready_pr().await;
    w.registry.edit(&name(PR), |e| {
        e.outputs.insert("GraphQLApiArn".into(), "arn:aws:appsync:us-east-1:123456789012:apis/abcdefghij".into());
    });
    report(&w, &announced(&w)).await;
    assert_eq!(w.prober.scenarios(), [(Scenario::graphql(), Some("key-1".to_owned()))]);
    let made = w.keys.made();
    assert_eq!((made.len(), made[0].0.as_str()), (1, "abcdefghij"));
    assert!(made[0].2.starts_with("ephemera load test of pr-7"), "{made:?}");
    assert!(w.keys.live().is_empty(), "deleted after the load test");
    assert_eq!(w.github.commit_statuses()[1], (PERFORMANCE_CONTEXT.into(), "success".into()));
}

#[tokio::test]
async fn a_preview_that_is_no_graphql_api_gets_a_plain_get_and_an_unrunnable_test_is_not_kept() {
    // Neither a key output nor an API: the default falls back to GET of the preview.
    let w = World::new();
    w.ready_pr().await;
    report(&w, &announced(&w)).await;
    assert_eq!(w.prober.scenarios(), [(Scenario::plain_get(), None)]);
    assert_eq!(w.github.commit_statuses()[1], (PERFORMANCE_CONTEXT.into(), "success".into()));

    // A repository's scenario that needs a key the preview cannot give: not run, said why,
    // and not stored, so the next look (after the scenario is fixed) measures.
    let w = World::new();
    w.store.put(BUCKET, &scenario_key(&repo()), r#"{"path": "/graphql"}"#);
    w.ready_pr().await;
    let events = announced(&w);
    report(&w, &events).await;
    let comment = w.github.comment(REPO, 7).unwrap();
    assert!(comment.contains("**Load test not run:**") && comment.contains("no GraphQLApiKey output"), "{comment}");
    assert!(w.store.object(BUCKET, &report_key(&repo(), 7, HEAD_OPENED)).is_none());
}
