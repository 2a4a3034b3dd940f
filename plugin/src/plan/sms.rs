//! Plans an SMS or MMS: one note on the other party's contact, and the rules it fires.

use super::activity::{automations_line, CallActivity};
use super::automations::{add_automations, automations, facts_of_sms, TaskContext};
use super::note::{no_usable_phone, plan_note, NoteSubject};
use super::vocabulary::{KnownState, Plan};
use crate::config::Config;
use crate::error::SyncError;
use crate::inbound::dialpad::{Direction, SmsEvent};
use crate::inbound::event::EventKind;
use crate::inbound::phone::E164;
use crate::inbound::time;
use crate::state::sms_key;

/// Plans one message. Pure. A message with no other party's number at all is skipped.
pub fn plan_sms(sms: &SmsEvent, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
    if sms.is_internal {
        return Ok(Plan::skip(EventKind::Sms, sms.event_key(), "internal message between Dialpad users: no external contact"));
    }
    // No `from_number` (inbound) or `to_number` (outbound), and no contact phone: as an
    // anonymous call, an ordinary event with no contact to match.
    let phone = match (&sms.external_phone, &sms.external_number_raw) {
        (Some(phone), _) => phone,
        (None, None) => {
            let who = match sms.direction {
                Some(Direction::Inbound) => "sender",
                Some(Direction::Outbound) => "recipient",
                None => "party",
            };
            return Ok(Plan::skip(EventKind::Sms, sms.event_key(), format!("anonymous {who}: no phone number to match a contact")));
        }
        (None, Some(raw)) => return Err(no_usable_phone(raw, config)),
    };
    let direction = sms.direction.map(Direction::as_str).unwrap_or("unknown-direction");
    let done = known.record.as_ref().map(|r| r.activity.automations.clone()).unwrap_or_default();
    let context = TaskContext {
        contact_name: sms.party.name.as_deref(),
        call: None,
        sms: Some(sms),
        event_ms: sms.created_ms.unwrap_or_default(),
        marker: sms_note_marker(&sms.id),
    };
    let fired = automations(&facts_of_sms(sms), config, &done, &context);
    let mut all = done.clone();
    all.extend(fired.iter().map(|a| a.name.clone()));
    let note = NoteSubject {
        kind: EventKind::Sms,
        event_key: sms.event_key(),
        record_key: sms_key(&config.location_id, &sms.id),
        phone,
        party: &sms.party,
        marker: sms_note_marker(&sms.id),
        body: sms_note_body(sms, &all),
        summary: format!("{direction} SMS {} {}", if sms.direction == Some(Direction::Outbound) { "to" } else { "from" }, phone),
        // A message never changes: a found note is left as it is.
        merge: None,
    };
    let mut plan = plan_note(note, config, known);
    add_automations(&mut plan, fired, config, known);
    plan.activity = Some(CallActivity { automations: all, ..CallActivity::default() });
    Ok(plan)
}

/// The line that identifies a message's note.
pub fn sms_note_marker(sms_id: &str) -> String {
    format!("Dialpad SMS ID: {sms_id}")
}

/// The note of one message. Empty text is kept as such: an MMS may carry only its media.
pub fn sms_note_body(sms: &SmsEvent, automations: &[String]) -> String {
    let mut lines = Vec::new();
    let (kind, direction) = (if sms.mms_url.is_some() { "MMS" } else { "SMS" }, sms.direction.map(Direction::as_str).unwrap_or("unknown-direction"));
    lines.push(format!("Dialpad {kind}: {direction}"));
    let external = sms.external_phone.as_ref().map(E164::as_str).unwrap_or("?");
    let ours = match (&sms.agent.name, &sms.agent_number) {
        (Some(n), Some(p)) => format!("{n} ({p})"),
        (Some(n), None) => n.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => "Dialpad".to_string(),
    };
    match sms.direction {
        Some(Direction::Outbound) => lines.extend([format!("From: {ours}"), format!("To: {external}")]),
        _ => lines.extend([format!("From: {external}"), format!("To: {ours}")]),
    }
    if let Some(ms) = sms.created_ms {
        lines.push(format!("When: {}", time::utc_minutes(ms)));
    }
    if let Some(url) = &sms.mms_url {
        lines.push(format!("Media: {url}"));
    }
    lines.extend(automations_line(automations));
    lines.push(String::new());
    lines.push(sms.text.clone().unwrap_or_else(|| "(no text)".to_string()));
    lines.push(String::new());
    lines.push(sms_note_marker(&sms.id));
    lines.join("\n")
}
