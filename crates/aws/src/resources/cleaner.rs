//! Deleting one resource completely, kind by kind, as the resource catalogue says. A resource
//! that is gone already is fine: a retried or repeated delete succeeds.

use async_trait::async_trait;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ephemera_app::ports::Cleaner;
use ephemera_app::PortError;
use ephemera_domain::catalogue::{self, Kind, Leftover};
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
pub(super) fn unless_gone<T, E>(
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

/// As [`unless_gone`], for the lookup before deleting a kind known by an id: IAM lets the
/// platform read one only while it carries the platform's tag, so one already deleted (or never
/// the platform's) may answer "denied" rather than "not found". Either way there is nothing to
/// delete.
fn unless_gone_or_denied<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, PortError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const DENIED: &[&str] = &["AccessDenied", "AccessDeniedException", "NotAuthorizedException"];
    match result {
        Err(e) if code(&e).is_some_and(|c| DENIED.contains(&c)) => Ok(None),
        other => unless_gone(operation, other),
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
                let described = self.cognito_identity.describe_identity_pool().identity_pool_id(id).send().await;
                if unless_gone_or_denied("describe identity pool", described)?.is_none() {
                    return Ok(());
                }
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
            Kind::LogGroup => self.delete_log_group(id).await,
        }
    }
}

impl AwsResources {
    /// Its event source mappings first: deleting a function leaves them behind. One already
    /// being deleted is skipped; one busy (being created or updated) is tried again later.
    async fn delete_function(&self, name: &str) -> Result<(), PortError> {
        let mut pages = self.lambda.list_event_source_mappings().function_name(name).into_paginator().send();
        let mut mappings = Vec::new();
        while let Some(page) = pages.next().await {
            let Some(page) = unless_gone("list event source mappings", page)? else { break };
            let live =
                page.event_source_mappings.unwrap_or_default().into_iter().filter(|m| m.state() != Some("Deleting"));
            mappings.extend(live.filter_map(|m| m.uuid));
        }
        for uuid in mappings {
            match self.lambda.delete_event_source_mapping().uuid(uuid).send().await {
                Err(e) if code(&e) == Some("ResourceInUseException") => {
                    let message = format!("{name}'s event source mapping is busy; tried again later");
                    return Err(PortError::Retryable { operation: "delete event source mapping", message });
                }
                r => drop(unless_gone("delete event source mapping", r)?),
            }
        }
        unless_gone("delete function", self.lambda.delete_function().function_name(name).send().await).map(drop)
    }

    /// An API's log group is looked up first: IAM lets the platform delete one only when it
    /// carries the platform's tag, so a missing one would read as denied, not gone.
    async fn delete_log_group(&self, name: &str) -> Result<(), PortError> {
        if name.starts_with(catalogue::APPSYNC_LOG_PREFIX) {
            let listed = self.logs.describe_log_groups().log_group_name_prefix(name).send().await;
            let listed = listed.map_err(|e| port_error("list log groups", e))?;
            if !listed.log_groups().iter().any(|g| g.log_group_name() == Some(name)) {
                return Ok(());
            }
        }
        unless_gone("delete log group", self.logs.delete_log_group().log_group_name(name).send().await).map(drop)
    }

    /// Looked up first: a delete of an API that is not there is not reliably "not found".
    async fn delete_api(&self, id: &str) -> Result<(), PortError> {
        if unless_gone_or_denied("get GraphQL API", self.appsync.get_graphql_api().api_id(id).send().await)?.is_none() {
            return Ok(());
        }
        unless_gone("delete GraphQL API", self.appsync.delete_graphql_api().api_id(id).send().await).map(drop)
    }

    /// Its domain first: AWS refuses to delete a pool that still has one.
    async fn delete_user_pool(&self, id: &str) -> Result<(), PortError> {
        let described = self.cognito_idp.describe_user_pool().user_pool_id(id).send().await;
        let Some(pool) = unless_gone_or_denied("describe user pool", described)?.and_then(|d| d.user_pool) else {
            return Ok(());
        };
        for domain in [pool.domain, pool.custom_domain].into_iter().flatten() {
            let r = self.cognito_idp.delete_user_pool_domain().domain(domain).user_pool_id(id).send().await;
            unless_gone("delete user pool domain", r)?;
        }
        unless_gone("delete user pool", self.cognito_idp.delete_user_pool().user_pool_id(id).send().await).map(drop)
    }
}
