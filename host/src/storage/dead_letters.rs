//! Dead letters: events that still failed after the plugin's own retries, kept with their error
//! until a replay gets them through. Nothing accepted is lost: a failed event stays here until
//! it succeeds (then it is removed) or someone looks at it.
//!
//! In memory, or in the same SQLite file as the durable key-value store. A body is stored once:
//! letters are told apart by the SHA-256 of their tenant and body (an index on the body itself
//! would hold a second copy of every one).
//!
//! A tenant's view ([`DeadLetters::for_tenant`]) records, lists and removes that tenant's letters
//! only; the same body failing for two tenants is two letters.

use crate::bindings::dialpad_ghl::sync::types::{Handled, Report, SyncError};
use crate::engine::Runtime;
use crate::inbound::{Inbound, Source};
use crate::report;
use crate::storage::db::{params, Db as Connection};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One failed event.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    /// The tenant it was accepted for (empty: the host's single location).
    pub tenant: String,
    /// A name for people: the file or delivery it came from.
    pub name: String,
    pub source: Source,
    pub body: Vec<u8>,
    /// The last error, as the CLI prints it (`{type, message, …}`).
    pub error: serde_json::Value,
    /// How many deliveries failed.
    pub failures: u32,
}

#[derive(Clone)]
pub struct DeadLetters {
    backend: Arc<Mutex<Backend>>,
    tenant: Arc<str>,
}

enum Backend {
    Memory { next: i64, letters: BTreeMap<i64, DeadLetter> },
    Sqlite(Connection),
}

impl Default for DeadLetters {
    fn default() -> Self {
        DeadLetters { backend: Arc::new(Mutex::new(Backend::Memory { next: 1, letters: BTreeMap::new() })), tenant: "".into() }
    }
}

impl DeadLetters {
    pub fn in_memory() -> Self {
        Self::default()
    }

    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut db = crate::storage::sqlite::open_database(path, "dead_letters", "")?;
        let old: Option<String> = db.query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'", [], |r| r.get(0)).ok();
        let tx = db.transaction()?;
        if old.as_deref().is_some_and(|sql| !sql.contains("body_sha256")) {
            // Before the hash: `body BLOB NOT NULL UNIQUE`, an index holding each body again.
            tx.execute_batch("ALTER TABLE dead_letters RENAME TO dead_letters_before_hash")?;
        }
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL, source TEXT NOT NULL, body BLOB NOT NULL,
                body_sha256 BLOB NOT NULL UNIQUE,
                error TEXT NOT NULL, failures INTEGER NOT NULL,
                last_failed_ms INTEGER NOT NULL DEFAULT 0)",
        )?;
        // Before tenants: every letter was the single location's.
        if !crate::storage::sqlite::has_column(&tx, "dead_letters", "tenant")? {
            tx.execute_batch("ALTER TABLE dead_letters ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")?;
        }
        if old.as_deref().is_some_and(|sql| !sql.contains("body_sha256")) {
            let letters: Vec<(i64, String, String, Vec<u8>, String, i64)> = {
                let mut query = tx.prepare("SELECT id, name, source, body, error, failures FROM dead_letters_before_hash ORDER BY id")?;
                let rows = query.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (id, name, source, body, error, failures) in letters {
                tx.execute(
                    "INSERT INTO dead_letters (id, name, source, body, body_sha256, error, failures, last_failed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![id, name, source, body, digest("", &body), error, failures, now_ms()],
                )?;
            }
            tx.execute_batch("DROP TABLE dead_letters_before_hash")?;
        }
        tx.commit()?;
        Ok(DeadLetters { backend: Arc::new(Mutex::new(Backend::Sqlite(db))), tenant: "".into() })
    }

    /// The same letters as one tenant sees them (see the module's docs).
    pub fn for_tenant(&self, tenant: &str) -> DeadLetters {
        DeadLetters { backend: self.backend.clone(), tenant: tenant.into() }
    }

    /// Removes the letters whose last failure is older than `keep`; returns how many.
    pub fn prune(&self, keep: std::time::Duration) -> anyhow::Result<u64> {
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory { .. } => Ok(0),
            Backend::Sqlite(db) => {
                let before = now_ms() - keep.as_millis().min(i64::MAX as u128) as i64;
                Ok(db.execute("DELETE FROM dead_letters WHERE last_failed_ms < ?1", [before])? as u64)
            }
        }
    }

    /// Bytes of the letters' bodies and errors.
    pub fn bytes(&self) -> u64 {
        match &*self.backend.lock().unwrap() {
            Backend::Memory { letters, .. } => letters.values().map(|l| (l.body.len() + l.error.to_string().len()) as u64).sum(),
            Backend::Sqlite(db) => db
                .query_row("SELECT coalesce(sum(length(body) + length(error) + length(name)), 0) FROM dead_letters", [], |r| r.get::<_, i64>(0))
                .map(|b| b.max(0) as u64)
                .unwrap_or(0),
        }
    }

    /// Records a failure: a new letter, or one more failure of the same body.
    pub fn record(&self, name: &str, source: Source, body: &[u8], error: &SyncError) -> anyhow::Result<()> {
        let error = report::error_json(error);
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory { next, letters } => match letters.values_mut().find(|l| l.body == body && *l.tenant == *self.tenant) {
                Some(letter) => {
                    letter.failures += 1;
                    letter.error = error;
                }
                None => {
                    let letter = DeadLetter { id: *next, tenant: self.tenant.to_string(), name: name.into(), source, body: body.to_vec(), error, failures: 1 };
                    letters.insert(*next, letter);
                    *next += 1;
                }
            },
            Backend::Sqlite(db) => {
                db.execute(
                    "INSERT INTO dead_letters (name, source, body, body_sha256, error, failures, last_failed_ms, tenant) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)
                     ON CONFLICT(body_sha256) DO UPDATE SET error = excluded.error, failures = dead_letters.failures + 1, last_failed_ms = excluded.last_failed_ms",
                    params![name, source.as_str(), body, digest(&self.tenant, body), error.to_string(), now_ms(), &*self.tenant],
                )?;
            }
        }
        Ok(())
    }

    pub fn remove(&self, id: i64) -> anyhow::Result<()> {
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory { letters, .. } => {
                letters.remove(&id);
            }
            Backend::Sqlite(db) => {
                db.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
            }
        }
        Ok(())
    }

    /// Removes the letter of this body, if any: it got through after all.
    pub fn remove_body(&self, body: &[u8]) -> anyhow::Result<()> {
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory { letters, .. } => letters.retain(|_, l| l.body != body || *l.tenant != *self.tenant),
            Backend::Sqlite(db) => {
                db.execute("DELETE FROM dead_letters WHERE body_sha256 = ?1", [digest(&self.tenant, body)])?;
            }
        }
        Ok(())
    }

    /// This view's letters, oldest first.
    pub fn list(&self) -> anyhow::Result<Vec<DeadLetter>> {
        Ok(self.list_all()?.into_iter().filter(|l| *l.tenant == *self.tenant).collect())
    }

    /// Every tenant's letters, oldest first (the monitor's list).
    pub fn list_all(&self) -> anyhow::Result<Vec<DeadLetter>> {
        match &*self.backend.lock().unwrap() {
            Backend::Memory { letters, .. } => Ok(letters.values().cloned().collect()),
            Backend::Sqlite(db) => {
                let mut query = db.prepare("SELECT id, name, source, body, error, failures, tenant FROM dead_letters ORDER BY id")?;
                let rows = query.query_map([], |r| {
                    let error: String = r.get(4)?;
                    Ok(DeadLetter {
                        id: r.get(0)?,
                        tenant: r.get(6)?,
                        name: r.get(1)?,
                        source: Source::parse(&r.get::<_, String>(2)?).unwrap_or(Source::DialpadWebhook),
                        body: r.get(3)?,
                        error: serde_json::from_str(&error).unwrap_or(serde_json::Value::String(error)),
                        failures: r.get(5)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.list().map(|l| l.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The letter's key: the body's SHA-256 for the host's single location (as before tenants), and
/// of the tenant and the body for a tenant.
fn digest(tenant: &str, body: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    if !tenant.is_empty() {
        hash.update(tenant.as_bytes());
        hash.update([0]);
    }
    hash.update(body);
    hash.finalize().to_vec()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Hands one event to the plugin; a failure lands in `dead_letters`. The outer error is a host
/// failure (the store); a trap is dead-lettered too, as a transport error.
pub fn deliver(runtime: &Runtime, dead_letters: &DeadLetters, name: &str, event: &Inbound) -> anyhow::Result<Handled> {
    let handled = runtime.handle_or_trap(event);
    if let Err(error) = &handled.result {
        dead_letters.record(name, event.source, &event.body, error)?;
    }
    Ok(handled)
}

/// What one pass over the dead letters did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayTally {
    pub succeeded: usize,
    pub still_failing: usize,
}

/// Delivers every dead letter again, oldest first; those that get through are removed.
pub fn replay_dead_letters(
    runtime: &Runtime,
    dead_letters: &DeadLetters,
    mut on_result: impl FnMut(&DeadLetter, &Result<Report, SyncError>),
) -> anyhow::Result<ReplayTally> {
    let mut tally = ReplayTally::default();
    for letter in dead_letters.list()? {
        let handled = deliver(runtime, dead_letters, &letter.name, &Inbound::new(letter.source, letter.body.clone()))?;
        on_result(&letter, &handled.result);
        if handled.result.is_ok() {
            dead_letters.remove(letter.id)?;
            tally.succeeded += 1;
        } else {
            tally.still_failing += 1;
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_kept_once_per_body_and_survive_a_reopen() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        for letters in [DeadLetters::in_memory(), DeadLetters::open(&path).unwrap()] {
            letters.record("a.json", Source::DialpadWebhook, b"{\"call_id\":1}", &SyncError::Transport("reset".into())).unwrap();
            letters.record("a.json", Source::DialpadWebhook, b"{\"call_id\":1}", &SyncError::Transport("timeout".into())).unwrap();
            letters.record("b.json", Source::Platform, b"{\"id\":\"e\"}", &SyncError::NotFound("no ref".into())).unwrap();
            let list = letters.list().unwrap();
            assert_eq!(list.len(), 2);
            assert_eq!((list[0].failures, list[0].error["message"].as_str()), (2, Some("timeout")));
            assert_eq!(list[1].source, Source::Platform);
            letters.remove(list[0].id).unwrap();
            assert_eq!(letters.len(), 1);
        }
        assert_eq!(DeadLetters::open(&path).unwrap().list().unwrap()[0].name, "b.json");
    }

    #[test]
    fn the_same_body_failing_for_two_tenants_is_two_letters() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        for letters in [DeadLetters::in_memory(), DeadLetters::open(&path).unwrap()] {
            let (a, b) = (letters.for_tenant("a"), letters.for_tenant("b"));
            a.record("x", Source::DialpadWebhook, b"same", &SyncError::Transport("reset".into())).unwrap();
            b.record("x", Source::DialpadWebhook, b"same", &SyncError::Transport("reset".into())).unwrap();
            assert_eq!((a.len(), b.len(), letters.len(), letters.list_all().unwrap().len()), (1, 1, 0, 2));
            a.remove_body(b"same").unwrap();
            assert_eq!((a.len(), b.list().unwrap()[0].tenant.as_str()), (0, "b"));
        }
    }
}
