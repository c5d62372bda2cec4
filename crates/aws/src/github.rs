//! GitHub and HTTP adapters: the REST client behind the `GitHubApi` port, and the prober behind
//! `Prober`. (Not AWS, but adapters all the same: the services only see the ports.)

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client as SecretsClient;
use ephemera_app::ports::{CheckRun, GitHubApi, Prober, PullFacts};
use ephemera_app::PortError;
use ephemera_domain::perf::{LoadPlan, Sample, Scenario, SmokeCheck, SmokeResult};
use ephemera_domain::RepoName;
use ephemera_github::client::{CheckOutput, NewCheckRun, NewCommitStatus, NewDeploymentStatus};
use ephemera_github::{Client, ClientError};
use ephemera_probe::TargetPolicy;
use tracing::instrument;

use crate::error::port_error;

fn port(operation: &'static str) -> impl Fn(ClientError) -> PortError {
    move |e| {
        if e.is_retryable() {
            PortError::Retryable { operation, message: e.to_string() }
        } else {
            PortError::Permanent { operation, message: e.to_string() }
        }
    }
}

pub struct GitHubRest {
    client: Client,
}

impl GitHubRest {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl GitHubApi for GitHubRest {
    async fn pull_request(&self, repo: &RepoName, number: u64) -> Result<PullFacts, PortError> {
        let p = self.client.pull(repo.owner(), repo.name(), number).await.map_err(port("read pull request"))?;
        Ok(PullFacts {
            head: Some(p.head.sha.to_ascii_lowercase()),
            head_ref: Some(p.head.ref_name),
            base_ref: Some(p.base.ref_name),
            mergeable: p.mergeable,
            merge_commit: p.merge_commit_sha,
            closed: p.state != "open",
        })
    }

    async fn file(&self, repo: &RepoName, path: &str, commit: &str) -> Result<Option<String>, PortError> {
        self.client.file(repo.owner(), repo.name(), path, commit).await.map_err(port("read a repository file"))
    }

    async fn changed_files(&self, repo: &RepoName, base: &str, head: &str) -> Result<Option<Vec<String>>, PortError> {
        self.client.changed_files(repo.owner(), repo.name(), base, head).await.map_err(port("compare commits"))
    }

    fn remember_installation(&self, repo: &RepoName, installation: u64) {
        self.client.remember_installation(repo.owner(), repo.name(), installation);
    }

    fn has_checks(&self) -> bool {
        self.client.is_app()
    }

    async fn check_run(&self, repo: &RepoName, sha: &str, run: &CheckRun) -> Result<(), PortError> {
        let (status, conclusion) = run.state.github();
        let new = NewCheckRun {
            name: run.name,
            head_sha: sha,
            status,
            conclusion,
            details_url: run.details_url.as_deref(),
            output: CheckOutput { title: run.title.clone(), summary: run.summary.clone() },
        };
        self.client.upsert_check_run(repo.owner(), repo.name(), &new).await.map_err(port("write check run")).map(|_| ())
    }

    async fn react(&self, repo: &RepoName, comment: u64, content: &str) -> Result<(), PortError> {
        self.client.react_to_comment(repo.owner(), repo.name(), comment, content).await.map_err(port("react"))
    }

    async fn reply(&self, repo: &RepoName, number: u64, body: &str) -> Result<(), PortError> {
        self.client.create_comment(repo.owner(), repo.name(), number, body).await.map_err(port("reply")).map(|_| ())
    }

    async fn permission(&self, repo: &RepoName, login: &str) -> Result<String, PortError> {
        self.client.permission(repo.owner(), repo.name(), login).await.map_err(port("read permission"))
    }

    async fn upsert_comment(&self, repo: &RepoName, number: u64, marker: &str, body: &str) -> Result<u64, PortError> {
        self.client
            .upsert_marked_comment(repo.owner(), repo.name(), number, marker, body)
            .await
            .map_err(port("write pull request comment"))
    }

    async fn ensure_deployment(
        &self,
        repo: &RepoName,
        sha: &str,
        environment: &str,
        description: &str,
    ) -> Result<u64, PortError> {
        self.client
            .ensure_deployment(repo.owner(), repo.name(), sha, environment, description)
            .await
            .map_err(port("create deployment"))
    }

    async fn latest_deployment(&self, repo: &RepoName, environment: &str) -> Result<Option<u64>, PortError> {
        self.client.latest_deployment(repo.owner(), repo.name(), environment).await.map_err(port("list deployments"))
    }

    async fn deployment_status(
        &self,
        repo: &RepoName,
        deployment: u64,
        state: &str,
        environment_url: Option<&str>,
        description: &str,
    ) -> Result<(), PortError> {
        let status = NewDeploymentStatus {
            state,
            environment_url,
            log_url: None,
            description: description.to_owned(),
            auto_inactive: state == "success",
        };
        self.client
            .create_deployment_status(repo.owner(), repo.name(), deployment, &status)
            .await
            .map_err(port("create deployment status"))
    }

    async fn commit_status(
        &self,
        repo: &RepoName,
        sha: &str,
        state: &str,
        context: &str,
        description: &str,
    ) -> Result<(), PortError> {
        let status = NewCommitStatus { state, context, description: description.to_owned(), target_url: None };
        self.client
            .create_commit_status(repo.owner(), repo.name(), sha, &status)
            .await
            .map_err(port("create commit status"))
    }
}

/// The GitHub token: from Secrets Manager (the secret's string is the token, or JSON with a
/// `"token"` field).
#[instrument(skip(client))]
pub async fn token_from_secret(client: &SecretsClient, secret_id: &str) -> Result<String, PortError> {
    let out =
        client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| port_error("read GitHub token", e))?;
    let value = out.secret_string().unwrap_or_default().trim();
    let token = if value.starts_with('{') {
        serde_json::from_str::<serde_json::Value>(value)
            .ok()
            .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_owned))
            .unwrap_or_default()
    } else {
        value.to_owned()
    };
    if token.is_empty() {
        return Err(PortError::Permanent {
            operation: "read GitHub token",
            message: format!("{secret_id} is empty, or JSON without a \"token\""),
        });
    }
    Ok(token)
}

/// A GitHub App's private key (the PEM GitHub gave) from the Secrets Manager secret `secret_id`.
pub async fn app_key_from_secret(client: &SecretsClient, secret_id: &str) -> Result<String, PortError> {
    const READ: &str = "read the GitHub App's private key";
    let out = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| port_error(READ, e))?;
    let pem = out.secret_string().unwrap_or_default().trim().to_owned();
    if !pem.contains("PRIVATE KEY-----") {
        let message = format!("{secret_id} does not hold a private key in PEM (-----BEGIN RSA PRIVATE KEY-----...)");
        return Err(PortError::Permanent { operation: READ, message });
    }
    Ok(pem)
}

/// Smoke checks and load tests over HTTP, on allowed preview hosts only.
pub struct HttpProber {
    http: reqwest::Client,
    policy: TargetPolicy,
}

impl HttpProber {
    pub fn new(policy: TargetPolicy) -> Self {
        Self { http: ephemera_probe::client(std::time::Duration::from_secs(10), ephemera_github::tls_config()), policy }
    }

    fn target(&self, preview_url: &str, path: &str) -> Result<reqwest::Url, PortError> {
        self.policy
            .target(preview_url, path)
            .map_err(|e| PortError::Permanent { operation: "probe preview", message: e.to_string() })
    }
}

#[async_trait]
impl Prober for HttpProber {
    async fn smoke(&self, preview_url: &str, checks: &[SmokeCheck]) -> Result<Vec<SmokeResult>, PortError> {
        let targets = checks
            .iter()
            .map(|c| Ok((self.target(preview_url, &c.path)?, c.clone())))
            .collect::<Result<Vec<_>, PortError>>()?;
        Ok(ephemera_probe::smoke(&self.http, &targets).await)
    }

    async fn load(
        &self,
        preview_url: &str,
        plan: &LoadPlan,
        scenario: &Scenario,
        api_key: Option<&str>,
    ) -> Result<Vec<Sample>, PortError> {
        let request = ephemera_probe::LoadRequest::new(&self.policy, preview_url, scenario, api_key)
            .map_err(|e| PortError::Permanent { operation: "load-test preview", message: e.to_string() })?;
        Ok(ephemera_probe::load(&self.http, &request, plan).await)
    }
}
