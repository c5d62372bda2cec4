//! `/v1`: developer self-service. Every route needs the caller's identity: API Gateway's IAM
//! authorizer in AWS, the request's own SigV4 signature checked against local identities in
//! local mode. Unsigned, forged or stale requests get 403 and change nothing.

// Handlers refuse with a ready `Response`; it is large, but only built on the way out.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ephemera_app::selfservice::{Caller, CreateRequest, SelfServiceError};
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

async fn create(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let who = try_or!(caller(&state, &method, &uri, &headers, &body));
    let req: CreateRequest = try_or!(json_body(&body));
    let service = state.selfservice.as_ref().expect("checked by caller()");
    match service.create(&who, req).await {
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
}

async fn list(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let who = try_or!(caller(&state, &method, &uri, &headers, &body));
    let q: ListQuery = match Query::try_from_uri(&uri) {
        Ok(Query(q)) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
    };
    let service = state.selfservice.as_ref().expect("checked by caller()");
    match service.list(&who, q.all).await {
        Ok(views) => Json(json!({ "environments": views })).into_response(),
        Err(e) => into_response(e),
    }
}

async fn show(
    State(state): State<AppState>,
    Path(env): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let who = try_or!(caller(&state, &method, &uri, &headers, &body));
    let service = state.selfservice.as_ref().expect("checked by caller()");
    match service.get(&who, &env).await {
        Ok(e) => Json(ephemera_app::selfservice::View::of(&e)).into_response(),
        Err(e) => into_response(e),
    }
}

async fn destroy(
    State(state): State<AppState>,
    Path(env): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let who = try_or!(caller(&state, &method, &uri, &headers, &body));
    let service = state.selfservice.as_ref().expect("checked by caller()");
    match service.destroy(&who, &env).await {
        Ok(v) => (StatusCode::ACCEPTED, Json(v)).into_response(),
        Err(e) => into_response(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExtendRequest {
    hours: Option<i64>,
}

async fn extend(
    State(state): State<AppState>,
    Path(env): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let who = try_or!(caller(&state, &method, &uri, &headers, &body));
    let req: ExtendRequest = try_or!(json_body(&body));
    let Some(hours) = req.hours else {
        return error_response(StatusCode::BAD_REQUEST, "bad_request", "give {\"hours\": N}");
    };
    let service = state.selfservice.as_ref().expect("checked by caller()");
    match service.extend(&who, &env, hours).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => into_response(e),
    }
}

async fn set_preserved(
    state: AppState,
    env: String,
    on: bool,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let who = try_or!(caller(&state, &method, &uri, &headers, &body));
    let service = state.selfservice.as_ref().expect("checked by caller()");
    match service.preserve(&who, &env, on).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => into_response(e),
    }
}

async fn preserve(
    State(state): State<AppState>,
    Path(env): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    set_preserved(state, env, true, method, uri, headers, body).await
}

async fn unpreserve(
    State(state): State<AppState>,
    Path(env): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    set_preserved(state, env, false, method, uri, headers, body).await
}

#[derive(Deserialize, Default)]
struct ConfigQuery {
    format: Option<String>,
}

async fn config(
    State(state): State<AppState>,
    Path(env): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let who = try_or!(caller(&state, &method, &uri, &headers, &body));
    let q: ConfigQuery = Query::try_from_uri(&uri).map(|Query(q)| q).unwrap_or_default();
    let service = state.selfservice.as_ref().expect("checked by caller()");
    let cfg = match service.config(&who, &env).await {
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
