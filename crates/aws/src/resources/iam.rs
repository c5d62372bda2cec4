//! Deleting IAM roles and customer managed policies completely: what is attached to them
//! first. Every listing follows pagination.

use ephemera_app::PortError;

use super::cleaner::unless_gone;
use super::AwsResources;

impl AwsResources {
    /// Inline policies deleted, managed ones detached, the role taken out of its instance
    /// profiles, then the role.
    pub(super) async fn delete_role(&self, role: &str) -> Result<(), PortError> {
        let mut inline = Vec::new();
        let mut pages = self.iam.list_role_policies().role_name(role).into_paginator().send();
        while let Some(page) = pages.next().await {
            let Some(page) = unless_gone("list role policies", page)? else { return Ok(()) };
            inline.extend(page.policy_names);
        }
        for policy in inline {
            let r = self.iam.delete_role_policy().role_name(role).policy_name(policy).send().await;
            unless_gone("delete role policy", r)?;
        }
        let mut attached = Vec::new();
        let mut pages = self.iam.list_attached_role_policies().role_name(role).into_paginator().send();
        while let Some(page) = pages.next().await {
            let Some(page) = unless_gone("list attached role policies", page)? else { return Ok(()) };
            attached.extend(page.attached_policies.unwrap_or_default().into_iter().filter_map(|p| p.policy_arn));
        }
        for arn in attached {
            let r = self.iam.detach_role_policy().role_name(role).policy_arn(arn).send().await;
            unless_gone("detach role policy", r)?;
        }
        let mut profiles = Vec::new();
        let mut pages = self.iam.list_instance_profiles_for_role().role_name(role).into_paginator().send();
        while let Some(page) = pages.next().await {
            let Some(page) = unless_gone("list instance profiles", page)? else { return Ok(()) };
            profiles.extend(page.instance_profiles.into_iter().map(|p| p.instance_profile_name));
        }
        for profile in profiles {
            let remove = self.iam.remove_role_from_instance_profile().instance_profile_name(profile).role_name(role);
            unless_gone("remove role from instance profile", remove.send().await)?;
        }
        unless_gone("delete role", self.iam.delete_role().role_name(role).send().await).map(drop)
    }

    /// Detached from every role, its other versions deleted, then the policy. A blueprint cannot
    /// attach one to a user or group; one attached to such by someone else is not detached:
    /// deleting it then fails, and the sweep reports it.
    pub(super) async fn delete_policy(&self, arn: &str) -> Result<(), PortError> {
        let mut roles = Vec::new();
        let mut pages = self.iam.list_entities_for_policy().policy_arn(arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let Some(page) = unless_gone("list policy entities", page)? else { return Ok(()) };
            roles.extend(page.policy_roles.unwrap_or_default().into_iter().filter_map(|r| r.role_name));
        }
        for role in roles {
            let r = self.iam.detach_role_policy().role_name(role).policy_arn(arn).send().await;
            unless_gone("detach role policy", r)?;
        }
        let mut versions = Vec::new();
        let mut pages = self.iam.list_policy_versions().policy_arn(arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let Some(page) = unless_gone("list policy versions", page)? else { return Ok(()) };
            let others = page.versions.unwrap_or_default().into_iter().filter(|v| !v.is_default_version);
            versions.extend(others.filter_map(|v| v.version_id));
        }
        for version in versions {
            let r = self.iam.delete_policy_version().policy_arn(arn).version_id(version).send().await;
            unless_gone("delete policy version", r)?;
        }
        unless_gone("delete policy", self.iam.delete_policy().policy_arn(arn).send().await).map(drop)
    }
}
