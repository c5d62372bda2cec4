//! IAM facts, read offline, for the least-privilege checks: the statements a role or managed
//! policy grants in a template, the permissions CloudFormation's resource handlers need (the
//! resource provider schemas cfn-lint ships), and the IAM actions that exist (cfn-lint's policy
//! data).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use crate::workspace_root;

/// One `Allow` statement: its id, the actions it names, its resources and conditions as
/// written, whether it is held to one environment (they use the session's
/// `ephemera:environment` tag), and whether it grants on every resource (`"*"`).
#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: String,
    pub actions: Vec<String>,
    pub scope: String,
    pub one_environment: bool,
    pub everywhere: bool,
}

/// A template file, its short-form intrinsics (`!Sub`, `!Ref`) kept as tagged values.
pub fn template(relative: &str) -> anyhow::Result<Yaml> {
    let path = workspace_root().join(relative);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The statements of resource `logical_id`'s policies: a role's inline `Policies`, or a managed
/// policy's `PolicyDocument`.
pub fn statements(template: &Yaml, logical_id: &str) -> anyhow::Result<Vec<Statement>> {
    let properties = &template["Resources"][logical_id]["Properties"];
    let documents: Vec<&Yaml> = match properties.get("Policies").and_then(Yaml::as_sequence) {
        Some(policies) => policies.iter().map(|p| &p["PolicyDocument"]).collect(),
        None => vec![&properties["PolicyDocument"]],
    };
    let mut out = Vec::new();
    for document in documents {
        let list = document["Statement"].as_sequence().with_context(|| format!("{logical_id}: no statements"))?;
        for s in list {
            anyhow::ensure!(s["Effect"].as_str() == Some("Allow"), "{logical_id}: only Allow statements are read");
            let actions = match &s["Action"] {
                Yaml::String(a) => vec![a.clone()],
                Yaml::Sequence(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                other => anyhow::bail!("{logical_id}: an Action that is not a name or a list: {other:?}"),
            };
            let scope = serde_yaml_ng::to_string(&(&s["Resource"], &s["Condition"]))?;
            let sid = s["Sid"].as_str().unwrap_or("(no Sid)").to_owned();
            let everywhere = match &s["Resource"] {
                Yaml::String(r) => r == "*",
                Yaml::Sequence(list) => list.iter().any(|r| r.as_str() == Some("*")),
                _ => false,
            };
            let one_environment = scope.contains("PrincipalTag/ephemera:environment}");
            out.push(Statement { sid, actions, scope, one_environment, everywhere });
        }
    }
    Ok(out)
}

/// Whether `pattern` (an IAM action, maybe with `*` and `?`) covers `action`, as IAM matches
/// them: case-insensitively.
pub fn covers(pattern: &str, action: &str) -> bool {
    glob(pattern.as_bytes(), action.as_bytes(), true)
}

/// Whether `pattern` (with `*` and `?`) matches `value`, ignoring ASCII case if `fold`.
pub fn glob(p: &[u8], a: &[u8], fold: bool) -> bool {
    match (p.first(), a.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], a, fold) || (!a.is_empty() && glob(p, &a[1..], fold)),
        (Some(b'?'), Some(_)) => glob(&p[1..], &a[1..], fold),
        (Some(x), Some(y)) if x == y || (fold && x.eq_ignore_ascii_case(y)) => glob(&p[1..], &a[1..], fold),
        _ => false,
    }
}

fn cfnlint_data() -> PathBuf {
    let lib = workspace_root().join(".venv/lib");
    let python = std::fs::read_dir(&lib)
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.join("site-packages/cfnlint").is_dir()))
        .unwrap_or_else(|| lib.join("python3"));
    python.join("site-packages/cfnlint/data")
}

/// The resource provider schemas for one region, as cfn-lint ships them.
pub struct Schemas {
    resources: PathBuf,
    index: HashMap<String, String>,
}

/// The permissions a type's handlers name, by handler (`create`, `read`, `update`, `delete`).
pub type Handlers = BTreeMap<String, Vec<String>>;

impl Schemas {
    pub fn load() -> anyhow::Result<Self> {
        let data = cfnlint_data();
        let index = data.join("schemas/providers/us-east-1.json");
        let text = std::fs::read_to_string(&index)
            .with_context(|| format!("reading {} (run `make venv`: cfn-lint ships it)", index.display()))?;
        Ok(Self { resources: data.join("schemas/resources"), index: serde_json::from_str(&text)? })
    }

    /// `type_name`'s handlers and their permissions; none for a type without handlers.
    pub fn handlers(&self, type_name: &str) -> anyhow::Result<Handlers> {
        let hash = self.index.get(type_name).with_context(|| format!("no provider schema for {type_name}"))?;
        let path = self.resources.join(format!("{hash}.json"));
        let schema: Json = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let mut out = Handlers::new();
        for handler in ["create", "read", "update", "delete"] {
            let permissions = schema["handlers"][handler]["permissions"].as_array().cloned().unwrap_or_default();
            out.insert(handler.into(), permissions.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect());
        }
        Ok(out)
    }
}

/// The IAM actions that exist, by service prefix, and whether each names a resource type
/// (cfn-lint's policy data): one that names none is granted only on `"*"`.
pub struct Actions(HashMap<String, HashMap<String, bool>>);

impl Actions {
    pub fn load() -> anyhow::Result<Self> {
        let path = cfnlint_data().join("AdditionalSpecs/Policies.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let services: HashMap<String, Json> = serde_json::from_str(&text)?;
        let actions = services
            .into_iter()
            .map(|(prefix, s)| {
                let names = s["Actions"].as_object().cloned().unwrap_or_default();
                let scoped = |a: &Json| a["Resources"].as_array().is_some_and(|r| !r.is_empty());
                (prefix, names.iter().map(|(name, a)| (name.clone(), scoped(a))).collect())
            })
            .collect();
        Ok(Self(actions))
    }

    /// `service:Name` is an IAM action (a pattern: some action it covers is).
    pub fn exists(&self, action: &str) -> bool {
        let Some((service, name)) = action.split_once(':') else { return false };
        self.0.get(&service.to_ascii_lowercase()).is_some_and(|names| names.keys().any(|n| covers(name, n)))
    }

    /// `service:Name` names a resource type, so a statement may hold it to some resources.
    pub fn is_scopable(&self, action: &str) -> bool {
        let Some((service, name)) = action.split_once(':') else { return false };
        let names = self.0.get(&service.to_ascii_lowercase());
        names.and_then(|n| n.get(&name.to_ascii_lowercase())).copied().unwrap_or(true)
    }
}

/// A right left out on purpose, or granted beyond what handlers name: the actions (patterns)
/// and why.
#[derive(Debug, Clone, Copy)]
pub struct Reason {
    pub actions: &'static [&'static str],
    pub why: &'static str,
}

/// What the check is given besides the role: the actions that exist, and the reasons.
pub struct Reasons<'a> {
    pub actions: &'a Actions,
    /// Handler permissions not granted on purpose.
    pub left_out: &'a [Reason],
    /// Actions granted that no handler names.
    pub beyond: &'a [Reason],
    /// Actions granted on every resource (no resource holds them to one environment).
    pub anywhere: &'a [Reason],
    /// Actions that name no resource type (in cfn-lint's data) kept on the environment's
    /// resources all the same: known gaps, each with why it is not granted on `"*"`.
    pub kept_scoped: &'a [Reason],
}

/// What [`check_stack_role`] found; empty when the role fits the types.
#[derive(Debug, Default, PartialEq)]
pub struct StackRoleReport {
    /// By type: permissions its handlers need that the role does not grant, with no reason given.
    pub missing: BTreeMap<String, BTreeSet<String>>,
    /// `Sid: action` granted that no allowed type's handlers need and no reason covers.
    pub unneeded: BTreeSet<String>,
    /// `Sid: action` granted that is not an IAM action.
    pub unknown: BTreeSet<String>,
    /// Statements not held to one environment.
    pub unscoped: BTreeSet<String>,
    /// `Sid: action` that names no resource type, granted only on some resources: IAM never
    /// matches it, so it is denied.
    pub never_matched: BTreeSet<String>,
    /// Reasons that cover nothing any more.
    pub stale: BTreeSet<String>,
}

impl StackRoleReport {
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

/// The CloudFormation service role against the resource types it may create: every permission
/// their create, read, update and delete handlers name (that is an IAM action) is granted or
/// left out for a reason; every action granted is needed by some handler or has a reason; every
/// statement is held to one environment, or grants only actions with a reason to be anywhere.
pub fn check_stack_role(
    handlers: &BTreeMap<String, Handlers>,
    granted: &[Statement],
    why: &Reasons,
) -> StackRoleReport {
    let Reasons { actions, left_out, beyond, anywhere, kept_scoped } = why;
    let mut report = StackRoleReport::default();
    let grants = |a: &str| granted.iter().flat_map(|s| &s.actions).any(|g| covers(g, a));
    let mut used: HashSet<&str> = HashSet::new();
    for (type_name, by_handler) in handlers {
        for permission in by_handler.values().flatten().filter(|p| actions.exists(p) && !grants(p)) {
            match left_out.iter().find(|r| r.actions.iter().any(|pat| covers(pat, permission))) {
                Some(r) => _ = used.insert(r.why),
                None => _ = report.missing.entry(type_name.clone()).or_default().insert(permission.clone()),
            }
        }
    }
    let needed = |a: &str| handlers.values().flat_map(|h| h.values().flatten()).any(|p| covers(a, p));
    for s in granted {
        let reason = |a: &String| anywhere.iter().find(|r| r.actions.iter().any(|pat| covers(pat, a)));
        match s.actions.iter().map(reason).collect::<Option<Vec<_>>>() {
            _ if s.one_environment => {}
            Some(reasons) => used.extend(reasons.into_iter().map(|r| r.why)),
            None => _ = report.unscoped.insert(s.sid.clone()),
        }
        for a in s.actions.iter().filter(|a| !s.everywhere && actions.exists(a) && !actions.is_scopable(a)) {
            match kept_scoped.iter().find(|r| r.actions.iter().any(|pat| covers(pat, a))) {
                Some(r) => _ = used.insert(r.why),
                None => _ = report.never_matched.insert(format!("{}: {a}", s.sid)),
            }
        }
        for a in &s.actions {
            if !actions.exists(a) {
                report.unknown.insert(format!("{}: {a}", s.sid));
            } else if let Some(r) = beyond.iter().find(|r| r.actions.iter().any(|pat| covers(pat, a))) {
                used.insert(r.why);
            } else if !needed(a) {
                report.unneeded.insert(format!("{}: {a}", s.sid));
            }
        }
    }
    report.stale = left_out
        .iter()
        .chain(*beyond)
        .chain(*anywhere)
        .chain(*kept_scoped)
        .filter(|r| !used.contains(r.why))
        .map(|r| r.why.to_owned())
        .collect();
    report
}

/// Each type's handlers, read once.
pub fn handlers_of(schemas: &Schemas, types: &[&str]) -> anyhow::Result<BTreeMap<String, Handlers>> {
    types.iter().map(|t| Ok(((*t).to_owned(), schemas.handlers(t)?))).collect()
}

/// IAM's size quotas, in characters without whitespace: a managed policy, and all of one role's
/// inline policies together.
pub const MANAGED_POLICY_QUOTA: usize = 6_144;
pub const ROLE_INLINE_QUOTA: usize = 10_240;

/// Each managed policy's and each role's inline policies' size (as IAM counts it, with the
/// longest values the template's substitutions can take) and its quota, by logical id.
pub fn policy_sizes(template: &Yaml) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let Some(resources) = template["Resources"].as_mapping() else { return out };
    for (id, r) in resources {
        let id = id.as_str().unwrap_or_default().to_owned();
        let properties = &r["Properties"];
        match r["Type"].as_str() {
            Some("AWS::IAM::ManagedPolicy") => {
                out.push((id, rendered_size(&properties["PolicyDocument"]), MANAGED_POLICY_QUOTA));
            }
            Some("AWS::IAM::Role") => {
                let inline = properties.get("Policies").and_then(Yaml::as_sequence).cloned().unwrap_or_default();
                let size = inline.iter().map(|p| rendered_size(&p["PolicyDocument"])).sum();
                out.push((id, size, ROLE_INLINE_QUOTA));
            }
            _ => {}
        }
    }
    out
}

/// A policy document's size once CloudFormation has resolved it: `!Sub` with the longest
/// partition and region names, 12-digit accounts, and 64 characters for other names; `!Ref` an
/// ARN of 96.
fn rendered_size(document: &Yaml) -> usize {
    fn render(v: &Yaml) -> Json {
        match v {
            Yaml::Tagged(t) if t.tag == "Sub" => Json::String(substituted(t.value.as_str().unwrap_or_default())),
            Yaml::Tagged(t) if t.tag == "Ref" || t.tag == "GetAtt" => Json::String("a".repeat(96)),
            Yaml::Tagged(t) => render(&t.value),
            Yaml::Sequence(list) => Json::Array(list.iter().map(render).collect()),
            Yaml::Mapping(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), render(v))).collect())
            }
            other => serde_json::to_value(other).unwrap_or(Json::Null),
        }
    }
    let text = render(document).to_string();
    text.chars().filter(|c| !c.is_whitespace()).count()
}

fn substituted(text: &str) -> String {
    let text = text.replace("${AWS::Partition}", "aws-us-gov").replace("${AWS::Region}", "ap-southeast-2");
    let text = text.replace("${AWS::AccountId}", "123456789012").replace("${!", "${");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else { break };
        let name = &rest[start + 2..start + end];
        out.push_str(&rest[..start]);
        // What the policy language itself substitutes stays as written.
        match name.contains(':') && !name.starts_with("AWS::") {
            true => out.push_str(&rest[start..=start + end]),
            false => out.push_str(&"a".repeat(64)),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}
