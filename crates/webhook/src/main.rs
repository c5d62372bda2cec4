//! Lambda: GitHub webhooks from API Gateway (HTTP API, payload format 2.0).

use std::sync::Arc;

use ephemera_http::{router, AppState, Identity};
use ephemera_wiring::{platform, Clients, GitHubConfig, SharedConfig, WebhookConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::init_tracing(true);
    let (shared, config, github) = (SharedConfig::from_env()?, WebhookConfig::from_env()?, GitHubConfig::from_env()?);
    let clients = Clients::for_lambda().await;
    let secrets = platform::webhook_secrets(&config, &clients).await?;
    let github = platform::github(&github, &clients).await?;
    let intake = platform::intake(&shared, &config, &clients, Some(secrets), github);
    let state = AppState {
        intake: Some(Arc::new(intake)),
        selfservice: None,
        dashboard: None,
        dashboard_open: false,
        identity: Identity::ApiGateway,
    };
    lambda_http::run(router(state)).await
}
