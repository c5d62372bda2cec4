//! Resources that outlived their stack: deleted by the reaper as orphans, and by the provisioner
//! before it creates an environment's stack again, since they would collide with the new
//! stack's resources of the same names (see [`ephemera_domain::sweep::leftovers`]).

use std::sync::Arc;

use ephemera_domain::cost::resource_type_of;
use ephemera_domain::sweep;
use ephemera_domain::EnvironmentName;
use tracing::{info, instrument};

use crate::ports::{Cleaner, Inventory, ObjectStore, PortError};

/// Deletes one bucket (emptied first) or table outside CloudFormation; other types are refused.
pub async fn delete_resource(store: &dyn ObjectStore, cleaner: &dyn Cleaner, arn: &str) -> Result<(), PortError> {
    match resource_type_of(arn) {
        Some("AWS::S3::Bucket") => {
            let bucket = arn.trim_start_matches("arn:aws:s3:::");
            store.empty_bucket(bucket).await?;
            cleaner.delete_bucket(bucket).await
        }
        Some("AWS::DynamoDB::Table") => cleaner.delete_table(arn.rsplit('/').next().unwrap_or_default()).await,
        other => Err(PortError::Permanent {
            operation: "delete orphan resource",
            message: format!("{arn}: deleting {} is not supported; left in place", other.unwrap_or("this type")),
        }),
    }
}

/// What the provisioner clears an environment's leftovers with.
#[derive(Clone)]
pub struct Leftovers {
    pub inventory: Arc<dyn Inventory>,
    pub store: Arc<dyn ObjectStore>,
    pub cleaner: Arc<dyn Cleaner>,
}

impl Leftovers {
    /// Deletes what earlier stacks of `environment` left behind; the caller has seen that no
    /// stack of its name exists. Returns the ARNs deleted.
    #[instrument(skip(self))]
    pub async fn clear(&self, environment: &EnvironmentName) -> Result<Vec<String>, PortError> {
        let found = self.inventory.tagged_for(environment).await?;
        let mut deleted = Vec::new();
        for arn in sweep::leftovers(environment, &found) {
            delete_resource(&*self.store, &*self.cleaner, arn).await?;
            info!(arn, "deleted a leftover of an earlier stack");
            deleted.push(arn.to_owned());
        }
        Ok(deleted)
    }
}
