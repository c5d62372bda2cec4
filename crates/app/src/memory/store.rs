//! S3 in memory: text objects by bucket and key.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, Faults};
use crate::ports::{ObjectStore, PortError};

/// Operation names for [`Faults`]: `get_text`, `put_text`, `list_keys`, `empty_bucket`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<(String, String), String>>,
    emptied: Mutex<Vec<String>>,
    pub faults: Faults,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts an object (for setting up a test).
    pub fn put(&self, bucket: &str, key: &str, body: &str) {
        lock(&self.objects).insert((bucket.to_owned(), key.to_owned()), body.to_owned());
    }

    /// An object's text, read without going through the port.
    pub fn object(&self, bucket: &str, key: &str) -> Option<String> {
        lock(&self.objects).get(&(bucket.to_owned(), key.to_owned())).cloned()
    }

    /// Buckets emptied, in order (each time it was asked).
    pub fn emptied(&self) -> Vec<String> {
        lock(&self.emptied).clone()
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn get_text(&self, bucket: &str, key: &str) -> Result<Option<String>, PortError> {
        self.faults.check("get_text")?;
        Ok(self.object(bucket, key))
    }

    async fn put_text(&self, bucket: &str, key: &str, body: &str) -> Result<(), PortError> {
        self.faults.check("put_text")?;
        self.put(bucket, key, body);
        Ok(())
    }

    /// In key order, as S3 lists them.
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, PortError> {
        self.faults.check("list_keys")?;
        let objects = lock(&self.objects);
        Ok(objects.keys().filter(|(b, k)| b == bucket && k.starts_with(prefix)).map(|(_, k)| k.clone()).collect())
    }

    /// A bucket that does not exist is already empty.
    async fn empty_bucket(&self, bucket: &str) -> Result<u64, PortError> {
        self.faults.check("empty_bucket")?;
        let mut objects = lock(&self.objects);
        let before = objects.len();
        objects.retain(|(b, _), _| b != bucket);
        lock(&self.emptied).push(bucket.to_owned());
        Ok((before - objects.len()) as u64)
    }
}
