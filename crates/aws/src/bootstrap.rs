//! Creates the platform's own resources where no SAM deployment made them: the local runner
//! and the tests use it against the emulator. Idempotent. In AWS, `template.yaml` creates the
//! same resources with the same shapes.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use ephemera_app::events::{NOTIFIED, REQUESTED, SOURCE};
use ephemera_app::PortError;
use tracing::info;

use crate::error::{code, port_error};
use crate::registry::KIND_INDEX;

/// What to create.
#[derive(Debug, Clone)]
pub struct Resources {
    pub table: String,
    pub bus: String,
    pub bucket: String,
    pub work_queue: String,
    /// A queue for the notifier (status events), when GitHub feedback runs locally.
    pub notify_queue: Option<String>,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Created {
    pub work_queue_url: String,
    pub notify_queue_url: Option<String>,
}

/// The clients creating the resources takes.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
}

pub async fn ensure(clients: &Bootstrap, r: &Resources) -> Result<Created, PortError> {
    ensure_table(clients, &r.table).await?;
    ensure_bucket(clients, &r.bucket).await?;
    ensure_bus(clients, &r.bus).await?;
    let work_queue_url = ensure_queue_rule(clients, &r.bus, &r.work_queue, "work", &[REQUESTED]).await?;
    let notify_queue_url = match &r.notify_queue {
        Some(q) => Some(ensure_queue_rule(clients, &r.bus, q, "notify", &NOTIFIED).await?),
        None => None,
    };
    info!(table = %r.table, bus = %r.bus, bucket = %r.bucket, queue = %work_queue_url, "platform resources ready");
    Ok(Created { work_queue_url, notify_queue_url })
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("name and type set")
}
fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().expect("set")
}

async fn ensure_table(clients: &Bootstrap, table: &str) -> Result<(), PortError> {
    let ddb = &clients.dynamodb;
    let result = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![attr("pk"), attr("sk"), attr("gsi1pk"), attr("gsi1sk")]))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(KIND_INDEX)
                .key_schema(key("gsi1pk", KeyType::Hash))
                .key_schema(key("gsi1sk", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("index fields set"),
        )
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e) if code(&e) == Some("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(port_error("create table", e)),
    }
    ddb.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().enabled(true).attribute_name("ttl").build().expect("set"),
        )
        .send()
        .await
        .map_err(|e| port_error("enable TTL", e))?;
    Ok(())
}

async fn ensure_bucket(clients: &Bootstrap, bucket: &str) -> Result<(), PortError> {
    let region = clients.s3.config().region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let mut req = clients.s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e) if matches!(code(&e), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")) => Ok(()),
        Err(e) => Err(port_error("create bucket", e)),
    }
}

async fn ensure_bus(clients: &Bootstrap, bus: &str) -> Result<(), PortError> {
    match clients.eventbridge.create_event_bus().name(bus).send().await {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("ResourceAlreadyExistsException") => Ok(()),
        Err(e) => Err(port_error("create event bus", e)),
    }
}

/// A queue, and a rule on `bus` sending it the platform's events of `detail_types`.
async fn ensure_queue_rule(
    clients: &Bootstrap,
    bus: &str,
    queue: &str,
    rule: &str,
    detail_types: &[&str],
) -> Result<String, PortError> {
    let eb = &clients.eventbridge;
    let url = clients
        .sqs
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| port_error("create queue", e))?
        .queue_url
        .unwrap_or_default();
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| port_error("read queue ARN", e))?
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .unwrap_or_default();
    let rule = format!("{bus}-{rule}");
    let pattern = serde_json::json!({ "source": [SOURCE], "detail-type": detail_types }).to_string();
    eb.put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(pattern)
        .send()
        .await
        .map_err(|e| port_error("put rule", e))?;
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(Target::builder().id("queue").arn(arn).build().expect("id and arn set"))
        .send()
        .await
        .map_err(|e| port_error("put targets", e))?;
    Ok(url)
}
