//! Feedback on the pull request: one sticky comment, a GitHub Deployment per deployed commit,
//! and, when a preview becomes ready, smoke checks and a load test compared with the
//! repository's baseline, reported as the `ephemera/performance` commit status.
//!
//! Level-triggered like the provisioner: an event only says which environment to look at; what
//! is reported is what the registry holds now. What was last reported is remembered on the
//! registry row, so a redelivered event reports nothing twice, and a measurement is stored per
//! commit, so a retry does not load-test the preview again.

use std::fmt::Write;
use std::sync::Arc;

use ephemera_domain::perf::{compare, Gate, LoadPlan, Measurement, Report, Scenario, SmokeCheck, Verdict};
use ephemera_domain::preview::{short, Source};
use ephemera_domain::{CommitSource, Desired, Environment, RepoName, Reported, Status};
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::events::{parse_envelope, EnvelopeError, PlatformEvent, EXPIRING_SOON, NOTED, NOT_DEPLOYED, REQUESTED};
use crate::outcome::MessageError;
use crate::ports::{ApiKeys, GitHubApi, NotifiedLog, ObjectStore, PortError, Prober, Sites};
use crate::provisioner::{artifact_key, CONFIG_ARTIFACT, SCENARIO_ARTIFACT};
use ephemera_domain::repo_config::RepoConfig;

mod checks;

/// The hidden marker that identifies Ephemera's comment on a pull request.
pub const MARKER: &str = "<!-- ephemera:preview -->";
pub const PERFORMANCE_CONTEXT: &str = "ephemera/performance";
pub const SMOKE_CONTEXT: &str = "ephemera/smoke";

#[derive(Debug, Clone)]
pub struct FeedbackSettings {
    /// Where measurements and baselines live.
    pub bucket: String,
    pub smoke: Vec<SmokeCheck>,
    /// None: no load test.
    pub load: Option<LoadPlan>,
    /// What a load-test request is, unless the repository has its own scenario.
    pub scenario: Scenario,
    pub gate: Gate,
    /// Linked from the comment, if set.
    pub dashboard_url: Option<String>,
    /// The deploy targets, to reach an environment where it lives.
    pub routes: ephemera_domain::placement::Routes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Reported this (`<generation>:<status>:<commit>`).
    Reported(String),
    Skipped(String),
}

pub struct Notifier {
    pub registry: Arc<dyn NotifiedLog>,
    pub github: Arc<dyn GitHubApi>,
    pub prober: Arc<dyn Prober>,
    /// For the load test's own API key, when the environment outputs none.
    /// Where environments live: a load test's API key is made there.
    pub sites: Arc<dyn Sites>,
    pub store: Arc<dyn ObjectStore>,
    pub clock: Arc<dyn Clock>,
    pub settings: FeedbackSettings,
}

/// A ready preview's checks, if any were run: the report and the verdict against the baseline.
type Checked = Option<(Report, Option<Verdict>)>;

/// The stack output holding the environment's AppSync API key (never shown or logged).
pub const API_KEY_OUTPUT: &str = "GraphQLApiKey";

/// Where a repository keeps its load-test scenario.
pub fn scenario_key(repo: &RepoName) -> String {
    format!("scenarios/{}/{}.json", repo.owner(), repo.name())
}

pub fn baseline_key(repo: &RepoName) -> String {
    format!("baselines/{}/{}/baseline.json", repo.owner(), repo.name())
}

pub fn report_key(repo: &RepoName, number: u64, commit: &str) -> String {
    format!("results/{}/{}/pr-{number}/{commit}.json", repo.owner(), repo.name())
}

impl Notifier {
    /// One EventBridge event, as an SQS body.
    pub async fn handle_message(&self, body: &str) -> Result<Feedback, MessageError> {
        Ok(self.handle(&parse_envelope(body)?).await?)
    }

    /// One EventBridge event as the Lambda runtime delivers it (already parsed).
    pub async fn handle_event(&self, event: serde_json::Value) -> Result<Feedback, MessageError> {
        let event = PlatformEvent::from_envelope(serde_json::from_value(event).map_err(EnvelopeError::from)?)?;
        Ok(self.handle(&event).await?)
    }

    #[instrument(skip_all, fields(environment = %event.detail.environment, event = %event.detail_type))]
    pub async fn handle(&self, event: &PlatformEvent) -> Result<Feedback, PortError> {
        let d = &event.detail;
        let (Some(repo), Some(number)) = (&d.repository, d.pull_request) else {
            return Ok(Feedback::Skipped("not a pull request's environment".into()));
        };
        let repo = RepoName::parse(repo)
            .map_err(|e| PortError::Permanent { operation: "read event", message: e.to_string() })?;
        if matches!(event.detail_type.as_str(), NOTED | EXPIRING_SOON) {
            return self.refresh(event, &repo, number).await;
        }
        if event.detail_type == NOT_DEPLOYED {
            let reason = d.reason.clone().unwrap_or_default();
            let body = not_deployed_comment(&d.environment.to_string(), d.commit.as_deref(), &reason);
            self.github.upsert_comment(&repo, number, MARKER, &body).await?;
            return Ok(Feedback::Reported(format!("not deployed: {reason}")));
        }
        let Some(mut env) = self.registry.get(&d.environment).await? else {
            return Ok(Feedback::Skipped("no such environment".into()));
        };
        if d.generation != env.generation {
            return Ok(Feedback::Skipped(format!("generation {} is superseded by {}", d.generation, env.generation)));
        }
        if event.detail_type == REQUESTED {
            return self.requested(&env, &repo).await;
        }
        // Events may arrive out of order or twice: within a generation, never report a status
        // that comes before (or is) the one already reported.
        env.status = d.status;
        let now = Reported { generation: env.generation, status: env.status, commit: env.commit.clone() };
        if !now.is_news_after(env.notified.as_ref()) {
            let prev = env.notified.as_ref().map(ToString::to_string).unwrap_or_default();
            return Ok(Feedback::Skipped(format!("{prev} already reported; {now} is not news")));
        }
        let report = self.report_status(&env, &repo, number).await?;
        let body = comment(&env, report.as_ref().map(|(r, v)| (r, v.as_ref())), self.settings.dashboard_url.as_deref());
        self.github.upsert_comment(&repo, number, MARKER, &body).await?;
        self.registry.record_notified(&env.name, &now).await?;
        info!(key = %now, "reported to the pull request");
        Ok(Feedback::Reported(now.to_string()))
    }

    /// The deployment's status for the environment's state; for a ready preview, its checks.
    async fn report_status(&self, env: &Environment, repo: &RepoName, number: u64) -> Result<Checked, PortError> {
        // GitHub shows deployments and statuses against the pull request's head commit.
        let sha = env.head_commit.clone().or_else(|| env.commit.clone());
        let deployment_env = format!("pr-{number}");
        let about = describe(env);
        let deploy = |sha| self.github.ensure_deployment(repo, sha, &deployment_env, &about);
        match (env.status, sha.as_deref()) {
            (Status::Pending | Status::Queued | Status::Creating | Status::Updating, Some(sha))
                if env.desired == Desired::Up =>
            {
                let state = if env.status == Status::Queued { "queued" } else { "in_progress" };
                self.github.deployment_status(repo, deploy(sha).await?, state, None, &status_line(env)).await?;
                self.preview_check(repo, sha, env, None).await?;
            }
            (Status::Ready, Some(sha)) => {
                let url = env.preview_url.as_deref();
                let id = deploy(sha).await?;
                self.github.deployment_status(repo, id, "success", url, "Preview environment ready").await?;
                self.performance_started(repo, sha, env).await?;
                let verified = self.verify(env, repo, number).await?;
                let report = verified.as_ref().map(|(r, _)| r);
                self.preview_check(repo, sha, env, report).await?;
                if let Some((report, verdict)) = &verified {
                    self.check_statuses(repo, sha, env, report, verdict.as_ref()).await?;
                }
                return Ok(verified);
            }
            (Status::Failed, Some(sha)) => {
                let why = env.status_reason.as_deref().map(markdown_text).unwrap_or_else(|| "deployment failed".into());
                self.github.deployment_status(repo, deploy(sha).await?, "failure", None, &why).await?;
                self.preview_check(repo, sha, env, None).await?;
            }
            (Status::Deleted, _) => {
                if let Some(id) = self.github.latest_deployment(repo, &deployment_env).await? {
                    self.github.deployment_status(repo, id, "inactive", None, "Preview environment destroyed").await?;
                }
                self.promote_baseline(env, repo, number).await?;
            }
            _ => {}
        }
        Ok(None)
    }

    /// The smoke and performance results of a checked preview: commit statuses, or as an App
    /// the `ephemera/performance` check run.
    async fn check_statuses(
        &self,
        repo: &RepoName,
        sha: &str,
        env: &Environment,
        report: &Report,
        verdict: Option<&Verdict>,
    ) -> Result<(), PortError> {
        if self.github.has_checks() {
            return self.performance_check(repo, sha, env, verdict).await;
        }
        if !report.smoke.is_empty() {
            let failed = report.smoke.iter().filter(|s| !s.passed()).count();
            let (state, text) = if report.smoke_passed() {
                ("success", format!("{} smoke checks passed", report.smoke.len()))
            } else {
                ("failure", format!("{failed} of {} smoke checks failed", report.smoke.len()))
            };
            self.github.commit_status(repo, sha, state, SMOKE_CONTEXT, &text).await?;
        }
        if let Some(v) = verdict {
            let state = if v.passed() { "success" } else { "failure" };
            self.github.commit_status(repo, sha, state, PERFORMANCE_CONTEXT, &v.summary()).await?;
        }
        Ok(())
    }

    /// Smoke checks and the load test for a ready preview, once per commit: a stored report
    /// for the same commit is reused. None when there is nothing to check or no URL.
    async fn verify(&self, env: &Environment, repo: &RepoName, number: u64) -> Result<Checked, PortError> {
        let (Some(url), Some(commit)) = (env.preview_url.as_deref(), env.commit.as_deref()) else {
            return Ok(None);
        };
        // The repository's own smoke checks (`.ephemera.yml`), else the platform's.
        let smoke = self.repository_smoke(repo, commit).await?.unwrap_or_else(|| self.settings.smoke.clone());
        if smoke.is_empty() && self.settings.load.is_none() {
            return Ok(None);
        }
        let bucket = &self.settings.bucket;
        let key = report_key(repo, number, commit);
        let report = match self.stored_report(repo, number, commit).await? {
            Some(report) => {
                info!(%key, "reusing this commit's measurement");
                report
            }
            None => {
                let smoke = self.prober.smoke(url, &smoke).await?;
                let (load, load_error) = match &self.settings.load {
                    Some(plan) => self.load_test(env, repo, url, plan).await?,
                    None => (None, None),
                };
                let report = Report { commit: commit.to_owned(), smoke, load, load_error };
                // A load test that could not run is tried again next time (a fixed scenario).
                if report.load_error.is_none() {
                    let json = serde_json::to_string_pretty(&report).expect("a report serializes");
                    self.store.put_text(bucket, &key, &json).await?;
                }
                report
            }
        };
        Ok(Some(self.judge(repo, report).await))
    }

    /// The smoke checks a commit's `.ephemera.yml` sets, if it does (a malformed file fails the
    /// preview before it is ready).
    async fn repository_smoke(&self, repo: &RepoName, commit: &str) -> Result<Option<Vec<SmokeCheck>>, PortError> {
        let key = artifact_key(repo, commit, CONFIG_ARTIFACT);
        let Some(text) = self.store.get_text(&self.settings.bucket, &key).await? else { return Ok(None) };
        Ok(RepoConfig::parse(&text).ok().and_then(|c| c.smoke))
    }

    /// The measurement stored for this commit, if any.
    async fn stored_report(&self, repo: &RepoName, number: u64, commit: &str) -> Result<Option<Report>, PortError> {
        let stored = self.store.get_text(&self.settings.bucket, &report_key(repo, number, commit)).await?;
        Ok(stored.and_then(|text| serde_json::from_str::<Report>(&text).ok()))
    }

    /// A report and its verdict against the repository's baseline.
    async fn judge(&self, repo: &RepoName, report: Report) -> (Report, Option<Verdict>) {
        let verdict = match (&report.load, &report.load_error) {
            (Some(m), _) => {
                let baseline = self.baseline(repo).await;
                Some(compare(m, baseline.as_ref(), self.settings.gate))
            }
            (None, Some(why)) => Some(Verdict::not_run(why.clone())),
            (None, None) => None,
        };
        (report, verdict)
    }

    /// The sticky comment written again with a note on top: what a comment command did, or
    /// that the preview expires soon. Checks are not run again; a stored result is shown.
    async fn refresh(&self, event: &PlatformEvent, repo: &RepoName, number: u64) -> Result<Feedback, PortError> {
        let Some(env) = self.registry.get(&event.detail.environment).await? else {
            return Ok(Feedback::Skipped("no such environment".into()));
        };
        if env.desired != Desired::Up || env.status == Status::Deleted {
            return Ok(Feedback::Skipped("the preview is going or gone".into()));
        }
        let note = match event.detail_type.as_str() {
            EXPIRING_SOON => expiry_note(&env, self.clock.now()),
            _ => markdown_text(event.detail.reason.as_deref().unwrap_or_default()),
        };
        let checked = match (env.status, env.commit.as_deref()) {
            (Status::Ready, Some(commit)) => match self.stored_report(repo, number, commit).await? {
                Some(report) => Some(self.judge(repo, report).await),
                None => None,
            },
            _ => None,
        };
        let report = checked.as_ref().map(|(r, v)| (r, v.as_ref()));
        let body = comment_with(&env, report, self.settings.dashboard_url.as_deref(), Some(&note));
        self.github.upsert_comment(repo, number, MARKER, &body).await?;
        info!(%note, "noted on the pull request");
        Ok(Feedback::Reported(format!("{}: {note}", event.detail_type)))
    }

    /// The load test with the repository's scenario (else the default) and the environment's
    /// API key: the measurement, or why it could not be run.
    async fn load_test(
        &self,
        env: &Environment,
        repo: &RepoName,
        url: &str,
        plan: &LoadPlan,
    ) -> Result<(Option<Measurement>, Option<String>), PortError> {
        // The commit's own (named in `.ephemera.yml`), else the repository's, else the default.
        let mut key = artifact_key(repo, env.commit.as_deref().unwrap_or_default(), SCENARIO_ARTIFACT);
        let mut text = self.store.get_text(&self.settings.bucket, &key).await?;
        if text.is_none() {
            key = scenario_key(repo);
            text = self.store.get_text(&self.settings.bucket, &key).await?;
        }
        let (mut scenario, own) = match text {
            None => (self.settings.scenario.clone(), false),
            Some(text) => match Scenario::parse(&text) {
                Ok(s) => (s, true),
                Err(e) => return Ok((None, Some(format!("load-test scenario {key} is not valid: {e}")))),
            },
        };
        let (api_key, minted) = match self.load_test_key(env, &scenario).await {
            Ok(key) => key,
            Err(e) if !e.is_retryable() => return Ok((None, Some(format!("no API key for the load test: {e}")))),
            Err(e) => return Err(e),
        };
        // A preview that is not a GraphQL API (no key to send, none to make): the default is a
        // plain GET of its URL. A repository's own scenario is sent as written.
        if !own && scenario.api_key && api_key.is_none() {
            scenario = Scenario::plain_get();
        }
        let result = self.prober.load(url, plan, &scenario, api_key.as_deref()).await;
        if let Some((api, keys)) = minted {
            let key = api_key.as_deref().unwrap_or_default();
            if let Err(e) = keys.delete(&api, key).await {
                warn!(error = %e, "could not delete the load test's API key; it expires on its own");
            }
        }
        match result {
            Ok(samples) => Ok((Measurement::from_samples(&samples, self.clock.now()), None)),
            Err(e) if !e.is_retryable() => Ok((None, Some(e.to_string()))),
            Err(e) => Err(e),
        }
    }

    /// The API key the scenario sends: the environment's `GraphQLApiKey` output, else one made
    /// for this load test on its GraphQL API (and the API's id, to delete it after).
    async fn load_test_key(
        &self,
        env: &Environment,
        scenario: &Scenario,
    ) -> Result<(Option<String>, Option<(String, Arc<dyn ApiKeys>)>), PortError> {
        if !scenario.api_key {
            return Ok((None, None));
        }
        if let Some(key) = env.outputs.get(API_KEY_OUTPUT) {
            return Ok((Some(key.clone()), None));
        }
        let Some(api) = crate::provisioner::api_id(&env.outputs) else { return Ok((None, None)) };
        let now = self.clock.now();
        let expires = crate::provisioner::api_key_expiry(now, now);
        let keys = self.sites.of(&self.settings.routes, env).await?.keys;
        let key = keys.create(&api, expires, &format!("ephemera load test of {}", env.name)).await?;
        Ok((Some(key), Some((api, keys))))
    }

    async fn baseline(&self, repo: &RepoName) -> Option<Measurement> {
        let text = match self.store.get_text(&self.settings.bucket, &baseline_key(repo)).await {
            Ok(t) => t?,
            Err(e) => {
                warn!(error = %e, "could not read the baseline; comparing with none");
                return None;
            }
        };
        serde_json::from_str(&text).inspect_err(|e| warn!(error = %e, "baseline.json is not valid; ignored")).ok()
    }

    /// A merged pull request's preview was built from its merge commit: what the base branch is
    /// now. Its measurement, if it passed, becomes the repository's baseline.
    async fn promote_baseline(&self, env: &Environment, repo: &RepoName, number: u64) -> Result<(), PortError> {
        let (true, Some(CommitSource::Merge), Some(commit)) = (env.merged, env.source, env.commit.as_deref()) else {
            return Ok(());
        };
        let bucket = &self.settings.bucket;
        let Some(text) = self.store.get_text(bucket, &report_key(repo, number, commit)).await? else {
            return Ok(());
        };
        let Ok(report) = serde_json::from_str::<Report>(&text) else { return Ok(()) };
        let Some(measurement) = report.load.as_ref() else { return Ok(()) };
        let passed = compare(measurement, self.baseline(repo).await.as_ref(), self.settings.gate).passed();
        if passed && report.smoke_passed() {
            let json = serde_json::to_string_pretty(measurement).expect("a measurement serializes");
            self.store.put_text(bucket, &baseline_key(repo), &json).await?;
            info!(%commit, "baseline updated from the merged preview");
        }
        Ok(())
    }
}

fn describe(env: &Environment) -> String {
    format!("Ephemera preview {}", env.name)
}

fn status_line(env: &Environment) -> String {
    match env.status {
        Status::Queued => {
            env.status_reason.as_deref().map(markdown_text).unwrap_or_else(|| "Waiting for capacity".into())
        }
        Status::Updating => "Updating the preview environment".into(),
        _ => "Creating the preview environment".into(),
    }
}

fn badge(status: Status) -> &'static str {
    match status {
        Status::Pending | Status::Creating | Status::Updating => "⏳ Deploying",
        Status::Queued => "⏸️ Queued",
        Status::Ready => "✅ Ready",
        Status::Deleting => "🧹 Deleting",
        Status::Deleted => "🗑️ Destroyed",
        Status::Failed => "❌ Failed",
    }
}

fn not_deployed_comment(environment: &str, head: Option<&str>, reason: &str) -> String {
    let mut out = format!("{MARKER}\n## 🚫 Preview not deployed\n\n");
    let _ = writeln!(out, "**Environment:** `{environment}`");
    if let Some(h) = head {
        let _ = writeln!(out, "**Commit:** `{}`", short(h));
    }
    let _ = write!(out, "\n{}\n", markdown_text(reason));
    out
}

/// Text from outside (a blueprint's outputs and failure reasons, a preview's errors) as
/// Markdown that shows the same characters and nothing else: no links, images, HTML, tables,
/// code or headings.
pub fn markdown_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '|' | '~' | '#' | '!' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A preview URL GitHub may link as it is (plain http(s), no Markdown or HTML in it), else its
/// escaped text.
fn link(url: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#@$&'+,;=%".contains(c);
    let web = url.starts_with("https://") || url.starts_with("http://");
    if web && url.chars().all(plain) {
        url.to_owned()
    } else {
        markdown_text(url)
    }
}

/// The smoke checks' table (Markdown).
pub fn smoke_table(report: &Report) -> String {
    let mut out = String::from("| Path | Expected | Got |\n|------|----------|-----|\n");
    for s in &report.smoke {
        let got = match (s.got, &s.error) {
            (Some(code), _) => code.to_string(),
            (None, Some(e)) => format!("error: {}", markdown_text(e)),
            (None, None) => "no answer".into(),
        };
        let mark = if s.passed() { "✅" } else { "❌" };
        let _ = writeln!(out, "| `{}` | {} | {got} {mark} |", s.path.replace('|', "%7C"), s.expect);
    }
    out
}

/// What a load test's verdict means, under its table: no baseline yet, no regression, not
/// run (and why), or the regression.
pub fn verdict_text(v: &Verdict, base: &str) -> String {
    if !v.was_run() {
        format!("**Load test not run:** {}\n\n", markdown_text(&v.failures.join("; ")))
    } else if !v.passed() {
        format!("**Performance regression:** {}\n\n", v.failures.join("; "))
    } else if v.rows.iter().all(|r| r.baseline.is_none()) {
        format!("No baseline yet: it is set from the preview of the next pull request merged into `{base}`.\n\n")
    } else {
        "No regression against the baseline.\n\n".into()
    }
}

/// The warning that a preview is about to be removed, and how to keep it.
pub fn expiry_note(env: &Environment, now: chrono::DateTime<chrono::Utc>) -> String {
    let hours = ((env.expires_at - now).num_minutes().max(0) + 59) / 60;
    format!(
        "⏰ **This preview will be removed at {} (in about {hours} hour{}).** To keep it longer, comment `/ephemera extend 3d`, or `/ephemera preserve` to keep it until unpreserved.",
        env.expires_at.format("%Y-%m-%d %H:%M UTC"),
        if hours == 1 { "" } else { "s" }
    )
}

/// The sticky comment: status, preview URL, commit, expiry, cost, and the checks' results.
pub fn comment(env: &Environment, report: Option<(&Report, Option<&Verdict>)>, dashboard: Option<&str>) -> String {
    comment_with(env, report, dashboard, None)
}

/// The sticky comment with a note (Markdown) under the heading.
pub fn comment_with(
    env: &Environment,
    report: Option<(&Report, Option<&Verdict>)>,
    dashboard: Option<&str>,
    note: Option<&str>,
) -> String {
    let mut out = format!("{MARKER}\n## 🚀 Preview Deployment\n\n");
    if let Some(note) = note {
        let _ = writeln!(out, "{note}\n");
    }
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| **Status** | {} |", badge(env.status));
    let _ = writeln!(out, "| **Environment** | `{}` |", env.name);
    if let (Some(url), Status::Ready | Status::Updating) = (&env.preview_url, env.status) {
        let _ = writeln!(out, "| **Environment URL** | {} |", link(url));
    }
    if let Some(commit) = &env.commit {
        let _ = writeln!(out, "| **Commit** | `{}` |", short(commit));
    }
    if env.status != Status::Deleted && env.preserved {
        let _ = writeln!(out, "| **Expires** | never: preserved until `/ephemera unpreserve` |");
    } else if env.status != Status::Deleted {
        let _ = writeln!(
            out,
            "| **Expires** | {} · `/ephemera extend 3d` keeps it longer |",
            env.expires_at.format("%Y-%m-%d %H:%M UTC")
        );
    }
    if let Some(monthly) = env.cost_monthly_usd {
        let accrued = env.cost_accrued_usd.map(|a| format!(", ${a:.2} so far")).unwrap_or_default();
        let _ = writeln!(out, "| **Estimated cost** | ${monthly:.2}/month{accrued} |");
    }
    out.push('\n');
    let base = env.base_ref.as_deref().unwrap_or("the base branch");
    if let (Some(kind), Some(c)) = (env.source, &env.commit) {
        let _ = writeln!(out, "{}\n", Source::of_record(kind, c).note(base));
    }
    if let Some(note) = env.outputs.get(crate::template::REWRITES_OUTPUT).filter(|_| env.status != Status::Deleted) {
        let _ =
            writeln!(out, "**Blueprint policy:** {} (an ephemeral environment keeps nothing)\n", markdown_text(note));
    }
    if let (Status::Failed | Status::Queued, Some(reason)) = (env.status, &env.status_reason) {
        // One quoted line each (a refused blueprint lists every violation).
        let lines: Vec<String> = reason.lines().map(|l| format!("> {}", markdown_text(l))).collect();
        let _ = writeln!(out, "{}\n", lines.join("  \n"));
    }
    if let Some((report, verdict)) = report {
        if !report.smoke.is_empty() {
            let _ = writeln!(out, "### 🔎 Smoke Checks\n\n{}", smoke_table(report));
        }
        if let Some(v) = verdict {
            let _ = writeln!(out, "### 📊 Load Test Results\n\n{}{}", v.markdown(), verdict_text(v, base));
        }
    }
    if let Some(d) = dashboard {
        let _ = writeln!(out, "[All environments]({d})\n");
    }
    out.push_str("---\n*This preview environment will be automatically destroyed when the PR is closed.*\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephemera_domain::environment::test_support::pr_environment;
    use ephemera_domain::perf::{Durations, Errors, Metrics, Requests, SmokeResult};

    #[test]
    fn comment_shows_status_url_commit_and_results() {
        let mut env = pr_environment();
        env.status = Status::Ready;
        env.preview_url = Some("https://abc.appsync-api.eu-west-1.amazonaws.com/graphql".into());
        env.cost_monthly_usd = Some(3.2);
        env.source = Some(CommitSource::Merge);
        let m = Measurement {
            timestamp: env.created_at,
            metrics: Metrics {
                http_req_duration: Durations { p95: 130.0, avg: 90.0 },
                http_reqs: Requests { total: 300 },
                errors: Errors { rate: 0.0 },
            },
        };
        let base = Measurement {
            metrics: Metrics { http_req_duration: Durations { p95: 100.0, avg: 90.0 }, ..m.metrics.clone() },
            ..m.clone()
        };
        let report = Report {
            commit: env.commit.clone().unwrap(),
            smoke: vec![SmokeResult { path: "/".into(), expect: 200, got: Some(200), error: None }],
            load: Some(m.clone()),
            load_error: None,
        };
        let verdict = compare(&m, Some(&base), Gate::default());
        let text = comment(&env, Some((&report, Some(&verdict))), None);
        assert!(text.starts_with(MARKER));
        assert!(text.contains("| **Status** | ✅ Ready |"));
        assert!(text.contains("| **Environment URL** | https://abc.appsync-api.eu-west-1.amazonaws.com/graphql |"));
        assert!(text.contains("| **Commit** | `6dcb09b` |"));
        assert!(text.contains("$3.20/month"));
        assert!(text.contains("merge of this branch into `main`"));
        assert!(text.contains("| P95 Latency | 130.00ms | 100.00ms | +30.0% ❌ |"), "{text}");
        assert!(text.contains("**Performance regression:**"));
        assert!(text.contains("| `/` | 200 | 200 ✅ |"));
    }

    #[test]
    fn destroyed_and_failed_comments() {
        let mut env = pr_environment();
        env.status = Status::Deleted;
        env.preview_url = None;
        let text = comment(&env, None, Some("https://dash"));
        assert!(text.contains("🗑️ Destroyed") && !text.contains("Expires"));
        assert!(text.contains("[All environments](https://dash)"));
        env.status = Status::Failed;
        env.status_reason = Some("CREATE_FAILED: bucket name taken".into());
        assert!(comment(&env, None, None).contains("> CREATE\\_FAILED: bucket name taken"));
        let nd = not_deployed_comment("pr-1-x", Some("abcdef0123"), "conflicts with `main`");
        assert!(nd.starts_with(MARKER) && nd.contains("`abcdef0`") && nd.contains("conflicts with \\`main\\`"));
    }

    #[test]
    fn blueprint_text_cannot_add_links_html_or_table_cells() {
        let mut env = pr_environment();
        env.status = Status::Failed;
        env.status_reason = Some(
            "2 violations of the blueprint policy:\nKey (AWS::AppSync::ApiKey): x [click](https://evil.example) <img src=x onerror=alert(1)>\nOut | cell".into(),
        );
        let text = comment(&env, None, None);
        let body = text.split_once("-->").unwrap().1;
        let unescaped = |c: char| body.match_indices(c).any(|(i, _)| !body[..i].ends_with('\\'));
        assert!(!unescaped('[') && !unescaped('<') && !unescaped('('), "{text}");
        assert!(text.contains("> Key \\(AWS::AppSync::ApiKey\\): x \\[click\\]\\(https://evil.example\\) \\<img src=x onerror=alert\\(1\\)\\>"), "{text}");
        assert!(text.contains("> Out \\| cell"), "{text}");

        env.status = Status::Ready;
        env.preview_url = Some("https://x.example/a) [more](https://evil.example".into());
        let text = comment(&env, None, None);
        assert!(!text.contains("[more]("), "{text}");
        env.preview_url = Some("https://abc.appsync-api.eu-west-1.amazonaws.com/graphql?x=1".into());
        assert!(comment(&env, None, None).contains("| https://abc.appsync-api.eu-west-1.amazonaws.com/graphql?x=1 |"));
        env.outputs.insert(
            crate::template::REWRITES_OUTPUT.into(),
            "rewritten: Todo_Table DeletionPolicy Retain to Delete".into(),
        );
        assert!(comment(&env, None, None)
            .contains("**Blueprint policy:** rewritten: Todo\\_Table DeletionPolicy Retain to Delete"));
    }
}
