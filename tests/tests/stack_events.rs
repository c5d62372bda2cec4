//! CloudFormation "Stack Status Change" events, shaped like `events/eventbridge/`'s sample,
//! recorded on the registry in the order of their own time, whatever order they arrive in.
//!
//! The emulator does not send CloudFormation events itself (in AWS the default bus does): the
//! test delivers them to the stack-events function's handler as its EventBridge rule would.

use std::time::Duration;

use aws_sdk_eventbridge::types::Target;
use chrono::{DateTime, SecondsFormat, Utc};
use ephemera_app::stack_events::Recorded;
use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::Platform;
use ephemera_wiring::platform;

const SAMPLE: &[u8] = include_bytes!("../../events/eventbridge/stack-status-change.json");

fn event(stack_id: &str, status: &str, reason: &str, at: DateTime<Utc>) -> serde_json::Value {
    let mut e: serde_json::Value = serde_json::from_slice(SAMPLE).unwrap();
    e["detail"]["stack-id"] = stack_id.into();
    e["resources"] = serde_json::json!([stack_id]);
    e["detail"]["status-details"]["status"] = status.into();
    e["detail"]["status-details"]["status-reason"] = reason.into();
    e["time"] = at.to_rfc3339_opts(SecondsFormat::Secs, true).into();
    e
}

/// A queue receiving the platform's own terminal status events.
async fn capture(p: &Platform) -> String {
    let url = p.clients.sqs().create_queue().queue_name("capture").send().await.unwrap().queue_url.unwrap();
    let arn = "arn:aws:sqs:us-east-1:123456789012:capture".to_owned();
    let eb = &p.clients.eventbridge();
    let pattern = serde_json::json!({
        "source": ["ephemera"],
        "detail-type": ["Environment.Ready", "Environment.Failed", "Environment.Deleted"],
    });
    eb.put_rule()
        .name("capture")
        .event_bus_name(&p.config.shared.bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("capture")
        .event_bus_name(&p.config.shared.bus)
        .targets(Target::builder().id("q").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    url
}

async fn captured(p: &Platform, url: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let got = p.clients.sqs().receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let msgs = got.messages.unwrap_or_default();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            let v: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            out.push((
                v["detail-type"].as_str().unwrap().to_owned(),
                v["detail"]["status"].as_str().unwrap().to_owned(),
            ));
            p.clients
                .sqs()
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_follows_stack_events_in_their_own_order() {
    let p = Platform::start().await;
    let service = platform::stack_events(&p.config.shared, &p.functions.stack_events);
    assert_eq!(p.deliver("pull_request", "d-open", OPENED).await.0, 202);
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    let stack_id = env.stack_id.clone().expect("the provisioner recorded the stack id");
    let provisioner_at = env.status_at.expect("the provisioner stamps what it saw");
    let queue = capture(&p).await;
    let t0 = DateTime::from_timestamp_millis(provisioner_at).unwrap() + chrono::Duration::seconds(1);
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let send = |e: serde_json::Value| {
        let service = &service;
        async move { stack_events::handle(service, e).await.unwrap() }
    };

    // Out of order: the rollback (t0+3) arrives before the update it ended (t0+1, t0+2).
    assert_eq!(
        send(event(&stack_id, "UPDATE_IN_PROGRESS", "User Initiated", at(1))).await,
        Some(Recorded::Status(Status::Updating))
    );
    let rollback =
        event(&stack_id, "UPDATE_ROLLBACK_COMPLETE", "Resource handler returned message: bucket exists", at(3));
    assert_eq!(send(rollback.clone()).await, Some(Recorded::Status(Status::Failed)));
    assert_eq!(send(event(&stack_id, "UPDATE_COMPLETE", "", at(2))).await, Some(Recorded::Stale));
    assert_eq!(send(event(&stack_id, "UPDATE_IN_PROGRESS", "", at(1))).await, Some(Recorded::Stale));
    // The same event twice changes nothing the second time.
    assert_eq!(send(rollback).await, Some(Recorded::Stale));
    let env = p.environment(ENVIRONMENT).await.unwrap();
    assert_eq!(env.status, Status::Failed);
    assert_eq!(
        env.status_reason.as_deref(),
        Some("UPDATE_ROLLBACK_COMPLETE: Resource handler returned message: bucket exists")
    );
    assert_eq!(env.status_at, Some(rollback_ms(at(3), 7)));

    // Within one second, complete follows in-progress whichever arrives first.
    assert_eq!(send(event(&stack_id, "UPDATE_COMPLETE", "", at(5))).await, Some(Recorded::Status(Status::Ready)));
    assert_eq!(send(event(&stack_id, "UPDATE_IN_PROGRESS", "", at(5))).await, Some(Recorded::Stale));
    let env = p.environment(ENVIRONMENT).await.unwrap();
    assert_eq!(env.status, Status::Ready);
    // Outputs are read from the stack. (The emulator skips AppSync resources, so there is no
    // GraphQLApiArn output and no preview URL here; in AWS the URL is derived from it.)
    assert!(env.outputs.contains_key("TaskTableName"), "{:?}", env.outputs);

    // An event about an earlier stack of the same name (another stack id) is not about this one.
    let old = stack_id.rsplit_once('/').map(|(a, _)| format!("{a}/00000000-0000-0000-0000-000000000000")).unwrap();
    assert_eq!(send(event(&old, "DELETE_COMPLETE", "", at(9))).await, Some(Recorded::Stale));
    // Not one of ours: dropped, not retried.
    let foreign =
        event(&stack_id, "DELETE_COMPLETE", "", at(9)).to_string().replace("stack/ephemera-", "stack/payments-");
    assert_eq!(stack_events::handle(&service, serde_json::from_str(&foreign).unwrap()).await.unwrap(), None);
    // Rollbacks under way are not outcomes yet.
    assert_eq!(send(event(&stack_id, "UPDATE_ROLLBACK_IN_PROGRESS", "", at(6))).await, Some(Recorded::Uninformative));

    // The provisioner's own look wins over older news, and older news does not undo it.
    let closed = p.deliver("pull_request", "d-close", CLOSED).await;
    assert_eq!(closed.0, 202);
    let env = p.wait_for(ENVIRONMENT, Status::Deleted).await;
    let seen = env.status_at.unwrap();
    let late = DateTime::from_timestamp_millis(seen).unwrap() - chrono::Duration::seconds(30);
    assert_eq!(send(event(&stack_id, "CREATE_COMPLETE", "", late)).await, Some(Recorded::Stale));
    assert_eq!(p.environment(ENVIRONMENT).await.unwrap().status, Status::Deleted);

    // What was recorded was announced: Failed, then Ready (from the events), then Deleted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let announced = captured(&p, &queue).await;
    let from_events: Vec<&str> = announced.iter().map(|(t, _)| t.as_str()).collect();
    assert!(from_events.starts_with(&["Environment.Failed", "Environment.Ready"]), "announced: {announced:?}");
    assert_eq!(from_events.last(), Some(&"Environment.Deleted"), "announced: {announced:?}");
    p.stop().await;
}

/// The ms stamp of an event at `t` in stage `stage` (see `StackStatusEvent::at_ms`).
fn rollback_ms(t: DateTime<Utc>, stage: i64) -> i64 {
    t.timestamp() * 1000 + stage * 100
}
