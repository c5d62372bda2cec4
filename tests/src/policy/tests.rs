use super::*;
use serde_json::json;

fn template() -> Json {
    json!({
        "Parameters": {
            "Accounts": {"Type": "CommaDelimitedList", "Default": ""},
            "Prefix": {"Type": "String", "Default": "ephemera"}
        },
        "Conditions": {"HasAccounts": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Accounts"}]}, ""]}]}},
        "Resources": {
            "Bounded": {"Type": "AWS::IAM::Role", "Properties": {
                "Policies": [{"PolicyName": "Inline", "PolicyDocument": {"Statement": [
                    {"Sid": "Tables", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                     "Resource": {"Fn::Sub": "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Prefix}-${!aws:PrincipalTag/env}-*"}},
                    {"Sid": "NoPuts", "Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["Registry", "Arn"]}},
                    {"Fn::If": ["HasAccounts", {"Sid": "Assume", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}, {"Ref": "AWS::NoValue"}]},
                    {"Sid": "AllButIam", "Effect": "Allow", "NotAction": "iam:*", "Resource": {"Fn::GetAtt": ["Registry", "Arn"]}},
                    {"Sid": "SweepAnyBucket", "Effect": "Allow", "Action": "s3:DeleteBucket", "NotResource": "arn:aws:s3:::prod-*",
                     "Condition": {"StringEquals": {"aws:PrincipalTag/sweep": "true"}, "StringLike": {"aws:ResourceTag/x": "y"}}},
                    {"Sid": "Queues", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::If": ["HasAccounts",
                        ["arn:aws:sqs:us-east-1:123456789012:a", "arn:aws:sqs:us-east-1:123456789012:b"],
                        "arn:aws:sqs:us-east-1:123456789012:c"]}}
                ]}}],
                "PermissionsBoundary": {"Ref": "Boundary"}
            }},
            "Boundary": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {"Statement": [
                {"Sid": "OnlyDynamoAndS3", "Effect": "Allow", "Action": ["dynamodb:*", "s3:*"], "Resource": "*"}
            ]}}}
        }
    })
}

fn deployed() -> Deployed {
    Deployed::new("123456789012", "us-east-1")
        .set("Registry.Arn", "arn:aws:dynamodb:us-east-1:123456789012:table/registry")
}

const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/ephemera-pr-1-tasks";
const REGISTRY: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/registry";

fn tags(pairs: &[(&str, &str)]) -> PrincipalTags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn allowed_as(role: &Role, action: &str, resource: &str, session: &[(&str, &str)]) -> bool {
    matches!(role.decide(action, resource, &tags(session)), Decision::Allowed(_))
}

fn allowed(role: &Role, action: &str, resource: &str) -> bool {
    allowed_as(role, action, resource, &[("env", "pr-1")])
}

#[test]
fn substitutions_conditions_and_policy_variables_resolve() {
    let role = Role::load(&template(), &deployed(), "Bounded").unwrap();
    assert_eq!(
        role.statements[0].resources,
        ["arn:aws:dynamodb:us-east-1:123456789012:table/ephemera-${aws:PrincipalTag/env}-*"]
    );
    assert!(allowed(&role, "dynamodb:GetItem", TABLE));
    // Actions match case-insensitively; resources do not; the variable is the session's.
    assert!(allowed(&role, "DynamoDB:getitem", TABLE));
    assert!(!allowed(&role, "dynamodb:GetItem", &TABLE.replace("tasks", "Tasks").replace("pr-1", "PR-1")));
    assert!(!allowed(&role, "dynamodb:GetItem", &TABLE.replace("pr-1", "pr-2")));
    // A session without the tag the variable names: the statement names nothing.
    assert!(!allowed_as(&role, "dynamodb:GetItem", TABLE, &[]));
    // No accounts: the conditional statement is absent, and Fn::If picks the resource list.
    assert!(role.statements.iter().all(|s| s.sid != "Assume"));
    let queue = |q: &str| format!("arn:aws:sqs:us-east-1:123456789012:{q}");
    let boundless = Role { boundary: None, ..role.clone() };
    assert!(
        allowed(&boundless, "sqs:SendMessage", &queue("c")) && !allowed(&boundless, "sqs:SendMessage", &queue("a"))
    );
    let with = deployed().set_list("Accounts", &["111111111111".to_owned()]);
    let role = Role::load(&template(), &with, "Bounded").unwrap();
    assert!(role.statements.iter().any(|s| s.sid == "Assume"));
    let boundless = Role { boundary: None, ..role };
    assert!(
        allowed(&boundless, "sqs:SendMessage", &queue("b")) && !allowed(&boundless, "sqs:SendMessage", &queue("c"))
    );
}

#[test]
fn an_explicit_deny_wins_and_the_boundary_limits() {
    let role = Role::load(&template(), &deployed(), "Bounded").unwrap();
    let none = tags(&[]);
    // NotAction allows everything but IAM on the registry; the Deny takes PutItem back.
    assert!(allowed(&role, "dynamodb:UpdateItem", REGISTRY));
    assert!(matches!(role.decide("dynamodb:PutItem", REGISTRY, &none), Decision::Denied(Some(s)) if s.sid == "NoPuts"));
    assert!(matches!(role.decide("iam:PassRole", REGISTRY, &none), Decision::Denied(None)));
    // A resource the record could not tell: any Deny of the action names it.
    assert!(matches!(role.decide("dynamodb:PutItem", "*", &none), Decision::Denied(Some(_))));
    // Allowed by the role, but outside the boundary.
    assert!(matches!(role.decide("sqs:SendMessage", REGISTRY, &none), Decision::Denied(None)));
    let unbounded = Role { boundary: None, ..role };
    assert!(allowed(&unbounded, "sqs:SendMessage", REGISTRY));
}

#[test]
fn principal_tag_conditions_and_not_resource_decide_and_other_conditions_hold() {
    let role = Role::load(&template(), &deployed(), "Bounded").unwrap();
    let bucket = |b: &str| format!("arn:aws:s3:::{b}");
    assert!(allowed_as(&role, "s3:DeleteBucket", &bucket("ephemera-pr-1"), &[("sweep", "true")]));
    // Another session of the same role: its tags do not meet the condition.
    assert!(!allowed_as(&role, "s3:DeleteBucket", &bucket("ephemera-pr-1"), &[("env", "pr-1")]));
    assert!(!allowed_as(&role, "s3:DeleteBucket", &bucket("ephemera-pr-1"), &[("sweep", "false")]));
    // NotResource: everything but production's.
    assert!(!allowed_as(&role, "s3:DeleteBucket", &bucket("prod-data"), &[("sweep", "true")]));
    // A resource the record could not tell is never one a NotResource leaves out.
    assert!(!allowed_as(&role, "s3:DeleteBucket", "*", &[("sweep", "true")]));
}

#[test]
fn a_call_is_checked_as_its_key_or_session_and_others_are_nobodys() {
    let role = Role::load(&template(), &deployed(), "Bounded").unwrap();
    let roles = BTreeMap::from([("Bounded".to_owned(), role)]);
    let principals =
        Principals { keys: HashMap::from([("AKIAFUNCTION".to_owned(), "Bounded".to_owned())]), roles: HashMap::new() };
    let call = |key: &str, action: &str, resource: &str| Call {
        key: key.into(),
        account: "123456789012".into(),
        role: None,
        session: None,
        tags: PrincipalTags::new(),
        operation: "Op".into(),
        checks: vec![(action.into(), resource.into())],
    };
    let calls = [
        call("AKIAFUNCTION", "dynamodb:GetItem", REGISTRY),
        call("AKIAFUNCTION", "dynamodb:PutItem", REGISTRY),
        call("AKIATEST", "dynamodb:PutItem", REGISTRY),
    ];
    let verdict = check(&calls, &roles, &principals);
    assert_eq!((verdict.checked, verdict.unattributed), (2, 1));
    let denied: Vec<String> = verdict.denied.iter().map(ToString::to_string).collect();
    assert_eq!(denied, [format!("Bounded: Op needs dynamodb:PutItem on {REGISTRY} (denied by Inline/NoPuts)")]);
    assert_eq!(verdict.exercised["Bounded"], BTreeSet::from(["Inline/AllButIam".to_owned()]));
}

#[test]
fn an_unclosed_substitution_does_not_panic() {
    let sub = json!({"Fn::Sub": "arn:aws:s3:::${Prefix"});
    assert_eq!(deployed().resolve(&template(), &sub), ["arn:aws:s3:::${Prefix"]);
}
