//! The pure planner: event + configuration + known state → the Contacts API operations to send.
//!
//! No I/O here. A plan is a list of steps; a step's path may refer to an id that an earlier
//! step resolves (the contact found or created, the call's note found), and may run only under
//! a condition on what earlier steps found. The executor runs it; a dry run prints it.
//!
//! Request count, for a call that ended (the fewest this API allows without overwriting data):
//! - known caller, new call: 1 (`create-note`), or 2 when the store is not durable
//!   (`get-all-notes` first, so a redelivery never makes a second note);
//! - unknown caller: `get-duplicate-contact` + `create-contact` + `create-note` = 3;
//! - known caller found by search: `get-duplicate-contact` + `create-note` = 2, plus
//!   `get-all-notes` when the store is not durable;
//! - a later piece of the same call (transcript, recap): 1 (`update-note`);
//! - a redelivery: 0.
//!
//! `upsert-contact` would find-or-create in one request, but it also overwrites the fields it
//! is sent (a name edited in HighLevel would be replaced by Dialpad's), and `create-contact`
//! alone relies on the location's duplicate setting; search-then-create does neither.

use crate::activity::{note_marker, CallActivity};
use crate::config::Config;
use crate::dialpad::{state_role, CallEvent, Event, StateRole};
use crate::error::{EventKind, Outcome, PlanView, PlannedOperation, SyncError};
use crate::time;
use contacts_api::{op, Operation, Scope};
use serde_json::{json, Value};

/// Scopes call sync needs: it searches (read) and creates contacts and notes (write).
pub const CALL_SYNC_SCOPES: &[Scope] = &[Scope::ContactsReadonly, Scope::ContactsWrite];

/// What the plugin already knows, read from its key-value store before planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownState {
    /// The HighLevel contact linked to the caller's number.
    pub contact_id: Option<String>,
    /// What the plugin recorded about this call.
    pub call: Option<CallRecord>,
}

/// The key-value record of one call: where its note is and what it says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallRecord {
    pub contact_id: String,
    pub note_id: String,
    pub activity: CallActivity,
    /// The note body last written, so an event that changes nothing writes nothing.
    pub written_body: String,
}

impl CallRecord {
    /// `contact id`, `note id`, newest event timestamp, then the note as written, one per line.
    /// The activity is not stored twice: it is the note read back (`from_note_body`), which
    /// keeps serde's derive code out of the component.
    pub fn encode(&self) -> Vec<u8> {
        let last = self.activity.last_event_ms.map(|ms| ms.to_string()).unwrap_or_default();
        format!("{}\n{}\n{last}\n{}", self.contact_id, self.note_id, self.written_body).into_bytes()
    }

    /// `None` when the bytes are not a record. A note that does not read back (it cannot
    /// happen with notes this version wrote) leaves only the ids: the call's note is then
    /// updated from this event alone rather than written twice.
    pub fn decode(bytes: &[u8]) -> Option<CallRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(4, '\n');
        let (contact_id, note_id, last, written_body) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if contact_id.is_empty() || note_id.is_empty() {
            return None;
        }
        let mut activity = CallActivity::from_note_body(written_body).unwrap_or_default();
        activity.last_event_ms = last.parse().ok();
        Some(CallRecord { contact_id: contact_id.into(), note_id: note_id.into(), activity, written_body: written_body.into() })
    }
}

/// An id a step's path needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Ref {
    Known(String),
    /// Resolved by an earlier step of the same plan.
    Resolved,
}

/// When a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// The duplicate search found no contact.
    NoContactFound,
    /// The contact existed before this event (found by search, or already linked).
    ContactExisted,
    /// No note of this call was found.
    NoNoteFound,
    /// A note of this call was found and says something else than the new body.
    NoteDiffers,
}

impl When {
    pub fn describe(self) -> Option<&'static str> {
        match self {
            When::Always => None,
            When::NoContactFound => Some("if the duplicate search finds no contact"),
            When::ContactExisted => Some("if the contact existed before this event"),
            When::NoNoteFound => Some("unless this call's note already exists"),
            When::NoteDiffers => Some("if this call's note exists and this event adds to it (the body is then the note merged with this event)"),
        }
    }
}

/// What a step's response resolves for later steps.
#[derive(Debug, Clone, PartialEq)]
pub enum Capture {
    Nothing,
    /// `contact.id` of the response (null = not found).
    Contact,
    /// `contact.id` of a created contact, or `meta.contactId` of a duplicate refusal.
    CreatedContact,
    /// The id of the note whose body contains this marker line.
    NoteWithMarker(String),
    /// `note.id` of the response.
    Note,
    /// The whole response body, for an action's caller.
    Response,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub operation: &'static Operation,
    /// Value of `{contactId}`.
    pub contact: Option<Ref>,
    /// Value of `{id}` (a note id).
    pub note: Option<Ref>,
    /// Values of the path's other parameters (`taskId`, `campaignId`, …), all known up front.
    pub other_params: Vec<(&'static str, String)>,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub when: When,
    pub capture: Capture,
    /// Set on the `update-note` that follows a marker search: the body sent is then the found
    /// note read back as an activity with this event merged in, so nothing it said is lost.
    pub merge_into_found_note: Option<Box<CallEvent>>,
}

impl Step {
    pub(crate) fn new(operation_id: &str) -> Step {
        Step {
            operation: op(operation_id),
            contact: None,
            note: None,
            other_params: Vec::new(),
            query: Vec::new(),
            body: None,
            when: When::Always,
            capture: Capture::Nothing,
            merge_into_found_note: None,
        }
    }

    /// The path with known ids filled in and `{contactId}` / `{id}` left where an earlier
    /// step resolves them.
    pub fn display_path(&self) -> String {
        let mut path = self
            .operation
            .render_path(|name| match name {
                "contactId" => Some(match &self.contact {
                    Some(Ref::Known(id)) => id.as_str(),
                    _ => "{contactId}",
                }),
                "id" => Some(match &self.note {
                    Some(Ref::Known(id)) => id.as_str(),
                    _ => "{id}",
                }),
                other => self.other_params.iter().find(|(n, _)| *n == other).map(|(_, v)| v.as_str()),
            })
            .unwrap_or_else(|_| self.operation.path.to_string())
            .replace("%7B", "{")
            .replace("%7D", "}");
        path.push_str(&contacts_api::query_string(self.query.iter().map(|(k, v)| (*k, v.as_str()))));
        path
    }
}

/// The plan for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub kind: EventKind,
    pub event_key: String,
    pub outcome: Outcome,
    pub summary: String,
    pub steps: Vec<Step>,
    /// For calls: the activity after this event, to record once the steps succeed.
    pub activity: Option<CallActivity>,
}

impl Plan {
    fn skip(kind: EventKind, event_key: String, reason: impl Into<String>) -> Plan {
        let reason = reason.into();
        Plan { kind, event_key, summary: format!("skipped: {reason}"), outcome: Outcome::Skipped(reason), steps: Vec::new(), activity: None }
    }

    /// The dry-run view: what would be sent.
    pub fn view(&self) -> PlanView {
        PlanView {
            kind: self.kind,
            event_key: self.event_key.clone(),
            outcome: self.outcome.clone(),
            summary: self.summary.clone(),
            operations: self
                .steps
                .iter()
                .map(|s| PlannedOperation {
                    operation_id: s.operation.id.to_string(),
                    method: s.operation.method.as_str().to_string(),
                    path: s.display_path(),
                    body: s.body.as_ref().map(Value::to_string),
                    condition: s.when.describe().map(str::to_string),
                })
                .collect(),
        }
    }
}

/// The key-value key linking a phone number to a HighLevel contact.
pub fn phone_key(location_id: &str, e164: &str) -> String {
    format!("contact-by-phone:{location_id}:{e164}")
}

/// The key-value key of a call's record.
pub fn call_key(location_id: &str, call_id: &str) -> String {
    format!("call:{location_id}:{call_id}")
}

/// Plans one event. Pure: the same inputs always give the same plan.
pub fn plan(event: &Event, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
    match event {
        Event::Call(call) => plan_call(call, config, known),
        Event::Contact { action, contact_id } => Ok(Plan::skip(
            EventKind::Contact,
            format!("contact:{}:{}", contact_id.as_deref().unwrap_or("?"), action.to_lowercase()),
            format!("Dialpad contact events ({action}) are not synced yet"),
        )),
        Event::Sms { id, .. } => Ok(Plan::skip(
            EventKind::Sms,
            format!("sms:{}", id.as_deref().unwrap_or("?")),
            "SMS events are not synced yet",
        )),
        Event::AgentStatus => {
            Ok(Plan::skip(EventKind::AgentStatus, "agent-status".into(), "agent status events have no Contacts API counterpart"))
        }
    }
}

fn plan_call(call: &CallEvent, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
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
    let Some(phone) = &call.external_phone else {
        return Err(SyncError::malformed(match &call.external_number_raw {
            Some(raw) => format!("no usable phone number: \"{raw}\" is not a phone number in E.164 or a national format of {}", config.default_region.code),
            None => "no usable phone number: external_number and contact.phone are empty".to_string(),
        }));
    };
    config.require_scopes(CALL_SYNC_SCOPES)?;

    let mut activity = known.call.as_ref().map(|r| r.activity.clone()).unwrap_or_default();
    activity.merge(call);
    let body = activity.note_body();
    let summary = call_summary(&activity);
    let note_body = json!({ "body": body });

    let mut steps = Vec::new();
    if let Some(record) = &known.call {
        if record.written_body == body {
            return Ok(Plan {
                kind: EventKind::Call,
                event_key: key,
                outcome: Outcome::Unchanged,
                summary: format!("{summary}: note already up to date"),
                steps,
                activity: Some(activity),
            });
        }
        steps.push(Step {
            contact: Some(Ref::Known(record.contact_id.clone())),
            note: Some(Ref::Known(record.note_id.clone())),
            body: Some(note_body),
            capture: Capture::Note,
            ..Step::new("update-note")
        });
    } else {
        let contact = match &known.contact_id {
            Some(id) => Ref::Known(id.clone()),
            None => {
                steps.push(Step {
                    query: vec![("locationId", config.location_id.clone()), ("number", phone.as_str().to_string())],
                    capture: Capture::Contact,
                    ..Step::new("get-duplicate-contact")
                });
                steps.push(Step {
                    body: Some(new_contact_body(call, config)),
                    when: When::NoContactFound,
                    capture: Capture::CreatedContact,
                    ..Step::new("create-contact")
                });
                Ref::Resolved
            }
        };
        // Without a durable record of this call, its note may already exist (a redelivery
        // under a stateless host): look before writing, but only on a contact that existed.
        let note_when = if config.durable_state {
            When::Always
        } else {
            steps.push(Step {
                contact: Some(contact.clone()),
                when: When::ContactExisted,
                capture: Capture::NoteWithMarker(note_marker(&call.call_id)),
                ..Step::new("get-all-notes")
            });
            steps.push(Step {
                contact: Some(contact.clone()),
                note: Some(Ref::Resolved),
                body: Some(note_body.clone()),
                when: When::NoteDiffers,
                capture: Capture::Note,
                merge_into_found_note: Some(Box::new(call.clone())),
                ..Step::new("update-note")
            });
            When::NoNoteFound
        };
        steps.push(Step { contact: Some(contact), body: Some(note_body), when: note_when, capture: Capture::Note, ..Step::new("create-note") });
    }
    Ok(Plan { kind: EventKind::Call, event_key: key, outcome: Outcome::Synced, summary, steps, activity: Some(activity) })
}

/// The body of `create-contact` for a caller HighLevel does not know yet.
fn new_contact_body(call: &CallEvent, config: &Config) -> Value {
    let mut body = json!({
        "locationId": config.location_id,
        "phone": call.external_phone.as_ref().map(|p| p.as_str()),
        "source": config.contact_source,
    });
    if let Some(name) = &call.party.name {
        let (first, last) = match name.split_once(' ') {
            Some((f, l)) => (f.trim(), l.trim()),
            None => (name.as_str(), ""),
        };
        body["firstName"] = json!(first);
        if !last.is_empty() {
            body["lastName"] = json!(last);
        }
    }
    if let Some(email) = &call.party.email {
        body["email"] = json!(email);
    }
    body
}

fn call_summary(a: &CallActivity) -> String {
    let direction = a.direction.map(|d| d.as_str()).unwrap_or("unknown-direction");
    let preposition = if a.direction == Some(crate::dialpad::Direction::Outbound) { "to" } else { "from" };
    let result = a.result.as_str();
    match a.talk_ms {
        Some(ms) => format!("{direction} call {preposition} {} ({result}, {})", a.external_phone, time::duration(ms)),
        None => format!("{direction} call {preposition} {} ({result})", a.external_phone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialpad;
    use crate::phone;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    fn event(name: &str) -> Event {
        dialpad::parse(&std::fs::read(format!("{FIXTURES}{name}")).unwrap(), phone::region("US").unwrap()).unwrap()
    }

    fn config(durable: bool) -> Config {
        Config::from_json(&json!({"location_id": "loc-1", "durable_state": durable}).to_string()).unwrap()
    }

    fn ops(plan: &Plan) -> Vec<(&str, String, Option<&'static str>)> {
        plan.steps.iter().map(|s| (s.operation.id, s.display_path(), s.when.describe())).collect()
    }

    #[test]
    fn unknown_caller_is_searched_created_and_noted() {
        let plan = plan(&event("call_inbound_hangup_completed.json"), &config(true), &KnownState::default()).unwrap();
        assert_eq!(plan.outcome, Outcome::Synced);
        assert_eq!(plan.event_key, "call:6011482093420544:hangup");
        assert_eq!(
            ops(&plan),
            vec![
                ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-1&number=%2B13125550187".to_string(), None),
                ("create-contact", "/contacts/".to_string(), Some("if the duplicate search finds no contact")),
                ("create-note", "/contacts/{contactId}/notes".to_string(), None),
            ]
        );
        // The formatted number Dialpad uses as a name is not sent as one.
        assert_eq!(plan.steps[1].body, Some(json!({"locationId": "loc-1", "phone": "+13125550187", "source": "Dialpad"})));
        let body = plan.steps[2].body.as_ref().unwrap()["body"].as_str().unwrap().to_string();
        assert!(body.starts_with("Dialpad call: inbound, completed\nFrom: +13125550187\nWhen: 2026-03-10 15:04 UTC\nDuration: 4m 07s\nAgent: Maya Patel <maya.patel@example.com>"), "{body}");
        assert!(body.ends_with("Dialpad call ID: 6011482093420544"));
    }

    #[test]
    fn a_known_caller_needs_one_request() {
        let known = KnownState { contact_id: Some("c-9".into()), call: None };
        let plan = plan(&event("call_outbound_hangup_recorded.json"), &config(true), &known).unwrap();
        assert_eq!(ops(&plan), vec![("create-note", "/contacts/c-9/notes".to_string(), None)]);
        let body = plan.steps[0].body.as_ref().unwrap()["body"].as_str().unwrap();
        assert!(body.contains("Recording: https://dialpad.com/secureblob/recording/EXAMPLErecordingBlobKeyD0001"));
        assert!(body.contains("Dialpad call: outbound, completed\nTo: +15035550139"));
    }

    #[test]
    fn without_durable_state_the_note_is_looked_for_first() {
        let plan = plan(&event("call_inbound_missed.json"), &config(false), &KnownState::default()).unwrap();
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.operation.id).collect();
        assert_eq!(ids, vec!["get-duplicate-contact", "create-contact", "get-all-notes", "update-note", "create-note"]);
        assert_eq!(plan.steps[1].body.as_ref().unwrap()["firstName"], "Dana");
        assert_eq!(plan.steps[1].body.as_ref().unwrap()["lastName"], "Whitfield");
    }

    #[test]
    fn in_progress_and_other_kinds_are_skipped_with_a_reason() {
        for f in ["call_inbound_ringing_unknown_number.json", "call_inbound_connected.json"] {
            let p = plan(&event(f), &config(true), &KnownState::default()).unwrap();
            assert!(matches!(p.outcome, Outcome::Skipped(ref r) if r.contains("in progress")), "{f}");
            assert!(p.steps.is_empty());
        }
        for f in ["sms_inbound.json", "agent_status_on_duty.json", "contact_created_shared.json"] {
            let p = plan(&event(f), &config(true), &KnownState::default()).unwrap();
            assert!(matches!(p.outcome, Outcome::Skipped(_)), "{f}");
            assert!(p.steps.is_empty());
        }
    }

    #[test]
    fn a_later_piece_updates_the_note_and_a_redelivery_writes_nothing() {
        let cfg = config(true);
        let first = plan(&event("call_voicemail_uploaded.json"), &cfg, &KnownState::default()).unwrap();
        let activity = first.activity.clone().unwrap();
        let record = CallRecord { contact_id: "c-1".into(), note_id: "n-1".into(), written_body: activity.note_body(), activity };
        let known = KnownState { contact_id: Some("c-1".into()), call: Some(record.clone()) };

        let again = plan(&event("call_voicemail_uploaded.json"), &cfg, &known).unwrap();
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert!(again.steps.is_empty());

        let transcript = plan(&event("call_voicemail_transcription.json"), &cfg, &known).unwrap();
        assert_eq!(ops(&transcript), vec![("update-note", "/contacts/c-1/notes/n-1".to_string(), None)]);
        let body = transcript.steps[0].body.as_ref().unwrap()["body"].as_str().unwrap();
        assert!(body.contains("Dialpad call: inbound, voicemail"));
        assert!(body.contains("Transcript:\n"));
    }

    #[test]
    fn no_usable_phone_number_is_a_typed_error() {
        let us = phone::region("US").unwrap();
        for body in [
            r#"{"call_id":1,"state":"hangup","external_number":"","contact":{"phone":""}}"#,
            r#"{"call_id":1,"state":"hangup","external_number":"blocked"}"#,
            r#"{"call_id":1,"state":"hangup"}"#,
        ] {
            let e = dialpad::parse(body.as_bytes(), us).unwrap();
            let err = plan(&e, &config(true), &KnownState::default()).unwrap_err();
            assert!(matches!(err, SyncError::MalformedEvent(ref m) if m.starts_with("no usable phone number")), "{body}: {err:?}");
        }
    }

    #[test]
    fn missing_write_scope_is_refused_before_any_request() {
        let cfg = Config::from_json(r#"{"location_id":"l","scopes":["contacts.readonly"]}"#).unwrap();
        let err = plan(&event("call_inbound_hangup_completed.json"), &cfg, &KnownState::default()).unwrap_err();
        assert_eq!(err, SyncError::MissingScope(vec!["contacts.write".into()]));
    }
}
