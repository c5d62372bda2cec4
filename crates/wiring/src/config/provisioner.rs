//! The provisioner function's section.

use std::time::Duration;

use ephemera_domain::cost::PriceTable;
use ephemera_domain::developer::Quotas;
use ephemera_domain::tags::TagSet;

use ephemera_domain::blueprint::Policy;

use super::vars::Vars;
use super::{shared, ConfigError};

#[derive(Debug, Clone)]
pub struct ProvisionerConfig {
    /// `EPHEMERA_COST_TAGS`: `Key=Value,...` added to every stack and resource.
    pub cost_tags: TagSet,
    /// `EPHEMERA_ENVIRONMENT_ROLE_ARN`: the role environment stacks are changed as, assumed per
    /// environment with the session tag `ephemera:environment`. Unset: the function's own role.
    pub environment_role_arn: Option<String>,
    /// `EPHEMERA_ROLE_BOUNDARY_ARN`: permissions boundary put on every IAM role an environment creates.
    pub role_boundary_arn: Option<String>,
    /// `EPHEMERA_STACK_WAIT_SECONDS` (default 600): how long one reconcile waits on a stack.
    pub stack_wait: Duration,
    /// `EPHEMERA_STACK_POLL_MILLIS` (default 3000): how often it looks while waiting.
    pub stack_poll: Duration,
    /// `EPHEMERA_MONTHLY_BUDGET_USD`: new environments wait while the projected monthly spend
    /// of live environments would exceed it. Unset: no budget.
    pub monthly_budget_usd: Option<f64>,
    /// `EPHEMERA_DEV_QUOTA_*`: queued developer environments start within them.
    pub dev_quotas: Quotas,
    /// `EPHEMERA_PRICE_TABLE`: what the budget is projected with.
    pub prices: PriceTable,
    /// What a blueprint may declare: the default policy, widened by
    /// `EPHEMERA_BLUEPRINT_TYPES` (more resource types), `EPHEMERA_BLUEPRINT_MANAGED_POLICIES`
    /// (more attachable managed policy ARNs), `EPHEMERA_BLUEPRINT_PREVIEW_HOSTS` (hosts a
    /// preview URL may name literally: a local preview server) and `EPHEMERA_BLUEPRINT_MACROS`
    /// (allow `Transform`, unchecked after expansion; default false).
    pub blueprint_policy: Policy,
    /// Where environments go (see [`super::DeployConfig`]).
    pub deploy: super::DeployConfig,
}

impl ProvisionerConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            cost_tags: v.parsed("EPHEMERA_COST_TAGS", "", TagSet::parse_cost_tags)?,
            environment_role_arn: v.get("EPHEMERA_ENVIRONMENT_ROLE_ARN"),
            role_boundary_arn: v.get("EPHEMERA_ROLE_BOUNDARY_ARN"),
            stack_wait: Duration::from_secs(v.number("EPHEMERA_STACK_WAIT_SECONDS", 600)?),
            stack_poll: Duration::from_millis(v.number("EPHEMERA_STACK_POLL_MILLIS", 3000)?),
            monthly_budget_usd: v.real("EPHEMERA_MONTHLY_BUDGET_USD", "an amount in USD", |x| x >= 0.0)?,
            dev_quotas: shared::quotas(v)?,
            prices: shared::prices(v)?,
            blueprint_policy: shared::blueprint_policy(v)?,
            deploy: super::DeployConfig::read(v)?,
        })
    }
}
