//! CloudFormation.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};
use aws_sdk_cloudformation::Client;
use ephemera_app::ports::{StackRequest, StackResource, StackView, Stacks, UpdateOutcome};
use ephemera_app::PortError;
use ephemera_domain::names::STACK_PREFIX;
use ephemera_domain::sweep::StackInfo;
use ephemera_domain::{StackName, StackStatus};
use tracing::instrument;

use crate::error::{code, port_error};
use crate::sessions::EnvironmentSessions;

#[derive(Debug, Clone)]
pub struct CloudFormationStacks {
    client: Client,
    /// When set, stacks are created, updated and deleted in their environment's session.
    sessions: Option<Arc<EnvironmentSessions>>,
}

impl CloudFormationStacks {
    pub fn new(client: Client) -> Self {
        Self { client, sessions: None }
    }

    /// Changes an environment's stack only as that environment (see [`EnvironmentSessions`]).
    pub fn acting_as_environments(self, sessions: Arc<EnvironmentSessions>) -> Self {
        Self { sessions: Some(sessions), ..self }
    }

    /// The client to change `name` with: its environment's session, if there are sessions.
    async fn changing(&self, name: &StackName) -> Result<Client, PortError> {
        match (&self.sessions, StackName::environment(name.as_str())) {
            (Some(sessions), Some(env)) => sessions.cloudformation(&env).await,
            _ => Ok(self.client.clone()),
        }
    }
}

fn tags(request: &StackRequest) -> Vec<Tag> {
    request.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn parameters(request: &StackRequest) -> Vec<Parameter> {
    request.parameters.iter().map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build()).collect()
}

const CAPABILITIES: [Capability; 3] =
    [Capability::CapabilityIam, Capability::CapabilityNamedIam, Capability::CapabilityAutoExpand];

/// "Stack with id X does not exist" is how CloudFormation says there is none.
fn is_missing(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.contains("does not exist"))
}

/// The parts of a stack request that a create and an update send alike.
macro_rules! with_request {
    ($builder:expr, $request:expr) => {
        $builder
            .stack_name($request.name.as_str())
            .template_body(&$request.template_body)
            .set_parameters(Some(parameters($request)))
            .set_tags(Some(tags($request)))
            .set_capabilities(Some(CAPABILITIES.to_vec()))
            .client_request_token(&$request.token)
    };
}

#[async_trait]
impl Stacks for CloudFormationStacks {
    #[instrument(skip(self))]
    async fn describe(&self, name: &StackName) -> Result<Option<StackView>, PortError> {
        let out = match self.client.describe_stacks().stack_name(name.as_str()).send().await {
            Ok(out) => out,
            Err(e)
                if code(&e) == Some("ValidationError")
                    && is_missing(e.as_service_error().and_then(|s| s.meta().message())) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(port_error("describe stack", e)),
        };
        let Some(stack) = out.stacks.unwrap_or_default().into_iter().next() else { return Ok(None) };
        let status = StackStatus::parse(stack.stack_status.as_ref().map(|s| s.as_str()).unwrap_or_default());
        if status.is_deleted() {
            return Ok(None);
        }
        Ok(Some(StackView {
            stack_id: stack.stack_id.unwrap_or_default(),
            status,
            reason: stack.stack_status_reason,
            tags: stack.tags.unwrap_or_default().into_iter().filter_map(|t| Some((t.key?, t.value?))).collect(),
            outputs: stack
                .outputs
                .unwrap_or_default()
                .into_iter()
                .filter_map(|o| Some((o.output_key?, o.output_value?)))
                .collect(),
        }))
    }

    #[instrument(skip(self, request), fields(stack = %request.name, token = %request.token))]
    async fn create(&self, request: &StackRequest) -> Result<String, PortError> {
        let result = self.changing(&request.name).await?.create_stack();
        let result = with_request!(result, request).send().await;
        match result {
            Ok(out) => Ok(out.stack_id.unwrap_or_default()),
            // A retry of a create that already went through.
            Err(e) if code(&e) == Some("AlreadyExistsException") => {
                Ok(self.describe(&request.name).await?.map(|v| v.stack_id).unwrap_or_default())
            }
            Err(e) => Err(port_error("create stack", e)),
        }
    }

    #[instrument(skip(self, request), fields(stack = %request.name, token = %request.token))]
    async fn update(&self, request: &StackRequest) -> Result<UpdateOutcome, PortError> {
        let result = self.changing(&request.name).await?.update_stack();
        let result = with_request!(result, request).send().await;
        match result {
            Ok(_) => Ok(UpdateOutcome::Started),
            Err(e)
                if code(&e) == Some("ValidationError")
                    && e.as_service_error()
                        .and_then(|s| s.meta().message())
                        .is_some_and(|m| m.contains("No updates")) =>
            {
                Ok(UpdateOutcome::NoChanges)
            }
            Err(e) => Err(port_error("update stack", e)),
        }
    }

    #[instrument(skip(self))]
    async fn delete(&self, name: &StackName, token: &str) -> Result<(), PortError> {
        self.changing(name)
            .await?
            .delete_stack()
            .stack_name(name.as_str())
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| port_error("delete stack", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn buckets(&self, name: &StackName) -> Result<Vec<String>, PortError> {
        let mut out = Vec::new();
        let mut pages = self.client.list_stack_resources().stack_name(name.as_str()).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if code(&e) == Some("ValidationError") => return Ok(out),
                Err(e) => return Err(port_error("list stack resources", e)),
            };
            for r in page.stack_resource_summaries.unwrap_or_default() {
                let deleted = r.resource_status.as_ref().is_some_and(|s| s.as_str() == "DELETE_COMPLETE");
                if r.resource_type.as_deref() == Some("AWS::S3::Bucket") && !deleted {
                    out.extend(r.physical_resource_id);
                }
            }
        }
        Ok(out)
    }

    #[instrument(skip(self))]
    async fn list(&self) -> Result<Vec<StackInfo>, PortError> {
        let mut out = Vec::new();
        let mut pages = self.client.describe_stacks().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list stacks", e))?;
            for st in page.stacks.unwrap_or_default() {
                let name = st.stack_name.clone().unwrap_or_default();
                if !name.starts_with(STACK_PREFIX) {
                    continue;
                }
                let when = st.last_updated_time.or(st.creation_time);
                let updated = when
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_else(chrono::Utc::now);
                out.push(StackInfo {
                    name,
                    id: st.stack_id.unwrap_or_default(),
                    status: StackStatus::parse(st.stack_status.as_ref().map(|s| s.as_str()).unwrap_or_default()),
                    updated,
                    tags: st.tags.unwrap_or_default().into_iter().filter_map(|t| Some((t.key?, t.value?))).collect(),
                });
            }
        }
        Ok(out)
    }

    #[instrument(skip(self))]
    async fn resources(&self, name: &StackName) -> Result<Vec<StackResource>, PortError> {
        let mut out = Vec::new();
        let mut pages = self.client.list_stack_resources().stack_name(name.as_str()).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list stack resources", e))?;
            for r in page.stack_resource_summaries.unwrap_or_default() {
                out.push(StackResource {
                    logical_id: r.logical_resource_id.unwrap_or_default(),
                    resource_type: r.resource_type.unwrap_or_default(),
                    physical_id: r.physical_resource_id,
                    status: StackStatus::parse(r.resource_status.as_ref().map(|s| s.as_str()).unwrap_or_default()),
                });
            }
        }
        Ok(out)
    }

    #[instrument(skip(self))]
    async fn delete_retaining(&self, name: &StackName, token: &str, retain: &[String]) -> Result<(), PortError> {
        self.changing(name)
            .await?
            .delete_stack()
            .stack_name(name.as_str())
            .client_request_token(token)
            .set_retain_resources((!retain.is_empty()).then(|| retain.to_vec()))
            .send()
            .await
            .map_err(|e| port_error("delete stack retaining resources", e))?;
        Ok(())
    }
}
