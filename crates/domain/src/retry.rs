//! The one retry policy: how many attempts, and how long to wait between them (exponential
//! backoff with full jitter, capped). Pure: the caller supplies the random draw and sleeps.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait after the first failure, doubled after each further one.
    pub base: Duration,
    /// No wait is longer than this.
    pub max: Duration,
    /// Waits are drawn uniformly from [wait/2, wait] so that clients retrying together spread out.
    pub jitter: bool,
}

impl RetryPolicy {
    pub const fn new(attempts: u32, base: Duration, max: Duration) -> Self {
        Self { attempts, base, max, jitter: true }
    }

    /// A call to AWS that the SDK has already retried (throttling, 5xx): a few more tries,
    /// spread over a few seconds, before the work goes back to its queue.
    pub const AWS: RetryPolicy = RetryPolicy::new(6, Duration::from_millis(200), Duration::from_secs(5));
    /// A registry write that lost a race (a DynamoDB transaction conflict, a lease release whose
    /// answer was lost): quick retries.
    pub const CONFLICT: RetryPolicy = RetryPolicy::new(6, Duration::from_millis(50), Duration::from_secs(1));
    /// GitHub's REST API: its own rate-limit headers say how long to wait when it sends them.
    pub const GITHUB: RetryPolicy = RetryPolicy::new(5, Duration::from_millis(500), Duration::from_secs(60));

    /// The wait before the next attempt after `failed` attempts have failed, or None when none
    /// is left. `draw` is a random number in [0, 1) (used when `jitter` is on).
    pub fn backoff(&self, failed: u32, draw: f64) -> Option<Duration> {
        if failed == 0 || failed >= self.attempts {
            return None;
        }
        let doubled = self.base.saturating_mul(1u32.checked_shl(failed - 1).unwrap_or(u32::MAX));
        let wait = doubled.min(self.max);
        Some(if self.jitter { wait.mul_f64(0.5 + draw.clamp(0.0, 1.0) / 2.0) } else { wait })
    }

    /// Whether another attempt is allowed after `failed` failures.
    pub fn allows_another(&self, failed: u32) -> bool {
        failed < self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_up_to_the_cap_and_stops_after_the_last_attempt() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::new(5, Duration::from_millis(100), Duration::from_millis(350))
        };
        let waits: Vec<_> = (1..=5).map(|f| p.backoff(f, 0.0)).collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(350)),
                Some(Duration::from_millis(350)),
                None
            ]
        );
        assert_eq!(p.backoff(0, 0.0), None);
        assert!(p.allows_another(4) && !p.allows_another(5));
    }

    #[test]
    fn jitter_stays_within_half_to_full_wait() {
        let p = RetryPolicy::new(3, Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(p.backoff(2, 0.0), Some(Duration::from_millis(100)));
        assert_eq!(p.backoff(2, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(p.backoff(2, 0.5), Some(Duration::from_millis(150)));
        // A huge attempt count does not overflow.
        let long = RetryPolicy::new(u32::MAX, Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(long.backoff(200, 1.0), Some(Duration::from_secs(60)));
    }
}
