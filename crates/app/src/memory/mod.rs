//! In-memory implementations of every port, for tests that exercise the services' decisions
//! without an emulator. Each keeps its state behind a mutex, records what it was asked, and can
//! be told to fail an operation (see [`Faults`]).
//!
//! - [`MemoryRegistry`] — the registry, with the same conditions as the DynamoDB adapter
//!   (checked by [`conformance`], which runs against both).
//! - [`MemoryStacks`] — CloudFormation, enough of it for the provisioner's loop and the reaper.
//! - [`MemoryStore`], [`MemorySeeder`] — S3 and an environment's tables.
//! - [`MemoryBus`] — EventBridge: the events published.
//! - [`MemoryResources`] — the tagging API and direct deletes (`Inventory` and `Cleaner`).
//! - [`MemorySites`] — the accounts environments live in, each with its own fakes of the above.
//! - [`MemoryGitHub`], [`MemoryProber`], [`MemoryApiKeys`] — what the notifier, the intake and
//!   self-service ask of the outside world.
//! - [`FixedClock`] — a clock that only moves when told.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::ports::PortError;

pub mod bus;
pub mod clock;
pub mod conformance;
pub mod fixtures;
pub mod github;
pub mod github_conformance;
pub mod keys;
pub mod probe;
pub mod pulls;
pub mod registry;
pub mod resources;
pub mod seeder;
pub mod sites;
pub mod stacks;
pub mod store;

pub use bus::MemoryBus;
pub use clock::FixedClock;
pub use github::{GitHubCall, MemoryGitHub};
pub use keys::MemoryApiKeys;
pub use probe::MemoryProber;
pub use pulls::{MemoryPulls, PullState};
pub use registry::MemoryRegistry;
pub use resources::MemoryResources;
pub use seeder::MemorySeeder;
pub use sites::{MemoryPlace, MemorySites};
pub use stacks::{FakeStack, MemoryStacks};
pub use store::MemoryStore;

/// Failures to inject, by operation name (each fake documents its names): once, for the next
/// call, or for every call until cleared.
#[derive(Debug, Default)]
pub struct Faults {
    next: Mutex<HashMap<String, VecDeque<PortError>>>,
    always: Mutex<HashMap<String, bool>>,
}

impl Faults {
    /// The next call of `operation` fails with `error`; queued errors are used in turn.
    pub fn fail_next(&self, operation: &str, error: PortError) {
        lock(&self.next).entry(operation.to_owned()).or_default().push_back(error);
    }

    /// Every call of `operation` fails (retryable or not) until [`Faults::clear`].
    pub fn fail_always(&self, operation: &str, retryable: bool) {
        lock(&self.always).insert(operation.to_owned(), retryable);
    }

    pub fn clear(&self) {
        lock(&self.next).clear();
        lock(&self.always).clear();
    }

    /// Called by the fakes at the start of `operation`.
    pub fn check(&self, operation: &'static str) -> Result<(), PortError> {
        if let Some(e) = lock(&self.next).get_mut(operation).and_then(VecDeque::pop_front) {
            return Err(e);
        }
        match lock(&self.always).get(operation) {
            Some(true) => Err(retryable(operation, "injected failure")),
            Some(false) => Err(permanent(operation, "injected failure")),
            None => Ok(()),
        }
    }
}

/// A retryable error (throttling, say), as the adapters report it.
pub fn retryable(operation: &'static str, message: &str) -> PortError {
    PortError::Retryable { operation, message: message.to_owned() }
}

/// A permanent error (a refused request), as the adapters report it.
pub fn permanent(operation: &'static str, message: &str) -> PortError {
    PortError::Permanent { operation, message: message.to_owned() }
}

/// Locks, ignoring poisoning: a test that panicked while holding the lock has failed already.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
