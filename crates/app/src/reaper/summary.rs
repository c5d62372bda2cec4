//! What a sweep reports: actions by kind and reason, failures, costs, and the metrics document.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ephemera_domain::sweep::{Action, Reason, Skip};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub action: &'static str,
    pub target: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostSummary {
    /// Environments with a stack, and their estimated monthly run rate (USD).
    pub live_environments: usize,
    pub monthly_usd: f64,
    /// Estimated cost so far of every environment the registry knows (USD).
    pub accrued_usd: f64,
}

/// One account's part of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct AccountReport {
    /// The account id, or `platform` for the platform's own.
    pub account: String,
    pub environments: usize,
    pub stacks: usize,
    pub resources: usize,
    pub operations: u64,
    /// Why it could not be swept.
    pub error: Option<String>,
}

impl AccountReport {
    pub fn failed(account: String, error: &str) -> Self {
        Self { account, environments: 0, stacks: 0, resources: 0, operations: 0, error: Some(error.to_owned()) }
    }
}

/// What one account's pass did.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub done: Vec<Action>,
    pub errors: Vec<Failure>,
    pub planned: Vec<Action>,
    pub skipped: Vec<Skip>,
    pub cost: Option<CostSummary>,
}

/// The run's report: logged as JSON, and as CloudWatch metrics (EMF).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub light: bool,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u128,
    pub environments: usize,
    pub stacks: usize,
    pub resources: usize,
    /// Counts by action, then by reason (what was done, or in a dry run what would be).
    pub actions: BTreeMap<String, BTreeMap<Reason, u64>>,
    /// Resources deleted directly, by resource type (in a dry run, those that would be).
    pub deleted_by_type: BTreeMap<&'static str, u64>,
    pub planned: Vec<Action>,
    pub skipped: Vec<Skip>,
    pub errors: Vec<Failure>,
    pub cost: Option<CostSummary>,
    /// Operations made: each call, each retry; a paginated listing counts once.
    pub operations: u64,
    /// Each account swept, or not reached.
    pub accounts: Vec<AccountReport>,
    /// What a full sweep did to the running totals.
    pub ledger: Option<super::LedgerReport>,
    /// What catching up with GitHub found and did (with GitHub credentials).
    pub github: Option<crate::catch_up::CatchUpReport>,
}

impl Summary {
    /// Before any account is added: the registry was read (`environments` rows, `operations` calls).
    pub(super) fn new(
        opts: super::SweepOptions,
        started_at: DateTime<Utc>,
        environments: usize,
        operations: u64,
    ) -> Self {
        Self {
            dry_run: opts.dry_run,
            light: opts.light,
            started_at,
            duration_ms: 0,
            environments,
            stacks: 0,
            resources: 0,
            actions: BTreeMap::new(),
            deleted_by_type: BTreeMap::new(),
            planned: Vec::new(),
            skipped: Vec::new(),
            errors: Vec::new(),
            cost: None,
            operations,
            accounts: Vec::new(),
            ledger: None,
            github: None,
        }
    }

    /// Adds one account's pass.
    pub(super) fn add(&mut self, report: AccountReport, out: Outcome) {
        for (kind, reasons) in ephemera_domain::sweep::counts(&out.done) {
            let mine = self.actions.entry(kind).or_default();
            for (reason, n) in reasons {
                *mine.entry(reason).or_default() += n;
            }
        }
        for (t, n) in ephemera_domain::sweep::deletions_by_type(&out.done) {
            *self.deleted_by_type.entry(t).or_default() += n;
        }
        self.planned.extend(out.planned);
        self.skipped.extend(out.skipped);
        self.errors.extend(out.errors);
        if let Some(c) = out.cost {
            let sum = self.cost.get_or_insert(CostSummary { live_environments: 0, monthly_usd: 0.0, accrued_usd: 0.0 });
            sum.live_environments += c.live_environments;
            sum.monthly_usd = ephemera_domain::cost::round_cents(sum.monthly_usd + c.monthly_usd);
            sum.accrued_usd = ephemera_domain::cost::round_cents(sum.accrued_usd + c.accrued_usd);
        }
        self.stacks += report.stacks;
        self.resources += report.resources;
        self.operations += report.operations;
        self.accounts.push(report);
    }
}

impl Summary {
    /// The summary as one CloudWatch Embedded Metric Format document.
    pub fn emf(&self, namespace: &str) -> serde_json::Value {
        let count = |kind: &str| self.actions.get(kind).map(|m| m.values().sum::<u64>()).unwrap_or(0);
        let mut doc = serde_json::json!({
            "_aws": {
                "Timestamp": self.started_at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["Sweep"]],
                    "Metrics": [
                        {"Name": "StacksDeleted", "Unit": "Count"},
                        {"Name": "EnvironmentsSentDown", "Unit": "Count"},
                        {"Name": "StacksRepaired", "Unit": "Count"},
                        {"Name": "ResourcesDeleted", "Unit": "Count"},
                        {"Name": "RowsRetired", "Unit": "Count"},
                        {"Name": "Errors", "Unit": "Count"},
                        {"Name": "MissedCloses", "Unit": "Count"},
                        {"Name": "MissedPushes", "Unit": "Count"},
                        {"Name": "Redelivered", "Unit": "Count"},
                        {"Name": "GitHubRequests", "Unit": "Count"},
                        {"Name": "DurationMs", "Unit": "Milliseconds"},
                        {"Name": "EstimatedMonthlyUsd", "Unit": "None"}
                    ]
                }]
            },
            "Sweep": if self.light { "light" } else { "full" },
            "DryRun": self.dry_run,
            "StacksDeleted": count("delete_stack"),
            "EnvironmentsSentDown": count("request_down"),
            "StacksRepaired": count("repair_stack"),
            "ResourcesDeleted": count("delete_resource"),
            "RowsRetired": count("retire"),
            "Errors": self.errors.len() + self.github.as_ref().map_or(0, |g| g.errors.len()),
            "DurationMs": self.duration_ms as u64,
        });
        let github = self.github.clone().unwrap_or_default();
        doc["MissedCloses"] = serde_json::json!(github.missed_closes.len());
        doc["MissedPushes"] = serde_json::json!(github.missed_pushes.len());
        doc["Redelivered"] = serde_json::json!(github.redelivered.len());
        doc["GitHubRequests"] = serde_json::json!(github.requests);
        // One metric per resource type deleted, e.g. `Deleted.AWS::Lambda::Function`.
        for (t, n) in &self.deleted_by_type {
            let name = format!("Deleted.{t}");
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array_mut()
                .expect("the metrics list")
                .push(serde_json::json!({"Name": name, "Unit": "Count"}));
            doc[name] = serde_json::json!(n);
        }
        doc["EstimatedMonthlyUsd"] = serde_json::json!(self.cost.as_ref().map(|c| c.monthly_usd).unwrap_or(0.0));
        doc
    }
}
