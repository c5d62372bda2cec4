//! A clock that stands still until a test moves it.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::lock;
use crate::clock::Clock;

#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    /// At an RFC 3339 time; panics on a malformed one (tests only).
    pub fn at(rfc3339: &str) -> Self {
        Self::new(DateTime::parse_from_rfc3339(rfc3339).expect("an RFC 3339 time").to_utc())
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *lock(&self.0) = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.0);
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stands_still_until_moved() {
        let clock = FixedClock::at("2026-11-20T09:00:00Z");
        let t = clock.now();
        assert_eq!(clock.now(), t);
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), t + Duration::minutes(5));
        clock.set(t);
        assert_eq!(clock.now(), t);
    }
}
