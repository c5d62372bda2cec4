//! Lambda: developer self-service, `/v1/...` on the HTTP API, IAM-authorized by API Gateway.

use std::sync::Arc;

use ephemera_http::{router, AppState, Identity};
use ephemera_wiring::{platform, Clients, SelfServiceConfig, SharedConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::init_tracing(true);
    let (shared, config) = (SharedConfig::from_env()?, SelfServiceConfig::from_env()?);
    let clients = Clients::for_lambda().await;
    let state = AppState {
        intake: None,
        selfservice: Some(Arc::new(platform::selfservice(&shared, &config, &clients))),
        dashboard: Some(Arc::new(platform::dashboard(&shared, &clients))),
        dashboard_open: false,
        identity: Identity::ApiGateway,
    };
    lambda_http::run(router(state)).await
}
