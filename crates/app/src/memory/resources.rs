//! Resources in memory: what the Tagging API and the kinds' own listings find (`Inventory`) and
//! what is deleted outside CloudFormation (`Cleaner`). Deleting a resource removes it from the
//! listing.

use std::sync::Mutex;

use async_trait::async_trait;
use ephemera_domain::catalogue::{self, Kind, Leftover};
use ephemera_domain::sweep::ResourceInfo;
use ephemera_domain::tags::{ENVIRONMENT, MANAGED_BY, MANAGED_BY_VALUE};
use ephemera_domain::EnvironmentName;

use super::{lock, Faults};
use crate::ports::{Cleaner, Inventory, PortError};

/// Operation names for [`Faults`]: `found`, `found_for`, `any_tagged_for`, `delete`.
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
        lock(&self.resources).push(ResourceInfo::new(arn, tags));
    }

    /// Adds a resource known by an id, with the name its own API gives it.
    pub fn add_named(&self, arn: &str, name: &str, tags: &[(&str, &str)]) {
        self.add(arn, tags);
        if let Some(r) = lock(&self.resources).last_mut() {
            r.name = Some(name.to_owned());
        }
    }

    /// Adds a resource tagged as the platform's, for `environment`.
    pub fn add_managed(&self, arn: &str, environment: &str) {
        self.add(arn, &[(MANAGED_BY, MANAGED_BY_VALUE), (ENVIRONMENT, environment)]);
    }

    /// The ARNs still there.
    pub fn arns(&self) -> Vec<String> {
        lock(&self.resources).iter().map(|r| r.arn.clone()).collect()
    }

    /// What was deleted, in order: `<kind>:<id>`, e.g. `bucket:<name>` or `table:<name>`.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.deleted).clone()
    }
}

fn managed(r: &ResourceInfo) -> bool {
    r.tags.iter().any(|(k, v)| k == MANAGED_BY && v == MANAGED_BY_VALUE)
}

/// Untagged, of a kind owned by its name, and named like the platform's.
fn owned_by_name(r: &ResourceInfo) -> bool {
    let Some(kind) = Kind::of_arn(&r.arn) else { return false };
    let named = catalogue::name_of(kind, &r.arn, r.name.as_deref()).is_some_and(|n| n.starts_with("ephemera-"));
    !managed(r) && kind.entry().owned_by_name && named
}

#[async_trait]
impl Inventory for MemoryResources {
    async fn found(&self) -> Result<Vec<ResourceInfo>, PortError> {
        self.faults.check("found")?;
        Ok(lock(&self.resources).iter().filter(|r| managed(r) || owned_by_name(r)).cloned().collect())
    }

    async fn found_for(&self, environment: &EnvironmentName) -> Result<Vec<ResourceInfo>, PortError> {
        self.faults.check("found_for")?;
        let env = environment.as_str();
        let tagged_for = |r: &ResourceInfo| managed(r) && r.tags.iter().any(|(k, v)| k == ENVIRONMENT && v == env);
        let named_for = |r: &ResourceInfo| {
            Kind::of_arn(&r.arn)
                .and_then(|k| catalogue::name_of(k, &r.arn, r.name.as_deref()))
                .is_some_and(|n| catalogue::named_or_cut_for(n, env))
        };
        let all = lock(&self.resources);
        Ok(all.iter().filter(|r| (tagged_for(r) || owned_by_name(r)) && named_for(r)).cloned().collect())
    }

    async fn any_tagged_for(&self, environment: &EnvironmentName) -> Result<bool, PortError> {
        self.faults.check("any_tagged_for")?;
        let env = environment.as_str();
        // As on AWS: kinds the Tagging API does not list (IAM roles) are not seen, tagged or not.
        let listed = |r: &ResourceInfo| Kind::of_arn(&r.arn).is_some_and(|k| k.entry().is_found_by_tagging());
        let tagged = |r: &ResourceInfo| managed(r) && r.tags.iter().any(|(k, v)| k == ENVIRONMENT && v == env);
        Ok(lock(&self.resources).iter().any(|r| listed(r) && tagged(r)))
    }
}

#[async_trait]
impl Cleaner for MemoryResources {
    /// One that is gone already is fine.
    async fn delete(&self, leftover: &Leftover) -> Result<(), PortError> {
        self.faults.check("delete")?;
        let is = |r: &ResourceInfo| Kind::of_arn(&r.arn).is_some_and(|k| Leftover::from_arn(k, &r.arn) == *leftover);
        lock(&self.resources).retain(|r| !is(r));
        let kind = serde_json::to_value(leftover.kind).ok();
        let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or("resource");
        lock(&self.deleted).push(format!("{kind}:{}", leftover.id));
        Ok(())
    }
}
