//! The one way the host opens its SQLite file (records, dead letters, the inbox, backfill
//! cursors).

use rusqlite::Connection;
use std::path::Path;

/// The host's SQLite file (records, dead letters), opened for durability over speed: each
/// write is on disk when it returns. `schema` creates the caller's table if it is missing.
pub fn open_database(path: &Path, schema: &str) -> anyhow::Result<Connection> {
    // Owner-only (it holds personal data); SQLite gives the -wal and -shm files the same mode.
    // An in-memory database (":memory:", "") has no file.
    let on_disk = !path.as_os_str().is_empty() && path != Path::new(":memory:");
    if on_disk {
        super::private::private_new_file(path)?;
    }
    let db = Connection::open(path)?;
    // Several connections share the file (records, dead letters, the inbox): wait for a
    // writer instead of failing with SQLITE_BUSY.
    db.busy_timeout(std::time::Duration::from_secs(30))?;
    // Pages freed by deletions go back to the file system on `PRAGMA incremental_vacuum`
    // (serve's retention runs it). Takes effect on a new file; serve converts an older one.
    db.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch(schema)?;
    if on_disk {
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            super::private::private_file(Path::new(&name))?;
        }
    }
    Ok(db)
}

/// Whether `table` has `column` (for adding a column to a file an older host made).
pub fn has_column(db: &Connection, table: &str, column: &str) -> anyhow::Result<bool> {
    let mut query = db.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = query.query_map([], |r| r.get::<_, String>(1))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}
