//! The webhook intake: which deliveries change the desired state, and what is announced.

use chrono::Duration;
use ephemera_app::events::{NOT_DEPLOYED, REQUESTED};
use ephemera_app::intake::{Delivery, IntakeError, PR_CLOSED, PR_MERGED};
use ephemera_app::memory::retryable;
use ephemera_domain::{Desired, EnvironmentName, RepoName, Status};
use ephemera_github_webhook::WebhookSecrets;
use serde_json::json;

use crate::harness::*;

const MERGE: &str = "c0ffee0000000000000000000000000000000001";

#[tokio::test]
async fn an_opened_pull_request_is_recorded_and_announced() {
    let w = World::new();
    let reply = w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert!(reply.accepted);
    assert_eq!(reply.body["status"], "accepted");
    assert_eq!((reply.body["generation"].as_u64(), reply.body["source"].as_str()), (Some(1), Some("head")));
    let e = w.env(PR);
    assert_eq!((e.desired, e.status, e.generation), (Desired::Up, Status::Pending, 1));
    assert_eq!((e.commit.as_deref(), e.head_commit.as_deref()), (Some(HEAD_OPENED), Some(HEAD_OPENED)));
    assert_eq!((e.owner.as_str(), e.base_ref.as_deref(), e.pull_request), ("kyle-dev", Some("main"), Some(7)));
    // The payload was last updated before now: the TTL runs from now.
    assert_eq!(e.expires_at, w.now() + Duration::days(7));
    let events = w.bus.events();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].detail_type.as_str(), events[0].detail.generation), (REQUESTED, 1));
    assert_eq!(events[0].detail.commit.as_deref(), Some(HEAD_OPENED));
}

#[tokio::test]
async fn a_push_moves_the_commit_and_the_expiry() {
    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    let reply = w.deliver("pull_request", "d2", fixtures::SYNCHRONIZE).await.unwrap();
    assert_eq!(reply.body["generation"], 2);
    let e = w.env(PR);
    assert_eq!((e.commit.as_deref(), e.generation, e.desired), (Some(HEAD_SYNCHRONIZED), 2, Desired::Up));
    assert_eq!(e.expires_at, time("2026-11-20T10:15:42Z") + Duration::days(7), "from the push itself");
    assert_eq!(w.bus.detail_types(), [REQUESTED, REQUESTED]);
}

#[tokio::test]
async fn closing_tears_down_and_records_whether_it_was_merged() {
    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    let asked = w.github.calls().len();
    w.deliver("pull_request", "d2", fixtures::CLOSED).await.unwrap();
    let e = w.env(PR);
    assert_eq!((e.desired, e.status_reason.as_deref(), e.generation), (Desired::Down, Some(PR_MERGED), 2));
    assert_eq!(e.commit.as_deref(), Some(HEAD_OPENED), "going down keeps the commit last deployed");
    assert_eq!(e.head_commit.as_deref(), Some(HEAD_SYNCHRONIZED));
    assert_eq!(w.github.calls().len(), asked, "nothing is asked of GitHub to tear down");

    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    let unmerged = edit(fixtures::CLOSED, &[("pull_request.merged", json!(false))]);
    w.deliver("pull_request", "d2", &unmerged).await.unwrap();
    assert_eq!(w.env(PR).status_reason.as_deref(), Some(PR_CLOSED));
}

#[tokio::test]
async fn a_reopened_pull_request_comes_back_from_its_merge_commit() {
    let w = World::new();
    for (id, body) in [("d1", fixtures::OPENED), ("d2", fixtures::CLOSED), ("d3", fixtures::REOPENED)] {
        w.deliver("pull_request", id, body).await.unwrap();
    }
    let e = w.env(PR);
    assert_eq!((e.desired, e.generation, e.source.map(|s| s.as_str())), (Desired::Up, 3, Some("merge")));
    assert_eq!(e.commit.as_deref(), Some("d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"), "the payload's merge commit");
    assert_eq!(e.status_reason, None);
}

#[tokio::test]
async fn a_redelivery_is_announced_again_only_until_the_environment_converges() {
    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    let again = w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!((again.accepted, again.body["status"].as_str()), (false, Some("duplicate")));
    assert_eq!(w.env(PR).generation, 1);
    assert_eq!(w.bus.detail_types(), [REQUESTED, REQUESTED], "the first announcement may have been lost");
    w.registry.edit(&name(PR), |e| {
        e.status = Status::Ready;
        e.observed_generation = 1;
    });
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!(w.bus.events().len(), 2, "nothing left to do: not announced");
}

#[tokio::test]
async fn a_late_push_does_not_bring_back_a_closed_pull_requests_environment() {
    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    w.deliver("pull_request", "d3", fixtures::CLOSED).await.unwrap();
    let reply = w.deliver("pull_request", "d2", fixtures::SYNCHRONIZE).await.unwrap();
    assert_eq!((reply.accepted, reply.body["status"].as_str()), (false, Some("stale")));
    let e = w.env(PR);
    assert_eq!((e.desired, e.generation), (Desired::Down, 2));
    assert_eq!(w.bus.events().len(), 2);
}

#[tokio::test]
async fn a_close_and_a_push_of_the_same_second_leave_it_closed_whichever_comes_first() {
    let push = edit(fixtures::SYNCHRONIZE, &[("pull_request.updated_at", json!("2026-11-21T16:03:11Z"))]);
    let (push, close) = (("d-push", push.as_slice()), ("d-close", fixtures::CLOSED));
    for order in [[push, close], [close, push]] {
        let w = World::new();
        w.deliver("pull_request", "d-open", fixtures::OPENED).await.unwrap();
        for (id, body) in order {
            w.deliver("pull_request", id, body).await.unwrap();
        }
        assert_eq!(w.env(PR).desired, Desired::Down, "{:?}", order.map(|(id, _)| id));
    }
}

#[tokio::test]
async fn a_forks_code_is_not_deployed_without_a_maintainers_approval() {
    let w = World::new();
    let reply = w.deliver("pull_request", "d1", fixtures::FORK_OPENED).await.unwrap();
    assert_eq!(reply.body["status"], "ignored");
    assert!(w.registry.all().is_empty(), "nothing recorded");
    let events = w.bus.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail_type, NOT_DEPLOYED);
    assert!(events[0].detail.reason.as_deref().unwrap().contains("fork"));

    // A reader's approval label is refused; a writer's deploys.
    let approval = |login: &str| {
        edit(
            fixtures::FORK_OPENED,
            &[("action", json!("labeled")), ("label", json!({"name": "preview"})), ("sender.login", json!(login))],
        )
    };
    w.github.set_permission("drive-by", "read");
    let reply = w.deliver("pull_request", "d2", &approval("drive-by")).await.unwrap();
    assert!(reply.body["reason"].as_str().unwrap().contains("may not approve"), "{}", reply.body);
    w.github.set_permission("acme-lead", "write");
    let reply = w.deliver("pull_request", "d3", &approval("acme-lead")).await.unwrap();
    assert_eq!(reply.body["status"], "accepted");
    let fork = w.registry.all().pop().unwrap();
    assert_eq!((fork.desired, fork.pull_request), (Desired::Up, Some(8)));
}

#[tokio::test]
async fn forks_are_deployed_when_the_operator_trusts_them() {
    let w = World::new();
    let intake = w.intake_with(ephemera_app::intake::IntakeSettings { deploy_forks: true, ..World::intake_settings() });
    let reply = deliver(&intake, "pull_request", "d1", fixtures::FORK_OPENED).await.unwrap();
    assert_eq!(reply.body["status"], "accepted");
}

#[tokio::test]
async fn without_github_a_fork_approval_cannot_be_verified() {
    let w = World::new();
    let intake =
        ephemera_app::intake::Intake::new(w.registry.clone(), w.bus.clone(), w.clock.clone(), World::intake_settings());
    let body = edit(fixtures::FORK_OPENED, &[("action", json!("labeled")), ("label", json!({"name": "preview"}))]);
    let reply = deliver(&intake, "pull_request", "d1", &body).await.unwrap();
    assert_eq!(reply.body["status"], "ignored");
    assert!(w.registry.all().is_empty());
}

#[tokio::test]
async fn the_skip_label_keeps_or_takes_a_preview_away() {
    let w = World::new();
    let skipped = edit(fixtures::OPENED, &[("pull_request.labels", json!([{"name": "preview:skip"}]))]);
    let reply = w.deliver("pull_request", "d1", &skipped).await.unwrap();
    assert_eq!(reply.body["status"], "ignored");
    assert!(w.registry.all().is_empty() && w.bus.events().is_empty(), "nothing recorded or announced");

    w.deliver("pull_request", "d2", fixtures::OPENED).await.unwrap();
    let label = edit(fixtures::LABELED, &[("label.name", json!("preview:skip"))]);
    w.deliver("pull_request", "d3", &label).await.unwrap();
    let e = w.env(PR);
    assert_eq!((e.desired, e.status_reason.as_deref()), (Desired::Down, Some("the \"preview:skip\" label was added")));
}

#[tokio::test]
async fn the_preserve_label_pins_an_environment() {
    let w = World::new();
    let label = edit(fixtures::LABELED, &[("label.name", json!("preview:preserve"))]);
    let reply = w.deliver("pull_request", "d1", &label).await.unwrap();
    assert_eq!(reply.body["status"], "ignored", "no environment yet");
    w.deliver("pull_request", "d2", fixtures::OPENED).await.unwrap();
    let reply = w.deliver("pull_request", "d3", &label).await.unwrap();
    assert_eq!((reply.body["status"].as_str(), w.env(PR).preserved), (Some("recorded"), true));
    let unlabel = edit(&label, &[("action", json!("unlabeled"))]);
    w.deliver("pull_request", "d4", &unlabel).await.unwrap();
    assert!(!w.env(PR).preserved);

    // Opened with the label already on: pinned from the start.
    let w = World::new();
    let opened = edit(fixtures::OPENED, &[("pull_request.labels", json!([{"name": "Preview:Preserve"}]))]);
    w.deliver("pull_request", "d1", &opened).await.unwrap();
    assert!(w.env(PR).preserved);
}

#[tokio::test]
async fn previews_are_built_from_the_merge_commit_when_github_has_one() {
    let w = World::new();
    w.github.set_mergeability(HEAD_OPENED, Some(true), Some(MERGE));
    let reply = w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!((reply.body["commit"].as_str(), reply.body["source"].as_str()), (Some(MERGE), Some("merge")));
    assert_eq!(w.env(PR).head_commit.as_deref(), Some(HEAD_OPENED));
}

#[tokio::test]
async fn a_conflicting_pull_request_is_not_deployed() {
    let w = World::new();
    w.github.set_mergeability(HEAD_OPENED, Some(false), None);
    let reply = w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!(reply.body["status"], "ignored");
    assert!(reply.body["reason"].as_str().unwrap().contains("conflicts with `main`"));
    assert!(w.registry.all().is_empty());
    assert_eq!(w.bus.detail_types(), [NOT_DEPLOYED]);

    // The payload's own answer is used without asking GitHub.
    let w = World::new();
    let conflicted = edit(fixtures::OPENED, &[("pull_request.mergeable", json!(false))]);
    w.deliver("pull_request", "d1", &conflicted).await.unwrap();
    assert!(w.registry.all().is_empty() && w.github.calls().is_empty());
}

#[tokio::test]
async fn repositories_outside_the_allowed_list_are_ignored() {
    let w = World::new();
    let settings = ephemera_app::intake::IntakeSettings {
        allowed_repositories: vec!["acme/other".into()],
        ..World::intake_settings()
    };
    let reply = deliver(&w.intake_with(settings), "pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!(reply.body["status"], "ignored");
    assert!(w.registry.all().is_empty());
}

#[tokio::test]
async fn a_repositorys_own_ttl_overrides_the_default() {
    let w = World::new();
    let mut settings = World::intake_settings();
    settings.pr_ttl_by_repository.insert("acme/todo-app".into(), Duration::hours(1));
    deliver(&w.intake_with(settings), "pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!(w.env(PR).expires_at, w.now() + Duration::hours(1));
}

#[tokio::test]
async fn a_name_held_by_another_repository_is_a_conflict() {
    let w = World::new();
    let mut other = ephemera_domain::environment::test_support::pr_environment();
    other.name = EnvironmentName::parse(PR).unwrap();
    other.repository = Some(RepoName::parse("evil/todo-app").unwrap());
    w.registry.insert(other.clone());
    let err = w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap_err();
    assert!(matches!(&err, IntakeError::Conflict(m) if m.contains("evil/todo-app")), "{err}");
    assert_eq!(w.env(PR), other);
}

#[tokio::test]
async fn unsigned_or_malformed_deliveries_are_refused_before_anything_is_read() {
    let w = World::new();
    let intake = w.intake();
    let body = fixtures::OPENED;
    let wrong = WebhookSecrets::new("not-the-secret", None).unwrap().sign(body);
    let d =
        Delivery { event: Some("pull_request"), id: Some("d1"), signature: Some(&wrong), body, form_encoded: false };
    assert!(matches!(intake.handle(d).await, Err(IntakeError::Unauthorized(_))));
    let good = WebhookSecrets::new(SECRET, None).unwrap().sign(body);
    let no_id = Delivery { id: None, signature: Some(&good), ..d };
    assert!(matches!(intake.handle(no_id).await, Err(IntakeError::BadRequest(_))));
    let no_event = Delivery { event: None, signature: Some(&good), ..d };
    assert!(matches!(intake.handle(no_event).await, Err(IntakeError::BadRequest(_))));
    assert!(w.registry.all().is_empty() && w.bus.events().is_empty());
}

#[tokio::test]
async fn pings_other_events_and_form_encoded_bodies() {
    let w = World::new();
    let pong = w.deliver("ping", "d1", fixtures::PING).await.unwrap();
    assert_eq!(pong.body["status"], "pong");
    let issues = w.deliver("issues", "d2", b"{}").await.unwrap();
    assert_eq!(issues.body["status"], "ignored");
    // A push that is not a push payload is a bad request, not silently ignored.
    assert!(matches!(w.deliver("push", "d2b", b"{}").await, Err(IntakeError::BadRequest(_))));
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(fixtures::OPENED).unwrap())
        .finish();
    let signature = WebhookSecrets::new(SECRET, None).unwrap().sign(form.as_bytes());
    let d = Delivery {
        event: Some("pull_request"),
        id: Some("d3"),
        signature: Some(&signature),
        body: form.as_bytes(),
        form_encoded: true,
    };
    assert_eq!(w.intake().handle(d).await.unwrap().body["status"], "accepted");
}

#[tokio::test]
async fn a_failed_announcement_is_made_good_by_the_redelivery() {
    let w = World::new();
    w.registry.faults.fail_next("apply_change", retryable("record change", "throttled"));
    let err = w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap_err();
    assert!(matches!(&err, IntakeError::Unavailable(e) if e.is_retryable()));
    assert!(w.registry.all().is_empty());

    w.bus.faults.fail_next("publish", retryable("put events", "unavailable"));
    assert!(matches!(w.deliver("pull_request", "d1", fixtures::OPENED).await, Err(IntakeError::Unavailable(_))));
    assert_eq!((w.env(PR).generation, w.bus.events().len()), (1, 0), "recorded, not announced");
    let reply = w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert_eq!(reply.body["status"], "duplicate");
    assert_eq!(w.bus.detail_types(), [REQUESTED], "GitHub's redelivery announces it");
}

/// The branch environment of the push fixtures (acme/todo-app, feature/search).
fn branch_env() -> ephemera_domain::EnvironmentName {
    ephemera_domain::EnvironmentName::for_branch(
        &ephemera_domain::RepoName::parse("acme/todo-app").unwrap(),
        fixtures::BRANCH,
    )
    .unwrap()
}

#[tokio::test]
async fn a_matching_branch_gets_an_environment_that_follows_its_pushes_and_ends_with_it() {
    let w = World::new();
    let reply = w.deliver("push", "p1", fixtures::PUSH_BRANCH_CREATED).await.unwrap();
    let name = branch_env();
    assert_eq!((reply.accepted, reply.body["environment"].as_str()), (true, Some(name.as_str())), "{}", reply.body);
    let e = w.env(name.as_str());
    assert_eq!(
        (e.kind, e.desired, e.owner.as_str()),
        (ephemera_domain::EnvironmentKind::Branch, Desired::Up, "kyle-dev")
    );
    assert_eq!((e.commit.as_deref(), e.head_ref.as_deref()), (Some(fixtures::BRANCH_FIRST), Some(fixtures::BRANCH)));
    assert_eq!(e.repository.unwrap().full_name(), "acme/todo-app");
    // From its push, like a pull request's.
    assert_eq!(e.expires_at, time("2026-11-20T09:10:00Z").max(w.now()) + chrono::Duration::days(7));

    w.deliver("push", "p2", fixtures::PUSH_BRANCH_UPDATED).await.unwrap();
    assert_eq!(w.env(name.as_str()).commit.as_deref(), Some(fixtures::BRANCH_SECOND));
    // A late redelivery of the first push does not move it back.
    let stale = w.deliver("push", "p1-again", fixtures::PUSH_BRANCH_CREATED).await.unwrap();
    assert_eq!(stale.body["status"], "stale");
    assert_eq!(w.env(name.as_str()).commit.as_deref(), Some(fixtures::BRANCH_SECOND));

    w.deliver("push", "p3", fixtures::PUSH_BRANCH_DELETED).await.unwrap();
    let e = w.env(name.as_str());
    assert_eq!((e.desired, e.status_reason.as_deref()), (Desired::Down, Some("branch deleted")));
    assert_eq!(e.commit.as_deref(), Some(fixtures::BRANCH_SECOND), "the commit last deployed is kept");
    // GitHub's delete event for the same branch changes nothing more, and nothing goes back up.
    w.deliver("delete", "d1", fixtures::DELETE_BRANCH).await.unwrap();
    assert_eq!(w.env(name.as_str()).desired, Desired::Down);
    let late = w.deliver("push", "p2-again", fixtures::PUSH_BRANCH_UPDATED).await.unwrap();
    assert_eq!(late.body["status"], "stale");
}

#[tokio::test]
async fn a_branch_deleted_without_a_push_ends_its_environment_and_other_refs_get_none() {
    let w = World::new();
    w.deliver("push", "p1", fixtures::PUSH_BRANCH_CREATED).await.unwrap();
    w.clock.advance(chrono::Duration::minutes(30));
    w.deliver("delete", "d1", fixtures::DELETE_BRANCH).await.unwrap();
    assert_eq!(w.env(branch_env().as_str()).desired, Desired::Down);

    let w = World::new();
    let reply = w.deliver("push", "m1", fixtures::PUSH_MAIN).await.unwrap();
    assert_eq!(reply.body["status"], "ignored", "{}", reply.body);
    assert!(reply.body["reason"].as_str().unwrap().contains("main matches no"));
    let tag =
        String::from_utf8_lossy(fixtures::DELETE_BRANCH).replace("\"ref_type\": \"branch\"", "\"ref_type\": \"tag\"");
    assert_eq!(w.deliver("delete", "t1", tag.as_bytes()).await.unwrap().body["status"], "ignored");
    let none = w
        .intake_with(ephemera_app::intake::IntakeSettings { branches: Default::default(), ..World::intake_settings() });
    let reply = deliver(&none, "push", "p1", fixtures::PUSH_BRANCH_CREATED).await.unwrap();
    assert_eq!(reply.body["status"], "ignored");
    assert!(w.registry.all().is_empty() && w.bus.events().is_empty());
}

#[tokio::test]
async fn a_late_deletion_does_not_end_a_branch_made_again_and_an_unknown_one_is_ignored() {
    let w = World::new();
    // Deleting a branch that never had an environment records nothing.
    let reply = w.deliver("delete", "d0", fixtures::DELETE_BRANCH).await.unwrap();
    assert_eq!(reply.body["status"], "ignored", "{}", reply.body);
    assert!(w.registry.all().is_empty());
    // The branch is made again after the deletion (a push later than the deletion's time);
    // the deletion delivered late changes nothing.
    let again = String::from_utf8_lossy(fixtures::PUSH_BRANCH_CREATED).replace("1795165800", "1795167600");
    w.deliver("push", "p-again", again.as_bytes()).await.unwrap();
    w.clock.advance(chrono::Duration::hours(2)); // it arrives well after both
    let late = w.deliver("delete", "d-late", fixtures::DELETE_BRANCH).await.unwrap();
    assert_eq!(late.body["status"], "stale", "{}", late.body);
    assert_eq!(w.env(branch_env().as_str()).desired, Desired::Up);
}
