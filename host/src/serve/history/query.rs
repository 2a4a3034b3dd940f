//! Filters, search and paging over the stored deliveries, on the server: newest first, keyset
//! paging on the id (`before`), every filter under an index, so a page costs the same at the
//! millionth delivery as at the first (`cargo bench`'s console figures measure it).

use super::row::{row_json, Detail, COLUMNS};
use crate::storage::db::Db as Connection;
use crate::storage::db::Value as Sql;
use serde_json::Value;

/// The states a person may filter by.
pub const STATES: &[&str] = &["queued", "retrying", "synced", "unchanged", "skipped", "failed", "refused", "cancelled", "discarded"];

/// What the page's filter bar holds (each part optional).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Filter {
    pub tenant: Option<String>,
    /// One state, or several separated by commas.
    pub state: Option<String>,
    pub kind: Option<String>,
    /// Received at or after (ms).
    pub from: Option<i64>,
    /// Received before (ms).
    pub to: Option<i64>,
    /// A phone (any format), an e-mail, a HighLevel contact id or a Dialpad call id.
    pub q: Option<String>,
}

/// A filter that cannot be run, in words for the person who typed it.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFilter(pub String);

impl std::fmt::Display for BadFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadFilter {}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Filter {
    pub fn states(&self) -> Result<Vec<String>, BadFilter> {
        let Some(states) = given(&self.state) else { return Ok(Vec::new()) };
        let states: Vec<String> = states.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s != "all").collect();
        match states.iter().find(|s| !STATES.contains(&s.as_str())) {
            Some(bad) => Err(BadFilter(format!("there is no state {bad:?}; the states are {}", STATES.join(", ")))),
            None => Ok(states),
        }
    }

    /// The `WHERE` clause (without the keyword) and its parameters.
    fn clause(&self) -> Result<(String, Vec<Sql>), BadFilter> {
        let mut parts = vec!["1 = 1".to_string()];
        let mut params = Vec::new();
        if let Some(tenant) = given(&self.tenant) {
            parts.push("tenant = ?".into());
            params.push(Sql::Text(stored_tenant(tenant).to_string()));
        }
        let states = self.states()?;
        if !states.is_empty() {
            parts.push(format!("state IN ({})", vec!["?"; states.len()].join(", ")));
            params.extend(states.into_iter().map(Sql::Text));
        }
        if let Some(kind) = given(&self.kind) {
            parts.push("kind = ?".into());
            params.push(Sql::Text(kind.to_string()));
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                return Err(BadFilter("the date range ends before it starts".into()));
            }
        }
        // A date range as an id range too (ids grow with time), so paging by id stays on the
        // id indexes: the time index gives each end in one seek.
        if let Some(from) = self.from {
            parts.push(
                "received_ms >= ? AND id >= coalesce((SELECT id FROM inbox WHERE received_ms >= ? ORDER BY received_ms LIMIT 1), 9223372036854775807)".into(),
            );
            params.extend([Sql::Integer(from), Sql::Integer(from)]);
        }
        if let Some(to) = self.to {
            parts.push("received_ms < ? AND id <= coalesce((SELECT id FROM inbox WHERE received_ms < ? ORDER BY received_ms DESC LIMIT 1), -1)".into());
            params.extend([Sql::Integer(to), Sql::Integer(to)]);
        }
        if let Some(term) = given(&self.q) {
            let keys = super::facets::search_keys(term);
            parts.push(format!("id IN (SELECT id FROM inbox_keys WHERE key IN ({}))", vec!["?"; keys.len()].join(", ")));
            params.extend(keys.into_iter().map(Sql::Text));
        }
        Ok((parts.join(" AND "), params))
    }
}

/// The host's own location (`--location-id`) is stored as the empty tenant; a filter names it
/// [`OWN_LOCATION`], since an empty field means every tenant.
pub const OWN_LOCATION: &str = "-";

pub fn stored_tenant(given: &str) -> &str {
    if given == OWN_LOCATION {
        ""
    } else {
        given
    }
}

/// One page of the history.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<Value>,
    /// Where the next (older) page starts; `None` on the last page.
    pub next_before: Option<i64>,
}

/// The deliveries `filter` finds older than `before`, newest first, at most `limit`.
pub fn page(db: &Connection, filter: &Filter, before: Option<i64>, limit: u32) -> anyhow::Result<Page> {
    let (clause, mut params) = filter.clause()?;
    let before_clause = if let Some(before) = before {
        params.push(Sql::Integer(before));
        " AND id < ?"
    } else {
        ""
    };
    params.push(Sql::Integer(i64::from(limit) + 1));
    let mut query = db.prepare_cached(&format!("SELECT {COLUMNS} FROM inbox WHERE {clause}{before_clause} ORDER BY id DESC LIMIT ?"))?;
    let mut rows: Vec<Value> = query.query_map(crate::storage::db::params_from_iter(params), |r| row_json(r, Detail::Labels))?.collect::<Result<_, _>>()?;
    let next_before = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().and_then(|r| r["id"].as_i64())
    } else {
        None
    };
    Ok(Page { rows, next_before })
}

/// The failed deliveries of `filter` an operator may still replay or discard (not replayed,
/// not discarded), oldest first, at most `limit`.
pub fn open_failures(db: &Connection, filter: &Filter, limit: u32) -> anyhow::Result<Vec<i64>> {
    let failed = Filter { state: Some("failed".into()), ..filter.clone() };
    let (clause, mut params) = failed.clause()?;
    params.push(Sql::Integer(i64::from(limit)));
    let mut query = db.prepare_cached(&format!("SELECT id FROM inbox WHERE {clause} AND replayed_by IS NULL ORDER BY id LIMIT ?"))?;
    let ids = query.query_map(crate::storage::db::params_from_iter(params), |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(ids)
}

/// One delivery with everything kept of it.
pub fn get(db: &Connection, id: i64) -> anyhow::Result<Option<Value>> {
    use crate::storage::db::OptionalExtension as _;
    Ok(db.query_row(&format!("SELECT {COLUMNS} FROM inbox WHERE id = ?1"), [id], |r| row_json(r, Detail::Full)).optional()?)
}

/// Failed deliveries waiting for an operator.
pub fn open_failure_count(db: &Connection) -> anyhow::Result<u64> {
    Ok(db.query_row("SELECT count(*) FROM inbox WHERE state = 'failed' AND replayed_by IS NULL", [], |r| r.get::<_, i64>(0))? as u64)
}

/// The kinds stored, for the filter's list.
pub fn kinds(db: &Connection) -> anyhow::Result<Vec<String>> {
    // A skip-scan over the kind index: one seek per kind, whatever the number of rows.
    let mut query = db.prepare_cached(
        "WITH RECURSIVE k(kind) AS (SELECT min(kind) FROM inbox UNION ALL SELECT (SELECT min(kind) FROM inbox WHERE kind > k.kind) FROM k WHERE k.kind IS NOT NULL)
         SELECT kind FROM k WHERE kind IS NOT NULL",
    )?;
    let kinds = query.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(kinds)
}

/// The newest failed, not yet replayed delivery of `body` at `tenant`: where a dead letter
/// came from.
pub fn failed_delivery_of(db: &Connection, tenant: &str, body: &[u8]) -> anyhow::Result<Option<i64>> {
    use crate::storage::db::OptionalExtension as _;
    Ok(db
        .query_row(
            "SELECT id FROM inbox WHERE state = 'failed' AND replayed_by IS NULL AND tenant = ?1 AND body = ?2 ORDER BY id DESC LIMIT 1",
            crate::storage::db::params![tenant, body],
            |r| r.get(0),
        )
        .optional()?)
}
