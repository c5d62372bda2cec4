//! `/v1`: developer self-service. Every route needs the caller's identity: API Gateway's IAM
//! authorizer in AWS, the request's own SigV4 signature checked against local identities in
//! local mode. Unsigned, forged or stale requests get 403 and change nothing.

// Handlers refuse with a ready `Response`; it is large, but only built on the way out.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ephemera_app::selfservice::{Caller, CreateRequest, Push, SelfServiceError};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use crate::{error_response, AppState, Identity};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/environments", post(create).get(list))
        .route("/v1/environments/{env}", get(show).delete(destroy))
        .route("/v1/environments/{env}/extend", post(extend))
        .route("/v1/environments/{env}/preserve", put(preserve).delete(unpreserve))
        .route("/v1/environments/{env}/config", get(config))
        .route("/v1/environments/{env}/owner", put(adopt))
        .route("/v1/environments/{env}/template", put(push_template))
        .route("/v1/environments/{env}/schema", put(push_schema))
}

/// The verified caller, or the response refusing the request.
fn caller(state: &AppState, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Caller, Response> {
    let Some(service) = &state.selfservice else {
        return Err(error_response(StatusCode::NOT_FOUND, "not_found", "self-service is not enabled here"));
    };
    let arn = match &state.identity {
        Identity::ApiGateway => headers
            .get(crate::CALLER_ARN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| error_response(StatusCode::FORBIDDEN, "forbidden", "no IAM identity on the request")),
        Identity::Local(ids) => ids.verify(method, uri, headers, body, chrono::Utc::now()).map_err(|e| {
            warn!(error = %e, "refused request");
            error_response(StatusCode::FORBIDDEN, "forbidden", e.to_string())
        }),
    }?;
    service.caller(&arn).map_err(into_response)
}

fn into_response(e: SelfServiceError) -> Response {
    let (status, code) = match &e {
        SelfServiceError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        SelfServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        SelfServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        SelfServiceError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        SelfServiceError::QuotaReached(_) => (StatusCode::TOO_MANY_REQUESTS, "quota_reached"),
        SelfServiceError::NotReady(_) => (StatusCode::CONFLICT, "not_ready"),
        SelfServiceError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        SelfServiceError::Refused(violations) => {
            let body = json!({ "error": {
                "code": "blueprint_refused",
                "message": format!("the template breaks the blueprint policy ({} violations); nothing was changed", violations.len()),
                "violations": violations,
            }});
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
    };
    error_response(status, code, e.to_string())
}

fn json_body<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        error_response(StatusCode::BAD_REQUEST, "bad_request", format!("the request body is not valid: {e}"))
    })
}

macro_rules! try_or {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

/// Self-service request bodies are small; anything larger is refused.
const MAX_API_BODY: usize = 64 * 1024;

/// A verified self-service request: who sent it, the service, and what was sent.
struct Authed {
    who: Caller,
    service: std::sync::Arc<ephemera_app::selfservice::SelfService>,
    uri: Uri,
    body: Bytes,
}

impl FromRequest<AppState> for Authed {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, MAX_API_BODY).await.map_err(|_| {
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is larger than {} KiB", MAX_API_BODY / 1024),
            )
        })?;
        let who = caller(state, &parts.method, &parts.uri, &parts.headers, &body)?;
        let service = state.selfservice.clone().expect("caller() answers 404 without the service");
        Ok(Self { who, service, uri: parts.uri, body })
    }
}

/// The outcome as JSON with `status`, or the error's response.
fn reply<T: serde::Serialize>(status: StatusCode, result: Result<T, SelfServiceError>) -> Response {
    match result {
        Ok(v) => (status, Json(v)).into_response(),
        Err(e) => into_response(e),
    }
}

async fn create(a: Authed) -> Response {
    let req: CreateRequest = try_or!(json_body(&a.body));
    match a.service.create(&a.who, req).await {
        Ok(view) => {
            let status = if view.queue_position.is_some() { StatusCode::ACCEPTED } else { StatusCode::CREATED };
            (status, Json(view)).into_response()
        }
        Err(e) => into_response(e),
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn list(a: Authed) -> Response {
    let q: ListQuery = match Query::try_from_uri(&a.uri) {
        Ok(Query(q)) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
    };
    let listing = a.service.list(&a.who, q.all, q.after.as_deref().filter(|s| !s.is_empty()), q.limit).await;
    reply(StatusCode::OK, listing)
}

async fn show(Path(env): Path<String>, a: Authed) -> Response {
    reply(StatusCode::OK, a.service.show(&a.who, &env).await)
}

async fn destroy(Path(env): Path<String>, a: Authed) -> Response {
    reply(StatusCode::ACCEPTED, a.service.destroy(&a.who, &env).await)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExtendRequest {
    hours: Option<i64>,
}

async fn extend(Path(env): Path<String>, a: Authed) -> Response {
    let req: ExtendRequest = try_or!(json_body(&a.body));
    let Some(hours) = req.hours else {
        return error_response(StatusCode::BAD_REQUEST, "bad_request", "give {\"hours\": N}");
    };
    reply(StatusCode::OK, a.service.extend(&a.who, &env, hours).await)
}

async fn preserve(Path(env): Path<String>, a: Authed) -> Response {
    reply(StatusCode::OK, a.service.preserve(&a.who, &env, true).await)
}

async fn unpreserve(Path(env): Path<String>, a: Authed) -> Response {
    reply(StatusCode::OK, a.service.preserve(&a.who, &env, false).await)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AdoptRequest {
    owner: Option<String>,
}

async fn adopt(Path(env): Path<String>, a: Authed) -> Response {
    let req: AdoptRequest = try_or!(json_body(&a.body));
    let Some(owner) = req.owner else {
        return error_response(StatusCode::BAD_REQUEST, "bad_request", "give {\"owner\": \"<principal ARN>\"}");
    };
    reply(StatusCode::OK, a.service.adopt(&a.who, &env, &owner).await)
}

/// The body as text: a template (YAML or JSON) or a GraphQL schema.
fn text_body(body: &[u8], what: &str) -> Result<String, Response> {
    let text = std::str::from_utf8(body)
        .map_err(|_| error_response(StatusCode::BAD_REQUEST, "bad_request", format!("the {what} is not UTF-8 text")))?;
    if text.trim().is_empty() {
        return Err(error_response(StatusCode::BAD_REQUEST, "bad_request", format!("send the {what} as the body")));
    }
    Ok(text.to_owned())
}

async fn push_template(Path(env): Path<String>, a: Authed) -> Response {
    let body = try_or!(text_body(&a.body, "template"));
    reply(StatusCode::ACCEPTED, a.service.push(&a.who, &env, Push::Template(body)).await)
}

async fn push_schema(Path(env): Path<String>, a: Authed) -> Response {
    let body = try_or!(text_body(&a.body, "schema"));
    reply(StatusCode::ACCEPTED, a.service.push(&a.who, &env, Push::Schema(body)).await)
}

#[derive(Deserialize, Default)]
struct ConfigQuery {
    format: Option<String>,
}

async fn config(Path(env): Path<String>, a: Authed) -> Response {
    let q: ConfigQuery = Query::try_from_uri(&a.uri).map(|Query(q)| q).unwrap_or_default();
    let cfg = match a.service.config(&a.who, &env).await {
        Ok(c) => c,
        Err(e) => return into_response(e),
    };
    match q.format.as_deref() {
        None | Some("json") => Json(cfg).into_response(),
        Some("js") => {
            let mut res = cfg.to_js().into_response();
            res.headers_mut().insert("content-type", HeaderValue::from_static("text/javascript; charset=utf-8"));
            res
        }
        Some(other) => {
            error_response(StatusCode::BAD_REQUEST, "bad_request", format!("format must be json or js, not {other:?}"))
        }
    }
}
