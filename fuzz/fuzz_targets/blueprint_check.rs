//! Any template (as JSON): the blueprint check never panics, and what it accepts stays
//! accepted once its rewrites are made, with nothing left to rewrite.
#![no_main]

use ephemera_domain::blueprint::{check, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut template) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let policy = Policy::default();
    let report = check(&template, &policy);
    let _ = report.reason();
    if report.accepted() {
        report.apply(&mut template);
        let again = check(&template, &policy);
        assert!(again.accepted(), "{:?}", again.violations);
        assert!(again.rewrites.is_empty(), "{:?}", again.rewrites);
    }
});
