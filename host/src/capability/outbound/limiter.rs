//! The host's rate limiter: keeps each HighLevel location under its burst limit (100 requests
//! per 10 s), so a burst of events waits its turn instead of collecting 429s. The same type
//! keeps each tenant's Dialpad requests under Dialpad's limits (all requests, and contact creates).
//!
//! A limiter keeps its places in memory (one process), or, when several `serve` replicas share
//! one PostgreSQL database, in that database ([`RateLimiter::shared`], `shared`), so that the
//! replicas together stay under one limit.

mod shared;

use crate::storage::db::Location;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A sliding-window limiter: at most `max` requests in any `window`, where a request holds
/// its place from the moment it is sent until `window` after its answer came back. HighLevel
/// counts a request when it arrives, which is between the two, so however the network delays
/// one request against another, no window on the server's side sees more than `max`. (Counting
/// from the send alone let 16 of 1,516 requests of a burst through to a 429: one request's
/// arrival delayed, the next one's not.)
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    slots: Mutex<Slots>,
    freed: tokio::sync::Notify,
    /// The places in the shared database, when the limit is the replicas' together; the
    /// in-memory places above are then used only while the database cannot be reached.
    shared: Option<shared::SharedPlaces>,
}

#[derive(Debug, Default)]
struct Slots {
    in_flight: usize,
    /// When each answered request came back, oldest first.
    answered: std::collections::VecDeque<Instant>,
}

/// A place in the limiter's window, held while the request is out; dropping it (the answer
/// came, or none will) starts its `window`.
#[derive(Debug)]
pub struct RateSlot {
    place: Place,
}

#[derive(Debug)]
enum Place {
    Local(Arc<RateLimiter>),
    /// A row in the shared database, marked answered when dropped (on a blocking thread).
    Shared(#[allow(dead_code)] shared::SharedSlot),
}

impl Drop for RateSlot {
    fn drop(&mut self) {
        // A shared place is released by its own `Drop`.
        if let Place::Local(limiter) = &self.place {
            let mut slots = limiter.slots.lock().unwrap();
            slots.in_flight -= 1;
            slots.answered.push_back(Instant::now());
            drop(slots);
            limiter.freed.notify_waiters();
        }
    }
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter { max: max.max(1) as usize, window, slots: Mutex::new(Slots::default()), freed: tokio::sync::Notify::new(), shared: None }
    }

    /// A limiter whose places are kept in the database at `store` under `key`, so that every
    /// limiter with that key on that database (each replica's) counts against one limit: at
    /// most `max` in any `window`, a place held from the send until `window` after the answer,
    /// as [`RateLimiter::new`]'s. A place whose answer never comes (its replica died) counts as
    /// answered `give_up` after it was sent. Opens its own connections, when first used (a
    /// replica of its own: tests); [`RateLimiter::shared_in_process`] shares them.
    pub fn shared(store: &Location, key: impl Into<String>, max: u32, window: Duration, give_up: Duration) -> RateLimiter {
        RateLimiter::with_places(shared::SharedPlaces::new(shared::RateStore::new(store), key.into(), give_up), max, window)
    }

    /// [`RateLimiter::shared`], through this process's connections to `store` (one small pool
    /// per database, however many limiters use it).
    pub fn shared_in_process(store: &Location, key: impl Into<String>, max: u32, window: Duration, give_up: Duration) -> RateLimiter {
        RateLimiter::with_places(shared::SharedPlaces::new(shared::RateStore::of_process(store), key.into(), give_up), max, window)
    }

    fn with_places(places: shared::SharedPlaces, max: u32, window: Duration) -> RateLimiter {
        RateLimiter { shared: Some(places), ..RateLimiter::new(max, window) }
    }

    /// A new limiter with the same limit and a window of its own (another location's), in
    /// memory: [`RateLimiter::shared_as`] makes a shared one of it.
    pub fn same_limit(&self) -> RateLimiter {
        RateLimiter::new(self.max as u32, self.window)
    }

    /// A limiter with this one's limit whose places are kept in the database at `store` under
    /// `key` (see [`RateLimiter::shared_in_process`]).
    pub fn shared_as(&self, store: &Location, key: impl Into<String>, give_up: Duration) -> RateLimiter {
        RateLimiter::shared_in_process(store, key, self.max as u32, self.window, give_up)
    }

    /// The database key of a shared limiter (`None`: in memory).
    pub fn shared_key(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| s.key())
    }

    /// At most this many requests in any window.
    pub fn max(&self) -> u32 {
        self.max as u32
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// HighLevel's burst limit per location: 100 requests per 10 seconds.
    pub fn highlevel() -> RateLimiter {
        RateLimiter::new(100, Duration::from_secs(10))
    }

    /// Dialpad's limit on contact creates: 100 a minute per company (`POST /api/v2/contacts`,
    /// and `PUT /api/v2/contacts`, which creates when no contact has the `uid`).
    pub fn dialpad_contact_creates() -> RateLimiter {
        RateLimiter::new(100, Duration::from_secs(60))
    }

    /// [`RateLimiter::acquire`], giving up after `max_wait`: `None` when no place came.
    pub async fn acquire_within(self: &Arc<Self>, max_wait: Duration) -> Option<RateSlot> {
        tokio::time::timeout(max_wait, self.acquire()).await.ok()
    }

    /// Waits for a place in the window, and holds it until the slot is dropped.
    pub async fn acquire(self: &Arc<Self>) -> RateSlot {
        if let Some(shared) = &self.shared {
            match shared.acquire(self.max, self.window).await {
                Ok(slot) => return RateSlot { place: Place::Shared(slot) },
                // The database is out of reach: this replica keeps the limit on its own
                // meanwhile, rather than stop sending.
                Err(e) => shared::warn_unreachable(&e),
            }
        }
        self.acquire_local().await
    }

    async fn acquire_local(self: &Arc<Self>) -> RateSlot {
        loop {
            // Registered before looking, so a slot freed in between still wakes this one.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let next_free = {
                let mut slots = self.slots.lock().unwrap();
                let now = Instant::now();
                while slots.answered.front().is_some_and(|t| *t + self.window <= now) {
                    slots.answered.pop_front();
                }
                if slots.in_flight + slots.answered.len() < self.max {
                    slots.in_flight += 1;
                    return RateSlot { place: Place::Local(self.clone()) };
                }
                slots.answered.front().map(|t| *t + self.window)
            };
            match next_free {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = &mut freed => {}
                    }
                }
                // Every place is held by a request still out: its answer frees one.
                None => freed.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_frees_a_place_a_window_after_the_answer() {
        let window = Duration::from_millis(200);
        let limiter = Arc::new(RateLimiter::new(3, window));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let held: Vec<RateSlot> = vec![limiter.acquire().await, limiter.acquire().await, limiter.acquire().await];
            // All three places are out: a fourth waits for an answer, then a window more.
            let fourth = tokio::spawn({
                let limiter = limiter.clone();
                async move {
                    let slot = limiter.acquire().await;
                    (Instant::now(), slot)
                }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!fourth.is_finished(), "a fourth request went out while three were held");
            let answered = Instant::now();
            drop(held);
            let (started, _slot) = fourth.await.unwrap();
            assert!(started >= answered + window, "the fourth went {:?} after the answers", started - answered);
        });
    }

    #[test]
    fn the_101st_contact_create_of_a_minute_waits_and_gives_up_at_its_bound() {
        let limiter = Arc::new(RateLimiter::dialpad_contact_creates());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let started = Instant::now();
            for n in 0..100 {
                // Each create answered at once: its place is kept for a minute after.
                let slot = limiter.acquire_within(Duration::from_millis(10)).await;
                assert!(slot.is_some(), "create {} waited", n + 1);
            }
            assert!(started.elapsed() < Duration::from_secs(1));
            let bound = Duration::from_millis(300);
            let waited = Instant::now();
            assert!(limiter.acquire_within(bound).await.is_none(), "the 101st create of the minute went out");
            assert!(waited.elapsed() >= bound, "it gave up after {:?}, before its bound", waited.elapsed());
            // Another tenant's limiter (the same limit, its own window) is not held up.
            let other = Arc::new(limiter.same_limit());
            assert!(other.acquire_within(Duration::from_millis(10)).await.is_some());
        });
    }
}
