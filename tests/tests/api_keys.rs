//! The AppSync API keys port: the adapter against the emulator and the in-memory one behave
//! alike (a key made is listed until deleted; deleting it again is not an error).

use ephemera_app::memory::MemoryApiKeys;
use ephemera_app::ports::ApiKeys;
use ephemera_aws::appsync::AppSyncKeys;
use ephemera_aws::emulator_config;
use ephemera_tests::{init_logs, Emulator, REGION};
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
    conformance(&AppSyncKeys::new(appsync.clone()), &api_id, listed).await;

    let memory = MemoryApiKeys::new();
    let live = || async { memory.live().into_iter().map(|(_, k)| k).collect::<Vec<_>>() };
    conformance(&memory, "abc", live).await;
}
