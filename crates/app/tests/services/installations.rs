//! GitHub App installations: removing a repository from the App, or uninstalling it, takes its
//! previews down; installations named in deliveries are remembered.

use ephemera_app::memory::GitHubCall;
use ephemera_domain::{Desired, EnvironmentName, RepoName};
use serde_json::json;

use crate::harness::*;

/// acme/todo-app#7 up, and a pull request of another account's repository.
async fn three(w: &World) -> EnvironmentName {
    w.deliver("pull_request", "d-acme", fixtures::OPENED).await.unwrap();
    let other = edit(fixtures::OPENED, &[("repository.full_name", json!("other-org/site"))]);
    w.deliver("pull_request", "d-other", &other).await.unwrap();
    EnvironmentName::for_pull_request(&RepoName::parse("other-org/site").unwrap(), 7).unwrap()
}

#[tokio::test]
async fn a_repository_removed_from_the_app_has_its_previews_taken_down_once() {
    let w = World::new();
    let other = three(&w).await;
    let generation = w.env(PR).generation;
    let reply = w.deliver("installation_repositories", "i1", fixtures::REPOSITORIES_REMOVED).await.unwrap();
    assert_eq!(reply.body["down"], json!([PR]), "{}", reply.body);
    let e = w.env(PR);
    assert_eq!((e.desired, e.generation), (Desired::Down, generation + 1));
    assert!(e.status_reason.unwrap().contains("removed from the GitHub App (acme/todo-app)"));
    assert_eq!(w.registry.snapshot(&other).unwrap().desired, Desired::Up, "another repository's stays");
    // A late `opened` of before the removal does not bring it back.
    w.deliver("pull_request", "d-late", fixtures::OPENED).await.unwrap();
    assert_eq!(w.env(PR).desired, Desired::Down);
    // Redelivered: nothing more, even for a preview opened again since.
    let reopened = edit(fixtures::REOPENED, &[("pull_request.updated_at", json!("2026-12-01T00:00:00Z"))]);
    w.clock.set(time("2026-12-01T00:00:30Z"));
    w.deliver("pull_request", "d-reopen", &reopened).await.unwrap();
    let reply = w.deliver("installation_repositories", "i1", fixtures::REPOSITORIES_REMOVED).await.unwrap();
    assert_eq!(reply.body["status"], "duplicate");
    assert_eq!((w.env(PR).desired, w.env(PR).generation), (Desired::Up, generation + 2));
}

#[tokio::test]
async fn uninstalling_the_app_from_every_repository_takes_the_accounts_previews_down() {
    let w = World::new();
    let other = three(&w).await;
    let all = edit(fixtures::INSTALLATION_DELETED, &[("repositories", json!(null))]);
    let reply = w.deliver("installation", "i1", &all).await.unwrap();
    assert_eq!(reply.body["down"], json!([PR]), "{}", reply.body);
    assert!(w.env(PR).status_reason.unwrap().contains("the GitHub App was uninstalled"));
    assert_eq!(w.registry.snapshot(&other).unwrap().desired, Desired::Up, "another account's stays");
}

#[tokio::test]
async fn installations_named_in_deliveries_are_remembered() {
    let w = World::new();
    let opened = edit(fixtures::OPENED, &[("installation", json!({ "id": 48120913 }))]);
    w.deliver("pull_request", "d1", &opened).await.unwrap();
    let added = edit(
        fixtures::REPOSITORIES_REMOVED,
        &[
            ("action", json!("added")),
            ("repositories_added", json!([{ "full_name": "acme/api" }])),
            ("repositories_removed", json!([])),
        ],
    );
    assert_eq!(w.deliver("installation_repositories", "i1", &added).await.unwrap().body["status"], "recorded");
    let remembered: Vec<_> = w
        .github
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            GitHubCall::RememberInstallation { repo, installation } => Some((repo, installation)),
            _ => None,
        })
        .collect();
    assert_eq!(remembered, [("acme/todo-app".to_owned(), 48120913), ("acme/api".to_owned(), 48120913)]);
    assert_eq!(w.env(PR).desired, Desired::Up);
}
