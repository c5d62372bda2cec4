//! Carrying out [`RetryPolicy`]: a call made again while it fails retryably.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};

use ephemera_domain::RetryPolicy;
use tracing::warn;

use crate::outcome::Retryable;

/// Calls `op` until it succeeds, fails permanently, or `policy` allows no more attempts; waits
/// between attempts as the policy says. `what` names the call in logs.
pub async fn retry<T, E, F, Fut>(policy: RetryPolicy, what: &str, mut op: F) -> Result<T, E>
where
    E: Retryable + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failed = 0;
    loop {
        match op().await {
            Err(e) if e.is_retryable() => {
                failed += 1;
                let Some(wait) = policy.backoff(failed, draw()) else { return Err(e) };
                warn!(error = %e, attempt = failed, wait_ms = wait.as_millis() as u64, "{what}: retrying");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// A random number in [0, 1) for jitter, from the standard library's per-process random keys.
pub fn draw() -> f64 {
    let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PortError;
    use std::time::Duration;

    fn throttled() -> PortError {
        PortError::Retryable { operation: "op", message: "slow down".into() }
    }

    #[tokio::test]
    async fn retries_retryable_failures_until_the_policy_gives_up() {
        let policy = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(1));
        let mut calls = 0;
        let result: Result<(), _> = retry(policy, "op", || {
            calls += 1;
            async { Err(throttled()) }
        })
        .await;
        assert!(result.unwrap_err().is_retryable());
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn stops_at_success_or_a_permanent_failure() {
        let policy = RetryPolicy::new(5, Duration::from_millis(1), Duration::from_millis(1));
        let mut calls = 0;
        let ok = retry(policy, "op", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(throttled())
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(ok.unwrap(), 3);
        let mut calls = 0;
        let permanent: Result<(), _> = retry(policy, "op", || {
            calls += 1;
            async { Err(PortError::Permanent { operation: "op", message: "no".into() }) }
        })
        .await;
        assert!(permanent.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn draws_are_in_the_unit_interval() {
        assert!((0..100).map(|_| draw()).all(|d| (0.0..1.0).contains(&d)));
    }
}
