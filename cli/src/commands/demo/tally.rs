//! The demo's count of outcomes, shared by the event list and the workflows.

use dialpad_ghl_host::bindings::dialpad_ghl::sync::types::{Report, SyncError};
use dialpad_ghl_host::report;

/// Counts outcomes: synced, unchanged, skipped, failed.
#[derive(Default)]
pub(super) struct Tally(pub(super) [usize; 4]);

impl Tally {
    pub(super) fn add(&mut self, result: &Result<Report, SyncError>) {
        let slot = match result {
            Ok(r) => match report::outcome_name(&r.outcome).0 {
                "synced" => 0,
                "unchanged" => 1,
                _ => 2,
            },
            Err(_) => 3,
        };
        self.0[slot] += 1;
    }
}
