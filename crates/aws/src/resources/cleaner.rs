//! Deleting one resource completely, kind by kind, as the resource catalogue says. A resource
//! that is gone already is fine: a retried or repeated delete succeeds.

use async_trait::async_trait;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ephemera_app::ports::Cleaner;
use ephemera_app::PortError;
use ephemera_domain::catalogue::{Kind, Leftover};
use tracing::instrument;

use super::AwsResources;
use crate::error::{code, port_error};

/// The error codes that mean "no such resource", across the services.
const GONE: &[&str] = &[
    "ResourceNotFoundException",
    "NotFoundException",
    "NotFound",
    "NoSuchEntity",
    "NoSuchBucket",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

/// The call's output, `None` if the resource is gone, or the error.
fn unless_gone<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, PortError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if code(&e).is_some_and(|c| GONE.contains(&c)) => Ok(None),
        Err(e) => Err(port_error(operation, e)),
    }
}

#[async_trait]
impl Cleaner for AwsResources {
    #[instrument(skip(self))]
    async fn delete(&self, leftover: &Leftover) -> Result<(), PortError> {
        let id = leftover.id.as_str();
        match leftover.kind {
            Kind::Function => self.delete_function(id).await,
            Kind::GraphQlApi => self.delete_api(id).await,
            Kind::IdentityPool => {
                let r = self.cognito_identity.delete_identity_pool().identity_pool_id(id).send().await;
                unless_gone("delete identity pool", r).map(drop)
            }
            Kind::UserPool => self.delete_user_pool(id).await,
            Kind::Topic => unless_gone("delete topic", self.sns.delete_topic().topic_arn(id).send().await).map(drop),
            Kind::Queue => {
                let Some(url) = unless_gone("get queue URL", self.sqs.get_queue_url().queue_name(id).send().await)?
                    .and_then(|o| o.queue_url)
                else {
                    return Ok(());
                };
                unless_gone("delete queue", self.sqs.delete_queue().queue_url(url).send().await).map(drop)
            }
            Kind::Secret => {
                let r = self.secrets.delete_secret().secret_id(id).force_delete_without_recovery(true).send().await;
                unless_gone("delete secret", r).map(drop)
            }
            Kind::Table => {
                unless_gone("delete table", self.dynamodb.delete_table().table_name(id).send().await).map(drop)
            }
            Kind::Bucket => unless_gone("delete bucket", self.s3.delete_bucket().bucket(id).send().await).map(drop),
            Kind::Role => self.delete_role(id).await,
            Kind::ManagedPolicy => self.delete_policy(id).await,
            Kind::LogGroup => {
                let r = self.logs.delete_log_group().log_group_name(id).send().await;
                unless_gone("delete log group", r).map(drop)
            }
        }
    }
}

impl AwsResources {
    /// Its event source mappings first: deleting a function leaves them behind.
    async fn delete_function(&self, name: &str) -> Result<(), PortError> {
        let mut pages = self.lambda.list_event_source_mappings().function_name(name).into_paginator().send();
        let mut mappings = Vec::new();
        while let Some(page) = pages.next().await {
            match unless_gone("list event source mappings", page)? {
                Some(page) => {
                    mappings.extend(page.event_source_mappings.unwrap_or_default().into_iter().filter_map(|m| m.uuid))
                }
                None => break,
            }
        }
        for uuid in mappings {
            let r = self.lambda.delete_event_source_mapping().uuid(uuid).send().await;
            unless_gone("delete event source mapping", r)?;
        }
        unless_gone("delete function", self.lambda.delete_function().function_name(name).send().await).map(drop)
    }

    /// Looked up first: a delete of an API that is not there is not reliably "not found".
    async fn delete_api(&self, id: &str) -> Result<(), PortError> {
        if unless_gone("get GraphQL API", self.appsync.get_graphql_api().api_id(id).send().await)?.is_none() {
            return Ok(());
        }
        unless_gone("delete GraphQL API", self.appsync.delete_graphql_api().api_id(id).send().await).map(drop)
    }

    /// Its domain first: AWS refuses to delete a pool that still has one.
    async fn delete_user_pool(&self, id: &str) -> Result<(), PortError> {
        let described = self.cognito_idp.describe_user_pool().user_pool_id(id).send().await;
        let Some(pool) = unless_gone("describe user pool", described)?.and_then(|d| d.user_pool) else {
            return Ok(());
        };
        for domain in [pool.domain, pool.custom_domain].into_iter().flatten() {
            let r = self.cognito_idp.delete_user_pool_domain().domain(domain).user_pool_id(id).send().await;
            unless_gone("delete user pool domain", r)?;
        }
        unless_gone("delete user pool", self.cognito_idp.delete_user_pool().user_pool_id(id).send().await).map(drop)
    }

    /// Inline policies deleted, managed ones detached, instance profiles left, then the role.
    async fn delete_role(&self, role: &str) -> Result<(), PortError> {
        let Some(inline) =
            unless_gone("list role policies", self.iam.list_role_policies().role_name(role).send().await)?
        else {
            return Ok(());
        };
        for policy in inline.policy_names {
            let r = self.iam.delete_role_policy().role_name(role).policy_name(policy).send().await;
            unless_gone("delete role policy", r)?;
        }
        let attached = self.iam.list_attached_role_policies().role_name(role).send().await;
        for policy in
            unless_gone("list attached role policies", attached)?.and_then(|a| a.attached_policies).unwrap_or_default()
        {
            let r = self.iam.detach_role_policy().role_name(role).set_policy_arn(policy.policy_arn).send().await;
            unless_gone("detach role policy", r)?;
        }
        let profiles = self.iam.list_instance_profiles_for_role().role_name(role).send().await;
        for profile in unless_gone("list instance profiles", profiles)?.map(|p| p.instance_profiles).unwrap_or_default()
        {
            let r = self
                .iam
                .remove_role_from_instance_profile()
                .instance_profile_name(profile.instance_profile_name)
                .role_name(role)
                .send()
                .await;
            unless_gone("remove role from instance profile", r)?;
        }
        unless_gone("delete role", self.iam.delete_role().role_name(role).send().await).map(drop)
    }

    /// Detached from every role, user and group, its other versions deleted, then the policy.
    async fn delete_policy(&self, arn: &str) -> Result<(), PortError> {
        let Some(entities) =
            unless_gone("list policy entities", self.iam.list_entities_for_policy().policy_arn(arn).send().await)?
        else {
            return Ok(());
        };
        for role in entities.policy_roles.unwrap_or_default().into_iter().filter_map(|r| r.role_name) {
            unless_gone(
                "detach role policy",
                self.iam.detach_role_policy().role_name(role).policy_arn(arn).send().await,
            )?;
        }
        for user in entities.policy_users.unwrap_or_default().into_iter().filter_map(|u| u.user_name) {
            unless_gone(
                "detach user policy",
                self.iam.detach_user_policy().user_name(user).policy_arn(arn).send().await,
            )?;
        }
        for group in entities.policy_groups.unwrap_or_default().into_iter().filter_map(|g| g.group_name) {
            let r = self.iam.detach_group_policy().group_name(group).policy_arn(arn).send().await;
            unless_gone("detach group policy", r)?;
        }
        let versions = self.iam.list_policy_versions().policy_arn(arn).send().await;
        for v in unless_gone("list policy versions", versions)?.and_then(|v| v.versions).unwrap_or_default() {
            if v.is_default_version {
                continue;
            }
            let r = self.iam.delete_policy_version().policy_arn(arn).set_version_id(v.version_id).send().await;
            unless_gone("delete policy version", r)?;
        }
        unless_gone("delete policy", self.iam.delete_policy().policy_arn(arn).send().await).map(drop)
    }
}
