//! Deliveries and failures per time bucket, for the console's charts: counted from the stored
//! rows under the time index alone (it holds each row's time, tenant and state).

use rusqlite::Connection;
use serde_json::{json, Value};

/// The most buckets one chart asks for.
pub const MAX_BUCKETS: i64 = 500;

/// Counts of `[from, to)` in `buckets` equal buckets (all tenants when `tenant` is `None`),
/// columnar as uPlot takes them: `t` is each bucket's start.
pub fn stats(db: &Connection, tenant: Option<&str>, from: i64, to: i64, buckets: i64) -> anyhow::Result<Value> {
    anyhow::ensure!(to > from, "the range ends before it starts");
    let buckets = buckets.clamp(1, MAX_BUCKETS);
    // Whole seconds, so the axis reads well.
    let bucket_ms = ((to - from + buckets - 1) / buckets + 999).max(1000) / 1000 * 1000;
    let count = ((to - from) + bucket_ms - 1) / bucket_ms;
    let (mut received, mut failed, mut refused) = (vec![0u64; count as usize], vec![0u64; count as usize], vec![0u64; count as usize]);
    let mut query = db.prepare_cached(
        "SELECT (received_ms - ?1) / ?3 AS b, count(*), sum(state IN ('failed', 'retrying')), sum(state = 'refused')
         FROM inbox WHERE received_ms >= ?1 AND received_ms < ?2 AND (?4 IS NULL OR tenant = ?4) GROUP BY b",
    )?;
    let mut rows = query.query(rusqlite::params![from, to, bucket_ms, tenant])?;
    while let Some(row) = rows.next()? {
        let b: i64 = row.get(0)?;
        if let Some(i) = usize::try_from(b).ok().filter(|i| *i < count as usize) {
            received[i] = row.get::<_, i64>(1)? as u64;
            failed[i] = row.get::<_, i64>(2)? as u64;
            refused[i] = row.get::<_, i64>(3)? as u64;
        }
    }
    let t: Vec<i64> = (0..count).map(|i| from + i * bucket_ms).collect();
    Ok(json!({"from": from, "to": to, "bucket_ms": bucket_ms, "t": t, "received": received, "failed": failed, "refused": refused}))
}
