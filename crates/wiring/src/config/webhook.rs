//! The webhook function's section.

use std::collections::HashMap;

use ephemera_domain::policy::ExpiryPolicy;
use ephemera_domain::preview::Labels;
use ephemera_domain::RepoName;
use ephemera_github_webhook::WebhookSecrets;

use super::vars::{invalid, Vars};
use super::{shared, ConfigError};

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `EPHEMERA_GITHUB_WEBHOOK_SECRET` (and `..._PREVIOUS` while rotating).
    pub secrets: Option<WebhookSecrets>,
    /// `EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN`: where to read them instead (Secrets Manager).
    pub secret_arn: Option<String>,
    /// `EPHEMERA_ALLOWED_REPOSITORIES`: comma-separated `owner/repo`; empty means all.
    pub allowed_repositories: Vec<String>,
    /// `EPHEMERA_DEPLOY_FORKS`: deploy pull requests from forks (default false).
    pub deploy_forks: bool,
    /// `EPHEMERA_LABEL_PRESERVE` (`preview:preserve`), `EPHEMERA_LABEL_SKIP` (`preview:skip`),
    /// `EPHEMERA_LABEL_FORK_APPROVAL` (`preview`).
    pub labels: Labels,
    /// `EPHEMERA_PR_TTL_HOURS` (default 168) and `EPHEMERA_DEV_TTL_HOURS` (default 8).
    pub expiry: ExpiryPolicy,
    /// `EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY`: `owner/repo=hours,...` overriding the PR TTL.
    pub pr_ttl_by_repository: HashMap<String, chrono::Duration>,
    /// `EPHEMERA_BRANCH_ENVIRONMENTS`: comma-separated branch globs (`feature/*`) whose pushes
    /// get environments of their own. Empty: none.
    pub branches: ephemera_domain::branch::BranchPatterns,
}

impl WebhookConfig {
    pub(crate) fn read(v: &Vars) -> Result<Self, ConfigError> {
        let secret = v.get("EPHEMERA_GITHUB_WEBHOOK_SECRET");
        let previous = v.get("EPHEMERA_GITHUB_WEBHOOK_SECRET_PREVIOUS").map(String::into_bytes);
        let defaults = Labels::default();
        Ok(Self {
            secrets: secret.and_then(|s| WebhookSecrets::new(s, previous)),
            secret_arn: v.get("EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN"),
            allowed_repositories: allowed_repositories(v)?,
            deploy_forks: v.flag("EPHEMERA_DEPLOY_FORKS", false)?,
            labels: Labels {
                preserve: v.get("EPHEMERA_LABEL_PRESERVE").unwrap_or(defaults.preserve),
                skip: v.get("EPHEMERA_LABEL_SKIP").unwrap_or(defaults.skip),
                fork_approval: v.get("EPHEMERA_LABEL_FORK_APPROVAL").unwrap_or(defaults.fork_approval),
            },
            expiry: shared::expiry(v)?,
            pr_ttl_by_repository: pr_ttl_by_repository(v)?,
            branches: ephemera_domain::branch::BranchPatterns::parse(&v.text("EPHEMERA_BRANCH_ENVIRONMENTS", ""))
                .map_err(|e| invalid("EPHEMERA_BRANCH_ENVIRONMENTS", e))?,
        })
    }
}

/// Case-folded `owner/repo` names.
fn allowed_repositories(v: &Vars) -> Result<Vec<String>, ConfigError> {
    v.list("EPHEMERA_ALLOWED_REPOSITORIES")
        .into_iter()
        .map(|r| r.to_ascii_lowercase())
        .map(|r| match RepoName::parse(&r) {
            Ok(_) => Ok(r),
            Err(e) => Err(invalid("EPHEMERA_ALLOWED_REPOSITORIES", e.to_string())),
        })
        .collect()
}

/// Canonical `owner/repo` to its pull requests' time to live.
fn pr_ttl_by_repository(v: &Vars) -> Result<HashMap<String, chrono::Duration>, ConfigError> {
    let bad = |m: String| invalid("EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY", m);
    let mut ttls = HashMap::new();
    for entry in v.list("EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY") {
        let (repo, hours) = entry.split_once('=').ok_or_else(|| bad(format!("{entry:?} is not owner/repo=hours")))?;
        let repo = RepoName::parse(repo.trim()).map_err(|e| bad(e.to_string()))?;
        let hours: i64 = hours
            .trim()
            .parse()
            .ok()
            .filter(|h| *h > 0)
            .ok_or_else(|| bad(format!("{hours:?} is not a positive number of hours")))?;
        ttls.insert(repo.canonical(), chrono::Duration::hours(hours));
    }
    Ok(ttls)
}
