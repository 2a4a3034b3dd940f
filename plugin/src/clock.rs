//! The wall clock (`wasi:clocks/wall-clock` in the component), for what depends on the time an
//! event is handled: a ringing call's screen pop is not sent once it is stale, and Dialpad's
//! screen-pop limit counts a minute. Unit tests set the time they need.

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    #[cfg(test)]
    if let Some(ms) = tests::FIXED.with(|f| f.get()) {
        return ms;
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        pub(crate) static FIXED: Cell<Option<i64>> = const { Cell::new(None) };
    }

    /// Sets this thread's clock (unit tests run each on its own thread).
    pub(crate) fn set_now_ms(ms: i64) {
        FIXED.with(|f| f.set(Some(ms)));
    }
}
