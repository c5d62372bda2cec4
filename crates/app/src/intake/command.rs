//! Commands from a pull request's conversation (`issue_comment` deliveries): `/ephemera
//! redeploy`, `extend`, `preserve`, `unpreserve`, `destroy`, `approve`.
//!
//! Only users with write access command (GitHub is asked, and the answer kept a minute). Each
//! delivery acts once: its id is marked before anything is done (and unmarked if it could not
//! be), and the changes it records carry an id of their own. A command is acknowledged with a
//! reaction; its result reaches the sticky comment through the notifier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use ephemera_domain::command::{self, may_command, Command, Unknown, HELP};
use ephemera_domain::preview::{short, Source};
use ephemera_domain::{Desired, Environment, EnvironmentKind, EnvironmentName, EventOrder, RepoName};
use ephemera_github_webhook::IssueCommentEvent;
use serde_json::json;
use tracing::{info, warn};

use super::{Intake, IntakeError, Reply};
use crate::events::PlatformEvent;
use crate::ports::{Change, ChangeOutcome, GitHubApi, PortError};

/// How long GitHub's answer about a user's permission is trusted.
const WRITERS_TTL: Duration = Duration::seconds(60);

/// `owner/repo` (canonical) and a login.
type Who = (String, String);

/// Who may give commands, as GitHub said, and when it said so.
#[derive(Debug, Default)]
pub(super) struct Writers(Mutex<HashMap<Who, (bool, DateTime<Utc>)>>);

impl Writers {
    fn get(&self, key: &Who, now: DateTime<Utc>) -> Option<bool> {
        let cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).filter(|(_, at)| now - *at < WRITERS_TTL).map(|(may, _)| *may)
    }
    fn put(&self, key: Who, may: bool, now: DateTime<Utc>) {
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (_, at)| now - *at < WRITERS_TTL);
        cache.insert(key, (may, now));
    }
}

/// One command's setting: where it was written, by whom, and the preview it is about.
struct Context<'a> {
    github: Arc<dyn GitHubApi>,
    repo: RepoName,
    name: EnvironmentName,
    delivery: &'a str,
    e: &'a IssueCommentEvent,
}

impl Context<'_> {
    fn login(&self) -> &str {
        &self.e.comment.user.login
    }
}

/// What came of a command.
enum Done {
    /// A change of desired state was recorded (the provisioner and notifier take it on).
    Changed(String),
    /// Done without a new generation (expiry, preservation): the sticky comment is told.
    Noted(String),
    /// Not done, and why (replied to the author).
    Refused(String),
}

impl Intake {
    pub(super) async fn issue_comment(&self, delivery: &str, e: &IssueCommentEvent) -> Result<Reply, IntakeError> {
        if e.action != "created" {
            return Ok(Reply::ignored(format!("issue_comment action {:?} carries no command", e.action)));
        }
        if !e.is_on_pull_request() || e.sender.is_bot() {
            return Ok(Reply::ignored("only people's comments on pull requests are commands"));
        }
        let Some(parsed) = command::parse(&e.comment.body) else {
            return Ok(Reply::ignored("the comment holds no /ephemera command"));
        };
        let repo = match self.allowed(&e.repository.full_name)? {
            Ok(repo) => repo,
            Err(reply) => return Ok(reply),
        };
        let Some(github) = self.github.clone() else {
            return Ok(Reply::ignored("comment commands need GitHub credentials (a GitHub App or a token)"));
        };
        let name = EnvironmentName::for_pull_request(&repo, e.issue.number)
            .map_err(|err| IntakeError::BadRequest(err.to_string()))?;
        if !self.registry.mark_delivery(delivery, name.as_str(), self.clock.now()).await? {
            return Ok(Reply::ok(json!({ "status": "duplicate", "environment": name, "delivery": delivery })));
        }
        let cx = Context { github, repo, name, delivery, e };
        let result = self.command(&cx, parsed).await;
        if result.is_err() {
            // Nothing was acknowledged: a redelivery of this comment may act.
            if let Err(err) = self.registry.unmark_delivery(delivery).await {
                warn!(error = %err, "could not unmark a command that failed; its redelivery will be ignored");
            }
        }
        result
    }

    async fn command(&self, cx: &Context<'_>, parsed: Result<Command, Unknown>) -> Result<Reply, IntakeError> {
        let login = cx.login();
        if !self.may_command(cx).await? {
            let why = format!("@{login}: Ephemera takes commands only from users with write access to {}.", cx.repo);
            self.respond(cx, "-1", Some(&why)).await?;
            return Ok(Reply::ok(json!({ "status": "refused", "environment": cx.name, "reason": why })));
        }
        let command = match parsed {
            Ok(command) => command,
            Err(Unknown(why)) => {
                self.respond(cx, "confused", Some(&format!("@{login}: {why}.\n\n{HELP}"))).await?;
                return Ok(Reply::ok(json!({ "status": "unknown command", "environment": cx.name, "reason": why })));
            }
        };
        info!(environment = %cx.name, command = %command.text(), %login, "comment command");
        match self.carry_out(cx, &command).await? {
            Done::Changed(what) => {
                self.respond(cx, "+1", None).await?;
                Ok(Reply::accepted(json!({ "status": "accepted", "environment": cx.name, "command": what })))
            }
            Done::Noted(what) => {
                if let Some(env) = self.registry.get(&cx.name).await? {
                    self.bus.publish(&[PlatformEvent::noted(&env, &what)]).await?;
                }
                self.respond(cx, "+1", None).await?;
                Ok(Reply::ok(json!({ "status": "done", "environment": cx.name, "command": what })))
            }
            Done::Refused(why) => {
                self.respond(cx, "-1", Some(&format!("@{login}: `/ephemera {}`: {why}", command.text()))).await?;
                Ok(Reply::ok(json!({ "status": "refused", "environment": cx.name, "reason": why })))
            }
        }
    }

    /// Whether the comment's author has write access (GitHub's answer, kept a minute).
    async fn may_command(&self, cx: &Context<'_>) -> Result<bool, PortError> {
        let key = (cx.repo.canonical(), cx.login().to_ascii_lowercase());
        let now = self.clock.now();
        if let Some(may) = self.writers.get(&key, now) {
            return Ok(may);
        }
        let may = may_command(&cx.github.permission(&cx.repo, cx.login()).await?);
        self.writers.put(key, may, now);
        Ok(may)
    }

    /// A reaction on the command's comment and, if there is something to say, a reply.
    async fn respond(&self, cx: &Context<'_>, reaction: &str, reply: Option<&str>) -> Result<(), PortError> {
        if let Some(text) = reply {
            cx.github.reply(&cx.repo, cx.e.issue.number, text).await?;
        }
        cx.github.react(&cx.repo, cx.e.comment.id, reaction).await
    }

    async fn carry_out(&self, cx: &Context<'_>, command: &Command) -> Result<Done, IntakeError> {
        if cx.e.issue.state != "open" {
            return Ok(Done::Refused("the pull request is closed".into()));
        }
        let env = self.registry.get(&cx.name).await?;
        let up = env.filter(|e| e.desired == Desired::Up);
        let login = cx.login();
        let now = self.clock.now();
        match (command, up) {
            (Command::Approve(sha), env) => self.approve(cx, env, sha.as_deref()).await,
            (_, None) => Ok(Done::Refused(
                "this pull request has no preview now; a push (or an approval, for a fork) deploys one".into(),
            )),
            (Command::Extend(by), Some(env)) => {
                let until = env.expires_at.max(now + *by);
                self.registry.set_expiry(&env.name, until).await?;
                Ok(Done::Noted(format!("@{login} extended the preview: it is kept until {}", until.format(TIME))))
            }
            (Command::Preserve | Command::Unpreserve, Some(env)) => {
                let on = *command == Command::Preserve;
                self.registry.set_preserved(&env.name, on, None).await?;
                Ok(Done::Noted(if on {
                    format!("@{login} preserved the preview: it is kept past its expiry until `/ephemera unpreserve`")
                } else {
                    format!("@{login} unpreserved the preview: it expires at {}", env.expires_at.format(TIME))
                }))
            }
            (Command::Destroy, Some(env)) => {
                let why = format!("destroyed by @{login} with /ephemera destroy");
                let change = Change { reason: Some(why), ..self.change_on(cx, &env, Desired::Down, env.expires_at) };
                self.record(cx, change).await
            }
            (Command::Redeploy, Some(env)) => {
                let expires = env.expires_at.max(self.expiry_for(&cx.repo).expires_at(EnvironmentKind::Pr, now));
                let change = self.change_on(cx, &env, Desired::Up, expires);
                self.record(cx, change).await
            }
        }
    }

    /// A fork's head deployed on a writer's word: exactly the commit named, and only while it is
    /// still the head (a push since needs its own approval). GitHub's test merge is used only
    /// if GitHub computed it for that head.
    async fn approve(
        &self,
        cx: &Context<'_>,
        env: Option<Environment>,
        sha: Option<&str>,
    ) -> Result<Done, IntakeError> {
        let pull = cx.github.pull_request(&cx.repo, cx.e.issue.number).await?;
        if pull.closed {
            return Ok(Done::Refused("the pull request is closed".into()));
        }
        let Some(head) = pull.head.clone() else {
            return Ok(Done::Refused("GitHub did not say which commit is the head".into()));
        };
        let Some(sha) = sha else {
            return Ok(Done::Refused(format!(
                "name the commit you reviewed: `/ephemera approve {head}` deploys the head as it is now"
            )));
        };
        if !head.starts_with(sha) {
            return Ok(Done::Refused(format!(
                "{} is not the head: {} was pushed since. Review it, then `/ephemera approve {head}`",
                short(sha),
                short(&head)
            )));
        }
        let base = pull.base_ref.clone().or_else(|| env.as_ref().and_then(|e| e.base_ref.clone()));
        let (mergeable, merge) = pull.merge_for(&head);
        let source = Source::choose(&head, mergeable, merge.as_deref());
        if source.commit().is_none() {
            return Ok(Done::Refused(source.note(base.as_deref().unwrap_or("the base branch"))));
        }
        let now = self.clock.now();
        // The approved commit's own settings (`.ephemera.yml`), as for any deployed commit.
        let commit = source.commit().unwrap_or(&head);
        let settings = self.repository_settings(&cx.repo, commit).await?;
        let expires = self.expiry_with(&cx.repo, settings.and_then(|s| s.ttl)).expires_at(EnvironmentKind::Pr, now);
        let owner = env.as_ref().map_or_else(|| cx.e.issue.user.login.clone(), |e| e.owner.clone());
        let change = Change {
            repository: Some(cx.repo.clone()),
            pull_request: Some(cx.e.issue.number),
            commit: source.commit().map(str::to_owned),
            head_commit: Some(head),
            head_ref: pull.head_ref.clone(),
            base_ref: base,
            source: source.recorded(),
            expected_generation: Some(env.as_ref().map_or(0, |e| e.generation)),
            ..Change::new(
                cx.name.clone(),
                EnvironmentKind::Pr,
                owner,
                Desired::Up,
                self.order(cx, env.as_ref()),
                expires,
                now,
            )
        };
        self.record(cx, change).await
    }

    /// A change of `env` decided on it as read: refused if anything changed it meanwhile.
    fn change_on(&self, cx: &Context<'_>, env: &Environment, desired: Desired, expires: DateTime<Utc>) -> Change {
        Change::decided_on(env, desired, self.order(cx, Some(env)), expires, self.clock.now())
    }

    /// A command is ordered at the time it was written, and after what is recorded (in
    /// seconds, as pull request events are): a push made after the comment still wins.
    fn order(&self, cx: &Context<'_>, env: Option<&Environment>) -> EventOrder {
        let written = cx.e.comment.created_at.timestamp();
        let after = env.and_then(|e| e.last_event).map_or(0, |o| o.at + 1);
        EventOrder::new(written.max(after), EventOrder::RANK_PUSH)
    }

    /// Records a command's change under an id of its own (the delivery's is its mark).
    async fn record(&self, cx: &Context<'_>, change: Change) -> Result<Done, IntakeError> {
        let what = format!("{} {}", change.desired.as_str(), change.name);
        match self.registry.apply_change(&format!("{}:command", cx.delivery), &change).await? {
            ChangeOutcome::Accepted { .. } | ChangeOutcome::Duplicate => {
                self.announce(&change.name).await?;
                Ok(Done::Changed(what))
            }
            ChangeOutcome::Stale => Ok(Done::Refused("the preview changed meanwhile; try again".into())),
            ChangeOutcome::Conflict(msg) => Err(IntakeError::Conflict(msg)),
        }
    }
}

const TIME: &str = "%Y-%m-%d %H:%M UTC";
