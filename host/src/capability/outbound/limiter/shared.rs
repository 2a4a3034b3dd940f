//! The limiter's places in the host's database, for `serve` replicas sharing one PostgreSQL
//! database: each replica's limiter for a location takes its places from the same rows, so the
//! replicas together send at most `max` requests in any window, as one process would.
//!
//! A place is a row of `rate_places`: sent when taken, answered when its slot is dropped, and
//! free `window` after its answer (`free_ms`). A place whose answer never comes (its replica
//! died, or lost the database) counts as answered `give_up` after it was sent, so it frees by
//! itself. Taking a place is one transaction that first locks its key's row in `rate_keys`
//! (`SELECT … FOR UPDATE` on PostgreSQL; SQLite has one writer at a time): two replicas taking
//! the last place of a window take it one after the other, and the second waits. Times are the
//! database's clock, so the replicas' clocks need not agree.
//!
//! The `postgres` client blocks (and must not run on an async thread), so every statement runs
//! on tokio's blocking threads; a waiting request sleeps until the earliest place frees, at most
//! [`POLL`] at a time, and one request per key and process asks the database at a time.

use crate::storage::db::{params, Backend, Db, Location, OptionalExtension as _};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS rate_keys (key TEXT PRIMARY KEY);
     CREATE TABLE IF NOT EXISTS rate_places (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, sent_ms INTEGER NOT NULL, answered_ms INTEGER, free_ms INTEGER NOT NULL);
     CREATE INDEX IF NOT EXISTS rate_places_by_key ON rate_places (key, free_ms);";

/// The longest a waiting request sleeps before asking again.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// Connections to a PostgreSQL database per process (a SQLite file has one writer: one).
const CONNECTIONS: usize = 4;

/// Every this many places taken, places of every key that are free are deleted (a key's own
/// are deleted whenever one of its places is taken).
const SWEEP_EVERY: u64 = 512;

/// The database's clock in milliseconds since the epoch.
fn clock(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "(extract(epoch from clock_timestamp()) * 1000)::bigint",
        Backend::Sqlite => "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)",
    }
}

/// A few connections to one database, opened when first used (on a blocking thread).
pub(super) struct RateStore {
    location: Location,
    connections: Vec<Mutex<Option<Db>>>,
    next: AtomicUsize,
    /// Per key, the turn to ask the database: a burst waiting in one process polls once.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    taken: AtomicU64,
}

impl RateStore {
    /// Connections of its own (a replica of its own).
    pub(super) fn new(location: &Location) -> Arc<RateStore> {
        let count = if location.is_shared() { CONNECTIONS } else { 1 };
        Arc::new(RateStore {
            location: location.clone(),
            connections: (0..count).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            turns: Mutex::default(),
            taken: AtomicU64::new(0),
        })
    }

    /// This process's connections to `location`.
    pub(super) fn of_process(location: &Location) -> Arc<RateStore> {
        static STORES: OnceLock<Mutex<HashMap<String, Arc<RateStore>>>> = OnceLock::new();
        let name = match location {
            Location::File(path) => format!("file:{}", path.display()),
            Location::Postgres(url) => format!("postgres:{url}"),
        };
        STORES.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner()).entry(name).or_insert_with(|| RateStore::new(location)).clone()
    }

    fn turn(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.turns.lock().unwrap_or_else(|e| e.into_inner()).entry(key.to_string()).or_default().clone()
    }

    /// Runs `work` on a free connection (blocking: call it on a blocking thread).
    fn with_db<T>(&self, work: impl FnOnce(&Db) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let count = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let mut held = (0..count).find_map(|i| self.connections[(start + i) % count].try_lock().ok());
        let mut connection = match held.take() {
            Some(connection) => connection,
            None => self.connections[start].lock().unwrap_or_else(|e| e.into_inner()),
        };
        if connection.is_none() {
            let db = Db::open(&self.location, "")?;
            db.migrate("rate_limits", &[crate::storage::db::Step::Sql(SCHEMA)])?;
            *connection = Some(db);
        }
        work(connection.as_ref().expect("opened just above"))
    }

    /// Takes a place under `key` if fewer than `max` are held; otherwise how long until the
    /// earliest held one frees.
    fn take(&self, key: &str, max: usize, window_ms: i64, give_up_ms: i64) -> anyhow::Result<Take> {
        let took = self.with_db(|db| {
            let clock = clock(db.backend());
            let lock = match db.backend() {
                Backend::Postgres => "SELECT key FROM rate_keys WHERE key = ?1 FOR UPDATE",
                Backend::Sqlite => "SELECT key FROM rate_keys WHERE key = ?1",
            };
            Ok(db.in_transaction(|db| {
                if db.query_row(lock, [key], |r| r.get::<_, String>(0)).optional()?.is_none() {
                    // The key's first place: its row, then its lock (a replica that made the
                    // row at the same moment makes this one wait for its commit).
                    db.execute("INSERT OR IGNORE INTO rate_keys (key) VALUES (?1)", [key])?;
                    db.query_row(lock, [key], |r| r.get::<_, String>(0))?;
                }
                // Read after the lock: the places other replicas took before it are counted.
                let count = format!(
                    "SELECT c.now, count(CASE WHEN p.free_ms > c.now THEN 1 END), min(CASE WHEN p.free_ms > c.now THEN p.free_ms END), count(p.id)
                     FROM (SELECT {clock} AS now) AS c LEFT JOIN rate_places AS p ON p.key = ?1 GROUP BY c.now"
                );
                let (now, held, earliest, rows): (i64, i64, Option<i64>, i64) =
                    db.query_row(&count, [key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                if rows > held {
                    db.execute("DELETE FROM rate_places WHERE key = ?1 AND free_ms <= ?2", params![key, now])?;
                }
                if (held as usize) < max {
                    let id: i64 = db.query_row(
                        "INSERT INTO rate_places (key, sent_ms, free_ms) VALUES (?1, ?2, ?3) RETURNING id",
                        params![key, now, now + give_up_ms + window_ms],
                        |r| r.get(0),
                    )?;
                    return Ok::<_, crate::storage::db::Error>(Take::Taken(id));
                }
                Ok(Take::Wait(Duration::from_millis(earliest.map_or(1, |at| at - now).max(1) as u64)))
            })?)
        })?;
        if matches!(took, Take::Taken(_)) && self.taken.fetch_add(1, Ordering::Relaxed).is_multiple_of(SWEEP_EVERY) {
            // Keys no longer used (a tenant removed) leave their places behind otherwise.
            let swept = self.with_db(|db| Ok(db.execute(&format!("DELETE FROM rate_places WHERE free_ms <= {}", clock(db.backend())), [])?));
            if let Err(e) = swept {
                tracing::debug!("rate limiter: deleting free places: {e:#}");
            }
        }
        Ok(took)
    }

    /// Marks place `id` answered now: it frees `window` from now.
    fn release(&self, id: i64, window_ms: i64) -> anyhow::Result<()> {
        self.with_db(|db| {
            let sql =
                format!("UPDATE rate_places SET answered_ms = c.now, free_ms = c.now + ?2 FROM (SELECT {} AS now) AS c WHERE id = ?1", clock(db.backend()));
            db.execute(&sql, params![id, window_ms])?;
            Ok(())
        })
    }
}

enum Take {
    Taken(i64),
    Wait(Duration),
}

/// A limiter's places in the database: its key, and how long an unanswered place counts as out.
pub(super) struct SharedPlaces {
    store: Arc<RateStore>,
    key: String,
    give_up: Duration,
}

impl std::fmt::Debug for SharedPlaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPlaces").field("store", &self.store.location.describe()).field("key", &self.key).field("give_up", &self.give_up).finish()
    }
}

impl SharedPlaces {
    pub(super) fn new(store: Arc<RateStore>, key: String, give_up: Duration) -> SharedPlaces {
        SharedPlaces { store, key, give_up }
    }

    pub(super) fn key(&self) -> &str {
        &self.key
    }

    /// Waits for a place under this key; an error when the database cannot be asked.
    pub(super) async fn acquire(&self, max: usize, window: Duration) -> anyhow::Result<SharedSlot> {
        let window_ms = window.as_millis().min(i64::MAX as u128 / 4) as i64;
        let give_up_ms = self.give_up.as_millis().min(i64::MAX as u128 / 4) as i64;
        let turn = self.store.turn(&self.key);
        let _turn = turn.lock().await;
        loop {
            let (store, key) = (self.store.clone(), self.key.clone());
            // The slot is made on the blocking thread: when this future is dropped while the
            // database is being asked (a bounded wait ran out), a place taken is released.
            let took = tokio::task::spawn_blocking(move || -> anyhow::Result<Result<SharedSlot, Duration>> {
                Ok(match store.take(&key, max, window_ms, give_up_ms)? {
                    Take::Taken(id) => Ok(SharedSlot { store, id, window_ms }),
                    Take::Wait(wait) => Err(wait),
                })
            })
            .await
            .map_err(|e| anyhow::anyhow!("the rate limiter's database task failed: {e}"))??;
            match took {
                Ok(slot) => return Ok(slot),
                Err(wait) => tokio::time::sleep(wait.min(POLL)).await,
            }
        }
    }
}

/// A place taken in the database; dropping it marks it answered (on a blocking thread).
pub(super) struct SharedSlot {
    store: Arc<RateStore>,
    id: i64,
    window_ms: i64,
}

impl std::fmt::Debug for SharedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSlot").field("id", &self.id).finish()
    }
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        let (store, id, window_ms) = (self.store.clone(), self.id, self.window_ms);
        let release = move || {
            // Not marked: the place frees `give_up` after it was sent instead.
            if let Err(e) = store.release(id, window_ms) {
                tracing::warn!("rate limiter: releasing a place in {}: {e:#}", store.location.describe());
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}

/// Says, at most once a minute, that the shared places could not be used.
pub(super) fn warn_unreachable(e: &anyhow::Error) {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = crate::serve::inbox::now_ms();
    let last = LAST.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60_000 && LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        tracing::warn!("rate limiter: the shared database cannot be used ({e:#}); this replica keeps the limit on its own meanwhile");
    }
}
