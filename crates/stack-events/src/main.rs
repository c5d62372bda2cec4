//! Lambda: CloudFormation status changes of the platform's stacks (EventBridge rule target).

use std::sync::Arc;

use ephemera_wiring::{platform, Clients, SharedConfig};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::init_tracing(true);
    let shared = SharedConfig::from_env()?;
    let clients = Clients::for_lambda().await;
    let service = Arc::new(platform::stack_events(&shared, &clients));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let service = service.clone();
        async move { stack_events::handle(&service, event.payload).await.map(|_| ()).map_err(Error::from) }
    }))
    .await
}
