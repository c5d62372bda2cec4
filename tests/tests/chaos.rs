//! A small chaos run in the test suite (`make chaos` runs the full one: 100 pull requests in 10
//! repositories): random events, duplicates, disorder, lost deliveries and faults, then the
//! reaper catching up with GitHub; every invariant must hold.

use std::time::Duration;

use ephemera_tests::chaos::{run, Plan};
use ephemera_tests::faults::Faults;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_chaos_run_keeps_every_invariant() {
    let report =
        run(Plan { prs: 12, repos: 3, seed: 11, faults: Faults::CHAOS, settle: Duration::from_secs(120), lost: 0.3 })
            .await;
    println!("{}", report.table());
    assert!(report.deliveries >= 12 && report.faults_injected > 0, "{}", report.table());
    assert!(report.holds(), "{}", report.table());
}
