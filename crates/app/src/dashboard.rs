//! The dashboard's data: every environment as one row, filtered.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ephemera_domain::{Environment, EnvironmentKind, EnvironmentName, Status};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::history::TIMELINE_SHOWN;
use crate::ports::{Environments, History, PortError, TimelineEntry};
use ephemera_domain::cost::accrued_over;

/// One environment as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub name: String,
    pub kind: &'static str,
    pub repository: Option<String>,
    pub pull_request: Option<u64>,
    /// `https://github.com/<repo>/pull/<n>`
    pub pull_request_url: Option<String>,
    pub owner: String,
    pub commit: Option<String>,
    pub status: &'static str,
    pub desired: &'static str,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Seconds since creation.
    pub age_seconds: i64,
    pub expires_at: DateTime<Utc>,
    pub preserved: bool,
    /// The reaper warned that it expires soon (`EPHEMERA_EXPIRY_NOTICE_HOURS`), and it is
    /// neither preserved nor going.
    pub expires_soon: bool,
    pub cost_monthly_usd: Option<f64>,
    pub cost_accrued_usd: Option<f64>,
    pub preview_url: Option<String>,
    /// The deploy account it lives in (None: the platform's own), and the region.
    pub account: Option<String>,
    pub region: Option<String>,
}

/// One page of rows, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rows {
    pub rows: Vec<Row>,
    pub next: Option<String>,
}

/// Rows a page holds unless `limit` says otherwise, and the most it may say.
pub const PAGE: usize = 100;
pub const MAX_PAGE: usize = 500;

/// `?status=READY&kind=pr&q=todo`: each part optional; `q` matches name, repository and owner.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub q: Option<String>,
    /// Include deleted environments (hidden by default).
    #[serde(default)]
    pub all: Option<bool>,
    /// Where the page starts: the `next` of the page before.
    #[serde(default)]
    pub after: Option<String>,
    /// Rows a page reads (default 100, at most 500).
    #[serde(default)]
    pub limit: Option<usize>,
}

impl Filter {
    fn keeps(&self, e: &Environment) -> bool {
        let nonempty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(st) = nonempty(&self.status) {
            if !e.status.as_str().eq_ignore_ascii_case(&st) {
                return false;
            }
        } else if e.status == Status::Deleted && self.all != Some(true) {
            return false;
        }
        if let Some(k) = nonempty(&self.kind) {
            if !e.kind.as_str().eq_ignore_ascii_case(&k) {
                return false;
            }
        }
        if let Some(q) = nonempty(&self.q) {
            let q = q.to_lowercase();
            let repo = e.repository.as_ref().map(|r| r.full_name()).unwrap_or_default();
            let hay = [e.name.as_str(), repo.as_str(), e.owner.as_str()];
            if !hay.iter().any(|h| h.to_lowercase().contains(&q)) {
                return false;
            }
        }
        true
    }
}

/// One environment's page: its row, what happened to it, what its stack holds, and what it
/// has cost over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detail {
    pub row: Row,
    pub stack: String,
    pub timeline: Vec<Moment>,
    pub resources: Vec<Resource>,
    /// (time, USD accrued by then), ending now.
    pub cost: Vec<(DateTime<Utc>, f64)>,
}

/// One timeline entry as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moment {
    pub at: DateTime<Utc>,
    /// `Ready`, `Requested up`, ...
    pub what: String,
    pub status: &'static str,
    pub generation: u64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    pub status: String,
}

pub struct Dashboard {
    registry: Arc<dyn Environments>,
    history: Arc<dyn History>,
    clock: Arc<dyn Clock>,
}

impl Dashboard {
    pub fn new(registry: Arc<dyn Environments>, history: Arc<dyn History>, clock: Arc<dyn Clock>) -> Self {
        Self { registry, history, clock }
    }

    /// One environment's page; None if there is no such environment.
    pub async fn environment(&self, name: &EnvironmentName) -> Result<Option<Detail>, PortError> {
        let Some(env) = self.registry.get(name).await? else { return Ok(None) };
        let now = self.clock.now();
        let entries = self.history.timeline(name, TIMELINE_SHOWN).await?;
        let resources = self.history.resources(name).await?;
        let moments: Vec<(DateTime<Utc>, Status)> =
            entries.iter().filter_map(|e| Some((DateTime::from_timestamp_millis(e.at_ms)?, e.status))).collect();
        let cost = accrued_over(&moments, env.cost_monthly_usd.unwrap_or(0.0), now);
        let timeline = entries.into_iter().filter_map(moment).collect();
        let resources = resources
            .into_iter()
            .map(|r| Resource {
                logical_id: r.logical_id,
                resource_type: r.resource_type,
                physical_id: r.physical_id,
                status: r.status.as_str().to_owned(),
            })
            .collect();
        Ok(Some(Detail { stack: env.stack_name().to_string(), row: row(&env, now), timeline, resources, cost }))
    }

    /// One page of the registry (in name order, from `after`): the environments `filter`
    /// keeps, newest first. A page reads `limit` environments whatever the filter keeps, so
    /// that a page costs the same however many there are.
    pub async fn rows(&self, filter: &Filter, after: Option<&EnvironmentName>) -> Result<Rows, PortError> {
        let now = self.clock.now();
        let kind = filter.kind.as_deref().map(str::trim).and_then(|k| EnvironmentKind::parse(&k.to_lowercase()));
        let limit = filter.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
        let page = self.registry.page(kind, after, limit).await?;
        let mut envs: Vec<&Environment> = page.environments.iter().filter(|e| filter.keeps(e)).collect();
        envs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.name.as_str().cmp(b.name.as_str())));
        Ok(Rows { rows: envs.iter().map(|e| row(e, now)).collect(), next: page.next.map(|n| n.to_string()) })
    }
}

/// A timeline entry as the page shows it: `Environment.Ready` as `Ready`, a request with what
/// it asked for.
fn moment(e: TimelineEntry) -> Option<Moment> {
    let kind = e.what.strip_prefix("Environment.").unwrap_or(&e.what);
    let what = match kind {
        "Requested" => format!("Requested {}", e.desired.as_str()),
        "NotDeployed" => "Not deployed".into(),
        "ExpiringSoon" => "Expiry warned".into(),
        other => other.to_owned(),
    };
    Some(Moment {
        at: DateTime::from_timestamp_millis(e.at_ms)?,
        what,
        status: e.status.as_str(),
        generation: e.generation,
        reason: e.reason,
    })
}

pub fn row(e: &Environment, now: DateTime<Utc>) -> Row {
    let repository = e.repository.as_ref().map(|r| r.full_name());
    Row {
        name: e.name.to_string(),
        kind: e.kind.as_str(),
        pull_request_url: match (&repository, e.pull_request) {
            (Some(r), Some(n)) => Some(format!("https://github.com/{r}/pull/{n}")),
            _ => None,
        },
        repository,
        pull_request: e.pull_request,
        owner: e.owner.clone(),
        commit: e.commit.clone(),
        status: e.status.as_str(),
        desired: e.desired.as_str(),
        reason: e.status_reason.clone(),
        created_at: e.created_at,
        age_seconds: (now - e.created_at).num_seconds().max(0),
        expires_at: e.expires_at,
        preserved: e.is_preserved(now),
        expires_soon: e.expires_soon(now),
        cost_monthly_usd: e.cost_monthly_usd,
        cost_accrued_usd: e.cost_accrued_usd,
        preview_url: e.preview_url.clone(),
        account: e.account.clone(),
        region: e.region.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephemera_domain::environment::test_support::pr_environment;

    #[test]
    fn filters() {
        let mut e = pr_environment();
        e.status = Status::Ready;
        let keeps = |f: Filter| f.keeps(&e);
        assert!(keeps(Filter::default()));
        assert!(keeps(Filter { status: Some("ready".into()), ..Default::default() }));
        assert!(!keeps(Filter { status: Some("FAILED".into()), ..Default::default() }));
        assert!(keeps(Filter { kind: Some("pr".into()), q: Some("Hello-World".into()), ..Default::default() }));
        assert!(!keeps(Filter { kind: Some("dev".into()), ..Default::default() }));
        assert!(!keeps(Filter { q: Some("nothing-like-it".into()), ..Default::default() }));
        e.status = Status::Deleted;
        assert!(!Filter::default().keeps(&e));
        assert!(Filter { all: Some(true), ..Default::default() }.keeps(&e));
        let r = row(&e, e.created_at + chrono::Duration::minutes(5));
        assert_eq!(r.age_seconds, 300);
        assert_eq!(r.pull_request_url.as_deref(), Some("https://github.com/octo-org/hello-world/pull/42"));
    }
}
