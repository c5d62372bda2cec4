//! Where environments live: deploy targets (a role in a sandbox account that the platform
//! assumes), routed by kind and repository, and the account with the most room for a new
//! environment. An environment stays in the account it was placed in for its life.

use std::collections::BTreeMap;

use crate::environment::EnvironmentKind;
use crate::names::RepoName;

/// A role in a deploy account: environments placed there are created, updated and deleted as it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub role_arn: String,
    /// The role's account: where the environments are.
    pub account: String,
}

impl Target {
    /// `arn:<partition>:iam::<12 digits>:role/<name>`.
    pub fn parse(arn: &str) -> Result<Self, String> {
        let bad = || format!("{arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)");
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_arn @ "arn", _partition, "iam", "", account, resource] = parts[..] else { return Err(bad()) };
        let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        let named_role = resource.strip_prefix("role/").is_some_and(|n| !n.is_empty() && !n.ends_with('/'));
        if !valid_account || !named_role {
            return Err(bad());
        }
        Ok(Self { role_arn: arn.to_owned(), account: account.to_owned() })
    }

    /// The permissions boundary every role an environment creates in this account is put under:
    /// the one the account's bootstrap (`infra/target-account.yaml`) creates.
    pub fn boundary_arn(&self) -> String {
        let partition = self.role_arn.split(':').nth(1).unwrap_or("aws");
        format!("arn:{partition}:iam::{}:policy/{BOUNDARY_NAME}", self.account)
    }

    /// A comma-separated list of role ARNs (a pool); empty for none.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, String> {
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Self::parse).collect()
    }
}

/// The name of the permissions boundary in every deploy account.
pub const BOUNDARY_NAME: &str = "ephemera-environment-boundary";

/// Which targets an environment may be placed in. Empty everywhere: the platform's own account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// `EPHEMERA_DEPLOY_ROLE_ARN`: every environment not routed otherwise.
    pub default: Vec<Target>,
    /// `EPHEMERA_DEPLOY_ROLE_ARN_BY_REPOSITORY`: a repository's pull request and branch environments.
    pub by_repository: Vec<(RepoName, Vec<Target>)>,
    /// `EPHEMERA_DEV_DEPLOY_ROLE_ARN`: developer environments.
    pub dev: Vec<Target>,
    /// `EPHEMERA_ACCOUNT_STACK_CEILING`: environments one account holds at most.
    pub ceiling: u64,
}

/// CloudFormation's default quota is 2,000 stacks per account and region; the platform keeps
/// some headroom for the account's own.
pub const DEFAULT_CEILING: u64 = 1_800;

impl Routes {
    pub fn is_empty(&self) -> bool {
        self.default.is_empty() && self.by_repository.is_empty() && self.dev.is_empty()
    }

    /// The pool a new environment of this kind and repository is placed from; empty: the
    /// platform's own account.
    pub fn pool(&self, kind: EnvironmentKind, repository: Option<&RepoName>) -> &[Target] {
        if kind == EnvironmentKind::Dev && !self.dev.is_empty() {
            return &self.dev;
        }
        let routed = repository.and_then(|r| self.by_repository.iter().find(|(repo, _)| repo == r));
        match routed {
            Some((_, targets)) if kind != EnvironmentKind::Dev => targets,
            _ => &self.default,
        }
    }

    /// Every configured target, once per account (the reaper sweeps each).
    pub fn all(&self) -> Vec<&Target> {
        let mut out: Vec<&Target> = Vec::new();
        let every = self.default.iter().chain(self.by_repository.iter().flat_map(|(_, t)| t)).chain(&self.dev);
        for t in every {
            if !out.iter().any(|o| o.account == t.account) {
                out.push(t);
            }
        }
        out
    }

    /// The target of an account environments were placed in.
    pub fn in_account(&self, account: &str) -> Option<&Target> {
        self.all().into_iter().find(|t| t.account == account)
    }
}

/// The running-total counter of an account's environments.
pub fn account_counter(account: &str) -> String {
    format!("account:{account}")
}

/// The target with the most room (fewest environments under the ceiling; the first listed on a
/// tie), or None if every account of the pool is full. `totals` are the running totals.
pub fn choose<'a>(pool: &'a [Target], totals: &BTreeMap<String, i64>, ceiling: u64) -> Option<&'a Target> {
    let used = |t: &Target| totals.get(&account_counter(&t.account)).copied().unwrap_or(0).max(0) as u64;
    pool.iter().filter(|t| used(t) < ceiling).min_by_key(|t| used(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(account: &str) -> Target {
        Target::parse(&format!("arn:aws:iam::{account}:role/ephemera-deploy")).unwrap()
    }

    #[test]
    fn a_target_is_a_role_arn_with_its_account() {
        let t = Target::parse("arn:aws-us-gov:iam::222222222222:role/path/ephemera-deploy").unwrap();
        assert_eq!(t.account, "222222222222");
        assert_eq!(t.boundary_arn(), "arn:aws-us-gov:iam::222222222222:policy/ephemera-environment-boundary");
        for bad in [
            "",
            "222222222222",
            "arn:aws:iam::22222222222:role/x",
            "arn:aws:iam::222222222222:user/x",
            "arn:aws:sts::222222222222:assumed-role/x/s",
            "arn:aws:iam::222222222222:role/",
            "arn:aws:iam:us-east-1:222222222222:role/x",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains("is not an IAM role ARN"), "{bad}: {e}");
        }
        let pool = Target::parse_list(" arn:aws:iam::222222222222:role/a, arn:aws:iam::333333333333:role/b ,").unwrap();
        assert_eq!(pool.iter().map(|t| t.account.as_str()).collect::<Vec<_>>(), ["222222222222", "333333333333"]);
        assert!(Target::parse_list("arn:aws:iam::222222222222:role/a,nope").is_err());
    }

    #[test]
    fn routes_send_developers_and_repositories_to_their_own_pools() {
        let repo = RepoName::parse("acme/api").unwrap();
        let routes = Routes {
            default: vec![target("222222222222")],
            by_repository: vec![(repo.clone(), vec![target("333333333333")])],
            dev: vec![target("444444444444")],
            ceiling: 10,
        };
        let other = RepoName::parse("acme/web").unwrap();
        assert_eq!(routes.pool(EnvironmentKind::Pr, Some(&repo))[0].account, "333333333333");
        assert_eq!(routes.pool(EnvironmentKind::Branch, Some(&repo))[0].account, "333333333333");
        assert_eq!(routes.pool(EnvironmentKind::Pr, Some(&other))[0].account, "222222222222");
        assert_eq!(routes.pool(EnvironmentKind::Dev, None)[0].account, "444444444444");
        let no_dev = Routes { dev: vec![], ..routes.clone() };
        assert_eq!(no_dev.pool(EnvironmentKind::Dev, None)[0].account, "222222222222");
        assert_eq!(routes.all().len(), 3);
        assert_eq!(
            routes.in_account("333333333333").unwrap().role_arn,
            "arn:aws:iam::333333333333:role/ephemera-deploy"
        );
        assert!(routes.in_account("555555555555").is_none());
        assert!(Routes::default().is_empty() && Routes::default().pool(EnvironmentKind::Pr, Some(&repo)).is_empty());
    }

    #[test]
    fn a_new_environment_goes_where_there_is_most_room() {
        let pool = [target("222222222222"), target("333333333333")];
        let mut totals = BTreeMap::new();
        assert_eq!(choose(&pool, &totals, 2).unwrap().account, "222222222222");
        totals.insert(account_counter("222222222222"), 1);
        assert_eq!(choose(&pool, &totals, 2).unwrap().account, "333333333333");
        totals.insert(account_counter("333333333333"), 2);
        assert_eq!(choose(&pool, &totals, 2).unwrap().account, "222222222222");
        totals.insert(account_counter("222222222222"), 2);
        assert_eq!(choose(&pool, &totals, 2), None);
    }
}
