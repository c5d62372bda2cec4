//! The repair of a stack whose deletion failed, run for real: the sweep deletes it again, sees
//! it fail, deletes it retaining what blocks it, then deletes each of those resources directly,
//! as the resource catalogue says.
//!
//! Where the emulator differs from AWS: it deletes whatever it is asked to, so it never reports
//! `DELETE_FAILED` by itself. The fault proxy plays that part (`FaultProxy::fail_deletes_of`):
//! the stack's deletions fail and every resource reads `DELETE_FAILED`, until a deletion that
//! retains them. The resources carry `DeletionPolicy: Retain`, which the emulator honours, so
//! that deletion really leaves them behind, as AWS does with the retained ones. (Its
//! CloudFormation cannot make secrets: the per-type tests cover those.)

use std::collections::BTreeSet;

use aws_sdk_cloudformation::types::Tag;
use ephemera_app::reaper::SweepOptions;
use ephemera_domain::catalogue::{Kind, LAMBDA_LOG_PREFIX};
use ephemera_domain::sweep::Reason;
use ephemera_tests::resources::{Named, Services};
use ephemera_tests::Platform;
use ephemera_wiring::platform;
use serde_json::json;

const STACK: &str = "ephemera-pr-5-acme-repair-0a1b2c3d4e";

fn template() -> String {
    let retained =
        |ty: &str, props: serde_json::Value| json!({"Type": ty, "DeletionPolicy": "Retain", "Properties": props});
    let name = |what: &str| json!({"Fn::Sub": format!("${{AWS::StackName}}-{what}")});
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let inline = json!([{"PolicyName": "own", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["Jobs", "Arn"]}}]}}]);
    json!({"Resources": {
        "Jobs": retained("AWS::SQS::Queue", json!({"QueueName": name("jobs")})),
        "Events": retained("AWS::SNS::Topic", json!({"TopicName": name("events")})),
        "Logs": retained("AWS::Logs::LogGroup", json!({"LogGroupName": name("logs")})),
        "Todo": retained("AWS::DynamoDB::Table", json!({"TableName": name("todo"), "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]})),
        "Files": retained("AWS::S3::Bucket", json!({"BucketName": name("files")})),
        "Worker": retained("AWS::IAM::Role", json!({"RoleName": name("worker"), "AssumeRolePolicyDocument": trust,
            "Policies": inline})),
        "Handler": retained("AWS::Lambda::Function", json!({"FunctionName": name("handler"), "Runtime": "python3.12",
            "Handler": "index.handler", "Role": {"Fn::GetAtt": ["Worker", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"}})),
    }})
    .to_string()
}

fn leftovers(all: Vec<Named>) -> BTreeSet<(Kind, String)> {
    all.into_iter().map(|n| (n.kind, n.name)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_whose_deletion_failed_is_deleted_and_what_blocked_it_removed_kind_by_kind() {
    let (p, proxy) = Platform::start_faulty(&[], 5).await;
    let tags = [("ephemera:managed-by", "ephemera"), ("ephemera:environment", "pr-5-acme-repair-0a1b2c3d4e")]
        .map(|(k, v)| Tag::builder().key(k).value(v).build());
    let cfn = p.clients.cloudformation();
    cfn.create_stack().stack_name(STACK).template_body(template()).set_tags(Some(tags.to_vec())).send().await.unwrap();
    let services = Services::new(p.clients.sdk());
    // Lambda's own log group for the function, made at its first invocation.
    services.make(Kind::LogGroup, &format!("{LAMBDA_LOG_PREFIX}{STACK}-handler"), None).await.unwrap();
    let before = leftovers(services.named(STACK).await.unwrap());
    assert_eq!(before.len(), 8, "{before:?}");

    // Its deletion fails.
    proxy.fail_deletes_of(STACK);
    let faulty = ephemera_wiring::Clients::new(&ephemera_aws::emulator_config(&proxy.endpoint, "us-east-1").await);
    faulty.cloudformation().delete_stack().stack_name(STACK).send().await.unwrap();
    assert!(proxy.delete_failed(STACK));

    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, platform::clock());
    let summary = reaper.sweep(SweepOptions { dry_run: false, light: true }).await.unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(summary.actions["repair_stack"][&Reason::DeleteFailed], 1, "{:?}", summary.planned);
    assert!(!proxy.delete_failed(STACK), "deleted again, retaining what blocked it");
    assert!(p.live_stacks(STACK).await.is_empty());
    let left = leftovers(services.named(STACK).await.unwrap());
    assert!(left.is_empty(), "every retained resource deleted directly: {left:?}");
}
