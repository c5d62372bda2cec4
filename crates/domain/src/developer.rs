//! Developer environments: who is asking, and whether there is room.

/// Who is calling, in full: the owner of a developer environment is the whole principal
/// (account, role and session, or user), never just the last part of its ARN, so a session
/// named after someone else, or a same-named user of another account, is someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal's ARN as IAM reports it: `arn:aws:iam::<account>:user/[path/]<name>`,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`,
    /// `arn:aws:sts::<account>:federated-user/<name>` or `arn:aws:iam::<account>:root`.
    arn: String,
    partition: String,
    account: String,
    /// For a role session: the role's name.
    role: Option<String>,
    /// The short name environments are named after: user, session or federated user name.
    login: String,
}

impl Principal {
    pub fn parse(arn: &str) -> Result<Self, String> {
        let bad = || format!("{arn} is not an IAM user, role session or federated user");
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, "", account, resource] = parts[..] else { return Err(bad()) };
        if prefix != "arn" || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let segments: Vec<&str> = resource.split('/').collect();
        let (role, login) = match (service, segments.as_slice()) {
            ("iam", ["user", .., name]) => (None, *name),
            ("iam", ["root"]) => (None, "root"),
            ("sts", ["assumed-role", role, session]) => (Some((*role).to_owned()), *session),
            ("sts", ["federated-user", name]) => (None, *name),
            _ => return Err(bad()),
        };
        if login.is_empty() || role.as_deref() == Some("") {
            return Err(bad());
        }
        Ok(Self {
            arn: arn.to_owned(),
            partition: partition.to_owned(),
            account: account.to_owned(),
            role,
            login: login.chars().take(64).collect(),
        })
    }

    /// What the registry records as the owner: the whole ARN.
    pub fn id(&self) -> &str {
        &self.arn
    }

    /// The short name a developer's environments are named after (`dev-<login>`).
    pub fn login(&self) -> &str {
        &self.login
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// A short suffix that tells this principal's environments from another's with the same
    /// login (`p` and 6 hex digits of the ARN's SHA-256).
    pub fn tag(&self) -> String {
        format!("p{}", crate::names::sha256_hex(&self.arn, 6))
    }

    /// Whether `owner`, as recorded on an environment, is this principal.
    pub fn owns(&self, owner: &str) -> bool {
        owner == self.arn
    }
}

/// An admin, named by an IAM user or role ARN. Every session of an admin role is an admin;
/// a session is never named on its own (anyone allowed to assume the role can pick its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    User(String),
    Role { partition: String, account: String, name: String },
}

impl Admin {
    pub fn parse(arn: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let refuse = |why: &str| format!("{arn}: {why}");
        let ["arn", partition, service, "", account, resource] = parts[..] else {
            return Err(refuse("not an ARN; list IAM user or role ARNs"));
        };
        match (service, resource.split('/').collect::<Vec<_>>().as_slice()) {
            ("iam", ["user", .., _]) => Principal::parse(arn).map(|p| Admin::User(p.arn)),
            ("iam", ["role", .., name]) if !name.is_empty() => {
                Ok(Admin::Role { partition: partition.into(), account: account.into(), name: (*name).into() })
            }
            ("sts", ["assumed-role", role, _]) => Err(refuse(&format!(
                "a session can be named by anyone who may assume its role; list the role \
                 arn:{partition}:iam::{account}:role/{role} instead"
            ))),
            _ => Err(refuse("list IAM user or role ARNs")),
        }
    }

    pub fn includes(&self, p: &Principal) -> bool {
        match self {
            Admin::User(arn) => *arn == p.arn,
            Admin::Role { partition, account, name } => {
                p.role.as_deref() == Some(name.as_str()) && p.account == *account && p.partition == *partition
            }
        }
    }
}

/// Whether a recorded owner predates full principals (a bare login such as `kyle`). Such
/// environments are acted on by admins only, until an admin hands them to their principal.
pub fn is_legacy_owner(owner: &str) -> bool {
    !owner.starts_with("arn:")
}

/// The version of a template a developer pushed, recorded as their environment's commit: the
/// first 12 hex digits of its SHA-256.
pub fn template_version(body: &str) -> String {
    crate::names::sha256_hex(body, 12)
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
    fn principals_are_whole() {
        let user = Principal::parse("arn:aws:iam::123456789012:user/dev/alice").unwrap();
        assert_eq!(
            (user.id(), user.login(), user.account()),
            ("arn:aws:iam::123456789012:user/dev/alice", "alice", "123456789012")
        );
        let session = Principal::parse("arn:aws:sts::123456789012:assumed-role/Developer/alice").unwrap();
        assert_eq!(session.login(), "alice");
        assert!(!session.owns(user.id()) && user.owns(user.id()));
        let other_account = Principal::parse("arn:aws:iam::210987654321:user/dev/alice").unwrap();
        assert!(!other_account.owns(user.id()));
        assert_ne!(other_account.tag(), user.tag());
        assert_eq!((user.tag().len(), &user.tag()[..1]), (7, "p"));
        assert_eq!(Principal::parse("arn:aws:iam::123456789012:root").unwrap().login(), "root");
        assert_eq!(Principal::parse("arn:aws:sts::123456789012:federated-user/bob").unwrap().login(), "bob");
        for bad in [
            "kyle",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/Developer",
            "arn:aws:sts::123456789012:assumed-role/Developer",
            "arn:aws:sts::123456789012:assumed-role//x",
            "arn:aws:iam::12345:user/kyle",
            "arn:aws:iam::123456789012:user/",
        ] {
            assert!(Principal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn admins_are_users_or_every_session_of_a_role() {
        let role = Admin::parse("arn:aws:iam::123456789012:role/ops/PlatformAdmin").unwrap();
        let p = |arn: &str| Principal::parse(arn).unwrap();
        assert!(role.includes(&p("arn:aws:sts::123456789012:assumed-role/PlatformAdmin/anyone")));
        assert!(!role.includes(&p("arn:aws:sts::210987654321:assumed-role/PlatformAdmin/anyone")));
        assert!(!role.includes(&p("arn:aws:sts::123456789012:assumed-role/Developer/PlatformAdmin")));
        assert!(!role.includes(&p("arn:aws:iam::123456789012:user/PlatformAdmin")));
        let user = Admin::parse("arn:aws:iam::123456789012:user/platform-admin").unwrap();
        assert!(user.includes(&p("arn:aws:iam::123456789012:user/platform-admin")));
        assert!(!user.includes(&p("arn:aws:sts::123456789012:assumed-role/Developer/platform-admin")));
        let err = Admin::parse("arn:aws:sts::123456789012:assumed-role/PlatformAdmin/ops").unwrap_err();
        assert!(err.contains("list the role arn:aws:iam::123456789012:role/PlatformAdmin instead"), "{err}");
        assert!(Admin::parse("platform-admin").is_err());
        assert!(is_legacy_owner("kyle") && !is_legacy_owner("arn:aws:iam::123456789012:user/kyle"));
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
