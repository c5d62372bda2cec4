//! Wiring: the services built from configuration and AWS clients, once per process.

use std::sync::Arc;

use ephemera_app::intake::{Intake, IntakeSettings};
use ephemera_app::provisioner::{Provisioner, ProvisionerSettings};
use ephemera_app::{Clock, Config, ConfigError, SystemClock};
use ephemera_github::WebhookSecrets;

use ephemera_app::reaper::Reaper;
use ephemera_app::selfservice::{SelfService, SelfServiceSettings};

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

/// The webhook intake, with its secrets (see [`webhook_secrets`]).
pub fn intake(config: &Config, clients: &Clients, secrets: WebhookSecrets) -> Intake {
    Intake::new(
        Arc::new(DynamoRegistry::new(clients.dynamodb.clone(), &config.table)),
        Arc::new(EventBridgeBus::new(clients.eventbridge.clone(), &config.bus)),
        clock(),
        IntakeSettings {
            secrets,
            allowed_repositories: config.allowed_repositories.clone(),
            deploy_forks: config.deploy_forks,
            expiry: config.expiry,
            pr_ttl_by_repository: config.pr_ttl_by_repository.clone(),
        },
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
