//! Task and note events from the automation platform (not from Dialpad): create, update and
//! complete tasks, create and update notes, on the HighLevel contact they name.
//!
//! The shape (also in the WIT docs of `inbound-event.platform-event`):
//! ```json
//! {"id": "evt-1001", "type": "task.created",
//!  "contact": {"id": "…"} | {"phone": "(206) 555-0174"} | {"email": "…"},
//!  "task": {"ref": "crm-task-7", "title": "…", "body": "…", "due": "2026-03-12T09:00:00-05:00", "assigned_to": "…"},
//!  "note": {"ref": "crm-note-3", "body": "…"}}
//! ```
//! `type` is one of `task.created`, `task.updated`, `task.completed`, `note.created`,
//! `note.updated`. `id` makes a redelivery change nothing; `ref` is the platform's own id of the
//! task or note, linked to HighLevel's ids when it is created so later events can name it.
//! The events are planned in `plan::platform`.
//!
//! An event travels as the claims of a compact HS256 JWT signed with `platform_secret` (as
//! Dialpad signs its webhooks), optionally with `exp`, `nbf` and `iat` beside its members;
//! `signature` verifies it before this parser sees it. Without `platform_secret` platform
//! events are off.

use super::event::EventKind;
use super::phone::{self, E164};
use crate::config::reader::Reader;
use crate::config::Config;
use crate::error::SyncError;
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
pub const JSON_SCHEMA: &str = include_str!("../../platform-event.schema.json");

/// The event's members, and the JWT time claims that may travel beside them (checked by
/// `signature` at the door, ignored here).
const TOP_KEYS: &[&str] = &["id", "type", "contact", "task", "note", "exp", "nbf", "iat"];
const CONTACT_KEYS: &[&str] = &["id", "phone", "email"];
const TASK_KEYS: &[&str] = &["ref", "title", "body", "due", "assigned_to"];
const NOTE_KEYS: &[&str] = &["ref", "body"];
const TYPES: &[&str] = &["task.created", "task.updated", "task.completed", "note.created", "note.updated"];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_json(r#"{"location_id":"L"}"#).unwrap()
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
        let SyncError::InvalidInput(problems) = parse(r#"{"type":"task.created","task":{"title":"x","due":"tomorrow","colour":1}}"#, &config()).unwrap_err()
        else {
            panic!()
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["/id", "/task/colour", "/task/ref", "/task/due", "/contact"]);
    }
}
