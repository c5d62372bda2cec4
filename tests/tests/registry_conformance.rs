//! The registry conformance suite (`ephemera_app::memory::conformance`) against the DynamoDB
//! adapter on the emulator: the same checks the in-memory registry passes in the app's unit
//! tests. One emulator; each check gets its own table (made as the platform makes it), and the
//! checks run at the same time.

use std::sync::Arc;

use ephemera_app::memory::conformance;
use ephemera_app::ports::Registry;
use ephemera_aws::bootstrap::{self, Resources};
use ephemera_aws::{emulator_config, DynamoRegistry};
use ephemera_tests::{init_logs, Emulator, REGION};
use ephemera_wiring::Clients;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamodb_registry_passes_the_conformance_suite() {
    init_logs();
    let emulator = Emulator::start().expect("emulator starts");
    let clients = Clients::new(&emulator_config(&emulator.endpoint, REGION).await);
    conformance::run_all(|check| {
        let clients = clients.clone();
        async move {
            let table = format!("conformance-{}", check.replace('_', "-"));
            let resources = Resources {
                table: table.clone(),
                bus: "conformance".into(),
                bucket: "conformance".into(),
                work_queue: "conformance".into(),
                notify_queue: None,
            };
            bootstrap::ensure(&clients.bootstrap(), &resources).await.expect("registry table made");
            Arc::new(DynamoRegistry::new(clients.dynamodb().clone(), table)) as Arc<dyn Registry>
        }
    })
    .await;
}
