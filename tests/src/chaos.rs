//! The chaos run: a seeded random schedule of pull request events across many pull requests
//! and repositories (opens, pushes, closes, reopens, label changes, forks), delivered with
//! duplicates and out of order, a share of closes and pushes never delivered (GitHub's failed
//! deliveries), with faults between the platform and the emulator; then the reaper, which
//! catches up with the fake GitHub's account of every pull request, and once more when that has
//! settled; then the invariants:
//!
//! 1. the live stacks are exactly the open, non-fork pull requests' environments, each at its
//!    pull request's head on GitHub;
//! 2. no resource of any allowed type, tagged or named for an environment, outlives that
//!    environment (every preview holds one resource of every allowed type:
//!    `tests/fixtures/every-type.yaml`); a listing that fails fails the invariant;
//! 3. no environment is left in a non-terminal state;
//! 4. no pull request has more than one Ephemera comment;
//! 5. the running totals count exactly the environments whose stacks live: one claim each.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ephemera_app::ports::registry_traits::*;
use ephemera_domain::{EnvironmentName, RepoName};
use ephemera_wiring::platform;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use crate::faults::{FaultProxy, Faults};
use crate::github::{FakeGitHub, FakePull};
use crate::{edit, fixtures, Platform};

#[derive(Debug, Clone)]
pub struct Plan {
    pub prs: u64,
    pub repos: u64,
    pub seed: u64,
    pub faults: Faults,
    /// How long to wait for everything to settle.
    pub settle: Duration,
    /// The share of closes and pushes never delivered.
    pub lost: f64,
}

#[derive(Debug, Serialize)]
pub struct Invariant {
    pub name: &'static str,
    pub holds: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub pull_requests: u64,
    pub repositories: u64,
    pub deliveries: usize,
    pub duplicates: usize,
    /// Closes and pushes never delivered, and what the sweep caught up on.
    pub lost_closes: usize,
    pub lost_pushes: usize,
    pub caught_up_closes: usize,
    pub caught_up_pushes: usize,
    pub expected_live: usize,
    pub faults_injected: u64,
    pub reaper_actions: usize,
    pub reaper_errors: Vec<String>,
    /// Stacks created more than once. CloudFormation refuses a second create of a live stack,
    /// so each is a pull request reopened after its stack was deleted.
    pub repeated_creates: Vec<String>,
    pub seconds: f64,
    pub invariants: Vec<Invariant>,
}

impl Report {
    pub fn holds(&self) -> bool {
        self.invariants.iter().all(|i| i.holds)
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "chaos seed {}: {} pull requests in {} repositories, {} deliveries ({} duplicates; {} closes and {} pushes lost, {} and {} caught up), {} faults injected, {:.1} s\n",
            self.seed,
            self.pull_requests,
            self.repositories,
            self.deliveries,
            self.duplicates,
            self.lost_closes,
            self.lost_pushes,
            self.caught_up_closes,
            self.caught_up_pushes,
            self.faults_injected,
            self.seconds
        );
        for i in &self.invariants {
            out.push_str(&format!("  [{}] {}: {}\n", if i.holds { "ok" } else { "FAIL" }, i.name, i.detail));
        }
        out
    }
}

struct Pr {
    repo: String,
    number: u64,
    fork: bool,
    open: bool,
    /// Delivered events: (delivery id, body).
    events: Vec<(String, Vec<u8>)>,
    /// What GitHub has at the end: the head, whether the last close was a merge, when it was
    /// last updated.
    head: String,
    merged: bool,
    updated: i64,
    /// Closes and pushes never delivered.
    lost_closes: usize,
    lost_pushes: usize,
}

impl Pr {
    /// As GitHub has it at the end.
    fn on_github(&self) -> FakePull {
        FakePull {
            closed: !self.open,
            merged: self.merged && !self.open,
            repository: Some(self.repo.clone()),
            from_fork: self.fork,
            updated_at: at(self.updated),
            ..FakePull::new(&self.head, None, None)
        }
    }
}

fn at(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn event(pr: &Pr, action: &str, t: i64, sha: &str, label: Option<&str>, merged: bool) -> Vec<u8> {
    let base = if action == "closed" { fixtures::CLOSED } else { fixtures::OPENED };
    let head_repo = if pr.fork {
        json!({ "full_name": format!("outsider/{}", pr.repo.split('/').nth(1).unwrap()), "fork": true })
    } else {
        json!({ "full_name": pr.repo, "fork": false })
    };
    let mut edits = vec![
        ("action", json!(action)),
        ("number", json!(pr.number)),
        ("pull_request.number", json!(pr.number)),
        ("pull_request.updated_at", json!(at(t))),
        ("pull_request.head.sha", json!(sha)),
        ("pull_request.head.repo", head_repo),
        ("pull_request.base.repo", json!({ "full_name": pr.repo })),
        ("repository.full_name", json!(pr.repo)),
        ("pull_request.merged", json!(merged)),
        ("pull_request.state", json!(if action == "closed" { "closed" } else { "open" })),
    ];
    if let Some(l) = label {
        edits.push(("label", json!({ "name": l })));
        edits.push(("pull_request.labels", json!([{ "name": l }])));
    }
    edit(base, &edits)
}

/// Every pull request's history, in order. The head moves with pushes only; a share of
/// closes and pushes (`plan.lost`) is never delivered.
fn schedule(plan: &Plan, rng: &mut rand::rngs::StdRng) -> Vec<Pr> {
    let mut prs = Vec::new();
    for i in 0..plan.prs {
        let repo = format!("chaos-org/service-{}", i % plan.repos);
        let t = 1_790_000_000 + rng.random_range(0..600);
        let sha = |rng: &mut rand::rngs::StdRng| format!("{:040x}", rng.random::<u128>());
        let mut pr = Pr {
            repo,
            number: 100 + i,
            fork: rng.random_bool(0.15),
            open: true,
            events: vec![],
            head: sha(rng),
            merged: false,
            updated: t,
            lost_closes: 0,
            lost_pushes: 0,
        };
        // (action, time, label, merged, delivered)
        let mut history = vec![("opened", t, None, false, true)];
        let mut t = t;
        let mut step = |rng: &mut rand::rngs::StdRng| {
            t += rng.random_range(1..30);
            t
        };
        let mut heads = vec![pr.head.clone()];
        for _ in 0..rng.random_range(0..3) {
            let at = step(rng);
            heads.push(sha(rng));
            history.push(("synchronize", at, None, false, !rng.random_bool(plan.lost)));
        }
        if rng.random_bool(0.1) {
            let at = step(rng);
            history.push(("labeled", at, Some("preview:preserve"), false, true));
        }
        if rng.random_bool(0.5) {
            let (at, merged) = (step(rng), rng.random_bool(0.5));
            history.push(("closed", at, None, merged, !rng.random_bool(plan.lost)));
            (pr.open, pr.merged) = (false, merged);
            if rng.random_bool(0.3) {
                let at = step(rng);
                history.push(("reopened", at, None, false, true));
                pr.open = true;
            }
        }
        let mut head = heads.iter();
        let mut events = Vec::new();
        for (k, (action, at, label, merged, delivered)) in history.into_iter().enumerate() {
            if matches!(action, "opened" | "synchronize") {
                pr.head = head.next().expect("a head per push").clone();
            }
            pr.updated = at;
            match (delivered, action) {
                (true, _) => events.push((format!("chaos-{i}-{k}"), event(&pr, action, at, &pr.head, label, merged))),
                (false, "closed") => pr.lost_closes += 1,
                (false, _) => pr.lost_pushes += 1,
            }
        }
        pr.events = events;
        prs.push(pr);
    }
    prs
}

fn env_name(pr: &Pr) -> String {
    EnvironmentName::for_pull_request(&RepoName::parse(&pr.repo).unwrap(), pr.number).unwrap().to_string()
}

/// Runs the chaos plan against a fresh platform; returns the report.
pub async fn run(plan: Plan) -> Report {
    let started = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed);
    let gh = FakeGitHub::start().await;
    let (p, proxy): (Platform, FaultProxy) = Platform::start_faulty(
        &[
            ("EPHEMERA_GITHUB_TOKEN", "chaos-token"),
            ("EPHEMERA_GITHUB_API_URL", &gh.url),
            ("EPHEMERA_LOAD_TEST", "false"),
            ("EPHEMERA_STACK_WAIT_SECONDS", "5"),
        ],
        plan.seed,
    )
    .await;
    let prs = schedule(&plan, &mut rng);
    for pr in &prs {
        gh.state().pulls.insert(pr.number, pr.on_github());
    }
    upload_every_type_blueprint(&p).await;

    // Interleave everyone's events, then disorder each pull request's own a little (adjacent
    // swaps), and deliver some twice.
    let mut deliveries: Vec<(String, Vec<u8>)> = prs.iter().flat_map(|pr| pr.events.clone()).collect();
    deliveries.shuffle(&mut rng);
    let duplicates: Vec<(String, Vec<u8>)> = deliveries.iter().filter(|_| rng.random_bool(0.1)).cloned().collect();
    let n_dup = duplicates.len();
    for d in duplicates {
        let at = rng.random_range(0..=deliveries.len());
        deliveries.insert(at, d);
    }
    proxy.set(plan.faults);
    let sent = deliveries.len();
    deliver_all(&p, deliveries).await;

    // Everything settles, faults still on.
    let registry = p.registry();
    settle(&registry, plan.settle).await;
    let mut swept = sweep_through_faults(&p, &proxy).await;
    // What the sweep caught up on settles too; the next sweep collects what the emulator leaves
    // of stacks deleted after an update (see docs/design.md), as it does of closes delivered.
    settle(&registry, plan.settle).await;
    let next = sweep_through_faults(&p, &proxy).await;
    swept.add(next);
    proxy.set(Faults::NONE);
    // The notifier drains its queue.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let expected: BTreeSet<String> =
        prs.iter().filter(|pr| pr.open && !pr.fork).map(|pr| format!("ephemera-{}", env_name(pr))).collect();
    let live: BTreeSet<String> = p.live_stacks("ephemera-").await.into_iter().collect();
    let mut invariants = Vec::new();
    let rows = registry.list().await.unwrap_or_default();
    invariants.push(live_stacks_invariant(&rows, &live, &expected));
    invariants.push(at_github_heads(&rows, &prs));

    let envs = registry.list().await.unwrap_or_default();
    let live_envs: BTreeSet<String> =
        envs.iter().filter(|e| e.status == ephemera_domain::Status::Ready).map(|e| e.name.to_string()).collect();
    invariants.push(leftovers(&p, &live, &live_envs, &envs).await);

    let unsettled: Vec<String> = envs
        .iter()
        .filter(|e| !e.is_converged())
        .map(|e| format!("{} {} (gen {} seen {})", e.name, e.status.as_str(), e.generation, e.observed_generation))
        .collect();
    invariants.push(Invariant {
        name: "no environment in a non-terminal state",
        holds: unsettled.is_empty(),
        detail: format!("{} environments; unsettled: {unsettled:?}", envs.len()),
    });

    invariants.push(one_comment_each(&gh));
    invariants.push(totals_invariant(&registry, &live).await);

    let report = Report {
        seed: plan.seed,
        pull_requests: plan.prs,
        repositories: plan.repos,
        deliveries: sent,
        duplicates: n_dup,
        lost_closes: prs.iter().map(|pr| pr.lost_closes).sum(),
        lost_pushes: prs.iter().map(|pr| pr.lost_pushes).sum(),
        caught_up_closes: swept.caught_up.0,
        caught_up_pushes: swept.caught_up.1,
        expected_live: expected.len(),
        faults_injected: swept.injected,
        reaper_actions: swept.actions,
        reaper_errors: swept.errors,
        repeated_creates: swept.repeated,
        seconds: started.elapsed().as_secs_f64(),
        invariants,
    };
    p.stop().await;
    report
}

/// The claims are exactly the live stacks' environments, and the live total counts them.
async fn totals_invariant(registry: &ephemera_aws::DynamoRegistry, live: &BTreeSet<String>) -> Invariant {
    let holders: BTreeSet<String> =
        registry.holders().await.unwrap_or_default().into_iter().map(|h| format!("ephemera-{h}")).collect();
    let counted = registry.totals().await.unwrap_or_default().get("live").copied().unwrap_or(0);
    let extra: Vec<&String> = holders.difference(live).collect();
    let missing: Vec<&String> = live.difference(&holders).collect();
    Invariant {
        name: "the running totals count exactly the live environments",
        holds: extra.is_empty() && missing.is_empty() && counted == holders.len() as i64,
        detail: format!(
            "{} claims, live total {counted}; claimed but gone: {extra:?}; live unclaimed: {missing:?}",
            holders.len()
        ),
    }
}

/// No resource tagged for an environment (the Tagging API) or named for one (each type's own
/// listing) without that environment live. A listing that fails fails the invariant.
async fn leftovers(
    p: &Platform,
    live_stacks: &BTreeSet<String>,
    live_envs: &BTreeSet<String>,
    envs: &[ephemera_domain::Environment],
) -> Invariant {
    let name = "no resource of any allowed type outlives its environment";
    let (tagged, named) = match (tagged_resources(p).await, named_resources(p).await) {
        (Ok(t), Ok(n)) => (t, n),
        (Err(e), _) | (_, Err(e)) => return Invariant { name, holds: false, detail: format!("listing failed: {e:#}") },
    };
    let mut outliving = Vec::new();
    for (arn, env) in &tagged {
        // The emulator's Tagging API still lists deleted stacks (AWS does not): a stack counts
        // only if it is live, which the first invariant checks.
        let deleted_stack =
            arn.contains(":cloudformation:") && !live_stacks.iter().any(|s| arn.contains(&format!(":stack/{s}/")));
        if !live_envs.contains(env) && !deleted_stack {
            outliving.push(arn.clone());
        }
    }
    for n in &named {
        let own = n.name.strip_prefix(ephemera_domain::catalogue::LAMBDA_LOG_PREFIX).unwrap_or(&n.name);
        if !live_envs.iter().any(|e| ephemera_domain::catalogue::named_or_cut_for(own, e)) {
            outliving.push(format!("{:?} {}", n.kind, n.name));
        }
    }
    // What the registry says of the environments in question.
    let states: Vec<String> = envs
        .iter()
        .filter(|e| outliving.iter().any(|o| o.contains(e.name.as_str())))
        .map(|e| {
            let why = e.status_reason.as_deref().unwrap_or("-");
            format!("{} {} {}: {why}", e.name, e.desired.as_str(), e.status.as_str())
        })
        .collect();
    let (t, n) = (tagged.len(), named.len());
    Invariant {
        name,
        holds: outliving.is_empty(),
        detail: format!(
            "{t} tagged, {n} named; without a live environment: {outliving:?}; their environments: {states:?}"
        ),
    }
}

/// `(ARN, its ephemera:environment tag)` of everything tagged as the platform's.
async fn tagged_resources(p: &Platform) -> anyhow::Result<Vec<(String, String)>> {
    let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
        .key("ephemera:managed-by")
        .values("ephemera")
        .build();
    let mut pages = p.clients.tagging().get_resources().tag_filters(filter).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for r in page?.resource_tag_mapping_list.unwrap_or_default() {
            let env = r.tags().iter().find(|t| t.key() == "ephemera:environment").map(|t| t.value().to_owned());
            out.push((r.resource_arn().unwrap_or_default().to_owned(), env.unwrap_or_default()));
        }
    }
    Ok(out)
}

/// Every resource of every catalogued kind named like an environment's.
async fn named_resources(p: &Platform) -> anyhow::Result<Vec<crate::resources::Named>> {
    let services = crate::resources::Services::new(p.clients.sdk());
    let mut out = services.named("ephemera-pr-").await?;
    out.extend(services.named("ephemera-dev-").await?);
    Ok(out)
}

/// Delivers each event as GitHub would, four at a time, redelivering on failure.
async fn deliver_all(p: &Platform, deliveries: Vec<(String, Vec<u8>)>) {
    let mut tasks = tokio::task::JoinSet::new();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let http = p.http.clone();
    let url = format!("{}/webhooks/github", p.base_url);
    for (id, body) in deliveries {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let sig = crate::sign(crate::SECRET.as_bytes(), &body);
            // GitHub redelivers on failure; so does this.
            for _ in 0..100 {
                let res = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-event", "pull_request")
                    .header("x-github-delivery", &id)
                    .header("x-hub-signature-256", &sig)
                    .body(body.clone())
                    .send()
                    .await;
                match res.map(|r| r.status().as_u16()) {
                    Ok(200 | 202) => return,
                    Ok(s) if s < 500 => panic!("delivery {id} refused with {s}"),
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            panic!("delivery {id} never accepted");
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The live stacks are exactly the open, non-fork pull requests' environments.
fn live_stacks_invariant(
    rows: &[ephemera_domain::Environment],
    live: &BTreeSet<String>,
    expected: &BTreeSet<String>,
) -> Invariant {
    // Each name in a difference, with what the registry says of it.
    let diff = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
        a.difference(b)
            .map(|stack| {
                let row = rows.iter().find(|e| e.stack_name().as_str() == stack);
                match row {
                    Some(e) => format!(
                        "{stack} ({} {}, gen {}: {})",
                        e.desired.as_str(),
                        e.status.as_str(),
                        e.generation,
                        e.status_reason.as_deref().unwrap_or("-")
                    ),
                    None => format!("{stack} (not in the registry)"),
                }
            })
            .collect::<Vec<_>>()
    };
    Invariant {
        name: "live stacks = open non-fork pull requests",
        holds: live == expected,
        detail: format!(
            "{} live, {} expected; unexpected {:?}, missing {:?}",
            live.len(),
            expected.len(),
            diff(live, expected),
            diff(expected, live)
        ),
    }
}

/// Every open, non-fork pull request's environment records GitHub's head: pushes never
/// delivered were caught up.
fn at_github_heads(rows: &[ephemera_domain::Environment], prs: &[Pr]) -> Invariant {
    let behind: Vec<String> = prs
        .iter()
        .filter(|pr| pr.open && !pr.fork)
        .filter_map(|pr| {
            let name = env_name(pr);
            let recorded = rows.iter().find(|e| e.name.as_str() == name).and_then(|e| e.head_commit.clone());
            (recorded.as_deref() != Some(pr.head.as_str()))
                .then(|| format!("{name} at {recorded:?}, GitHub at {}", pr.head))
        })
        .collect();
    Invariant {
        name: "open pull requests' environments are at GitHub's head",
        holds: behind.is_empty(),
        detail: format!("behind: {behind:?}"),
    }
}

/// No pull request has more than one Ephemera comment.
fn one_comment_each(gh: &FakeGitHub) -> Invariant {
    let comments: BTreeMap<u64, usize> = {
        let s = gh.state();
        let mut m = BTreeMap::new();
        for (issue, body) in s.comments.values() {
            if body.contains(ephemera_app::feedback::MARKER) {
                *m.entry(*issue).or_insert(0) += 1;
            }
        }
        m
    };
    // Issue numbers repeat across repositories in the fake (it keys comments by number only),
    // and every repository's pull requests are numbered apart here, so one per number is right.
    let duplicated: Vec<u64> = comments.iter().filter(|(_, n)| **n > 1).map(|(k, _)| *k).collect();
    Invariant {
        name: "no pull request comment duplicated",
        holds: duplicated.is_empty(),
        detail: format!("{} pull requests with a comment; duplicated: {duplicated:?}", comments.len()),
    }
}

/// Every preview holds one resource of every type the blueprint policy allows.
async fn upload_every_type_blueprint(p: &Platform) {
    let every_type = std::fs::read_to_string(crate::workspace_root().join("tests/fixtures/every-type.yaml"))
        .expect("tests/fixtures/every-type.yaml");
    let store = ephemera_aws::S3Store::new(p.clients.s3().clone());
    ephemera_app::ports::ObjectStore::put_text(&store, &p.config.shared.bucket, "blueprints/default.yaml", &every_type)
        .await
        .expect("the every-type blueprint is uploaded");
}

/// Waits until every environment has converged, or `within` has passed.
async fn settle(registry: &ephemera_aws::DynamoRegistry, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let all = registry.list().await.unwrap_or_default();
        if !all.is_empty() && all.iter().all(|e| e.is_converged()) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the reaper's sweep did, and what the proxy saw.
struct Swept {
    actions: usize,
    errors: Vec<String>,
    injected: u64,
    /// Stacks or tables created more than once.
    repeated: Vec<String>,
    /// Missed closes and pushes the sweep caught up on.
    caught_up: (usize, usize),
}

impl Swept {
    /// Adds a later sweep's.
    fn add(&mut self, later: Swept) {
        self.actions += later.actions;
        self.errors.extend(later.errors);
        self.injected = later.injected;
        self.repeated = later.repeated;
        self.caught_up = (self.caught_up.0 + later.caught_up.0, self.caught_up.1 + later.caught_up.1);
    }
}

/// The reaper, through the faults too.
async fn sweep_through_faults(p: &Platform, proxy: &FaultProxy) -> Swept {
    // The platform's function clients go through the proxy.
    let summary =
        p.reaper_catching_up(platform::clock()).await.sweep(ephemera_app::reaper::SweepOptions::default()).await;
    let (actions, mut errors): (usize, Vec<String>) = match &summary {
        Ok(s) => (s.planned.len(), s.errors.iter().map(|f| format!("{}: {}", f.target, f.error)).collect()),
        Err(e) => (0, vec![format!("the sweep failed: {e}")]),
    };
    let github = summary.as_ref().ok().and_then(|s| s.github.clone()).unwrap_or_default();
    errors.extend(github.errors.iter().map(|e| format!("catching up: {e}")));
    let caught_up = (github.missed_closes.len(), github.missed_pushes.len());
    let (injected, repeated) = {
        let s = proxy.stats();
        let repeated: Vec<String> = s
            .succeeded
            .iter()
            .filter(|(k, n)| **n > 1 && (k.starts_with("CreateStack") || k.starts_with("CreateTable")))
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        (s.throttled + s.server_errors + s.dropped, repeated)
    };
    Swept { actions, errors, injected, repeated, caught_up }
}
