//! The audit log: every replay and discard an operator made, with who made it and why.

use crate::storage::db::{params, Db as Connection};
use serde_json::{json, Value};

pub fn create(db: &Connection) -> crate::storage::db::Result<()> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             at_ms INTEGER NOT NULL,
             actor TEXT NOT NULL,
             action TEXT NOT NULL,
             deliveries TEXT NOT NULL,
             reason TEXT,
             detail TEXT)",
    )
}

/// One operator action.
pub struct Entry<'a> {
    pub actor: &'a str,
    /// `replay`, `replay-all`, `discard`, `discard-all`.
    pub action: &'a str,
    pub deliveries: &'a [i64],
    pub reason: Option<&'a str>,
    /// What it did beyond the ids (the filter of a bulk action, the new deliveries).
    pub detail: Value,
}

pub fn record(db: &Connection, at_ms: i64, entry: &Entry<'_>) -> crate::storage::db::Result<i64> {
    db.execute(
        "INSERT INTO audit (at_ms, actor, action, deliveries, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at_ms, entry.actor, entry.action, json!(entry.deliveries).to_string(), entry.reason, entry.detail.to_string()],
    )?;
    Ok(db.last_insert_rowid())
}

/// The newest entries first.
pub fn list(db: &Connection, limit: u32) -> anyhow::Result<Vec<Value>> {
    let mut query = db.prepare_cached("SELECT id, at_ms, actor, action, deliveries, reason, detail FROM audit ORDER BY id DESC LIMIT ?1")?;
    let parsed = |text: Option<String>| text.and_then(|t| serde_json::from_str::<Value>(&t).ok()).unwrap_or(Value::Null);
    let rows = query.query_map([limit], |r| {
        Ok(json!({
            "id": r.get::<_, i64>(0)?, "at_ms": r.get::<_, i64>(1)?, "actor": r.get::<_, String>(2)?, "action": r.get::<_, String>(3)?,
            "deliveries": parsed(r.get(4)?), "reason": r.get::<_, Option<String>>(5)?, "detail": parsed(r.get(6)?),
        }))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
