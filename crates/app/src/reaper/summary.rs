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
            "Errors": self.errors.len(),
            "DurationMs": self.duration_ms as u64,
        });
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
