//! A repository's own settings, `.ephemera.yml` at the commit to deploy, read through GitHub's
//! contents API and kept in the bucket beside that commit (`artifacts/{owner}/{repo}/{sha}/`):
//! the file itself (the provisioner fails a malformed one, naming the line), the blueprint it
//! names (or `.ephemera/template.yaml`), and its load-test scenario (for the notifier).
//! The intake itself uses the TTL and `paths:`.

use std::sync::Arc;

use ephemera_domain::preview::short;
use ephemera_domain::repo_config::{RepoConfig, CONFIG_PATH, DEFAULT_BLUEPRINT};
use ephemera_domain::{EnvironmentName, RepoName};
use ephemera_github_webhook::PullRequestEvent;
use serde_json::json;
use tracing::{info, warn};

use super::{Intake, IntakeError, Reply};
use crate::events::PlatformEvent;
use crate::ports::{ObjectStore, PortError};
use crate::provisioner::{artifact_key, CONFIG_ARTIFACT, REPOSITORY_TEMPLATE_ARTIFACT, SCENARIO_ARTIFACT};

/// How long reading a commit's settings may take (GitHub waits 10 s for the answer).
const GITHUB_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the intake keeps what it reads of repositories.
pub struct RepoFiles {
    pub store: Arc<dyn ObjectStore>,
    pub bucket: String,
}

impl Intake {
    /// The repository's settings at `commit` (None without a valid `.ephemera.yml`), with the
    /// files it names kept beside the commit. A malformed file is kept too, for the
    /// provisioner to fail the preview with its line; the intake goes on with the defaults.
    /// GitHub has a few seconds in all, so that the delivery is answered within its limit.
    pub(super) async fn repository_settings(
        &self,
        repo: &RepoName,
        commit: &str,
    ) -> Result<Option<RepoConfig>, PortError> {
        let read = self.read_settings(repo, commit);
        tokio::time::timeout(GITHUB_BUDGET, read).await.unwrap_or_else(|_| {
            Err(PortError::Retryable {
                operation: "read the repository's settings",
                message: format!("GitHub did not answer within {} s", GITHUB_BUDGET.as_secs()),
            })
        })
    }

    async fn read_settings(&self, repo: &RepoName, commit: &str) -> Result<Option<RepoConfig>, PortError> {
        let (Some(github), Some(files)) = (&self.github, &self.files) else { return Ok(None) };
        let keep = |name: &str, text: String| {
            let key = artifact_key(repo, commit, name);
            async move { files.store.put_text(&files.bucket, &key, &text).await }
        };
        let text = github.file(repo, CONFIG_PATH, commit).await?;
        let config = match text.as_deref() {
            None => None,
            Some(text) => {
                keep(CONFIG_ARTIFACT, text.to_owned()).await?;
                RepoConfig::parse(text).inspect_err(|e| warn!(error = %e, "malformed repository settings")).ok()
            }
        };
        let blueprint = config.as_ref().and_then(|c| c.blueprint.clone()).unwrap_or_else(|| DEFAULT_BLUEPRINT.into());
        if let Some(body) = github.file(repo, &blueprint, commit).await? {
            info!(%blueprint, commit = short(commit), "the repository's own blueprint");
            keep(REPOSITORY_TEMPLATE_ARTIFACT, body).await?;
        }
        if let Some(scenario) = config.as_ref().and_then(|c| c.scenario.as_deref()) {
            if let Some(body) = github.file(repo, scenario, commit).await? {
                keep(SCENARIO_ARTIFACT, body).await?;
            }
        }
        Ok(config)
    }

    /// For a push with `paths:` set: the note when it changed none of them (nothing is
    /// deployed then). Changes are counted from the head last deployed, so a push skipped
    /// before is not forgotten.
    pub(super) async fn unchanged_paths(
        &self,
        name: &EnvironmentName,
        repo: &RepoName,
        e: &PullRequestEvent,
        config: &RepoConfig,
    ) -> Result<Option<String>, IntakeError> {
        let Some(github) = &self.github else { return Ok(None) };
        if e.action != "synchronize" || config.paths.is_empty() {
            return Ok(None);
        }
        let env = self.registry.get(name).await?.filter(|env| env.desired == ephemera_domain::Desired::Up);
        let deployed = env.as_ref().and_then(|env| env.head_commit.clone());
        let Some(base) = deployed.or_else(|| e.before.clone()) else { return Ok(None) };
        let head = &e.pull_request.head.sha;
        // No answer in time is no answer: the push is deployed.
        let compare = tokio::time::timeout(GITHUB_BUDGET, github.changed_files(repo, &base, head)).await;
        let Ok(Some(files)) = compare.unwrap_or(Ok(None)) else { return Ok(None) };
        if config.wants(&files) {
            return Ok(None);
        }
        let at = env.as_ref().and_then(|env| env.commit.as_deref()).map(short).unwrap_or("its last commit");
        let note = format!(
            "Push {} changed nothing under `paths:` ({}): the preview stays at {at}.",
            short(head),
            config.paths_text()
        );
        if let Some(env) = env {
            // A push is activity all the same: the TTL runs from it.
            let activity = e.pull_request.updated_at.max(self.clock.now());
            let expires = self.expiry_with(repo, config.ttl).expires_at(ephemera_domain::EnvironmentKind::Pr, activity);
            self.registry.set_expiry(name, expires.max(env.expires_at)).await?;
            self.bus.publish(&[PlatformEvent::noted(&env, &note)]).await?;
        }
        Ok(Some(note))
    }

    /// The reply to a push that `paths:` leaves undeployed.
    pub(super) fn skipped(name: &EnvironmentName, note: String) -> Reply {
        Reply::accepted(json!({ "status": "ignored", "environment": name, "reason": note }))
    }
}
