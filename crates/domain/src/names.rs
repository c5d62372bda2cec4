//! Names: repositories, environments and CloudFormation stacks.
//!
//! A pull request's environment name is `pr-<number>-<slug>-<hash>`: the slug keeps it readable,
//! the hash (of the case-folded `owner/repo`) keeps two repositories whose slugs collide apart.
//! The stack name is `ephemera-<environment>`: at most 73 characters, starting with a letter,
//! only lowercase letters, digits and hyphens, so valid for CloudFormation (128, `[a-zA-Z][-a-zA-Z0-9]*`)
//! whatever the repository is called.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every stack the platform creates starts with this.
pub const STACK_PREFIX: &str = "ephemera-";
/// Environment names are at most this long (so that stack names stay short and readable).
pub const MAX_ENVIRONMENT_NAME: usize = 63;
/// How environment names start, one per kind: a name that starts otherwise is not an
/// environment's, and the sweep never touches it.
pub const ENVIRONMENT_PREFIXES: [&str; 3] = ["pr-", "dev-", "br-"];
const SLUG_MAX: usize = 32;
const HASH_HEX: usize = 10;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("repository must be written as owner/name, got {0:?}")]
    BadRepository(String),
    #[error("environment name {name:?} is invalid: {reason}")]
    BadEnvironment { name: String, reason: &'static str },
    #[error("pull request number must be positive")]
    BadPullRequest,
}

/// A GitHub repository, `owner/name`. GitHub treats these case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    pub fn parse(full: &str) -> Result<Self, NameError> {
        let bad = || NameError::BadRepository(full.chars().take(300).collect());
        let (owner, name) = full.split_once('/').ok_or_else(bad)?;
        let ok = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !ok(owner, 39) || !ok(name, 100) {
            return Err(bad());
        }
        Ok(Self { owner: owner.to_owned(), name: name.to_owned() })
    }
    pub fn owner(&self) -> &str {
        &self.owner
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
    /// The case-folded full name: equal for names GitHub treats as the same repository.
    pub fn canonical(&self) -> String {
        self.full_name().to_ascii_lowercase()
    }
}

impl TryFrom<String> for RepoName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<RepoName> for String {
    fn from(r: RepoName) -> Self {
        r.full_name()
    }
}
impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// An environment's name: lowercase letters, digits and single hyphens, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvironmentName(String);

impl EnvironmentName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bad = |reason| NameError::BadEnvironment { name: s.chars().take(80).collect(), reason };
        if s.is_empty() || s.len() > MAX_ENVIRONMENT_NAME {
            return Err(bad("must be 1 to 63 characters"));
        }
        if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(bad("only lowercase letters, digits and hyphens are allowed"));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(bad("must start with a letter"));
        }
        if s.ends_with('-') || s.contains("--") {
            return Err(bad("hyphens must separate words"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The environment of pull request `number` in `repo`.
    pub fn for_pull_request(repo: &RepoName, number: u64) -> Result<Self, NameError> {
        if number == 0 {
            return Err(NameError::BadPullRequest);
        }
        let hash = short_hash(&repo.canonical());
        let head = format!("pr-{number}-");
        // Whatever room the number leaves, up to SLUG_MAX, goes to the readable part.
        let room = MAX_ENVIRONMENT_NAME - head.len() - 1 - HASH_HEX;
        let mut slug = slugify(&format!("{}-{}", repo.owner, repo.name), room.min(SLUG_MAX));
        if slug.is_empty() {
            slug.push_str("repo");
        }
        Self::parse(&format!("{head}{slug}-{hash}"))
    }

    /// The environment of `branch` in `repo`: `br-<branch slug>-<hash>`, the hash of the
    /// case-folded `owner/repo` and the branch, so that two branches whose slugs collide
    /// (`feature/a` and `feature-a`) do not share one.
    pub fn for_branch(repo: &RepoName, branch: &str) -> Result<Self, NameError> {
        let hash = short_hash(&format!("{}#{branch}", repo.canonical()));
        let room = MAX_ENVIRONMENT_NAME - "br-".len() - 1 - HASH_HEX;
        let mut slug = slugify(branch, room.min(SLUG_MAX));
        if slug.is_empty() {
            slug.push_str("branch");
        }
        Self::parse(&format!("br-{slug}-{hash}"))
    }

    /// A developer's environment: `dev-<login>` or `dev-<login>-<name>`.
    pub fn for_developer(login: &str, name: Option<&str>) -> Result<Self, NameError> {
        let owner = slugify(login, 24);
        if owner.is_empty() {
            return Err(NameError::BadEnvironment {
                name: login.chars().take(80).collect(),
                reason: "owner has no letters or digits",
            });
        }
        match name {
            None => Self::parse(&format!("dev-{owner}")),
            Some(n) => {
                // The requested suffix is validated as written, never silently rewritten.
                let suffix = Self::parse(n).map_err(|e| match e {
                    NameError::BadEnvironment { reason, .. } => {
                        NameError::BadEnvironment { name: n.chars().take(80).collect(), reason }
                    }
                    other => other,
                })?;
                Self::parse(&format!("dev-{owner}-{}", suffix.0))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn stack_name(&self) -> StackName {
        StackName(format!("{STACK_PREFIX}{}", self.0))
    }
}

impl TryFrom<String> for EnvironmentName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<EnvironmentName> for String {
    fn from(n: EnvironmentName) -> Self {
        n.0
    }
}
impl fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A CloudFormation stack name owned by the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StackName(String);

impl StackName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The environment a stack name belongs to, if it is one of ours.
    pub fn environment(name: &str) -> Option<EnvironmentName> {
        name.strip_prefix(STACK_PREFIX).and_then(|e| EnvironmentName::parse(e).ok())
    }
}
impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase ASCII letters and digits, other runs folded to one hyphen, trimmed, at most `max`.
fn slugify(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= max {
            break;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    // Must start with a letter where used as the start of a name; callers always prefix.
    out
}

fn short_hash(s: &str) -> String {
    sha256_hex(s, HASH_HEX)
}

/// The first `len` hex digits of the SHA-256 of `s`: the short, stable ids names carry.
pub(crate) fn sha256_hex(s: &str, len: usize) -> String {
    let digest = Sha256::digest(s.as_bytes());
    hex::encode(digest)[..len].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn repo(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    #[test]
    fn pull_request_names_are_readable_and_valid_stack_names() {
        let env = EnvironmentName::for_pull_request(&repo("Octo-Org/Hello_World.rs"), 42).unwrap();
        assert!(env.as_str().starts_with("pr-42-octo-org-hello-world-rs-"), "{env}");
        let stack = env.stack_name();
        assert!(stack.as_str().starts_with("ephemera-pr-42-"));
        assert_valid_stack_name(stack.as_str());
        assert_eq!(StackName::environment(stack.as_str()), Some(env));
    }

    #[test]
    fn longest_repository_names_still_fit() {
        let owner = "a".repeat(39);
        let name = "b.".repeat(50);
        let env = EnvironmentName::for_pull_request(&repo(&format!("{owner}/{name}")), u64::MAX).unwrap();
        assert!(env.as_str().len() <= MAX_ENVIRONMENT_NAME);
        assert_valid_stack_name(env.stack_name().as_str());
    }

    #[test]
    fn repositories_with_the_same_slug_get_different_names() {
        let a = EnvironmentName::for_pull_request(&repo("a/b-c"), 1).unwrap();
        let b = EnvironmentName::for_pull_request(&repo("a-b/c"), 1).unwrap();
        let c = EnvironmentName::for_pull_request(&repo("a.b/c"), 1).unwrap();
        assert_ne!(a, b);
        assert_ne!(b, c);
        // but GitHub's case-insensitivity is respected
        assert_eq!(
            EnvironmentName::for_pull_request(&repo("Octo/Repo"), 7).unwrap(),
            EnvironmentName::for_pull_request(&repo("octo/repo"), 7).unwrap()
        );
    }

    #[test]
    fn distinct_pull_requests_never_share_a_name() {
        let mut seen: HashMap<EnvironmentName, (String, u64)> = HashMap::new();
        for r in ["x/y", "x/y-z", "x-y/z", "x/y.z", "x/y_z", "X/Y-z", "x/yz", "o/long-repository-name"] {
            for n in 1..300u64 {
                let name = EnvironmentName::for_pull_request(&repo(r), n).unwrap();
                assert_valid_stack_name(name.stack_name().as_str());
                let key = (repo(r).canonical(), n);
                if let Some(previous) = seen.insert(name.clone(), key.clone()) {
                    assert_eq!(previous, key, "{name} shared by two pull requests");
                }
            }
        }
    }

    #[test]
    fn developer_names() {
        assert_eq!(EnvironmentName::for_developer("Kyle", None).unwrap().as_str(), "dev-kyle");
        let repo = RepoName::parse("Acme/Todo-App").unwrap();
        let a = EnvironmentName::for_branch(&repo, "feature/search").unwrap();
        assert!(
            a.as_str().starts_with("br-feature-search-") && a.as_str().len() == "br-feature-search-".len() + 10,
            "{a}"
        );
        assert_eq!(
            a,
            EnvironmentName::for_branch(&RepoName::parse("acme/todo-app").unwrap(), "feature/search").unwrap()
        );
        assert_ne!(a, EnvironmentName::for_branch(&repo, "feature-search").unwrap());
        let long = EnvironmentName::for_branch(&repo, &format!("feature/{}", "x".repeat(200))).unwrap();
        assert!(long.as_str().len() <= MAX_ENVIRONMENT_NAME);
        assert!(EnvironmentName::for_branch(&repo, "???").unwrap().as_str().starts_with("br-branch-"));
        assert_eq!(EnvironmentName::for_developer("alice", Some("search-v2")).unwrap().as_str(), "dev-alice-search-v2");
        assert!(EnvironmentName::for_developer("alice", Some("Bad_Name")).is_err());
        assert!(EnvironmentName::for_developer("---", None).is_err());
    }

    #[test]
    fn environment_name_validation() {
        for bad in ["", "-a", "1a", "a-", "a--b", "A", "a_b", &"a".repeat(64)] {
            assert!(EnvironmentName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EnvironmentName::parse("dev-kyle").is_ok());
    }

    #[test]
    fn repository_validation() {
        for bad in ["", "a", "/b", "a/", "a/b/c", "a b/c", "ä/b", &format!("a/{}", "x".repeat(101))] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn assert_valid_stack_name(s: &str) {
        assert!(s.len() <= 128, "{s}");
        assert!(s.starts_with(|c: char| c.is_ascii_alphabetic()), "{s}");
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{s}");
    }
}
