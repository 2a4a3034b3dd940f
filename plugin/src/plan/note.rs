//! The note of a call or a message on the external party's contact: find or create the
//! contact, then create the note, or update it when it exists and says something else.
//!
//! Request count, for a call that ended or a message (the fewest this API allows without
//! overwriting data):
//! - known caller, new call: 1 (`create-note`), or 2 when the store is not durable
//!   (`get-all-notes` first, so a redelivery never makes a second note);
//! - unknown caller: `get-duplicate-contact` by phone (+ one by e-mail when Dialpad knows it)
//!   + `create-contact` + `create-note` = 3 (4);
//! - caller found by search: the search(es) + `create-note`, plus `get-all-notes` when the
//!   store is not durable;
//! - a later piece of the same call (transcript, recap): 1 (`update-note`);
//! - a redelivery: 0.
//!
//! `upsert-contact` would find-or-create in one request, but it also overwrites the fields it
//! is sent (a name edited in HighLevel would be replaced by Dialpad's), and `create-contact`
//! alone relies on the location's duplicate setting; search-then-create does neither.

use super::vocabulary::{Capture, KnownState, Merge, Plan, Ref, Step, When};
use crate::config::Config;
use crate::error::SyncError;
use crate::inbound::dialpad::Party;
use crate::inbound::event::EventKind;
use crate::inbound::phone::E164;
use crate::report::Outcome;
use crate::state::phone_key;
use serde_json::{json, Value};

/// The external party's number as Dialpad sent it is not one. (No number at all is an
/// anonymous or blocked caller ID: an ordinary event, skipped by the planners.)
pub fn no_usable_phone(raw: &str, config: &Config) -> SyncError {
    SyncError::malformed(format!("no usable phone number: \"{raw}\" is not a phone number in E.164 or a national format of {}", config.default_region.code))
}

/// An event that becomes one note on the external party's contact.
pub struct NoteSubject<'a> {
    pub kind: EventKind,
    pub event_key: String,
    pub record_key: String,
    pub phone: &'a E164,
    pub party: &'a Party,
    /// The note's last line, by which it is found again.
    pub marker: String,
    pub body: String,
    pub summary: String,
    /// For calls: merged into a note found by its marker (stateless hosts).
    pub merge: Option<Box<Merge>>,
}

/// Finds or creates the contact, then creates the note, or updates it when it exists and
/// says something else.
pub fn plan_note(subject: NoteSubject, config: &Config, known: &KnownState) -> Plan {
    let note_body = json!({ "body": subject.body });
    let mut plan = Plan {
        summary: subject.summary,
        record_key: Some(subject.record_key),
        phone_key: Some(phone_key(&config.location_id, subject.phone.as_str())),
        note_body: Some(subject.body.clone()),
        ..Plan::empty(subject.kind, subject.event_key)
    };
    if let Some(record) = &known.record {
        if record.written_body == subject.body {
            plan.outcome = Outcome::Unchanged;
            plan.summary = format!("{}: note already up to date", plan.summary);
            return plan;
        }
        plan.steps.push(Step {
            contact: Some(Ref::Known(record.contact_id.clone())),
            note: Some(Ref::Known(record.note_id.clone())),
            body: Some(note_body),
            capture: Capture::Note,
            ..Step::new("update-note")
        });
        return plan;
    }
    let contact = match &known.contact_id {
        Some(id) => Ref::Known(id.clone()),
        None => {
            plan.steps.push(Step {
                query: vec![("locationId", config.location_id.clone()), ("number", subject.phone.as_str().to_string())],
                capture: Capture::Contact,
                ..Step::new("get-duplicate-contact")
            });
            // Matched by E.164 phone first, then by (lower-cased) e-mail.
            if let Some(email) = &subject.party.email {
                plan.steps.push(Step {
                    query: vec![("locationId", config.location_id.clone()), ("email", email.clone())],
                    when: When::NoContactFound,
                    capture: Capture::Contact,
                    ..Step::new("get-duplicate-contact")
                });
            }
            plan.steps.push(Step {
                body: Some(new_contact_body(subject.phone, subject.party, config)),
                when: When::NoContactFound,
                capture: Capture::CreatedContact,
                ..Step::new("create-contact")
            });
            Ref::Resolved
        }
    };
    // Without a durable record, the note may already exist (a redelivery under a stateless
    // host): look before writing, but only on a contact that existed.
    let note_when = if config.durable_state && !known.uncertain {
        When::Always
    } else {
        plan.steps.push(Step {
            contact: Some(contact.clone()),
            when: When::ContactExisted,
            capture: Capture::NoteWithMarker(subject.marker),
            ..Step::new("get-all-notes")
        });
        plan.steps.push(Step {
            contact: Some(contact.clone()),
            note: Some(Ref::Resolved),
            body: Some(note_body.clone()),
            when: When::NoteDiffers,
            capture: Capture::Note,
            merge_into_found_note: subject.merge,
            ..Step::new("update-note")
        });
        When::NoNoteFound
    };
    plan.steps.push(Step { contact: Some(contact), body: Some(note_body), when: note_when, capture: Capture::Note, ..Step::new("create-note") });
    plan
}

/// The body of `create-contact` for a caller HighLevel does not know yet.
fn new_contact_body(phone: &E164, party: &Party, config: &Config) -> Value {
    let mut body = json!({
        "locationId": config.location_id,
        "phone": phone.as_str(),
        "source": config.contact_source,
    });
    if let Some(name) = &party.name {
        let (first, last) = match name.split_once(' ') {
            Some((f, l)) => (f.trim(), l.trim()),
            None => (name.as_str(), ""),
        };
        body["firstName"] = json!(first);
        if !last.is_empty() {
            body["lastName"] = json!(last);
        }
    }
    if let Some(email) = &party.email {
        body["email"] = json!(email);
    }
    body
}
