//! Developer environments: who is asking, and whether there is room.

/// The owner a caller's IAM principal ARN stands for: the user name, or an assumed role's
/// session name (`arn:aws:sts::1:assumed-role/Developer/kyle` → `kyle`).
pub fn owner_from_arn(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let last = resource.rsplit('/').next()?;
    let owner = if resource.starts_with("assumed-role/")
        || resource.starts_with("user/")
        || resource.starts_with("federated-user/")
    {
        last
    } else if resource == "root" {
        "root"
    } else {
        return None;
    };
    let owner: String = owner.chars().take(64).collect();
    (!owner.is_empty()).then_some(owner)
}

/// What to do with a request for a new environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Now,
    /// Wait; `position` in the queue (1 is next).
    Queue {
        position: usize,
    },
    Refuse(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub per_owner: usize,
    pub global: usize,
    /// Queue when full (true), or refuse (false).
    pub queue_when_full: bool,
}

impl Default for Quotas {
    fn default() -> Self {
        Self { per_owner: 2, global: 50, queue_when_full: true }
    }
}

impl Quotas {
    /// `owner_live` and `all_live` count live (or starting) developer environments; `queued`
    /// how many already wait.
    pub fn admit(&self, owner_live: usize, all_live: usize, queued: usize) -> Admission {
        let why = if owner_live >= self.per_owner {
            Some(format!("you have {owner_live} live environments; the limit is {}", self.per_owner))
        } else if all_live >= self.global {
            Some(format!("{all_live} developer environments are live; the limit is {}", self.global))
        } else {
            None
        };
        match why {
            None if queued == 0 => Admission::Now,
            None => Admission::Queue { position: queued + 1 },
            Some(_) if self.queue_when_full => Admission::Queue { position: queued + 1 },
            Some(reason) => Admission::Refuse(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_from_principals() {
        assert_eq!(owner_from_arn("arn:aws:iam::123456789012:user/kyle").as_deref(), Some("kyle"));
        assert_eq!(owner_from_arn("arn:aws:iam::123456789012:user/dev/alice").as_deref(), Some("alice"));
        assert_eq!(
            owner_from_arn("arn:aws:sts::123456789012:assumed-role/Developer/bob@acme.io").as_deref(),
            Some("bob@acme.io")
        );
        assert_eq!(owner_from_arn("arn:aws:iam::123456789012:root").as_deref(), Some("root"));
        assert_eq!(owner_from_arn("arn:aws:s3:::bucket"), None);
        assert_eq!(owner_from_arn("kyle"), None);
    }

    #[test]
    fn quotas_admit_queue_or_refuse() {
        let q = Quotas::default();
        assert_eq!(q.admit(0, 0, 0), Admission::Now);
        assert_eq!(q.admit(2, 2, 0), Admission::Queue { position: 1 });
        assert_eq!(q.admit(0, 50, 3), Admission::Queue { position: 4 });
        assert_eq!(q.admit(1, 10, 1), Admission::Queue { position: 2 }, "no jumping the queue");
        let strict = Quotas { queue_when_full: false, ..q };
        assert!(matches!(strict.admit(2, 2, 0), Admission::Refuse(r) if r.contains("limit is 2")));
    }
}
