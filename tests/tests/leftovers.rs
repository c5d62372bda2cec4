//! An environment's stack is created again over what earlier stacks left behind.
//!
//! Before it creates a stack, the provisioner deletes the resources tagged and named for that
//! environment (no stack of the name exists, so they belong to none): otherwise they collide
//! with the new stack's resources of the same names. On AWS such leftovers come from a stack
//! deleted while retaining what blocked its deletion, or a delete that did not finish; the
//! creation would end in ROLLBACK_COMPLETE. Where the emulator differs from AWS: after an
//! UpdateStack, deleting the stack leaves its DynamoDB tables behind, and a CreateStack that then
//! collides with them fails outright and leaves a stack that breaks ListStacks. The second test
//! is that sequence (open, push, close, reopen) as the chaos run met it.

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Tag};
use ephemera_domain::catalogue::Kind;
use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::Platform;

async fn tagged_table(p: &Platform, name: &str, environment: &str) -> String {
    let created = p
        .clients
        .dynamodb()
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .tags(Tag::builder().key("ephemera:managed-by").value("ephemera").build().unwrap())
        .tags(Tag::builder().key("ephemera:environment").value(environment).build().unwrap())
        .send()
        .await
        .unwrap();
    created.table_description.unwrap().table_arn.unwrap()
}

async fn table_exists(p: &Platform, name: &str) -> bool {
    p.clients.dynamodb().describe_table().table_name(name).send().await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_is_created_over_its_predecessors_leftovers_and_nothing_else_is_touched() {
    let p = Platform::start().await;
    let stack = format!("ephemera-{ENVIRONMENT}");
    // Left by an earlier stack: the names the blueprint gives its tables.
    tagged_table(&p, &format!("{stack}-Task"), ENVIRONMENT).await;
    tagged_table(&p, &format!("{stack}-Activity"), ENVIRONMENT).await;
    // Tagged for the environment but not named for it: never deleted on a tag alone.
    tagged_table(&p, "customer-orders", ENVIRONMENT).await;

    let (status, body) = p.deliver("pull_request", "d-open", OPENED).await;
    assert_eq!(status, 202, "{body}");
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert!(env.status_reason.is_none(), "{env:?}");

    // The tables now there are the new stack's.
    let resources = p.clients.cloudformation().describe_stack_resources().stack_name(&stack).send().await.unwrap();
    let physical: Vec<String> =
        resources.stack_resources().iter().filter_map(|r| r.physical_resource_id().map(str::to_owned)).collect();
    assert!(physical.contains(&format!("{stack}-Task")), "{physical:?}");
    assert!(table_exists(&p, &format!("{stack}-Task")).await);
    assert!(table_exists(&p, "customer-orders").await, "a table not named for the environment is left alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_reopened_after_a_push_and_a_close_gets_its_environment_back() {
    let p = Platform::start().await;
    p.deliver("pull_request", "d-open", OPENED).await;
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    p.deliver("pull_request", "d-sync", SYNCHRONIZE).await;
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    p.deliver("pull_request", "d-close", CLOSED).await;
    p.wait_for(ENVIRONMENT, Status::Deleted).await;

    let (status, body) = p.deliver("pull_request", "d-reopen", REOPENED).await;
    assert_eq!(status, 202, "{body}");
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert!(env.status_reason.is_none(), "{env:?}");
    // The emulator's ListStacks still works (the reaper depends on it).
    p.clients.cloudformation().list_stacks().send().await.expect("stacks can be listed");
}

/// Every kind in the resource catalogue that an earlier stack left, tagged and named for the
/// environment, is deleted before the stack is created again (a later life lists them all):
/// in the platform's account, or in the sandbox account the environment lives in (`account`).
/// Each call is checked against the role it was made as when the platform is dropped: the
/// provisioner's, or the sandbox account's deploy role.
async fn a_reopened_environment_clears_every_kind_its_predecessor_left(account: Option<&str>) {
    let role = account.map(|a| format!("arn:aws:iam::{a}:role/ephemera-deploy"));
    let vars: Vec<(&str, &str)> = role.iter().map(|r| ("EPHEMERA_DEPLOY_ROLE_ARN", r.as_str())).collect();
    let p = Platform::start_with(&vars).await;
    let clients = match account {
        Some(a) => p.clients_in(a).await,
        None => p.clients.clone(),
    };
    p.deliver("pull_request", "d-open", OPENED).await;
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert_eq!(env.account.as_deref(), account);
    // What the app under review left in its bucket: emptied before the stack is deleted.
    let bucket = env.outputs.get("StorageBucketName").expect("bucket output");
    clients.s3().put_object().bucket(bucket).key("uploads/a.png").body(b"x".to_vec().into()).send().await.unwrap();
    p.deliver("pull_request", "d-close", CLOSED).await;
    p.wait_for(ENVIRONMENT, Status::Deleted).await;
    assert!(clients.s3().head_bucket().bucket(bucket).send().await.is_err(), "bucket {bucket} deleted");

    let services = ephemera_tests::resources::Services::new(clients.sdk());
    let name = |kind: Kind| format!("ephemera-{ENVIRONMENT}-{kind:?}-left").to_ascii_lowercase();
    let kinds: Vec<Kind> = ephemera_domain::catalogue::CATALOGUE.iter().map(|e| e.kind).collect();
    for kind in &kinds {
        services.make(*kind, &name(*kind), Some(ENVIRONMENT)).await.unwrap();
    }
    let (status, body) = p.deliver("pull_request", "d-reopen", REOPENED).await;
    assert_eq!(status, 202, "{body}");
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert!(env.status_reason.is_none(), "{env:?}");
    for kind in kinds {
        assert!(!services.exists(kind, &name(kind)).await.unwrap(), "{kind:?} left behind in {account:?}");
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_environment_clears_every_kind_its_predecessor_left_in_the_platforms_account() {
    a_reopened_environment_clears_every_kind_its_predecessor_left(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_environment_clears_every_kind_its_predecessor_left_in_a_sandbox_account() {
    a_reopened_environment_clears_every_kind_its_predecessor_left(Some("222222222222")).await;
}
