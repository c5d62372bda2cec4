//! `GET /`: the environments as a plain server-rendered page that refreshes itself, and
//! `GET /api/environments`: the same rows as JSON. Both take `?status=&kind=&q=&all=true`, and
//! come a page at a time: `?limit=` (100, at most 500) environments read, from `?after=` (the
//! `next` of the page before).
//!
//! In AWS the HTTP API's IAM authorizer guards both (API Gateway puts the caller on the
//! request); in local mode they are open when the runner listens on loopback only.

// Handlers refuse with a ready `Response`; it is large, but only built on the way out.
#![allow(clippy::result_large_err)]

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ephemera_app::dashboard::{Filter, Row, Rows};
use ephemera_domain::EnvironmentName;
use tracing::error;

use crate::{error_response, AppState, Identity};

/// Seconds between the page's own refreshes.
pub const REFRESH_SECONDS: u32 = 15;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page)).route("/api/environments", get(api))
}

pub(crate) fn allowed(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let ok = match &state.identity {
        Identity::ApiGateway => headers.contains_key(crate::CALLER_ARN_HEADER),
        Identity::Local(_) => state.dashboard_open,
    };
    if ok {
        Ok(())
    } else {
        Err(error_response(StatusCode::FORBIDDEN, "forbidden", "the dashboard needs an IAM identity"))
    }
}

async fn rows(state: &AppState, headers: &HeaderMap, filter: &Filter) -> Result<Rows, Response> {
    allowed(state, headers)?;
    let Some(dashboard) = &state.dashboard else {
        return Err(error_response(StatusCode::NOT_FOUND, "not_found", "the dashboard is not served here"));
    };
    let after = match filter.after.as_deref().filter(|a| !a.is_empty()).map(EnvironmentName::parse).transpose() {
        Ok(after) => after,
        Err(e) => {
            let why = format!("after must be the `next` of the page before (an environment name): {e}");
            return Err(error_response(StatusCode::BAD_REQUEST, "bad_request", &why));
        }
    };
    dashboard.rows(filter, after.as_ref()).await.map_err(|e| {
        error!(error = %e, "dashboard could not read the registry");
        error_response(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the registry could not be read; try again")
    })
}

async fn api(State(state): State<AppState>, headers: HeaderMap, Query(filter): Query<Filter>) -> Response {
    match rows(&state, &headers, &filter).await {
        Ok(page) => {
            let body = serde_json::json!({ "environments": page.rows, "count": page.rows.len(), "next": page.next });
            Json(body).into_response()
        }
        Err(r) => r,
    }
}

async fn page(State(state): State<AppState>, headers: HeaderMap, Query(filter): Query<Filter>) -> Response {
    match rows(&state, &headers, &filter).await {
        Ok(page) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
            render(&page, &filter, chrono::Utc::now()),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Only http(s) links are rendered as links.
pub(crate) fn link(url: &str, text: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        format!(r#"<a href="{}" rel="noopener noreferrer">{}</a>"#, escape(url), escape(text))
    } else {
        escape(text)
    }
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub(crate) const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1f2328}\
h1{font-size:1.4rem;margin:0 0 .8rem}form{margin:0 0 1rem;display:flex;gap:.5rem;flex-wrap:wrap}\
input,select,button{font:inherit;padding:.25rem .4rem}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}\
th{background:#f6f8fa;position:sticky;top:0}tr:hover td{background:#f6f8fa}\
.status{font-weight:600;padding:.1rem .4rem;border-radius:1rem;font-size:12px;white-space:nowrap}\
.READY{background:#dafbe1;color:#116329}.FAILED{background:#ffebe9;color:#a40e26}\
.CREATING,.UPDATING,.PENDING,.QUEUED{background:#fff8c5;color:#7d4e00}\
.DELETING,.DELETED{background:#eaeef2;color:#57606a}.muted{color:#57606a}.reason{font-size:12px;color:#57606a;white-space:pre-line}\
code{font:12px ui-monospace,monospace}";

/// The page: a filter form and one table row per environment.
pub fn render(page: &Rows, filter: &Filter, now: chrono::DateTime<chrono::Utc>) -> String {
    let rows = &page.rows;
    let mut h = String::with_capacity(4096 + rows.len() * 600);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>Ephemera: environments</title><style>{STYLE}</style></head><body>\
         <h1>Ephemera environments</h1>"
    );
    let sel = |v: &str, cur: &Option<String>| {
        if cur.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(v)) {
            " selected"
        } else {
            ""
        }
    };
    let _ = write!(
        h,
        "<form method=\"get\" action=\"/\" role=\"search\">\
         <input type=\"search\" name=\"q\" placeholder=\"name, repository or owner\" aria-label=\"Search\" value=\"{}\">\
         <select name=\"kind\" aria-label=\"Kind\"><option value=\"\">all kinds</option>\
         <option value=\"pr\"{}>pull requests</option><option value=\"branch\"{}>branches</option>\
         <option value=\"dev\"{}>developers</option></select>\
         <select name=\"status\" aria-label=\"Status\"><option value=\"\">live statuses</option>",
        escape(filter.q.as_deref().unwrap_or("")),
        sel("pr", &filter.kind),
        sel("branch", &filter.kind),
        sel("dev", &filter.kind),
    );
    for st in ephemera_domain::Status::ALL {
        let _ = write!(h, "<option value=\"{0}\"{1}>{0}</option>", st.as_str(), sel(st.as_str(), &filter.status));
    }
    let _ = write!(
        h,
        "</select><button type=\"submit\">Filter</button></form>\
         <p class=\"muted\" id=\"summary\">{} environment{} · refreshed {} UTC · every {REFRESH_SECONDS} s</p>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        now.format("%H:%M:%S"),
    );
    if rows.is_empty() {
        // More may match on the pages after this one.
        let empty = if page.next.is_some() { "No environments match on this page." } else { "No environments match." };
        let _ = write!(h, "<p id=\"empty\">{empty}</p>");
    } else {
        h.push_str(
            "<table id=\"environments\"><thead><tr><th>Environment</th><th>Kind</th><th>Repository / PR</th>\
             <th>Owner</th><th>Commit</th><th>Status</th><th>Account</th><th>Age</th><th>Expires (UTC)</th>\
             <th>Est. cost</th><th>Preview</th></tr></thead><tbody>",
        );
        for r in rows {
            row(&mut h, r);
        }
        h.push_str("</tbody></table>");
    }
    if let Some(next) = &page.next {
        let _ = write!(h, "<p><a id=\"next\" href=\"{}\">Next page →</a></p>", escape(&next_link(filter, next)));
    }
    h.push_str("</body></html>");
    h
}

/// The page after this one, with the same filter.
fn next_link(filter: &Filter, next: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let parts = [("q", &filter.q), ("kind", &filter.kind), ("status", &filter.status)];
    for (k, v) in parts {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            q.append_pair(k, v);
        }
    }
    if filter.all == Some(true) {
        q.append_pair("all", "true");
    }
    if let Some(limit) = filter.limit {
        q.append_pair("limit", &limit.to_string());
    }
    q.append_pair("after", next);
    format!("/?{}", q.finish())
}

/// One environment's table row.
fn row(h: &mut String, r: &Row) {
    let repo = match (&r.repository, r.pull_request, &r.pull_request_url) {
        (Some(repo), Some(n), Some(url)) => format!("{} {}", escape(repo), link(url, &format!("#{n}"))),
        (Some(repo), _, _) => escape(repo),
        _ => "<span class=\"muted\">–</span>".into(),
    };
    let commit = r.commit.as_deref().map(|c| format!("<code>{}</code>", escape(&c[..c.len().min(7)])));
    let cost = match (r.cost_monthly_usd, r.cost_accrued_usd) {
        (Some(m), Some(a)) => format!("${m:.2}/mo<br><span class=\"muted\">${a:.2} so far</span>"),
        (Some(m), None) => format!("${m:.2}/mo"),
        _ => "–".into(),
    };
    let preview = r.preview_url.as_deref().map(|u| link(u, "open")).unwrap_or_else(|| "–".into());
    let reason = r.reason.as_deref().map(|x| format!("<div class=\"reason\">{}</div>", escape(x))).unwrap_or_default();
    let pinned = if r.preserved { " 📌" } else { "" };
    let account = match (&r.account, &r.region) {
        (Some(a), Some(region)) => {
            format!("<code>{}</code><br><span class=\"muted\">{}</span>", escape(a), escape(region))
        }
        (None, Some(region)) => format!("platform<br><span class=\"muted\">{}</span>", escape(region)),
        _ => "platform".into(),
    };
    let _ = write!(
        h,
        "<tr data-name=\"{name}\" data-status=\"{status}\"><td><a href=\"/environments/{name}\"><code>{name}</code></a>{pinned}{soon}</td><td>{kind}</td>\
         <td>{repo}</td><td>{owner}</td><td>{commit}</td>\
         <td><span class=\"status {status}\">{status}</span>{reason}</td><td>{account}</td><td>{age}</td>\
         <td>{expires}</td><td>{cost}</td><td>{preview}</td></tr>",
        name = escape(&r.name),
        kind = r.kind,
        owner = escape(&r.owner),
        commit = commit.unwrap_or_else(|| "–".into()),
        status = r.status,
        age = age(r.age_seconds),
        expires = r.expires_at.format("%Y-%m-%d %H:%M"),
        soon = if r.expires_soon { " <span class=\"soon\" title=\"expires soon: extend it to keep it\">⏰</span>" } else { "" },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: &'static str) -> Row {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap().to_utc();
        Row {
            name: name.into(),
            kind: "pr",
            repository: Some("acme/todo-app".into()),
            pull_request: Some(7),
            pull_request_url: Some("https://github.com/acme/todo-app/pull/7".into()),
            owner: "<script>alert(1)</script>".into(),
            commit: Some("6dcb09b5b57875f334f61aebed695e2e4193db5e".into()),
            status,
            desired: "up",
            reason: None,
            created_at: t,
            age_seconds: 3720,
            expires_at: t,
            preserved: false,
            expires_soon: false,
            cost_monthly_usd: Some(3.2),
            cost_accrued_usd: None,
            preview_url: Some("javascript:alert(1)".into()),
            account: Some("222222222222".into()),
            region: Some("us-east-1".into()),
        }
    }

    #[test]
    fn renders_rows_escaped() {
        let page = Rows { rows: vec![row("pr-7-acme-todo-app-6acfdc9491", "READY")], next: None };
        let html = render(&page, &Filter::default(), chrono::Utc::now());
        assert!(html.contains("<code>pr-7-acme-todo-app-6acfdc9491</code>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>"));
        assert!(!html.contains("href=\"javascript:"), "only http(s) links");
        assert!(html.contains("href=\"https://github.com/acme/todo-app/pull/7\""));
        assert!(html.contains("<code>6dcb09b</code>") && html.contains("1h 2m") && html.contains("$3.20/mo"));
        assert!(html.contains("http-equiv=\"refresh\""));
        assert!(html.contains("<code>222222222222</code>") && !html.contains("id=\"next\""));
        let empty = Rows { rows: vec![], next: Some("dev-kyle".into()) };
        let filter = Filter { q: Some("\"><b>".into()), kind: Some("dev".into()), ..Default::default() };
        let empty = render(&empty, &filter, chrono::Utc::now());
        assert!(empty.contains("No environments match") && empty.contains("value=\"&quot;&gt;&lt;b&gt;\""));
        // The next page keeps the filter.
        assert!(empty.contains("href=\"/?q=%22%3E%3Cb%3E&amp;kind=dev&amp;after=dev-kyle\""), "{empty}");
    }
}
