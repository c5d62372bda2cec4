//! Branch environments: which pushes and deletions ask for one, and what of it.
//!
//! `EPHEMERA_BRANCH_ENVIRONMENTS` lists branch globs (`feature/*`, `release/**`): `*` and `?`
//! never cross a `/`, `**` does. A push to a matching branch brings its environment up at the
//! pushed commit; a push that deletes the branch, or GitHub's `delete` event for it, takes it
//! down. Tags and other refs are never environments.

use glob::{MatchOptions, Pattern};

/// The branches that get environments.
#[derive(Debug, Clone, Default)]
pub struct BranchPatterns(Vec<Pattern>);

const OPTIONS: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

impl BranchPatterns {
    /// Parses comma-separated globs; an invalid one is named.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let patterns = spec
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Pattern::new(p).map_err(|e| format!("{p:?} is not a branch glob: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self(patterns))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, branch: &str) -> bool {
        self.0.iter().any(|p| p.matches_with(branch, OPTIONS))
    }
}

/// A push or a ref deletion, as GitHub reports it.
#[derive(Debug, Clone, Copy)]
pub enum RefEvent<'a> {
    /// `push`: `ref` is `refs/heads/<branch>` for a branch; `deleted` when the push removed it.
    Push { git_ref: &'a str, after: &'a str, deleted: bool },
    /// `delete`: `ref` is the short name; `ref_type` is `branch` or `tag`.
    Delete { git_ref: &'a str, ref_type: &'a str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchDecision {
    /// The branch's environment, at this commit.
    Up {
        branch: String,
        commit: String,
    },
    /// The branch is gone: so is its environment.
    Down {
        branch: String,
    },
    Ignore(String),
}

/// What a ref event asks of a branch environment.
pub fn decide(event: RefEvent<'_>, patterns: &BranchPatterns) -> BranchDecision {
    let (branch, down, commit) = match event {
        RefEvent::Push { git_ref, after, deleted } => match git_ref.strip_prefix("refs/heads/") {
            Some(b) => (b, deleted, after),
            None => return BranchDecision::Ignore(format!("{git_ref} is not a branch")),
        },
        RefEvent::Delete { git_ref, ref_type: "branch" } => (git_ref, true, ""),
        RefEvent::Delete { ref_type, .. } => return BranchDecision::Ignore(format!("a {ref_type} is not a branch")),
    };
    if patterns.is_empty() {
        return BranchDecision::Ignore("no branches get environments (EPHEMERA_BRANCH_ENVIRONMENTS is empty)".into());
    }
    if !patterns.matches(branch) {
        return BranchDecision::Ignore(format!("branch {branch} matches no EPHEMERA_BRANCH_ENVIRONMENTS pattern"));
    }
    if down {
        BranchDecision::Down { branch: branch.to_owned() }
    } else {
        BranchDecision::Up { branch: branch.to_owned(), commit: commit.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_branches_and_not_across_slashes_unless_asked() {
        let p = BranchPatterns::parse("feature/*, release/**,hotfix-?").unwrap();
        for yes in ["feature/search", "release/1.2/rc", "hotfix-1"] {
            assert!(p.matches(yes), "{yes}");
        }
        for no in ["feature/a/b", "main", "features/x", "hotfix-12", "Feature/x"] {
            assert!(!p.matches(no), "{no}");
        }
        assert!(BranchPatterns::parse("").unwrap().is_empty());
        assert!(BranchPatterns::parse("feature/[").unwrap_err().contains("feature/["));
    }

    #[test]
    fn pushes_and_deletions_of_matching_branches_only() {
        let p = BranchPatterns::parse("feature/*").unwrap();
        let push = |git_ref, deleted| decide(RefEvent::Push { git_ref, after: "c0ffee", deleted }, &p);
        assert_eq!(
            push("refs/heads/feature/x", false),
            BranchDecision::Up { branch: "feature/x".into(), commit: "c0ffee".into() }
        );
        assert_eq!(push("refs/heads/feature/x", true), BranchDecision::Down { branch: "feature/x".into() });
        assert!(matches!(push("refs/heads/main", false), BranchDecision::Ignore(r) if r.contains("matches no")));
        assert!(matches!(push("refs/tags/feature/x", false), BranchDecision::Ignore(r) if r.contains("not a branch")));
        let delete = |ref_type| decide(RefEvent::Delete { git_ref: "feature/x", ref_type }, &p);
        assert_eq!(delete("branch"), BranchDecision::Down { branch: "feature/x".into() });
        assert!(matches!(delete("tag"), BranchDecision::Ignore(_)));
        let none = BranchPatterns::default();
        assert!(matches!(
            decide(RefEvent::Push { git_ref: "refs/heads/feature/x", after: "c0ffee", deleted: false }, &none),
            BranchDecision::Ignore(r) if r.contains("EPHEMERA_BRANCH_ENVIRONMENTS is empty")
        ));
    }
}
