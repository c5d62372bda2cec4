//! The parts more than one function reads.

use ephemera_domain::blueprint::Policy;
use ephemera_domain::cost::PriceTable;
use ephemera_domain::developer::Quotas;
use ephemera_domain::placement::{Routes, Target, DEFAULT_CEILING};
use ephemera_domain::policy::ExpiryPolicy;
use ephemera_domain::RepoName;

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
    /// `EPHEMERA_GITHUB_APP_ID` and the App's private key: act as that GitHub App, with each
    /// installation's token. Takes the place of a token when set.
    pub app: Option<GitHubApp>,
}

/// A GitHub App: its id and where its private key (PEM) is.
#[derive(Debug, Clone)]
pub struct GitHubApp {
    pub id: String,
    pub key: AppKey,
}

#[derive(Debug, Clone)]
pub enum AppKey {
    /// `EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN` (on AWS).
    Secret(String),
    /// `EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE` (locally).
    File(std::path::PathBuf),
}

impl GitHubConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        let key = match (
            v.get("EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN"),
            v.get("EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE"),
        ) {
            (Some(arn), _) => Some(AppKey::Secret(arn)),
            (None, Some(file)) => Some(AppKey::File(file.into())),
            (None, None) => None,
        };
        let app = match (v.get("EPHEMERA_GITHUB_APP_ID"), key) {
            (Some(id), Some(key)) => Some(GitHubApp { id, key }),
            (Some(_), None) => {
                return Err(ConfigError::Missing(
                    "EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN (or EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE)",
                ))
            }
            (None, Some(_)) => return Err(ConfigError::Missing("EPHEMERA_GITHUB_APP_ID")),
            (None, None) => None,
        };
        Ok(Self {
            api_url: v.text("EPHEMERA_GITHUB_API_URL", "https://api.github.com"),
            token: v.get("EPHEMERA_GITHUB_TOKEN"),
            token_secret_arn: v.get("EPHEMERA_GITHUB_TOKEN_SECRET_ARN"),
            app,
        })
    }

    /// For a function that cannot do without GitHub (the notifier): an App, a token, or the
    /// secret holding one, must be configured.
    pub fn required(self) -> Result<Self, ConfigError> {
        match (&self.app, &self.token, &self.token_secret_arn) {
            (None, None, None) => Err(github_missing()),
            _ => Ok(self),
        }
    }
}

pub(crate) fn github_missing() -> ConfigError {
    ConfigError::Missing("EPHEMERA_GITHUB_APP_ID, EPHEMERA_GITHUB_TOKEN_SECRET_ARN (or EPHEMERA_GITHUB_TOKEN)")
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

/// Deploy targets: the provisioner places and reaches environments by them, the reaper sweeps
/// each one's account.
#[derive(Debug, Clone, Default)]
pub struct DeployConfig {
    /// `EPHEMERA_DEPLOY_ROLE_ARN` (a role ARN, or a comma-separated pool),
    /// `EPHEMERA_DEPLOY_ROLE_ARN_BY_REPOSITORY` (`owner/repo=arn[,arn...],owner/repo=arn`),
    /// `EPHEMERA_DEV_DEPLOY_ROLE_ARN` (a role or pool) and `EPHEMERA_ACCOUNT_STACK_CEILING`
    /// (1800). All unset: environments live in the platform's own account.
    pub routes: Routes,
    /// `EPHEMERA_DEPLOY_EXTERNAL_ID`: the external id the deploy roles' trust policies require.
    pub external_id: Option<String>,
}

impl DeployConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        let pool = |var: &'static str| Target::parse_list(&v.get(var).unwrap_or_default()).map_err(|m| invalid(var, m));
        let routes = Routes {
            default: pool("EPHEMERA_DEPLOY_ROLE_ARN")?,
            by_repository: by_repository(&v.get("EPHEMERA_DEPLOY_ROLE_ARN_BY_REPOSITORY").unwrap_or_default())
                .map_err(|m| invalid("EPHEMERA_DEPLOY_ROLE_ARN_BY_REPOSITORY", m))?,
            dev: pool("EPHEMERA_DEV_DEPLOY_ROLE_ARN")?,
            ceiling: v.number("EPHEMERA_ACCOUNT_STACK_CEILING", DEFAULT_CEILING)?,
        };
        Ok(Self { routes, external_id: v.get("EPHEMERA_DEPLOY_EXTERNAL_ID") })
    }
}

/// `owner/repo=arn,arn,owner/other=arn`: an ARN without `owner/repo=` joins the pool before it.
fn by_repository(list: &str) -> Result<Vec<(RepoName, Vec<Target>)>, String> {
    let mut out: Vec<(RepoName, Vec<Target>)> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((repo, arn)) => {
                let repo = RepoName::parse(repo.trim()).map_err(|e| format!("{item:?}: {e}"))?;
                out.push((repo, vec![Target::parse(arn.trim())?]));
            }
            None => match out.last_mut() {
                Some((_, pool)) => pool.push(Target::parse(item)?),
                None => return Err(format!("{item:?} names no repository: write owner/repo={item}")),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod deploy_tests {
    use super::*;

    #[test]
    fn repositories_route_to_their_own_roles_and_pools() {
        let routes = by_repository(
            "acme/api=arn:aws:iam::222222222222:role/d, arn:aws:iam::333333333333:role/d,acme/web=arn:aws:iam::444444444444:role/d",
        )
        .unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].1.len(), 2);
        assert_eq!(routes[1].1[0].account, "444444444444");
        assert!(by_repository("arn:aws:iam::222222222222:role/d").unwrap_err().contains("names no repository"));
        assert!(by_repository("acme=arn:aws:iam::222222222222:role/d").is_err());
        assert!(by_repository("acme/api=arn:aws:iam::2222:role/d").unwrap_err().contains("is not an IAM role ARN"));
    }
}
