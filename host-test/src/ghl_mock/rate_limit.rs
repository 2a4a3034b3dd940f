//! HighLevel's burst rate limit: the sliding window, its 429 and its headers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderName, HeaderValue};

use super::reply::Reply;

/// A burst limit like HighLevel's (100 requests per 10 s per location; the mock is one
/// location, so the limit is global).
///
/// The window **slides**: a request is admitted when fewer than `max_requests` requests were
/// admitted in the `window` before it, so a slot frees exactly `window` after the request that
/// took it. Rejected requests take no slot. Only API requests count, not `/__mock/*` nor
/// `/oauth/token`; requests refused by an injected fault before being handled (server error,
/// 429, drop-before) take no slot either.
///
/// An admitted request's response carries `X-RateLimit-Max`, `X-RateLimit-Remaining` (slots left
/// after it) and `X-RateLimit-Interval-Milliseconds`. A rejected one is not applied and gets
/// 429 `{"statusCode":429,"message":"Too Many Requests"}` with the same headers (remaining 0)
/// and `Retry-After`: seconds until the oldest slot frees, rounded up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max_requests: u32,
    pub window: Duration,
}

impl RateLimit {
    /// HighLevel's burst limit: 100 requests per 10 seconds.
    pub const HIGHLEVEL_BURST: RateLimit = RateLimit { max_requests: 100, window: Duration::from_secs(10) };
}

/// The current limit, when the requests of the current window were admitted (oldest first,
/// never more than `max_requests`), and the requests rejected since the mock started.
pub(super) struct Limiter {
    pub(super) limit: Option<RateLimit>,
    pub(super) admitted: VecDeque<Instant>,
    pub(super) rejected: usize,
}

/// What the limiter says about one request.
pub(super) enum Admission {
    Unlimited,
    Admitted { limit: RateLimit, remaining: u32 },
    Rejected { limit: RateLimit, retry_after: Duration },
}

impl Limiter {
    pub(super) fn new(limit: Option<RateLimit>) -> Limiter {
        Limiter { limit, admitted: VecDeque::new(), rejected: 0 }
    }

    pub(super) fn admit(&mut self, now: Instant) -> Admission {
        let Some(limit) = self.limit else {
            return Admission::Unlimited;
        };
        while self.admitted.front().is_some_and(|at| now.saturating_duration_since(*at) >= limit.window) {
            self.admitted.pop_front();
        }
        let max = usize::try_from(limit.max_requests).unwrap_or(usize::MAX);
        if self.admitted.len() >= max {
            self.rejected += 1;
            // With `max_requests` 0 nothing is ever admitted; a full window is the honest answer.
            let retry_after = self.admitted.front().map_or(limit.window, |oldest| (*oldest + limit.window).saturating_duration_since(now));
            return Admission::Rejected { limit, retry_after };
        }
        self.admitted.push_back(now);
        let remaining = u32::try_from(max - self.admitted.len()).unwrap_or(u32::MAX);
        Admission::Admitted { limit, remaining }
    }
}

/// HighLevel's 429 body.
pub(super) fn too_many_requests() -> Reply {
    Reply::error(429, "Too Many Requests")
}

/// `X-RateLimit-Max`, `X-RateLimit-Remaining`, `X-RateLimit-Interval-Milliseconds`, and
/// `Retry-After` (whole seconds, rounded up) when given.
pub(super) fn rate_limit_headers(limit: RateLimit, remaining: u32, retry_after: Option<Duration>) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (HeaderName::from_static("x-ratelimit-max"), HeaderValue::from(limit.max_requests)),
        (HeaderName::from_static("x-ratelimit-remaining"), HeaderValue::from(remaining)),
        (HeaderName::from_static("x-ratelimit-interval-milliseconds"), HeaderValue::from(u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX))),
    ];
    if let Some(retry_after) = retry_after {
        headers.push((header::RETRY_AFTER, HeaderValue::from(whole_seconds_up(retry_after))));
    }
    headers
}

/// `duration` in seconds, rounded up.
pub(super) fn whole_seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}
