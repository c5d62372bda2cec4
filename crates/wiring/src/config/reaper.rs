//! The reaper function's section.

use std::time::Duration;

use ephemera_app::reaper::ReaperSettings;

use ephemera_domain::RepoName;

use super::vars::{invalid, Vars};
use super::{shared, ConfigError};

#[derive(Debug, Clone)]
pub struct ReaperConfig {
    /// `EPHEMERA_REAPER_STUCK_MINUTES` (120), `EPHEMERA_REAPER_GRACE_MINUTES` (10),
    /// `EPHEMERA_EXPIRY_NOTICE_HOURS` (24), `EPHEMERA_REAPER_ALLOWED_ACCOUNTS`,
    /// `EPHEMERA_REAPER_ALLOWED_REGIONS`, `EPHEMERA_REAPER_CALLS_PER_SECOND` (5),
    /// `EPHEMERA_PRICE_TABLE`, `EPHEMERA_REAPER_REPAIR_WAIT_SECONDS` (60).
    pub settings: ReaperSettings,
    /// `EPHEMERA_ENVIRONMENT_ROLE_ARN`: the role an environment's stack is deleted as, in that
    /// environment's session (as the provisioner changes it). Unset: the function's own role.
    pub environment_role_arn: Option<String>,
    /// `EPHEMERA_DEPLOY_EXTERNAL_ID`, for the deploy targets' roles (the targets themselves
    /// are in `settings.routes`).
    pub external_id: Option<String>,
    /// Catching up with GitHub (with GitHub credentials).
    pub catch_up: CatchUpConfig,
}

#[derive(Debug, Clone)]
pub struct CatchUpConfig {
    /// `EPHEMERA_GITHUB_RATE_RESERVE` (default 500): requests of GitHub's rate limit left to
    /// the webhook and the notifier; the sweep stops asking GitHub when no more remain.
    pub reserve: u64,
    /// `EPHEMERA_GITHUB_LIGHT_REQUESTS` (default 60): requests a light sweep may make for pull
    /// requests, and as many for webhook deliveries.
    pub light_requests: u64,
    /// `EPHEMERA_GITHUB_HOOK_IDS`: `owner/repo=hook id,...`, the repository webhooks whose failed
    /// deliveries are asked for again when authenticating with a token (an App's are its own).
    pub hook_ids: Vec<(RepoName, u64)>,
}

impl CatchUpConfig {
    fn read(v: &Vars) -> Result<Self, ConfigError> {
        const HOOKS: &str = "EPHEMERA_GITHUB_HOOK_IDS";
        let mut hook_ids = Vec::new();
        for entry in v.list(HOOKS) {
            let bad = |m: String| invalid(HOOKS, m);
            let (repo, id) =
                entry.split_once('=').ok_or_else(|| bad(format!("{entry:?} is not owner/repo=hook id")))?;
            let repo = RepoName::parse(repo.trim()).map_err(|e| bad(e.to_string()))?;
            let id = id.trim().parse().map_err(|_| bad(format!("{id:?} is not a hook id (a number)")))?;
            hook_ids.push((repo, id));
        }
        Ok(Self {
            reserve: v.number("EPHEMERA_GITHUB_RATE_RESERVE", 500)?,
            light_requests: v.number("EPHEMERA_GITHUB_LIGHT_REQUESTS", 60)?,
            hook_ids,
        })
    }
}

impl ReaperConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        let deploy = super::DeployConfig::read(v)?;
        Ok(Self {
            settings: ReaperSettings {
                stuck_after: v.minutes("EPHEMERA_REAPER_STUCK_MINUTES", 120)?,
                grace: v.minutes("EPHEMERA_REAPER_GRACE_MINUTES", 10)?,
                notice_before: v.hours("EPHEMERA_EXPIRY_NOTICE_HOURS", 24)?,
                allowed_accounts: v.list("EPHEMERA_REAPER_ALLOWED_ACCOUNTS"),
                allowed_regions: v.list("EPHEMERA_REAPER_ALLOWED_REGIONS"),
                calls_per_second: v
                    .real("EPHEMERA_REAPER_CALLS_PER_SECOND", "a positive number", |x| x > 0.0)?
                    .unwrap_or(5.0),
                prices: shared::prices(v)?,
                repair_wait: Duration::from_secs(v.number("EPHEMERA_REAPER_REPAIR_WAIT_SECONDS", 60)?),
                routes: deploy.routes,
            },
            environment_role_arn: v.get("EPHEMERA_ENVIRONMENT_ROLE_ARN"),
            external_id: deploy.external_id,
            catch_up: CatchUpConfig::read(v)?,
        })
    }
}
