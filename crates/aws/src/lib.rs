//! AWS adapters for Ephemera's ports.
//!
//! One `SdkConfig` for all clients, built once at start-up; `AWS_ENDPOINT_URL` points every
//! client at a local emulator. The HTTPS client is rustls with ring.

pub mod appsync;
pub mod bootstrap;
pub mod bus;
pub mod error;
pub mod github;
pub mod inventory;
pub mod platform;
pub mod queue;
pub mod registry;
pub mod secrets;
pub mod seeder;
pub mod stacks;
pub mod store;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub use bus::EventBridgeBus;
pub use queue::WorkQueue;
pub use registry::DynamoRegistry;
pub use stacks::CloudFormationStacks;
pub use store::S3Store;

/// Loads the AWS configuration (region, credentials, endpoint) from the environment, trusting
/// the system's root certificates (for the CLI and the local runner: a developer's machine may
/// sit behind a proxy with its own CA).
pub async fn sdk_config() -> SdkConfig {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http).load().await
}

/// Amazon Trust Services' root certificates (Amazon Root CA 1 to 4, and the Starfield Services
/// root that cross-signs them), which certify every AWS service endpoint.
const AMAZON_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// The configuration for Lambda functions: as [`sdk_config`], but trusting only Amazon's roots,
/// compiled in. Reading and parsing the system's hundreds of roots is most of a cold start;
/// a function only ever talks to AWS.
pub async fn lambda_sdk_config() -> SdkConfig {
    let trust = tls::TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_ROOTS);
    let context = tls::TlsContext::builder().with_trust_store(trust).build().expect("the bundled roots are valid PEM");
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http).load().await
}

/// Every client the platform uses, from one configuration.
#[derive(Clone, Debug)]
pub struct Clients {
    pub appsync: aws_sdk_appsync::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub s3: aws_sdk_s3::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Self {
        // Emulators serve buckets by path, not by virtual host.
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
        Self {
            appsync: aws_sdk_appsync::Client::new(config),
            cloudformation: aws_sdk_cloudformation::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            eventbridge: aws_sdk_eventbridge::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            secretsmanager: aws_sdk_secretsmanager::Client::new(config),
            tagging: aws_sdk_resourcegroupstagging::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
        }
    }
}

/// Configuration for a local emulator at `endpoint`: fixed region, dummy credentials.
pub async fn emulator_config(endpoint: &str, region: &str) -> SdkConfig {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "emulator"))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_lambda_configuration_parses_its_bundled_roots() {
        assert_eq!(super::AMAZON_ROOTS.windows(27).filter(|w| w == b"-----BEGIN CERTIFICATE-----").count(), 5);
        // Building the client parses them; a bad bundle panics here.
        let config = super::lambda_sdk_config().await;
        assert!(config.http_client().is_some());
    }
}
