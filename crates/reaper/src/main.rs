//! Lambda: the reaper, on a schedule.

use ephemera_wiring::{platform, Clients, GitHubConfig, ReaperConfig, SharedConfig, WebhookConfig};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::init_tracing(true);
    let (shared, config) = (SharedConfig::from_env()?, ReaperConfig::from_env()?);
    let clients = Clients::for_lambda().await;
    let (github, webhook) = (GitHubConfig::from_env()?, WebhookConfig::from_env()?);
    let mut reaper = platform::reaper(&shared, &config, &clients, platform::clock());
    reaper.catch_up = platform::catch_up(&shared, &config, &github, &webhook, &clients).await?;
    let reaper = &reaper;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let summary = reaper.sweep(reaper::options(&event.payload)).await?;
        // Embedded Metric Format: CloudWatch turns this log line into metrics.
        println!("{}", summary.emf("Ephemera"));
        tracing::info!(summary = %serde_json::to_string(&summary)?, "sweep finished");
        Ok::<_, Error>(serde_json::to_value(&summary)?)
    }))
    .await
}
