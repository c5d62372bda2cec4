//! The check that every call a function makes is allowed by its role (see
//! `tests/src/least_privilege.rs`; every platform a test starts is checked when dropped), shown
//! to catch what it is for on copies of the expanded template: a statement removed, a resource
//! narrowed, an explicit Deny added.

use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::least_privilege::{principals, roles, ENVIRONMENT_ROLE};
use ephemera_tests::policy::{self, Call, Verdict};
use ephemera_tests::Platform;
use serde_json::{json, Value};

/// The statements of `role`'s inline policies in `template`.
fn statements<'a>(template: &'a mut Value, role: &str) -> &'a mut Vec<Value> {
    template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("{role} has an inline policy"))
}

fn verdict_on(p: &Platform, template: &Value, calls: &[Call]) -> Verdict {
    let roles = roles(&p.config, template).unwrap();
    policy::check(calls, &roles, &principals(&p.config))
}

fn denials(verdict: &Verdict) -> Vec<String> {
    verdict.denied.iter().map(ToString::to_string).collect()
}

/// A pull request's environment made, updated and removed, as the environment's role.
async fn a_lifecycle() -> (Platform, Vec<Call>) {
    let p = Platform::start_with(&[("EPHEMERA_ENVIRONMENT_ROLE_ARN", ENVIRONMENT_ROLE)]).await;
    for (event, delivery, body, status) in [
        ("pull_request", "d-open", OPENED, Status::Ready),
        ("pull_request", "d-push", SYNCHRONIZE, Status::Ready),
        ("pull_request", "d-close", CLOSED, Status::Deleted),
    ] {
        let (code, answer) = p.deliver(event, delivery, body).await;
        assert_eq!(code, 202, "{answer}");
        p.wait_for_status(ENVIRONMENT, status).await;
    }
    let calls = policy::calls(&p.emulator.calls).unwrap();
    (p, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_allows_a_lifecycle_and_a_copy_without_a_needed_statement_does_not() {
    let (p, calls) = a_lifecycle().await;
    let template = policy::expanded_template().clone();
    let verdict = verdict_on(&p, &template, &calls);
    assert_eq!(denials(&verdict), Vec::<String>::new());
    for role in ["WebhookFunctionRole", "ProvisionerFunctionRole", "EnvironmentStackRole"] {
        assert!(verdict.exercised.contains_key(role), "{role} made calls: {:?}", verdict.exercised.keys());
    }

    // The webhook's registry rights removed: its writes to the registry are denied.
    let mut copy = template.clone();
    statements(&mut copy, "WebhookFunctionRole").retain(|s| s["Sid"] != "Registry");
    let denied = denials(&verdict_on(&p, &copy, &calls));
    let registry = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{}", p.config.shared.table);
    assert!(
        denied.iter().any(|d| d.starts_with("WebhookFunctionRole: ")
            && d.contains(&format!("dynamodb:PutItem on {registry} (no statement allows it)"))),
        "{denied:#?}"
    );
    assert!(denied.iter().all(|d| d.starts_with("WebhookFunctionRole: ")), "{denied:#?}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_resource_and_an_explicit_deny_are_caught() {
    let (p, calls) = a_lifecycle().await;
    let template = policy::expanded_template().clone();

    // The provisioner's blueprint reads held to another folder: the blueprint read is denied.
    let mut narrowed = template.clone();
    for s in
        statements(&mut narrowed, "ProvisionerFunctionRole").iter_mut().filter(|s| s["Sid"] == "ReadBlueprintsAndSeeds")
    {
        s["Resource"] = json!({"Fn::Sub": "${ArtifactsBucket.Arn}/elsewhere/*"});
    }
    let denied = denials(&verdict_on(&p, &narrowed, &calls));
    let blueprint = format!("s3:GetObject on arn:aws:s3:::{}/blueprints/", p.config.shared.bucket);
    assert!(denied.iter().any(|d| d.starts_with("ProvisionerFunctionRole: ") && d.contains(&blueprint)), "{denied:#?}");

    // An explicit Deny on the bus wins over the Allow.
    let mut deny = template.clone();
    statements(&mut deny, "WebhookFunctionRole").push(json!({
        "Sid": "NoAnnouncing", "Effect": "Deny", "Action": "events:PutEvents", "Resource": "*"
    }));
    let denied = denials(&verdict_on(&p, &deny, &calls));
    assert!(
        denied.iter().any(|d| d.starts_with("WebhookFunctionRole: PutEvents needs events:PutEvents")
            && d.ends_with("(denied by WebhookFunctionRolePolicy0/NoAnnouncing)")),
        "{denied:#?}"
    );

    // The environment's role without the stack rights: CreateStack, as the environment, denied.
    let mut stackless = template.clone();
    stackless["Resources"]["EnvironmentStackRole"]["Properties"]["ManagedPolicyArns"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["Ref"] != "EnvironmentStackPolicy");
    let denied = denials(&verdict_on(&p, &stackless, &calls));
    assert!(
        denied.iter().any(|d| d.starts_with("EnvironmentStackRole: CreateStack needs cloudformation:CreateStack")),
        "{denied:#?}"
    );
    p.stop().await;
}

/// The reaper deletes an orphan environment stack as that environment: its role lets it assume
/// the environment's, and the environment's lets it delete the stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_an_orphan_stack_as_its_environment() {
    let p = Platform::start_with(&[("EPHEMERA_ENVIRONMENT_ROLE_ARN", ENVIRONMENT_ROLE)]).await;
    let orphan = "ephemera-pr-99-acme-orphan-0a1b2c3d4e";
    let tags = [("ephemera:managed-by", "ephemera"), ("ephemera:environment", "pr-99-acme-orphan-0a1b2c3d4e")]
        .map(|(k, v)| aws_sdk_cloudformation::types::Tag::builder().key(k).value(v).build());
    let create = p.clients.cloudformation().create_stack().stack_name(orphan).set_tags(Some(tags.to_vec()));
    create.template_body(r#"{"Resources":{"Q":{"Type":"AWS::SQS::Queue"}}}"#).send().await.unwrap();

    let reaper = ephemera_wiring::platform::reaper(
        &p.config.shared,
        &p.config.reaper,
        &p.functions.reaper,
        ephemera_wiring::platform::clock(),
    );
    let summary = reaper.sweep(ephemera_app::reaper::SweepOptions::default()).await.unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(p.live_stacks("ephemera-pr-99").await, Vec::<String>::new());
    let calls = policy::calls(&p.emulator.calls).unwrap();
    let reaper_key = ephemera_tests::least_privilege::KEYS[4].0;
    let assumed = calls
        .iter()
        .any(|c| c.key == reaper_key && c.checks.contains(&("sts:AssumeRole".into(), ENVIRONMENT_ROLE.into())));
    let deleted = calls.iter().any(|c| c.operation == "DeleteStack" && c.role.as_deref() == Some(ENVIRONMENT_ROLE));
    assert!(assumed && deleted, "deleted as the environment: {calls:#?}");
    // Dropping the platform checks every call against the roles.
    p.stop().await;
}
