//! Fault injection: which faults, for which request (a pure function of a seed), and their counts.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;

use super::reply::Reply;

/// Faults injected into API requests, to test a client's retries and idempotency.
///
/// Every API request (anything but `/__mock/*` and `/oauth/token`) that arrives while faults are
/// set gets a sequence number `n`, counted from 0 since the faults were last set (with
/// [`MockState::set_faults`], or at start from [`MockOptions::faults`]). Whether request `n` gets
/// a fault, and which, depends only on `seed` and `n` ([`Faults::fault_for`]), so a client that
/// sends the same requests in the same order meets the same faults on every run. The number is
/// drawn once the request's body has been read, before the read gate and the latency; requests
/// sent concurrently are numbered in whatever order they arrive.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Share of API requests that get a fault, from 0.0 (none) to 1.0 (all).
    pub rate: f64,
    pub seed: u64,
    /// The faults to choose from, with equal odds (list one twice to double its odds); an empty
    /// list injects nothing.
    pub kinds: Vec<FaultKind>,
}

/// One injected fault. Whatever the kind, the request is logged ([`RecordedRequest::fault`]).
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Answered with this status (500, 502, 503, …) and a `{"statusCode", "message"}` body
    /// without applying the request.
    ServerError(u16),
    /// Answered like an exhausted rate limit without applying the request: 429, the body of
    /// [`MockOptions::rate_limit`]'s 429, `Retry-After` (seconds, rounded up),
    /// `X-RateLimit-Remaining: 0`, and `X-RateLimit-Max` / `X-RateLimit-Interval-Milliseconds`
    /// from the current rate limit (HighLevel's 100 per 10 s when none is set).
    RateLimited { retry_after_ms: u64 },
    /// Waits this long (after the artificial latency), then handles the request normally.
    Delay(Duration),
    /// Closes the connection without sending a byte; the request is not applied.
    DropBeforeHandling,
    /// Applies the request (rate limit included), then closes the connection without sending a
    /// byte: the "lost response" case.
    DropAfterHandling,
}

impl FaultKind {
    /// Every [`FaultKind::name`], the keys of [`MockState::fault_counts`].
    pub const NAMES: [&'static str; 5] = ["server-error", "rate-limited", "delay", "drop-before", "drop-after"];

    /// The kind's name in [`MockState::fault_counts`] and [`RecordedRequest::fault`].
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::ServerError(_) => "server-error",
            FaultKind::RateLimited { .. } => "rate-limited",
            FaultKind::Delay(_) => "delay",
            FaultKind::DropBeforeHandling => "drop-before",
            FaultKind::DropAfterHandling => "drop-after",
        }
    }
}

impl Faults {
    /// `rate` of faults of every kind, with equal odds: 500, 502, 503, 429 (`Retry-After: 1`), a
    /// 20 ms delay, and both drops.
    pub fn mixed(rate: f64, seed: u64) -> Faults {
        Faults {
            rate,
            seed,
            kinds: vec![
                FaultKind::ServerError(500),
                FaultKind::ServerError(502),
                FaultKind::ServerError(503),
                FaultKind::RateLimited { retry_after_ms: 1000 },
                FaultKind::Delay(Duration::from_millis(20)),
                FaultKind::DropBeforeHandling,
                FaultKind::DropAfterHandling,
            ],
        }
    }

    /// The fault of the `n`-th API request (from 0), a pure function of `seed` and `n`:
    /// splitmix64 of both gives a uniform draw in [0, 1) compared with `rate`, and a second
    /// round picks the kind.
    pub fn fault_for(&self, n: u64) -> Option<&FaultKind> {
        if self.kinds.is_empty() {
            return None;
        }
        let hash = splitmix64(self.seed ^ splitmix64(n));
        // The top 53 bits, as an f64 in [0, 1).
        let draw = (hash >> 11) as f64 / (1u64 << 53) as f64;
        // Written so that a NaN rate injects nothing.
        let faulted = draw < self.rate;
        let kinds = self.kinds.len() as u64;
        faulted.then(|| self.kinds.get(usize::try_from(splitmix64(hash) % kinds).unwrap_or(0))).flatten()
    }
}

/// One step of SplitMix64 (Steele, Lea, Flood 2014): a fast, well-mixed hash of a `u64`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The current faults, the next request's sequence number, and how many of each kind were
/// injected since the mock started (the counters survive [`MockState::set_faults`]).
pub(super) struct FaultPlan {
    pub(super) faults: Option<Faults>,
    pub(super) next: u64,
    pub(super) counts: BTreeMap<String, usize>,
}

impl FaultPlan {
    pub(super) fn new(faults: Option<Faults>) -> FaultPlan {
        let counts = FaultKind::NAMES.iter().map(|name| ((*name).to_owned(), 0)).collect();
        FaultPlan { faults, next: 0, counts }
    }
}

/// The body of a [`FaultKind::ServerError`]: `{"statusCode", "message"}` with the reason phrase.
pub(super) fn server_error(status: u16) -> Reply {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Server Error");
    Reply::error(status, reason)
}
