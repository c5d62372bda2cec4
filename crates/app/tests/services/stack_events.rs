//! CloudFormation's status events: recorded in the order of their own time, about one stack.

use ephemera_app::Retryable;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ephemera_app::events::EnvelopeError;
use ephemera_app::intake::PR_MERGED;
use ephemera_app::memory::FakeStack;
use ephemera_app::outcome::MessageError;
use ephemera_app::provisioner::ProvisionerSettings;
use ephemera_app::stack_events::Recorded;
use ephemera_domain::Status;

use crate::harness::*;

/// A "Stack Status Change" event shaped like the sample.
fn event(stack_id: &str, status: &str, reason: &str, at: DateTime<Utc>) -> String {
    let mut e: serde_json::Value = serde_json::from_slice(fixtures::STACK_STATUS).unwrap();
    e["detail"]["stack-id"] = stack_id.into();
    e["resources"] = serde_json::json!([stack_id]);
    e["detail"]["status-details"]["status"] = status.into();
    e["detail"]["status-details"]["status-reason"] = reason.into();
    e["time"] = at.to_rfc3339_opts(SecondsFormat::Secs, true).into();
    e.to_string()
}

/// acme/todo-app#7 with its stack being created (and staying so): the stack's id.
async fn creating(w: &World) -> String {
    w.deliver("pull_request", "d-opened", fixtures::OPENED).await.unwrap();
    w.stacks.in_progress_for(u32::MAX);
    let settings = ProvisionerSettings { wait: Duration::from_millis(5), ..World::provisioner_settings() };
    assert!(w.provisioner_with(settings).reconcile(&name(PR)).await.is_err());
    w.bus.take();
    w.env(PR).stack_id.unwrap()
}

async fn send(w: &World, body: &str) -> Recorded {
    w.stack_events().handle_message(body).await.unwrap()
}

#[tokio::test]
async fn a_ready_stack_is_recorded_with_its_outputs_and_announced() {
    let w = World::new();
    let id = creating(&w).await;
    let at = w.now() + chrono::Duration::seconds(60);
    assert_eq!(send(&w, &event(&id, "CREATE_COMPLETE", "", at)).await, Recorded::Status(Status::Ready));
    let e = w.env(PR);
    assert_eq!(
        (e.status, e.status_reason.clone(), e.status_at),
        (Status::Ready, None, Some(at.timestamp_millis() + 200))
    );
    assert_eq!((e.preview_url.as_deref(), e.outputs.len()), (Some("https://preview.example.com"), 2));
    assert_eq!((e.generation, e.observed_generation), (1, 0), "settling the generation is the provisioner's");
    let events = w.bus.events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].detail_type.as_str(), events[0].detail.preview_url.as_deref()),
        ("Environment.Ready", Some("https://preview.example.com"))
    );
    // The same event again: dropped, not announced twice.
    assert_eq!(send(&w, &event(&id, "CREATE_COMPLETE", "", at)).await, Recorded::Stale);
    assert_eq!(w.bus.events().len(), 1);
}

#[tokio::test]
async fn older_news_never_overwrites_newer() {
    let w = World::new();
    let id = creating(&w).await;
    let t = w.now() + chrono::Duration::seconds(60);
    assert_eq!(
        send(&w, &event(&id, "DELETE_COMPLETE", "", t + chrono::Duration::seconds(60))).await,
        Recorded::Status(Status::Deleted)
    );
    assert_eq!(send(&w, &event(&id, "CREATE_COMPLETE", "", t)).await, Recorded::Stale);
    assert_eq!(w.env(PR).status, Status::Deleted);
    // Within one second, a stack's life decides: complete comes after in progress.
    let w = World::new();
    let id = creating(&w).await;
    assert_eq!(send(&w, &event(&id, "CREATE_COMPLETE", "", t)).await, Recorded::Status(Status::Ready));
    assert_eq!(send(&w, &event(&id, "CREATE_IN_PROGRESS", "", t)).await, Recorded::Stale);
    assert_eq!(w.env(PR).status, Status::Ready);
    // What the provisioner saw when it last looked counts as news too.
    let w = World::new();
    let id = creating(&w).await;
    let before = w.now() - chrono::Duration::seconds(10);
    assert_eq!(send(&w, &event(&id, "CREATE_COMPLETE", "", before)).await, Recorded::Stale);
    assert_eq!(w.env(PR).status, Status::Creating);
}

#[tokio::test]
async fn events_about_another_stack_of_the_same_name_are_dropped() {
    let w = World::new();
    let id = creating(&w).await;
    let older = id.replace("fake-1", "an-older-stack");
    let at = w.now() + chrono::Duration::seconds(60);
    assert_eq!(send(&w, &event(&older, "DELETE_COMPLETE", "", at)).await, Recorded::Stale);
    assert_eq!(w.env(PR).status, Status::Creating);
}

#[tokio::test]
async fn failures_carry_cloudformations_reason() {
    let w = World::new();
    let id = creating(&w).await;
    let at = w.now() + chrono::Duration::seconds(60);
    let body = event(&id, "CREATE_FAILED", "Files: bucket name already taken", at);
    assert_eq!(send(&w, &body).await, Recorded::Status(Status::Failed));
    let reason = "CREATE_FAILED: Files: bucket name already taken";
    assert_eq!(w.env(PR).status_reason.as_deref(), Some(reason));
    assert_eq!(w.bus.events()[0].detail.reason.as_deref(), Some(reason));
}

#[tokio::test]
async fn a_deletion_keeps_the_reason_it_was_asked_for_and_drops_the_url() {
    let w = World::new();
    let e = w.ready_pr().await;
    let id = e.stack_id.unwrap();
    w.deliver("pull_request", "d-close", fixtures::CLOSED).await.unwrap();
    w.bus.take();
    let at = w.now() + chrono::Duration::seconds(60);
    assert_eq!(send(&w, &event(&id, "DELETE_IN_PROGRESS", "", at)).await, Recorded::Status(Status::Deleting));
    assert_eq!(w.env(PR).status_reason.as_deref(), Some(PR_MERGED));
    assert!(w.bus.events().is_empty(), "only outcomes are announced");
    let done = at + chrono::Duration::seconds(60);
    assert_eq!(send(&w, &event(&id, "DELETE_COMPLETE", "", done)).await, Recorded::Status(Status::Deleted));
    let e = w.env(PR);
    assert_eq!((e.status_reason.as_deref(), e.preview_url), (Some(PR_MERGED), None));
    let announced = w.bus.events().pop().unwrap();
    assert_eq!((announced.detail_type.as_str(), announced.detail.preview_url), ("Environment.Deleted", None));
}

#[tokio::test]
async fn statuses_that_say_nothing_new_and_unknown_environments_change_nothing() {
    let w = World::new();
    let id = creating(&w).await;
    let before = w.env(PR);
    let at = w.now() + chrono::Duration::seconds(60);
    assert_eq!(send(&w, &event(&id, "ROLLBACK_IN_PROGRESS", "x", at)).await, Recorded::Uninformative);
    let unknown = id.replace(PR, "pr-99-acme-todo-app-6acfdc9491");
    assert_eq!(send(&w, &event(&unknown, "CREATE_COMPLETE", "", at)).await, Recorded::Unknown);
    assert_eq!(w.env(PR), before);
    assert!(w.bus.events().is_empty());
}

#[tokio::test]
async fn a_ready_event_for_a_stack_that_is_gone_records_no_outputs() {
    let w = World::new();
    w.deliver("pull_request", "d-opened", fixtures::OPENED).await.unwrap();
    // The sample: this environment's stack ready, but no such stack is there any more.
    let sample = std::str::from_utf8(fixtures::STACK_STATUS).unwrap();
    assert_eq!(send(&w, sample).await, Recorded::Status(Status::Ready));
    let e = w.env(PR);
    assert_eq!((e.status, e.outputs.len(), e.preview_url), (Status::Ready, 0, None));
    assert!(e.stack_id.unwrap().ends_with("/7f3e2a10-c6a1-11f0-9b2e-0a1b2c3d4e5f"));

    // Nor from a newer stack of the same name: its outputs are not the event's stack's.
    let w = World::new();
    w.deliver("pull_request", "d-opened", fixtures::OPENED).await.unwrap();
    let newer = FakeStack::managed(PR, "CREATE_COMPLETE").with_outputs(&[("PreviewUrl", "https://newer")]);
    w.stacks.insert(name(PR).stack_name().as_str(), newer);
    assert_eq!(send(&w, sample).await, Recorded::Status(Status::Ready));
    let e = w.env(PR);
    assert_eq!((e.outputs.len(), e.preview_url), (0, None));
}

#[tokio::test]
async fn a_settled_status_seen_again_is_not_announced_again() {
    let w = World::new();
    let e = w.ready_pr().await;
    w.bus.take();
    let at = w.now() + chrono::Duration::seconds(60);
    assert_eq!(
        send(&w, &event(&e.stack_id.unwrap(), "UPDATE_COMPLETE", "", at)).await,
        Recorded::Status(Status::Ready)
    );
    assert!(w.bus.events().is_empty());
}

#[tokio::test]
async fn events_about_other_stacks_are_refused_for_good() {
    let w = World::new();
    let sample = std::str::from_utf8(fixtures::STACK_STATUS).unwrap();
    let foreign = sample.replace("stack/ephemera-pr-7-acme-todo-app-6acfdc9491", "stack/payments-prod");
    let err = w.stack_events().handle_message(&foreign).await.unwrap_err();
    assert!(matches!(err, MessageError::BadMessage(EnvelopeError::ForeignStack(_))) && !err.is_retryable());
    let other_source = sample.replace("aws.cloudformation", "aws.s3");
    assert!(matches!(w.stack_events().handle_message(&other_source).await, Err(MessageError::BadMessage(_))));
}

#[tokio::test]
async fn a_stack_in_a_deploy_account_is_recorded_ready_and_left_to_the_provisioner_to_read() {
    let w = World::new();
    let id = creating(&w).await;
    w.registry.edit(&name(PR), |e| e.account = Some("222222222222".into()));
    let at = w.now() + chrono::Duration::seconds(60);
    assert_eq!(send(&w, &event(&id, "CREATE_COMPLETE", "", at)).await, Recorded::Status(Status::Ready));
    // A stack of that name in the platform's account is not this one: its outputs are not read.
    assert!(w.env(PR).outputs.is_empty());
}
