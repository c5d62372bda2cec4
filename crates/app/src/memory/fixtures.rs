//! The sample events under `events/`, shared by the service tests and the end-to-end tests.

pub const OPENED: &[u8] = include_bytes!("../../../../events/github/pull_request.opened.json");
pub const SYNCHRONIZE: &[u8] = include_bytes!("../../../../events/github/pull_request.synchronize.json");
pub const CLOSED: &[u8] = include_bytes!("../../../../events/github/pull_request.closed.json");
pub const REOPENED: &[u8] = include_bytes!("../../../../events/github/pull_request.reopened.json");
pub const LABELED: &[u8] = include_bytes!("../../../../events/github/pull_request.labeled.json");
pub const FORK_OPENED: &[u8] = include_bytes!("../../../../events/github/pull_request.opened.fork.json");
pub const PUSH_BRANCH_CREATED: &[u8] = include_bytes!("../../../../events/github/push.branch-created.json");
pub const PUSH_BRANCH_UPDATED: &[u8] = include_bytes!("../../../../events/github/push.branch-updated.json");
pub const PUSH_BRANCH_DELETED: &[u8] = include_bytes!("../../../../events/github/push.branch-deleted.json");
pub const PUSH_MAIN: &[u8] = include_bytes!("../../../../events/github/push.main.json");
pub const DELETE_BRANCH: &[u8] = include_bytes!("../../../../events/github/delete.branch.json");
/// kyle-dev comments `/ephemera extend 3d` on acme/todo-app#7.
pub const ISSUE_COMMENT: &[u8] = include_bytes!("../../../../events/github/issue_comment.created.json");
/// The GitHub App uninstalled from acme (acme/todo-app named), and acme/todo-app removed from it.
pub const INSTALLATION_DELETED: &[u8] = include_bytes!("../../../../events/github/installation.deleted.json");
pub const REPOSITORIES_REMOVED: &[u8] =
    include_bytes!("../../../../events/github/installation_repositories.removed.json");
/// The fork pull request's (acme/todo-app#8) head.
pub const HEAD_FORK: &str = "e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4";
/// The pushed branch of the push fixtures, and its commits.
pub const BRANCH: &str = "feature/search";
pub const BRANCH_FIRST: &str = "c1d2e3f4a5b6c7d8e9f00112233445566778899a";
pub const BRANCH_SECOND: &str = "d2e3f4a5b6c7d8e9f00112233445566778899aab";
pub const PING: &[u8] = include_bytes!("../../../../events/github/ping.json");
pub const SQS_BATCH: &[u8] = include_bytes!("../../../../events/sqs/provisioner-batch.json");
pub const STACK_STATUS: &[u8] = include_bytes!("../../../../events/eventbridge/stack-status-change.json");
pub const READY: &[u8] = include_bytes!("../../../../events/eventbridge/environment-ready.json");
/// The environment the pull request fixtures (acme/todo-app#7) map to.
pub const ENVIRONMENT: &str = "pr-7-acme-todo-app-6acfdc9491";
pub const HEAD_OPENED: &str = "a3b9c1d2e4f5061728394a5b6c7d8e9f01234567";
pub const HEAD_SYNCHRONIZED: &str = "b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f80";

/// A fixture with some fields replaced (dot paths, e.g. `pull_request.updated_at`).
pub fn edit(fixture: &[u8], edits: &[(&str, serde_json::Value)]) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(fixture).unwrap();
    for (path, value) in edits {
        let mut at = &mut doc;
        for part in path.split('.') {
            at = &mut at[part];
        }
        *at = value.clone();
    }
    serde_json::to_vec(&doc).unwrap()
}
