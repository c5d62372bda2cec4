//! CloudFormation in memory: enough of it for the provisioner's loop and the reaper.
//!
//! A create ends in `CREATE_COMPLETE` (or the status set with [`MemoryStacks::create_ends`]),
//! with the outputs given to [`MemoryStacks::with_outputs`]; an update that changes the
//! template, parameters or tags ends in `UPDATE_COMPLETE`, one that changes nothing answers
//! `NoChanges`; a delete removes the stack, so `describe` answers None, unless the stack was
//! told to block its deletion ([`MemoryStacks::block_delete`]): then it ends in `DELETE_FAILED`,
//! its buckets marked as what failed. With [`MemoryStacks::in_progress_for`], an operation
//! shows `*_IN_PROGRESS` for that many looks (`describe` or `list`) before it completes.
//! A stack's resources are read from the template's `Resources` (a JSON template, as the
//! provisioner renders them), with physical names `<stack>-<logical id>-fake`, lowercased.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::names::STACK_PREFIX;
use ephemera_domain::sweep::StackInfo;
use ephemera_domain::tags::{ENVIRONMENT, MANAGED_BY, MANAGED_BY_VALUE};
use ephemera_domain::{StackName, StackStatus};

use super::{lock, permanent, Faults};
use crate::clock::{Clock, SystemClock};
use crate::ports::{PortError, StackRequest, StackResource, StackView, Stacks, UpdateOutcome};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// One stack as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeStack {
    pub id: String,
    pub status: String,
    pub reason: Option<String>,
    pub tags: Vec<(String, String)>,
    pub outputs: BTreeMap<String, String>,
    pub resources: Vec<StackResource>,
    /// The last create or update request, if the stack was made through the port.
    pub request: Option<StackRequest>,
    pub updated: DateTime<Utc>,
    /// Looks left before the operation under way completes, and the status it ends in.
    pending: Option<(u32, String)>,
}

impl FakeStack {
    /// A stack in `status`, tagged as the platform's stack of `environment`.
    pub fn managed(environment: &str, status: &str) -> Self {
        let tags = vec![
            (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (ENVIRONMENT.to_owned(), environment.to_owned()),
        ];
        Self::untagged(status).with_tags(tags)
    }

    /// A stack in `status` without tags.
    pub fn untagged(status: &str) -> Self {
        Self {
            id: String::new(),
            status: status.to_owned(),
            reason: None,
            tags: Vec::new(),
            outputs: BTreeMap::new(),
            resources: Vec::new(),
            request: None,
            updated: Utc::now(),
            pending: None,
        }
    }

    pub fn with_tags(mut self, tags: Vec<(String, String)>) -> Self {
        self.tags = tags;
        self
    }

    /// Adds a resource: (logical id, type, physical id), `CREATE_COMPLETE`.
    pub fn with_resource(mut self, logical: &str, kind: &str, physical: &str) -> Self {
        self.resources.push(resource(logical, kind, physical));
        self
    }

    pub fn with_outputs(mut self, outputs: &[(&str, &str)]) -> Self {
        self.outputs = outputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self
    }

    pub fn updated_at(mut self, t: DateTime<Utc>) -> Self {
        self.updated = t;
        self
    }
}

fn resource(logical: &str, kind: &str, physical: &str) -> StackResource {
    StackResource {
        logical_id: logical.to_owned(),
        resource_type: kind.to_owned(),
        physical_id: Some(physical.to_owned()),
        status: StackStatus::CreateComplete,
    }
}

#[derive(Debug, Default)]
struct State {
    stacks: BTreeMap<String, FakeStack>,
    calls: Vec<(String, String)>,
    retained: Vec<String>,
    blocked: Vec<String>,
    /// The types whose resources fail to delete, by blocked stack.
    blocking: HashMap<String, Vec<String>>,
    created: u64,
}

/// CloudFormation in memory. Operation names for [`Faults`]: `describe`, `create`, `update`,
/// `delete`, `buckets`, `list`, `resources`, `delete_retaining`.
pub struct MemoryStacks {
    state: Mutex<State>,
    outputs: Mutex<BTreeMap<String, String>>,
    create_ends: Mutex<String>,
    delay: Mutex<u32>,
    clock: Arc<dyn Clock>,
    pub faults: Faults,
}

impl Default for MemoryStacks {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStacks {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// Stacks whose `updated` times come from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::default(),
            outputs: Mutex::default(),
            create_ends: Mutex::new("CREATE_COMPLETE".to_owned()),
            delay: Mutex::new(0),
            clock,
            faults: Faults::default(),
        }
    }

    /// The outputs every stack created or updated from now on has.
    pub fn with_outputs(self, outputs: &[(&str, &str)]) -> Self {
        *lock(&self.outputs) = outputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self
    }

    /// The status creations end in from now on (`ROLLBACK_COMPLETE` for a failed one).
    pub fn create_ends(&self, status: &str) {
        *lock(&self.create_ends) = status.to_owned();
    }

    /// Operations from now on show `*_IN_PROGRESS` for `looks` describes or lists first.
    pub fn in_progress_for(&self, looks: u32) {
        *lock(&self.delay) = looks;
    }

    /// Deleting this stack fails (`DELETE_FAILED`, its buckets what failed) until it is
    /// deleted retaining them.
    pub fn block_delete(&self, name: &StackName) {
        self.block_delete_on(name, &["AWS::S3::Bucket"]);
    }

    /// As [`Self::block_delete`], with the resources of these types what failed.
    pub fn block_delete_on(&self, name: &StackName, types: &[&str]) {
        let mut state = lock(&self.state);
        state.blocked.push(name.to_string());
        state.blocking.insert(name.to_string(), types.iter().map(|t| t.to_string()).collect());
    }

    /// Puts a stack as it is (for setting up a test); it gets an id if it has none.
    pub fn insert(&self, name: &str, mut stack: FakeStack) {
        let mut state = lock(&self.state);
        if stack.id.is_empty() {
            state.created += 1;
            stack.id = stack_id(name, state.created);
        }
        state.stacks.insert(name.to_owned(), stack);
    }

    /// The stack, as held (deleted stacks are gone).
    pub fn get(&self, name: &StackName) -> Option<FakeStack> {
        lock(&self.state).stacks.get(name.as_str()).cloned()
    }

    /// The mutating calls made, in order: (`create`/`update`/`delete`/`delete_retaining`, stack).
    pub fn calls(&self) -> Vec<(String, String)> {
        lock(&self.state).calls.clone()
    }

    /// Logical ids of resources kept by `delete_retaining`.
    pub fn retained(&self) -> Vec<String> {
        lock(&self.state).retained.clone()
    }

    fn log(state: &mut State, op: &str, name: &StackName) {
        state.calls.push((op.to_owned(), name.to_string()));
    }

    /// One look at a stack: an operation under way moves on, or completes.
    fn tick(state: &mut State, name: &str) {
        let Some(stack) = state.stacks.get_mut(name) else { return };
        match stack.pending.take() {
            Some((0, status)) if status == "DELETE_COMPLETE" => {
                state.stacks.remove(name);
            }
            Some((0, status)) => stack.status = status,
            Some((left, status)) => stack.pending = Some((left - 1, status)),
            None => {}
        }
    }

    /// Starts an operation: in progress for the configured looks, else done at once.
    fn start(&self, state: &mut State, name: &str, in_progress: &str, ends: String) {
        let delay = *lock(&self.delay);
        let now = self.clock.now();
        if let Some(stack) = state.stacks.get_mut(name) {
            stack.updated = now;
            stack.status = in_progress.to_owned();
            stack.pending = Some((delay, ends));
        }
        if delay == 0 {
            Self::tick(state, name);
        }
    }
}

fn stack_id(name: &str, n: u64) -> String {
    format!("arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/fake-{n}")
}

/// The resources a JSON template declares, named as CloudFormation would name them.
fn resources_of(stack: &StackName, template: &str) -> Vec<StackResource> {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_str::<serde_json::Value>(template) else {
        return Vec::new();
    };
    let Some(serde_json::Value::Object(declared)) = doc.get("Resources") else { return Vec::new() };
    declared
        .iter()
        .map(|(logical, r)| {
            let kind = r.get("Type").and_then(|t| t.as_str()).unwrap_or_default();
            resource(logical, kind, &format!("{stack}-{logical}-fake").to_ascii_lowercase())
        })
        .collect()
}

fn view(stack: &FakeStack) -> StackView {
    StackView {
        stack_id: stack.id.clone(),
        status: StackStatus::parse(&stack.status),
        reason: stack.reason.clone(),
        tags: stack.tags.clone(),
        outputs: stack.outputs.clone(),
    }
}

fn tags(request: &StackRequest) -> Vec<(String, String)> {
    request.tags.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn missing(operation: &'static str, name: &StackName) -> PortError {
    permanent(operation, &format!("ValidationError: Stack with id {name} does not exist"))
}

#[async_trait]
impl Stacks for MemoryStacks {
    async fn describe(&self, name: &StackName) -> Result<Option<StackView>, PortError> {
        self.faults.check("describe")?;
        let mut state = lock(&self.state);
        Self::tick(&mut state, name.as_str());
        Ok(state.stacks.get(name.as_str()).map(view))
    }

    /// A stack that exists already answers with its id, as the adapter does for a retried create.
    async fn create(&self, request: &StackRequest) -> Result<String, PortError> {
        self.faults.check("create")?;
        let mut state = lock(&self.state);
        let name = request.name.as_str();
        Self::log(&mut state, "create", &request.name);
        if let Some(existing) = state.stacks.get(name) {
            return Ok(existing.id.clone());
        }
        state.created += 1;
        let stack = FakeStack {
            id: stack_id(name, state.created),
            tags: tags(request),
            outputs: lock(&self.outputs).clone(),
            resources: resources_of(&request.name, &request.template_body),
            request: Some(request.clone()),
            ..FakeStack::untagged("CREATE_IN_PROGRESS")
        };
        let id = stack.id.clone();
        state.stacks.insert(name.to_owned(), stack);
        let ends = lock(&self.create_ends).clone();
        self.start(&mut state, name, "CREATE_IN_PROGRESS", ends);
        Ok(id)
    }

    async fn update(&self, request: &StackRequest) -> Result<UpdateOutcome, PortError> {
        self.faults.check("update")?;
        let mut state = lock(&self.state);
        let name = request.name.as_str();
        Self::log(&mut state, "update", &request.name);
        let outputs = lock(&self.outputs).clone();
        let Some(stack) = state.stacks.get_mut(name) else { return Err(missing("update stack", &request.name)) };
        if stack.status.ends_with("_IN_PROGRESS") {
            let message =
                format!("ValidationError: Stack:{} is in {} state and can not be updated.", stack.id, stack.status);
            return Err(permanent("update stack", &message));
        }
        let same = stack.request.as_ref().is_some_and(|r| {
            r.template_body == request.template_body && r.parameters == request.parameters && r.tags == request.tags
        });
        if same {
            return Ok(UpdateOutcome::NoChanges);
        }
        stack.tags = tags(request);
        stack.outputs = outputs;
        stack.resources = resources_of(&request.name, &request.template_body);
        stack.request = Some(request.clone());
        self.start(&mut state, name, "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE".to_owned());
        Ok(UpdateOutcome::Started)
    }

    /// Deleting a stack that does not exist succeeds, as in CloudFormation.
    async fn delete(&self, name: &StackName, _token: &str) -> Result<(), PortError> {
        self.faults.check("delete")?;
        let mut state = lock(&self.state);
        Self::log(&mut state, "delete", name);
        if !state.stacks.contains_key(name.as_str()) {
            return Ok(());
        }
        if state.blocked.iter().any(|b| b == name.as_str()) {
            let types = state.blocking.get(name.as_str()).cloned().unwrap_or_default();
            let stack = state.stacks.get_mut(name.as_str()).expect("checked above");
            let mut failed = Vec::new();
            for r in stack.resources.iter_mut().filter(|r| types.contains(&r.resource_type)) {
                r.status = StackStatus::DeleteFailed;
                failed.push(r.logical_id.clone());
            }
            stack.reason = Some(format!("The following resource(s) failed to delete: [{}]. ", failed.join(", ")));
            self.start(&mut state, name.as_str(), "DELETE_IN_PROGRESS", "DELETE_FAILED".to_owned());
        } else {
            self.start(&mut state, name.as_str(), "DELETE_IN_PROGRESS", "DELETE_COMPLETE".to_owned());
        }
        Ok(())
    }

    async fn buckets(&self, name: &StackName) -> Result<Vec<String>, PortError> {
        self.faults.check("buckets")?;
        let state = lock(&self.state);
        let Some(stack) = state.stacks.get(name.as_str()) else { return Ok(Vec::new()) };
        Ok(stack
            .resources
            .iter()
            .filter(|r| r.resource_type == "AWS::S3::Bucket" && r.status != StackStatus::DeleteComplete)
            .filter_map(|r| r.physical_id.clone())
            .collect())
    }

    async fn list(&self) -> Result<Vec<StackInfo>, PortError> {
        self.faults.check("list")?;
        let mut state = lock(&self.state);
        let names: Vec<String> = state.stacks.keys().cloned().collect();
        for name in &names {
            Self::tick(&mut state, name);
        }
        Ok(state
            .stacks
            .iter()
            .filter(|(name, _)| name.starts_with(STACK_PREFIX))
            .map(|(name, s)| StackInfo {
                name: name.clone(),
                id: s.id.clone(),
                status: StackStatus::parse(&s.status),
                updated: s.updated,
                tags: s.tags.clone(),
            })
            .collect())
    }

    async fn resources(&self, name: &StackName) -> Result<Vec<StackResource>, PortError> {
        self.faults.check("resources")?;
        let state = lock(&self.state);
        let stack = state.stacks.get(name.as_str()).ok_or_else(|| missing("list stack resources", name))?;
        Ok(stack.resources.clone())
    }

    /// Only a stack whose deletion failed may be deleted retaining resources, as in CloudFormation.
    async fn delete_retaining(&self, name: &StackName, _token: &str, retain: &[String]) -> Result<(), PortError> {
        self.faults.check("delete_retaining")?;
        let mut state = lock(&self.state);
        Self::log(&mut state, "delete_retaining", name);
        match state.stacks.get(name.as_str()).map(|s| s.status.as_str()) {
            None => return Ok(()),
            Some("DELETE_FAILED") => {}
            Some(other) => {
                let message = format!(
                    "ValidationError: {name} is in {other}: resources may only be retained after DELETE_FAILED"
                );
                return Err(permanent("delete stack retaining resources", &message));
            }
        }
        state.retained.extend(retain.iter().cloned());
        state.blocked.retain(|b| b != name.as_str());
        self.start(&mut state, name.as_str(), "DELETE_IN_PROGRESS", "DELETE_COMPLETE".to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephemera_domain::{EnvironmentName, TagSet};

    fn request(template: &str) -> StackRequest {
        let name = EnvironmentName::parse("dev-kyle").unwrap().stack_name();
        let tags: TagSet = [(MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned())].into_iter().collect();
        StackRequest { name, template_body: template.into(), parameters: vec![], tags, token: "t".into() }
    }

    const TEMPLATE: &str =
        r#"{"Resources":{"Files":{"Type":"AWS::S3::Bucket"},"Todo":{"Type":"AWS::DynamoDB::Table"}}}"#;

    #[tokio::test]
    async fn creates_updates_and_deletes_like_cloudformation() {
        let stacks = MemoryStacks::new().with_outputs(&[("PreviewUrl", "https://p")]);
        let r = request(TEMPLATE);
        assert_eq!(stacks.describe(&r.name).await.unwrap(), None);
        let id = stacks.create(&r).await.unwrap();
        let v = stacks.describe(&r.name).await.unwrap().unwrap();
        assert_eq!((v.stack_id, v.status.as_str(), v.outputs.len()), (id.clone(), "CREATE_COMPLETE", 1));
        assert_eq!(stacks.create(&r).await.unwrap(), id, "a retried create answers with the stack");
        assert_eq!(stacks.buckets(&r.name).await.unwrap(), vec!["ephemera-dev-kyle-files-fake".to_owned()]);
        assert_eq!(stacks.update(&r).await.unwrap(), UpdateOutcome::NoChanges);
        assert_eq!(stacks.update(&request("{}")).await.unwrap(), UpdateOutcome::Started);
        assert_eq!(stacks.describe(&r.name).await.unwrap().unwrap().status.as_str(), "UPDATE_COMPLETE");
        stacks.delete(&r.name, "t").await.unwrap();
        assert_eq!(stacks.describe(&r.name).await.unwrap(), None);
        stacks.delete(&r.name, "t").await.unwrap();
        assert!(stacks.update(&r).await.unwrap_err().to_string().contains("does not exist"));
        let ops: Vec<String> = stacks.calls().into_iter().map(|(op, _)| op).collect();
        assert_eq!(ops, ["create", "create", "update", "update", "delete", "delete", "update"]);
    }

    #[tokio::test]
    async fn operations_take_as_many_looks_as_told() {
        let stacks = MemoryStacks::new();
        stacks.in_progress_for(2);
        let r = request(TEMPLATE);
        stacks.create(&r).await.unwrap();
        for _ in 0..2 {
            assert_eq!(stacks.describe(&r.name).await.unwrap().unwrap().status.as_str(), "CREATE_IN_PROGRESS");
        }
        assert_eq!(stacks.describe(&r.name).await.unwrap().unwrap().status.as_str(), "CREATE_COMPLETE");
        stacks.create_ends("ROLLBACK_COMPLETE");
        stacks.in_progress_for(0);
        let other = StackRequest { name: EnvironmentName::parse("dev-alice").unwrap().stack_name(), ..r };
        stacks.create(&other).await.unwrap();
        assert_eq!(stacks.describe(&other.name).await.unwrap().unwrap().status.as_str(), "ROLLBACK_COMPLETE");
    }

    #[tokio::test]
    async fn a_blocked_deletion_fails_until_what_blocks_it_is_retained() {
        let stacks = MemoryStacks::new();
        let r = request(TEMPLATE);
        stacks.create(&r).await.unwrap();
        stacks.block_delete(&r.name);
        assert!(stacks.delete_retaining(&r.name, "t", &[]).await.is_err(), "only after DELETE_FAILED");
        stacks.delete(&r.name, "t").await.unwrap();
        assert_eq!(stacks.describe(&r.name).await.unwrap().unwrap().status.as_str(), "DELETE_FAILED");
        let failed: Vec<_> = stacks
            .resources(&r.name)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.status == StackStatus::DeleteFailed)
            .collect();
        assert_eq!(failed.len(), 1);
        stacks.delete_retaining(&r.name, "t", &["Files".to_owned()]).await.unwrap();
        assert_eq!(stacks.describe(&r.name).await.unwrap(), None);
        assert_eq!(stacks.retained(), ["Files"]);
    }

    #[tokio::test]
    async fn injected_failures_come_once_or_always() {
        let stacks = MemoryStacks::new();
        let r = request(TEMPLATE);
        stacks.faults.fail_next("create", permanent("create stack", "template refused"));
        assert!(!stacks.create(&r).await.unwrap_err().is_retryable());
        stacks.create(&r).await.unwrap();
        stacks.faults.fail_always("describe", true);
        assert!(stacks.describe(&r.name).await.unwrap_err().is_retryable());
        assert!(stacks.describe(&r.name).await.is_err());
        stacks.faults.clear();
        assert!(stacks.describe(&r.name).await.unwrap().is_some());
    }
}
