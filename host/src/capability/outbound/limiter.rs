//! The host's rate limiter: keeps each HighLevel location under its burst limit (100 requests
//! per 10 s), so a burst of events waits its turn instead of collecting 429s. The same type
//! keeps each tenant's Dialpad requests under Dialpad's limits (all requests, and contact creates).

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
    limiter: Arc<RateLimiter>,
}

impl Drop for RateSlot {
    fn drop(&mut self) {
        let mut slots = self.limiter.slots.lock().unwrap();
        slots.in_flight -= 1;
        slots.answered.push_back(Instant::now());
        drop(slots);
        self.limiter.freed.notify_waiters();
    }
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter { max: max.max(1) as usize, window, slots: Mutex::new(Slots::default()), freed: tokio::sync::Notify::new() }
    }

    /// A new limiter with the same limit and a window of its own (another location's).
    pub fn same_limit(&self) -> RateLimiter {
        RateLimiter::new(self.max as u32, self.window)
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
                    return RateSlot { limiter: self.clone() };
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
