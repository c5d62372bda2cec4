//! The load test against a local server whose latency and error rate are known: the computed
//! p95, average and error rate match them within tolerance, and a slowed-down server trips the
//! 20% regression gate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ephemera_domain::perf::{compare, Gate, LoadPlan, Measurement, Scenario};
use ephemera_probe::{LoadRequest, TargetPolicy};
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
    measure_with(preview, &Scenario::get("/items"), None, 50).await
}

async fn measure_with(preview: &str, scenario: &Scenario, api_key: Option<&str>, rate: u32) -> Measurement {
    let policy = TargetPolicy { allowed_hosts: vec!["127.0.0.1".into()] };
    let request = LoadRequest::new(&policy, preview, scenario, api_key).unwrap();
    let plan = LoadPlan { rate, duration_secs: 2, concurrency: 32 };
    let http = ephemera_probe::client(Duration::from_secs(5), ephemera_github::tls_config());
    let samples = ephemera_probe::load(&http, &request, &plan).await;
    Measurement::from_samples(&samples, chrono::Utc::now()).unwrap()
}

const KEY: &str = "da2-abcdefghijklmnopqrstuvwxyz";

/// A GraphQL endpoint as AppSync answers: 401 without the API key, `errors` for a query it
/// cannot parse, `data` otherwise. Counts the requests that carried the key.
async fn graphql_server(with_key: Arc<AtomicU64>) -> String {
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let with_key = with_key.clone();
            async move {
                if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
                    let body =
                        r#"{"errors":[{"errorType":"UnauthorizedException","message":"You are not authorized"}]}"#;
                    return (axum::http::StatusCode::UNAUTHORIZED, body.to_owned());
                }
                with_key.fetch_add(1, Ordering::SeqCst);
                let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                match parsed["query"].as_str() {
                    Some(q) if q.contains("__typename") => {
                        (axum::http::StatusCode::OK, r#"{"data":{"__typename":"Query"}}"#.to_owned())
                    }
                    _ => (axum::http::StatusCode::OK, r#"{"errors":[{"message":"Validation error"}]}"#.to_owned()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_scenario_speaks_graphql_with_the_environments_api_key() {
    init_logs();
    let with_key = Arc::new(AtomicU64::new(0));
    let endpoint = graphql_server(with_key.clone()).await;
    let m = measure_with(&endpoint, &Scenario::graphql(), Some(KEY), 20).await;
    assert_eq!((m.metrics.http_reqs.total, m.metrics.errors.rate), (40, 0.0), "{m:?}");
    assert_eq!(with_key.load(Ordering::SeqCst), 40, "every request carried the key");
    // A wrong key: every request is refused, and counted as failed.
    let m = measure_with(&endpoint, &Scenario::graphql(), Some("da2-wrong"), 20).await;
    assert_eq!(m.metrics.errors.rate, 1.0);
    // GraphQL errors in a 200 are failures too.
    let bad_query = Scenario { body: Some(r#"{"query":"{ nope }"}"#.into()), ..Scenario::graphql() };
    assert_eq!(measure_with(&endpoint, &bad_query, Some(KEY), 20).await.metrics.errors.rate, 1.0);
    // A bare GET (the old default) is not what this endpoint serves.
    assert_eq!(measure_with(&endpoint, &Scenario::get("/graphql"), None, 20).await.metrics.errors.rate, 1.0);
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
