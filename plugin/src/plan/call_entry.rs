//! A finished call as an entry in HighLevel Conversations, through the app's Conversation
//! Provider of type Call: the contact's conversation found or created, the entry added with
//! the Dialpad call id as `altId`, and the call's recordings and voicemail attached through
//! Dialpad share links, also when they arrive later.
//!
//! Exactly once: the entry's id is kept on the call's note (and so in the call's record).
//! When the note's record may be behind (a host without durable state, or an earlier attempt
//! whose answer was lost), the conversation's call entries are read first and one with the
//! call's `altId` is taken instead of adding another.
//!
//! Requests, for a new call: `search-conversation` (+ `create-conversation` if none) +
//! `add-an-inbound-message` or `add-an-outbound-message` = 2 (3), plus `get-messages` when the
//! record may be behind, plus one share link and one `add-message-attachments` when the call
//! has a recording. A recording that arrives later: 1 share link + 1 attachments update.

use super::activity::CallActivity;
use super::vocabulary::{Capture, Plan, Ref, Step, When, CALL_ENTRY_ID, CONTACT_ID, CONVERSATION_ID, SHARE_LINKS};
use crate::config::Config;
use crate::error::SyncError;
use crate::inbound::dialpad::{CallEvent, Direction};
use crate::inbound::time;
use crate::plan::activity::CallResult;
use contacts_api::Scope;
use serde_json::{json, Map, Value};

/// Scopes call entries need: find (read) and create conversations, add messages.
pub const CALL_ENTRY_SCOPES: &[Scope] = &[Scope::ConversationsReadonly, Scope::ConversationsWrite, Scope::ConversationsMessageWrite];

/// HighLevel's `call.status` for a Dialpad call's result.
pub fn call_status(result: CallResult) -> &'static str {
    match result {
        CallResult::Completed | CallResult::Ended => "completed",
        CallResult::Missed => "no-answer",
        CallResult::Voicemail => "voicemail",
    }
}

/// What the planner knows of the call's entry.
pub struct EntryKnown<'a> {
    /// The entry's id, from the call's record.
    pub id: Option<&'a str>,
    /// The record may be behind what HighLevel holds: look before adding.
    pub look_first: bool,
    /// The recordings already attached (from the call's record): `(recording id, link)`.
    pub attached: &'a [(String, String)],
}

/// Adds the steps of the call's entry to `plan`, before its note steps (which name the entry),
/// and returns the recordings attached by them, for the record. Nothing when the feature is
/// off; a configuration error when it is on without its scopes.
pub fn add_call_entry(
    plan: &mut Plan,
    activity: &mut CallActivity,
    call: &CallEvent,
    contact: &Ref,
    known: EntryKnown,
    config: &Config,
) -> Result<Vec<String>, SyncError> {
    let Some(settings) = &config.conversations else { return Ok(Vec::new()) };
    config.require_scopes(CALL_ENTRY_SCOPES)?;
    let new_recordings: Vec<_> = call.recordings.iter().filter(|r| !known.attached.iter().any(|(id, _)| *id == r.id)).collect();
    if known.id.is_some() && new_recordings.is_empty() {
        return Ok(Vec::new());
    }
    let mut steps = Vec::new();
    let entry = match known.id {
        Some(id) => Some(id.to_string()),
        None => {
            // The steps that find or make the contact's conversation, then the entry.
            let contact_value = match contact {
                Ref::Known(id) => id.clone(),
                Ref::Resolved => CONTACT_ID.to_string(),
            };
            steps.push(Step {
                query: vec![("locationId", config.location_id.clone()), ("contactId", contact_value.clone())],
                capture: Capture::Conversation,
                ..Step::new("search-conversation")
            });
            steps.push(Step {
                body: Some(json!({ "locationId": config.location_id, "contactId": contact_value })),
                when: When::NoConversationFound,
                capture: Capture::CreatedConversation,
                ..Step::new("create-conversation")
            });
            if known.look_first {
                steps.push(Step {
                    query: vec![("type", "TYPE_CALL".into()), ("limit", "100".into())],
                    capture: Capture::CallEntryWithAltId(activity.call_id.clone()),
                    ..Step::new("get-messages")
                });
            }
            None
        }
    };
    for recording in &new_recordings {
        steps.push(Step {
            body: Some(json!({ "recording_id": recording.id, "recording_type": recording.kind, "privacy": settings.recording_privacy })),
            capture: Capture::ShareLink,
            ..Step::new("recording_share_link.create")
        });
    }
    if entry.is_none() {
        let outbound = activity.direction == Some(Direction::Outbound);
        let (from, to) = match (outbound, call.internal_number.as_deref()) {
            (true, ours) => (ours.unwrap_or_default().to_string(), activity.external_phone.clone()),
            (false, ours) => (activity.external_phone.clone(), ours.unwrap_or_default().to_string()),
        };
        let mut call_data = Map::new();
        if !from.is_empty() {
            call_data.insert("from".into(), json!(from));
        }
        if !to.is_empty() {
            call_data.insert("to".into(), json!(to));
        }
        call_data.insert("status".into(), json!(call_status(activity.result)));
        let mut body = json!({
            "type": "Call",
            "conversationId": CONVERSATION_ID,
            "conversationProviderId": settings.provider_id,
            "altId": activity.call_id,
            "call": Value::Object(call_data),
        });
        if let Some(ms) = activity.started_ms {
            body["date"] = json!(time::iso(ms));
        }
        if !new_recordings.is_empty() {
            body["attachments"] = json!([SHARE_LINKS]);
        }
        let id = if outbound { "add-an-outbound-message" } else { "add-an-inbound-message" };
        // The endpoint says the direction: the spec types `direction` as an object (its example
        // is a list of strings), so a string there would break the spec; it is left out.
        if !outbound {
            body["contactId"] = json!(match contact {
                Ref::Known(id) => id.clone(),
                Ref::Resolved => CONTACT_ID.to_string(),
            });
        }
        steps.push(Step { body: Some(body), when: When::NoCallEntryFound, capture: Capture::CallEntry, ..Step::new(id) });
        // An entry found by its altId (an earlier attempt's landed) gets the recordings here.
        if !new_recordings.is_empty() && known.look_first {
            steps.push(attachments_step(known.attached, When::CallEntryKnown));
        }
        activity.call_entry_id = Some(CALL_ENTRY_ID.to_string());
    } else {
        steps.push(Step { other_params: vec![("messageId", entry.clone().unwrap_or_default())], ..attachments_step(known.attached, When::Always) });
    }
    // Before the note's writes, which name the entry; when looking first, after the note's
    // marker search, which may name it too.
    let note_step = |s: &Step| matches!(s.capture, Capture::Note) || (!known.look_first && matches!(s.capture, Capture::NoteWithMarker(_)));
    let at = plan.steps.iter().position(note_step).unwrap_or(plan.steps.len());
    plan.steps.splice(at..at, steps);
    Ok(new_recordings.iter().map(|r| r.id.clone()).collect())
}

/// The attachments update: every share link made for the call, the earlier ones first
/// (HighLevel replaces the list, up to 5).
fn attachments_step(attached: &[(String, String)], when: When) -> Step {
    let mut links: Vec<Value> = attached.iter().map(|(_, link)| json!(link)).collect();
    links.push(json!(SHARE_LINKS));
    Step { body: Some(json!({ "attachments": links })), when, ..Step::new("add-message-attachments") }
}
