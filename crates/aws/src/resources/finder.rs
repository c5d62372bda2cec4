//! Finding what may be an environment's: the Tagging API for the kinds it lists, and each
//! kind's own listing (by the platform's name prefix, then its tags) for IAM roles and
//! policies, Cognito pools and Lambda's untagged runtime log groups.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, TagFilter};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ephemera_app::ports::Inventory;
use ephemera_app::PortError;
use ephemera_domain::catalogue::{self, Kind, Leftover, LAMBDA_LOG_PREFIX};
use ephemera_domain::names::ENVIRONMENT_PREFIXES;
use ephemera_domain::sweep::ResourceInfo;
use ephemera_domain::tags::{ENVIRONMENT, MANAGED_BY, MANAGED_BY_VALUE};
use ephemera_domain::EnvironmentName;
use tracing::{debug, instrument};

use super::AwsResources;
use crate::error::{code, port_error};

type Tags = Vec<(String, String)>;

/// Every environment's resources, or one environment's.
#[derive(Debug, Clone, Copy)]
struct Scope<'a>(Option<&'a str>);

impl Scope<'_> {
    /// The name prefixes to list by: the environments' namespaces (`ephemera-pr-`,
    /// `ephemera-dev-`, `ephemera-br-`; not the platform's own `ephemera-...`), or for one environment as much
    /// of `ephemera-<environment>` as a generated name keeps at least (the domain tells the
    /// environment's own apart).
    fn prefixes(&self) -> Vec<String> {
        match self.0 {
            None => ENVIRONMENT_PREFIXES.iter().map(|p| format!("ephemera-{p}")).collect(),
            Some(env) => vec![format!("ephemera-{env}").chars().take(catalogue::MIN_CUT).collect()],
        }
    }
    fn takes_name(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.prefixes().iter().any(|p| name.starts_with(p))
    }
    /// Tagged as the platform's (and for the environment, if one).
    fn takes_tags(&self, tags: &Tags) -> bool {
        let has = |k: &str, v: &str| tags.iter().any(|(tk, tv)| tk == k && tv == v);
        has(MANAGED_BY, MANAGED_BY_VALUE) && self.0.is_none_or(|env| has(ENVIRONMENT, env))
    }
}

#[async_trait]
impl Inventory for AwsResources {
    #[instrument(skip(self))]
    async fn found(&self) -> Result<Vec<ResourceInfo>, PortError> {
        self.find(Scope(None)).await
    }

    #[instrument(skip(self))]
    async fn found_for(&self, environment: &EnvironmentName) -> Result<Vec<ResourceInfo>, PortError> {
        self.find(Scope(Some(environment.as_str()))).await
    }

    #[instrument(skip(self))]
    async fn any_tagged_for(&self, environment: &EnvironmentName) -> Result<bool, PortError> {
        // A page may be empty and still carry a token: only the last page's emptiness says none.
        let mut any = false;
        self.tagged_pages(Scope(Some(environment.as_str())), None, 1, |page| {
            any = !page.is_empty();
            !any
        })
        .await?;
        Ok(any)
    }
}

impl AwsResources {
    async fn find(&self, scope: Scope<'_>) -> Result<Vec<ResourceInfo>, PortError> {
        let mut out = self.tagged(scope, None).await?;
        self.name_apis(&mut out).await?;
        out.extend(self.roles(scope).await?);
        out.extend(self.managed_policies(scope).await?);
        out.extend(self.user_pools(scope).await?);
        out.extend(self.identity_pools(scope).await?);
        let runtime = self.runtime_log_groups(scope).await?;
        if scope.0.is_some() && !runtime.is_empty() {
            // Their tags, whichever environment they name: a tagged group is never "untagged".
            out.extend(self.tagged(Scope(None), Some("logs")).await?);
        }
        out.extend(runtime);
        Ok(merged(out))
    }

    /// The Tagging API: every resource with the platform's tags (of one service, if given),
    /// following pagination.
    async fn tagged(&self, scope: Scope<'_>, service: Option<&str>) -> Result<Vec<ResourceInfo>, PortError> {
        let mut out = Vec::new();
        self.tagged_pages(scope, service, 100, |page| {
            for m in page {
                let tags = m.tags.into_iter().flatten().map(|t| (t.key, t.value)).collect();
                out.extend(m.resource_arn.map(|arn| ResourceInfo::new(arn, tags)));
            }
            true
        })
        .await?;
        Ok(out)
    }

    /// The Tagging API's pages of what carries the platform's tags (for the scope's environment,
    /// of one service, if given), `per_page` at a time, each handed to `more` until it says no
    /// more is wanted or the last page is read.
    async fn tagged_pages(
        &self,
        scope: Scope<'_>,
        service: Option<&str>,
        per_page: i32,
        mut more: impl FnMut(Vec<ResourceTagMapping>) -> bool,
    ) -> Result<(), PortError> {
        let mut filters = vec![TagFilter::builder().key(MANAGED_BY).values(MANAGED_BY_VALUE).build()];
        if let Some(env) = scope.0 {
            filters.push(TagFilter::builder().key(ENVIRONMENT).values(env).build());
        }
        let types = service.map(|s| vec![s.to_owned()]);
        let mut token: Option<String> = None;
        loop {
            let page = self
                .tagging
                .get_resources()
                .set_tag_filters(Some(filters.clone()))
                .set_resource_type_filters(types.clone())
                .resources_per_page(per_page)
                .set_pagination_token(token.take())
                .send()
                .await
                .map_err(|e| port_error("list tagged resources", e))?;
            if !more(page.resource_tag_mapping_list.unwrap_or_default()) {
                return Ok(());
            }
            match page.pagination_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    /// An AppSync API's ARN holds its id; its name says whose it is.
    async fn name_apis(&self, found: &mut [ResourceInfo]) -> Result<(), PortError> {
        if !found.iter().any(|r| Kind::of_arn(&r.arn) == Some(Kind::GraphQlApi)) {
            return Ok(());
        }
        let mut names = HashMap::new();
        let mut pages = self.appsync.list_graphql_apis().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list GraphQL APIs", e))?;
            for api in page.graphql_apis.unwrap_or_default() {
                if let (Some(arn), Some(name)) = (api.arn, api.name) {
                    names.insert(arn, name);
                }
            }
        }
        for r in found.iter_mut().filter(|r| Kind::of_arn(&r.arn) == Some(Kind::GraphQlApi)) {
            r.name = names.get(&r.arn).cloned();
        }
        Ok(())
    }

    /// IAM roles named like the platform's, with their tags (the Tagging API does not list roles).
    async fn roles(&self, scope: Scope<'_>) -> Result<Vec<ResourceInfo>, PortError> {
        let mut out = Vec::new();
        let mut pages = self.iam.list_roles().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list roles", e))?;
            for role in page.roles.into_iter().filter(|r| scope.takes_name(&r.role_name)) {
                let read = self.iam.list_role_tags().role_name(&role.role_name).send().await;
                let Some(tags) = readable("list role tags", &role.role_name, read)? else { continue };
                let tags: Tags = tags.tags.into_iter().map(|t| (t.key, t.value)).collect();
                if scope.takes_tags(&tags) {
                    out.push(ResourceInfo::new(role.arn, tags));
                }
            }
        }
        Ok(out)
    }

    /// Customer managed policies named like the platform's: CloudFormation cannot tag them, so
    /// they are owned by their name.
    async fn managed_policies(&self, scope: Scope<'_>) -> Result<Vec<ResourceInfo>, PortError> {
        let mut out = Vec::new();
        let mut pages =
            self.iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list policies", e))?;
            for p in page.policies.unwrap_or_default() {
                if let (Some(arn), Some(name)) = (p.arn, p.policy_name) {
                    if scope.takes_name(&name) {
                        out.push(ResourceInfo::new(arn, Vec::new()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The log groups Lambda creates on its own for the platform's functions, tagged or not.
    async fn runtime_log_groups(&self, scope: Scope<'_>) -> Result<Vec<ResourceInfo>, PortError> {
        let mut out = Vec::new();
        for prefix in scope.prefixes() {
            let prefix = format!("{LAMBDA_LOG_PREFIX}{prefix}");
            let mut pages = self.logs.describe_log_groups().log_group_name_prefix(prefix).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| port_error("list log groups", e))?;
                for g in page.log_groups.unwrap_or_default() {
                    let arn = g.log_group_arn.or_else(|| g.arn.map(|a| a.trim_end_matches(":*").to_owned()));
                    out.extend(arn.map(|arn| ResourceInfo::new(arn, Vec::new())));
                }
            }
        }
        Ok(out)
    }

    /// Cognito user pools named like the platform's, with their tags.
    async fn user_pools(&self, scope: Scope<'_>) -> Result<Vec<ResourceInfo>, PortError> {
        let mut out = Vec::new();
        let mut pages = self.cognito_idp.list_user_pools().max_results(60).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list user pools", e))?;
            for pool in page.user_pools.unwrap_or_default() {
                let (Some(id), Some(name)) = (pool.id, pool.name) else { continue };
                if !scope.takes_name(&name) {
                    continue;
                }
                let read = self.cognito_idp.describe_user_pool().user_pool_id(&id).send().await;
                let Some(pool) = readable("describe user pool", &name, read)?.and_then(|d| d.user_pool) else {
                    continue;
                };
                let tags: Tags = pool.user_pool_tags.unwrap_or_default().into_iter().collect();
                if let (true, Some(arn)) = (scope.takes_tags(&tags), pool.arn) {
                    out.push(ResourceInfo { arn, name: Some(name), tags });
                }
            }
        }
        Ok(out)
    }

    /// Cognito identity pools named like the platform's, with their tags.
    async fn identity_pools(&self, scope: Scope<'_>) -> Result<Vec<ResourceInfo>, PortError> {
        let mut out = Vec::new();
        let mut pages = self.cognito_identity.list_identity_pools().max_results(60).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error("list identity pools", e))?;
            for pool in page.identity_pools.unwrap_or_default() {
                let (Some(id), Some(name)) = (pool.identity_pool_id, pool.identity_pool_name) else { continue };
                if !scope.takes_name(&name) {
                    continue;
                }
                let read = self.cognito_identity.describe_identity_pool().identity_pool_id(&id).send().await;
                let Some(described) = readable("describe identity pool", &name, read)? else { continue };
                let tags: Tags = described.identity_pool_tags.unwrap_or_default().into_iter().collect();
                if scope.takes_tags(&tags) {
                    let arn =
                        format!("arn:aws:cognito-identity:{}:{}:identitypool/{id}", self.region, self.account().await?);
                    out.push(ResourceInfo { arn, name: Some(name), tags });
                }
            }
        }
        Ok(out)
    }

    /// This account's id, asked once.
    async fn account(&self) -> Result<&str, PortError> {
        let id = self
            .account
            .get_or_try_init(|| async {
                let me =
                    self.sts.get_caller_identity().send().await.map_err(|e| port_error("get caller identity", e))?;
                me.account
                    .ok_or(PortError::Retryable { operation: "get caller identity", message: "no account".into() })
            })
            .await?;
        Ok(id.as_str())
    }
}

/// A resource's own details, `None` if it is gone since it was listed or the platform may not
/// read it (IAM lets the platform read only what carries its tags: then it is not the platform's).
fn readable<T, E>(
    operation: &'static str,
    name: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, PortError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const SKIP: &[&str] = &[
        "AccessDenied",
        "AccessDeniedException",
        "NotAuthorizedException",
        "NoSuchEntity",
        "ResourceNotFoundException",
    ];
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if code(&e).is_some_and(|c| SKIP.contains(&c)) => {
            debug!(operation, name, code = code(&e), "not readable: not the platform's, or gone");
            Ok(None)
        }
        Err(e) => Err(port_error(operation, e)),
    }
}

/// One entry per resource: the Tagging API and a kind's own listing may both report one (a
/// Cognito pool, a tagged log group, with or without `:*`). Its name and tags come from
/// whichever report has them.
fn merged(found: Vec<ResourceInfo>) -> Vec<ResourceInfo> {
    let mut out: Vec<ResourceInfo> = Vec::with_capacity(found.len());
    let mut index: HashMap<Leftover, usize> = HashMap::new();
    for r in found {
        let key = Kind::of_arn(&r.arn).map(|k| Leftover::from_arn(k, &r.arn));
        match key.as_ref().and_then(|k| index.get(k)) {
            Some(&i) => {
                let kept = &mut out[i];
                kept.name = kept.name.take().or(r.name);
                if kept.tags.is_empty() {
                    kept.tags = r.tags;
                }
            }
            None => {
                if let Some(k) = key {
                    index.insert(k, out.len());
                }
                out.push(r);
            }
        }
    }
    out
}
