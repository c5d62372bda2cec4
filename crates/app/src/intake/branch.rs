//! Branch environments from `push` and `delete` events: a matching branch's environment
//! follows its pushes and ends with the branch.

use ephemera_domain::branch::{decide, BranchDecision, RefEvent};
use ephemera_domain::preview::is_commit_id;
use ephemera_domain::{Desired, EnvironmentKind, EnvironmentName, EventOrder, RepoName};
use ephemera_github_webhook::payload::Repository;
use ephemera_github_webhook::{DeleteEvent, PushEvent};
use tracing::info;

use super::{Intake, IntakeError, Reply};
use crate::ports::Change;

/// Why a branch environment goes down.
pub const BRANCH_DELETED: &str = "branch deleted";

impl Intake {
    pub(super) async fn push(&self, delivery: &str, e: &PushEvent) -> Result<Reply, IntakeError> {
        let event = RefEvent::Push { git_ref: &e.git_ref, after: &e.after, deleted: e.deleted };
        self.branch(delivery, event, &e.repository, &e.sender.login).await
    }

    pub(super) async fn delete(&self, delivery: &str, e: &DeleteEvent) -> Result<Reply, IntakeError> {
        let event = RefEvent::Delete { git_ref: &e.git_ref, ref_type: &e.ref_type };
        self.branch(delivery, event, &e.repository, &e.sender.login).await
    }

    /// Ordered by the payload's `repository.pushed_at`: for a push, when it happened; for a
    /// deletion (which has no time of its own), the repository's last push, at or after the
    /// branch's last push and before any push that makes the branch again, so a late or
    /// redelivered deletion never takes down a branch made since.
    async fn branch(
        &self,
        delivery: &str,
        event: RefEvent<'_>,
        repository: &Repository,
        sender: &str,
    ) -> Result<Reply, IntakeError> {
        let at = repository.pushed_at().unwrap_or_else(|| self.clock.now());
        let repo = match self.allowed(&repository.full_name)? {
            Ok(repo) => repo,
            Err(reply) => return Ok(reply),
        };
        let decision = decide(event, &self.settings.branches);
        info!(repository = %repo, ?decision, "ref event");
        let (branch, desired, commit) = match decision {
            BranchDecision::Ignore(reason) => return Ok(Reply::ignored(reason)),
            BranchDecision::Up { branch, commit } => {
                if !is_commit_id(&commit) {
                    return Err(IntakeError::BadRequest(format!("after {commit:?} is not a commit id")));
                }
                (branch, Desired::Up, Some(commit.to_ascii_lowercase()))
            }
            BranchDecision::Down { branch } => (branch, Desired::Down, None),
        };
        let name = EnvironmentName::for_branch(&repo, &branch).map_err(|e| IntakeError::BadRequest(e.to_string()))?;
        if desired == Desired::Down && self.registry.get(&name).await?.is_none() {
            return Ok(Reply::ignored(format!("branch {branch} has no environment")));
        }
        let change = self.branch_change(name, repo, &branch, desired, commit, sender, at);
        let outcome = self.registry.apply_change(delivery, &change).await?;
        info!(environment = %change.name, ?outcome, "recorded");
        self.answer(delivery, &change, false, outcome).await
    }

    #[allow(clippy::too_many_arguments)]
    fn branch_change(
        &self,
        name: EnvironmentName,
        repo: RepoName,
        branch: &str,
        desired: Desired,
        commit: Option<String>,
        sender: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Change {
        let now = self.clock.now();
        let expires_at = self.expiry_for(&repo).expires_at(EnvironmentKind::Branch, at.max(now));
        let rank = if desired == Desired::Up { EventOrder::RANK_PUSH } else { EventOrder::RANK_CLOSE };
        Change {
            repository: Some(repo),
            head_commit: commit.clone(),
            commit,
            head_ref: Some(branch.to_owned()),
            reason: (desired == Desired::Down).then(|| BRANCH_DELETED.to_owned()),
            ..Change::new(
                name,
                EnvironmentKind::Branch,
                sender.to_owned(),
                desired,
                EventOrder::new(at.timestamp(), rank),
                expires_at,
                now,
            )
        }
    }
}
