//! Dialpad contact created / updated / deleted → the HighLevel contact, through the field
//! mapping. Pure, like the rest of the planner.
//!
//! Requests: a contact seen before (linked in the key-value store): 1 (`update-contact`), 0
//! when the mapped fields did not change. A new one: the duplicate search(es), then
//! `create-contact` (with the configured tags), or `update-contact` + `add-tags` on the
//! contact found. A delete: nothing, `add-tags` or `delete-contact`, as configured.

use super::vocabulary::{Capture, KnownState, Plan, Ref, Step, When, CONTACT_ID};
use crate::config::features::Winner;
use crate::config::{Config, OnDelete, Target};
use crate::inbound::dialpad::{ContactAction, ContactEvent};
use crate::inbound::event::EventKind;
use crate::inbound::highlevel::SYNCED_FIELDS;
use crate::report::Outcome;
use crate::state::{contact_event_key, dialpad_contact_key, phone_key, ContactRecord};
use crate::state::{highlevel_contact_key, highlevel_state_key};
use serde_json::{json, Map, Value};

/// The mapped fields of a Dialpad contact: standard fields, then `customFields`.
pub fn mapped_fields(contact: &ContactEvent, config: &Config) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut custom = Vec::new();
    for entry in &config.field_mapping {
        let value = entry.value.render(&|name| contact.field(name).map(str::to_string));
        if value.is_empty() {
            continue;
        }
        match &entry.target {
            Target::Field(name) => {
                fields.insert(name.to_string(), json!(value));
            }
            Target::Custom { id, key } => {
                let mut field = Map::new();
                if let Some(id) = id {
                    field.insert("id".into(), json!(id));
                }
                if let Some(key) = key {
                    field.insert("key".into(), json!(key));
                }
                field.insert("field_value".into(), json!(value));
                custom.push(Value::Object(field));
            }
        }
    }
    if !custom.is_empty() {
        fields.insert("customFields".into(), Value::Array(custom));
    }
    fields
}

/// Only what `update-contact` accepts (it has no `companyName`, for one).
fn update_body(fields: &Map<String, Value>) -> Value {
    let accepted = contacts_api::op("update-contact").body_properties();
    Value::Object(fields.iter().filter(|(k, _)| accepted.iter().any(|p| p.name == k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect())
}

pub fn plan_contact(contact: &ContactEvent, config: &Config, known: &KnownState) -> Plan {
    let action = contact.action.as_str();
    let event_key = format!("contact:{}:{action}", contact.id);
    let linked =
        known.contact_record.as_ref().filter(|r| r.written != ContactRecord::DELETED).map(|r| r.contact_id.clone()).or_else(|| known.contact_id.clone());
    let mut plan = Plan::empty(EventKind::Contact, event_key);
    plan.record_key = Some(dialpad_contact_key(&config.location_id, &contact.id));
    plan.phone_key = contact.phone.as_ref().map(|p| phone_key(&config.location_id, p.as_str()));
    let name = contact.field("display_name").or(contact.field("first_name")).unwrap_or(&contact.id).to_string();
    // Contact events carry no id or time: a redelivery is known by its content. (An older
    // event that differs from the newest one cannot be told from a newer one, and is applied.)
    if known.event_seen {
        return plan.unchanged(format!("Dialpad contact {name} {action}: this event was applied before"));
    }
    plan.done_keys.push(contact_event_key(config, &contact.content_hash));

    if contact.action == ContactAction::Deleted {
        if known.contact_record.as_ref().is_some_and(|r| r.written == ContactRecord::DELETED) {
            return plan.unchanged(format!("Dialpad contact {name} deleted: already handled"));
        }
        let (op, body, words) = match config.on_contact_deleted {
            OnDelete::Ignore => {
                return Plan::skip(EventKind::Contact, plan.event_key, "on_contact_deleted is \"ignore\": the HighLevel contact is kept as it is")
            }
            OnDelete::Tag => ("add-tags", Some(json!({ "tags": [config.deleted_tag] })), format!("tag {} on", config.deleted_tag)),
            OnDelete::Delete => ("delete-contact", None, "delete".to_string()),
        };
        let (contact_ref, when) = find_contact(&mut plan, contact, config, linked);
        let Some(contact_ref) = contact_ref else {
            return Plan::skip(EventKind::Contact, plan.event_key, "the deleted Dialpad contact has no HighLevel contact: no link, phone or e-mail");
        };
        plan.steps.push(Step { contact: Some(contact_ref), body, when, ..Step::new(op) });
        plan.summary = format!("Dialpad contact {name} deleted → {words} HighLevel contact");
        plan.contact_record = Some(ContactRecord::DELETED.to_string());
        if config.on_contact_deleted == OnDelete::Delete {
            plan.clear_keys.extend(plan.phone_key.take());
        }
        return plan;
    }

    let mut fields = mapped_fields(contact, config);
    let written = Value::Object(fields.clone()).to_string();
    // Compared as JSON: the record may have been written by the other direction, in another order.
    let same = |r: &ContactRecord| serde_json::from_str::<Value>(&r.written).ok() == Some(Value::Object(fields.clone()));
    if known.contact_record.as_ref().is_some_and(same) {
        return plan.unchanged(format!("Dialpad contact {name} {action}: HighLevel already has these fields"));
    }
    plan.summary = format!("Dialpad contact {name} {action} → HighLevel contact");
    plan.contact_record = Some(written);
    if let (Some(two_way), Some(_)) = (&config.two_way_contacts, &linked) {
        // Fields HighLevel wins are not overwritten from Dialpad on a linked contact.
        fields.retain(|k, _| two_way.winner(k) != Winner::HighLevel);
    }
    if config.two_way_contacts.is_some() {
        remember_highlevel_state(&mut plan, contact, &fields, linked.as_deref(), known, config);
    }
    let tags = (!config.contact_tags.is_empty()).then(|| json!({ "tags": config.contact_tags }));
    let first_sync = known.contact_record.is_none();
    if let Some(id) = linked {
        plan.steps.push(Step { contact: Some(Ref::Known(id.clone())), body: Some(update_body(&fields)), ..Step::new("update-contact") });
        if let (true, Some(tags)) = (first_sync, tags) {
            plan.steps.push(Step { contact: Some(Ref::Known(id)), body: Some(tags), ..Step::new("add-tags") });
        }
        return plan;
    }
    let (contact_ref, _) = find_contact(&mut plan, contact, config, None);
    let mut create = fields.clone();
    create.insert("locationId".into(), json!(config.location_id));
    create.entry("source").or_insert_with(|| json!(config.contact_source));
    if let Some(tags) = &tags {
        create.insert("tags".into(), tags["tags"].clone());
    }
    plan.steps.push(Step { body: Some(Value::Object(create)), when: When::NoContactFound, capture: Capture::CreatedContact, ..Step::new("create-contact") });
    let contact_ref = contact_ref.unwrap_or(Ref::Resolved);
    plan.steps.push(Step { contact: Some(contact_ref.clone()), body: Some(update_body(&fields)), when: When::ContactExisted, ..Step::new("update-contact") });
    if let Some(tags) = tags {
        plan.steps.push(Step { contact: Some(contact_ref), body: Some(tags), when: When::ContactExisted, ..Step::new("add-tags") });
    }
    plan
}

/// What HighLevel will hold after this write, for two-way sync to tell HighLevel's webhook about
/// it from a person's edit; and the link back to the Dialpad contact.
fn remember_highlevel_state(plan: &mut Plan, contact: &ContactEvent, fields: &Map<String, Value>, linked: Option<&str>, known: &KnownState, config: &Config) {
    let id = linked.unwrap_or(CONTACT_ID);
    let mut state = if linked.is_some() { known.highlevel_state.clone().unwrap_or_default() } else { Map::new() };
    // Only what every path's write sends (a contact found by search gets `update-contact`, which
    // takes no `companyName`: HighLevel keeps its own). A field left out here and set in
    // HighLevel comes back once, as a change, and Dialpad's answer to it is then an echo.
    let sent = update_body(fields);
    for field in SYNCED_FIELDS {
        if let Some(value) = sent.get(*field) {
            state.insert(field.to_string(), value.clone());
        }
    }
    plan.records.push((highlevel_state_key(&config.location_id, id), Value::Object(state).to_string()));
    plan.records.push((highlevel_contact_key(&config.location_id, id), contact.id.clone()));
}

/// The HighLevel contact of a Dialpad contact: linked, or searched by phone then e-mail.
/// Returns the reference and the condition later steps need (none when it is known).
fn find_contact(plan: &mut Plan, contact: &ContactEvent, config: &Config, linked: Option<String>) -> (Option<Ref>, When) {
    if let Some(id) = linked {
        return (Some(Ref::Known(id)), When::Always);
    }
    let searches: Vec<(&'static str, String)> =
        contact.phone.iter().map(|p| ("number", p.as_str().to_string())).chain(contact.email.iter().map(|e| ("email", e.clone()))).collect();
    if searches.is_empty() {
        return (None, When::Always);
    }
    for (i, (param, value)) in searches.into_iter().enumerate() {
        plan.steps.push(Step {
            query: vec![("locationId", config.location_id.clone()), (param, value)],
            when: if i == 0 { When::Always } else { When::NoContactFound },
            capture: Capture::Contact,
            ..Step::new("get-duplicate-contact")
        });
    }
    (Some(Ref::Resolved), When::ContactExisted)
}

impl Plan {
    pub(crate) fn unchanged(mut self, summary: String) -> Plan {
        self.outcome = Outcome::Unchanged;
        self.summary = summary;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::dialpad::{self, Event};
    use crate::inbound::phone;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    fn contact(name: &str) -> ContactEvent {
        let body = std::fs::read(format!("{FIXTURES}{name}")).unwrap();
        let Event::Contact(c) = dialpad::parse(&body, phone::region("US").unwrap()).unwrap() else { panic!() };
        *c
    }

    fn config(extra: Value) -> Config {
        let mut c = json!({"location_id": "L", "durable_state": true, "contact_tags": ["dialpad"]});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Config::from_json(&c.to_string()).unwrap()
    }

    fn ops(plan: &Plan) -> Vec<(&str, String)> {
        plan.steps.iter().map(|s| (s.operation.id, s.display_path())).collect()
    }

    #[test]
    fn a_new_contact_is_searched_then_created_with_mapping_and_tags() {
        let cfg = config(json!({"field_mapping": [
            {"to": "firstName", "from": "first_name"},
            {"to": "email", "from": "primary_email"},
            {"to": "companyName", "from": "company_name"},
            {"custom_field": {"key": "contact.job_title"}, "from": "job_title"},
            {"to": "source", "template": "Dialpad {{type}} contact"}
        ]}));
        let plan = plan_contact(&contact("contact_created_shared.json"), &cfg, &KnownState::default());
        assert_eq!(
            ops(&plan).iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            vec!["get-duplicate-contact", "get-duplicate-contact", "create-contact", "update-contact", "add-tags"]
        );
        assert_eq!(
            plan.steps[2].body,
            Some(json!({"firstName": "Dana", "email": "dana.whitfield@example.org", "companyName": "Whitfield Logistics",
                "customFields": [{"key": "contact.job_title", "field_value": "Operations Manager"}],
                "source": "Dialpad shared contact", "locationId": "L", "tags": ["dialpad"]}))
        );
        // update-contact takes no companyName.
        assert_eq!(plan.steps[3].body.as_ref().unwrap().get("companyName"), None);
    }

    #[test]
    fn a_linked_contact_is_updated_once_and_a_redelivery_writes_nothing() {
        let cfg = config(json!({}));
        let created = plan_contact(&contact("contact_created_shared.json"), &cfg, &KnownState::default());
        let record = ContactRecord { contact_id: "c1".into(), written: created.contact_record.clone().unwrap() };
        let known = KnownState { contact_record: Some(record.clone()), ..Default::default() };
        assert_eq!(plan_contact(&contact("contact_created_shared.json"), &cfg, &known).outcome, Outcome::Unchanged);
        let updated = plan_contact(&contact("contact_updated_new_email.json"), &cfg, &known);
        assert_eq!(ops(&updated), vec![("update-contact", "/contacts/c1".to_string())]);
        assert_eq!(updated.steps[0].body.as_ref().unwrap()["email"], "dana@whitfield-logistics.example.org");
    }

    #[test]
    fn a_delete_does_what_is_configured() {
        let known = KnownState { contact_record: Some(ContactRecord { contact_id: "c1".into(), written: "{}".into() }), ..Default::default() };
        let deleted = contact("contact_deleted.json");
        assert!(matches!(plan_contact(&deleted, &config(json!({})), &known).outcome, Outcome::Skipped(_)));
        let tag = plan_contact(&deleted, &config(json!({"on_contact_deleted": "tag"})), &known);
        assert_eq!(ops(&tag), vec![("add-tags", "/contacts/c1/tags".to_string())]);
        assert_eq!(tag.steps[0].body, Some(json!({"tags": ["dialpad-deleted"]})));
        let delete = plan_contact(&deleted, &config(json!({"on_contact_deleted": "delete"})), &known);
        assert_eq!(ops(&delete), vec![("delete-contact", "/contacts/c1".to_string())]);
        let done = KnownState { contact_record: Some(ContactRecord { contact_id: "c1".into(), written: ContactRecord::DELETED.into() }), ..Default::default() };
        assert_eq!(plan_contact(&deleted, &config(json!({"on_contact_deleted": "delete"})), &done).outcome, Outcome::Unchanged);
    }
}
