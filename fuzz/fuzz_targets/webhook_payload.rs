//! Webhook payload parsing and what is derived from it: any bytes as any event. Never panics;
//! a parsed pull request maps to a valid environment and stack name, or a clear error.
#![no_main]

use ephemera_domain::{EnvironmentName, RepoName, StackName};
use ephemera_github_webhook::{parse_event, WebhookEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for event in ["pull_request", "ping", "push"] {
        let Ok(WebhookEvent::PullRequest(pr)) = parse_event(event, data) else { continue };
        let _ = pr.is_from_fork();
        let Ok(repo) = RepoName::parse(&pr.repository.full_name) else { continue };
        if let Ok(name) = EnvironmentName::for_pull_request(&repo, pr.pull_request.number) {
            let stack = name.stack_name();
            assert!(stack.as_str().len() <= 128, "stack name too long: {stack}");
            assert_eq!(StackName::environment(stack.as_str()), Some(name.clone()));
            assert_eq!(EnvironmentName::parse(name.as_str()).ok(), Some(name));
        }
    }
});
