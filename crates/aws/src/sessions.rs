//! Acting as one environment: the deploy role assumed with the session tag
//! `ephemera:environment`, so that the role's `${aws:PrincipalTag/ephemera:environment}`
//! conditions let CloudFormation touch that environment's resources and nothing else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_sts::types::Tag;
use ephemera_app::PortError;
use ephemera_domain::tags::ENVIRONMENT;
use ephemera_domain::EnvironmentName;
use tracing::instrument;

use crate::error::port_error;

/// How long a session lasts (the most role chaining allows), and how long one is reused.
const SESSION: Duration = Duration::from_secs(3600);
const REUSE: Duration = Duration::from_secs(45 * 60);

/// CloudFormation clients, one per environment, each acting in that environment's session.
#[derive(Debug)]
pub struct EnvironmentSessions {
    sdk: SdkConfig,
    sts: aws_sdk_sts::Client,
    role_arn: String,
    /// Asked for by a deploy account's role.
    external_id: Option<String>,
    cache: Mutex<HashMap<String, (aws_sdk_cloudformation::Client, Instant)>>,
}

/// What the session is asked for: its name and its one tag.
pub fn session_request(environment: &EnvironmentName) -> (String, Tag) {
    // Session names are at most 64 characters of [\w+=,.@-].
    let name: String = format!("ephemera-{environment}").chars().take(64).collect();
    let tag = Tag::builder().key(ENVIRONMENT).value(environment.as_str()).build().expect("key and value are set");
    (name, tag)
}

impl EnvironmentSessions {
    pub fn new(sdk: &SdkConfig, role_arn: impl Into<String>) -> Self {
        Self {
            sdk: sdk.clone(),
            sts: aws_sdk_sts::Client::new(sdk),
            role_arn: role_arn.into(),
            external_id: None,
            cache: Mutex::default(),
        }
    }

    /// Sessions of a deploy account's role, which asks for the platform's external id.
    pub fn with_external_id(self, external_id: Option<String>) -> Self {
        Self { external_id, ..self }
    }

    /// A CloudFormation client acting as `environment`.
    #[instrument(skip(self), fields(role = %self.role_arn))]
    pub async fn cloudformation(
        &self,
        environment: &EnvironmentName,
    ) -> Result<aws_sdk_cloudformation::Client, PortError> {
        if let Some((client, at)) = self.cache.lock().expect("not poisoned").get(environment.as_str()) {
            if at.elapsed() < REUSE {
                return Ok(client.clone());
            }
        }
        let (name, tag) = session_request(environment);
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(name)
            .tags(tag)
            .set_external_id(self.external_id.clone())
            .duration_seconds(SESSION.as_secs() as i32)
            .send()
            .await
            .map_err(|e| port_error("assume the environment's role", e))?;
        let c = out.credentials.ok_or_else(|| PortError::Permanent {
            operation: "assume the environment's role",
            message: "STS returned no credentials".into(),
        })?;
        let credentials =
            Credentials::new(c.access_key_id, c.secret_access_key, Some(c.session_token), None, "ephemera-environment");
        let config = aws_sdk_cloudformation::config::Builder::from(&self.sdk).credentials_provider(credentials).build();
        let client = aws_sdk_cloudformation::Client::from_conf(config);
        let mut cache = self.cache.lock().expect("not poisoned");
        cache.retain(|_, (_, at)| at.elapsed() < REUSE);
        cache.insert(environment.to_string(), (client.clone(), Instant::now()));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_carries_the_environment_as_its_tag_and_a_valid_name() {
        let env = EnvironmentName::parse("pr-7-acme-todo-app-6acfdc9491").unwrap();
        let (name, tag) = session_request(&env);
        assert_eq!(name, "ephemera-pr-7-acme-todo-app-6acfdc9491");
        assert_eq!((tag.key(), tag.value()), ("ephemera:environment", "pr-7-acme-todo-app-6acfdc9491"));
        let long = EnvironmentName::parse(&format!("dev-{}", "a".repeat(59))).unwrap();
        assert_eq!(session_request(&long).0.len(), 64);
    }
}
