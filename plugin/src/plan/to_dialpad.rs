//! HighLevel's contact webhooks → Dialpad's contacts (two-way contact sync).
//!
//! - A contact not linked yet becomes a shared Dialpad contact through `PUT /api/v2/contacts`
//!   with `uid` = the HighLevel contact id (create-or-update: a retry never makes two), or,
//!   with `local_owner_id`, a local contact of that user (`POST`).
//! - A linked contact gets `PATCH /api/v2/contacts/{id}` with the fields that changed.
//! - A deleted one is deleted in Dialpad (`on_delete`).
//!
//! **No echo.** The sync keeps, per HighLevel contact, the synced fields as HighLevel holds them
//! (`highlevel-state:…`), updated by every HighLevel webhook and by the sync's own writes to
//! HighLevel; a webhook that differs from it in nothing is the sync's own write coming back (or
//! a redelivery) and writes nothing. The other way, the Dialpad contact's record holds what its
//! event will map to after the sync's write, so Dialpad's event for that write changes nothing.
//!
//! **Conflicts**, per field (`conflicts`): `highlevel` (Dialpad's changes of it are not written
//! to HighLevel), `dialpad` (HighLevel's are not written to Dialpad once the contact is linked),
//! or `newest` (each change is written as it arrives: the last one wins).

use super::contact::mapped_fields;
use super::vocabulary::{Capture, Plan, Step, DIALPAD_CONTACT_ID};
use crate::config::features::Winner;
use crate::config::Config;
use crate::inbound::dialpad::{ContactAction, ContactEvent};
use crate::inbound::event::EventKind;
use crate::inbound::highlevel::{ContactChange, HighLevelContact, HighLevelEvent, SYNCED_FIELDS};
use crate::state::{dialpad_contact_key, highlevel_contact_key, highlevel_state_key, ContactRecord};
use serde_json::{json, Map, Value};

/// HighLevel's contact field → Dialpad's (a list field takes the value as its first item).
const DIALPAD_FIELD: &[(&str, &str)] =
    &[("firstName", "first_name"), ("lastName", "last_name"), ("email", "emails"), ("phone", "phones"), ("companyName", "company_name"), ("website", "urls")];

/// What the store knows about a HighLevel contact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HighLevelKnown {
    /// The linked Dialpad contact.
    pub dialpad_id: Option<String>,
    /// The synced fields as HighLevel last held them.
    pub state: Option<Map<String, Value>>,
    /// The linked Dialpad contact's record.
    pub record: Option<ContactRecord>,
}

/// Plans one HighLevel webhook. Pure.
pub fn plan(event: &HighLevelEvent, config: &Config, known: &HighLevelKnown) -> Plan {
    let contact = match event {
        HighLevelEvent::Other(kind) => {
            return Plan::skip(EventKind::HighLevelContact, format!("highlevel:{kind}"), format!("HighLevel webhook {kind} is not synced"))
        }
        HighLevelEvent::Contact(c) => c,
    };
    let key = format!("highlevel-contact:{}:{}", contact.id, contact.change.as_str());
    let Some(settings) = &config.two_way_contacts else {
        return Plan::skip(EventKind::HighLevelContact, key, "two-way contact sync is off (no `two_way_contacts` in the configuration)");
    };
    let mut plan = Plan::empty(EventKind::HighLevelContact, key);
    let name = contact.field("firstName").or(contact.field("email")).or(contact.field("phone")).unwrap_or(&contact.id).to_string();
    let deleted = known.record.as_ref().is_some_and(|r| r.written == ContactRecord::DELETED);
    if contact.change == ContactChange::Deleted {
        let Some(dialpad_id) = known.dialpad_id.clone().filter(|_| !deleted) else {
            return plan.unchanged(format!("HighLevel contact {name} deleted: no Dialpad contact to delete"));
        };
        if !settings.delete {
            return Plan::skip(EventKind::HighLevelContact, plan.event_key, "two_way_contacts.on_delete is \"ignore\": the Dialpad contact is kept");
        }
        plan.steps.push(Step { other_params: vec![("id", dialpad_id.clone())], ..Step::new("contacts.delete") });
        plan.records.push((dialpad_contact_key(&config.location_id, &dialpad_id), record_value(&contact.id, ContactRecord::DELETED)));
        plan.summary = format!("HighLevel contact {name} deleted → Dialpad contact {dialpad_id} deleted");
        return plan;
    }
    let now: Map<String, Value> = SYNCED_FIELDS.iter().filter_map(|f| contact.field(f).map(|v| (f.to_string(), json!(v)))).collect();
    let linked = known.dialpad_id.clone().filter(|_| !deleted);
    // The fields a person changed in HighLevel since the sync last knew them.
    let changed: Vec<&str> = SYNCED_FIELDS
        .iter()
        .copied()
        .filter(|f| match &known.state {
            Some(state) => state.get(*f) != now.get(*f),
            None => now.contains_key(*f),
        })
        .filter(|f| linked.is_none() || settings.winner(f) != Winner::Dialpad)
        .collect();
    plan.records.push((highlevel_state_key(&config.location_id, &contact.id), Value::Object(now.clone()).to_string()));
    if changed.is_empty() {
        // Still recorded: the state is what HighLevel holds now.
        return plan.unchanged(format!("HighLevel contact {name} {}: Dialpad already has it (the sync's own write, or a redelivery)", contact.change.as_str()));
    }
    let mut body = Map::new();
    let fields: &[&str] = if linked.is_some() { &changed } else { SYNCED_FIELDS };
    for field in fields {
        let (_, dialpad) = DIALPAD_FIELD.iter().find(|(h, _)| h == field).expect("every synced field has a Dialpad field");
        let value = contact.field(field).unwrap_or_default();
        let value = if dialpad.ends_with('s') { json!(if value.is_empty() { vec![] } else { vec![value] }) } else { json!(value) };
        body.insert(dialpad.to_string(), value);
    }
    let step = match (&linked, &settings.local_owner_id) {
        (Some(id), _) => Step { other_params: vec![("id", id.clone())], body: Some(Value::Object(body.clone())), ..Step::new("contacts.update") },
        (None, owner) => {
            // Dialpad requires both names.
            for name in ["first_name", "last_name"] {
                body.entry(name).or_insert_with(|| json!(""));
            }
            let (id, extra) = match owner {
                Some(owner) => ("contacts.create", ("owner_id", json!(owner))),
                None => ("contacts.create_with_uid", ("uid", json!(contact.id))),
            };
            body.insert(extra.0.into(), extra.1);
            Step { body: Some(Value::Object(body.clone())), capture: Capture::DialpadContact, ..Step::new(id) }
        }
    };
    plan.steps.push(step);
    let dialpad_id = linked.clone().unwrap_or_else(|| DIALPAD_CONTACT_ID.to_string());
    plan.records.push((highlevel_contact_key(&config.location_id, &contact.id), dialpad_id.clone()));
    // What Dialpad's event for this write will map to: its record, so that event writes nothing.
    let expected = expected_mapping(contact, known.record.as_ref(), &changed, linked.is_some(), config);
    plan.records.push((dialpad_contact_key(&config.location_id, &dialpad_id), record_value(&contact.id, &expected)));
    let verb = if linked.is_some() { "updated" } else { "created" };
    plan.summary = format!("HighLevel contact {name} {} → Dialpad contact {verb} ({})", contact.change.as_str(), changed.join(", "));
    plan
}

fn record_value(contact_id: &str, written: &str) -> String {
    String::from_utf8(ContactRecord { contact_id: contact_id.to_string(), written: written.to_string() }.encode()).unwrap_or_default()
}

/// The mapped fields Dialpad's contact will give after this write: the HighLevel contact's
/// values as Dialpad holds them, through the configured field mapping.
fn expected_mapping(contact: &HighLevelContact, record: Option<&ContactRecord>, changed: &[&str], linked: bool, config: &Config) -> String {
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    // A linked contact keeps what Dialpad had for the fields not sent.
    let before: Map<String, Value> = record.and_then(|r| serde_json::from_str(&r.written).ok()).unwrap_or_default();
    for (highlevel, dialpad) in DIALPAD_FIELD {
        let value = if !linked || changed.contains(highlevel) {
            contact.field(highlevel).map(str::to_string)
        } else {
            before.get(*highlevel).and_then(Value::as_str).map(str::to_string)
        };
        let Some(value) = value.filter(|v| !v.is_empty()) else { continue };
        let name = match *dialpad {
            "emails" => "primary_email",
            "phones" => "primary_phone",
            "urls" => "url",
            other => other,
        };
        fields.push((crate::inbound::dialpad::CONTACT_FIELDS.iter().find(|f| **f == name).copied().unwrap_or("id"), value));
    }
    let event = ContactEvent { action: ContactAction::Updated, id: String::new(), phone: None, email: None, fields, content_hash: String::new() };
    Value::Object(mapped_fields(&event, config)).to_string()
}
