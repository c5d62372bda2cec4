//! The reaper: what outlived its purpose is sent down, deleted or repaired; nothing else is touched.

use chrono::Duration;
use ephemera_app::events::{EXPIRING_SOON, REQUESTED};
use ephemera_app::memory::{permanent, FakeStack, GitHubCall};
use ephemera_app::ports::GoDown;
use ephemera_app::ports::Stamp;
use ephemera_app::ports::{DesiredState, Stacks, Sweeping};
use ephemera_app::reaper::{Summary, SweepOptions};
use ephemera_domain::sweep::{Action, Reason};
use ephemera_domain::{Desired, Status};

use crate::harness::*;

const FULL: SweepOptions = SweepOptions { dry_run: false, light: false };
const DRY: SweepOptions = SweepOptions { dry_run: true, light: false };
const LIGHT: SweepOptions = SweepOptions { dry_run: false, light: true };
const ORPHAN: &str = "pr-9-acme-todo-app-6acfdc9491";

fn count(s: &Summary, kind: &str, reason: Reason) -> u64 {
    s.actions.get(kind).and_then(|m| m.get(&reason)).copied().unwrap_or(0)
}

/// A stack of the platform's with one bucket (`<stack>-files-fake`).
fn orphan_stack(env: &str, status: &str) -> FakeStack {
    FakeStack::managed(env, status).with_resource("Files", "AWS::S3::Bucket", &format!("ephemera-{env}-files-fake"))
}

#[tokio::test]
async fn an_expired_environment_is_sent_down_through_the_provisioner() {
    let w = World::new();
    w.ready_pr().await;
    w.clock.advance(Duration::days(8));
    let s = w.reaper().sweep(FULL).await.unwrap();
    assert_eq!(count(&s, "request_down", Reason::Expired), 1);
    let e = w.env(PR);
    assert_eq!((e.desired, e.status, e.generation), (Desired::Down, Status::Pending, 2));
    assert_eq!(e.status_reason.as_deref(), Some("expired: past ephemera:expires-at"));
    let last = w.bus.events().pop().unwrap();
    assert_eq!((last.detail_type.as_str(), last.detail.generation), (REQUESTED, 2));
    assert_eq!(w.stacks.calls().len(), 1, "the stack is the provisioner's to delete");
    assert_eq!(
        w.provisioner().reconcile(&name(PR)).await.unwrap(),
        ephemera_app::provisioner::Outcome::Settled(Status::Deleted)
    );
    assert_eq!(w.env(PR).status_reason.as_deref(), Some("expired: past ephemera:expires-at"));
}

#[tokio::test]
async fn a_preserved_environment_is_left_alone_however_old() {
    let w = World::new();
    w.ready_pr().await;
    w.registry.set_preserved(&name(PR), true, None).await.unwrap();
    w.clock.advance(Duration::days(30));
    let s = w.reaper().sweep(FULL).await.unwrap();
    assert!(s.planned.is_empty(), "{:?}", s.planned);
    assert!(s.skipped.iter().any(|k| k.why == "preserved"));
    assert_eq!((w.env(PR).desired, w.env(PR).generation), (Desired::Up, 1));
}

#[tokio::test]
async fn a_closed_environment_whose_stack_is_still_there_is_sent_down_again() {
    let w = World::new();
    w.ready_pr().await;
    w.registry.edit(&name(PR), |e| {
        (e.desired, e.status) = (Desired::Down, Status::Failed);
    });
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(count(&s, "request_down", Reason::ClosedButAlive), 1);
    assert_eq!((w.env(PR).generation, w.env(PR).status), (2, Status::Pending));
}

#[tokio::test]
async fn orphan_stacks_are_emptied_and_deleted() {
    let w = World::new();
    w.stacks.insert(&format!("ephemera-{ORPHAN}"), orphan_stack(ORPHAN, "CREATE_COMPLETE"));
    let bucket = format!("ephemera-{ORPHAN}-files-fake");
    w.store.put(&bucket, "a", "b");
    // One the registry has as deleted.
    w.ready_pr().await;
    w.registry.go_down(&name(PR), Stamp::new(1, w.now()), GoDown::Retire, "closed").await.unwrap();
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(
        (count(&s, "delete_stack", Reason::OrphanStackUnknown), count(&s, "delete_stack", Reason::OrphanStackDeleted)),
        (1, 1)
    );
    assert!(w.stacks.get(&name(ORPHAN).stack_name()).is_none() && w.stacks.get(&name(PR).stack_name()).is_none());
    assert_eq!(w.store.object(&bucket, "a"), None, "emptied first");
    assert!(s.errors.is_empty());
}

#[tokio::test]
async fn stacks_the_platform_does_not_own_are_never_touched() {
    let w = World::new();
    w.stacks.insert("ephemera-pr-10-acme-x", FakeStack::untagged("CREATE_COMPLETE"));
    w.stacks.insert("ephemera-pr-11-acme-x", FakeStack::managed("pr-12-acme-x", "CREATE_COMPLETE"));
    w.stacks.insert("payments-prod", FakeStack::managed("pr-13-acme-x", "CREATE_COMPLETE"));
    let s = w.reaper().sweep(FULL).await.unwrap();
    assert!(s.planned.is_empty(), "{:?}", s.planned);
    assert_eq!(s.skipped.len(), 2, "{:?}", s.skipped);
    assert!(w.stacks.calls().is_empty());
}

#[tokio::test]
async fn orphan_resources_are_deleted_by_a_full_sweep_only() {
    let w = World::new();
    let bucket = "ephemera-pr-11-gone-files-x";
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/ephemera-pr-11-gone-todo-x";
    w.resources.add_managed(&format!("arn:aws:s3:::{bucket}"), "pr-11-gone");
    w.resources.add_managed(table, "pr-11-gone");
    w.resources.add_managed("arn:aws:s3:::someone-elses-bucket", "pr-11-gone");
    w.store.put(bucket, "k", "v");
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert!(s.planned.is_empty() && w.resources.deleted().is_empty());
    let s = w.reaper().sweep(FULL).await.unwrap();
    assert_eq!(count(&s, "delete_resource", Reason::OrphanResource), 2);
    assert_eq!(w.resources.deleted(), ["table:ephemera-pr-11-gone-todo-x".to_owned(), format!("bucket:{bucket}")]);
    assert_eq!(w.resources.arns(), ["arn:aws:s3:::someone-elses-bucket"], "not named for its environment: refused");
    assert_eq!(w.store.emptied(), [bucket]);
}

#[tokio::test]
async fn a_stack_whose_deletion_failed_is_deleted_without_what_blocks_it_and_the_row_retired() {
    let w = World::new();
    w.ready_pr().await;
    let stack = name(PR).stack_name();
    w.stacks.block_delete(&stack);
    w.deliver("pull_request", "d-close", fixtures::CLOSED).await.unwrap();
    w.provisioner().reconcile(&name(PR)).await.unwrap();
    assert_eq!(w.stacks.get(&stack).unwrap().status, "DELETE_FAILED");
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(count(&s, "repair_stack", Reason::DeleteFailed), 1);
    assert!(w.stacks.get(&stack).is_none());
    let ops: Vec<String> = w.stacks.calls().into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["create", "delete", "delete", "delete_retaining"]);
    assert_eq!(w.stacks.retained(), ["Files"]);
    let bucket = format!("{stack}-files-fake");
    assert_eq!(w.resources.deleted(), [format!("bucket:{bucket}")], "the retained bucket is removed directly");
    let e = w.env(PR);
    assert_eq!((e.status, e.generation, e.observed_generation), (Status::Deleted, 3, 3));
    assert_eq!(e.status_reason.as_deref(), Some("stack deletion had failed; the reaper deleted the stack"));
}

#[tokio::test]
async fn a_stack_stuck_in_progress_is_repaired() {
    let w = World::new();
    w.ready_pr().await;
    let stuck = orphan_stack(ORPHAN, "UPDATE_IN_PROGRESS").updated_at(w.now() - Duration::hours(3));
    w.stacks.insert(&format!("ephemera-{ORPHAN}"), stuck);
    // The pull request's own stack, being updated for a few minutes: left to finish.
    let updating = orphan_stack(PR, "UPDATE_IN_PROGRESS").updated_at(w.now() - Duration::minutes(5));
    w.stacks.insert(name(PR).stack_name().as_str(), updating);
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(s.planned.len(), 1, "{:?}", s.planned);
    assert_eq!(count(&s, "repair_stack", Reason::Stuck), 1);
    assert!(w.stacks.get(&name(ORPHAN).stack_name()).is_none());
    assert!(w.stacks.get(&name(PR).stack_name()).is_some());
}

#[tokio::test]
async fn a_row_claiming_a_vanished_stack_is_retired_after_a_grace_period() {
    let w = World::new();
    w.ready_pr().await;
    w.stacks.delete(&name(PR).stack_name(), "t").await.unwrap();
    w.clock.advance(Duration::minutes(5));
    assert!(w.reaper().sweep(LIGHT).await.unwrap().planned.is_empty(), "within the grace period");
    w.clock.advance(Duration::minutes(6));
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(count(&s, "retire", Reason::StackVanished), 1);
    let e = w.env(PR);
    assert_eq!(
        (e.status, e.desired, e.status_reason.as_deref()),
        (Status::Deleted, Desired::Down, Some("its stack no longer exists"))
    );
}

#[tokio::test]
async fn an_environment_about_to_expire_is_noticed_once_per_expiry() {
    let w = World::new();
    w.ready_pr().await;
    w.clock.advance(Duration::days(6) + Duration::hours(12));
    w.reaper().sweep(LIGHT).await.unwrap();
    w.reaper().sweep(LIGHT).await.unwrap();
    let noticed = |w: &World| w.bus.detail_types().iter().filter(|t| *t == "Environment.ExpiringSoon").count();
    assert_eq!(noticed(&w), 1);
    assert_eq!(w.env(PR).expiry_notice_at, Some(w.now()));
    // A push moves the expiry; its approach is noticed again.
    let push = edit(fixtures::SYNCHRONIZE, &[("pull_request.updated_at", serde_json::json!(w.now().to_rfc3339()))]);
    w.deliver("pull_request", "d-push", &push).await.unwrap();
    w.provisioner().reconcile(&name(PR)).await.unwrap();
    w.clock.advance(Duration::days(6) + Duration::hours(12));
    w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(noticed(&w), 2);
}

#[tokio::test]
async fn the_pull_request_is_warned_once_per_threshold_and_told_how_to_extend() {
    let w = World::new();
    w.ready_pr().await;
    let notifier = w.notifier();
    let warnings = |w: &World| {
        w.github.calls().iter().filter(|c| matches!(c, GitHubCall::Comment { body, .. } if body.contains("⏰"))).count()
    };
    // Each sweep's notices reach the comment.
    let sweep = |w: &World| {
        let (reaper, notifier, bus) = (w.reaper(), &notifier, w.bus.clone());
        async move {
            reaper.sweep(LIGHT).await.unwrap();
            for e in bus.take().into_iter().filter(|e| e.detail_type == EXPIRING_SOON) {
                notifier.handle(&e).await.unwrap();
            }
        }
    };
    // 24 hours before expiry (EPHEMERA_EXPIRY_NOTICE_HOURS), then the last hour.
    for (advance, expected) in [
        (Duration::days(5), 0),
        (Duration::days(1), 1),
        (Duration::hours(12), 1),
        (Duration::minutes(11 * 60 + 30), 2),
        (Duration::minutes(10), 2),
    ] {
        w.clock.advance(advance);
        sweep(&w).await;
        assert_eq!(warnings(&w), expected, "at {}", w.now());
    }
    let text = w.github.comment("acme/todo-app", 7).unwrap();
    assert!(text.contains("will be removed at 2026-11-27 09:00 UTC (in about 1 hour)"), "{text}");
    assert!(text.contains("`/ephemera extend 3d`"), "{text}");
}

#[tokio::test]
async fn a_queued_environment_is_nudged() {
    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    w.registry.edit(&name(PR), |e| e.status = Status::Queued);
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(count(&s, "nudge", Reason::Queued), 1);
    assert_eq!(w.bus.detail_types(), [REQUESTED, REQUESTED]);
}

#[tokio::test]
async fn a_dry_run_decides_the_same_and_changes_nothing() {
    let w = World::new();
    w.ready_pr().await;
    w.stacks.insert(&format!("ephemera-{ORPHAN}"), orphan_stack(ORPHAN, "CREATE_COMPLETE"));
    w.resources.add_managed("arn:aws:s3:::ephemera-pr-11-gone-files-x", "pr-11-gone");
    w.clock.advance(Duration::days(8));
    let (before, events, calls) = (w.env(PR), w.bus.events().len(), w.stacks.calls().len());
    let s = w.reaper().sweep(DRY).await.unwrap();
    assert!(s.dry_run);
    assert_eq!(s.planned.len(), 3, "{:?}", s.planned);
    assert!(s.planned.iter().any(|a| matches!(a, Action::RequestDown { reason: Reason::Expired, .. })));
    assert_eq!(count(&s, "delete_stack", Reason::OrphanStackUnknown), 1);
    assert_eq!((w.env(PR), w.bus.events().len(), w.stacks.calls().len()), (before, events, calls));
    assert_eq!((w.resources.deleted().len(), w.store.emptied().len()), (0, 0));
    // The same sweep for real does all three.
    let s = w.reaper().sweep(FULL).await.unwrap();
    assert_eq!(s.actions.values().flat_map(|m| m.values()).sum::<u64>(), 3);
}

#[tokio::test]
async fn one_failed_action_does_not_stop_the_sweep() {
    let w = World::new();
    w.stacks.insert(&format!("ephemera-{ORPHAN}"), orphan_stack(ORPHAN, "CREATE_COMPLETE"));
    w.stacks.insert("ephemera-pr-12-acme-x", orphan_stack("pr-12-acme-x", "CREATE_COMPLETE"));
    w.stacks.faults.fail_next("delete", permanent("delete stack", "AccessDenied"));
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert_eq!(s.errors[0].action, "delete_stack");
    assert_eq!(count(&s, "delete_stack", Reason::OrphanStackUnknown), 1, "the other was deleted");
}

#[tokio::test]
async fn without_the_facts_nothing_is_decided() {
    let w = World::new();
    w.ready_pr().await;
    w.clock.advance(chrono::Duration::days(30));
    w.stacks.faults.fail_next("list", permanent("list stacks", "AccessDenied"));
    let s = w.reaper().sweep(FULL).await.unwrap();
    assert!(s.planned.is_empty(), "{:?}", s.planned);
    assert_eq!((s.errors[0].action, s.errors[0].target.as_str()), ("list stacks", "platform"));
    assert!(s.accounts[0].error.as_deref().unwrap().contains("AccessDenied"));
    // Without the registry, nothing at all.
    w.registry.faults.fail_next("list", permanent("list environments", "AccessDenied"));
    assert!(w.reaper().sweep(FULL).await.is_err());
}

#[tokio::test]
async fn a_full_sweep_records_each_environments_cost() {
    let w = World::new();
    w.ready_pr().await;
    let stack = name(PR).stack_name();
    w.resources.add_managed(&format!("arn:aws:s3:::{stack}-files-fake"), PR);
    w.resources.add_managed(&format!("arn:aws:appsync:us-east-1:123456789012:apis/{stack}-api"), PR);
    w.clock.advance(Duration::hours(73));
    let s = w.reaper().sweep(FULL).await.unwrap();
    assert!(s.planned.is_empty(), "a live environment's resources are not orphans: {:?}", s.planned);
    let cost = s.cost.unwrap();
    assert_eq!((cost.live_environments, cost.monthly_usd), (1, 4.1));
    let e = w.env(PR);
    assert_eq!(e.cost_monthly_usd, Some(4.1));
    assert_eq!(e.cost_accrued_usd, Some(ephemera_domain::cost::accrued(4.1, e.created_at, w.now())));
    assert!(e.cost_accrued_usd.unwrap() > 0.0);
}

#[tokio::test]
async fn a_repair_deletes_whatever_blocked_the_stack_by_the_catalogue_and_leaves_parts_to_their_whole() {
    let w = World::new();
    let stack = name(ORPHAN).stack_name();
    let orphan = FakeStack::managed(ORPHAN, "CREATE_COMPLETE")
        .with_resource("Handler", "AWS::Lambda::Function", &format!("{stack}-Handler-X"))
        .with_resource("HandlerRole", "AWS::IAM::Role", &format!("{stack}-HandlerRole-X"))
        .with_resource("Extra", "AWS::IAM::Policy", &format!("{stack}-Extra-X"))
        .with_resource(
            "Jobs",
            "AWS::SQS::Queue",
            &format!("https://sqs.us-east-1.amazonaws.com/123456789012/{stack}-Jobs"),
        )
        .with_resource("Foreign", "AWS::SQS::Queue", "https://sqs.us-east-1.amazonaws.com/123456789012/payments");
    w.stacks.insert(stack.as_str(), orphan);
    let types = ["AWS::Lambda::Function", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::SQS::Queue"];
    w.stacks.block_delete_on(&stack, &types);
    w.stacks.delete(&stack, "t").await.unwrap();
    assert_eq!(w.stacks.get(&stack).unwrap().status, "DELETE_FAILED");

    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(count(&s, "repair_stack", Reason::DeleteFailed), 1, "{:?}", s.errors);
    assert!(w.stacks.get(&stack).is_none());
    assert_eq!(
        w.resources.deleted(),
        [
            format!("function:{stack}-Handler-X"),
            format!("log_group:/aws/lambda/{stack}-Handler-X"),
            format!("role:{stack}-HandlerRole-X"),
            format!("queue:{stack}-Jobs"),
        ],
        "each blocking resource deleted as its kind is, a function's log group after it; the inline policy \
         goes with its role, and a queue not named for the environment is left"
    );
}

#[tokio::test]
async fn a_closed_environments_function_goes_with_its_runtime_log_group_and_a_live_ones_stay() {
    let w = World::new();
    // Closed: its stack deleted.
    w.ready_pr().await;
    w.deliver("pull_request", "d-close", fixtures::CLOSED).await.unwrap();
    w.provisioner().reconcile(&name(PR)).await.unwrap();
    assert_eq!(w.env(PR).status, Status::Deleted);
    let gone = name(PR).stack_name();
    // Live: its stack is there.
    let live = name(ORPHAN).stack_name();
    w.stacks.insert(live.as_str(), FakeStack::managed(ORPHAN, "CREATE_COMPLETE"));
    let function = |stack: &str| format!("arn:aws:lambda:us-east-1:123456789012:function:{stack}-Api-X");
    let logs = |stack: &str| format!("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{stack}-Api-X");
    w.resources.add_managed(&function(gone.as_str()), PR);
    w.resources.add(&logs(gone.as_str()), &[]);
    w.resources.add(&logs(live.as_str()), &[]);
    w.resources.add(&format!("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{gone}-Old-Y"), &[]);

    let s = w.reaper().sweep(FULL).await.unwrap();
    assert_eq!(s.deleted_by_type.get("AWS::Lambda::Function"), Some(&1), "{:?}", s.planned);
    // The function's own log group goes with it (and is counted with it); the other is an orphan.
    assert_eq!(s.deleted_by_type.get("AWS::Logs::LogGroup"), Some(&1));
    assert_eq!(
        w.resources.deleted(),
        [
            format!("function:{gone}-Api-X"),
            format!("log_group:/aws/lambda/{gone}-Api-X"),
            format!("log_group:/aws/lambda/{gone}-Old-Y"),
        ]
    );
    assert_eq!(w.resources.arns(), [logs(live.as_str())], "the live environment's log group stays");
}

#[tokio::test]
async fn a_row_left_creating_after_a_permanent_error_is_retired_with_that_error() {
    let w = World::new();
    w.deliver("pull_request", "d-opened", fixtures::OPENED).await.unwrap();
    let stranded = ephemera_app::ports::Progress {
        status: Some(Status::Creating),
        reason: Some("the template bucket is gone".into()),
        ..Default::default()
    };
    use ephemera_app::ports::Reconciliation;
    assert!(w.registry.record_progress(&name(PR), Stamp::new(1, w.now()), &stranded).await.unwrap());
    w.clock.advance(Duration::minutes(30));
    assert!(w.reaper().sweep(LIGHT).await.unwrap().planned.is_empty(), "the provisioner may still be at it");
    w.clock.advance(Duration::hours(2));
    let s = w.reaper().sweep(LIGHT).await.unwrap();
    assert_eq!(count(&s, "retire", Reason::Stranded), 1, "{:?}", s.planned);
    let e = w.env(PR);
    assert_eq!((e.status, e.desired), (Status::Deleted, Desired::Down));
    let why = e.status_reason.unwrap_or_default();
    assert!(why.starts_with("stranded") && why.ends_with("the template bucket is gone"), "{why}");
}

#[tokio::test]
async fn a_full_sweep_mends_the_running_totals() {
    use ephemera_app::ports::Ledger;
    let w = World::new();
    w.ready_pr().await;
    assert_eq!(w.registry.totals().await.unwrap().get("live"), Some(&1));
    // Its claim lost (a release that went astray), and a claim of an environment with no row.
    assert!(w.registry.release(&name(PR)).await.unwrap());
    let stray = name(ORPHAN);
    let held = ephemera_domain::admission::claim(&w.env(PR), Default::default(), None, 1.0, None);
    w.registry.claim(&stray, &held).await.unwrap();
    let dry = w.reaper().sweep(DRY).await.unwrap();
    let mended = |s: &Summary| s.ledger.as_ref().map(|l| (l.released, l.counted));
    assert_eq!(mended(&dry), Some((1, 1)));
    assert_eq!(w.registry.totals().await.unwrap().get("live"), Some(&1), "a dry run changes nothing");
    let run = w.reaper().sweep(FULL).await.unwrap();
    assert_eq!(mended(&run), Some((1, 1)));
    assert_eq!(w.registry.holders().await.unwrap(), [name(PR)]);
    assert_eq!(w.registry.totals().await.unwrap().get("live"), Some(&1));
    // Nothing left to mend; a light sweep does not look.
    assert_eq!(mended(&w.reaper().sweep(FULL).await.unwrap()), Some((0, 0)));
    assert_eq!(mended(&w.reaper().sweep(LIGHT).await.unwrap()), None);
}
