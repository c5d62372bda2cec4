//! A repository's own settings, `.ephemera.yml` at the deployed commit:
//!
//! ```yaml
//! blueprint: infra/preview.yaml      # default: .ephemera/template.yaml if present, else the bucket's
//! ttl: 3d                            # the preview's inactivity TTL (or 12h)
//! paths: ["src/**", "schema/*.graphql"]  # a push changing none of these is not redeployed
//! smoke: ["/health=200"]
//! load_test:
//!   scenario: .ephemera/scenario.json
//! ```
//!
//! Parsed once where it comes in; a malformed file is an error naming its line.

use chrono::Duration;
use glob::{MatchOptions, Pattern};
use serde::Deserialize;

use crate::perf::SmokeCheck;

/// Where the file is looked for.
pub const CONFIG_PATH: &str = ".ephemera.yml";
/// The blueprint used when the file names none, if the repository has it.
pub const DEFAULT_BLUEPRINT: &str = ".ephemera/template.yaml";
/// The longest TTL a repository may set.
pub const MAX_TTL_DAYS: i64 = 30;

#[derive(Debug, Clone, Default)]
pub struct RepoConfig {
    /// The blueprint's path in the repository.
    pub blueprint: Option<String>,
    pub ttl: Option<Duration>,
    /// Empty: every push redeploys.
    pub paths: Vec<Pattern>,
    pub smoke: Option<Vec<SmokeCheck>>,
    /// The load-test scenario's path in the repository.
    pub scenario: Option<String>,
}

/// What is wrong with the file, and on which line (1-based) when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{CONFIG_PATH}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct ConfigError {
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    blueprint: Option<String>,
    ttl: Option<String>,
    #[serde(default)]
    paths: Vec<String>,
    smoke: Option<Vec<String>>,
    load_test: Option<RawLoadTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoadTest {
    scenario: Option<String>,
}

const OPTIONS: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

impl RepoConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: Raw = serde_yaml_ng::from_str(text).map_err(|e| ConfigError {
            line: e.location().map(|l| l.line()),
            message: e.to_string().split(" at line ").next().unwrap_or_default().to_owned(),
        })?;
        let at = |key: &str| line_of(text, key);
        let bad = |key: &str, message: String| ConfigError { line: at(key), message };
        let ttl = raw.ttl.as_deref().map(|t| ttl(t).map_err(|m| bad("ttl", m))).transpose()?;
        let paths = raw
            .paths
            .iter()
            .map(|p| Pattern::new(p).map_err(|e| bad("paths", format!("{p:?} is not a path glob: {e}"))))
            .collect::<Result<_, _>>()?;
        let smoke = match raw.smoke {
            Some(list) => Some(SmokeCheck::parse_list(&list.join(",")).map_err(|m| bad("smoke", m))?),
            None => None,
        };
        let blueprint = raw.blueprint.map(|p| repo_path(p.as_str()).map_err(|m| bad("blueprint", m))).transpose()?;
        let scenario = raw.load_test.and_then(|l| l.scenario);
        let scenario = scenario.map(|p| repo_path(p.as_str()).map_err(|m| bad("scenario", m))).transpose()?;
        Ok(Self { blueprint, ttl, paths, smoke, scenario })
    }

    /// Whether a push that changed `files` asks for a redeploy: always, without `paths`.
    pub fn wants(&self, files: &[String]) -> bool {
        self.paths.is_empty() || files.iter().any(|f| self.paths.iter().any(|p| p.matches_with(f, OPTIONS)))
    }

    /// The globs as written, for messages.
    pub fn paths_text(&self) -> String {
        self.paths.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The first line whose key is `key` (for errors found after parsing).
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines().position(|l| l.trim_start().starts_with(&format!("{key}:"))).map(|i| i + 1)
}

/// `3d` or `12h`, up to [`MAX_TTL_DAYS`].
fn ttl(text: &str) -> Result<Duration, String> {
    let d = crate::command::days_or_hours(text)
        .ok_or_else(|| format!("ttl {text:?} is not a duration such as 3d or 12h"))?;
    if d > Duration::days(MAX_TTL_DAYS) {
        return Err(format!("ttl {text} is longer than {MAX_TTL_DAYS} days"));
    }
    Ok(d)
}

/// A relative path inside the repository: no `..`, no leading `/`, nothing odd.
fn repo_path(p: &str) -> Result<String, String> {
    let p = p.trim();
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|s| !s.is_empty() && s != ".." && s != ".")
        && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(p.to_owned())
    } else {
        Err(format!("{p:?} is not a path inside the repository"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_read() {
        let c = RepoConfig::parse(
            "blueprint: infra/preview.yaml\nttl: 3d\npaths: [\"src/**\", \"schema/*.graphql\"]\nsmoke: [\"/health=200\"]\nload_test:\n  scenario: .ephemera/scenario.json\n",
        )
        .unwrap();
        assert_eq!(c.blueprint.as_deref(), Some("infra/preview.yaml"));
        assert_eq!(c.ttl, Some(Duration::days(3)));
        assert_eq!(c.smoke.as_ref().unwrap()[0].path, "/health");
        assert_eq!(c.scenario.as_deref(), Some(".ephemera/scenario.json"));
        assert_eq!(c.paths_text(), "src/**, schema/*.graphql");
    }

    #[test]
    fn paths_decide_whether_a_push_redeploys() {
        let c = RepoConfig::parse("paths: [\"src/**\", \"schema/*.graphql\"]").unwrap();
        assert!(c.wants(&["README.md".into(), "src/app/main.ts".into()]));
        assert!(c.wants(&["schema/todo.graphql".into()]));
        assert!(!c.wants(&["README.md".into(), "schema/old/x.graphql".into()]));
        assert!(!c.wants(&[]));
        assert!(RepoConfig::parse("").unwrap().wants(&[]), "no paths: every push");
    }

    #[test]
    fn a_malformed_file_names_its_line() {
        let err = |text: &str| RepoConfig::parse(text).unwrap_err();
        let e = err("ttl: 3d\npaths: [src/**\n");
        assert!(e.line.is_some(), "{e:?}");
        assert!(e.to_string().starts_with(".ephemera.yml line"), "{e}");
        assert_eq!(err("blueprint: a.yaml\nttl: forever\n").line, Some(2));
        assert!(err("blueprint: a.yaml\nttl: forever\n").to_string().contains("not a duration"));
        assert_eq!(err("ttl: 3d\n\nbluprint: a.yaml\n").line, Some(3), "unknown keys are errors");
        assert_eq!(err("blueprint: ../secrets.yaml").line, Some(1));
        assert_eq!(err("ttl: 90d").to_string(), ".ephemera.yml line 1: ttl 90d is longer than 30 days");
        assert_eq!(err("ttl: 3日").line, Some(1), "multi-byte text is an error, not a panic");
        assert_eq!(err("paths: [\"src/[\"]").line, Some(1));
        assert_eq!(err("smoke: [\"https://evil.example/=200\"]").line, Some(1));
    }
}
