//! A repository's `.ephemera.yml`: the blueprint it names, its TTL, `paths:` that spare a
//! redeploy, its load-test scenario and smoke checks; a malformed one fails the preview.

use chrono::Duration;
use ephemera_app::events::NOTED;
use ephemera_app::provisioner::Outcome;
use ephemera_domain::{Desired, Status};

use crate::harness::*;

fn stack_body(w: &World) -> String {
    w.stacks.get(&name(PR).stack_name()).unwrap().request.unwrap().template_body
}

#[tokio::test]
async fn the_blueprint_named_in_the_repository_is_deployed() {
    let w = World::new();
    w.github.set_file(HEAD_OPENED, ".ephemera.yml", "blueprint: infra/preview.yaml\n");
    w.github.set_file(HEAD_OPENED, "infra/preview.yaml", &BLUEPRINT.replace("Files:", "FromTheRepository:"));
    w.ready_pr().await;
    assert!(stack_body(&w).contains("FromTheRepository"), "{}", stack_body(&w));
}

#[tokio::test]
async fn without_settings_the_default_path_is_used_if_the_repository_has_it() {
    let w = World::new();
    w.github.set_file(HEAD_OPENED, ".ephemera/template.yaml", &BLUEPRINT.replace("Files:", "FromDefaultPath:"));
    w.ready_pr().await;
    assert!(stack_body(&w).contains("FromDefaultPath"));
    assert_eq!(w.env(PR).expires_at, w.now() + Duration::days(7), "the platform's TTL");
}

#[tokio::test]
async fn the_repositorys_ttl_sets_the_expiry() {
    let w = World::new();
    w.github.set_file(HEAD_OPENED, ".ephemera.yml", "ttl: 2d\n");
    w.ready_pr().await;
    assert_eq!(w.env(PR).expires_at, w.now() + Duration::days(2));
    assert!(stack_body(&w).contains("Files"), "the bucket's blueprint when the repository has none");
}

#[tokio::test]
async fn a_push_that_changes_no_path_is_not_redeployed_and_the_comment_says_so() {
    let w = World::new();
    let settings = "paths: [\"src/**\", \"schema/*.graphql\"]\n";
    w.github.set_file(HEAD_OPENED, ".ephemera.yml", settings);
    w.github.set_file(HEAD_SYNCHRONIZED, ".ephemera.yml", settings);
    let ready = w.ready_pr().await;
    w.github.set_changes(HEAD_OPENED, HEAD_SYNCHRONIZED, &["README.md", "docs/setup.md"]);
    w.bus.take();
    let reply = w.deliver("pull_request", "d-sync", fixtures::SYNCHRONIZE).await.unwrap();
    assert_eq!(reply.body["status"], "ignored", "{}", reply.body);
    let note = reply.body["reason"].as_str().unwrap();
    assert!(
        note.contains("changed nothing under `paths:` (src/**, schema/*.graphql)") && note.contains("stays at a3b9c1d"),
        "{note}"
    );
    let e = w.env(PR);
    assert_eq!((e.generation, e.commit.as_deref()), (ready.generation, Some(HEAD_OPENED)));
    assert_eq!(e.expires_at, time("2026-11-20T10:15:42Z") + Duration::days(7), "the push is activity all the same");
    let events = w.bus.take();
    assert_eq!(events.iter().map(|e| e.detail_type.as_str()).collect::<Vec<_>>(), [NOTED]);
    w.notifier().handle(&events[0]).await.unwrap();
    assert!(w.github.comment("acme/todo-app", 7).unwrap().contains("changed nothing under"));

    // A push that does touch one is deployed.
    w.github.set_changes(HEAD_OPENED, HEAD_SYNCHRONIZED, &["README.md", "src/app.ts"]);
    let reply = w.deliver("pull_request", "d-sync-2", fixtures::SYNCHRONIZE).await.unwrap();
    assert_eq!(reply.body["status"], "accepted");
    assert_eq!(w.env(PR).commit.as_deref(), Some(HEAD_SYNCHRONIZED));
}

#[tokio::test]
async fn a_malformed_file_fails_the_preview_with_its_line() {
    let w = World::new();
    w.github.set_file(HEAD_OPENED, ".ephemera.yml", "ttl: 3d\npaths: [src/**\n");
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    let reason = w.env(PR).status_reason.unwrap();
    assert!(reason.starts_with(".ephemera.yml line "), "{reason}");
    assert!(w.stacks.get(&name(PR).stack_name()).is_none(), "nothing was created");
    // Fixed in the next push: deployed.
    w.github.set_file(HEAD_SYNCHRONIZED, ".ephemera.yml", "ttl: 3d\npaths: [\"src/**\"]\n");
    w.deliver("pull_request", "d2", fixtures::SYNCHRONIZE).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
}

#[tokio::test]
async fn a_named_blueprint_the_commit_lacks_fails_the_preview() {
    let w = World::new();
    w.github.set_file(HEAD_OPENED, ".ephemera.yml", "blueprint: infra/missing.yaml\n");
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    let reason = w.env(PR).status_reason.unwrap();
    assert!(reason.contains("names the blueprint infra/missing.yaml, which commit"), "{reason}");
}

#[tokio::test]
async fn the_commits_scenario_and_smoke_checks_are_used() {
    let w = World::new();
    let settings = "smoke: [\"/ready=204\"]\nload_test:\n  scenario: perf/scenario.json\n";
    w.github.set_file(HEAD_OPENED, ".ephemera.yml", settings);
    w.github.set_file(HEAD_OPENED, "perf/scenario.json", r#"{"method": "GET", "path": "/items", "api_key": false}"#);
    w.ready_pr().await;
    let events: Vec<_> = w.bus.take().into_iter().filter(|e| e.detail.status == Status::Ready).collect();
    w.notifier().handle(&events[0]).await.unwrap();
    let (scenario, _) = w.prober.scenarios().pop().unwrap();
    assert_eq!((scenario.method.as_str(), scenario.path.as_deref()), ("GET", Some("/items")));
    let report = w.store.object(BUCKET, &format!("results/acme/todo-app/pr-7/{HEAD_OPENED}.json")).unwrap();
    assert!(report.contains("/ready"), "{report}");
    assert_eq!(w.env(PR).desired, Desired::Up);
}
