//! Whether AWS would allow the calls the platform made: each call the emulator recorded
//! (`tools/calls.py`), checked against the role of the function that made it, as the
//! SAM-expanded `template.yaml` deploys it.
//!
//! The evaluation is IAM's for identity policies: an explicit `Deny` wins, else some `Allow`
//! must match the action and the resource, and the permissions boundary (where the role has
//! one) must allow it too. Conditions are taken to hold: the check proves that a statement
//! exists for every call, not that its tag conditions match (the emulator records no tags).
//! Policy variables are filled in from the session: `${aws:PrincipalTag/ephemera:environment}`
//! is the environment the session was named for (`ephemera-<environment>`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::iam::covers;
use crate::{venv_bin, workspace_root};

/// One call, as the emulator recorded it.
#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    pub key: String,
    pub account: String,
    /// The role behind the key, when the key came from AssumeRole.
    pub role: Option<String>,
    pub session: Option<String>,
    pub operation: String,
    /// The (action, resource ARN) pairs IAM authorizes the call against.
    pub checks: Vec<(String, String)>,
}

/// The calls recorded in `path` (one JSON object a line). A last line not yet ended is a call
/// still being written, and left for later.
pub fn calls(path: &Path) -> anyhow::Result<Vec<Call>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ended = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut out = Vec::new();
    for line in ended.lines().filter(|l| !l.is_empty()) {
        let value: Json = serde_json::from_str(line).with_context(|| format!("a recorded call: {line}"))?;
        anyhow::ensure!(value.get("error").is_none(), "the emulator could not record a call: {line}");
        out.push(serde_json::from_value(value).with_context(|| format!("a recorded call: {line}"))?);
    }
    Ok(out)
}

/// A template of the repository as deployed: SAM's transform applied (`tools/sam_expand.py`),
/// intrinsics in their long form.
fn expand(relative: &str) -> Json {
    let out = Command::new(venv_bin("python"))
        .arg(workspace_root().join("tools/sam_expand.py"))
        .arg(workspace_root().join(relative))
        .arg("ephemera-code")
        .output()
        .expect("the venv's python runs (make venv)");
    assert!(out.status.success(), "expanding {relative} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the translator writes JSON")
}

/// `template.yaml` as SAM expands it, once per process.
pub fn expanded_template() -> &'static Json {
    static EXPANDED: OnceLock<Json> = OnceLock::new();
    EXPANDED.get_or_init(|| expand("template.yaml"))
}

/// The sandbox accounts' bootstrap, `infra/target-account.yaml`, once per process.
pub fn target_account_template() -> &'static Json {
    static EXPANDED: OnceLock<Json> = OnceLock::new();
    EXPANDED.get_or_init(|| expand("infra/target-account.yaml"))
}

/// What a template's names stand for once deployed: parameters, pseudo parameters, and each
/// resource's `Ref` and attributes (`Logical.Attribute`). A name not given stands for itself
/// in angle brackets, which no ARN matches.
#[derive(Debug, Clone)]
pub struct Deployed {
    values: HashMap<String, Vec<String>>,
}

impl Deployed {
    pub fn new(account: &str, region: &str) -> Self {
        let mut values = HashMap::new();
        for (k, v) in [
            ("AWS::Partition", "aws"),
            ("AWS::Region", region),
            ("AWS::AccountId", account),
            ("AWS::URLSuffix", "amazonaws.com"),
            ("AWS::StackName", "ephemera"),
        ] {
            values.insert(k.to_owned(), vec![v.to_owned()]);
        }
        Self { values }
    }

    /// `name` (a parameter, a resource's `Ref`, or `Logical.Attribute`) stands for `value`.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.values.insert(name.to_owned(), vec![value.to_owned()]);
        self
    }

    /// `name` stands for a list (a `CommaDelimitedList` parameter).
    pub fn set_list(mut self, name: &str, value: &[String]) -> Self {
        self.values.insert(name.to_owned(), value.to_vec());
        self
    }

    fn named(&self, template: &Json, name: &str) -> Vec<String> {
        if let Some(v) = self.values.get(name) {
            return v.clone();
        }
        let parameter = &template["Parameters"][name];
        match (parameter["Default"].as_str(), parameter["Type"].as_str()) {
            (Some(""), Some("CommaDelimitedList")) => vec![],
            (Some(d), Some("CommaDelimitedList")) => d.split(',').map(str::to_owned).collect(),
            (Some(d), _) => vec![d.to_owned()],
            (None, _) => vec![format!("<{name}>")],
        }
    }

    /// The strings `v` stands for (a list flattens; `AWS::NoValue` is none).
    pub fn resolve(&self, template: &Json, v: &Json) -> Vec<String> {
        let one = |v: &Json| self.resolve(template, v).join(",");
        match v {
            Json::String(s) => vec![s.clone()],
            Json::Array(list) => list.iter().flat_map(|i| self.resolve(template, i)).collect(),
            Json::Object(m) if m.len() == 1 => {
                let (f, arg) = m.iter().next().expect("one entry");
                match f.as_str() {
                    "Ref" if arg == "AWS::NoValue" => vec![],
                    "Ref" => self.named(template, arg.as_str().unwrap_or_default()),
                    "Fn::GetAtt" => {
                        let path = match arg {
                            Json::Array(p) => p.iter().map(&one).collect::<Vec<_>>().join("."),
                            other => one(other),
                        };
                        self.named(template, &path)
                    }
                    "Fn::If" => {
                        let branch = if self.condition(template, arg[0].as_str().unwrap_or_default()) { 1 } else { 2 };
                        self.resolve(template, &arg[branch])
                    }
                    "Fn::Join" => vec![self.resolve(template, &arg[1]).join(arg[0].as_str().unwrap_or_default())],
                    "Fn::Sub" => vec![self.substitute(template, arg)],
                    _ => vec![format!("<{f}>")],
                }
            }
            other => vec![other.to_string()],
        }
    }

    fn substitute(&self, template: &Json, arg: &Json) -> String {
        let (text, vars) = match arg {
            Json::Array(a) => (a[0].as_str().unwrap_or_default(), a.get(1).and_then(Json::as_object)),
            other => (other.as_str().unwrap_or_default(), None),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').map(|e| start + e).unwrap_or(rest.len() - 1);
            let name = &rest[start + 2..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(v) = vars.and_then(|v| v.get(name)) {
                out.push_str(&self.resolve(template, v).join(","));
            } else {
                out.push_str(&self.named(template, name).join(","));
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Whether the template's condition `name` holds.
    pub fn condition(&self, template: &Json, name: &str) -> bool {
        self.holds(template, &template["Conditions"][name])
    }

    fn holds(&self, template: &Json, v: &Json) -> bool {
        let Some((f, arg)) = v.as_object().and_then(|m| m.iter().next()) else { return false };
        match f.as_str() {
            "Fn::Not" => !self.holds(template, &arg[0]),
            "Fn::And" => arg.as_array().is_some_and(|a| a.iter().all(|c| self.holds(template, c))),
            "Fn::Or" => arg.as_array().is_some_and(|a| a.iter().any(|c| self.holds(template, c))),
            "Fn::Equals" => self.resolve(template, &arg[0]) == self.resolve(template, &arg[1]),
            "Condition" => self.condition(template, arg.as_str().unwrap_or_default()),
            _ => false,
        }
    }
}

/// One statement of a role's policies, resolved.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The policy it is in: the inline policy's name, or the managed policy's logical id.
    pub policy: String,
    pub sid: String,
    pub allow: bool,
    pub actions: Vec<String>,
    pub not_action: bool,
    pub resources: Vec<String>,
    pub not_resource: bool,
}

impl Grant {
    /// `policy/sid`: how the report names it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.policy, self.sid)
    }

    fn applies(&self, action: &str, resource: &str, vars: &[(&str, &str)]) -> bool {
        let action_named = self.actions.iter().any(|p| covers(p, action));
        let resource_named = self.resources.iter().any(|p| matches_resource(&fill(p, vars), resource));
        action_named != self.not_action && resource_named != self.not_resource
    }
}

/// `${variable}` in a resource pattern, filled in.
fn fill(pattern: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(pattern.to_owned(), |p, (name, value)| p.replace(&format!("${{{name}}}"), value))
}

/// Whether a resource pattern (with `*` and `?`) names `resource`: case-sensitively, as IAM
/// matches ARNs.
pub fn matches_resource(pattern: &str, resource: &str) -> bool {
    fn matches(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => matches(&p[1..], a) || (!a.is_empty() && matches(p, &a[1..])),
            (Some(b'?'), Some(_)) => matches(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x == y => matches(&p[1..], &a[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), resource.as_bytes())
}

/// A role of the template: what its policies grant, and its permissions boundary's grants.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub grants: Vec<Grant>,
    pub boundary: Option<Vec<Grant>>,
}

/// What IAM decides for one (action, resource).
#[derive(Debug)]
pub enum Decision<'a> {
    /// Allowed, by these statements.
    Allowed(Vec<&'a Grant>),
    /// Denied: by an explicit Deny, or (None) because nothing allows it.
    Denied(Option<&'a Grant>),
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
        let mut grants = Vec::new();
        for policy in properties["Policies"].as_array().into_iter().flatten() {
            let name = policy["PolicyName"].as_str().unwrap_or(logical_id);
            grants.extend(document_grants(template, deployed, name, &policy["PolicyDocument"]));
        }
        for arn in properties["ManagedPolicyArns"].as_array().into_iter().flatten() {
            if let Some(id) = arn["Ref"].as_str() {
                grants.extend(managed(template, deployed, id)?);
            }
        }
        let boundary = match properties["PermissionsBoundary"]["Ref"].as_str() {
            Some(id) => Some(managed(template, deployed, id)?),
            None => None,
        };
        Ok(Self { name: logical_id.to_owned(), grants, boundary })
    }

    /// IAM's decision on `action` on `resource`, with policy variables `vars`.
    pub fn decide(&self, action: &str, resource: &str, vars: &[(&str, &str)]) -> Decision<'_> {
        let applying = |g: &&Grant| g.applies(action, resource, vars);
        if ALWAYS_ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(action)) {
            return Decision::Allowed(vec![]);
        }
        if let Some(deny) = self.grants.iter().filter(|g| !g.allow).find(applying) {
            return Decision::Denied(Some(deny));
        }
        let allowing: Vec<&Grant> = self.grants.iter().filter(|g| g.allow).filter(applying).collect();
        let bounded = self.boundary.as_ref().is_none_or(|b| {
            b.iter().filter(|g| g.allow).any(|g| g.applies(action, resource, vars))
                && !b.iter().filter(|g| !g.allow).any(|g| g.applies(action, resource, vars))
        });
        if allowing.is_empty() || !bounded {
            Decision::Denied(None)
        } else {
            Decision::Allowed(allowing)
        }
    }
}

fn managed(template: &Json, deployed: &Deployed, id: &str) -> anyhow::Result<Vec<Grant>> {
    let document = &template["Resources"][id]["Properties"]["PolicyDocument"];
    anyhow::ensure!(document.is_object(), "no managed policy {id} in the template");
    Ok(document_grants(template, deployed, id, document))
}

fn document_grants(template: &Json, deployed: &Deployed, policy: &str, document: &Json) -> Vec<Grant> {
    let statements = match &document["Statement"] {
        Json::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    let mut out = Vec::new();
    for s in statements {
        // A statement present only under a condition.
        let s = match s.get("Fn::If") {
            Some(arg) => {
                let branch = if deployed.condition(template, arg[0].as_str().unwrap_or_default()) { 1 } else { 2 };
                arg[branch].clone()
            }
            None => s,
        };
        if s.get("Ref").is_some_and(|r| r == "AWS::NoValue") {
            continue;
        }
        let list = |key: &str| deployed.resolve(template, &s[key]);
        out.push(Grant {
            policy: policy.to_owned(),
            sid: s["Sid"].as_str().unwrap_or("(no Sid)").to_owned(),
            allow: s["Effect"] == "Allow",
            not_action: s.get("NotAction").is_some(),
            actions: if s.get("NotAction").is_some() { list("NotAction") } else { list("Action") },
            not_resource: s.get("NotResource").is_some(),
            resources: if s.get("NotResource").is_some() { list("NotResource") } else { list("Resource") },
        });
    }
    out
}

/// Whose calls are whose: function access keys and assumed roles, by the role of the template
/// they stand for.
#[derive(Debug, Clone, Default)]
pub struct Principals {
    pub keys: HashMap<String, String>,
    pub roles: HashMap<String, String>,
}

impl Principals {
    fn role_of(&self, call: &Call) -> Option<&String> {
        match &call.role {
            Some(arn) => self.roles.get(arn),
            None => self.keys.get(&call.key),
        }
    }
}

/// A call AWS would deny.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Denial {
    pub role: String,
    pub operation: String,
    pub action: String,
    pub resource: String,
    /// The Deny statement, for an explicit denial.
    pub denied_by: Option<String>,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match &self.denied_by {
            Some(sid) => format!("denied by {sid}"),
            None => "no statement allows it".to_owned(),
        };
        write!(f, "{}: {} needs {} on {} ({why})", self.role, self.operation, self.action, self.resource)
    }
}

/// What the calls showed: the denials, the statements that allowed something, and how many
/// calls were nobody's (the test's own looks, the platform's set-up).
#[derive(Debug, Default)]
pub struct Verdict {
    pub denied: BTreeSet<Denial>,
    /// role → the ids ([`Grant::id`]) of its statements that allowed some call.
    pub exercised: BTreeMap<String, BTreeSet<String>>,
    pub checked: usize,
    pub unattributed: usize,
}

/// Each call checked against the role it was made as.
pub fn check(calls: &[Call], roles: &BTreeMap<String, Role>, principals: &Principals) -> Verdict {
    let mut verdict = Verdict::default();
    for call in calls {
        let Some(role) = principals.role_of(call).and_then(|r| roles.get(r)) else {
            verdict.unattributed += 1;
            continue;
        };
        verdict.checked += 1;
        let environment = call.session.as_deref().and_then(|s| s.strip_prefix("ephemera-")).unwrap_or_default();
        let vars = [("aws:PrincipalTag/ephemera:environment", environment)];
        for (action, resource) in &call.checks {
            match role.decide(action, resource, &vars) {
                Decision::Allowed(by) => {
                    verdict.exercised.entry(role.name.clone()).or_default().extend(by.iter().map(|g| g.id()));
                }
                Decision::Denied(by) => {
                    verdict.denied.insert(Denial {
                        role: role.name.clone(),
                        operation: call.operation.clone(),
                        action: action.clone(),
                        resource: resource.clone(),
                        denied_by: by.map(Grant::id),
                    });
                }
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
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
                        {"Sid": "AllButIam", "Effect": "Allow", "NotAction": "iam:*", "Resource": {"Fn::GetAtt": ["Registry", "Arn"]}}
                    ]}}],
                    "PermissionsBoundary": {"Ref": "Boundary"}
                }},
                "Boundary": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {"Statement": [
                    {"Sid": "OnlyDynamo", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}
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

    fn allowed(role: &Role, action: &str, resource: &str) -> bool {
        matches!(role.decide(action, resource, &[("aws:PrincipalTag/env", "pr-1")]), Decision::Allowed(_))
    }

    #[test]
    fn substitutions_conditions_and_policy_variables_resolve() {
        let role = Role::load(&template(), &deployed(), "Bounded").unwrap();
        assert_eq!(
            role.grants[0].resources,
            ["arn:aws:dynamodb:us-east-1:123456789012:table/ephemera-${aws:PrincipalTag/env}-*"]
        );
        assert!(allowed(&role, "dynamodb:GetItem", TABLE));
        // Actions match case-insensitively; resources do not; the variable is the session's.
        assert!(allowed(&role, "DynamoDB:getitem", TABLE));
        assert!(!allowed(&role, "dynamodb:GetItem", &TABLE.replace("tasks", "Tasks").replace("pr-1", "PR-1")));
        assert!(!allowed(&role, "dynamodb:GetItem", &TABLE.replace("pr-1", "pr-2")));
        // No accounts: the conditional statement is absent.
        assert!(role.grants.iter().all(|g| g.sid != "Assume"));
        let with = deployed().set_list("Accounts", &["111111111111".to_owned()]);
        assert!(Role::load(&template(), &with, "Bounded").unwrap().grants.iter().any(|g| g.sid == "Assume"));
    }

    #[test]
    fn an_explicit_deny_wins_and_the_boundary_limits() {
        let role = Role::load(&template(), &deployed(), "Bounded").unwrap();
        // NotAction allows everything but IAM on the registry; the Deny takes PutItem back.
        assert!(allowed(&role, "dynamodb:UpdateItem", REGISTRY));
        assert!(
            matches!(role.decide("dynamodb:PutItem", REGISTRY, &[]), Decision::Denied(Some(g)) if g.sid == "NoPuts")
        );
        assert!(matches!(role.decide("iam:PassRole", REGISTRY, &[]), Decision::Denied(None)));
        // Allowed by the role, but outside the boundary.
        assert!(matches!(role.decide("sqs:SendMessage", REGISTRY, &[]), Decision::Denied(None)));
        let unbounded = Role { boundary: None, ..role };
        assert!(allowed(&unbounded, "sqs:SendMessage", REGISTRY));
    }

    #[test]
    fn a_call_is_checked_as_its_key_or_session_and_others_are_nobodys() {
        let role = Role::load(&template(), &deployed(), "Bounded").unwrap();
        let roles = BTreeMap::from([("Bounded".to_owned(), role)]);
        let principals = Principals {
            keys: HashMap::from([("AKIAFUNCTION".to_owned(), "Bounded".to_owned())]),
            roles: HashMap::new(),
        };
        let call = |key: &str, action: &str, resource: &str| Call {
            key: key.into(),
            account: "123456789012".into(),
            role: None,
            session: None,
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
}
