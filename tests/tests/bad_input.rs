//! Every boundary of the webhook, with the status expected and nothing recorded for refusals.

use ephemera_tests::fixtures::OPENED;
use ephemera_tests::{edit, sign, Platform, SECRET};
use serde_json::json;

struct Case {
    what: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    records: bool,
}

fn signed(body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("x-github-event", "pull_request".into()),
        ("x-github-delivery", uuid::Uuid::new_v4().to_string()),
        ("x-hub-signature-256", sign(SECRET.as_bytes(), body)),
    ]
}

fn case(what: &'static str, body: Vec<u8>, status: u16) -> Case {
    Case { what, headers: signed(&body), body, status, records: false }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_boundary_answers_as_expected_and_refusals_record_nothing() {
    let p = Platform::start().await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let long_repo = format!("acme/{}", "r".repeat(250));
    let mut cases = vec![
        case("over 2 MiB", vec![b' '; 2 * 1024 * 1024 + 1], 413),
        case("not UTF-8", vec![0xff, 0xfe, 0x7b, 0x00], 400),
        case("deeply nested JSON", nested, 400),
        case("JSON, not an object", b"[1,2,3]".to_vec(), 400),
        case("empty body", Vec::new(), 400),
        case("unicode repository name", edit(OPENED, &[("repository.full_name", json!("acme/tödo-äpp"))]), 400),
        case("255-character repository name", edit(OPENED, &[("repository.full_name", json!(long_repo))]), 400),
        case("head sha that is not a commit", edit(OPENED, &[("pull_request.head.sha", json!("../../etc"))]), 400),
        case("pull request number zero", edit(OPENED, &[("number", json!(0)), ("pull_request.number", json!(0))]), 400),
    ];
    // Unicode and very long branch names are just names: accepted.
    let long_branch = edit(OPENED, &[("pull_request.head.ref", json!(format!("feature/{}", "ü".repeat(120))))]);
    cases.push(Case {
        what: "unicode, long branch name",
        headers: signed(&long_branch),
        body: long_branch,
        status: 202,
        records: true,
    });
    // Header names are case-insensitive: read correctly, this is the open recorded just before
    // (the same pull request and time), so it is stale (200), not refused.
    let body = OPENED.to_vec();
    let shouting = vec![
        ("X-GITHUB-EVENT", "pull_request".into()),
        ("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string()),
        ("X-Hub-Signature-256", sign(SECRET.as_bytes(), &body)),
    ];
    cases.push(Case {
        what: "header case variants",
        headers: shouting,
        body: body.clone(),
        status: 200,
        records: false,
    });
    // Missing headers.
    for (what, drop, status) in [
        ("no event header", "x-github-event", 400),
        ("no delivery header", "x-github-delivery", 400),
        ("no signature header", "x-hub-signature-256", 401),
    ] {
        let headers = signed(&body).into_iter().filter(|(k, _)| *k != drop).collect();
        cases.push(Case { what, headers, body: body.clone(), status, records: false });
    }
    // Content types GitHub never sends: refused before anything is read.
    for ct in ["text/plain", "application/xml", "multipart/form-data; boundary=x"] {
        let mut h = signed(&body);
        h.push(("content-type", ct.into()));
        cases.push(Case { what: "wrong content type", headers: h, body: body.clone(), status: 415, records: false });
    }
    // Form-encoded without a payload field; and with one (GitHub's other content type).
    let form = b"nothing=here".to_vec();
    let mut h = signed(&form);
    h.push(("content-type", "application/x-www-form-urlencoded".into()));
    cases.push(Case { what: "form without payload", headers: h, body: form, status: 400, records: false });

    for c in cases {
        let before = p.table_item_count().await;
        let mut req = p.http.post(format!("{}/webhooks/github", p.base_url)).body(c.body.clone());
        for (k, v) in &c.headers {
            req = req.header(*k, v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status, c.status, "{}: {}", c.what, text.chars().take(300).collect::<String>());
        if status >= 400 {
            let err: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("{}: JSON error body", c.what));
            assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: {err}", c.what);
        }
        let after = p.table_item_count().await;
        if c.records {
            assert!(after > before, "{}: recorded", c.what);
        } else if status >= 400 {
            assert_eq!(after, before, "{}: nothing recorded", c.what);
        }
    }
    p.stop().await;
}
