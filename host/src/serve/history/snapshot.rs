//! The inbox as the incidents see it (the banner and the alerts): what is queued, what waits
//! for an operator, and every delivery of the last window with its state and error.

use super::query::open_failure_count;
use crate::serve::incidents::{Recent, Snapshot};
use crate::storage::db::Db as Connection;
use std::collections::BTreeMap;

/// The inbox at `now_ms`, with the deliveries received since `now_ms - window_ms`.
pub fn snapshot(db: &Connection, now_ms: i64, window_ms: i64, locations: BTreeMap<String, String>) -> anyhow::Result<Snapshot> {
    let (queue_depth, oldest_queued_ms): (i64, Option<i64>) =
        db.query_row("SELECT count(*), min(received_ms) FROM inbox WHERE status = 'queued'", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    // A failure an operator replayed is settled: the replay is a delivery of its own.
    let mut query = db.prepare_cached(
        "SELECT id, tenant, received_ms, CASE WHEN replayed_by IS NOT NULL THEN 'replayed' ELSE coalesce(state, status) END, error, kind
         FROM inbox WHERE received_ms >= ?1 ORDER BY id",
    )?;
    let recent = query
        .query_map([now_ms - window_ms], |r| {
            Ok(Recent { id: r.get(0)?, tenant: r.get(1)?, received_ms: r.get(2)?, state: r.get(3)?, error: r.get(4)?, kind: r.get(5)? })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Snapshot { now_ms, queue_depth: queue_depth as u64, oldest_queued_ms, failed: open_failure_count(db)?, recent, locations })
}
