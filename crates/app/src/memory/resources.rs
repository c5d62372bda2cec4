//! Tagged resources in memory: what the tagging API lists (`Inventory`) and what is deleted
//! outside CloudFormation (`Cleaner`). Deleting a bucket or table removes it from the listing.

use std::sync::Mutex;

use async_trait::async_trait;
use ephemera_domain::sweep::ResourceInfo;
use ephemera_domain::tags::{ENVIRONMENT, MANAGED_BY, MANAGED_BY_VALUE};
use ephemera_domain::EnvironmentName;

use super::{lock, Faults};
use crate::ports::{Cleaner, Inventory, PortError};

/// Operation names for [`Faults`]: `tagged`, `tagged_for`, `delete_bucket`, `delete_table`.
#[derive(Debug, Default)]
pub struct MemoryResources {
    resources: Mutex<Vec<ResourceInfo>>,
    deleted: Mutex<Vec<String>>,
    pub faults: Faults,
}

impl MemoryResources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a resource with these tags.
    pub fn add(&self, arn: &str, tags: &[(&str, &str)]) {
        let tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        lock(&self.resources).push(ResourceInfo { arn: arn.to_owned(), tags });
    }

    /// Adds a resource tagged as the platform's, for `environment`.
    pub fn add_managed(&self, arn: &str, environment: &str) {
        self.add(arn, &[(MANAGED_BY, MANAGED_BY_VALUE), (ENVIRONMENT, environment)]);
    }

    /// The ARNs still there.
    pub fn arns(&self) -> Vec<String> {
        lock(&self.resources).iter().map(|r| r.arn.clone()).collect()
    }

    /// What was deleted, in order: `bucket:<name>` or `table:<name>`.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.deleted).clone()
    }

    fn remove(&self, what: String, matches: impl Fn(&str) -> bool) {
        lock(&self.resources).retain(|r| !matches(&r.arn));
        lock(&self.deleted).push(what);
    }
}

#[async_trait]
impl Inventory for MemoryResources {
    async fn tagged(&self) -> Result<Vec<ResourceInfo>, PortError> {
        self.faults.check("tagged")?;
        let managed = |r: &&ResourceInfo| r.tags.iter().any(|(k, v)| k == MANAGED_BY && v == MANAGED_BY_VALUE);
        Ok(lock(&self.resources).iter().filter(managed).cloned().collect())
    }

    async fn tagged_for(&self, environment: &EnvironmentName) -> Result<Vec<ResourceInfo>, PortError> {
        self.faults.check("tagged_for")?;
        let all = self.tagged().await?;
        let mine = |r: &ResourceInfo| r.tags.iter().any(|(k, v)| k == ENVIRONMENT && v == environment.as_str());
        Ok(all.into_iter().filter(mine).collect())
    }
}

#[async_trait]
impl Cleaner for MemoryResources {
    /// One that is gone already is fine.
    async fn delete_bucket(&self, bucket: &str) -> Result<(), PortError> {
        self.faults.check("delete_bucket")?;
        let arn = format!("arn:aws:s3:::{bucket}");
        self.remove(format!("bucket:{bucket}"), |a| a == arn);
        Ok(())
    }

    async fn delete_table(&self, table: &str) -> Result<(), PortError> {
        self.faults.check("delete_table")?;
        let suffix = format!(":table/{table}");
        self.remove(format!("table:{table}"), |a| a.starts_with("arn:aws:dynamodb:") && a.ends_with(&suffix));
        Ok(())
    }
}
