//! Templates as deployed: expanded by SAM, their intrinsic functions resolved with the names
//! a deployment gives.

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value as Json;

use crate::{venv_bin, workspace_root};

/// A template of the repository as deployed: SAM's transform applied (`tools/sam_expand.py`,
/// functions' code in `code_bucket`), intrinsics in their long form.
pub fn expand(relative: &str, code_bucket: &str) -> Json {
    let out = Command::new(venv_bin("python"))
        .arg(workspace_root().join("tools/sam_expand.py"))
        .arg(workspace_root().join(relative))
        .arg(code_bucket)
        .output()
        .expect("the venv's python runs (make venv)");
    assert!(out.status.success(), "expanding {relative} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the translator writes JSON")
}

/// `template.yaml` as SAM expands it, once per process.
pub fn expanded_template() -> &'static Json {
    static EXPANDED: OnceLock<Json> = OnceLock::new();
    EXPANDED.get_or_init(|| expand("template.yaml", "ephemera-code"))
}

/// The sandbox accounts' bootstrap, `infra/target-account.yaml`, once per process.
pub fn target_account_template() -> &'static Json {
    static EXPANDED: OnceLock<Json> = OnceLock::new();
    EXPANDED.get_or_init(|| expand("infra/target-account.yaml", "ephemera-code"))
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
                    "Fn::If" => self.resolve(template, self.branch(template, arg)),
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
            let Some(end) = rest[start..].find('}').map(|e| start + e) else { break };
            out.push_str(&rest[..start]);
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

    /// The branch of `Fn::If` arguments `arg` that the condition picks.
    pub fn branch<'a>(&self, template: &Json, arg: &'a Json) -> &'a Json {
        &arg[if self.condition(template, arg[0].as_str().unwrap_or_default()) { 1 } else { 2 }]
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
