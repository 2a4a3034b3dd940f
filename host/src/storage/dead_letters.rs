//! Dead letters: events that still failed after the plugin's own retries, kept with their error
//! until a replay gets them through. Nothing accepted is lost: a failed event stays here until
//! it succeeds (then it is removed) or someone looks at it.
//!
//! In memory, or in the same SQLite file as the durable key-value store.

use crate::bindings::dialpad_ghl::sync::types::{Handled, Report, SyncError};
use crate::engine::Runtime;
use crate::inbound::{Inbound, Source};
use crate::report;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One failed event.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
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
}

enum Backend {
    Memory { next: i64, letters: BTreeMap<i64, DeadLetter> },
    Sqlite(Connection),
}

impl Default for DeadLetters {
    fn default() -> Self {
        DeadLetters { backend: Arc::new(Mutex::new(Backend::Memory { next: 1, letters: BTreeMap::new() })) }
    }
}

impl DeadLetters {
    pub fn in_memory() -> Self {
        Self::default()
    }

    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let db = crate::storage::sqlite::open_database(
            path,
            "CREATE TABLE IF NOT EXISTS dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL, source TEXT NOT NULL, body BLOB NOT NULL UNIQUE,
                error TEXT NOT NULL, failures INTEGER NOT NULL)",
        )?;
        Ok(DeadLetters { backend: Arc::new(Mutex::new(Backend::Sqlite(db))) })
    }

    /// Records a failure: a new letter, or one more failure of the same body.
    pub fn record(&self, name: &str, source: Source, body: &[u8], error: &SyncError) -> anyhow::Result<()> {
        let error = report::error_json(error);
        match &mut *self.backend.lock().unwrap() {
            Backend::Memory { next, letters } => match letters.values_mut().find(|l| l.body == body) {
                Some(letter) => {
                    letter.failures += 1;
                    letter.error = error;
                }
                None => {
                    letters.insert(*next, DeadLetter { id: *next, name: name.into(), source, body: body.to_vec(), error, failures: 1 });
                    *next += 1;
                }
            },
            Backend::Sqlite(db) => {
                db.execute(
                    "INSERT INTO dead_letters (name, source, body, error, failures) VALUES (?1, ?2, ?3, ?4, 1)
                     ON CONFLICT(body) DO UPDATE SET error = excluded.error, failures = failures + 1",
                    params![name, source.as_str(), body, error.to_string()],
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
            Backend::Memory { letters, .. } => letters.retain(|_, l| l.body != body),
            Backend::Sqlite(db) => {
                db.execute("DELETE FROM dead_letters WHERE body = ?1", [body])?;
            }
        }
        Ok(())
    }

    /// Every letter, oldest first.
    pub fn list(&self) -> anyhow::Result<Vec<DeadLetter>> {
        match &*self.backend.lock().unwrap() {
            Backend::Memory { letters, .. } => Ok(letters.values().cloned().collect()),
            Backend::Sqlite(db) => {
                let mut query = db.prepare("SELECT id, name, source, body, error, failures FROM dead_letters ORDER BY id")?;
                let rows = query.query_map([], |r| {
                    let error: String = r.get(4)?;
                    Ok(DeadLetter {
                        id: r.get(0)?,
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

/// Hands one event to the plugin; a failure lands in `dead_letters`. The outer error is a host
/// failure (the store); a trap is dead-lettered too, as a transport error.
pub fn deliver(runtime: &Runtime, dead_letters: &DeadLetters, name: &str, event: &Inbound) -> anyhow::Result<Handled> {
    let handled =
        runtime.handle(event).unwrap_or_else(|trap| Handled { plan: None, result: Err(SyncError::Transport(format!("the plugin trapped: {trap:#}"))) });
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
}
