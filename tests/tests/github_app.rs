//! GitHub App authentication against the fake GitHub, which verifies the App's JWT with its
//! public key and issues expiring installation tokens that reach their own installation alone:
//! tokens are cached, asked for again before they expire and when GitHub refuses one, and kept
//! apart per installation; and the platform reports on a pull request as the App.

use ephemera_app::feedback::MARKER;
use ephemera_domain::Status;
use ephemera_github::app::REFRESH_MARGIN_SECS;
use ephemera_github::{AppCredentials, Client, ClientError};
use ephemera_tests::fixtures::*;
use ephemera_tests::github::{FakeApp, FakeGitHub};
use ephemera_tests::{init_logs, workspace_root, Platform};

const KEY: &[u8] = include_bytes!("../fixtures/github-app/test-only-private-key.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("../fixtures/github-app/test-only-public-key.pem");
const OTHER_KEY: &[u8] = include_bytes!("../fixtures/github-app/test-only-other-private-key.pem");
const APP: &str = "4242";

async fn github() -> FakeGitHub {
    init_logs();
    let gh = FakeGitHub::start().await;
    let mut s = gh.state();
    s.app = Some(FakeApp::new(APP, PUBLIC_KEY, &[("acme/todo-app", 11), ("umbrella/api", 22)]));
    s.permissions.insert("kyle".into(), "write".into());
    drop(s);
    gh
}

/// The platform acting as the App (`APP`, with the test key) against `gh`.
async fn as_the_app(gh: &FakeGitHub, more: &[(&str, &str)]) -> Platform {
    let key = workspace_root().join("tests/fixtures/github-app/test-only-private-key.pem");
    let mut vars = vec![
        ("EPHEMERA_GITHUB_APP_ID", APP),
        ("EPHEMERA_GITHUB_APP_PRIVATE_KEY_FILE", key.to_str().unwrap()),
        ("EPHEMERA_GITHUB_API_URL", gh.url.as_str()),
    ];
    vars.extend_from_slice(more);
    Platform::start_with(&vars).await
}

fn count(gh: &FakeGitHub, operation: &str) -> usize {
    gh.state().requests.iter().filter(|r| r.operation == operation).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installation_tokens_are_cached_refreshed_and_kept_apart() {
    let gh = github().await;
    let client = Client::for_app(&gh.url, AppCredentials::new(APP, KEY).unwrap()).unwrap();
    const TOKENS: &str = "apps/create-installation-access-token";
    const READS: &str = "repos/get-collaborator-permission-level";
    for _ in 0..3 {
        assert_eq!(client.permission("acme", "todo-app", "kyle").await.unwrap(), "write");
    }
    assert_eq!((count(&gh, "apps/get-repo-installation"), count(&gh, TOKENS)), (1, 1), "looked up and asked once");

    // Another installation, its own token: the fake refuses a token for any other's repository.
    client.permission("umbrella", "api", "kyle").await.unwrap();
    client.permission("acme", "todo-app", "kyle").await.unwrap();
    let mut installations: Vec<u64> = gh.state().app.as_ref().unwrap().tokens.values().map(|(i, _)| *i).collect();
    installations.sort();
    assert_eq!((installations, count(&gh, TOKENS)), (vec![11, 22], 2));

    // Revoked: refused once (401), a new token, the call goes through.
    let reads = count(&gh, READS);
    gh.state().app.as_mut().unwrap().tokens.clear();
    client.permission("acme", "todo-app", "kyle").await.unwrap();
    assert_eq!((count(&gh, TOKENS), count(&gh, READS) - reads), (3, 2));

    // A token that expires within the margin is not used: a new one is asked for first.
    {
        let mut s = gh.state();
        let app = s.app.as_mut().unwrap();
        app.token_lifetime = REFRESH_MARGIN_SECS;
        app.tokens.clear();
    }
    client.permission("acme", "todo-app", "kyle").await.unwrap(); // refused, then a short token
    let (tokens, reads) = (count(&gh, TOKENS), count(&gh, READS));
    client.permission("acme", "todo-app", "kyle").await.unwrap();
    assert_eq!((count(&gh, TOKENS) - tokens, count(&gh, READS) - reads), (1, 1), "renewed before use, never refused");
    assert!(gh.state().violations.is_empty(), "{:#?}", gh.state().violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_signed_with_another_key_is_refused_and_an_app_not_installed_says_so() {
    let gh = github().await;
    let impostor = Client::for_app(&gh.url, AppCredentials::new(APP, OTHER_KEY).unwrap()).unwrap();
    let err = impostor.permission("acme", "todo-app", "kyle").await.unwrap_err();
    assert!(matches!(err, ClientError::Http { status: 401, .. }), "{err}");

    let client = Client::for_app(&gh.url, AppCredentials::new(APP, KEY).unwrap()).unwrap();
    let err = client.permission("other", "repo", "kyle").await.unwrap_err().to_string();
    assert!(err.contains("the GitHub App is not installed on other/repo"), "{err}");
    assert!(gh.state().violations.is_empty(), "{:#?}", gh.state().violations);
}

/// The platform as the App: the sticky comment is written with the installation's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_reports_on_a_pull_request_as_the_app() {
    let gh = github().await;
    let p = as_the_app(&gh, &[]).await;
    assert_eq!(p.deliver("pull_request", "d-open", OPENED).await.0, 202);
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    gh.wait_until("the ready comment", |s| {
        s.comments.values().any(|(n, b)| *n == 7 && b.contains(MARKER) && b.contains("Ready"))
    })
    .await;
    // The preview's check run on the head commit moved forward only, and ended in success.
    let rank = |state: &str| ["queued", "in_progress", "success"].iter().position(|s| *s == state);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let runs = gh.state().check_runs.clone();
        let preview: Vec<_> = runs.iter().filter(|c| c.name == "ephemera/preview").collect();
        assert!(preview.len() <= 1, "one check run per commit: {preview:#?}");
        if let Some(run) = preview.first().filter(|r| r.states.last().map(String::as_str) == Some("success")) {
            assert_eq!(run.sha, HEAD_OPENED);
            let ranks: Vec<_> = run.states.iter().map(|s| rank(s).expect("a known state")).collect();
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "never backwards: {:?}", run.states);
            assert!(run.summary.contains(ENVIRONMENT), "{}", run.summary);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no successful check run: {runs:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    {
        let s = gh.state();
        assert!(s.violations.is_empty(), "{:#?}", s.violations);
        assert!(s.requests.iter().any(|r| r.operation == "apps/create-installation-access-token"));
        assert!(s.commit_statuses.is_empty(), "check runs instead of commit statuses");
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_removed_from_the_app_loses_its_preview() {
    let gh = github().await;
    let p = as_the_app(&gh, &[("EPHEMERA_LOAD_TEST", "false")]).await;
    // The delivery names the installation: no lookup is needed.
    let opened = ephemera_tests::edit(OPENED, &[("installation", serde_json::json!({ "id": 11 }))]);
    assert_eq!(p.deliver("pull_request", "d-open", &opened).await.0, 202);
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    let (status, body) = p.deliver("installation_repositories", "d-removed", REPOSITORIES_REMOVED).await;
    assert_eq!(status, 202, "{body}");
    let env = p.wait_for(ENVIRONMENT, Status::Deleted).await;
    assert!(env.status_reason.unwrap().contains("removed from the GitHub App"));
    assert!(p.live_stacks("ephemera-").await.is_empty());
    assert_eq!(count(&gh, "apps/get-repo-installation"), 0, "the delivery's installation was used");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_the_app_the_sweep_redelivers_from_the_apps_webhook_and_reads_pull_requests_with_its_token() {
    let gh = github().await;
    gh.state().pulls.insert(7, ephemera_tests::github::FakePull::new(HEAD_OPENED, None, None));
    let p = as_the_app(&gh, &[("EPHEMERA_LOAD_TEST", "false")]).await;
    {
        let mut s = gh.state();
        s.webhook_url = Some(format!("{}/webhooks/github", p.base_url));
        s.add_delivery(None, "lost-open", "pull_request", OPENED, 500, std::time::Duration::from_secs(600));
    }
    let reaper = p.reaper_catching_up(ephemera_wiring::platform::clock()).await;
    let full = ephemera_app::reaper::SweepOptions { dry_run: false, light: false };
    let s = reaper.sweep(full).await.unwrap().github.unwrap();
    assert_eq!(s.redelivered, vec!["pull_request lost-open".to_string()], "{s:?}");
    assert_eq!(count(&gh, "apps/list-webhook-deliveries"), 1, "with the App's JWT");
    p.wait_for(ENVIRONMENT, Status::Ready).await;

    // Its close never delivered: read with the installation's token, and acted on.
    gh.state().pulls.get_mut(&7).unwrap().closed = true;
    let s = reaper.sweep(full).await.unwrap().github.unwrap();
    assert_eq!(s.missed_closes, vec![ENVIRONMENT.to_string()], "{s:?}");
    p.wait_for(ENVIRONMENT, Status::Deleted).await;
    assert!(gh.state().violations.is_empty(), "{:?}", gh.state().violations);
}
