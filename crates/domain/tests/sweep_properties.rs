//! Properties of the sweep's resource decisions, over random worlds of environments whose names
//! extend one another (`pr-1-a-b`, `pr-1-a-b-c`, ...) in every state, and resources of every
//! kind, tagged or not, named for any of them, cut short, or foreign:
//! - nothing tagged for a live environment, or being provisioned, or preserved, is deleted;
//! - nothing untagged is deleted that any live or wanted environment could own by its name;
//! - what is tagged for a gone environment and named for it alone is deleted.

use chrono::{DateTime, Duration, Utc};
use ephemera_domain::catalogue::{self, Kind, CATALOGUE};
use ephemera_domain::sweep::{plan, Action, ResourceInfo, StackInfo, SweepPolicy};
use ephemera_domain::{Desired, Environment, EnvironmentKind, EnvironmentName, StackStatus, Status};
use proptest::prelude::*;

const NAMES: [&str; 6] = ["pr-1-a-b", "pr-1-a-b-c", "pr-1-a-b-c-d", "dev-kyle", "dev-kyle-api", "pr-2-x-y"];
const SUFFIXES: [&str; 5] = ["", "-fn", "-c", "-api", "-zz"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Unknown,
    Gone,
    Live,
    Preserved,
    Provisioning,
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z").unwrap().to_utc()
}

fn row(name: &str, state: State) -> Option<Environment> {
    let (desired, status) = match state {
        State::Unknown => return None,
        State::Gone => (Desired::Down, Status::Deleted),
        State::Live | State::Preserved => (Desired::Up, Status::Ready),
        State::Provisioning => (Desired::Up, Status::Creating),
    };
    let at = now() - Duration::minutes(30);
    let name = EnvironmentName::parse(name).unwrap();
    let mut e = Environment::new(name, EnvironmentKind::Pr, "o", desired, at, at + Duration::days(3));
    (e.status, e.preserved, e.updated_at) = (status, state == State::Preserved, at);
    e.observed_generation = e.generation;
    Some(e)
}

fn stack(name: &str) -> StackInfo {
    let tags = vec![("ephemera:managed-by".into(), "ephemera".into()), ("ephemera:environment".into(), name.into())];
    let id = format!("arn:aws:cloudformation:us-east-1:1:stack/ephemera-{name}/x");
    StackInfo { name: format!("ephemera-{name}"), id, status: StackStatus::CreateComplete, updated: now(), tags }
}

/// The `i`th resource: of `kind`, named `name`, tagged for `tag` if any.
fn resource(i: usize, kind: Kind, name: &str, tag: Option<&str>) -> ResourceInfo {
    let entry = kind.entry();
    let tags = tag
        .map(|e| vec![("ephemera:managed-by".into(), "ephemera".into()), ("ephemera:environment".into(), e.into())])
        .unwrap_or_default();
    let (arn, listed) = match kind {
        Kind::Bucket => (format!("arn:aws:s3:::{}", name.to_ascii_lowercase()), None),
        Kind::Role | Kind::ManagedPolicy => (format!("arn:aws:iam::1:{}{name}", entry.arn_prefix), None),
        Kind::Secret => (format!("arn:aws:secretsmanager:us-east-1:1:secret:{name}-AbCdEf"), None),
        Kind::GraphQlApi | Kind::UserPool | Kind::IdentityPool => {
            (format!("arn:aws:{}:us-east-1:1:{}id{i}", entry.service, entry.arn_prefix), Some(name.to_owned()))
        }
        _ => (format!("arn:aws:{}:us-east-1:1:{}{name}", entry.service, entry.arn_prefix), None),
    };
    ResourceInfo { arn, name: listed, tags }
}

/// A resource drawn: its kind, the environment its name starts with, the suffix, whether (a log
/// group) it is under `/aws/lambda/`, and the environment it is tagged for, if any (indexes).
type Spec = (usize, usize, usize, bool, Option<usize>);

fn world() -> impl Strategy<Value = (Vec<State>, Vec<Spec>)> {
    let state = prop_oneof![
        Just(State::Unknown),
        Just(State::Gone),
        Just(State::Live),
        Just(State::Preserved),
        Just(State::Provisioning)
    ];
    let res =
        (0..CATALOGUE.len(), 0..NAMES.len(), 0..SUFFIXES.len(), any::<bool>(), proptest::option::of(0..NAMES.len()));
    (proptest::collection::vec(state, NAMES.len()), proptest::collection::vec(res, 1..12))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn the_sweep_deletes_only_what_no_wanted_environment_could_own((states, specs) in world()) {
        let envs: Vec<Environment> = NAMES.iter().zip(&states).filter_map(|(n, s)| row(n, *s)).collect();
        let stacks: Vec<StackInfo> =
            NAMES.iter().zip(&states).filter(|(_, s)| matches!(s, State::Live | State::Preserved)).map(|(n, _)| stack(n)).collect();
        let resources: Vec<ResourceInfo> = specs
            .iter()
            .enumerate()
            .map(|(i, &(k, n, suffix, runtime, tag))| {
                let kind = CATALOGUE[k].kind;
                let own = format!("ephemera-{}{}", NAMES[n], SUFFIXES[suffix]);
                let name = if runtime && kind == Kind::LogGroup { format!("/aws/lambda/{own}") } else { own };
                resource(i, kind, &name, tag.map(|t| NAMES[t]))
            })
            .collect();
        // One report per resource: a name drawn twice is one resource.
        let mut seen = std::collections::HashSet::new();
        let resources: Vec<ResourceInfo> = resources.into_iter().filter(|r| seen.insert(r.arn.clone())).collect();
        let policy = SweepPolicy {
            now: now(),
            stuck_after: Duration::hours(2),
            grace: Duration::minutes(10),
            notice_before: Duration::hours(1),
            allowed_accounts: vec![],
            allowed_regions: vec![],
            include_resources: true,
        };
        let state = |e: &str| NAMES.iter().position(|n| *n == e).map(|i| states[i]).unwrap_or(State::Unknown);
        let wanted = |e: &str| matches!(state(e), State::Live | State::Preserved | State::Provisioning);
        let p = plan(&envs, &stacks, &resources, &policy);
        for a in &p.actions {
            let Action::DeleteResource { arn, environment, .. } = a else { continue };
            let r = resources.iter().find(|r| &r.arn == arn).unwrap();
            let tag = r.tags.iter().find(|(k, _)| k == "ephemera:environment").map(|(_, v)| v.as_str());
            prop_assert!(!wanted(environment), "{arn} deleted for {environment}, which is {:?}", state(environment));
            match tag {
                Some(t) => prop_assert_eq!(t, environment.as_str()),
                None => {
                    let name = catalogue::name_of(Kind::of_arn(arn).unwrap(), arn, r.name.as_deref()).unwrap();
                    prop_assert!(catalogue::named_for(name, environment), "untagged {arn} is not named for {environment}");
                    for e in NAMES.iter().filter(|e| catalogue::named_for(name, e)) {
                        prop_assert!(!wanted(e), "untagged {arn} could be {e}'s, which is {:?}", state(e));
                    }
                }
            }
        }
        // Completeness: tagged for a gone environment, named for it alone.
        for r in &resources {
            let Some((_, t)) = r.tags.iter().find(|(k, _)| k == "ephemera:environment") else { continue };
            let name = catalogue::name_of(Kind::of_arn(&r.arn).unwrap(), &r.arn, r.name.as_deref()).unwrap();
            let alone = name.to_ascii_lowercase().ends_with(&format!("ephemera-{t}-zz")) && name.starts_with("ephemera-");
            if state(t) == State::Gone && alone {
                let deleted = p.actions.iter().any(|a| matches!(a, Action::DeleteResource { arn, .. } if arn == &r.arn));
                prop_assert!(deleted, "{} of gone {t} kept: {:?}", r.arn, p.skipped);
            }
        }
    }
}
