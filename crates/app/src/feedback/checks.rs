//! Check runs, when Ephemera acts as a GitHub App (GitHub opens the Checks API to Apps only):
//! `ephemera/preview` follows the deployment and its smoke checks, `ephemera/performance` the
//! load test against the baseline. Each moves queued → in progress → completed; the notifier
//! reports a status only when it is news (`Reported`), so late or repeated events never move
//! a check run back.

use std::fmt::Write;

use ephemera_domain::perf::{Report, Verdict};
use ephemera_domain::preview::short;
use ephemera_domain::{Desired, Environment, RepoName, Status};

use super::{link, markdown_text, smoke_table, status_line, verdict_text, Feedback, Notifier, PERFORMANCE_CONTEXT};
use crate::ports::{CheckRun, CheckState, PortError};

pub const PREVIEW_CHECK: &str = "ephemera/preview";

impl Notifier {
    /// `ephemera/preview` for the environment's status; a ready preview's smoke checks decide
    /// its conclusion.
    pub(super) async fn preview_check(
        &self,
        repo: &RepoName,
        sha: &str,
        env: &Environment,
        report: Option<&Report>,
    ) -> Result<(), PortError> {
        if !self.github.has_checks() {
            return Ok(());
        }
        let (state, title) = match env.status {
            Status::Pending | Status::Queued => (CheckState::Queued, status_line(env)),
            Status::Creating | Status::Updating | Status::Deleting => (CheckState::InProgress, status_line(env)),
            Status::Ready if report.is_some_and(|r| !r.smoke_passed()) => {
                (CheckState::Failure, "Preview ready, smoke checks failed".into())
            }
            Status::Ready => (CheckState::Success, "Preview environment ready".into()),
            Status::Failed | Status::Deleted => (CheckState::Failure, "Deployment failed".into()),
        };
        let run = CheckRun {
            name: PREVIEW_CHECK,
            state,
            title,
            summary: preview_summary(env, report),
            details_url: self.details_url(env),
        };
        self.github.check_run(repo, sha, &run).await
    }

    /// A change just recorded: as an App, `ephemera/preview` queued on its head. Not recorded as
    /// reported, so what follows (queued for the budget, say) is still news; nothing once
    /// anything of this generation was reported (a late request), or for an environment going
    /// down.
    pub(super) async fn requested(&self, env: &Environment, repo: &RepoName) -> Result<Feedback, PortError> {
        let reported = env.notified.as_ref().is_some_and(|n| n.generation == env.generation);
        let sha = env.head_commit.as_deref().or(env.commit.as_deref());
        let (true, Desired::Up, false, Some(sha)) = (self.github.has_checks(), env.desired, reported, sha) else {
            return Ok(Feedback::Skipped("a request is reported once work on it starts".into()));
        };
        let run = CheckRun {
            name: PREVIEW_CHECK,
            state: CheckState::Queued,
            title: "Waiting to deploy".into(),
            summary: preview_summary(env, None),
            details_url: self.details_url(env),
        };
        self.github.check_run(repo, sha, &run).await?;
        Ok(Feedback::Reported(format!("{}:queued", env.generation)))
    }

    /// `ephemera/performance` in progress, before a ready preview is load-tested.
    pub(super) async fn performance_started(
        &self,
        repo: &RepoName,
        sha: &str,
        env: &Environment,
    ) -> Result<(), PortError> {
        if !self.github.has_checks() || self.settings.load.is_none() {
            return Ok(());
        }
        let base = env.base_ref.as_deref().unwrap_or("the base branch");
        let run = CheckRun {
            name: PERFORMANCE_CONTEXT,
            state: CheckState::InProgress,
            title: "Load-testing the preview".into(),
            summary: format!("Measuring the preview against the baseline of `{}`.", markdown_text(base)),
            details_url: self.details_url(env),
        };
        self.github.check_run(repo, sha, &run).await
    }

    /// `ephemera/performance` completed with the load test's verdict (none: nothing to report).
    pub(super) async fn performance_check(
        &self,
        repo: &RepoName,
        sha: &str,
        env: &Environment,
        verdict: Option<&Verdict>,
    ) -> Result<(), PortError> {
        let Some(v) = verdict else { return Ok(()) };
        let run = CheckRun {
            name: PERFORMANCE_CONTEXT,
            state: if v.passed() { CheckState::Success } else { CheckState::Failure },
            title: v.summary(),
            summary: performance_summary(v, env.base_ref.as_deref().unwrap_or("the base branch")),
            details_url: self.details_url(env),
        };
        self.github.check_run(repo, sha, &run).await
    }

    /// The environment's page on the dashboard, if there is a dashboard.
    fn details_url(&self, env: &Environment) -> Option<String> {
        let dashboard = self.settings.dashboard_url.as_deref()?;
        Some(format!("{}/environments/{}", dashboard.trim_end_matches('/'), env.name))
    }
}

/// The preview check's summary: URL, commit, cost, expiry, the failure if any, smoke checks.
pub fn preview_summary(env: &Environment, report: Option<&Report>) -> String {
    let mut out = String::new();
    if let (Some(url), Status::Ready) = (&env.preview_url, env.status) {
        let _ = writeln!(out, "**Preview:** {}  ", link(url));
    }
    let _ = writeln!(out, "**Environment:** `{}`  ", env.name);
    if let Some(commit) = &env.commit {
        let _ = writeln!(out, "**Commit:** `{}`  ", short(commit));
    }
    if let Some(monthly) = env.cost_monthly_usd {
        let accrued = env.cost_accrued_usd.map(|a| format!(", ${a:.2} so far")).unwrap_or_default();
        let _ = writeln!(out, "**Estimated cost:** ${monthly:.2}/month{accrued}  ");
    }
    if env.preserved {
        let _ = writeln!(out, "**Expires:** never (preserved)  ");
    } else {
        let _ = writeln!(out, "**Expires:** {}  ", env.expires_at.format("%Y-%m-%d %H:%M UTC"));
    }
    if let (Status::Failed, Some(reason)) = (env.status, &env.status_reason) {
        let _ = writeln!(
            out,
            "\n{}",
            reason.lines().map(|l| format!("> {}", markdown_text(l))).collect::<Vec<_>>().join("  \n")
        );
    }
    if let Some(report) = report.filter(|r| !r.smoke.is_empty()) {
        let _ = write!(out, "\n{}", smoke_table(report));
    }
    out
}

/// The performance check's summary: the table against the baseline, and what it means.
pub fn performance_summary(v: &Verdict, base: &str) -> String {
    format!("{}\n{}", v.markdown(), verdict_text(v, base))
}
