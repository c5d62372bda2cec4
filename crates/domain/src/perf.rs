//! Load-test results, the repository's baseline, and the regression gate.
//!
//! A result is stored in the shape of the repository's `baseline.json`:
//!
//! ```json
//! { "timestamp": "2025-12-10T12:00:00.000Z",
//!   "metrics": { "http_req_duration": { "p95": 387.57, "avg": 275.01 },
//!                "http_reqs": { "total": 750 }, "errors": { "rate": 0.0093 } } }
//! ```
//!
//! Durations are milliseconds; the error rate is a fraction (0.0093 is 0.93%).

use std::fmt::Write;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub timestamp: DateTime<Utc>,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub http_req_duration: Durations,
    pub http_reqs: Requests,
    pub errors: Errors,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    pub p95: f64,
    pub avg: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    pub total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    pub rate: f64,
}

/// One request of a load test: how long it took, and whether it failed (a transport error, or
/// a status of 500 or more).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub millis: f64,
    pub failed: bool,
}

impl Measurement {
    /// Summarises samples: average and 95th percentile latency (nearest rank), total requests
    /// and the fraction that failed. `None` without samples.
    pub fn from_samples(samples: &[Sample], at: DateTime<Utc>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|s| s.millis).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let avg = ms.iter().sum::<f64>() / n as f64;
        let p95 = percentile(&ms, 95.0);
        let failed = samples.iter().filter(|s| s.failed).count();
        Some(Self {
            timestamp: at,
            metrics: Metrics {
                http_req_duration: Durations { p95: round2(p95), avg: round2(avg) },
                http_reqs: Requests { total: n as u64 },
                errors: Errors { rate: (failed as f64 / n as f64 * 1e4).round() / 1e4 },
            },
        })
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The gate: how much slower than the baseline is too slow, and how many errors are too many.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gate {
    /// A latency more than this fraction above the baseline's is a regression (0.2 = 20%).
    pub max_regression: f64,
    /// An error rate above this fraction fails, whatever the baseline.
    pub max_error_rate: f64,
}

impl Default for Gate {
    fn default() -> Self {
        Self { max_regression: 0.2, max_error_rate: 0.01 }
    }
}

/// One line of the comparison table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub metric: &'static str,
    pub value: String,
    pub baseline: Option<String>,
    /// Relative change against the baseline (0.25 = 25% more).
    pub delta: Option<f64>,
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub rows: Vec<Row>,
    /// Why the gate failed, one line each; empty if it passed.
    pub failures: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The load test could not be run: the reason is the one failure, and nothing was measured.
    pub fn not_run(reason: impl Into<String>) -> Self {
        Self { rows: Vec::new(), failures: vec![reason.into()] }
    }

    pub fn was_run(&self) -> bool {
        !self.rows.is_empty()
    }

    /// One line for a commit status (GitHub allows 140 characters).
    pub fn summary(&self) -> String {
        let s = if self.passed() {
            let p95 = self.rows.first().map(|r| r.value.as_str()).unwrap_or("?");
            format!("No regression: p95 {p95}")
        } else if !self.was_run() {
            format!("Not measured: {}", self.failures.join("; "))
        } else {
            format!("Regression: {}", self.failures.join("; "))
        };
        s.chars().take(140).collect()
    }

    /// A Markdown table of the metrics with their deltas against the baseline.
    pub fn markdown(&self) -> String {
        let mut out = String::from("| Metric | Value | Baseline | Change |\n|--------|-------|----------|--------|\n");
        for r in &self.rows {
            let delta = match r.delta {
                Some(d) => format!("{:+.1}%{}", d * 100.0, if r.failed { " ❌" } else { "" }),
                None if r.failed => "❌".to_owned(),
                None => "–".to_owned(),
            };
            let _ =
                writeln!(out, "| {} | {} | {} | {} |", r.metric, r.value, r.baseline.as_deref().unwrap_or("–"), delta);
        }
        out
    }
}

fn delta(now: f64, before: f64) -> Option<f64> {
    (before > 0.0).then(|| (now - before) / before)
}

/// Compares a measurement with the baseline (if the repository has one) under `gate`.
pub fn compare(now: &Measurement, baseline: Option<&Measurement>, gate: Gate) -> Verdict {
    let m = &now.metrics;
    let b = baseline.map(|b| &b.metrics);
    let mut failures = Vec::new();
    let mut latency = |metric: &'static str, value: f64, before: Option<f64>| {
        let d = before.and_then(|before| delta(value, before));
        let failed = d.is_some_and(|d| d > gate.max_regression);
        if failed {
            failures.push(format!(
                "{metric} {value:.2}ms is {:.0}% above the baseline {:.2}ms",
                d.unwrap_or_default() * 100.0,
                before.unwrap_or_default()
            ));
        }
        Row { metric, value: format!("{value:.2}ms"), baseline: before.map(|v| format!("{v:.2}ms")), delta: d, failed }
    };
    let p95 = latency("P95 Latency", m.http_req_duration.p95, b.map(|b| b.http_req_duration.p95));
    let avg = latency("Avg Latency", m.http_req_duration.avg, b.map(|b| b.http_req_duration.avg));
    let total = Row {
        metric: "Total Requests",
        value: m.http_reqs.total.to_string(),
        baseline: b.map(|b| b.http_reqs.total.to_string()),
        delta: b.and_then(|b| delta(m.http_reqs.total as f64, b.http_reqs.total as f64)),
        failed: false,
    };
    let error_failed = m.errors.rate > gate.max_error_rate;
    if error_failed {
        failures.push(format!(
            "error rate {:.2}% is over the {:.2}% limit",
            m.errors.rate * 100.0,
            gate.max_error_rate * 100.0
        ));
    }
    let errors = Row {
        metric: "Error Rate",
        value: format!("{:.2}%", m.errors.rate * 100.0),
        baseline: b.map(|b| format!("{:.2}%", b.errors.rate * 100.0)),
        delta: None,
        failed: error_failed,
    };
    Verdict { rows: vec![p95, avg, total, errors], failures }
}

/// A smoke check: `GET path` must answer `expect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeCheck {
    pub path: String,
    pub expect: u16,
}

impl SmokeCheck {
    /// Parses `"/=200,/health=200"`.
    pub fn parse_list(s: &str) -> Result<Vec<SmokeCheck>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (path, code) = pair.rsplit_once('=').ok_or_else(|| format!("{pair:?} is not PATH=STATUS"))?;
                let expect: u16 =
                    code.trim().parse().map_err(|_| format!("{code:?} in {pair:?} is not a status code"))?;
                if !(100..=599).contains(&expect) {
                    return Err(format!("{expect} in {pair:?} is not an HTTP status"));
                }
                if !is_preview_path(path) {
                    return Err(format!("{path:?} must be a path starting with a single '/'"));
                }
                Ok(SmokeCheck { path: path.trim().to_owned(), expect })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeResult {
    pub path: String,
    pub expect: u16,
    /// The status received, or None if the request failed.
    pub got: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SmokeResult {
    pub fn passed(&self) -> bool {
        self.got == Some(self.expect)
    }
}

/// What each load-test request is. A repository may keep its own in the platform bucket
/// (`scenarios/{owner}/{repo}.json`); otherwise the GraphQL endpoint is asked for
/// `{ __typename }` with the environment's API key, as its clients would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD`.
    #[serde(default = "Scenario::default_method")]
    pub method: String,
    /// On the preview's own host; by default the preview URL's own path (AppSync's `/graphql`).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Send the environment's API key (its `GraphQLApiKey` output) as `x-api-key`.
    #[serde(default = "Scenario::yes")]
    pub api_key: bool,
}

/// The header an AppSync API key goes in.
pub const API_KEY_HEADER: &str = "x-api-key";

impl Scenario {
    const METHODS: [&'static str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

    fn default_method() -> String {
        "POST".into()
    }
    fn yes() -> bool {
        true
    }

    /// The default: a GraphQL query on the preview's endpoint, with its API key.
    pub fn graphql() -> Self {
        Self {
            method: "POST".into(),
            path: None,
            headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
            body: Some(r#"{"query":"query { __typename }"}"#.into()),
            api_key: true,
        }
    }

    /// A bare `GET` of the preview's own URL: the default for a preview that is not an API.
    pub fn plain_get() -> Self {
        Self { path: None, ..Self::get("/") }
    }

    /// Whether the scenario can be sent with `api_key`: one that sends the key needs one.
    pub fn check_key(&self, api_key: Option<&str>) -> Result<(), String> {
        if self.api_key && api_key.is_none() {
            return Err("the scenario sends the API key, but the environment has none \
                        (no GraphQLApiKey output, no GraphQL API)"
                .into());
        }
        Ok(())
    }

    /// A bare `GET` of `path` (`EPHEMERA_LOAD_PATH`), without the key.
    pub fn get(path: &str) -> Self {
        Self { method: "GET".into(), path: Some(path.into()), headers: BTreeMap::new(), body: None, api_key: false }
    }

    /// A repository's scenario file; the error names what to change.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Scenario = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !Self::METHODS.contains(&s.method.as_str()) {
            return Err(format!("method {:?} is not one of {}", s.method, Self::METHODS.join(", ")));
        }
        if let Some(p) = &s.path {
            if !is_preview_path(p) {
                return Err(format!("path {p:?} must start with a single '/'"));
            }
        }
        for name in s.headers.keys() {
            let lower = name.to_ascii_lowercase();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                return Err(format!("header {name:?} is not a header name"));
            }
            if ["host", API_KEY_HEADER, "authorization", "cookie"].contains(&lower.as_str()) {
                return Err(format!(
                    "header {name:?} may not be set by a scenario (the API key is sent with \"api_key\": true)"
                ));
            }
        }
        if s.body.is_some() && matches!(s.method.as_str(), "GET" | "HEAD") {
            return Err(format!("a {} request has no body", s.method));
        }
        Ok(s)
    }
}

/// Whether `p` is a path on the preview's own host: it starts with one `/` (`//` would name
/// another host).
pub fn is_preview_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//")
}

/// A short load test: `rate` requests a second for `duration_secs`, at most `concurrency` in
/// flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadPlan {
    pub rate: u32,
    pub duration_secs: u32,
    pub concurrency: u32,
}

impl LoadPlan {
    pub const MAX_RATE: u32 = 100;
    pub const MAX_DURATION_SECS: u32 = 120;
    pub const MAX_CONCURRENCY: u32 = 64;

    /// The plan within the platform's bounds, so a configuration error cannot turn the load
    /// test into a denial of service or outlast the function's timeout.
    pub fn bounded(self) -> Self {
        Self {
            rate: self.rate.clamp(1, Self::MAX_RATE),
            duration_secs: self.duration_secs.clamp(1, Self::MAX_DURATION_SECS),
            concurrency: self.concurrency.clamp(1, Self::MAX_CONCURRENCY),
        }
    }
}

/// Everything one verification of a preview found, as stored next to the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub commit: String,
    pub smoke: Vec<SmokeResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Measurement>,
    /// Why the load test was not run (an invalid scenario, no API key to send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
}

impl Report {
    pub fn smoke_passed(&self) -> bool {
        self.smoke.iter().all(SmokeResult::passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-12-10T12:00:00Z").unwrap().to_utc()
    }

    fn measurement(p95: f64, avg: f64, rate: f64) -> Measurement {
        Measurement {
            timestamp: at(),
            metrics: Metrics {
                http_req_duration: Durations { p95, avg },
                http_reqs: Requests { total: 750 },
                errors: Errors { rate },
            },
        }
    }

    #[test]
    fn reads_the_baseline_shape() {
        let json = r#"{"timestamp":"2025-12-10T12:00:00.000Z","metrics":{"http_req_duration":{"p95":387.57,"avg":275.01},"http_reqs":{"total":750},"errors":{"rate":0.0093}}}"#;
        let m: Measurement = serde_json::from_str(json).unwrap();
        assert_eq!(m, measurement(387.57, 275.01, 0.0093));
    }

    #[test]
    fn summarises_samples() {
        // 1..=100 ms, every tenth failed.
        let samples: Vec<Sample> = (1..=100).map(|i| Sample { millis: i as f64, failed: i % 10 == 0 }).collect();
        let m = Measurement::from_samples(&samples, at()).unwrap();
        assert_eq!(m.metrics.http_req_duration.p95, 95.0);
        assert_eq!(m.metrics.http_req_duration.avg, 50.5);
        assert_eq!(m.metrics.http_reqs.total, 100);
        assert_eq!(m.metrics.errors.rate, 0.1);
        assert!(Measurement::from_samples(&[], at()).is_none());
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
    }

    #[test]
    fn gate_trips_above_twenty_percent_only() {
        let base = measurement(100.0, 80.0, 0.0);
        assert!(compare(&measurement(119.0, 95.0, 0.0), Some(&base), Gate::default()).passed());
        let slow = compare(&measurement(121.0, 80.0, 0.0), Some(&base), Gate::default());
        assert!(!slow.passed());
        assert!(slow.failures[0].contains("P95 Latency"), "{:?}", slow.failures);
        assert!((slow.rows[0].delta.unwrap() - 0.21).abs() < 1e-9);
        let avg = compare(&measurement(100.0, 97.0, 0.0), Some(&base), Gate::default());
        assert!(!avg.passed() && avg.failures[0].contains("Avg Latency"));
        assert!(avg.markdown().contains("| Avg Latency | 97.00ms | 80.00ms | +21.2% ❌ |"), "{}", avg.markdown());
    }

    #[test]
    fn errors_fail_without_a_baseline_and_speed_does_not() {
        let v = compare(&measurement(5000.0, 4000.0, 0.0), None, Gate::default());
        assert!(v.passed(), "no baseline, nothing to regress from");
        let v = compare(&measurement(10.0, 10.0, 0.05), None, Gate::default());
        assert!(!v.passed());
        assert!(v.summary().starts_with("Regression: error rate 5.00%"));
        assert!(v.summary().len() <= 140);
    }

    #[test]
    fn smoke_checks_and_plans_are_bounded() {
        let checks = SmokeCheck::parse_list("/=200, /health=204").unwrap();
        assert_eq!(checks[1], SmokeCheck { path: "/health".into(), expect: 204 });
        assert!(SmokeCheck::parse_list("http://evil/=200").is_err());
        assert!(SmokeCheck::parse_list("//evil.example/=200").is_err());
        assert!(SmokeCheck::parse_list("/=abc").is_err());
        assert!(SmokeCheck::parse_list("/=999").is_err());
        let p = LoadPlan { rate: 100_000, duration_secs: 0, concurrency: 0 }.bounded();
        assert_eq!((p.rate, p.duration_secs, p.concurrency), (100, 1, 1));
    }

    #[test]
    fn scenarios_default_to_graphql_with_the_key_and_refuse_what_they_may_not_set() {
        let default = Scenario::graphql();
        assert_eq!((default.method.as_str(), default.path.as_deref(), default.api_key), ("POST", None, true));
        let s = Scenario::parse(r#"{"path": "/graphql", "body": "{\"query\":\"{ listTasks { id } }\"}"}"#).unwrap();
        assert_eq!((s.method.as_str(), s.api_key), ("POST", true), "defaults");
        let get = Scenario::parse(r#"{"method": "GET", "path": "/health", "api_key": false}"#).unwrap();
        assert_eq!(get, Scenario::get("/health"));
        for (bad, why) in [
            (r#"{"method": "TRACE"}"#, "not one of"),
            (r#"{"path": "//evil.example/"}"#, "single '/'"),
            (r#"{"headers": {"x-api-key": "da2-literal"}}"#, "may not be set"),
            (r#"{"headers": {"Host": "evil.example"}}"#, "may not be set"),
            (r#"{"headers": {"bad header": "x"}}"#, "not a header name"),
            (r#"{"method": "GET", "body": "x"}"#, "has no body"),
            (r#"{"url": "https://evil.example/"}"#, "unknown field"),
            ("not json", "expected"),
        ] {
            let err = Scenario::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
