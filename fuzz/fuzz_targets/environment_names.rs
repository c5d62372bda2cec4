//! Environment names from any repository name, number, login and name: valid, within
//! CloudFormation's limits, and stable through parsing; different pull requests never share one.
#![no_main]

use ephemera_domain::{EnvironmentName, RepoName, StackName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let repo = parts.next().unwrap_or_default();
    let number: u64 = parts.next().and_then(|n| n.trim().parse().ok()).unwrap_or(1);
    let login = parts.next().unwrap_or_default();
    let check = |name: &EnvironmentName| {
        let s = name.as_str();
        assert!(!s.is_empty() && s.len() <= ephemera_domain::names::MAX_ENVIRONMENT_NAME, "{s}");
        assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{s}");
        assert_eq!(EnvironmentName::parse(s).ok().as_ref(), Some(name));
        assert_eq!(StackName::environment(name.stack_name().as_str()).as_ref(), Some(name));
        assert!(name.stack_name().as_str().len() <= 128);
    };
    if let Ok(repo) = RepoName::parse(repo) {
        if let Ok(a) = EnvironmentName::for_pull_request(&repo, number) {
            check(&a);
            if let Ok(b) = EnvironmentName::for_pull_request(&repo, number.wrapping_add(1)) {
                assert_ne!(a, b);
            }
        }
    }
    if let Ok(dev) = EnvironmentName::for_developer(login, None) {
        check(&dev);
    }
    let _ = EnvironmentName::parse(&text);
});
