//! Random templates: the checker never panics, and no template it accepts names anything
//! outside its environment once CloudFormation would evaluate it.

use ephemera_domain::blueprint::{check, Policy};
use proptest::prelude::*;
use serde_json::{json, Value as Json};

const STACK: &str = "ephemera-pr-1-acme-app-0a1b2c3d4e";
const IDS: &[&str] = &["A", "B", "C"];
/// What a value names when it reaches outside: each evaluates to text containing "FOREIGN".
const FOREIGN: &[&str] = &[
    "FOREIGN-prod-table",
    "arn:aws:iam::999999999999:role/FOREIGN",
    "arn:aws:dynamodb:us-east-1:123456789012:table/FOREIGN",
    "*",
    "arn:aws:s3:::*",
];

fn value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        proptest::sample::select(FOREIGN).prop_map(|s| json!(s)),
        proptest::sample::select(IDS).prop_map(|id| json!({"Ref": id})),
        proptest::sample::select(IDS).prop_map(|id| json!({"Fn::GetAtt": [id, "Arn"]})),
        proptest::sample::select(&["AWS::StackName", "AWS::AccountId", "AWS::Region", "P", "Nope"][..])
            .prop_map(|n| json!({"Ref": n})),
        proptest::collection::vec(
            proptest::sample::select(
                &[
                    "${AWS::StackName}",
                    "-",
                    "x",
                    "*",
                    "${A.Arn}",
                    "${B}",
                    "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/",
                    "arn:aws:s3:::",
                    "/",
                    ":",
                    "FOREIGN",
                    "${P}"
                ][..]
            ),
            1..5
        )
        .prop_map(|pieces| json!({"Fn::Sub": pieces.concat()})),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (proptest::sample::select(&["", "-", "/"][..]), proptest::collection::vec(inner.clone(), 1..4))
                .prop_map(|(sep, items)| json!({"Fn::Join": [sep, items]})),
            (inner.clone(), inner).prop_map(|(a, b)| json!({"Fn::If": ["C", a, b]})),
        ]
    })
}

/// A resource of a random type whose properties are all names or references.
fn resource() -> impl Strategy<Value = Json> {
    let kind = proptest::sample::select(
        &[
            ("AWS::DynamoDB::Table", "TableName"),
            ("AWS::SQS::Queue", "QueueName"),
            ("AWS::AppSync::ApiKey", "ApiId"),
            ("AWS::S3::BucketPolicy", "Bucket"),
            ("AWS::Lambda::Function", "Role"),
            ("AWS::SNS::Subscription", "TopicArn"),
            ("AWS::Lambda::Permission", "FunctionName"),
            ("AWS::IAM::Policy", "PolicyName"),
        ][..],
    );
    (kind, value(), value()).prop_map(|((ty, key), v, granted)| {
        let mut props = json!({ key: v });
        if ty == "AWS::IAM::Policy" {
            props["Roles"] = json!([{"Ref": "A"}]);
            props["PolicyDocument"] =
                json!({"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": granted}]});
        }
        json!({"Type": ty, "Properties": props})
    })
}

fn template() -> impl Strategy<Value = Json> {
    (resource(), resource(), resource(), value()).prop_map(|(a, b, c, out)| {
        json!({
            "Parameters": {"P": {"Type": "String", "Default": "FOREIGN-default"}},
            "Resources": {"A": a, "B": b, "C": c},
            "Outputs": {"TaskTableName": {"Value": out}}
        })
    })
}

/// Every string `v` may evaluate to in stack STACK (own resources named under it).
fn evaluate(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Object(m) => {
            let (f, arg) = m.iter().next().unwrap();
            match f.as_str() {
                "Ref" => vec![name(arg.as_str().unwrap())],
                "Fn::GetAtt" => {
                    vec![format!("arn:aws:x:us-east-1:123456789012:thing/{STACK}-{}", arg[0].as_str().unwrap())]
                }
                "Fn::Sub" => vec![sub(arg.as_str().unwrap())],
                "Fn::If" => [evaluate(&arg[1]), evaluate(&arg[2])].concat(),
                "Fn::Join" => arg[1].as_array().unwrap().iter().fold(vec![String::new()], |acc, item| {
                    let sep = arg[0].as_str().unwrap();
                    acc.iter()
                        .flat_map(|a| {
                            evaluate(item)
                                .into_iter()
                                .map(move |b| if a.is_empty() { b } else { format!("{a}{sep}{b}") })
                        })
                        .collect()
                }),
                _ => unreachable!("{f}"),
            }
        }
        _ => unreachable!(),
    }
}

fn name(n: &str) -> String {
    match n {
        "AWS::StackName" => STACK.into(),
        "AWS::AccountId" => "123456789012".into(),
        "AWS::Region" => "us-east-1".into(),
        "P" => "FOREIGN-default".into(),
        id if IDS.contains(&id) => format!("{STACK}-{id}"),
        _ => "FOREIGN-unknown".into(),
    }
}

fn sub(s: &str) -> String {
    let mut out = s.to_owned();
    for id in IDS {
        out = out.replace(&format!("${{{id}.Arn}}"), &format!("arn:aws:x:us-east-1:123456789012:thing/{STACK}-{id}"));
    }
    for n in ["AWS::StackName", "AWS::AccountId", "AWS::Region", "P", "A", "B", "C"] {
        out = out.replace(&format!("${{{n}}}"), &name(n));
    }
    out
}

/// Inside: in this account (or none), and named under the stack's name (after the ARN's type).
fn inside(s: &str) -> bool {
    // The stack's name, then the end or a separator no environment name contains but '-'.
    let named = |r: &str| {
        r.strip_prefix(STACK).is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '_', '.', '/', ':']))
    };
    let Some(arn) = s.strip_prefix("arn:") else { return named(s) };
    let fields: Vec<&str> = arn.splitn(5, ':').collect();
    let [_, _, _, account, resource] = fields.as_slice() else { return false };
    // Buckets, queues and topics have no type before their name.
    let untyped = ["s3", "sqs", "sns"].contains(&fields[1]);
    let typed = resource
        .split_once(['/', ':'])
        .filter(|(t, _)| !untyped && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    matches!(*account, "" | "123456789012") && (named(resource) || typed.is_some_and(|(_, r)| named(r)))
}

fn references(template: &Json) -> Vec<&Json> {
    let mut found = Vec::new();
    for r in template["Resources"].as_object().unwrap().values() {
        for (k, v) in r["Properties"].as_object().unwrap() {
            match k.as_str() {
                "PolicyName" | "Roles" => {}
                "PolicyDocument" => found.push(&v["Statement"][0]["Resource"]),
                _ => found.push(v),
            }
        }
    }
    found.push(&template["Outputs"]["TaskTableName"]["Value"]);
    found
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn accepted_templates_name_only_their_own_environment(t in template()) {
        let report = check(&t, &Policy::default());
        if report.accepted() {
            for v in references(&t) {
                for s in evaluate(v) {
                    prop_assert!(inside(&s), "accepted, yet {v} evaluates to {s:?}");
                }
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics_the_checker(t in any_json()) {
        let _ = check(&t, &Policy::default());
        let _ = check(&json!({"Resources": {"X": t.clone()}, "Outputs": {"PreviewUrl": {"Value": t}}}), &Policy::default());
    }
}

/// The intrinsics, as strings and as keys.
const FUNCTIONS: &[&str] = &["Ref", "Fn::Sub", "Fn::GetAtt", "Fn::Join", "Fn::If", "Fn::Select"];

/// `FUNCTIONS` and `more`, to pick from.
fn words(more: &[&'static str]) -> Vec<&'static str> {
    FUNCTIONS.iter().chain(more).copied().collect()
}

fn any_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        "[\\PC\u{1}]{0,12}".prop_map(Json::from),
        proptest::sample::select(words(&["${AWS::StackName}", "arn:aws:s3:::x", "*", "${", "Type", "Resources"]))
            .prop_map(Json::from),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        let keys = proptest::sample::select(words(&[
            "Type",
            "Properties",
            "Resources",
            "Statement",
            "Principal",
            "Resource",
            "Roles",
            "ApiId",
            "TableName",
            "Outputs",
            "Value",
        ]));
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::from),
            proptest::collection::btree_map(keys, inner, 0..3)
                .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
