//! Plans a call event: its legs' one activity, one note, and the rules it fires.

use super::activity::{note_marker, CallActivity};
use super::automations::{add_automations, automations, facts_of_call, TaskContext};
use super::note::{no_usable_phone, plan_note, NoteSubject};
use super::vocabulary::{KnownState, Merge, Plan};
use crate::config::Config;
use crate::error::SyncError;
use crate::inbound::dialpad::{state_role, CallEvent, Direction, StateRole};
use crate::inbound::event::EventKind;
use crate::inbound::time;
use crate::state::{call_alias_key, call_key};

/// Plans one call event. Pure. A call with no caller number at all is skipped, not refused.
pub fn plan_call(call: &CallEvent, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
    let key = call.event_key();
    match state_role(&call.state) {
        StateRole::InProgress => {
            return Ok(Plan::skip(EventKind::Call, key, format!("call still in progress ({}): nothing is written until it ends", call.state)))
        }
        StateRole::Ignored => return Ok(Plan::skip(EventKind::Call, key, format!("call state \"{}\" is not synced", call.state))),
        StateRole::Ended | StateRole::FollowUp => {}
    }
    if call.is_internal {
        return Ok(Plan::skip(EventKind::Call, key, "internal call between Dialpad users: no external contact"));
    }
    // Anonymous or blocked caller ID: Dialpad sends an empty `external_number` and no contact
    // phone. Nothing to match a contact by, and nothing wrong with the event.
    let phone = match (&call.external_phone, &call.external_number_raw) {
        (Some(phone), _) => phone,
        (None, None) => return Ok(Plan::skip(EventKind::Call, key, "anonymous caller: no phone number to match a contact")),
        (None, Some(raw)) => return Err(no_usable_phone(raw, config)),
    };
    // Legs of one call (transfers, call centers) share one activity and one note, recorded
    // under the id of the first leg seen, or of the leg this one names as its master.
    let activity_id = known.call_activity_id.clone().unwrap_or_else(|| call.default_activity_id().to_string());
    let mut activity = known.record.as_ref().map(|r| r.activity.clone()).unwrap_or_default();
    activity.call_id = activity_id.clone();
    activity.merge(call);
    let event_ms = activity.last_event_ms.or(call.ended_ms).or(activity.started_ms).unwrap_or_default();
    let context = TaskContext { contact_name: call.party.name.as_deref(), call: Some(&activity), sms: None, event_ms, marker: note_marker(&activity_id) };
    let fired = automations(&facts_of_call(&activity), config, &activity.automations, &context);
    activity.automations.extend(fired.iter().map(|a| a.name.clone()));
    let note = NoteSubject {
        kind: EventKind::Call,
        event_key: key,
        record_key: call_key(&config.location_id, &activity_id),
        phone,
        party: &call.party,
        marker: note_marker(&activity_id),
        body: activity.note_body(),
        summary: call_summary(&activity),
        merge: Some(Box::new(Merge { event: call.clone(), automations: fired.iter().map(|a| a.name.clone()).collect() })),
    };
    let mut plan = plan_note(note, config, known);
    add_automations(&mut plan, fired, config, known);
    plan.aliases = call.all_call_ids().map(|id| (call_alias_key(&config.location_id, id), activity_id.clone())).collect();
    plan.activity = Some(activity);
    Ok(plan)
}

fn call_summary(a: &CallActivity) -> String {
    let direction = a.direction.map(|d| d.as_str()).unwrap_or("unknown-direction");
    let preposition = if a.direction == Some(Direction::Outbound) { "to" } else { "from" };
    let result = a.result.as_str();
    match a.talk_ms {
        Some(ms) => format!("{direction} call {preposition} {} ({result}, {})", a.external_phone, time::duration(ms)),
        None => format!("{direction} call {preposition} {} ({result})", a.external_phone),
    }
}
