//! The self-service function's section (it serves the dashboard's data too, which needs no
//! more than the shared section).

use ephemera_domain::developer::{Admin, Quotas};
use ephemera_domain::policy::ExpiryPolicy;

use super::vars::Vars;
use super::{shared, ConfigError};

#[derive(Debug, Clone)]
pub struct SelfServiceConfig {
    /// Where environments live (see [`super::DeployConfig`]): API keys are made there.
    pub deploy: super::DeployConfig,
    /// `EPHEMERA_DEV_QUOTA_PER_OWNER` (2), `EPHEMERA_DEV_QUOTA_GLOBAL` (50),
    /// `EPHEMERA_DEV_QUOTA_MODE` (`queue` or `refuse`): live developer environments.
    pub dev_quotas: Quotas,
    /// `EPHEMERA_ADMINS`: IAM user and role ARNs that act on every environment (every session
    /// of a listed role). A session ARN is refused: anyone who may assume the role can name one.
    pub admins: Vec<Admin>,
    /// `EPHEMERA_PR_TTL_HOURS` (default 168) and `EPHEMERA_DEV_TTL_HOURS` (default 8).
    pub expiry: ExpiryPolicy,
    /// `EPHEMERA_DEV_MAX_TTL_HOURS` (168): the longest a developer environment is given at once.
    pub dev_max_ttl: chrono::Duration,
    /// `EPHEMERA_DEV_MAX_PRESERVE_DAYS` (30): the longest a developer may preserve their
    /// environment; past it, only an admin can renew.
    pub dev_max_preserve: chrono::Duration,
    /// `EPHEMERA_BLUEPRINT_*`: what a pushed template may declare, as for the provisioner.
    pub blueprint_policy: ephemera_domain::blueprint::Policy,
}

impl SelfServiceConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            deploy: super::DeployConfig::read(v)?,
            dev_quotas: shared::quotas(v)?,
            admins: v
                .list("EPHEMERA_ADMINS")
                .iter()
                .map(|a| Admin::parse(a).map_err(|e| super::vars::invalid("EPHEMERA_ADMINS", e)))
                .collect::<Result<_, _>>()?,
            expiry: shared::expiry(v)?,
            dev_max_ttl: v.hours("EPHEMERA_DEV_MAX_TTL_HOURS", 168)?,
            dev_max_preserve: chrono::Duration::days(v.bounded("EPHEMERA_DEV_MAX_PRESERVE_DAYS", 30, 3650)?.into()),
            blueprint_policy: shared::blueprint_policy(v)?,
        })
    }
}
