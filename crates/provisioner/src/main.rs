//! Lambda: the provisioner, fed by the work queue (SQS) that the platform's bus targets.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use ephemera_wiring::{platform, Clients, ProvisionerConfig, SharedConfig};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    platform::init_tracing(true);
    let (shared, config) = (SharedConfig::from_env()?, ProvisionerConfig::from_env()?);
    let clients = Clients::for_lambda().await;
    let provisioner = Arc::new(platform::provisioner(&shared, &config, &clients));
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let p = provisioner.clone();
        async move { Ok::<_, Error>(provisioner::handle_batch(p, event.payload).await) }
    }))
    .await
}
