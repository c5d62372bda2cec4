//! AppSync API keys in memory: `key-1`, `key-2`, ... and what each was made for.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, Faults};
use crate::ports::PortError;
use crate::selfservice::ApiKeys;

/// Operation name for [`Faults`]: `create`.
#[derive(Debug, Default)]
pub struct MemoryApiKeys {
    /// (api id, expiry in epoch seconds, description) of each key made.
    made: Mutex<Vec<(String, i64, String)>>,
    pub faults: Faults,
}

impl MemoryApiKeys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn made(&self) -> Vec<(String, i64, String)> {
        lock(&self.made).clone()
    }
}

#[async_trait]
impl ApiKeys for MemoryApiKeys {
    async fn create(&self, api_id: &str, expires: i64, description: &str) -> Result<String, PortError> {
        self.faults.check("create")?;
        let mut made = lock(&self.made);
        made.push((api_id.to_owned(), expires, description.to_owned()));
        Ok(format!("key-{}", made.len()))
    }
}
