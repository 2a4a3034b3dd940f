//! The `webhookId`s already accepted, so that a captured webhook sent again is refused: in the
//! host's SQLite file (kept across restarts, shared by serve's workers) or in memory.
//!
//! An id is kept for twice the gate's window. A webhook is accepted while its timestamp is
//! within the window either side of now, a span of two windows; its first delivery falls at
//! the earliest in that span, so any copy that could still pass the timestamp check comes
//! within two windows of it. Older ids can go: their copies are refused as stale.

use crate::storage::db::{params, Db as Connection};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Remembers the `webhookId`s accepted.
pub trait ReplayLedger {
    /// Records `webhook_id` as seen at `at_ms` and says whether it is new; an id seen before is
    /// not recorded again. May forget ids older than the gate's window allows to come back.
    fn first_time(&mut self, webhook_id: &str, at_ms: i64) -> anyhow::Result<bool>;

    /// Forgets `webhook_id`: acting on it failed on our side, and HighLevel will send it again
    /// (after our 429), which must not then be refused as a replay.
    fn forget(&mut self, webhook_id: &str) -> anyhow::Result<()>;
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS app_webhook_ids (webhook_id TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS app_webhook_ids_by_time ON app_webhook_ids (seen_ms);";

fn keep_ms(window: Duration) -> i64 {
    i64::try_from(window.as_millis().saturating_mul(2)).unwrap_or(i64::MAX)
}

/// The ids in the host's SQLite file, table `app_webhook_ids`.
pub struct SqliteReplayLedger {
    db: Connection,
    keep_ms: i64,
}

impl SqliteReplayLedger {
    /// Opens (or creates) the table in the database at `path`; `window` is the gate's.
    pub fn open(path: &Path, window: Duration) -> anyhow::Result<Self> {
        Ok(SqliteReplayLedger { db: crate::storage::sqlite::open_database(path, "webhook_ids", SCHEMA)?, keep_ms: keep_ms(window) })
    }

    pub fn len(&self) -> anyhow::Result<usize> {
        Ok(self.db.query_row("SELECT COUNT(*) FROM app_webhook_ids", [], |r| r.get::<_, i64>(0))?.try_into()?)
    }

    pub fn is_empty(&self) -> anyhow::Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl ReplayLedger for SqliteReplayLedger {
    fn first_time(&mut self, webhook_id: &str, at_ms: i64) -> anyhow::Result<bool> {
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM app_webhook_ids WHERE seen_ms < ?1", params![at_ms.saturating_sub(self.keep_ms)])?;
        // One statement decides: two workers given the same id cannot both see it as new.
        let inserted =
            tx.execute("INSERT INTO app_webhook_ids (webhook_id, seen_ms) VALUES (?1, ?2) ON CONFLICT (webhook_id) DO NOTHING", params![webhook_id, at_ms])?;
        tx.commit()?;
        Ok(inserted == 1)
    }

    fn forget(&mut self, webhook_id: &str) -> anyhow::Result<()> {
        self.db.execute("DELETE FROM app_webhook_ids WHERE webhook_id = ?1", [webhook_id])?;
        Ok(())
    }
}

/// The ids in memory: for one process that need not remember across restarts, and for tests.
#[derive(Debug)]
pub struct MemoryReplayLedger {
    seen: HashMap<String, i64>,
    keep_ms: i64,
}

impl MemoryReplayLedger {
    pub fn new(window: Duration) -> Self {
        MemoryReplayLedger { seen: HashMap::new(), keep_ms: keep_ms(window) }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

impl ReplayLedger for MemoryReplayLedger {
    fn first_time(&mut self, webhook_id: &str, at_ms: i64) -> anyhow::Result<bool> {
        let oldest = at_ms.saturating_sub(self.keep_ms);
        self.seen.retain(|_, seen| *seen >= oldest);
        if self.seen.contains_key(webhook_id) {
            return Ok(false);
        }
        self.seen.insert(webhook_id.to_string(), at_ms);
        Ok(true)
    }

    fn forget(&mut self, webhook_id: &str) -> anyhow::Result<()> {
        self.seen.remove(webhook_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    fn check(ledger: &mut dyn ReplayLedger) {
        assert!(ledger.first_time("w-1", 1_000_000).unwrap());
        assert!(!ledger.first_time("w-1", 1_000_001).unwrap());
        assert!(ledger.first_time("w-2", 1_000_002).unwrap());
        // Still remembered just inside two windows, forgotten after.
        assert!(!ledger.first_time("w-1", 1_000_000 + 600_000).unwrap());
        assert!(ledger.first_time("w-3", 1_000_000 + 600_001).unwrap());
        assert!(ledger.first_time("w-1", 1_000_000 + 600_003).unwrap());
    }

    #[test]
    fn the_memory_ledger_refuses_a_repeat_and_forgets_after_two_windows() {
        let mut ledger = MemoryReplayLedger::new(WINDOW);
        check(&mut ledger);
        // w-2 (seen at 1_000_002) went with the last call's pruning; w-1 and w-3 are left.
        assert_eq!(ledger.len(), 2);
    }

    #[test]
    fn the_sqlite_ledger_does_the_same_and_survives_a_reopen() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        let mut ledger = SqliteReplayLedger::open(&path, WINDOW).unwrap();
        check(&mut ledger);
        assert_eq!(ledger.len().unwrap(), 2);
        drop(ledger);
        let mut reopened = SqliteReplayLedger::open(&path, WINDOW).unwrap();
        assert!(!reopened.first_time("w-3", 1_000_000 + 600_003).unwrap());
        let columns: Vec<String> = {
            let db = rusqlite::Connection::open(&path).unwrap();
            let mut query = db.prepare("SELECT name FROM pragma_table_info('app_webhook_ids') ORDER BY cid").unwrap();
            query.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(columns, ["webhook_id", "seen_ms"]);
    }
}
