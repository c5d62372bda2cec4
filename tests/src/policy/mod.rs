//! Whether AWS would allow the calls the platform made: each call the emulator recorded
//! (`tools/calls.py`), checked against the role of the function that made it, as the
//! SAM-expanded `template.yaml` deploys it.
//!
//! The evaluation is IAM's for identity policies: an explicit `Deny` wins, else some `Allow`
//! must match the action and the resource, and the permissions boundary (where the role has
//! one) must allow it too. The session's principal tags (its session tags, as recorded) fill
//! in `${aws:PrincipalTag/...}` variables and decide `aws:PrincipalTag/...` string conditions;
//! every other condition (resource and request tags, `aws:ResourceAccount`,
//! `lambda:FunctionArn`) is taken to hold: the emulator records neither resources' tags nor
//! request context.

mod deployed;
mod role;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value as Json;

pub use deployed::{expand, expanded_template, target_account_template, Deployed};
pub use role::{Condition, Decision, PrincipalTags, Role, Statement};

/// One call, as the emulator recorded it.
#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    pub key: String,
    pub account: String,
    /// The role behind the key, when the key came from AssumeRole.
    pub role: Option<String>,
    pub session: Option<String>,
    /// That session's tags.
    #[serde(default)]
    pub tags: PrincipalTags,
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
    /// role → the ids ([`Statement::id`]) of its statements that allowed some call.
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
        for (action, resource) in &call.checks {
            match role.decide(action, resource, &call.tags) {
                Decision::Allowed(by) => {
                    verdict.exercised.entry(role.name.clone()).or_default().extend(by.iter().map(|g| g.id()));
                }
                Decision::Denied(by) => {
                    verdict.denied.insert(Denial {
                        role: role.name.clone(),
                        operation: call.operation.clone(),
                        action: action.clone(),
                        resource: resource.clone(),
                        denied_by: by.map(Statement::id),
                    });
                }
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests;
