//! Ephemera's application services and the ports they drive.
//!
//! - [`intake`] — a GitHub webhook delivery in, the desired state recorded and announced.
//! - [`provisioner`] — one environment reconciled against its CloudFormation stack.
//! - [`stack_events`] — CloudFormation's status events recorded on the registry, in order.
//! - [`catch_up`] — in the sweep: what deliveries missed, read from GitHub; failed deliveries
//!   asked for again.
//! - [`feedback`] — the sticky PR comment, deployments, smoke and load checks, commit statuses.
//! - [`ports`] — the narrow traits the AWS adapters implement.
//! - [`template`] — blueprint rendering (tags on every resource, known parameters).
//! - [`events`] — the platform's EventBridge events.
//! - [`outcome`] and [`retry`] — retry or give up: one rule for every function.
//! - `memory` (tests, and the `test-support` feature) — in-memory implementations of every port,
//!   and the conformance suite every registry must pass.

pub mod catch_up;
pub mod clock;
pub mod dashboard;
pub mod events;
pub mod feedback;
pub mod history;
pub mod intake;
pub mod leftovers;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod outcome;
pub mod ports;
pub mod provisioner;
pub mod reaper;
pub mod retry;
pub mod selfservice;
pub mod stack_events;
pub mod template;

pub use clock::{Clock, SystemClock};
pub use outcome::{Disposition, Retryable};
pub use ports::PortError;
