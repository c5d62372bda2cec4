//! Lambda: CloudFormation status changes of the platform's stacks (EventBridge rule target).

use std::sync::Arc;

use ephemera_app::Config;
use ephemera_aws::{lambda_sdk_config, platform, Clients};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::init_tracing(true);
    let config = Config::from_env()?;
    let clients = Clients::new(&lambda_sdk_config().await);
    let service = Arc::new(platform::stack_events(&config, &clients));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let service = service.clone();
        async move { stack_events::handle(&service, event.payload).await.map(|_| ()).map_err(Error::from) }
    }))
    .await
}
