//! `make bench`: Ephemera's speed and size, each figure next to its floor measured in the same
//! run, written to `bench/results.json` and printed as a Markdown table.
//!
//! - Webhook acknowledgement: latency (p50, p99) and throughput of signed deliveries over HTTP
//!   to the intake, against the emulator's own time for the same writes made directly (the
//!   registry transaction, the read-back, the EventBridge put). Target: under 20% overhead.
//! - Webhook → CreateStack and close → DeleteStack, through the local runner (its SQS worker
//!   included), timed where the calls reach the emulator. Target: p99 under 1 s.
//! - Each Lambda binary under a local Lambda Runtime API, ten fresh processes each: process
//!   start to initialised (first `/next`) and to the first event handled, less the same
//!   event's warm handling time in that process (the cold start: what being cold costs, the
//!   emulator's own answer time taken out); peak memory (VmHWM) after 200 events; binary size
//!   (the arm64 `sam build` output when present, else this host's). Targets: 20 ms, 32 MB,
//!   10 MB.
//! - The reaper over 2,000 environments comes from `make bench-reaper` (`bench/reaper.json`), which
//!   measures its own floor in its run.
//!
//! Lambda binaries are taken from `target/measure/` (`make bench` builds them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use ephemera_app::events::PlatformEvent;
use ephemera_app::ports::{registry_traits::*, Change, EventBus};
use ephemera_aws::{emulator_config, DynamoRegistry, EventBridgeBus};
use ephemera_domain::{Desired, EnvironmentKind, EnvironmentName, EventOrder, RepoName};
use ephemera_tests::faults::{FaultProxy, Faults};
use ephemera_tests::{edit, fixtures, init_logs, sign, test_config, workspace_root, Emulator, REGION, SECRET};
use ephemera_wiring::{platform, Clients};
use serde_json::{json, Value};

fn pct(sorted: &[f64], p: f64) -> f64 {
    ephemera_domain::perf::percentile(sorted, p)
}

fn summary(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({ "n": ms.len(), "p50_ms": round(pct(&ms, 50.0)), "p99_ms": round(pct(&ms, 99.0)), "max_ms": round(*ms.last().unwrap_or(&0.0)) })
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn opened(n: u64) -> Vec<u8> {
    edit(fixtures::OPENED, &[("number", json!(n)), ("pull_request.number", json!(n))])
}

fn closed(n: u64) -> Vec<u8> {
    edit(fixtures::CLOSED, &[("number", json!(n)), ("pull_request.number", json!(n))])
}

async fn post_delivery(http: &reqwest::Client, url: &str, id: &str, body: &[u8]) -> u16 {
    http.post(url)
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body))
        .body(body.to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The intake's writes, made directly: what the emulator itself costs per delivery.
async fn direct_writes(registry: &DynamoRegistry, bus: &EventBridgeBus, n: u64, delivery: &str) {
    let repo = RepoName::parse("acme/todo-app").unwrap();
    let name = EnvironmentName::for_pull_request(&repo, n).unwrap();
    let now = chrono::Utc::now();
    let change = Change {
        repository: Some(repo),
        pull_request: Some(n),
        commit: Some(fixtures::HEAD_OPENED.into()),
        head_ref: Some("feature".into()),
        head_commit: Some(fixtures::HEAD_OPENED.into()),
        base_ref: Some("main".into()),
        source: Some(ephemera_domain::CommitSource::Head),
        ..Change::new(
            name.clone(),
            EnvironmentKind::Pr,
            "kyle-dev",
            Desired::Up,
            EventOrder::new(now.timestamp(), EventOrder::RANK_OPEN),
            now + chrono::Duration::days(7),
            now,
        )
    };
    registry.apply_change(delivery, &change).await.unwrap();
    let env = registry.get(&name).await.unwrap().unwrap();
    bus.publish(&[PlatformEvent::requested(&env)]).await.unwrap();
}

/// Empties the registry table. The emulator's transactions slow down (and its memory grows)
/// with the table's size, which DynamoDB's do not, so the measured batches each start small.
async fn clear_table(clients: &Clients, table: &str) {
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
    let items = clients.dynamodb().scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
    for chunk in items.chunks(25) {
        let deletes: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                let key = item
                    .iter()
                    .filter(|(k, _)| *k == "pk" || *k == "sk")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                WriteRequest::builder()
                    .delete_request(DeleteRequest::builder().set_key(Some(key)).build().unwrap())
                    .build()
            })
            .collect();
        clients.dynamodb().batch_write_item().request_items(table, deletes).send().await.unwrap();
    }
}

async fn webhook_ack() -> Value {
    let emulator = Emulator::start().unwrap();
    let config = test_config(&[]);
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
    ephemera_local::prepare(&config.shared, &clients, "work", false).await.unwrap();
    let registry = DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table);
    let bus = EventBridgeBus::new(clients.eventbridge().clone(), &config.shared.bus);
    let secrets = platform::webhook_secrets(&config.webhook, &clients).await.unwrap();
    let app = ephemera_http::router(ephemera_http::AppState {
        intake: Some(Arc::new(platform::intake(&config.shared, &config.webhook, &clients, Some(secrets), None))),
        selfservice: None,
        dashboard: None,
        dashboard_open: false,
        identity: ephemera_http::Identity::ApiGateway,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/github", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    // Warm both paths up.
    for i in 0..20 {
        direct_writes(&registry, &bus, 90_000 + i, &format!("warm-floor-{i}")).await;
        post_delivery(&http, &url, &format!("warm-{i}"), &opened(80_000 + i)).await;
    }
    // 1,000 pairs: the p99 of 300 was the third-slowest answer, decided by whichever series an
    // emulator pause happened to land on.
    const N: u64 = 1_000;
    // Interleaved, so both see the same emulator state and machine load; in batches of 50,
    // each on an emptied table.
    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    for i in 0..N {
        if i % 50 == 0 {
            clear_table(&clients, &config.shared.table).await;
        }
        let t = Instant::now();
        direct_writes(&registry, &bus, 10_000 + i, &format!("floor-{i}")).await;
        floor.push(t.elapsed().as_secs_f64() * 1e3);
        let body = opened(20_000 + i);
        let t = Instant::now();
        assert_eq!(post_delivery(&http, &url, &format!("d-{i}"), &body).await, 202);
        ours.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Throughput: 8 at a time, 4 batches of 100 each on an emptied table.
    const M: u64 = 100;
    let mut set = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let (registry, bus) = (Arc::new(registry), Arc::new(bus));
    let (mut floor_time, mut our_time) = (Duration::ZERO, Duration::ZERO);
    for batch in 0..4u64 {
        clear_table(&clients, &config.shared.table).await;
        let t = Instant::now();
        for i in 0..M {
            let p = sem.clone().acquire_owned().await.unwrap();
            let (r, b) = (registry.clone(), bus.clone());
            let n = 30_000 + batch * M + i;
            set.spawn(async move {
                let _p = p;
                direct_writes(&r, &b, n, &format!("tf-{n}")).await
            });
        }
        while set.join_next().await.is_some() {}
        floor_time += t.elapsed();
        clear_table(&clients, &config.shared.table).await;
        let t = Instant::now();
        for i in 0..M {
            let p = sem.clone().acquire_owned().await.unwrap();
            let (http, url) = (http.clone(), url.clone());
            let n = 40_000 + batch * M + i;
            set.spawn(async move {
                let _p = p;
                assert_eq!(post_delivery(&http, &url, &format!("t-{n}"), &opened(n)).await, 202);
            });
        }
        while set.join_next().await.is_some() {}
        our_time += t.elapsed();
    }
    let floor_rps = (4 * M) as f64 / floor_time.as_secs_f64();
    let rps = (4 * M) as f64 / our_time.as_secs_f64();
    let (f, o) = (summary(floor), summary(ours));
    let over = |k: &str| round((o[k].as_f64().unwrap() / f[k].as_f64().unwrap() - 1.0) * 100.0);
    json!({
        "floor": f, "ephemera": o,
        "overhead_pct": { "p50": over("p50_ms"), "p99": over("p99_ms") },
        "throughput_rps": { "floor": round(floor_rps), "ephemera": round(rps) },
        "target": "overhead under 20%",
    })
}

async fn webhook_to_stack_calls() -> Value {
    init_logs();
    let (p, proxy): (ephemera_tests::Platform, FaultProxy) = ephemera_tests::Platform::start_faulty(&[], 1).await;
    proxy.set(Faults::NONE);
    let repo = RepoName::parse("acme/todo-app").unwrap();
    let (mut create, mut delete) = (Vec::new(), Vec::new());
    async fn wait_seen(proxy: &FaultProxy, key: &str) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(t) = proxy.stats().first_seen.get(key) {
                return *t;
            }
            assert!(Instant::now() < deadline, "{key} never reached the emulator");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // The first pull request warms the worker and the emulator up; it is not counted.
    for n in 0..41u64 {
        let number = 500 + n;
        let stack = EnvironmentName::for_pull_request(&repo, number).unwrap().stack_name();
        let t = Instant::now();
        assert_eq!(p.deliver("pull_request", &format!("o-{n}"), &opened(number)).await.0, 202);
        let created = wait_seen(&proxy, &format!("CreateStack {stack}")).await.duration_since(t).as_secs_f64() * 1e3;
        p.wait_for(EnvironmentName::for_pull_request(&repo, number).unwrap().as_str(), ephemera_domain::Status::Ready)
            .await;
        let t = Instant::now();
        assert_eq!(p.deliver("pull_request", &format!("c-{n}"), &closed(number)).await.0, 202);
        let deleted = wait_seen(&proxy, &format!("DeleteStack {stack}")).await.duration_since(t).as_secs_f64() * 1e3;
        if n > 0 {
            create.push(created);
            delete.push(deleted);
        }
    }
    p.stop().await;
    json!({ "webhook_to_create_stack": summary(create), "close_to_delete_stack": summary(delete), "target": "p99 under 1 s (local mode)" })
}

/// A local Lambda Runtime API serving the same event again and again.
#[derive(Default)]
struct Runtime {
    event: Value,
    first_next: Option<Instant>,
    served_at: HashMap<u64, Instant>,
    /// When each response came, and how long after its event was handed out.
    handled: Vec<(Instant, f64)>,
    errors: Vec<String>,
    served: u64,
}

impl Runtime {
    fn record(&mut self, id: &str) {
        let now = Instant::now();
        let took = id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.served_at.get(&id))
            .map(|t| now.duration_since(*t).as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN);
        self.handled.push((now, took));
    }
}

async fn next(State(rt): State<Arc<Mutex<Runtime>>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (id, body) = {
        let mut r = rt.lock().unwrap();
        r.first_next.get_or_insert_with(Instant::now);
        r.served += 1;
        let id = r.served;
        r.served_at.insert(id, Instant::now());
        (id, r.event.to_string())
    };
    let deadline = (chrono::Utc::now() + chrono::Duration::seconds(60)).timestamp_millis();
    (
        [
            ("lambda-runtime-aws-request-id", id.to_string()),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench".into()),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".into()),
            ("content-type", "application/json".into()),
        ],
        body,
    )
        .into_response()
}

async fn response(State(rt): State<Arc<Mutex<Runtime>>>, Path(id): Path<String>) -> &'static str {
    rt.lock().unwrap().record(&id);
    "{}"
}

async fn error(State(rt): State<Arc<Mutex<Runtime>>>, Path(id): Path<String>, body: String) -> &'static str {
    let mut r = rt.lock().unwrap();
    r.errors.push(body);
    r.record(&id);
    "{}"
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One process of a Lambda binary, from its start until it has handled `events` events.
struct Run {
    init_ms: f64,
    first_event_ms: f64,
    /// Handling time of every event after the first.
    warm_ms: Vec<f64>,
    handled: usize,
    errors: usize,
    peak_kib: u64,
}

async fn run_once(path: &std::path::Path, event: &Value, env: &[(&str, &str)], events: usize) -> Run {
    let rt = Arc::new(Mutex::new(Runtime { event: event.clone(), ..Default::default() }));
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cmd = std::process::Command::new(path);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{}: {e} (make bench builds it)", path.display()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while rt.lock().unwrap().handled.len() < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let peak_kib = vm_hwm_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    let r = rt.lock().unwrap();
    let since = |t: Option<&Instant>| t.map_or(f64::NAN, |t| t.duration_since(start).as_secs_f64() * 1e3);
    Run {
        init_ms: since(r.first_next.as_ref()),
        first_event_ms: since(r.handled.first().map(|(t, _)| t)),
        warm_ms: r.handled.iter().skip(1).map(|(_, took)| *took).collect(),
        handled: r.handled.len(),
        errors: r.errors.len(),
        peak_kib,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    pct(&xs, 50.0)
}

/// Cold starts of one binary: after one run that is not counted (it applies the event's effect,
/// so that every counted run does the same work, and warms the page cache and the emulator),
/// `COLD_RUNS` fresh
/// processes each handle the event once cold and then `WARM_EVENTS` times warm. The cold start
/// is the first event's time from process start less the same process's warm handling time:
/// what being cold costs, with the emulator's own answer time taken out. Then one process
/// handles 200 events for its peak memory.
async fn lambda(bin: &str, sam_name: &str, event: &[u8], emulator: &str, extra: &[(&str, &str)]) -> Value {
    const COLD_RUNS: usize = 10;
    const WARM_EVENTS: usize = 20;
    const MEMORY_EVENTS: usize = 200;
    let path = workspace_root().join("target/measure").join(bin);
    let event: Value = serde_json::from_slice(event).unwrap();
    let mut env = vec![
        ("AWS_LAMBDA_FUNCTION_NAME", bin),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_ENDPOINT_URL", emulator),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("EPHEMERA_GITHUB_WEBHOOK_SECRET", SECRET),
        ("EPHEMERA_BUCKET", "ephemera-test"),
        ("RUST_LOG", "warn"),
    ];
    env.extend_from_slice(extra);
    // Twice: the first applies the event, the second makes the same requests as every counted
    // start (the emulator's first answer on a path can be slow: 60 ms once, for the webhook).
    run_once(&path, &event, &env, 2).await;
    let mut runs = Vec::with_capacity(COLD_RUNS);
    for _ in 0..COLD_RUNS {
        runs.push(run_once(&path, &event, &env, 1 + WARM_EVENTS).await);
    }
    let memory = run_once(&path, &event, &env, MEMORY_EVENTS).await;
    let arm64 = workspace_root().join(format!(".aws-sam/build/{sam_name}/bootstrap"));
    let size = |p: &PathBuf| std::fs::metadata(p).ok().map(|m| round(m.len() as f64 / 1e6));
    let cold: Vec<f64> = runs.iter().map(|r| r.first_event_ms - median(r.warm_ms.clone())).collect();
    let inits: Vec<f64> = runs.iter().map(|r| r.init_ms).collect();
    json!({
        "runs": COLD_RUNS,
        "init_ms": round(median(inits.clone())),
        "init_max_ms": round(inits.iter().copied().fold(f64::NAN, f64::max)),
        "first_event_handled_ms": round(median(runs.iter().map(|r| r.first_event_ms).collect())),
        "warm_event_p50_ms": round(median(runs.iter().flat_map(|r| r.warm_ms.iter().copied()).collect())),
        "cold_start_ms": round(median(cold.clone())),
        "cold_start_max_ms": round(cold.iter().copied().fold(f64::NAN, f64::max)),
        "cold_start_runs_ms": cold.iter().map(|c| round(*c)).collect::<Vec<_>>(),
        "events": runs.iter().map(|r| r.handled).sum::<usize>() + memory.handled,
        "errors": runs.iter().map(|r| r.errors).sum::<usize>() + memory.errors,
        "peak_rss_mib": round(memory.peak_kib as f64 / 1024.0),
        "size_mb_arm64": size(&arm64),
        "size_mb_host": size(&path),
    })
}

async fn lambdas() -> Value {
    let emulator = Emulator::start().unwrap();
    let config = test_config(&[]);
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
    ephemera_local::prepare(&config.shared, &clients, "work", false).await.unwrap();
    let gh = ephemera_tests::github::FakeGitHub::start().await;
    let e = &emulator.endpoint;
    json!({
        "webhook": lambda("webhook", "WebhookFunction", include_bytes!("../../../events/apigw/webhook-pull-request-opened.json"), e, &[]).await,
        "provisioner": lambda("provisioner", "ProvisionerFunction", include_bytes!("../../../events/sqs/provisioner-batch.json"), e, &[]).await,
        "selfservice": lambda("selfservice", "SelfServiceFunction", include_bytes!("../../../events/apigw/selfservice-list.json"), e, &[]).await,
        "stack-events": lambda("stack-events", "StackEventsFunction", include_bytes!("../../../events/eventbridge/stack-status-change.json"), e, &[]).await,
        "notifier": lambda("notifier", "NotifierFunction", include_bytes!("../../../events/eventbridge/environment-ready.json"), e,
            &[("EPHEMERA_GITHUB_TOKEN", "bench"), ("EPHEMERA_GITHUB_API_URL", &gh.url)]).await,
        "reaper": lambda("reaper", "ReaperFunction", include_bytes!("../../../events/eventbridge/reaper-light-input.json"), e, &[]).await,
        "targets": { "cold_start_ms": 20, "size_mb": 10, "peak_rss_mib": 32 },
    })
}

fn table(r: &Value) -> String {
    let w = &r["webhook_ack"];
    let s = &r["stack_calls"];
    let mut t = String::from("| measure | Ephemera | floor / target |\n|---|---|---|\n");
    t += &format!(
        "| webhook ack p50 / p99 | {} / {} ms | emulator's own writes {} / {} ms: overhead {}% / {}% (target < 20%) |\n",
        w["ephemera"]["p50_ms"], w["ephemera"]["p99_ms"], w["floor"]["p50_ms"], w["floor"]["p99_ms"],
        w["overhead_pct"]["p50"], w["overhead_pct"]["p99"]
    );
    t += &format!(
        "| webhook throughput (8 concurrent) | {} req/s | {} writes/s direct |\n",
        w["throughput_rps"]["ephemera"], w["throughput_rps"]["floor"]
    );
    t += &format!(
        "| webhook → CreateStack p50 / p99 | {} / {} ms | target p99 < 1000 ms |\n",
        s["webhook_to_create_stack"]["p50_ms"], s["webhook_to_create_stack"]["p99_ms"]
    );
    t += &format!(
        "| close → DeleteStack p50 / p99 | {} / {} ms | target p99 < 1000 ms |\n",
        s["close_to_delete_stack"]["p50_ms"], s["close_to_delete_stack"]["p99_ms"]
    );
    for f in ["webhook", "provisioner", "selfservice", "stack-events", "notifier", "reaper"] {
        let l = &r["lambdas"][f];
        t += &format!(
            "| `{f}`: cold start (init); first event / warm p50; peak RSS; size arm64 (host) | {} ({}) ms; {} / {} ms; {} MiB; {} ({}) MB | 20 ms; 32 MiB; 10 MB |\n",
            l["cold_start_ms"], l["init_ms"], l["first_event_handled_ms"], l["warm_event_p50_ms"], l["peak_rss_mib"],
            l["size_mb_arm64"], l["size_mb_host"]
        );
    }
    if let Some(reaper) = r.get("reaper_2000_stacks").filter(|v| !v.is_null()) {
        t += &format!(
            "| reaper, 2,000 environments of every kind: dry run / real sweep | {} / {} ms | floor (listing calls) {} ms |\n",
            reaper["dry_run"]["wall_ms"], reaper["real"]["wall_ms"], reaper["floor_ms"]
        );
    }
    t
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logs();
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "build": "profile measure (release, thin LTO off) for Lambda binaries; the bench itself as built",
        "when": chrono::Utc::now().to_rfc3339(),
    });
    if std::env::args().nth(1).as_deref() == Some("lambdas") {
        // Only the Lambda binaries, printed and not written: for working on cold starts.
        println!("{}", serde_json::to_string_pretty(&lambdas().await)?);
        return Ok(());
    }
    eprintln!("webhook acknowledgement...");
    let webhook_ack = webhook_ack().await;
    eprintln!("webhook to stack calls...");
    let stack_calls = webhook_to_stack_calls().await;
    eprintln!("Lambda binaries...");
    let lambdas = lambdas().await;
    let reaper: Value = std::fs::read_to_string(workspace_root().join("bench/reaper.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let results = json!({
        "machine": machine,
        "webhook_ack": webhook_ack,
        "stack_calls": stack_calls,
        "lambdas": lambdas,
        "reaper_2000_stacks": reaper,
    });
    let path = workspace_root().join("bench/results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")?;
    println!("{}", table(&results));
    println!("written to {}", path.display());
    Ok(())
}
