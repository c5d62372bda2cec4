//! Lambda: feedback on pull requests, for the platform's status events (EventBridge rule target).

use std::sync::Arc;

use ephemera_app::{Config, ConfigError};
use ephemera_aws::{lambda_sdk_config, platform, Clients};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::init_tracing(true);
    let config = Config::from_env()?;
    let clients = Clients::new(&lambda_sdk_config().await);
    let github = platform::github(&config, &clients)
        .await?
        .ok_or(ConfigError::Missing("EPHEMERA_GITHUB_TOKEN_SECRET_ARN (or EPHEMERA_GITHUB_TOKEN)"))?;
    let notifier = Arc::new(platform::notifier(&config, &clients, github));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let notifier = notifier.clone();
        async move { notifier::handle(&notifier, event.payload).await.map(|_| ()).map_err(Error::from) }
    }))
    .await
}
