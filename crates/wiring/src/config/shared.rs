//! The parts more than one function reads.

use ephemera_domain::blueprint::Policy;
use ephemera_domain::cost::PriceTable;
use ephemera_domain::developer::Quotas;
use ephemera_domain::policy::ExpiryPolicy;

use super::vars::{invalid, Vars};
use super::ConfigError;

/// Where the platform lives; every function reads it.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    /// `EPHEMERA_TABLE`: the registry table.
    pub table: String,
    /// `EPHEMERA_BUS`: the platform's EventBridge bus.
    pub bus: String,
    /// `EPHEMERA_BUCKET`: blueprints, per-commit artifacts, seeds, measurements.
    pub bucket: String,
    /// `AWS_REGION`.
    pub region: String,
}

impl SharedConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            table: v.text("EPHEMERA_TABLE", "ephemera"),
            bus: v.text("EPHEMERA_BUS", "ephemera"),
            bucket: v.text("EPHEMERA_BUCKET", "ephemera-artifacts"),
            region: v.text("AWS_REGION", "us-east-1"),
        })
    }
}

/// GitHub's REST API: optional for the webhook (mergeability, approvals), required by the
/// notifier.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// `EPHEMERA_GITHUB_API_URL` (default `https://api.github.com`).
    pub api_url: String,
    /// `EPHEMERA_GITHUB_TOKEN`: a token for the GitHub REST API (local use).
    pub token: Option<String>,
    /// `EPHEMERA_GITHUB_TOKEN_SECRET_ARN`: a Secrets Manager secret holding the token instead.
    pub token_secret_arn: Option<String>,
}

impl GitHubConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            api_url: v.text("EPHEMERA_GITHUB_API_URL", "https://api.github.com"),
            token: v.get("EPHEMERA_GITHUB_TOKEN"),
            token_secret_arn: v.get("EPHEMERA_GITHUB_TOKEN_SECRET_ARN"),
        })
    }

    /// For a function that cannot do without GitHub (the notifier): a token, or the secret
    /// holding one, must be configured.
    pub fn required(self) -> Result<Self, ConfigError> {
        match (&self.token, &self.token_secret_arn) {
            (None, None) => Err(github_missing()),
            _ => Ok(self),
        }
    }
}

pub(crate) fn github_missing() -> ConfigError {
    ConfigError::Missing("EPHEMERA_GITHUB_TOKEN_SECRET_ARN (or EPHEMERA_GITHUB_TOKEN)")
}

/// `EPHEMERA_PR_TTL_HOURS` (168) and `EPHEMERA_DEV_TTL_HOURS` (8): the webhook and self-service.
pub(crate) fn expiry(v: &Vars) -> Result<ExpiryPolicy, ConfigError> {
    Ok(ExpiryPolicy {
        pr_inactivity: v.hours("EPHEMERA_PR_TTL_HOURS", 168)?,
        dev_ttl: v.hours("EPHEMERA_DEV_TTL_HOURS", 8)?,
    })
}

/// `EPHEMERA_DEV_QUOTA_PER_OWNER` (2), `EPHEMERA_DEV_QUOTA_GLOBAL` (50), `EPHEMERA_DEV_QUOTA_MODE`
/// (`queue` or `refuse`): self-service admits by them, the provisioner starts queued ones by them.
pub(crate) fn quotas(v: &Vars) -> Result<Quotas, ConfigError> {
    Ok(Quotas {
        per_owner: v.number("EPHEMERA_DEV_QUOTA_PER_OWNER", 2)? as usize,
        global: v.number("EPHEMERA_DEV_QUOTA_GLOBAL", 50)? as usize,
        queue_when_full: match v.get("EPHEMERA_DEV_QUOTA_MODE").as_deref() {
            None | Some("queue") => true,
            Some("refuse") => false,
            Some(m) => return Err(invalid("EPHEMERA_DEV_QUOTA_MODE", format!("expected queue or refuse, got {m:?}"))),
        },
    })
}

/// `EPHEMERA_PRICE_TABLE`: the reaper's cost report and the provisioner's budget.
pub(crate) fn prices(v: &Vars) -> Result<PriceTable, ConfigError> {
    v.parsed("EPHEMERA_PRICE_TABLE", "", PriceTable::with_overrides)
}

/// What a blueprint may declare; the provisioner and self-service (pushed templates) share it.
pub(crate) fn blueprint_policy(v: &Vars) -> Result<Policy, ConfigError> {
    let mut policy = Policy::default();
    for ty in v.list("EPHEMERA_BLUEPRINT_TYPES") {
        if ty.split("::").count() < 2 || ty.contains(char::is_whitespace) {
            return Err(invalid(
                "EPHEMERA_BLUEPRINT_TYPES",
                format!("{ty:?} is not a resource type like AWS::Kinesis::Stream"),
            ));
        }
        policy.types.insert(ty);
    }
    for arn in v.list("EPHEMERA_BLUEPRINT_MANAGED_POLICIES") {
        if !arn.starts_with("arn:") {
            return Err(invalid("EPHEMERA_BLUEPRINT_MANAGED_POLICIES", format!("{arn:?} is not a managed policy ARN")));
        }
        policy.managed_policies.insert(arn);
    }
    policy.literal_preview_hosts.extend(v.list("EPHEMERA_BLUEPRINT_PREVIEW_HOSTS"));
    policy.macros = v.flag("EPHEMERA_BLUEPRINT_MACROS", false)?;
    Ok(policy)
}
