//! Deploy targets: environments placed in sandbox accounts by room, made, changed and deleted
//! there; an account that cannot be reached fails the environment or the sweep of that account,
//! and nothing else.

use chrono::Duration;
use ephemera_app::memory::FakeStack;
use ephemera_app::provisioner::{Outcome, ProvisionerSettings};
use ephemera_app::reaper::SweepOptions;
use ephemera_app::selfservice::SelfServiceSettings;
use ephemera_domain::placement::{Routes, Target};
use ephemera_domain::{EnvironmentName, RepoName, StackName, Status};
use serde_json::json;

use crate::harness::*;
use ephemera_app::ports::Ledger;

const A: &str = "222222222222";
const B: &str = "333333333333";

fn target(account: &str) -> Target {
    Target::parse(&format!("arn:aws:iam::{account}:role/ephemera-deploy")).unwrap()
}

fn routes(accounts: &[&str], ceiling: u64) -> Routes {
    Routes { default: accounts.iter().map(|a| target(a)).collect(), ceiling, ..Default::default() }
}

fn settings(routes: Routes) -> ProvisionerSettings {
    ProvisionerSettings { routes, ..World::provisioner_settings() }
}

/// acme/todo-app#`n`, opened.
async fn open(w: &World, n: u64) -> EnvironmentName {
    let body = edit(fixtures::OPENED, &[("number", json!(n)), ("pull_request.number", json!(n))]);
    w.deliver("pull_request", &format!("d-open-{n}"), &body).await.unwrap();
    EnvironmentName::for_pull_request(&RepoName::parse("acme/todo-app").unwrap(), n).unwrap()
}

async fn close(w: &World, n: u64) {
    let body = edit(fixtures::CLOSED, &[("number", json!(n)), ("pull_request.number", json!(n))]);
    w.deliver("pull_request", &format!("d-close-{n}"), &body).await.unwrap();
}

fn stack_in(w: &World, account: &str, env: &EnvironmentName) -> Option<FakeStack> {
    w.sites.account(account).stacks.get(&env.stack_name())
}

#[tokio::test]
async fn a_pull_request_environment_lives_and_dies_in_its_deploy_account() {
    let w = World::new();
    let p = w.provisioner_with(settings(routes(&[A], 10)));
    let env = open(&w, 7).await;
    assert_eq!(p.reconcile(&env).await.unwrap(), Outcome::Settled(Status::Ready));
    let e = w.env(env.as_str());
    assert_eq!((e.account.as_deref(), e.region.as_deref()), (Some(A), Some("us-east-1")));
    assert!(stack_in(&w, A, &env).is_some(), "made in the deploy account");
    assert!(w.stacks.get(&env.stack_name()).is_none(), "nothing in the platform's account");
    assert_eq!(w.registry.totals().await.unwrap().get("account:222222222222"), Some(&1));

    close(&w, 7).await;
    assert_eq!(p.reconcile(&env).await.unwrap(), Outcome::Settled(Status::Deleted));
    let deleted = stack_in(&w, A, &env).map(|s| s.status);
    assert!(deleted.as_deref().is_none_or(|s| s == "DELETE_COMPLETE"), "{deleted:?}");
    assert_eq!(w.registry.totals().await.unwrap().get("account:222222222222"), Some(&0), "its slot given back");
}

#[tokio::test]
async fn a_pool_places_each_new_environment_where_there_is_most_room() {
    let w = World::new();
    let p = w.provisioner_with(settings(routes(&[A, B], 2)));
    let mut placed = Vec::new();
    for n in 1..=5 {
        let env = open(&w, n).await;
        let outcome = p.reconcile(&env).await.unwrap();
        placed.push((outcome, w.env(env.as_str()).account));
    }
    let ready = |a: &str| (Outcome::Settled(Status::Ready), Some(a.to_owned()));
    assert_eq!(placed[..4], [ready(A), ready(B), ready(A), ready(B)]);
    assert_eq!(placed[4], (Outcome::Queued, None), "both accounts are at the ceiling");
    let queued = w.env(open(&w, 5).await.as_str());
    assert!(queued.status_reason.unwrap().contains("every account of its pool holds 2 environments"));
    // Room is made in B: the queued one goes there, and stays there.
    close(&w, 2).await;
    let second = EnvironmentName::for_pull_request(&RepoName::parse("acme/todo-app").unwrap(), 2).unwrap();
    assert_eq!(p.reconcile(&second).await.unwrap(), Outcome::Settled(Status::Deleted));
    let fifth = EnvironmentName::for_pull_request(&RepoName::parse("acme/todo-app").unwrap(), 5).unwrap();
    assert_eq!(p.reconcile(&fifth).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!(w.env(fifth.as_str()).account.as_deref(), Some(B));
    assert!(stack_in(&w, B, &fifth).is_some());
}

#[tokio::test]
async fn a_target_that_cannot_be_assumed_fails_the_environment_with_the_reason() {
    let w = World::new();
    w.sites.refuse(A);
    let p = w.provisioner_with(settings(routes(&[A], 10)));
    let env = open(&w, 7).await;
    assert_eq!(p.reconcile(&env).await.unwrap(), Outcome::Settled(Status::Failed));
    let reason = w.env(env.as_str()).status_reason.unwrap();
    assert!(reason.starts_with("cannot act in account 222222222222 as arn:aws:iam::222222222222:role/ephemera-deploy"));
    assert!(reason.contains("AccessDenied"), "{reason}");
    assert_eq!(w.registry.totals().await.unwrap().get("live"), Some(&0), "nothing is held for it");
}

#[tokio::test]
async fn the_sweep_covers_every_account_and_reports_the_one_it_cannot_reach() {
    let w = World::new();
    let reaper = ephemera_app::reaper::Reaper {
        settings: ephemera_app::reaper::ReaperSettings { routes: routes(&[A, B], 10), ..World::reaper_settings() },
        ..w.reaper()
    };
    // An orphan stack in each deploy account, older than the grace period.
    let old = w.now() - Duration::hours(1);
    for account in [A, B] {
        let orphan = FakeStack::managed("pr-9-acme-todo-app-6acfdc9491", "CREATE_COMPLETE").updated_at(old);
        w.sites.account(account).stacks.insert("ephemera-pr-9-acme-todo-app-6acfdc9491", orphan);
    }
    w.sites.refuse(A);
    let s = reaper.sweep(SweepOptions { dry_run: false, light: false }).await.unwrap();
    let accounts: Vec<(&str, bool)> = s.accounts.iter().map(|a| (a.account.as_str(), a.error.is_some())).collect();
    assert_eq!(accounts, [(A, true), ("platform", false), (B, false)]);
    assert_eq!((s.errors[0].action, s.errors[0].target.as_str()), ("reach account", A));
    let orphan = StackName::environment("ephemera-pr-9-acme-todo-app-6acfdc9491").unwrap();
    let gone = |account: &str| stack_in(&w, account, &orphan).is_none_or(|s| s.status == "DELETE_COMPLETE");
    assert!(gone(B), "swept in the account it could reach");
    assert!(!gone(A), "left where it could not look");
}

#[tokio::test]
async fn developer_environments_go_to_their_own_account() {
    let w = World::new();
    let routes = Routes { dev: vec![target(B)], ..routes(&[A], 10) };
    let p = w.provisioner_with(settings(routes.clone()));
    let s = w.selfservice_with(SelfServiceSettings { routes, ..World::selfservice_settings() });
    let alice = s.caller("arn:aws:iam::123456789012:user/alice").unwrap();
    let view = s.create(&alice, Default::default()).await.unwrap();
    let env = EnvironmentName::parse(&view.name).unwrap();
    assert_eq!(p.reconcile(&env).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!(w.env(env.as_str()).account.as_deref(), Some(B));
    assert!(stack_in(&w, B, &env).is_some() && stack_in(&w, A, &env).is_none());
    // Its client key is made on its API, in its account.
    w.registry.edit(&env, |e| {
        e.outputs.insert("GraphQLUrl".into(), "https://abc.appsync-api.us-east-1.amazonaws.com/graphql".into());
        e.outputs.insert("GraphQLApiId".into(), "abc".into());
    });
    s.config(&alice, env.as_str()).await.unwrap();
    assert_eq!(w.sites.account(B).keys.made().len(), 1);
    assert!(w.keys.made().is_empty(), "nothing made in the platform's account");
}

#[tokio::test]
async fn roles_an_environment_creates_in_a_deploy_account_are_bounded_by_that_accounts_boundary() {
    let w = World::new();
    let role = "  Api:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Statement:\n          - { Effect: Allow, Principal: { Service: appsync.amazonaws.com }, Action: sts:AssumeRole }\n";
    w.store.put(BUCKET, "blueprints/default.yaml", &format!("{BLUEPRINT}{role}"));
    let here = ProvisionerSettings {
        role_boundary_arn: Some("arn:aws:iam::123456789012:policy/platform-boundary".into()),
        ..World::provisioner_settings()
    };
    let p = w.provisioner_with(ProvisionerSettings { routes: routes(&[A], 10), ..here });
    let env = open(&w, 7).await;
    assert_eq!(p.reconcile(&env).await.unwrap(), Outcome::Settled(Status::Ready));
    let body = stack_in(&w, A, &env).unwrap().request.unwrap().template_body;
    assert!(body.contains("arn:aws:iam::222222222222:policy/ephemera-environment-boundary"), "{body}");
    assert!(!body.contains("platform-boundary"));
}

#[tokio::test]
async fn a_claim_taken_before_a_crash_keeps_the_environment_in_its_account() {
    let w = World::new();
    let env = open(&w, 7).await;
    // The claim for account B was taken, then the provisioner died before recording the place.
    let held = ephemera_domain::admission::claim(&w.env(env.as_str()), Default::default(), None, 0.6, Some((B, 10)));
    w.registry.claim(&env, &held).await.unwrap();
    let p = w.provisioner_with(settings(routes(&[A, B], 10)));
    assert_eq!(p.reconcile(&env).await.unwrap(), Outcome::Settled(Status::Ready));
    assert_eq!(w.env(env.as_str()).account.as_deref(), Some(B), "A had more room, but B holds its slot");
    assert!(stack_in(&w, B, &env).is_some() && stack_in(&w, A, &env).is_none());
    let totals = w.registry.totals().await.unwrap();
    assert_eq!((totals.get("account:333333333333"), totals.get("live")), (Some(&1), Some(&1)), "counted once");
}

#[tokio::test]
async fn a_new_life_is_placed_anew() {
    let w = World::new();
    let env = open(&w, 7).await;
    w.provisioner_with(settings(routes(&[A], 10))).reconcile(&env).await.unwrap();
    close(&w, 7).await;
    w.provisioner_with(settings(routes(&[A], 10))).reconcile(&env).await.unwrap();
    assert_eq!(w.env(env.as_str()).status, Status::Deleted);
    // A is drained: it is no longer where new environments go. The reopened pull request goes to B.
    w.clock.advance(Duration::minutes(1));
    let reopened = edit(fixtures::REOPENED, &[("number", json!(7)), ("pull_request.number", json!(7))]);
    w.deliver("pull_request", "d-reopen-7", &reopened).await.unwrap();
    let p = w.provisioner_with(settings(routes(&[B], 10)));
    assert_eq!(p.reconcile(&env).await.unwrap(), Outcome::Settled(Status::Ready), "{:?}", w.env(env.as_str()));
    assert_eq!(w.env(env.as_str()).account.as_deref(), Some(B));
}

#[tokio::test]
async fn a_deploy_target_in_the_platforms_own_account_is_swept_once() {
    let w = World::new();
    let reaper = ephemera_app::reaper::Reaper {
        settings: ephemera_app::reaper::ReaperSettings {
            routes: routes(&["123456789012", A], 10),
            ..World::reaper_settings()
        },
        ..w.reaper()
    };
    let s = reaper.sweep(SweepOptions { dry_run: true, light: false }).await.unwrap();
    let accounts: Vec<&str> = s.accounts.iter().map(|a| a.account.as_str()).collect();
    assert_eq!(accounts, ["platform", A], "twice, each pass would take the other's stacks for orphans");
}

#[tokio::test]
async fn without_deploy_targets_an_environment_is_recorded_in_the_platforms_account_and_region() {
    let w = World::new();
    let env = w.ready_pr().await;
    let e = w.env(env.name.as_str());
    assert_eq!((e.account, e.region.as_deref()), (None, Some("us-east-1")));
}
