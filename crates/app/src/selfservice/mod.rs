//! Developer self-service: a developer's own environments, created, listed, extended,
//! preserved and destroyed on request, with the client config an app needs to use one.
//!
//! Identity is the caller's whole IAM principal (API Gateway's IAM authorization in AWS, SigV4
//! checked by the local runner). A developer acts on their own environments; admins on all.

use std::sync::Arc;

use chrono::Duration;
use ephemera_domain::admission;
use ephemera_domain::blueprint::Policy;
use ephemera_domain::developer::{is_legacy_owner, Admin, Admission, Principal, Quotas};
use ephemera_domain::policy::ExpiryPolicy;
use ephemera_domain::{Desired, Environment, EnvironmentKind, EnvironmentName, EventOrder, Status};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};

mod push;

pub use push::Push;

use crate::clock::Clock;
use crate::events::PlatformEvent;
use crate::ports::{Change, ChangeOutcome, DesiredState, EventBus, Ledger, ObjectStore, PortError, Sites};

pub use crate::ports::ApiKeys;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub admin: bool,
}

impl Caller {
    /// What an environment of theirs records as its owner: the whole principal ARN.
    pub fn owner(&self) -> &str {
        self.principal.id()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SelfServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no environment {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("quota reached: {0}")]
    QuotaReached(String),
    #[error("{0}")]
    NotReady(String),
    /// The blueprint policy refused a pushed template: every violation.
    #[error("the template breaks the blueprint policy: {}", .0.join("; "))]
    Refused(Vec<String>),
    #[error(transparent)]
    Unavailable(#[from] PortError),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub ttl_hours: Option<i64>,
    pub blueprint: Option<String>,
}

/// What the API shows of an environment.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub name: String,
    pub kind: &'static str,
    pub owner: String,
    pub status: &'static str,
    pub desired: &'static str,
    pub reason: Option<String>,
    pub preserved: bool,
    /// When a developer environment's preservation lapses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserved_until: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    /// The reaper warned that it expires soon (`EPHEMERA_EXPIRY_NOTICE_HOURS`, then the last
    /// hour): extend it to keep it.
    pub expires_soon: bool,
    pub preview_url: Option<String>,
    pub cost_monthly_usd: Option<f64>,
    pub cost_accrued_usd: Option<f64>,
    pub repository: Option<String>,
    pub pull_request: Option<u64>,
    /// Place in the queue, when waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
    /// The deploy account it lives in (None: the platform's own), and the region.
    pub account: Option<String>,
    pub region: Option<String>,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl View {
    /// What the API shows of `e` at `now` (a developer's preservation may have lapsed).
    pub fn of(e: &Environment, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            name: e.name.to_string(),
            kind: e.kind.as_str(),
            owner: e.owner.clone(),
            status: e.status.as_str(),
            desired: e.desired.as_str(),
            reason: e.status_reason.clone(),
            preserved: e.is_preserved(now),
            preserved_until: e.preserved_until.filter(|_| e.preserved).map(rfc3339),
            created_at: rfc3339(e.created_at),
            expires_at: rfc3339(e.expires_at),
            expires_soon: e.expires_soon(now),
            preview_url: e.preview_url.clone(),
            cost_monthly_usd: e.cost_monthly_usd,
            cost_accrued_usd: e.cost_accrued_usd,
            repository: e.repository.as_ref().map(|r| r.full_name()),
            pull_request: e.pull_request,
            queue_position: None,
            account: e.account.clone(),
            region: e.region.clone(),
        }
    }
}

/// One page of environments, and where the next starts (None after the last).
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub environments: Vec<View>,
    pub next: Option<String>,
}

/// The client config of a ready environment.
#[derive(Debug, Clone, Serialize)]
pub struct ClientConfig {
    pub environment: String,
    pub region: String,
    pub graphql_endpoint: String,
    pub api_key: String,
    pub api_key_expires: String,
    pub bucket: Option<String>,
    pub tables: Vec<String>,
}

impl ClientConfig {
    /// As an `aws-exports.js` module, as Amplify apps load it.
    pub fn to_js(&self) -> String {
        let mut cfg = serde_json::json!({
            "aws_project_region": self.region,
            "aws_appsync_graphqlEndpoint": self.graphql_endpoint,
            "aws_appsync_region": self.region,
            "aws_appsync_authenticationType": "API_KEY",
            "aws_appsync_apiKey": self.api_key,
        });
        if let Some(b) = &self.bucket {
            cfg["aws_user_files_s3_bucket"] = serde_json::json!(b);
            cfg["aws_user_files_s3_bucket_region"] = serde_json::json!(self.region);
        }
        format!(
            "// Generated by Ephemera for {}; the API key expires {}.\nconst awsmobile = {};\n\nexport default awsmobile;\n",
            self.environment,
            self.api_key_expires,
            serde_json::to_string_pretty(&cfg).expect("JSON values serialize")
        )
    }
}

#[derive(Debug, Clone)]
pub struct SelfServiceSettings {
    pub quotas: Quotas,
    /// IAM users and roles (every session of them) that act on every environment.
    pub admins: Vec<Admin>,
    pub expiry: ExpiryPolicy,
    /// The longest a developer environment may be given at once.
    pub max_ttl: Duration,
    /// The longest a developer may preserve their environment; past it, only an admin renews.
    pub max_preserve: Duration,
    pub region: String,
    /// The platform bucket, where pushed templates are kept.
    pub bucket: String,
    /// The deploy targets, to reach an environment where it lives.
    pub routes: ephemera_domain::placement::Routes,
    /// What a pushed template may declare (the provisioner's policy).
    pub blueprint_policy: Policy,
}

pub struct SelfService {
    pub registry: Arc<dyn DesiredState>,
    /// The running totals the developer quotas are read from.
    pub ledger: Arc<dyn Ledger>,
    pub bus: Arc<dyn EventBus>,
    /// Where environments live: their API keys are made there.
    pub sites: Arc<dyn Sites>,
    pub store: Arc<dyn ObjectStore>,
    pub clock: Arc<dyn Clock>,
    pub settings: SelfServiceSettings,
}

impl SelfService {
    /// The caller behind a principal ARN.
    pub fn caller(&self, arn: &str) -> Result<Caller, SelfServiceError> {
        let principal = Principal::parse(arn).map_err(SelfServiceError::Forbidden)?;
        let admin = self.settings.admins.iter().any(|a| a.includes(&principal));
        Ok(Caller { principal, admin })
    }

    fn ttl(&self, hours: Option<i64>) -> Result<Duration, SelfServiceError> {
        match hours {
            None => Ok(self.settings.expiry.dev_ttl),
            Some(h) if h >= 1 && Duration::hours(h) <= self.settings.max_ttl => Ok(Duration::hours(h)),
            Some(h) => Err(SelfServiceError::BadRequest(format!(
                "hours must be from 1 to {}, got {h}",
                self.settings.max_ttl.num_hours()
            ))),
        }
    }

    #[instrument(skip(self, req), fields(owner = %caller.owner()))]
    pub async fn create(&self, caller: &Caller, req: CreateRequest) -> Result<View, SelfServiceError> {
        if req.blueprint.is_some() {
            return Err(SelfServiceError::BadRequest(
                "an environment starts from the default blueprint; push your own once it exists: \
                 `ephemera env deploy ENV --template FILE` (PUT /v1/environments/{env}/template)"
                    .into(),
            ));
        }
        let name = EnvironmentName::for_developer(caller.principal.login(), req.name.as_deref())
            .map_err(|e| SelfServiceError::BadRequest(e.to_string()))?;
        let ttl = self.ttl(req.ttl_hours)?;
        let existing = self.registry.get(&name).await?;
        let existing = existing.as_ref();
        if let Some(existing) = existing {
            taken(caller, existing, req.name.as_deref())?;
        }
        // A new life starts unpreserved, with a new preservation allowance.
        let reset_preserve = existing.is_some_and(|e| e.preserved || e.preserved_until.is_some());
        let admission = self.admission(caller).await?;
        if let Admission::Refuse(reason) = &admission {
            return Err(SelfServiceError::QuotaReached(reason.clone()));
        }
        if reset_preserve {
            self.registry.set_preserved(&name, false, None).await?;
        }
        let now = self.clock.now();
        let change = Change {
            // Only over the record just read (none, or the caller's own, gone): a principal
            // creating the same name meanwhile makes this one a conflict, not a takeover.
            expected_generation: Some(existing.map_or(0, |e| e.generation)),
            ..Change::new(
                name.clone(),
                EnvironmentKind::Dev,
                caller.owner(),
                Desired::Up,
                EventOrder::new(now.timestamp_millis(), EventOrder::RANK_OPEN),
                now + ttl,
                now,
            )
        };
        let env = self.apply(change).await?;
        let mut view = View::of(&env, self.clock.now());
        if let Admission::Queue { position } = admission {
            view.queue_position = Some(position);
        }
        info!(environment = %name, ?admission, "developer environment requested");
        Ok(view)
    }

    /// Whether a new environment of the caller's starts now, waits or is refused: the running
    /// totals of live developer environments (the provisioner's claims) against the quotas. The
    /// queue is read only when the quotas are full.
    async fn admission(&self, caller: &Caller) -> Result<Admission, SelfServiceError> {
        let totals = self.ledger.totals().await?;
        let count = |counter: &str| admission::total(&totals, counter).max(0) as usize;
        let (mine, all) = (count(&admission::owner_counter(caller.owner())), count(admission::DEV));
        let quotas = self.settings.quotas;
        if mine < quotas.per_owner && all < quotas.global {
            return Ok(Admission::Now);
        }
        let queued = match quotas.queue_when_full {
            true => {
                let waiting = |e: &Environment| e.status == Status::Queued && e.desired == Desired::Up;
                self.registry.list().await?.iter().filter(|e| e.kind == EnvironmentKind::Dev && waiting(e)).count()
            }
            false => 0,
        };
        Ok(quotas.admit(mine, all, queued))
    }

    async fn apply(&self, change: Change) -> Result<Environment, SelfServiceError> {
        let name = change.name.clone();
        match self.registry.apply_change(&format!("api-{}", uuid::Uuid::new_v4()), &change).await? {
            ChangeOutcome::Accepted { .. } => {}
            ChangeOutcome::Conflict(m) => return Err(SelfServiceError::Conflict(m)),
            other => {
                return Err(SelfServiceError::Conflict(format!("{name} changed meanwhile ({other:?}); try again")))
            }
        }
        let env = self.registry.get(&name).await?.ok_or_else(|| SelfServiceError::NotFound(name.to_string()))?;
        self.bus.publish(&[PlatformEvent::requested(&env)]).await?;
        Ok(env)
    }

    /// One page of the caller's environments (every developer environment for an admin asking
    /// for all), by name: `limit` environments read from `after` (the `next` of the page before).
    pub async fn list(
        &self,
        caller: &Caller,
        all: bool,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Listing, SelfServiceError> {
        if all && !caller.admin {
            return Err(SelfServiceError::Forbidden("only admins may list every environment".into()));
        }
        let after = after.map(EnvironmentName::parse).transpose().map_err(|e| {
            SelfServiceError::BadRequest(format!("after must be the `next` of the page before (a name): {e}"))
        })?;
        let limit = limit.unwrap_or(crate::dashboard::PAGE).clamp(1, crate::dashboard::MAX_PAGE);
        let page = self.registry.page(Some(EnvironmentKind::Dev), after.as_ref(), limit).await?;
        let now = self.clock.now();
        let environments = page
            .environments
            .iter()
            .filter(|e| (all || caller.principal.owns(&e.owner)) && e.status != Status::Deleted)
            .map(|e| View::of(e, now))
            .collect();
        Ok(Listing { environments, next: page.next.map(|n| n.to_string()) })
    }

    /// One environment the caller may see.
    pub async fn get(&self, caller: &Caller, name: &str) -> Result<Environment, SelfServiceError> {
        let parsed = EnvironmentName::parse(name).map_err(|e| SelfServiceError::BadRequest(e.to_string()))?;
        let env = self.registry.get(&parsed).await?.ok_or_else(|| SelfServiceError::NotFound(name.to_owned()))?;
        if env.kind != EnvironmentKind::Dev && !caller.admin {
            return Err(SelfServiceError::Forbidden(format!("{name} is a {} environment", env.kind.as_str())));
        }
        if !caller.principal.owns(&env.owner) && !caller.admin {
            return Err(SelfServiceError::Forbidden(
                legacy_hint(caller, &env).unwrap_or_else(|| format!("{name} belongs to another principal")),
            ));
        }
        Ok(env)
    }

    /// One environment the caller may see, as the API shows it.
    pub async fn show(&self, caller: &Caller, name: &str) -> Result<View, SelfServiceError> {
        Ok(View::of(&self.get(caller, name).await?, self.clock.now()))
    }

    /// A developer environment the caller may change (a pull request's follows its pull request).
    async fn own_dev(&self, caller: &Caller, name: &str) -> Result<Environment, SelfServiceError> {
        let env = self.get(caller, name).await?;
        if env.kind != EnvironmentKind::Dev {
            return Err(SelfServiceError::Forbidden(format!(
                "{name} follows its pull request; close or push to it instead"
            )));
        }
        Ok(env)
    }

    pub async fn destroy(&self, caller: &Caller, name: &str) -> Result<View, SelfServiceError> {
        let env = self.own_dev(caller, name).await?;
        let now = self.clock.now();
        let change = self.change_from(&env, Desired::Down, env.expires_at, now);
        Ok(View::of(&self.apply(change).await?, now))
    }

    pub async fn extend(&self, caller: &Caller, name: &str, hours: i64) -> Result<View, SelfServiceError> {
        let env = self.own_dev(caller, name).await?;
        if env.desired != Desired::Up {
            return Err(SelfServiceError::Conflict(format!("{name} is being destroyed")));
        }
        let now = self.clock.now();
        let extra = self.ttl(Some(hours))?;
        let expires = (env.expires_at.max(now) + extra).min(now + self.settings.max_ttl);
        let change = self.change_from(&env, Desired::Up, expires, now);
        Ok(View::of(&self.apply(change).await?, now))
    }

    /// Preserves (or stops preserving) an environment. A developer's preservation lasts
    /// `max_preserve` from when they first asked; asking again does not move it, and past it
    /// only an admin can renew it. A pull request's, pinned by an admin, does not lapse.
    pub async fn preserve(&self, caller: &Caller, name: &str, on: bool) -> Result<View, SelfServiceError> {
        let mut env = self.get(caller, name).await?;
        let now = self.clock.now();
        let until = match (env.kind, on) {
            (EnvironmentKind::Dev, true) => Some(self.preserve_until(caller, &env, now)?),
            (EnvironmentKind::Dev, false) => env.preserved_until,
            _ => None,
        };
        self.registry.set_preserved(&env.name, on, until).await?;
        (env.preserved, env.preserved_until) = (on, until);
        Ok(View::of(&env, self.clock.now()))
    }

    fn preserve_until(
        &self,
        caller: &Caller,
        env: &Environment,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<chrono::DateTime<chrono::Utc>, SelfServiceError> {
        let renewed = now + self.settings.max_preserve;
        match env.preserved_until {
            _ if caller.admin => Ok(renewed),
            None => Ok(renewed),
            Some(until) if until > now => Ok(until),
            Some(until) => Err(SelfServiceError::Forbidden(format!(
                "{} was preserved for the longest a developer may ({} days), until {}; an admin can renew it",
                env.name,
                self.settings.max_preserve.num_days(),
                rfc3339(until)
            ))),
        }
    }

    /// An admin hands a developer environment to a principal (the migration of owners recorded
    /// as a bare login). The stack's owner tag follows.
    pub async fn adopt(&self, caller: &Caller, name: &str, owner: &str) -> Result<View, SelfServiceError> {
        if !caller.admin {
            return Err(SelfServiceError::Forbidden("only admins may hand an environment to someone".into()));
        }
        let owner = Principal::parse(owner).map_err(SelfServiceError::BadRequest)?;
        let env = self.own_dev(caller, name).await?;
        let now = self.clock.now();
        let mut change = self.change_from(&env, env.desired, env.expires_at, now);
        change.owner = owner.id().to_owned();
        Ok(View::of(&self.apply(change).await?, now))
    }

    /// The client config: region, GraphQL endpoint, and an API key that expires with the
    /// environment.
    pub async fn config(&self, caller: &Caller, name: &str) -> Result<ClientConfig, SelfServiceError> {
        let env = self.get(caller, name).await?;
        if env.status != Status::Ready {
            return Err(SelfServiceError::NotReady(format!("{name} is {}, not READY", env.status.as_str())));
        }
        let endpoint = crate::provisioner::preview_url(&env.outputs)
            .ok_or_else(|| SelfServiceError::NotReady(format!("{name} has no GraphQL endpoint among its outputs")))?;
        let api_id = crate::provisioner::api_id(&env.outputs)
            .ok_or_else(|| SelfServiceError::NotReady(format!("{name} has no GraphQL API among its outputs")))?;
        let expires = crate::provisioner::api_key_expiry(env.expires_at, self.clock.now());
        let keys = self.sites.of(&self.settings.routes, &env).await?.keys;
        let key = keys.create(&api_id, expires, &format!("ephemera client key for {name}")).await?;
        Ok(ClientConfig {
            environment: env.name.to_string(),
            region: self.settings.region.clone(),
            graphql_endpoint: endpoint,
            api_key: key,
            api_key_expires: chrono::DateTime::from_timestamp(expires, 0).map(rfc3339).unwrap_or_default(),
            bucket: env.outputs.get("StorageBucketName").cloned(),
            tables: env.outputs.iter().filter(|(k, _)| k.ends_with("TableName")).map(|(_, v)| v.clone()).collect(),
        })
    }

    fn change_from(
        &self,
        env: &Environment,
        desired: Desired,
        expires_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Change {
        let rank = if desired == Desired::Down { EventOrder::RANK_CLOSE } else { EventOrder::RANK_PUSH };
        // Decided on `env` as read: if anything changed it meanwhile (the reaper took it down,
        // an admin handed it over), this change is refused and the caller asked to try again.
        // Later than anything recorded, whatever the clock says.
        let at = now.timestamp_millis().max(env.last_event.map(|o| o.at + 1).unwrap_or(0));
        Change::decided_on(env, desired, EventOrder::new(at, rank), expires_at, now)
    }
}

/// Refuses a name already in use: another principal's (saying which name to take instead), or
/// the caller's own while it is up.
/// For the developer whose login an environment recorded as its owner before owners were whole
/// principals: how to get it handed over. None for anyone else.
fn legacy_hint(caller: &Caller, env: &Environment) -> Option<String> {
    (is_legacy_owner(&env.owner) && env.owner == caller.principal.login()).then(|| {
        format!(
            "{} was created before owners were whole principals; ask an admin to hand it to you: \
             `ephemera env adopt {} --owner {}`",
            env.name,
            env.name,
            caller.owner()
        )
    })
}

fn taken(caller: &Caller, existing: &Environment, suffix: Option<&str>) -> Result<(), SelfServiceError> {
    let name = &existing.name;
    // Another principal's name stays theirs, gone or not: reviving it would hand over what it
    // keeps (its pushed template) to someone else.
    if let Some(hint) = legacy_hint(caller, existing) {
        return Err(SelfServiceError::Conflict(hint));
    }
    if !caller.principal.owns(&existing.owner) {
        let instead = match suffix {
            Some(s) => format!("{s}-{}", caller.principal.tag()),
            None => caller.principal.tag(),
        };
        return Err(SelfServiceError::Conflict(format!(
            "{name} belongs to another principal with your login; use `--name {instead}` \
             (name: \"{instead}\") to create {name}-{}",
            caller.principal.tag()
        )));
    }
    if existing.desired == Desired::Up {
        return Err(SelfServiceError::Conflict(format!("{name} already exists")));
    }
    Ok(())
}
