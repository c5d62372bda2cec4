//! The dashboard over HTTP: `GET /` (HTML) and `GET /api/environments` (JSON), filtered.

use std::sync::Arc;

use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::Platform;
use ephemera_wiring::platform;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_and_filters_environments() {
    let p = Platform::start().await;
    assert_eq!(p.deliver("pull_request", "d-open", OPENED).await.0, 202);
    let service = platform::selfservice(&p.config.shared, &p.config.selfservice, &p.functions.selfservice);
    let kyle = service.caller("arn:aws:iam::123456789012:user/kyle").unwrap();
    service.create(&kyle, Default::default()).await.unwrap();
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    p.wait_for("dev-kyle", Status::Ready).await;

    let get = |path: &str| {
        let url = format!("{}{path}", p.base_url);
        let http = p.http.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            let status = res.status().as_u16();
            let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            (status, ctype, res.text().await.unwrap())
        }
    };
    let (status, ctype, body) = get("/api/environments").await;
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["count"], 2, "{json}");
    let pr = json["environments"].as_array().unwrap().iter().find(|e| e["kind"] == "pr").unwrap();
    assert_eq!(pr["name"], ENVIRONMENT);
    assert_eq!(pr["pull_request_url"], "https://github.com/acme/todo-app/pull/7");
    assert_eq!(pr["status"], "READY");
    assert_eq!(pr["commit"], HEAD_OPENED);
    assert!(pr["cost_monthly_usd"].as_f64().unwrap() > 0.0, "{pr}");

    let (_, _, body) = get("/api/environments?kind=dev").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["count"], 1);
    assert_eq!(json["environments"][0]["name"], "dev-kyle");

    let (status, ctype, html) = get("/?q=todo-app").await;
    assert_eq!((status, ctype.as_str()), (200, "text/html; charset=utf-8"));
    assert!(html.contains(ENVIRONMENT) && !html.contains("<code>dev-kyle</code>"), "{html}");
    assert!(html.contains("1 environment ·"));

    // Closed environments leave the default view, and can be asked for.
    assert_eq!(p.deliver("pull_request", "d-close", CLOSED).await.0, 202);
    p.wait_for(ENVIRONMENT, Status::Deleted).await;
    let (_, _, html) = get("/").await;
    assert!(!html.contains(ENVIRONMENT) && html.contains("dev-kyle"));
    let (_, _, html) = get("/?status=DELETED").await;
    assert!(html.contains(ENVIRONMENT));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_aws_the_dashboard_needs_the_iam_authorizers_caller() {
    let p = Platform::start().await;
    let app = ephemera_http::router(ephemera_http::AppState {
        intake: None,
        selfservice: None,
        dashboard: Some(Arc::new(platform::dashboard(&p.config.shared, &p.functions.selfservice))),
        dashboard_open: true,
        identity: ephemera_http::Identity::ApiGateway,
    });
    let request = |caller: Option<&str>| {
        let mut b = axum::http::Request::get("/api/environments");
        if let Some(c) = caller {
            b = b.header(ephemera_http::CALLER_ARN_HEADER, c);
        }
        b.body(axum::body::Body::empty()).unwrap()
    };
    // A header a client sets itself is removed: only API Gateway's authorizer context counts.
    let res = app.clone().oneshot(request(Some("arn:aws:iam::123456789012:user/mallory"))).await.unwrap();
    assert_eq!(res.status(), 403);
    let res = app.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(res.status(), 403);
    p.stop().await;
}
