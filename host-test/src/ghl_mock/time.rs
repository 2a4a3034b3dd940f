//! Clock helpers.

use std::time::{Duration, SystemTime};

/// `duration` in whole microseconds, saturating.
pub(super) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// `2026-03-10T15:04:05.123Z`, the format of the real API's `dateAdded`/`dateUpdated`.
pub(super) fn now_iso8601() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
