//! The provisioner: one environment reconciled against its (fake) CloudFormation stack.

use ephemera_app::ports::GoDown;
use ephemera_app::ports::Ledger;
use ephemera_app::ports::{Lease, Stamp};
use ephemera_app::Retryable;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ephemera_app::events::REQUESTED;
use ephemera_app::intake::PR_MERGED;
use ephemera_app::memory::{permanent, retryable, FakeStack, MemoryRegistry, MemoryStacks};
use ephemera_app::ports::{
    Change, DesiredState, PortError, Reconciliation, StackRequest, StackResource, StackView, Stacks, Sweeping,
    UpdateOutcome,
};
use ephemera_app::provisioner::{Outcome, ProvisionError, ProvisionerSettings};
use ephemera_domain::sweep::StackInfo;
use ephemera_domain::{Desired, EnvironmentKind, EventOrder, StackName, Status};

use crate::harness::*;

fn stack() -> StackName {
    name(PR).stack_name()
}

async fn opened(w: &World) {
    w.deliver("pull_request", "d-opened", fixtures::OPENED).await.unwrap();
}

#[tokio::test]
async fn a_new_environment_gets_its_stack_and_is_ready() {
    let w = World::new();
    opened(&w).await;
    let outcome = w.provisioner().reconcile(&name(PR)).await.unwrap();
    assert_eq!(outcome, Outcome::Settled(Status::Ready));
    let e = w.env(PR);
    assert_eq!((e.status, e.observed_generation, e.generation), (Status::Ready, 1, 1));
    assert_eq!(e.preview_url.as_deref(), Some("https://preview.example.com"));
    let fake = w.stacks.get(&stack()).unwrap();
    assert_eq!((e.stack_id.as_deref(), e.outputs.len()), (Some(fake.id.as_str()), 2));
    assert!((e.cost_monthly_usd.unwrap() - 0.6).abs() < 1e-9, "a bucket and a table: {:?}", e.cost_monthly_usd);
    // The request: one token per generation, every tag on the stack and in the template.
    let request = fake.request.unwrap();
    assert_eq!(request.token, "ephemera-create-pr-7-acme-todo-app-6acfdc9491-g1");
    assert_eq!(request.tags.get("ephemera:commit"), Some(HEAD_OPENED));
    assert_eq!(request.tags.get("CostCenter"), Some("platform"));
    assert!(request.template_body.contains("ephemera:managed-by"), "tags written into the resources");
    assert_eq!(w.stacks.calls(), [("create".to_owned(), stack().to_string())]);
    let types = w.bus.detail_types();
    assert_eq!(types, [REQUESTED, "Environment.Creating", "Environment.Ready"]);
    assert_eq!(w.bus.events()[2].detail.preview_url.as_deref(), Some("https://preview.example.com"));
    assert_eq!(w.registry.lease(&name(PR)), None, "the lease is released");
}

#[tokio::test]
async fn a_converged_environment_is_left_alone() {
    let w = World::new();
    w.ready_pr().await;
    let calls = w.stacks.calls().len();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::AlreadyConverged(Status::Ready));
    assert_eq!(w.stacks.calls().len(), calls);
    let unknown = name("pr-9-acme-todo-app-6acfdc9491");
    assert_eq!(w.provisioner().reconcile(&unknown).await.unwrap(), Outcome::Unknown);
}

#[tokio::test]
async fn a_push_updates_the_stack_to_the_new_commit() {
    let w = World::new();
    w.ready_pr().await;
    w.deliver("pull_request", "d-push", fixtures::SYNCHRONIZE).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
    let ops: Vec<String> = w.stacks.calls().into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["create", "update"]);
    let request = w.stacks.get(&stack()).unwrap().request.unwrap();
    assert_eq!(
        (request.tags.get("ephemera:commit"), request.token.as_str()),
        (Some(HEAD_SYNCHRONIZED), "ephemera-update-pr-7-acme-todo-app-6acfdc9491-g2")
    );
    assert_eq!((w.env(PR).observed_generation, w.env(PR).commit.as_deref()), (2, Some(HEAD_SYNCHRONIZED)));
    assert!(w.bus.detail_types().ends_with(&[
        REQUESTED.to_owned(),
        "Environment.Updating".into(),
        "Environment.Ready".into()
    ]));
}

#[tokio::test]
async fn the_commits_own_template_comes_before_the_repositorys_and_the_default() {
    let w = World::new();
    let own = BLUEPRINT.replace("Files:", "FromCommit:");
    let repos = BLUEPRINT.replace("Files:", "FromRepository:");
    w.store.put(BUCKET, "blueprints/acme/todo-app.yaml", &repos);
    w.store.put(BUCKET, &format!("artifacts/acme/todo-app/{HEAD_OPENED}/template.yaml"), &own);
    w.ready_pr().await;
    let body = w.stacks.get(&stack()).unwrap().request.unwrap().template_body;
    assert!(body.contains("FromCommit") && !body.contains("FromRepository"), "{body}");
}

#[tokio::test]
async fn going_down_empties_the_buckets_deletes_the_stack_and_keeps_the_reason() {
    let w = World::new();
    w.ready_pr().await;
    let bucket = format!("{}-files-fake", stack());
    w.store.put(&bucket, "uploads/a.png", "png");
    w.deliver("pull_request", "d-close", fixtures::CLOSED).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Deleted));
    assert_eq!(w.store.emptied(), std::slice::from_ref(&bucket));
    assert_eq!(w.store.object(&bucket, "uploads/a.png"), None);
    assert_eq!(w.stacks.get(&stack()), None);
    let e = w.env(PR);
    assert_eq!((e.status, e.observed_generation, e.status_reason.as_deref()), (Status::Deleted, 2, Some(PR_MERGED)));
    assert_eq!((e.preview_url, e.outputs.len()), (None, 0));
    let tail: Vec<String> = w.bus.detail_types().split_off(4);
    assert_eq!(tail, ["Environment.Deleting", "Environment.Deleted"]);
    assert_eq!(w.bus.events().last().unwrap().detail.reason.as_deref(), Some(PR_MERGED));
}

#[tokio::test]
async fn going_down_without_a_stack_settles_at_once() {
    let w = World::new();
    opened(&w).await;
    w.deliver("pull_request", "d-close", fixtures::CLOSED).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Deleted));
    assert!(w.stacks.calls().is_empty());
}

#[tokio::test]
async fn a_stack_whose_deletion_fails_is_reported_failed() {
    let w = World::new();
    w.ready_pr().await;
    w.stacks.block_delete(&stack());
    w.deliver("pull_request", "d-close", fixtures::CLOSED).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    let e = w.env(PR);
    assert!(e.status_reason.as_deref().unwrap().starts_with("stack deletion failed (DELETE_FAILED"), "{e:?}");
}

#[tokio::test]
async fn seed_data_is_loaded_into_a_new_stacks_tables() {
    let w = World::new();
    w.store.put(BUCKET, "seeds/default/Todo.jsonl", "{\"id\": \"1\"}\n\n{\"id\": \"2\"}\n");
    w.store.put(BUCKET, "seeds/default/Unknown.jsonl", "{\"id\": \"1\"}\n");
    w.ready_pr().await;
    assert_eq!(w.seeder.items("ephemera-todo-fake").len(), 2);
    assert_eq!(w.env(PR).status_reason, None);

    // A broken seed file does not fail the environment; the reason says what went wrong.
    let w = World::new();
    w.store.put(BUCKET, "seeds/acme/todo-app/Todo.jsonl", "not json\n");
    w.store.put(BUCKET, "seeds/default/Todo.jsonl", "{\"id\": \"1\"}\n");
    w.ready_pr().await;
    assert!(w.seeder.items("ephemera-todo-fake").is_empty(), "the repository's seeds come first");
    let reason = w.env(PR).status_reason.unwrap();
    assert!(reason.starts_with("seed data not loaded: seeds/acme/todo-app/Todo.jsonl line 1"), "{reason}");
}

#[tokio::test]
async fn an_environment_waits_for_budget_and_is_nudged_when_room_is_made() {
    let w = World::new();
    let settings = ProvisionerSettings { monthly_budget_usd: Some(1.0), ..World::provisioner_settings() };
    let mut other = ephemera_domain::environment::test_support::pr_environment();
    (other.status, other.observed_generation, other.cost_monthly_usd) = (Status::Ready, 1, Some(0.9));
    w.registry.insert(other.clone());
    // It holds $0.90 of the budget's running total.
    let held = ephemera_domain::admission::claim(&other, Default::default(), Some(1.0), 0.9, None);
    assert!(matches!(w.registry.claim(&other.name, &held).await.unwrap(), ephemera_app::ports::Admit::Admitted(_)));
    opened(&w).await;
    assert_eq!(w.provisioner_with(settings.clone()).reconcile(&name(PR)).await.unwrap(), Outcome::Queued);
    let e = w.env(PR);
    assert_eq!(e.status, Status::Queued);
    assert!(e
        .status_reason
        .as_deref()
        .unwrap()
        .starts_with("waiting for budget: live environments cost $0.90/month, this one $0.60"));
    assert!(w.stacks.calls().is_empty(), "nothing created");
    assert_eq!(w.bus.detail_types().last().unwrap(), "Environment.Queued");

    w.registry.go_down(&other.name, Stamp::new(1, w.now()), GoDown::Request, "closed").await.unwrap();
    assert_eq!(
        w.provisioner_with(settings.clone()).reconcile(&other.name).await.unwrap(),
        Outcome::Settled(Status::Deleted)
    );
    let nudge = w.bus.events().pop().unwrap();
    assert_eq!((nudge.detail_type.as_str(), nudge.detail.environment.as_str()), (REQUESTED, PR));
    assert_eq!(w.provisioner_with(settings).reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
}

#[tokio::test]
async fn a_developer_environment_waits_for_its_owners_quota() {
    let w = World::new();
    let mut settings = World::provisioner_settings();
    settings.dev_quotas.per_owner = 1;
    let dev = |n: &str, delivery: &str| {
        let change = Change::new(
            name(n),
            EnvironmentKind::Dev,
            "kyle",
            Desired::Up,
            EventOrder::new(1, EventOrder::RANK_OPEN),
            w.now() + chrono::Duration::hours(8),
            w.now(),
        );
        let (registry, delivery) = (w.registry.clone(), delivery.to_owned());
        async move { registry.apply_change(&delivery, &change).await.unwrap() }
    };
    dev("dev-kyle", "a").await;
    dev("dev-kyle-two", "b").await;
    let p = w.provisioner_with(settings);
    assert_eq!(p.reconcile(&name("dev-kyle")).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!(p.reconcile(&name("dev-kyle-two")).await.unwrap(), Outcome::Queued);
    let reason = w.env("dev-kyle-two").status_reason.unwrap();
    assert_eq!(reason, "waiting for quota: kyle has 1 live environments; the limit is 1");
}

#[tokio::test]
async fn a_refused_blueprint_fails_the_environment_without_touching_cloudformation() {
    let w = World::new();
    opened(&w).await;
    let settings = ProvisionerSettings { bucket: "no-blueprints".into(), ..World::provisioner_settings() };
    assert_eq!(w.provisioner_with(settings).reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    let e = w.env(PR);
    assert!(e.status_reason.as_deref().unwrap().starts_with("no blueprint in s3://no-blueprints"), "{e:?}");
    assert_eq!((e.observed_generation, w.stacks.calls().len()), (1, 0));
    assert_eq!(w.bus.detail_types().last().unwrap(), "Environment.Failed");

    let w = World::new();
    w.store.put(BUCKET, "blueprints/acme/todo-app.yaml", "Resources: [unclosed");
    opened(&w).await;
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    let reason = w.env(PR).status_reason.unwrap();
    assert!(reason.starts_with("blueprint blueprints/acme/todo-app.yaml: template is not valid"), "{reason}");
    assert!(w.stacks.calls().is_empty());
}

/// A repository blueprint that escapes its environment two ways.
const ESCAPING: &str = "Resources:
  Backdoor:
    Type: AWS::IAM::Role
    DeletionPolicy: Retain
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - { Effect: Allow, Principal: { AWS: 'arn:aws:iam::999999999999:root' }, Action: sts:AssumeRole }
  Escalate:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: more
      Roles: [production-admin]
      PolicyDocument:
        Statement:
          - { Effect: Allow, Action: 's3:GetObject', Resource: !Sub '${AWS::StackName}-files/*' }
";

#[tokio::test]
async fn an_escaping_blueprint_fails_with_every_violation_and_no_stack_call() {
    let w = World::new();
    w.store.put(BUCKET, "blueprints/acme/todo-app.yaml", ESCAPING);
    opened(&w).await;
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    let reason = w.env(PR).status_reason.unwrap();
    assert_eq!(
        reason.lines().collect::<Vec<_>>(),
        [
            "blueprint blueprints/acme/todo-app.yaml: 2 violations of the blueprint policy:",
            "Backdoor (AWS::IAM::Role): trust: the role trusts AWS \"arn:aws:iam::999999999999:root\"; only services may assume an environment's roles (apigateway.amazonaws.com, appsync.amazonaws.com, cognito-idp.amazonaws.com, events.amazonaws.com, lambda.amazonaws.com, s3.amazonaws.com, sns.amazonaws.com, sqs.amazonaws.com, states.amazonaws.com), and cognito-identity.amazonaws.com with an aud condition on this template's identity pool",
            "Escalate (AWS::IAM::Policy): policy attachment: attaches to role \"production-admin\", which is not in this template: attach policies only to this template's roles (!Ref <Role>)",
        ]
    );
    assert!(w.stacks.calls().is_empty(), "no stack call: {:?}", w.stacks.calls());
    assert_eq!(w.bus.detail_types().last().unwrap(), "Environment.Failed");
}

#[tokio::test]
async fn retained_resources_are_created_to_be_deleted() {
    let w = World::new();
    let kept = "Resources:\n  Todo:\n    Type: AWS::DynamoDB::Table\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Snapshot\n";
    w.store.put(BUCKET, "blueprints/acme/todo-app.yaml", kept);
    opened(&w).await;
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
    let body: serde_json::Value =
        serde_json::from_str(&w.stacks.get(&stack()).unwrap().request.unwrap().template_body).unwrap();
    let todo = &body["Resources"]["Todo"];
    assert_eq!(
        (todo["DeletionPolicy"].as_str(), todo["UpdateReplacePolicy"].as_str()),
        (Some("Delete"), Some("Delete"))
    );
}

#[tokio::test]
async fn a_blueprint_that_cannot_be_read_now_is_tried_again_later() {
    let w = World::new();
    opened(&w).await;
    w.store.faults.fail_next("get_text", retryable("get object", "SlowDown"));
    let err = w.provisioner().reconcile(&name(PR)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!((w.env(PR).status, w.stacks.calls().len()), (Status::Pending, 0));
    assert_eq!(w.registry.lease(&name(PR)), None, "the lease is released after a failure too");
}

#[tokio::test]
async fn a_create_cloudformation_refuses_fails_the_generation() {
    let w = World::new();
    opened(&w).await;
    w.stacks.faults.fail_next("create", permanent("create stack", "ValidationError: Template format error"));
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    let e = w.env(PR);
    assert_eq!(e.status_reason.as_deref(), Some("create stack failed: ValidationError: Template format error"));
    assert_eq!((e.observed_generation, e.cost_monthly_usd), (1, None));

    // Throttled: not a failure of the environment, tried again later.
    let w = World::new();
    opened(&w).await;
    w.stacks.faults.fail_next("create", retryable("create stack", "Throttling"));
    assert!(w.provisioner().reconcile(&name(PR)).await.unwrap_err().is_retryable());
    assert_eq!(w.env(PR).status, Status::Pending);
}

#[tokio::test]
async fn a_stack_that_rolls_back_fails_the_environment() {
    let w = World::new();
    opened(&w).await;
    w.stacks.create_ends("ROLLBACK_COMPLETE");
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    assert_eq!(w.env(PR).status_reason.as_deref(), Some("stack creation failed (ROLLBACK_COMPLETE)"));
}

#[tokio::test]
async fn a_stack_still_in_progress_is_handed_back_to_be_looked_at_later() {
    let w = World::new();
    opened(&w).await;
    w.stacks.in_progress_for(u32::MAX);
    let settings = ProvisionerSettings { wait: Duration::from_millis(20), ..World::provisioner_settings() };
    let err = w.provisioner_with(settings).reconcile(&name(PR)).await.unwrap_err();
    assert!(matches!(err, ProvisionError::StillInProgress(_)) && err.is_retryable());
    let e = w.env(PR);
    assert_eq!((e.status, e.observed_generation), (Status::Creating, 0));
    assert_eq!(w.registry.lease(&name(PR)), None);
}

#[tokio::test]
async fn a_stack_of_that_name_the_platform_does_not_manage_is_left_alone() {
    let w = World::new();
    opened(&w).await;
    w.stacks.insert(stack().as_str(), FakeStack::untagged("CREATE_COMPLETE"));
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Failed));
    assert!(w.env(PR).status_reason.unwrap().contains("not managed by Ephemera"));
    assert!(w.stacks.calls().is_empty());
}

#[tokio::test]
async fn leftovers_of_earlier_stacks_are_cleared_before_the_stack_is_created() {
    let w = World::new();
    let bucket = format!("{}-files-old", stack());
    let table = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{}-todo-old", stack());
    let foreign = "arn:aws:s3:::payments-prod-files";
    w.resources.add_managed(&format!("arn:aws:s3:::{bucket}"), PR);
    w.resources.add_managed(&table, PR);
    w.resources.add_managed(foreign, PR);
    opened(&w).await;
    // Until they are gone, nothing is created.
    w.resources.faults.fail_next("delete", retryable("delete table", "throttled"));
    assert!(w.provisioner().reconcile(&name(PR)).await.is_err());
    assert!(w.stacks.calls().is_empty(), "no stack created while leftovers remain");
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!(w.store.emptied(), std::slice::from_ref(&bucket), "emptied before it was deleted");
    // In the catalogue's order, tables before buckets.
    assert_eq!(w.resources.deleted(), [format!("table:{}-todo-old", stack()), format!("bucket:{bucket}")]);
    assert_eq!(w.resources.arns(), [foreign], "a resource not named for the environment is not its leftover");
}

#[tokio::test]
async fn a_first_life_with_nothing_tagged_for_it_does_not_list_the_account() {
    let w = World::new();
    // Owned by its name and untagged: only the account-wide listings find it.
    let policy = format!("arn:aws:iam::123456789012:policy/{}-access", stack());
    w.resources.add(&policy, &[]);
    opened(&w).await;
    w.resources.faults.fail_always("found_for", false);
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!(w.resources.arns(), std::slice::from_ref(&policy));

    // A later life may meet what an earlier one left: the account is listed.
    w.deliver("pull_request", "d-close", fixtures::CLOSED).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Deleted));
    w.deliver("pull_request", "d-reopen", fixtures::REOPENED).await.unwrap();
    assert!(w.provisioner().reconcile(&name(PR)).await.is_err(), "the listing is consulted");
    w.resources.faults.clear();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!(w.resources.deleted(), [format!("managed_policy:{policy}")]);
}

#[tokio::test]
async fn a_first_life_whose_broken_stack_was_just_deleted_clears_what_it_left() {
    let w = World::new();
    opened(&w).await;
    // A stack of its name from before the registry knew it, rolled back, and what it left.
    w.stacks.insert(stack().as_str(), FakeStack::managed(PR, "ROLLBACK_COMPLETE"));
    let policy = format!("arn:aws:iam::123456789012:policy/{}-access", stack());
    w.resources.add(&policy, &[]);
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!(w.resources.deleted(), [format!("managed_policy:{policy}")]);
}

#[tokio::test]
async fn an_untagged_log_group_another_environment_could_own_is_not_a_leftover() {
    let w = World::new();
    // `dev-kyle` is live; `dev-kyle-api`'s stack is about to be created.
    for (n, delivery) in [("dev-kyle", "a"), ("dev-kyle-api", "b")] {
        let change = Change::new(
            name(n),
            EnvironmentKind::Dev,
            "kyle",
            Desired::Up,
            EventOrder::new(1, EventOrder::RANK_OPEN),
            w.now() + chrono::Duration::hours(8),
            w.now(),
        );
        w.registry.apply_change(delivery, &change).await.unwrap();
    }
    let logs = |f: &str| format!("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{f}");
    // Lambda's log group for `ephemera-dev-kyle-api-handler`: dev-kyle's function `api-handler`,
    // or dev-kyle-api's `handler`. Untagged, it cannot be told; dev-kyle exists, so it is kept.
    w.resources.add(&logs("ephemera-dev-kyle-api-handler"), &[]);
    // Tagged for dev-kyle-api: its leftover.
    w.resources.add_managed(&logs("ephemera-dev-kyle-api-worker"), "dev-kyle-api");
    w.provisioner().reconcile(&name("dev-kyle-api")).await.unwrap();
    assert_eq!(w.resources.deleted(), ["log_group:/aws/lambda/ephemera-dev-kyle-api-worker"]);
    assert_eq!(w.resources.arns(), [logs("ephemera-dev-kyle-api-handler")]);
}

#[tokio::test]
async fn a_preserved_environments_leftovers_are_kept() {
    let w = World::new();
    let bucket = format!("arn:aws:s3:::{}-files-old", stack());
    w.resources.add_managed(&bucket, PR);
    opened(&w).await;
    w.registry.set_preserved(&name(PR), true, None).await.unwrap();
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!((w.resources.arns(), w.resources.deleted().len()), (vec![bucket], 0));
}

#[tokio::test]
async fn an_environment_leased_by_another_reconciler_is_left_to_it() {
    let w = World::new();
    opened(&w).await;
    let now = w.now();
    w.registry
        .try_lease(&name(PR), &Lease { holder: "other".into(), now, until: now + chrono::Duration::minutes(10) })
        .await
        .unwrap();
    let err = w.provisioner().reconcile(&name(PR)).await.unwrap_err();
    assert!(matches!(err, ProvisionError::Busy(_)) && err.is_retryable());
    assert!(w.stacks.calls().is_empty());
    assert_eq!(w.registry.lease(&name(PR)).unwrap().0, "other");
    // Once it expires, it is taken.
    w.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
}

/// CloudFormation, with a new desired state arriving while the stack is being created.
struct ClosedDuringCreate {
    stacks: MemoryStacks,
    registry: Arc<MemoryRegistry>,
    close: Change,
}

#[async_trait]
impl Stacks for ClosedDuringCreate {
    async fn describe(&self, name: &StackName) -> Result<Option<StackView>, PortError> {
        self.stacks.describe(name).await
    }
    async fn create(&self, request: &StackRequest) -> Result<String, PortError> {
        let id = self.stacks.create(request).await?;
        self.registry.apply_change("d-close", &self.close).await?;
        Ok(id)
    }
    async fn update(&self, request: &StackRequest) -> Result<UpdateOutcome, PortError> {
        self.stacks.update(request).await
    }
    async fn delete(&self, name: &StackName, token: &str) -> Result<(), PortError> {
        self.stacks.delete(name, token).await
    }
    async fn buckets(&self, name: &StackName) -> Result<Vec<String>, PortError> {
        self.stacks.buckets(name).await
    }
    async fn list(&self) -> Result<Vec<StackInfo>, PortError> {
        self.stacks.list().await
    }
    async fn resources(&self, name: &StackName) -> Result<Vec<StackResource>, PortError> {
        self.stacks.resources(name).await
    }
    async fn delete_retaining(&self, name: &StackName, token: &str, retain: &[String]) -> Result<(), PortError> {
        self.stacks.delete_retaining(name, token, retain).await
    }
}

#[tokio::test]
async fn a_superseded_generation_records_nothing_and_the_newer_one_is_reconciled() {
    let w = World::new();
    opened(&w).await;
    let mut close = Change {
        repository: w.env(PR).repository,
        pull_request: Some(7),
        reason: Some("pull request closed".into()),
        ..Change::new(
            name(PR),
            EnvironmentKind::Pr,
            "kyle-dev",
            Desired::Down,
            EventOrder::new(w.now().timestamp() + 60, EventOrder::RANK_CLOSE),
            w.now(),
            w.now(),
        )
    };
    close.at += chrono::Duration::seconds(1);
    let stacks = Arc::new(ClosedDuringCreate { stacks: MemoryStacks::new(), registry: w.registry.clone(), close });
    let p = w.provisioner_with_stacks(stacks.clone());
    assert_eq!(p.reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Deleted));
    let e = w.env(PR);
    assert_eq!((e.generation, e.observed_generation, e.status), (2, 2, Status::Deleted));
    let ops: Vec<String> = stacks.stacks.calls().into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["create", "delete"]);
    let types = w.bus.detail_types();
    assert_eq!(types, [REQUESTED, "Environment.Deleting", "Environment.Deleted"], "nothing said of generation 1");
    assert!(w.bus.events()[1..].iter().all(|e| e.detail.generation == 2));
}

#[tokio::test]
async fn work_queue_messages_name_the_environment_to_reconcile() {
    let w = World::new();
    opened(&w).await;
    let batch: serde_json::Value = serde_json::from_slice(fixtures::SQS_BATCH).unwrap();
    let body = batch["Records"][0]["body"].as_str().unwrap();
    assert_eq!(w.provisioner().handle_message(body).await.unwrap(), Outcome::Settled(Status::Ready));
    let cloudformation = std::str::from_utf8(fixtures::STACK_STATUS).unwrap();
    assert_eq!(w.provisioner().handle_message(cloudformation).await.unwrap(), Outcome::AlreadyConverged(Status::Ready));
    let err = w.provisioner().handle_message("{\"not\": \"an event\"}").await.unwrap_err();
    assert!(matches!(err, ProvisionError::BadMessage(_)) && !err.is_retryable());
}

#[tokio::test]
async fn a_lease_taken_whose_answer_was_lost_is_given_back() {
    let w = World::new();
    opened(&w).await;
    w.registry.faults.fail_next("try_lease_answer", retryable("take lease", "connection closed"));
    assert!(w.provisioner().reconcile(&name(PR)).await.unwrap_err().is_retryable());
    assert_eq!(w.registry.lease(&name(PR)), None, "the retry is not kept out until the lease expires");
    assert_eq!(w.provisioner().reconcile(&name(PR)).await.unwrap(), Outcome::Settled(Status::Ready));
}
