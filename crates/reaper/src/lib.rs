//! What a schedule asks the reaper to do.

use ephemera_app::reaper::SweepOptions;
use serde_json::Value;

/// Reads the sweep's options from the invocation: the schedule's own input
/// (`{"mode": "light"}`, `{"dry_run": true}`), or a plain EventBridge scheduled event, which
/// means a full sweep.
pub fn options(event: &Value) -> SweepOptions {
    let field = |k: &str| event.get(k).or_else(|| event.get("detail").and_then(|d| d.get(k)));
    SweepOptions {
        light: field("mode").and_then(Value::as_str) == Some("light"),
        dry_run: field("dry_run").and_then(Value::as_bool).unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_inputs() {
        let nightly: Value =
            serde_json::from_slice(include_bytes!("../../../events/eventbridge/scheduled-event.json")).unwrap();
        let o = options(&nightly);
        assert!(!o.light && !o.dry_run);
        let light: Value =
            serde_json::from_slice(include_bytes!("../../../events/eventbridge/reaper-light-input.json")).unwrap();
        assert!(options(&light).light);
        assert!(options(&serde_json::json!({"dry_run": true})).dry_run);
    }
}
