//! `template.yaml` expanded by the SAM translator (offline) and deployed into the emulator.
//!
//! Where the emulator differs from AWS: it skips the HTTP API (ApiGatewayV2) resources, so the
//! URL outputs keep their `${HttpApi}` placeholder there; it does not run the functions, so
//! their code objects are placeholders; and it ignores a table's TTL and a bucket's versioning
//! settings, which are checked in the expanded template instead. The rest is created for real.

use aws_sdk_cloudformation::types::{Capability, Parameter};
use ephemera_aws::emulator_config;
use ephemera_tests::iam::Actions;
use ephemera_tests::{init_logs, Emulator, REGION};
use ephemera_wiring::Clients;

const CODE_BUCKET: &str = "sam-code";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sam_template_deploys_into_the_emulator() {
    init_logs();
    let emulator = Emulator::start().unwrap();
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);

    let expanded = expand();
    assert!(expanded.get("Transform").is_none(), "fully expanded");

    // What `sam package` would have uploaded.
    clients.s3().create_bucket().bucket(CODE_BUCKET).send().await.unwrap();
    for (id, r) in expanded["Resources"].as_object().unwrap() {
        if r["Type"] == "AWS::Lambda::Function" {
            let body = b"placeholder: the emulator does not run functions".to_vec();
            clients
                .s3()
                .put_object()
                .bucket(CODE_BUCKET)
                .key(format!("{id}.zip"))
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    }
    let secret =
        clients.secretsmanager().create_secret().name("github-webhook").secret_string("s3cret").send().await.unwrap();

    clients
        .cloudformation()
        .create_stack()
        .stack_name("ephemera")
        .template_body(expanded.to_string())
        .parameters(
            Parameter::builder().parameter_key("WebhookSecretArn").parameter_value(secret.arn().unwrap()).build(),
        )
        // With a GitHub token, the notifier (and its rule on the bus) is part of the stack.
        .parameters(
            Parameter::builder().parameter_key("GitHubTokenSecretArn").parameter_value(secret.arn().unwrap()).build(),
        )
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .expect("create stack");
    let stack = clients.cloudformation().describe_stacks().stack_name("ephemera").send().await.unwrap();
    let stack = &stack.stacks()[0];
    assert_eq!(stack.stack_status().unwrap().as_str(), "CREATE_COMPLETE", "{:?}", stack.stack_status_reason());
    let output = |key: &str| {
        stack.outputs().iter().find(|o| o.output_key() == Some(key)).and_then(|o| o.output_value()).unwrap().to_owned()
    };

    // The registry table, with the key schema, index and TTL the code uses.
    let table = clients.dynamodb().describe_table().table_name(output("RegistryTable")).send().await.unwrap();
    let table = table.table().unwrap();
    let keys: Vec<&str> = table.key_schema().iter().map(|k| k.attribute_name()).collect();
    assert_eq!(keys, ["pk", "sk"]);
    assert_eq!(table.global_secondary_indexes()[0].index_name(), Some(ephemera_aws::registry::KIND_INDEX));
    // The emulator does not apply TimeToLiveSpecification from CloudFormation (AWS does), so
    // the template's own declaration is what is checked.
    let ttl = &expanded["Resources"]["Registry"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!((ttl["AttributeName"].as_str(), ttl["Enabled"].as_bool()), (Some("ttl"), Some(true)));

    // The bus, with the rules that feed the work queue and the notifier; CloudFormation's own
    // status events (default bus) go to the stack-events function and wake the provisioner.
    let bus = output("BusName");
    clients.eventbridge().describe_event_bus().name(&bus).send().await.expect("bus exists");
    let rules = clients.eventbridge().list_rules().event_bus_name(&bus).send().await.unwrap();
    let mut patterns: Vec<String> = rules.rules().iter().filter_map(|r| r.event_pattern().map(str::to_owned)).collect();
    patterns.sort();
    assert_eq!(patterns.len(), 2, "{patterns:?}");
    assert!(patterns.iter().any(|p| p.contains("Environment.Requested")), "{patterns:?}");
    assert!(patterns.iter().any(|p| p.contains("Environment.NotDeployed") && p.contains("Environment.Ready")));
    let default_rules = clients.eventbridge().list_rules().send().await.unwrap();
    let cfn: Vec<_> = default_rules
        .rules()
        .iter()
        .filter(|r| r.event_pattern().is_some_and(|p| p.contains("CloudFormation Stack Status Change")))
        .collect();
    assert_eq!(cfn.len(), 2, "stack-events function and work queue");

    // Both queues, the work queue redriving to the dead-letter queue.
    for key in ["WorkQueueUrl", "DeadLetterQueueUrl"] {
        let name = output(key).rsplit('/').next().unwrap().to_owned();
        clients.sqs().get_queue_url().queue_name(name).send().await.unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let work = output("WorkQueueUrl").rsplit('/').next().unwrap().to_owned();
    let work_url = clients.sqs().get_queue_url().queue_name(work).send().await.unwrap().queue_url.unwrap();
    let attrs = clients
        .sqs()
        .get_queue_attributes()
        .queue_url(work_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    assert!(attrs.attributes().unwrap().values().any(|v| v.contains("DeadLetterQueue")));

    // The artifacts bucket. The emulator does not apply VersioningConfiguration from
    // CloudFormation (AWS does), so versioning is checked in the template.
    clients.s3().head_bucket().bucket(output("ArtifactsBucketName")).send().await.expect("bucket exists");
    let props = &expanded["Resources"]["ArtifactsBucket"]["Properties"];
    assert_eq!(props["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"], true);
}

/// Statements on "*" for calls that name no resource, although their actions can: describing
/// every stack (DescribeStacks without a stack name, with ListStacks) is authorized on "*" only.
const LISTINGS: &[&str] = &["ListStacksInThisRegion"];

/// Every IAM statement in the template (expanded, so SAM's generated roles are included) names
/// its actions, with no wildcards, and no Allow statement grants on every resource but those
/// that can only be granted there.
#[test]
fn every_iam_statement_names_specific_actions_on_scoped_resources() {
    let expanded = expand();
    let data = Actions::load().unwrap();
    let mut statements = Vec::new();
    collect_statements(&expanded["Resources"], &mut statements);
    assert!(statements.len() > 15, "found the IAM statements ({})", statements.len());
    for st in statements {
        assert!(st.get("NotAction").is_none() && st.get("NotResource").is_none(), "{st}");
        let actions = as_list(&st["Action"]);
        assert!(!actions.is_empty(), "{st}");
        for a in actions {
            let a = a.as_str().unwrap_or_else(|| panic!("action is a string: {st}"));
            assert!(!a.contains('*'), "wildcard action {a:?} in {st}");
        }
        // An action that names no resource type (cfn-lint's data) can only be granted on "*",
        // as can a listing that names no resource.
        if st["Effect"] == "Allow" && st.get("Principal").is_none() {
            for r in as_list(&st["Resource"]) {
                let only_unscopable =
                    as_list(&st["Action"]).iter().all(|a| !data.is_scopable(a.as_str().unwrap_or("")));
                let listing = LISTINGS.iter().any(|sid| st["Sid"] == *sid);
                assert!(r != "*" || only_unscopable || listing, "Allow on every resource: {st}");
            }
        }
    }
}

fn as_list(v: &serde_json::Value) -> Vec<serde_json::Value> {
    match v {
        serde_json::Value::Array(a) => a.clone(),
        serde_json::Value::Null => vec![],
        other => vec![other.clone()],
    }
}

fn collect_statements(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                if k == "Statement" {
                    // A statement present only under a condition: its `Fn::If` branch.
                    let branch = |st: serde_json::Value| match st.get("Fn::If").and_then(|i| i.get(1)) {
                        Some(when) => when.clone(),
                        None => st,
                    };
                    out.extend(as_list(child).into_iter().map(branch));
                } else {
                    collect_statements(child, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|c| collect_statements(c, out)),
        _ => {}
    }
}

fn expand() -> serde_json::Value {
    ephemera_tests::policy::expand("template.yaml", CODE_BUCKET)
}

/// The webhook (which proves itself with GitHub's signature) is the only route without IAM
/// (SigV4) authorization; every self-service route requires it.
#[test]
fn self_service_routes_require_iam_and_only_the_webhook_is_open() {
    let expanded = expand();
    let paths = expanded["Resources"]["HttpApi"]["Properties"]["Body"]["paths"].as_object().unwrap().clone();
    let mut v1 = 0;
    for (path, ops) in &paths {
        for (method, op) in ops.as_object().unwrap() {
            let security = op["security"][0].as_object().unwrap().keys().next().unwrap().clone();
            if path == "/webhooks/github" {
                assert_eq!(security, "NONE", "{method} {path}");
            } else {
                assert_eq!(security, "AWS_IAM", "{method} {path}");
                v1 += path.starts_with("/v1/") as usize;
            }
        }
    }
    assert_eq!(v1, 3, "{paths:?}");
    // The dashboard is behind IAM too (checked above), and routed.
    assert!(paths.contains_key("/") && paths.contains_key("/api/environments"), "{paths:?}");
}

/// The role environment stacks are changed as, and the boundary on every role they create,
/// reach one environment: each Allow names the session's (or role's) `ephemera:environment` tag,
/// in its resources or in a tag condition, and no AppSync right reaches an API not tagged with it.
#[test]
fn environment_rights_reach_one_environment_by_its_tag() {
    let data = Actions::load().unwrap();
    let expanded = expand();
    let resources = &expanded["Resources"];
    let mut statements = Vec::new();
    for policy in resources["EnvironmentStackRole"]["Properties"]["ManagedPolicyArns"].as_array().unwrap() {
        let id = policy["Ref"].as_str().unwrap_or_else(|| panic!("a policy of the template: {policy}"));
        collect_statements(&resources[id]["Properties"]["PolicyDocument"], &mut statements);
    }
    collect_statements(&resources["EnvironmentRoleBoundary"]["Properties"]["PolicyDocument"], &mut statements);
    assert!(statements.len() > 20, "found the statements ({})", statements.len());
    const TAG: &str = "aws:PrincipalTag/ephemera:environment}";
    for st in &statements {
        assert_eq!(st["Effect"], "Allow", "{st}");
        let text = st.to_string();
        // AppSync names its log groups by API id; some actions name no resource at all.
        let unnamed = as_list(&st["Action"]).iter().all(|a| !data.is_scopable(a.as_str().unwrap_or("")));
        let unscopable = st["Sid"] == "GraphQLApiLogs" || unnamed;
        assert!(text.contains(TAG) || unscopable, "not scoped to the session's environment: {st}");
        let appsync = as_list(&st["Action"]).iter().any(|a| a.as_str().unwrap().starts_with("appsync:"));
        if appsync {
            let condition =
                st["Condition"]["StringEquals"].as_object().unwrap_or_else(|| panic!("no tag condition: {st}"));
            let tag_condition = condition.iter().any(|(k, v)| {
                (k == "aws:ResourceTag/ephemera:environment" || k == "aws:RequestTag/ephemera:environment")
                    && v.as_str().is_some_and(|v| v.ends_with(TAG))
            });
            assert!(tag_condition, "AppSync right without the environment's tag condition: {st}");
        }
    }
    // Only the platform's functions assume it, and only with an environment's session tag.
    let trust = resources["EnvironmentStackRole"]["Properties"]["AssumeRolePolicyDocument"].to_string();
    assert!(trust.contains("aws:RequestTag/ephemera:environment") && trust.contains("sts:TagSession"), "{trust}");
    assert!(!trust.contains("cloudformation.amazonaws.com"), "no service role: stacks are changed in the session");
    for function in ["ProvisionerFunction", "ReaperFunction"] {
        let vars = &resources[function]["Properties"]["Environment"]["Variables"];
        assert_eq!(vars["EPHEMERA_ENVIRONMENT_ROLE_ARN"]["Fn::GetAtt"][0], "EnvironmentStackRole", "{function}");
    }
}
