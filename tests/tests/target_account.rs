//! `infra/target-account.yaml` deployed into a sandbox account of the emulator: the deploy role
//! and the boundary are where the platform looks for them (the role's ARN the operator
//! configures, the boundary at [`Target::boundary_arn`]), and the role trusts only the
//! platform's functions, with the external id; sweeping only its reaper.
//!
//! Where the emulator differs from AWS: it does not evaluate trust or permission policies, so
//! their documents are checked as written.

use aws_sdk_cloudformation::types::{Capability, Parameter};
use ephemera_domain::placement::Target;
use ephemera_tests::{workspace_root, Platform};
use serde_json::json;

const SANDBOX: &str = "222222222222";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_makes_the_role_and_boundary_the_platform_uses() {
    let p = Platform::start().await;
    let sandbox = p.clients_in(SANDBOX).await;
    let body = std::fs::read_to_string(workspace_root().join("infra/target-account.yaml")).unwrap();
    let param = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
    sandbox
        .cloudformation()
        .create_stack()
        .stack_name("ephemera-target")
        .template_body(body)
        .parameters(param("PlatformAccountId", "123456789012"))
        .parameters(param("ExternalId", "ephemera-test-external-id"))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap();
    let stack = sandbox.cloudformation().describe_stacks().stack_name("ephemera-target").send().await.unwrap();
    let stack = &stack.stacks()[0];
    assert_eq!(stack.stack_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"), "{stack:?}");
    let output = |k: &str| {
        stack.outputs().iter().find(|o| o.output_key() == Some(k)).and_then(|o| o.output_value()).unwrap().to_owned()
    };

    let role_arn = output("DeployRoleArn");
    let target = Target::parse(&role_arn).unwrap();
    assert_eq!((target.account.as_str(), role_arn.ends_with(":role/ephemera-deploy")), (SANDBOX, true));
    assert_eq!(output("EnvironmentRoleBoundaryArn"), target.boundary_arn(), "where the provisioner puts roles under");

    let iam = aws_sdk_iam::Client::new(sandbox.sdk());
    let role = iam.get_role().role_name("ephemera-deploy").send().await.unwrap();
    let trust = role.role().unwrap().assume_role_policy_document().unwrap();
    // IAM returns the document URL-encoded.
    let decoded = form_urlencoded::parse(format!("d={trust}").as_bytes()).next().unwrap().1.into_owned();
    let trust: serde_json::Value = serde_json::from_str(trust).or_else(|_| serde_json::from_str(&decoded)).unwrap();
    let statements = trust["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    for s in statements {
        assert_eq!(s["Condition"]["StringEquals"]["sts:ExternalId"], "ephemera-test-external-id", "{s}");
        assert_eq!(s["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
    }
    let callers = statements[0]["Condition"]["ArnLike"]["aws:PrincipalArn"].as_array().unwrap();
    let named: Vec<&str> = callers.iter().map(|c| c.as_str().unwrap().rsplit('/').next().unwrap()).collect();
    assert_eq!(
        named,
        [
            "ephemera-ProvisionerFunctionRole-*",
            "ephemera-ReaperFunctionRole-*",
            "ephemera-SelfServiceFunctionRole-*",
            "ephemera-NotifierFunctionRole-*"
        ]
    );
    // Each kind of session carries its one tag and no other: an environment's is never a sweep.
    assert_eq!(statements[0]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"], json!(["ephemera:environment"]));
    assert_eq!(statements[1]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"], json!(["ephemera:sweep"]));
    let sweep = &statements[1]["Condition"];
    assert_eq!(sweep["StringEquals"]["aws:RequestTag/ephemera:sweep"], "true");
    assert!(sweep["ArnLike"]["aws:PrincipalArn"].as_str().unwrap().ends_with("/ephemera-ReaperFunctionRole-*"));
    p.stop().await;
}
