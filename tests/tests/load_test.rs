//! The load test against a local server whose latency and error rate are known: the computed
//! p95, average and error rate match them within tolerance, and a slowed-down server trips the
//! 20% regression gate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::perf::{compare, Gate, LoadPlan, Measurement};
use ephemera_probe::TargetPolicy;
use ephemera_tests::init_logs;

/// Answers after `delay_ms`; every tenth request (by arrival) is a 500.
async fn server(delay_ms: u64) -> String {
    let count = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().fallback(move || {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            if n.is_multiple_of(10) {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom")
            } else {
                (axum::http::StatusCode::OK, "ok")
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn measure(preview: &str) -> Measurement {
    let policy = TargetPolicy { allowed_hosts: vec!["127.0.0.1".into()] };
    let url = policy.target(preview, "/items").unwrap();
    let plan = LoadPlan { path: "/items".into(), rate: 50, duration_secs: 2, concurrency: 32 };
    let http = ephemera_probe::client(Duration::from_secs(5), ephemera_github::tls_config());
    let samples = ephemera_probe::load(&http, &url, &plan).await;
    Measurement::from_samples(&samples, chrono::Utc::now()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measurements_match_a_server_of_known_latency_and_error_rate() {
    init_logs();
    let m = measure(&server(40).await).await;
    let d = m.metrics.http_req_duration;
    assert_eq!(m.metrics.http_reqs.total, 100, "50 requests a second for 2 seconds");
    assert_eq!(m.metrics.errors.rate, 0.1, "every tenth request fails");
    // Never faster than the server's delay; loopback and scheduling add a little.
    assert!((40.0..80.0).contains(&d.avg), "avg {d:?}");
    assert!((40.0..120.0).contains(&d.p95) && d.p95 >= d.avg, "p95 {d:?}");

    // The same service, twice as slow: the gate trips on latency.
    let slow = measure(&server(100).await).await;
    let verdict = compare(&slow, Some(&m), Gate { max_regression: 0.2, max_error_rate: 0.2 });
    assert!(!verdict.passed(), "{verdict:?}");
    assert!(verdict.failures.iter().any(|f| f.contains("P95 Latency")), "{:?}", verdict.failures);
    assert!(verdict.failures.iter().any(|f| f.contains("Avg Latency")), "{:?}", verdict.failures);
    assert!(verdict.markdown().contains("❌"));
    // And the default error limit (1%) fails a 10% error rate on its own.
    assert!(compare(&m, Some(&m), Gate::default()).failures.iter().any(|f| f.contains("error rate")));
}
