//! Seed data into an environment's own tables (DynamoDB BatchWriteItem).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue as AV, PutRequest, WriteRequest};
use ephemera_app::ports::Seeder;
use ephemera_app::retry::draw;
use ephemera_app::PortError;
use ephemera_domain::RetryPolicy;
use serde_json::{Map, Value};
use tracing::instrument;

use crate::error::port_error;

/// Items DynamoDB leaves unprocessed are written again, up to eight attempts in all.
const UNPROCESSED: RetryPolicy = RetryPolicy::new(8, Duration::from_millis(100), Duration::from_secs(5));

#[derive(Debug, Clone)]
pub struct DynamoSeeder {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoSeeder {
    pub fn new(client: aws_sdk_dynamodb::Client) -> Self {
        Self { client }
    }
}

/// Plain JSON to a DynamoDB attribute: strings, numbers, booleans, null, lists and maps.
pub fn attribute(v: &Value) -> AV {
    match v {
        Value::Null => AV::Null(true),
        Value::Bool(b) => AV::Bool(*b),
        Value::Number(n) => AV::N(n.to_string()),
        Value::String(s) => AV::S(s.clone()),
        Value::Array(a) => AV::L(a.iter().map(attribute).collect()),
        Value::Object(m) => AV::M(m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect()),
    }
}

#[async_trait]
impl Seeder for DynamoSeeder {
    #[instrument(skip(self, items), fields(items = items.len()))]
    async fn put_items(&self, table: &str, items: &[Map<String, Value>]) -> Result<usize, PortError> {
        for chunk in items.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let item: HashMap<String, AV> = item.iter().map(|(k, v)| (k.clone(), attribute(v))).collect();
                    let put = PutRequest::builder().set_item(Some(item)).build().expect("item set");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();
            for attempt in 1.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| port_error("write seed items", e))?;
                pending = out.unprocessed_items.and_then(|mut m| m.remove(table)).unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                // DynamoDB left some unwritten (throttled): write those again after a pause.
                let Some(wait) = UNPROCESSED.backoff(attempt, draw()) else {
                    return Err(PortError::Retryable {
                        operation: "write seed items",
                        message: format!("{} items still unprocessed after {attempt} attempts", pending.len()),
                    });
                };
                tokio::time::sleep(wait).await;
            }
        }
        Ok(items.len())
    }
}
