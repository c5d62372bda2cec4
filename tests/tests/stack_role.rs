//! The CloudFormation service role an environment's stack is deployed as, against the resource
//! types a blueprint may hold: what each type's create, read, update and delete handlers need
//! (AWS's resource provider schemas, as cfn-lint ships them) is granted, or left out for a
//! reason below; nothing is granted that no allowed type needs, or without a reason; every
//! statement is held to one environment. The same for the deploy role's policy in a sandbox
//! account (`infra/target-account.yaml`).
//!
//! The emulator enforces no IAM, so this is where a missing right shows before a real account
//! meets it: a preview that fails, or a teardown left in DELETE_FAILED.

use std::collections::BTreeMap;

use ephemera_domain::blueprint::DEFAULT_TYPES;
use ephemera_tests::iam::{check_stack_role, handlers_of, policy_sizes, statements, template, Actions, Handlers};
use ephemera_tests::iam::{Reason, Reasons, Schemas, StackRoleReport, Statement};

/// Handler permissions the role does not grant, and why.
const LEFT_OUT: &[Reason] = &[
    Reason {
        actions: &["kms:*", "logs:AssociateKmsKey", "logs:DisassociateKmsKey"],
        why: "customer managed keys: no KMS key is an allowed type and another owner's key is outside the environment; AWS-owned keys need no rights",
    },
    Reason {
        actions: &["iam:CreateServiceLinkedRole"],
        why: "service-linked roles are the account's, made once by an administrator, never by an environment",
    },
    Reason {
        actions: &[
            "dynamodb:AssociateTableReplica",
            "dynamodb:CreateTableReplica",
            "secretsmanager:ReplicateSecretToRegions",
            "secretsmanager:RemoveRegionsFromReplication",
            "s3:PutReplicationConfiguration",
        ],
        why: "replicas copy data to other regions or buckets, outside the environment",
    },
    Reason {
        actions: &[
            "dynamodb:*KinesisStreamingDestination",
            "kinesis:*",
            "firehose:*",
            "logs:CreateLogDelivery",
            "cognito-sync:*",
        ],
        why: "streams and deliveries send data to Kinesis, Firehose or other destinations no environment owns",
    },
    Reason {
        actions: &["s3:GetObject", "s3:GetObjectVersion"],
        why: "reading S3 by location (a table's import, AppSync definitions, Lambda code) reads outside the environment; blueprints give them inline",
    },
    Reason {
        actions: &[
            "dynamodb:ImportTable",
            "dynamodb:DescribeImport",
            "dynamodb:BatchWriteItem",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "logs:CreateLogStream",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
        ],
        why: "what a table's import from S3 does (write items, log the import): imports are not offered; seed data is written by the provisioner",
    },
    Reason {
        actions: &[
            "dynamodb:PutResourcePolicy",
            "dynamodb:DeleteResourcePolicy",
            "logs:PutResourcePolicy",
            "logs:DeleteResourcePolicy",
            "logs:DescribeResourcePolicies",
            "s3:PutBucketAcl",
            "s3:PutObjectAcl",
        ],
        why: "table and log group resource policies and ACLs can grant other accounts: previews keep to bucket, queue and topic policies",
    },
    Reason {
        actions: &["s3:PutBucketWebsite"],
        why: "a website endpoint is public; previews are served through their API",
    },
    Reason {
        actions: &[
            "s3:PutBucketLogging",
            "s3:PutInventoryConfiguration",
            "s3:PutAnalyticsConfiguration",
            "s3:*BucketMetadata*TableConfiguration",
            "s3tables:*",
        ],
        why: "logging, inventory, analytics and metadata tables write to buckets or tables outside the environment",
    },
    Reason {
        actions: &["s3:PutBucketObjectLockConfiguration", "logs:PutLogGroupDeletionProtection"],
        why: "object lock and deletion protection would keep data past the environment's end",
    },
    Reason {
        actions: &[
            "s3:PutAccelerateConfiguration",
            "s3:PutIntelligentTieringConfiguration",
            "s3:PutMetricsConfiguration",
            "s3:PutBucketAbac",
        ],
        why: "acceleration, tiering, request metrics and attribute-based access are settings a preview does not need",
    },
    Reason {
        actions: &["s3:DeleteObject"],
        why: "CloudFormation deletes only empty buckets; the provisioner and the reaper empty them with their own rights",
    },
    Reason {
        actions: &["iam:*GroupPolicy", "iam:*UserPolicy"],
        why: "environments have no IAM users or groups",
    },
    Reason {
        actions: &["iam:DeleteRolePermissionsBoundary"],
        why: "an environment's roles keep the environment boundary",
    },
    Reason {
        actions: &["ec2:*", "elasticfilesystem:*", "s3files:*"],
        why: "functions in a VPC or with a file system reach networks and storage outside the environment",
    },
    Reason {
        actions: &["lambda:GetLayerVersion"],
        why: "layers are code from outside the environment",
    },
    Reason {
        actions: &["lambda:GetCodeSigningConfig", "lambda:PutFunctionCodeSigningConfig", "lambda:DeleteFunctionCodeSigningConfig"],
        why: "code signing configurations are the account's, set outside environments (reading a function's own is granted)",
    },
    Reason {
        actions: &["lambda:PassCapacityProvider", "lambda:PutFunctionScalingConfig"],
        why: "Lambda managed instances run on EC2 capacity outside the environment",
    },
    Reason {
        actions: &[
            "logs:PutIndexPolicy",
            "logs:DeleteIndexPolicy",
            "logs:PutBearerTokenAuthentication",
            "logs:PutDataProtectionPolicy",
            "sns:PutDataProtectionPolicy",
        ],
        why: "index, bearer-token and data-protection settings are not offered; data protection sends findings to destinations outside the environment",
    },
];

/// Actions granted that no handler names, and why.
const BEYOND: &[Reason] = &[Reason {
    actions: &["cloudformation:*"],
    why: "the stack itself: the provisioner and the reaper create, update, describe, tag and delete it as the environment's session",
}];

/// Actions granted on every resource, and why.
const ANYWHERE: &[Reason] = &[
    Reason {
        actions: &["secretsmanager:GetRandomPassword"],
        why: "a secret's GenerateSecretString: it returns random bytes and has no resource to hold to an environment",
    },
    Reason {
        actions: &["logs:DescribeLogGroups", "logs:DescribeIndexPolicies"],
        why: "a log group's read handler lists groups and their index policies: no resource type, read-only names and settings, never contents",
    },
];

/// Actions cfn-lint's data says name no resource type, kept on the environment's own resources
/// all the same, and why.
const KEPT_SCOPED: &[Reason] = &[Reason {
    actions: &[
        "appsync:*ApiKey",
        "appsync:ListApiKeys",
        "appsync:*DataSource",
        "appsync:*Resolver",
        "appsync:*Function",
        "appsync:StartSchemaCreation",
        "appsync:GetSchemaCreationStatus",
        "appsync:*GraphqlApiEnvironmentVariables",
        "cognito-identity:SetIdentityPoolRoles",
    ],
    why: "known gap: on \"*\" these would reach every API and identity pool of the account, production's too; AWS's reference names the API or pool for some of them, so they stay held to the environment's tagged API or pool until a real account shows which are denied",
}];

struct World {
    handlers: BTreeMap<String, Handlers>,
    actions: Actions,
}

impl World {
    fn load(types: &[&str]) -> Self {
        let schemas = Schemas::load().unwrap();
        Self { handlers: handlers_of(&schemas, types).unwrap(), actions: Actions::load().unwrap() }
    }
    fn check(&self, granted: &[Statement]) -> StackRoleReport {
        let reasons = Reasons {
            actions: &self.actions,
            left_out: LEFT_OUT,
            beyond: BEYOND,
            anywhere: ANYWHERE,
            kept_scoped: KEPT_SCOPED,
        };
        check_stack_role(&self.handlers, granted, &reasons)
    }
}

/// The role's managed policies in `template.yaml`, and their twins in a sandbox account.
const PLATFORM_POLICIES: [&str; 3] = ["EnvironmentStackPolicy", "EnvironmentApisPolicy", "EnvironmentServicesPolicy"];
const SANDBOX_POLICIES: [&str; 3] =
    ["OneEnvironmentPolicy", "OneEnvironmentApisPolicy", "OneEnvironmentServicesPolicy"];

fn policies(file: &str, ids: [&str; 3]) -> Vec<Statement> {
    let t = template(file).unwrap();
    ids.iter().flat_map(|id| statements(&t, id).unwrap()).collect()
}

fn stack_role() -> Vec<Statement> {
    let role = &template("template.yaml").unwrap()["Resources"]["EnvironmentStackRole"]["Properties"];
    let attached: Vec<&str> = role["ManagedPolicyArns"].as_sequence().unwrap().iter().map(ref_of).collect();
    assert_eq!(attached, PLATFORM_POLICIES, "the role's policies");
    assert!(role.get("Policies").is_none(), "no inline policies besides");
    policies("template.yaml", PLATFORM_POLICIES)
}

fn ref_of(v: &serde_yaml_ng::Value) -> &str {
    match v {
        serde_yaml_ng::Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().unwrap_or_default(),
        _ => "",
    }
}

#[test]
fn the_stack_role_grants_what_the_allowed_types_need_and_nothing_more() {
    let report = World::load(DEFAULT_TYPES).check(&stack_role());
    assert!(report.is_clean(), "template.yaml EnvironmentStackRole: {report:#?}");
}

#[test]
fn a_sandbox_accounts_deploy_role_grants_the_same() {
    let world = World::load(DEFAULT_TYPES);
    let policy = policies("infra/target-account.yaml", SANDBOX_POLICIES);
    let report = world.check(&policy);
    assert!(report.is_clean(), "infra/target-account.yaml {SANDBOX_POLICIES:?}: {report:#?}");
    let actions =
        |s: &[Statement]| s.iter().map(|s| (s.sid.clone(), s.actions.clone(), s.scope.clone())).collect::<Vec<_>>();
    assert_eq!(actions(&policy), actions(&stack_role()), "the two are the same statements");
}

#[test]
fn a_type_allowed_without_the_rights_its_handlers_need_fails_the_check() {
    let mut types = DEFAULT_TYPES.to_vec();
    types.push("AWS::StepFunctions::StateMachine");
    let report = World::load(&types).check(&stack_role());
    let missing = &report.missing["AWS::StepFunctions::StateMachine"];
    assert!(missing.contains("states:CreateStateMachine"), "{missing:?}");
    assert_eq!(report.missing.len(), 1, "{report:#?}");
}

#[test]
fn a_right_no_allowed_type_needs_fails_the_check() {
    let mut granted = stack_role();
    granted[1].actions.push("ec2:RunInstances".into());
    granted[1].actions.push("dynamodb:DeleteBackup".into());
    let report = World::load(DEFAULT_TYPES).check(&granted);
    let unneeded: Vec<&str> = report.unneeded.iter().map(String::as_str).collect();
    assert_eq!(unneeded, ["ItsTables: dynamodb:DeleteBackup", "ItsTables: ec2:RunInstances"]);
}

#[test]
fn a_right_that_is_no_iam_action_or_not_held_to_the_environment_fails_the_check() {
    let mut granted = stack_role();
    // What the stack role once granted: S3 names no such actions (PutBucketCORS removes CORS).
    granted[2].actions.push("s3:DeleteBucketCors".into());
    granted.push(Statement {
        sid: "Everything".into(),
        actions: vec!["sqs:DeleteQueue".into()],
        scope: String::new(),
        one_environment: false,
        everywhere: true,
    });
    let report = World::load(DEFAULT_TYPES).check(&granted);
    assert_eq!(report.unknown.iter().collect::<Vec<_>>(), ["ItsBuckets: s3:DeleteBucketCors"]);
    assert_eq!(report.unscoped.iter().collect::<Vec<_>>(), ["Everything"]);
}

#[test]
fn an_action_with_no_resource_type_granted_on_some_resources_fails_the_check() {
    let mut granted = stack_role();
    // What the role once did: CreateUserPool names no resource, so `userpool/*` never matches.
    let tables = granted.iter_mut().find(|s| s.sid == "ItsTables").unwrap();
    tables.actions.push("cognito-idp:CreateUserPool".into());
    let report = World::load(DEFAULT_TYPES).check(&granted);
    assert_eq!(report.never_matched.iter().collect::<Vec<_>>(), ["ItsTables: cognito-idp:CreateUserPool"]);
}

#[test]
fn a_reason_for_a_right_that_is_granted_after_all_is_stale() {
    let mut granted = stack_role();
    granted[0].actions.push("iam:DeleteRolePermissionsBoundary".into());
    let report = World::load(DEFAULT_TYPES).check(&granted);
    assert_eq!(report.stale.iter().collect::<Vec<_>>(), ["an environment's roles keep the environment boundary"]);
}

#[test]
fn every_policy_fits_iams_size_quotas() {
    for file in ["template.yaml", "infra/target-account.yaml"] {
        let sizes = policy_sizes(&template(file).unwrap());
        assert!(sizes.iter().any(|(id, ..)| id.contains("Boundary")), "{file}: {sizes:?}");
        let over: Vec<_> = sizes.iter().filter(|(_, size, quota)| size > quota).collect();
        assert!(over.is_empty(), "{file}: over IAM's quota (id, characters, quota): {over:?}");
    }
}
