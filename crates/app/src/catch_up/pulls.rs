//! Each repository's open pull requests against its live environments.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use ephemera_domain::catch_up::{compare, Budget, Finding, OpenPull};
use ephemera_domain::{Desired, Environment, EnvironmentKind, RepoName, RetryPolicy};
use ephemera_github_webhook::payload::{PullRequest, Repository, User};
use ephemera_github_webhook::PullRequestEvent;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{CatchUp, CatchUpReport};
use crate::ports::{Answer, GitHubRead, PortError};

/// Where the listings are kept between sweeps, in the platform's bucket.
pub const CACHE_KEY: &str = "catch-up/open-pulls.json";

/// At most this many pages (a hundred pull requests each) of one repository.
const MAX_PAGES: u32 = 30;

/// What was last listed of each repository (canonical `owner/repo`), and the heads offered to
/// the intake that it did not deploy (a push `paths:` leaves out), by environment: they are not
/// offered again.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    repositories: BTreeMap<String, Listing>,
    #[serde(default)]
    declined: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Listing {
    /// When it was last checked whole (or found inaccessible); None: never.
    #[serde(default)]
    checked_at: Option<DateTime<Utc>>,
    pages: Vec<Page>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Page {
    etag: Option<String>,
    pulls: Vec<OpenPull>,
    more: bool,
}

/// How listing a repository ended.
enum Listed {
    Whole(Vec<Page>),
    Inaccessible(String),
    /// The budget ran out, or GitHub asked to wait.
    Stopped,
    /// More pages than are read.
    TooMany,
}

/// What settling one environment came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Settled {
    Done,
    /// A pull request missing from the listing is open: a page answered 304 is out of date
    /// (its `ETag` covers its body, not what follows it).
    ListingStale,
    /// The budget ran out first.
    CutShort,
}

impl CatchUp {
    pub(super) async fn pulls(&self, envs: &[Environment], budget: &mut Budget, dry_run: bool, r: &mut CatchUpReport) {
        let mut cache = self.load().await.unwrap_or_else(|e| {
            r.errors.push(format!("reading {CACHE_KEY}: {e}"));
            Cache::default()
        });
        let mut by_repo: BTreeMap<String, (RepoName, Vec<&Environment>)> = BTreeMap::new();
        for env in envs.iter().filter(|e| e.kind == EnvironmentKind::Pr && e.desired == Desired::Up) {
            if let (Some(repo), Some(_)) = (&env.repository, env.pull_request) {
                by_repo.entry(repo.canonical()).or_insert_with(|| (repo.clone(), Vec::new())).1.push(env);
            }
        }
        // Those checked longest ago first; never checked before all.
        let repos: std::collections::HashSet<String> = by_repo.keys().cloned().collect();
        let mut order: Vec<(String, (RepoName, Vec<&Environment>))> = by_repo.into_iter().collect();
        order.sort_by_key(|(key, _)| cache.repositories.get(key).and_then(|l| l.checked_at));
        for (key, (repo, mine)) in order {
            match budget.may_ask() {
                true => self.check(&key, &repo, &mine, &mut cache, budget, dry_run, r).await,
                false => r.unchecked.push(key),
            }
        }
        // Listings are kept while their repository has live environments, declined heads while
        // their environment lives.
        let live: std::collections::HashSet<String> = envs.iter().map(|e| e.name.to_string()).collect();
        cache.declined.retain(|env, _| live.contains(env));
        cache.repositories.retain(|repo, _| repos.contains(repo));
        if !dry_run {
            if let Err(e) = self.save(&cache).await {
                r.errors.push(format!("keeping {CACHE_KEY}: {e}"));
            }
        }
    }

    /// Lists one repository and settles its environments; what the cache keeps of it says
    /// when it was checked whole.
    #[allow(clippy::too_many_arguments)]
    async fn check(
        &self,
        key: &str,
        repo: &RepoName,
        mine: &[&Environment],
        cache: &mut Cache,
        budget: &mut Budget,
        dry_run: bool,
        r: &mut CatchUpReport,
    ) {
        let now = self.clock.now();
        let listing = cache.repositories.entry(key.to_owned()).or_default();
        let listed = self.list(repo, &listing.pages, budget, r).await;
        let mut pages = match listed {
            Ok(Listed::Whole(pages)) => pages,
            Ok(Listed::Stopped) => return r.unchecked.push(key.to_owned()),
            Ok(Listed::Inaccessible(why)) => {
                listing.checked_at = Some(now);
                return r.inaccessible(format!("{repo}: {why}"));
            }
            Ok(Listed::TooMany) => {
                listing.checked_at = Some(now);
                let why = format!("{repo} has more than {} open pull requests: not checked", MAX_PAGES * 100);
                return r.errors.push(why);
            }
            Err(e) => {
                listing.checked_at = Some(now);
                return r.errors.push(format!("listing {repo}'s open pull requests: {e}"));
            }
        };
        r.repositories += 1;
        let mut settled = Settled::Done;
        {
            let open: HashMap<u64, &OpenPull> = pages.iter().flat_map(|p| &p.pulls).map(|p| (p.number, p)).collect();
            for env in mine {
                let one = self.settle(repo, env, &open, &mut cache.declined, budget, dry_run, r).await;
                settled = settled.max(one);
            }
        }
        let listing = cache.repositories.entry(key.to_owned()).or_default();
        match settled {
            Settled::Done => listing.checked_at = Some(now),
            Settled::ListingStale => {
                pages.iter_mut().for_each(|p| p.etag = None);
                listing.checked_at = Some(now);
            }
            // First again next time.
            Settled::CutShort => r.unchecked.push(key.to_owned()),
        }
        listing.pages = pages;
    }

    /// Every page of the repository's open pull requests; a page unchanged since `before`'s
    /// `ETag` is taken from `before`.
    async fn list(
        &self,
        repo: &RepoName,
        before: &[Page],
        budget: &mut Budget,
        r: &mut CatchUpReport,
    ) -> Result<Listed, PortError> {
        let mut pages = Vec::new();
        for n in 1..=MAX_PAGES {
            if !budget.may_ask() {
                return Ok(Listed::Stopped);
            }
            let known = before.get(n as usize - 1);
            let read = self.github.open_pulls(repo, n, known.and_then(|p| p.etag.as_deref())).await?;
            budget.spent(read.remaining);
            let page = match (read.answer, known) {
                (Answer::Fresh { value, etag }, _) => Page { etag, pulls: value.pulls, more: value.more },
                (Answer::NotModified, Some(known)) => {
                    r.not_modified += 1;
                    known.clone()
                }
                (Answer::NotModified, None) => {
                    return Err(PortError::Permanent {
                        operation: "list open pull requests",
                        message: "GitHub answered 304 to a page asked for without an ETag".into(),
                    })
                }
                (Answer::Inaccessible(why), _) => return Ok(Listed::Inaccessible(why)),
                (Answer::Limited(why), _) => {
                    budget.stop(why);
                    return Ok(Listed::Stopped);
                }
            };
            let more = page.more;
            pages.push(page);
            if !more {
                return Ok(Listed::Whole(pages));
            }
        }
        Ok(Listed::TooMany)
    }

    /// Acts on what differs for one environment: its pull request is read whole first.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        repo: &RepoName,
        env: &Environment,
        open: &HashMap<u64, &OpenPull>,
        declined: &mut BTreeMap<String, String>,
        budget: &mut Budget,
        dry_run: bool,
        r: &mut CatchUpReport,
    ) -> Settled {
        let number = env.pull_request.unwrap_or_default();
        let name = env.name.to_string();
        let recorded = env.head_commit.as_deref().or(env.commit.as_deref());
        let finding = match compare(recorded, open.get(&number).copied(), self.settings.deploy_forks) {
            Finding::MovedOn { head } if declined.get(&name) == Some(&head) => Finding::InStep,
            finding => finding,
        };
        if matches!(finding, Finding::InStep | Finding::ForkMoved) {
            return Settled::Done;
        }
        if !budget.may_ask() {
            return Settled::CutShort;
        }
        let pull = match self.github.pull(repo, number).await {
            Ok(GitHubRead { answer, remaining }) => {
                budget.spent(remaining);
                answer
            }
            Err(e) => {
                r.errors.push(format!("reading {repo}#{number}: {e}"));
                return Settled::Done;
            }
        };
        let pull = match pull {
            Answer::Fresh { value, .. } => value,
            Answer::Inaccessible(why) => {
                r.inaccessible(format!("{repo}: {why}"));
                return Settled::Done;
            }
            Answer::Limited(why) => {
                budget.stop(why);
                return Settled::CutShort;
            }
            Answer::NotModified => return Settled::Done,
        };
        let Some((action, note)) = missed(&pull, recorded, self.settings.deploy_forks) else {
            let stale = finding == Finding::NotOpen && pull.state == "open";
            return if stale { Settled::ListingStale } else { Settled::Done };
        };
        info!(environment = %name, action, dry_run, "{note}");
        let head = pull.head.sha.to_ascii_lowercase();
        let replied = match dry_run {
            true => Ok("accepted".to_owned()),
            false => self.record(repo, env, pull, action, &note).await,
        };
        match (replied.as_deref(), action) {
            (Ok("accepted"), "closed") => r.missed_closes.push(name),
            (Ok("accepted"), _) => r.missed_pushes.push(name),
            // Not deployed (`paths:`), or already recorded: not offered again.
            (Ok(_), "synchronize") => drop(declined.insert(name, head)),
            (Ok(status), _) => r.errors.push(format!("{name}: the close GitHub reports was not recorded ({status})")),
            (Err(e), _) => r.errors.push(format!("{name}: {e}")),
        }
        Settled::Done
    }

    /// Records the missed event through the intake (retried as any call to AWS); the status it
    /// answered (`accepted`, `ignored`, `stale`, `duplicate`).
    async fn record(
        &self,
        repo: &RepoName,
        env: &Environment,
        pull: PullRequest,
        action: &str,
        note: &str,
    ) -> Result<String, crate::intake::IntakeError> {
        // The head and the time: a close missed again after a reopen is another event.
        let (head, at) = (pull.head.sha.to_ascii_lowercase(), pull.updated_at.timestamp());
        let delivery = format!("catch-up:{}:{action}:{head}:{at}", env.name);
        let event = PullRequestEvent {
            action: action.to_owned(),
            installation: None,
            number: pull.number,
            before: env.head_commit.clone(),
            after: Some(pull.head.sha.clone()),
            label: None,
            sender: User { login: pull.user.login.clone() },
            repository: Repository {
                full_name: repo.to_string(),
                fork: false,
                html_url: None,
                default_branch: None,
                pushed_at: None,
            },
            pull_request: pull,
        };
        let catch_up = || self.intake.catch_up(&delivery, &event, note);
        let reply = crate::retry::retry(RetryPolicy::AWS, "record what the sweep caught up on", catch_up).await?;
        let status = reply.body["status"].as_str().unwrap_or_default().to_owned();
        info!(environment = %env.name, status, "caught up");
        Ok(status)
    }

    async fn load(&self) -> Result<Cache, PortError> {
        let Some(text) = self.store.get_text(&self.settings.bucket, CACHE_KEY).await? else {
            return Ok(Cache::default());
        };
        // A cache that cannot be read is started again: it only saves requests.
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
            warn!(error = %e, "{CACHE_KEY} is not what this version keeps; listing everything again");
            Cache::default()
        }))
    }

    async fn save(&self, cache: &Cache) -> Result<(), PortError> {
        let text = serde_json::to_string(cache).expect("the cache serializes");
        self.store.put_text(&self.settings.bucket, CACHE_KEY, &text).await
    }
}

/// The event that was missed, if the pull request as read whole differs from what was
/// recorded: a close, or a push to a head that may be deployed.
fn missed(pull: &PullRequest, recorded: Option<&str>, deploy_forks: bool) -> Option<(&'static str, String)> {
    let head = pull.head.sha.to_ascii_lowercase();
    if pull.state == "closed" {
        let how = if pull.merged == Some(true) { "merged" } else { "closed" };
        return Some(("closed", format!("the close was missed: the sweep found the pull request {how}")));
    }
    let moved = recorded.is_none_or(|r| !r.eq_ignore_ascii_case(&head));
    (moved && (!pull.is_from_fork() || deploy_forks)).then(|| {
        (
            "synchronize",
            format!("a push was missed: the sweep found the pull request's head at {}", &head[..head.len().min(7)]),
        )
    })
}
