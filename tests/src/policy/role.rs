//! A role's statements, resolved, and IAM's decision on one action on one resource.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::deployed::Deployed;
use crate::iam::{covers, glob};

/// The session a call is made in: its principal tags (a role session's session tags).
pub type PrincipalTags = BTreeMap<String, String>;

const PRINCIPAL_TAG: &str = "aws:PrincipalTag/";

/// One condition of a statement: operator, key, values. Only `aws:PrincipalTag/...` keys under
/// the string operators are evaluated; every other condition is taken to hold.
#[derive(Debug, Clone)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

impl Condition {
    fn holds(&self, tags: &PrincipalTags) -> bool {
        let Some(tag) = self.key.strip_prefix(PRINCIPAL_TAG) else { return true };
        let value = tags.get(tag);
        let like = |v: &str| self.values.iter().any(|p| glob(p.as_bytes(), v.as_bytes(), false));
        let equal = |v: &str| self.values.iter().any(|p| p == v);
        // A missing key fails a positive test and passes a negated one, as in IAM.
        match self.operator.trim_end_matches("IfExists") {
            "StringEquals" => value.is_some_and(|v| equal(v)),
            "StringLike" => value.is_some_and(|v| like(v)),
            "StringNotEquals" => value.is_none_or(|v| !equal(v)),
            "StringNotLike" => value.is_none_or(|v| !like(v)),
            _ => true,
        }
    }
}

/// One statement of a role's policies, resolved.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The policy it is in: the inline policy's name, or the managed policy's logical id.
    pub policy: String,
    pub sid: String,
    pub allow: bool,
    pub actions: Vec<String>,
    pub not_action: bool,
    pub resources: Vec<String>,
    pub not_resource: bool,
    pub conditions: Vec<Condition>,
}

impl Statement {
    /// `policy/sid`: how the report names it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.policy, self.sid)
    }

    /// Whether it applies to `action` on `resource` in a session with `tags`. A resource the
    /// record could not tell (`*`) is one no `NotResource` excludes, and any Deny names.
    fn applies(&self, action: &str, resource: &str, tags: &PrincipalTags) -> bool {
        let action_named = self.actions.iter().any(|p| covers(p, action)) != self.not_action;
        let resource_named = match resource {
            "*" if !self.allow => true,
            "*" if self.not_resource => false,
            _ => self.resources.iter().any(|p| names(p, resource, tags)) != self.not_resource,
        };
        action_named && resource_named && self.conditions.iter().all(|c| c.holds(tags))
    }
}

/// Whether resource pattern `pattern` names `resource` (case-sensitively, as IAM matches
/// ARNs), its principal-tag variables filled in from `tags`. A variable the session has no
/// value for names nothing.
fn names(pattern: &str, resource: &str, tags: &PrincipalTags) -> bool {
    let mut filled = pattern.to_owned();
    while let Some(start) = filled.find(&format!("${{{PRINCIPAL_TAG}")) {
        let Some(end) = filled[start..].find('}').map(|e| start + e) else { return false };
        let Some(value) = tags.get(&filled[start + 2 + PRINCIPAL_TAG.len()..end]) else { return false };
        filled.replace_range(start..=end, value);
    }
    glob(filled.as_bytes(), resource.as_bytes(), false)
}

/// A role of a template: what its policies allow and deny, and its permissions boundary's.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub statements: Vec<Statement>,
    pub boundary: Option<Vec<Statement>>,
}

/// What IAM decides for one (action, resource).
#[derive(Debug)]
pub enum Decision<'a> {
    /// Allowed, by these statements.
    Allowed(Vec<&'a Statement>),
    /// Denied: by an explicit Deny, or (None) because nothing allows it.
    Denied(Option<&'a Statement>),
}

/// Actions IAM allows whatever the policies say.
const ALWAYS_ALLOWED: [&str; 1] = ["sts:GetCallerIdentity"];

impl Role {
    /// Role `logical_id` of `template`: its inline policies and the template's managed policies
    /// it names. AWS managed policies (the Lambda runtime's logs, the SQS event source's
    /// polling) are not in the template and are not read.
    pub fn load(template: &Json, deployed: &Deployed, logical_id: &str) -> anyhow::Result<Self> {
        let properties = &template["Resources"][logical_id]["Properties"];
        anyhow::ensure!(properties.is_object(), "no resource {logical_id} in the template");
        let mut statements = Vec::new();
        for policy in properties["Policies"].as_array().into_iter().flatten() {
            let name = policy["PolicyName"].as_str().unwrap_or(logical_id);
            statements.extend(document(template, deployed, name, &policy["PolicyDocument"]));
        }
        for arn in properties["ManagedPolicyArns"].as_array().into_iter().flatten() {
            match (arn.as_str(), arn["Ref"].as_str()) {
                (Some(aws), _) if aws.starts_with("arn:aws:iam::aws:policy/") => {}
                (_, Some(id)) => statements.extend(managed(template, deployed, id)?),
                _ => anyhow::bail!("{logical_id}: a managed policy the check cannot read: {arn}"),
            }
        }
        let boundary = match &properties["PermissionsBoundary"] {
            Json::Null => None,
            b => Some(managed(template, deployed, b["Ref"].as_str().unwrap_or_default())?),
        };
        Ok(Self { name: logical_id.to_owned(), statements, boundary })
    }

    /// IAM's decision on `action` on `resource`, in a session with principal tags `tags`.
    pub fn decide(&self, action: &str, resource: &str, tags: &PrincipalTags) -> Decision<'_> {
        if ALWAYS_ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(action)) {
            return Decision::Allowed(vec![]);
        }
        let applying = |s: &&Statement| s.applies(action, resource, tags);
        if let Some(deny) = self.statements.iter().filter(|s| !s.allow).find(applying) {
            return Decision::Denied(Some(deny));
        }
        let allowing: Vec<&Statement> = self.statements.iter().filter(|s| s.allow).filter(applying).collect();
        let bounded = self.boundary.as_ref().is_none_or(|b| {
            b.iter().filter(|s| s.allow).any(|s| s.applies(action, resource, tags))
                && !b.iter().filter(|s| !s.allow).any(|s| s.applies(action, resource, tags))
        });
        match allowing.is_empty() || !bounded {
            true => Decision::Denied(None),
            false => Decision::Allowed(allowing),
        }
    }
}

fn managed(template: &Json, deployed: &Deployed, id: &str) -> anyhow::Result<Vec<Statement>> {
    let document = &template["Resources"][id]["Properties"]["PolicyDocument"];
    anyhow::ensure!(document.is_object(), "no managed policy {id:?} in the template");
    Ok(self::document(template, deployed, id, document))
}

/// The statements of a policy document, a conditional one only where its condition holds.
fn document(template: &Json, deployed: &Deployed, policy: &str, document: &Json) -> Vec<Statement> {
    let statements = match &document["Statement"] {
        Json::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    let mut out = Vec::new();
    for s in statements {
        let s = match s.get("Fn::If") {
            Some(arg) => deployed.branch(template, arg).clone(),
            None => s,
        };
        if s.get("Ref").is_some_and(|r| r == "AWS::NoValue") {
            continue;
        }
        let either = |yes: &str, no: &str| match s.get(no) {
            Some(v) => (deployed.resolve(template, v), true),
            None => (deployed.resolve(template, &s[yes]), false),
        };
        let (actions, not_action) = either("Action", "NotAction");
        let (resources, not_resource) = either("Resource", "NotResource");
        out.push(Statement {
            policy: policy.to_owned(),
            sid: s["Sid"].as_str().unwrap_or("(no Sid)").to_owned(),
            allow: s["Effect"] == "Allow",
            actions,
            not_action,
            resources,
            not_resource,
            conditions: conditions(template, deployed, &s["Condition"]),
        });
    }
    out
}

fn conditions(template: &Json, deployed: &Deployed, block: &Json) -> Vec<Condition> {
    let mut out = Vec::new();
    for (operator, tests) in block.as_object().into_iter().flatten() {
        for (key, values) in tests.as_object().into_iter().flatten() {
            let values = deployed.resolve(template, values);
            out.push(Condition { operator: operator.clone(), key: key.clone(), values });
        }
    }
    out
}
