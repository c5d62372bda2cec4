//! Ephemera's domain model. Pure: no I/O, no AWS, no clock reads (time is always passed in).
//!
//! - [`blueprint`] — the policy a template must meet before any stack call: types, trust,
//!   references, names, retention.
//! - [`catch_up`] — what GitHub says of a pull request against what was recorded; failed
//!   deliveries to send again; the budget of GitHub requests a sweep may make.
//! - [`catalogue`] — every resource type a blueprint may hold: how the sweep finds, owns and
//!   deletes it, how a template tags it, what it costs.
//! - [`names`] — repository, environment and stack names, and how a pull request maps to them.
//! - [`tags`] — the tag set every stack and resource carries; the reaper and cost reports rely on it.
//! - [`lifecycle`] — desired state, status, and the ordering rule that keeps late events from
//!   resurrecting a closed pull request's environment.
//! - [`stack`] — CloudFormation's stack statuses, typed.
//! - [`retry`] — the one retry policy (attempts, backoff, jitter).
//! - [`reconcile`] — desired versus observed stack, and the next step to take.
//! - [`policy`] — expiry.
//! - [`preview`] — rebase-first commit choice, labels and fork approval.
//! - [`perf`] — load-test measurements, baselines and the regression gate.
//! - [`environment`] — the registry record.

pub mod admission;
pub mod blueprint;
pub mod branch;
pub mod catalogue;
pub mod catch_up;
pub mod command;
pub mod cost;
pub mod developer;
pub mod environment;
pub mod lifecycle;
pub mod names;
pub mod perf;
pub mod placement;
pub mod policy;
pub mod preview;
pub mod reconcile;
pub mod repo_config;
pub mod retry;
pub mod stack;
pub mod sweep;
pub mod tags;

pub use environment::{Environment, EnvironmentKind};
pub use lifecycle::{Desired, EventOrder, Reported, Status};
pub use names::{EnvironmentName, NameError, RepoName, StackName};
pub use preview::CommitSource;
pub use retry::RetryPolicy;
pub use stack::StackStatus;
pub use tags::TagSet;
