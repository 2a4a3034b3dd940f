//! Named leases in the shared database: what one replica at a time may do (a lane's next
//! delivery, a reconciliation pass, retention, a backfill, an OAuth refresh). A lease is held
//! by one holder until it is released or its time runs out, so a replica that dies (SIGKILL,
//! a lost machine) gives its leases up after their time without anyone's help.
//!
//! Taking a lease is one statement (an upsert that only replaces a lease that is the taker's
//! own or has run out), atomic on both backends: PostgreSQL locks the row for the
//! `ON CONFLICT … DO UPDATE`, SQLite has one writer at a time.

use super::db::{now_ms, params, Db, Location, OptionalExtension as _};
use std::sync::Mutex;
use std::time::Duration;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms INTEGER NOT NULL)";

/// The leases of one database, through a connection of their own.
pub struct Leases {
    db: Mutex<Db>,
}

impl Leases {
    pub fn open(location: &Location) -> anyhow::Result<Leases> {
        let db = Db::open(location, "")?;
        db.migrate("leases", &[super::db::Step::Sql(SCHEMA)])?;
        Ok(Leases { db: Mutex::new(db) })
    }

    /// Takes `name` for `holder` for `ttl` (or extends it, when `holder` has it already);
    /// false when someone else holds it.
    pub fn try_hold(&self, name: &str, holder: &str, ttl: Duration) -> anyhow::Result<bool> {
        let now = now_ms();
        let until = now + ttl.as_millis().min(i64::MAX as u128 / 2) as i64;
        let held = self
            .db
            .lock()
            .unwrap()
            .query_row(
                "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
                 WHERE leases.holder = excluded.holder OR leases.until_ms <= ?4
                 RETURNING holder",
                params![name, holder, until, now],
                |r| r.get::<_, String>(0),
            )
            .optional()?;
        Ok(held.is_some())
    }

    /// Extends every lease `holder` has (its heartbeat); returns how many.
    pub fn renew_all(&self, holder: &str, ttl: Duration) -> anyhow::Result<usize> {
        let until = now_ms() + ttl.as_millis().min(i64::MAX as u128 / 2) as i64;
        Ok(self.db.lock().unwrap().execute("UPDATE leases SET until_ms = ?2 WHERE holder = ?1", params![holder, until])?)
    }

    /// Gives `name` up, if `holder` has it.
    pub fn release(&self, name: &str, holder: &str) -> anyhow::Result<()> {
        self.db.lock().unwrap().execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", params![name, holder])?;
        Ok(())
    }

    /// Gives up every lease of `holder` (a replica stopping).
    pub fn release_all(&self, holder: &str) -> anyhow::Result<usize> {
        Ok(self.db.lock().unwrap().execute("DELETE FROM leases WHERE holder = ?1", [holder])?)
    }

    /// How many leases whose name starts with `prefix` others than `holder` hold now.
    pub fn count_held(&self, prefix: &str, holder: &str) -> anyhow::Result<u64> {
        let now = now_ms();
        let like = format!("{prefix}%");
        let n: i64 = self.db.lock().unwrap().query_row(
            "SELECT count(*) FROM leases WHERE name LIKE ?1 AND holder <> ?2 AND until_ms > ?3",
            params![like, holder, now],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Who holds `name` now, if anyone.
    pub fn holder(&self, name: &str) -> anyhow::Result<Option<String>> {
        let now = now_ms();
        Ok(self.db.lock().unwrap().query_row("SELECT holder FROM leases WHERE name = ?1 AND until_ms > ?2", params![name, now], |r| r.get(0)).optional()?)
    }
}

/// A name for this process among the replicas: host, process id and a random part (a
/// restarted process is a new holder, whose old leases run out).
pub fn replica_name() -> String {
    let mut random = [0u8; 4];
    let _ = getrandom::getrandom(&mut random);
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{}-{}-{:08x}", if host.is_empty() { "replica" } else { &host }, std::process::id(), u32::from_be_bytes(random))
}
