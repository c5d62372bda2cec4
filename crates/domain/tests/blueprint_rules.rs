//! Each blueprint rule: a template that escapes its environment is refused with the expected
//! message, and its conforming twin passes.

use ephemera_domain::blueprint::{check, Policy, Report, Rule};
use serde_json::Value as Json;

/// Templates in long-form YAML (`Fn::Sub:`), read as JSON.
fn template(yaml: &str) -> Json {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn run(yaml: &str) -> Report {
    check(&template(yaml), &Policy::default())
}

fn resources(body: &str) -> String {
    format!("Resources:\n{body}")
}

const ROLE: &str = "  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: { Service: appsync.amazonaws.com }
            Action: sts:AssumeRole
";

const TABLE: &str = "  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: { 'Fn::Sub': '${AWS::StackName}-Table' }
";

const API: &str = "  Api:
    Type: AWS::AppSync::GraphQLApi
    Properties:
      Name: { 'Fn::Sub': '${AWS::StackName}-api' }
      AuthenticationType: API_KEY
";

/// (what, escaping template, rule, words in the message, conforming template)
fn cases() -> Vec<(&'static str, String, Rule, &'static str, String)> {
    vec![
        (
            "a type outside the allow-list",
            resources("  Vpc:\n    Type: AWS::EC2::VPC\n"),
            Rule::ResourceType,
            "Vpc (AWS::EC2::VPC): resource type: AWS::EC2::VPC is not one the platform can tag, price and clean up",
            resources("  Q:\n    Type: AWS::SQS::Queue\n"),
        ),
        (
            "a custom resource",
            resources("  Hook:\n    Type: Custom::Anything\n    Properties: { ServiceToken: x }\n"),
            Rule::ResourceType,
            "custom resources run code",
            resources("  Q:\n    Type: AWS::SQS::Queue\n"),
        ),
        (
            "a nested stack",
            resources("  Inner:\n    Type: AWS::CloudFormation::Stack\n    Properties: { TemplateURL: https://x }\n"),
            Rule::ResourceType,
            "the expanded form is accepted",
            resources("  Q:\n    Type: AWS::SQS::Queue\n"),
        ),
        (
            "a transform",
            format!("Transform: AWS::Serverless-2016-10-31\n{}", resources("  Q:\n    Type: AWS::SQS::Queue\n")),
            Rule::Macro,
            "its expanded form is accepted",
            resources("  Q:\n    Type: AWS::SQS::Queue\n"),
        ),
        (
            "an IAM user",
            resources("  U:\n    Type: AWS::IAM::User\n"),
            Rule::IamIdentity,
            "U (AWS::IAM::User): no IAM users, groups or access keys",
            resources(ROLE),
        ),
        (
            "a role trusted by another account",
            resources(&ROLE.replace("{ Service: appsync.amazonaws.com }", "{ AWS: 'arn:aws:iam::999999999999:root' }")),
            Rule::Trust,
            "Role (AWS::IAM::Role): trust: the role trusts AWS \"arn:aws:iam::999999999999:root\"",
            resources(ROLE),
        ),
        (
            "a role trusted by everyone",
            resources(&ROLE.replace("{ Service: appsync.amazonaws.com }", "'*'")),
            Rule::Trust,
            "only services may assume",
            resources(ROLE),
        ),
        (
            "a role trusted by a service not on the list",
            resources(&ROLE.replace("appsync.amazonaws.com", "ec2.amazonaws.com")),
            Rule::Trust,
            "trusts Service \"ec2.amazonaws.com\"",
            resources(&ROLE.replace("appsync.amazonaws.com", "{ 'Fn::Sub': 'lambda.${AWS::URLSuffix}' }")),
        ),
        (
            "a role for any identity pool",
            resources(&format!("{}{IDENTITY_POOL}", ROLE.replace("{ Service: appsync.amazonaws.com }", "{ Federated: cognito-identity.amazonaws.com }"))),
            Rule::Trust,
            "needs Condition StringEquals cognito-identity.amazonaws.com:aud",
            resources(&format!(
                "{}{IDENTITY_POOL}",
                ROLE.replace(
                    "            Action: sts:AssumeRole\n",
                    "            Action: sts:AssumeRoleWithWebIdentity\n            Condition:\n              StringEquals: { 'cognito-identity.amazonaws.com:aud': { Ref: Pool } }\n"
                )
                .replace("{ Service: appsync.amazonaws.com }", "{ Federated: cognito-identity.amazonaws.com }")
            )),
        ),
        (
            "a policy attached to a role outside the template",
            resources(&format!("{ROLE}{}", policy("Roles: [production-admin]", "{ 'Fn::GetAtt': [Table, Arn] }"))),
            Rule::Attachment,
            "Attach (AWS::IAM::Policy): policy attachment: attaches to role \"production-admin\", which is not in this template",
            resources(&format!("{ROLE}{TABLE}{}", policy("Roles: [{ Ref: Role }]", "{ 'Fn::GetAtt': [Table, Arn] }"))),
        ),
        (
            "a policy attached to a user",
            resources(&format!("{ROLE}{TABLE}{}", policy("Users: [someone]", "{ 'Fn::GetAtt': [Table, Arn] }"))),
            Rule::IamIdentity,
            "remove Users",
            resources(&format!("{ROLE}{TABLE}{}", policy("Roles: [{ Ref: Role }]", "{ 'Fn::GetAtt': [Table, Arn] }"))),
        ),
        (
            "a managed policy from outside the allow-list",
            resources(&ROLE.replace("      AssumeRolePolicyDocument:", "      ManagedPolicyArns: ['arn:aws:iam::aws:policy/AdministratorAccess']\n      AssumeRolePolicyDocument:")),
            Rule::ManagedPolicy,
            "\"arn:aws:iam::aws:policy/AdministratorAccess\" is not allowed",
            resources(&ROLE.replace(
                "      AssumeRolePolicyDocument:",
                "      ManagedPolicyArns: [{ 'Fn::Sub': 'arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole' }]\n      AssumeRolePolicyDocument:",
            )),
        ),
        (
            "a policy granting another environment's table",
            resources(&format!(
                "{ROLE}{TABLE}{}",
                policy("Roles: [{ Ref: Role }]", "{ 'Fn::Sub': 'arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/ephemera-pr-8-acme-other-0a1b2c3d4e-Task' }")
            )),
            Rule::Reference,
            "statement #1: Resource points at \"arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/ephemera-pr-8-acme-other-0a1b2c3d4e-Task\"",
            resources(&format!(
                "{ROLE}{TABLE}{}",
                policy("Roles: [{ Ref: Role }]", "{ 'Fn::Sub': 'arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AWS::StackName}-Table' }")
            )),
        ),
        (
            "a policy granting every table",
            resources(&format!("{ROLE}{}", policy("Roles: [{ Ref: Role }]", "{ 'Fn::Sub': 'arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*' }"))),
            Rule::WildcardResource,
            "reaches beyond this environment",
            resources(&format!("{ROLE}{TABLE}{}", policy("Roles: [{ Ref: Role }]", "{ 'Fn::Sub': '${Table.Arn}/index/*' }"))),
        ),
        (
            "a wildcard right after the stack's name",
            resources(&format!("{ROLE}{}", policy("Roles: [{ Ref: Role }]", "{ 'Fn::Sub': 'arn:aws:s3:::${AWS::StackName}*' }"))),
            Rule::Reference,
            "nothing may follow the stack's name but a separator",
            resources(&format!("{ROLE}{}", policy("Roles: [{ Ref: Role }]", "{ 'Fn::Sub': 'arn:aws:s3:::${AWS::StackName}-files/*' }"))),
        ),
        (
            "Resource \"*\" for actions that have resource-level permissions",
            resources(&format!("{ROLE}{}", policy("Roles: [{ Ref: Role }]", "'*'"))),
            Rule::WildcardResource,
            "statement #1: Resource \"*\" reaches beyond this environment",
            resources(&format!("{ROLE}{}", policy("Roles: [{ Ref: Role }]", "'*'").replace("dynamodb:GetItem", "xray:PutTraceSegments"))),
        ),
        (
            "an API key on an API outside the template",
            resources("  Key:\n    Type: AWS::AppSync::ApiKey\n    Properties:\n      ApiId: abcdefghijklmnopqrstuvwxyz\n"),
            Rule::Reference,
            "Key (AWS::AppSync::ApiKey): reference outside the environment: ApiId points at \"abcdefghijklmnopqrstuvwxyz\", not at this environment",
            resources(&format!("{API}  Key:\n    Type: AWS::AppSync::ApiKey\n    Properties:\n      ApiId: {{ 'Fn::GetAtt': [Api, ApiId] }}\n")),
        ),
        (
            "a resolver on an imported API",
            resources("  R:\n    Type: AWS::AppSync::Resolver\n    Properties:\n      ApiId: { 'Fn::ImportValue': prod-api }\n      TypeName: Query\n      FieldName: x\n"),
            Rule::Reference,
            "a value imported from another stack",
            resources(&format!("{API}  R:\n    Type: AWS::AppSync::Resolver\n    Properties:\n      ApiId: {{ 'Fn::GetAtt': [Api, ApiId] }}\n      TypeName: Query\n      FieldName: x\n")),
        ),
        (
            "a bucket policy on another environment's bucket",
            resources("  BP:\n    Type: AWS::S3::BucketPolicy\n    Properties:\n      Bucket: ephemera-pr-8-acme-other-0a1b2c3d4e-files\n      PolicyDocument: { Statement: [] }\n"),
            Rule::Reference,
            "Bucket points at \"ephemera-pr-8-acme-other-0a1b2c3d4e-files\"",
            resources("  B:\n    Type: AWS::S3::Bucket\n  BP:\n    Type: AWS::S3::BucketPolicy\n    Properties:\n      Bucket: { Ref: B }\n      PolicyDocument: { Statement: [] }\n"),
        ),
        (
            "a public bucket policy",
            resources("  B:\n    Type: AWS::S3::Bucket\n  BP:\n    Type: AWS::S3::BucketPolicy\n    Properties:\n      Bucket: { Ref: B }\n      PolicyDocument:\n        Statement:\n          - { Effect: Allow, Principal: '*', Action: 's3:GetObject', Resource: { 'Fn::Sub': '${B.Arn}/*' } }\n"),
            Rule::Trust,
            "grants everyone \"*\" access",
            resources(&format!("{ROLE}  B:\n    Type: AWS::S3::Bucket\n  BP:\n    Type: AWS::S3::BucketPolicy\n    Properties:\n      Bucket: {{ Ref: B }}\n      PolicyDocument:\n        Statement:\n          - {{ Effect: Allow, Principal: {{ AWS: {{ 'Fn::GetAtt': [Role, Arn] }} }}, Action: 's3:GetObject', Resource: {{ 'Fn::Sub': '${{B.Arn}}/*' }} }}\n")),
        ),
        (
            "a function whose role is outside the template",
            resources("  F:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: arn:aws:iam::123456789012:role/production\n      Runtime: provided.al2023\n      Handler: x\n"),
            Rule::Reference,
            "Role points at account 123456789012",
            resources(&format!("{ROLE}  F:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: {{ 'Fn::GetAtt': [Role, Arn] }}\n      Runtime: provided.al2023\n      Handler: x\n")),
        ),
        (
            "a name from a parameter's default",
            "Parameters:\n  Target: { Type: String, Default: prod-table }\nResources:\n  DS:\n    Type: AWS::AppSync::DataSource\n    Properties:\n      ApiId: x\n      Name: T\n      Type: AMAZON_DYNAMODB\n      DynamoDBConfig: { TableName: { Ref: Target }, AwsRegion: us-east-1 }\n".into(),
            Rule::Reference,
            "TableName points at parameter Target, whose value the template's author chooses",
            resources(&format!("{API}{TABLE}  DS:\n    Type: AWS::AppSync::DataSource\n    Properties:\n      ApiId: {{ 'Fn::GetAtt': [Api, ApiId] }}\n      Name: T\n      Type: AMAZON_DYNAMODB\n      DynamoDBConfig: {{ TableName: {{ Ref: Table }}, AwsRegion: us-east-1 }}\n")),
        ),
        (
            "a literal physical name",
            resources("  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: users\n"),
            Rule::PhysicalName,
            "T (AWS::DynamoDB::Table): physical name: TableName \"users\" must start with the stack's name",
            resources(TABLE),
        ),
        (
            "a name that squats another environment's",
            resources("  T:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: { 'Fn::Sub': 'ephemera-pr-8-acme-other-0a1b2c3d4e-${AWS::StackName}' }\n"),
            Rule::PhysicalName,
            "must start with the stack's name",
            resources("  T:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: { 'Fn::Join': ['-', [{ Ref: 'AWS::StackName' }, jobs]] }\n"),
        ),
        (
            "a literal preview host",
            format!("{}Outputs:\n  PreviewUrl: {{ Value: 'https://attacker.example/?key=da2-xyz' }}\n", resources(API)),
            Rule::PreviewUrl,
            "PreviewUrl (Output): preview URL: \"https://attacker.example/?key=da2-xyz\" must come from a resource of this stack",
            format!("{}Outputs:\n  PreviewUrl: {{ Value: {{ 'Fn::GetAtt': [Api, GraphQLUrl] }} }}\n", resources(API)),
        ),
        (
            "a preview URL that names its own API only in the path",
            format!("{}Outputs:\n  PreviewUrl: {{ Value: {{ 'Fn::Sub': 'https://attacker.example/${{Api.ApiId}}' }} }}\n", resources(API)),
            Rule::PreviewUrl,
            "never a literal host",
            format!("{}Outputs:\n  PreviewUrl: {{ Value: {{ 'Fn::Sub': 'https://${{Api.ApiId}}.appsync-api.${{AWS::Region}}.amazonaws.com/graphql' }} }}\n", resources(API)),
        ),
        (
            "a table output naming another environment's table",
            format!("{}Outputs:\n  TaskTableName: {{ Value: ephemera-pr-8-acme-other-0a1b2c3d4e-Task }}\n", resources(TABLE)),
            Rule::Output,
            "TaskTableName (Output): output: \"ephemera-pr-8-acme-other-0a1b2c3d4e-Task\" is not a resource of this stack",
            format!("{}Outputs:\n  TaskTableName: {{ Value: {{ Ref: Table }} }}\n", resources(TABLE)),
        ),
        (
            "a subscription delivering to another account's queue",
            resources("  Topic:\n    Type: AWS::SNS::Topic\n  Sub:\n    Type: AWS::SNS::Subscription\n    Properties:\n      TopicArn: { Ref: Topic }\n      Protocol: sqs\n      Endpoint: arn:aws:sqs:us-east-1:999999999999:exfil\n"),
            Rule::Reference,
            "Endpoint points at account 999999999999",
            resources("  Topic:\n    Type: AWS::SNS::Topic\n  Q:\n    Type: AWS::SQS::Queue\n  Sub:\n    Type: AWS::SNS::Subscription\n    Properties:\n      TopicArn: { Ref: Topic }\n      Protocol: sqs\n      Endpoint: { 'Fn::GetAtt': [Q, Arn] }\n"),
        ),
        (
            "a function anyone may invoke",
            resources("  F:\n    Type: AWS::Lambda::Function\n  P:\n    Type: AWS::Lambda::Permission\n    Properties:\n      FunctionName: { Ref: F }\n      Action: lambda:InvokeFunction\n      Principal: '999999999999'\n"),
            Rule::Trust,
            "lets \"999999999999\" invoke the function",
            resources(&format!("{API}  F:\n    Type: AWS::Lambda::Function\n  P:\n    Type: AWS::Lambda::Permission\n    Properties:\n      FunctionName: {{ Ref: F }}\n      Action: lambda:InvokeFunction\n      Principal: appsync.amazonaws.com\n      SourceArn: {{ Ref: Api }}\n")),
        ),
        (
            "a function any account's service may invoke",
            resources("  F:\n    Type: AWS::Lambda::Function\n  P:\n    Type: AWS::Lambda::Permission\n    Properties:\n      FunctionName: { Ref: F }\n      Action: lambda:InvokeFunction\n      Principal: sns.amazonaws.com\n"),
            Rule::Trust,
            "from any account; add SourceArn",
            resources("  F:\n    Type: AWS::Lambda::Function\n  T:\n    Type: AWS::SNS::Topic\n  P:\n    Type: AWS::Lambda::Permission\n    Properties:\n      FunctionName: { Ref: F }\n      Action: lambda:InvokeFunction\n      Principal: sns.amazonaws.com\n      SourceArn: { Ref: T }\n"),
        ),
        (
            "a topic delivering to another account's function",
            resources("  T:\n    Type: AWS::SNS::Topic\n    Properties:\n      Subscription: [{ Protocol: lambda, Endpoint: 'arn:aws:lambda:us-east-1:999999999999:function:collect' }]\n"),
            Rule::Reference,
            "Endpoint points at account 999999999999",
            resources("  F:\n    Type: AWS::Lambda::Function\n  T:\n    Type: AWS::SNS::Topic\n    Properties:\n      Subscription: [{ Protocol: lambda, Endpoint: { 'Fn::GetAtt': [F, Arn] } }, { Protocol: https, Endpoint: 'https://hooks.example.com/x' }]\n"),
        ),
        (
            "a user pool trigger in another account",
            resources("  Pool:\n    Type: AWS::Cognito::UserPool\n    Properties:\n      LambdaConfig: { PreSignUp: 'arn:aws:lambda:us-east-1:999999999999:function:steal' }\n"),
            Rule::Reference,
            "PreSignUp points at account 999999999999",
            resources("  F:\n    Type: AWS::Lambda::Function\n  Pool:\n    Type: AWS::Cognito::UserPool\n    Properties:\n      LambdaConfig:\n        PreSignUp: { 'Fn::GetAtt': [F, Arn] }\n        CustomSMSSender: { LambdaArn: { 'Fn::GetAtt': [F, Arn] }, LambdaVersion: V1_0 }\n"),
        ),
        (
            "an identity pool mapping a rule to another account's role",
            resources(&format!("{IDENTITY_POOL}  Map:\n    Type: AWS::Cognito::IdentityPoolRoleAttachment\n    Properties:\n      IdentityPoolId: {{ Ref: Pool }}\n      RoleMappings:\n        idp: {{ Type: Rules, AmbiguousRoleResolution: Deny, RulesConfiguration: {{ Rules: [{{ Claim: group, MatchType: Equals, Value: admin, RoleARN: 'arn:aws:iam::999999999999:role/admin' }}] }} }}\n")),
            Rule::Reference,
            "RoleARN points at account 999999999999",
            resources(&format!("{IDENTITY_POOL}{ROLE}  Map:\n    Type: AWS::Cognito::IdentityPoolRoleAttachment\n    Properties:\n      IdentityPoolId: {{ Ref: Pool }}\n      RoleMappings:\n        idp: {{ Type: Rules, AmbiguousRoleResolution: Deny, RulesConfiguration: {{ Rules: [{{ Claim: group, MatchType: Equals, Value: admin, RoleARN: {{ 'Fn::GetAtt': [Role, Arn] }} }}] }} }}\n")),
        ),
        (
            "an export another stack's import would read",
            format!("{}Outputs:\n  T: {{ Value: {{ Ref: Table }}, Export: {{ Name: production-table }} }}\n", resources(TABLE)),
            Rule::PhysicalName,
            "T (Output): physical name: an export's Name must start with the stack's name",
            format!("{}Outputs:\n  T: {{ Value: {{ Ref: Table }}, Export: {{ Name: {{ 'Fn::Sub': '${{AWS::StackName}}-table' }} }} }}\n", resources(TABLE)),
        ),
    ]
}

const IDENTITY_POOL: &str = "  Pool:
    Type: AWS::Cognito::IdentityPool
    Properties:
      AllowUnauthenticatedIdentities: false
";

fn policy(attach: &str, resource: &str) -> String {
    format!(
        "  Attach:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: p
      {attach}
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: [dynamodb:GetItem]
            Resource: {resource}
"
    )
}

#[test]
fn each_escape_is_refused_with_its_message_and_its_conforming_twin_passes() {
    for (what, escaping, rule, message, conforming) in cases() {
        let refused = run(&escaping);
        assert!(
            refused.violations.iter().any(|v| v.rule == rule && v.to_string().contains(message)),
            "{what}: expected {rule:?} with {message:?}, got {:#?}",
            refused.violations
        );
        let passed = run(&conforming);
        assert!(passed.accepted(), "{what}: the conforming template was refused: {:#?}", passed.violations);
    }
}

#[test]
fn all_violations_are_reported_at_once() {
    let yaml = resources(&format!(
        "{}  U:\n    Type: AWS::IAM::User\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties: {{ TableName: users }}\n",
        ROLE.replace("{ Service: appsync.amazonaws.com }", "'*'")
    ));
    let report = run(&yaml);
    let rules: Vec<Rule> = report.violations.iter().map(|v| v.rule).collect();
    assert_eq!(rules, [Rule::Trust, Rule::PhysicalName, Rule::IamIdentity], "{:#?}", report.violations);
    let reason = report.reason();
    assert!(reason.starts_with("3 violations of the blueprint policy:\n"), "{reason}");
    assert_eq!(reason.lines().count(), 4);
}

#[test]
fn retained_and_snapshotted_resources_are_rewritten_to_delete_and_reported() {
    let mut t = template(&resources(&format!(
        "{}    DeletionPolicy: Retain\n    UpdateReplacePolicy: Snapshot\n  B:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: RetainExceptOnCreate\n  Q:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Delete\n",
        TABLE.trim_end_matches('\n').replace("    Properties:\n      TableName: { 'Fn::Sub': '${AWS::StackName}-Table' }", "    Properties:\n      TableName: { 'Fn::Sub': '${AWS::StackName}-Table' }\n")
    )));
    let report = check(&t, &Policy::default());
    assert!(report.accepted(), "{:#?}", report.violations);
    let shown: Vec<String> = report.rewrites.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "B: DeletionPolicy RetainExceptOnCreate rewritten to Delete (an ephemeral environment keeps nothing)",
            "Table: DeletionPolicy Retain rewritten to Delete (an ephemeral environment keeps nothing)",
            "Table: UpdateReplacePolicy Snapshot rewritten to Delete (an ephemeral environment keeps nothing)",
        ]
    );
    report.apply(&mut t);
    for (id, r) in t["Resources"].as_object().unwrap() {
        for attr in ["DeletionPolicy", "UpdateReplacePolicy"] {
            assert!(r.get(attr).is_none_or(|v| v == "Delete"), "{id} {attr}: {:?}", r.get(attr));
        }
    }
    assert!(check(&t, &Policy::default()).rewrites.is_empty(), "nothing left to rewrite");
}

#[test]
fn the_allow_lists_are_the_operators() {
    let vpc = template(&resources("  Vpc:\n    Type: AWS::EC2::VPC\n"));
    let mut policy = Policy::default();
    policy.types.insert("AWS::EC2::VPC".into());
    assert!(check(&vpc, &policy).accepted());
    // IAM users stay refused, whatever the list says.
    policy.types.insert("AWS::IAM::User".into());
    let user = template(&resources("  U:\n    Type: AWS::IAM::User\n"));
    assert_eq!(check(&user, &policy).violations[0].rule, Rule::IamIdentity);

    let local =
        template(&format!("{}Outputs:\n  PreviewUrl: {{ Value: 'http://127.0.0.1:8080/app' }}\n", resources(TABLE)));
    assert!(!check(&local, &Policy::default()).accepted());
    policy.literal_preview_hosts.insert("127.0.0.1".into());
    assert!(check(&local, &policy).accepted());
}

#[test]
fn placeholders_cannot_be_forged_with_control_characters() {
    // The checker reads `${AWS::StackName}` as a marker character; literal text never passes for it.
    let forged = template(&resources(
        "  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: \"\\x01-users\"\n",
    ));
    assert!(!check(&forged, &Policy::default()).accepted());
}
