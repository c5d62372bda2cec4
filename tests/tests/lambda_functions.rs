//! Each Lambda function fed its real trigger payload from `events/`, against the emulator:
//! the same handlers the binaries run, without the Lambda runtime loop around them.

use std::sync::Arc;

use ephemera_app::intake::Delivery;
use ephemera_app::ports::registry_traits::*;
use ephemera_app::ports::Lease;
use ephemera_aws::emulator_config;
use ephemera_domain::{EnvironmentName, Status};
use ephemera_tests::fixtures::*;
use ephemera_tests::least_privilege::{self, FunctionClients};
use ephemera_tests::{init_logs, test_config, Emulator, REGION};
use ephemera_wiring::{platform, Clients, GitHubConfig, WebhookConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

const APIGW_OPENED: &[u8] = include_bytes!("../../events/apigw/webhook-pull-request-opened.json");

/// The emulator; when dropped, each function's calls are checked against its role under the
/// configuration kept with it (see `ephemera_tests::least_privilege`).
struct Checked(Emulator, ephemera_wiring::Config);

impl Drop for Checked {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            least_privilege::enforce(&self.1, &self.0.calls);
        }
    }
}

/// The emulator with the platform's resources; the test's own clients; each function's.
async fn emulator_and_clients() -> (Checked, ephemera_wiring::Config, Clients, FunctionClients) {
    init_logs();
    let emulator = Emulator::start().unwrap();
    let config = test_config(&[]);
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
    ephemera_local::prepare(&config.shared, &clients, "work", false).await.unwrap();
    let functions = FunctionClients::new(clients.sdk());
    (Checked(emulator, config.clone()), config, clients, functions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_function_answers_an_api_gateway_http_api_event() {
    let (_emulator, config, clients, f) = emulator_and_clients().await;
    let secrets = platform::webhook_secrets(&config.webhook, &f.webhook).await.unwrap();
    let intake = platform::intake(&config.shared, &config.webhook, &f.webhook, Some(secrets), None);
    let app = ephemera_http::router(ephemera_http::AppState {
        intake: Some(Arc::new(intake)),
        selfservice: None,
        dashboard: None,
        dashboard_open: false,
        identity: ephemera_http::Identity::ApiGateway,
    });

    let request =
        lambda_http::request::from_str(std::str::from_utf8(APIGW_OPENED).unwrap()).expect("API Gateway v2 event");
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["environment"], ENVIRONMENT);

    let registry = ephemera_aws::DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table);
    let env = registry.get(&EnvironmentName::parse(ENVIRONMENT).unwrap()).await.unwrap().expect("recorded");
    assert_eq!((env.status, env.generation), (Status::Pending, 1));

    // API Gateway retrying the same invocation is the same delivery.
    let again = lambda_http::request::from_str(std::str::from_utf8(APIGW_OPENED).unwrap()).unwrap();
    let response = app.oneshot(again).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioner_function_reconciles_an_sqs_batch_and_reports_only_retryable_failures() {
    let (_emulator, config, clients, f) = emulator_and_clients().await;
    // The environment the sample message names, recorded as the webhook would.
    let secrets = platform::webhook_secrets(&config.webhook, &f.webhook).await.unwrap();
    let intake = platform::intake(&config.shared, &config.webhook, &f.webhook, Some(secrets), None);
    let signature = ephemera_tests::sign(ephemera_tests::SECRET.as_bytes(), OPENED);
    intake
        .handle(Delivery {
            event: Some("pull_request"),
            id: Some("d-1"),
            signature: Some(&signature),
            body: OPENED,
            form_encoded: false,
        })
        .await
        .unwrap();

    let provisioner = Arc::new(platform::provisioner(&config.shared, &config.provisioner, &f.provisioner));
    let batch: aws_lambda_events::sqs::SqsEvent = serde_json::from_slice(SQS_BATCH).unwrap();
    let response = provisioner::handle_batch(provisioner.clone(), batch).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);

    let registry = ephemera_aws::DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table);
    let name = EnvironmentName::parse(ENVIRONMENT).unwrap();
    let env = registry.get(&name).await.unwrap().unwrap();
    assert_eq!(env.status, Status::Ready, "{env:#?}");
    let stack = clients.cloudformation().describe_stacks().stack_name(env.stack_name().as_str()).send().await.unwrap();
    assert_eq!(stack.stacks()[0].stack_status().unwrap().as_str(), "CREATE_COMPLETE");

    // A message that is not an Ephemera event can never succeed: dropped, not retried.
    let mut garbage: aws_lambda_events::sqs::SqsEvent = serde_json::from_slice(SQS_BATCH).unwrap();
    garbage.records[0].body = Some("{\"hello\":1}".into());
    assert!(provisioner::handle_batch(provisioner.clone(), garbage).await.batch_item_failures.is_empty());

    // An environment another reconciler holds is retried later: reported as a failure.
    let now = chrono::Utc::now();
    assert!(registry
        .try_lease(&name, &Lease { holder: "someone-else".into(), now, until: now + chrono::Duration::minutes(5) })
        .await
        .unwrap());
    let batch: aws_lambda_events::sqs::SqsEvent = serde_json::from_slice(SQS_BATCH).unwrap();
    let response = provisioner::handle_batch(provisioner, batch).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, "059f36b4-87a3-44ab-83d2-661975830a7d");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudformation_status_change_wakes_the_provisioner_for_that_environment() {
    const STACK_STATUS: &[u8] = include_bytes!("../../events/eventbridge/stack-status-change.json");
    let (_emulator, config, clients, f) = emulator_and_clients().await;
    let secrets = platform::webhook_secrets(&config.webhook, &f.webhook).await.unwrap();
    let signature = ephemera_tests::sign(ephemera_tests::SECRET.as_bytes(), OPENED);
    let delivery = Delivery {
        event: Some("pull_request"),
        id: Some("d-1"),
        signature: Some(&signature),
        body: OPENED,
        form_encoded: false,
    };
    platform::intake(&config.shared, &config.webhook, &f.webhook, Some(secrets), None).handle(delivery).await.unwrap();

    // The status change, as the work queue delivers it (the rule on the default bus targets it).
    let mut batch: aws_lambda_events::sqs::SqsEvent = serde_json::from_slice(SQS_BATCH).unwrap();
    batch.records[0].body = Some(String::from_utf8(STACK_STATUS.to_vec()).unwrap());
    let provisioner = Arc::new(platform::provisioner(&config.shared, &config.provisioner, &f.provisioner));
    assert!(provisioner::handle_batch(provisioner, batch).await.batch_item_failures.is_empty());

    let registry = ephemera_aws::DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table);
    let env = registry.get(&EnvironmentName::parse(ENVIRONMENT).unwrap()).await.unwrap().unwrap();
    assert_eq!(env.status, Status::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_secret_can_come_from_secrets_manager_during_rotation() {
    let (mut emulator, _, clients, functions) = emulator_and_clients().await;
    let secret = clients
        .secretsmanager()
        .create_secret()
        .name("github-webhook")
        .secret_string(r#"{"current":"new-secret","previous":"test-webhook-secret"}"#)
        .send()
        .await
        .unwrap();
    let arn = secret.arn().unwrap().to_owned();
    let config =
        WebhookConfig::from_lookup(|k| (k == "EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN").then(|| arn.clone())).unwrap();
    let secrets = platform::webhook_secrets(&config, &functions.webhook).await.unwrap();
    for key in ["new-secret", "test-webhook-secret"] {
        assert!(secrets.verify(OPENED, Some(&ephemera_tests::sign(key.as_bytes(), OPENED))).is_ok(), "{key}");
    }
    assert!(secrets.verify(OPENED, Some(&ephemera_tests::sign(b"old-old", OPENED))).is_err());

    let missing = WebhookConfig::from_lookup(|_| None).unwrap();
    let err = platform::webhook_secrets(&missing, &clients).await.unwrap_err().to_string();
    assert!(err.contains("EPHEMERA_GITHUB_WEBHOOK_SECRET"), "{err}");
    // The notifier cannot start without GitHub; nothing is read from Secrets Manager to find out.
    let missing = GitHubConfig::from_lookup(|_| None).unwrap();
    let err = platform::github_required(&missing, &clients).await.err().expect("refused").to_string();
    assert_eq!(err, "EPHEMERA_GITHUB_APP_ID, EPHEMERA_GITHUB_TOKEN_SECRET_ARN (or EPHEMERA_GITHUB_TOKEN) is not set; it is required");

    // The token from its secret, read as the notifier, the webhook and the reaper (catching up
    // with GitHub), which their roles allow.
    let token = clients.secretsmanager().create_secret().name("github-token").secret_string("ghs_test").send();
    let token = token.await.unwrap().arn().unwrap().to_owned();
    let github =
        GitHubConfig::from_lookup(|k| (k == "EPHEMERA_GITHUB_TOKEN_SECRET_ARN").then(|| token.clone())).unwrap();
    for function in [&functions.notifier, &functions.webhook, &functions.reaper] {
        assert!(platform::github(&github, function).await.unwrap().is_some());
    }
    // A GitHub App's private key from its secret, read as the same three.
    const KEY: &str = include_str!("../fixtures/github-app/test-only-private-key.pem");
    let key = clients.secretsmanager().create_secret().name("github-app-key").secret_string(KEY).send();
    let key = key.await.unwrap().arn().unwrap().to_owned();
    let app = [("EPHEMERA_GITHUB_APP_ID", "4242"), ("EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN", key.as_str())];
    let app_config = GitHubConfig::from_lookup(|k| app.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()));
    for function in [&functions.notifier, &functions.webhook, &functions.reaper] {
        assert!(platform::github(app_config.as_ref().unwrap(), function).await.unwrap().is_some());
    }
    let not_a_key = clients.secretsmanager().create_secret().name("not-a-key").secret_string("hunter2").send();
    let not_a_key = not_a_key.await.unwrap().arn().unwrap().to_owned();
    let bad = GitHubConfig::from_lookup(|k| match k {
        "EPHEMERA_GITHUB_APP_ID" => Some("4242".into()),
        "EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN" => Some(not_a_key.clone()),
        _ => None,
    });
    let err = platform::github(&bad.unwrap(), &clients).await.err().expect("refused").to_string();
    assert!(err.contains("does not hold a private key in PEM"), "{err}");
    let vars = [
        ("EPHEMERA_GITHUB_WEBHOOK_SECRET_ARN", arn.as_str()),
        ("EPHEMERA_GITHUB_TOKEN_SECRET_ARN", &token),
        ("EPHEMERA_GITHUB_APP_ID", "4242"),
        ("EPHEMERA_GITHUB_APP_PRIVATE_KEY_SECRET_ARN", &key),
    ];
    emulator.1 = test_config(&vars);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_function_sweeps_on_its_schedules() {
    const NIGHTLY: &[u8] = include_bytes!("../../events/eventbridge/scheduled-event.json");
    const FREQUENT: &[u8] = include_bytes!("../../events/eventbridge/reaper-light-input.json");
    let (_emulator, config, clients, f) = emulator_and_clients().await;
    let orphan = "ephemera-pr-99-acme-orphan-0a1b2c3d4e";
    let tags = [("ephemera:managed-by", "ephemera"), ("ephemera:environment", "pr-99-acme-orphan-0a1b2c3d4e")]
        .map(|(k, v)| aws_sdk_cloudformation::types::Tag::builder().key(k).value(v).build());
    clients
        .cloudformation()
        .create_stack()
        .stack_name(orphan)
        .template_body(r#"{"Resources":{"Q":{"Type":"AWS::SQS::Queue"}}}"#)
        .set_tags(Some(tags.to_vec()))
        .send()
        .await
        .unwrap();
    let reaper = platform::reaper(&config.shared, &config.reaper, &f.reaper, platform::clock());

    let light = reaper.sweep(reaper::options(&serde_json::from_slice(FREQUENT).unwrap())).await.unwrap();
    assert!(light.light && light.cost.is_none());
    let nightly = reaper.sweep(reaper::options(&serde_json::from_slice(NIGHTLY).unwrap())).await.unwrap();
    assert!(!nightly.light && nightly.cost.is_some());
    // The light sweep already removed the orphan stack; the nightly one finds nothing left.
    assert_eq!(light.actions.get("delete_stack").map(|m| m.values().sum::<u64>()), Some(1), "{:?}", light.planned);
    assert!(!nightly.actions.contains_key("delete_stack"));
    let live = clients.cloudformation().describe_stacks().stack_name(orphan).send().await;
    assert!(live.is_err() || live.unwrap().stacks()[0].stack_status().unwrap().as_str() == "DELETE_COMPLETE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfservice_function_takes_the_caller_from_api_gateways_iam_authorizer() {
    const LIST: &[u8] = include_bytes!("../../events/apigw/selfservice-list.json");
    let (_emulator, config, _, f) = emulator_and_clients().await;
    let app = ephemera_http::router(ephemera_http::AppState {
        intake: None,
        selfservice: Some(Arc::new(platform::selfservice(&config.shared, &config.selfservice, &f.selfservice))),
        dashboard: None,
        dashboard_open: false,
        identity: ephemera_http::Identity::ApiGateway,
    });
    let service = platform::selfservice(&config.shared, &config.selfservice, &f.selfservice);
    for who in ["kyle", "mallory"] {
        let caller = service.caller(&format!("arn:aws:iam::123456789012:user/{who}")).unwrap();
        service.create(&caller, Default::default()).await.unwrap();
    }
    let request = lambda_http::request::from_str(std::str::from_utf8(LIST).unwrap()).expect("API Gateway v2 event");
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let names: Vec<&str> =
        body["environments"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    // kyle's, as API Gateway vouched; not mallory's, as the spoofed header claimed.
    assert_eq!(names, ["dev-kyle"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfservice_function_serves_the_dashboard_data_to_iam_callers() {
    const DASHBOARD: &[u8] = include_bytes!("../../events/apigw/dashboard.json");
    let (_emulator, config, _, f) = emulator_and_clients().await;
    let app = ephemera_http::router(ephemera_http::AppState {
        intake: None,
        selfservice: None,
        dashboard: Some(Arc::new(platform::dashboard(&config.shared, &f.selfservice))),
        dashboard_open: false,
        identity: ephemera_http::Identity::ApiGateway,
    });
    let service = platform::selfservice(&config.shared, &config.selfservice, &f.selfservice);
    let kyle = service.caller("arn:aws:iam::123456789012:user/kyle").unwrap();
    service.create(&kyle, Default::default()).await.unwrap();
    let request =
        lambda_http::request::from_str(std::str::from_utf8(DASHBOARD).unwrap()).expect("API Gateway v2 event");
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    // The sample asks for pull request environments only: the developer's is filtered out.
    assert_eq!(body["count"], 0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_events_and_notifier_functions_take_their_eventbridge_samples() {
    const STACK_EVENT: &[u8] = include_bytes!("../../events/eventbridge/stack-status-change.json");
    const READY: &[u8] = include_bytes!("../../events/eventbridge/environment-ready.json");
    let (_emulator, config, clients, f) = emulator_and_clients().await;
    let secrets = platform::webhook_secrets(&config.webhook, &f.webhook).await.unwrap();
    let body = OPENED;
    let delivery = Delivery {
        event: Some("pull_request"),
        id: Some("d-1"),
        signature: Some(&ephemera_tests::sign(ephemera_tests::SECRET.as_bytes(), body)),
        body,
        form_encoded: false,
    };
    platform::intake(&config.shared, &config.webhook, &f.webhook, Some(secrets), None).handle(delivery).await.unwrap();

    // As sent, the sample is older than what the webhook just recorded: dropped.
    let service = platform::stack_events(&config.shared, &f.stack_events);
    let mut event: serde_json::Value = serde_json::from_slice(STACK_EVENT).unwrap();
    let recorded = stack_events::handle(&service, event.clone()).await.unwrap();
    assert_eq!(recorded, Some(ephemera_app::stack_events::Recorded::Stale));
    // Dated now, it is news. Its stack id is not an emulator stack (none exists yet), but the
    // registry holds no stack id to contradict it.
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    event["time"] = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into();
    let recorded = stack_events::handle(&service, event.clone()).await.unwrap();
    assert_eq!(recorded, Some(ephemera_app::stack_events::Recorded::Status(Status::Ready)));
    let registry = ephemera_aws::DynamoRegistry::new(clients.dynamodb().clone(), &config.shared.table);
    let env = registry.get(&EnvironmentName::parse(ENVIRONMENT).unwrap()).await.unwrap().unwrap();
    assert_eq!(env.status, Status::Ready);
    assert_eq!(env.stack_id.as_deref(), event["detail"]["stack-id"].as_str());

    // The notifier reports it on the pull request.
    let gh = ephemera_tests::github::FakeGitHub::start().await;
    let github = ephemera_github::Client::new(&gh.url, "t").unwrap();
    let notifier = platform::notifier(
        &config.shared,
        &config.notifier,
        &f.notifier,
        Arc::new(ephemera_aws::github::GitHubRest::new(github)),
    );
    let ready: serde_json::Value = serde_json::from_slice(READY).unwrap();
    let done = notifier::handle(&notifier, ready.clone()).await.unwrap();
    assert!(matches!(done, Some(ephemera_app::feedback::Feedback::Reported(_))), "{done:?}");
    // Delivered again: nothing new to say.
    let again = notifier::handle(&notifier, ready.clone()).await.unwrap();
    assert!(matches!(again, Some(ephemera_app::feedback::Feedback::Skipped(_))), "{again:?}");
    let s = gh.state();
    assert!(s.violations.is_empty(), "{:#?}", s.violations);
    assert_eq!(s.deployment_states(), ["success"]);
    assert_eq!(s.comments.len(), 1);
}
