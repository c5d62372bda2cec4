//! Lambda: GitHub webhooks from API Gateway (HTTP API, payload format 2.0).

use std::sync::Arc;

use ephemera_app::Config;
use ephemera_aws::{lambda_sdk_config, platform, Clients};
use ephemera_http::{router, AppState, Identity};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::init_tracing(true);
    let config = Config::from_env()?;
    let clients = Clients::new(&lambda_sdk_config().await);
    let secrets = platform::webhook_secrets(&config, &clients).await?;
    let github = platform::github(&config, &clients).await?;
    let intake = platform::intake(&config, &clients, secrets, github);
    let state = AppState {
        intake: Some(Arc::new(intake)),
        selfservice: None,
        dashboard: None,
        dashboard_open: false,
        identity: Identity::ApiGateway,
    };
    lambda_http::run(router(state)).await
}
