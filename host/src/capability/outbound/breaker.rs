//! A circuit breaker per origin: when an API stops answering, requests to it fail at once for a
//! cool-down instead of each waiting out its timeout, so `serve`'s workers put their deliveries
//! back (with backoff) and stay free; one probe request then tells whether it answers again.
//!
//! - **Closed** (normal): requests go through. A request that gets no answer (connect refused
//!   or timed out, reset, no response head in time) is a failure; any answer, whatever its
//!   status (a 500 and a 429 are answers), resets the count.
//! - A request **stalls** when it has waited `stall` with no answer while the origin answered
//!   nothing else since it was sent: it counts as a failure while it waits (an API that
//!   accepts connections and never answers would otherwise hold every worker for the whole
//!   request timeout before the first failure is known).
//! - After `failures` consecutive failures (stalled requests included) the circuit **opens**:
//!   for `cool_down` every request fails at once, and the stalled ones are aborted.
//! - Then it is **half-open**: one request (the probe) goes through, the others still fail at
//!   once. An answer closes the circuit; no answer (or a stall) opens it again for twice the
//!   cool-down, up to `max_cool_down`.
//!
//! The state machine takes the time as an argument, so it is tested without waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a circuit opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive requests without an answer (stalled ones included) that open the circuit.
    pub failures: u32,
    /// How long the circuit stays open the first time; doubled at each failed probe.
    pub cool_down: Duration,
    /// The longest cool-down.
    pub max_cool_down: Duration,
    /// How long a request waits with no answer from its origin before it counts as a failure.
    pub stall: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings { failures: 3, cool_down: Duration::from_secs(2), max_cool_down: Duration::from_secs(60), stall: Duration::from_secs(5) }
    }
}

/// The state of a circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    /// Requests fail at once until this instant.
    Open {
        until: Instant,
    },
    /// One probe is allowed through (`probing`: it is out).
    HalfOpen {
        probing: bool,
    },
}

/// Why a request was not sent, in words for the exchange log and the plugin's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected(pub String);

/// A request let through: hand it back with [`CircuitBreaker::answered`],
/// [`CircuitBreaker::failed`] or [`CircuitBreaker::stalled`].
#[derive(Debug)]
pub struct Ticket {
    sent: Instant,
    probe: bool,
    /// Counted among the stalled requests.
    stalled: bool,
    /// The number of times the circuit had opened when this request was sent.
    generation: u64,
}

impl Ticket {
    /// Restarts the ticket's clock: the request is sent now (after waiting for its rate
    /// limiter, which is not the origin's silence).
    pub fn sending(&mut self, now: Instant) {
        self.sent = now;
    }
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    /// Consecutive failures while closed.
    failures: u32,
    /// Requests now waiting past `stall` with no answer from the origin since they were sent.
    stalled: u32,
    cool_down: Duration,
    last_answer: Option<Instant>,
    /// How many times the circuit opened; a stalled request aborts when this moves on.
    opened: u64,
}

/// One origin's circuit, shared by every runtime built from the same settings.
#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
    /// Wakes the stalled requests when the circuit opens.
    opened: tokio::sync::watch::Sender<u64>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> CircuitBreaker {
        let settings = BreakerSettings { failures: settings.failures.max(1), max_cool_down: settings.max_cool_down.max(settings.cool_down), ..settings };
        CircuitBreaker {
            inner: Mutex::new(Inner { state: CircuitState::Closed, failures: 0, stalled: 0, cool_down: settings.cool_down, last_answer: None, opened: 0 }),
            settings,
            opened: tokio::sync::watch::channel(0).0,
        }
    }

    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    pub fn state(&self) -> CircuitState {
        self.inner.lock().unwrap().state
    }

    /// How many times the circuit has opened.
    pub fn times_opened(&self) -> u64 {
        self.inner.lock().unwrap().opened
    }

    /// Lets a request through, or says why not.
    pub fn admit(&self, now: Instant) -> Result<Ticket, Rejected> {
        let mut inner = self.inner.lock().unwrap();
        let probe = match inner.state {
            CircuitState::Closed => false,
            CircuitState::Open { until } if now < until => {
                return Err(Rejected(format!(
                    "circuit open: the origin did not answer {} requests in a row; next probe in {} ms",
                    self.settings.failures,
                    (until - now).as_millis()
                )))
            }
            CircuitState::Open { .. } | CircuitState::HalfOpen { probing: false } => {
                inner.state = CircuitState::HalfOpen { probing: true };
                true
            }
            CircuitState::HalfOpen { probing: true } => {
                return Err(Rejected("circuit open: the origin did not answer; a probe request is out".into()));
            }
        };
        Ok(Ticket { sent: now, probe, stalled: false, generation: inner.opened })
    }

    /// The request got an answer (any status): the origin is up, the circuit closes.
    pub fn answered(&self, ticket: Ticket, now: Instant) {
        let mut inner = self.inner.lock().unwrap();
        release(&mut inner, &ticket);
        inner.last_answer = Some(now);
        inner.failures = 0;
        if inner.state != CircuitState::Closed {
            inner.state = CircuitState::Closed;
            inner.cool_down = self.settings.cool_down;
        }
    }

    /// The request got no answer. Returns whether this opened the circuit.
    pub fn failed(&self, ticket: Ticket, now: Instant) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let counted = ticket.stalled;
        release(&mut inner, &ticket);
        if counted && ticket.probe {
            return false;
        }
        // A stalled request that ends without an answer moves from the stalled to the failed.
        self.failure(&mut inner, &ticket, now, true)
    }

    /// The request has waited `stall` with no answer. Returns true when it should be given up
    /// (the circuit is open now, or it was the probe), false to keep waiting (the origin
    /// answered another request meanwhile, so it is only slow; or too few requests stall yet).
    pub fn stalled(&self, ticket: &mut Ticket, now: Instant) -> bool {
        let mut inner = self.inner.lock().unwrap();
        if ticket.stalled || inner.last_answer.is_some_and(|answered| answered > ticket.sent) {
            return false;
        }
        ticket.stalled = true;
        inner.stalled += 1;
        self.failure(&mut inner, ticket, now, false) || inner.opened != ticket.generation
    }

    /// Whether a stalled request should now be given up: the circuit opened since it was sent.
    pub fn gave_up(&self, ticket: &Ticket) -> bool {
        ticket.stalled && self.inner.lock().unwrap().opened != ticket.generation
    }

    /// Resolves when the circuit opens next (for stalled requests to give up).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.opened.subscribe()
    }

    /// A failure; counted in `failures` when `count` (a stall is counted in `stalled` instead).
    fn failure(&self, inner: &mut Inner, ticket: &Ticket, now: Instant, count: bool) -> bool {
        match inner.state {
            CircuitState::HalfOpen { .. } if ticket.probe => {
                inner.cool_down = (inner.cool_down * 2).min(self.settings.max_cool_down);
                self.open(inner, now);
                true
            }
            CircuitState::Closed => {
                if count {
                    inner.failures += 1;
                }
                if inner.failures + inner.stalled >= self.settings.failures {
                    self.open(inner, now);
                    true
                } else {
                    false
                }
            }
            // Sent before the circuit opened: already counted in its opening.
            CircuitState::Open { .. } | CircuitState::HalfOpen { .. } => false,
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        inner.state = CircuitState::Open { until: now + inner.cool_down };
        inner.failures = 0;
        inner.opened += 1;
        tracing::warn!(target: "outbound", "circuit open for {} ms", inner.cool_down.as_millis());
        self.opened.send_replace(inner.opened);
    }
}

fn release(inner: &mut Inner, ticket: &Ticket) {
    if ticket.stalled {
        inner.stalled -= 1;
    }
    if ticket.probe {
        if let CircuitState::HalfOpen { probing } = &mut inner.state {
            *probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings {
            failures: 3,
            cool_down: Duration::from_secs(2),
            max_cool_down: Duration::from_secs(5),
            stall: Duration::from_secs(5),
        })
    }

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn consecutive_failures_open_it_and_any_answer_resets_the_count() {
        let (b, t0) = (breaker(), Instant::now());
        for _ in 0..2 {
            assert!(!b.failed(b.admit(t0).unwrap(), t0));
        }
        // A 503 is an answer: the count starts over.
        b.answered(b.admit(t0).unwrap(), t0);
        assert!(!b.failed(b.admit(t0).unwrap(), t0));
        assert!(!b.failed(b.admit(t0).unwrap(), t0));
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(b.failed(b.admit(t0).unwrap(), secs(t0, 1.0)));
        assert_eq!(b.state(), CircuitState::Open { until: secs(t0, 3.0) });
        let refused = b.admit(secs(t0, 2.5)).unwrap_err();
        assert!(refused.0.starts_with("circuit open") && refused.0.contains("500 ms"), "{refused:?}");
    }

    #[test]
    fn one_probe_after_the_cool_down_closes_it_or_opens_it_for_twice_as_long() {
        let (b, t0) = (breaker(), Instant::now());
        let tickets: Vec<Ticket> = (0..3).map(|_| b.admit(t0).unwrap()).collect();
        for t in tickets {
            b.failed(t, t0);
        }
        // Half-open at 2 s: one probe, the others fail at once.
        let probe = b.admit(secs(t0, 2.0)).unwrap();
        assert_eq!(b.admit(secs(t0, 2.0)).unwrap_err().0, "circuit open: the origin did not answer; a probe request is out");
        assert!(b.failed(probe, secs(t0, 2.5)));
        assert_eq!(b.state(), CircuitState::Open { until: secs(t0, 6.5) }, "4 s: doubled");
        let probe = b.admit(secs(t0, 6.5)).unwrap();
        assert!(b.failed(probe, secs(t0, 6.5)));
        assert_eq!(b.state(), CircuitState::Open { until: secs(t0, 11.5) }, "capped at 5 s");
        let probe = b.admit(secs(t0, 11.5)).unwrap();
        b.answered(probe, secs(t0, 11.6));
        assert_eq!(b.state(), CircuitState::Closed);
        // Closed again with the first cool-down and a fresh count.
        for _ in 0..2 {
            assert!(!b.failed(b.admit(secs(t0, 12.0)).unwrap(), secs(t0, 12.0)));
        }
        assert!(b.failed(b.admit(secs(t0, 12.0)).unwrap(), secs(t0, 12.0)));
        assert_eq!(b.state(), CircuitState::Open { until: secs(t0, 14.0) });
    }

    #[test]
    fn requests_that_stall_together_open_it_and_are_given_up() {
        let (b, t0) = (breaker(), Instant::now());
        let mut tickets: Vec<Ticket> = (0..4).map(|_| b.admit(t0).unwrap()).collect();
        assert!(!b.stalled(&mut tickets[0], secs(t0, 5.0)), "one stalled request is only slow");
        assert!(!b.stalled(&mut tickets[1], secs(t0, 5.0)));
        assert!(b.stalled(&mut tickets[2], secs(t0, 5.0)), "the third opens it");
        assert!(b.gave_up(&tickets[0]) && b.gave_up(&tickets[1]), "the others stalled give up too");
        assert!(!b.gave_up(&tickets[3]), "a request not yet stalled keeps waiting");
        assert!(matches!(b.state(), CircuitState::Open { .. }));
        for t in tickets {
            b.failed(t, secs(t0, 5.0));
        }
        assert_eq!(b.inner.lock().unwrap().stalled, 0);
    }

    #[test]
    fn a_slow_request_is_not_a_stall_when_the_origin_answers_others() {
        let (b, t0) = (breaker(), Instant::now());
        let mut slow: Vec<Ticket> = (0..3).map(|_| b.admit(t0).unwrap()).collect();
        b.answered(b.admit(secs(t0, 1.0)).unwrap(), secs(t0, 1.2));
        for t in &mut slow {
            assert!(!b.stalled(t, secs(t0, 5.0)));
        }
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn a_probe_that_stalls_opens_it_again() {
        let (b, t0) = (breaker(), Instant::now());
        for _ in 0..3 {
            b.failed(b.admit(t0).unwrap(), t0);
        }
        let mut probe = b.admit(secs(t0, 2.0)).unwrap();
        assert!(b.stalled(&mut probe, secs(t0, 7.0)));
        assert_eq!(b.state(), CircuitState::Open { until: secs(t0, 11.0) });
        b.failed(probe, secs(t0, 7.1));
        assert_eq!(b.state(), CircuitState::Open { until: secs(t0, 11.0) }, "its end changes nothing more");
    }
}
