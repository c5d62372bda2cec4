//! Configuration, read once at start-up from environment variables.
//! Every error names the variable at fault.

use std::time::Duration;

use ephemera_domain::policy::ExpiryPolicy;
use ephemera_domain::tags::TagSet;
use ephemera_github_webhook::WebhookSecrets;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set; it is required")]
    Missing(&'static str),
    #[error("{var} is invalid: {message}")]
    Invalid { var: &'static str, message: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `EPHEMERA_TABLE`: the registry table.
    pub table: String,
    /// `EPHEMERA_BUS`: the platform's EventBridge bus.
    pub bus: String,
    /// `EPHEMERA_BUCKET`: blueprints, per-commit artifacts, seeds.
    pub bucket: String,
    /// `EPHEMERA_GITHUB_WEBHOOK_SECRET` (and `..._PREVIOUS` while rotating).
    pub webhook_secrets: Option<WebhookSecrets>,
    /// `EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN`: where to read them instead (Secrets Manager).
    pub webhook_secret_arn: Option<String>,
    /// `EPHEMERA_ALLOWED_REPOSITORIES`: comma-separated `owner/repo`; empty means all.
    pub allowed_repositories: Vec<String>,
    /// `EPHEMERA_DEPLOY_FORKS`: deploy pull requests from forks (default false).
    pub deploy_forks: bool,
    /// `EPHEMERA_COST_TAGS`: `Key=Value,...` added to every stack and resource.
    pub cost_tags: TagSet,
    /// `EPHEMERA_PR_TTL_HOURS` (default 168) and `EPHEMERA_DEV_TTL_HOURS` (default 8).
    pub expiry: ExpiryPolicy,
    /// `EPHEMERA_STACK_ROLE_ARN`: the CloudFormation service role for environment stacks.
    pub stack_role_arn: Option<String>,
    /// `EPHEMERA_ROLE_BOUNDARY_ARN`: permissions boundary put on every IAM role an environment creates.
    pub role_boundary_arn: Option<String>,
    /// `EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY`: `owner/repo=hours,...` overriding the PR TTL.
    pub pr_ttl_by_repository: std::collections::HashMap<String, chrono::Duration>,
    /// The reaper's settings (`EPHEMERA_REAPER_*`, `EPHEMERA_EXPIRY_NOTICE_HOURS`, `EPHEMERA_PRICE_TABLE`).
    pub reaper: crate::reaper::ReaperSettings,
    /// `EPHEMERA_DEV_QUOTA_PER_OWNER` (2), `EPHEMERA_DEV_QUOTA_GLOBAL` (50),
    /// `EPHEMERA_DEV_QUOTA_MODE` (`queue` or `refuse`): live developer environments.
    pub dev_quotas: ephemera_domain::developer::Quotas,
    /// `EPHEMERA_ADMINS`: principal ARNs that act on every environment.
    pub admins: Vec<String>,
    /// `EPHEMERA_DEV_MAX_TTL_HOURS` (168): the longest a developer environment is given at once.
    pub dev_max_ttl: chrono::Duration,
    /// `AWS_REGION` (for client configs).
    pub region: String,
    /// `EPHEMERA_MONTHLY_BUDGET_USD`: new environments wait while the projected monthly spend
    /// of live environments would exceed it. Unset: no budget.
    pub monthly_budget_usd: Option<f64>,
    /// `EPHEMERA_STACK_WAIT_SECONDS` (default 600): how long one reconcile waits on a stack.
    pub stack_wait: Duration,
    /// `EPHEMERA_STACK_POLL_MILLIS` (default 3000): how often it looks while waiting.
    pub stack_poll: Duration,
    /// `EPHEMERA_LABEL_PRESERVE` (`preview:preserve`), `EPHEMERA_LABEL_SKIP` (`preview:skip`),
    /// `EPHEMERA_LABEL_FORK_APPROVAL` (`preview`).
    pub labels: ephemera_domain::preview::Labels,
    /// `EPHEMERA_GITHUB_API_URL` (default `https://api.github.com`).
    pub github_api_url: String,
    /// `EPHEMERA_GITHUB_TOKEN`: a token for the GitHub REST API (local use).
    pub github_token: Option<String>,
    /// `EPHEMERA_GITHUB_TOKEN_SECRET_ARN`: a Secrets Manager secret holding the token instead.
    pub github_token_secret_arn: Option<String>,
    /// `EPHEMERA_SMOKE_CHECKS` (`/=200,...`), `EPHEMERA_LOAD_TEST` (true), `EPHEMERA_LOAD_PATH`
    /// (`/`), `EPHEMERA_LOAD_RATE` (10/s), `EPHEMERA_LOAD_SECONDS` (20), `EPHEMERA_LOAD_CONCURRENCY`
    /// (16), `EPHEMERA_REGRESSION_PERCENT` (20), `EPHEMERA_MAX_ERROR_RATE_PERCENT` (1),
    /// `EPHEMERA_DASHBOARD_URL`.
    pub feedback: crate::feedback::FeedbackSettings,
    /// `EPHEMERA_PROBE_ALLOWED_HOSTS`: host suffixes a preview URL may have to be probed.
    pub probe_allowed_hosts: Vec<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let text = |k: &'static str, default: &str| get(k).unwrap_or_else(|| default.to_owned());
        let number = |k: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or(ConfigError::Invalid {
                    var: k,
                    message: format!("expected a positive whole number, got {v:?}"),
                }),
            }
        };
        let flag = |k: &'static str| -> Result<bool, ConfigError> {
            match get(k).as_deref() {
                None | Some("false" | "0" | "no") => Ok(false),
                Some("true" | "1" | "yes") => Ok(true),
                Some(v) => Err(ConfigError::Invalid { var: k, message: format!("expected true or false, got {v:?}") }),
            }
        };

        let secret = get("EPHEMERA_GITHUB_WEBHOOK_SECRET");
        let previous = get("EPHEMERA_GITHUB_WEBHOOK_SECRET_PREVIOUS").map(String::into_bytes);
        let webhook_secrets = secret.and_then(|s| WebhookSecrets::new(s, previous));

        let allowed_repositories = get("EPHEMERA_ALLOWED_REPOSITORIES")
            .map(|v| {
                v.split(',')
                    .map(|r| r.trim().to_ascii_lowercase())
                    .filter(|r| !r.is_empty())
                    .map(|r| match ephemera_domain::RepoName::parse(&r) {
                        Ok(_) => Ok(r),
                        Err(e) => {
                            Err(ConfigError::Invalid { var: "EPHEMERA_ALLOWED_REPOSITORIES", message: e.to_string() })
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let cost_tags = TagSet::parse_cost_tags(&text("EPHEMERA_COST_TAGS", ""))
            .map_err(|e| ConfigError::Invalid { var: "EPHEMERA_COST_TAGS", message: e.to_string() })?;

        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| v.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect())
                .unwrap_or_default()
        };
        let mut pr_ttl_by_repository = std::collections::HashMap::new();
        for entry in list("EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY") {
            let bad = |m: String| ConfigError::Invalid { var: "EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY", message: m };
            let (repo, hours) =
                entry.split_once('=').ok_or_else(|| bad(format!("{entry:?} is not owner/repo=hours")))?;
            let repo = ephemera_domain::RepoName::parse(repo.trim()).map_err(|e| bad(e.to_string()))?;
            let hours: i64 = hours
                .trim()
                .parse()
                .ok()
                .filter(|h| *h > 0)
                .ok_or_else(|| bad(format!("{hours:?} is not a positive number of hours")))?;
            pr_ttl_by_repository.insert(repo.canonical(), chrono::Duration::hours(hours));
        }
        let calls_per_second = match get("EPHEMERA_REAPER_CALLS_PER_SECOND") {
            None => 5.0,
            Some(v) => v.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0).ok_or(ConfigError::Invalid {
                var: "EPHEMERA_REAPER_CALLS_PER_SECOND",
                message: format!("expected a positive number, got {v:?}"),
            })?,
        };
        let reaper = crate::reaper::ReaperSettings {
            stuck_after: chrono::Duration::minutes(number("EPHEMERA_REAPER_STUCK_MINUTES", 120)? as i64),
            grace: chrono::Duration::minutes(number("EPHEMERA_REAPER_GRACE_MINUTES", 10)? as i64),
            notice_before: chrono::Duration::hours(number("EPHEMERA_EXPIRY_NOTICE_HOURS", 24)? as i64),
            allowed_accounts: list("EPHEMERA_REAPER_ALLOWED_ACCOUNTS"),
            allowed_regions: list("EPHEMERA_REAPER_ALLOWED_REGIONS"),
            calls_per_second,
            prices: ephemera_domain::cost::PriceTable::with_overrides(&text("EPHEMERA_PRICE_TABLE", ""))
                .map_err(|m| ConfigError::Invalid { var: "EPHEMERA_PRICE_TABLE", message: m })?,
            repair_wait: Duration::from_secs(number("EPHEMERA_REAPER_REPAIR_WAIT_SECONDS", 60)?),
        };
        let monthly_budget_usd = match get("EPHEMERA_MONTHLY_BUDGET_USD") {
            None => None,
            Some(v) => {
                Some(v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or(ConfigError::Invalid {
                    var: "EPHEMERA_MONTHLY_BUDGET_USD",
                    message: format!("expected an amount in USD, got {v:?}"),
                })?)
            }
        };
        let dev_quotas = ephemera_domain::developer::Quotas {
            per_owner: number("EPHEMERA_DEV_QUOTA_PER_OWNER", 2)? as usize,
            global: number("EPHEMERA_DEV_QUOTA_GLOBAL", 50)? as usize,
            queue_when_full: match get("EPHEMERA_DEV_QUOTA_MODE").as_deref() {
                None | Some("queue") => true,
                Some("refuse") => false,
                Some(v) => {
                    return Err(ConfigError::Invalid {
                        var: "EPHEMERA_DEV_QUOTA_MODE",
                        message: format!("expected queue or refuse, got {v:?}"),
                    })
                }
            },
        };
        let percent = |k: &'static str, default: f64| -> Result<f64, ConfigError> {
            match get(k) {
                None => Ok(default / 100.0),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .map(|x| x / 100.0)
                    .ok_or(ConfigError::Invalid { var: k, message: format!("expected a percentage, got {v:?}") }),
            }
        };
        let smoke = ephemera_domain::perf::SmokeCheck::parse_list(&text("EPHEMERA_SMOKE_CHECKS", ""))
            .map_err(|m| ConfigError::Invalid { var: "EPHEMERA_SMOKE_CHECKS", message: m })?;
        let load_path = text("EPHEMERA_LOAD_PATH", "/");
        if !load_path.starts_with('/') || load_path.starts_with("//") {
            return Err(ConfigError::Invalid {
                var: "EPHEMERA_LOAD_PATH",
                message: format!("{load_path:?} must be a path starting with a single '/'"),
            });
        }
        let bounded = |k: &'static str, default: u64, max: u32| -> Result<u32, ConfigError> {
            let v = number(k, default)?;
            u32::try_from(v)
                .ok()
                .filter(|v| *v <= max)
                .ok_or(ConfigError::Invalid { var: k, message: format!("{v} is above the limit of {max}") })
        };
        use ephemera_domain::perf::LoadPlan;
        let load = flag_default("EPHEMERA_LOAD_TEST", true, &get)?
            .then(|| -> Result<LoadPlan, ConfigError> {
                Ok(LoadPlan {
                    path: load_path.clone(),
                    rate: bounded("EPHEMERA_LOAD_RATE", 10, LoadPlan::MAX_RATE)?,
                    duration_secs: bounded("EPHEMERA_LOAD_SECONDS", 20, LoadPlan::MAX_DURATION_SECS)?,
                    concurrency: bounded("EPHEMERA_LOAD_CONCURRENCY", 16, LoadPlan::MAX_CONCURRENCY)?,
                })
            })
            .transpose()?;
        let feedback = crate::feedback::FeedbackSettings {
            bucket: text("EPHEMERA_BUCKET", "ephemera-artifacts"),
            smoke,
            load,
            gate: ephemera_domain::perf::Gate {
                max_regression: percent("EPHEMERA_REGRESSION_PERCENT", 20.0)?,
                max_error_rate: percent("EPHEMERA_MAX_ERROR_RATE_PERCENT", 1.0)?,
            },
            dashboard_url: get("EPHEMERA_DASHBOARD_URL"),
        };
        let defaults = ephemera_domain::preview::Labels::default();
        let labels = ephemera_domain::preview::Labels {
            preserve: get("EPHEMERA_LABEL_PRESERVE").unwrap_or(defaults.preserve),
            skip: get("EPHEMERA_LABEL_SKIP").unwrap_or(defaults.skip),
            fork_approval: get("EPHEMERA_LABEL_FORK_APPROVAL").unwrap_or(defaults.fork_approval),
        };
        let probe_allowed_hosts = match list("EPHEMERA_PROBE_ALLOWED_HOSTS") {
            hosts if hosts.is_empty() => {
                vec![".amazonaws.com".into(), ".cloudfront.net".into(), ".amplifyapp.com".into()]
            }
            hosts => hosts,
        };
        Ok(Self {
            labels,
            github_api_url: text("EPHEMERA_GITHUB_API_URL", "https://api.github.com"),
            github_token: get("EPHEMERA_GITHUB_TOKEN"),
            github_token_secret_arn: get("EPHEMERA_GITHUB_TOKEN_SECRET_ARN"),
            feedback,
            probe_allowed_hosts,
            dev_quotas,
            admins: list("EPHEMERA_ADMINS"),
            dev_max_ttl: chrono::Duration::hours(number("EPHEMERA_DEV_MAX_TTL_HOURS", 168)? as i64),
            region: text("AWS_REGION", "us-east-1"),
            monthly_budget_usd,
            pr_ttl_by_repository,
            reaper,
            table: text("EPHEMERA_TABLE", "ephemera"),
            bus: text("EPHEMERA_BUS", "ephemera"),
            bucket: text("EPHEMERA_BUCKET", "ephemera-artifacts"),
            webhook_secrets,
            webhook_secret_arn: get("EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN"),
            allowed_repositories,
            deploy_forks: flag("EPHEMERA_DEPLOY_FORKS")?,
            cost_tags,
            expiry: ExpiryPolicy {
                pr_inactivity: chrono::Duration::hours(number("EPHEMERA_PR_TTL_HOURS", 168)? as i64),
                dev_ttl: chrono::Duration::hours(number("EPHEMERA_DEV_TTL_HOURS", 8)? as i64),
            },
            stack_role_arn: get("EPHEMERA_STACK_ROLE_ARN"),
            role_boundary_arn: get("EPHEMERA_ROLE_BOUNDARY_ARN"),
            stack_wait: Duration::from_secs(number("EPHEMERA_STACK_WAIT_SECONDS", 600)?),
            stack_poll: Duration::from_millis(number("EPHEMERA_STACK_POLL_MILLIS", 3000)?),
        })
    }
}

fn flag_default(k: &'static str, default: bool, get: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    match get(k).as_deref() {
        None => Ok(default),
        Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(v) => Err(ConfigError::Invalid { var: k, message: format!("expected true or false, got {v:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.table, "ephemera");
        assert_eq!(c.expiry, ExpiryPolicy::default());
        assert!(!c.deploy_forks);
        assert!(c.allowed_repositories.is_empty());
        assert!(c.webhook_secrets.is_none() && c.webhook_secret_arn.is_none());
        assert_eq!(c.labels, ephemera_domain::preview::Labels::default());
        assert_eq!(c.feedback.gate, ephemera_domain::perf::Gate { max_regression: 0.2, max_error_rate: 0.01 });
        assert_eq!(c.feedback.load.as_ref().map(|l| (l.rate, l.duration_secs)), Some((10, 20)));
        assert!(c.feedback.smoke.is_empty() && c.github_token.is_none());
        assert_eq!(c.github_api_url, "https://api.github.com");
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value) in [
            ("EPHEMERA_PR_TTL_HOURS", "seven"),
            ("EPHEMERA_DEV_TTL_HOURS", "0"),
            ("EPHEMERA_DEPLOY_FORKS", "maybe"),
            ("EPHEMERA_COST_TAGS", "ephemera:kind=x"),
            ("EPHEMERA_ALLOWED_REPOSITORIES", "not-a-repo"),
            ("EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY", "acme/web"),
            ("EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY", "acme/web=-1"),
            ("EPHEMERA_REAPER_CALLS_PER_SECOND", "fast"),
            ("EPHEMERA_PRICE_TABLE", "AWS::S3::Bucket=free"),
            ("EPHEMERA_MONTHLY_BUDGET_USD", "lots"),
            ("EPHEMERA_SMOKE_CHECKS", "https://evil.example/=200"),
            ("EPHEMERA_LOAD_PATH", "//evil.example/"),
            ("EPHEMERA_LOAD_RATE", "1000"),
            ("EPHEMERA_LOAD_SECONDS", "3600"),
            ("EPHEMERA_LOAD_TEST", "sometimes"),
            ("EPHEMERA_REGRESSION_PERCENT", "-5"),
        ] {
            let err = cfg(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn parses_values() {
        let c = cfg(&[
            ("EPHEMERA_ALLOWED_REPOSITORIES", "Acme/Todo-App, acme/web"),
            ("EPHEMERA_COST_TAGS", "CostCenter=platform"),
            ("EPHEMERA_DEPLOY_FORKS", "true"),
            ("EPHEMERA_GITHUB_WEBHOOK_SECRET", "s3cret"),
            ("EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY", "Acme/Web=48"),
            ("EPHEMERA_REAPER_ALLOWED_REGIONS", "eu-west-1, us-east-1"),
        ])
        .unwrap();
        assert_eq!(c.pr_ttl_by_repository.get("acme/web"), Some(&chrono::Duration::hours(48)));
        assert_eq!(c.reaper.allowed_regions, vec!["eu-west-1", "us-east-1"]);
        assert_eq!(c.allowed_repositories, vec!["acme/todo-app", "acme/web"]);
        assert_eq!(c.cost_tags.get("CostCenter"), Some("platform"));
        assert!(c.deploy_forks);
        assert!(c.webhook_secrets.is_some());
    }
}
