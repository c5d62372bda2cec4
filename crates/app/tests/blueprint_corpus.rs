//! The blueprint corpus in `tests/fixtures/blueprints/`: every escaping template is refused,
//! every conforming one accepted (with its rewrites made).

use std::path::{Path, PathBuf};

use ephemera_app::template::{check, CheckError, REWRITES_OUTPUT};
use ephemera_domain::blueprint::Policy;

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/blueprints").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no templates in {}", dir.display());
    files
}

#[test]
fn every_escaping_template_is_refused() {
    for file in corpus("escaping") {
        let source = std::fs::read_to_string(&file).unwrap();
        match check(&source, &Policy::default()) {
            Err(CheckError::Refused(report)) => assert!(!report.violations.is_empty()),
            Err(other) => panic!("{}: not a readable template: {other}", file.display()),
            Ok(_) => panic!("{}: accepted", file.display()),
        }
    }
}

#[test]
fn every_conforming_template_is_accepted_with_nothing_left_to_keep_it() {
    for file in corpus("conforming") {
        let source = std::fs::read_to_string(&file).unwrap();
        let (doc, _) = check(&source, &Policy::default()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (id, r) in doc["Resources"].as_object().unwrap() {
            let props = &r["Properties"];
            assert!(r.get("DeletionPolicy").is_none_or(|v| v == "Delete"), "{}: {id}", file.display());
            assert!(props.get("DeletionProtectionEnabled").is_none_or(|v| v == false), "{}: {id}", file.display());
            assert!(props.get("DeletionProtection").is_none_or(|v| v == "INACTIVE"), "{}: {id}", file.display());
        }
        // What was switched off is said as it is, not as a deletion policy.
        let note = doc["Outputs"][REWRITES_OUTPUT]["Value"].as_str().unwrap_or_default();
        if source.contains("DeletionProtection: ACTIVE") {
            assert!(note.contains("Properties.DeletionProtection ACTIVE to INACTIVE"), "{}: {note}", file.display());
        }
    }
}
