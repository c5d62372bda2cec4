//! A fault-injecting proxy between the platform and the emulator.
//!
//! Each request is, at the configured rates: answered with a throttling error in the service's
//! own protocol (`ThrottlingException` for JSON services, `Throttling` for CloudFormation's
//! query protocol, `SlowDown` for S3); answered with a 500; dropped without an answer, either
//! before it reaches the emulator or after (the call happened, the answer was lost); or delayed.
//! Otherwise it is forwarded. A seeded random generator makes a run repeatable.
//!
//! The proxy counts what reached the emulator and succeeded, per action, so tests can check
//! that nothing was done twice.
//!
//! It can also make a stack's deletion fail, as AWS does when a resource cannot be deleted
//! (the emulator deletes whatever it is asked to): a `DeleteStack` of that stack is answered
//! without reaching the emulator, and from then on the stack and each of its resources are
//! reported `DELETE_FAILED`, until a `DeleteStack` that retains resources comes, which is
//! forwarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};

/// Fault rates, each a probability per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub throttle: f64,
    pub server_error: f64,
    /// Connection closed before forwarding.
    pub drop_before: f64,
    /// Forwarded, then the connection closed without the answer.
    pub drop_after: f64,
    /// Added latency, uniformly up to this.
    pub max_latency: Duration,
}

impl Faults {
    /// What the chaos runs use: a few percent of everything.
    pub const CHAOS: Faults = Faults {
        throttle: 0.05,
        server_error: 0.03,
        drop_before: 0.01,
        drop_after: 0.01,
        max_latency: Duration::from_millis(10),
    };
    pub const NONE: Faults =
        Faults { throttle: 0.0, server_error: 0.0, drop_before: 0.0, drop_after: 0.0, max_latency: Duration::ZERO };
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub forwarded: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub dropped: u64,
    /// Successful (2xx) calls that reached the emulator, by `Action` or target and the resource
    /// they named (`CreateStack ephemera-pr-1-...`).
    pub succeeded: HashMap<String, u64>,
    /// When each of those first reached the emulator.
    pub first_seen: HashMap<String, std::time::Instant>,
    /// The access key each of those was last signed with.
    pub signed_by: HashMap<String, String>,
    /// Every call that reached the emulator, by operation (`ListRoles`, `Query`, `s3:DELETE`).
    pub operations: HashMap<String, u64>,
}

struct Shared {
    faults: Mutex<Faults>,
    /// Stacks whose deletion fails, and whether it has been tried (then they read DELETE_FAILED).
    failing_deletes: Mutex<HashMap<String, bool>>,
    /// Roles whose `AssumeRole` is refused.
    refused_roles: Mutex<Vec<String>>,
    stats: Mutex<Stats>,
    rng: Mutex<rand::rngs::StdRng>,
    upstream: String,
    http: reqwest::Client,
}

pub struct FaultProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Fault {
    Throttle,
    ServerError,
    DropBefore,
    DropAfter,
    None,
}

impl FaultProxy {
    pub async fn start(upstream: &str, faults: Faults, seed: u64) -> Self {
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults),
            failing_deletes: Mutex::new(HashMap::new()),
            refused_roles: Mutex::new(Vec::new()),
            stats: Mutex::new(Stats::default()),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(s.clone(), req));
                    // A dropped request ends the connection without an answer.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { endpoint, shared, task }
    }

    pub fn set(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    /// Deleting `stack` fails (see the module's notes) until it is deleted retaining resources.
    pub fn fail_deletes_of(&self, stack: &str) {
        self.shared.failing_deletes.lock().unwrap().insert(stack.to_owned(), false);
    }

    /// `sts:AssumeRole` of `role_arn` is answered `AccessDenied`, as AWS answers a caller the
    /// role's trust policy does not name (the emulator grants every AssumeRole).
    pub fn refuse_assume_role(&self, role_arn: &str) {
        self.shared.refused_roles.lock().unwrap().push(role_arn.to_owned());
    }

    /// Whether `stack`'s deletion has failed and not been retried retaining resources yet.
    pub fn delete_failed(&self, stack: &str) -> bool {
        self.shared.failing_deletes.lock().unwrap().get(stack).copied().unwrap_or(false)
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}
impl std::error::Error for Dropped {}

/// What the call does, for counting: the JSON target or the query `Action`, and the resource.
fn describe(target: Option<&str>, method: &str, path: &str, body: &[u8]) -> String {
    if let Some(t) = target {
        let op = t.rsplit('.').next().unwrap_or(t);
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let resource = ["TableName", "QueueUrl", "Name", "EventBusName"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
            .unwrap_or("");
        return format!("{op} {resource}");
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    match form.get("Action") {
        Some(a) => format!("{a} {}", form.get("StackName").map(String::as_str).unwrap_or("")),
        None => format!("{method} {path}"),
    }
}

/// The operation a call names: a JSON target's last part, a query `Action`, or for a REST
/// call its service, method and first path part (`lambda:DELETE functions`, `s3:GET`).
fn operation(target: Option<&str>, action: &str, method: &str, path: &str) -> String {
    let mut parts = path.trim_start_matches('/').split('/');
    let (first, second) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    match target {
        Some(t) => t.rsplit('.').next().unwrap_or(t).to_owned(),
        None if !action.is_empty() => action.to_owned(),
        None if first.starts_with("20") && first.len() == 10 => format!("lambda:{method} {second}"),
        None if first == "v1" => format!("appsync:{method} {second}"),
        None => format!("s3:{method}"),
    }
}

/// The access key id in a SigV4 `Authorization` header (`... Credential=AKID/date/...`).
fn access_key(headers: &hyper::HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    Some(credential.split('/').next()?.to_owned())
}

fn error_response(status: u16, target: Option<&str>, is_s3: bool, code: &str) -> Response<Full<Bytes>> {
    let (ctype, body) = if target.is_some() {
        ("application/x-amz-json-1.0", format!(r#"{{"__type":"{code}","message":"injected by the fault proxy"}}"#))
    } else if is_s3 {
        (
            "application/xml",
            format!("<Error><Code>{code}</Code><Message>injected</Message><RequestId>fault</RequestId></Error>"),
        )
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
            ),
        )
    };
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    res.headers_mut().insert("content-type", ctype.parse().unwrap());
    res.headers_mut().insert("x-amzn-errortype", code.parse().unwrap());
    res
}

async fn handle(s: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let arrived = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let query = parts.headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form"));
    let is_s3 = target.is_none() && !query;
    let (fault, delay) = roll(&s);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(answer) = injected(&s, &fault, target.as_deref(), is_s3) {
        return answer;
    }
    let form: HashMap<String, String> =
        if query { form_urlencoded::parse(&body).into_owned().collect() } else { HashMap::new() };
    let stack = form.get("StackName").cloned().unwrap_or_default();
    let action = form.get("Action").map(String::as_str).unwrap_or_default();
    let role = form.get("RoleArn").map(String::as_str).unwrap_or_default();
    if action == "AssumeRole" && s.refused_roles.lock().unwrap().iter().any(|r| r == role) {
        return Ok(error_response(403, None, false, "AccessDenied"));
    }
    if action == "DeleteStack" && fails_delete(&s, &stack, form.contains_key("RetainResources.member.1")) {
        return Ok(delete_accepted());
    }
    let uri = format!("{}{}", s.upstream, parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut forward = s.http.request(parts.method.clone(), uri).body(body.clone());
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            forward = forward.header(k, v);
        }
    }
    let upstream = forward.send().await.map_err(|_| Dropped)?;
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let bytes = upstream.bytes().await.map_err(|_| Dropped)?;
    {
        let mut stats = s.stats.lock().unwrap();
        stats.forwarded += 1;
        *stats
            .operations
            .entry(operation(target.as_deref(), action, parts.method.as_str(), parts.uri.path()))
            .or_default() += 1;
        if status.is_success() {
            let what = describe(target.as_deref(), parts.method.as_str(), parts.uri.path(), &body);
            stats.first_seen.entry(what.clone()).or_insert(arrived);
            if let Some(key) = access_key(&parts.headers) {
                stats.signed_by.insert(what.clone(), key);
            }
            *stats.succeeded.entry(what).or_default() += 1;
        }
        if matches!(fault, Fault::DropAfter) {
            stats.dropped += 1;
            return Err(Dropped);
        }
    }
    let bytes = match action {
        "DescribeStacks" | "ListStackResources" | "DescribeStackResources" => {
            let failed: Vec<String> =
                s.failing_deletes.lock().unwrap().iter().filter(|(_, f)| **f).map(|(k, _)| k.clone()).collect();
            report_delete_failed(bytes, &failed, action, &stack)
        }
        _ => bytes,
    };
    let mut res = Response::new(Full::new(bytes));
    *res.status_mut() = status;
    for (k, v) in &headers {
        if k != "transfer-encoding" && k != "content-length" && k != "connection" {
            res.headers_mut().insert(k, v.clone());
        }
    }
    Ok(res)
}

/// The answer to a request that meets a fault before it is forwarded: a throttling error or a
/// 500 in the service's own protocol, or a dropped connection.
fn injected(
    s: &Shared,
    fault: &Fault,
    target: Option<&str>,
    is_s3: bool,
) -> Option<Result<Response<Full<Bytes>>, Dropped>> {
    match fault {
        Fault::Throttle => {
            s.stats.lock().unwrap().throttled += 1;
            let code = if target.is_some() {
                "ThrottlingException"
            } else if is_s3 {
                "SlowDown"
            } else {
                "Throttling"
            };
            Some(Ok(error_response(if is_s3 { 503 } else { 400 }, target, is_s3, code)))
        }
        Fault::ServerError => {
            s.stats.lock().unwrap().server_errors += 1;
            let code = if target.is_some() { "InternalServerError" } else { "InternalFailure" };
            Some(Ok(error_response(500, target, is_s3, code)))
        }
        Fault::DropBefore => {
            s.stats.lock().unwrap().dropped += 1;
            Some(Err(Dropped))
        }
        Fault::DropAfter | Fault::None => None,
    }
}

/// Which fault this request meets, if any, and how long it is delayed.
fn roll(s: &Shared) -> (Fault, Duration) {
    let f = *s.faults.lock().unwrap();
    let mut rng = s.rng.lock().unwrap();
    let roll: f64 = rng.random();
    let delay = if f.max_latency.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_micros(rng.random_range(0..=f.max_latency.as_micros() as u64))
    };
    let mut edge = 0.0;
    for (rate, which) in [
        (f.throttle, Fault::Throttle),
        (f.server_error, Fault::ServerError),
        (f.drop_before, Fault::DropBefore),
        (f.drop_after, Fault::DropAfter),
    ] {
        edge += rate;
        if roll < edge {
            return (which, delay);
        }
    }
    (Fault::None, delay)
}

/// Whether this `DeleteStack` of `stack` is to fail (answered here, not forwarded): the stack's
/// deletions fail until one retains resources, which goes through.
fn fails_delete(s: &Shared, stack: &str, retains: bool) -> bool {
    let mut failing = s.failing_deletes.lock().unwrap();
    match failing.get_mut(stack) {
        Some(failed) if !retains => {
            *failed = true;
            true
        }
        Some(_) => {
            failing.remove(stack);
            false
        }
        None => false,
    }
}

/// What CloudFormation answers a `DeleteStack`: nothing but a request id.
fn delete_accepted() -> Response<Full<Bytes>> {
    let body = "<DeleteStackResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><ResponseMetadata><RequestId>fault</RequestId></ResponseMetadata></DeleteStackResponse>";
    let mut res = Response::new(Full::new(Bytes::from(body)));
    res.headers_mut().insert("content-type", "text/xml".parse().unwrap());
    res
}

/// The stacks in `failed` (and, in a listing of one of their resources, every resource) read
/// `DELETE_FAILED`.
fn report_delete_failed(body: Bytes, failed: &[String], action: &str, stack: &str) -> Bytes {
    if failed.is_empty() {
        return body;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let out = if action == "DescribeStacks" {
        // Each stack is one `<member>...</member>` holding its `<StackName>`.
        text.split_inclusive("</member>")
            .map(|part| {
                let mine = failed.iter().any(|f| part.contains(&format!("<StackName>{f}</StackName>")));
                if !mine {
                    return part.to_owned();
                }
                let start = part.find("<StackStatus>").map(|i| i + "<StackStatus>".len());
                let end = part.find("</StackStatus>");
                match (start, end) {
                    (Some(a), Some(b)) if a <= b => format!("{}DELETE_FAILED{}", &part[..a], &part[b..]),
                    _ => part.to_owned(),
                }
            })
            .collect()
    } else if failed.iter().any(|f| f == stack) {
        ["CREATE_COMPLETE", "UPDATE_COMPLETE"].iter().fold(text, |t, from| {
            t.replace(
                &format!("<ResourceStatus>{from}</ResourceStatus>"),
                "<ResourceStatus>DELETE_FAILED</ResourceStatus>",
            )
        })
    } else {
        text
    };
    Bytes::from(out)
}
