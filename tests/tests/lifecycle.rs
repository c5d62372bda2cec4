//! The pull request lifecycle end to end: signed deliveries over HTTP, the bus, the work queue,
//! the provisioner and CloudFormation, all against the emulator.

use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::{edit, Platform};
use serde_json::json;

const STACK: &str = "ephemera-pr-7-acme-todo-app-6acfdc9491";

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opened_creates_a_tagged_stack_and_the_environment_becomes_ready() {
    let p = Platform::start().await;
    let (status, body) = p.deliver("pull_request", "d-open", OPENED).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["environment"], ENVIRONMENT);

    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!(env.commit.as_deref(), Some(HEAD_OPENED));
    assert_eq!(env.owner, "kyle-dev");
    assert!(env.stack_id.is_some());
    assert_eq!(env.outputs.get("Region").map(String::as_str), Some("us-east-1"));

    let (stack_status, tags) = p.stack(STACK).await.expect("stack exists");
    assert_eq!(stack_status, "CREATE_COMPLETE");
    for (k, v) in [
        ("ephemera:managed-by", "ephemera"),
        ("ephemera:environment", ENVIRONMENT),
        ("ephemera:kind", "pr"),
        ("ephemera:repository", "acme/todo-app"),
        ("ephemera:pull-request", "7"),
        ("ephemera:owner", "kyle-dev"),
        ("ephemera:commit", HEAD_OPENED),
        ("CostCenter", "platform"),
    ] {
        assert_eq!(tag(&tags, k), Some(v), "stack tag {k}");
    }
    let expires = tag(&tags, "ephemera:expires-at").expect("expiry tag");
    assert_eq!(expires, env.expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string());

    // The blueprint's resources carry the tags themselves (the emulator does not propagate
    // stack tags; AWS does for most types, and the platform does not rely on it).
    let table = env.outputs.get("TaskTableName").expect("table output");
    let arn =
        p.clients.dynamodb().describe_table().table_name(table).send().await.unwrap().table.unwrap().table_arn.unwrap();
    let table_tags = p.clients.dynamodb().list_tags_of_resource().resource_arn(arn).send().await.unwrap();
    let table_tags: Vec<(String, String)> =
        table_tags.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    assert_eq!(tag(&table_tags, "ephemera:environment"), Some(ENVIRONMENT));
    assert_eq!(tag(&table_tags, "ephemera:commit"), Some(HEAD_OPENED));
    assert_eq!(tag(&table_tags, "CostCenter"), Some("platform"));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronize_updates_the_stack_to_the_new_commit() {
    let p = Platform::start().await;
    p.deliver("pull_request", "d-open", OPENED).await;
    p.wait_for(ENVIRONMENT, Status::Ready).await;

    let (status, body) = p.deliver("pull_request", "d-sync", SYNCHRONIZE).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["generation"], 2);
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!(env.generation, 2);
    assert_eq!(env.commit.as_deref(), Some(HEAD_SYNCHRONIZED));
    let (stack_status, tags) = p.stack(STACK).await.expect("stack exists");
    assert_eq!(stack_status, "UPDATE_COMPLETE");
    assert_eq!(tag(&tags, "ephemera:commit"), Some(HEAD_SYNCHRONIZED));
    assert_eq!(p.live_stacks("ephemera-").await, vec![STACK.to_owned()]);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_deletes_the_stack_and_its_non_empty_bucket() {
    let p = Platform::start().await;
    p.deliver("pull_request", "d-open", OPENED).await;
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    let bucket = env.outputs.get("StorageBucketName").expect("bucket output").clone();
    // Something in the bucket, as an app under review would leave: CloudFormation alone
    // could not delete it.
    for key in ["uploads/a.png", "uploads/b.png"] {
        p.clients.s3().put_object().bucket(&bucket).key(key).body(b"x".to_vec().into()).send().await.unwrap();
    }

    let (status, body) = p.deliver("pull_request", "d-close", CLOSED).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["desired"], "down");
    let env = p.wait_for(ENVIRONMENT, Status::Deleted).await;
    assert!(env.preview_url.is_none());
    assert!(p.stack(STACK).await.is_none(), "stack deleted");
    let head = p.clients.s3().head_bucket().bucket(&bucket).send().await;
    assert!(head.is_err(), "bucket {bucket} deleted");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_refused_and_record_nothing() {
    let p = Platform::start().await;
    let forged = ephemera_tests::sign(b"not-the-secret", OPENED);
    for signature in [forged.as_str(), "sha256=", "", "sha1=0123"] {
        let (status, body) = p.deliver_signed("pull_request", "d-forged", OPENED, signature).await;
        assert_eq!(status, 401, "{signature:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_signature");
    }
    // A valid signature over a different body is no signature for this one.
    let other = ephemera_tests::sign(ephemera_tests::SECRET.as_bytes(), SYNCHRONIZE);
    assert_eq!(p.deliver_signed("pull_request", "d-swap", OPENED, &other).await.0, 401);
    assert_eq!(p.table_item_count().await, 0, "nothing recorded");
    assert!(p.live_stacks("ephemera-").await.is_empty());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_delivery_acts_once() {
    let p = Platform::start().await;
    let (s1, b1) = p.deliver("pull_request", "d-same", OPENED).await;
    assert_eq!((s1, b1["status"].as_str()), (202, Some("accepted")));
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    let (s2, b2) = p.deliver("pull_request", "d-same", OPENED).await;
    assert_eq!((s2, b2["status"].as_str()), (200, Some("duplicate")), "{b2}");
    // Even a redelivery of a later event under an id already seen changes nothing.
    let (s3, b3) = p.deliver("pull_request", "d-same", CLOSED).await;
    assert_eq!((s3, b3["status"].as_str()), (200, Some("duplicate")), "{b3}");
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!(env.generation, 1);
    assert_eq!(p.live_stacks("ephemera-").await.len(), 1);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_synchronize_after_close_never_resurrects_the_environment() {
    let p = Platform::start().await;
    p.deliver("pull_request", "d-open", OPENED).await;
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    p.deliver("pull_request", "d-close", CLOSED).await;
    p.wait_for(ENVIRONMENT, Status::Deleted).await;

    // GitHub delivered the push before the close, but it arrives after.
    let (status, body) = p.deliver("pull_request", "d-late-sync", SYNCHRONIZE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "stale");
    // Give a wrongly queued reconcile every chance to act.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let env = p.environment(ENVIRONMENT).await.unwrap();
    assert_eq!((env.status, env.generation), (Status::Deleted, 2));
    assert!(p.stack(STACK).await.is_none());

    // A genuine reopen (later than the close) does bring it back.
    let (status, _) = p.deliver("pull_request", "d-reopen", REOPENED).await;
    assert_eq!(status, 202);
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!(env.generation, 3);
    assert!(p.stack(STACK).await.is_some());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_deliveries_of_one_open_make_exactly_one_stack() {
    let p = Platform::start().await;
    let replies = futures_join(&p, 20).await;
    let accepted: Vec<_> = replies.iter().filter(|(s, b)| *s == 202 && b["status"] == "accepted").collect();
    let stale = replies.iter().filter(|(s, b)| *s == 200 && b["status"] == "stale").count();
    // DynamoDB transactions are serializable (tools/emulator.py gives moto the same guarantee):
    // the first is accepted, the other 19 find it recorded.
    assert_eq!((accepted.len(), stale), (1, 19), "{replies:?}");
    assert_eq!(accepted[0].1["generation"], 1);
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!(env.generation, 1);
    assert_eq!(p.live_stacks("ephemera-").await, vec![STACK.to_owned()]);
    p.stop().await;
}

async fn futures_join(p: &Platform, n: usize) -> Vec<(u16, serde_json::Value)> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (base, http) = (p.base_url.clone(), p.http.clone());
        set.spawn(async move {
            let res = http
                .post(format!("{base}/webhooks/github"))
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", format!("d-concurrent-{i}"))
                .header("x-hub-signature-256", ephemera_tests::sign(ephemera_tests::SECRET.as_bytes(), OPENED))
                .body(OPENED.to_vec())
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
        });
    }
    set.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_pull_requests_are_not_deployed_by_default() {
    let p = Platform::start().await;
    let (status, body) = p.deliver("pull_request", "d-fork", FORK_OPENED).await;
    assert_eq!(status, 202);
    assert_eq!(body["status"], "ignored");
    assert!(body["reason"].as_str().unwrap().contains("fork"), "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(p.table_item_count().await, 0);
    assert!(p.live_stacks("ephemera-").await.is_empty());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_other_events_and_bad_bodies() {
    let p = Platform::start().await;
    let (status, body) = p.deliver("ping", "d-ping", PING).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pong")));

    let (status, body) = p.deliver("pull_request", "d-label", LABELED).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("ignored")));
    assert!(body["reason"].as_str().unwrap().contains("labeled"));

    // A push, with no branch environments configured.
    let (status, body) = p.deliver("push", "d-push", PUSH_MAIN).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("ignored")), "{body}");
    // An event Ephemera does not act on.
    let (status, body) = p.deliver("issues", "d-issues", br#"{"action":"opened"}"#).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("ignored")));

    // Validly signed, but not JSON: a clear 400.
    let (status, body) = p.deliver("pull_request", "d-garbage", b"{\"action\": \"opened\",").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{body}");

    // JSON, but the pull request lacks what Ephemera needs.
    let broken = edit(OPENED, &[("pull_request.head", json!(null))]);
    assert_eq!(p.deliver("pull_request", "d-nohead", &broken).await.0, 400);

    // Over 2 MiB: 413 before anything else is looked at.
    let huge = vec![b' '; 2 * 1024 * 1024 + 1];
    let (status, body) = p.deliver("pull_request", "d-huge", &huge).await;
    assert_eq!(status, 413, "{body}");

    // Missing delivery id.
    let res = p
        .http
        .post(format!("{}/webhooks/github", p.base_url))
        .header("x-github-event", "pull_request")
        .header("x-hub-signature-256", ephemera_tests::sign(ephemera_tests::SECRET.as_bytes(), OPENED))
        .body(OPENED.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.headers().contains_key("x-request-id"));

    assert_eq!(p.table_item_count().await, 0, "nothing recorded by any of these");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commits_own_template_wins_then_the_repositorys_and_a_refused_template_fails_with_the_reason() {
    let p = Platform::start().await;
    let store = ephemera_aws::S3Store::new(p.clients.s3().clone());
    // The repository's blueprint is broken (it names a resource it does not declare): refused
    // before any stack call.
    let broken = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !GetAtt Missing.Arn\n";
    store.put_text(&p.config.shared.bucket, "blueprints/acme/todo-app.yaml", broken).await.unwrap();
    // The opened commit has its own template, published by the app's CI: it wins.
    let own = "Resources:\n  Jobs:\n    Type: AWS::SQS::Queue\n";
    store
        .put_text(&p.config.shared.bucket, &format!("artifacts/acme/todo-app/{HEAD_OPENED}/template.yaml"), own)
        .await
        .unwrap();

    p.deliver("pull_request", "d-open", OPENED).await;
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    let res = p.clients.cloudformation().list_stack_resources().stack_name(STACK).send().await.unwrap();
    let ids: Vec<&str> = res.stack_resource_summaries().iter().filter_map(|r| r.logical_resource_id()).collect();
    assert_eq!(ids, ["Jobs"], "built from the commit's own template");

    // The next commit has none: the repository's (broken) blueprint is used, and the failure
    // is recorded with the reason.
    p.deliver("pull_request", "d-sync", SYNCHRONIZE).await;
    let env = p.wait_for(ENVIRONMENT, Status::Failed).await;
    let reason = env.status_reason.unwrap_or_default();
    assert!(reason.contains("Missing"), "{reason}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_backend_is_seeded_with_items_its_resolvers_read() {
    let p = Platform::start().await;
    p.deliver("pull_request", "d-open", OPENED).await;
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    let ddb = p.clients.dynamodb();
    // Each seeded task is found by the key getTask asks for ({"id": {"S": id}}), and each
    // activity by listActivity's query (taskId = :taskId).
    for line in ephemera_local::DEFAULT_SEEDS[0].1.lines() {
        let task: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = task["id"].as_str().unwrap();
        let key = aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned());
        let got = ddb.get_item().table_name(&env.outputs["TaskTableName"]).key("id", key).send().await.unwrap();
        assert_eq!(got.item().unwrap()["title"].as_s().unwrap(), task["title"].as_str().unwrap());
    }
    let activity = ddb
        .query()
        .table_name(&env.outputs["ActivityTableName"])
        .key_condition_expression("#taskId = :taskId")
        .expression_attribute_names("#taskId", "taskId")
        .expression_attribute_values(":taskId", aws_sdk_dynamodb::types::AttributeValue::S("task-welcome".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(activity.count(), 2);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_environment_is_seeded_with_its_repositorys_fixtures() {
    let p = Platform::start().await;
    let store = ephemera_aws::S3Store::new(p.clients.s3().clone());
    let tasks: String = (1..=30)
        .map(|i| format!("{{\"id\":\"task-{i}\",\"title\":\"Synthetic task {i}\",\"done\":{}}}\n", i % 2 == 0))
        .collect();
    store.put_text(&p.config.shared.bucket, "seeds/acme/todo-app/Task.jsonl", &tasks).await.unwrap();
    // The repository's own seeds win over the defaults.
    store.put_text(&p.config.shared.bucket, "seeds/default/Task.jsonl", "{\"id\":\"default\"}\n").await.unwrap();

    p.deliver("pull_request", "d-open", OPENED).await;
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert!(env.status_reason.is_none(), "{env:?}");
    let table = env.outputs.get("TaskTableName").unwrap();
    let scan = p.clients.dynamodb().scan().table_name(table).send().await.unwrap();
    assert_eq!(scan.count(), 30, "two batches of up to 25");
    assert!(scan.items().iter().all(|i| i["id"].as_s().unwrap().starts_with("task-")));

    // A push updates the stack but does not seed again.
    p.deliver("pull_request", "d-sync", SYNCHRONIZE).await;
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!(p.clients.dynamodb().scan().table_name(table).send().await.unwrap().count(), 30);
    p.stop().await;
}
