//! Each environment's history in the registry's table, beside its item: one `EVENT#...` item
//! per timeline entry (expired by the table's TTL after 90 days) and one `RESOURCES` item.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | timeline entry | `ENV#<name>` | `EVENT#<ms, 13 digits>#<generation, 10 digits>#<stage>#<detail type>` |
//! | stack resources | `ENV#<name>` | `RESOURCES` |

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use ephemera_app::history::{event_key, TIMELINE_DAYS};
use ephemera_app::ports::{History, PortError, StackResource, TimelineEntry};
use ephemera_domain::{Desired, EnvironmentName, StackStatus, Status};
use tracing::instrument;

use crate::error::port_error;
use crate::registry::DynamoRegistry;

fn s(v: impl Into<String>) -> AV {
    AV::S(v.into())
}

fn text<'a>(item: &'a HashMap<String, AV>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn number(item: &HashMap<String, AV>, k: &str) -> Option<i64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

fn entry_of(item: &HashMap<String, AV>) -> Option<TimelineEntry> {
    Some(TimelineEntry {
        at_ms: number(item, "at_ms")?,
        what: text(item, "what")?.to_owned(),
        status: Status::parse(text(item, "status")?)?,
        desired: Desired::parse(text(item, "desired")?)?,
        generation: number(item, "generation")? as u64,
        reason: text(item, "reason").map(str::to_owned),
    })
}

fn resource_item(r: &StackResource) -> AV {
    let mut m = HashMap::from([
        ("logical_id".to_owned(), s(&r.logical_id)),
        ("type".to_owned(), s(&r.resource_type)),
        ("status".to_owned(), s(r.status.as_str())),
    ]);
    if let Some(p) = &r.physical_id {
        m.insert("physical_id".into(), s(p));
    }
    AV::M(m)
}

fn resource_of(v: &AV) -> Option<StackResource> {
    let m = v.as_m().ok()?;
    Some(StackResource {
        logical_id: text(m, "logical_id")?.to_owned(),
        resource_type: text(m, "type")?.to_owned(),
        physical_id: text(m, "physical_id").map(str::to_owned),
        status: StackStatus::parse(text(m, "status")?),
    })
}

#[async_trait]
impl History for DynamoRegistry {
    #[instrument(skip(self, entry), fields(what = %entry.what))]
    async fn record_event(&self, name: &EnvironmentName, entry: &TimelineEntry) -> Result<(), PortError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("ENV#{name}")))
            .item("sk", s(event_key(entry)))
            .item("at_ms", AV::N(entry.at_ms.to_string()))
            .item("what", s(&entry.what))
            .item("status", s(entry.status.as_str()))
            .item("desired", s(entry.desired.as_str()))
            .item("generation", AV::N(entry.generation.to_string()))
            .item("ttl", AV::N((entry.at_ms / 1000 + TIMELINE_DAYS * 86_400).to_string()));
        if let Some(reason) = &entry.reason {
            put = put.item("reason", s(reason.chars().take(2000).collect::<String>()));
        }
        put.send().await.map_err(|e| port_error("record timeline", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn timeline(&self, name: &EnvironmentName, limit: usize) -> Result<Vec<TimelineEntry>, PortError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :event)")
            .expression_attribute_values(":pk", s(format!("ENV#{name}")))
            .expression_attribute_values(":event", s("EVENT#"))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| port_error("read timeline", e))?;
        let mut entries: Vec<TimelineEntry> = out.items().iter().filter_map(entry_of).collect();
        entries.reverse();
        Ok(entries)
    }

    #[instrument(skip(self, resources), fields(count = resources.len()))]
    async fn record_resources(&self, name: &EnvironmentName, resources: &[StackResource]) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("ENV#{name}")))
            .item("sk", s("RESOURCES"))
            .item("resources", AV::L(resources.iter().map(resource_item).collect()))
            .send()
            .await
            .map_err(|e| port_error("record resources", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn resources(&self, name: &EnvironmentName) -> Result<Vec<StackResource>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("ENV#{name}")))
            .key("sk", s("RESOURCES"))
            .send()
            .await
            .map_err(|e| port_error("read resources", e))?;
        let list = out.item.as_ref().and_then(|i| i.get("resources")).and_then(|v| v.as_l().ok());
        Ok(list.map(|l| l.iter().filter_map(resource_of).collect()).unwrap_or_default())
    }
}
