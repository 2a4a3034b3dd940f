//! The shared data behind every bucket: in memory, or in an SQLite file.

use crate::storage::sqlite::open_database;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_store_outlives_its_handle() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
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
