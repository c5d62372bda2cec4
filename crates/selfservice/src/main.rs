//! Lambda: developer self-service, `/v1/...` on the HTTP API, IAM-authorized by API Gateway.

use std::sync::Arc;

use ephemera_app::Config;
use ephemera_aws::{lambda_sdk_config, platform, Clients};
use ephemera_http::{router, AppState, Identity};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    platform::init_tracing(true);
    let config = Config::from_env()?;
    let clients = Clients::new(&lambda_sdk_config().await);
    let selfservice = platform::selfservice(&config, &clients);
    let state = AppState {
        intake: None,
        selfservice: Some(Arc::new(selfservice)),
        dashboard: Some(Arc::new(platform::dashboard(&config, &clients))),
        dashboard_open: false,
        identity: Identity::ApiGateway,
    };
    lambda_http::run(router(state)).await
}
