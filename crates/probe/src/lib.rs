//! Smoke checks and a short load test against a preview environment.
//!
//! Targets are always the environment's own URL plus a configured path: the host comes from the
//! stack's outputs, never from a webhook payload, and must match the allowed host suffixes.
//! Redirects are not followed, so a preview cannot point the prober somewhere else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ephemera_domain::perf::{LoadPlan, Sample, SmokeCheck, SmokeResult};
use reqwest::Url;
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

/// Fires `plan.rate` requests a second at `url` for `plan.duration_secs` (open loop: the pace
/// does not slow down with the server, unless `plan.concurrency` requests are already in
/// flight). A request fails on a transport error or a status of 400 or more.
#[instrument(skip(http, plan), fields(%url, rate = plan.rate, secs = plan.duration_secs))]
pub async fn load(http: &reqwest::Client, url: &Url, plan: &LoadPlan) -> Vec<Sample> {
    let plan = plan.clone().bounded();
    let total = plan.rate as usize * plan.duration_secs as usize;
    let permits = Arc::new(Semaphore::new(plan.concurrency as usize));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticks.tick().await;
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let start = Instant::now();
            let failed = match http.get(url).send().await {
                Ok(r) => {
                    let bad = r.status().as_u16() >= 400;
                    // Time to the whole body, as a client sees it.
                    r.bytes().await.is_err() || bad
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
}
