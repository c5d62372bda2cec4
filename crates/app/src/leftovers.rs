//! Resources that outlived their stack: deleted by the reaper as orphans, by the reaper's
//! repair of a stack whose deletion failed, and by the provisioner before it creates an
//! environment's stack again, since they would collide with the new stack's resources of the
//! same names (see [`ephemera_domain::sweep::leftovers`]). All three delete through
//! [`delete_leftover`], which follows the resource catalogue.

use std::sync::Arc;

use ephemera_domain::catalogue::{Kind, Leftover};
use ephemera_domain::sweep;
use ephemera_domain::{Desired, EnvironmentName, Status};
use tracing::{info, instrument, warn};

use crate::ports::{Cleaner, Environments, Inventory, ObjectStore, PortError};

/// Deletes one resource completely: a bucket emptied first (every version), a function or an
/// API followed by the log group its service writes to.
pub async fn delete_leftover(
    store: &dyn ObjectStore,
    cleaner: &dyn Cleaner,
    leftover: &Leftover,
) -> Result<(), PortError> {
    if leftover.kind == Kind::Bucket {
        store.empty_bucket(&leftover.id).await?;
    }
    cleaner.delete(leftover).await?;
    let Some(logs) = leftover.log_group() else { return Ok(()) };
    match cleaner.delete(&logs).await {
        // One AppSync made itself carries no tag, and IAM lets the platform delete only tagged
        // API log groups: the API is gone either way, so this is reported, not retried.
        Err(e) if leftover.kind == Kind::GraphQlApi && !e.is_retryable() => {
            warn!(log_group = %logs.id, error = %e, "the API's log group was left in place");
            Ok(())
        }
        other => other,
    }
}

/// What the provisioner clears an environment's leftovers with.
#[derive(Clone)]
pub struct Leftovers {
    pub inventory: Arc<dyn Inventory>,
    pub store: Arc<dyn ObjectStore>,
    pub cleaner: Arc<dyn Cleaner>,
    /// To tell whether a resource owned by its name could be another environment's.
    pub registry: Arc<dyn Environments>,
}

impl Leftovers {
    /// Deletes what earlier stacks of `environment` left behind; the caller has seen that no
    /// stack of its name exists. Returns the ARNs deleted.
    #[instrument(skip(self))]
    pub async fn clear(&self, environment: &EnvironmentName) -> Result<Vec<String>, PortError> {
        let found = self.inventory.found_for(environment).await?;
        let mut deleted = Vec::new();
        'next: for l in sweep::leftovers(environment, &found) {
            for other in &l.unless_exists {
                let Ok(other) = EnvironmentName::parse(other) else { continue };
                // Gone (sent down, its stack deleted) it owns nothing any more.
                let gone = |e: &ephemera_domain::Environment| e.desired == Desired::Down && e.status == Status::Deleted;
                if self.registry.get(&other).await?.is_some_and(|e| !gone(&e)) {
                    info!(arn = l.arn, other = %other, "named for another environment too: kept");
                    continue 'next;
                }
            }
            delete_leftover(&*self.store, &*self.cleaner, &Leftover::from_arn(l.kind, l.arn)).await?;
            info!(arn = l.arn, "deleted a leftover of an earlier stack");
            deleted.push(l.arn.to_owned());
        }
        Ok(deleted)
    }
}
