//! Assembly: each service built from its configuration sections and the adapters it uses, once
//! per process. A service asks [`Clients`] only for the AWS clients its adapters need.

use std::sync::Arc;

use ephemera_app::catch_up::{CatchUp, CatchUpSettings};
use ephemera_app::dashboard::Dashboard;
use ephemera_app::feedback::{FeedbackSettings, Notifier};
use ephemera_app::history::RecordingBus;
use ephemera_app::intake::{Intake, IntakeSettings, RepoFiles};
use ephemera_app::ports::{GitHubApi, Site};
use ephemera_app::provisioner::{Provisioner, ProvisionerSettings};
use ephemera_app::reaper::Reaper;
use ephemera_app::selfservice::{SelfService, SelfServiceSettings};
use ephemera_app::stack_events::StackEvents;
use ephemera_app::{Clock, SystemClock};
use ephemera_aws::appsync::AppSyncKeys;
use ephemera_aws::github::{GitHubRest, HttpProber};
use ephemera_aws::github_catch_up::GitHubCatchUpRest;
use ephemera_aws::resources::AwsResources;
use ephemera_aws::seeder::DynamoSeeder;
use ephemera_aws::sites::AwsSites;
use ephemera_aws::{CloudFormationStacks, DynamoRegistry, EnvironmentSessions, EventBridgeBus, S3Store};
use ephemera_github::AppCredentials;
use ephemera_github_webhook::WebhookSecrets;

use crate::config::{
    AppKey, ConfigError, DeployConfig, GitHubApp, GitHubConfig, NotifierConfig, ProvisionerConfig, ReaperConfig,
    SelfServiceConfig, SharedConfig, WebhookConfig,
};
use crate::Clients;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Aws(#[from] ephemera_app::PortError),
}

/// The webhook secrets: `EPHEMERA_GITHUB_WEBHOOK_SECRET` if set, else read from the Secrets
/// Manager secret `EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN` names.
pub async fn webhook_secrets(config: &WebhookConfig, clients: &Clients) -> Result<WebhookSecrets, StartupError> {
    if let Some(s) = &config.secrets {
        return Ok(s.clone());
    }
    match &config.secret_arn {
        Some(arn) => Ok(ephemera_aws::secrets::webhook_secrets(clients.secretsmanager(), arn).await?),
        None => {
            Err(ConfigError::Missing("EPHEMERA_GITHUB_WEBHOOK_SECRET (or EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN)").into())
        }
    }
}

/// The GitHub REST API, if credentials are configured: as the GitHub App `EPHEMERA_GITHUB_APP_ID`
/// names, else with `EPHEMERA_GITHUB_TOKEN`, else with the token in the Secrets Manager secret
/// `EPHEMERA_GITHUB_TOKEN_SECRET_ARN` names. None without any.
pub async fn github(config: &GitHubConfig, clients: &Clients) -> Result<Option<Arc<dyn GitHubApi>>, StartupError> {
    let client = github_client(config, clients).await?;
    Ok(client.map(|c| Arc::new(GitHubRest::new(c)) as Arc<dyn GitHubApi>))
}

/// The GitHub REST client [`github`] wraps.
async fn github_client(
    config: &GitHubConfig,
    clients: &Clients,
) -> Result<Option<ephemera_github::Client>, StartupError> {
    let url = |e: ephemera_github::ClientError| ConfigError::Invalid {
        var: "EPHEMERA_GITHUB_API_URL",
        message: e.to_string(),
    };
    let client = match (&config.app, &config.token, &config.token_secret_arn) {
        (Some(app), _, _) => ephemera_github::Client::for_app(&config.api_url, app_credentials(app, clients).await?),
        (None, Some(t), _) => ephemera_github::Client::new(&config.api_url, t.clone()),
        (None, None, Some(arn)) => {
            let token = ephemera_aws::github::token_from_secret(clients.secretsmanager(), arn).await?;
            ephemera_github::Client::new(&config.api_url, token)
        }
        (None, None, None) => return Ok(None),
    };
    Ok(Some(client.map_err(url)?))
}

/// The sweep's catching up with GitHub, if GitHub credentials are configured: it records what
/// it finds through an intake with the webhook's settings (and no secret: it takes no delivery).
pub async fn catch_up(
    shared: &SharedConfig,
    config: &ReaperConfig,
    github: &GitHubConfig,
    webhook: &WebhookConfig,
    clients: &Clients,
) -> Result<Option<Arc<CatchUp>>, StartupError> {
    let Some(client) = github_client(github, clients).await? else { return Ok(None) };
    let api: Arc<dyn GitHubApi> = Arc::new(GitHubRest::new(client.clone()));
    let intake = intake(shared, webhook, clients, None, Some(api));
    Ok(Some(Arc::new(CatchUp {
        github: Arc::new(GitHubCatchUpRest::new(client, config.catch_up.hook_ids.clone())),
        intake: Arc::new(intake),
        store: Arc::new(S3Store::new(clients.s3().clone())),
        clock: clock(),
        settings: CatchUpSettings {
            reserve: config.catch_up.reserve,
            light_requests: config.catch_up.light_requests,
            deploy_forks: webhook.deploy_forks,
            bucket: shared.bucket.clone(),
        },
    })))
}

/// The App's id and private key, read from its file or secret.
async fn app_credentials(app: &GitHubApp, clients: &Clients) -> Result<AppCredentials, StartupError> {
    let (var, pem) = match &app.key {
        AppKey::File(path) => {
            let pem = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                var: "EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE",
                message: format!("{}: {e}", path.display()),
            })?;
            ("EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE", pem)
        }
        AppKey::Secret(arn) => {
            let pem = ephemera_aws::github::app_key_from_secret(clients.secretsmanager(), arn).await?;
            ("EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN", pem)
        }
    };
    let invalid = |var, e: ephemera_github::ClientError| ConfigError::Invalid { var, message: e.to_string() };
    AppCredentials::new(&app.id, pem.as_bytes())
        .map_err(|e| match e {
            ephemera_github::ClientError::Invalid(m) if m.contains("App id") => {
                invalid("EPHEMERA_GITHUB_APP_ID", ephemera_github::ClientError::Invalid(m))
            }
            other => invalid(var, other),
        })
        .map_err(Into::into)
}

/// The GitHub REST API for a function that cannot do without it (the notifier; see
/// [`GitHubConfig::required`]).
pub async fn github_required(config: &GitHubConfig, clients: &Clients) -> Result<Arc<dyn GitHubApi>, StartupError> {
    github(config, clients).await?.ok_or_else(|| crate::config::github_missing().into())
}

/// The webhook intake, with its secrets (see [`webhook_secrets`]) and GitHub (see [`github`]).
pub fn intake(
    shared: &SharedConfig,
    config: &WebhookConfig,
    clients: &Clients,
    secrets: Option<WebhookSecrets>,
    github: Option<Arc<dyn GitHubApi>>,
) -> Intake {
    let intake = Intake::new(
        Arc::new(registry(shared, clients)),
        Arc::new(bus(shared, clients)),
        clock(),
        IntakeSettings {
            secrets,
            allowed_repositories: config.allowed_repositories.clone(),
            deploy_forks: config.deploy_forks,
            labels: config.labels.clone(),
            expiry: config.expiry,
            pr_ttl_by_repository: config.pr_ttl_by_repository.clone(),
            branches: config.branches.clone(),
        },
    );
    match github {
        // Repositories' own settings are read through GitHub, and kept in the bucket.
        Some(g) => intake.with_github(g).with_repo_files(RepoFiles {
            store: Arc::new(S3Store::new(clients.s3().clone())),
            bucket: shared.bucket.clone(),
        }),
        None => intake,
    }
}

/// The dashboard's data.
pub fn dashboard(shared: &SharedConfig, clients: &Clients) -> Dashboard {
    let registry = Arc::new(registry(shared, clients));
    Dashboard::new(registry.clone(), registry, clock())
}

/// CloudFormation status events, recorded on the registry.
pub fn stack_events(shared: &SharedConfig, clients: &Clients) -> StackEvents {
    StackEvents {
        registry: Arc::new(registry(shared, clients)),
        stacks: Arc::new(CloudFormationStacks::new(clients.cloudformation().clone())),
        bus: Arc::new(bus(shared, clients)),
    }
}

/// Feedback on pull requests, through `github`.
pub fn notifier(
    shared: &SharedConfig,
    config: &NotifierConfig,
    clients: &Clients,
    github: Arc<dyn GitHubApi>,
) -> Notifier {
    Notifier {
        registry: Arc::new(registry(shared, clients)),
        github,
        prober: Arc::new(HttpProber::new(ephemera_probe::TargetPolicy {
            allowed_hosts: config.probe_allowed_hosts.clone(),
        })),
        sites: sites(clients, None, &config.deploy),
        store: Arc::new(S3Store::new(clients.s3().clone())),
        clock: clock(),
        settings: FeedbackSettings {
            routes: config.deploy.routes.clone(),
            bucket: shared.bucket.clone(),
            smoke: config.smoke.clone(),
            load: config.load.clone(),
            scenario: config.scenario.clone(),
            gate: config.gate,
            dashboard_url: config.dashboard_url.clone(),
        },
    }
}

/// Developer self-service.
pub fn selfservice(shared: &SharedConfig, config: &SelfServiceConfig, clients: &Clients) -> SelfService {
    let registry = Arc::new(registry(shared, clients));
    SelfService {
        registry: registry.clone(),
        ledger: registry,
        bus: Arc::new(bus(shared, clients)),
        sites: sites(clients, None, &config.deploy),
        store: Arc::new(S3Store::new(clients.s3().clone())),
        clock: clock(),
        settings: SelfServiceSettings {
            routes: config.deploy.routes.clone(),
            quotas: config.dev_quotas,
            admins: config.admins.clone(),
            expiry: config.expiry,
            max_ttl: config.dev_max_ttl,
            max_preserve: config.dev_max_preserve,
            region: shared.region.clone(),
            bucket: shared.bucket.clone(),
            blueprint_policy: config.blueprint_policy.clone(),
        },
    }
}

/// The reaper, with the clock it judges expiry by.
pub fn reaper(shared: &SharedConfig, config: &ReaperConfig, clients: &Clients, clock: Arc<dyn Clock>) -> Reaper {
    let registry = Arc::new(registry(shared, clients));
    let deploy = DeployConfig { routes: config.settings.routes.clone(), external_id: config.external_id.clone() };
    Reaper {
        registry: registry.clone(),
        ledger: registry,
        sites: sites(clients, config.environment_role_arn.as_deref(), &deploy),
        bus: Arc::new(bus(shared, clients)),
        clock,
        settings: config.settings.clone(),
        catch_up: None,
    }
}

pub fn provisioner(shared: &SharedConfig, config: &ProvisionerConfig, clients: &Clients) -> Provisioner {
    let registry = Arc::new(registry(shared, clients));
    Provisioner {
        registry: registry.clone(),
        ledger: registry.clone(),
        history: registry,
        sites: sites(clients, config.environment_role_arn.as_deref(), &config.deploy),
        store: Arc::new(S3Store::new(clients.s3().clone())),
        bus: Arc::new(bus(shared, clients)),
        clock: clock(),
        settings: ProvisionerSettings {
            bucket: shared.bucket.clone(),
            cost_tags: config.cost_tags.clone(),
            role_boundary_arn: config.role_boundary_arn.clone(),
            blueprint_policy: config.blueprint_policy.clone(),
            wait: config.stack_wait,
            poll: config.stack_poll,
            monthly_budget_usd: config.monthly_budget_usd,
            dev_quotas: config.dev_quotas,
            prices: config.prices.clone(),
            routes: config.deploy.routes.clone(),
            region: shared.region.clone(),
        },
    }
}

/// The accounts environments live in. The platform's own is reached with the function's
/// clients, environment stacks changed in their environment's session when there is a role to
/// assume; the deploy targets by assuming their roles.
fn sites(clients: &Clients, environment_role: Option<&str>, deploy: &DeployConfig) -> Arc<AwsSites> {
    let resources = Arc::new(AwsResources::new(clients.sdk()));
    let home = Site {
        stacks: Arc::new(stacks(clients, environment_role)),
        store: Arc::new(S3Store::new(clients.s3().clone())),
        seeder: Arc::new(DynamoSeeder::new(clients.dynamodb().clone())),
        inventory: resources.clone(),
        cleaner: resources,
        keys: Arc::new(AppSyncKeys::new(clients.appsync().clone())),
    };
    Arc::new(AwsSites::new(clients.sdk(), home, deploy.external_id.clone()))
}

/// Environment stacks, changed in their environment's session when there is a role to assume.
fn stacks(clients: &Clients, environment_role: Option<&str>) -> CloudFormationStacks {
    let stacks = CloudFormationStacks::new(clients.cloudformation().clone());
    match environment_role {
        Some(role) => stacks.acting_as_environments(Arc::new(EnvironmentSessions::new(clients.sdk(), role))),
        None => stacks,
    }
}

fn registry(shared: &SharedConfig, clients: &Clients) -> DynamoRegistry {
    DynamoRegistry::new(clients.dynamodb().clone(), &shared.table)
}

/// The platform's bus; each event published is kept in its environment's timeline too.
fn bus(shared: &SharedConfig, clients: &Clients) -> RecordingBus {
    RecordingBus {
        bus: Arc::new(EventBridgeBus::new(clients.eventbridge().clone(), &shared.bus)),
        history: Arc::new(registry(shared, clients)),
        clock: clock(),
    }
}

pub fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Logs: JSON lines in Lambda (CloudWatch), readable text elsewhere. `RUST_LOG` filters.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().flatten_event(true).without_time().try_init() } else { builder.try_init() };
}
