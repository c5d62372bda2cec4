//! The developer workflow through the real `ephemera` binary, the local runner's signed API and
//! the emulator.
//!
//! Where the emulator differs from AWS: it does not create AppSync APIs from templates, so the
//! test creates the API the stack would have made (with the emulator's AppSync API) and records
//! it among the environment's outputs, as the stack's outputs would on AWS.

use std::process::{Command, Output};

use ephemera_app::ports::Stamp;
use ephemera_app::ports::{registry_traits::*, Progress};
use ephemera_domain::{EnvironmentName, Status};
use ephemera_tests::{Platform, IDENTITIES, REGION};
use serde_json::Value;

fn ephemera(p: &Platform, who: usize, args: &[&str]) -> Output {
    ephemera_in(p, who, &std::env::current_dir().unwrap(), args)
}

/// `ephemera` run in `dir` (a checkout).
fn ephemera_in(p: &Platform, who: usize, dir: &std::path::Path, args: &[&str]) -> Output {
    let (key, secret, _) = IDENTITIES[who];
    Command::new(env!("CARGO_BIN_EXE_ephemera"))
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EPHEMERA_URL", &p.base_url)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the ephemera binary runs")
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

const KYLE: usize = 0;
const ALICE: usize = 1;
const KYLE_SESSION: usize = 3;
const OTHER_ACCOUNTS_KYLE: usize = 4;
const OPS_ONE: usize = 5;
const OPS_TWO: usize = 6;

/// Creates the AppSync API the stack would have made on AWS and records it among the
/// environment's outputs (the emulator skips AppSync resources in templates).
async fn give_api(p: &Platform, env: &str) -> aws_sdk_appsync::types::GraphqlApi {
    let api = p
        .clients
        .appsync()
        .create_graphql_api()
        .name(format!("ephemera-{env}-api"))
        .authentication_type("API_KEY".into())
        .send()
        .await
        .unwrap();
    let api = api.graphql_api().unwrap().clone();
    let name = EnvironmentName::parse(env).unwrap();
    let row = p.registry().get(&name).await.unwrap().unwrap();
    let mut outputs = row.outputs.clone();
    outputs.insert("GraphQLApiArn".into(), api.arn().unwrap().into());
    let progress = Progress { outputs: Some(outputs), ..Default::default() };
    assert!(p
        .registry()
        .record_progress(&name, Stamp::new(row.generation, chrono::Utc::now()), &progress)
        .await
        .unwrap());
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_creates_configures_extends_and_destroys_their_environment() {
    let p = Platform::start_with(&[("EPHEMERA_DEV_QUOTA_PER_OWNER", "1")]).await;

    // create --wait: READY, with a stack tagged as kyle's developer environment.
    let env = json(&ephemera(&p, KYLE, &["env", "create", "--wait", "--json"]));
    assert_eq!((env["name"].as_str(), env["status"].as_str()), (Some("dev-kyle"), Some("READY")));
    let (_, tags) = p.stack("ephemera-dev-kyle").await.expect("stack");
    let tag = |k: &str| tags.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(tag("ephemera:kind").as_deref(), Some("dev"));
    assert_eq!(tag("ephemera:owner").as_deref(), Some(IDENTITIES[KYLE].2));

    // A second one is over kyle's quota of 1: queued.
    let queued = json(&ephemera(&p, KYLE, &["env", "create", "search", "--json"]));
    assert_eq!(queued["queue_position"], 1, "{queued}");
    let waiting = p.wait_for_status("dev-kyle-search", Status::Queued).await;
    assert!(waiting.status_reason.unwrap().contains("quota"));

    // config: the endpoint and an API key that exists in AppSync.
    let api = give_api(&p, "dev-kyle").await;
    let row = p.registry().get(&EnvironmentName::parse("dev-kyle").unwrap()).await.unwrap().unwrap();
    let cfg = json(&ephemera(&p, KYLE, &["env", "config", "dev-kyle"]));
    assert_eq!(cfg["region"], REGION);
    assert!(cfg["graphql_endpoint"].as_str().unwrap().contains(api.api_id().unwrap()), "{cfg}");
    let keys = p.clients.appsync().list_api_keys().api_id(api.api_id().unwrap()).send().await.unwrap();
    assert!(keys.api_keys().iter().any(|k| k.id() == cfg["api_key"].as_str()), "{cfg} {keys:?}");
    let js = std::env::temp_dir().join(format!("aws-exports-{}.js", std::process::id()));
    let out = ephemera(&p, KYLE, &["env", "config", "dev-kyle", "--format", "js", "--out", js.to_str().unwrap()]);
    assert!(out.status.success());
    let module = std::fs::read_to_string(&js).unwrap();
    assert!(module.contains("aws_appsync_apiKey") && module.contains("export default awsmobile"), "{module}");

    // extend moves expires-at, on the row and on the stack's tag.
    let before = row.expires_at;
    let extended = json(&ephemera(&p, KYLE, &["env", "extend", "dev-kyle", "--by", "4h", "--json"]));
    let after = p.wait_for("dev-kyle", Status::Ready).await.expires_at;
    assert_eq!(after, before + chrono::Duration::hours(4), "{extended}");
    let (_, tags) = p.stack("ephemera-dev-kyle").await.unwrap();
    assert!(tags.contains(&("ephemera:expires-at".into(), after.format("%Y-%m-%dT%H:%M:%SZ").to_string())));

    // alice may not look at, or destroy, kyle's.
    for args in [&["env", "show", "dev-kyle"][..], &["env", "destroy", "dev-kyle"]] {
        let out = ephemera(&p, ALICE, args);
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // alice's list does not show it.
    assert_eq!(json(&ephemera(&p, ALICE, &["env", "list", "--json"]))["environments"].as_array().unwrap().len(), 0);

    // destroy deletes the stack; the queued one starts.
    assert!(ephemera(&p, KYLE, &["env", "destroy", "dev-kyle"]).status.success());
    p.wait_for("dev-kyle", Status::Deleted).await;
    assert!(p.stack("ephemera-dev-kyle").await.is_none());
    p.wait_for("dev-kyle-search", Status::Ready).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_is_its_owners_whole_principal_not_a_same_named_session_or_user() {
    let p = Platform::start_with(&[("EPHEMERA_ADMINS", ephemera_tests::ADMIN_ROLE)]).await;
    let env = json(&ephemera(&p, KYLE, &["env", "create", "--wait", "--json"]));
    assert_eq!((env["name"].as_str(), env["owner"].as_str()), (Some("dev-kyle"), Some(IDENTITIES[KYLE].2)));
    for who in [KYLE_SESSION, OTHER_ACCOUNTS_KYLE] {
        let refused: [&[&str]; 5] = [
            &["env", "show", "dev-kyle"],
            &["env", "config", "dev-kyle"],
            &["env", "extend", "dev-kyle", "--by", "1h"],
            &["env", "preserve", "dev-kyle"],
            &["env", "destroy", "dev-kyle"],
        ];
        for args in refused {
            let out = ephemera(&p, who, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{} {args:?}: {err}", IDENTITIES[who].2);
            assert!(err.contains("belongs to another principal"), "{err}");
        }
        let list = json(&ephemera(&p, who, &["env", "list", "--json"]));
        assert_eq!(list["environments"], serde_json::json!([]), "{}", IDENTITIES[who].2);
        // Their own `create` is a 409 naming the name to use instead.
        let out = ephemera(&p, who, &["env", "create"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{err}");
        assert!(err.contains("belongs to another principal with your login; use `--name p"), "{err}");
    }
    let row = p.registry().get(&EnvironmentName::parse("dev-kyle").unwrap()).await.unwrap().unwrap();
    assert_eq!((row.generation, row.preserved, row.desired), (1, false, ephemera_domain::Desired::Up));
    // Every session of the admin role is admin.
    for ops in [OPS_ONE, OPS_TWO] {
        let all = json(&ephemera(&p, ops, &["env", "list", "--all", "--json"]));
        assert_eq!(all["environments"][0]["name"], "dev-kyle", "{all}");
        assert!(ephemera(&p, ops, &["env", "extend", "dev-kyle", "--by", "1h"]).status.success());
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_forged_and_stale_requests_are_refused_and_change_nothing() {
    let p = Platform::start_with(&[("EPHEMERA_DEV_QUOTA_MODE", "refuse"), ("EPHEMERA_DEV_QUOTA_PER_OWNER", "1")]).await;
    let items = p.table_item_count().await;
    let url = format!("{}/v1/environments", p.base_url);

    let unsigned = p.http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 403);
    // Signed with a secret that is not kyle's.
    let mut forged = Command::new(env!("CARGO_BIN_EXE_ephemera"));
    forged
        .args(["env", "create"])
        .env_clear()
        .env("EPHEMERA_URL", &p.base_url)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", IDENTITIES[KYLE].0)
        .env("AWS_SECRET_ACCESS_KEY", "not-kyles-secret")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    assert_eq!(forged.output().unwrap().status.code(), Some(3));
    // A well-signed request from ten minutes ago.
    let stale_time = chrono::Utc::now() - chrono::Duration::minutes(10);
    let amz = stale_time.format("%Y%m%dT%H%M%SZ").to_string();
    let host = p.base_url.trim_start_matches("http://").to_owned();
    let res = p
        .http
        .post(&url)
        .header("x-amz-date", &amz)
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{}/{REGION}/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
                IDENTITIES[KYLE].0,
                &amz[..8],
                "0".repeat(64)
            ),
        )
        .header("host", host)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert!(res.text().await.unwrap().contains("5 minutes"));
    assert_eq!(p.table_item_count().await, items, "nothing recorded");

    // Without EPHEMERA_URL, the endpoint comes from the deployed stack's SelfServiceUrl output.
    let template = serde_json::json!({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"SelfServiceUrl": {"Value": p.base_url.clone()}}});
    p.clients
        .cloudformation()
        .create_stack()
        .stack_name("ephemera-platform")
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let (key, secret, _) = IDENTITIES[KYLE];
    let out = Command::new(env!("CARGO_BIN_EXE_ephemera"))
        .args(["env", "list", "--json"])
        .env_clear()
        .env("EPHEMERA_STACK", "ephemera-platform")
        .env("AWS_ENDPOINT_URL", &p.emulator.endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Bad names are a clear 400 (exit 1); past the quota in refuse mode: 429 (exit 5).
    let bad = ephemera(&p, KYLE, &["env", "create", "Not_Valid"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("HTTP 400"));
    assert!(ephemera(&p, KYLE, &["env", "create"]).status.success());
    // The quota counts environments the provisioner has admitted (its claim on the running
    // totals); a create racing an admission is queued by the provisioner instead.
    p.wait_for("dev-kyle", Status::Ready).await;
    let over = ephemera(&p, KYLE, &["env", "create", "second"]);
    assert_eq!(over.status.code(), Some(5), "{}", String::from_utf8_lossy(&over.stderr));
    assert!(String::from_utf8_lossy(&over.stderr).contains("limit is 1"));
    p.stop().await;
}

#[test]
fn blueprint_check_lists_every_violation_offline_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("ephemera-blueprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let escaping = dir.join("escaping.yaml");
    std::fs::write(
        &escaping,
        "Resources:\n  Key:\n    Type: AWS::AppSync::ApiKey\n    Properties: { ApiId: abcdefghijklmnopqrstuvwxyz }\n  U:\n    Type: AWS::IAM::User\n",
    )
    .unwrap();
    // No endpoint, no credentials: the check needs neither.
    let run = |file: &std::path::Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ephemera"))
            .args(["blueprint", "check"])
            .arg(file)
            .args(extra)
            .env_remove("EPHEMERA_URL")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .output()
            .unwrap()
    };
    let out = run(&escaping, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("Key (AWS::AppSync::ApiKey): reference outside the environment: ApiId points at"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("U (AWS::IAM::User): no IAM users, groups or access keys"), "{lines:?}");

    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/blueprints/default.yaml");
    let out = run(&default, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json(&out)["accepted"], true);

    let amplify = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/amplify-backend.yaml");
    let out = run(&amplify, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8(out.stdout).unwrap().contains("TodoTable: DeletionPolicy Retain rewritten to Delete"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The deployed template as CloudFormation holds it, without the tags the platform writes in
/// (the commit tag is the template's version) and without the one resource named.
async fn deployed_template(p: &Platform, stack: &str, without: &str) -> Value {
    let out = p.clients.cloudformation().get_template().stack_name(stack).send().await.unwrap();
    let mut t: Value = serde_json::from_str(out.template_body().unwrap()).unwrap();
    let resources = t["Resources"].as_object_mut().unwrap();
    resources.remove(without);
    for r in resources.values_mut() {
        if let Some(props) = r["Properties"].as_object_mut() {
            // `Tags`, and the shapes some kinds use (`IdentityPoolTags`, `UserPoolTags`).
            props.retain(|k, _| !k.ends_with("Tags"));
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_deploys_their_own_template_and_schema_and_nobody_elses() {
    let p = Platform::start().await;
    json(&ephemera(&p, KYLE, &["env", "create", "--wait", "--json"]));
    let dir = std::env::temp_dir().join(format!("ephemera-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let default =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/blueprints/default.yaml")).unwrap();
    let extra = "\n  NotesTable:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: !Sub \"${AWS::StackName}-Notes\"\n      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions: [{ AttributeName: id, AttributeType: S }]\n      KeySchema: [{ AttributeName: id, KeyType: HASH }]\n";
    let with_notes = default.replacen("\nResources:\n", &format!("\nResources:{extra}"), 1);
    let template = dir.join("template.yaml");
    std::fs::write(&template, &with_notes).unwrap();
    let path = template.to_str().unwrap();

    // A schema alone, before the environment has a template of its own: put into the current
    // blueprint's.
    let first = dir.join("first.graphql");
    std::fs::write(&first, "type Query { first: String }\nschema { query: Query }\n").unwrap();
    let args = ["env", "deploy", "dev-kyle", "--schema", first.to_str().unwrap(), "--wait", "--json"];
    assert_eq!(json(&ephemera(&p, KYLE, &args))["status"], "READY");
    assert!(deployed_template(&p, "ephemera-dev-kyle", "").await.to_string().contains("first: String"));

    // The owner's push: the stack gains the table.
    let env = json(&ephemera(&p, KYLE, &["env", "deploy", "dev-kyle", "--template", path, "--wait", "--json"]));
    assert_eq!(env["status"], "READY", "{env}");
    let tables = p.clients.dynamodb().list_tables().send().await.unwrap();
    assert!(tables.table_names().iter().any(|t| t == "ephemera-dev-kyle-Notes"), "{tables:?}");

    // Someone else's push is refused.
    let out = ephemera(&p, ALICE, &["env", "deploy", "dev-kyle", "--template", path]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));

    // An escaping template: 422 with its violations; the stack is as it was.
    let before = deployed_template(&p, "ephemera-dev-kyle", "").await;
    let generation = p.environment("dev-kyle").await.unwrap().generation;
    let escaping = dir.join("escaping.yaml");
    let intruder = with_notes.replacen("\nResources:\n", "\nResources:\n  Intruder:\n    Type: AWS::IAM::User\n", 1);
    std::fs::write(&escaping, intruder).unwrap();
    let out = ephemera(&p, KYLE, &["env", "deploy", "dev-kyle", "--template", escaping.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("HTTP 422") && err.contains("Intruder (AWS::IAM::User)"), "{err}");
    assert_eq!(deployed_template(&p, "ephemera-dev-kyle", "").await, before);
    assert_eq!(p.environment("dev-kyle").await.unwrap().generation, generation);

    // --schema changes the schema and nothing else.
    let schema = dir.join("schema.graphql");
    std::fs::write(&schema, "type Query { ping: String }\nschema { query: Query }\n").unwrap();
    let env = json(&ephemera(
        &p,
        KYLE,
        &["env", "deploy", "dev-kyle", "--schema", schema.to_str().unwrap(), "--wait", "--json"],
    ));
    assert_eq!(env["status"], "READY", "{env}");
    let out = p.clients.cloudformation().get_template().stack_name("ephemera-dev-kyle").send().await.unwrap();
    let deployed: Value = serde_json::from_str(out.template_body().unwrap()).unwrap();
    assert_eq!(
        deployed["Resources"]["GraphQLSchema"]["Properties"]["Definition"],
        "type Query { ping: String }\nschema { query: Query }\n"
    );
    let after = deployed_template(&p, "ephemera-dev-kyle", "GraphQLSchema").await;
    let mut expected = before.clone();
    expected["Resources"].as_object_mut().unwrap().remove("GraphQLSchema");
    if after != expected {
        let (a, e) = (serde_json::to_string_pretty(&after).unwrap(), serde_json::to_string_pretty(&expected).unwrap());
        let differ: Vec<_> = a.lines().zip(e.lines()).filter(|(x, y)| x != y).take(5).collect();
        panic!("only the schema may change: {differ:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_use_remembers_the_environment_for_the_checkout_and_writes_its_client_config() {
    let p = Platform::start().await;
    let checkout = std::env::temp_dir().join(format!("ephemera-checkout-{}", std::process::id()));
    std::fs::create_dir_all(checkout.join(".git")).unwrap();
    std::fs::create_dir_all(checkout.join("src/components")).unwrap();
    let inside = checkout.join("src/components");
    let run = |args: &[&str]| ephemera_in(&p, KYLE, &inside, args);

    // Nothing in use: a command that needs an environment says how to choose one.
    let out = run(&["env", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ephemera env use ENV"));

    json(&run(&["env", "create", "--wait", "--json"]));
    json(&run(&["env", "create", "api", "--wait", "--json"]));
    let api = give_api(&p, "dev-kyle").await;
    let out = run(&["env", "use", "dev-kyle"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(checkout.join(".ephemera/environment.json")).unwrap()).unwrap();
    assert_eq!(state, serde_json::json!({"environment": "dev-kyle", "client_config": "src/aws-exports.js"}));
    let exports = std::fs::read_to_string(checkout.join("src/aws-exports.js")).unwrap();
    assert!(exports.contains(api.api_id().unwrap()) && exports.contains("export default awsmobile"), "{exports}");

    // Later commands default to it; status shows it.
    assert_eq!(json(&run(&["env", "show", "--json"]))["name"], "dev-kyle");
    let status = json(&run(&["env", "status", "--json"]));
    assert_eq!(
        (status["in_use"]["environment"].as_str(), status["environment"]["status"].as_str()),
        (Some("dev-kyle"), Some("READY"))
    );

    // Switching to an environment that is not ready yet: remembered, config left for later;
    // a JSON config path is kept for the next switch.
    let out = ephemera_in(&p, KYLE, &checkout, &["env", "use", "dev-kyle-api", "--out", "config/backend.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not written yet"));
    assert!(!checkout.join("config/backend.json").exists());
    assert!(run(&["env", "use", "dev-kyle"]).status.success());
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(checkout.join("config/backend.json")).unwrap()).unwrap();
    assert_eq!(config["environment"], "dev-kyle");

    // Another developer's environment cannot be used.
    let out = ephemera_in(&p, ALICE, &inside, &["env", "use", "dev-kyle-api"]);
    assert_eq!(out.status.code(), Some(3));

    assert!(run(&["env", "extend", "--by", "1h"]).status.success());
    p.wait_for("dev-kyle", Status::Ready).await;

    // Destroying the one in use forgets it; destroying another does not.
    assert!(run(&["env", "destroy", "dev-kyle-api"]).status.success());
    assert!(checkout.join(".ephemera/environment.json").exists());
    assert!(run(&["env", "destroy"]).status.success());
    assert!(!checkout.join(".ephemera/environment.json").exists());
    p.wait_for("dev-kyle", Status::Deleted).await;
    let out = run(&["env", "status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no environment in use"));
    std::fs::remove_dir_all(&checkout).unwrap();
    p.stop().await;
}
