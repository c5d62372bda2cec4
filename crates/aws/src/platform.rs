//! Wiring: the services built from configuration and AWS clients, once per process.

use std::sync::Arc;

use ephemera_app::intake::{Intake, IntakeSettings};
use ephemera_app::leftovers::Leftovers;
use ephemera_app::provisioner::{Provisioner, ProvisionerSettings};
use ephemera_app::{Clock, Config, ConfigError, SystemClock};
use ephemera_github_webhook::WebhookSecrets;

use ephemera_app::reaper::Reaper;
use ephemera_app::selfservice::{SelfService, SelfServiceSettings};

use ephemera_app::feedback::Notifier;
use ephemera_app::ports::GitHubApi;
use ephemera_app::stack_events::StackEvents;

use crate::github::{GitHubRest, HttpProber};
use crate::inventory::{DirectCleaner, TaggingInventory};
use crate::{Clients, CloudFormationStacks, DynamoRegistry, EventBridgeBus, S3Store};

/// The webhook secrets: `EPHEMERA_GITHUB_WEBHOOK_SECRET` if set, else read from the Secrets
/// Manager secret `EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN` names.
pub async fn webhook_secrets(config: &Config, clients: &Clients) -> Result<WebhookSecrets, StartupError> {
    if let Some(s) = &config.webhook_secrets {
        return Ok(s.clone());
    }
    match &config.webhook_secret_arn {
        Some(arn) => Ok(crate::secrets::webhook_secrets(&clients.secretsmanager, arn).await?),
        None => {
            Err(ConfigError::Missing("EPHEMERA_GITHUB_WEBHOOK_SECRET (or EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN)").into())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Aws(#[from] ephemera_app::PortError),
}

/// The GitHub REST API, if credentials are configured: `EPHEMERA_GITHUB_TOKEN`, else the
/// Secrets Manager secret `EPHEMERA_GITHUB_TOKEN_SECRET_ARN` names. None without either.
pub async fn github(config: &Config, clients: &Clients) -> Result<Option<Arc<dyn GitHubApi>>, StartupError> {
    let token = match (&config.github_token, &config.github_token_secret_arn) {
        (Some(t), _) => t.clone(),
        (None, Some(arn)) => crate::github::token_from_secret(&clients.secretsmanager, arn).await?,
        (None, None) => return Ok(None),
    };
    let client = ephemera_github::Client::new(&config.github_api_url, token)
        .map_err(|e| ConfigError::Invalid { var: "EPHEMERA_GITHUB_API_URL", message: e.to_string() })?;
    Ok(Some(Arc::new(GitHubRest::new(client))))
}

/// The webhook intake, with its secrets (see [`webhook_secrets`]) and GitHub (see [`github`]).
pub fn intake(
    config: &Config,
    clients: &Clients,
    secrets: WebhookSecrets,
    github: Option<Arc<dyn GitHubApi>>,
) -> Intake {
    let intake = Intake::new(
        Arc::new(DynamoRegistry::new(clients.dynamodb.clone(), &config.table)),
        Arc::new(EventBridgeBus::new(clients.eventbridge.clone(), &config.bus)),
        clock(),
        IntakeSettings {
            secrets,
            allowed_repositories: config.allowed_repositories.clone(),
            deploy_forks: config.deploy_forks,
            labels: config.labels.clone(),
            expiry: config.expiry,
            pr_ttl_by_repository: config.pr_ttl_by_repository.clone(),
        },
    );
    match github {
        Some(g) => intake.with_github(g),
        None => intake,
    }
}

/// The dashboard's data.
pub fn dashboard(config: &Config, clients: &Clients) -> ephemera_app::dashboard::Dashboard {
    ephemera_app::dashboard::Dashboard::new(
        Arc::new(DynamoRegistry::new(clients.dynamodb.clone(), &config.table)),
        clock(),
    )
}

/// CloudFormation status events, recorded on the registry.
pub fn stack_events(config: &Config, clients: &Clients) -> StackEvents {
    StackEvents::new(
        Arc::new(DynamoRegistry::new(clients.dynamodb.clone(), &config.table)),
        Arc::new(CloudFormationStacks::new(clients.cloudformation.clone())),
        Arc::new(EventBridgeBus::new(clients.eventbridge.clone(), &config.bus)),
    )
}

/// Feedback on pull requests, through `github`.
pub fn notifier(config: &Config, clients: &Clients, github: Arc<dyn GitHubApi>) -> Notifier {
    Notifier::new(
        Arc::new(DynamoRegistry::new(clients.dynamodb.clone(), &config.table)),
        github,
        Arc::new(HttpProber::new(ephemera_probe::TargetPolicy { allowed_hosts: config.probe_allowed_hosts.clone() })),
        Arc::new(S3Store::new(clients.s3.clone())),
        clock(),
        config.feedback.clone(),
    )
}

/// Developer self-service.
pub fn selfservice(config: &Config, clients: &Clients) -> SelfService {
    SelfService::new(
        Arc::new(DynamoRegistry::new(clients.dynamodb.clone(), &config.table)),
        Arc::new(EventBridgeBus::new(clients.eventbridge.clone(), &config.bus)),
        Arc::new(crate::appsync::AppSyncKeys::new(clients.appsync.clone())),
        clock(),
        SelfServiceSettings {
            quotas: config.dev_quotas,
            admins: config.admins.clone(),
            expiry: config.expiry,
            max_ttl: config.dev_max_ttl,
            region: config.region.clone(),
        },
    )
}

/// The reaper, with the clock it judges expiry by.
pub fn reaper(config: &Config, clients: &Clients, clock: Arc<dyn Clock>) -> Reaper {
    Reaper::new(
        Arc::new(DynamoRegistry::new(clients.dynamodb.clone(), &config.table)),
        Arc::new(CloudFormationStacks::new(clients.cloudformation.clone())),
        Arc::new(TaggingInventory::new(clients.tagging.clone())),
        Arc::new(S3Store::new(clients.s3.clone())),
        Arc::new(DirectCleaner::new(clients.s3.clone(), clients.dynamodb.clone())),
        Arc::new(EventBridgeBus::new(clients.eventbridge.clone(), &config.bus)),
        clock,
        config.reaper.clone(),
    )
}

pub fn provisioner(config: &Config, clients: &Clients) -> Provisioner {
    Provisioner::new(
        Arc::new(DynamoRegistry::new(clients.dynamodb.clone(), &config.table)),
        Arc::new(CloudFormationStacks::new(clients.cloudformation.clone())),
        Arc::new(S3Store::new(clients.s3.clone())),
        Arc::new(EventBridgeBus::new(clients.eventbridge.clone(), &config.bus)),
        Arc::new(crate::seeder::DynamoSeeder::new(clients.dynamodb.clone())),
        Leftovers::new(
            Arc::new(TaggingInventory::new(clients.tagging.clone())),
            Arc::new(S3Store::new(clients.s3.clone())),
            Arc::new(DirectCleaner::new(clients.s3.clone(), clients.dynamodb.clone())),
        ),
        clock(),
        ProvisionerSettings {
            bucket: config.bucket.clone(),
            cost_tags: config.cost_tags.clone(),
            role_arn: config.stack_role_arn.clone(),
            role_boundary_arn: config.role_boundary_arn.clone(),
            wait: config.stack_wait,
            poll: config.stack_poll,
            monthly_budget_usd: config.monthly_budget_usd,
            dev_quotas: config.dev_quotas,
            prices: config.reaper.prices.clone(),
        },
    )
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
