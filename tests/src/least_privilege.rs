//! Every call a function makes in the end-to-end tests, checked against its role.
//!
//! Each function acts with its own access key ([`KEYS`]); the emulator records every call with
//! the key that signed it, and the role session behind it when the key came from AssumeRole.
//! When a [`crate::Platform`] is dropped, its calls are checked against the SAM-expanded
//! `template.yaml` (see [`crate::policy`]): a call the function's role would not allow fails
//! the test, naming the call and what it needed. The calls of the test itself and of the
//! platform's set-up (its own access key) are nobody's, and not checked.
//!
//! With `EPHEMERA_IAM_EXERCISED` naming a folder, the statements that allowed some call are
//! written there, a file per platform: `make test` gathers them into the report of statements
//! no test exercises (`iam-report`).

use std::collections::BTreeMap;
use std::path::Path;

use aws_config::SdkConfig;
use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
use ephemera_wiring::{Clients, Config};

use crate::policy::{self, Deployed, Principals, Role, Verdict};

/// Each function's access key, and the role of the expanded template it acts as.
pub const KEYS: [(&str, &str); 6] = [
    ("AKIAFUNCTIONWEBHOOK1", "WebhookFunctionRole"),
    ("AKIAFUNCTIONPROVISN1", "ProvisionerFunctionRole"),
    ("AKIAFUNCTIONSELFSRV1", "SelfServiceFunctionRole"),
    ("AKIAFUNCTIONNOTIFYR1", "NotifierFunctionRole"),
    ("AKIAFUNCTIONREAPER01", "ReaperFunctionRole"),
    ("AKIAFUNCTIONSTKEVNT1", "StackEventsFunctionRole"),
];

/// The role environment stacks are changed as, unless a test names another.
pub const ENVIRONMENT_ROLE: &str = "arn:aws:iam::123456789012:role/ephemera-EnvironmentStackRole";
/// The account the emulator puts calls with a plain access key in.
pub const ACCOUNT: &str = "123456789012";
/// Stands for the GitHub token's secret, so that the template's GitHub parts are in.
const GITHUB_TOKEN_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ephemera-github-token-AbCdEf";
/// Stands for the webhook secret's secret, when a test gives the secret itself.
const WEBHOOK_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ephemera-github-webhook-AbCdEf";

/// Each function's clients, each with its own access key.
#[derive(Clone)]
pub struct FunctionClients {
    pub webhook: Clients,
    pub provisioner: Clients,
    pub selfservice: Clients,
    pub notifier: Clients,
    pub reaper: Clients,
    pub stack_events: Clients,
}

impl FunctionClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        let as_key = |i: usize| {
            let credentials = Credentials::new(KEYS[i].0, "function-secret", None, None, "test-function");
            Clients::new(&sdk.to_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build())
        };
        Self {
            webhook: as_key(0),
            provisioner: as_key(1),
            selfservice: as_key(2),
            notifier: as_key(3),
            reaper: as_key(4),
            stack_events: as_key(5),
        }
    }

    /// What the local process runs, with `platform` creating the resources and reading queues.
    pub fn local(&self, platform: &Clients) -> ephemera_local::Functions {
        ephemera_local::Functions {
            platform: platform.clone(),
            webhook: self.webhook.clone(),
            provisioner: self.provisioner.clone(),
            selfservice: self.selfservice.clone(),
            notifier: self.notifier.clone(),
        }
    }
}

/// The environment stacks' role a configuration uses.
fn environment_role(config: &Config) -> &str {
    config.provisioner.environment_role_arn.as_deref().unwrap_or(ENVIRONMENT_ROLE)
}

/// A role's name, from its ARN.
fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or_default()
}

/// The template's names as a test's configuration deploys them.
pub fn deployed(config: &Config) -> Deployed {
    let shared = &config.shared;
    let region = shared.region.as_str();
    let accounts: Vec<String> = config.provisioner.deploy.routes.all().iter().map(|t| t.account.clone()).collect();
    let mut deployed = Deployed::new(ACCOUNT, region)
        .set("Registry", &shared.table)
        .set("Registry.Arn", &format!("arn:aws:dynamodb:{region}:{ACCOUNT}:table/{}", shared.table))
        .set("Bus.Name", &shared.bus)
        .set("Bus.Arn", &format!("arn:aws:events:{region}:{ACCOUNT}:event-bus/{}", shared.bus))
        .set("ArtifactsBucket", &shared.bucket)
        .set("ArtifactsBucket.Arn", &format!("arn:aws:s3:::{}", shared.bucket))
        .set("EnvironmentStackRole.Arn", environment_role(config))
        .set("GitHubTokenSecretArn", config.github.token_secret_arn.as_deref().unwrap_or(GITHUB_TOKEN_SECRET))
        .set("WebhookSecretArn", config.webhook.secret_arn.as_deref().unwrap_or(WEBHOOK_SECRET))
        .set_list("DeployAccountIds", &accounts);
    if let Some(ephemera_wiring::config::GitHubApp { id, key: ephemera_wiring::config::AppKey::Secret(arn) }) =
        &config.github.app
    {
        deployed = deployed.set("GitHubAppId", id).set("GitHubAppPrivateKeySecretArn", arn);
    }
    if let Some(target) = config.provisioner.deploy.routes.all().first() {
        deployed = deployed.set("DeployRoleName", role_name(&target.role_arn));
    }
    deployed
}

/// The roles that act in the tests, as `config` deploys them: the functions' and the
/// environment stacks' from `template` (the expanded `template.yaml`, or a copy), and the deploy
/// role of each sandbox account (`infra/target-account.yaml`), keyed `DeployRole in <account>`.
pub fn roles(config: &Config, template: &serde_json::Value) -> anyhow::Result<BTreeMap<String, Role>> {
    let deployed = deployed(config);
    let mut roles = BTreeMap::new();
    for name in KEYS.iter().map(|(_, r)| *r).chain(["EnvironmentStackRole"]) {
        roles.insert(name.to_owned(), Role::load(template, &deployed, name)?);
    }
    for target in config.provisioner.deploy.routes.all() {
        let deployed = Deployed::new(&target.account, &config.shared.region)
            .set("PlatformAccountId", ACCOUNT)
            .set("PlatformStackName", "ephemera")
            .set("RoleName", role_name(&target.role_arn));
        let role = Role::load(policy::target_account_template(), &deployed, "DeployRole")?;
        roles.insert(format!("DeployRole in {}", target.account), role);
    }
    Ok(roles)
}

/// Whose calls are whose, under `config`.
pub fn principals(config: &Config) -> Principals {
    let mut principals = Principals::default();
    for (key, role) in KEYS {
        principals.keys.insert(key.to_owned(), role.to_owned());
    }
    principals.roles.insert(environment_role(config).to_owned(), "EnvironmentStackRole".to_owned());
    for target in config.provisioner.deploy.routes.all() {
        principals.roles.insert(target.role_arn.clone(), format!("DeployRole in {}", target.account));
    }
    principals
}

/// The calls recorded in `calls`, checked against the roles `config` deploys.
pub fn check_calls(config: &Config, calls: &Path) -> anyhow::Result<Verdict> {
    let mut calls = policy::calls(calls)?;
    calls.iter_mut().for_each(as_aws_names_it);
    let roles = roles(config, policy::expanded_template())?;
    Ok(policy::check(&calls, &roles, &principals(config)))
}

/// Where the emulator differs from AWS: a bucket name CloudFormation generates
/// (`<stack>-<logical id>-<random>`, at most 63 characters) is cut short in its stack's name
/// by the emulator, in its logical id by AWS, which keeps the stack's name whole when it
/// leaves room (stacks of up to 47 characters). In an environment's session, such a bucket is
/// named as AWS would name it before it is checked. (Longer stack names are cut on AWS too:
/// see docs/iam.md.)
fn as_aws_names_it(call: &mut policy::Call) {
    let Some(env) = call.tags.get("ephemera:environment") else { return };
    let stack = format!("ephemera-{env}");
    if stack.len() > 47 {
        return;
    }
    for (_, resource) in call.checks.iter_mut() {
        let Some(name) = resource.strip_prefix("arn:aws:s3:::") else { continue };
        if name.starts_with(&format!("{stack}-")) {
            continue;
        }
        let cut = (ephemera_domain::catalogue::MIN_CUT..stack.len())
            .rev()
            .find(|&k| name.starts_with(&stack[..k]) && name[k..].starts_with('-'));
        if let Some(k) = cut {
            *resource = format!("arn:aws:s3:::{stack}{}", &name[k..]);
        }
    }
}

/// Checks the calls, panicking with every call AWS would deny; writes the statements
/// exercised to `EPHEMERA_IAM_EXERCISED`, if set.
pub fn enforce(config: &Config, calls: &Path) {
    let verdict = check_calls(config, calls).unwrap_or_else(|e| panic!("checking the calls made: {e:#}"));
    if let Some(folder) = std::env::var_os("EPHEMERA_IAM_EXERCISED") {
        let _ = std::fs::create_dir_all(&folder);
        let lines: String = verdict
            .exercised
            .iter()
            .flat_map(|(role, ids)| ids.iter().map(move |id| format!("{role} {id}\n")))
            .collect();
        let name = format!("{}-{}.txt", std::process::id(), uuid::Uuid::new_v4());
        std::fs::write(Path::new(&folder).join(name), lines).expect("writing the statements exercised");
    }
    let denied: Vec<String> = verdict.denied.iter().map(|d| format!("  {d}")).collect();
    assert!(denied.is_empty(), "calls their function's role does not allow (template.yaml):\n{}", denied.join("\n"));
}
