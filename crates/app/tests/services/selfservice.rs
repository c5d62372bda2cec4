//! Developer self-service: own environments created, listed, extended, preserved and
//! destroyed on request, within quotas; admins act on all.

use chrono::Duration;
use ephemera_app::events::REQUESTED;
use ephemera_app::memory::retryable;
use ephemera_app::selfservice::{Caller, CreateRequest, Push, SelfService, SelfServiceError};
use ephemera_domain::developer::Admin;
use ephemera_domain::{Desired, EventOrder, Status};

use crate::harness::*;
use ephemera_app::provisioner::Outcome;

fn service(w: &World) -> SelfService {
    w.selfservice_with(World::selfservice_settings())
}

fn caller(s: &SelfService, arn: &str) -> Caller {
    s.caller(arn).unwrap()
}

fn named(n: &str) -> CreateRequest {
    CreateRequest { name: Some(n.into()), ..Default::default() }
}

#[tokio::test]
async fn a_developer_creates_an_environment_of_their_own() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    assert_eq!((kyle.owner(), kyle.principal.login(), kyle.admin), (KYLE, "kyle", false));
    let view = s.create(&kyle, CreateRequest::default()).await.unwrap();
    assert_eq!((view.name.as_str(), view.kind, view.status, view.desired), ("dev-kyle", "dev", "PENDING", "up"));
    assert_eq!(view.queue_position, None);
    let e = w.env("dev-kyle");
    assert_eq!((e.owner.as_str(), e.repository.clone(), e.expires_at), (KYLE, None, w.now() + Duration::hours(8)));
    assert_eq!(e.last_event, Some(EventOrder::new(w.now().timestamp_millis(), EventOrder::RANK_OPEN)));
    assert_eq!(w.bus.detail_types(), [REQUESTED]);
    let view = s.create(&kyle, CreateRequest { ttl_hours: Some(24), ..named("api") }).await.unwrap();
    assert_eq!((view.name.as_str(), w.env("dev-kyle-api").expires_at), ("dev-kyle-api", w.now() + Duration::hours(24)));
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_recorded() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    for req in [
        CreateRequest { ttl_hours: Some(0), ..Default::default() },
        CreateRequest { ttl_hours: Some(169), ..Default::default() },
        CreateRequest { blueprint: Some("big".into()), ..Default::default() },
        named("Not_A_Name"),
    ] {
        assert!(matches!(s.create(&kyle, req).await, Err(SelfServiceError::BadRequest(_))));
    }
    assert!(matches!(s.caller("arn:aws:s3:::bucket"), Err(SelfServiceError::Forbidden(_))));
    assert!(w.registry.all().is_empty() && w.bus.events().is_empty());
}

#[tokio::test]
async fn a_name_in_use_is_a_conflict_until_it_is_destroyed() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    assert!(matches!(s.create(&kyle, CreateRequest::default()).await, Err(SelfServiceError::Conflict(_))));
    let view = s.destroy(&kyle, "dev-kyle").await.unwrap();
    assert_eq!(view.desired, "down");
    w.clock.advance(Duration::seconds(1));
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    let e = w.env("dev-kyle");
    assert_eq!((e.desired, e.generation), (Desired::Up, 3));
}

#[tokio::test]
async fn past_the_quota_a_request_waits_or_is_refused() {
    let w = World::new();
    let (s, p) = (service(&w), w.provisioner());
    let kyle = caller(&s, KYLE);
    for n in ["one", "two"] {
        s.create(&kyle, named(n)).await.unwrap();
        assert_eq!(p.reconcile(&name(&format!("dev-kyle-{n}"))).await.unwrap(), Outcome::Settled(Status::Ready));
    }
    let third = s.create(&kyle, named("three")).await.unwrap();
    assert_eq!(third.queue_position, Some(1));
    // The provisioner's claim is refused at the same quota: it waits.
    assert_eq!(p.reconcile(&name("dev-kyle-three")).await.unwrap(), Outcome::Queued);
    let reason = w.env("dev-kyle-three").status_reason.unwrap();
    assert!(reason.ends_with("has 2 live environments; the limit is 2"), "{reason}");
    // Another developer is not held up by kyle's quota.
    let alice = caller(&s, ALICE);
    assert_eq!(s.create(&alice, CreateRequest::default()).await.unwrap().queue_position, None);

    let w = World::new();
    let mut settings = World::selfservice_settings();
    settings.quotas.queue_when_full = false;
    let (s, p) = (w.selfservice_with(settings), w.provisioner());
    for n in ["one", "two"] {
        s.create(&kyle, named(n)).await.unwrap();
        p.reconcile(&name(&format!("dev-kyle-{n}"))).await.unwrap();
    }
    let err = s.create(&kyle, named("three")).await.unwrap_err();
    assert_eq!(err.to_string(), "quota reached: you have 2 live environments; the limit is 2");
    assert_eq!(w.registry.all().len(), 2);
    // Once one is deleted its slot is free again.
    s.destroy(&kyle, "dev-kyle-one").await.unwrap();
    assert_eq!(p.reconcile(&name("dev-kyle-one")).await.unwrap(), Outcome::Settled(Status::Deleted));
    assert_eq!(s.create(&kyle, named("three")).await.unwrap().queue_position, None);
}

#[tokio::test]
async fn developers_see_their_own_environments_and_admins_all() {
    let w = World::new();
    let s = service(&w);
    let (kyle, alice, admin) = (caller(&s, KYLE), caller(&s, ALICE), caller(&s, ADMIN));
    assert!(admin.admin);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    s.create(&alice, CreateRequest::default()).await.unwrap();
    s.create(&alice, named("gone")).await.unwrap();
    w.registry.edit(&name("dev-alice-gone"), |e| e.status = Status::Deleted);
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    let names = |l: ephemera_app::selfservice::Listing| l.environments.into_iter().map(|v| v.name).collect::<Vec<_>>();
    assert_eq!(names(s.list(&kyle, false, None, None).await.unwrap()), ["dev-kyle"]);
    assert_eq!(names(s.list(&alice, false, None, None).await.unwrap()), ["dev-alice"]);
    assert!(matches!(s.list(&kyle, true, None, None).await, Err(SelfServiceError::Forbidden(_))));
    assert_eq!(names(s.list(&admin, true, None, None).await.unwrap()), ["dev-alice", "dev-kyle"]);
    // A page at a time: dev-alice, dev-alice-gone (deleted: not shown), then dev-kyle.
    let first = s.list(&admin, true, None, Some(2)).await.unwrap();
    assert_eq!((names(first.clone()), first.next.as_deref()), (vec!["dev-alice".to_owned()], Some("dev-alice-gone")));
    let second = s.list(&admin, true, first.next.as_deref(), Some(2)).await.unwrap();
    assert_eq!((names(second.clone()), second.next), (vec!["dev-kyle".to_owned()], None));
    assert!(matches!(s.list(&admin, true, Some("Bad Name"), None).await, Err(SelfServiceError::BadRequest(_))));
    assert!(matches!(s.get(&kyle, "dev-alice").await, Err(SelfServiceError::Forbidden(_))));
    assert!(matches!(s.get(&kyle, PR).await, Err(SelfServiceError::Forbidden(_))));
    assert_eq!(s.get(&admin, "dev-alice").await.unwrap().owner, ALICE);
    assert!(matches!(s.get(&kyle, "dev-nobody").await, Err(SelfServiceError::NotFound(_))));
    assert!(matches!(s.get(&kyle, "Bad Name").await, Err(SelfServiceError::BadRequest(_))));
}

#[tokio::test]
async fn an_environment_is_extended_within_the_longest_ttl() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    w.clock.advance(Duration::hours(1));
    let view = s.extend(&kyle, "dev-kyle", 4).await.unwrap();
    let expected = w.now() + Duration::hours(11);
    assert_eq!(view.expires_at, expected.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    assert_eq!((w.env("dev-kyle").expires_at, w.env("dev-kyle").generation), (expected, 2));
    s.extend(&kyle, "dev-kyle", 168).await.unwrap();
    assert_eq!(w.env("dev-kyle").expires_at, w.now() + Duration::hours(168), "capped");
    assert!(matches!(s.extend(&kyle, "dev-kyle", 169).await, Err(SelfServiceError::BadRequest(_))));
    assert!(matches!(s.extend(&caller(&s, ALICE), "dev-kyle", 1).await, Err(SelfServiceError::Forbidden(_))));
    s.destroy(&kyle, "dev-kyle").await.unwrap();
    assert!(matches!(s.extend(&kyle, "dev-kyle", 1).await, Err(SelfServiceError::Conflict(_))));
}

#[tokio::test]
async fn an_environment_about_to_expire_says_so_until_extended() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    w.provisioner().reconcile(&name("dev-kyle")).await.unwrap();
    let soon = |w: &World| {
        let s = service(w);
        async move { s.list(&caller(&s, KYLE), false, None, None).await.unwrap().environments[0].expires_soon }
    };
    assert!(!soon(&w).await);
    // Within the notice window, the sweep warns; the list says so.
    w.clock.advance(Duration::hours(7));
    w.reaper().sweep(ephemera_app::reaper::SweepOptions::default()).await.unwrap();
    assert!(soon(&w).await);
    s.extend(&kyle, "dev-kyle", 24).await.unwrap();
    assert!(!soon(&w).await, "a new expiry has no warning yet");
}

#[tokio::test]
async fn preserving_and_destroying() {
    let w = World::new();
    let s = service(&w);
    let (kyle, admin) = (caller(&s, KYLE), caller(&s, ADMIN));
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    assert!(s.preserve(&kyle, "dev-kyle", true).await.unwrap().preserved);
    assert!(w.env("dev-kyle").preserved);
    assert!(matches!(s.preserve(&caller(&s, ALICE), "dev-kyle", false).await, Err(SelfServiceError::Forbidden(_))));
    // A pull request's environment may be pinned by an admin, not destroyed: it follows its pull request.
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    assert!(s.preserve(&admin, PR, true).await.unwrap().preserved);
    assert!(matches!(s.destroy(&admin, PR).await, Err(SelfServiceError::Forbidden(_))));
    w.bus.take();
    let view = s.destroy(&kyle, "dev-kyle").await.unwrap();
    assert_eq!((view.desired, view.status), ("down", "PENDING"));
    let e = w.env("dev-kyle");
    assert_eq!(e.last_event.unwrap().rank, EventOrder::RANK_CLOSE);
    assert_eq!(w.bus.detail_types(), [REQUESTED]);
}

#[tokio::test]
async fn a_ready_environment_hands_out_its_client_config() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    assert!(matches!(s.config(&kyle, "dev-kyle").await, Err(SelfServiceError::NotReady(_))));
    let outputs = [
        ("GraphQLUrl", "https://abc.appsync-api.us-east-1.amazonaws.com/graphql"),
        ("GraphQLApiId", "abc"),
        ("StorageBucketName", "ephemera-dev-kyle-files"),
        ("TodoTableName", "ephemera-dev-kyle-todo"),
    ];
    w.registry.edit(&name("dev-kyle"), |e| {
        e.status = Status::Ready;
        e.outputs = outputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    });
    let config = s.config(&kyle, "dev-kyle").await.unwrap();
    assert_eq!((config.graphql_endpoint.as_str(), config.api_key.as_str()), (outputs[0].1, "key-1"));
    assert_eq!((config.bucket.as_deref(), config.tables.clone()), (Some(outputs[2].1), vec![outputs[3].1.to_owned()]));
    let expires = ephemera_app::provisioner::api_key_expiry(w.env("dev-kyle").expires_at, w.now());
    assert_eq!(w.keys.made(), [("abc".to_owned(), expires, "ephemera client key for dev-kyle".to_owned())]);
    assert!(config.to_js().contains("\"aws_appsync_apiKey\": \"key-1\""));
    w.registry.edit(&name("dev-kyle"), |e| e.outputs.clear());
    assert!(matches!(s.config(&kyle, "dev-kyle").await, Err(SelfServiceError::NotReady(_))));
}

#[tokio::test]
async fn a_registry_that_cannot_answer_is_reported_as_unavailable() {
    let w = World::new();
    let s = service(&w);
    w.registry.faults.fail_next("totals", retryable("read totals", "throttled"));
    let err = s.create(&caller(&s, KYLE), CreateRequest::default()).await.unwrap_err();
    assert!(matches!(err, SelfServiceError::Unavailable(e) if e.is_retryable()));
}

/// A session named after another developer, and a same-named user of another account.
const KYLE_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/Developer/kyle";
const OTHER_ACCOUNTS_KYLE: &str = "arn:aws:iam::210987654321:user/kyle";

#[tokio::test]
async fn the_owner_is_the_whole_principal_not_its_last_name() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    w.registry.edit(&name("dev-kyle"), |e| e.status = Status::Ready);
    for arn in [KYLE_SESSION, OTHER_ACCOUNTS_KYLE] {
        let them = caller(&s, arn);
        assert!(!them.admin);
        let forbidden = |r: Result<_, SelfServiceError>| matches!(r, Err(SelfServiceError::Forbidden(_)));
        assert!(forbidden(s.get(&them, "dev-kyle").await.map(|_| ())), "{arn}");
        assert!(forbidden(s.config(&them, "dev-kyle").await.map(|_| ())), "{arn}");
        assert!(forbidden(s.extend(&them, "dev-kyle", 1).await.map(|_| ())), "{arn}");
        assert!(forbidden(s.preserve(&them, "dev-kyle", true).await.map(|_| ())), "{arn}");
        assert!(forbidden(s.destroy(&them, "dev-kyle").await.map(|_| ())), "{arn}");
        assert!(s.list(&them, false, None, None).await.unwrap().environments.is_empty(), "{arn}");
        // Their own dev-kyle is taken: a 409 that names the name to use instead.
        let err = s.create(&them, CreateRequest::default()).await.unwrap_err().to_string();
        let instead = them.principal.tag();
        assert!(err.contains(&format!("--name {instead}")) && err.contains(&format!("dev-kyle-{instead}")), "{err}");
        let view = s.create(&them, named(&instead)).await.unwrap();
        assert_eq!(w.env(&view.name).owner, arn);
        s.destroy(&them, &view.name).await.unwrap();
    }
    // Gone, kyle's name is still kyle's: nobody else revives it (with what it keeps).
    s.destroy(&kyle, "dev-kyle").await.unwrap();
    w.registry.edit(&name("dev-kyle"), |e| e.status = Status::Deleted);
    w.clock.advance(Duration::seconds(1));
    let err = s.create(&caller(&s, KYLE_SESSION), CreateRequest::default()).await.unwrap_err();
    assert!(matches!(err, SelfServiceError::Conflict(_)), "{err}");
    assert_eq!(w.env("dev-kyle").owner, KYLE);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    let e = w.env("dev-kyle");
    assert_eq!((e.owner.as_str(), e.desired, e.preserved, e.generation), (KYLE, Desired::Up, false, 3));
}

#[tokio::test]
async fn every_session_of_an_admin_role_is_admin_and_no_session_is_by_its_name() {
    let w = World::new();
    let mut settings = World::selfservice_settings();
    settings.admins = vec![Admin::parse("arn:aws:iam::123456789012:role/PlatformAdmin").unwrap()];
    let s = w.selfservice_with(settings);
    s.create(&caller(&s, KYLE), CreateRequest::default()).await.unwrap();
    for session in ["ops-1", "ops-2"] {
        let admin = caller(&s, &format!("arn:aws:sts::123456789012:assumed-role/PlatformAdmin/{session}"));
        assert!(admin.admin);
        assert_eq!(s.get(&admin, "dev-kyle").await.unwrap().owner, KYLE);
    }
    assert!(!caller(&s, "arn:aws:sts::123456789012:assumed-role/Developer/PlatformAdmin").admin);
    assert!(!caller(&s, "arn:aws:sts::210987654321:assumed-role/PlatformAdmin/ops-1").admin);
}

#[tokio::test]
async fn an_owner_recorded_as_a_login_is_handed_over_by_an_admin() {
    let w = World::new();
    let s = service(&w);
    let (kyle, admin) = (caller(&s, KYLE), caller(&s, ADMIN));
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    w.registry.edit(&name("dev-kyle"), |e| e.owner = "kyle".into());
    let err = s.get(&kyle, "dev-kyle").await.unwrap_err().to_string();
    assert!(err.contains(&format!("ephemera env adopt dev-kyle --owner {KYLE}")), "{err}");
    // Only kyle is told how to get it back; his `create` says the same; anyone else is refused.
    let err = s.create(&kyle, CreateRequest::default()).await.unwrap_err().to_string();
    assert!(err.contains("ask an admin to hand it to you"), "{err}");
    for other in [ALICE, "arn:aws:sts::123456789012:assumed-role/Developer/mallory"] {
        let err = s.get(&caller(&s, other), "dev-kyle").await.unwrap_err().to_string();
        assert_eq!(err, "dev-kyle belongs to another principal");
    }
    assert!(matches!(s.adopt(&kyle, "dev-kyle", KYLE).await, Err(SelfServiceError::Forbidden(_))));
    assert!(matches!(s.adopt(&admin, "dev-kyle", "kyle").await, Err(SelfServiceError::BadRequest(_))));
    assert_eq!(s.adopt(&admin, "dev-kyle", KYLE).await.unwrap().owner, KYLE);
    assert_eq!(s.get(&kyle, "dev-kyle").await.unwrap().owner, KYLE);
    assert_eq!(w.env("dev-kyle").generation, 2, "a new generation retags the stack");
}

/// The default blueprint with one more table and a GraphQL API with its schema.
const PUSHED: &str = "Resources:
  Files:
    Type: AWS::S3::Bucket
  Todo:
    Type: AWS::DynamoDB::Table
    Properties: { BillingMode: PAY_PER_REQUEST }
  Notes:
    Type: AWS::DynamoDB::Table
    Properties: { BillingMode: PAY_PER_REQUEST }
  Api:
    Type: AWS::AppSync::GraphQLApi
    Properties: { Name: !Sub '${AWS::StackName}-api', AuthenticationType: API_KEY }
  Schema:
    Type: AWS::AppSync::GraphQLSchema
    Properties:
      ApiId: !GetAtt Api.ApiId
      Definition: 'type Query { todo: String }'
";

/// What the stack holds: its resources' logical ids, and the rendered template.
fn stack_of(w: &World, env: &str) -> (Vec<String>, serde_json::Value) {
    let stack = w.stacks.get(&name(env).stack_name()).expect("stack");
    let ids = stack.resources.iter().map(|r| r.logical_id.clone()).collect();
    (ids, serde_json::from_str(&stack.request.expect("made through the port").template_body).unwrap())
}

#[tokio::test]
async fn the_owner_pushes_a_template_and_the_stack_follows_it() {
    let w = World::new();
    let s = service(&w);
    let (kyle, alice) = (caller(&s, KYLE), caller(&s, ALICE));
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    w.provisioner().reconcile(&name("dev-kyle")).await.unwrap();
    assert!(!stack_of(&w, "dev-kyle").0.contains(&"Notes".to_owned()));

    let view = s.push(&kyle, "dev-kyle", Push::Template(PUSHED.into())).await.unwrap();
    assert_eq!((view.status, w.env("dev-kyle").generation), ("PENDING", 2));
    assert_eq!(w.env("dev-kyle").commit, Some(ephemera_domain::developer::template_version(PUSHED)));
    assert_eq!(w.store.object(BUCKET, "environments/dev-kyle/template.yaml").as_deref(), Some(PUSHED));
    let outcome = w.provisioner().reconcile(&name("dev-kyle")).await.unwrap();
    assert_eq!(outcome, ephemera_app::provisioner::Outcome::Settled(Status::Ready));
    let (ids, _) = stack_of(&w, "dev-kyle");
    assert!(ids.contains(&"Notes".to_owned()), "{ids:?}");
    assert_eq!(w.env("dev-kyle").status, Status::Ready);

    // Another developer may not push to it.
    let err = s.push(&alice, "dev-kyle", Push::Template(BLUEPRINT.into())).await.unwrap_err();
    assert!(matches!(err, SelfServiceError::Forbidden(_)), "{err}");
    // An escaping template is refused with its violations, and changes nothing.
    let escaping = format!("{PUSHED}  Admin:\n    Type: AWS::IAM::User\n");
    let err = s.push(&kyle, "dev-kyle", Push::Template(escaping)).await.unwrap_err();
    assert!(
        matches!(&err, SelfServiceError::Refused(v) if v.len() == 1 && v[0].starts_with("Admin (AWS::IAM::User)")),
        "{err}"
    );
    assert!(matches!(
        s.push(&kyle, "dev-kyle", Push::Template("Resources: [".into())).await,
        Err(SelfServiceError::BadRequest(_))
    ));
    assert_eq!(w.store.object(BUCKET, "environments/dev-kyle/template.yaml").as_deref(), Some(PUSHED));
    assert_eq!(w.env("dev-kyle").generation, 2);

    // A schema push changes the schema and nothing else.
    s.push(&kyle, "dev-kyle", Push::Schema("type Query { todo: String notes: [String] }".into())).await.unwrap();
    w.provisioner().reconcile(&name("dev-kyle")).await.unwrap();
    let (_, deployed) = stack_of(&w, "dev-kyle");
    let definition = &deployed["Resources"]["Schema"]["Properties"]["Definition"];
    assert_eq!(definition, "type Query { todo: String notes: [String] }");
    let kept = w.store.object(BUCKET, "environments/dev-kyle/template.yaml").unwrap();
    let without_schema = |source: &str| {
        let mut t = ephemera_app::template::parse(source).unwrap();
        t["Resources"].as_object_mut().unwrap().remove("Schema");
        t
    };
    assert_eq!(without_schema(&kept), without_schema(PUSHED));

    // Destroyed and made again, it comes back with the template it was given.
    s.destroy(&kyle, "dev-kyle").await.unwrap();
    w.provisioner().reconcile(&name("dev-kyle")).await.unwrap();
    w.clock.advance(Duration::seconds(1));
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    w.provisioner().reconcile(&name("dev-kyle")).await.unwrap();
    assert_eq!(stack_of(&w, "dev-kyle").1["Resources"]["Schema"]["Properties"]["Definition"], *definition);
}

#[tokio::test]
async fn a_schema_push_needs_one_schema_in_the_template() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    let err = s.push(&kyle, "dev-kyle", Push::Schema("type Query { a: Int }".into())).await.unwrap_err();
    assert!(
        err.to_string().contains("0 GraphQL schemas") && err.to_string().contains("blueprints/default.yaml"),
        "{err}"
    );
    assert_eq!(w.store.object(BUCKET, "environments/dev-kyle/template.yaml"), None);
    assert_eq!(w.env("dev-kyle").generation, 1);
}

#[tokio::test]
async fn a_developer_preserves_for_at_most_the_ceiling_and_only_an_admin_renews() {
    let w = World::new();
    let s = service(&w);
    let (kyle, admin) = (caller(&s, KYLE), caller(&s, ADMIN));
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    let first = w.now();
    let view = s.preserve(&kyle, "dev-kyle", true).await.unwrap();
    let until = first + Duration::days(30);
    assert_eq!(view.preserved_until, Some(until.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    // Asking again, or off and on, does not move it.
    w.clock.advance(Duration::days(10));
    s.preserve(&kyle, "dev-kyle", false).await.unwrap();
    s.preserve(&kyle, "dev-kyle", true).await.unwrap();
    assert_eq!(w.env("dev-kyle").preserved_until, Some(until));
    assert!(w.env("dev-kyle").is_preserved(w.now()));
    // Past it: no longer preserved, and the developer may not renew.
    w.clock.advance(Duration::days(21));
    assert!(!w.env("dev-kyle").is_preserved(w.now()));
    assert!(!s.show(&kyle, "dev-kyle").await.unwrap().preserved, "shown as it is: lapsed");
    let err = s.preserve(&kyle, "dev-kyle", true).await.unwrap_err();
    assert!(matches!(&err, SelfServiceError::Forbidden(m) if m.contains("an admin can renew it")), "{err}");
    let renewed = s.preserve(&admin, "dev-kyle", true).await.unwrap();
    assert_eq!(w.env("dev-kyle").preserved_until, Some(w.now() + Duration::days(30)), "{renewed:?}");
    // Made again, it starts afresh.
    s.destroy(&kyle, "dev-kyle").await.unwrap();
    w.registry.edit(&name("dev-kyle"), |e| e.status = Status::Deleted);
    w.clock.advance(Duration::seconds(1));
    let view = s.create(&kyle, CreateRequest::default()).await.unwrap();
    assert!(!view.preserved && view.preserved_until.is_none());
    let e = w.env("dev-kyle");
    assert_eq!((e.preserved, e.preserved_until), (false, None));
}

#[tokio::test]
async fn a_push_that_would_render_too_large_or_to_a_gone_environment_says_what_to_do() {
    let w = World::new();
    let s = service(&w);
    let kyle = caller(&s, KYLE);
    s.create(&kyle, CreateRequest::default()).await.unwrap();
    let tables: String = (0..120)
        .map(|i| {
            format!("  T{i}:\n    Type: AWS::DynamoDB::Table\n    Properties: {{ BillingMode: PAY_PER_REQUEST }}\n")
        })
        .collect();
    let big = format!("Resources:\n{tables}");
    assert!(big.len() < 51_200, "small enough as written: {}", big.len());
    let err = s.push(&kyle, "dev-kyle", Push::Template(big)).await.unwrap_err().to_string();
    assert!(err.contains("51,200") && err.contains("make the template smaller"), "{err}");
    assert_eq!(w.store.object(BUCKET, "environments/dev-kyle/template.yaml"), None);

    s.destroy(&kyle, "dev-kyle").await.unwrap();
    w.registry.edit(&name("dev-kyle"), |e| e.status = Status::Deleted);
    let err = s.push(&kyle, "dev-kyle", Push::Template(BLUEPRINT.into())).await.unwrap_err().to_string();
    assert!(err.contains("ephemera env create"), "{err}");
}
