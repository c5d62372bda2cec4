//! The tag set on every stack and every resource an environment creates.
//!
//! The reaper finds what to delete by these exact keys, and cost-allocation reports group by them.

use std::collections::BTreeMap;

use crate::environment::Environment;

pub const MANAGED_BY: &str = "ephemera:managed-by";
pub const MANAGED_BY_VALUE: &str = "ephemera";
pub const ENVIRONMENT: &str = "ephemera:environment";
pub const KIND: &str = "ephemera:kind";
pub const REPOSITORY: &str = "ephemera:repository";
pub const PULL_REQUEST: &str = "ephemera:pull-request";
pub const OWNER: &str = "ephemera:owner";
pub const COMMIT: &str = "ephemera:commit";
pub const EXPIRES_AT: &str = "ephemera:expires-at";
/// A branch environment's branch.
pub const BRANCH: &str = "ephemera:branch";

/// Tag keys under this prefix are the platform's; operators' cost tags may not use it.
pub const RESERVED_PREFIX: &str = "ephemera:";

/// An ordered set of tags (key → value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSet(BTreeMap<String, String>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagError {
    #[error("cost-allocation tag {0:?} must be written as Key=Value")]
    Malformed(String),
    #[error("cost-allocation tag key {0:?} is reserved for the platform")]
    Reserved(String),
    #[error("tag {0:?} is longer than AWS allows (128 for keys, 256 for values)")]
    TooLong(String),
}

impl TagSet {
    /// The full tag set for an environment: the platform's keys, then the operator's cost tags.
    pub fn for_environment(env: &Environment, cost_tags: &TagSet) -> Self {
        let mut tags = cost_tags.0.clone();
        let mut put = |k: &str, v: String| {
            tags.insert(k.to_owned(), v);
        };
        put(MANAGED_BY, MANAGED_BY_VALUE.to_owned());
        put(ENVIRONMENT, env.name.to_string());
        put(KIND, env.kind.as_str().to_owned());
        put(REPOSITORY, env.repository.as_ref().map(|r| r.full_name()).unwrap_or_default());
        put(PULL_REQUEST, env.pull_request.map(|n| n.to_string()).unwrap_or_default());
        put(OWNER, env.owner.clone());
        put(COMMIT, env.commit.clone().unwrap_or_default());
        put(EXPIRES_AT, env.expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        if env.kind == crate::EnvironmentKind::Branch {
            put(BRANCH, env.head_ref.clone().unwrap_or_default());
        }
        Self(tags)
    }

    /// Parses the operator's cost-allocation tags: `Key=Value,Key2=Value2`.
    pub fn parse_cost_tags(spec: &str) -> Result<Self, TagError> {
        let mut tags = BTreeMap::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| TagError::Malformed(part.into()))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(TagError::Malformed(part.into()));
            }
            if k.starts_with(RESERVED_PREFIX) || k.starts_with("aws:") {
                return Err(TagError::Reserved(k.into()));
            }
            if k.len() > 128 || v.len() > 256 {
                return Err(TagError::TooLong(k.into()));
            }
            tags.insert(k.to_owned(), v.to_owned());
        }
        Ok(Self(tags))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every tag here is present in `actual` with the same value.
    pub fn is_subset_of<'a>(&self, actual: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let actual: BTreeMap<&str, &str> = actual.into_iter().collect();
        self.iter().all(|(k, v)| actual.get(k) == Some(&v))
    }

    /// True when `actual` marks a resource as the platform's.
    pub fn marks_managed<'a>(actual: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        actual.into_iter().any(|(k, v)| k == MANAGED_BY && v == MANAGED_BY_VALUE)
    }
}

impl FromIterator<(String, String)> for TagSet {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::test_support::pr_environment;

    #[test]
    fn environment_tags_carry_every_platform_key_and_cost_tags() {
        let env = pr_environment();
        let cost = TagSet::parse_cost_tags("CostCenter=platform, Team = web").unwrap();
        let tags = TagSet::for_environment(&env, &cost);
        assert_eq!(tags.get(MANAGED_BY), Some("ephemera"));
        assert_eq!(tags.get(ENVIRONMENT), Some(env.name.as_str()));
        assert_eq!(tags.get(KIND), Some("pr"));
        assert_eq!(tags.get(REPOSITORY), Some("octo-org/hello-world"));
        assert_eq!(tags.get(PULL_REQUEST), Some("42"));
        assert_eq!(tags.get(OWNER), Some("octocat"));
        assert_eq!(tags.get(COMMIT), Some("6dcb09b5b57875f334f61aebed695e2e4193db5e"));
        assert_eq!(tags.get(EXPIRES_AT), Some("2026-11-29T10:00:00Z"));
        assert_eq!(tags.get("CostCenter"), Some("platform"));
        assert_eq!(tags.get("Team"), Some("web"));
    }

    #[test]
    fn cost_tags_reject_reserved_and_malformed() {
        assert!(matches!(TagSet::parse_cost_tags("ephemera:kind=x"), Err(TagError::Reserved(_))));
        assert!(matches!(TagSet::parse_cost_tags("aws:foo=x"), Err(TagError::Reserved(_))));
        assert!(matches!(TagSet::parse_cost_tags("novalue"), Err(TagError::Malformed(_))));
        assert!(matches!(TagSet::parse_cost_tags("=v"), Err(TagError::Malformed(_))));
        assert!(TagSet::parse_cost_tags("").unwrap().is_empty());
    }

    #[test]
    fn subset_comparison() {
        let want = TagSet::parse_cost_tags("a=1,b=2").unwrap();
        assert!(want.is_subset_of([("a", "1"), ("b", "2"), ("c", "3")]));
        assert!(!want.is_subset_of([("a", "1"), ("b", "3")]));
        assert!(!want.is_subset_of([("a", "1")]));
    }
}
