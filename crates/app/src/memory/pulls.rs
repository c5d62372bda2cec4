//! GitHub in memory, as the sweep's catch-up reads it: each repository's pull requests, each
//! hook's delivery attempts, a rate limit that runs down, and every request recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::catch_up::{DeliveryAttempt, OpenPull};
use ephemera_domain::RepoName;
use serde_json::json;

use super::lock;
use crate::ports::{Answer, DeliveriesPage, GitHubCatchUp, GitHubRead, Hook, PortError, PullsPage};

/// Where a pull request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullState {
    Open,
    Closed,
    Merged,
}

#[derive(Debug, Clone)]
struct Pull {
    head: String,
    state: PullState,
    from_fork: bool,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct State {
    /// canonical `owner/repo` → number → pull request
    pulls: BTreeMap<String, BTreeMap<u64, Pull>>,
    inaccessible: BTreeSet<String>,
    per_page: Option<usize>,
    /// What `X-RateLimit-Remaining` says: counts down with each request that is not a 304.
    remaining: Option<u64>,
    hooks: Vec<Hook>,
    /// Every hook's attempts, newest first.
    attempts: Vec<(Hook, DeliveryAttempt)>,
    requests: Vec<String>,
    next_id: u64,
}

#[derive(Debug, Default)]
pub struct MemoryPulls {
    state: Mutex<State>,
}

impl MemoryPulls {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pull request `number` of `repo` as GitHub has it now.
    pub fn set_pull(&self, repo: &str, number: u64, head: &str, state: PullState, updated_at: DateTime<Utc>) {
        let pull = Pull { head: head.to_ascii_lowercase(), state, from_fork: false, updated_at };
        lock(&self.state).pulls.entry(repo.to_ascii_lowercase()).or_default().insert(number, pull);
    }

    /// Moves a pull request to `state`, at its head.
    pub fn set_state(&self, repo: &str, number: u64, state: PullState) {
        if let Some(p) = lock(&self.state).pulls.get_mut(&repo.to_ascii_lowercase()).and_then(|m| m.get_mut(&number)) {
            p.state = state;
        }
    }

    /// Marks a pull request as coming from a fork.
    pub fn set_fork(&self, repo: &str, number: u64) {
        if let Some(p) = lock(&self.state).pulls.get_mut(&repo.to_ascii_lowercase()).and_then(|m| m.get_mut(&number)) {
            p.from_fork = true;
        }
    }

    /// GitHub answers 404 for the repository (the App was uninstalled from it).
    pub fn set_inaccessible(&self, repo: &str) {
        lock(&self.state).inaccessible.insert(repo.to_ascii_lowercase());
    }

    /// Pull requests a page (GitHub: up to 100).
    pub fn set_per_page(&self, n: usize) {
        lock(&self.state).per_page = Some(n);
    }

    /// What the rate limit has left; each request answered with a body spends one.
    pub fn set_remaining(&self, remaining: u64) {
        lock(&self.state).remaining = Some(remaining);
    }

    /// The hooks deliveries are listed for.
    pub fn set_hooks(&self, hooks: Vec<Hook>) {
        lock(&self.state).hooks = hooks;
    }

    /// A delivery attempt of `hook`'s (its id is assigned).
    pub fn add_attempt(&self, hook: Hook, guid: &str, event: &str, status_code: u16, delivered_at: DateTime<Utc>) {
        let mut s = lock(&self.state);
        s.next_id += 1;
        let attempt = DeliveryAttempt {
            id: s.next_id,
            guid: guid.into(),
            delivered_at,
            redelivery: false,
            status_code,
            event: event.into(),
        };
        s.attempts.push((hook, attempt));
        s.attempts.sort_by_key(|(_, a)| std::cmp::Reverse(a.delivered_at));
    }

    /// Every request, in order: `open_pulls owner/repo page [etag]`, `pull owner/repo#n`,
    /// `deliveries hook`, `redeliver id`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }

    /// The ids asked to be delivered again, in order.
    pub fn redelivered(&self) -> Vec<u64> {
        let requests = self.requests();
        requests.iter().filter_map(|r| r.strip_prefix("redeliver ")).filter_map(|id| id.parse().ok()).collect()
    }

    fn spend(s: &mut State) -> Option<u64> {
        if let Some(r) = s.remaining.as_mut() {
            *r = r.saturating_sub(1);
        }
        s.remaining
    }
}

fn read<T>(answer: Answer<T>, remaining: Option<u64>) -> Result<GitHubRead<T>, PortError> {
    Ok(GitHubRead { answer, remaining })
}

fn limited(s: &State) -> bool {
    s.remaining == Some(0)
}

#[async_trait]
impl GitHubCatchUp for MemoryPulls {
    async fn open_pulls(
        &self,
        repo: &RepoName,
        page: u32,
        etag: Option<&str>,
    ) -> Result<GitHubRead<PullsPage>, PortError> {
        let mut s = lock(&self.state);
        let key = repo.canonical();
        s.requests.push(format!("open_pulls {key} {page} {}", etag.unwrap_or("-")));
        if limited(&s) {
            return read(Answer::Limited("rate limit: retry in 60 s".into()), None);
        }
        if s.inaccessible.contains(&key) {
            let remaining = Self::spend(&mut s);
            return read(Answer::Inaccessible("404 Not Found".into()), remaining);
        }
        let per_page = s.per_page.unwrap_or(100);
        let open: Vec<OpenPull> = s
            .pulls
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|(_, p)| p.state == PullState::Open)
            .map(|(n, p)| OpenPull { number: *n, head: p.head.clone(), from_fork: p.from_fork })
            .collect();
        let skip = (page as usize - 1) * per_page;
        let pulls: Vec<OpenPull> = open.iter().skip(skip).take(per_page).cloned().collect();
        let more = open.len() > skip + per_page;
        let tag = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            format!("{pulls:?}{more}").hash(&mut h);
            format!("\"{:x}\"", h.finish())
        };
        if etag == Some(tag.as_str()) {
            return read(Answer::NotModified, s.remaining);
        }
        let remaining = Self::spend(&mut s);
        read(Answer::Fresh { value: PullsPage { pulls, more }, etag: Some(tag) }, remaining)
    }

    async fn pull(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<GitHubRead<ephemera_github_webhook::payload::PullRequest>, PortError> {
        let mut s = lock(&self.state);
        let key = repo.canonical();
        s.requests.push(format!("pull {key}#{number}"));
        if limited(&s) {
            return read(Answer::Limited("rate limit: retry in 60 s".into()), None);
        }
        let remaining = Self::spend(&mut s);
        let found = s.pulls.get(&key).and_then(|m| m.get(&number)).cloned();
        let Some(p) = found.filter(|_| !s.inaccessible.contains(&key)) else {
            return read(Answer::Inaccessible("404 Not Found".into()), remaining);
        };
        let head_repo = if p.from_fork { format!("outsider/{}", repo.name()) } else { repo.to_string() };
        let body = json!({
            "number": number,
            "state": if p.state == PullState::Open { "open" } else { "closed" },
            "merged": p.state == PullState::Merged,
            "user": { "login": "octocat" },
            "head": { "ref": "feature/todo-filters", "sha": p.head, "repo": { "full_name": head_repo } },
            "base": { "ref": "main", "sha": "0".repeat(40), "repo": { "full_name": repo.to_string() } },
            "updated_at": p.updated_at.to_rfc3339(),
            "labels": [],
        });
        let pull = serde_json::from_value(body).expect("a pull request payload");
        read(Answer::Fresh { value: pull, etag: None }, remaining)
    }

    fn hooks(&self) -> Vec<Hook> {
        lock(&self.state).hooks.clone()
    }

    async fn deliveries(&self, hook: &Hook, cursor: Option<&str>) -> Result<GitHubRead<DeliveriesPage>, PortError> {
        let mut s = lock(&self.state);
        s.requests.push(format!("deliveries {hook} {}", cursor.unwrap_or("-")));
        if limited(&s) {
            return read(Answer::Limited("rate limit: retry in 60 s".into()), None);
        }
        let remaining = Self::spend(&mut s);
        let per_page = s.per_page.unwrap_or(100);
        let skip: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let mine: Vec<DeliveryAttempt> = s.attempts.iter().filter(|(h, _)| h == hook).map(|(_, a)| a.clone()).collect();
        let attempts: Vec<DeliveryAttempt> = mine.iter().skip(skip).take(per_page).cloned().collect();
        let next = (mine.len() > skip + per_page).then(|| (skip + per_page).to_string());
        read(Answer::Fresh { value: DeliveriesPage { attempts, next }, etag: None }, remaining)
    }

    /// Delivers again at once, successfully: a new attempt with the same delivery id.
    async fn redeliver(&self, hook: &Hook, attempt: u64) -> Result<GitHubRead<()>, PortError> {
        let mut s = lock(&self.state);
        s.requests.push(format!("redeliver {attempt}"));
        if limited(&s) {
            return read(Answer::Limited("rate limit: retry in 60 s".into()), None);
        }
        let remaining = Self::spend(&mut s);
        let Some((_, original)) = s.attempts.iter().find(|(h, a)| h == hook && a.id == attempt).cloned() else {
            return read(Answer::Inaccessible("404 Not Found".into()), remaining);
        };
        s.next_id += 1;
        let again = DeliveryAttempt { id: s.next_id, redelivery: true, status_code: 202, ..original };
        s.attempts.insert(0, (hook.clone(), again));
        read(Answer::Fresh { value: (), etag: None }, remaining)
    }
}
