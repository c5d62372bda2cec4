//! Repairing a stack whose deletion failed: empty its buckets and delete again; if it still
//! cannot go, delete it retaining what blocks it, then remove those resources directly.

use chrono::{DateTime, Utc};
use ephemera_domain::{StackName, StackStatus};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use super::calls::{retry, RateLimit};
use super::{reap_token, Reaper};
use crate::leftovers::delete_leftover;
use crate::ports::PortError;
use crate::ports::{Site, StackResource};
use ephemera_domain::catalogue::{self, Leftover};

impl Reaper {
    pub(super) async fn empty_buckets(
        &self,
        site: &Site,
        name: &StackName,
        limit: &RateLimit,
        calls: &mut u64,
    ) -> Result<(), PortError> {
        let buckets = retry(limit, calls, || site.stacks.buckets(name)).await?;
        for b in buckets {
            retry(limit, calls, || site.store.empty_bucket(&b)).await?;
        }
        Ok(())
    }

    /// Empties the buckets and deletes again; if the stack still cannot be deleted, deletes it
    /// retaining what failed, then removes those resources directly.
    pub(super) async fn repair(
        &self,
        site: &Site,
        name: &StackName,
        now: DateTime<Utc>,
        limit: &RateLimit,
        calls: &mut u64,
    ) -> Result<(), PortError> {
        self.empty_buckets(site, name, limit, calls).await?;
        let token = reap_token("repair", name, now);
        retry(limit, calls, || site.stacks.delete(name, &token)).await?;
        let deadline = Instant::now() + self.settings.repair_wait;
        loop {
            let view = retry(limit, calls, || site.stacks.describe(name)).await?;
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
        let blocking: Vec<_> = retry(limit, calls, || site.stacks.resources(name))
            .await?
            .into_iter()
            .filter(|r| r.status == StackStatus::DeleteFailed)
            .collect();
        let retain: Vec<String> = blocking.iter().map(|r| r.logical_id.clone()).collect();
        warn!(stack = %name, ?retain, "deleting the stack without what blocks it");
        let token = reap_token("retain", name, now);
        retry(limit, calls, || site.stacks.delete_retaining(name, &token, &retain)).await?;
        let environment = name.as_str().strip_prefix("ephemera-").unwrap_or(name.as_str());
        for r in blocking {
            let Some(leftover) = retained(&r, environment) else { continue };
            retry(limit, calls, || delete_leftover(&*site.store, &*site.cleaner, &leftover)).await?;
        }
        Ok(())
    }
}

/// What to delete directly for a resource the stack was deleted without: the catalogue's entry
/// for its type. A part of another resource (a role's inline policy) goes with that resource,
/// which CloudFormation then deletes, or the next sweep repairs. A resource whose name is not
/// the environment's is left in place.
fn retained(r: &StackResource, environment: &str) -> Option<Leftover> {
    let entry = catalogue::covers(&r.resource_type);
    let (Some(entry), Some(physical)) = (entry, r.physical_id.as_deref()) else {
        warn!(resource = %r.logical_id, r#type = %r.resource_type, "retained resource left in place: nothing to delete");
        return None;
    };
    if entry.resource_type != r.resource_type {
        warn!(resource = %r.logical_id, part_of = entry.resource_type, "retained; goes with the resource it is part of");
        return None;
    }
    let leftover = Leftover::from_physical(entry.kind, physical);
    if leftover.name().is_some_and(|n| !catalogue::named_or_cut_for(n, environment)) {
        warn!(resource = %physical, "retained resource not named for its environment: left in place");
        return None;
    }
    Some(leftover)
}
