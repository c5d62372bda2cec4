//! Ephemera's wiring: configuration, read a section per service ([`config`]), and each
//! function assembled from the adapters its services use ([`platform`]), over AWS clients built
//! only when first asked for ([`Clients`]).
//!
//! The Lambda functions' `main.rs`, the local runner and the tests' harness all start here;
//! `ephemera-app` knows no configuration and `ephemera-aws` assembles nothing.

pub mod clients;
pub mod config;
pub mod platform;

pub use clients::Clients;
pub use config::{
    Config, ConfigError, GitHubConfig, NotifierConfig, ProvisionerConfig, ReaperConfig, SelfServiceConfig,
    SharedConfig, WebhookConfig,
};
pub use platform::StartupError;
