//! What handling or planning an event gives back, mirrored one to one by the WIT `types`
//! interface: the routing, the plan as a dry run shows it, the report of a run.

use crate::error::SyncError;
use crate::inbound::event::EventKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Synced,
    Unchanged,
    Skipped(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOperation {
    pub operation_id: String,
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub condition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanView {
    pub kind: EventKind,
    pub event_key: String,
    pub outcome: Outcome,
    pub summary: String,
    pub operations: Vec<PlannedOperation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutedOperation {
    pub operation_id: String,
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
    pub attempts: u32,
}

/// How a host may schedule a delivery: same lane, one at a time and in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: EventKind,
    pub lane: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: EventKind,
    pub event_key: String,
    pub outcome: Outcome,
    pub summary: String,
    pub contact_id: Option<String>,
    pub note_id: Option<String>,
    /// The call's entry in HighLevel Conversations (its `messageId`).
    pub call_entry_id: Option<String>,
    pub operations: Vec<ExecutedOperation>,
}

/// What handling one event did: the plan it executed, and how that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The plan as the planner made it and the executor ran it; `None` when the event failed
    /// before it could be planned (a bad signature, a malformed body, a bad configuration, a
    /// missing scope, a store that did not answer while the known state was read).
    pub plan: Option<PlanView>,
    pub result: Result<Report, SyncError>,
}

impl Handled {
    /// An event that failed before it was planned.
    pub fn unplanned(error: SyncError) -> Handled {
        Handled { plan: None, result: Err(error) }
    }
}
