//! Expiry policy.

use chrono::{DateTime, Duration, Utc};

use crate::environment::EnvironmentKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// A pull request's environment expires after this long without a push.
    pub pr_inactivity: Duration,
    /// A developer's environment lives this long unless extended.
    pub dev_ttl: Duration,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self { pr_inactivity: Duration::days(7), dev_ttl: Duration::hours(8) }
    }
}

impl ExpiryPolicy {
    /// When an environment of `kind`, last active at `activity`, expires.
    pub fn expires_at(&self, kind: EnvironmentKind, activity: DateTime<Utc>) -> DateTime<Utc> {
        let ttl = match kind {
            // A branch's, like a pull request's, lasts from its last push.
            EnvironmentKind::Pr | EnvironmentKind::Branch => self.pr_inactivity,
            EnvironmentKind::Dev => self.dev_ttl,
        };
        // Whole seconds: the value is written into tags and compared as text.
        let t = activity + ttl;
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_and_dev_ttls() {
        let p = ExpiryPolicy::default();
        let t = DateTime::parse_from_rfc3339("2026-11-22T10:00:00.750Z").unwrap().to_utc();
        assert_eq!(p.expires_at(EnvironmentKind::Pr, t).to_rfc3339(), "2026-11-29T10:00:00+00:00");
        assert_eq!(p.expires_at(EnvironmentKind::Dev, t).to_rfc3339(), "2026-11-22T18:00:00+00:00");
    }
}
