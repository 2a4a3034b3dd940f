//! One delivery as the console's API gives it (see `docs/console-api.md`).

use crate::inbound::Source;
use serde_json::{json, Value};

/// The columns [`row_json`] reads, in its order.
pub const COLUMNS: &str =
    "id, received_ms, source, name, kind, lane, status, attempts, not_before_ms, replay_of, outcome, plan, http, finished_ms, duration_ms, \
     body, tenant, state, words, error, phone, party, email, call_id, contact_id, note_id, call_entry_id, replayed_by, discarded, tries, leg";

/// How much of a row to give: a list shows labels, a detail everything.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Labels only: what a table row shows.
    Labels,
    /// With plan, exchanges and tries: the older `/api/events` list.
    Handling,
    /// With plan, exchanges, tries and body.
    Full,
}

fn parsed(r: &crate::storage::db::Row, i: usize) -> crate::storage::db::Result<Value> {
    Ok(r.get::<_, Option<String>>(i)?.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null))
}

/// A row read with [`COLUMNS`].
pub fn row_json(r: &crate::storage::db::Row, detail: Detail) -> crate::storage::db::Result<Value> {
    let source: String = r.get(2)?;
    let status: String = r.get(6)?;
    let mut row = json!({
        "id": r.get::<_, i64>(0)?,
        "received_ms": r.get::<_, i64>(1)?,
        // The stored name (`webhook`, `platform`, `highlevel`) and what the page calls it.
        "source_name": Source::parse(&source).map_or_else(|| source.clone(), |known| known.describe().to_string()),
        "source": source,
        "name": r.get::<_, String>(3)?,
        "kind": r.get::<_, Option<String>>(4)?,
        "lane": r.get::<_, String>(5)?,
        "state": r.get::<_, Option<String>>(17)?.unwrap_or_else(|| status.clone()),
        "status": status,
        "attempts": r.get::<_, i64>(7)?,
        "not_before_ms": r.get::<_, i64>(8)?,
        "replay_of": r.get::<_, Option<i64>>(9)?,
        "finished_ms": r.get::<_, Option<i64>>(13)?,
        "duration_ms": r.get::<_, Option<i64>>(14)?,
        "tenant": r.get::<_, String>(16)?,
        "words": r.get::<_, Option<String>>(18)?,
        "error": r.get::<_, Option<String>>(19)?,
        "party": {"phone": r.get::<_, Option<String>>(20)?, "name": r.get::<_, Option<String>>(21)?, "email": r.get::<_, Option<String>>(22)?},
        "call_id": r.get::<_, Option<String>>(23)?,
        "contact_id": r.get::<_, Option<String>>(24)?,
        "note_id": r.get::<_, Option<String>>(25)?,
        "call_entry_id": r.get::<_, Option<String>>(26)?,
        "replayed_by": r.get::<_, Option<i64>>(27)?,
        "discarded": parsed(r, 28)?,
        "leg": r.get::<_, Option<String>>(30)?,
    });
    // The outcome stays in the list: the monitor's older readers (and `replay`) read it.
    row["outcome"] = parsed(r, 10)?;
    if detail != Detail::Labels {
        row["plan"] = parsed(r, 11)?;
        row["http"] = parsed(r, 12)?;
        row["tries"] = match parsed(r, 29)? {
            Value::Null => json!([]),
            tries => tries,
        };
    }
    if detail == Detail::Full {
        let body: Vec<u8> = r.get(15)?;
        // A refused delivery keeps the first bytes it came with (see `Inbox::refuse`).
        row["body"] = if body.is_empty() { Value::Null } else { Value::String(String::from_utf8_lossy(&body).into_owned()) };
    }
    Ok(row)
}
