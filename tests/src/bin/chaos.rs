//! `make chaos`: the chaos run (see `ephemera_tests::chaos`), printed as a table and recorded in
//! `bench/chaos.json`, which keeps the latest run of each seed. Exit 1 if an invariant does not
//! hold.
//!
//! Options: `--prs N` (100), `--repos N` (10), `--seed N` (1), `--settle-seconds N` (600),
//! `--lost-percent N` (20: the share of closes and pushes never delivered).

use std::time::Duration;

use ephemera_tests::chaos::{run, Plan};
use ephemera_tests::faults::Faults;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: u64| -> anyhow::Result<u64> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args.get(i + 1).ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?.parse()?),
            None => Ok(default),
        }
    };
    let plan = Plan {
        prs: opt("--prs", 100)?,
        repos: opt("--repos", 10)?.max(1),
        seed: opt("--seed", 1)?,
        faults: Faults::CHAOS,
        settle: Duration::from_secs(opt("--settle-seconds", 600)?),
        lost: opt("--lost-percent", 20)? as f64 / 100.0,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(run(plan));
    print!("{}", report.table());
    let path = ephemera_tests::workspace_root().join("bench/chaos.json");
    // The latest run of each seed, by seed.
    let earlier: serde_json::Value =
        std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let mut runs: Vec<serde_json::Value> = earlier["runs"].as_array().cloned().unwrap_or_default();
    runs.retain(|r| r["seed"] != serde_json::json!(report.seed));
    runs.push(serde_json::to_value(&report)?);
    runs.sort_by_key(|r| r["seed"].as_u64());
    std::fs::write(&path, serde_json::to_string_pretty(&serde_json::json!({ "runs": runs }))? + "\n")?;
    println!("written to {}", path.display());
    if !report.holds() {
        std::process::exit(1);
    }
    Ok(())
}
