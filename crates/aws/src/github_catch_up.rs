//! The REST client behind the `GitHubCatchUp` port: conditional listings, a pull request
//! whole, and webhook deliveries (the App's, or the repositories' hooks configured).

use async_trait::async_trait;
use ephemera_app::ports::{Answer, DeliveriesPage, GitHubCatchUp, GitHubRead, Hook, PullsPage};
use ephemera_app::PortError;
use ephemera_domain::catch_up::{DeliveryAttempt, OpenPull};
use ephemera_domain::RepoName;
use ephemera_github::reads::{Exchange, HookDelivery};
use ephemera_github::{Client, ClientError};
use ephemera_github_webhook::payload::PullRequest;

pub struct GitHubCatchUpRest {
    client: Client,
    hooks: Vec<Hook>,
}

impl GitHubCatchUpRest {
    /// As an App, its own webhook's deliveries are read; with a token, those of `repo_hooks`
    /// (`EPHEMERA_GITHUB_HOOK_IDS`).
    pub fn new(client: Client, repo_hooks: Vec<(RepoName, u64)>) -> Self {
        let hooks = match client.is_app() {
            true => vec![Hook::App],
            false => repo_hooks.into_iter().map(|(repo, id)| Hook::Repository { repo, id }).collect(),
        };
        Self { client, hooks }
    }
}

fn failed(operation: &'static str) -> impl Fn(ClientError) -> PortError {
    move |e| match e.is_retryable() {
        true => PortError::Retryable { operation, message: e.to_string() },
        false => PortError::Permanent { operation, message: e.to_string() },
    }
}

/// The answer, its body read by `parse` when it is a success.
fn read<T>(
    x: Exchange,
    operation: &'static str,
    parse: impl FnOnce(&Exchange) -> Result<T, ClientError>,
) -> Result<GitHubRead<T>, PortError> {
    let answer = match x.status {
        _ if x.wait.is_some() => Answer::Limited(format!(
            "GitHub asked to wait {} s ({})",
            x.wait.unwrap_or_default().as_secs(),
            x.message()
        )),
        304 => Answer::NotModified,
        // A secondary rate limit without `Retry-After` is a 403 that says so.
        403 if x.message().to_ascii_lowercase().contains("rate limit") => {
            Answer::Limited(format!("GitHub's secondary rate limit ({})", x.message()))
        }
        403 | 404 | 410 => Answer::Inaccessible(x.message()),
        _ if x.is_success() => Answer::Fresh { value: parse(&x).map_err(failed(operation))?, etag: x.etag.clone() },
        _ => return Err(PortError::Permanent { operation, message: x.message() }),
    };
    // A wait asked for says more than the count that led to it.
    let remaining = if matches!(answer, Answer::Limited(_)) { None } else { x.remaining };
    Ok(GitHubRead { answer, remaining })
}

/// What the sweep compares of a listed pull request.
fn open_pull(p: &PullRequest) -> OpenPull {
    OpenPull { number: p.number, head: p.head.sha.to_ascii_lowercase(), from_fork: p.is_from_fork() }
}

fn hook_of(hook: &Hook) -> Option<(&str, &str, u64)> {
    match hook {
        Hook::App => None,
        Hook::Repository { repo, id } => Some((repo.owner(), repo.name(), *id)),
    }
}

#[async_trait]
impl GitHubCatchUp for GitHubCatchUpRest {
    async fn open_pulls(
        &self,
        repo: &RepoName,
        page: u32,
        etag: Option<&str>,
    ) -> Result<GitHubRead<PullsPage>, PortError> {
        const OP: &str = "list open pull requests";
        let x = self.client.open_pulls(repo.owner(), repo.name(), page, etag).await.map_err(failed(OP))?;
        read(x, OP, |x| {
            let listed: Vec<PullRequest> = x.json("pulls")?;
            Ok(PullsPage { pulls: listed.iter().map(open_pull).collect(), more: x.next.is_some() })
        })
    }

    async fn pull(&self, repo: &RepoName, number: u64) -> Result<GitHubRead<PullRequest>, PortError> {
        const OP: &str = "read pull request";
        let x = self.client.pull_exchange(repo.owner(), repo.name(), number).await.map_err(failed(OP))?;
        read(x, OP, |x| x.json("pull"))
    }

    fn hooks(&self) -> Vec<Hook> {
        self.hooks.clone()
    }

    async fn deliveries(&self, hook: &Hook, cursor: Option<&str>) -> Result<GitHubRead<DeliveriesPage>, PortError> {
        const OP: &str = "list webhook deliveries";
        let x = self.client.hook_deliveries(hook_of(hook), cursor).await.map_err(failed(OP))?;
        read(x, OP, |x| {
            let listed: Vec<HookDelivery> = x.json("deliveries")?;
            let attempts = listed
                .into_iter()
                .map(|d| DeliveryAttempt {
                    id: d.id,
                    guid: d.guid,
                    delivered_at: d.delivered_at,
                    redelivery: d.redelivery,
                    status_code: d.status_code,
                    event: d.event,
                })
                .collect();
            Ok(DeliveriesPage { attempts, next: x.next_cursor() })
        })
    }

    async fn redeliver(&self, hook: &Hook, attempt: u64) -> Result<GitHubRead<()>, PortError> {
        const OP: &str = "redeliver a webhook delivery";
        let x = self.client.redeliver(hook_of(hook), attempt).await.map_err(failed(OP))?;
        read(x, OP, |_| Ok(()))
    }
}
