//! Retry or give up: the one rule for what becomes of a failed piece of work, shared by the
//! Lambda handlers (report the message for redelivery, or fail the invocation) and the local
//! runner (make the message visible again, or delete it).

use crate::events::EnvelopeError;
use crate::ports::PortError;

/// A failure that may go away if the same work is done again later.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for PortError {
    fn is_retryable(&self) -> bool {
        PortError::is_retryable(self)
    }
}

impl Retryable for crate::intake::IntakeError {
    fn is_retryable(&self) -> bool {
        matches!(self, crate::intake::IntakeError::Unavailable(p) if p.is_retryable())
    }
}

/// What becomes of one message once handled.
#[derive(Debug)]
pub enum Disposition<T, E> {
    /// Handled: delete it.
    Done(T),
    /// Failed, but may succeed later: deliver it again.
    Retry(E),
    /// Can never succeed: log it and drop it.
    Drop(E),
}

impl<T, E: Retryable> From<Result<T, E>> for Disposition<T, E> {
    fn from(outcome: Result<T, E>) -> Self {
        match outcome {
            Ok(done) => Disposition::Done(done),
            Err(e) if e.is_retryable() => Disposition::Retry(e),
            Err(e) => Disposition::Drop(e),
        }
    }
}

impl<T: std::fmt::Debug, E: std::fmt::Display> Disposition<T, E> {
    /// Logs the disposition; `what` names the work (a message id, "feedback").
    pub fn logged(self, what: &str) -> Self {
        match &self {
            Disposition::Done(done) => tracing::info!(?done, "{what} handled"),
            Disposition::Retry(e) => tracing::warn!(error = %e, "{what}: will retry"),
            Disposition::Drop(e) => tracing::error!(error = %e, "{what}: dropping work that cannot succeed"),
        }
        self
    }
}

/// Handling one event message failed: a port's error (retryable as the port says) or a message
/// that can never be handled. The stack-events and notifier functions share it.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    BadMessage(#[from] EnvelopeError),
}

impl Retryable for MessageError {
    fn is_retryable(&self) -> bool {
        match self {
            MessageError::Port(p) => p.is_retryable(),
            MessageError::BadMessage(_) => false,
        }
    }
}

/// What a Lambda function invoked with one event does with its outcome: a retryable failure is
/// returned, so Lambda retries the event (then hands it to its on-failure destination); any
/// other failure is logged and the event dropped, since retrying cannot help.
pub fn settle<T: std::fmt::Debug, E: Retryable + std::fmt::Display>(
    what: &str,
    outcome: Result<T, E>,
) -> Result<Option<T>, E> {
    match Disposition::from(outcome).logged(what) {
        Disposition::Done(done) => Ok(Some(done)),
        Disposition::Retry(e) => Err(e),
        Disposition::Drop(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_failures_are_retried_and_the_rest_dropped() {
        let throttled = PortError::Retryable { operation: "op", message: "slow down".into() };
        let refused = PortError::Permanent { operation: "op", message: "no".into() };
        assert!(matches!(Disposition::<(), _>::from(Err(throttled)), Disposition::Retry(_)));
        assert!(matches!(Disposition::<(), _>::from(Err(refused)), Disposition::Drop(_)));
        assert!(matches!(Disposition::<_, PortError>::from(Ok(1)), Disposition::Done(1)));
        let bad = MessageError::BadMessage(EnvelopeError::ForeignSource("aws.s3".into()));
        assert!(!bad.is_retryable());
        assert!(matches!(settle("x", Err::<(), _>(bad)), Ok(None)));
        let port = MessageError::Port(PortError::Retryable { operation: "op", message: "x".into() });
        assert!(settle("x", Err::<(), _>(port)).is_err());
    }
}
