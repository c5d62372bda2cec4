//! The notifier function's section (with [`super::GitHubConfig`], which it requires).

use ephemera_domain::perf::{Gate, LoadPlan, SmokeCheck};

use super::vars::{invalid, Vars};
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// `EPHEMERA_SMOKE_CHECKS`: `/path=status,...` checked on every ready preview.
    pub smoke: Vec<SmokeCheck>,
    /// `EPHEMERA_LOAD_TEST` (true), `EPHEMERA_LOAD_PATH` (`/`), `EPHEMERA_LOAD_RATE` (10/s),
    /// `EPHEMERA_LOAD_SECONDS` (20), `EPHEMERA_LOAD_CONCURRENCY` (16). None: no load test.
    pub load: Option<LoadPlan>,
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
            smoke: v.parsed("EPHEMERA_SMOKE_CHECKS", "", SmokeCheck::parse_list)?,
            load: load_plan(v)?,
            gate: Gate {
                max_regression: v.percent("EPHEMERA_REGRESSION_PERCENT", 20.0)?,
                max_error_rate: v.percent("EPHEMERA_MAX_ERROR_RATE_PERCENT", 1.0)?,
            },
            dashboard_url: v.get("EPHEMERA_DASHBOARD_URL"),
            probe_allowed_hosts,
        })
    }
}

/// The load test, if on. The path is checked even when it is off.
fn load_plan(v: &Vars) -> Result<Option<LoadPlan>, ConfigError> {
    let path = v.text("EPHEMERA_LOAD_PATH", "/");
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(invalid("EPHEMERA_LOAD_PATH", format!("{path:?} must be a path starting with a single '/'")));
    }
    if !v.flag("EPHEMERA_LOAD_TEST", true)? {
        return Ok(None);
    }
    Ok(Some(LoadPlan {
        path,
        rate: v.bounded("EPHEMERA_LOAD_RATE", 10, LoadPlan::MAX_RATE)?,
        duration_secs: v.bounded("EPHEMERA_LOAD_SECONDS", 20, LoadPlan::MAX_DURATION_SECS)?,
        concurrency: v.bounded("EPHEMERA_LOAD_CONCURRENCY", 16, LoadPlan::MAX_CONCURRENCY)?,
    }))
}
