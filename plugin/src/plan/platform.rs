//! Plans a task or note event from the automation platform (parsed in `inbound::platform`):
//! create, update and complete tasks, create and update notes, on the HighLevel contact they
//! name. Pure.

use super::vocabulary::{Capture, Plan, Ref, Step, When};
use crate::config::Config;
use crate::inbound::event::EventKind;
use crate::inbound::platform::{Action, PlatformEvent};
use crate::report::Outcome;
use crate::state::phone_key;
use serde_json::{json, Value};

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
    use crate::inbound::platform::parse;

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
}
