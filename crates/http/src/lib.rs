//! Ephemera's HTTP surface as one axum [`Router`]: the Lambda function serves it through
//! `lambda_http`, the local runner serves it on a TCP port. Same handlers, same answers.
//!
//! Errors are JSON `{"error": {"code", "message"}}`; every response carries `x-request-id`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ephemera_app::intake::{Delivery, Intake, IntakeError};
use serde_json::json;
use tracing::error;

/// Webhook bodies larger than this are refused with 413 (GitHub's own cap is 25 MB; pull
/// request payloads are a few tens of KB).
pub const MAX_WEBHOOK_BODY: usize = 2 * 1024 * 1024;

pub mod dashboard;
pub mod environment_page;
pub mod sigv4;
mod v1;

/// Where the caller's identity comes from on `/v1` routes.
#[derive(Clone)]
pub enum Identity {
    /// API Gateway's IAM authorizer (in AWS); the Lambda adapter puts the ARN in a header.
    ApiGateway,
    /// SigV4 checked here against local identities (local mode).
    Local(Arc<sigv4::LocalIdentities>),
}

/// The header the Lambda adapter sets from API Gateway's IAM authorizer context; any value a
/// client sends is removed first.
pub const CALLER_ARN_HEADER: &str = "x-ephemera-caller-arn";

#[derive(Clone)]
pub struct AppState {
    pub intake: Option<Arc<Intake>>,
    pub selfservice: Option<Arc<ephemera_app::selfservice::SelfService>>,
    pub dashboard: Option<Arc<ephemera_app::dashboard::Dashboard>>,
    /// Local mode only: serve the dashboard without a signature (the runner is on loopback).
    pub dashboard_open: bool,
    pub identity: Identity,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/github", post(github_webhook).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY)))
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .merge(v1::routes())
        .merge(dashboard::routes())
        .merge(environment_page::routes())
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// Adds `x-request-id` (API Gateway's, or a new one) to every response, and replaces any
/// caller header a client sent with the one API Gateway's IAM authorizer vouches for.
async fn request_id(mut req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    req.headers_mut().remove(CALLER_ARN_HEADER);
    if let Some(arn) = lambda_caller_arn(&req) {
        if let Ok(v) = HeaderValue::from_str(&arn) {
            req.headers_mut().insert(CALLER_ARN_HEADER, v);
        }
    }
    let id = req
        .headers()
        .get("x-request-id")
        .or_else(|| req.headers().get("x-amzn-requestid"))
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message.into() } }))).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn github_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("webhook body is larger than {MAX_WEBHOOK_BODY} bytes"),
            )
        }
        Err(rejection) => return error_response(StatusCode::BAD_REQUEST, "bad_request", rejection.body_text()),
    };
    let content_type = header(&headers, "content-type").unwrap_or("application/json");
    // GitHub sends one of its two content types; anything else is not a webhook delivery.
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media != "application/json" && media != "application/x-www-form-urlencoded" {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("content type {media:?}: expected application/json or application/x-www-form-urlencoded"),
        );
    }
    let delivery = Delivery {
        event: header(&headers, "x-github-event"),
        id: header(&headers, "x-github-delivery"),
        signature: header(&headers, "x-hub-signature-256"),
        body: &body,
        form_encoded: content_type.starts_with("application/x-www-form-urlencoded"),
    };
    let Some(intake) = &state.intake else {
        return error_response(StatusCode::NOT_FOUND, "not_found", "webhooks are not received here");
    };
    match intake.handle(delivery).await {
        Ok(reply) => {
            let status = if reply.accepted { StatusCode::ACCEPTED } else { StatusCode::OK };
            (status, Json(reply.body)).into_response()
        }
        Err(IntakeError::Unauthorized(e)) => {
            error_response(StatusCode::UNAUTHORIZED, "invalid_signature", e.to_string())
        }
        Err(IntakeError::BadRequest(m)) => error_response(StatusCode::BAD_REQUEST, "bad_request", m),
        Err(IntakeError::Conflict(m)) => error_response(StatusCode::CONFLICT, "conflict", m),
        Err(IntakeError::Unavailable(e)) => {
            error!(error = %e, "webhook could not be recorded");
            let mut res = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the delivery could not be recorded; redeliver it from GitHub",
            );
            res.headers_mut().insert("retry-after", HeaderValue::from_static("5"));
            res
        }
    }
}

/// The IAM principal API Gateway authorized, from the Lambda request context.
fn lambda_caller_arn(req: &axum::extract::Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    match req.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref()?.iam.as_ref()?.user_arn.clone(),
        _ => None,
    }
}
