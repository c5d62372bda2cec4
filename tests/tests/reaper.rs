//! The reaper against the emulator: every case seeded, exactly the right ones deleted, the rest
//! untouched, and a dry run that changes nothing.
//!
//! Where the emulator differs from AWS: a stack whose bucket still has objects is reported
//! DELETE_COMPLETE and the bucket is silently left behind (AWS reports DELETE_FAILED). So the
//! "deletion blocked by a bucket" case shows up here as an orphan bucket with objects, which
//! the reaper must find by its tags and remove. The stuck stack is one the emulator leaves in
//! CREATE_IN_PROGRESS after a template error.

use std::sync::Arc;

use aws_sdk_cloudformation::types::Tag;
use chrono::{Duration, Utc};
use ephemera_app::memory::FixedClock;
use ephemera_app::ports::Stamp;
use ephemera_app::ports::{registry_traits::*, GoDown, Progress};
use ephemera_app::reaper::SweepOptions;
use ephemera_app::Clock;
use ephemera_domain::{EnvironmentName, Status};
use ephemera_tests::fixtures::OPENED;
use ephemera_tests::{edit, Platform};
use ephemera_wiring::platform;
use serde_json::json;

fn tags(env: &str) -> Vec<Tag> {
    vec![
        Tag::builder().key("ephemera:managed-by").value("ephemera").build(),
        Tag::builder().key("ephemera:environment").value(env).build(),
    ]
}

async fn open_pr(p: &Platform, number: u64) -> String {
    let body = edit(OPENED, &[("number", json!(number)), ("pull_request.number", json!(number))]);
    let (status, reply) = p.deliver("pull_request", &format!("d-open-{number}"), &body).await;
    assert_eq!(status, 202, "{reply}");
    let env = reply["environment"].as_str().unwrap().to_owned();
    p.wait_for(&env, Status::Ready).await;
    env
}

async fn stack_names(p: &Platform) -> Vec<String> {
    let mut names = p.live_stacks("").await;
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_exactly_what_outlived_its_purpose() {
    let p = Platform::start().await;
    let cfn = &p.clients.cloudformation();
    let registry = p.registry();

    // Registered environments.
    let expired = open_pr(&p, 21).await;
    let closed_alive = open_pr(&p, 22).await;
    let vanished = open_pr(&p, 23).await;
    let preserved = open_pr(&p, 24).await;
    // A teardown that failed: the pull request is closed, its stack is still there.
    let name = EnvironmentName::parse(&closed_alive).unwrap();
    let env = registry.get(&name).await.unwrap().unwrap();
    assert!(registry.go_down(&name, Stamp::new(env.generation, Utc::now()), GoDown::Request, "closed").await.unwrap());
    let failed = Progress {
        status: Some(Status::Failed),
        reason: Some("delete failed".into()),
        settled: true,
        ..Default::default()
    };
    assert!(registry.record_progress(&name, Stamp::new(env.generation + 1, Utc::now()), &failed).await.unwrap());
    // A stack deleted behind the platform's back.
    cfn.delete_stack().stack_name(format!("ephemera-{vanished}")).send().await.unwrap();
    assert!(registry.set_preserved(&EnvironmentName::parse(&preserved).unwrap(), true, None).await.unwrap());

    // Unregistered stacks and resources.
    let queue = json!({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}).to_string();
    let orphan = "ephemera-pr-99-acme-orphan-0a1b2c3d4e";
    cfn.create_stack()
        .stack_name(orphan)
        .template_body(&queue)
        .set_tags(Some(tags("pr-99-acme-orphan-0a1b2c3d4e")))
        .send()
        .await
        .unwrap();
    let untagged = "ephemera-pr-96-acme-untagged-0a1b2c3d4e";
    cfn.create_stack().stack_name(untagged).template_body(&queue).send().await.unwrap();
    let foreign = "payments-prod";
    cfn.create_stack()
        .stack_name(foreign)
        .template_body(&queue)
        .set_tags(Some(tags("pr-95-acme-foreign-0a1b2c3d4e")))
        .send()
        .await
        .unwrap();
    let stuck = "ephemera-pr-97-acme-stuck-0a1b2c3d4e";
    let broken = json!({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::GetAtt": ["Missing", "Arn"]}}}}});
    let _ = cfn
        .create_stack()
        .stack_name(stuck)
        .template_body(broken.to_string())
        .set_tags(Some(tags("pr-97-acme-stuck-0a1b2c3d4e")))
        .send()
        .await;
    let stuck_status = cfn.describe_stacks().stack_name(stuck).send().await.unwrap().stacks()[0]
        .stack_status()
        .unwrap()
        .as_str()
        .to_owned();
    assert_eq!(stuck_status, "CREATE_IN_PROGRESS");
    // A bucket with objects left behind by a deleted stack.
    let leak_env = "pr-98-acme-leak-0a1b2c3d4e";
    let bucket_template = json!({"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"Tags": [
        {"Key": "ephemera:managed-by", "Value": "ephemera"}, {"Key": "ephemera:environment", "Value": leak_env}]}}}});
    let leak_stack = format!("ephemera-{leak_env}");
    cfn.create_stack()
        .stack_name(&leak_stack)
        .template_body(bucket_template.to_string())
        .set_tags(Some(tags(leak_env)))
        .send()
        .await
        .unwrap();
    let res = cfn.list_stack_resources().stack_name(&leak_stack).send().await.unwrap();
    let leaked_bucket = res.stack_resource_summaries()[0].physical_resource_id().unwrap().to_owned();
    p.clients
        .s3()
        .put_object()
        .bucket(&leaked_bucket)
        .key("uploads/a.png")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    cfn.delete_stack().stack_name(&leak_stack).send().await.unwrap();
    assert!(p.clients.s3().head_bucket().bucket(&leaked_bucket).send().await.is_ok(), "the emulator leaves it behind");

    // Eight days on: the open pull requests' environments (7-day TTL) have expired.
    let later: Arc<dyn Clock> = Arc::new(FixedClock::new(Utc::now() + Duration::days(8)));
    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, later);

    let before = stack_names(&p).await;
    let dry = reaper.sweep(SweepOptions { dry_run: true, light: false }).await.unwrap();
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    assert_eq!(stack_names(&p).await, before, "a dry run deletes nothing");
    assert!(p.clients.s3().head_bucket().bucket(&leaked_bucket).send().await.is_ok());
    assert_eq!(p.environment(&expired).await.unwrap().status, Status::Ready);
    let planned = |kind: &str| dry.actions.get(kind).map(|m| m.values().sum::<u64>()).unwrap_or(0);
    assert_eq!(
        (
            planned("request_down"),
            planned("delete_stack"),
            planned("repair_stack"),
            planned("delete_resource"),
            planned("retire")
        ),
        (2, 1, 1, 1, 1),
        "{:#?}",
        dry.planned
    );

    let run = reaper.sweep(SweepOptions::default()).await.unwrap();
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.actions, dry.actions, "the real run does what the dry run said");

    // Registered ones go down through the provisioner, with the reason on the row.
    let e = p.wait_for(&expired, Status::Deleted).await;
    assert!(e.status_reason.as_deref().unwrap_or_default().contains("expired"), "{e:?}");
    p.wait_for(&closed_alive, Status::Deleted).await;
    let v = p.environment(&vanished).await.unwrap();
    assert_eq!((v.status, v.status_reason.as_deref()), (Status::Deleted, Some("its stack no longer exists")));

    // Exactly these stacks remain: the preserved one, the untagged one, the foreign one.
    let mut want = vec![format!("ephemera-{preserved}"), untagged.to_owned(), foreign.to_owned()];
    want.sort();
    assert_eq!(stack_names(&p).await, want);
    assert!(p.clients.s3().head_bucket().bucket(&leaked_bucket).send().await.is_err(), "orphan bucket removed");

    // The preserved environment was not touched, and still shows its age and cost.
    let kept = p.environment(&preserved).await.unwrap();
    assert_eq!(kept.status, Status::Ready);
    assert!(kept.cost_monthly_usd.unwrap() > 0.0, "{kept:?}");
    assert!(kept.cost_accrued_usd.unwrap() > 0.0, "eight days of a table and a bucket: {kept:?}");
    let cost = run.cost.as_ref().unwrap();
    assert!(cost.monthly_usd > 0.0 && cost.accrued_usd > 0.0, "{cost:?}");

    // Refusals are reported, with why.
    for target in [untagged, foreign] {
        // (the foreign one reaches the planner through the tagging API, as an ARN)
        assert!(
            run.skipped.iter().any(|s| s.target.contains(target) && s.why.contains("refused")),
            "{target}: {:?}",
            run.skipped
        );
    }
    let emf = run.emf("Ephemera");
    assert_eq!(emf["StacksDeleted"], 1);
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Ephemera");

    // Nothing left to do: a second sweep deletes nothing.
    let again = reaper.sweep(SweepOptions::default()).await.unwrap();
    for kind in ["request_down", "delete_stack", "repair_stack", "delete_resource", "retire"] {
        assert!(!again.actions.contains_key(kind), "{kind}: {:?}", again.planned);
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_sweep_records_expiry_notice_once() {
    let p = Platform::start().await;
    let env = open_pr(&p, 31).await;
    // Six and a half days on: within a day of the 7-day expiry.
    let soon: Arc<dyn Clock> = Arc::new(FixedClock::new(Utc::now() + Duration::hours(6 * 24 + 12)));
    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, soon);
    let run = reaper.sweep(SweepOptions { dry_run: false, light: true }).await.unwrap();
    assert_eq!(run.actions.get("notice").map(|m| m.values().sum::<u64>()), Some(1), "{:?}", run.planned);
    assert!(run.cost.is_none(), "a light sweep does not scan resources");
    let noticed = p.environment(&env).await.unwrap();
    assert!(noticed.expiry_notice_at.is_some());
    assert_eq!(noticed.status, Status::Ready);
    // A push refreshes the TTL and clears the notice.
    let (status, _) = p
        .deliver(
            "pull_request",
            "d-sync-31",
            &edit(ephemera_tests::fixtures::SYNCHRONIZE, &[("number", json!(31)), ("pull_request.number", json!(31))]),
        )
        .await;
    assert_eq!(status, 202);
    let refreshed = p.wait_for(&env, Status::Ready).await;
    assert!(refreshed.expiry_notice_at.is_none());
    p.stop().await;
}
