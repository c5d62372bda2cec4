//! `ephemera blueprint check FILE`: the provisioner's blueprint policy, offline.

use std::path::Path;

use anyhow::{anyhow, Context};
use ephemera_app::template::{check, CheckError};
use ephemera_domain::blueprint::Policy;
use serde_json::json;

use crate::Failure;

/// Checks `file` with the default policy widened by `types` and `preview_hosts`: 0 when it
/// passes (rewrites are listed), 1 with every violation when it does not.
pub fn run(file: &Path, types: &[String], preview_hosts: &[String], as_json: bool) -> Result<(), Failure> {
    let source = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut policy = Policy::default();
    policy.types.extend(types.iter().cloned());
    policy.literal_preview_hosts.extend(preview_hosts.iter().cloned());
    match check(&source, &policy) {
        Ok((_, report)) => {
            let rewrites: Vec<String> = report.rewrites.iter().map(ToString::to_string).collect();
            if as_json {
                println!(
                    "{}",
                    json!({"file": file.display().to_string(), "accepted": true, "violations": [], "rewrites": rewrites})
                );
            } else {
                println!("{}: meets the blueprint policy", file.display());
                rewrites.iter().for_each(|r| println!("  {r}"));
            }
            Ok(())
        }
        Err(CheckError::Refused(report)) => {
            let violations: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
            if as_json {
                println!(
                    "{}",
                    json!({"file": file.display().to_string(), "accepted": false, "violations": violations})
                );
            } else {
                violations.iter().for_each(|v| println!("{v}"));
            }
            Err(Failure(1, anyhow!("{}: {} violation(s) of the blueprint policy", file.display(), violations.len())))
        }
        Err(CheckError::Template(e)) => Err(Failure(1, anyhow!("{}: {e}", file.display()))),
    }
}
