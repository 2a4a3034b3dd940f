//! The per-endpoint rate limits of the spec that the sync can run into, each a sliding window
//! (a request is admitted when fewer than `max` were admitted in the `window` before it):
//!
//! - contact creates (`POST /api/v2/contacts`, and `PUT` when it creates): 100 a minute, for
//!   the whole company;
//! - screen pops: 5 a minute, per user;
//! - click-to-call (`POST /api/v2/call`): 5 a minute, per user.
//!
//! Over the limit → 429 `{"error": {"code": 429, "message": …}}`. A refused request, or one
//! refused for another reason, takes no slot. [`super::DialpadMock::set_rate_limit`] changes a
//! limit (a test wants a small window, not a minute's wait).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::reply::{error, Reply};

/// One of the limits the mock enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DialpadLimit {
    ContactCreate,
    ScreenPop,
    Call,
}

impl DialpadLimit {
    fn what(self) -> &'static str {
        match self {
            DialpadLimit::ContactCreate => "contact creates",
            DialpadLimit::ScreenPop => "screen pops per user",
            DialpadLimit::Call => "calls per user",
        }
    }
}

struct Window {
    max: usize,
    span: Duration,
    /// Admission times by key (a user id; `""` for the company), oldest first.
    admitted: HashMap<String, VecDeque<Instant>>,
}

impl Window {
    fn new(max: usize, span: Duration) -> Window {
        Window { max, span, admitted: HashMap::new() }
    }
}

/// Every limit's window.
pub(super) struct Limits {
    windows: HashMap<DialpadLimit, Window>,
}

impl Default for Limits {
    /// The spec's limits.
    fn default() -> Limits {
        let minute = Duration::from_secs(60);
        let windows = [
            (DialpadLimit::ContactCreate, Window::new(100, minute)),
            (DialpadLimit::ScreenPop, Window::new(5, minute)),
            (DialpadLimit::Call, Window::new(5, minute)),
        ];
        Limits { windows: windows.into_iter().collect() }
    }
}

impl Limits {
    /// Replaces a limit; its window starts empty.
    pub(super) fn set(&mut self, limit: DialpadLimit, max: usize, span: Duration) {
        self.windows.insert(limit, Window::new(max, span));
    }

    /// Takes a slot of `limit` for `key`, or the 429.
    pub(super) fn admit(&mut self, limit: DialpadLimit, key: &str) -> Result<(), Reply> {
        let now = Instant::now();
        let window = self.windows.get_mut(&limit).expect("every limit has a window");
        let times = window.admitted.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|at| now.duration_since(*at) >= window.span) {
            times.pop_front();
        }
        if times.len() >= window.max {
            let message = format!("rate limit exceeded: {} {} per {} s", window.max, limit.what(), window.span.as_secs_f64());
            return Err(error(429, &message));
        }
        times.push_back(now);
        Ok(())
    }
}
