//! The bounds on what an outsider can make `serve` hold: connections, time, memory and disk.
//!
//! Every resource a sender can consume has a limit here, with a default that fits real Dialpad
//! traffic (a webhook body is a few KB, a transcript tens of KB, a burst a few hundred
//! deliveries). Each has a flag on `dialpad-ghl serve`; `docs/operating.md` lists them.

use std::time::Duration;

/// Largest Dialpad webhook body accepted (413 above): events are a few KB, a call with a long
/// transcript tens of KB.
pub const DIALPAD_BODY_BYTES: usize = 256 * 1024;
/// Largest platform event body accepted (413 above): a task or a note.
pub const PLATFORM_BODY_BYTES: usize = 64 * 1024;
/// Largest HighLevel webhook body accepted on `/webhooks/highlevel` (413 above): an app event,
/// or a contact with its custom fields, a few KB.
pub const HIGHLEVEL_BODY_BYTES: usize = 64 * 1024;
/// Largest body any other route reads (the admin listener takes none).
pub const OTHER_BODY_BYTES: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections open at once on the webhook listener. At the cap, the oldest connection that
    /// is not being answered (idle, or still sending its request) is closed to make room; when
    /// every one is being answered, the new one is closed at once.
    pub webhook_connections: usize,
    /// The same for the admin listener, apart: a full webhook listener never stops it.
    pub admin_connections: usize,
    /// Connections one client address may hold on one listener (the same eviction applies).
    /// Behind a reverse proxy every sender has the proxy's address: raise it to the listener cap.
    pub connections_per_client: usize,
    /// Time to send a request's head, counted from the connection's start or the end of the
    /// previous answer (so it is also the keep-alive idle time between requests).
    pub header_timeout: Duration,
    /// Time to send a whole body, from the end of the head (408 after).
    pub body_timeout: Duration,
    /// A connection with no byte read or written for this long, and no request being answered,
    /// is closed.
    pub idle_timeout: Duration,
    /// Largest body on `POST /webhooks/dialpad`.
    pub dialpad_body_bytes: usize,
    /// Largest body on `POST /events/platform`.
    pub platform_body_bytes: usize,
    /// Body bytes held in memory at once, over every connection of both listeners; past it a
    /// request is answered 503 with `Retry-After` instead of being read.
    pub body_budget_bytes: usize,
    /// Bytes of the inbox in `state.db` (bodies, plans and exchanges of queued and kept
    /// deliveries). Kept finished deliveries are pruned, oldest first, to make room; when the
    /// queued ones alone fill it, a delivery is answered 507 with `Retry-After`.
    pub inbox_budget_bytes: u64,
    /// Bytes of dead letters; while they fill it, deliveries are answered 507 with `Retry-After`
    /// (a failure would have nowhere to go). Replay or wait for the retention to make room.
    pub dead_letter_budget_bytes: u64,
    /// Finished deliveries (done, refused, failed) kept on the page this long.
    pub keep_finished: Duration,
    /// Done and refused deliveries kept at most (the disk budget may keep fewer): the console's
    /// history. Failed ones stay until replayed, discarded or aged out.
    pub keep_deliveries: u64,
    /// Dead letters kept this long, then pruned.
    pub keep_dead_letters: Duration,
    /// How often the retention runs (and gives freed pages back to the file system).
    pub prune_every: Duration,
}

/// The history's default depth: a million deliveries, a busy agency's weeks (the console's
/// queries are measured at this depth in the benchmark).
pub const KEEP_DELIVERIES: u64 = 1_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            webhook_connections: 512,
            admin_connections: 64,
            connections_per_client: 128,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            dialpad_body_bytes: DIALPAD_BODY_BYTES,
            platform_body_bytes: PLATFORM_BODY_BYTES,
            body_budget_bytes: 32 * 1024 * 1024,
            inbox_budget_bytes: 512 * 1024 * 1024,
            dead_letter_budget_bytes: 256 * 1024 * 1024,
            keep_finished: Duration::from_secs(7 * 24 * 3600),
            keep_deliveries: KEEP_DELIVERIES,
            keep_dead_letters: Duration::from_secs(30 * 24 * 3600),
            prune_every: Duration::from_secs(600),
        }
    }
}
