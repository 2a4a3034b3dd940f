//! The host's own `wasi:keyvalue/store`: one store shared by every instance, so caches and
//! idempotency records outlive the instance that wrote them.
//!
//! `wasmtime-wasi-keyvalue` 48 cannot serve here: it hands each `open` a copy of preset data,
//! so writes vanish with the bucket (../shared/design.md §9). This store is in memory; a
//! durable backend slots in behind the same [`KeyValueStore`] handle.
//!
//! Only the bucket identifier `""` exists, as on stock wasmtime, so the plugin stays portable.

use crate::bindings::wasi::keyvalue::store::{self, Error, KeyResponse};
use crate::engine::HostState;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::Resource;

/// A handle to the shared data; clones share it.
#[derive(Clone, Default)]
pub struct KeyValueStore {
    data: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl KeyValueStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.data.lock().unwrap().get(key).cloned()
    }

    pub fn set(&self, key: &str, value: &[u8]) {
        self.data.lock().unwrap().insert(key.to_string(), value.to_vec());
    }

    pub fn delete(&self, key: &str) {
        self.data.lock().unwrap().remove(key);
    }

    pub fn keys(&self) -> Vec<String> {
        self.data.lock().unwrap().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.data.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a `bucket` resource points at.
pub struct BucketHandle;

/// Keys listed per `list-keys` page.
const PAGE: usize = 100;

impl store::Host for HostState {
    fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<BucketHandle>, Error>> {
        if !identifier.is_empty() {
            return Ok(Err(Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(BucketHandle)?))
    }
}

impl store::HostBucket for HostState {
    fn get(&mut self, bucket: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.table.get(&bucket)?;
        Ok(Ok(self.kv.get(&key)))
    }

    fn set(&mut self, bucket: Resource<BucketHandle>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&bucket)?;
        self.kv.set(&key, &value);
        Ok(Ok(()))
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&bucket)?;
        self.kv.delete(&key);
        Ok(Ok(()))
    }

    fn exists(&mut self, bucket: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        self.table.get(&bucket)?;
        Ok(Ok(self.kv.get(&key).is_some()))
    }

    fn list_keys(&mut self, bucket: Resource<BucketHandle>, cursor: Option<u64>) -> wasmtime::Result<Result<KeyResponse, Error>> {
        self.table.get(&bucket)?;
        let start = cursor.unwrap_or(0) as usize;
        let keys = self.kv.keys();
        let page: Vec<String> = keys.iter().skip(start).take(PAGE).cloned().collect();
        let next = (start + page.len() < keys.len()).then_some((start + page.len()) as u64);
        Ok(Ok(KeyResponse { keys: page, cursor: next }))
    }

    fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}
