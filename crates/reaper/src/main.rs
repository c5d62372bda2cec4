//! Lambda: the reaper, on a schedule.

use ephemera_wiring::{platform, Clients, GitHubConfig, ReaperConfig, SharedConfig, WebhookConfig};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

/// The sweep's catch-up with GitHub, from the github and webhook sections.
async fn catch_up(
    shared: &SharedConfig,
    config: &ReaperConfig,
    clients: &Clients,
) -> Result<Option<std::sync::Arc<ephemera_app::catch_up::CatchUp>>, Error> {
    let (github, webhook) = (GitHubConfig::from_env()?, WebhookConfig::from_env()?);
    Ok(platform::catch_up(shared, config, &github, &webhook, clients).await?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::init_tracing(true);
    let (shared, config) = (SharedConfig::from_env()?, ReaperConfig::from_env()?);
    let clients = Clients::for_lambda().await;
    let mut reaper = platform::reaper(&shared, &config, &clients, platform::clock());
    // Catching up with GitHub must not stop the sweep: without it, expired and orphaned
    // environments are still cleaned up, and the error is logged at every start.
    reaper.catch_up = match catch_up(&shared, &config, &clients).await {
        Ok(catch_up) => catch_up,
        Err(e) => {
            tracing::error!(error = %e, "not catching up with GitHub: its configuration is wrong; sweeping without it");
            None
        }
    };
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
