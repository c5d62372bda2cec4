//! IAM in a blueprint: who its roles trust, what its policies attach to, and what they grant.

use serde_json::{Map, Value as Json};

use super::expr::{show, target, Part, Scope, Target};
use super::{values, Policy, Report, Rule};

/// Actions without resource-level permissions: the only ones `Resource: "*"` may carry.
const UNSCOPED_ACTIONS: &[&str] = &[
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData",
    "logs:DescribeLogGroups",
    "sts:GetCallerIdentity",
    "appsync:ListGraphqlApis",
    "dynamodb:ListTables",
    "s3:ListAllMyBuckets",
    "sqs:ListQueues",
    "sns:ListTopics",
    "lambda:ListFunctions",
    "secretsmanager:GetRandomPassword",
    "secretsmanager:ListSecrets",
    "cognito-idp:ListUserPools",
    "kms:ListAliases",
];

pub(super) fn check(
    id: &str,
    ty: &str,
    props: &Map<String, Json>,
    scope: &Scope,
    policy: &Policy,
    report: &mut Report,
) {
    let mut at = Site { id, ty, scope, policy, report };
    match ty {
        "AWS::IAM::Role" => {
            at.trust(props.get("AssumeRolePolicyDocument"));
            at.managed(props.get("ManagedPolicyArns"));
            for inline in props.get("Policies").map(values).unwrap_or_default() {
                match inline.as_object().filter(|m| !super::is_intrinsic(m)) {
                    Some(policy) => at.grants(policy.get("PolicyDocument")),
                    None => at.refuse(Rule::Template, "write each inline policy out as a map with PolicyName and PolicyDocument (not computed with Fn::If or the like)".into()),
                }
            }
        }
        "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy" => {
            at.attachment(props.get("Roles").or(props.get("RoleName")));
            at.identities(props);
            at.grants(props.get("PolicyDocument"));
        }
        "AWS::S3::BucketPolicy" | "AWS::SQS::QueuePolicy" | "AWS::SNS::TopicPolicy" => {
            at.resource_policy(props.get("PolicyDocument"));
        }
        "AWS::Lambda::Permission" => at.permission(props),
        "AWS::Cognito::IdentityPoolRoleAttachment" => at.attachment(props.get("Roles")),
        _ => {}
    }
    // Resource policies inside other resources (a table's, its stream's).
    for doc in resource_policies(props, 0) {
        at.resource_policy(Some(doc));
    }
}

/// The `PolicyDocument` of every `ResourcePolicy` in `props`, at any depth.
fn resource_policies(props: &Map<String, Json>, depth: usize) -> Vec<&Json> {
    let mut found = Vec::new();
    for (key, value) in props {
        match value {
            _ if key == "ResourcePolicy" => {
                found.extend(super::branches(value).into_iter().filter_map(|b| b.get("PolicyDocument")))
            }
            Json::Object(m) if depth < 8 => found.extend(resource_policies(m, depth + 1)),
            _ => {}
        }
    }
    found
}

struct Site<'a, 'r> {
    id: &'a str,
    ty: &'a str,
    scope: &'a Scope<'a>,
    policy: &'a Policy,
    report: &'r mut Report,
}

impl Site<'_, '_> {
    fn refuse(&mut self, rule: Rule, change: String) {
        self.report.refuse(self.id, self.ty, rule, change);
    }

    /// The `Allow` statements of a policy document.
    fn allows<'d>(&mut self, doc: Option<&'d Json>) -> Vec<&'d Map<String, Json>> {
        let Some(doc) = doc else { return vec![] };
        let Some(statements) = doc.as_object().and_then(|d| d.get("Statement")) else {
            self.refuse(
                Rule::Template,
                "write the policy document out as a map with a Statement list; the checker cannot read it otherwise"
                    .into(),
            );
            return vec![];
        };
        // One statement or a list of them; anything computed (`Fn::If`...) cannot be read.
        let listed = statement_list(statements);
        let mut allows = Vec::new();
        for statement in listed {
            match statement.as_object().filter(|m| !super::is_intrinsic(m)) {
                Some(s) if s.get("Effect").and_then(Json::as_str) == Some("Deny") => {}
                Some(s) => allows.push(s),
                None => self.refuse(
                    Rule::Template,
                    "write each policy statement out as a map (not computed with Fn::If or the like); the checker cannot read it otherwise".into(),
                ),
            }
        }
        allows
    }

    fn trust(&mut self, doc: Option<&Json>) {
        for statement in self.allows(doc) {
            if statement.contains_key("NotPrincipal") {
                self.refuse(
                    Rule::Trust,
                    "Allow with NotPrincipal trusts everyone else; name the service in Principal.Service".into(),
                );
            }
            for (kind, who) in principals(statement) {
                match kind {
                    "Service" if self.allowed_service(who) => {}
                    "Federated" if text(self.scope, who).as_deref() == Some("cognito-identity.amazonaws.com") => {
                        self.cognito_audience(statement);
                    }
                    _ => self.refuse(
                        Rule::Trust,
                        format!(
                            "the role trusts {kind} {}; only services may assume an environment's roles ({}), and cognito-identity.amazonaws.com with an aud condition on this template's identity pool",
                            shown(self.scope, who),
                            self.policy.service_principals.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ),
                }
            }
        }
    }

    fn allowed_service(&self, who: &Json) -> bool {
        text(self.scope, who).is_some_and(|s| self.policy.service_principals.contains(&s))
    }

    /// Cognito's identity pool may assume a role only for this template's own pool: a
    /// `StringEquals` on `aud` naming only it, and no other operator on `aud`.
    fn cognito_audience(&mut self, statement: &Map<String, Json>) {
        const AUD: &str = "cognito-identity.amazonaws.com:aud";
        let conditions = statement.get("Condition").and_then(Json::as_object);
        let equals = conditions.and_then(|c| c.get("StringEquals")).and_then(|e| e.get(AUD));
        let elsewhere = conditions
            .into_iter()
            .flat_map(|c| c.iter())
            .any(|(op, keys)| op != "StringEquals" && keys.get(AUD).is_some());
        let own_pool = equals.is_some_and(|aud| {
            let pools = values(aud);
            !pools.is_empty() && pools.into_iter().all(|p| self.scope.is_own(p, "AWS::Cognito::IdentityPool"))
        });
        if !own_pool || elsewhere {
            self.refuse(
                Rule::Trust,
                "a role trusted by cognito-identity.amazonaws.com needs Condition StringEquals cognito-identity.amazonaws.com:aud: !Ref <this template's AWS::Cognito::IdentityPool>, and no other condition on aud".into(),
            );
        }
    }

    fn managed(&mut self, arns: Option<&Json>) {
        for arn in arns.map(values).unwrap_or_default() {
            let allowed = text(self.scope, arn).is_some_and(|a| self.policy.managed_policies.contains(&a));
            let own = self.scope.is_own(arn, "AWS::IAM::ManagedPolicy");
            if !allowed && !own {
                self.refuse(
                    Rule::ManagedPolicy,
                    format!(
                        "{} is not allowed: attach a managed policy of this template, or one the operator allows ({})",
                        shown(self.scope, arn),
                        self.policy.managed_policies.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
    }

    fn attachment(&mut self, roles: Option<&Json>) {
        for role in roles.map(values).unwrap_or_default() {
            let own = self.scope.is_own(role, "AWS::IAM::Role");
            if !own {
                self.refuse(
                    Rule::Attachment,
                    format!("attaches to role {}, which is not in this template: attach policies only to this template's roles (!Ref <Role>)", shown(self.scope, role)),
                );
            }
        }
    }

    fn identities(&mut self, props: &Map<String, Json>) {
        for key in ["Users", "Groups"] {
            if props.get(key).is_some_and(|v| !values(v).is_empty()) {
                self.refuse(
                    Rule::IamIdentity,
                    format!("remove {key}: environment policies attach only to this template's roles"),
                );
            }
        }
    }

    /// What each `Allow` statement of an identity policy grants must be this environment's.
    fn grants(&mut self, doc: Option<&Json>) {
        let allows = self.allows(doc);
        self.granted(&allows);
    }

    fn granted(&mut self, allows: &[&Map<String, Json>]) {
        for (n, statement) in allows.iter().enumerate() {
            let sid =
                statement.get("Sid").and_then(Json::as_str).map(str::to_owned).unwrap_or_else(|| format!("#{}", n + 1));
            if statement.contains_key("NotResource") {
                self.refuse(Rule::WildcardResource, format!("statement {sid}: Allow with NotResource grants everything else; list this template's resources in Resource"));
            }
            let unscoped = only_unscoped(statement);
            for resource in statement.get("Resource").map(values).unwrap_or_default() {
                for alt in self.scope.alternatives(resource) {
                    match target(&alt) {
                        Target::Own(_) | Target::Namespaced => {}
                        Target::Wildcard if unscoped && alt == [Part::Lit("*".into())] => {}
                        Target::Wildcard => self.refuse(
                            Rule::WildcardResource,
                            format!("statement {sid}: Resource {} reaches beyond this environment; name this template's resources (\"*\" only for actions without resource-level permissions, such as xray:PutTraceSegments)", show(&alt)),
                        ),
                        Target::Outside(what) => self.refuse(
                            Rule::Reference,
                            format!("statement {sid}: Resource points at {what}, not at this environment; use !GetAtt/!Ref of this template's resources or ARNs under ${{AWS::StackName}}"),
                        ),
                    }
                }
            }
        }
    }

    /// A resource policy may grant only this template's roles and allowed services, only this
    /// environment's resources, and deny nothing the platform needs to clean up.
    fn resource_policy(&mut self, doc: Option<&Json>) {
        let denies = doc.and_then(|d| d.get("Statement")).map(statement_list).unwrap_or_default();
        if denies
            .iter()
            .filter_map(|s| s.as_object())
            .any(|s| s.get("Effect").and_then(Json::as_str) == Some("Deny") && blocks_cleanup(s))
        {
            self.refuse(
                Rule::Trust,
                "a Deny on deleting or on changing policies would keep the resource past its environment; deny only what does not clean up, or only without TLS (aws:SecureTransport)".into(),
            );
        }
        let allows = self.allows(doc);
        for statement in &allows {
            if statement.contains_key("NotPrincipal") {
                self.refuse(Rule::Trust, "Allow with NotPrincipal grants everyone else; name the principals".into());
            }
            for (kind, who) in principals(statement) {
                let own_role = kind == "AWS" && self.scope.is_own(who, "AWS::IAM::Role");
                let service = kind == "Service" && self.allowed_service(who);
                if service && !has_source_condition(self.scope, statement) {
                    self.refuse(
                        Rule::Trust,
                        format!("grants {} access on behalf of any account; add a Condition on aws:SourceArn (or aws:SourceAccount) naming this template's resource", shown(self.scope, who)),
                    );
                } else if !(own_role || service) {
                    self.refuse(
                        Rule::Trust,
                        format!("grants {kind} {} access; a resource policy may grant only this template's roles (!GetAtt <Role>.Arn) and allowed services", shown(self.scope, who)),
                    );
                }
            }
        }
        self.granted(&allows);
    }

    fn permission(&mut self, props: &Map<String, Json>) {
        let Some(principal) = props.get("Principal") else { return };
        let action = props.get("Action").and_then(Json::as_str);
        // A public function URL: its own permission, and (on newer accounts) the invoke it makes.
        let public_url = text(self.scope, principal).as_deref() == Some("*")
            && ((action == Some("lambda:InvokeFunctionUrl")
                && props.get("FunctionUrlAuthType").and_then(Json::as_str) == Some("NONE"))
                || (action == Some("lambda:InvokeFunction")
                    && props.get("InvokedViaFunctionUrl") == Some(&Json::Bool(true))));
        let source = props.get("SourceArn").is_some_and(|v| !self.scope.alternatives(v).is_empty());
        if self.allowed_service(principal) && !source {
            self.refuse(
                Rule::Trust,
                format!("lets {} invoke the function from any account; add SourceArn: the resource of this template that invokes it", shown(self.scope, principal)),
            );
        } else if !(public_url || self.allowed_service(principal)) {
            self.refuse(
                Rule::Trust,
                format!("lets {} invoke the function; only allowed services may (or \"*\" for a public function URL: Action lambda:InvokeFunctionUrl, FunctionUrlAuthType NONE)", shown(self.scope, principal)),
            );
        }
    }
}

/// Each principal of a statement, as (kind, value): `"*"` is (`*`, `"*"`).
fn principals(statement: &Map<String, Json>) -> Vec<(&str, &Json)> {
    match statement.get("Principal") {
        Some(Json::Object(m)) => {
            m.iter().flat_map(|(k, v)| values(v).into_iter().map(move |v| (k.as_str(), v))).collect()
        }
        Some(other) => vec![("everyone", other)],
        None => vec![],
    }
}

/// A document's `Statement`: a list, or one statement as IAM also reads it.
fn statement_list(statements: &Json) -> Vec<&Json> {
    match statements {
        Json::Array(items) => items.iter().collect(),
        one => vec![one],
    }
}

/// Whether a statement limits its principals to a source of this environment: a condition
/// (not `Null`, not `...IfExists`) on `aws:SourceArn` naming the template's own resources, or on
/// `aws:SourceAccount` naming this account.
fn has_source_condition(scope: &Scope, statement: &Map<String, Json>) -> bool {
    let Some(ops) = statement.get("Condition").and_then(Json::as_object) else { return false };
    ops.iter().filter(|(op, _)| *op != "Null" && !op.ends_with("IfExists")).any(|(_, keys)| {
        let own = |key: &str, ok: &dyn Fn(&[Part]) -> bool| {
            keys.get(key).is_some_and(|v| {
                let alts: Vec<Vec<Part>> = values(v).into_iter().flat_map(|x| scope.alternatives(x)).collect();
                !alts.is_empty() && alts.iter().all(|alt| ok(alt))
            })
        };
        own("aws:SourceArn", &|alt| matches!(target(alt), Target::Own(_) | Target::Namespaced))
            || own("aws:SourceAccount", &|alt| alt == [Part::Pseudo("AWS::AccountId")])
    })
}

/// A `Deny` in a resource policy may not keep the platform from changing or deleting the
/// resource: only with a condition on `aws:SecureTransport`, or on actions that neither delete
/// nor change policies.
fn blocks_cleanup(statement: &Map<String, Json>) -> bool {
    let tls_only = statement
        .get("Condition")
        .and_then(Json::as_object)
        .is_some_and(|ops| ops.values().any(|keys| keys.get("aws:SecureTransport").is_some()));
    if tls_only {
        return false;
    }
    statement.contains_key("NotAction")
        || statement.get("Action").map(values).unwrap_or_default().iter().any(|a| {
            a.as_str().is_none_or(|a| {
                let a = a.to_ascii_lowercase();
                a.contains('*')
                    || a.contains("delete")
                    || a.contains("policy")
                    || a.contains("setqueueattributes")
                    || a.contains("settopicattributes")
            })
        })
}

fn only_unscoped(statement: &Map<String, Json>) -> bool {
    let actions = statement.get("Action").map(values).unwrap_or_default();
    !actions.is_empty()
        && actions
            .iter()
            .all(|a| a.as_str().is_some_and(|a| UNSCOPED_ACTIONS.iter().any(|u| u.eq_ignore_ascii_case(a))))
}

/// The literal text of `v`, with `${AWS::URLSuffix}` and `${AWS::Partition}` read as on AWS.
fn text(scope: &Scope, v: &Json) -> Option<String> {
    let alts = scope.alternatives(v);
    let [alt] = alts.as_slice() else { return None };
    alt.iter()
        .map(|p| match p {
            Part::Lit(s) => Some(s.clone()),
            Part::Pseudo("AWS::URLSuffix") => Some("amazonaws.com".into()),
            Part::Pseudo("AWS::Partition") => Some("aws".into()),
            _ => None,
        })
        .collect()
}

fn shown(scope: &Scope, v: &Json) -> String {
    scope.alternatives(v).first().map(|alt| show(alt)).unwrap_or_else(|| "(no value)".into())
}
