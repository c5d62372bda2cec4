//! CloudFormation's status vocabulary, parsed once where CloudFormation's answer comes in (the
//! stacks adapter, the stack-events function) and typed everywhere after.

use serde::{Deserialize, Serialize};

use crate::lifecycle::Status;

/// Declares the known statuses once: the variant, CloudFormation's spelling, and where the
/// status comes in a stack's life (events within one second are ordered by it).
macro_rules! stack_statuses {
    ($($variant:ident = $text:literal, $stage:literal;)*) => {
        /// A stack's (or one of its resources') status, as CloudFormation spells it.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum StackStatus {
            $($variant,)*
            /// A status this version does not know (CloudFormation adds some now and then).
            Other(String),
        }

        impl StackStatus {
            pub fn parse(text: &str) -> StackStatus {
                match text {
                    $($text => StackStatus::$variant,)*
                    other => StackStatus::Other(other.to_owned()),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $(StackStatus::$variant => $text,)*
                    StackStatus::Other(text) => text,
                }
            }

            /// Where this status comes in a stack's life: in progress before complete, create
            /// before update before delete. Review, import and unknown statuses come first (0).
            pub fn stage(&self) -> u8 {
                match self {
                    $(StackStatus::$variant => $stage,)*
                    StackStatus::Other(_) => 0,
                }
            }
        }
    };
}

stack_statuses! {
    ReviewInProgress = "REVIEW_IN_PROGRESS", 0;
    CreateInProgress = "CREATE_IN_PROGRESS", 1;
    CreateComplete = "CREATE_COMPLETE", 2;
    CreateFailed = "CREATE_FAILED", 2;
    RollbackInProgress = "ROLLBACK_IN_PROGRESS", 2;
    RollbackComplete = "ROLLBACK_COMPLETE", 3;
    RollbackFailed = "ROLLBACK_FAILED", 3;
    ImportInProgress = "IMPORT_IN_PROGRESS", 0;
    ImportComplete = "IMPORT_COMPLETE", 0;
    ImportRollbackInProgress = "IMPORT_ROLLBACK_IN_PROGRESS", 0;
    ImportRollbackComplete = "IMPORT_ROLLBACK_COMPLETE", 0;
    ImportRollbackFailed = "IMPORT_ROLLBACK_FAILED", 0;
    UpdateInProgress = "UPDATE_IN_PROGRESS", 4;
    UpdateCompleteCleanupInProgress = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", 5;
    UpdateFailed = "UPDATE_FAILED", 5;
    UpdateRollbackInProgress = "UPDATE_ROLLBACK_IN_PROGRESS", 5;
    UpdateComplete = "UPDATE_COMPLETE", 6;
    UpdateRollbackCompleteCleanupInProgress = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", 6;
    UpdateRollbackComplete = "UPDATE_ROLLBACK_COMPLETE", 7;
    UpdateRollbackFailed = "UPDATE_ROLLBACK_FAILED", 7;
    DeleteInProgress = "DELETE_IN_PROGRESS", 8;
    DeleteFailed = "DELETE_FAILED", 9;
    DeleteComplete = "DELETE_COMPLETE", 9;
    DeleteSkipped = "DELETE_SKIPPED", 0;
}

impl StackStatus {
    pub fn is_in_progress(&self) -> bool {
        self.as_str().ends_with("_IN_PROGRESS")
    }

    /// Gone: a deleted stack is as good as none.
    pub fn is_deleted(&self) -> bool {
        *self == StackStatus::DeleteComplete
    }

    /// What the status says about the environment; `None` for statuses that say nothing new
    /// (a rollback under way is not yet an outcome).
    pub fn environment_status(&self) -> Option<Status> {
        use StackStatus::*;
        Some(match self {
            CreateInProgress => Status::Creating,
            UpdateInProgress | UpdateCompleteCleanupInProgress => Status::Updating,
            DeleteInProgress => Status::Deleting,
            CreateComplete | UpdateComplete | ImportComplete => Status::Ready,
            DeleteComplete => Status::Deleted,
            CreateFailed
            | RollbackComplete
            | RollbackFailed
            | DeleteFailed
            | UpdateFailed
            | UpdateRollbackComplete
            | UpdateRollbackFailed
            | ImportRollbackComplete => Status::Failed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for StackStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StackStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StackStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StackStatus::parse(&String::deserialize(d)?))
    }
}

/// The name part of a stack id (`arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>`).
pub fn stack_name_of_id(stack_id: &str) -> Option<&str> {
    stack_id.split(":stack/").nth(1)?.split('/').next().filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_known_status_and_keeps_unknown_ones() {
        for text in ["CREATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "DELETE_FAILED"] {
            let status = StackStatus::parse(text);
            assert!(!matches!(status, StackStatus::Other(_)), "{text}");
            assert_eq!(status.as_str(), text);
        }
        assert_eq!(StackStatus::parse("NEW_THING"), StackStatus::Other("NEW_THING".into()));
        assert_eq!(StackStatus::parse("NEW_THING").as_str(), "NEW_THING");
        let json = serde_json::to_string(&StackStatus::DeleteFailed).unwrap();
        assert_eq!(json, "\"DELETE_FAILED\"");
        assert_eq!(serde_json::from_str::<StackStatus>(&json).unwrap(), StackStatus::DeleteFailed);
    }

    #[test]
    fn stages_follow_a_stacks_life() {
        use StackStatus::*;
        let life =
            [CreateInProgress, CreateComplete, UpdateInProgress, UpdateComplete, DeleteInProgress, DeleteComplete];
        assert!(life.windows(2).all(|w| w[0].stage() < w[1].stage()), "{life:?}");
        assert!(CreateInProgress.is_in_progress() && !CreateComplete.is_in_progress());
    }

    #[test]
    fn environment_status_of_stack_statuses() {
        assert_eq!(StackStatus::CreateComplete.environment_status(), Some(Status::Ready));
        assert_eq!(StackStatus::UpdateRollbackComplete.environment_status(), Some(Status::Failed));
        assert_eq!(StackStatus::DeleteComplete.environment_status(), Some(Status::Deleted));
        assert_eq!(StackStatus::RollbackInProgress.environment_status(), None);
        assert_eq!(StackStatus::Other("X".into()).environment_status(), None);
    }

    #[test]
    fn stack_names_of_ids() {
        let id = "arn:aws:cloudformation:us-east-1:123456789012:stack/ephemera-pr-7-a-b/1f2e";
        assert_eq!(stack_name_of_id(id), Some("ephemera-pr-7-a-b"));
        assert_eq!(stack_name_of_id("arn:aws:s3:::bucket"), None);
        assert_eq!(stack_name_of_id(""), None);
    }
}
