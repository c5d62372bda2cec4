//! `make bench-reaper`: the reaper over 2,000 environments of every kind in the emulator.
//!
//! Seeds a realistic mix (most alive and registered, some expired, some orphaned, some
//! foreign, some closed with what they left behind), with the resource types rotating through
//! every kind the emulator's CloudFormation makes, and every catalogued kind among the
//! leftovers; then measures, in one run:
//! - the floor: the emulator answering the listing calls any sweep must make (the Tagging API
//!   and each kind's own listing, DescribeStacks, the registry's index), made directly;
//! - a dry-run sweep (the same calls, plus planning): its overhead over the floor;
//! - a real sweep: wall time, calls by operation, deletions by resource type;
//! - peak memory (VmHWM) during the sweeps.
//!
//! Every call goes through the (fault-free) test proxy, which counts them by operation.
//!
//! Prints a JSON report and writes it to bench/reaper.json.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use ephemera_app::memory::FixedClock;
use ephemera_app::ports::Stamp;
use ephemera_app::ports::{registry_traits::*, Change, Inventory, Progress, Stacks};
use ephemera_app::reaper::SweepOptions;
use ephemera_aws::resources::AwsResources;
use ephemera_aws::{emulator_config, CloudFormationStacks};
use ephemera_domain::catalogue::Kind;
use ephemera_domain::{EnvironmentName, RepoName, Status};
use ephemera_tests::faults::{FaultProxy, Faults};
use ephemera_tests::resources::{Services, KINDS};
use ephemera_tests::{test_config, Emulator, REGION};
use ephemera_wiring::{platform, Clients};
use serde_json::json;
use tokio::task::JoinSet;

const STACKS: usize = 2_000;

/// The kinds the emulator's CloudFormation makes, one per stack in turn, as JSON resources.
fn resource(i: usize, tags: &[serde_json::Value]) -> serde_json::Value {
    let name = json!({"Fn::Sub": "${AWS::StackName}-r"});
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let key = json!([{"AttributeName": "id", "AttributeType": "S"}]);
    let (ty, props) = match i % 7 {
        0 => ("AWS::SQS::Queue", json!({"QueueName": name, "Tags": tags})),
        1 => ("AWS::SNS::Topic", json!({"TopicName": name, "Tags": tags})),
        2 => (
            "AWS::DynamoDB::Table",
            json!({"TableName": name, "Tags": tags, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": key, "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}),
        ),
        3 => ("AWS::S3::Bucket", json!({"BucketName": name, "Tags": tags})),
        4 => ("AWS::IAM::Role", json!({"RoleName": name, "AssumeRolePolicyDocument": trust, "Tags": tags})),
        5 => ("AWS::Logs::LogGroup", json!({"LogGroupName": name, "Tags": tags})),
        _ => (
            "AWS::IAM::ManagedPolicy",
            json!({"ManagedPolicyName": name, "PolicyDocument": {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "logs:CreateLogStream", "Resource": "*"}]}}),
        ),
    };
    json!({"Resources": {"R": {"Type": ty, "Properties": props}}})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ephemera_tests::init_logs();
    let emulator = Emulator::start()?;
    let config = test_config(&[("EPHEMERA_REAPER_CALLS_PER_SECOND", "10000")]);
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
    let proxy = FaultProxy::start(&emulator.endpoint, Faults::NONE, 1).await;
    let counted = Clients::new(&emulator_config(&proxy.endpoint, REGION).await);
    ephemera_local::prepare(&config.shared, &clients, "work", false).await?;
    let registry = Arc::new(ephemera_aws::DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table));
    let repo = RepoName::parse("acme/bench")?;

    let seeding = Instant::now();
    seed(&clients, &registry, &repo).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();

    // The floor: the listing calls, made directly (through the same proxy), timed.
    let floor = Instant::now();
    let found = AwsResources::new(counted.sdk()).found().await?;
    let stacks = CloudFormationStacks::new(counted.cloudformation().clone()).list().await?;
    let rows = registry.list().await?;
    let floor_ms = floor.elapsed().as_secs_f64() * 1000.0;

    let reaper = platform::reaper(
        &config.shared,
        &config.reaper,
        &counted,
        Arc::new(FixedClock::new(Utc::now() + Duration::hours(2))),
    );
    ephemera_tests::bench::reset_peak_rss();
    let dry_started = Instant::now();
    let dry = reaper.sweep(SweepOptions { dry_run: true, light: false }).await?;
    let dry_ms = dry_started.elapsed().as_secs_f64() * 1000.0;
    let before = proxy.stats().operations;
    let real_started = Instant::now();
    let real = reaper.sweep(SweepOptions::default()).await?;
    let real_ms = real_started.elapsed().as_secs_f64() * 1000.0;
    let calls: std::collections::BTreeMap<String, u64> = proxy
        .stats()
        .operations
        .into_iter()
        .map(|(op, n)| (n - before.get(&op).copied().unwrap_or(0), op))
        .filter(|(n, _)| *n > 0)
        .map(|(n, op)| (op, n))
        .collect();
    let peak = ephemera_tests::bench::peak_rss_kib();

    let report = json!({
        "stacks_seeded": STACKS,
        "seed_seconds": (seed_seconds * 10.0).round() / 10.0,
        "listed": {"stacks": stacks.len(), "found_resources": found.len(), "registry_rows": rows.len()},
        "floor_ms": floor_ms.round(),
        "dry_run": {"wall_ms": dry_ms.round(), "overhead_ms": (dry_ms - floor_ms).round(),
                    "overhead_pct": ((dry_ms - floor_ms) / floor_ms * 1000.0).round() / 10.0,
                    "operations": dry.operations, "planned": dry.actions},
        "real": {"wall_ms": real_ms.round(), "operations": real.operations, "done": real.actions, "errors": real.errors.len(),
                 "deleted_by_type": real.deleted_by_type, "calls_by_operation": calls,
                 "estimated_monthly_usd": real.cost.as_ref().map(|c| c.monthly_usd)},
        "peak_rss_mib_during_sweeps": ephemera_tests::bench::mib(peak),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    ephemera_tests::bench::write_report("reaper.json", &report)
}

/// A closed environment whose stack is gone, with one leftover of every catalogued kind.
async fn leak(
    clients: &Clients,
    registry: &ephemera_aws::DynamoRegistry,
    repo: &RepoName,
    number: u64,
    env: &EnvironmentName,
) -> anyhow::Result<()> {
    let at = Utc::now();
    let change = ephemera_tests::opened_change(repo, number, env, Duration::days(30));
    registry.apply_change(&format!("bench-{number}"), &change).await?;
    registry.go_down(env, Stamp::new(1, at), ephemera_app::ports::GoDown::Retire, "closed").await?;
    let services = Services::new(clients.sdk());
    for kind in KINDS {
        let name = format!("ephemera-{env}-{}", format!("{kind:?}").to_ascii_lowercase());
        services.make(kind, &name, (kind != Kind::ManagedPolicy).then_some(env.as_str())).await?;
    }
    Ok(())
}

/// The mix: 82.5% alive and registered, 7.5% expired, 5% orphaned, 2.5% foreign (untagged),
/// 2.5% closed with one leftover of every catalogued kind and no stack; seeded 8 at a time.
async fn seed(clients: &Clients, registry: &Arc<ephemera_aws::DynamoRegistry>, repo: &RepoName) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..8 {
        let (clients, registry, repo, next) = (clients.clone(), registry.clone(), repo.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= STACKS {
                    return anyhow::Ok(());
                }
                one_environment(&clients, &registry, &repo, i).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// The `i`th environment of the mix.
async fn one_environment(
    clients: &Clients,
    registry: &ephemera_aws::DynamoRegistry,
    repo: &RepoName,
    i: usize,
) -> anyhow::Result<()> {
    let number = i as u64 + 1;
    let env = EnvironmentName::for_pull_request(repo, number)?;
    let kind = match i % 40 {
        0..=2 => "expired",
        3..=4 => "orphan",
        5 => "foreign",
        6 => "leaked",
        _ => "alive",
    };
    if kind == "leaked" {
        leak(clients, registry, repo, number, &env).await?;
        return Ok(());
    }
    let mut tags = vec![("ephemera:environment", env.to_string())];
    if kind != "foreign" {
        tags.push(("ephemera:managed-by", "ephemera".into()));
    }
    let tag_list: Vec<_> = tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
    let template = resource(i, &tag_list);
    clients
        .cloudformation()
        .create_stack()
        .stack_name(env.stack_name().as_str())
        .template_body(template.to_string())
        .set_tags(Some(
            tags.iter().map(|(k, v)| aws_sdk_cloudformation::types::Tag::builder().key(*k).value(v).build()).collect(),
        ))
        .send()
        .await?;
    if kind == "alive" || kind == "expired" {
        let at = Utc::now();
        let ttl = if kind == "expired" { Duration::hours(1) } else { Duration::days(30) };
        let change = Change {
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            ..ephemera_tests::opened_change(repo, number, &env, ttl)
        };
        registry.apply_change(&format!("bench-{number}"), &change).await?;
        let ready = Progress { status: Some(Status::Ready), settled: true, ..Default::default() };
        registry.record_progress(&env, Stamp::new(1, at), &ready).await?;
    }
    Ok(())
}
