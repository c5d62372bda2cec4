//! `make bench-reaper`: the reaper over 2,000 stacks in the emulator.
//!
//! Seeds a realistic mix (most alive and registered, some expired, some orphaned, some
//! foreign), then measures, in one run:
//! - the floor: the emulator answering the listing calls any sweep must make (tagging API,
//!   DescribeStacks, the registry's index), made directly;
//! - a dry-run sweep (the same calls, plus planning): its overhead over the floor;
//! - a real sweep: wall time, API calls, what it did;
//! - peak memory (VmHWM) during the sweeps.
//!
//! Prints a JSON report and writes it to bench/reaper.json.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use ephemera_app::ports::Stamp;
use ephemera_app::ports::{registry_traits::*, Change, Inventory, Progress, Stacks};
use ephemera_app::reaper::SweepOptions;
use ephemera_app::Clock;
use ephemera_aws::resources::AwsResources;
use ephemera_aws::{emulator_config, CloudFormationStacks};
use ephemera_domain::{Desired, EnvironmentKind, EnvironmentName, EventOrder, RepoName, Status};
use ephemera_tests::{test_config, Emulator, REGION};
use ephemera_wiring::{platform, Clients};
use serde_json::json;
use tokio::task::JoinSet;

const STACKS: usize = 2_000;

struct Later(chrono::DateTime<Utc>);
impl Clock for Later {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.0
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let emulator = Emulator::start()?;
    let config = test_config(&[("EPHEMERA_REAPER_CALLS_PER_SECOND", "10000")]);
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
    ephemera_local::prepare(&config.shared, &clients, "work", false).await?;
    let registry = Arc::new(ephemera_aws::DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table));
    let repo = RepoName::parse("acme/bench")?;

    // The mix: 85% alive and registered, 7.5% expired, 5% orphaned, 2.5% foreign (untagged).
    let seeding = Instant::now();
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
                let number = i as u64 + 1;
                let env = EnvironmentName::for_pull_request(&repo, number)?;
                let kind = match i % 40 {
                    0..=2 => "expired",
                    3..=4 => "orphan",
                    5 => "foreign",
                    _ => "alive",
                };
                let mut tags = vec![("ephemera:environment", env.to_string())];
                if kind != "foreign" {
                    tags.push(("ephemera:managed-by", "ephemera".into()));
                }
                let template = json!({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {
                    "Tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}}}});
                clients
                    .cloudformation()
                    .create_stack()
                    .stack_name(env.stack_name().as_str())
                    .template_body(template.to_string())
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| aws_sdk_cloudformation::types::Tag::builder().key(*k).value(v).build())
                            .collect(),
                    ))
                    .send()
                    .await?;
                if kind == "alive" || kind == "expired" {
                    let at = Utc::now();
                    let ttl = if kind == "expired" { Duration::hours(1) } else { Duration::days(30) };
                    let change = Change {
                        repository: Some(repo.clone()),
                        pull_request: Some(number),
                        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                        ..Change::new(
                            env.clone(),
                            EnvironmentKind::Pr,
                            "bench",
                            Desired::Up,
                            EventOrder::new(at.timestamp(), EventOrder::RANK_OPEN),
                            at + ttl,
                            at,
                        )
                    };
                    registry.apply_change(&format!("bench-{number}"), &change).await?;
                    let ready = Progress { status: Some(Status::Ready), settled: true, ..Default::default() };
                    registry.record_progress(&env, Stamp::new(1, at), &ready).await?;
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let seed_seconds = seeding.elapsed().as_secs_f64();

    // The floor: the listing calls, made directly, timed.
    let floor = Instant::now();
    let tagged = AwsResources::new(clients.sdk()).found().await?;
    let stacks = CloudFormationStacks::new(clients.cloudformation().clone()).list().await?;
    let rows = registry.list().await?;
    let floor_ms = floor.elapsed().as_secs_f64() * 1000.0;

    let reaper =
        platform::reaper(&config.shared, &config.reaper, &clients, Arc::new(Later(Utc::now() + Duration::hours(2))));
    reset_peak_rss();
    let dry_started = Instant::now();
    let dry = reaper.sweep(SweepOptions { dry_run: true, light: false }).await?;
    let dry_ms = dry_started.elapsed().as_secs_f64() * 1000.0;
    let real_started = Instant::now();
    let real = reaper.sweep(SweepOptions::default()).await?;
    let real_ms = real_started.elapsed().as_secs_f64() * 1000.0;
    let peak = peak_rss_kib();

    let report = json!({
        "stacks_seeded": STACKS,
        "seed_seconds": (seed_seconds * 10.0).round() / 10.0,
        "listed": {"stacks": stacks.len(), "tagged_resources": tagged.len(), "registry_rows": rows.len()},
        "floor_ms": floor_ms.round(),
        "dry_run": {"wall_ms": dry_ms.round(), "overhead_ms": (dry_ms - floor_ms).round(),
                    "overhead_pct": ((dry_ms - floor_ms) / floor_ms * 1000.0).round() / 10.0,
                    "operations": dry.operations, "planned": dry.actions},
        "real": {"wall_ms": real_ms.round(), "operations": real.operations, "done": real.actions, "errors": real.errors.len(),
                 "estimated_monthly_usd": real.cost.as_ref().map(|c| c.monthly_usd)},
        "peak_rss_mib_during_sweeps": (peak as f64 / 1024.0 * 10.0).round() / 10.0,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    let out = ephemera_tests::workspace_root().join("bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("reaper.json"), text + "\n")?;
    Ok(())
}
