//! The reaper function's section.

use std::time::Duration;

use ephemera_app::reaper::ReaperSettings;

use super::vars::Vars;
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
        })
    }
}
