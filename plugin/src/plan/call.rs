//! Plans a call event: its legs' one activity, one note, and the rules it fires.

use super::activity::{note_marker, CallActivity};
use super::automations::{add_automations, automations, facts_of_call, TaskContext};
use super::call_entry::{add_call_entry, EntryKnown};
use super::note::{no_usable_phone, plan_note, NoteSubject};
use super::screen_pop::plan_screen_pop;
use super::vocabulary::{Capture, KnownState as Known, Ref, Step};
use super::vocabulary::{KnownState, Merge, Plan};
use crate::config::Config;
use crate::error::SyncError;
use crate::inbound::dialpad::{state_role, CallEvent, Direction, StateRole};
use crate::inbound::event::EventKind;
use crate::inbound::time;
use crate::state::{call_alias_key, call_ended_key, call_entry_key, call_key};
use serde_json::json;

/// Plans one call event. Pure. A call with no caller number at all is skipped, not refused.
pub fn plan_call(call: &CallEvent, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
    let key = call.event_key();
    match state_role(&call.state) {
        StateRole::InProgress => {
            if let (Some(phone), false) = (&call.external_phone, call.is_internal) {
                if let Some(pop) = plan_screen_pop(call, phone, config, known) {
                    return Ok(pop);
                }
            }
            return Ok(Plan::skip(EventKind::Call, key, format!("call still in progress ({}): nothing is written until it ends", call.state)));
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
    if config.conversations.is_some() {
        // The recorded contact, else the one the note's steps write to.
        let contact = match &known.record {
            Some(record) => Ref::Known(record.contact_id.clone()),
            None => plan.steps.iter().find_map(|s| s.contact.clone()).or_else(|| known.contact_id.clone().map(Ref::Known)).unwrap_or(Ref::Resolved),
        };
        let entry = known.call_entry.as_ref();
        let entry_id = entry.map(|e| e.id.clone()).or_else(|| activity.call_entry_id.clone());
        let attached = entry.map(|e| e.attached.clone()).unwrap_or_default();
        let look_first = !config.durable_state || known.uncertain;
        let before = plan.steps.len();
        let new_recordings =
            add_call_entry(&mut plan, &mut activity, call, &contact, EntryKnown { id: entry_id.as_deref(), look_first, attached: &attached }, config)?;
        if let Some(id) = entry_id {
            activity.call_entry_id = Some(id.clone());
            plan.call_entry_id = Some(id);
        }
        if plan.steps.len() > before {
            // The note names the entry: its body is written again with the entry's line.
            let body = activity.note_body();
            if plan.note_body.as_deref() != Some(body.as_str()) {
                rewrite_note_steps(&mut plan, known, &body);
            }
            plan.note_body = Some(body);
            plan.outcome = crate::report::Outcome::Synced;
        }
        plan.call_entry_key = Some(call_entry_key(&config.location_id, &activity_id));
        plan.call_entry_attached = attached;
        plan.new_recordings = new_recordings;
    }
    add_automations(&mut plan, fired, config, known);
    super::owners::assign_owner(&mut plan, call.agent.email.as_deref(), known.owner_id.as_deref(), config)?;
    if config.screen_pop.is_some() {
        plan.records.push((call_ended_key(&config.location_id, &activity_id), "1".into()));
    }
    plan.aliases = call.all_call_ids().map(|id| (call_alias_key(&config.location_id, id), activity_id.clone())).collect();
    plan.activity = Some(activity);
    Ok(plan)
}

/// Puts the new note body on the plan's note steps; a plan whose note was up to date (it had
/// no note step) gets an `update-note`.
fn rewrite_note_steps(plan: &mut Plan, known: &Known, body: &str) {
    let mut found = false;
    for step in plan.steps.iter_mut().filter(|s| s.capture == Capture::Note) {
        step.body = Some(json!({ "body": body }));
        found = true;
    }
    if let (false, Some(record)) = (found, &known.record) {
        plan.steps.push(Step {
            contact: Some(Ref::Known(record.contact_id.clone())),
            note: Some(Ref::Known(record.note_id.clone())),
            body: Some(json!({ "body": body })),
            capture: Capture::Note,
            ..Step::new("update-note")
        });
    }
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
