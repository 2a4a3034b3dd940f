//! `serve`'s housekeeping: every second it refreshes the gauges of the disk budgets (and the
//! dead letters' bytes that deliveries are admitted against); every
//! `limits.prune_every` it prunes finished deliveries older than `keep_finished` and dead
//! letters older than `keep_dead_letters`, and gives the freed pages back to the file system.

use super::inbox::Inbox;
use super::limits::Limits;
use super::listener::Common;
use super::metrics::Metrics;
use crate::storage::dead_letters::DeadLetters;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the housekeeping reads and prunes.
pub(super) struct Parts<'a> {
    pub inbox: &'a Inbox,
    pub dead_letters: &'a DeadLetters,
    pub metrics: &'a Metrics,
    pub limits: &'a Limits,
    pub listeners: &'a Common,
    /// Where the dead letters' bytes are kept for the admission check.
    pub dead_letter_bytes: &'a AtomicU64,
}

/// How often a replica counts the shared inbox's bytes again (what the others added).
const SHARED_RECOUNT_EVERY: Duration = Duration::from_secs(5);

/// The lease of the replica that prunes the shared database.
const RETENTION_LEASE: &str = "retention";

pub(super) fn run(parts: Parts<'_>) {
    let Parts { inbox, dead_letters, metrics, limits, .. } = &parts;
    let mut next_prune = Instant::now() + limits.prune_every;
    let mut pruned_seen = inbox.pruned();
    let mut next_recount = Instant::now();
    loop {
        if inbox.wait_stopped(Duration::from_secs(1).min(limits.prune_every)) {
            return;
        }
        // On a shared database one replica prunes at a time.
        let prunes = inbox.leases().is_none_or(|(leases, name, ttl)| leases.try_hold(RETENTION_LEASE, name, ttl).unwrap_or(false));
        if Instant::now() >= next_prune && prunes {
            next_prune = Instant::now() + limits.prune_every;
            match dead_letters.prune(limits.keep_dead_letters) {
                Ok(rows) => metrics.resources.pruned("dead_letters", rows),
                Err(e) => tracing::error!("serve: pruning dead letters: {e:#}"),
            }
            // The inbox's count includes these; it is added below with the ones made room for.
            if let Err(e) = inbox.prune(limits.keep_finished) {
                tracing::error!("serve: pruning the inbox: {e:#}");
            }
        }
        if Instant::now() >= next_recount {
            next_recount = Instant::now() + SHARED_RECOUNT_EVERY;
            if let Err(e) = inbox.recount_shared() {
                tracing::warn!("serve: counting the shared inbox's bytes: {e:#}");
            }
        }
        let pruned = inbox.pruned();
        metrics.resources.pruned("inbox", pruned - pruned_seen);
        pruned_seen = pruned;
        refresh(&parts);
    }
}

fn refresh(parts: &Parts<'_>) {
    let letters = parts.dead_letters.bytes();
    parts.dead_letter_bytes.store(letters, Ordering::Relaxed);
    let resources = &parts.metrics.resources;
    resources.dead_letter_bytes.set(letters as i64);
    resources.inbox_bytes.set(parts.inbox.bytes() as i64);
    resources.bodies_in_flight_bytes.set(parts.listeners.bodies_in_flight() as i64);
}
