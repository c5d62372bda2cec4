//! The provisioner function: an SQS batch of EventBridge events in, environments reconciled,
//! the messages that should be retried reported back (partial batch response).

use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use ephemera_app::provisioner::Provisioner;
use ephemera_app::Disposition;
use tokio::task::JoinSet;
use tracing::error;

/// Reconciles every message of the batch concurrently; retryable failures are reported so SQS
/// delivers those messages again (and, after the queue's limit, to its dead-letter queue).
/// A message that can never succeed (not an Ephemera event) is logged and dropped.
pub async fn handle_batch(provisioner: Arc<Provisioner>, event: SqsEvent) -> SqsBatchResponse {
    let mut tasks = JoinSet::new();
    for record in event.records {
        let p = provisioner.clone();
        tasks.spawn(async move {
            let id = record.message_id.unwrap_or_default();
            let body = record.body.unwrap_or_default();
            (id, p.handle_message(&body).await)
        });
    }
    let mut response = SqsBatchResponse::default();
    while let Some(joined) = tasks.join_next().await {
        let (id, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "reconcile task panicked");
                continue;
            }
        };
        if let Disposition::Retry(_) = Disposition::from(result).logged(&format!("message {id}")) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
