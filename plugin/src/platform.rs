//! Task and note events from the automation platform (not from Dialpad): create, update and
//! complete tasks, create and update notes, on the HighLevel contact they name.
//!
//! The shape (also in the WIT docs of `triggers.handle-platform-event`):
//! ```json
//! {"id": "evt-1001", "type": "task.created",
//!  "contact": {"id": "…"} | {"phone": "(206) 555-0174"} | {"email": "…"},
//!  "task": {"ref": "crm-task-7", "title": "…", "body": "…", "due": "2026-03-12T09:00:00-05:00", "assigned_to": "…"},
//!  "note": {"ref": "crm-note-3", "body": "…"}}
//! ```
//! `type` is one of `task.created`, `task.updated`, `task.completed`, `note.created`,
//! `note.updated`. `id` makes a redelivery change nothing; `ref` is the platform's own id of the
//! task or note, linked to HighLevel's ids when it is created so later events can name it.

use crate::config::{Config, Reader};
use crate::error::{EventKind, Outcome, SyncError};
use crate::phone::{self, E164};
use crate::plan::{phone_key, Capture, Plan, Ref, Step, When};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Completed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlatformEvent {
    pub id: String,
    pub kind: EventKind,
    pub action: Action,
    pub reference: String,
    pub contact_id: Option<String>,
    pub phone: Option<E164>,
    pub email: Option<String>,
    /// The HighLevel fields to send (`title`, `body`, `dueDate`, `assignedTo`).
    pub fields: Map<String, Value>,
}

/// The JSON Schema of a platform event (published by `meta.platform-event-schema`); a unit
/// test holds it to what [`parse`] accepts.
pub const JSON_SCHEMA: &str = include_str!("../platform-event.schema.json");

const TOP_KEYS: &[&str] = &["id", "type", "contact", "task", "note"];
const CONTACT_KEYS: &[&str] = &["id", "phone", "email"];
const TASK_KEYS: &[&str] = &["ref", "title", "body", "due", "assigned_to"];
const NOTE_KEYS: &[&str] = &["ref", "body"];
const TYPES: &[&str] = &["task.created", "task.updated", "task.completed", "note.created", "note.updated"];

/// What the store knows about a platform event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformKnown {
    pub done: bool,
    /// The HighLevel contact and task/note ids linked to the event's `ref`.
    pub linked: Option<(String, String)>,
    /// The contact linked to the event's phone number.
    pub phone_contact: Option<String>,
    /// An earlier delivery sent a write whose answer never came: look before creating.
    pub uncertain: bool,
}

pub fn event_key(location_id: &str, id: &str) -> String {
    format!("platform-event:{location_id}:{id}")
}

pub fn link_key(location_id: &str, kind: EventKind, reference: &str) -> String {
    let what = if kind == EventKind::Task { "task" } else { "note" };
    format!("platform-{what}:{location_id}:{reference}")
}

/// Parses and checks an event; every problem is reported with its path.
pub fn parse(text: &str, config: &Config) -> Result<PlatformEvent, SyncError> {
    let value: Value = serde_json::from_str(text).map_err(|e| SyncError::malformed(format!("platform event is not valid JSON: {e}")))?;
    let mut r = Reader::default();
    let obj = r.object(&value, "", TOP_KEYS).ok_or_else(|| SyncError::InvalidInput(r.problems.clone()))?;
    let id = r.string(obj.get("id"), "/id");
    if id.is_none() {
        r.problem("/id", "required: the event's id, so that a redelivery changes nothing");
    }
    let kind_action = match r.string(obj.get("type"), "/type").as_deref() {
        Some("task.created") => Some((EventKind::Task, Action::Created)),
        Some("task.updated") => Some((EventKind::Task, Action::Updated)),
        Some("task.completed") => Some((EventKind::Task, Action::Completed)),
        Some("note.created") => Some((EventKind::Note, Action::Created)),
        Some("note.updated") => Some((EventKind::Note, Action::Updated)),
        _ => {
            r.problem("/type", format!("must be one of {}", TYPES.join(", ")));
            None
        }
    };
    let (mut contact_id, mut phone, mut email) = (None, None, None);
    if let Some(c) = obj.get("contact") {
        if let Some(c) = r.object(c, "/contact", CONTACT_KEYS) {
            contact_id = r.string(c.get("id"), "/contact/id");
            let raw = r.string(c.get("phone"), "/contact/phone");
            phone = raw.as_deref().and_then(|p| match phone::to_e164(p, config.default_region) {
                Ok(e) => Some(e),
                Err(_) => {
                    r.problem("/contact/phone", format!("\"{p}\" is not a phone number"));
                    None
                }
            });
            email = r.string(c.get("email"), "/contact/email").map(|e| e.to_lowercase());
        }
    }
    let (kind, action) = kind_action.unwrap_or((EventKind::Task, Action::Created));
    let (key, allowed): (&str, &[&str]) = match kind {
        EventKind::Task => ("task", TASK_KEYS),
        _ => ("note", NOTE_KEYS),
    };
    let mut fields = Map::new();
    let mut reference = None;
    match obj.get(key) {
        None => r.problem(&format!("/{key}"), format!("required for a {key} event")),
        Some(v) => {
            if let Some(o) = r.object(v, &format!("/{key}"), allowed) {
                reference = r.string(o.get("ref"), &format!("/{key}/ref"));
                for (from, to) in [("title", "title"), ("body", "body"), ("due", "dueDate"), ("assigned_to", "assignedTo")] {
                    if let Some(text) = r.string(o.get(from), &format!("/{key}/{from}")) {
                        fields.insert(to.into(), json!(text));
                    }
                }
            }
        }
    }
    if reference.is_none() {
        r.problem(&format!("/{key}/ref"), format!("required: the platform's own id of the {key}"));
    }
    if let Some(Value::String(due)) = fields.get("dueDate") {
        if !is_iso_with_offset(due) {
            r.problem("/task/due", "must be ISO 8601 with an offset, e.g. 2026-03-12T09:00:00-05:00");
        }
    }
    if kind == EventKind::Task && action == Action::Created && !fields.contains_key("title") {
        r.problem("/task/title", "required to create a task");
    }
    if kind == EventKind::Task && action == Action::Created && !fields.contains_key("dueDate") {
        r.problem("/task/due", "required to create a task (HighLevel needs a due date)");
    }
    if kind == EventKind::Note && !fields.contains_key("body") {
        r.problem("/note/body", "required: the note's text");
    }
    if action == Action::Updated && kind == EventKind::Task && fields.is_empty() {
        r.problem("/task", "an update needs at least one of title, body, due, assigned_to");
    }
    if action == Action::Created && contact_id.is_none() && phone.is_none() && email.is_none() {
        r.problem("/contact", "required to create: the HighLevel contact's id, or a phone or e-mail to find it by");
    }
    if !r.problems.is_empty() {
        return Err(SyncError::InvalidInput(r.problems));
    }
    Ok(PlatformEvent { id: id.unwrap_or_default(), kind, action, reference: reference.unwrap_or_default(), contact_id, phone, email, fields })
}

/// `2026-03-12T09:00:00-05:00` or `…Z`: a date, a time and an explicit offset.
fn is_iso_with_offset(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && (s.ends_with('Z') || matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':')
}

/// Plans one platform event. Pure.
pub fn plan(event: &PlatformEvent, config: &Config, known: &PlatformKnown) -> Plan {
    let noun = if event.kind == EventKind::Task { "task" } else { "note" };
    let action = match event.action {
        Action::Created => "created",
        Action::Updated => "updated",
        Action::Completed => "completed",
    };
    let mut plan = Plan::empty(event.kind, format!("platform:{}", event.id));
    plan.summary = format!("platform {noun} {} {action}", event.reference);
    if known.done {
        plan.outcome = Outcome::Unchanged;
        plan.summary = format!("{}: event {} already handled", plan.summary, event.id);
        return plan;
    }
    let body = Value::Object(event.fields.clone());
    if event.action == Action::Created {
        if known.linked.is_some() {
            plan.outcome = Outcome::Unchanged;
            plan.summary = format!("{}: already created", plan.summary);
            return plan;
        }
        let contact = match (&event.contact_id, &known.phone_contact) {
            (Some(id), _) | (None, Some(id)) => Ref::Known(id.clone()),
            (None, None) => {
                let searches = event.phone.iter().map(|p| ("number", p.as_str().to_string())).chain(event.email.iter().map(|e| ("email", e.clone())));
                for (i, (param, value)) in searches.enumerate() {
                    plan.steps.push(Step {
                        query: vec![("locationId", config.location_id.clone()), (param, value)],
                        when: if i == 0 { When::Always } else { When::NoContactFound },
                        capture: Capture::Contact,
                        ..Step::new("get-duplicate-contact")
                    });
                }
                plan.phone_key = event.phone.as_ref().map(|p| phone_key(&config.location_id, p.as_str()));
                Ref::Resolved
            }
        };
        let (op, body, capture) = match event.kind {
            EventKind::Task => {
                let mut b = body;
                b["completed"] = json!(false);
                ("create-task", b, Capture::Task)
            }
            _ => ("create-note", body, Capture::Note),
        };
        let when = if known.uncertain {
            // The earlier delivery's create may have landed: read the list, create only if
            // the same task or note is not in it.
            let (list, capture) = if event.kind == EventKind::Task { ("get-all-tasks", Capture::Tasks) } else { ("get-all-notes", Capture::Notes) };
            let read_when = if contact == Ref::Resolved { When::ContactExisted } else { When::Always };
            plan.steps.push(Step { contact: Some(contact.clone()), when: read_when, capture, ..Step::new(list) });
            When::NoSameItem
        } else if contact == Ref::Resolved {
            When::ContactExisted
        } else {
            When::Always
        };
        plan.steps.push(Step { contact: Some(contact), body: Some(body), when, capture, ..Step::new(op) });
        return plan;
    }
    // Updates name a task or note created through an earlier event.
    let Some((contact, id)) = known.linked.clone() else { return plan };
    let step = match (event.kind, event.action) {
        (EventKind::Task, Action::Completed) => Step { body: Some(json!({"completed": true})), ..Step::new("update-task-completed") },
        (EventKind::Task, _) => Step { body: Some(body), ..Step::new("update-task") },
        _ => Step { body: Some(body), note: Some(Ref::Known(id.clone())), capture: Capture::Note, ..Step::new("update-note") },
    };
    let other_params = if event.kind == EventKind::Task { vec![("taskId", id)] } else { Vec::new() };
    plan.steps.push(Step { contact: Some(Ref::Known(contact)), other_params, ..step });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_json(r#"{"location_id":"L"}"#).unwrap()
    }

    #[test]
    fn a_task_is_created_on_the_contact_found_by_phone() {
        let e = parse(r#"{"id":"e1","type":"task.created","contact":{"phone":"(206) 555-0174"},"task":{"ref":"t-7","title":"Send quote","due":"2026-03-12T09:00:00-05:00"}}"#, &config()).unwrap();
        let p = plan(&e, &config(), &PlatformKnown::default());
        let ops: Vec<String> = p.steps.iter().map(|s| format!("{} {}", s.operation.id, s.display_path())).collect();
        assert_eq!(ops, vec!["get-duplicate-contact /contacts/search/duplicate?locationId=L&number=%2B12065550174", "create-task /contacts/{contactId}/tasks"]);
        assert_eq!(p.steps[1].body, Some(json!({"title": "Send quote", "dueDate": "2026-03-12T09:00:00-05:00", "completed": false})));
        let again = plan(&e, &config(), &PlatformKnown { done: true, ..Default::default() });
        assert_eq!(again.outcome, Outcome::Unchanged);
    }

    #[test]
    fn updates_and_completion_use_the_linked_ids() {
        let known = PlatformKnown { linked: Some(("c1".into(), "task9".into())), ..Default::default() };
        let done = parse(r#"{"id":"e2","type":"task.completed","task":{"ref":"t-7"}}"#, &config()).unwrap();
        let p = plan(&done, &config(), &known);
        assert_eq!(p.steps[0].display_path(), "/contacts/c1/tasks/task9/completed");
        let note = parse(r#"{"id":"e3","type":"note.updated","note":{"ref":"n-1","body":"new text"}}"#, &config()).unwrap();
        let p = plan(&note, &config(), &PlatformKnown { linked: Some(("c1".into(), "note4".into())), ..Default::default() });
        assert_eq!(p.steps[0].display_path(), "/contacts/c1/notes/note4");
    }

    #[test]
    fn the_published_schema_matches_what_is_read() {
        let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
        let keys = |v: &Value| -> Vec<String> { v["properties"].as_object().unwrap().keys().cloned().collect() };
        let sorted = |k: &[&str]| -> Vec<String> {
            let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
            k.sort();
            k
        };
        assert_eq!(keys(&schema), sorted(TOP_KEYS));
        assert_eq!(keys(&schema["properties"]["contact"]), sorted(CONTACT_KEYS));
        assert_eq!(keys(&schema["properties"]["task"]), sorted(TASK_KEYS));
        assert_eq!(keys(&schema["properties"]["note"]), sorted(NOTE_KEYS));
        assert_eq!(schema["properties"]["type"]["enum"], json!(TYPES));
        // Every example in the docs of the WIT and of this module parses.
        for t in TYPES {
            let event = json!({"id": "e", "type": t, "contact": {"id": "c"}, "task": {"ref": "r", "title": "t", "due": "2026-03-12T09:00:00-05:00"}, "note": {"ref": "r", "body": "b"}});
            let mut event = event;
            event.as_object_mut().unwrap().remove(if t.starts_with("task") { "note" } else { "task" });
            assert!(parse(&event.to_string(), &config()).is_ok(), "{t}");
        }
    }

    #[test]
    fn bad_events_list_every_problem() {
        let SyncError::InvalidInput(problems) = parse(r#"{"type":"task.created","task":{"title":"x","due":"tomorrow","colour":1}}"#, &config()).unwrap_err() else { panic!() };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["/id", "/task/colour", "/task/ref", "/task/due", "/contact"]);
    }
}
