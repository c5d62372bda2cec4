//! Blueprint rendering: every taggable resource gets the environment's tags, and the parameters
//! the template declares from the known set are filled in.
//!
//! Stack tags propagate to resources in AWS for most types, but not all, and not in every
//! emulator; and a per-commit template from an application's CI may forget them. So the
//! platform writes the tags into each resource itself: the reaper relies on them.
//!
//! The output is JSON, with YAML short-form intrinsics (`!Ref`, `!Sub`, ...) written in their
//! long form, so that nothing depends on how a YAML parser reads dates or numbers.

use ephemera_domain::blueprint::{self, Policy, Report};
use ephemera_domain::catalogue::{self, TagShape};
use ephemera_domain::TagSet;
use serde_json::{json, Map, Value as Json};
use serde_yaml_ng::Value as Yaml;

/// CloudFormation's limit for an inline `TemplateBody`.
pub const MAX_TEMPLATE_BODY: usize = 51_200;

/// Types outside the resource catalogue (parts of a catalogued resource, or types an operator
/// may allow) whose `Tags` is a list of `{Key, Value}`. The catalogue says how its own types
/// are tagged.
const LIST_TAGGED: &[&str] = &[
    "AWS::CloudWatch::Alarm",
    "AWS::DynamoDB::GlobalTable",
    "AWS::EC2::SecurityGroup",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::KMS::Key",
    "AWS::Kinesis::Stream",
    "AWS::Lambda::EventSourceMapping",
    "AWS::StepFunctions::StateMachine",
];
/// Types outside the catalogue whose `Tags` is a map of key to value.
const MAP_TAGGED: &[&str] = &["AWS::ApiGatewayV2::Api", "AWS::SSM::Parameter", "AWS::Serverless::Function"];

/// How long the log groups the platform adds for functions and APIs keep their events.
pub const RUNTIME_LOG_RETENTION_DAYS: u32 = 7;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("template is not valid YAML or JSON: {0}")]
    Syntax(String),
    #[error("template has no Resources section")]
    NoResources,
    #[error("rendered template is {0} bytes; CloudFormation accepts at most 51,200 inline")]
    TooLarge(usize),
    #[error("{0}")]
    Schema(String),
}

/// A rendered template and the parameters to pass with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub body: String,
    pub parameters: Vec<(String, String)>,
    /// Resources whose tags were written in.
    pub tagged: usize,
    /// Every resource's type, for cost estimates.
    pub resource_types: Vec<String>,
}

/// `source` with the one GraphQL schema in it replaced by `schema` (inline `Definition`), and
/// nothing else changed: what `amplify push` of an edited `schema.graphql` does. As JSON.
pub fn with_schema(source: &str, schema: &str) -> Result<String, TemplateError> {
    let mut doc = parse(source)?;
    let resources = doc.get_mut("Resources").and_then(Json::as_object_mut).ok_or(TemplateError::NoResources)?;
    let schemas: Vec<String> = resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Json::as_str) == Some("AWS::AppSync::GraphQLSchema"))
        .map(|(id, _)| id.clone())
        .collect();
    let [id] = schemas.as_slice() else {
        return Err(TemplateError::Schema(format!(
            "the current template has {} GraphQL schemas ({}); push a whole template instead",
            schemas.len(),
            schemas.join(", ")
        )));
    };
    if schema.trim().is_empty() {
        return Err(TemplateError::Schema("the schema is empty".into()));
    }
    let properties = resources[id]
        .as_object_mut()
        .expect("a resource with a Type is an object")
        .entry("Properties")
        .or_insert_with(|| json!({}));
    let properties =
        properties.as_object_mut().ok_or_else(|| TemplateError::Schema(format!("{id} has no Properties")))?;
    properties.remove("DefinitionS3Location");
    properties.insert("Definition".into(), Json::String(schema.to_owned()));
    Ok(serde_json::to_string_pretty(&doc).expect("JSON values serialize"))
}

/// Reads `source` (YAML or JSON) into JSON with long-form intrinsics.
pub fn parse(source: &str) -> Result<Json, TemplateError> {
    let yaml: Yaml = serde_yaml_ng::from_str(source).map_err(|e| TemplateError::Syntax(e.to_string()))?;
    let doc = to_json(yaml);
    if !doc.get("Resources").is_some_and(Json::is_object) {
        return Err(TemplateError::NoResources);
    }
    Ok(doc)
}

/// Reads `source` and checks it against the blueprint policy: the template with the policy's
/// rewrites made, or every violation.
pub fn check(source: &str, policy: &Policy) -> Result<(Json, Report), CheckError> {
    let mut doc = parse(source)?;
    let report = blueprint::check(&doc, policy);
    if !report.accepted() {
        return Err(CheckError::Refused(report));
    }
    report.apply(&mut doc);
    record_rewrites(&mut doc, &report);
    Ok((doc, report))
}

/// The stack output that says what the policy rewrote, so the environment reports it (API,
/// CLI, pull request comment) for as long as the stack lives. A template's own output of that
/// name is replaced.
pub const REWRITES_OUTPUT: &str = "EphemeraPolicyRewrites";

fn record_rewrites(doc: &mut Json, report: &Report) {
    let outputs = doc.as_object_mut().and_then(|d| d.entry("Outputs").or_insert_with(|| json!({})).as_object_mut());
    let Some(outputs) = outputs else { return };
    outputs.remove(REWRITES_OUTPUT);
    if report.rewrites.is_empty() {
        return;
    }
    let text: Vec<String> = report
        .rewrites
        .iter()
        .map(|r| format!("{} {} {} to {}", r.logical_id, r.attribute, r.from, r.to_text()))
        .collect();
    // Output values are at most 4,096 characters.
    let value: String = format!("rewritten: {}", text.join(", ")).chars().take(4000).collect();
    outputs.insert(
        REWRITES_OUTPUT.into(),
        json!({ "Description": "What Ephemera's blueprint policy rewrote", "Value": value }),
    );
}

/// Why a blueprint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{}", .0.reason())]
    Refused(Report),
}

/// Renders `doc`, tagging each resource with `tags`, passing the values in `known` for the
/// parameters the template declares, and putting `boundary` (a managed policy ARN) on every
/// IAM role as its permissions boundary.
pub fn render(
    mut doc: Json,
    tags: &TagSet,
    known: &[(&str, String)],
    boundary: Option<&str>,
) -> Result<Rendered, TemplateError> {
    let declared: Vec<String> =
        doc.get("Parameters").and_then(Json::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    let resources = doc.get_mut("Resources").and_then(Json::as_object_mut).ok_or(TemplateError::NoResources)?;
    let stack = tags.get(ephemera_domain::tags::ENVIRONMENT).map(|e| format!("ephemera-{e}"));
    add_runtime_log_groups(resources);
    for (logical, resource) in resources.iter_mut() {
        name_for_the_stack(logical, resource);
        if let Some(stack) = &stack {
            name_function(stack, logical, resource);
        }
    }
    let mut tagged = 0;
    let resource_types =
        resources.values().filter_map(|r| r.get("Type").and_then(Json::as_str)).map(str::to_owned).collect();
    for resource in resources.values_mut() {
        if tag_resource(resource, tags) {
            tagged += 1;
        }
        if let Some(arn) = boundary {
            bound_role(resource, arn);
        }
    }
    let parameters = known
        .iter()
        .filter(|(k, _)| declared.iter().any(|d| d == k))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let body = serde_json::to_string(&doc).expect("JSON values serialize");
    if body.len() > MAX_TEMPLATE_BODY {
        return Err(TemplateError::TooLarge(body.len()));
    }
    Ok(Rendered { body, parameters, tagged, resource_types })
}

/// Where a type carries its tags: the property, and whether it is a list (or a map).
fn tag_property(kind: &str) -> Option<(&'static str, bool)> {
    if let Some(entry) = catalogue::CATALOGUE.iter().find(|e| e.resource_type == kind) {
        return match entry.tags {
            TagShape::List(p) => Some((p, true)),
            TagShape::Map(p) => Some((p, false)),
            TagShape::None => None,
        };
    }
    if LIST_TAGGED.contains(&kind) {
        Some(("Tags", true))
    } else if MAP_TAGGED.contains(&kind) {
        Some(("Tags", false))
    } else {
        None
    }
}

fn tag_resource(resource: &mut Json, tags: &TagSet) -> bool {
    let Some(kind) = resource.get("Type").and_then(Json::as_str).map(str::to_owned) else {
        return false;
    };
    let Some((property, list)) = tag_property(&kind) else { return false };
    let map = !list;
    let Some(props) = properties(resource) else {
        return false;
    };
    let existing = props.entry(property).or_insert_with(|| if list { json!([]) } else { json!({}) });
    match existing {
        Json::Array(items) if list => {
            items.retain(|t| t.get("Key").and_then(Json::as_str).is_none_or(|k| tags.get(k).is_none()));
            items.extend(tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})));
            true
        }
        Json::Object(m) if map => {
            for (k, v) in tags.iter() {
                m.insert(k.to_owned(), json!(v));
            }
            true
        }
        // An intrinsic function or something unexpected: left as the author wrote it.
        _ => false,
    }
}

/// Lambda creates a function's log group `/aws/lambda/<name>` on its first invocation, and
/// AppSync an API's `/aws/appsync/apis/<id>` when its logging is on; neither belongs to the
/// stack, so both would outlive it. Each gets an explicit log group in the stack, with a short
/// retention (and the platform's tags, like every resource), unless the template declares one
/// or sends the function's logs elsewhere.
fn add_runtime_log_groups(resources: &mut Map<String, Json>) {
    let declared: Vec<String> = resources
        .values()
        .filter(|r| r.get("Type").and_then(Json::as_str) == Some("AWS::Logs::LogGroup"))
        .filter_map(|r| name_text(r.pointer("/Properties/LogGroupName")?))
        .collect();
    let mut added = Vec::new();
    for (logical, r) in resources.iter() {
        let props = r.get("Properties");
        let name = match r.get("Type").and_then(Json::as_str) {
            Some("AWS::Lambda::Function") if props.and_then(|p| p.pointer("/LoggingConfig/LogGroup")).is_none() => {
                let own = props.and_then(|p| p.get("FunctionName")).and_then(name_text);
                let mine = [Some(format!("${{{logical}}}")), own].into_iter().flatten();
                if mine.clone().any(|n| declared.contains(&format!("{}{n}", catalogue::LAMBDA_LOG_PREFIX))) {
                    continue;
                }
                format!("{}${{{logical}}}", catalogue::LAMBDA_LOG_PREFIX)
            }
            Some("AWS::AppSync::GraphQLApi") if props.and_then(|p| p.get("LogConfig")).is_some() => {
                format!("{}${{{logical}.ApiId}}", catalogue::APPSYNC_LOG_PREFIX)
            }
            _ => continue,
        };
        if !declared.contains(&name) {
            added.push((format!("{logical}Logs"), name, r.get("Condition").cloned()));
        }
    }
    for (mut id, name, condition) in added {
        while resources.contains_key(&id) {
            id.push('X');
        }
        let key = id.clone();
        let group = json!({
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": { "LogGroupName": { "Fn::Sub": name }, "RetentionInDays": RUNTIME_LOG_RETENTION_DAYS }
        });
        resources.insert(id, group);
        // Made only when what it logs for is.
        if let (Some(c), Some(g)) = (condition, resources.get_mut(&key).and_then(Json::as_object_mut)) {
            g.insert("Condition".into(), c);
        }
    }
}

/// The property that names each kind the sweep could not otherwise tell the owner of: kinds
/// their service knows by an id (an API, a pool), whose names nothing refers to and need not
/// be unique, so the platform prefixes them with the stack's name; and a secret, which
/// CloudFormation names `<logical id>-<random>` (one the author names must already start with
/// the stack's name).
const LABELS: &[(&str, &str)] = &[
    ("AWS::AppSync::GraphQLApi", "Name"),
    ("AWS::Cognito::UserPool", "UserPoolName"),
    ("AWS::Cognito::IdentityPool", "IdentityPoolName"),
    ("AWS::SecretsManager::Secret", "Name"),
];

fn name_for_the_stack(logical: &str, resource: &mut Json) {
    let Some(ty) = resource.get("Type").and_then(Json::as_str) else { return };
    let Some(&(_, key)) = LABELS.iter().find(|(t, _)| *t == ty) else { return };
    let Some(props) = properties(resource) else {
        return;
    };
    let named = match props.get(key) {
        None => json!({ "Fn::Sub": format!("${{AWS::StackName}}-{logical}") }),
        Some(v) if name_text(v).is_some_and(|n| n.starts_with("${AWS::StackName}")) => return,
        Some(Json::String(s)) => json!({ "Fn::Sub": format!("${{AWS::StackName}}-{}", s.replace("${", "${!")) }),
        Some(other) => json!({ "Fn::Join": ["-", [{ "Ref": "AWS::StackName" }, other.clone()]] }),
    };
    props.insert(key.to_owned(), named);
}

/// Lambda's limit on a function's name.
const MAX_FUNCTION_NAME: usize = 64;

/// A function the template leaves unnamed is named `<stack>-<logical id>` where that fits:
/// CloudFormation would cut a generated name's stack part short, and then the log group Lambda
/// makes for it (`/aws/lambda/<name>`, untagged) could not be told to be the environment's.
fn name_function(stack: &str, logical: &str, resource: &mut Json) {
    if resource.get("Type").and_then(Json::as_str) != Some("AWS::Lambda::Function")
        || stack.len() + 1 + logical.len() > MAX_FUNCTION_NAME
    {
        return;
    }
    let Some(props) = properties(resource) else {
        return;
    };
    props.entry("FunctionName").or_insert_with(|| json!({ "Fn::Sub": format!("${{AWS::StackName}}-{logical}") }));
}

/// A resource's `Properties`, made if missing; `None` if the resource or they are not maps.
fn properties(resource: &mut Json) -> Option<&mut Map<String, Json>> {
    resource.as_object_mut()?.entry("Properties").or_insert_with(|| json!({})).as_object_mut()
}

/// A name written as a literal or a `Fn::Sub` string, as text (`${...}` kept).
fn name_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Object(m) if m.len() == 1 => m.get("Fn::Sub").and_then(Json::as_str).map(str::to_owned),
        _ => None,
    }
}

/// A role's boundary is the platform's, whatever the template said.
fn bound_role(resource: &mut Json, boundary: &str) {
    if resource.get("Type").and_then(Json::as_str) != Some("AWS::IAM::Role") {
        return;
    }
    if let Some(props) = properties(resource) {
        props.insert("PermissionsBoundary".into(), json!(boundary));
    }
}

/// YAML (with CloudFormation's short-form tags) to JSON (long form).
fn to_json(v: Yaml) -> Json {
    match v {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Yaml::String(s) => Json::String(s),
        Yaml::Sequence(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s,
                    other => serde_yaml_ng::to_string(&other).unwrap_or_default().trim().to_owned(),
                };
                out.insert(key, to_json(v));
            }
            Json::Object(out)
        }
        Yaml::Tagged(t) => {
            let name = t.tag.to_string();
            let name = name.trim_start_matches('!');
            let value = to_json(t.value);
            match name {
                "Ref" => json!({ "Ref": value }),
                "Condition" => json!({ "Condition": value }),
                "GetAtt" => match value {
                    Json::String(s) => {
                        let (res, attr) = s.split_once('.').unwrap_or((&s, ""));
                        json!({ "Fn::GetAtt": [res, attr] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): value }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(source: &str) -> Json {
        let r = render(parse(source).unwrap(), &tags(), &[], None).unwrap();
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn every_function_and_logging_api_gets_a_tagged_log_group_of_its_own() {
        let doc = rendered(
            r#"
Conditions: { WithWorker: !Equals [a, a] }
Resources:
  Handler: { Type: AWS::Lambda::Function, Properties: { Runtime: python3.12 } }
  Worker: { Type: AWS::Lambda::Function, Condition: WithWorker, Properties: { FunctionName: !Sub "${AWS::StackName}-worker" } }
  WorkerLogs: { Type: AWS::SQS::Queue }
  Api: { Type: AWS::AppSync::GraphQLApi, Properties: { Name: api, LogConfig: { FieldLogLevel: ERROR } } }
  Quiet: { Type: AWS::AppSync::GraphQLApi, Properties: { Name: quiet } }
"#,
        );
        let r = &doc["Resources"];
        assert_eq!(r["HandlerLogs"]["Properties"]["LogGroupName"], json!({"Fn::Sub": "/aws/lambda/${Handler}"}));
        assert_eq!(r["HandlerLogs"]["Properties"]["RetentionInDays"], 7);
        assert_eq!(r["HandlerLogs"]["DeletionPolicy"], "Delete");
        let tags = r["HandlerLogs"]["Properties"]["Tags"].as_array().unwrap();
        assert!(tags.contains(&json!({"Key": "CostCenter", "Value": "platform"})), "{tags:?}");
        // The id its name would take is in use; it is made only when the function is.
        assert_eq!(r["WorkerLogsX"]["Properties"]["LogGroupName"], json!({"Fn::Sub": "/aws/lambda/${Worker}"}));
        assert_eq!(r["WorkerLogsX"]["Condition"], "WithWorker");
        assert_eq!(r["ApiLogs"]["Properties"]["LogGroupName"], json!({"Fn::Sub": "/aws/appsync/apis/${Api.ApiId}"}));
        assert!(r.get("QuietLogs").is_none(), "an API that does not log gets none");
    }

    #[test]
    fn a_function_whose_log_group_the_template_declares_or_routes_elsewhere_gets_none() {
        let doc = rendered(
            r#"
Resources:
  Named: { Type: AWS::Lambda::Function, Properties: { FunctionName: !Sub "${AWS::StackName}-resolver" } }
  NamedLogs2: { Type: AWS::Logs::LogGroup, Properties: { LogGroupName: !Sub "/aws/lambda/${AWS::StackName}-resolver" } }
  ByRef: { Type: AWS::Lambda::Function }
  ByRefGroup: { Type: AWS::Logs::LogGroup, Properties: { LogGroupName: !Sub "/aws/lambda/${ByRef}" } }
  Routed: { Type: AWS::Lambda::Function, Properties: { LoggingConfig: { LogGroup: !Ref Shared } } }
  Shared: { Type: AWS::Logs::LogGroup }
"#,
        );
        let ids: Vec<&String> = doc["Resources"].as_object().unwrap().keys().collect();
        assert_eq!(ids.len(), 6, "{ids:?}");
    }

    #[test]
    fn unnamed_functions_are_named_for_their_stack_where_the_name_fits() {
        let source = r#"
Resources:
  Handler: { Type: AWS::Lambda::Function }
  Named: { Type: AWS::Lambda::Function, Properties: { FunctionName: !Sub "${AWS::StackName}-mine" } }
  AFunctionWithALogicalIdFarTooLongToFitBesideTheStackName: { Type: AWS::Lambda::Function }
"#;
        let mut tags = tags();
        tags = tags
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .chain([("ephemera:environment".to_owned(), "pr-7-acme-todo-app-6acfdc9491".to_owned())])
            .collect();
        let r = render(parse(source).unwrap(), &tags, &[], None).unwrap();
        let doc: Json = serde_json::from_str(&r.body).unwrap();
        let name = |id: &str| doc["Resources"][id]["Properties"].get("FunctionName").cloned();
        assert_eq!(name("Handler"), Some(json!({"Fn::Sub": "${AWS::StackName}-Handler"})));
        assert_eq!(name("Named"), Some(json!({"Fn::Sub": "${AWS::StackName}-mine"})));
        assert_eq!(name("AFunctionWithALogicalIdFarTooLongToFitBesideTheStackName"), None);
    }

    #[test]
    fn apis_and_pools_are_named_for_their_stack() {
        let doc = rendered(
            r#"
Parameters: { Env: { Type: String } }
Resources:
  Api: { Type: AWS::AppSync::GraphQLApi, Properties: { Name: todoapi } }
  Own: { Type: AWS::AppSync::GraphQLApi, Properties: { Name: !Sub "${AWS::StackName}-api" } }
  Users: { Type: AWS::Cognito::UserPool, Properties: { UserPoolName: !Join ["-", [todo, !Ref Env]] } }
  Identities: { Type: AWS::Cognito::IdentityPool }
  Token: { Type: AWS::SecretsManager::Secret }
"#,
        );
        assert_eq!(doc["Resources"]["Token"]["Properties"]["Name"], json!({"Fn::Sub": "${AWS::StackName}-Token"}));
        let name = |id: &str, key: &str| doc["Resources"][id]["Properties"][key].clone();
        assert_eq!(name("Api", "Name"), json!({"Fn::Sub": "${AWS::StackName}-todoapi"}));
        assert_eq!(name("Own", "Name"), json!({"Fn::Sub": "${AWS::StackName}-api"}), "already its stack's");
        assert_eq!(
            name("Users", "UserPoolName"),
            json!({"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, {"Fn::Join": ["-", ["todo", {"Ref": "Env"}]]}]]})
        );
        assert_eq!(name("Identities", "IdentityPoolName"), json!({"Fn::Sub": "${AWS::StackName}-Identities"}));
    }

    #[test]
    fn each_catalogued_type_is_tagged_where_it_keeps_its_tags() {
        let doc = rendered(
            r#"
Resources:
  Pool: { Type: AWS::Cognito::UserPool }
  Identities: { Type: AWS::Cognito::IdentityPool, Properties: { AllowUnauthenticatedIdentities: false } }
  Policy: { Type: AWS::IAM::ManagedPolicy, Properties: { PolicyDocument: {} } }
"#,
        );
        let r = &doc["Resources"];
        assert_eq!(r["Pool"]["Properties"]["UserPoolTags"]["CostCenter"], "platform");
        assert!(r["Identities"]["Properties"]["IdentityPoolTags"].as_array().unwrap().len() >= 2);
        assert!(r["Policy"]["Properties"].get("Tags").is_none(), "CloudFormation cannot tag a managed policy");
    }

    const SAMPLE: &str = r#"
AWSTemplateFormatVersion: 2010-09-09
Parameters:
  EnvironmentName: { Type: String }
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-todo"
      Tags:
        - { Key: Team, Value: web }
        - { Key: ephemera:commit, Value: spoofed }
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: { Statement: [] }
  Param:
    Type: AWS::SSM::Parameter
    Properties: { Type: String, Value: !GetAtt Table.Arn }
  Key:
    Type: AWS::AppSync::ApiKey
    Properties: { ApiId: !Ref Api }
Outputs:
  Url: { Value: !Join ["", ["https://", !Ref Api]] }
"#;

    fn tags() -> TagSet {
        TagSet::parse_cost_tags("CostCenter=platform")
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .chain([("ephemera:commit".to_owned(), "abc".to_owned())])
            .collect()
    }

    #[test]
    fn tags_every_taggable_resource_and_overrides_spoofed_values() {
        let r = render(
            parse(SAMPLE).unwrap(),
            &tags(),
            &[("EnvironmentName", "pr-1".into()), ("Unused", "x".into())],
            None,
        )
        .unwrap();
        assert_eq!(r.tagged, 3);
        let doc: Json = serde_json::from_str(&r.body).unwrap();
        let table_tags = doc["Resources"]["Table"]["Properties"]["Tags"].as_array().unwrap();
        assert!(table_tags.contains(&json!({"Key": "Team", "Value": "web"})));
        assert!(table_tags.contains(&json!({"Key": "ephemera:commit", "Value": "abc"})));
        assert!(!table_tags.contains(&json!({"Key": "ephemera:commit", "Value": "spoofed"})));
        assert_eq!(doc["Resources"]["Role"]["Properties"]["Tags"].as_array().unwrap().len(), 2);
        assert_eq!(doc["Resources"]["Param"]["Properties"]["Tags"]["CostCenter"], "platform");
        assert!(doc["Resources"]["Key"]["Properties"].get("Tags").is_none());
        assert_eq!(r.parameters, vec![("EnvironmentName".to_owned(), "pr-1".to_owned())]);
    }

    #[test]
    fn short_form_intrinsics_become_long_form() {
        let r = render(parse(SAMPLE).unwrap(), &TagSet::default(), &[], None).unwrap();
        let doc: Json = serde_json::from_str(&r.body).unwrap();
        assert_eq!(doc["Resources"]["Table"]["Properties"]["TableName"], json!({"Fn::Sub": "${AWS::StackName}-todo"}));
        assert_eq!(doc["Resources"]["Param"]["Properties"]["Value"], json!({"Fn::GetAtt": ["Table", "Arn"]}));
        assert_eq!(doc["Resources"]["Key"]["Properties"]["ApiId"], json!({"Ref": "Api"}));
        assert_eq!(doc["Outputs"]["Url"]["Value"]["Fn::Join"][1][1], json!({"Ref": "Api"}));
        assert_eq!(doc["AWSTemplateFormatVersion"], "2010-09-09");
    }

    #[test]
    fn rejects_garbage_and_templates_without_resources() {
        assert!(matches!(parse("a: ["), Err(TemplateError::Syntax(_))));
        assert_eq!(parse("Outputs: {}"), Err(TemplateError::NoResources));
    }

    #[test]
    fn the_default_blueprint_meets_the_policy_as_written() {
        let (_, report) = check(include_str!("../../../infra/blueprints/default.yaml"), &Policy::default()).unwrap();
        assert!(report.rewrites.is_empty(), "{:?}", report.rewrites);
    }

    #[test]
    fn an_amplify_style_backend_passes_with_what_it_retains_rewritten() {
        let source = include_str!("../../../tests/fixtures/amplify-backend.yaml");
        let (doc, report) = check(source, &Policy::default()).unwrap();
        let mut shown: Vec<String> =
            report.rewrites.iter().map(|r| format!("{} {} {}", r.logical_id, r.attribute, r.from)).collect();
        shown.sort();
        assert_eq!(
            shown,
            [
                "CommentTable DeletionPolicy Snapshot",
                "ResolverFunctionLogs DeletionPolicy Retain",
                "TodoTable DeletionPolicy Retain",
                "TodoTable UpdateReplacePolicy Retain",
                "UploadsBucket DeletionPolicy RetainExceptOnCreate",
                "UserPool DeletionPolicy Retain",
            ]
        );
        for (id, r) in doc["Resources"].as_object().unwrap() {
            for attr in ["DeletionPolicy", "UpdateReplacePolicy"] {
                assert!(r.get(attr).is_none_or(|v| v == "Delete"), "{id} {attr} left as {:?}", r.get(attr));
            }
        }
        let note = doc["Outputs"][REWRITES_OUTPUT]["Value"].as_str().unwrap();
        assert!(note.starts_with("rewritten: CommentTable DeletionPolicy Snapshot to Delete, "), "{note}");
        // A template's own output of that name cannot pass for the platform's.
        let forged = format!("{source}  {REWRITES_OUTPUT}:\n    Value: nothing\n");
        assert_eq!(check(&forged, &Policy::default()).unwrap().0["Outputs"][REWRITES_OUTPUT]["Value"], note);
        let (default, _) = check(include_str!("../../../infra/blueprints/default.yaml"), &Policy::default()).unwrap();
        assert!(default["Outputs"].get(REWRITES_OUTPUT).is_none(), "nothing rewritten, nothing said");
        // Its identity pool's roles are its own: naming another is refused.
        let foreign = source.replace(
            "authenticated: !GetAtt AuthenticatedRole.Arn",
            "authenticated: arn:aws:iam::123456789012:role/admin",
        );
        let Err(CheckError::Refused(report)) = check(&foreign, &Policy::default()) else { panic!("accepted") };
        assert!(
            report.reason().contains("IdentityPoolRoles (AWS::Cognito::IdentityPoolRoleAttachment): policy attachment"),
            "{}",
            report.reason()
        );
    }

    #[test]
    fn every_role_gets_the_platform_boundary_even_if_the_template_names_another() {
        let src = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties: { PermissionsBoundary: arn:aws:iam::1:policy/admin }\n  T:\n    Type: AWS::SQS::Queue\n";
        let r = render(parse(src).unwrap(), &TagSet::default(), &[], Some("arn:aws:iam::1:policy/boundary")).unwrap();
        let doc: Json = serde_json::from_str(&r.body).unwrap();
        assert_eq!(doc["Resources"]["R"]["Properties"]["PermissionsBoundary"], "arn:aws:iam::1:policy/boundary");
        assert!(doc["Resources"]["T"]["Properties"].get("PermissionsBoundary").is_none());
    }

    #[test]
    fn a_schema_push_replaces_the_one_schema_and_nothing_else() {
        let source = "Resources:\n  Api:\n    Type: AWS::AppSync::GraphQLApi\n    Properties: { Name: !Sub '${AWS::StackName}-api', AuthenticationType: API_KEY }\n  Schema:\n    Type: AWS::AppSync::GraphQLSchema\n    Properties:\n      ApiId: !GetAtt Api.ApiId\n      DefinitionS3Location: s3://somewhere/schema.graphql\n";
        let pushed = with_schema(source, "type Query { hello: String }").unwrap();
        let before = parse(source).unwrap();
        let after = parse(&pushed).unwrap();
        assert_eq!(
            after["Resources"]["Schema"]["Properties"],
            json!({"ApiId": {"Fn::GetAtt": ["Api", "ApiId"]}, "Definition": "type Query { hello: String }"})
        );
        assert_eq!(after["Resources"]["Api"], before["Resources"]["Api"]);
        let none = "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n";
        assert!(
            matches!(with_schema(none, "type Query { a: Int }"), Err(TemplateError::Schema(m)) if m.contains("0 GraphQL schemas"))
        );
        assert!(matches!(with_schema(source, "  "), Err(TemplateError::Schema(_))));
    }
}
