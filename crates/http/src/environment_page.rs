//! `GET /environments/{env}`: one environment's page (what the pull request's comment and check
//! runs link to): its timeline, each transition with its time and reason; its stack's
//! resources; its cost so far, with a small plot of cost over time; and its links.
//! `GET /api/environments/{env}` gives the same as JSON. Guarded as the list is.

// Handlers refuse with a ready `Response`; it is large, but only built on the way out.
#![allow(clippy::result_large_err)]

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use ephemera_app::dashboard::Detail;
use ephemera_domain::EnvironmentName;
use tracing::error;

use crate::dashboard::{allowed, escape, link, STYLE};
use crate::{error_response, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/environments/{env}", get(page)).route("/api/environments/{env}", get(api))
}

async fn detail(state: &AppState, headers: &HeaderMap, env: &str) -> Result<Detail, Response> {
    allowed(state, headers)?;
    let Some(dashboard) = &state.dashboard else {
        return Err(error_response(StatusCode::NOT_FOUND, "not_found", "the dashboard is not served here"));
    };
    let name = EnvironmentName::parse(env)
        .map_err(|e| error_response(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    match dashboard.environment(&name).await {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(error_response(StatusCode::NOT_FOUND, "not_found", format!("no environment {name}"))),
        Err(e) => {
            error!(error = %e, "dashboard could not read the registry");
            Err(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the registry could not be read; try again",
            ))
        }
    }
}

async fn api(State(state): State<AppState>, headers: HeaderMap, Path(env): Path<String>) -> Response {
    match detail(&state, &headers, &env).await {
        Ok(d) => Json(d).into_response(),
        Err(r) => r,
    }
}

async fn page(State(state): State<AppState>, headers: HeaderMap, Path(env): Path<String>) -> Response {
    match detail(&state, &headers, &env).await {
        Ok(d) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], render(&d))
                .into_response()
        }
        Err(r) => r,
    }
}

/// The page.
pub fn render(d: &Detail) -> String {
    let r = &d.row;
    let mut h = String::with_capacity(8192);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Ephemera: {name}</title><style>{STYLE}</style></head><body>\
         <p><a href=\"/\">← All environments</a></p><h1><code>{name}</code> \
         <span class=\"status {status}\" id=\"status\">{status}</span></h1>",
        name = escape(&r.name),
        status = r.status,
    );
    facts(&mut h, d);
    let _ = write!(h, "<h2>Cost</h2><p id=\"cost\">{}</p>", cost_text(d));
    h.push_str(&plot(&d.cost));
    timeline(&mut h, d);
    resources(&mut h, d);
    h.push_str("</body></html>");
    h
}

fn facts(h: &mut String, d: &Detail) {
    let r = &d.row;
    h.push_str("<table id=\"facts\"><tbody>");
    let mut fact = |k: &str, v: String| {
        let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    fact("Kind", r.kind.to_owned());
    if let (Some(repo), Some(url)) = (&r.repository, &r.pull_request_url) {
        fact(
            "Pull request",
            format!("{} {}", escape(repo), link(url, &format!("#{}", r.pull_request.unwrap_or_default()))),
        );
    }
    fact("Owner", escape(&r.owner));
    if let Some(c) = &r.commit {
        fact("Commit", format!("<code>{}</code>", escape(c)));
    }
    if let Some(url) = &r.preview_url {
        fact("Preview", link(url, url));
    }
    fact("Stack", format!("<code>{}</code>", escape(&d.stack)));
    fact("Account", escape(r.account.as_deref().unwrap_or("the platform's")));
    let expires =
        if r.preserved { "never: preserved".to_owned() } else { r.expires_at.format("%Y-%m-%d %H:%M UTC").to_string() };
    fact("Expires", escape(&expires));
    if let Some(reason) = &r.reason {
        fact("Reason", format!("<span class=\"reason\">{}</span>", escape(reason)));
    }
    h.push_str("</tbody></table>");
}

fn cost_text(d: &Detail) -> String {
    // The reaper's figure, as the list shows it; the timeline's, until it has one.
    let so_far = d.row.cost_accrued_usd.unwrap_or_else(|| d.cost.last().map_or(0.0, |(_, c)| *c));
    match d.row.cost_monthly_usd {
        Some(m) => format!("${so_far:.2} so far, at ${m:.2} a month"),
        None => "Not estimated yet.".into(),
    }
}

/// Cost over time as an inline SVG polyline (no script, no external asset).
fn plot(series: &[(DateTime<Utc>, f64)]) -> String {
    const W: f64 = 480.0;
    const H: f64 = 120.0;
    let (Some(first), Some(last)) = (series.first(), series.last()) else { return String::new() };
    let span = (last.0 - first.0).num_seconds().max(1) as f64;
    let top = series.iter().map(|(_, c)| *c).fold(0.0_f64, f64::max).max(0.01);
    let points: Vec<String> = series
        .iter()
        .map(|(t, c)| {
            let x = (t.signed_duration_since(first.0).num_seconds() as f64 / span) * W;
            format!("{x:.1},{:.1}", H - c / top * H)
        })
        .collect();
    format!(
        "<svg id=\"cost-plot\" role=\"img\" aria-label=\"cost over time, up to ${top:.2}\" viewBox=\"0 0 {W} {H}\" \
         width=\"{W}\" height=\"{H}\" style=\"border:1px solid #d0d7de;background:#f6f8fa\">\
         <polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" points=\"{}\"/></svg>",
        points.join(" ")
    )
}

fn timeline(h: &mut String, d: &Detail) {
    h.push_str("<h2>Timeline</h2>");
    if d.timeline.is_empty() {
        h.push_str("<p id=\"timeline-empty\" class=\"muted\">Nothing recorded yet.</p>");
        return;
    }
    h.push_str("<table id=\"timeline\"><thead><tr><th>Time (UTC)</th><th>What</th><th>Generation</th><th>Reason</th></tr></thead><tbody>");
    for m in &d.timeline {
        let _ = write!(
            h,
            "<tr data-status=\"{status}\"><td>{at}</td><td><span class=\"status {status}\">{what}</span></td><td>{g}</td><td class=\"reason\">{reason}</td></tr>",
            status = m.status,
            at = m.at.format("%Y-%m-%d %H:%M:%S"),
            what = escape(&m.what),
            g = m.generation,
            reason = escape(m.reason.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</tbody></table>");
}

fn resources(h: &mut String, d: &Detail) {
    h.push_str("<h2>Resources</h2>");
    if d.resources.is_empty() {
        h.push_str("<p id=\"resources-empty\" class=\"muted\">No stack resources recorded.</p>");
        return;
    }
    h.push_str("<table id=\"resources\"><thead><tr><th>Logical id</th><th>Type</th><th>Physical id</th><th>Status</th></tr></thead><tbody>");
    for r in &d.resources {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&r.logical_id),
            escape(&r.resource_type),
            escape(r.physical_id.as_deref().unwrap_or("–")),
            escape(&r.status),
        );
    }
    h.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephemera_app::dashboard::{Moment, Resource, Row};

    fn detail() -> Detail {
        let t = |h: i64| DateTime::from_timestamp(1_764_000_000 + h * 3600, 0).unwrap();
        Detail {
            row: Row {
                name: "pr-7-acme-todo-app-6acfdc9491".into(),
                kind: "pr",
                repository: Some("acme/todo-app".into()),
                pull_request: Some(7),
                pull_request_url: Some("https://github.com/acme/todo-app/pull/7".into()),
                owner: "kyle<script>".into(),
                commit: Some("a3b9c1d".into()),
                status: "READY",
                desired: "up",
                reason: None,
                created_at: t(0),
                age_seconds: 7200,
                expires_at: t(170),
                preserved: false,
                expires_soon: false,
                cost_monthly_usd: Some(730.0),
                cost_accrued_usd: Some(1.0),
                preview_url: Some("https://preview.example.com".into()),
                account: None,
                region: Some("us-east-1".into()),
            },
            stack: "ephemera-pr-7-acme-todo-app-6acfdc9491".into(),
            timeline: vec![Moment {
                at: t(1),
                what: "Failed".into(),
                status: "FAILED",
                generation: 1,
                reason: Some("<img src=x onerror=alert(1)>".into()),
            }],
            resources: vec![Resource {
                logical_id: "Files".into(),
                resource_type: "AWS::S3::Bucket".into(),
                physical_id: Some("ephemera-pr-7-files".into()),
                status: "CREATE_COMPLETE".into(),
            }],
            cost: vec![(t(0), 0.0), (t(1), 0.5), (t(2), 1.0)],
        }
    }

    #[test]
    fn the_page_shows_timeline_resources_and_cost_escaped() {
        let html = render(&detail());
        assert!(html.contains("id=\"timeline\"") && html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!html.contains("<img") && !html.contains("kyle<script>"));
        assert!(html.contains("AWS::S3::Bucket") && html.contains("ephemera-pr-7-files"));
        assert!(html.contains("$1.00 so far, at $730.00 a month"));
        assert!(html.contains("points=\"0.0,120.0 240.0,60.0 480.0,0.0\""), "{html}");
        assert!(html.contains("href=\"https://github.com/acme/todo-app/pull/7\""));
    }
}
