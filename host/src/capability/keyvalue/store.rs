//! The shared data behind every bucket: in memory, or in an SQLite file.

use crate::storage::db::{params, Db as Connection, OptionalExtension};
use crate::storage::sqlite::open_database;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A handle to the shared data; clones share it. A tenant's handle ([`KeyValueStore::namespaced`])
/// sees only its own keys: every key it reads, writes or lists is stored under its prefix, so
/// two tenants that share a phone number never share a record.
#[derive(Clone)]
pub struct KeyValueStore {
    backend: Arc<Mutex<Backend>>,
    /// `tenant/<id>/` for a tenant's view; empty for the host's single location.
    prefix: Arc<str>,
}

enum Backend {
    Memory(BTreeMap<String, Vec<u8>>),
    Sqlite(Connection),
}

impl Default for KeyValueStore {
    fn default() -> Self {
        KeyValueStore { backend: Arc::new(Mutex::new(Backend::Memory(BTreeMap::new()))), prefix: "".into() }
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
        let db = open_database(path, "kv", "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")?;
        Ok(KeyValueStore { backend: Arc::new(Mutex::new(Backend::Sqlite(db))), prefix: "".into() })
    }

    /// The same data seen by one tenant only (see the type's docs).
    pub fn namespaced(&self, tenant: &str) -> KeyValueStore {
        KeyValueStore { backend: self.backend.clone(), prefix: format!("tenant/{tenant}/").into() }
    }

    /// Removes every key of this view (a tenant's, when it is uninstalled); returns how many.
    pub fn clear(&self) -> Result<usize, String> {
        let keys = self.try_keys()?;
        for key in &keys {
            self.try_delete(key)?;
        }
        Ok(keys.len())
    }

    fn stored(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn try_get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match &*self.backend.lock().unwrap() {
            Backend::Memory(m) => Ok(m.get(&self.stored(key)).cloned()),
            Backend::Sqlite(db) => db.query_row("SELECT value FROM kv WHERE key = ?1", [self.stored(key)], |r| r.get(0)).optional().map_err(|e| e.to_string()),
        }
    }

    /// Several values at once, in the order of `keys`: one lock and, on a database, one
    /// statement (a replica on PostgreSQL pays one round trip, not one per key).
    pub fn try_get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, String> {
        let stored: Vec<String> = keys.iter().map(|key| self.stored(key)).collect();
        match &*self.backend.lock().unwrap() {
            Backend::Memory(m) => Ok(stored.iter().map(|key| m.get(key).cloned()).collect()),
            Backend::Sqlite(db) => {
                if stored.is_empty() {
                    return Ok(Vec::new());
                }
                let marks: Vec<String> = (1..=stored.len()).map(|i| format!("?{i}")).collect();
                let sql = format!("SELECT key, value FROM kv WHERE key IN ({})", marks.join(", "));
                let rows = db.rows(&sql, crate::storage::db::params_from_iter(stored.iter().map(String::as_str))).map_err(|e| e.to_string())?;
                let mut found = BTreeMap::new();
                for row in &rows {
                    found.insert(row.get::<_, String>(0).map_err(|e| e.to_string())?, row.get::<_, Vec<u8>>(1).map_err(|e| e.to_string())?);
                }
                Ok(stored.iter().map(|key| found.get(key).cloned()).collect())
            }
        }
    }

    pub fn try_set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory(m) => {
                m.insert(self.stored(key), value.to_vec());
                Ok(())
            }
            Backend::Sqlite(db) => db
                .execute("INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", params![self.stored(key), value])
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    pub fn try_delete(&self, key: &str) -> Result<(), String> {
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory(m) => {
                m.remove(&self.stored(key));
                Ok(())
            }
            Backend::Sqlite(db) => db.execute("DELETE FROM kv WHERE key = ?1", [self.stored(key)]).map(drop).map_err(|e| e.to_string()),
        }
    }

    /// This view's keys, without its prefix. The host's own view (no prefix) does not list the
    /// tenants' keys.
    pub fn try_keys(&self) -> Result<Vec<String>, String> {
        let all = match &*self.backend.lock().unwrap() {
            Backend::Memory(m) => m.keys().cloned().collect(),
            Backend::Sqlite(db) => {
                let mut query = db.prepare("SELECT key FROM kv ORDER BY key").map_err(|e| e.to_string())?;
                let keys = query.query_map([], |r| r.get(0)).map_err(|e| e.to_string())?;
                keys.collect::<Result<Vec<String>, _>>().map_err(|e| e.to_string())?
            }
        };
        Ok(all
            .into_iter()
            .filter_map(|key| match &*self.prefix {
                "" => (!key.starts_with("tenant/")).then_some(key),
                prefix => key.strip_prefix(prefix).map(str::to_string),
            })
            .collect())
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

    #[test]
    fn tenants_see_only_their_own_keys() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        for store in [KeyValueStore::new(), KeyValueStore::open(&path).unwrap()] {
            let (a, b) = (store.namespaced("a"), store.namespaced("b"));
            store.set("call:L:1", b"host");
            a.set("call:L:1", b"tenant a");
            b.set("phone:+15551234567", b"tenant b");
            assert_eq!(a.get("call:L:1").as_deref(), Some(&b"tenant a"[..]));
            assert_eq!(b.get("call:L:1"), None);
            assert_eq!(store.get("call:L:1").as_deref(), Some(&b"host"[..]));
            assert_eq!((store.keys(), a.keys(), b.keys()), (vec!["call:L:1".into()], vec!["call:L:1".into()], vec!["phone:+15551234567".into()]));
            assert_eq!(a.clear(), Ok(1));
            assert_eq!((a.keys().len(), b.keys().len(), store.keys().len()), (0, 1, 1));
        }
    }
}
