//! Configuration, read once at start-up from environment variables, a section per service:
//! each function reads only the sections it runs, and every error names the variable at fault.
//!
//! | function | sections |
//! |---|---|
//! | webhook | [`SharedConfig`], [`WebhookConfig`], [`GitHubConfig`] |
//! | provisioner | [`SharedConfig`], [`ProvisionerConfig`] |
//! | reaper | [`SharedConfig`], [`ReaperConfig`]; with GitHub, [`GitHubConfig`] and [`WebhookConfig`] |
//! | selfservice (and the dashboard's data) | [`SharedConfig`], [`SelfServiceConfig`] |
//! | stack-events | [`SharedConfig`] |
//! | notifier | [`SharedConfig`], [`NotifierConfig`], [`GitHubConfig`] |
//! | the local runner | all of them: [`Config`] |

mod notifier;
mod provisioner;
mod reaper;
mod selfservice;
mod shared;
mod vars;
mod webhook;

pub use notifier::NotifierConfig;
pub use provisioner::ProvisionerConfig;
pub use reaper::{CatchUpConfig, ReaperConfig};
pub use selfservice::SelfServiceConfig;
pub(crate) use shared::github_missing;
pub use shared::{AppKey, DeployConfig, GitHubApp, GitHubConfig, SharedConfig};
pub use webhook::WebhookConfig;

use vars::Vars;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set; it is required")]
    Missing(&'static str),
    #[error("{var} is invalid: {message}")]
    Invalid { var: &'static str, message: String },
}

/// Every section, for what runs every service (the local runner, the tests).
#[derive(Debug, Clone)]
pub struct Config {
    pub shared: SharedConfig,
    pub github: GitHubConfig,
    pub webhook: WebhookConfig,
    pub provisioner: ProvisionerConfig,
    pub reaper: ReaperConfig,
    pub selfservice: SelfServiceConfig,
    pub notifier: NotifierConfig,
}

impl Config {
    fn read(v: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            shared: SharedConfig::read(v)?,
            github: GitHubConfig::read(v)?,
            webhook: WebhookConfig::read(v)?,
            provisioner: ProvisionerConfig::read(v)?,
            reaper: ReaperConfig::read(v)?,
            selfservice: SelfServiceConfig::read(v)?,
            notifier: NotifierConfig::read(v)?,
        })
    }
}

/// `from_env` and `from_lookup` for each section.
macro_rules! sections {
    ($($section:ty),*) => {$(
        impl $section {
            /// Reads the section from the process's environment variables.
            pub fn from_env() -> Result<Self, ConfigError> {
                Self::from_lookup(|k| std::env::var(k).ok())
            }

            /// Reads the section through `get`, which gives a variable's value if it is set.
            pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
                Self::read(&Vars::new(&get))
            }
        }
    )*};
}

sections!(
    Config,
    SharedConfig,
    GitHubConfig,
    WebhookConfig,
    ProvisionerConfig,
    ReaperConfig,
    SelfServiceConfig,
    NotifierConfig
);

#[cfg(test)]
mod tests {
    use super::*;
    use ephemera_domain::policy::ExpiryPolicy;
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    /// The variables a section asks for (none set).
    fn reads(section: impl Fn(&dyn Fn(&str) -> Option<String>)) -> BTreeSet<String> {
        let asked = RefCell::new(BTreeSet::new());
        section(&|k: &str| {
            asked.borrow_mut().insert(k.to_owned());
            None
        });
        asked.into_inner()
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!((c.shared.table.as_str(), c.shared.bus.as_str()), ("ephemera", "ephemera"));
        assert_eq!((c.shared.bucket.as_str(), c.shared.region.as_str()), ("ephemera-artifacts", "us-east-1"));
        assert_eq!(c.webhook.expiry, ExpiryPolicy::default());
        assert_eq!(c.selfservice.expiry, ExpiryPolicy::default());
        assert!(!c.webhook.deploy_forks);
        assert!(c.webhook.allowed_repositories.is_empty());
        assert!(c.webhook.secrets.is_none() && c.webhook.secret_arn.is_none());
        assert_eq!(c.webhook.labels, ephemera_domain::preview::Labels::default());
        assert_eq!(c.notifier.gate, ephemera_domain::perf::Gate { max_regression: 0.2, max_error_rate: 0.01 });
        assert_eq!(c.notifier.load.as_ref().map(|l| (l.rate, l.duration_secs)), Some((10, 20)));
        assert!(c.notifier.smoke.is_empty() && c.github.token.is_none());
        assert_eq!(c.github.api_url, "https://api.github.com");
        let err = c.github.required().unwrap_err().to_string();
        assert_eq!(err, "EPHEMERA_GITHUB_APP_ID, EPHEMERA_GITHUB_TOKEN_SECRET_ARN (or EPHEMERA_GITHUB_TOKEN) is not set; it is required");
        assert!(GitHubConfig::from_lookup(|k| (k == "EPHEMERA_GITHUB_TOKEN").then(|| "t".into()))
            .unwrap()
            .required()
            .is_ok());
        // An App needs its id and its key, from a file or a secret.
        let app = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            GitHubConfig::from_lookup(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        let err = app(&[("EPHEMERA_GITHUB_APP_ID", "42")]).unwrap_err().to_string();
        assert!(err.starts_with("EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN (or EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE)"));
        let err = app(&[("EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE", "k.pem")]).unwrap_err().to_string();
        assert!(err.starts_with("EPHEMERA_GITHUB_APP_ID is not set"), "{err}");
        let both = app(&[("EPHEMERA_GITHUB_APP_ID", "42"), ("EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN", "arn:k")]);
        let both = both.unwrap().required().unwrap().app.unwrap();
        assert!(matches!((both.id.as_str(), &both.key), ("42", AppKey::Secret(arn)) if arn == "arn:k"));
        assert_eq!(c.provisioner.stack_wait, std::time::Duration::from_secs(600));
        assert_eq!(c.reaper.settings.calls_per_second, 5.0);
        assert_eq!(c.selfservice.dev_quotas.per_owner, 2);
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
            ("EPHEMERA_DEV_QUOTA_MODE", "sometimes"),
            ("EPHEMERA_DEV_MAX_TTL_HOURS", "forever"),
            ("EPHEMERA_ADMINS", "arn:aws:sts::123456789012:assumed-role/Admin/ops"),
            ("EPHEMERA_ADMINS", "platform-admin"),
            ("EPHEMERA_DEV_MAX_PRESERVE_DAYS", "0"),
            ("EPHEMERA_BRANCH_ENVIRONMENTS", "feature/["),
            ("EPHEMERA_DEV_MAX_PRESERVE_DAYS", "99999"),
        ] {
            let err = cfg(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn messages_are_unchanged() {
        let err = |var, value| cfg(&[(var, value)]).unwrap_err().to_string();
        assert_eq!(
            err("EPHEMERA_PR_TTL_HOURS", "seven"),
            "EPHEMERA_PR_TTL_HOURS is invalid: expected a positive whole number, got \"seven\""
        );
        assert_eq!(
            err("EPHEMERA_DEPLOY_FORKS", "maybe"),
            "EPHEMERA_DEPLOY_FORKS is invalid: expected true or false, got \"maybe\""
        );
        assert_eq!(
            err("EPHEMERA_REAPER_CALLS_PER_SECOND", "0"),
            "EPHEMERA_REAPER_CALLS_PER_SECOND is invalid: expected a positive number, got \"0\""
        );
        assert_eq!(
            err("EPHEMERA_MONTHLY_BUDGET_USD", "lots"),
            "EPHEMERA_MONTHLY_BUDGET_USD is invalid: expected an amount in USD, got \"lots\""
        );
        assert_eq!(
            err("EPHEMERA_REGRESSION_PERCENT", "-5"),
            "EPHEMERA_REGRESSION_PERCENT is invalid: expected a percentage, got \"-5\""
        );
        assert_eq!(err("EPHEMERA_LOAD_RATE", "1000"), "EPHEMERA_LOAD_RATE is invalid: 1000 is above the limit of 100");
        assert_eq!(
            err("EPHEMERA_DEV_QUOTA_MODE", "later"),
            "EPHEMERA_DEV_QUOTA_MODE is invalid: expected queue or refuse, got \"later\""
        );
        assert_eq!(
            err("EPHEMERA_LOAD_PATH", "x"),
            "EPHEMERA_LOAD_PATH is invalid: \"x\" must be a path starting with a single '/'"
        );
        assert_eq!(
            err("EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY", "acme/web"),
            "EPHEMERA_PR_TTL_HOURS_BY_REPOSITORY is invalid: \"acme/web\" is not owner/repo=hours"
        );
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
            ("EPHEMERA_LOAD_TEST", "no"),
            ("EPHEMERA_DEV_QUOTA_MODE", "refuse"),
            ("EPHEMERA_MONTHLY_BUDGET_USD", " 250.5 "),
            ("EPHEMERA_TABLE", ""),
        ])
        .unwrap();
        assert_eq!(c.webhook.pr_ttl_by_repository.get("acme/web"), Some(&chrono::Duration::hours(48)));
        assert_eq!(c.reaper.settings.allowed_regions, vec!["eu-west-1", "us-east-1"]);
        assert_eq!(c.webhook.allowed_repositories, vec!["acme/todo-app", "acme/web"]);
        assert_eq!(c.provisioner.cost_tags.get("CostCenter"), Some("platform"));
        assert!(c.webhook.deploy_forks);
        assert!(c.webhook.secrets.is_some());
        assert!(c.notifier.load.is_none());
        assert!(!c.selfservice.dev_quotas.queue_when_full && !c.provisioner.dev_quotas.queue_when_full);
        assert_eq!(c.provisioner.monthly_budget_usd, Some(250.5));
        assert_eq!(c.shared.table, "ephemera", "empty is unset");
    }

    /// Each function reads its own sections only: another function's bad value does not stop it.
    #[test]
    fn each_section_reads_only_its_own_variables() {
        let sections: [(&str, BTreeSet<String>); 7] = [
            ("shared", reads(|get| drop(SharedConfig::from_lookup(get)))),
            ("github", reads(|get| drop(GitHubConfig::from_lookup(get)))),
            ("webhook", reads(|get| drop(WebhookConfig::from_lookup(get)))),
            ("provisioner", reads(|get| drop(ProvisionerConfig::from_lookup(get)))),
            ("reaper", reads(|get| drop(ReaperConfig::from_lookup(get)))),
            ("selfservice", reads(|get| drop(SelfServiceConfig::from_lookup(get)))),
            ("notifier", reads(|get| drop(NotifierConfig::from_lookup(get)))),
        ];
        let of = |name: &str| &sections.iter().find(|(n, _)| *n == name).unwrap().1;
        let set = |vars: &[&str]| vars.iter().map(|v| v.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(of("shared"), &set(&["AWS_REGION", "EPHEMERA_BUCKET", "EPHEMERA_BUS", "EPHEMERA_TABLE"]));
        assert_eq!(
            of("github"),
            &set(&[
                "EPHEMERA_GITHUB_API_URL",
                "EPHEMERA_GITHUB_APP_ID",
                "EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE",
                "EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN",
                "EPHEMERA_GITHUB_TOKEN",
                "EPHEMERA_GITHUB_TOKEN_SECRET_ARN"
            ])
        );
        assert!(of("webhook").iter().all(|v| !v.starts_with("EPHEMERA_REAPER") && !v.starts_with("EPHEMERA_LOAD")));
        assert!(of("webhook").contains("EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN"));
        assert!(
            of("provisioner").contains("EPHEMERA_STACK_WAIT_SECONDS")
                && of("provisioner").contains("EPHEMERA_PRICE_TABLE")
        );
        assert!(!of("provisioner").contains("EPHEMERA_GITHUB_WEBHOOK_SECRET"));
        // The reaper's own GitHub settings are the catch-up's; its credentials are the github section's.
        let catch_up =
            set(&["EPHEMERA_GITHUB_HOOK_IDS", "EPHEMERA_GITHUB_LIGHT_REQUESTS", "EPHEMERA_GITHUB_RATE_RESERVE"]);
        let reaper_github: BTreeSet<String> =
            of("reaper").iter().filter(|v| v.starts_with("EPHEMERA_GITHUB")).cloned().collect();
        assert_eq!(reaper_github, catch_up);
        assert!(of("reaper").iter().all(|v| !v.starts_with("EPHEMERA_STACK_")));
        assert!(of("selfservice").contains("EPHEMERA_ADMINS") && !of("selfservice").contains("EPHEMERA_COST_TAGS"));
        assert!(of("notifier").contains("EPHEMERA_SMOKE_CHECKS") && !of("notifier").contains("EPHEMERA_TABLE"));

        // A bad value of the reaper's does not stop the webhook, and the other way round.
        let only = |var: &'static str, value: &'static str| move |k: &str| (k == var).then(|| value.to_owned());
        assert!(WebhookConfig::from_lookup(only("EPHEMERA_REAPER_CALLS_PER_SECOND", "fast")).is_ok());
        assert!(ReaperConfig::from_lookup(only("EPHEMERA_REAPER_CALLS_PER_SECOND", "fast")).is_err());
        assert!(ReaperConfig::from_lookup(only("EPHEMERA_DEPLOY_FORKS", "maybe")).is_ok());
        assert!(ReaperConfig::from_lookup(only("EPHEMERA_GITHUB_HOOK_IDS", "acme/todo-app=x")).is_err());
        assert!(SharedConfig::from_lookup(only("EPHEMERA_LOAD_RATE", "1000")).is_ok());
    }

    /// Every variable the README's configuration table lists for the services is read, and
    /// every variable read is listed there (AWS_REGION aside, AWS's own).
    #[test]
    fn the_readme_lists_every_variable_read() {
        let readme = include_str!("../../../../README.md");
        let table = &readme[readme.find("## Configuration").unwrap()..];
        let table = &table[..table[3..].find("\n## ").unwrap()];
        let mut listed = BTreeSet::new();
        for row in table.lines().filter(|l| l.starts_with("| `")) {
            let first = row.split(" | ").next().unwrap();
            listed.extend(first.split('`').skip(1).step_by(2).map(str::to_owned));
        }
        // Read by the CLI, the local runner or the tests' harness, not by a service.
        for other in [
            "EPHEMERA_URL",
            "EPHEMERA_STACK",
            "EPHEMERA_LOCAL_IDENTITIES",
            "EPHEMERA_LISTEN",
            "EPHEMERA_EMULATOR_PORT",
            "EPHEMERA_VENV",
            "AWS_ENDPOINT_URL",
            "RUST_LOG",
        ] {
            assert!(listed.remove(other), "{other} is no longer in the README");
        }
        let mut read = reads(|get| drop(Config::from_lookup(get)));
        assert!(read.remove("AWS_REGION"));
        assert_eq!(read, listed);
    }
}
