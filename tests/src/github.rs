//! A local HTTP server standing in for the GitHub REST API.
//!
//! Every request is checked against `tests/fixtures/github-rest.json` (the request shapes of
//! GitHub's published REST description for the operations Ephemera calls): the path must match
//! an operation's template for that method, query parameters must be declared, and the JSON body
//! must satisfy the operation's schema. Anything else is recorded as a violation and answered
//! 404 or 422, as GitHub would. The server keeps comments, deployments and statuses in memory,
//! and can answer with rate limits. With [`State::app`] set it authorizes as GitHub does a
//! GitHub App's calls: the App's JWT (verified with its public key) for its own endpoints, and
//! an unexpired installation token it issued, for that installation's repositories, for the
//! others; anything else is answered 401.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

const DESCRIPTION: &str = include_str!("../fixtures/github-rest.json");

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub operation: String,
    pub method: String,
    pub path: String,
    pub body: Value,
    /// Seconds since the epoch, fractional.
    pub at: f64,
}

#[derive(Debug, Default)]
pub struct State {
    pub requests: Vec<Request>,
    pub violations: Vec<String>,
    /// id → (issue number, body)
    pub comments: BTreeMap<u64, (u64, String)>,
    /// (id, sha, environment)
    pub deployments: Vec<(u64, String, String)>,
    /// (deployment id, body)
    pub deployment_statuses: Vec<(u64, Value)>,
    /// (sha, body)
    pub commit_statuses: Vec<(String, Value)>,
    /// pull number → what GitHub says of it
    pub pulls: HashMap<u64, FakePull>,
    /// (comment id, reaction content), in order
    pub reactions: Vec<(u64, String)>,
    /// Check runs, in the order they were created.
    pub check_runs: Vec<FakeCheckRun>,
    /// (commit, path) → a file's text
    pub files: HashMap<(String, String), String>,
    /// `base...head` → the files changed
    pub comparisons: HashMap<String, Vec<String>>,
    /// login → permission
    pub permissions: HashMap<String, String>,
    /// Answer this many of the next requests with a primary rate limit (reset in 1 s).
    pub rate_limit_next: u32,
    /// The resets announced (seconds since the epoch), in order.
    pub resets: Vec<i64>,
    /// Serving as GitHub serves an App (see [`FakeApp`]).
    pub app: Option<FakeApp>,
    /// What `X-RateLimit-Remaining` says: each request answered with a body spends one, a 304
    /// none; at 0 every request is refused as rate limited. None: the header is not sent.
    pub remaining: Option<u64>,
    /// Webhook delivery attempts (the App's hook, or repositories' hooks), oldest first.
    pub deliveries: Vec<FakeDelivery>,
    /// Where a redelivery is sent (the platform's webhook URL), signed with `SECRET`.
    pub webhook_url: Option<String>,
    /// Repositories (`owner/repo`) whose pull requests are answered 404.
    pub inaccessible: std::collections::HashSet<String>,
    next_id: u64,
}

/// One attempt at a webhook delivery: its payload is sent again when redelivered.
#[derive(Debug, Clone)]
pub struct FakeDelivery {
    pub id: u64,
    pub guid: String,
    pub event: String,
    pub payload: Vec<u8>,
    /// The endpoint's answer (0: none yet, or none at all).
    pub status_code: u16,
    /// Seconds since the epoch.
    pub delivered_at: i64,
    pub redelivery: bool,
    /// A repository's hook (`owner/repo`, id); None: the App's.
    pub hook: Option<(String, u64)>,
}

/// A check run: every state it was put in (`queued`, `in_progress`, or the conclusion), and
/// what it says now.
#[derive(Debug, Clone)]
pub struct FakeCheckRun {
    pub id: u64,
    pub name: String,
    pub sha: String,
    pub states: Vec<String>,
    pub title: String,
    pub summary: String,
    pub details_url: Option<String>,
}

impl FakeCheckRun {
    fn apply(&mut self, body: &Value) {
        let state = match (body["status"].as_str(), body["conclusion"].as_str()) {
            (_, Some(conclusion)) => Some(conclusion),
            (status, None) => status,
        };
        if let Some(state) = state {
            self.states.push(state.to_owned());
        }
        if let Some(title) = body["output"]["title"].as_str() {
            self.title = title.to_owned();
        }
        if let Some(summary) = body["output"]["summary"].as_str() {
            self.summary = summary.to_owned();
        }
        if let Some(url) = body["details_url"].as_str() {
            self.details_url = Some(url.to_owned());
        }
    }
}

/// A pull request as `pulls/get` and `pulls/list` answer it.
#[derive(Debug, Clone)]
pub struct FakePull {
    pub head: String,
    pub mergeable: Option<bool>,
    pub merge_commit_sha: Option<String>,
    pub closed: bool,
    pub merged: bool,
    /// Its repository (`owner/repo`); None: the fixtures' `acme/todo-app`.
    pub repository: Option<String>,
    pub from_fork: bool,
    /// RFC 3339.
    pub updated_at: String,
}

impl FakePull {
    /// An open pull request at `head`, and what GitHub computed of merging it, updated now.
    pub fn new(head: &str, mergeable: Option<bool>, merge_commit_sha: Option<&str>) -> Self {
        let updated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Self {
            head: head.into(),
            mergeable,
            merge_commit_sha: merge_commit_sha.map(Into::into),
            closed: false,
            merged: false,
            repository: None,
            from_fork: false,
            updated_at,
        }
    }

    fn repository(&self) -> &str {
        self.repository.as_deref().unwrap_or("acme/todo-app")
    }

    /// As GitHub's pull request object has it.
    fn json(&self, number: u64) -> Value {
        let repo = self.repository();
        let head_repo = match self.from_fork {
            true => format!("outsider/{}", repo.split('/').nth(1).unwrap_or_default()),
            false => repo.to_owned(),
        };
        json!({
            "number": number,
            "state": if self.closed { "closed" } else { "open" },
            "merged": self.merged,
            "user": { "login": "octocat" },
            "updated_at": self.updated_at,
            "labels": [],
            "head": { "sha": self.head, "ref": "feature/todo-filters", "repo": { "full_name": head_repo } },
            "base": { "sha": "0000000000000000000000000000000000000000", "ref": "main", "repo": { "full_name": repo } },
            "mergeable": self.mergeable,
            "merge_commit_sha": self.merge_commit_sha,
        })
    }
}

/// A GitHub App as GitHub knows it: its id and public key, the installation each repository is
/// in, and the installation tokens issued.
#[derive(Debug)]
pub struct FakeApp {
    pub id: String,
    public_key: Vec<u8>,
    /// `owner/repo` → installation id.
    pub installations: HashMap<String, u64>,
    /// Token → (installation, expiry in seconds since the epoch).
    pub tokens: HashMap<String, (u64, i64)>,
    /// How long the tokens issued next last, in seconds (GitHub: an hour).
    pub token_lifetime: i64,
}

impl FakeApp {
    pub fn new(id: &str, public_key_pem: &[u8], installations: &[(&str, u64)]) -> Self {
        Self {
            id: id.to_owned(),
            public_key: public_key_pem.to_vec(),
            installations: installations.iter().map(|(r, i)| (r.to_string(), *i)).collect(),
            tokens: HashMap::new(),
            token_lifetime: 3600,
        }
    }

    /// Whether `jwt` is the App's: signed with its key (RS256), naming it, not expired.
    fn is_app(&self, jwt: &str) -> bool {
        let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(&self.public_key) else { return false };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iat", "iss"]);
        validation.set_issuer(&[&self.id]);
        jsonwebtoken::decode::<Value>(jwt, &key, &validation).is_ok()
    }

    /// Whether `token` is an unexpired installation token for `repository`'s installation.
    fn reaches(&self, token: &str, repository: &str, now: i64) -> bool {
        let installation = self.installations.get(repository);
        self.tokens.get(token).is_some_and(|(i, expires)| Some(i) == installation && *expires > now)
    }
}

/// The answer to a call the App is not allowed to make, if it is one.
fn refused(app: &FakeApp, operation: &str, params: &HashMap<String, String>, bearer: &str) -> Option<Response> {
    let now = now() as i64;
    let allowed = match operation {
        "apps/get-repo-installation"
        | "apps/create-installation-access-token"
        | "apps/list-webhook-deliveries"
        | "apps/redeliver-webhook-delivery" => app.is_app(bearer),
        _ => match (params.get("owner"), params.get("repo")) {
            (Some(owner), Some(repo)) => app.reaches(bearer, &format!("{owner}/{repo}"), now),
            _ => false,
        },
    };
    (!allowed).then(|| error(StatusCode::UNAUTHORIZED, "Bad credentials"))
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The operation ids received, in order, without reads.
    pub fn writes(&self) -> Vec<String> {
        self.requests.iter().filter(|r| r.method != "GET").map(|r| r.operation.clone()).collect()
    }

    /// The deployment statuses' states, in order.
    pub fn deployment_states(&self) -> Vec<String> {
        self.deployment_statuses.iter().map(|(_, b)| b["state"].as_str().unwrap_or("?").to_owned()).collect()
    }
}

pub struct FakeGitHub {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Operation {
    id: String,
    method: Method,
    template: Vec<String>,
    parameters: Vec<String>,
    body: Option<Value>,
}

fn operations() -> Vec<Operation> {
    let doc: Value = serde_json::from_str(DESCRIPTION).expect("the REST description fixture is JSON");
    let mut ops = Vec::new();
    for (path, methods) in doc["paths"].as_object().expect("paths") {
        for (method, op) in methods.as_object().expect("methods") {
            ops.push(Operation {
                id: op["operationId"].as_str().unwrap_or_default().to_owned(),
                method: method.to_uppercase().parse().expect("an HTTP method"),
                template: path.trim_start_matches('/').split('/').map(str::to_owned).collect(),
                parameters: op["parameters"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
                body: op.get("requestBody").cloned(),
            });
        }
    }
    ops
}

/// Checks `value` against the schema subset the description uses: type (or types), required,
/// properties, enum, items.
pub fn validate(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{at}: expected {types:?}, got {value}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(|e| e.as_array()) {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(required) = schema.get("required").and_then(|r| r.as_array()) {
        for r in required.iter().filter_map(|r| r.as_str()) {
            if value.get(r).is_none() {
                errors.push(format!("{at}: missing required {r:?}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (schema.get("properties").and_then(|p| p.as_object()), value.as_object()) {
        for (k, v) in obj {
            match props.get(k) {
                Some(s) => validate(s, v, &format!("{at}.{k}"), errors),
                None => errors.push(format!("{at}: {k:?} is not a parameter of this operation")),
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            validate(items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let ops = Arc::new(operations());
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (state, ops) = (shared.clone(), ops.clone());
            async move { handle(&state, &ops, method, uri, headers, body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Waits (45 s at most) until GitHub has seen what `done` looks for.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&State) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
        while !done(&self.state()) {
            assert!(
                std::time::Instant::now() < deadline,
                "GitHub never saw {what}; it saw {:#?}",
                self.state().requests
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message, "documentation_url": "https://docs.github.com/rest" })))
        .into_response()
}

fn handle(
    state: &Arc<Mutex<State>>,
    ops: &[Operation],
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    let path = uri.path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // A trailing `{path}` takes the rest of the path, slashes and all (the contents API).
    let fits = |op: &Operation| {
        let rest = op.template.last().is_some_and(|t| t == "{path}") && segments.len() >= op.template.len();
        (op.template.len() == segments.len() || rest)
            && op.template.iter().zip(&segments).all(|(t, seg)| (t.starts_with('{') && !seg.is_empty()) || t == seg)
    };
    let matched = ops.iter().find(|op| op.method == method && fits(op));
    let Some(op) = matched else {
        s.violations.push(format!("{method} {path}: no such operation in the REST description"));
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let params: HashMap<String, String> = op
        .template
        .iter()
        .zip(&segments)
        .filter(|(t, _)| t.starts_with('{'))
        .map(|(t, seg)| (t.trim_matches(|c| c == '{' || c == '}').to_owned(), seg.to_string()))
        .collect();
    let mut params = params;
    if op.template.last().is_some_and(|t| t == "{path}") {
        params.insert("path".into(), segments[op.template.len() - 1..].join("/"));
    }
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let mut errors = Vec::new();
    for k in query.keys() {
        if !op.parameters.contains(k) {
            errors.push(format!("query parameter {k:?} is not a parameter of {}", op.id));
        }
    }
    for (h, want) in [("accept", "application/vnd.github+json"), ("x-github-api-version", "2022-11-28")] {
        if headers.get(h).and_then(|v| v.to_str().ok()) != Some(want) {
            errors.push(format!("header {h} should be {want}"));
        }
    }
    if !headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer ")) {
        errors.push("no bearer token".into());
    }
    if !headers.contains_key("user-agent") {
        errors.push("GitHub requires a User-Agent".into());
    }
    let json: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    match &op.body {
        // The token request's body (which repositories, which permissions) may be left out.
        Some(_) if body.is_empty() && op.id == "apps/create-installation-access-token" => {}
        Some(schema) => validate(schema, &json, "body", &mut errors),
        None if !body.is_empty() => errors.push(format!("{} takes no body", op.id)),
        None => {}
    }
    let at = now();
    s.requests.push(Request {
        operation: op.id.clone(),
        method: method.to_string(),
        path: path.clone(),
        body: json.clone(),
        at,
    });
    if !errors.is_empty() {
        for e in &errors {
            s.violations.push(format!("{method} {path} ({}): {e}", op.id));
        }
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    if s.rate_limit_next > 0 {
        s.rate_limit_next -= 1;
        let reset = at as i64 + 1;
        s.resets.push(reset);
        let mut res = error(StatusCode::FORBIDDEN, "API rate limit exceeded for installation.");
        let h = res.headers_mut();
        h.insert("x-ratelimit-limit", "5000".parse().unwrap());
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        return res;
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if let Some(answer) = s.app.as_ref().and_then(|app| refused(app, &op.id, &params, bearer.unwrap_or_default())) {
        return answer;
    }
    if s.remaining == Some(0) {
        let mut res = error(StatusCode::FORBIDDEN, "API rate limit exceeded for installation.");
        let h = res.headers_mut();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", (at as i64 + 60).to_string().parse().unwrap());
        return res;
    }
    let number = |k: &str| params.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let res = match op.id.as_str() {
        "apps/get-repo-installation" => {
            let repository = format!("{}/{}", params["owner"], params["repo"]);
            match s.app.as_ref().and_then(|app| app.installations.get(&repository)) {
                Some(id) => axum::Json(json!({ "id": id, "account": { "login": params["owner"] } })).into_response(),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        "apps/create-installation-access-token" => {
            let id = s.id();
            let installation = number("installation_id");
            let Some(app) = s.app.as_mut() else { return error(StatusCode::NOT_FOUND, "Not Found") };
            let token = format!("ghs_fake{id}");
            let expires = at as i64 + app.token_lifetime;
            app.tokens.insert(token.clone(), (installation, expires));
            let expires_at = chrono::DateTime::from_timestamp(expires, 0).unwrap().to_rfc3339();
            (StatusCode::CREATED, axum::Json(json!({ "token": token, "expires_at": expires_at }))).into_response()
        }
        "issues/list-comments" => {
            let issue = number("issue_number");
            let per_page: usize = query.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
            let page: usize = query.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
            let all: Vec<Value> = s
                .comments
                .iter()
                .filter(|(_, (i, _))| *i == issue)
                .map(|(id, (_, b))| json!({ "id": id, "body": b, "user": { "login": "ephemera[bot]" } }))
                .collect();
            let page: Vec<Value> = all.into_iter().skip((page - 1) * per_page).take(per_page).collect();
            axum::Json(Value::Array(page)).into_response()
        }
        "issues/create-comment" => {
            let id = s.id();
            let text = json["body"].as_str().unwrap_or_default().to_owned();
            s.comments.insert(id, (number("issue_number"), text.clone()));
            (StatusCode::CREATED, axum::Json(json!({ "id": id, "body": text }))).into_response()
        }
        "issues/update-comment" => {
            let id = number("comment_id");
            let text = json["body"].as_str().unwrap_or_default().to_owned();
            match s.comments.get_mut(&id) {
                Some(c) => {
                    c.1 = text.clone();
                    axum::Json(json!({ "id": id, "body": text })).into_response()
                }
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        "issues/delete-comment" => {
            s.comments.remove(&number("comment_id"));
            StatusCode::NO_CONTENT.into_response()
        }
        "repos/list-deployments" => {
            let found: Vec<Value> = s
                .deployments
                .iter()
                .rev()
                .filter(|(_, sha, env)| {
                    query.get("sha").is_none_or(|q| q == sha) && query.get("environment").is_none_or(|q| q == env)
                })
                .map(|(id, sha, env)| json!({ "id": id, "sha": sha, "environment": env }))
                .collect();
            axum::Json(Value::Array(found)).into_response()
        }
        "repos/create-deployment" => {
            let id = s.id();
            let sha = json["ref"].as_str().unwrap_or_default().to_owned();
            let env = json["environment"].as_str().unwrap_or("production").to_owned();
            s.deployments.push((id, sha.clone(), env.clone()));
            (StatusCode::CREATED, axum::Json(json!({ "id": id, "sha": sha, "environment": env }))).into_response()
        }
        "repos/create-deployment-status" => {
            let id = number("deployment_id");
            if !s.deployments.iter().any(|(d, _, _)| *d == id) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            s.deployment_statuses.push((id, json.clone()));
            (StatusCode::CREATED, axum::Json(json!({ "id": s.deployment_statuses.len(), "state": json["state"] })))
                .into_response()
        }
        "repos/create-commit-status" => {
            let sha = params.get("sha").cloned().unwrap_or_default();
            s.commit_statuses.push((sha, json.clone()));
            (StatusCode::CREATED, axum::Json(json!({ "id": s.commit_statuses.len(), "state": json["state"] })))
                .into_response()
        }
        "pulls/get" | "pulls/list" if s.inaccessible.contains(&format!("{}/{}", params["owner"], params["repo"])) => {
            error(StatusCode::NOT_FOUND, "Not Found")
        }
        "pulls/get" => match s.pulls.get(&number("pull_number")) {
            Some(p) => axum::Json(p.json(number("pull_number"))).into_response(),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
        "pulls/list" => list_pulls(&s, &params, &query, &headers),
        "apps/list-webhook-deliveries" | "repos/list-webhook-deliveries" => {
            list_deliveries(&s, hook_of(&op.id, &params), &query)
        }
        "apps/redeliver-webhook-delivery" | "repos/redeliver-webhook-delivery" => {
            redeliver(&mut s, state, hook_of(&op.id, &params), number("delivery_id"))
        }
        "checks/create" | "checks/update" | "checks/list-for-ref" if s.app.is_none() => {
            error(StatusCode::FORBIDDEN, "Resource not accessible by personal access token")
        }
        "checks/list-for-ref" => {
            let (sha, name) = (params.get("ref").cloned().unwrap_or_default(), query.get("check_name"));
            let found: Vec<Value> = s
                .check_runs
                .iter()
                .rev()
                .filter(|c| c.sha == sha && name.is_none_or(|n| *n == c.name))
                .map(|c| json!({ "id": c.id, "name": c.name, "head_sha": c.sha }))
                .collect();
            axum::Json(json!({ "total_count": found.len(), "check_runs": found })).into_response()
        }
        "checks/create" => {
            let id = s.id();
            let name = json["name"].as_str().unwrap_or_default().to_owned();
            let sha = json["head_sha"].as_str().unwrap_or_default().to_owned();
            let mut run = FakeCheckRun {
                id,
                name,
                sha,
                states: vec![],
                title: String::new(),
                summary: String::new(),
                details_url: None,
            };
            run.apply(&json);
            s.check_runs.push(run);
            (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response()
        }
        "checks/update" => {
            let id = number("check_run_id");
            match s.check_runs.iter_mut().find(|c| c.id == id) {
                Some(run) => {
                    run.apply(&json);
                    axum::Json(json!({ "id": id })).into_response()
                }
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        "repos/get-content" => {
            let key = (query.get("ref").cloned().unwrap_or_default(), params["path"].clone());
            match s.files.get(&key) {
                Some(text) => {
                    use base64::Engine as _;
                    // GitHub wraps the base64 at 60 characters.
                    let packed = base64::engine::general_purpose::STANDARD.encode(text);
                    let wrapped: Vec<String> =
                        packed.as_bytes().chunks(60).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
                    axum::Json(
                        json!({ "type": "file", "encoding": "base64", "path": key.1, "content": wrapped.join("\n") }),
                    )
                    .into_response()
                }
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        "repos/compare-commits" => match s.comparisons.get(&params["basehead"]) {
            Some(files) => {
                let files: Vec<Value> = files.iter().map(|f| json!({ "filename": f, "status": "modified" })).collect();
                axum::Json(json!({ "status": "ahead", "files": files })).into_response()
            }
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
        "reactions/create-for-issue-comment" => {
            let content = json["content"].as_str().unwrap_or_default().to_owned();
            s.reactions.push((number("comment_id"), content.clone()));
            (StatusCode::CREATED, axum::Json(json!({ "id": s.reactions.len(), "content": content }))).into_response()
        }
        "repos/get-collaborator-permission-level" => {
            let user = params.get("username").cloned().unwrap_or_default();
            let permission = s.permissions.get(&user).cloned().unwrap_or_else(|| "none".into());
            axum::Json(json!({ "permission": permission, "user": { "login": user } })).into_response()
        }
        other => error(StatusCode::NOT_IMPLEMENTED, &format!("{other} is not served by the fake")),
    };
    spend(&mut s, res)
}

/// Counts the request against the rate limit (a 304 costs nothing) and says what is left.
fn spend(s: &mut State, mut res: Response) -> Response {
    if let Some(r) = s.remaining.as_mut() {
        if res.status() != StatusCode::NOT_MODIFIED {
            *r = r.saturating_sub(1);
        }
        res.headers_mut().insert("x-ratelimit-remaining", r.to_string().parse().unwrap());
    }
    res
}

/// A repository's open pull requests, a page at a time, with an `ETag`: `If-None-Match` with
/// the same is answered 304.
fn list_pulls(
    s: &State,
    params: &HashMap<String, String>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let repository = format!("{}/{}", params["owner"], params["repo"]);
    if query.get("state").map(String::as_str) != Some("open") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "the fake lists open pull requests only");
    }
    let per_page: usize = query.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
    let page: usize = query.get("page").and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let mut open: Vec<(&u64, &FakePull)> =
        s.pulls.iter().filter(|(_, p)| !p.closed && p.repository().eq_ignore_ascii_case(&repository)).collect();
    open.sort_by_key(|(n, _)| std::cmp::Reverse(**n));
    let body: Vec<Value> = open.iter().skip((page - 1) * per_page).take(per_page).map(|(n, p)| p.json(**n)).collect();
    let more = open.len() > page * per_page;
    let text = serde_json::to_string(&body).unwrap();
    let etag = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&text, more).hash(&mut h);
        format!("W/\"{:016x}\"", h.finish())
    };
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        res.headers_mut().insert("etag", etag.parse().unwrap());
        return res;
    }
    let mut res = ([("content-type", "application/json")], text).into_response();
    res.headers_mut().insert("etag", etag.parse().unwrap());
    if more {
        let next = format!(
            "<https://api.github.com/repos/{repository}/pulls?state=open&per_page={per_page}&page={}>; rel=\"next\"",
            page + 1
        );
        res.headers_mut().insert("link", next.parse().unwrap());
    }
    res
}

/// Whose deliveries an operation is about: a repository's hook, or (None) the App's.
fn hook_of(operation: &str, params: &HashMap<String, String>) -> Option<(String, u64)> {
    operation.starts_with("repos/").then(|| {
        let id = params.get("hook_id").and_then(|v| v.parse().ok()).unwrap_or(0);
        (format!("{}/{}", params["owner"], params["repo"]), id)
    })
}

/// A hook's delivery attempts, newest first, a page at a time (the cursor is an offset here).
fn list_deliveries(s: &State, hook: Option<(String, u64)>, query: &HashMap<String, String>) -> Response {
    let per_page: usize = query.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
    let from: usize = query.get("cursor").and_then(|c| c.strip_prefix("v1_")).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut mine: Vec<&FakeDelivery> = s.deliveries.iter().filter(|d| d.hook == hook).collect();
    mine.sort_by_key(|d| std::cmp::Reverse((d.delivered_at, d.id)));
    let page: Vec<Value> = mine
        .iter()
        .skip(from)
        .take(per_page)
        .map(|d| {
            let at = chrono::DateTime::from_timestamp(d.delivered_at, 0).unwrap().to_rfc3339();
            json!({
                "id": d.id, "guid": d.guid, "delivered_at": at, "redelivery": d.redelivery,
                "duration": 0.1, "status": if (200..300).contains(&d.status_code) { "OK" } else { "failed" },
                "status_code": d.status_code, "event": d.event, "action": null,
            })
        })
        .collect();
    let mut res = axum::Json(Value::Array(page)).into_response();
    if mine.len() > from + per_page {
        let next = format!(
            "<https://api.github.com/app/hook/deliveries?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
            from + per_page
        );
        res.headers_mut().insert("link", next.parse().unwrap());
    }
    res
}

/// Sends an attempt's payload again, as a new attempt with the same delivery id, to the
/// platform's webhook; the attempt records the platform's answer.
fn redeliver(s: &mut State, state: &Arc<Mutex<State>>, hook: Option<(String, u64)>, id: u64) -> Response {
    let Some(original) = s.deliveries.iter().find(|d| d.id == id && d.hook == hook).cloned() else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(url) = s.webhook_url.clone() else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "the fake has no webhook URL to deliver to");
    };
    let again = FakeDelivery { id: s.id(), status_code: 0, delivered_at: now() as i64, redelivery: true, ..original };
    s.deliveries.push(again.clone());
    let state = state.clone();
    tokio::spawn(async move {
        let sent = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("x-github-event", &again.event)
            .header("x-github-delivery", &again.guid)
            .header("x-hub-signature-256", crate::sign(crate::SECRET.as_bytes(), &again.payload))
            .body(again.payload.clone())
            .send()
            .await;
        let code = sent.map(|r| r.status().as_u16()).unwrap_or(0);
        if let Some(d) = state.lock().unwrap().deliveries.iter_mut().find(|d| d.id == again.id) {
            d.status_code = code;
        }
    });
    (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response()
}

impl State {
    /// Adds a delivery attempt of the App's hook (`hook` None) or a repository's, made `age`
    /// ago; returns its id.
    pub fn add_delivery(
        &mut self,
        hook: Option<(&str, u64)>,
        guid: &str,
        event: &str,
        payload: &[u8],
        status_code: u16,
        age: std::time::Duration,
    ) -> u64 {
        let id = self.id();
        self.deliveries.push(FakeDelivery {
            id,
            guid: guid.into(),
            event: event.into(),
            payload: payload.to_vec(),
            status_code,
            delivered_at: now() as i64 - age.as_secs() as i64,
            redelivery: false,
            hook: hook.map(|(r, i)| (r.to_owned(), i)),
        });
        id
    }

    /// The attempts asked to be sent again (their originals' ids are not kept: by delivery id).
    pub fn redelivered(&self) -> Vec<String> {
        self.deliveries.iter().filter(|d| d.redelivery).map(|d| d.guid.clone()).collect()
    }
}
