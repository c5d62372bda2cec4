//! The notifier function's section (with [`super::GitHubConfig`], which it requires).

use ephemera_domain::perf::{Gate, LoadPlan, Scenario, SmokeCheck};

use super::vars::{invalid, Vars};
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Where environments live (see [`super::DeployConfig`]): API keys are made there.
    pub deploy: super::DeployConfig,
    /// `EPHEMERA_SMOKE_CHECKS`: `/path=status,...` checked on every ready preview.
    pub smoke: Vec<SmokeCheck>,
    /// `EPHEMERA_LOAD_TEST` (true), `EPHEMERA_LOAD_RATE` (10/s), `EPHEMERA_LOAD_SECONDS` (20),
    /// `EPHEMERA_LOAD_CONCURRENCY` (16). None: no load test.
    pub load: Option<LoadPlan>,
    /// The default load-test request: the GraphQL endpoint with the environment's API key, or
    /// with `EPHEMERA_LOAD_PATH` set, a bare `GET` of that path. A repository's own scenario
    /// (`scenarios/{owner}/{repo}.json` in the bucket) takes precedence.
    pub scenario: Scenario,
    /// `EPHEMERA_REGRESSION_PERCENT` (20), `EPHEMERA_MAX_ERROR_RATE_PERCENT` (1).
    pub gate: Gate,
    /// `EPHEMERA_DASHBOARD_URL`: linked from the pull request comment.
    pub dashboard_url: Option<String>,
    /// `EPHEMERA_PROBE_ALLOWED_HOSTS`: host suffixes a preview URL may have to be probed.
    pub probe_allowed_hosts: Vec<String>,
}

impl NotifierConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        let probe_allowed_hosts = match v.list("EPHEMERA_PROBE_ALLOWED_HOSTS") {
            hosts if hosts.is_empty() => {
                vec![".amazonaws.com".into(), ".cloudfront.net".into(), ".amplifyapp.com".into()]
            }
            hosts => hosts,
        };
        Ok(Self {
            deploy: super::DeployConfig::read(v)?,
            smoke: v.parsed("EPHEMERA_SMOKE_CHECKS", "", SmokeCheck::parse_list)?,
            load: load_plan(v)?,
            scenario: scenario(v)?,
            gate: Gate {
                max_regression: v.percent("EPHEMERA_REGRESSION_PERCENT", 20.0)?,
                max_error_rate: v.percent("EPHEMERA_MAX_ERROR_RATE_PERCENT", 1.0)?,
            },
            dashboard_url: v.get("EPHEMERA_DASHBOARD_URL"),
            probe_allowed_hosts,
        })
    }
}

/// The default load-test request; the path is checked even when the load test is off.
fn scenario(v: &Vars) -> Result<Scenario, ConfigError> {
    let Some(path) = v.get("EPHEMERA_LOAD_PATH") else { return Ok(Scenario::graphql()) };
    if !ephemera_domain::perf::is_preview_path(&path) {
        return Err(invalid("EPHEMERA_LOAD_PATH", format!("{path:?} must be a path starting with a single '/'")));
    }
    Ok(Scenario::get(&path))
}

/// The load test, if on.
fn load_plan(v: &Vars) -> Result<Option<LoadPlan>, ConfigError> {
    if !v.flag("EPHEMERA_LOAD_TEST", true)? {
        return Ok(None);
    }
    Ok(Some(LoadPlan {
        rate: v.bounded("EPHEMERA_LOAD_RATE", 10, LoadPlan::MAX_RATE)?,
        duration_secs: v.bounded("EPHEMERA_LOAD_SECONDS", 20, LoadPlan::MAX_DURATION_SECS)?,
        concurrency: v.bounded("EPHEMERA_LOAD_CONCURRENCY", 16, LoadPlan::MAX_CONCURRENCY)?,
    }))
}
