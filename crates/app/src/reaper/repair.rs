//! Repairing a stack whose deletion failed: empty its buckets and delete again; if it still
//! cannot go, delete it retaining what blocks it, then remove those resources directly.

use chrono::{DateTime, Utc};
use ephemera_domain::{StackName, StackStatus};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use super::calls::{retry, RateLimit};
use super::{reap_token, Reaper};
use crate::ports::PortError;

impl Reaper {
    pub(super) async fn empty_buckets(
        &self,
        name: &StackName,
        limit: &RateLimit,
        calls: &mut u64,
    ) -> Result<(), PortError> {
        let buckets = retry(limit, calls, || self.stacks.buckets(name)).await?;
        for b in buckets {
            retry(limit, calls, || self.store.empty_bucket(&b)).await?;
        }
        Ok(())
    }

    /// Empties the buckets and deletes again; if the stack still cannot be deleted, deletes it
    /// retaining what failed, then removes those resources directly.
    pub(super) async fn repair(
        &self,
        name: &StackName,
        now: DateTime<Utc>,
        limit: &RateLimit,
        calls: &mut u64,
    ) -> Result<(), PortError> {
        self.empty_buckets(name, limit, calls).await?;
        let token = reap_token("repair", name, now);
        retry(limit, calls, || self.stacks.delete(name, &token)).await?;
        let deadline = Instant::now() + self.settings.repair_wait;
        loop {
            let view = retry(limit, calls, || self.stacks.describe(name)).await?;
            match view.map(|v| v.status) {
                None => return Ok(()),
                Some(StackStatus::DeleteFailed) => break,
                Some(_) if Instant::now() >= deadline => {
                    return Err(PortError::Retryable {
                        operation: "repair stack",
                        message: format!("{name} is still being deleted; the next sweep looks again"),
                    })
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        let blocking: Vec<_> = retry(limit, calls, || self.stacks.resources(name))
            .await?
            .into_iter()
            .filter(|r| r.status == StackStatus::DeleteFailed)
            .collect();
        let retain: Vec<String> = blocking.iter().map(|r| r.logical_id.clone()).collect();
        warn!(stack = %name, ?retain, "deleting the stack without what blocks it");
        let token = reap_token("retain", name, now);
        retry(limit, calls, || self.stacks.delete_retaining(name, &token, &retain)).await?;
        for r in blocking {
            let Some(id) = r.physical_id.filter(|id| id.to_ascii_lowercase().starts_with(name.as_str())) else {
                continue;
            };
            match r.resource_type.as_str() {
                "AWS::S3::Bucket" => {
                    retry(limit, calls, || self.store.empty_bucket(&id)).await?;
                    retry(limit, calls, || self.cleaner.delete_bucket(&id)).await?;
                }
                "AWS::DynamoDB::Table" => retry(limit, calls, || self.cleaner.delete_table(&id)).await?,
                other => warn!(stack = %name, resource = %id, r#type = other, "retained resource left in place"),
            }
        }
        Ok(())
    }
}
