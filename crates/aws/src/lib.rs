//! AWS adapters for Ephemera's ports.
//!
//! One `SdkConfig` for all clients, built once at start-up; `AWS_ENDPOINT_URL` points every
//! client at a local emulator. The HTTPS client is rustls with ring. Which adapters a function
//! gets, and from which clients, is `ephemera-wiring`'s business.

pub mod appsync;
pub mod bootstrap;
pub mod bus;
pub mod error;
pub mod github;
pub mod github_catch_up;
pub mod history;
pub mod ledger;
pub mod queue;
pub mod registry;
pub mod resources;
pub mod secrets;
pub mod seeder;
pub mod sessions;
pub mod sites;
pub mod stacks;
pub mod store;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub use bus::EventBridgeBus;
pub use queue::WorkQueue;
pub use registry::DynamoRegistry;
pub use sessions::EnvironmentSessions;
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

/// An S3 client. Emulators serve buckets by path, not by virtual host.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(s3)
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
