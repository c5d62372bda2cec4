//! The AppSync API keys port: the adapter against the emulator and the in-memory one behave
//! alike (a key made is listed until deleted; deleting it again is not an error).

use ephemera_app::memory::MemoryApiKeys;
use ephemera_app::ports::ApiKeys;
use ephemera_aws::appsync::AppSyncKeys;
use ephemera_aws::emulator_config;
use ephemera_tests::least_privilege::{self, FunctionClients};
use ephemera_tests::{init_logs, test_config, Emulator, REGION};
use ephemera_wiring::Clients;

/// Makes a key, deletes it, deletes it again; `live` says which keys exist.
async fn conformance<F, Fut>(keys: &dyn ApiKeys, api: &str, live: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let expires = (chrono::Utc::now() + chrono::Duration::hours(26)).timestamp() / 3600 * 3600;
    let key = keys.create(api, expires, "ephemera load test").await.unwrap();
    assert_eq!(live().await, std::slice::from_ref(&key));
    keys.delete(api, &key).await.unwrap();
    assert!(live().await.is_empty());
    keys.delete(api, &key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_and_deleted_alike_in_appsync_and_in_memory() {
    init_logs();
    let emulator = Emulator::start().unwrap();
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
    let appsync = clients.appsync().clone();
    let api = appsync
        .create_graphql_api()
        .name("ephemera-pr-1-a-b-api")
        .authentication_type("API_KEY".into())
        .send()
        .await
        .unwrap();
    let api_id = api.graphql_api().unwrap().api_id().unwrap().to_owned();
    let listed = || {
        let (appsync, api_id) = (appsync.clone(), api_id.clone());
        async move {
            let out = appsync.list_api_keys().api_id(api_id).send().await.unwrap();
            out.api_keys().iter().filter_map(|k| k.id().map(str::to_owned)).collect::<Vec<_>>()
        }
    };
    // As the notifier's load test uses it, with the notifier's role (checked below).
    let notifier = FunctionClients::new(clients.sdk()).notifier;
    conformance(&AppSyncKeys::new(notifier.appsync().clone()), &api_id, listed).await;
    least_privilege::enforce(&test_config(&[]), &emulator.calls);

    let memory = MemoryApiKeys::new();
    let live = || async { memory.live().into_iter().map(|(_, k)| k).collect::<Vec<_>>() };
    conformance(&memory, "abc", live).await;
}

/// In a sandbox account the notifier (a load test's key) and the self-service function (a
/// developer's client key) make keys as the account's deploy role, in the environment's
/// session: each step allowed by the role it is made as (checked at the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_a_sandbox_account_are_made_as_its_deploy_role() {
    const ROLE: &str = "arn:aws:iam::222222222222:role/ephemera-deploy";
    init_logs();
    let emulator = Emulator::start().unwrap();
    let sdk = emulator_config(&emulator.endpoint, REGION).await;
    // The test's own looks in the account, as a role no function acts as.
    let own = ephemera_aws::sites::assume_role(&sdk, "arn:aws:iam::222222222222:role/test", "test", None, None);
    let appsync = aws_sdk_appsync::Client::new(&own.await.unwrap());
    let api = appsync.create_graphql_api().name("ephemera-pr-1-a-b-api").authentication_type("API_KEY".into());
    let api_id = api.send().await.unwrap().graphql_api().unwrap().api_id().unwrap().to_owned();
    let listed = || {
        let (appsync, api_id) = (appsync.clone(), api_id.clone());
        async move {
            let out = appsync.list_api_keys().api_id(api_id).send().await.unwrap();
            out.api_keys().iter().filter_map(|k| k.id().map(str::to_owned)).collect::<Vec<_>>()
        }
    };
    let functions = FunctionClients::new(&sdk);
    for function in [&functions.notifier, &functions.selfservice] {
        let tag = Some(("ephemera:environment", "pr-1-a-b"));
        let session =
            ephemera_aws::sites::assume_role(function.sdk(), ROLE, "ephemera-pr-1-a-b", tag, None).await.unwrap();
        conformance(&AppSyncKeys::new(aws_sdk_appsync::Client::new(&session)), &api_id, listed).await;
    }
    least_privilege::enforce(&test_config(&[("EPHEMERA_DEPLOY_ROLE_ARN", ROLE)]), &emulator.calls);
}
