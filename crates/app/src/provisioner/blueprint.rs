//! Which template an environment gets, rendered with its tags into a stack request, and what
//! its stack's outputs mean (the preview URL).

use ephemera_domain::placement::Target;
use ephemera_domain::repo_config::{ConfigError, RepoConfig, CONFIG_PATH};
use ephemera_domain::{Environment, TagSet};
use tracing::info;

use super::{token, Provisioner};
use crate::ports::{ObjectStore, PortError, StackRequest};
use crate::template::{check, render, CheckError, TemplateError};

impl Provisioner {
    /// The stack request for `env`: its blueprint rendered with its tags. Err is a reason to fail.
    /// With it, the environment's estimated monthly cost from its resource types.
    pub(super) async fn request(
        &self,
        env: &Environment,
        tags: &TagSet,
        op: &str,
        target: Option<&Target>,
    ) -> Result<(StackRequest, f64), RequestError> {
        let (key, source) = match self.blueprint(env).await {
            Ok(found) => found,
            // S3 throttled or unavailable: try again later, the blueprint is not at fault.
            Err(BlueprintError::Port(e)) if e.is_retryable() => return Err(RequestError::Retry(e)),
            Err(e) => return Err(RequestError::Refused(e.to_string())),
        };
        let known = known_parameters(env, tags, self.clock.now());
        // The policy first: nothing reaches CloudFormation that could reach outside the environment.
        let (doc, report) = check(&source, &self.settings.blueprint_policy)
            .map_err(|e: CheckError| RequestError::Refused(format!("blueprint {key}: {e}")))?;
        for rewrite in &report.rewrites {
            info!(blueprint = %key, environment = %env.name, "{rewrite}");
        }
        // In a deploy account, its own boundary (the bootstrap's); here, the platform's.
        let boundary = target.map(Target::boundary_arn).or_else(|| self.settings.role_boundary_arn.clone());
        let rendered = render(doc, tags, &known, boundary.as_deref())
            .map_err(|e: TemplateError| RequestError::Refused(format!("blueprint {key}: {e}")))?;
        info!(blueprint = %key, tagged = rendered.tagged, rewritten = report.rewrites.len(), "rendered blueprint");
        let monthly = self.settings.prices.monthly_total(rendered.resource_types.iter().map(String::as_str));
        let request = StackRequest {
            name: env.stack_name(),
            template_body: rendered.body,
            parameters: rendered.parameters,
            tags: tags.clone(),
            token: token(op, env),
        };
        Ok((request, monthly))
    }

    async fn blueprint(&self, env: &Environment) -> Result<(String, String), BlueprintError> {
        find_blueprint(self.store.as_ref(), &self.settings.bucket, env).await
    }
}

/// The parameters a template may declare, and what the platform passes for each.
pub fn known_parameters(
    env: &Environment,
    tags: &TagSet,
    now: chrono::DateTime<chrono::Utc>,
) -> [(&'static str, String); 8] {
    [
        ("EnvironmentName", env.name.to_string()),
        ("EnvironmentKind", env.kind.as_str().to_owned()),
        ("Repository", env.repository.as_ref().map(|r| r.full_name()).unwrap_or_default()),
        ("PullRequest", env.pull_request.map(|n| n.to_string()).unwrap_or_default()),
        ("Owner", env.owner.clone()),
        ("Commit", env.commit.clone().unwrap_or_default()),
        ("ExpiresAt", tags.get(ephemera_domain::tags::EXPIRES_AT).unwrap_or_default().to_owned()),
        ("ApiKeyExpires", api_key_expiry(env.expires_at, now).to_string()),
    ]
}

/// Where an environment's own template is kept once its owner has pushed one.
pub fn own_template_key(env: &ephemera_domain::EnvironmentName) -> String {
    format!("environments/{env}/template.yaml")
}

/// What is kept beside a commit: its template (published by CI, or read from the repository),
/// the repository's `.ephemera.yml`, and its load-test scenario.
pub const TEMPLATE_ARTIFACT: &str = "template.yaml";
/// The repository's own blueprint at the commit (`.ephemera.yml`'s, or `.ephemera/template.yaml`).
pub const REPOSITORY_TEMPLATE_ARTIFACT: &str = "repository-template.yaml";
pub const CONFIG_ARTIFACT: &str = "ephemera.yml";
pub const SCENARIO_ARTIFACT: &str = "scenario.json";

/// `artifacts/{owner}/{repo}/{sha}/{name}`.
pub fn artifact_key(repo: &ephemera_domain::RepoName, sha: &str, name: &str) -> String {
    format!("artifacts/{}/{}/{sha}/{name}", repo.owner(), repo.name())
}

/// The template for `env` and the key it was found at: the one its owner pushed, else the
/// commit's own (read from the repository, else published by CI), else the repository's in
/// the bucket, else the default. A commit whose `.ephemera.yml` is
/// malformed, or names a blueprint the commit does not have, has none.
pub async fn find_blueprint(
    store: &dyn ObjectStore,
    bucket: &str,
    env: &Environment,
) -> Result<(String, String), BlueprintError> {
    let own = own_template_key(&env.name);
    if let Some(body) = store.get_text(bucket, &own).await? {
        return Ok((own, body));
    }
    let mut keys = vec![own];
    if let Some(repo) = &env.repository {
        if let Some(sha) = &env.commit {
            let own = artifact_key(repo, sha, REPOSITORY_TEMPLATE_ARTIFACT);
            if let Some(text) = store.get_text(bucket, &artifact_key(repo, sha, CONFIG_ARTIFACT)).await? {
                let config = RepoConfig::parse(&text).map_err(BlueprintError::Config)?;
                if let Some(path) = config.blueprint {
                    let body = store.get_text(bucket, &own).await?;
                    return body.map(|b| (own, b)).ok_or(BlueprintError::Missing { path, commit: sha.clone() });
                }
            }
            // The repository's `.ephemera/template.yaml`, then what CI published for the commit.
            keys.push(own);
            keys.push(artifact_key(repo, sha, TEMPLATE_ARTIFACT));
        }
        keys.push(format!("blueprints/{}/{}.yaml", repo.owner(), repo.name()));
    }
    keys.push("blueprints/default.yaml".to_owned());
    for key in keys.iter().skip(1) {
        if let Some(body) = store.get_text(bucket, key).await? {
            return Ok((key.clone(), body));
        }
    }
    Err(BlueprintError::NotFound { bucket: bucket.to_owned(), tried: keys })
}

/// Why no stack request could be made: worth retrying later, or a reason to fail.
pub(super) enum RequestError {
    Retry(PortError),
    Refused(String),
}

/// CloudFormation's answer to a stack call: throttling and the like are retried; a refusal of
/// the template or its parameters is a reason to fail.
impl From<PortError> for RequestError {
    fn from(e: PortError) -> Self {
        match e {
            e @ PortError::Retryable { .. } => RequestError::Retry(e),
            e @ PortError::Permanent { .. } => RequestError::Refused(e.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlueprintError {
    #[error("no blueprint in s3://{bucket}: tried {tried:?}")]
    NotFound { bucket: String, tried: Vec<String> },
    #[error("{0}")]
    Config(ConfigError),
    #[error("{CONFIG_PATH} names the blueprint {path}, which commit {commit} does not have")]
    Missing { path: String, commit: String },
    #[error(transparent)]
    Port(#[from] PortError),
}

/// The URL reviewers open: the blueprint's `PreviewUrl` output, else its GraphQL endpoint
/// (given, or derived from the AppSync API's ARN).
pub fn preview_url(outputs: &std::collections::BTreeMap<String, String>) -> Option<String> {
    if let Some(url) = ["PreviewUrl", "GraphQLUrl"].iter().find_map(|k| outputs.get(*k)) {
        return Some(url.clone());
    }
    // arn:aws:appsync:<region>:<account>:apis/<api-id>
    let arn = outputs.get("GraphQLApiArn")?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "appsync", region, _, resource] => {
            let id = resource.strip_prefix("apis/")?;
            let domain = if partition.ends_with("-cn") { "amazonaws.com.cn" } else { "amazonaws.com" };
            // AWS's ids are alphanumeric (the emulator's are UUIDs, with hyphens); nothing else
            // may reach the URL.
            let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            valid.then(|| format!("https://{id}.appsync-api.{region}.{domain}/graphql"))
        }
        _ => None,
    }
}

/// The id of the environment's AppSync API: its `GraphQLApiId` output, else the last part of
/// its `GraphQLApiArn`.
pub fn api_id(outputs: &std::collections::BTreeMap<String, String>) -> Option<String> {
    outputs
        .get("GraphQLApiId")
        .cloned()
        .or_else(|| outputs.get("GraphQLApiArn").and_then(|a| a.rsplit('/').next()).map(str::to_owned))
}

/// An AppSync API key's expiry (epoch seconds): the environment's, but at least 25 hours and at
/// most 364 days ahead, rounded down to the hour, as AppSync requires.
pub fn api_key_expiry(expires_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> i64 {
    let lo = (now + chrono::Duration::hours(25)).timestamp();
    let hi = (now + chrono::Duration::days(364)).timestamp();
    let t = expires_at.timestamp().clamp(lo, hi);
    t - t.rem_euclid(3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn outputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn preview_url_prefers_explicit_outputs_then_derives_from_the_api_arn() {
        assert_eq!(
            preview_url(&outputs(&[("PreviewUrl", "https://x"), ("GraphQLUrl", "https://y")])).as_deref(),
            Some("https://x")
        );
        assert_eq!(
            preview_url(&outputs(&[(
                "GraphQLApiArn",
                "arn:aws:appsync:eu-west-1:123456789012:apis/abcdefghij1234567890"
            )]))
            .as_deref(),
            Some("https://abcdefghij1234567890.appsync-api.eu-west-1.amazonaws.com/graphql")
        );
        assert_eq!(preview_url(&outputs(&[("GraphQLApiArn", "arn:aws:s3:::bucket")])), None);
        assert_eq!(preview_url(&outputs(&[("GraphQLApiArn", "arn:aws:appsync:r:1:apis/../evil")])), None);
        assert_eq!(preview_url(&outputs(&[])), None);
    }

    #[test]
    fn api_key_expiry_is_within_appsyncs_bounds_and_on_the_hour() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:30:00Z").unwrap().to_utc();
        let in_8h = now + chrono::Duration::hours(8);
        let in_7d = now + chrono::Duration::days(7);
        assert_eq!(api_key_expiry(in_8h, now), (now + chrono::Duration::hours(25)).timestamp() - 1800);
        assert_eq!(api_key_expiry(in_7d, now), in_7d.timestamp() - 1800);
        let far = now + chrono::Duration::days(900);
        assert!(api_key_expiry(far, now) <= (now + chrono::Duration::days(364)).timestamp());
        assert_eq!(api_key_expiry(in_7d, now) % 3600, 0);
    }
}
