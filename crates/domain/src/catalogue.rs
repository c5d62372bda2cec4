//! The resource catalogue: for every resource type a blueprint may hold, how the sweep finds
//! what an environment left behind, how it tells whose it is, how it deletes it completely and
//! in what order, how a template tags it, and what it costs.
//!
//! Some types live inside another and go with it (a role's inline policy, an API's resolvers, a
//! topic's subscriptions): they are that entry's `parts`. [`covers`] answers for every type;
//! a type the blueprint policy allows must be covered (a test holds the two lists together).
//! Adding a kind is one entry here, its listing and delete in the AWS adapter
//! (`ephemera-aws`'s `resources`), and its emulator test (`tests/tests/every_type.rs`, which
//! fails until the kind has one); the README's table is checked against this one.
//!
//! Ownership: a resource is an environment's when it carries `ephemera:managed-by=ephemera`
//! and `ephemera:environment=<env>` *and* its own name starts with `ephemera-<env>` (the
//! containment policy makes every name derive from the stack name). Two kinds cannot carry the
//! platform's tags: the log group Lambda creates for a function at its first invocation, and a
//! customer managed policy (CloudFormation cannot tag one). They are owned by name alone, and
//! only when every environment their name could belong to is gone.

use serde::Serialize;

/// What the sweep can find and delete on its own. The order is the deletion order: what uses
/// a thing goes before it (a function before its role and its log group; a role before the
/// managed policies attached to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Function,
    GraphQlApi,
    IdentityPool,
    UserPool,
    Topic,
    Queue,
    Secret,
    Table,
    Bucket,
    Role,
    ManagedPolicy,
    LogGroup,
}

/// How a template's resource of this type carries tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagShape {
    /// A list of `{Key, Value}` under this property.
    List(&'static str),
    /// A map of key to value under this property.
    Map(&'static str),
    /// The type cannot be tagged from a template.
    None,
}

/// One kind of resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub kind: Kind,
    pub resource_type: &'static str,
    /// Types that live inside this one and are deleted with it.
    pub parts: &'static [&'static str],
    /// Where the sweep finds them: the Tagging API, by the platform's tags, or the type's own
    /// listing, by the platform's name prefix, then its tags (the Tagging API does not list IAM
    /// roles; Lambda's own log groups are untagged).
    pub found_by: &'static str,
    /// Owned by its name alone when untagged (see the module's notes).
    pub owned_by_name: bool,
    /// The ARN's service, and how its resource part begins (`""`: the name itself).
    pub service: &'static str,
    pub arn_prefix: &'static str,
    /// What deleting it completely takes, in order.
    pub deletion: &'static str,
    pub tags: TagShape,
    /// Default monthly price (USD) for a lightly used development backend.
    pub monthly_usd: f64,
}

const TAGGING: &str = "Tagging API";

impl Entry {
    /// The Tagging API lists this kind, tagged (it does not list IAM roles, for one).
    pub fn is_found_by_tagging(&self) -> bool {
        self.found_by.starts_with(TAGGING)
    }
}
const LISTING: &str = "its own listing, by name, then its tags";

/// Every kind, in deletion order.
pub const CATALOGUE: &[Entry] = &[
    Entry {
        kind: Kind::Function,
        resource_type: "AWS::Lambda::Function",
        parts: &["AWS::Lambda::Permission", "AWS::Lambda::Url", "AWS::Lambda::EventSourceMapping"],
        found_by: TAGGING,
        owned_by_name: false,
        service: "lambda",
        arn_prefix: "function:",
        deletion: "its event source mappings, the function, then its log group `/aws/lambda/<name>`",
        tags: TagShape::List("Tags"),
        monthly_usd: 0.10,
    },
    Entry {
        kind: Kind::GraphQlApi,
        resource_type: "AWS::AppSync::GraphQLApi",
        parts: &[
            "AWS::AppSync::GraphQLSchema",
            "AWS::AppSync::DataSource",
            "AWS::AppSync::Resolver",
            "AWS::AppSync::FunctionConfiguration",
            "AWS::AppSync::ApiKey",
        ],
        found_by: TAGGING,
        owned_by_name: false,
        service: "appsync",
        arn_prefix: "apis/",
        deletion: "by id, then its log group `/aws/appsync/apis/<id>`",
        tags: TagShape::List("Tags"),
        monthly_usd: 4.00,
    },
    Entry {
        kind: Kind::IdentityPool,
        resource_type: "AWS::Cognito::IdentityPool",
        parts: &["AWS::Cognito::IdentityPoolRoleAttachment"],
        found_by: LISTING,
        owned_by_name: false,
        service: "cognito-identity",
        arn_prefix: "identitypool/",
        deletion: "by id",
        tags: TagShape::List("IdentityPoolTags"),
        monthly_usd: 0.0,
    },
    Entry {
        kind: Kind::UserPool,
        resource_type: "AWS::Cognito::UserPool",
        parts: &["AWS::Cognito::UserPoolClient"],
        found_by: LISTING,
        owned_by_name: false,
        service: "cognito-idp",
        arn_prefix: "userpool/",
        deletion: "its domain, then the pool",
        tags: TagShape::Map("UserPoolTags"),
        monthly_usd: 0.0,
    },
    Entry {
        kind: Kind::Topic,
        resource_type: "AWS::SNS::Topic",
        parts: &["AWS::SNS::Subscription", "AWS::SNS::TopicPolicy"],
        found_by: TAGGING,
        owned_by_name: false,
        service: "sns",
        arn_prefix: "",
        deletion: "the topic",
        tags: TagShape::List("Tags"),
        monthly_usd: 0.01,
    },
    Entry {
        kind: Kind::Queue,
        resource_type: "AWS::SQS::Queue",
        parts: &["AWS::SQS::QueuePolicy"],
        found_by: TAGGING,
        owned_by_name: false,
        service: "sqs",
        arn_prefix: "",
        deletion: "the queue, by its URL",
        tags: TagShape::List("Tags"),
        monthly_usd: 0.05,
    },
    Entry {
        kind: Kind::Secret,
        resource_type: "AWS::SecretsManager::Secret",
        parts: &[],
        found_by: TAGGING,
        owned_by_name: false,
        service: "secretsmanager",
        arn_prefix: "secret:",
        deletion: "without a recovery window",
        tags: TagShape::List("Tags"),
        monthly_usd: 0.40,
    },
    Entry {
        kind: Kind::Table,
        resource_type: "AWS::DynamoDB::Table",
        parts: &[],
        found_by: TAGGING,
        owned_by_name: false,
        service: "dynamodb",
        arn_prefix: "table/",
        deletion: "the table",
        tags: TagShape::List("Tags"),
        monthly_usd: 0.50,
    },
    Entry {
        kind: Kind::Bucket,
        resource_type: "AWS::S3::Bucket",
        parts: &["AWS::S3::BucketPolicy"],
        found_by: TAGGING,
        owned_by_name: false,
        service: "s3",
        arn_prefix: "",
        deletion: "every object version and delete marker, then the bucket",
        tags: TagShape::List("Tags"),
        monthly_usd: 0.10,
    },
    Entry {
        kind: Kind::Role,
        resource_type: "AWS::IAM::Role",
        parts: &["AWS::IAM::Policy", "AWS::IAM::RolePolicy"],
        found_by: LISTING,
        owned_by_name: false,
        service: "iam",
        arn_prefix: "role/",
        deletion: "inline policies, attached policies detached, taken out of its instance profiles, then the role",
        tags: TagShape::List("Tags"),
        monthly_usd: 0.0,
    },
    Entry {
        kind: Kind::ManagedPolicy,
        resource_type: "AWS::IAM::ManagedPolicy",
        parts: &[],
        found_by: "its own listing, by name (CloudFormation cannot tag one)",
        owned_by_name: true,
        service: "iam",
        arn_prefix: "policy/",
        deletion: "detached from every role, its other versions, then the policy",
        tags: TagShape::None,
        monthly_usd: 0.0,
    },
    Entry {
        kind: Kind::LogGroup,
        resource_type: "AWS::Logs::LogGroup",
        parts: &[],
        found_by: "Tagging API, and Lambda's own `/aws/lambda/ephemera-pr-*`, `-dev-*` and `-br-*` groups, untagged",
        owned_by_name: true,
        service: "logs",
        arn_prefix: "log-group:",
        deletion: "the log group",
        tags: TagShape::List("Tags"),
        monthly_usd: 0.03,
    },
];

/// One resource to delete outside CloudFormation: its kind, and the identifier its service's
/// delete call takes (a name, an id, an ARN or a queue's name; see [`Leftover::from_arn`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Leftover {
    pub kind: Kind,
    pub id: String,
}

impl Leftover {
    /// From an ARN the Tagging API or a listing gave. Topics, secrets and managed policies are
    /// deleted by ARN; everything else by the name or id the ARN ends in.
    pub fn from_arn(kind: Kind, arn: &str) -> Self {
        let id = match kind {
            Kind::Topic | Kind::Secret | Kind::ManagedPolicy => arn,
            _ => id_in_arn(kind, arn),
        };
        Self { kind, id: id.to_owned() }
    }

    /// From a stack resource's physical id (what CloudFormation's `Ref` gives): a queue's URL,
    /// an API's ARN, otherwise the identifier itself.
    pub fn from_physical(kind: Kind, physical: &str) -> Self {
        let id = match kind {
            Kind::Queue => physical.rsplit('/').next().unwrap_or(physical),
            Kind::GraphQlApi if physical.starts_with("arn:") => id_in_arn(kind, physical),
            _ => physical,
        };
        Self { kind, id: id.to_owned() }
    }

    /// The name the resource is known by, where the identifier carries one (not for the kinds
    /// known by an id).
    pub fn name(&self) -> Option<&str> {
        match self.kind {
            Kind::GraphQlApi | Kind::UserPool | Kind::IdentityPool => None,
            Kind::Topic | Kind::Secret | Kind::ManagedPolicy => name_of(self.kind, &self.id, None),
            Kind::LogGroup => Some(self.id.strip_prefix(LAMBDA_LOG_PREFIX).unwrap_or(&self.id)),
            _ => Some(&self.id),
        }
    }

    /// The log group the service writes this resource's own logs to, deleted after it.
    pub fn log_group(&self) -> Option<Leftover> {
        let name = match self.kind {
            Kind::Function => format!("{LAMBDA_LOG_PREFIX}{}", self.id),
            Kind::GraphQlApi => format!("{APPSYNC_LOG_PREFIX}{}", self.id),
            _ => return None,
        };
        Some(Leftover { kind: Kind::LogGroup, id: name })
    }
}

/// Types that create nothing to clean up.
pub const CREATES_NOTHING: &[&str] = &["AWS::CDK::Metadata"];

/// Where Lambda and AppSync put their own logs: a function's or an API's log group is named
/// this prefix and the function's name (the API's id).
pub const LAMBDA_LOG_PREFIX: &str = "/aws/lambda/";
pub const APPSYNC_LOG_PREFIX: &str = "/aws/appsync/apis/";

impl Kind {
    pub fn entry(self) -> &'static Entry {
        CATALOGUE.iter().find(|e| e.kind == self).expect("every kind has an entry")
    }

    pub fn resource_type(self) -> &'static str {
        self.entry().resource_type
    }

    /// The kind of the resource an ARN names, if the catalogue has it.
    pub fn of_arn(arn: &str) -> Option<Kind> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, service, _, _, resource] = parts.as_slice() else { return None };
        let entry = CATALOGUE.iter().find(|e| e.service == *service && resource.starts_with(e.arn_prefix))?;
        let rest = &resource[entry.arn_prefix.len()..];
        // A table's stream or index, an API's key or resolver: not the thing itself.
        let nested = match entry.kind {
            Kind::Table | Kind::GraphQlApi => rest.contains('/'),
            _ => false,
        };
        (!nested && !rest.is_empty()).then_some(entry.kind)
    }
}

/// What covers a resource type: its own entry, or the entry it is a part of. `None` for a
/// type that creates nothing, and for one the catalogue does not know.
pub fn covers(resource_type: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.resource_type == resource_type || e.parts.contains(&resource_type))
}

/// Whether the catalogue knows the type (covered, or creates nothing).
pub fn knows(resource_type: &str) -> bool {
    covers(resource_type).is_some() || CREATES_NOTHING.contains(&resource_type)
}

/// The resource's own identifier as its ARN carries it: a function's or a table's name, a
/// queue's or a topic's name, a log group's name, an API's or a pool's id.
pub fn id_in_arn(kind: Kind, arn: &str) -> &str {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    let rest = resource.strip_prefix(kind.entry().arn_prefix).unwrap_or(resource);
    match kind {
        // `log-group:<name>` or `log-group:<name>:*`.
        Kind::LogGroup => rest.strip_suffix(":*").unwrap_or(rest),
        // IAM names may carry a path: `role/<path>/<name>`.
        Kind::Role | Kind::ManagedPolicy => rest.rsplit('/').next().unwrap_or(rest),
        // A secret's ARN ends in a random suffix: `<name>-AbCdEf`.
        Kind::Secret => rest.rsplit_once('-').map_or(rest, |(name, _)| name),
        _ => rest,
    }
}

/// The name a resource is known by, for telling whose it is: the ARN's identifier, or for the
/// kinds whose ARN holds only an id, the name their own API gives (`listed`). A log group
/// Lambda or AppSync names after a function is known by that function's name.
pub fn name_of<'a>(kind: Kind, arn: &'a str, listed: Option<&'a str>) -> Option<&'a str> {
    match kind {
        Kind::GraphQlApi | Kind::UserPool | Kind::IdentityPool => listed,
        Kind::LogGroup => {
            let name = id_in_arn(kind, arn);
            Some(name.strip_prefix(LAMBDA_LOG_PREFIX).unwrap_or(name))
        }
        _ => Some(id_in_arn(kind, arn)),
    }
}

/// What may follow the stack's name in a resource's name (the blueprint policy's separators; no
/// environment name holds `_`, `.`, `/` or `:`).
const SEPARATORS: [char; 5] = ['-', '_', '.', '/', ':'];

/// The shortest cut of a stack's name a generated name is still recognised by.
pub const MIN_CUT: usize = 20;

/// Whether `name` is one of `environment`'s: it starts with `ephemera-<environment>`, then
/// ends or goes on after a separator. Case is ignored (buckets are lowercase, functions not).
pub fn named_for(name: &str, environment: &str) -> bool {
    let stack = format!("ephemera-{environment}");
    let name = name.to_ascii_lowercase();
    name.strip_prefix(&stack).is_some_and(|rest| rest.is_empty() || rest.starts_with(SEPARATORS))
}

/// As [`named_for`], for a resource whose tag names the environment: CloudFormation cuts the
/// stack's name short in a generated name that would be too long (`<stack, cut>-<logical
/// id>-<random>`, a bucket's at 63 characters), so a name that starts with at least
/// [`MIN_CUT`] characters of the stack's name, followed by a separator, counts too.
pub fn named_or_cut_for(name: &str, environment: &str) -> bool {
    if named_for(name, environment) {
        return true;
    }
    let stack = format!("ephemera-{environment}");
    let name = name.to_ascii_lowercase();
    // `<stack, cut at j>-...`: the name agrees with the stack's name up to j, then a separator.
    let common = name.bytes().zip(stack.bytes()).take_while(|(a, b)| a == b).count();
    (MIN_CUT..=common.min(stack.len() - 1)).any(|j| name.as_bytes().get(j) == Some(&b'-'))
}

/// Every environment `name` could be named for: `ephemera-<env>` followed by a separator or
/// the end, for each separator position. Environment names may extend one another
/// (`pr-1-a-b` and `pr-1-a-b-c`), so there may be more than one.
pub fn environments_named(name: &str) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("ephemera-") else { return Vec::new() };
    let mut out = Vec::new();
    for (i, c) in rest.char_indices() {
        if SEPARATORS.contains(&c) && i > 0 {
            out.push(rest[..i].to_owned());
        }
    }
    // The whole of it, if it could be an environment's name.
    if !rest.is_empty() && !rest.contains(&SEPARATORS[1..]) {
        out.push(rest.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blueprint::DEFAULT_TYPES;

    #[test]
    fn every_type_the_blueprint_policy_allows_is_covered_once() {
        for t in DEFAULT_TYPES {
            let owners: Vec<Kind> =
                CATALOGUE.iter().filter(|e| e.resource_type == *t || e.parts.contains(t)).map(|e| e.kind).collect();
            let nothing = CREATES_NOTHING.contains(t);
            assert!(owners.len() + usize::from(nothing) == 1, "{t}: covered by {owners:?}, creates nothing: {nothing}");
        }
        for e in CATALOGUE {
            assert!(DEFAULT_TYPES.contains(&e.resource_type), "{} is not allowed", e.resource_type);
        }
    }

    #[test]
    fn the_catalogue_is_in_deletion_order_with_one_entry_per_kind() {
        let kinds: Vec<Kind> = CATALOGUE.iter().map(|e| e.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(kinds, sorted);
        assert!(Kind::Function < Kind::Role && Kind::Function < Kind::LogGroup && Kind::Role < Kind::ManagedPolicy);
    }

    #[test]
    fn kinds_and_names_from_arns() {
        let cases = [
            ("arn:aws:lambda:us-east-1:1:function:ephemera-pr-1-a-b-Fn-X", Kind::Function, "ephemera-pr-1-a-b-Fn-X"),
            ("arn:aws:dynamodb:us-east-1:1:table/ephemera-pr-1-a-b-Task", Kind::Table, "ephemera-pr-1-a-b-Task"),
            ("arn:aws:s3:::ephemera-pr-1-a-b-bucket", Kind::Bucket, "ephemera-pr-1-a-b-bucket"),
            ("arn:aws:sqs:us-east-1:1:ephemera-pr-1-a-b-Q", Kind::Queue, "ephemera-pr-1-a-b-Q"),
            ("arn:aws:sns:us-east-1:1:ephemera-pr-1-a-b-T", Kind::Topic, "ephemera-pr-1-a-b-T"),
            (
                "arn:aws:secretsmanager:us-east-1:1:secret:ephemera-pr-1-a-b-S-AbCdEf",
                Kind::Secret,
                "ephemera-pr-1-a-b-S",
            ),
            ("arn:aws:iam::1:role/ephemera-pr-1-a-b-R", Kind::Role, "ephemera-pr-1-a-b-R"),
            ("arn:aws:iam::1:role/service/ephemera-pr-1-a-b-R", Kind::Role, "ephemera-pr-1-a-b-R"),
            ("arn:aws:iam::1:policy/ephemera-pr-1-a-b-P", Kind::ManagedPolicy, "ephemera-pr-1-a-b-P"),
            (
                "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/ephemera-pr-1-a-b-Fn:*",
                Kind::LogGroup,
                "ephemera-pr-1-a-b-Fn",
            ),
            ("arn:aws:logs:us-east-1:1:log-group:ephemera-pr-1-a-b-L", Kind::LogGroup, "ephemera-pr-1-a-b-L"),
        ];
        for (arn, kind, name) in cases {
            assert_eq!(Kind::of_arn(arn), Some(kind), "{arn}");
            assert_eq!(name_of(kind, arn, None), Some(name), "{arn}");
        }
        let api = "arn:aws:appsync:us-east-1:1:apis/abc123";
        assert_eq!(Kind::of_arn(api), Some(Kind::GraphQlApi));
        assert_eq!(name_of(Kind::GraphQlApi, api, None), None, "an API is known by its listed name only");
        assert_eq!(id_in_arn(Kind::GraphQlApi, api), "abc123");
        for not_a_resource in [
            "arn:aws:dynamodb:us-east-1:1:table/T/stream/2026",
            "arn:aws:appsync:us-east-1:1:apis/abc/apikeys/k",
            "arn:aws:cloudformation:us-east-1:1:stack/x/y",
            "arn:aws:iam::1:user/alice",
            "not an arn",
        ] {
            assert_eq!(Kind::of_arn(not_a_resource), None, "{not_a_resource}");
        }
    }

    #[test]
    fn names_belong_to_an_environment_only_up_to_a_separator() {
        assert!(named_for("ephemera-pr-1-a-b-Task", "pr-1-a-b"));
        assert!(named_for("ephemera-pr-1-a-b", "pr-1-a-b"));
        assert!(named_for("EPHEMERA-PR-1-A-B-x", "pr-1-a-b"));
        assert!(!named_for("ephemera-pr-1-a-bc-Task", "pr-1-a-b"));
        assert!(!named_for("customer-ephemera-pr-1-a-b", "pr-1-a-b"));
        assert!(named_for("ephemera-pr-1-a-b/db-password", "pr-1-a-b"), "a secret under the stack's name");
        assert_eq!(environments_named("ephemera-pr-1/app"), vec!["pr", "pr-1"]);
        // Cut short by CloudFormation, at a separator or not.
        let env = "pr-7-acme-todo-app-6acfdc9491";
        let cut = "ephemera-pr-7-acme-todo-app-6acfdc94-uploadsbucket-w3k4ybs9fvps";
        assert!(named_or_cut_for(cut, env) && !named_for(cut, env), "a cut counts only with the tag");
        assert!(named_or_cut_for("ephemera-pr-7-acme-todo-AuthRole-KIEWNSOOGJGY", env));
        assert!(named_or_cut_for("ephemera-pr-7-acme-todo-app-6acfdc9491-Task", env));
        assert!(!named_or_cut_for("ephemera-pr-7-a-Role-X", env), "too short a cut to tell");
        assert!(!named_or_cut_for("ephemera-pr-7-acme-todx-Role-X", env), "not a cut of it");
        // A cut cannot be told from a longer name that shares the cut: there the tag, which the
        // platform writes, decides.
        assert!(named_or_cut_for("ephemera-pr-7-acme-todo-api-1234-Role", env));
        assert_eq!(environments_named("ephemera-pr-1-a-Fn"), vec!["pr", "pr-1", "pr-1-a", "pr-1-a-fn"]);
        assert!(environments_named("other-pr-1").is_empty());
    }

    #[test]
    fn leftovers_are_deleted_by_what_their_service_takes() {
        let secret = "arn:aws:secretsmanager:us-east-1:1:secret:ephemera-pr-1-a-b-S-AbCdEf";
        assert_eq!(Leftover::from_arn(Kind::Secret, secret).id, secret);
        assert_eq!(Leftover::from_arn(Kind::Secret, secret).name(), Some("ephemera-pr-1-a-b-S"));
        let queue = Leftover::from_physical(Kind::Queue, "https://sqs.us-east-1.amazonaws.com/1/ephemera-pr-1-a-b-Q");
        assert_eq!(queue, Leftover::from_arn(Kind::Queue, "arn:aws:sqs:us-east-1:1:ephemera-pr-1-a-b-Q"));
        let api = Leftover::from_physical(Kind::GraphQlApi, "arn:aws:appsync:us-east-1:1:apis/abc");
        assert_eq!(api.id, "abc");
        assert_eq!(api.log_group().unwrap().id, "/aws/appsync/apis/abc");
        let function = Leftover::from_arn(Kind::Function, "arn:aws:lambda:us-east-1:1:function:ephemera-pr-1-a-b-F");
        assert_eq!(function.log_group().unwrap().name(), Some("ephemera-pr-1-a-b-F"));
        let policy = "arn:aws:iam::1:policy/ephemera-pr-1-a-b-P";
        assert_eq!(
            Leftover::from_physical(Kind::ManagedPolicy, policy),
            Leftover::from_arn(Kind::ManagedPolicy, policy)
        );
    }
}
