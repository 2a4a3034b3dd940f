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
            *connection = Some(Db::open(&self.location, SCHEMA)?);
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

#[cfg(test)]
pub(crate) mod tests {
    use super::super::{RateLimiter, RateSlot};
    use super::*;
    use std::time::Instant;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    /// Two replicas (limiters with connections of their own) on one database share one limit:
    /// with 5 places, 3 taken by one and 2 by the other, a 6th waits until a window after an
    /// answer, and a place whose replica never answers frees `give_up` after it was sent.
    pub(crate) fn two_replicas_share_one_window(store: &Location) {
        let window = Duration::from_millis(400);
        let give_up = Duration::from_millis(1500);
        let key = format!("test {}", crate::serve::inbox::now_ms());
        let a = Arc::new(RateLimiter::shared(store, key.clone(), 5, window, give_up));
        let b = Arc::new(RateLimiter::shared(store, key.clone(), 5, window, give_up));
        runtime().block_on(async {
            let first_sent = Instant::now();
            let mut held: Vec<RateSlot> = Vec::new();
            for limiter in [&a, &a, &a, &b, &b] {
                held.push(limiter.acquire_within(Duration::from_secs(5)).await.expect("a free place"));
            }
            // The window is full across both: neither replica gets a 6th.
            assert!(a.acquire_within(Duration::from_millis(150)).await.is_none(), "a 6th place at the first replica");
            assert!(b.acquire_within(Duration::from_millis(150)).await.is_none(), "a 6th place at the second replica");
            let sixth = tokio::spawn({
                let b = b.clone();
                async move {
                    let slot = b.acquire().await;
                    (Instant::now(), slot)
                }
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(!sixth.is_finished());
            // One answer at the first replica frees one place, a window later, at the second.
            let answered = Instant::now();
            drop(held.remove(0));
            let (started, sixth_slot) = sixth.await.unwrap();
            let after = started - answered;
            assert!(after + Duration::from_millis(2) >= window, "the 6th went out {after:?} after the answer, within the window");
            assert!(after < window + Duration::from_millis(300), "the 6th waited {after:?}");
            assert!(a.acquire_within(Duration::from_millis(100)).await.is_none(), "a 7th place");

            // The first replica dies with its two places out: they are not answered, ever.
            let (a_first, a_second) = (held.remove(0), held.remove(0));
            std::mem::forget(a_first);
            std::mem::forget(a_second);
            drop(held); // the second replica's two answered
            drop(sixth_slot);
            // The three answered free a window after their answers; the two dead ones count
            // until `give_up + window` after they were sent.
            tokio::time::sleep(window + Duration::from_millis(100)).await;
            let mut again = Vec::new();
            for _ in 0..3 {
                again.push(b.acquire_within(Duration::from_millis(100)).await.expect("an answered place freed"));
            }
            assert!(b.acquire_within(Duration::from_millis(50)).await.is_none(), "a dead replica's place freed before its bound");
            let freed = b.acquire_within(give_up + window).await.expect("a dead replica's place freed at its bound");
            let after = first_sent.elapsed();
            assert!(after + Duration::from_millis(2) >= give_up + window, "a dead replica's place freed {after:?} after it was sent");
            // Its other place, sent just after, frees just after.
            let other = b.acquire_within(Duration::from_millis(100)).await.expect("the dead replica's other place");
            assert!(a.acquire_within(Duration::from_millis(100)).await.is_none(), "a 6th place");
            // Freed places left the table: the five held are its rows.
            assert_eq!(rows(store, &key).await, 5);
            drop((again, freed, other));
        });
    }

    /// The rows of `key` in the database.
    async fn rows(store: &Location, key: &str) -> i64 {
        let (store, key) = (store.clone(), key.to_string());
        let count = move || Db::open(&store, SCHEMA).unwrap().query_row("SELECT count(*) FROM rate_places WHERE key = ?1", [key], |r| r.get(0)).unwrap();
        tokio::task::spawn_blocking(count).await.unwrap()
    }

    /// `total` places through `replicas` limiters on one key: every window of `window` holds
    /// at most `max` sends (answered at once). The sends' times, sorted.
    pub(crate) fn burst(store: &Location, replicas: usize, total: usize, max: u32, window: Duration) -> Vec<Instant> {
        let key = format!("burst {}", crate::serve::inbox::now_ms());
        let limiters: Vec<Arc<RateLimiter>> =
            (0..replicas).map(|_| Arc::new(RateLimiter::shared(store, key.clone(), max, window, Duration::from_secs(30)))).collect();
        let mut sent = runtime().block_on(async {
            let tasks: Vec<_> = (0..total)
                .map(|n| {
                    let limiter = limiters[n % replicas].clone();
                    tokio::spawn(async move {
                        let slot = limiter.acquire().await;
                        let at = Instant::now();
                        drop(slot);
                        at
                    })
                })
                .collect();
            let mut sent = Vec::new();
            for task in tasks {
                sent.push(task.await.unwrap());
            }
            sent
        });
        sent.sort();
        sent
    }

    /// The most sends in any window (each send starts one).
    pub(crate) fn most_in_a_window(sent: &[Instant], window: Duration) -> usize {
        (0..sent.len()).map(|i| sent[i..].iter().take_while(|t| **t < sent[i] + window).count()).max().unwrap_or(0)
    }

    #[test]
    fn two_replicas_on_one_sqlite_file_share_one_window() {
        let dir = tempfile::tempdir().unwrap();
        two_replicas_share_one_window(&Location::File(dir.path().join("state.db")));
    }

    #[test]
    fn a_burst_through_three_replicas_on_one_sqlite_file_keeps_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let window = Duration::from_millis(500);
        let sent = burst(&Location::File(dir.path().join("state.db")), 3, 45, 15, window);
        assert_eq!(sent.len(), 45);
        assert!(most_in_a_window(&sent, window) <= 15, "{} in one window", most_in_a_window(&sent, window));
        // Three windows' worth: the last went out after two windows.
        assert!(sent[44] - sent[0] >= window * 2);
    }

    /// Against PostgreSQL, when `DIALPAD_GHL_TEST_POSTGRES` names a database (a URL).
    #[test]
    fn on_postgresql_when_given() {
        let Ok(url) = std::env::var("DIALPAD_GHL_TEST_POSTGRES") else { return };
        let store = Location::Postgres(url);
        two_replicas_share_one_window(&store);
        let window = Duration::from_secs(2);
        let started = Instant::now();
        let sent = burst(&store, 3, 300, 100, window);
        let most = most_in_a_window(&sent, window);
        eprintln!("300 places through 3 replicas, 100 per 2 s: at most {most} in a window, {:?} in all", started.elapsed());
        assert!(most <= 100, "{most} in one window");
        // What a place costs when one is free: a transaction to take it, one to release it.
        let limiter = Arc::new(RateLimiter::shared(&store, format!("cost {}", crate::serve::inbox::now_ms()), 10_000, window, window));
        let (count, took) = runtime().block_on(async {
            drop(limiter.acquire().await);
            let started = Instant::now();
            for _ in 0..500 {
                drop(limiter.acquire().await);
            }
            (500, started.elapsed())
        });
        eprintln!("{count} places taken one after the other: {:?} each", took / count);
    }
}

/// One replica of a measurement across processes: `DIALPAD_GHL_MEASURE` is
/// `<postgres url> <key> <count> <out file>`; each place is held 0–100 ms, and the wall-clock
/// times of the sends are written to the file.
#[cfg(test)]
#[test]
fn measure_one_replica_process_when_given() {
    let Ok(given) = std::env::var("DIALPAD_GHL_MEASURE") else { return };
    let parts: Vec<&str> = given.split_whitespace().collect();
    let (store, key, count, out) = (Location::Postgres(parts[0].into()), parts[1].to_string(), parts[2].parse::<usize>().unwrap(), parts[3].to_string());
    let limiter = Arc::new(super::RateLimiter::shared(&store, key, 100, Duration::from_secs(2), Duration::from_secs(30)));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let times = runtime.block_on(async {
        let tasks: Vec<_> = (0..count)
            .map(|n| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let asked = std::time::Instant::now();
                    let slot = limiter.acquire().await;
                    let sent = crate::serve::inbox::now_ms();
                    let took = asked.elapsed();
                    tokio::time::sleep(Duration::from_millis((n as u64 * 37) % 101)).await;
                    drop(slot);
                    (sent, crate::serve::inbox::now_ms(), took.as_micros())
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap());
        }
        // The releases run on blocking threads: let them finish before the runtime goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        times
    });
    let text: String = times.iter().map(|(sent, answered, took)| format!("{sent} {answered} {took}\n")).collect();
    std::fs::write(out, text).unwrap();
}
