//! Zero leaks, type by type: for every kind in the resource catalogue (so every type the
//! blueprint policy allows, parts included), a leftover tagged and named for a closed
//! environment is deleted by one sweep, with its parts (and so is one whose generated name cuts
//! the stack's name short); the same kind belonging to a live environment, untagged, or named
//! for something else is kept.
//!
//! Where the emulator differs from AWS: its Tagging API lists neither IAM roles nor Cognito
//! pools (nor does AWS list roles); the catalogue finds those kinds by their own listings on
//! both. Its Lambda does not run functions, so the runtime log group Lambda would make at the
//! first invocation is made here directly, untagged, as Lambda makes it.

use std::sync::Arc;

use chrono::{Duration, Utc};
use ephemera_app::ports::{registry_traits::*, GoDown, Placement, Progress, Stamp};
use ephemera_app::reaper::SweepOptions;
use ephemera_domain::catalogue::{Kind, LAMBDA_LOG_PREFIX};
use ephemera_domain::{EnvironmentName, RepoName, Status};
use ephemera_tests::resources::Services;
use ephemera_tests::Platform;
use ephemera_wiring::platform;
use serde_json::json;

/// A registered environment: up with a stack (live), or closed with its stack gone.
async fn environment(p: &Platform, number: u64, live: bool) -> String {
    let registry = p.registry();
    let repo = RepoName::parse("acme/every-type").unwrap();
    let env = EnvironmentName::for_pull_request(&repo, number).unwrap();
    let at = Utc::now();
    let change = ephemera_tests::opened_change(&repo, number, &env, Duration::days(3));
    registry.apply_change(&format!("d-{number}"), &change).await.unwrap();
    if live {
        let ready = Progress { status: Some(Status::Ready), settled: true, ..Default::default() };
        registry.record_progress(&env, Stamp::new(1, at), &ready).await.unwrap();
        let queue = json!({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}).to_string();
        let tags = [("ephemera:managed-by", "ephemera"), ("ephemera:environment", env.as_str())]
            .map(|(k, v)| aws_sdk_cloudformation::types::Tag::builder().key(k).value(v).build());
        let cfn = p.clients.cloudformation();
        cfn.create_stack()
            .stack_name(env.stack_name().as_str())
            .template_body(queue)
            .set_tags(Some(tags.to_vec()))
            .send()
            .await
            .unwrap();
    } else {
        assert!(registry.go_down(&env, Stamp::new(1, at), GoDown::Retire, "closed").await.unwrap());
    }
    env.to_string()
}

/// One kind: four of it, one sweep, only the closed environment's own one gone.
async fn one_sweep_deletes_only_the_closed_environments(kind: Kind) {
    let p = Platform::start().await;
    let closed = environment(&p, 1, false).await;
    let live = environment(&p, 2, true).await;
    let services = Services::new(p.clients.sdk());
    let suffix = format!("{kind:?}").to_ascii_lowercase();
    let name = |env: &str, what: &str| format!("ephemera-{env}-{suffix}-{what}");
    // An untagged log group is owned by its name only where Lambda makes one.
    let untagged = match kind {
        Kind::LogGroup => format!("{LAMBDA_LOG_PREFIX}{}", name(&closed, "untagged")),
        _ => name(&closed, "untagged"),
    };
    // A generated name with the stack's name cut short, as CloudFormation writes a long one.
    let cut = format!("{}-{suffix}-cut", &format!("ephemera-{closed}")[..ephemera_domain::catalogue::MIN_CUT + 4]);
    let cases = [
        (name(&closed, "left"), Some(closed.as_str()), true),
        // Owned by the tag and the cut name; a managed policy cannot be tagged, and by its
        // name alone a cut is not enough.
        (cut, Some(closed.as_str()), kind != Kind::ManagedPolicy),
        (name(&live, "live"), Some(live.as_str()), false),
        (untagged, None, kind.entry().owned_by_name),
        (format!("payments-{suffix}"), Some(closed.as_str()), false),
    ];
    for (name, env, _) in &cases {
        services.make(kind, name, *env).await.unwrap();
    }

    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, Arc::new(Later));
    let summary = reaper.sweep(SweepOptions::default()).await.unwrap();
    assert!(summary.errors.is_empty(), "{kind:?}: {:?}", summary.errors);

    for (name, env, deleted) in &cases {
        let exists = services.exists(kind, name).await.unwrap();
        assert_eq!(!exists, *deleted, "{kind:?} {name} (tagged for {env:?}): deleted should be {deleted}");
    }
    let (gone, kept) = (&cases[0].0, &cases[2].0);
    assert!(summary.deleted_by_type.get(kind.resource_type()).is_some_and(|n| *n >= 1), "{summary:?}");
    match kind {
        Kind::Function => {
            assert_eq!(services.mappings(gone).await.unwrap(), 0, "its event source mapping goes first");
            let logs = |f: &str| format!("{LAMBDA_LOG_PREFIX}{f}");
            assert!(
                !services.exists(Kind::LogGroup, &logs(gone)).await.unwrap(),
                "its runtime log group goes after it"
            );
            assert!(services.exists(Kind::LogGroup, &logs(kept)).await.unwrap(), "a live function's log group stays");
            assert_eq!(services.mappings(kept).await.unwrap(), 1);
        }
        Kind::GraphQlApi => {
            // The deleted APIs' log groups went after them; the others' stay.
            assert!(services.api_log_group_exists(kept).await.unwrap(), "a live API's log group stays");
            let kept = cases.iter().filter(|(_, _, deleted)| !deleted).count();
            assert_eq!(services.api_log_groups().await.unwrap(), kept, "one log group per API left");
        }
        Kind::Topic => {
            assert_eq!(services.subscriptions(gone).await.unwrap(), 0, "its subscription goes with it");
            assert_eq!(services.subscriptions(kept).await.unwrap(), 1);
        }
        _ => {}
    }
    p.stop().await;
}

/// The reaper's clock: an hour on, so nothing is mid-provisioning.
struct Later;
impl ephemera_app::Clock for Later {
    fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now() + Duration::hours(1)
    }
}

macro_rules! every_kind {
    ($($test:ident => $kind:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            one_sweep_deletes_only_the_closed_environments(Kind::$kind).await;
        }
    )*
    #[test]
    fn every_kind_in_the_catalogue_has_its_test() {
        let tested = [$(Kind::$kind),*];
        for e in ephemera_domain::catalogue::CATALOGUE {
            assert!(tested.contains(&e.kind), "{:?} has no test here", e.kind);
        }
    }};
}

every_kind! {
    a_function_with_its_mapping_and_runtime_log_group => Function,
    a_graphql_api_with_its_key => GraphQlApi,
    an_identity_pool => IdentityPool,
    a_user_pool_with_its_domain => UserPool,
    a_topic_with_its_subscription => Topic,
    a_queue => Queue,
    a_secret => Secret,
    a_table => Table,
    a_versioned_bucket_with_objects => Bucket,
    a_role_with_inline_and_attached_policies_and_an_instance_profile => Role,
    a_managed_policy_with_versions => ManagedPolicy,
    a_log_group => LogGroup,
}

/// Lambda makes `/aws/lambda/<function>` again whenever a function runs, untagged, even after
/// its stack went (a last invocation in flight): the sweep removes a closed environment's and
/// keeps a live one's. (Names one environment's name extends are the domain tests' business.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambdas_untagged_runtime_log_groups_go_with_their_environment_only() {
    let p = Platform::start().await;
    let closed = environment(&p, 1, false).await;
    let live = environment(&p, 2, true).await;
    let services = Services::new(p.clients.sdk());
    let group = |env: &str| format!("{LAMBDA_LOG_PREFIX}ephemera-{env}-Resolver-1A2B3C");
    for name in [group(&closed), group(&live)] {
        services.make(Kind::LogGroup, &name, None).await.unwrap();
    }
    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, Arc::new(Later));
    let summary = reaper.sweep(SweepOptions::default()).await.unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert!(!services.exists(Kind::LogGroup, &group(&closed)).await.unwrap(), "{:?}", summary.planned);
    assert!(services.exists(Kind::LogGroup, &group(&live)).await.unwrap());
    assert_eq!(summary.deleted_by_type.get("AWS::Logs::LogGroup"), Some(&1));
    p.stop().await;
}

/// In a sandbox account the sweep deletes a closed environment's leftovers of every kind too,
/// as the account's deploy role: dropping the platform checks each of those calls against the
/// role's sweep policies (`infra/target-account.yaml`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_of_a_sandbox_account_deletes_every_kind_a_closed_environment_left() {
    const ACCOUNT: &str = "222222222222";
    let role = format!("arn:aws:iam::{ACCOUNT}:role/ephemera-deploy");
    let p = Platform::start_with(&[("EPHEMERA_DEPLOY_ROLE_ARN", &role)]).await;
    // An environment that lived in the sandbox account, then closed: what is named for it there
    // is its own, tagged or not.
    let (registry, at) = (p.registry(), Utc::now());
    let repo = RepoName::parse("acme/every-type").unwrap();
    let env = EnvironmentName::for_pull_request(&repo, 1).unwrap();
    let change = ephemera_tests::opened_change(&repo, 1, &env, Duration::days(3));
    registry.apply_change("d-1", &change).await.unwrap();
    let placement = Some(Placement { account: Some(ACCOUNT.into()), region: ephemera_tests::REGION.into() });
    let placed = Progress { status: Some(Status::Ready), settled: true, placement, ..Default::default() };
    registry.record_progress(&env, Stamp::new(1, at), &placed).await.unwrap();
    assert!(registry.go_down(&env, Stamp::new(1, at + Duration::seconds(1)), GoDown::Retire, "closed").await.unwrap());
    let closed = env.to_string();
    let services = Services::new(p.clients_in(ACCOUNT).await.sdk());
    let name = |kind: Kind| format!("ephemera-{closed}-{kind:?}-left").to_ascii_lowercase();
    let kinds: Vec<Kind> = ephemera_domain::catalogue::CATALOGUE.iter().map(|e| e.kind).collect();
    for kind in &kinds {
        services.make(*kind, &name(*kind), Some(&closed)).await.unwrap();
    }
    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, Arc::new(Later));
    let summary = reaper.sweep(SweepOptions::default()).await.unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    for kind in kinds {
        assert!(
            !services.exists(kind, &name(kind)).await.unwrap(),
            "{kind:?} left in {ACCOUNT}: {:?}",
            summary.planned
        );
    }
    p.stop().await;
}

/// The every-type blueprint (also the chaos run's) holds every type the policy allows.
#[test]
fn the_every_type_blueprint_holds_every_allowed_type() {
    let source =
        std::fs::read_to_string(ephemera_tests::workspace_root().join("tests/fixtures/every-type.yaml")).unwrap();
    let doc = ephemera_app::template::parse(&source).unwrap();
    let types: std::collections::BTreeSet<&str> =
        doc["Resources"].as_object().unwrap().values().filter_map(|r| r["Type"].as_str()).collect();
    for t in ephemera_domain::blueprint::DEFAULT_TYPES {
        assert!(types.contains(t), "{t} is missing from tests/fixtures/every-type.yaml");
    }
    assert!(ephemera_app::template::check(&source, &Default::default()).is_ok());
}

/// A pull request whose preview holds one resource of every allowed type: open, close, sweep
/// (after Lambda made its function's log group once more), and nothing named for it is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_of_every_type_leaves_nothing_behind() {
    use ephemera_tests::fixtures::{CLOSED, ENVIRONMENT, OPENED};
    let p = Platform::start().await;
    let source =
        std::fs::read_to_string(ephemera_tests::workspace_root().join("tests/fixtures/every-type.yaml")).unwrap();
    let store = ephemera_aws::S3Store::new(p.clients.s3().clone());
    store.put_text(&p.config.shared.bucket, "blueprints/acme/todo-app.yaml", &source).await.unwrap();
    let services = Services::new(p.clients.sdk());
    let stack = format!("ephemera-{ENVIRONMENT}");

    p.deliver("pull_request", "d-open", OPENED).await;
    let env = p.wait_for(ENVIRONMENT, Status::Ready).await;
    assert!(env.status_reason.is_none(), "{env:?}");
    // Generated names may cut the stack's name short (a bucket's).
    let prefix = &stack[..ephemera_domain::catalogue::MIN_CUT];
    let made = services.named(prefix).await.unwrap();
    let runtime_logs = format!("{LAMBDA_LOG_PREFIX}{stack}-worker");
    assert!(made.iter().any(|n| n.name == runtime_logs), "the worker's log group is part of the stack: {made:?}");
    // What the emulator's CloudFormation makes (it skips AppSync, Cognito and secrets).
    let kinds: std::collections::BTreeSet<Kind> = made.iter().map(|n| n.kind).collect();
    use Kind::*;
    for kind in [Function, Topic, Queue, Table, Bucket, Role, ManagedPolicy, LogGroup] {
        assert!(kinds.contains(&kind), "{kind:?} not made: {made:?}");
    }

    p.deliver("pull_request", "d-close", CLOSED).await;
    p.wait_for(ENVIRONMENT, Status::Deleted).await;
    // A last invocation still in flight: Lambda makes the log group again, untagged.
    services.make(Kind::LogGroup, &runtime_logs, None).await.unwrap();
    let reaper = platform::reaper(&p.config.shared, &p.config.reaper, &p.functions.reaper, Arc::new(Later));
    let summary = reaper.sweep(SweepOptions::default()).await.unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    let left = services.named(prefix).await.unwrap();
    assert!(left.is_empty(), "made {}, left {left:?}", made.len());
    p.stop().await;
}

/// The README's table of what the reaper finds and deletes is the catalogue's, row by row, and
/// names every allowed type.
#[test]
fn the_readme_lists_every_type_the_reaper_deletes() {
    let readme = std::fs::read_to_string(ephemera_tests::workspace_root().join("README.md")).unwrap();
    let start = readme.find("**Every type, found and deleted.**").expect("the README's table of every type");
    let section = &readme[start..start + readme[start..].find("**Safety.**").unwrap()];
    let rows: Vec<String> = ephemera_domain::catalogue::CATALOGUE
        .iter()
        .map(|e| {
            let parts: Vec<String> = e.parts.iter().map(|p| format!("`{p}`")).collect();
            let parts = if parts.is_empty() { " ".to_owned() } else { format!(" {} ", parts.join(", ")) };
            format!("| `{}` |{parts}| {} | {} | ${:.2} |", e.resource_type, e.found_by, e.deletion, e.monthly_usd)
        })
        .collect();
    let missing: Vec<&String> = rows.iter().filter(|r| !section.contains(r.as_str())).collect();
    assert!(
        missing.is_empty(),
        "README.md's table of what the reaper deletes should have these rows:\n{}",
        rows.join("\n")
    );
    for t in ephemera_domain::blueprint::DEFAULT_TYPES {
        assert!(section.contains(&format!("`{t}`")), "README.md's table of what the reaper deletes misses {t}");
    }
}
