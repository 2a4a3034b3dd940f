//! Deliveries and failures per time bucket, for the console's charts, from per-minute counts
//! kept beside the rows (`inbox_minutes`): a chart of a week reads a week of minutes, however
//! many deliveries it held. The counts are written in the same statement group as the rows they
//! count ([`count_received`], [`count_failed`]), so they agree with them.
//!
//! A delivery counts as failed once, in the minute it was received, at its first failed try:
//! the chart shows how much went wrong when, even once the failures were retried or replayed.

use crate::storage::db::{params, Db as Connection};
use serde_json::{json, Value};

/// The most buckets one chart asks for.
pub const MAX_BUCKETS: i64 = 500;
const MINUTE_MS: i64 = 60_000;

/// Creates the counts; a file made before them gets them from its kept rows.
pub fn create(db: &Connection) -> crate::storage::db::Result<()> {
    let exists = db.has_table("inbox_minutes")?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS inbox_minutes (
             tenant TEXT NOT NULL, minute INTEGER NOT NULL,
             received INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, refused INTEGER NOT NULL DEFAULT 0,
             PRIMARY KEY (tenant, minute)) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS inbox_minutes_time ON inbox_minutes (minute);",
    )?;
    if !exists {
        recount(db)?;
    }
    Ok(())
}

/// Counts every kept row again (the counts of pruned rows are lost): what an older file, or a
/// store filled by other means, starts from.
pub fn recount(db: &Connection) -> crate::storage::db::Result<()> {
    db.execute_batch(
        "DELETE FROM inbox_minutes;
         INSERT INTO inbox_minutes (tenant, minute, received, failed, refused)
         SELECT tenant, received_ms / 60000, count(*),
                sum(CASE WHEN coalesce(state, status) IN ('failed', 'retrying', 'discarded') OR replayed_by IS NOT NULL THEN 1 ELSE 0 END),
                sum(CASE WHEN coalesce(state, status) = 'refused' THEN 1 ELSE 0 END)
         FROM inbox GROUP BY 1, 2;",
    )
}

/// One more delivery received at `received_ms` (`refused`: and refused at the door).
pub fn count_received(db: &Connection, tenant: &str, received_ms: i64, refused: bool) -> crate::storage::db::Result<()> {
    db.prepare_cached(
        "INSERT INTO inbox_minutes (tenant, minute, received, refused) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (tenant, minute) DO UPDATE SET received = inbox_minutes.received + 1, refused = inbox_minutes.refused + excluded.refused",
    )?
    .execute(params![tenant, received_ms.div_euclid(MINUTE_MS), i64::from(refused)])?;
    Ok(())
}

/// A delivery received at `received_ms` failed for the first time.
pub fn count_failed(db: &Connection, tenant: &str, received_ms: i64) -> crate::storage::db::Result<()> {
    db.prepare_cached(
        "INSERT INTO inbox_minutes (tenant, minute, failed) VALUES (?1, ?2, 1)
         ON CONFLICT (tenant, minute) DO UPDATE SET failed = inbox_minutes.failed + 1",
    )?
    .execute(params![tenant, received_ms.div_euclid(MINUTE_MS)])?;
    Ok(())
}

/// Forgets the counts of minutes before `before_ms` (the retention).
pub fn prune(db: &Connection, before_ms: i64) -> crate::storage::db::Result<usize> {
    db.execute("DELETE FROM inbox_minutes WHERE minute < ?1", [before_ms.div_euclid(MINUTE_MS)])
}

/// Counts of `[from, to)` in about `buckets` equal buckets of whole minutes (all tenants when
/// `tenant` is `None`), columnar as uPlot takes them: `t` is each bucket's start.
pub fn stats(db: &Connection, tenant: Option<&str>, from: i64, to: i64, buckets: i64) -> anyhow::Result<Value> {
    anyhow::ensure!(to > from, "the range ends before it starts");
    let buckets = buckets.clamp(1, MAX_BUCKETS);
    // Buckets of whole minutes (the nearest to the range's share), from the minute `from` falls
    // in: a bucket or two more than asked, at most.
    let bucket_ms = ((to - from) / buckets + MINUTE_MS / 2).max(MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    let from = from.div_euclid(MINUTE_MS) * MINUTE_MS;
    let count = ((to - from) + bucket_ms - 1) / bucket_ms;
    let (mut received, mut failed, mut refused) = (vec![0u64; count as usize], vec![0u64; count as usize], vec![0u64; count as usize]);
    let sql = |filter: &str| {
        format!(
            "SELECT (minute * 60000 - ?1) / ?3 AS b, sum(received), sum(failed), sum(refused)
             FROM inbox_minutes WHERE {filter} minute >= ?1 / 60000 AND minute * 60000 < ?2 GROUP BY b"
        )
    };
    let rows_of = |filter: &str, params: &[&dyn crate::storage::db::ToValue]| -> anyhow::Result<Vec<(i64, i64, i64, i64)>> {
        let mut query = db.prepare_cached(&sql(filter))?;
        let rows = query.query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let counted = match tenant {
        Some(tenant) => rows_of("tenant = ?4 AND", params![from, to, bucket_ms, tenant])?,
        None => rows_of("", params![from, to, bucket_ms])?,
    };
    for (b, all, failures, refusals) in counted {
        if let Some(i) = usize::try_from(b).ok().filter(|i| *i < count as usize) {
            (received[i], failed[i], refused[i]) = (all as u64, failures as u64, refusals as u64);
        }
    }
    let t: Vec<i64> = (0..count).map(|i| from + i * bucket_ms).collect();
    Ok(json!({"from": from, "to": to, "bucket_ms": bucket_ms, "t": t, "received": received, "failed": failed, "refused": refused}))
}
