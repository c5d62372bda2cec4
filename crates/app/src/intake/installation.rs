//! GitHub App installations: the App removed from a repository, or uninstalled, takes that
//! repository's previews (and branch environments) down; installations named in deliveries
//! are remembered, sparing a lookup per repository.

use ephemera_domain::{Desired, EnvironmentKind, EventOrder, RepoName};
use ephemera_github_webhook::{InstallationEvent, InstallationRepositoriesEvent};
use serde_json::json;
use tracing::{info, warn};

use super::{Intake, IntakeError, Reply};
use crate::ports::ChangeOutcome;

/// Which repositories an installation event is about.
enum Repositories {
    /// These (`owner/repo`).
    Named(Vec<RepoName>),
    /// Every repository of this account (an installation on all of them).
    OfAccount(String),
}

impl Repositories {
    fn covers(&self, repo: &RepoName) -> bool {
        match self {
            Repositories::Named(names) => names.iter().any(|n| n.canonical() == repo.canonical()),
            Repositories::OfAccount(owner) => repo.owner().eq_ignore_ascii_case(owner),
        }
    }
}

fn parse(names: &[ephemera_github_webhook::payload::RepositoryRef]) -> Vec<RepoName> {
    names.iter().filter_map(|r| RepoName::parse(&r.full_name).ok()).collect()
}

impl Intake {
    pub(super) async fn installation(&self, delivery: &str, e: &InstallationEvent) -> Result<Reply, IntakeError> {
        let named = e.repositories.as_deref().map(parse);
        match e.action.as_str() {
            "deleted" => {
                let account = e.installation.account.as_ref().map(|a| a.login.clone());
                let which = match (named, account) {
                    (Some(names), _) => Repositories::Named(names),
                    (None, Some(owner)) => Repositories::OfAccount(owner),
                    (None, None) => return Err(IntakeError::BadRequest("installation names no account".into())),
                };
                self.tear_down(delivery, &which, "the GitHub App was uninstalled").await
            }
            "created" | "unsuspend" => {
                self.remember(e.installation.id, named.unwrap_or_default());
                Ok(Reply::ok(json!({ "status": "recorded", "installation": e.installation.id })))
            }
            other => Ok(Reply::ignored(format!("installation action {other:?} changes no environment"))),
        }
    }

    pub(super) async fn installation_repositories(
        &self,
        delivery: &str,
        e: &InstallationRepositoriesEvent,
    ) -> Result<Reply, IntakeError> {
        self.remember(e.installation.id, parse(&e.repositories_added));
        let removed = parse(&e.repositories_removed);
        if removed.is_empty() {
            return Ok(Reply::ok(json!({ "status": "recorded", "installation": e.installation.id })));
        }
        self.tear_down(delivery, &Repositories::Named(removed), "the repository was removed from the GitHub App").await
    }

    fn remember(&self, installation: u64, repos: Vec<RepoName>) {
        if let Some(github) = &self.github {
            for repo in repos {
                github.remember_installation(&repo, installation);
            }
        }
    }

    /// Every pull request and branch environment of the repositories, down, once per delivery
    /// (marked first, unmarked if it could not finish, so that a redelivery can).
    async fn tear_down(&self, delivery: &str, which: &Repositories, why: &str) -> Result<Reply, IntakeError> {
        if !self.registry.mark_delivery(delivery, "installation", self.clock.now()).await? {
            return Ok(Reply::ok(json!({ "status": "duplicate", "delivery": delivery })));
        }
        let result = self.send_down(delivery, which, why).await;
        if result.is_err() {
            if let Err(err) = self.registry.unmark_delivery(delivery).await {
                warn!(error = %err, "could not unmark an installation event that failed");
            }
        }
        result
    }

    /// Each environment is decided on its row as read; one changed meanwhile is left to its own
    /// events (and the reaper).
    async fn send_down(&self, delivery: &str, which: &Repositories, why: &str) -> Result<Reply, IntakeError> {
        let now = self.clock.now();
        let mut down = Vec::new();
        for env in self.registry.list().await? {
            let Some(repo) = env.repository.clone().filter(|r| which.covers(r)) else { continue };
            if env.desired != Desired::Up || env.kind == EnvironmentKind::Dev {
                continue;
            }
            let at = now.timestamp().max(env.last_event.map_or(0, |o| o.at + 1));
            let order = EventOrder::new(at, EventOrder::RANK_CLOSE);
            let change = crate::ports::Change {
                reason: Some(format!("{why} ({repo})")),
                ..crate::ports::Change::decided_on(&env, Desired::Down, order, env.expires_at, now)
            };
            match self.registry.apply_change(&format!("{delivery}:{}", env.name), &change).await? {
                ChangeOutcome::Accepted { .. } | ChangeOutcome::Duplicate => {
                    self.announce(&env.name).await?;
                    down.push(env.name.to_string());
                }
                other => warn!(environment = %env.name, ?other, "changed meanwhile; left to its own events"),
            }
        }
        info!(count = down.len(), %why, "environments sent down");
        Ok(Reply::accepted(json!({ "status": "accepted", "down": down, "reason": why })))
    }
}
