//! Every call the reaper makes: rate-limited, counted, and retried under [`RetryPolicy::AWS`].

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

use ephemera_domain::RetryPolicy;

use crate::ports::PortError;

/// At most one mutating call per interval.
pub(super) struct RateLimit {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    pub(super) fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 { per_second } else { 1.0 };
        Self { interval: Duration::from_secs_f64(1.0 / per_second), next: Mutex::new(Instant::now()) }
    }
    pub(super) async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

/// A call to AWS, retried under [`RetryPolicy::AWS`] while it fails retryably (throttling,
/// 5xx); each attempt waits its turn under the rate limit and is counted.
pub(super) async fn retry<T, F, Fut>(limit: &RateLimit, calls: &mut u64, mut f: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PortError>>,
{
    let attempts = std::sync::atomic::AtomicU64::new(0);
    let result = crate::retry::retry(RetryPolicy::AWS, "reaper call", || {
        let call = f();
        let attempts = &attempts;
        async move {
            limit.wait().await;
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            call.await
        }
    })
    .await;
    *calls += attempts.into_inner();
    result
}
