//! GitHub in memory: answers from what the test set, and every call recorded.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use ephemera_domain::RepoName;

use super::{lock, Faults};
use crate::ports::{CheckRun, CheckState, GitHubApi, PortError, PullFacts};

/// One call, with what matters of its arguments (repositories as `owner/name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubCall {
    PullRequest { repo: String, number: u64 },
    Reaction { repo: String, comment: u64, content: String },
    Reply { repo: String, number: u64, body: String },
    CheckRun { repo: String, sha: String, run: CheckRun },
    File { repo: String, path: String, commit: String },
    RememberInstallation { repo: String, installation: u64 },
    Compare { repo: String, base: String, head: String },
    Permission { repo: String, login: String },
    Comment { repo: String, number: u64, body: String },
    EnsureDeployment { repo: String, sha: String, environment: String, id: u64 },
    LatestDeployment { repo: String, environment: String },
    DeploymentStatus { repo: String, deployment: u64, state: String, url: Option<String>, description: String },
    CommitStatus { repo: String, sha: String, state: String, context: String, description: String },
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<GitHubCall>,
    pull: PullFacts,
    app: bool,
    /// (commit, path) → text
    files: HashMap<(String, String), String>,
    /// (base, head) → files changed
    changes: HashMap<(String, String), Vec<String>>,
    permissions: HashMap<String, String>,
    /// (repo, sha, environment) → id, in creation order.
    deployments: Vec<((String, String, String), u64)>,
    comments: HashMap<(String, u64), (u64, String)>,
    next_id: u64,
}

/// Operation names for [`Faults`]: `pull_request`, `permission`, `upsert_comment`,
/// `ensure_deployment`, `latest_deployment`, `deployment_status`, `commit_status`, `react`,
/// `reply`, `check_run`, `file`, `changed_files`.
#[derive(Debug, Default)]
pub struct MemoryGitHub {
    state: Mutex<State>,
    pub faults: Faults,
}

impl MemoryGitHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// What `pull_request` answers about merging `head` (by default: an open pull request,
    /// head unknown, whose mergeability is not computed yet).
    pub fn set_mergeability(&self, head: &str, mergeable: Option<bool>, merge_commit: Option<&str>) {
        let mut state = lock(&self.state);
        state.pull.head = Some(head.to_ascii_lowercase());
        (state.pull.mergeable, state.pull.merge_commit) = (mergeable, merge_commit.map(str::to_owned));
    }

    /// The pull request's head, and whether it is closed, as `pull_request` answers them.
    pub fn set_pull(&self, head: &str, closed: bool) {
        let mut state = lock(&self.state);
        state.pull.head = Some(head.to_ascii_lowercase());
        state.pull.closed = closed;
    }

    /// A file in the repository at `commit`.
    pub fn set_file(&self, commit: &str, path: &str, text: &str) {
        lock(&self.state).files.insert((commit.to_owned(), path.to_owned()), text.to_owned());
    }

    /// The files changed from `base` to `head`.
    pub fn set_changes(&self, base: &str, head: &str, files: &[&str]) {
        let files = files.iter().map(|f| f.to_string()).collect();
        lock(&self.state).changes.insert((base.to_owned(), head.to_owned()), files);
    }

    /// Acts as a GitHub App: check runs instead of commit statuses.
    pub fn set_app(&self, app: bool) {
        lock(&self.state).app = app;
    }

    /// (name, state) of every check run written, in order.
    pub fn check_runs(&self) -> Vec<(&'static str, CheckState)> {
        let calls = self.calls();
        calls
            .into_iter()
            .filter_map(|c| match c {
                GitHubCall::CheckRun { run, .. } => Some((run.name, run.state)),
                _ => None,
            })
            .collect()
    }

    /// (comment id, reaction) of every reaction made, in order.
    pub fn reactions(&self) -> Vec<(u64, String)> {
        let calls = self.calls();
        calls
            .into_iter()
            .filter_map(|c| match c {
                GitHubCall::Reaction { comment, content, .. } => Some((comment, content)),
                _ => None,
            })
            .collect()
    }

    /// Every reply written, in order.
    pub fn replies(&self) -> Vec<String> {
        let calls = self.calls();
        calls
            .into_iter()
            .filter_map(|c| match c {
                GitHubCall::Reply { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    }

    /// `login`'s permission on every repository (by default `none`).
    pub fn set_permission(&self, login: &str, permission: &str) {
        lock(&self.state).permissions.insert(login.to_owned(), permission.to_owned());
    }

    pub fn calls(&self) -> Vec<GitHubCall> {
        lock(&self.state).calls.clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.state).calls.clear();
    }

    /// The comment on a pull request, as last written.
    pub fn comment(&self, repo: &str, number: u64) -> Option<String> {
        lock(&self.state).comments.get(&(repo.to_owned(), number)).map(|(_, body)| body.clone())
    }

    /// The states of every deployment status set, in order.
    pub fn deployment_states(&self) -> Vec<String> {
        let calls = self.calls();
        calls
            .into_iter()
            .filter_map(|c| match c {
                GitHubCall::DeploymentStatus { state, .. } => Some(state),
                _ => None,
            })
            .collect()
    }

    /// (context, state) of every commit status set, in order.
    pub fn commit_statuses(&self) -> Vec<(String, String)> {
        let calls = self.calls();
        calls
            .into_iter()
            .filter_map(|c| match c {
                GitHubCall::CommitStatus { context, state, .. } => Some((context, state)),
                _ => None,
            })
            .collect()
    }

    fn record(&self, call: GitHubCall) {
        lock(&self.state).calls.push(call);
    }
}

#[async_trait]
impl GitHubApi for MemoryGitHub {
    async fn pull_request(&self, repo: &RepoName, number: u64) -> Result<PullFacts, PortError> {
        self.faults.check("pull_request")?;
        self.record(GitHubCall::PullRequest { repo: repo.full_name(), number });
        Ok(lock(&self.state).pull.clone())
    }

    async fn file(&self, repo: &RepoName, path: &str, commit: &str) -> Result<Option<String>, PortError> {
        self.faults.check("file")?;
        self.record(GitHubCall::File { repo: repo.full_name(), path: path.to_owned(), commit: commit.to_owned() });
        Ok(lock(&self.state).files.get(&(commit.to_owned(), path.to_owned())).cloned())
    }

    /// Unknown pairs: GitHub could not list them all.
    async fn changed_files(&self, repo: &RepoName, base: &str, head: &str) -> Result<Option<Vec<String>>, PortError> {
        self.faults.check("changed_files")?;
        self.record(GitHubCall::Compare { repo: repo.full_name(), base: base.to_owned(), head: head.to_owned() });
        Ok(lock(&self.state).changes.get(&(base.to_owned(), head.to_owned())).cloned())
    }

    fn remember_installation(&self, repo: &RepoName, installation: u64) {
        self.record(GitHubCall::RememberInstallation { repo: repo.full_name(), installation });
    }

    fn has_checks(&self) -> bool {
        lock(&self.state).app
    }

    async fn check_run(&self, repo: &RepoName, sha: &str, run: &CheckRun) -> Result<(), PortError> {
        self.faults.check("check_run")?;
        self.record(GitHubCall::CheckRun { repo: repo.full_name(), sha: sha.to_owned(), run: run.clone() });
        Ok(())
    }

    async fn react(&self, repo: &RepoName, comment: u64, content: &str) -> Result<(), PortError> {
        self.faults.check("react")?;
        self.record(GitHubCall::Reaction { repo: repo.full_name(), comment, content: content.to_owned() });
        Ok(())
    }

    async fn reply(&self, repo: &RepoName, number: u64, body: &str) -> Result<(), PortError> {
        self.faults.check("reply")?;
        self.record(GitHubCall::Reply { repo: repo.full_name(), number, body: body.to_owned() });
        Ok(())
    }

    async fn permission(&self, repo: &RepoName, login: &str) -> Result<String, PortError> {
        self.faults.check("permission")?;
        self.record(GitHubCall::Permission { repo: repo.full_name(), login: login.to_owned() });
        Ok(lock(&self.state).permissions.get(login).cloned().unwrap_or_else(|| "none".into()))
    }

    /// Edits the comment in place: the same id every time for one pull request.
    async fn upsert_comment(&self, repo: &RepoName, number: u64, _marker: &str, body: &str) -> Result<u64, PortError> {
        self.faults.check("upsert_comment")?;
        self.record(GitHubCall::Comment { repo: repo.full_name(), number, body: body.to_owned() });
        let mut state = lock(&self.state);
        let id = match state.comments.get(&(repo.full_name(), number)) {
            Some((id, _)) => *id,
            None => {
                state.next_id += 1;
                state.next_id
            }
        };
        state.comments.insert((repo.full_name(), number), (id, body.to_owned()));
        Ok(id)
    }

    async fn ensure_deployment(
        &self,
        repo: &RepoName,
        sha: &str,
        environment: &str,
        _description: &str,
    ) -> Result<u64, PortError> {
        self.faults.check("ensure_deployment")?;
        let key = (repo.full_name(), sha.to_owned(), environment.to_owned());
        let id = {
            let mut state = lock(&self.state);
            match state.deployments.iter().find(|(k, _)| *k == key) {
                Some((_, id)) => *id,
                None => {
                    state.next_id += 1;
                    let id = state.next_id;
                    state.deployments.push((key, id));
                    id
                }
            }
        };
        let (repo, sha, environment) = (repo.full_name(), sha.to_owned(), environment.to_owned());
        self.record(GitHubCall::EnsureDeployment { repo, sha, environment, id });
        Ok(id)
    }

    async fn latest_deployment(&self, repo: &RepoName, environment: &str) -> Result<Option<u64>, PortError> {
        self.faults.check("latest_deployment")?;
        self.record(GitHubCall::LatestDeployment { repo: repo.full_name(), environment: environment.to_owned() });
        let state = lock(&self.state);
        let mine = |((r, _, e), _): &&((String, String, String), u64)| *r == repo.full_name() && e == environment;
        Ok(state.deployments.iter().rev().find(mine).map(|(_, id)| *id))
    }

    async fn deployment_status(
        &self,
        repo: &RepoName,
        deployment: u64,
        state: &str,
        environment_url: Option<&str>,
        description: &str,
    ) -> Result<(), PortError> {
        self.faults.check("deployment_status")?;
        self.record(GitHubCall::DeploymentStatus {
            repo: repo.full_name(),
            deployment,
            state: state.to_owned(),
            url: environment_url.map(str::to_owned),
            description: description.to_owned(),
        });
        Ok(())
    }

    async fn commit_status(
        &self,
        repo: &RepoName,
        sha: &str,
        state: &str,
        context: &str,
        description: &str,
    ) -> Result<(), PortError> {
        self.faults.check("commit_status")?;
        self.record(GitHubCall::CommitStatus {
            repo: repo.full_name(),
            sha: sha.to_owned(),
            state: state.to_owned(),
            context: context.to_owned(),
            description: description.to_owned(),
        });
        Ok(())
    }
}
