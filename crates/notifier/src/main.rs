//! Lambda: feedback on pull requests, for the platform's status events (EventBridge rule target).

use std::sync::Arc;

use ephemera_wiring::{platform, Clients, GitHubConfig, NotifierConfig, SharedConfig};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::init_tracing(true);
    let (shared, config) = (SharedConfig::from_env()?, NotifierConfig::from_env()?);
    let github = GitHubConfig::from_env()?.required()?;
    let clients = Clients::for_lambda().await;
    let github = platform::github_required(&github, &clients).await?;
    let notifier = Arc::new(platform::notifier(&shared, &config, &clients, github));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let notifier = notifier.clone();
        async move { notifier::handle(&notifier, event.payload).await.map(|_| ()).map_err(Error::from) }
    }))
    .await
}
