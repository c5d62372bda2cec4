//! The platform's own events on its EventBridge bus.
//!
//! Every state change is announced: `Environment.Requested` when the desired state changes (the
//! provisioner's work queue is fed from it), then `Environment.Creating` / `Updating` /
//! `Deleting` while a stack operation runs, and `Environment.Ready` / `Failed` / `Deleted`
//! when it settles.

use ephemera_domain::stack::stack_name_of_id;
use ephemera_domain::{Desired, Environment, EnvironmentName, RepoName, StackName, Status};
use serde::{Deserialize, Serialize};

pub const SOURCE: &str = "ephemera";
pub const REQUESTED: &str = "Environment.Requested";
pub const NOT_DEPLOYED: &str = "Environment.NotDeployed";
/// News for the pull request without a new generation, in the reason: what a comment command
/// did (an extension, preservation), or a push that was not deployed (`paths:`).
pub const NOTED: &str = "Environment.Noted";
/// The environment's expiry is near (the reaper, once per notice threshold).
pub const EXPIRING_SOON: &str = "Environment.ExpiringSoon";
/// The events the GitHub notifier reports on (`Environment.Requested` only as a GitHub App:
/// the preview's check run is queued then).
pub const NOTIFIED: [&str; 11] = [
    REQUESTED,
    "Environment.Queued",
    "Environment.Creating",
    "Environment.Updating",
    "Environment.Ready",
    "Environment.Failed",
    "Environment.Deleting",
    "Environment.Deleted",
    NOT_DEPLOYED,
    NOTED,
    EXPIRING_SOON,
];

/// One event: EventBridge's `detail-type` and `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformEvent {
    pub detail_type: String,
    pub detail: EnvironmentDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentDetail {
    pub environment: EnvironmentName,
    pub generation: u64,
    pub desired: Desired,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
}

impl PlatformEvent {
    /// The desired state of `env` changed: reconcile it.
    pub fn requested(env: &Environment) -> Self {
        Self::about(REQUESTED, env, env.status, env.status_reason.clone())
    }

    /// `env` is now in `status`.
    pub fn status(env: &Environment, status: Status, reason: Option<String>) -> Self {
        let detail_type = match status {
            Status::Pending => REQUESTED,
            Status::Queued => "Environment.Queued",
            Status::Creating => "Environment.Creating",
            Status::Updating => "Environment.Updating",
            Status::Ready => "Environment.Ready",
            Status::Deleting => "Environment.Deleting",
            Status::Deleted => "Environment.Deleted",
            Status::Failed => "Environment.Failed",
        };
        Self::about(detail_type, env, status, reason)
    }

    /// `what` happened to `env` (see [`NOTED`]).
    pub fn noted(env: &Environment, what: &str) -> Self {
        Self::about(NOTED, env, env.status, Some(what.to_owned()))
    }

    /// `env` expires soon (see [`EXPIRING_SOON`]).
    pub fn expiring_soon(env: &Environment) -> Self {
        Self::about(EXPIRING_SOON, env, env.status, None)
    }

    /// Nothing was deployed for a pull request event, and why (a merge conflict, a fork
    /// waiting for approval). The environment may not exist.
    pub fn not_deployed(name: &EnvironmentName, repo: &RepoName, number: u64, head: &str, why: &str) -> Self {
        Self {
            detail_type: NOT_DEPLOYED.to_owned(),
            detail: EnvironmentDetail {
                environment: name.clone(),
                generation: 0,
                desired: Desired::Up,
                status: Status::Pending,
                reason: Some(why.to_owned()),
                repository: Some(repo.full_name()),
                pull_request: Some(number),
                commit: Some(head.to_ascii_lowercase()),
                preview_url: None,
            },
        }
    }

    fn about(detail_type: &str, env: &Environment, status: Status, reason: Option<String>) -> Self {
        Self {
            detail_type: detail_type.to_owned(),
            detail: EnvironmentDetail {
                environment: env.name.clone(),
                generation: env.generation,
                desired: env.desired,
                status,
                reason,
                repository: env.repository.as_ref().map(|r| r.full_name()),
                pull_request: env.pull_request,
                commit: env.commit.clone(),
                preview_url: env.preview_url.clone(),
            },
        }
    }
}

/// An EventBridge event as delivered to a target (an SQS message body, or a Lambda event):
/// its `detail` read as `D`.
#[derive(Debug, Deserialize)]
pub struct Envelope<D> {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    /// Whole seconds, as EventBridge stamps it.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    pub detail: D,
}

pub const CLOUDFORMATION_SOURCE: &str = "aws.cloudformation";

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message is not an Ephemera EventBridge event: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("event from source {0:?} is not Ephemera's")]
    ForeignSource(String),
    #[error("CloudFormation event about {0:?}, which is not an Ephemera stack")]
    ForeignStack(String),
}

impl PlatformEvent {
    /// Reads the platform event out of an EventBridge envelope, as the runtime or SQS gives it.
    pub fn from_envelope(event: Envelope<EnvironmentDetail>) -> Result<Self, EnvelopeError> {
        if event.source != SOURCE {
            return Err(EnvelopeError::ForeignSource(event.source));
        }
        Ok(PlatformEvent { detail_type: event.detail_type, detail: event.detail })
    }
}

/// Reads the platform event out of an EventBridge envelope (the body SQS delivers).
pub fn parse_envelope(body: &str) -> Result<PlatformEvent, EnvelopeError> {
    PlatformEvent::from_envelope(serde_json::from_str(body)?)
}

/// The environment a stack id (`arn:...:stack/<name>/<id>`) belongs to, if it is one of the
/// platform's environment stacks.
pub fn environment_of_stack(stack_id: &str) -> Result<EnvironmentName, EnvelopeError> {
    stack_name_of_id(stack_id)
        .and_then(StackName::environment)
        .ok_or_else(|| EnvelopeError::ForeignStack(stack_id.to_owned()))
}

/// The environment a work-queue message is about: an Ephemera event, or a CloudFormation
/// "Stack Status Change" event for one of the platform's stacks.
pub fn environment_of(body: &str) -> Result<EnvironmentName, EnvelopeError> {
    let event: Envelope<serde_json::Value> = serde_json::from_str(body)?;
    match event.source.as_str() {
        SOURCE => Ok(serde_json::from_value::<EnvironmentDetail>(event.detail)?.environment),
        CLOUDFORMATION_SOURCE => {
            environment_of_stack(event.detail.get("stack-id").and_then(|v| v.as_str()).unwrap_or_default())
        }
        other => Err(EnvelopeError::ForeignSource(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sqs_sample() {
        let batch: serde_json::Value =
            serde_json::from_slice(include_bytes!("../../../events/sqs/provisioner-batch.json")).unwrap();
        let body = batch["Records"][0]["body"].as_str().unwrap();
        let event = parse_envelope(body).unwrap();
        assert_eq!(event.detail_type, REQUESTED);
        assert_eq!(event.detail.desired, Desired::Up);
        assert_eq!(event.detail.generation, 1);
    }

    #[test]
    fn reads_cloudformation_status_changes_for_our_stacks_only() {
        let event =
            std::str::from_utf8(include_bytes!("../../../events/eventbridge/stack-status-change.json")).unwrap();
        assert_eq!(environment_of(event).unwrap().as_str(), "pr-7-acme-todo-app-6acfdc9491");
        let foreign = event.replace("stack/ephemera-pr-7-acme-todo-app-6acfdc9491", "stack/payments-prod");
        assert!(matches!(environment_of(&foreign), Err(EnvelopeError::ForeignStack(_))));
    }

    #[test]
    fn rejects_foreign_and_malformed() {
        assert!(matches!(parse_envelope("{}"), Err(EnvelopeError::Malformed(_))));
        let foreign = r#"{"detail-type":"x","source":"aws.s3","detail":{"environment":"dev-a","generation":1,"desired":"up","status":"PENDING"}}"#;
        assert!(matches!(parse_envelope(foreign), Err(EnvelopeError::ForeignSource(_))));
    }
}
