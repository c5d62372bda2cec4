//! Smoke checks and a short load test against a preview environment.
//!
//! Targets are always the environment's own URL plus a configured path: the host comes from the
//! stack's outputs, never from a webhook payload, and must match the allowed host suffixes.
//! Redirects are not followed, so a preview cannot point the prober somewhere else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ephemera_domain::perf::{LoadPlan, Sample, Scenario, SmokeCheck, SmokeResult, API_KEY_HEADER};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use tokio::sync::Semaphore;
use tracing::{info, instrument};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("preview URL {0:?} is not a URL")]
    NotAUrl(String),
    #[error("preview URL {url:?}: host {host:?} is not allowed (EPHEMERA_PROBE_ALLOWED_HOSTS)")]
    HostNotAllowed { url: String, host: String },
    #[error("preview URL {0:?} must be https (http only for allowed loopback hosts)")]
    Scheme(String),
    #[error("path {0:?} must start with a single '/'")]
    Path(String),
    #[error("load-test scenario: {0}")]
    Scenario(String),
}

/// Which preview hosts may be probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Host suffixes such as `.appsync-api.eu-west-1.amazonaws.com`, or exact hosts.
    pub allowed_hosts: Vec<String>,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        Self { allowed_hosts: vec![".amazonaws.com".into(), ".cloudfront.net".into(), ".amplifyapp.com".into()] }
    }
}

impl TargetPolicy {
    /// The URL of `path` on the preview at `preview`, if the preview's host is allowed.
    pub fn target(&self, preview: &str, path: &str) -> Result<Url, TargetError> {
        let base = Url::parse(preview).map_err(|_| TargetError::NotAUrl(preview.to_owned()))?;
        let host = base.host_str().unwrap_or_default().to_ascii_lowercase();
        let allowed = !host.is_empty()
            && base.username().is_empty()
            && self.allowed_hosts.iter().any(|a| {
                let a = a.to_ascii_lowercase();
                if a.starts_with('.') {
                    host.ends_with(&a) && host.len() > a.len()
                } else {
                    host == a
                }
            });
        if !allowed {
            return Err(TargetError::HostNotAllowed { url: preview.to_owned(), host });
        }
        let loopback = host == "127.0.0.1" || host == "localhost" || host == "[::1]";
        match base.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(TargetError::Scheme(preview.to_owned())),
        }
        if !path.starts_with('/') || path.starts_with("//") || path.contains('\\') || path.contains('@') {
            return Err(TargetError::Path(path.to_owned()));
        }
        // The path replaces the preview's own path (AppSync's is /graphql): the origin is kept.
        let mut url = base.clone();
        let (p, q) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        url.set_path(p);
        url.set_query(q);
        url.set_fragment(None);
        debug_assert_eq!(url.origin(), base.origin());
        Ok(url)
    }
}

/// One load-test request, as sent over and over: a scenario on the preview's own host. The API
/// key is a sensitive header, never shown by `Debug`.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<String>,
}

impl LoadRequest {
    /// `scenario` on the preview at `preview`, with `api_key` when the scenario sends it.
    pub fn new(
        policy: &TargetPolicy,
        preview: &str,
        scenario: &Scenario,
        api_key: Option<&str>,
    ) -> Result<Self, TargetError> {
        let bad = |m: String| TargetError::Scenario(m);
        let own_path = Url::parse(preview).map(|u| u.path().to_owned()).unwrap_or_else(|_| "/".into());
        let url = policy.target(preview, scenario.path.as_deref().unwrap_or(&own_path))?;
        let method = Method::from_bytes(scenario.method.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &scenario.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad(format!("header {k:?}: {e}")))?;
            headers.insert(name, HeaderValue::from_str(v).map_err(|e| bad(format!("header {k:?}: {e}")))?);
        }
        scenario.check_key(api_key).map_err(bad)?;
        if let (true, Some(key)) = (scenario.api_key, api_key) {
            let mut value = HeaderValue::from_str(key).map_err(|_| bad("the API key is not a header value".into()))?;
            value.set_sensitive(true);
            headers.insert(API_KEY_HEADER, value);
        }
        Ok(Self { method, url, headers, body: scenario.body.clone() })
    }

    fn send(&self, http: &reqwest::Client) -> reqwest::RequestBuilder {
        let r = http.request(self.method.clone(), self.url.clone()).headers(self.headers.clone());
        match &self.body {
            Some(b) => r.body(b.clone()),
            None => r,
        }
    }
}

/// An HTTP client for probing: short timeouts, no redirects, no cookies; `tls` says whom to trust.
pub fn client(timeout: Duration, tls: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("ephemera-probe/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client without custom TLS settings builds")
}

/// Runs each smoke check once, in order.
#[instrument(skip_all, fields(checks = targets.len()))]
pub async fn smoke(http: &reqwest::Client, targets: &[(Url, SmokeCheck)]) -> Vec<SmokeResult> {
    let mut results = Vec::with_capacity(targets.len());
    for (url, check) in targets {
        let (got, error) = match http.get(url.clone()).send().await {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (None, Some(e.without_url().to_string())),
        };
        results.push(SmokeResult { path: check.path.clone(), expect: check.expect, got, error });
    }
    results
}

/// Fires `plan.rate` requests a second for `plan.duration_secs` (open loop: the pace does not
/// slow down with the server, unless `plan.concurrency` requests are already in flight). A
/// request fails on a transport error, a status of 400 or more, or GraphQL `errors` in a 200.
#[instrument(skip(http, request, plan), fields(url = %request.url, method = %request.method, rate = plan.rate, secs = plan.duration_secs))]
pub async fn load(http: &reqwest::Client, request: &LoadRequest, plan: &LoadPlan) -> Vec<Sample> {
    let plan = plan.clone().bounded();
    let total = plan.rate as usize * plan.duration_secs as usize;
    let permits = Arc::new(Semaphore::new(plan.concurrency as usize));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticks.tick().await;
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let send = request.send(http);
        tasks.spawn(async move {
            let _permit = permit;
            let start = Instant::now();
            let failed = match send.send().await {
                Ok(r) => {
                    let bad = r.status().as_u16() >= 400;
                    // Time to the whole body, as a client sees it.
                    match r.bytes().await {
                        Ok(body) => bad || graphql_errors(&body),
                        Err(_) => true,
                    }
                }
                Err(_) => true,
            };
            Sample { millis: start.elapsed().as_secs_f64() * 1000.0, failed }
        });
    }
    let mut samples = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        if let Ok(s) = done {
            samples.push(s);
        }
    }
    info!(requests = samples.len(), "load test done");
    samples
}

/// A GraphQL answer with errors (AppSync answers 200 with `{"errors": [...]}`, or 401 for a
/// bad key).
fn graphql_errors(body: &[u8]) -> bool {
    body.starts_with(b"{")
        && serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("errors").and_then(|e| e.as_array()).map(|e| !e.is_empty()))
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> TargetPolicy {
        TargetPolicy { allowed_hosts: hosts.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn targets_stay_on_the_previews_own_host() {
        let p = TargetPolicy::default();
        let preview = "https://abc123.appsync-api.eu-west-1.amazonaws.com/graphql";
        assert_eq!(
            p.target(preview, "/health?x=1").unwrap().as_str(),
            "https://abc123.appsync-api.eu-west-1.amazonaws.com/health?x=1"
        );
        // A path cannot change the host.
        assert!(matches!(p.target(preview, "//evil.example/x"), Err(TargetError::Path(_))));
        assert!(matches!(p.target(preview, "@evil.example/x"), Err(TargetError::Path(_))));
        assert!(matches!(p.target(preview, "http://evil.example/"), Err(TargetError::Path(_))));
        // A preview URL naming a host outside the allowed ones is refused.
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "https://amazonaws.com.evil.example/",
            "https://evil.example/?.amazonaws.com",
            "https://user@x.amazonaws.com/",
            "https://amazonaws.com/",
        ] {
            assert!(matches!(p.target(bad, "/"), Err(TargetError::HostNotAllowed { .. })), "{bad}");
        }
        assert!(matches!(p.target("http://abc.amazonaws.com/", "/"), Err(TargetError::Scheme(_))));
        assert!(matches!(p.target("not a url", "/"), Err(TargetError::NotAUrl(_))));
        // Loopback only when allowed by name, and then http is fine.
        assert!(TargetPolicy::default().target("http://127.0.0.1:8080/", "/").is_err());
        assert!(policy(&["127.0.0.1"]).target("http://127.0.0.1:8080/", "/").is_ok());
    }

    #[test]
    fn a_load_request_keeps_to_the_preview_and_hides_its_key() {
        let p = policy(&["127.0.0.1"]);
        let preview = "http://127.0.0.1:8080/graphql";
        let r = LoadRequest::new(&p, preview, &Scenario::graphql(), Some("da2-secretkey")).unwrap();
        assert_eq!((r.method.as_str(), r.url.as_str()), ("POST", preview));
        assert_eq!(r.headers.get(API_KEY_HEADER).unwrap(), "da2-secretkey");
        assert!(!format!("{r:?}").contains("da2-secretkey"), "{r:?}");
        let err = LoadRequest::new(&p, preview, &Scenario::graphql(), None).unwrap_err();
        assert!(err.to_string().contains("no GraphQLApiKey output"), "{err}");
        let get = LoadRequest::new(&p, preview, &Scenario::get("/health"), None).unwrap();
        assert_eq!((get.method.as_str(), get.url.path(), get.headers.len()), ("GET", "/health", 0));
        assert!(LoadRequest::new(&p, "https://evil.example/graphql", &Scenario::graphql(), Some("k")).is_err());
    }

    #[test]
    fn graphql_errors_in_a_200_are_failures() {
        assert!(graphql_errors(br#"{"errors":[{"message":"Unauthorized"}]}"#));
        assert!(!graphql_errors(br#"{"data":{"__typename":"Query"}}"#));
        assert!(!graphql_errors(b"ok"));
    }
}
