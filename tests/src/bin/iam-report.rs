//! The statements no end-to-end test exercised, against the list in `docs/iam.md`.
//!
//! Each platform a test starts writes the statements its functions' calls were allowed by to
//! the folder `EPHEMERA_IAM_EXERCISED` (see `tests/src/least_privilege.rs`); `make test` runs
//! every test, then this. It reads the statements of every role the platform's functions act
//! as (their own, and the parts of a sandbox account's deploy role they call with directly),
//! and compares those never exercised with the table under "Statements no test exercises" in
//! `docs/iam.md`, where each has its reason.
//!
//! Usage: iam-report [--check]. Without --check it prints the table's rows as they should be
//! (new ones with an empty reason); with it, it fails when the table differs or a reason is
//! missing.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use anyhow::Context;
use ephemera_tests::least_privilege::{self, KEYS};
use ephemera_tests::policy;
use ephemera_tests::{test_config, workspace_root};

const HEADING: &str = "## Statements no test exercises";
/// The deploy role's policies the functions call with directly (the others are
/// CloudFormation's, checked against the resource schemas).
const DIRECT: [&str; 4] =
    ["OneEnvironmentDirectPolicy", "OneEnvironmentLeftoversPolicy", "SweepPolicy", "SweepDeletesPolicy"];

/// Every statement in scope: role → statement ids.
fn statements() -> anyhow::Result<BTreeSet<(String, String)>> {
    // A configuration with a sandbox account, so that the statements for one are in.
    let config = test_config(&[("EPHEMERA_DEPLOY_ROLE_ARN", "arn:aws:iam::111111111111:role/ephemera-deploy")]);
    let roles = least_privilege::roles(&config, policy::expanded_template())?;
    let mut out = BTreeSet::new();
    for (key, role) in &roles {
        let function = KEYS.iter().any(|(_, r)| r == key);
        for statement in role.statements.iter().filter(|s| s.allow) {
            if function || (role.name == "DeployRole" && DIRECT.contains(&statement.policy.as_str())) {
                out.insert((role.name.clone(), statement.id()));
            }
        }
    }
    Ok(out)
}

fn exercised() -> anyhow::Result<BTreeSet<(String, String)>> {
    let folder = std::env::var_os("EPHEMERA_IAM_EXERCISED").context("EPHEMERA_IAM_EXERCISED names no folder")?;
    let mut out = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&folder).with_context(|| format!("reading {folder:?}"))? {
        let text = std::fs::read_to_string(entry?.path())?;
        files += 1;
        for line in text.lines() {
            if let Some((role, id)) = line.split_once(' ') {
                out.insert((role.to_owned(), id.to_owned()));
            }
        }
    }
    anyhow::ensure!(files > 0, "no test wrote to {folder:?}: run the end-to-end tests first");
    Ok(out)
}

/// The table's rows in `docs/iam.md`: (role, statement) → reason.
fn documented(text: &str) -> BTreeMap<(String, String), String> {
    let section = text.split(HEADING).nth(1).unwrap_or_default();
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().strip_prefix('|')?.strip_suffix('|')?.split('|').map(str::trim).collect();
            let [role, id, reason] = cells[..] else { return None };
            let id = id.trim_matches('`');
            (role != "Role" && !role.starts_with('-')).then(|| ((role.to_owned(), id.to_owned()), reason.to_owned()))
        })
        .collect()
}

fn main() -> anyhow::Result<ExitCode> {
    let check = std::env::args().any(|a| a == "--check");
    let all = statements()?;
    let exercised = exercised()?;
    let unexercised: BTreeSet<_> = all.difference(&exercised).cloned().collect();
    let path = workspace_root().join("docs/iam.md");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let listed = documented(&text);
    if !check {
        for (role, id) in &unexercised {
            let reason = listed.get(&(role.clone(), id.clone())).map(String::as_str).unwrap_or("");
            println!("| {role} | `{id}` | {reason} |");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut problems = Vec::new();
    for key @ (role, id) in &unexercised {
        match listed.get(key) {
            None => problems
                .push(format!("{role} {id}: no test exercises it; give the reason in docs/iam.md, or remove it")),
            Some(r) if r.is_empty() => problems.push(format!("{role} {id}: listed without a reason")),
            Some(_) => {}
        }
    }
    for (role, id) in listed.keys().filter(|k| !unexercised.contains(*k)) {
        let why =
            if all.contains(&(role.clone(), id.clone())) { "a test exercises it now" } else { "no such statement" };
        problems.push(format!("{role} {id}: listed in docs/iam.md, but {why}; take it off the list"));
    }
    println!(
        "{} statements, {} exercised, {} not (each with its reason)",
        all.len(),
        all.len() - unexercised.len(),
        unexercised.len()
    );
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("docs/iam.md's statements no test exercises are not current:\n  {}", problems.join("\n  "));
    Ok(ExitCode::FAILURE)
}
