//! The console's history: every delivery `serve` took or refused, labelled, searchable and
//! paged on the server, a call's story, volume over time, and the audit log of what operators
//! did. It reads and writes the inbox's own rows (one SQLite file, one connection: the inbox
//! hands it its connection), so a delivery's history is the delivery itself, never a copy.
//!
//! - [`facets`]: the labels read from a body (the other party, the call id) and search keys.
//! - [`labels`]: the labels of a handling (state, plain words, error, HighLevel ids).
//! - [`query`]: filters, search and keyset paging.
//! - [`story`]: every delivery of one call, with what each changed and links to HighLevel.
//! - [`stats`]: deliveries and failures per minute, kept as the rows change, for the charts.
//! - [`audit`]: who replayed or discarded what.
//! - [`snapshot`]: the inbox as the incidents (banner, alerts) see it.

pub mod audit;
pub mod facets;
pub mod labels;
pub mod query;
pub mod row;
pub mod snapshot;
pub mod stats;
pub mod story;

use crate::storage::db::Db as Connection;

/// Columns the history adds to the inbox (a file made by an older host gets them on open).
const COLUMNS: &[(&str, &str)] = &[
    // The one word the page shows: queued, retrying, synced, unchanged, skipped, failed,
    // refused, cancelled, discarded.
    ("state", "TEXT"),
    // What happened in plain words, or what went wrong and what to do.
    ("words", "TEXT"),
    // The last error's type, with its HTTP status: `upstream:401`, `transport`, …
    ("error", "TEXT"),
    ("phone", "TEXT"),
    ("party", "TEXT"),
    ("email", "TEXT"),
    ("call_id", "TEXT"),
    // Which leg of its call: the call event's state.
    ("leg", "TEXT"),
    ("contact_id", "TEXT"),
    ("note_id", "TEXT"),
    ("call_entry_id", "TEXT"),
    // The delivery that replays this one.
    ("replayed_by", "INTEGER"),
    // `{"reason", "by", "at_ms"}` when an operator discarded it.
    ("discarded", "TEXT"),
    // `[{"attempt", "at_ms", "state", "words"}]`: every handling, retries included.
    ("tries", "TEXT"),
];

/// Adds the history's columns, indexes and tables to the inbox's file.
pub fn migrate(db: &Connection) -> anyhow::Result<()> {
    for (column, kind) in COLUMNS {
        if !crate::storage::sqlite::has_column(db, "inbox", column)? {
            db.execute_batch(&format!("ALTER TABLE inbox ADD COLUMN {column} {kind}"))?;
        }
    }
    // Rows from before the history (only a SQLite file can have them): their state from their
    // status and outcome.
    if db.backend() == crate::storage::db::Backend::Sqlite {
        db.execute_batch(
            "UPDATE inbox SET state = CASE
             WHEN status = 'done' THEN coalesce(json_extract(outcome, '$.outcome'), 'synced')
             WHEN status = 'queued' AND attempts > 0 THEN 'retrying'
             WHEN status = 'failed' AND json_extract(outcome, '$.outcome') = 'cancelled' THEN 'cancelled'
             ELSE status END
         WHERE state IS NULL AND json_valid(coalesce(outcome, '{}'));
         UPDATE inbox SET state = status WHERE state IS NULL;",
        )?;
    }
    // Each filter the page offers pages by id under its own index; a date range finds its ids
    // under the time index; the search keys are one index of their own.
    db.execute_batch(
        "CREATE INDEX IF NOT EXISTS inbox_tenant ON inbox (tenant, id);
         CREATE INDEX IF NOT EXISTS inbox_state ON inbox (state, id);
         CREATE INDEX IF NOT EXISTS inbox_tenant_state ON inbox (tenant, state, id);
         CREATE INDEX IF NOT EXISTS inbox_kind ON inbox (kind, id);
         CREATE INDEX IF NOT EXISTS inbox_received ON inbox (received_ms);
         CREATE TABLE IF NOT EXISTS inbox_keys (key TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (key, id)) WITHOUT ROWID;",
    )?;
    audit::create(db)?;
    stats::create(db)?;
    Ok(())
}

/// Stores a delivery's search keys (a key already stored is kept).
pub fn add_keys(db: &Connection, id: i64, keys: &[String]) -> crate::storage::db::Result<()> {
    let mut insert = db.prepare_cached("INSERT OR IGNORE INTO inbox_keys (key, id) VALUES (?1, ?2)")?;
    for key in keys {
        insert.execute(crate::storage::db::params![key, id])?;
    }
    Ok(())
}

/// Forgets the keys of pruned rows. Rows go oldest first, so every key below the oldest kept
/// row is stale; a stale key left by a pruned row above it finds nothing (searches join the
/// rows) and goes once the rows below it have.
pub fn prune_keys(db: &Connection) -> crate::storage::db::Result<usize> {
    db.execute("DELETE FROM inbox_keys WHERE id < (SELECT coalesce(min(id), 9223372036854775807) FROM inbox)", [])
}
