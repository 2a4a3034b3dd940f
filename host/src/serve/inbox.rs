//! The durable inbox of `serve`: every accepted delivery is committed to SQLite (WAL,
//! `synchronous=FULL`) before the sender gets its 2xx, and stays `queued` until a worker has
//! handled it. A crash at any moment leaves a delivery either not acknowledged (the sender
//! retries) or queued (handled again after the restart, where the plugin's own records and
//! pending marks make the second handling write nothing twice).
//!
//! Scheduling: deliveries of one lane (see `triggers.route`) run one at a time, in arrival
//! order; different lanes run at once on the workers. A worker looks at each lane's oldest
//! queued delivery only (a skip-scan over the `(status, lane, id)` index), so however deep one
//! lane is, the others are seen at once.
//!
//! Disk: the bytes of the rows (bodies, outcomes, plans, exchanges) are counted against a
//! budget; finished rows are pruned, oldest first, to make room for a new delivery, and by age
//! ([`Inbox::prune`]). When queued rows alone fill the budget, [`Inbox::accept`] fails with
//! [`InboxFull`].

use crate::inbound::Source;
use rusqlite::{params, Connection, OptionalExtension as _};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Accepted, not yet handled (or waiting for a retry).
    Queued,
    /// Handled: synced, unchanged or skipped.
    Done,
    /// Gave up: kept as a dead letter.
    Failed,
    /// Refused on arrival (bad signature, not an event): never queued.
    Refused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Refused => "refused",
        }
    }
}

/// A delivery a worker is handling.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: i64,
    /// The tenant it was sent to (empty: the host's single location).
    pub tenant: String,
    pub source: Source,
    pub name: String,
    pub body: Vec<u8>,
    pub lane: String,
    /// Earlier handlings that failed and were retried.
    pub attempts: u32,
    pub received_ms: i64,
    /// The dead letter this delivery replays, removed when it gets through.
    pub replay_of: Option<i64>,
}

/// A delivery to commit ([`Inbox::accept`]).
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    /// Empty for the host's single location.
    pub tenant: &'a str,
    pub source: Source,
    pub name: &'a str,
    pub body: &'a [u8],
    /// What the plugin's `route` called it, and its lane (made the tenant's own here).
    pub kind: &'a str,
    pub lane: &'a str,
    /// The dead letter it replays.
    pub replay_of: Option<i64>,
}

/// What a worker learned from one handling.
pub struct Handled {
    pub status: Status,
    /// The report line (or the error), as `replay` prints it.
    pub outcome: Value,
    /// The dry-run plan made just before.
    pub plan: Value,
    /// The HTTP exchanges, redacted.
    pub http: Value,
    pub duration_ms: u64,
}

pub struct Inbox {
    db: Mutex<Connection>,
    /// Bytes of every row, as [`ROW_BYTES`] counts them (kept in step; recounted after a prune).
    bytes: AtomicI64,
    /// The most [`Inbox::bytes`] may reach with queued and kept rows.
    budget: AtomicU64,
    /// Finished rows pruned, to make room or by age.
    pruned: AtomicU64,
    /// Lanes and deliveries a worker holds now.
    running: Mutex<Running>,
    wake: Condvar,
}

#[derive(Default)]
struct Running {
    lanes: HashSet<String>,
    ids: HashSet<i64>,
    stopping: bool,
}

/// Finished deliveries kept for the monitor beyond which the oldest are pruned.
const KEEP_FINISHED: i64 = 10_000;

/// What one row costs on disk, near enough: its body and the texts kept with it.
const ROW_BYTES: &str = "length(body) + length(name) + coalesce(length(outcome), 0) + coalesce(length(plan), 0) + coalesce(length(http), 0)";

/// The inbox's budget is full of queued deliveries: the sender should come back later.
#[derive(Debug)]
pub struct InboxFull {
    pub bytes: u64,
    pub budget: u64,
}

impl std::fmt::Display for InboxFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the inbox holds {} bytes of queued deliveries; its budget is {}", self.bytes, self.budget)
    }
}

impl std::error::Error for InboxFull {}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

impl Inbox {
    pub fn open(path: &Path) -> anyhow::Result<Inbox> {
        let db = crate::storage::sqlite::open_database(
            path,
            "CREATE TABLE IF NOT EXISTS inbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                received_ms INTEGER NOT NULL,
                source TEXT NOT NULL,
                name TEXT NOT NULL,
                body BLOB NOT NULL,
                kind TEXT,
                lane TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                not_before_ms INTEGER NOT NULL DEFAULT 0,
                replay_of INTEGER,
                outcome TEXT, plan TEXT, http TEXT,
                finished_ms INTEGER, duration_ms INTEGER);
             CREATE INDEX IF NOT EXISTS inbox_queued ON inbox (status, id);
             CREATE INDEX IF NOT EXISTS inbox_lanes ON inbox (status, lane, id);",
        )?;
        // Before tenants: every delivery was the single location's.
        if !crate::storage::sqlite::has_column(&db, "inbox", "tenant")? {
            db.execute_batch("ALTER TABLE inbox ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")?;
        }
        // A file made before auto_vacuum was set keeps its freed pages: convert it once, so the
        // retention's `incremental_vacuum` gives them back.
        if db.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0))? != 2 {
            db.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
            if let Err(e) = db.execute_batch("VACUUM") {
                tracing::warn!("serve: converting {} to incremental vacuum: {e}", path.display());
            }
        }
        let inbox = Inbox {
            db: Mutex::new(db),
            bytes: AtomicI64::new(0),
            budget: AtomicU64::new(u64::MAX),
            pruned: AtomicU64::new(0),
            running: Mutex::new(Running::default()),
            wake: Condvar::new(),
        };
        inbox.recount(&inbox.db.lock().unwrap())?;
        Ok(inbox)
    }

    /// Sets the most the rows may take (see [`InboxFull`]).
    pub fn set_budget(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    /// Bytes of every row now (queued and kept).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Finished rows pruned since the start.
    pub fn pruned(&self) -> u64 {
        self.pruned.load(Ordering::Relaxed)
    }

    fn recount(&self, db: &Connection) -> anyhow::Result<()> {
        let bytes: i64 = db.query_row(&format!("SELECT coalesce(sum({ROW_BYTES}), 0) FROM inbox"), [], |r| r.get(0))?;
        self.bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Prunes finished rows, oldest first, until `needed` more bytes fit; false when they
    /// still do not (queued rows fill the budget).
    fn make_room(&self, db: &Connection, needed: i64) -> anyhow::Result<bool> {
        let budget = self.budget.load(Ordering::Relaxed).min(i64::MAX as u64) as i64;
        while self.bytes.load(Ordering::Relaxed) + needed > budget {
            let pruned = db.execute("DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE status != 'queued' ORDER BY id LIMIT 200)", [])?;
            if pruned == 0 {
                return Ok(false);
            }
            self.pruned.fetch_add(pruned as u64, Ordering::Relaxed);
            self.recount(db)?;
        }
        Ok(true)
    }

    /// Prunes finished rows older than `keep` and gives freed pages back to the file system;
    /// returns the rows pruned.
    pub fn prune(&self, keep: Duration) -> anyhow::Result<u64> {
        let db = self.db.lock().unwrap();
        let before = now_ms() - keep.as_millis().min(i64::MAX as u128) as i64;
        let pruned = db.execute("DELETE FROM inbox WHERE status != 'queued' AND coalesce(finished_ms, received_ms) < ?1", [before])? as u64;
        self.pruned.fetch_add(pruned, Ordering::Relaxed);
        self.recount(&db)?;
        // Freed pages go back to the file system, and the write-ahead log is emptied into the
        // file and cut back (a reader still on it only delays that to the next pass).
        db.execute_batch("PRAGMA incremental_vacuum")?;
        if let Err(e) = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!("serve: checkpointing the inbox: {e}");
        }
        Ok(pruned)
    }

    /// Commits an accepted delivery; when this returns, it survives a crash. Fails with
    /// [`InboxFull`] when the budget cannot make room for it.
    pub fn accept(&self, arrival: Arrival<'_>) -> anyhow::Result<i64> {
        let Arrival { tenant, source, name, body, kind, lane, replay_of } = arrival;
        let id = {
            let db = self.db.lock().unwrap();
            let size = (body.len() + name.len()) as i64;
            if !self.make_room(&db, size)? {
                return Err(InboxFull { bytes: self.bytes(), budget: self.budget.load(Ordering::Relaxed) }.into());
            }
            db.execute(
                "INSERT INTO inbox (received_ms, source, name, body, kind, lane, status, replay_of, tenant) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8)",
                params![now_ms(), source.as_str(), name, body, kind, tenant_lane(tenant, lane), replay_of, tenant],
            )?;
            self.bytes.fetch_add(size, Ordering::Relaxed);
            db.last_insert_rowid()
        };
        self.wake.notify_one();
        Ok(id)
    }

    /// Records a delivery refused on arrival, for the monitor (its body is not kept).
    pub fn refuse(&self, tenant: &str, source: Source, name: &str, error: &Value) -> anyhow::Result<i64> {
        let db = self.db.lock().unwrap();
        let now = now_ms();
        db.execute(
            "INSERT INTO inbox (received_ms, source, name, body, lane, status, outcome, finished_ms, duration_ms, tenant)
             VALUES (?1, ?2, ?3, x'', '', 'refused', ?4, ?1, 0, ?5)",
            params![now, source.as_str(), name, json!({"event": name, "outcome": "refused", "error": error}).to_string(), tenant],
        )?;
        let id = db.last_insert_rowid();
        self.bytes.fetch_add(db.query_row(&format!("SELECT {ROW_BYTES} FROM inbox WHERE id = ?1"), [id], |r| r.get::<_, i64>(0))?, Ordering::Relaxed);
        if id % 1000 == 0 {
            db.execute("DELETE FROM inbox WHERE status IN ('done', 'refused') AND id <= ?1", [id - KEEP_FINISHED])?;
            self.recount(&db)?;
        }
        // Refusals are not budgeted (they carry no body), but they take room from kept rows.
        self.make_room(&db, 0)?;
        Ok(id)
    }

    /// Waits for the next delivery a worker may handle: the oldest queued one whose lane is
    /// free and has no older delivery waiting. `None` once [`Inbox::stop`] was called.
    pub fn claim(&self) -> anyhow::Result<Option<Delivery>> {
        let mut running = self.running.lock().unwrap();
        loop {
            if running.stopping {
                return Ok(None);
            }
            let (next, wait) = self.next_runnable(&running)?;
            if let Some(delivery) = next {
                running.lanes.insert(delivery.lane.clone());
                running.ids.insert(delivery.id);
                return Ok(Some(delivery));
            }
            let wait = wait.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(1));
            running = self.wake.wait_timeout(running, wait).unwrap().0;
        }
    }

    /// The next runnable delivery, or how long until a delayed one is due: among each lane's
    /// oldest queued delivery (a lane's later ones wait behind it), the oldest whose lane is
    /// free and which is due.
    fn next_runnable(&self, running: &Running) -> anyhow::Result<(Option<Delivery>, Option<Duration>)> {
        let db = self.db.lock().unwrap();
        let now = now_ms();
        // A skip-scan: one index seek per lane, whatever the depth of each.
        let mut query = db.prepare_cached(
            "WITH RECURSIVE lanes(lane) AS (
                 SELECT min(lane) FROM inbox WHERE status = 'queued'
                 UNION ALL
                 SELECT (SELECT min(lane) FROM inbox WHERE status = 'queued' AND lane > lanes.lane) FROM lanes WHERE lanes.lane IS NOT NULL)
             SELECT i.id, i.source, i.name, i.lane, i.attempts, i.received_ms, i.replay_of, i.not_before_ms, i.tenant
             FROM lanes JOIN inbox i ON i.id = (SELECT min(id) FROM inbox WHERE status = 'queued' AND lane = lanes.lane)
             WHERE lanes.lane IS NOT NULL ORDER BY i.id",
        )?;
        let mut rows = query.query([])?;
        let mut soonest: Option<i64> = None;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let lane: String = row.get(3)?;
            let not_before: i64 = row.get(7)?;
            if running.ids.contains(&id) || running.lanes.contains(&lane) {
                continue;
            }
            if not_before > now {
                soonest = Some(soonest.map_or(not_before, |s: i64| s.min(not_before)));
                continue;
            }
            let delivery = Delivery {
                id,
                tenant: row.get(8)?,
                source: Source::parse(&row.get::<_, String>(1)?).unwrap_or(Source::DialpadWebhook),
                name: row.get(2)?,
                body: db.query_row("SELECT body FROM inbox WHERE id = ?1", [id], |r| r.get(0))?,
                lane,
                attempts: row.get(4)?,
                received_ms: row.get(5)?,
                replay_of: row.get(6)?,
            };
            return Ok((Some(delivery), None));
        }
        Ok((None, soonest.map(|t| Duration::from_millis((t - now).max(1) as u64))))
    }

    /// Records the end of a handling and frees the lane.
    pub fn finish(&self, delivery: &Delivery, handled: &Handled) -> anyhow::Result<()> {
        {
            let db = self.db.lock().unwrap();
            let replaced = texts_in_row(&db, delivery.id)?;
            db.execute(
                "UPDATE inbox SET status = ?2, outcome = ?3, plan = ?4, http = ?5, finished_ms = ?6, duration_ms = ?7, attempts = attempts + 1 WHERE id = ?1",
                params![
                    delivery.id,
                    handled.status.as_str(),
                    handled.outcome.to_string(),
                    handled.plan.to_string(),
                    handled.http.to_string(),
                    now_ms(),
                    handled.duration_ms as i64
                ],
            )?;
            self.bytes.fetch_add(texts_bytes(handled) - replaced, Ordering::Relaxed);
            if delivery.id % 1000 == 0 {
                db.execute("DELETE FROM inbox WHERE status IN ('done', 'refused') AND id <= ?1", [delivery.id - KEEP_FINISHED])?;
                self.recount(&db)?;
            }
        }
        self.release(delivery);
        Ok(())
    }

    /// Puts a delivery back for another try after `delay`, keeping what the last try did.
    pub fn retry_later(&self, delivery: &Delivery, handled: &Handled, delay: Duration) -> anyhow::Result<()> {
        {
            let db = self.db.lock().unwrap();
            let replaced = texts_in_row(&db, delivery.id)?;
            db.execute(
                "UPDATE inbox SET attempts = attempts + 1, not_before_ms = ?2, outcome = ?3, plan = ?4, http = ?5 WHERE id = ?1",
                params![delivery.id, now_ms() + delay.as_millis() as i64, handled.outcome.to_string(), handled.plan.to_string(), handled.http.to_string()],
            )?;
            self.bytes.fetch_add(texts_bytes(handled) - replaced, Ordering::Relaxed);
        }
        self.release(delivery);
        Ok(())
    }

    fn release(&self, delivery: &Delivery) {
        let mut running = self.running.lock().unwrap();
        running.lanes.remove(&delivery.lane);
        running.ids.remove(&delivery.id);
        drop(running);
        self.wake.notify_all();
    }

    /// Wakes every waiting worker and makes [`Inbox::claim`] answer `None` from now on.
    pub fn stop(&self) {
        self.running.lock().unwrap().stopping = true;
        self.wake.notify_all();
    }

    /// Waits up to `timeout`; true once [`Inbox::stop`] was called.
    pub fn wait_stopped(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut running = self.running.lock().unwrap();
        while !running.stopping {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            running = self.wake.wait_timeout(running, left).unwrap().0;
        }
        true
    }

    /// Ends every queued delivery of a removed tenant as failed, with `reason` as its outcome:
    /// nothing of its runs any more (one being handled now finishes). Returns how many.
    pub fn cancel_tenant(&self, tenant: &str, reason: &str) -> anyhow::Result<usize> {
        let db = self.db.lock().unwrap();
        let outcome = json!({"outcome": "cancelled", "error": {"type": "tenant-removed", "message": reason}}).to_string();
        let running: Vec<i64> = self.running.lock().unwrap().ids.iter().copied().collect();
        let held = running.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        Ok(db.execute(
            &format!("UPDATE inbox SET status = 'failed', outcome = ?2, finished_ms = ?3 WHERE status = 'queued' AND tenant = ?1 AND id NOT IN ({held})"),
            params![tenant, outcome, now_ms()],
        )?)
    }

    /// A tenant's newest delivery: when it came, and where it stands.
    pub fn last_of_tenant(&self, tenant: &str) -> anyhow::Result<Option<(i64, String)>> {
        let db = self.db.lock().unwrap();
        Ok(db
            .query_row("SELECT received_ms, status FROM inbox WHERE tenant = ?1 ORDER BY id DESC LIMIT 1", [tenant], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Deliveries accepted and not yet finished.
    pub fn queued(&self) -> anyhow::Result<u64> {
        let db = self.db.lock().unwrap();
        Ok(db.query_row("SELECT count(*) FROM inbox WHERE status = 'queued'", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// The newest deliveries, newest first, as the monitor shows them (without bodies).
    pub fn recent(&self, limit: u32) -> anyhow::Result<Vec<Value>> {
        let db = self.db.lock().unwrap();
        let mut query = db.prepare_cached(&format!("SELECT {COLUMNS} FROM inbox ORDER BY id DESC LIMIT ?1"))?;
        let rows = query.query_map([limit], |r| row_json(r, false))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The kind and lane the plugin gave a body when it was accepted, from the newest delivery
    /// of the same bytes still kept: what a dead letter is queued again with, without asking
    /// the plugin to route it again (a signed token may have expired since it was accepted).
    pub fn route_of(&self, tenant: &str, body: &[u8]) -> anyhow::Result<Option<(String, String)>> {
        let db = self.db.lock().unwrap();
        let route: Option<(String, String)> = db
            .query_row(
                "SELECT kind, lane FROM inbox WHERE tenant = ?2 AND body = ?1 AND kind IS NOT NULL AND lane != '' ORDER BY id DESC LIMIT 1",
                params![body, tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        // Stored as the tenant's own lane: give back the plugin's.
        Ok(route.map(|(kind, lane)| (kind, lane.strip_prefix(&tenant_lane(tenant, "")).map(str::to_string).unwrap_or(lane))))
    }

    /// One delivery with its body.
    pub fn get(&self, id: i64) -> anyhow::Result<Option<Value>> {
        let db = self.db.lock().unwrap();
        Ok(db.query_row(&format!("SELECT {COLUMNS} FROM inbox WHERE id = ?1"), [id], |r| row_json(r, true)).optional()?)
    }
}

/// A lane of one tenant: two tenants' deliveries about the same phone never wait for each other.
fn tenant_lane(tenant: &str, lane: &str) -> String {
    if tenant.is_empty() {
        lane.to_string()
    } else {
        format!("tenant/{tenant}/{lane}")
    }
}

/// The bytes of a row's outcome, plan and exchanges, before a handling replaces them.
fn texts_in_row(db: &Connection, id: i64) -> anyhow::Result<i64> {
    Ok(db
        .query_row("SELECT coalesce(length(outcome), 0) + coalesce(length(plan), 0) + coalesce(length(http), 0) FROM inbox WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn texts_bytes(handled: &Handled) -> i64 {
    [&handled.outcome, &handled.plan, &handled.http].iter().map(|v| v.to_string().len() as i64).sum()
}

const COLUMNS: &str =
    "id, received_ms, source, name, kind, lane, status, attempts, not_before_ms, replay_of, outcome, plan, http, finished_ms, duration_ms, body, tenant";

fn row_json(r: &rusqlite::Row<'_>, with_body: bool) -> rusqlite::Result<Value> {
    let parsed =
        |i: usize| -> rusqlite::Result<Value> { Ok(r.get::<_, Option<String>>(i)?.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)) };
    let source: String = r.get(2)?;
    let mut row = json!({
        "id": r.get::<_, i64>(0)?,
        "received_ms": r.get::<_, i64>(1)?,
        // The stored name (`webhook`, `platform`, `highlevel`) and what the page calls it.
        "source_name": Source::parse(&source).map_or_else(|| source.clone(), |known| known.describe().to_string()),
        "source": source,
        "name": r.get::<_, String>(3)?,
        "kind": r.get::<_, Option<String>>(4)?,
        "lane": r.get::<_, String>(5)?,
        "status": r.get::<_, String>(6)?,
        "attempts": r.get::<_, i64>(7)?,
        "not_before_ms": r.get::<_, i64>(8)?,
        "replay_of": r.get::<_, Option<i64>>(9)?,
        "outcome": parsed(10)?,
        "plan": parsed(11)?,
        "http": parsed(12)?,
        "finished_ms": r.get::<_, Option<i64>>(13)?,
        "duration_ms": r.get::<_, Option<i64>>(14)?,
        "tenant": r.get::<_, String>(16)?,
    });
    if with_body {
        let body: Vec<u8> = r.get(15)?;
        row["body"] = Value::String(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handled(status: Status) -> Handled {
        Handled { status, outcome: json!({"outcome": "synced"}), plan: Value::Null, http: json!([]), duration_ms: 1 }
    }

    #[test]
    fn one_lane_runs_in_order_and_other_lanes_run_beside_it() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        let inbox = Inbox::open(&path).unwrap();
        let a1 = inbox
            .accept(Arrival { tenant: "", source: Source::DialpadWebhook, name: "a1", body: b"1", kind: "call", lane: "phone:+1", replay_of: None })
            .unwrap();
        let a2 = inbox
            .accept(Arrival { tenant: "", source: Source::DialpadWebhook, name: "a2", body: b"2", kind: "call", lane: "phone:+1", replay_of: None })
            .unwrap();
        let b1 = inbox
            .accept(Arrival { tenant: "", source: Source::DialpadWebhook, name: "b1", body: b"3", kind: "sms", lane: "phone:+2", replay_of: None })
            .unwrap();
        let first = inbox.claim().unwrap().unwrap();
        let second = inbox.claim().unwrap().unwrap();
        // a2 waits for a1; b1 may run beside a1.
        assert_eq!((first.id, second.id), (a1, b1));
        assert_eq!(inbox.queued().unwrap(), 3);
        inbox.finish(&first, &handled(Status::Done)).unwrap();
        assert_eq!(inbox.claim().unwrap().unwrap().id, a2);
        assert_eq!(inbox.queued().unwrap(), 2);
        inbox.stop();
        assert!(inbox.claim().unwrap().is_none());
    }

    #[test]
    fn a_delivery_put_back_for_later_holds_its_lane_and_survives_a_reopen() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        let inbox = Inbox::open(&path).unwrap();
        let a1 = inbox
            .accept(Arrival { tenant: "", source: Source::DialpadWebhook, name: "a1", body: b"1", kind: "call", lane: "phone:+1", replay_of: None })
            .unwrap();
        let a2 =
            inbox.accept(Arrival { tenant: "", source: Source::Platform, name: "a2", body: b"2", kind: "task", lane: "phone:+1", replay_of: Some(7) }).unwrap();
        let claimed = inbox.claim().unwrap().unwrap();
        inbox.retry_later(&claimed, &handled(Status::Queued), Duration::from_millis(150)).unwrap();
        // Not due yet, and a2 must not overtake it: claim waits, then hands out a1 again.
        let again = inbox.claim().unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (a1, 1));
        drop(inbox);
        // A crash while a1 ran: both are still queued after reopening.
        let inbox = Inbox::open(&path).unwrap();
        assert_eq!(inbox.queued().unwrap(), 2);
        let first = inbox.claim().unwrap().unwrap();
        inbox.finish(&first, &handled(Status::Done)).unwrap();
        let second = inbox.claim().unwrap().unwrap();
        assert_eq!((second.id, second.source, second.replay_of), (a2, Source::Platform, Some(7)));
        let row = inbox.get(a1).unwrap().unwrap();
        assert_eq!((row["status"].as_str(), row["attempts"].as_i64(), row["body"].as_str()), (Some("done"), Some(2), Some("1")));
    }

    #[test]
    fn a_highlevel_webhook_is_stored_and_handed_out_as_one() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        let inbox = Inbox::open(&path).unwrap();
        let body = br#"{"type":"ContactUpdate","locationId":"L","id":"c1"}"#;
        let arrival = Arrival {
            tenant: "north",
            source: Source::HighLevelWebhook,
            name: "HighLevel webhook",
            body,
            kind: "highlevel-contact",
            lane: "highlevel-contact:c1",
            replay_of: None,
        };
        let id = inbox.accept(arrival).unwrap();
        let claimed = inbox.claim().unwrap().unwrap();
        assert_eq!((claimed.id, claimed.source, claimed.lane.as_str()), (id, Source::HighLevelWebhook, "tenant/north/highlevel-contact:c1"));
        let row = &inbox.recent(10).unwrap()[0];
        assert_eq!(
            (row["source"].as_str(), row["source_name"].as_str(), row["kind"].as_str()),
            (Some("highlevel"), Some("HighLevel webhook"), Some("highlevel-contact"))
        );
        assert_eq!(inbox.route_of("north", body).unwrap(), Some(("highlevel-contact".into(), "highlevel-contact:c1".into())));
    }
}
