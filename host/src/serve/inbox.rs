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

use super::history::facets::Facets;
use super::history::labels::Labels;
use super::history::row::{row_json, Detail, COLUMNS};
use crate::inbound::Source;
use crate::storage::db::{params, Db as Connection, OptionalExtension as _};
use crate::storage::db::{Location, Step};
use crate::storage::lease::Leases;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

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
    /// Done and refused deliveries kept beyond which the oldest are pruned (`Limits::keep_deliveries`).
    keep_rows: AtomicI64,
    /// Lanes and deliveries a worker holds now.
    running: Mutex<Running>,
    wake: Condvar,
    /// On a shared database: this replica's name and its leases on lanes.
    replica: Option<Replica>,
}

/// What a replica needs to share the inbox with others: a lane's deliveries run under a lease
/// (`lane:<lane>`) that one replica holds at a time, renewed by its heartbeat
/// ([`Inbox::heartbeat`]) and run out when it dies, so another takes the lane over.
struct Replica {
    name: String,
    leases: Leases,
    ttl_ms: AtomicI64,
}

/// How often a replica looks for deliveries other replicas accepted (it is woken at once for
/// its own).
const SHARED_POLL: Duration = Duration::from_millis(100);

/// The lease that pauses every replica's handlings for a reconciliation pass.
pub const RECONCILE_LEASE: &str = "reconcile";

#[derive(Default)]
struct Running {
    lanes: HashSet<String>,
    ids: HashSet<i64>,
    stopping: bool,
}

/// What one row costs on disk, near enough: its body and the texts kept with it.
const ROW_BYTES: &str =
    "length(body) + length(name) + coalesce(length(outcome), 0) + coalesce(length(plan), 0) + coalesce(length(http), 0) + coalesce(length(tries), 0)";

/// The inbox's first table (its later columns are [`Inbox::open`]'s steps).
const INBOX_TABLE: &str = "CREATE TABLE IF NOT EXISTS inbox (
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
             CREATE INDEX IF NOT EXISTS inbox_lanes ON inbox (status, lane, id);";

/// How much of a refused body is kept for the console.
pub const REFUSED_BODY_BYTES: usize = 2048;

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

pub use crate::storage::db::now_ms;

impl Inbox {
    pub fn open(path: &Path) -> anyhow::Result<Inbox> {
        let db = crate::storage::sqlite::open_database(path, "", "")?;
        // Before tenants every delivery was the single location's; then came the history.
        let tenant_column = |db: &Connection| {
            if !crate::storage::sqlite::has_column(db, "inbox", "tenant")? {
                db.execute_batch("ALTER TABLE inbox ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")?;
            }
            Ok(())
        };
        db.migrate("inbox", &[Step::Sql(INBOX_TABLE), Step::Code(&tenant_column), Step::Code(&super::history::migrate)])?;
        // A file made before auto_vacuum was set keeps its freed pages: convert it once, so the
        // retention's `incremental_vacuum` gives them back.
        if let Some(file) = db.sqlite().filter(|f| f.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0)).ok() != Some(2)) {
            file.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
            if let Err(e) = db.execute_batch("VACUUM") {
                tracing::warn!("serve: converting {} to incremental vacuum: {e}", path.display());
            }
        }
        let location = Location::of(path);
        let replica = match location.is_shared() {
            true => Some(Replica { name: crate::storage::lease::replica_name(), leases: Leases::open(&location)?, ttl_ms: AtomicI64::new(30_000) }),
            false => None,
        };
        let inbox = Inbox {
            replica,
            db: Mutex::new(db),
            bytes: AtomicI64::new(0),
            budget: AtomicU64::new(u64::MAX),
            pruned: AtomicU64::new(0),
            keep_rows: AtomicI64::new(super::limits::KEEP_DELIVERIES as i64),
            running: Mutex::new(Running::default()),
            wake: Condvar::new(),
        };
        inbox.recount(&inbox.db.lock().unwrap())?;
        Ok(inbox)
    }

    /// Sets how long this replica's leases last without a heartbeat (a shared database only).
    pub fn set_lease_ttl(&self, ttl: Duration) {
        if let Some(replica) = &self.replica {
            replica.ttl_ms.store(ttl.as_millis().clamp(1, i64::MAX as u128) as i64, Ordering::Relaxed);
        }
    }

    /// This replica's name, when the database is shared.
    pub fn replica_name(&self) -> Option<&str> {
        self.replica.as_ref().map(|r| r.name.as_str())
    }

    /// The leases of the shared database (`None` for a file only this process uses).
    pub fn leases(&self) -> Option<(&Leases, &str, Duration)> {
        self.replica.as_ref().map(|r| (&r.leases, r.name.as_str(), Duration::from_millis(r.ttl_ms.load(Ordering::Relaxed) as u64)))
    }

    /// Renews this replica's leases; its heartbeat, every third of their time.
    pub fn heartbeat(&self) -> anyhow::Result<()> {
        if let Some((leases, name, ttl)) = self.leases() {
            leases.renew_all(name, ttl)?;
        }
        Ok(())
    }

    /// Whether another replica's reconciliation pass holds every handling back now.
    fn paused_by_other(&self) -> bool {
        self.leases().is_some_and(|(leases, name, _)| leases.holder(RECONCILE_LEASE).ok().flatten().is_some_and(|holder| holder != name))
    }

    /// Lanes that other replicas hold now (a reconciliation pass waits for none).
    pub fn lanes_held_elsewhere(&self) -> anyhow::Result<u64> {
        let Some((leases, name, _)) = self.leases() else { return Ok(0) };
        leases.count_held("lane:", name)
    }

    /// Sets the most the rows may take (see [`InboxFull`]).
    pub fn set_budget(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    /// Sets how many done and refused deliveries are kept (the disk budget may keep fewer).
    pub fn set_keep_rows(&self, rows: u64) {
        self.keep_rows.store(rows.min(i64::MAX as u64) as i64, Ordering::Relaxed);
    }

    /// Runs the history's reads and its audit log's writes (`serve::history`) on the inbox's connection.
    pub fn with_db<T>(&self, work: impl FnOnce(&Connection) -> anyhow::Result<T>) -> anyhow::Result<T> {
        work(&self.db.lock().unwrap())
    }

    /// Prunes done and refused rows beyond [`Inbox::set_keep_rows`]; every thousandth id.
    fn prune_beyond_kept(&self, db: &Connection, id: i64) -> anyhow::Result<()> {
        if id % 1000 == 0 {
            db.execute("DELETE FROM inbox WHERE status IN ('done', 'refused') AND id <= ?1", [id - self.keep_rows.load(Ordering::Relaxed)])?;
            super::history::prune_keys(db)?;
            self.recount(db)?;
        }
        Ok(())
    }

    /// Bytes of every row now (queued and kept).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Finished rows pruned since the start.
    pub fn pruned(&self) -> u64 {
        self.pruned.load(Ordering::Relaxed)
    }

    /// Counts the rows' bytes again: on a shared database the other replicas add rows too, so
    /// the housekeeping calls this every few seconds (a file only this process writes stays
    /// counted as it goes).
    pub fn recount_shared(&self) -> anyhow::Result<()> {
        if self.replica.is_some() {
            self.recount(&self.db.lock().unwrap())?;
        }
        Ok(())
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
            super::history::prune_keys(db)?;
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
        super::history::stats::prune(&db, before)?;
        self.pruned.fetch_add(pruned, Ordering::Relaxed);
        super::history::prune_keys(&db)?;
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
        // One transaction: the row, its search keys and its count are one commit (one disk sync).
        let id = self.db.lock().unwrap().in_transaction(|db| self.accept_locked(db, arrival))?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Commits many deliveries in one transaction (one disk sync for all): an import, a
    /// backfill's batch. All or none are accepted.
    pub fn accept_many(&self, arrivals: &[Arrival<'_>]) -> anyhow::Result<Vec<i64>> {
        let db = self.db.lock().unwrap();
        db.execute_batch("BEGIN IMMEDIATE")?;
        let ids: anyhow::Result<Vec<i64>> = arrivals.iter().map(|arrival| self.accept_locked(&db, *arrival)).collect();
        match ids {
            Ok(ids) => {
                db.execute_batch("COMMIT")?;
                drop(db);
                self.wake.notify_all();
                Ok(ids)
            }
            Err(e) => {
                db.execute_batch("ROLLBACK")?;
                self.recount(&db)?;
                Err(e)
            }
        }
    }

    fn accept_locked(&self, db: &Connection, arrival: Arrival<'_>) -> anyhow::Result<i64> {
        let Arrival { tenant, source, name, body, kind, lane, replay_of } = arrival;
        let size = (body.len() + name.len()) as i64;
        if !self.make_room(db, size)? {
            return Err(InboxFull { bytes: self.bytes(), budget: self.budget.load(Ordering::Relaxed) }.into());
        }
        let facets = Facets::of_body(body);
        let received_ms = now_ms();
        db.execute(
            "INSERT INTO inbox (received_ms, source, name, body, kind, lane, status, replay_of, tenant, state, phone, party, email, call_id, contact_id, leg)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, 'queued', ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                now_ms(),
                source.as_str(),
                name,
                body,
                kind,
                tenant_lane(tenant, lane),
                replay_of,
                tenant,
                facets.phone,
                facets.name,
                facets.email,
                facets.call_id,
                facets.contact_id,
                facets.leg
            ],
        )?;
        let id = db.last_insert_rowid();
        super::history::add_keys(db, id, &facets.keys())?;
        super::history::stats::count_received(db, tenant, received_ms, false)?;
        self.bytes.fetch_add(size, Ordering::Relaxed);
        Ok(id)
    }

    /// Queues a failed delivery again as a new delivery (same tenant, body, kind and lane),
    /// linked both ways (`replay_of`, `replayed_by`), in one transaction: a delivery is
    /// replayed once. The answer says why not when it cannot be.
    pub fn replay(&self, id: i64) -> anyhow::Result<Result<i64, NotReplayable>> {
        let db = self.db.lock().unwrap();
        let row = match self.operable(&db, id)? {
            Ok(row) => row,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let name = format!("replay of delivery #{id}");
        let lane = row.lane.strip_prefix(&tenant_lane(&row.tenant, "")).unwrap_or(&row.lane);
        db.execute_batch("BEGIN IMMEDIATE")?;
        let queued = (|| {
            let arrival = Arrival { tenant: &row.tenant, source: row.source, name: &name, body: &row.body, kind: &row.kind, lane, replay_of: Some(id) };
            let queued = self.accept_locked(&db, arrival)?;
            db.execute("UPDATE inbox SET replayed_by = ?2 WHERE id = ?1", params![id, queued])?;
            anyhow::Ok(queued)
        })();
        match queued {
            Ok(queued) => {
                db.execute_batch("COMMIT")?;
                drop(db);
                self.wake.notify_one();
                Ok(Ok(queued))
            }
            Err(e) => {
                db.execute_batch("ROLLBACK")?;
                self.recount(&db)?;
                Err(e)
            }
        }
    }

    /// Marks a failed delivery as discarded by an operator; gives back its tenant and body
    /// (whose dead letter goes too).
    pub fn discard(&self, id: i64, reason: &str, by: &str) -> anyhow::Result<Result<(String, Vec<u8>), NotReplayable>> {
        let db = self.db.lock().unwrap();
        let row = match self.operable(&db, id)? {
            Ok(row) => row,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let discarded = json!({"reason": reason, "by": by, "at_ms": now_ms()}).to_string();
        db.execute("UPDATE inbox SET state = 'discarded', discarded = ?2 WHERE id = ?1", params![id, discarded])?;
        Ok(Ok((row.tenant, row.body)))
    }

    /// A delivery an operator may replay or discard: failed, not replayed, with its body.
    fn operable(&self, db: &Connection, id: i64) -> anyhow::Result<Result<Operable, NotReplayable>> {
        let row = db
            .query_row("SELECT tenant, source, body, coalesce(kind, ''), lane, coalesce(state, status), replayed_by FROM inbox WHERE id = ?1", [id], |r| {
                Ok((
                    Operable {
                        tenant: r.get(0)?,
                        source: Source::parse(&r.get::<_, String>(1)?).unwrap_or(Source::DialpadWebhook),
                        body: r.get(2)?,
                        kind: r.get(3)?,
                        lane: r.get(4)?,
                    },
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })
            .optional()?;
        Ok(match row {
            None => Err(NotReplayable::NotFound),
            Some((_, _, Some(by))) => Err(NotReplayable::AlreadyReplayed(by)),
            Some((_, state, None)) if state != "failed" => Err(NotReplayable::NotFailed(state)),
            Some((row, _, None)) if row.body.is_empty() || row.lane.is_empty() => Err(NotReplayable::NotFailed("refused".into())),
            Some((row, _, None)) => Ok(row),
        })
    }

    /// Records a delivery refused on arrival, for the console, with the first
    /// [`REFUSED_BODY_BYTES`] of its body (enough to see what was sent; not labelled or
    /// searchable, since nothing vouches for it).
    pub fn refuse(&self, tenant: &str, source: Source, name: &str, body: &[u8], error: &Value) -> anyhow::Result<i64> {
        let db = self.db.lock().unwrap();
        let now = now_ms();
        let outcome = json!({"event": name, "outcome": "refused", "error": error});
        let labels = Labels::of("refused", &outcome);
        let kept = &body[..body.len().min(REFUSED_BODY_BYTES)];
        db.execute(
            "INSERT INTO inbox (received_ms, source, name, body, lane, status, outcome, finished_ms, duration_ms, tenant, state, words, error)
             VALUES (?1, ?2, ?3, ?4, '', 'refused', ?5, ?1, 0, ?6, 'refused', ?7, ?8)",
            params![now, source.as_str(), name, kept, outcome.to_string(), tenant, labels.words, labels.error],
        )?;
        let id = db.last_insert_rowid();
        super::history::stats::count_received(&db, tenant, now, true)?;
        self.bytes.fetch_add(db.query_row(&format!("SELECT {ROW_BYTES} FROM inbox WHERE id = ?1"), [id], |r| r.get::<_, i64>(0))?, Ordering::Relaxed);
        self.prune_beyond_kept(&db, id)?;
        // Refusals count against the budget like any row: they take room from kept rows.
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
            let most = if self.replica.is_some() { SHARED_POLL } else { Duration::from_secs(1) };
            let wait = wait.unwrap_or(most).min(most);
            running = self.wake.wait_timeout(running, wait).unwrap().0;
        }
    }

    /// The next runnable delivery, or how long until a delayed one is due: among each lane's
    /// oldest queued delivery (a lane's later ones wait behind it), the oldest whose lane is
    /// free and which is due.
    fn next_runnable(&self, running: &Running) -> anyhow::Result<(Option<Delivery>, Option<Duration>)> {
        if self.paused_by_other() {
            return Ok((None, None));
        }
        let db = self.db.lock().unwrap();
        let now = now_ms();
        // A skip-scan: one index seek per lane, whatever the depth of each.
        // On a shared database, lanes another replica holds are left out at once.
        let held_elsewhere = match self.replica {
            Some(_) => "AND NOT EXISTS (SELECT 1 FROM leases WHERE name = 'lane:' || i.lane AND until_ms > ?1)",
            None => "AND ?1 IS NOT NULL",
        };
        let mut query = db.prepare_cached(&format!(
            "WITH RECURSIVE lanes(lane) AS (
                 SELECT min(lane) FROM inbox WHERE status = 'queued'
                 UNION ALL
                 SELECT (SELECT min(lane) FROM inbox WHERE status = 'queued' AND lane > lanes.lane) FROM lanes WHERE lanes.lane IS NOT NULL)
             SELECT i.id, i.source, i.name, i.lane, i.attempts, i.received_ms, i.replay_of, i.not_before_ms, i.tenant
             FROM lanes JOIN inbox i ON i.id = (SELECT min(id) FROM inbox WHERE status = 'queued' AND lane = lanes.lane)
             WHERE lanes.lane IS NOT NULL {held_elsewhere} ORDER BY i.id"
        ))?;
        let mut rows = query.query([now])?;
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
            if !self.take_lane(&db, &lane, id)? {
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

    /// On a shared database: takes `lane`'s lease for this replica, and keeps it only if `id`
    /// is still the lane's next delivery once it is held (another replica may have finished it
    /// in between). Always true for a file only this process uses.
    fn take_lane(&self, db: &Connection, lane: &str, id: i64) -> anyhow::Result<bool> {
        let Some((leases, name, ttl)) = self.leases() else { return Ok(true) };
        let lease = format!("lane:{lane}");
        if !leases.try_hold(&lease, name, ttl)? {
            return Ok(false);
        }
        let head: Option<i64> = db.query_row("SELECT min(id) FROM inbox WHERE status = 'queued' AND lane = ?1", [lane], |r| r.get(0))?;
        if head != Some(id) {
            leases.release(&lease, name)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether this replica still holds `lane` (always, for a file only this process uses): a
    /// replica that stalled past its lease must not record over the one that took over.
    fn holds_lane(&self, lane: &str) -> bool {
        match self.leases() {
            None => true,
            Some((leases, name, _)) => leases.holder(&format!("lane:{lane}")).ok().flatten().is_some_and(|holder| holder == name),
        }
    }

    /// Records the end of a handling and frees the lane.
    pub fn finish(&self, delivery: &Delivery, handled: &Handled) -> anyhow::Result<()> {
        if !self.holds_lane(&delivery.lane) {
            tracing::warn!(
                "serve: delivery #{} was taken over by another replica (this one held its lane past the lease); not recording this handling",
                delivery.id
            );
            self.release(delivery);
            return Ok(());
        }
        {
            let db = self.db.lock().unwrap();
            db.in_transaction(|db| self.record_try(db, delivery, handled, None))?;
            self.prune_beyond_kept(&db, delivery.id)?;
        }
        self.release(delivery);
        Ok(())
    }

    /// Puts a delivery back for another try after `delay`, keeping what the last try did.
    pub fn retry_later(&self, delivery: &Delivery, handled: &Handled, delay: Duration) -> anyhow::Result<()> {
        if !self.holds_lane(&delivery.lane) {
            tracing::warn!("serve: delivery #{} was taken over by another replica; not recording this try", delivery.id);
            self.release(delivery);
            return Ok(());
        }
        {
            let db = self.db.lock().unwrap();
            db.in_transaction(|db| self.record_try(db, delivery, handled, Some(now_ms() + delay.as_millis() as i64)))?;
        }
        self.release(delivery);
        Ok(())
    }

    /// Stores one handling: its status, labels, the exchanges added to the earlier tries',
    /// and the try itself; `retry_at` puts it back in the queue.
    fn record_try(&self, db: &Connection, delivery: &Delivery, handled: &Handled, retry_at: Option<i64>) -> anyhow::Result<()> {
        let attempt = delivery.attempts + 1;
        let labels = Labels::of(handled.status.as_str(), &handled.outcome);
        // What the row holds now, and the size of the texts this try replaces (as `ROW_BYTES`
        // counts them: SQLite's `length` of a text is in characters).
        let (http, tries, replaced): (Option<String>, Option<String>, i64) = db.query_row(
            "SELECT http, tries, coalesce(length(outcome), 0) + coalesce(length(plan), 0) + coalesce(length(http), 0) + coalesce(length(tries), 0)
             FROM inbox WHERE id = ?1",
            [delivery.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut http: Vec<Value> = http.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        // A row from before the tries were kept holds only its last try's exchanges.
        if tries.is_none() {
            http.clear();
        }
        http.extend(handled.http.as_array().into_iter().flatten().map(|exchange| {
            let mut exchange = exchange.clone();
            exchange["attempt"] = attempt.into();
            exchange
        }));
        let mut tries: Vec<Value> = tries.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let failing = |state: &str| matches!(state, "failed" | "retrying");
        if failing(&labels.state) && !tries.iter().any(|t| failing(t["state"].as_str().unwrap_or_default())) {
            super::history::stats::count_failed(db, &delivery.tenant, delivery.received_ms)?;
        }
        let now = now_ms();
        tries.push(json!({"attempt": attempt, "at_ms": now, "state": labels.state, "words": labels.words, "duration_ms": handled.duration_ms}));
        let (outcome, plan) = (handled.outcome.to_string(), handled.plan.to_string());
        let (http, tries) = (Value::Array(http).to_string(), Value::Array(tries).to_string());
        let written: usize = [&outcome, &plan, &http, &tries].iter().map(|text| text.chars().count()).sum();
        let (status, finished, not_before) = match retry_at {
            Some(at) => (Status::Queued.as_str(), None, at),
            None => (handled.status.as_str(), Some(now), 0),
        };
        db.execute(
            "UPDATE inbox SET status = ?2, outcome = ?3, plan = ?4, http = ?5, finished_ms = ?6, duration_ms = ?7, attempts = attempts + 1,
                 not_before_ms = ?8, tries = ?9, state = ?10, words = ?11, error = ?12,
                 contact_id = coalesce(?13, contact_id), note_id = coalesce(?14, note_id), call_entry_id = coalesce(?15, call_entry_id),
                 call_id = coalesce(call_id, ?16)
             WHERE id = ?1",
            params![
                delivery.id,
                status,
                outcome,
                plan,
                http,
                finished,
                handled.duration_ms as i64,
                not_before,
                tries,
                labels.state,
                labels.words,
                labels.error,
                labels.contact_id,
                labels.note_id,
                labels.call_entry_id,
                labels.call_id,
            ],
        )?;
        // What the handling learned is searchable too: the HighLevel contact, the call.
        let keys: Vec<String> =
            [labels.contact_id.map(|id| format!("contact:{id}")), labels.call_id.map(|id| format!("call:{id}"))].into_iter().flatten().collect();
        super::history::add_keys(db, delivery.id, &keys)?;
        self.bytes.fetch_add(written as i64 - replaced, Ordering::Relaxed);
        Ok(())
    }

    fn release(&self, delivery: &Delivery) {
        if let Some((leases, name, _)) = self.leases() {
            if let Err(e) = leases.release(&format!("lane:{}", delivery.lane), name) {
                // Its time runs out instead.
                tracing::warn!("serve: releasing the lane of delivery #{}: {e:#}", delivery.id);
            }
        }
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
        let rows = query.query_map([limit], |r| row_json(r, Detail::Handling))?;
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
        self.with_db(|db| super::history::query::get(db, id))
    }
}

/// Why a delivery cannot be replayed or discarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReplayable {
    NotFound,
    /// Only a failed delivery is: this one's state.
    NotFailed(String),
    /// Already replayed, by this delivery.
    AlreadyReplayed(i64),
}

impl std::fmt::Display for NotReplayable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReplayable::NotFound => write!(f, "no such delivery (it may have been pruned)"),
            NotReplayable::NotFailed(state) => write!(f, "it is {state}, not failed: only a failed delivery is replayed or discarded"),
            NotReplayable::AlreadyReplayed(by) => write!(f, "it was already replayed, as delivery #{by}"),
        }
    }
}

/// What a replay or a discard reads of a delivery.
struct Operable {
    tenant: String,
    source: Source,
    body: Vec<u8>,
    kind: String,
    lane: String,
}

/// A lane of one tenant: two tenants' deliveries about the same phone never wait for each other.
fn tenant_lane(tenant: &str, lane: &str) -> String {
    if tenant.is_empty() {
        lane.to_string()
    } else {
        format!("tenant/{tenant}/{lane}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::query::{self, Filter};
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/dialpad").join(name)).unwrap()
    }

    fn failure(status: u16) -> Handled {
        Handled {
            status: Status::Failed,
            outcome: json!({"outcome": "failed", "error": {"type": "upstream", "status": status, "message": "refused"}, "plain": "Reconnect HighLevel."}),
            plan: Value::Null,
            http: json!([{"method": "POST", "url": "http://127.0.0.1/contacts/", "status": status}]),
            duration_ms: 2,
        }
    }

    fn page(inbox: &Inbox, filter: Filter, before: Option<i64>, limit: u32) -> (Vec<i64>, Option<i64>) {
        let page = inbox.with_db(|db| query::page(db, &filter, before, limit)).unwrap();
        (page.rows.iter().map(|r| r["id"].as_i64().unwrap()).collect(), page.next_before)
    }

    /// Filters, search and paging over labelled deliveries: a call is found by its caller's
    /// number in any format, by its call id, and by the HighLevel contact its handling found.
    #[test]
    fn the_history_filters_searches_and_pages_on_the_server() {
        let inbox = Inbox::open(&tempfile::tempdir().unwrap().keep().join("state.db")).unwrap();
        let call = fixture("call_inbound_hangup_completed.json");
        let sms = fixture("sms_inbound.json");
        let other = br#"{"call_id": 7000000000000001, "external_number": "+14045550100", "state": "hangup"}"#.to_vec();
        let arrival = |tenant: &'static str, body: &'static [u8], kind: &'static str| Arrival {
            tenant,
            source: Source::DialpadWebhook,
            name: "Dialpad webhook",
            body,
            kind,
            lane: "phone:x",
            replay_of: None,
        };
        let (call, sms, other): (&'static [u8], &'static [u8], &'static [u8]) = (call.leak(), sms.leak(), other.leak());
        let mut arrivals = Vec::new();
        for n in 0..30 {
            arrivals.push(arrival(if n % 2 == 0 { "north" } else { "south" }, other, "call"));
        }
        arrivals.push(arrival("north", call, "call"));
        arrivals.push(arrival("north", sms, "sms"));
        let ids = inbox.accept_many(&arrivals).unwrap();
        let (call_id, sms_id) = (ids[30], ids[31]);
        // Handle the call (it finds contact c-77) and fail the SMS.
        let delivery = |id: i64| Delivery {
            id,
            tenant: "north".into(),
            source: Source::DialpadWebhook,
            name: String::new(),
            body: Vec::new(),
            lane: "tenant/north/phone:x".into(),
            attempts: 0,
            received_ms: 0,
            replay_of: None,
        };
        let synced = Handled {
            status: Status::Done,
            outcome: json!({"outcome": "synced", "summary": "inbound call → note", "event_key": "call:6011482093420544:hangup", "contact_id": "c-77", "note_id": "n-1"}),
            plan: Value::Null,
            http: json!([]),
            duration_ms: 3,
        };
        inbox.finish(&delivery(call_id), &synced).unwrap();
        inbox.finish(&delivery(sms_id), &failure(401)).unwrap();

        let find = |q: &str| page(&inbox, Filter { q: Some(q.into()), ..Filter::default() }, None, 50).0;
        for typed in ["(312) 555-0187", "+1 312-555-0187", "3125550187"] {
            assert_eq!(find(typed), [sms_id, call_id], "{typed}");
        }
        assert_eq!(find("6011482093420544"), [call_id]);
        assert_eq!(find("c-77"), [call_id]);
        assert_eq!(find("nobody@example.com"), Vec::<i64>::new());
        let failed = Filter { state: Some("failed".into()), ..Filter::default() };
        assert_eq!(page(&inbox, failed.clone(), None, 50).0, [sms_id]);
        let south = Filter { tenant: Some("south".into()), ..Filter::default() };
        let (first, next) = page(&inbox, south.clone(), None, 10);
        assert_eq!((first.len(), first[0], next), (10, ids[29], Some(ids[11])));
        let (second, end) = page(&inbox, south, next, 10);
        assert_eq!((second, end), (vec![ids[9], ids[7], ids[5], ids[3], ids[1]], None));
        let row = inbox.get(call_id).unwrap().unwrap();
        assert_eq!(
            (row["state"].as_str(), row["party"]["phone"].as_str(), row["call_id"].as_str(), row["contact_id"].as_str()),
            (Some("synced"), Some("+13125550187"), Some("6011482093420544"), Some("c-77"))
        );
        let sms_row = inbox.get(sms_id).unwrap().unwrap();
        assert_eq!((sms_row["error"].as_str(), sms_row["words"].as_str()), (Some("upstream:401"), Some("Reconnect HighLevel.")));
        let bad = Filter { state: Some("lost".into()), ..Filter::default() };
        assert!(inbox.with_db(|db| query::page(db, &bad, None, 5)).unwrap_err().to_string().contains("there is no state \"lost\""));
    }

    /// A failed delivery is replayed once, linked both ways; a second replay and a discard of a
    /// replayed one are refused; a discard keeps its reason and who made it.
    #[test]
    fn a_failed_delivery_is_replayed_once_and_linked_or_discarded_with_its_reason() {
        let inbox = Inbox::open(&tempfile::tempdir().unwrap().keep().join("state.db")).unwrap();
        let accept = |body: &'static [u8]| {
            inbox.accept(Arrival { tenant: "north", source: Source::DialpadWebhook, name: "n", body, kind: "call", lane: "phone:+1", replay_of: None }).unwrap()
        };
        let (a, b) = (accept(b"{\"call_id\": 1}"), accept(b"{\"call_id\": 2}"));
        for _ in 0..2 {
            let claimed = inbox.claim().unwrap().unwrap();
            inbox.finish(&claimed, &failure(503)).unwrap();
        }
        assert!(inbox.replay(b).unwrap().is_ok());
        let replayed_b = inbox.get(b).unwrap().unwrap()["replayed_by"].as_i64().unwrap();
        let new = inbox.get(replayed_b).unwrap().unwrap();
        assert_eq!((new["replay_of"].as_i64(), new["state"].as_str(), new["lane"].as_str()), (Some(b), Some("queued"), Some("tenant/north/phone:+1")));
        assert_eq!(inbox.replay(b).unwrap(), Err(NotReplayable::AlreadyReplayed(replayed_b)));
        assert_eq!(inbox.replay(replayed_b).unwrap(), Err(NotReplayable::NotFailed("queued".into())));
        assert_eq!(inbox.replay(9999).unwrap(), Err(NotReplayable::NotFound));
        let (tenant, body) = inbox.discard(a, "test call", "Dana (session 01ab)").unwrap().unwrap();
        assert_eq!((tenant.as_str(), body.as_slice()), ("north", b"{\"call_id\": 1}".as_slice()));
        let row = inbox.get(a).unwrap().unwrap();
        assert_eq!(
            (row["state"].as_str(), row["discarded"]["reason"].as_str(), row["discarded"]["by"].as_str()),
            (Some("discarded"), Some("test call"), Some("Dana (session 01ab)"))
        );
        assert_eq!(inbox.discard(a, "again", "x").unwrap(), Err(NotReplayable::NotFailed("discarded".into())));
        assert_eq!(inbox.with_db(query::open_failure_count).unwrap(), 0);
    }

    /// Each try is kept with its exchanges; a refusal keeps its reason and the first bytes of
    /// what was sent.
    #[test]
    fn retries_keep_every_try_and_a_refusal_keeps_its_reason_and_body() {
        let inbox = Inbox::open(&tempfile::tempdir().unwrap().keep().join("state.db")).unwrap();
        inbox.accept(Arrival { tenant: "", source: Source::DialpadWebhook, name: "n", body: b"{}", kind: "call", lane: "l", replay_of: None }).unwrap();
        let claimed = inbox.claim().unwrap().unwrap();
        inbox.retry_later(&claimed, &Handled { status: Status::Queued, ..failure(503) }, Duration::ZERO).unwrap();
        let row = inbox.get(claimed.id).unwrap().unwrap();
        assert_eq!((row["state"].as_str(), row["error"].as_str()), (Some("retrying"), Some("upstream:503")));
        let again = inbox.claim().unwrap().unwrap();
        inbox.finish(&again, &handled(Status::Done)).unwrap();
        let row = inbox.get(claimed.id).unwrap().unwrap();
        let tries: Vec<(i64, &str)> = row["tries"].as_array().unwrap().iter().map(|t| (t["attempt"].as_i64().unwrap(), t["state"].as_str().unwrap())).collect();
        assert_eq!(tries, [(1, "retrying"), (2, "synced")]);
        assert_eq!(row["http"].as_array().unwrap().iter().map(|x| x["attempt"].as_i64().unwrap()).collect::<Vec<_>>(), [1]);
        assert_eq!((row["state"].as_str(), row["error"].as_str()), (Some("synced"), None));
        let sent = vec![b'x'; 5000];
        let error = json!({"type": "invalid-signature", "message": "bad", "plain": "Refused: not signed as configured."});
        let id = inbox.refuse("", Source::DialpadWebhook, "Dialpad webhook", &sent, &error).unwrap();
        let row = inbox.get(id).unwrap().unwrap();
        assert_eq!((row["state"].as_str(), row["words"].as_str()), (Some("refused"), Some("Refused: not signed as configured.")));
        assert_eq!(row["body"].as_str().unwrap().len(), REFUSED_BODY_BYTES);
    }

    /// The charts' counts follow the rows: each delivery received once, each failure at its
    /// first failed try, each refusal; a retry that fails again counts no second failure.
    #[test]
    fn the_charts_count_deliveries_failures_and_refusals_by_minute() {
        let inbox = Inbox::open(&tempfile::tempdir().unwrap().keep().join("state.db")).unwrap();
        let arrival =
            |lane: &'static str| Arrival { tenant: "north", source: Source::DialpadWebhook, name: "n", body: b"{}", kind: "call", lane, replay_of: None };
        inbox.accept_many(&[arrival("a"), arrival("b"), arrival("c")]).unwrap();
        inbox.refuse("north", Source::DialpadWebhook, "n", b"x", &json!({"type": "invalid-signature", "message": "m"})).unwrap();
        let first = inbox.claim().unwrap().unwrap();
        inbox.retry_later(&first, &Handled { status: Status::Queued, ..failure(503) }, Duration::ZERO).unwrap();
        let again = inbox.claim().unwrap().unwrap();
        assert_eq!(again.id, first.id);
        inbox.finish(&again, &failure(503)).unwrap();
        let second = inbox.claim().unwrap().unwrap();
        inbox.finish(&second, &failure(401)).unwrap();
        let now = now_ms();
        let counts = |tenant: Option<&str>| {
            let stats = inbox.with_db(|db| super::super::history::stats::stats(db, tenant, now - 3_600_000, now + 60_000, 70)).unwrap();
            let sum = |key: &str| stats[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>();
            (sum("received"), sum("failed"), sum("refused"), stats["bucket_ms"].as_i64().unwrap())
        };
        assert_eq!(counts(Some("north")), (4, 2, 1, 60_000));
        assert_eq!(counts(Some("south")), (0, 0, 0, 60_000));
        assert_eq!(counts(None), (4, 2, 1, 60_000));
        // Made again from the rows, the counts are the same.
        inbox.with_db(|db| Ok(super::super::history::stats::recount(db)?)).unwrap();
        assert_eq!(counts(None), (4, 2, 1, 60_000));
    }

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
