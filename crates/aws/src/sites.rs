//! The accounts environments live in. The platform's own is reached with the function's own
//! credentials (stacks changed in their environment's session when an environment role is
//! set); a deploy target's by assuming its role: for one environment with the session tag
//! `ephemera:environment`, for the sweep with `ephemera:sweep`, always with the external id.
//! Sessions are cached until shortly before their credentials expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_sts::types::Tag;
use ephemera_app::ports::{Site, Sites};
use ephemera_app::PortError;
use ephemera_domain::placement::Target;
use ephemera_domain::tags::ENVIRONMENT;
use ephemera_domain::EnvironmentName;
use tracing::{info, instrument};

use crate::appsync::AppSyncKeys;
use crate::error::port_error;
use crate::resources::AwsResources;
use crate::seeder::DynamoSeeder;
use crate::{s3_client, CloudFormationStacks, EnvironmentSessions, S3Store};

/// The session tag a sweep session carries (`true`): only the reaper may set it.
pub const SWEEP_TAG: &str = "ephemera:sweep";
/// Sessions last an hour and are reused for 45 minutes.
const SESSION: Duration = Duration::from_secs(3600);
const REUSE: Duration = Duration::from_secs(45 * 60);

pub struct AwsSites {
    sdk: SdkConfig,
    home: Site,
    external_id: Option<String>,
    cache: Mutex<HashMap<(String, String), (Site, Instant)>>,
    own: tokio::sync::OnceCell<String>,
}

impl AwsSites {
    /// `home` acts in the platform's own account; targets' roles are assumed with `external_id`.
    pub fn new(sdk: &SdkConfig, home: Site, external_id: Option<String>) -> Self {
        Self { sdk: sdk.clone(), home, external_id, cache: Mutex::default(), own: tokio::sync::OnceCell::new() }
    }

    /// Every adapter of a place, from one configuration.
    pub fn site_of(sdk: &SdkConfig) -> Site {
        let resources = Arc::new(AwsResources::new(sdk));
        Site {
            stacks: Arc::new(CloudFormationStacks::new(aws_sdk_cloudformation::Client::new(sdk))),
            store: Arc::new(S3Store::new(s3_client(sdk))),
            seeder: Arc::new(DynamoSeeder::new(aws_sdk_dynamodb::Client::new(sdk))),
            inventory: resources.clone(),
            cleaner: resources,
            keys: Arc::new(AppSyncKeys::new(aws_sdk_appsync::Client::new(sdk))),
        }
    }

    #[instrument(skip(self, tag), fields(role = %target.role_arn))]
    async fn session(&self, target: &Target, session: String, tag: (&str, &str)) -> Result<Site, PortError> {
        let key = (target.role_arn.clone(), session.clone());
        if let Some((site, at)) = self.cache.lock().expect("not poisoned").get(&key) {
            if at.elapsed() < REUSE {
                return Ok(site.clone());
            }
        }
        let sdk = assume_role(&self.sdk, &target.role_arn, &session, Some(tag), self.external_id.as_deref()).await?;
        let mut site = Self::site_of(&sdk);
        if tag.0 == SWEEP_TAG {
            // The sweep deletes an environment's stack as that environment, as in the platform's
            // account: CloudFormation deletes with the caller's rights, which are the
            // environment's own.
            let sessions =
                EnvironmentSessions::new(&self.sdk, target.role_arn.clone()).with_external_id(self.external_id.clone());
            let stacks = CloudFormationStacks::new(aws_sdk_cloudformation::Client::new(&sdk));
            site.stacks = Arc::new(stacks.acting_as_environments(Arc::new(sessions)));
        }
        info!(account = %target.account, session = %key.1, "assumed the deploy role");
        let mut cache = self.cache.lock().expect("not poisoned");
        cache.retain(|_, (_, at)| at.elapsed() < REUSE);
        cache.insert(key, (site.clone(), Instant::now()));
        Ok(site)
    }
}

/// `sdk` acting as a session of `role_arn` (an hour long), with the session `tag` and the
/// `external_id` the role's trust policy asks for.
pub async fn assume_role(
    sdk: &SdkConfig,
    role_arn: &str,
    session: &str,
    tag: Option<(&str, &str)>,
    external_id: Option<&str>,
) -> Result<SdkConfig, PortError> {
    let out = aws_sdk_sts::Client::new(sdk)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session.chars().take(64).collect::<String>())
        .set_tags(tag.map(|(k, v)| vec![Tag::builder().key(k).value(v).build().expect("key and value are set")]))
        .set_external_id(external_id.map(str::to_owned))
        .duration_seconds(SESSION.as_secs() as i32)
        .send()
        .await
        .map_err(|e| port_error("assume the deploy role", e))?;
    let c = out.credentials.ok_or_else(|| PortError::Permanent {
        operation: "assume the deploy role",
        message: "STS returned no credentials".into(),
    })?;
    let credentials =
        Credentials::new(c.access_key_id, c.secret_access_key, Some(c.session_token), None, "ephemera-deploy");
    Ok(sdk.to_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build())
}

#[async_trait]
impl Sites for AwsSites {
    async fn for_environment(&self, target: Option<&Target>, environment: &EnvironmentName) -> Result<Site, PortError> {
        match target {
            None => Ok(self.home.clone()),
            Some(t) => self.session(t, format!("ephemera-{environment}"), (ENVIRONMENT, environment.as_str())).await,
        }
    }

    async fn for_sweep(&self, target: Option<&Target>) -> Result<Site, PortError> {
        match target {
            None => Ok(self.home.clone()),
            Some(t) => self.session(t, "ephemera-sweep".into(), (SWEEP_TAG, "true")).await,
        }
    }

    async fn own_account(&self) -> Result<String, PortError> {
        let own = self.own.get_or_try_init(|| async {
            let me = aws_sdk_sts::Client::new(&self.sdk).get_caller_identity().send().await;
            let me = me.map_err(|e| port_error("get caller identity", e))?;
            me.account.ok_or(PortError::Permanent { operation: "get caller identity", message: "no account".into() })
        });
        Ok(own.await?.clone())
    }
}
