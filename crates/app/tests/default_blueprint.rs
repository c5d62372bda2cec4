//! The default blueprint is a backend that answers: every field of its schema has a resolver,
//! every table a data source, and each resolver's code is the tested file in
//! `infra/blueprints/resolvers/` (its unit tests: `node --test infra/blueprints/resolvers/resolvers.test.mjs`).

use std::collections::BTreeSet;

use ephemera_app::template::{check, parse};
use ephemera_domain::blueprint::Policy;
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/blueprints");

fn blueprint() -> (String, Value) {
    let source = std::fs::read_to_string(format!("{DIR}/default.yaml")).unwrap();
    let doc = parse(&source).unwrap();
    (source, doc)
}

fn of_type<'a>(doc: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    let resources = doc["Resources"].as_object().unwrap();
    resources.iter().filter(|(_, r)| r["Type"] == ty).collect()
}

/// `Type.field` for each field of the schema's `Query` and `Mutation` types.
fn schema_fields(schema: &str) -> BTreeSet<String> {
    let mut fields = BTreeSet::new();
    for ty in ["Query", "Mutation"] {
        let start = schema.find(&format!("type {ty} {{")).unwrap_or_else(|| panic!("no type {ty}"));
        let body = &schema[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        // Fields are `name(args): Type` or `name: Type`, separated by spaces or newlines.
        let mut depth = 0;
        let mut word = String::new();
        for c in body.chars() {
            match c {
                '(' => {
                    depth += 1;
                    if !word.is_empty() {
                        fields.insert(format!("{ty}.{word}"));
                    }
                    word.clear();
                }
                ')' => depth -= 1,
                ':' if depth == 0 => {
                    if !word.is_empty() {
                        fields.insert(format!("{ty}.{word}"));
                    }
                    word.clear();
                }
                c if depth == 0 && (c.is_alphanumeric() || c == '_') => word.push(c),
                _ => word.clear(),
            }
        }
    }
    fields
}

#[test]
fn every_field_of_the_schema_has_a_resolver_whose_code_is_the_tested_file() {
    let (_, doc) = blueprint();
    let schema = of_type(&doc, "AWS::AppSync::GraphQLSchema")[0].1["Properties"]["Definition"].as_str().unwrap();
    let fields = schema_fields(schema);
    assert_eq!(
        fields,
        ["Mutation.putTask", "Query.getTask", "Query.listActivity"].map(String::from).into(),
        "{schema}"
    );
    let mut resolved = BTreeSet::new();
    for (id, r) in of_type(&doc, "AWS::AppSync::Resolver") {
        let p = &r["Properties"];
        let field = format!("{}.{}", p["TypeName"].as_str().unwrap(), p["FieldName"].as_str().unwrap());
        assert_eq!(p["Runtime"]["Name"], "APPSYNC_JS", "{id}");
        let file = format!("{DIR}/resolvers/{}.js", p["FieldName"].as_str().unwrap());
        let tested = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(p["Code"].as_str(), Some(tested.as_str()), "{id}'s code differs from {file}");
        assert!(resolved.insert(field.clone()), "{field} resolved twice");
    }
    assert_eq!(resolved, fields, "every field resolved, and nothing else");
}

#[test]
fn every_table_has_a_data_source_and_the_blueprint_passes_the_policy() {
    let (source, doc) = blueprint();
    let tables: BTreeSet<String> =
        of_type(&doc, "AWS::DynamoDB::Table").into_iter().map(|(id, _)| id.clone()).collect();
    let sourced: BTreeSet<String> = of_type(&doc, "AWS::AppSync::DataSource")
        .into_iter()
        .map(|(_, d)| d["Properties"]["DynamoDBConfig"]["TableName"]["Ref"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tables, sourced);
    let roles: Vec<&String> = of_type(&doc, "AWS::IAM::Role").into_iter().map(|(id, _)| id).collect();
    assert_eq!(roles, ["AuthRole", "DataSourceRole", "UnauthRole"]);
    for id in ["CognitoIdentityPool", "AuthRole", "UnauthRole", "IdentityPoolRoles"] {
        assert_eq!(doc["Resources"][id]["Condition"], "WithIdentityPool", "{id} is optional, off by default");
    }
    assert_eq!(doc["Parameters"]["IdentityPool"]["Default"], "false");
    let (_, report) = check(&source, &Policy::default()).expect("the default blueprint meets the policy");
    assert!(report.violations.is_empty());
}
