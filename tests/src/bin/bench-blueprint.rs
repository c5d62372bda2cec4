//! The blueprint check's time: it runs on every create and update, before any stack call.
//! Reads and checks the default blueprint and a 200-resource template many times; prints the
//! median and 99th percentile, writes bench/blueprint.json. Target: the check under 5 ms each.

use std::time::{Duration, Instant};

use ephemera_app::template::{check, parse};
use ephemera_domain::blueprint::{self, Policy};
use ephemera_tests::workspace_root;
use serde_json::json;

/// 50 groups of a table, the role that reads it, the function that has the role, and a queue.
fn large_template() -> String {
    let mut out = String::from("Resources:\n");
    for i in 0..50 {
        out.push_str(&format!(
            "  Table{i}:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    Properties:
      TableName: !Sub \"${{AWS::StackName}}-T{i}\"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{{ AttributeName: id, AttributeType: S }}]
      KeySchema: [{{ AttributeName: id, KeyType: HASH }}]
  Role{i}:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{{ Effect: Allow, Principal: {{ Service: lambda.amazonaws.com }}, Action: sts:AssumeRole }}]
      Policies:
        - PolicyName: own
          PolicyDocument:
            Statement:
              - {{ Effect: Allow, Action: [dynamodb:GetItem, dynamodb:Query], Resource: [!GetAtt Table{i}.Arn, !Sub \"${{Table{i}.Arn}}/index/*\"] }}
              - {{ Effect: Allow, Action: [sqs:SendMessage], Resource: !GetAtt Queue{i}.Arn }}
  Function{i}:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: !Sub \"${{AWS::StackName}}-f{i}\"
      Role: !GetAtt Role{i}.Arn
      Runtime: python3.12
      Handler: index.handler
      Code: {{ ZipFile: \"def handler(e, c): return e\" }}
      Environment: {{ Variables: {{ TABLE: !Ref Table{i}, QUEUE: !Ref Queue{i} }} }}
  Queue{i}:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Join [\"-\", [!Ref AWS::StackName, q{i}]]
"
        ));
    }
    out
}

fn measure(name: &str, source: &str, runs: usize) -> serde_json::Value {
    let policy = Policy::default();
    let doc = parse(source).expect("the template parses");
    let resources = doc["Resources"].as_object().map(|r| r.len()).unwrap_or(0);
    assert!(blueprint::check(&doc, &policy).accepted(), "{name} passes the policy");
    let time = |f: &dyn Fn()| {
        let mut samples: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        samples.sort();
        let us = |d: Duration| (d.as_secs_f64() * 1e6).round();
        json!({"median_us": us(samples[runs / 2]), "p99_us": us(samples[runs * 99 / 100])})
    };
    let check_only = time(&|| drop(std::hint::black_box(blueprint::check(&doc, &policy))));
    let read_and_check = time(&|| drop(std::hint::black_box(check(source, &policy))));
    json!({"template": name, "resources": resources, "bytes": source.len(), "check": check_only, "read_and_check": read_and_check})
}

fn main() -> anyhow::Result<()> {
    let default = std::fs::read_to_string(workspace_root().join("infra/blueprints/default.yaml"))?;
    let results = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "build": if cfg!(debug_assertions) { "debug" } else { "optimized" },
        "when": chrono::Utc::now().to_rfc3339(),
        "target": "check under 5 ms (5000 us) per template; read_and_check adds reading the YAML, which rendering did before the policy existed",
        "runs": [measure("infra/blueprints/default.yaml", &default, 2000), measure("200 resources", &large_template(), 300)],
    });
    let text = serde_json::to_string_pretty(&results)? + "\n";
    print!("{text}");
    if !cfg!(debug_assertions) {
        std::fs::write(workspace_root().join("bench/blueprint.json"), text)?;
    }
    Ok(())
}
