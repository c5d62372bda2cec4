//! What a pull request event means for its preview: which commit to build (rebase-first), and
//! what its labels and origin (fork or not) allow.

use serde::{Deserialize, Serialize};

/// The commit a preview is built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// GitHub's test merge of the head into the base: what the base branch will be after merge.
    Merge { commit: String },
    /// The head commit, because GitHub has not computed mergeability yet.
    Head { commit: String },
    /// The head does not merge cleanly into the base: nothing is built.
    Conflict { head: String },
}

impl Source {
    /// Rebase-first: the merge commit when GitHub says the pull request is mergeable; nothing on
    /// a conflict; the head commit when mergeability is not known yet.
    pub fn choose(head: &str, mergeable: Option<bool>, merge_commit: Option<&str>) -> Self {
        let valid = |sha: &&str| is_commit_id(sha);
        match (mergeable, merge_commit.filter(valid)) {
            (Some(true), Some(merge)) => Source::Merge { commit: merge.to_ascii_lowercase() },
            (Some(false), _) => Source::Conflict { head: head.to_ascii_lowercase() },
            _ => Source::Head { commit: head.to_ascii_lowercase() },
        }
    }

    /// The commit to build, if any.
    pub fn commit(&self) -> Option<&str> {
        match self {
            Source::Merge { commit } | Source::Head { commit } => Some(commit),
            Source::Conflict { .. } => None,
        }
    }

    /// A sentence for the pull request comment.
    pub fn note(&self, base: &str) -> String {
        match self {
            Source::Merge { commit } => {
                format!(
                    "Built from the merge of this branch into `{base}` ({}): what `{base}` will be after merging.",
                    short(commit)
                )
            }
            Source::Head { commit } => format!(
                "Built from the head commit {}: GitHub had not yet worked out whether it merges cleanly into `{base}`.",
                short(commit)
            ),
            Source::Conflict { head } => format!(
                "Not deployed: {} conflicts with `{base}`. Rebase or merge `{base}` into this branch and push again.",
                short(head)
            ),
        }
    }

    /// What the record keeps of it: which kind of commit was built (nothing is, on a conflict).
    pub fn recorded(&self) -> Option<CommitSource> {
        match self {
            Source::Merge { .. } => Some(CommitSource::Merge),
            Source::Head { .. } => Some(CommitSource::Head),
            Source::Conflict { .. } => None,
        }
    }

    /// The source of a recorded `commit`, for the comment's note.
    pub fn of_record(kind: CommitSource, commit: &str) -> Source {
        let commit = commit.to_owned();
        match kind {
            CommitSource::Merge => Source::Merge { commit },
            CommitSource::Head => Source::Head { commit },
        }
    }
}

/// What an environment's recorded commit is: GitHub's test merge, or the head itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitSource {
    Merge,
    Head,
}

impl CommitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitSource::Merge => "merge",
            CommitSource::Head => "head",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [CommitSource::Merge, CommitSource::Head].into_iter().find(|k| k.as_str() == s)
    }
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// 7 to 64 hex digits.
pub fn is_commit_id(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The label names Ephemera reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// Keeps the preview past its expiry (the reaper leaves it alone).
    pub preserve: String,
    /// No preview for this pull request.
    pub skip: String,
    /// A maintainer's approval to deploy a fork's code.
    pub fork_approval: String,
}

impl Default for Labels {
    fn default() -> Self {
        Self { preserve: "preview:preserve".into(), skip: "preview:skip".into(), fork_approval: "preview".into() }
    }
}

/// What to do about one pull request event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Build (or rebuild) the preview.
    Up,
    /// Tear the preview down, for this reason.
    Down(String),
    /// Pin or unpin the preview.
    Preserve(bool),
    /// Deploy a fork's head, once the sender is confirmed as a maintainer.
    ApproveFork,
    /// Nothing to do, for this reason.
    Ignore(String),
}

/// The facts of one `pull_request` event that matter here.
#[derive(Debug, Clone, Copy)]
pub struct PrEvent<'a> {
    pub action: &'a str,
    /// The label added or removed, for `labeled` and `unlabeled`.
    pub label: Option<&'a str>,
    /// The pull request's labels after the event.
    pub labels: &'a [String],
    pub from_fork: bool,
}

/// The rules: closing always tears down; `skip` keeps (or takes) a preview away; a fork's code
/// is deployed only on a maintainer's approval label, and a later push to a fork needs a new
/// approval; `preserve` pins.
pub fn decide(e: PrEvent<'_>, names: &Labels) -> Decision {
    let has = |l: &str| e.labels.iter().any(|x| x.eq_ignore_ascii_case(l));
    let is = |l: &str| e.label.is_some_and(|x| x.eq_ignore_ascii_case(l));
    match e.action {
        "closed" => Decision::Down("pull request closed".into()),
        "opened" | "reopened" | "synchronize" | "ready_for_review" => {
            if has(&names.skip) {
                Decision::Ignore(format!("the {:?} label is set", names.skip))
            } else if e.from_fork {
                Decision::Ignore(format!(
                    "pull request comes from a fork: a maintainer must approve this commit, with the {:?} label or by commenting /ephemera approve and its id",
                    names.fork_approval
                ))
            } else {
                Decision::Up
            }
        }
        "labeled" if is(&names.skip) => Decision::Down(format!("the {:?} label was added", names.skip)),
        "unlabeled" if is(&names.skip) => {
            if e.from_fork {
                Decision::Ignore(format!("fork pull request: add the {:?} label to deploy", names.fork_approval))
            } else {
                Decision::Up
            }
        }
        "labeled" if is(&names.preserve) => Decision::Preserve(true),
        "unlabeled" if is(&names.preserve) => Decision::Preserve(false),
        "labeled" if is(&names.fork_approval) && e.from_fork => {
            if has(&names.skip) {
                Decision::Ignore(format!("the {:?} label is set", names.skip))
            } else {
                Decision::ApproveFork
            }
        }
        other => Decision::Ignore(format!("pull_request action {other:?} does not change environments")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "1111111111111111111111111111111111111111";
    const MERGE: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn rebase_first() {
        assert_eq!(Source::choose(HEAD, Some(true), Some(MERGE)), Source::Merge { commit: MERGE.into() });
        assert_eq!(Source::choose(HEAD, Some(false), Some(MERGE)), Source::Conflict { head: HEAD.into() });
        assert_eq!(Source::choose(HEAD, None, Some(MERGE)), Source::Head { commit: HEAD.into() });
        // A mergeable flag without a usable merge commit is as good as unknown.
        assert_eq!(Source::choose(HEAD, Some(true), Some("not-a-sha")), Source::Head { commit: HEAD.into() });
        assert_eq!(Source::choose(HEAD, Some(false), None).commit(), None);
        assert!(Source::choose(HEAD, Some(false), None).note("main").contains("conflicts with `main`"));
        assert!(Source::choose(HEAD, None, None).note("main").contains("head commit 1111111"));
    }

    fn ev<'a>(action: &'a str, label: Option<&'a str>, labels: &'a [String], from_fork: bool) -> Decision {
        decide(PrEvent { action, label, labels, from_fork }, &Labels::default())
    }

    #[test]
    fn labels_and_forks() {
        let none: Vec<String> = vec![];
        let skip = vec!["preview:skip".to_string()];
        let approved = vec!["preview".to_string()];
        assert_eq!(ev("opened", None, &none, false), Decision::Up);
        assert!(matches!(ev("opened", None, &skip, false), Decision::Ignore(_)));
        assert!(matches!(ev("opened", None, &none, true), Decision::Ignore(r) if r.contains("fork")));
        // A push to an approved fork needs approving again.
        assert!(matches!(ev("synchronize", None, &approved, true), Decision::Ignore(_)));
        assert_eq!(ev("labeled", Some("preview"), &approved, true), Decision::ApproveFork);
        assert!(matches!(ev("labeled", Some("preview"), &approved, false), Decision::Ignore(_)));
        assert!(matches!(ev("labeled", Some("Preview:Skip"), &skip, false), Decision::Down(_)));
        assert_eq!(ev("unlabeled", Some("preview:skip"), &none, false), Decision::Up);
        assert!(matches!(ev("unlabeled", Some("preview:skip"), &none, true), Decision::Ignore(_)));
        assert_eq!(ev("labeled", Some("preview:preserve"), &none, false), Decision::Preserve(true));
        assert_eq!(ev("unlabeled", Some("preview:preserve"), &none, true), Decision::Preserve(false));
        assert!(matches!(ev("closed", None, &skip, true), Decision::Down(_)));
        assert!(matches!(ev("edited", None, &none, false), Decision::Ignore(_)));
    }
}
