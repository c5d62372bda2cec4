//! `make bench-scale`: the platform at 10 and at 10,000 environments, spread over 5 deploy
//! accounts of the emulator.
//!
//! Seeds registry rows (with their claims on the running totals) and stacks (one queue each),
//! a fifth in each account; then measures:
//! - the create path: the provisioner's whole reconcile of a new pull request's environment
//!   (placement by room, admission, leftovers cleared, the stack made and settled), median of 20,
//!   at 10 environments and at 10,000; and within it the admission (the totals read and the
//!   conditional claim), next to what a registry scan costs at that size; and where its time
//!   goes: each emulator operation's calls and milliseconds per create, as the emulator timed
//!   them (the bench's own calls around each create, recording the pull request's change and
//!   the admission probe, included);
//! - in a separate process (so that its memory is the sweep's): the floor (the listing calls any
//!   sweep must make, every account at once, made directly: each account's resources and stacks,
//!   the registry, the claims), a dry-run sweep of all 5 accounts, and its peak memory (VmHWM).
//!
//! Prints a JSON report and writes it to bench/scale.json.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{Duration, Utc};
use ephemera_app::memory::FixedClock;
use ephemera_app::ports::{registry_traits::*, Admit, Inventory, Placement, Progress, Stacks, Stamp};
use ephemera_app::reaper::SweepOptions;
use ephemera_aws::resources::AwsResources;
use ephemera_aws::{emulator_config, CloudFormationStacks, DynamoRegistry};
use ephemera_domain::admission::claim;
use ephemera_domain::{Environment, EnvironmentName, RepoName, Status};
use ephemera_tests::{opened_change, test_config, Emulator, REGION};
use ephemera_wiring::config::Config;
use ephemera_wiring::{platform, Clients};
use serde_json::json;
use tokio::task::JoinSet;

const ACCOUNTS: [&str; 5] = ["200000000001", "200000000002", "200000000003", "200000000004", "200000000005"];
const ENVIRONMENTS: usize = 10_000;
const CREATES: usize = 20;
const TEMPLATE: &str = r#"{"Resources":{"Queue":{"Type":"AWS::SQS::Queue"}}}"#;
const BLUEPRINT: &str = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n";

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/ephemera-deploy")
}

fn config() -> Config {
    let pool = ACCOUNTS.map(role).join(",");
    test_config(&[
        ("EPHEMERA_DEPLOY_ROLE_ARN", &pool),
        ("EPHEMERA_ACCOUNT_STACK_CEILING", "2500"),
        ("EPHEMERA_STACK_POLL_MILLIS", "10"),
        ("EPHEMERA_REAPER_CALLS_PER_SECOND", "10000"),
    ])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ephemera_tests::init_logs();
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, endpoint] = &args[..] {
        if flag == "--sweep" {
            let report = sweep(endpoint).await?;
            println!("{report}");
            return Ok(());
        }
    }
    let timings = std::env::temp_dir().join(format!("ephemera-bench-timings-{}.log", std::process::id()));
    std::env::set_var("EPHEMERA_EMULATOR_TIMINGS", &timings);
    let emulator = Emulator::start()?;
    let config = config();
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
    ephemera_local::prepare(&config.shared, &clients, "work", false).await?;
    clients
        .s3()
        .put_object()
        .bucket(&config.shared.bucket)
        .key("blueprints/default.yaml")
        .body(BLUEPRINT.as_bytes().to_vec().into())
        .send()
        .await?;
    let registry = Arc::new(DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table));
    let mut accounts = Vec::new();
    for a in ACCOUNTS {
        let sdk = ephemera_aws::sites::assume_role(clients.sdk(), &role(a), "bench", None, None).await?;
        accounts.push(Clients::new(&sdk));
    }
    let accounts = Arc::new(accounts);

    let started = Instant::now();
    seed(&registry, &accounts, 0..10).await?;
    let small = create_path(&config, &clients, &registry, 1_000_000, &timings).await?;
    seed(&registry, &accounts, 10..ENVIRONMENTS).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    let large = create_path(&config, &clients, &registry, 2_000_000, &timings).await?;

    let child = std::process::Command::new(std::env::current_exe()?)
        .args(["--sweep", &emulator.endpoint])
        .output()
        .context("running the sweep's process")?;
    anyhow::ensure!(child.status.success(), "sweep failed: {}", String::from_utf8_lossy(&child.stderr));
    let sweep: serde_json::Value = serde_json::from_slice(&child.stdout)?;

    let ratio = large["create_ms_median"].as_f64().unwrap_or(0.0) / small["create_ms_median"].as_f64().unwrap_or(1.0);
    let admission =
        large["admission_ms_median"].as_f64().unwrap_or(0.0) / small["admission_ms_median"].as_f64().unwrap_or(1.0);
    let report = json!({
        "environments": ENVIRONMENTS,
        "accounts": ACCOUNTS.len(),
        "seed_seconds": (seed_seconds * 10.0).round() / 10.0,
        "at_10": small,
        "at_10000": large,
        "create_path_ratio": (ratio * 100.0).round() / 100.0,
        "admission_ratio": (admission * 100.0).round() / 100.0,
        "sweep": sweep,
        "targets": {"create_path_ratio": "<= 1.10", "sweep_dry_run_over_floor": "<= 1.0", "sweep_peak_mib": "<= 64"},
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    ephemera_tests::bench::write_report("scale.json", &report)
}

/// Environments `range` of the seed: a ready pull request environment placed in account
/// `i % 5`, holding its claim, with its stack there. Eight at a time.
async fn seed(
    registry: &Arc<DynamoRegistry>,
    accounts: &Arc<Vec<Clients>>,
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (registry, accounts, next, end) = (registry.clone(), accounts.clone(), next.clone(), range.end);
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= end {
                    return anyhow::Ok(());
                }
                one(&registry, &accounts, i).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

async fn one(registry: &DynamoRegistry, accounts: &[Clients], i: usize) -> anyhow::Result<()> {
    let repo = RepoName::parse(&format!("acme/app-{}", i / 1000))?;
    let number = i as u64 + 1;
    let env = EnvironmentName::for_pull_request(&repo, number)?;
    let account = ACCOUNTS[i % ACCOUNTS.len()];
    let change = opened_change(&repo, number, &env, Duration::days(30));
    registry.apply_change(&format!("bench-{i}"), &change).await?;
    let record = Environment::new(env.clone(), change.kind, "octocat", change.desired, change.at, change.expires_at);
    let held = claim(&record, Default::default(), None, 0.1, Some((account, 2500)));
    anyhow::ensure!(matches!(registry.claim(&env, &held).await?, Admit::Admitted(_)), "claim for {env}");
    let stack = accounts[i % ACCOUNTS.len()]
        .cloudformation()
        .create_stack()
        .stack_name(env.stack_name().as_str())
        .template_body(TEMPLATE)
        .tags(aws_sdk_cloudformation::types::Tag::builder().key("ephemera:managed-by").value("ephemera").build())
        .tags(aws_sdk_cloudformation::types::Tag::builder().key("ephemera:environment").value(env.as_str()).build())
        .send()
        .await?;
    let ready = Progress {
        status: Some(Status::Ready),
        stack_id: stack.stack_id,
        settled: true,
        placement: Some(Placement { account: Some(account.into()), region: REGION.into() }),
        ..Default::default()
    };
    registry.record_progress(&env, Stamp::new(1, Utc::now()), &ready).await?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2] * 10.0).round() / 10.0
}

/// `CREATES` new environments reconciled one after another, each timed; the admission alone
/// (the totals read and a claim, given back); and one registry scan, for comparison.
async fn create_path(
    config: &Config,
    clients: &Clients,
    registry: &DynamoRegistry,
    first: u64,
    timings: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let from = std::fs::metadata(timings).map(|m| m.len()).unwrap_or(0);
    let provisioner = platform::provisioner(&config.shared, &config.provisioner, clients);
    let repo = RepoName::parse("acme/new")?;
    let (mut creates, mut admissions) = (Vec::new(), Vec::new());
    for n in first..first + CREATES as u64 {
        let env = EnvironmentName::for_pull_request(&repo, n)?;
        let change = opened_change(&repo, n, &env, Duration::days(1));
        registry.apply_change(&format!("bench-new-{n}"), &change).await?;
        let t = Instant::now();
        let outcome = provisioner.reconcile(&env).await?;
        creates.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(format!("{outcome:?}").contains("Ready"), "{env}: {outcome:?}");

        let probe = EnvironmentName::for_pull_request(&RepoName::parse("acme/probe")?, n)?;
        let record =
            Environment::new(probe.clone(), change.kind, "octocat", change.desired, change.at, change.expires_at);
        let t = Instant::now();
        let totals = registry.totals().await?;
        let account = ephemera_domain::placement::choose(&config.provisioner.deploy.routes.default, &totals, 2500)
            .map(|t| t.account.clone())
            .unwrap_or_default();
        registry.claim(&probe, &claim(&record, Default::default(), None, 0.1, Some((&account, 2500)))).await?;
        admissions.push(t.elapsed().as_secs_f64() * 1000.0);
        registry.release(&probe).await?;
    }
    let operations = per_create(timings, from)?;
    let t = Instant::now();
    let rows = registry.list().await?.len();
    let scan_ms = t.elapsed().as_secs_f64() * 1000.0;
    Ok(json!({
        "registry_rows": rows,
        "create_ms_median": median(creates),
        "admission_ms_median": median(admissions),
        "registry_scan_ms": scan_ms.round(),
        "operations_per_create": operations,
    }))
}

/// The emulator's timings from byte `from` on, as `[operation, calls, ms]` per create, the
/// costliest first.
fn per_create(timings: &std::path::Path, from: u64) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read(timings).with_context(|| format!("reading {}", timings.display()))?;
    let mut by: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in String::from_utf8_lossy(&text[from as usize..]).lines() {
        let Some((operation, ms)) = line.rsplit_once(' ') else { continue };
        let entry = by.entry(operation.to_owned()).or_default();
        entry.0 += 1.0;
        entry.1 += ms.parse::<f64>().unwrap_or(0.0);
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let n = CREATES as f64;
    Ok(rows.into_iter().map(|(op, (calls, ms))| json!([op, round(calls / n), round(ms / n)])).collect())
}

/// The floor and a dry-run sweep over every account, in this process alone.
async fn sweep(endpoint: &str) -> anyhow::Result<serde_json::Value> {
    let config = config();
    let clients = Clients::new(&emulator_config(endpoint, REGION).await);
    let registry = DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table);
    let floor = Instant::now();
    let listings = ACCOUNTS.iter().map(|a| {
        let sdk = clients.sdk().clone();
        async move {
            let sdk = ephemera_aws::sites::assume_role(&sdk, &role(a), "floor", None, None).await?;
            let found = AwsResources::new(&sdk).found().await?.len();
            let stacks = CloudFormationStacks::new(aws_sdk_cloudformation::Client::new(&sdk)).list().await?.len();
            anyhow::Ok((found, stacks))
        }
    });
    let (listed, rows, holders) =
        tokio::join!(futures_util::future::join_all(listings), registry.list(), registry.holders());
    let floor_ms = floor.elapsed().as_secs_f64() * 1000.0;
    let listed: Vec<(usize, usize)> = listed.into_iter().collect::<Result<_, _>>()?;
    let (rows, holders) = (rows?.len(), holders?.len());

    let reaper = platform::reaper(&config.shared, &config.reaper, &clients, Arc::new(FixedClock::new(Utc::now())));
    ephemera_tests::bench::reset_peak_rss();
    let before_kib = ephemera_tests::bench::peak_rss_kib();
    let started = Instant::now();
    let dry = reaper.sweep(SweepOptions { dry_run: true, light: false }).await?;
    let dry_ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak_kib = ephemera_tests::bench::peak_rss_kib();
    let accounts: BTreeMap<String, serde_json::Value> = dry
        .accounts
        .iter()
        .map(|a| {
            (
                a.account.clone(),
                json!({"stacks": a.stacks, "resources": a.resources, "environments": a.environments, "error": a.error}),
            )
        })
        .collect();
    Ok(json!({
        "registry_rows": rows,
        "claims": holders,
        "ledger": dry.ledger,
        "listed_per_account": listed.iter().map(|(f, s)| json!({"resources": f, "stacks": s})).collect::<Vec<_>>(),
        "floor_ms": floor_ms.round(),
        "dry_run_ms": dry_ms.round(),
        "dry_run_over_floor": ((dry_ms / floor_ms) * 100.0).round() / 100.0,
        "planned": dry.actions,
        "errors": dry.errors.len(),
        "accounts": accounts,
        "rss_mib_before": ephemera_tests::bench::mib(before_kib),
        "peak_rss_mib": ephemera_tests::bench::mib(peak_kib),
    }))
}
