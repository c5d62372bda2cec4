//! The blueprint policy: what a template may declare before any CloudFormation call is made.
//!
//! Blueprints are untrusted input (a pull request can carry its own). [`check`] reads a template
//! (as JSON, short-form intrinsics already in long form) and returns every violation at once,
//! and the rewrites it will make (`Retain` and `Snapshot` become `Delete`). Pure: the provisioner
//! and `ephemera blueprint check` run the same function on the same rules.
//!
//! The rules, and the threat each answers, are listed in `docs/security.md`.

mod expr;
mod iam;
mod outputs;
mod resources;

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value as Json;

pub use expr::{Part, Scope, Target};

/// Which rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    Template,
    ResourceType,
    Macro,
    IamIdentity,
    Trust,
    Attachment,
    ManagedPolicy,
    Reference,
    WildcardResource,
    PhysicalName,
    PreviewUrl,
    Output,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Template => "template",
            Rule::ResourceType => "resource type",
            Rule::Macro => "macro",
            Rule::IamIdentity => "no IAM users, groups or access keys",
            Rule::Trust => "trust",
            Rule::Attachment => "policy attachment",
            Rule::ManagedPolicy => "managed policy",
            Rule::Reference => "reference outside the environment",
            Rule::WildcardResource => "wildcard resource",
            Rule::PhysicalName => "physical name",
            Rule::PreviewUrl => "preview URL",
            Rule::Output => "output",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the template must change: `<LogicalId> (<Type>): <rule>: <what to change>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The resource's logical id, the output's name, or `Transform`.
    pub logical_id: String,
    /// The resource's type, `Output`, or `Template`.
    pub kind: String,
    pub rule: Rule,
    pub change: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}: {}", self.logical_id, self.kind, self.rule, self.change)
    }
}

/// Something that would keep a resource past its stack, set so that it does not: a
/// `DeletionPolicy`/`UpdateReplacePolicy` to `Delete`, a deletion protection off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub logical_id: String,
    /// `DeletionPolicy`, `UpdateReplacePolicy`, or a property (`Properties.DeletionProtectionEnabled`).
    pub attribute: &'static str,
    pub from: String,
    pub to: Json,
}

impl Rewrite {
    /// The value it is set to, as written in a template.
    pub fn to_text(&self) -> String {
        self.to.as_str().map(str::to_owned).unwrap_or_else(|| self.to.to_string())
    }
}

impl fmt::Display for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {} rewritten to {} (an ephemeral environment keeps nothing)",
            self.logical_id,
            self.attribute,
            self.from,
            self.to_text()
        )
    }
}

/// What the check found: violations (any one refuses the template) and the rewrites to make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub rewrites: Vec<Rewrite>,
}

impl Report {
    pub fn accepted(&self) -> bool {
        self.violations.is_empty()
    }

    /// Every violation, one per line: the environment's failure reason.
    pub fn reason(&self) -> String {
        let lines: Vec<String> = self.violations.iter().map(ToString::to_string).collect();
        let n = lines.len();
        format!("{n} violation{} of the blueprint policy:\n{}", if n == 1 { "" } else { "s" }, lines.join("\n"))
    }

    /// Makes the rewrites in `template`.
    pub fn apply(&self, template: &mut Json) {
        for rw in &self.rewrites {
            let Some(r) = template.get_mut("Resources").and_then(|r| r.get_mut(&rw.logical_id)) else { continue };
            let (holder, key) = match rw.attribute.strip_prefix("Properties.") {
                Some(key) => (r.get_mut("Properties"), key),
                None => (Some(r), rw.attribute),
            };
            if let Some(holder) = holder.and_then(Json::as_object_mut) {
                holder.insert(key.to_owned(), rw.to.clone());
            }
        }
    }

    fn refuse(&mut self, logical_id: &str, kind: &str, rule: Rule, change: impl Into<String>) {
        self.violations.push(Violation {
            logical_id: logical_id.to_owned(),
            kind: kind.to_owned(),
            rule,
            change: change.into(),
        });
    }
}

/// The rules' settings. [`Policy::default`] is what an Amplify-style backend needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Resource types a blueprint may declare: types the platform can tag, price and clean up.
    pub types: BTreeSet<String>,
    /// Services that may assume a blueprint's roles or be granted access by its resource policies.
    pub service_principals: BTreeSet<String>,
    /// Managed policies (ARNs) a blueprint's roles may attach, besides the template's own.
    pub managed_policies: BTreeSet<String>,
    /// Hosts a preview URL may name literally (a local preview server); none on AWS.
    pub literal_preview_hosts: BTreeSet<String>,
    /// Allow `Transform`, macros and nested stacks (their expanded form is not checked).
    pub macros: bool,
}

/// The default resource types: an Amplify-style backend.
pub const DEFAULT_TYPES: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::RolePolicy",
    "AWS::IAM::ManagedPolicy",
    "AWS::AppSync::GraphQLApi",
    "AWS::AppSync::GraphQLSchema",
    "AWS::AppSync::DataSource",
    "AWS::AppSync::Resolver",
    "AWS::AppSync::FunctionConfiguration",
    "AWS::AppSync::ApiKey",
    "AWS::Lambda::Function",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Url",
    "AWS::Logs::LogGroup",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SecretsManager::Secret",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::IdentityPool",
    "AWS::Cognito::IdentityPoolRoleAttachment",
    // CDK and Amplify Gen 2 add it to every stack; it creates nothing.
    "AWS::CDK::Metadata",
];

/// Services a blueprint's roles may trust.
pub const DEFAULT_SERVICE_PRINCIPALS: &[&str] = &[
    "appsync.amazonaws.com",
    "lambda.amazonaws.com",
    "apigateway.amazonaws.com",
    "cognito-idp.amazonaws.com",
    "events.amazonaws.com",
    "s3.amazonaws.com",
    "sns.amazonaws.com",
    "sqs.amazonaws.com",
    "states.amazonaws.com",
];

/// AWS-managed policies a blueprint's roles may attach: logging and tracing only.
pub const DEFAULT_MANAGED_POLICIES: &[&str] = &[
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSAppSyncPushToCloudWatchLogs",
    "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
];

impl Default for Policy {
    fn default() -> Self {
        let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Self {
            types: set(DEFAULT_TYPES),
            service_principals: set(DEFAULT_SERVICE_PRINCIPALS),
            managed_policies: set(DEFAULT_MANAGED_POLICIES),
            literal_preview_hosts: BTreeSet::new(),
            macros: false,
        }
    }
}

/// Checks `template` against `policy`: every violation, and the rewrites to make if it passes.
pub fn check(template: &Json, policy: &Policy) -> Report {
    let mut report = Report::default();
    let Some(resources) = template.get("Resources").and_then(Json::as_object) else {
        report.refuse("Resources", "Template", Rule::Template, "add a Resources section with at least one resource");
        return report;
    };
    if !policy.macros {
        macros(template, &mut report);
    }
    let scope = Scope { resources, parameters: template.get("Parameters").and_then(Json::as_object) };
    for (id, resource) in resources {
        resources::check(id, resource, &scope, policy, &mut report);
    }
    if let Some(outputs) = template.get("Outputs").and_then(Json::as_object) {
        outputs::check(outputs, &scope, policy, &mut report);
    }
    report
}

fn macros(template: &Json, report: &mut Report) {
    if template.get("Transform").is_some() {
        report.refuse(
            "Transform",
            "Template",
            Rule::Macro,
            "macros (SAM's included) rewrite the template after it is checked; deploy the expanded template instead (`sam build` then `sam package`, or the processed template CloudFormation shows): its expanded form is accepted",
        );
    }
    if contains_key(template, "Fn::Transform", 0) {
        report.refuse(
            "Fn::Transform",
            "Template",
            Rule::Macro,
            "a macro (Fn::Transform, AWS::Include) rewrites the template after it is checked; inline what it would produce: the expanded form is accepted",
        );
    }
}

fn contains_key(v: &Json, key: &str, depth: usize) -> bool {
    match v {
        _ if depth > 64 => true,
        Json::Object(m) => m.iter().any(|(k, v)| k == key || contains_key(v, key, depth + 1)),
        Json::Array(a) => a.iter().any(|v| contains_key(v, key, depth + 1)),
        _ => false,
    }
}

/// The single values in `v`: a list's items, a plain map's values, or `v` itself.
fn values(v: &Json) -> Vec<&Json> {
    match v {
        Json::Array(items) => items.iter().collect(),
        Json::Object(m) if !is_intrinsic(m) => m.values().collect(),
        _ => vec![v],
    }
}

/// What `v` may be once conditions are decided: each branch of an `Fn::If`, nothing for
/// `AWS::NoValue`, else `v`.
fn branches(v: &Json) -> Vec<&Json> {
    fn walk<'a>(v: &'a Json, depth: usize, out: &mut Vec<&'a Json>) {
        let only = v.as_object().filter(|m| m.len() == 1).and_then(|m| m.iter().next());
        match only {
            Some((f, Json::Array(a))) if f == "Fn::If" && a.len() == 3 && depth < 16 => {
                walk(&a[1], depth + 1, out);
                walk(&a[2], depth + 1, out);
            }
            Some((f, Json::String(r))) if f == "Ref" && r == "AWS::NoValue" => {}
            _ => out.push(v),
        }
    }
    let mut out = Vec::new();
    walk(v, 0, &mut out);
    out
}

fn is_intrinsic(m: &serde_json::Map<String, Json>) -> bool {
    m.len() == 1 && m.keys().next().is_some_and(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn branches_are_those_of_fn_if_only() {
        let either = json!({"Fn::If": ["C", {"A": 1}, {"Fn::If": ["D", {"B": 2}, {"Ref": "AWS::NoValue"}]}]});
        assert_eq!(branches(&either), [&json!({"A": 1}), &json!({"B": 2})]);
        // Only `Fn::If` has branches: a malformed `Ref` of three items is a value like any other.
        let not_if = json!({"Ref": ["C", {"A": 1}, {"B": 2}]});
        assert_eq!(branches(&not_if), [&not_if]);
    }
}
