//! The unified contact view for a screen pop: the contact, its tasks, notes and appointments.
//!
//! The four reads go out together (`wasi:http` futures polled at once in the component), so a
//! view costs one round trip, not four. Views are cached in the key-value store for the
//! configured TTL; any write the plugin makes to a contact drops its entry (`pipeline`).

use crate::config::Config;
use crate::error::{Problem, SyncError};
use crate::execute::{execute, execute_together, Transport};
use crate::inbound::event::EventKind;
use crate::inbound::phone;
use crate::plan::vocabulary::{Capture, Plan, Ref, Step};
use crate::report::ExecutedOperation;
use crate::state::{dialpad_contact_key, phone_key, read_text, view_key, CachedView, ContactRecord, Store};
use contacts_api::Scope;
use serde_json::{json, Value};

/// Whose view is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    ContactId(String),
    /// A Dialpad contact the plugin has synced (see `plan::contact`).
    DialpadContact(String),
    /// Any format Dialpad sends; matched like a caller.
    Phone(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContactView {
    pub contact_id: String,
    pub contact: Value,
    pub tasks: Value,
    pub notes: Value,
    pub appointments: Value,
    pub from_cache: bool,
    /// Age of the cached view; 0 when read now.
    pub age_seconds: u64,
    pub operations: Vec<ExecutedOperation>,
}

/// The four reads of a view.
pub const VIEW_READS: [&str; 4] = ["get-contact", "get-all-tasks", "get-all-notes", "get-appointments-for-contact"];

pub fn get_view(subject: &Subject, config: &Config, store: &mut dyn Store, transport: &mut dyn Transport, now_seconds: u64) -> Result<ContactView, SyncError> {
    config.require_scopes(&[Scope::ContactsReadonly])?;
    let mut operations = Vec::new();
    let contact_id = resolve(subject, config, store, transport, &mut operations)?;
    let key = view_key(&config.location_id, &contact_id);
    if config.view_cache_ttl_seconds > 0 {
        if let Some(cached) = store.get(&key).map_err(SyncError::Storage)?.and_then(CachedView::decode) {
            let age = now_seconds.saturating_sub(cached.at_seconds);
            if age < config.view_cache_ttl_seconds {
                return Ok(ContactView { from_cache: true, age_seconds: age, operations, ..from_json(&contact_id, cached.view) });
            }
        }
    }
    let steps: Vec<Step> = VIEW_READS.iter().map(|id| Step { contact: Some(Ref::Known(contact_id.clone())), ..Step::new(id) }).collect();
    let (reads, bodies) = execute_together(&steps, config, transport);
    operations.extend(reads);
    let bodies = bodies?;
    let view = json!({
        "contact": bodies[0]["contact"],
        "tasks": bodies[1]["tasks"],
        "notes": bodies[2]["notes"],
        "appointments": bodies[3]["events"],
    });
    if config.view_cache_ttl_seconds > 0 {
        store.set(&key, &CachedView { at_seconds: now_seconds, view: view.clone() }.encode()).map_err(SyncError::Storage)?;
    }
    Ok(ContactView { operations, ..from_json(&contact_id, view) })
}

fn from_json(contact_id: &str, v: Value) -> ContactView {
    let list = |x: &Value| if x.is_array() { x.clone() } else { json!([]) };
    ContactView {
        contact_id: contact_id.to_string(),
        contact: v["contact"].clone(),
        tasks: list(&v["tasks"]),
        notes: list(&v["notes"]),
        appointments: list(&v["appointments"]),
        from_cache: false,
        age_seconds: 0,
        operations: Vec::new(),
    }
}

/// The HighLevel contact id of the subject: given, linked, or found by a duplicate search.
fn resolve(
    subject: &Subject,
    config: &Config,
    store: &mut dyn Store,
    transport: &mut dyn Transport,
    operations: &mut Vec<ExecutedOperation>,
) -> Result<String, SyncError> {
    match subject {
        Subject::ContactId(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Subject::ContactId(_) => Err(SyncError::InvalidInput(vec![Problem { path: "/contact-id".into(), message: "is empty".into() }])),
        Subject::DialpadContact(id) => {
            let record = store.get(&dialpad_contact_key(&config.location_id, id)).map_err(SyncError::Storage)?.and_then(|b| ContactRecord::decode(&b));
            match record {
                Some(r) if r.written != ContactRecord::DELETED => Ok(r.contact_id),
                _ => Err(SyncError::NotFound(format!("Dialpad contact {id} is not linked to a HighLevel contact (no contact event for it was synced)"))),
            }
        }
        Subject::Phone(raw) => {
            let e164 = phone::to_e164(raw, config.default_region).map_err(|_| {
                SyncError::malformed(format!("\"{raw}\" is not a phone number in E.164 or a national format of {}", config.default_region.code))
            })?;
            let key = phone_key(&config.location_id, e164.as_str());
            if let Some(id) = read_text(store, &key)? {
                return Ok(id);
            }
            let mut plan = Plan::empty(EventKind::Call, format!("view:{e164}"));
            plan.steps.push(Step {
                query: vec![("locationId", config.location_id.clone()), ("number", e164.as_str().to_string())],
                capture: Capture::Contact,
                ..Step::new("get-duplicate-contact")
            });
            let run = execute(&plan, config, transport);
            operations.extend(run.operations);
            if let Some(e) = run.error {
                return Err(e);
            }
            let id = run.contact_id.ok_or_else(|| SyncError::NotFound(format!("no HighLevel contact has the phone number {e164}")))?;
            store.set(&key, id.as_bytes()).map_err(SyncError::Storage)?;
            Ok(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::{HttpRequest, HttpResponse, NoAnswer};
    use crate::state::MemStore;

    /// Answers every read; counts batches so the test sees the four reads sent together.
    #[derive(Default)]
    struct Api {
        batches: Vec<usize>,
        sent: Vec<String>,
    }
    impl Transport for Api {
        fn send(&mut self, r: &HttpRequest) -> Result<HttpResponse, NoAnswer> {
            self.sent.push(r.url.clone());
            let body = if r.url.contains("/search/duplicate") {
                json!({"contact": {"id": "c7"}})
            } else if r.url.ends_with("/tasks") {
                json!({"tasks": [{"id": "t1"}]})
            } else if r.url.ends_with("/notes") {
                json!({"notes": []})
            } else if r.url.ends_with("/appointments") {
                json!({"events": [{"id": "e1"}]})
            } else {
                json!({"contact": {"id": "c7", "firstName": "Dana"}})
            };
            Ok(HttpResponse { status: 200, headers: vec![], body: body.to_string().into_bytes() })
        }
        fn sleep_ms(&mut self, _: u64) {}
        fn send_all(&mut self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, NoAnswer>> {
            self.batches.push(requests.len());
            requests.iter().map(|r| self.send(r)).collect()
        }
    }

    #[test]
    fn a_view_is_read_in_one_batch_then_served_from_cache_until_it_expires() {
        let config = Config::from_json(r#"{"location_id":"L","api_base":"http://api.test","view_cache_ttl_seconds":30}"#).unwrap();
        let (mut store, mut api) = (MemStore::default(), Api::default());
        let view = get_view(&Subject::Phone("(206) 555-0174".into()), &config, &mut store, &mut api, 1000).unwrap();
        assert_eq!(view.contact["firstName"], "Dana");
        assert_eq!((view.tasks.as_array().unwrap().len(), view.appointments.as_array().unwrap().len()), (1, 1));
        assert_eq!(api.batches, vec![4]);
        assert_eq!(api.sent.len(), 5, "one search, then the four reads");

        let cached = get_view(&Subject::Phone("+12065550174".into()), &config, &mut store, &mut api, 1029).unwrap();
        assert!(cached.from_cache && cached.operations.is_empty());
        assert_eq!(cached.age_seconds, 29);
        assert_eq!(api.sent.len(), 5);

        let fresh = get_view(&Subject::ContactId("c7".into()), &config, &mut store, &mut api, 1030).unwrap();
        assert!(!fresh.from_cache);
        assert_eq!(api.batches, vec![4, 4]);
    }

    #[test]
    fn unknown_subjects_are_typed_errors() {
        let config = Config::from_json(r#"{"location_id":"L"}"#).unwrap();
        let err = get_view(&Subject::DialpadContact("99".into()), &config, &mut MemStore::default(), &mut Api::default(), 0).unwrap_err();
        assert!(matches!(err, SyncError::NotFound(_)));
        let err = get_view(&Subject::Phone("call me".into()), &config, &mut MemStore::default(), &mut Api::default(), 0).unwrap_err();
        assert!(matches!(err, SyncError::MalformedEvent(_)));
    }
}
