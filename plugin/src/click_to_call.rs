//! Click-to-call, a workflow action: start a Dialpad call from a HighLevel contact
//! (`POST /api/v2/call`), with `custom_data` naming the contact, so the call's events are
//! matched to that contact exactly, with no phone search (see `CallEvent::custom_contact_id`).
//!
//! Input: `{"contactId": "<HighLevel contact>", "userId": "<Dialpad user>" | "email": "<the
//! agent's e-mail>", "phone": "<number>"?}`; `phone` defaults to the contact's, `email` is
//! looked up among Dialpad's users.

use crate::config::Config;
use crate::error::{Problem, SyncError};
use crate::inbound::dialpad::CUSTOM_DATA_PREFIX;
use crate::inbound::event::EventKind;
use crate::inbound::phone;
use crate::plan::vocabulary::{Capture, Plan, Ref, Step, CONTACT_PHONE, DIALPAD_USER_ID};
use contacts_api::Scope;
use serde_json::{json, Map, Value};

/// The action's id in the catalog and for `actions.invoke`.
pub const ACTION_ID: &str = "click-to-call";

/// The HighLevel grant it may need beside Dialpad's: reading the contact's phone.
pub const SCOPES: &[Scope] = &[Scope::ContactsReadonly];

/// The JSON Schema of the action's input.
pub fn input_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": ACTION_ID,
        "description": "Start a Dialpad call to a HighLevel contact; the call's events come back matched to that contact.",
        "type": "object",
        "additionalProperties": false,
        "required": ["contactId"],
        "properties": {
            "contactId": {"type": "string", "minLength": 1, "description": "the HighLevel contact to call"},
            "userId": {"type": "string", "pattern": "^[0-9]+$", "description": "the Dialpad user who places the call"},
            "email": {"type": "string", "description": "or the Dialpad user's e-mail, looked up among Dialpad's users"},
            "phone": {"type": "string", "description": "the number to call; defaults to the contact's phone"}
        },
        "oneOf": [{"required": ["userId"]}, {"required": ["email"]}]
    })
}

/// Plans the call: checked input, then (when needed) the contact's phone and the user by
/// e-mail, then the call.
pub fn plan(input: &Map<String, Value>, config: &Config) -> Result<Plan, SyncError> {
    let mut problems = Vec::new();
    let text = |key: &str, problems: &mut Vec<Problem>| match input.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(_) => {
            problems.push(Problem { path: format!("/{key}"), message: "must be a non-empty string".into() });
            None
        }
    };
    let contact = text("contactId", &mut problems);
    let user = text("userId", &mut problems);
    let email = text("email", &mut problems);
    let phone = text("phone", &mut problems);
    for key in input.keys().filter(|k| !["contactId", "userId", "email", "phone"].contains(&k.as_str())) {
        problems.push(Problem { path: format!("/{key}"), message: format!("unknown input for {ACTION_ID}") });
    }
    if contact.is_none() && !problems.iter().any(|p| p.path == "/contactId") {
        problems.push(Problem { path: "/contactId".into(), message: "required".into() });
    }
    let user_number = match (&user, &email) {
        (Some(u), _) => match u.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(Problem { path: "/userId".into(), message: "must be a Dialpad user id (digits)".into() });
                None
            }
        },
        (None, Some(_)) => None,
        (None, None) => {
            problems.push(Problem { path: "/userId".into(), message: "required: the Dialpad user who places the call (or their `email`)".into() });
            None
        }
    };
    let phone = match phone.map(|p| phone::to_e164(&p, config.default_region)) {
        Some(Ok(p)) => Some(p.as_str().to_string()),
        Some(Err(_)) => {
            problems.push(Problem {
                path: "/phone".into(),
                message: format!("not a phone number in E.164 or a national format of {}", config.default_region.code),
            });
            None
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(SyncError::InvalidInput(problems));
    }
    let contact = contact.unwrap_or_default();
    let mut steps = Vec::new();
    if phone.is_none() {
        config.require_scopes(SCOPES)?;
        steps.push(Step { contact: Some(Ref::Known(contact.clone())), capture: Capture::ContactPhone, ..Step::new("get-contact") });
    }
    if let (None, Some(email)) = (&user_number, &email) {
        steps.push(Step { query: vec![("email", email.clone())], capture: Capture::UserWithEmail(email.clone(), None), ..Step::new("users.list") });
    }
    let body = json!({
        "phone_number": phone.unwrap_or_else(|| CONTACT_PHONE.to_string()),
        "user_id": user_number.map_or(json!(DIALPAD_USER_ID), |n| json!(n)),
        "custom_data": format!("{CUSTOM_DATA_PREFIX}{contact}"),
    });
    steps.push(Step { body: Some(body), capture: Capture::Response, ..Step::new("call.call") });
    Ok(Plan { summary: format!("click-to-call: HighLevel contact {contact}"), steps, ..Plan::empty(EventKind::Call, format!("action:{ACTION_ID}")) })
}
