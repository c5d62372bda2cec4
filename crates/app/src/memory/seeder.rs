//! An environment's tables in memory: the items loaded into each.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{lock, Faults};
use crate::ports::{PortError, Seeder};

/// Operation name for [`Faults`]: `put_items`.
#[derive(Debug, Default)]
pub struct MemorySeeder {
    tables: Mutex<BTreeMap<String, Vec<Map<String, Value>>>>,
    pub faults: Faults,
}

impl MemorySeeder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The items written to `table`, in order.
    pub fn items(&self, table: &str) -> Vec<Map<String, Value>> {
        lock(&self.tables).get(table).cloned().unwrap_or_default()
    }
}

#[async_trait]
impl Seeder for MemorySeeder {
    async fn put_items(&self, table: &str, items: &[Map<String, Value>]) -> Result<usize, PortError> {
        self.faults.check("put_items")?;
        lock(&self.tables).entry(table.to_owned()).or_default().extend(items.iter().cloned());
        Ok(items.len())
    }
}
