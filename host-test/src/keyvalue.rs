//! The host's own `wasi:keyvalue/store`: one store shared by every instance, so caches and
//! idempotency records outlive the instance that wrote them; with [`KeyValueStore::open`], in
//! an SQLite file, so they also outlive the process (a restarted host knows what it synced).
//!
//! `wasmtime-wasi-keyvalue` 48 cannot serve here: it hands each `open` a copy of preset data,
//! so writes vanish with the bucket (../shared/design.md §9).
//!
//! Only the bucket identifier `""` exists, as on stock wasmtime, so the plugin stays portable.

use crate::bindings::wasi::keyvalue::store::{self, Error, KeyResponse};
use crate::engine::HostState;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wasmtime::component::Resource;

/// A handle to the shared data; clones share it.
#[derive(Clone)]
pub struct KeyValueStore {
    backend: Arc<Mutex<Backend>>,
}

enum Backend {
    Memory(BTreeMap<String, Vec<u8>>),
    Sqlite(Connection),
}

impl Default for KeyValueStore {
    fn default() -> Self {
        KeyValueStore { backend: Arc::new(Mutex::new(Backend::Memory(BTreeMap::new()))) }
    }
}

impl KeyValueStore {
    /// An in-memory store: it lives as long as this process.
    pub fn new() -> Self {
        Self::default()
    }

    /// A durable store in an SQLite file (created if absent). Each write is committed before
    /// it returns (WAL journal, `synchronous=FULL`), so a record the plugin made survives a
    /// crash of the host.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let db = open_database(path, "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")?;
        Ok(KeyValueStore { backend: Arc::new(Mutex::new(Backend::Sqlite(db))) })
    }

    pub fn try_get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match &*self.backend.lock().unwrap() {
            Backend::Memory(m) => Ok(m.get(key).cloned()),
            Backend::Sqlite(db) => db.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(|e| e.to_string()),
        }
    }

    pub fn try_set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory(m) => {
                m.insert(key.to_string(), value.to_vec());
                Ok(())
            }
            Backend::Sqlite(db) => db
                .execute("INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", params![key, value])
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    pub fn try_delete(&self, key: &str) -> Result<(), String> {
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory(m) => {
                m.remove(key);
                Ok(())
            }
            Backend::Sqlite(db) => db.execute("DELETE FROM kv WHERE key = ?1", [key]).map(drop).map_err(|e| e.to_string()),
        }
    }

    pub fn try_keys(&self) -> Result<Vec<String>, String> {
        match &*self.backend.lock().unwrap() {
            Backend::Memory(m) => Ok(m.keys().cloned().collect()),
            Backend::Sqlite(db) => {
                let mut query = db.prepare("SELECT key FROM kv ORDER BY key").map_err(|e| e.to_string())?;
                let keys = query.query_map([], |r| r.get(0)).map_err(|e| e.to_string())?;
                keys.collect::<Result<Vec<String>, _>>().map_err(|e| e.to_string())
            }
        }
    }

    /// For tests and tools: a value, `None` also when the store failed.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.try_get(key).ok().flatten()
    }

    /// For tests and tools; panics if the store fails.
    pub fn set(&self, key: &str, value: &[u8]) {
        self.try_set(key, value).expect("key-value store write");
    }

    pub fn keys(&self) -> Vec<String> {
        self.try_keys().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.keys().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The host's SQLite file (records, dead letters), opened for durability over speed: each
/// write is on disk when it returns. `schema` creates the caller's table if it is missing.
pub(crate) fn open_database(path: &Path, schema: &str) -> anyhow::Result<Connection> {
    let db = Connection::open(path)?;
    // Several connections share the file (records, dead letters, the inbox): wait for a
    // writer instead of failing with SQLITE_BUSY.
    db.busy_timeout(std::time::Duration::from_secs(30))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch(schema)?;
    Ok(db)
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
        Ok(self.kv.try_get(&key).map_err(Error::Other))
    }

    fn set(&mut self, bucket: Resource<BucketHandle>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&bucket)?;
        Ok(self.kv.try_set(&key, &value).map_err(Error::Other))
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&bucket)?;
        Ok(self.kv.try_delete(&key).map_err(Error::Other))
    }

    fn exists(&mut self, bucket: Resource<BucketHandle>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        self.table.get(&bucket)?;
        Ok(self.kv.try_get(&key).map(|v| v.is_some()).map_err(Error::Other))
    }

    fn list_keys(&mut self, bucket: Resource<BucketHandle>, cursor: Option<u64>) -> wasmtime::Result<Result<KeyResponse, Error>> {
        self.table.get(&bucket)?;
        let start = cursor.unwrap_or(0) as usize;
        let keys = match self.kv.try_keys() {
            Ok(keys) => keys,
            Err(e) => return Ok(Err(Error::Other(e))),
        };
        let page: Vec<String> = keys.iter().skip(start).take(PAGE).cloned().collect();
        let next = (start + page.len() < keys.len()).then_some((start + page.len()) as u64);
        Ok(Ok(KeyResponse { keys: page, cursor: next }))
    }

    fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_store_outlives_its_handle() {
        let path = crate::scratch_dir("kv-test").join("state.db");
        let store = KeyValueStore::open(&path).unwrap();
        store.set("call:L:1", b"record");
        store.set("call:L:1", b"record v2");
        store.set("view:L:c", b"x");
        store.try_delete("view:L:c").unwrap();
        drop(store);
        let reopened = KeyValueStore::open(&path).unwrap();
        assert_eq!(reopened.get("call:L:1").as_deref(), Some(&b"record v2"[..]));
        assert_eq!(reopened.keys(), vec!["call:L:1".to_string()]);
    }
}
