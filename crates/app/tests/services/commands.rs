//! Comment commands on a pull request: who may give them, what each does, and that a
//! delivery acts once.

use chrono::Duration;
use ephemera_app::events::{NOTED, REQUESTED};
use ephemera_app::memory::GitHubCall;
use ephemera_domain::{Desired, EnvironmentName, RepoName};
use serde_json::json;

use crate::harness::*;

/// A comment on acme/todo-app#7 (or `number`) by `login`, written a minute after the clock's now.
fn comment(body: &str, login: &str, number: u64) -> Vec<u8> {
    edit(
        fixtures::ISSUE_COMMENT,
        &[
            ("comment.body", json!(body)),
            ("comment.user.login", json!(login)),
            ("sender.login", json!(login)),
            ("comment.created_at", json!("2026-11-20T09:01:00Z")),
            ("issue.number", json!(number)),
        ],
    )
}

fn writer(w: &World) {
    w.github.set_permission("kyle-dev", "write");
}

#[tokio::test]
async fn extend_moves_the_expiry_once_per_delivery() {
    let w = World::new();
    w.ready_pr().await;
    writer(&w);
    let before = w.env(PR).expires_at;
    let body = comment("/ephemera extend 10d", "kyle-dev", 7);
    let reply = w.deliver("issue_comment", "c1", &body).await.unwrap();
    assert_eq!(reply.body["status"], "done", "{}", reply.body);
    let until = w.now() + Duration::days(10);
    assert_eq!(w.env(PR).expires_at, until);
    assert!(until > before);
    assert_eq!(w.github.reactions(), [(5550001, "+1".to_owned())]);
    let noted = w.bus.events().into_iter().filter(|e| e.detail_type == NOTED).collect::<Vec<_>>();
    assert_eq!(noted.len(), 1);
    assert!(noted[0].detail.reason.as_deref().unwrap().contains("kept until 2026-11-30 09:00 UTC"));
    // The sticky comment says what was done, and the new expiry.
    w.notifier().handle(&noted[0]).await.unwrap();
    let text = w.github.comment("acme/todo-app", 7).unwrap();
    assert!(text.contains("@kyle-dev extended the preview: it is kept until 2026-11-30 09:00 UTC"), "{text}");
    assert!(text.contains("| **Expires** | 2026-11-30 09:00 UTC"), "{text}");

    // GitHub redelivers the same comment: nothing more happens.
    w.registry.edit(&name(PR), |e| e.expires_at = before);
    let reply = w.deliver("issue_comment", "c1", &body).await.unwrap();
    assert_eq!(reply.body["status"], "duplicate");
    assert_eq!(w.env(PR).expires_at, before);
    assert_eq!(w.github.reactions().len(), 1);

    // A shorter extension never shortens what is already longer.
    w.registry.edit(&name(PR), |e| e.expires_at = until);
    w.deliver("issue_comment", "c2", &comment("/ephemera extend 1d", "kyle-dev", 7)).await.unwrap();
    assert_eq!(w.env(PR).expires_at, until);
}

#[tokio::test]
async fn preserve_and_unpreserve() {
    let w = World::new();
    w.ready_pr().await;
    writer(&w);
    w.deliver("issue_comment", "c1", &comment("/ephemera preserve", "kyle-dev", 7)).await.unwrap();
    assert!(w.env(PR).preserved);
    w.deliver("issue_comment", "c2", &comment("/ephemera unpreserve", "kyle-dev", 7)).await.unwrap();
    assert!(!w.env(PR).preserved);
    // A replay of the first does not preserve it again.
    w.deliver("issue_comment", "c1", &comment("/ephemera preserve", "kyle-dev", 7)).await.unwrap();
    assert!(!w.env(PR).preserved);
}

#[tokio::test]
async fn destroy_and_redeploy_record_changes_that_a_later_push_still_overrides() {
    let w = World::new();
    let ready = w.ready_pr().await;
    writer(&w);
    let reply = w.deliver("issue_comment", "c1", &comment("/ephemera destroy", "kyle-dev", 7)).await.unwrap();
    assert_eq!(reply.body["status"], "accepted", "{}", reply.body);
    let e = w.env(PR);
    assert_eq!((e.desired, e.generation), (Desired::Down, ready.generation + 1));
    assert!(e.status_reason.as_deref().unwrap().contains("destroyed by @kyle-dev"));
    assert_eq!(w.bus.detail_types().last().map(String::as_str), Some(REQUESTED));
    // Nothing to redeploy while it is down.
    let reply = w.deliver("issue_comment", "c2", &comment("/ephemera redeploy", "kyle-dev", 7)).await.unwrap();
    assert_eq!(reply.body["status"], "refused");
    assert!(w.github.replies().last().unwrap().contains("has no preview now"));

    // A push (written after the command) brings it back; a redeploy then deploys it again.
    w.deliver("pull_request", "d-sync", fixtures::SYNCHRONIZE).await.unwrap();
    assert_eq!(w.env(PR).desired, Desired::Up);
    let generation = w.env(PR).generation;
    let mut redeploy = comment("/ephemera redeploy", "kyle-dev", 7);
    redeploy = edit(&redeploy, &[("comment.created_at", json!("2026-11-20T09:30:00Z"))]);
    let reply = w.deliver("issue_comment", "c3", &redeploy).await.unwrap();
    assert_eq!(reply.body["status"], "accepted", "{}", reply.body);
    let e = w.env(PR);
    assert_eq!((e.desired, e.generation, e.commit.as_deref()), (Desired::Up, generation + 1, Some(HEAD_SYNCHRONIZED)));
}

#[tokio::test]
async fn readers_are_refused_and_unknown_commands_get_help_once() {
    let w = World::new();
    w.ready_pr().await;
    w.github.set_permission("drive-by", "read");
    let reply = w.deliver("issue_comment", "c1", &comment("/ephemera destroy", "drive-by", 7)).await.unwrap();
    assert_eq!(reply.body["status"], "refused");
    assert_eq!(w.env(PR).desired, Desired::Up, "a reader cannot destroy");
    assert!(w.github.replies()[0].contains("only from users with write access"));
    assert_eq!(w.github.reactions(), [(5550001, "-1".to_owned())]);

    writer(&w);
    let body = comment("/ephemera deploy please", "kyle-dev", 7);
    let reply = w.deliver("issue_comment", "c2", &body).await.unwrap();
    assert_eq!(reply.body["status"], "unknown command");
    w.deliver("issue_comment", "c2", &body).await.unwrap();
    let replies = w.github.replies();
    assert_eq!(replies.len(), 2, "one help reply for the delivery, however often it comes");
    assert!(replies[1].contains("`deploy` is not a command") && replies[1].contains("/ephemera extend 3d"));
}

#[tokio::test]
async fn every_command_is_refused_to_a_reader_with_a_reply() {
    let w = World::new();
    let before = w.ready_pr().await;
    w.github.set_permission("drive-by", "triage");
    let commands = ["redeploy", "extend 3d", "preserve", "unpreserve", "destroy", &format!("approve {HEAD_OPENED}")];
    for (i, command) in commands.iter().enumerate() {
        let body = comment(&format!("/ephemera {command}"), "drive-by", 7);
        let reply = w.deliver("issue_comment", &format!("c{i}"), &body).await.unwrap();
        assert_eq!(reply.body["status"], "refused", "{command}: {}", reply.body);
    }
    let after = w.env(PR);
    assert_eq!((after.generation, after.expires_at, after.preserved), (before.generation, before.expires_at, false));
    assert_eq!(w.github.replies().len(), commands.len(), "one reply each");
    assert!(w.github.reactions().iter().all(|(_, r)| r == "-1"));
}

#[tokio::test]
async fn comments_that_are_not_commands_cost_nothing() {
    let w = World::new();
    w.ready_pr().await;
    w.github.clear_calls();
    for (id, body) in [
        ("c1", comment("looks good to me", "kyle-dev", 7)),
        ("c2", edit(&comment("/ephemera destroy", "kyle-dev", 7), &[("action", json!("edited"))])),
        ("c3", edit(&comment("/ephemera destroy", "ephemera[bot]", 7), &[("sender.type", json!("Bot"))])),
        ("c4", edit(&comment("/ephemera destroy", "kyle-dev", 7), &[("issue.pull_request", json!(null))])),
    ] {
        let reply = w.deliver("issue_comment", id, &body).await.unwrap();
        assert_eq!(reply.body["status"], "ignored", "{id}: {}", reply.body);
    }
    assert!(w.github.calls().is_empty());
    assert_eq!(w.env(PR).desired, Desired::Up);
}

#[tokio::test]
async fn permission_answers_are_kept_briefly() {
    let w = World::new();
    w.ready_pr().await;
    writer(&w);
    let intake = w.intake();
    let asked = |w: &World| w.github.calls().iter().filter(|c| matches!(c, GitHubCall::Permission { .. })).count();
    deliver(&intake, "issue_comment", "c1", &comment("/ephemera preserve", "kyle-dev", 7)).await.unwrap();
    deliver(&intake, "issue_comment", "c2", &comment("/ephemera unpreserve", "kyle-dev", 7)).await.unwrap();
    assert_eq!(asked(&w), 1);
    w.clock.advance(Duration::seconds(61));
    deliver(&intake, "issue_comment", "c3", &comment("/ephemera preserve", "kyle-dev", 7)).await.unwrap();
    assert_eq!(asked(&w), 2);
}

#[tokio::test]
async fn a_failed_command_can_be_redelivered() {
    let w = World::new();
    w.ready_pr().await;
    writer(&w);
    w.github.faults.fail_next("react", ephemera_app::memory::retryable("react", "GitHub is down"));
    let body = comment("/ephemera preserve", "kyle-dev", 7);
    assert!(w.deliver("issue_comment", "c1", &body).await.is_err());
    let reply = w.deliver("issue_comment", "c1", &body).await.unwrap();
    assert_eq!(reply.body["status"], "done");
    assert_eq!(w.github.reactions().len(), 1);
}

#[tokio::test]
async fn a_fork_is_approved_at_the_commit_named_and_a_later_push_needs_approval_again() {
    let w = World::new();
    writer(&w);
    let fork = EnvironmentName::for_pull_request(&RepoName::parse("acme/todo-app").unwrap(), 8).unwrap();
    w.deliver("pull_request", "d-fork", fixtures::FORK_OPENED).await.unwrap();
    assert!(w.registry.all().is_empty());

    // GitHub has a test merge, but for a newer head: not used for this approval.
    const NEWER: &str = "f00df00df00df00df00df00df00df00df00df00d";
    w.github.set_mergeability(HEAD_FORK, Some(true), Some("c0ffee0000000000000000000000000000000001"));
    let approve = |sha: &str| comment(&format!("/ephemera approve {sha}"), "kyle-dev", 8);
    let reply = w.deliver("issue_comment", "c1", &approve(&HEAD_FORK[..7])).await.unwrap();
    assert_eq!(reply.body["status"], "accepted", "{}", reply.body);
    let e = w.registry.snapshot(&fork).unwrap();
    assert_eq!(
        (e.commit.as_deref(), e.head_commit.as_deref()),
        (Some("c0ffee0000000000000000000000000000000001"), Some(HEAD_FORK))
    );
    assert_eq!(e.owner, "kyle-dev", "the issue's author owns it");

    // A push to the fork: not deployed, and an approval of the old head is refused.
    w.github.set_mergeability(NEWER, Some(true), Some("c0ffee0000000000000000000000000000000002"));
    let push = edit(
        fixtures::FORK_OPENED,
        &[
            ("action", json!("synchronize")),
            ("pull_request.head.sha", json!(NEWER)),
            ("pull_request.updated_at", json!("2026-11-20T11:05:00Z")),
        ],
    );
    assert_eq!(w.deliver("pull_request", "d-push", &push).await.unwrap().body["status"], "ignored");
    let reply = w.deliver("issue_comment", "c2", &approve(HEAD_FORK)).await.unwrap();
    assert_eq!(reply.body["status"], "refused");
    assert!(w.github.replies().last().unwrap().contains("f00df00 was pushed since"));
    assert_eq!(w.registry.snapshot(&fork).unwrap().head_commit.as_deref(), Some(HEAD_FORK));
    // Without a commit, the reply names the head to approve.
    w.deliver("issue_comment", "c3", &comment("/ephemera approve", "kyle-dev", 8)).await.unwrap();
    assert!(w.github.replies().last().unwrap().contains(&format!("/ephemera approve {NEWER}")));
    // The new head, approved: deployed from GitHub's merge of that very head.
    let at = |c: Vec<u8>| edit(&c, &[("comment.created_at", json!("2026-11-20T11:10:00Z"))]);
    assert_eq!(w.deliver("issue_comment", "c4", &at(approve(NEWER))).await.unwrap().body["status"], "accepted");
    let e = w.registry.snapshot(&fork).unwrap();
    assert_eq!(
        (e.commit.as_deref(), e.head_commit.as_deref()),
        (Some("c0ffee0000000000000000000000000000000002"), Some(NEWER))
    );
}

#[tokio::test]
async fn a_label_approval_uses_a_merge_only_of_the_approved_head() {
    let w = World::new();
    w.github.set_permission("acme-lead", "write");
    const NEWER: &str = "f00df00df00df00df00df00df00df00df00df00d";
    // GitHub's test merge is of a push newer than the labeled event's head.
    w.github.set_mergeability(NEWER, Some(true), Some("c0ffee0000000000000000000000000000000002"));
    let label = edit(
        fixtures::FORK_OPENED,
        &[("action", json!("labeled")), ("label", json!({"name": "preview"})), ("sender.login", json!("acme-lead"))],
    );
    let reply = w.deliver("pull_request", "d1", &label).await.unwrap();
    assert_eq!(reply.body["status"], "accepted");
    let e = w.registry.all().pop().unwrap();
    assert_eq!((e.commit.as_deref(), e.head_commit.as_deref()), (Some(HEAD_FORK), Some(HEAD_FORK)), "the head itself");
}
