//! One resource: its type, what it keeps, what it is called and what it points at.

use serde_json::{json, Map, Value as Json};

use super::expr::{show, target, Scope, Target};
use super::{iam, values, Policy, Report, Rewrite, Rule};

/// Types no blueprint may declare, whatever the allow-list says: long-lived credentials.
const IAM_IDENTITIES: &[&str] = &[
    "AWS::IAM::User",
    "AWS::IAM::Group",
    "AWS::IAM::AccessKey",
    "AWS::IAM::UserToGroupAddition",
    "AWS::IAM::UserPolicy",
    "AWS::IAM::GroupPolicy",
];

/// The property that names a resource of each type, when the author sets it.
const PHYSICAL_NAMES: &[(&str, &str)] = &[
    ("AWS::DynamoDB::Table", "TableName"),
    ("AWS::S3::Bucket", "BucketName"),
    ("AWS::IAM::Role", "RoleName"),
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName"),
    ("AWS::SQS::Queue", "QueueName"),
    ("AWS::SNS::Topic", "TopicName"),
    ("AWS::Lambda::Function", "FunctionName"),
    ("AWS::Logs::LogGroup", "LogGroupName"),
    ("AWS::SecretsManager::Secret", "Name"),
];

/// Properties (at any depth) that point at an existing resource, besides every `...Arn(s)`;
/// compared without case (`KmsMasterKeyId`, `KMSMasterKeyID`).
const REFERENCES: &[&str] = &[
    "apiid",
    "tablename",
    "bucket",
    "bucketname",
    "destinationbucketname",
    "queues",
    "topics",
    "function",
    "queue",
    "topic",
    "functionname",
    "role",
    "userpoolid",
    "identitypoolid",
    "clientid",
    "kmskeyid",
    "kmsmasterkeyid",
    "loggroup",
    "loggroupname",
    "destination",
    "authorizeruri",
    "dbclusteridentifier",
];

/// Checked by their own rules (IAM), or written by the platform.
const NOT_REFERENCES: &[&str] = &["ManagedPolicyArns", "PermissionsBoundary", "Roles", "RoleName", "Users", "Groups"];

pub(super) fn check(id: &str, resource: &Json, scope: &Scope, policy: &Policy, report: &mut Report) {
    let ty = resource.get("Type").and_then(Json::as_str).unwrap_or("");
    if !allowed(id, ty, policy, report) {
        return;
    }
    retention(id, resource, report);
    let props = match resource.get("Properties") {
        None => return,
        Some(Json::Object(m)) if !super::is_intrinsic(m) => m,
        Some(_) => {
            report.refuse(
                id,
                ty,
                Rule::Template,
                "write Properties out as a map (conditions may choose values inside it, not replace it)",
            );
            return;
        }
    };
    forbidden(id, ty, props, report);
    let name_key = PHYSICAL_NAMES.iter().find(|(t, _)| *t == ty).map(|(_, k)| *k);
    if let Some(name) = name_key.and_then(|k| props.get(k).map(|v| (k, v))) {
        physical_name(id, ty, name, scope, report);
    }
    references(id, ty, props, name_key, scope, report);
    iam::check(id, ty, props, scope, policy, report);
}

fn allowed(id: &str, ty: &str, policy: &Policy, report: &mut Report) -> bool {
    let change = if IAM_IDENTITIES.contains(&ty) {
        report.refuse(
            id,
            ty,
            Rule::IamIdentity,
            "remove it: environments get roles, assumed by services, never users or keys",
        );
        return false;
    } else if policy.types.contains(ty) {
        return true;
    } else if ty.starts_with("Custom::") || ty == "AWS::CloudFormation::CustomResource" {
        "custom resources run code the platform cannot see or clean up; remove it, or ask the operator to allow the type (EPHEMERA_BLUEPRINT_TYPES)".to_owned()
    } else if ty == "AWS::CloudFormation::Stack"
        || ty == "AWS::CloudFormation::Macro"
        || ty.starts_with("AWS::Serverless::")
    {
        format!("{ty} is expanded outside this check; inline its resources (the expanded form is accepted)")
    } else if ty.is_empty() {
        "give the resource a Type".to_owned()
    } else {
        format!("{ty} is not one the platform can tag, price and clean up; use one of the allowed types, or ask the operator to allow it (EPHEMERA_BLUEPRINT_TYPES)")
    };
    report.refuse(id, if ty.is_empty() { "no type" } else { ty }, Rule::ResourceType, change);
    false
}

fn retention(id: &str, resource: &Json, report: &mut Report) {
    let shown = |v: &Json| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    for attribute in ["DeletionPolicy", "UpdateReplacePolicy"] {
        match resource.get(attribute) {
            None => {}
            Some(Json::String(s)) if s == "Delete" => {}
            Some(v) => report.rewrites.push(Rewrite {
                logical_id: id.to_owned(),
                attribute,
                from: shown(v),
                to: json!("Delete"),
            }),
        }
    }
    // Deletion protection would fail the stack's deletion and keep the resource.
    let props = resource.get("Properties");
    for (attribute, off) in [("DeletionProtectionEnabled", json!(false)), ("DeletionProtection", json!("INACTIVE"))] {
        match props.and_then(|p| p.get(attribute)) {
            None => {}
            Some(v) if *v == off || *v == json!("false") => {}
            Some(v) => report.rewrites.push(Rewrite {
                logical_id: id.to_owned(),
                attribute: if attribute == "DeletionProtection" {
                    "Properties.DeletionProtection"
                } else {
                    "Properties.DeletionProtectionEnabled"
                },
                from: shown(v),
                to: off,
            }),
        }
    }
}

/// What a resource may not do at all, whatever it names: keep data past the environment, open
/// it to the internet, or join a network that is not its own.
fn forbidden(id: &str, ty: &str, props: &Map<String, Json>, report: &mut Report) {
    let mut refuse = |change: &str| report.refuse(id, ty, Rule::Reference, change);
    if props.contains_key("ObjectLockConfiguration")
        || props.get("ObjectLockEnabled").is_some_and(|v| v != &json!(false))
    {
        refuse("object lock keeps objects past the environment's end, and its bucket with them; remove ObjectLockConfiguration and ObjectLockEnabled");
    }
    if props.contains_key("ReplicationConfiguration") {
        refuse("replication copies the environment's data outside it; remove ReplicationConfiguration");
    }
    if props
        .get("AccessControl")
        .is_some_and(|v| v.as_str().is_none_or(|acl| acl.starts_with("Public") || acl == "AuthenticatedRead"))
    {
        refuse(
            "a public or authenticated-read ACL opens the bucket to everyone; remove AccessControl (or use Private)",
        );
    }
    for key in ["RedrivePolicy", "RedriveAllowPolicy"] {
        if props
            .get(key)
            .is_some_and(|v| super::branches(v).iter().any(|b| b.as_object().is_none_or(super::is_intrinsic)))
        {
            refuse(&format!("write {key} as a map, so that the queues it names can be checked"));
        }
    }
    if props.contains_key("VpcConfig") {
        refuse("a function in a VPC reaches that network, which is not the environment's; remove VpcConfig");
    }
}

fn physical_name(id: &str, ty: &str, (key, value): (&str, &Json), scope: &Scope, report: &mut Report) {
    for alt in scope.alternatives(value) {
        let what = match target(&alt) {
            Target::Namespaced | Target::Own(_) => continue,
            Target::Outside(what) if what.starts_with('"') => what,
            Target::Outside(what) => format!("{} ({what})", show(&alt)),
            Target::Wildcard => show(&alt),
        };
        report.refuse(
            id,
            ty,
            Rule::PhysicalName,
            format!("{key} {what} must start with the stack's name: write !Sub \"${{AWS::StackName}}-<name>\", or leave it out"),
        );
        return;
    }
}

fn references(
    id: &str,
    ty: &str,
    props: &Map<String, Json>,
    name_key: Option<&str>,
    scope: &Scope,
    report: &mut Report,
) {
    let mut found = Vec::new();
    if !collect_map(props, name_key, &mut found, 0) {
        report.refuse(id, ty, Rule::Template, "properties are nested deeper than the checker reads; flatten them");
    }
    for (key, value) in found {
        for v in values(value) {
            if let Some(problem) = outside(key, v, scope) {
                report.refuse(id, ty, Rule::Reference, problem);
            }
        }
    }
}

/// Free text whose keys are the author's (environment variables, tags), or an outside
/// identity provider's settings.
const FREE_FORM: &[&str] = &["Tags", "UserPoolTags", "Variables", "Metadata", "OpenIDConnectConfig"];

/// Reference properties under `key`/`value`, skipping free-form maps and policy documents;
/// false if it is nested deeper than the checker reads.
fn collect<'a>(key: &'a str, value: &'a Json, found: &mut Vec<(&'a str, &'a Json)>, depth: usize) -> bool {
    if depth > 40 {
        return false;
    }
    if FREE_FORM.contains(&key)
        || matches!(key, "PolicyDocument" | "AssumeRolePolicyDocument")
        || NOT_REFERENCES.contains(&key)
    {
        return true;
    }
    let lower = key.to_ascii_lowercase();
    let plain_map = value.as_object().is_some_and(|m| !super::is_intrinsic(m));
    if !plain_map && (REFERENCES.contains(&lower.as_str()) || lower.ends_with("arn") || lower.ends_with("arns")) {
        found.push((key, value));
        return true;
    }
    match value {
        // A user pool's triggers: every value names a function (or a key), whatever its key.
        _ if key == "LambdaConfig" => super::branches(value).into_iter().filter_map(Json::as_object).all(|m| {
            m.iter().filter(|(k, _)| *k != "LambdaVersion").all(|(k, v)| match v {
                Json::Object(inner) if !super::is_intrinsic(inner) => collect(k, v, found, depth + 1),
                _ => {
                    found.push((k, v));
                    true
                }
            })
        }),
        Json::Object(m) => collect_map(m, None, found, depth + 1),
        Json::Array(a) => a.iter().all(|v| collect(key, v, found, depth + 1)),
        _ => true,
    }
}

/// [`collect`] over a map's entries but `skip`. A subscription (a resource's properties, or an
/// item of a topic's `Subscription` list) delivering to AWS names its `Endpoint`.
fn collect_map<'a>(
    m: &'a Map<String, Json>,
    skip: Option<&str>,
    found: &mut Vec<(&'a str, &'a Json)>,
    depth: usize,
) -> bool {
    if delivers_to_aws(m) {
        found.extend(m.get("Endpoint").map(|v| ("Endpoint", v)));
    }
    m.iter().filter(|(k, _)| *k != "Endpoint" && Some(k.as_str()) != skip).all(|(k, v)| collect(k, v, found, depth))
}

/// A subscription whose endpoint is an AWS resource: any protocol but the internet's (a
/// computed protocol counts as AWS).
fn delivers_to_aws(props: &Map<String, Json>) -> bool {
    props
        .get("Protocol")
        .is_some_and(|p| !matches!(p.as_str(), Some("http" | "https" | "email" | "email-json" | "sms")))
}

/// Why `value` (under `key`) points outside the environment, if it does.
fn outside(key: &str, value: &Json, scope: &Scope) -> Option<String> {
    for alt in scope.alternatives(value) {
        let aws_managed_key = key.to_ascii_lowercase().starts_with("kms")
            && matches!(alt.as_slice(), [super::Part::Lit(s)] if s.starts_with("alias/aws/"));
        match target(&alt) {
            Target::Own(_) | Target::Namespaced => {}
            _ if aws_managed_key => {}
            Target::Wildcard => return Some(format!("{key} {} is a wildcard: name one of this template's resources", show(&alt))),
            Target::Outside(what) => {
                return Some(format!(
                    "{key} points at {what}, not at this environment: use !Ref or !GetAtt of a resource in this template, or a name under ${{AWS::StackName}}"
                ))
            }
        }
    }
    None
}
