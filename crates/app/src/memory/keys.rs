//! AppSync API keys in memory: `key-1`, `key-2`, ... and what each was made for.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, Faults};
use crate::ports::ApiKeys;
use crate::ports::PortError;

/// Operation names for [`Faults`]: `create`, `delete`.
#[derive(Debug, Default)]
pub struct MemoryApiKeys {
    /// (api id, expiry in epoch seconds, description) of each key made.
    made: Mutex<Vec<(String, i64, String)>>,
    /// (api id, key) of each key made and not deleted.
    live: Mutex<Vec<(String, String)>>,
    pub faults: Faults,
}

impl MemoryApiKeys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn made(&self) -> Vec<(String, i64, String)> {
        lock(&self.made).clone()
    }

    /// The keys made and not deleted: (api id, key).
    pub fn live(&self) -> Vec<(String, String)> {
        lock(&self.live).clone()
    }
}

#[async_trait]
impl ApiKeys for MemoryApiKeys {
    async fn create(&self, api_id: &str, expires: i64, description: &str) -> Result<String, PortError> {
        self.faults.check("create")?;
        let mut made = lock(&self.made);
        made.push((api_id.to_owned(), expires, description.to_owned()));
        let key = format!("key-{}", made.len());
        lock(&self.live).push((api_id.to_owned(), key.clone()));
        Ok(key)
    }

    async fn delete(&self, api_id: &str, key: &str) -> Result<(), PortError> {
        self.faults.check("delete")?;
        lock(&self.live).retain(|(a, k)| !(a == api_id && k == key));
        Ok(())
    }
}
