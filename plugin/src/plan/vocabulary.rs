//! The plan vocabulary: a [`Plan`] of [`Step`]s, each run [`When`] its condition holds, naming
//! ids by [`Ref`] and resolving later ones by [`Capture`]; and the [`KnownState`] every planner
//! reads. No planner is named here.

use super::activity::CallActivity;
use crate::inbound::dialpad::CallEvent;
use crate::inbound::event::EventKind;
use crate::report::{Outcome, PlanView, PlannedOperation};
use crate::state::{ContactRecord, NoteRecord};
use contacts_api::{op, Operation, Scope};
use serde_json::Value;

/// Scopes call sync needs: it searches (read) and creates contacts and notes (write).
pub const CALL_SYNC_SCOPES: &[Scope] = &[Scope::ContactsReadonly, Scope::ContactsWrite];

/// What the plugin already knows, read from its key-value store before planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownState {
    /// The HighLevel contact linked to the caller's number.
    pub contact_id: Option<String>,
    /// What the plugin recorded about this call or message: where its note is, what it says.
    pub record: Option<NoteRecord>,
    /// For calls: the id under which an earlier leg of the same call was recorded.
    pub call_activity_id: Option<String>,
    /// For Dialpad contact events: the linked HighLevel contact and what was last written.
    pub contact_record: Option<ContactRecord>,
    /// An earlier delivery of this call or message stopped after sending a write whose answer
    /// never came: it may have landed. Creates are then checked for first (the note by its
    /// marker, tasks by title and body), so a retry never writes them twice.
    pub uncertain: bool,
    /// For Dialpad contact events: this very event (same content) was applied before.
    pub event_seen: bool,
    /// For calls: the call's entry in Conversations, as recorded.
    pub call_entry: Option<crate::state::CallEntryRecord>,
    /// For calls: the call has ended (a ringing event after that is stale).
    pub call_ended: bool,
    /// For ringing calls: the agent's latest screen pops, `<Unix ms>:<call id>` each.
    pub screen_pops: Vec<String>,
    /// For calls: the agent's HighLevel user, as recorded.
    pub owner_id: Option<String>,
    /// When the event is handled (Unix ms), for what depends on the clock (a stale screen pop).
    pub now_ms: i64,
    /// For Dialpad contact events under two-way sync: the linked HighLevel contact's synced
    /// fields as HighLevel last held them.
    pub highlevel_state: Option<serde_json::Map<String, Value>>,
}

/// Placeholders in a step's body, filled by the executor from what earlier steps resolved:
/// a string value equal to one is replaced by the id (a missing owner drops its key); the call
/// entry's id is replaced inside text too (the note names it); an array item equal to
/// [`SHARE_LINKS`] becomes the share links made.
pub const CONTACT_ID: &str = "{contactId}";
pub const CONVERSATION_ID: &str = "{conversationId}";
pub const CALL_ENTRY_ID: &str = "{callEntryId}";
pub const OWNER_ID: &str = "{ownerId}";
pub const SHARE_LINKS: &str = "{shareLinks}";
/// The contact's phone, read by an earlier step (click-to-call).
pub const CONTACT_PHONE: &str = "{contactPhone}";
/// The Dialpad user found by e-mail, as the number Dialpad's API takes.
pub const DIALPAD_USER_ID: &str = "{dialpadUserId}";
/// In a record's value: the id of the Dialpad contact the run wrote.
pub const DIALPAD_CONTACT_ID: &str = "{dialpadContactId}";

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
    /// The step of a rule, without a durable record: runs when this run wrote the note and
    /// the note found (if any) does not name the rule yet, so a redelivery makes no second task.
    AutomationNew,
    /// A create whose twin may already exist: runs unless the list an earlier step read holds
    /// an item with the same title and body (tasks) or body (notes), and a contact is known.
    NoSameItem,
    /// The conversation search found none.
    NoConversationFound,
    /// No call entry with this `altId` is in the messages an earlier step read (nor known).
    NoCallEntryFound,
    /// The call entry is known (made or found by an earlier step).
    CallEntryKnown,
    /// The owner search has not matched a user yet.
    NoOwnerFound,
}

impl KnownState {
    /// The agent's latest screen pops: `(Unix ms, call id)`.
    pub fn screen_pop_entries(&self) -> impl Iterator<Item = (i64, &str)> {
        self.screen_pops.iter().filter_map(|e| e.split_once(':')).filter_map(|(at, id)| Some((at.parse().ok()?, id)))
    }
}

impl When {
    pub fn describe(self) -> Option<&'static str> {
        match self {
            When::Always => None,
            When::NoContactFound => Some("if the duplicate search finds no contact"),
            When::ContactExisted => Some("if the contact existed before this event"),
            When::NoNoteFound => Some("unless this call's note already exists"),
            When::NoteDiffers => Some("if this call's note exists and this event adds to it (the body is then the note merged with this event)"),
            When::AutomationNew => Some("if the note was written now and does not name this rule yet"),
            When::NoSameItem => Some("unless the list just read holds the same item (an earlier attempt's write may have landed)"),
            When::NoConversationFound => Some("if the search finds no conversation of the contact"),
            When::NoCallEntryFound => Some("unless the conversation already holds this call's entry (same altId)"),
            When::CallEntryKnown => Some("once the call entry is known"),
            When::NoOwnerFound => Some("unless the agent's HighLevel user is already known"),
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
    /// `task.id` of the response.
    Task,
    /// The `tasks` list of the response, for [`When::NoSameItem`].
    Tasks,
    /// The `notes` list of the response, for [`When::NoSameItem`].
    Notes,
    /// The whole response body, for an action's caller.
    Response,
    /// `conversations[0].id` of a conversation search.
    Conversation,
    /// `conversation.id` of a created conversation, or `conversationId` of an "already
    /// exists" refusal.
    CreatedConversation,
    /// The call entry with this `altId` in a conversation's messages.
    CallEntryWithAltId(String),
    /// `messageId` of an added call entry.
    CallEntry,
    /// `access_link` of a Dialpad recording share link: attached to the call entry.
    ShareLink,
    /// The id of the user with this e-mail in a users listing (HighLevel's `users`, Dialpad's
    /// `items`), else the fallback user.
    UserWithEmail(String, Option<String>),
    /// `id` of a Dialpad contact written.
    DialpadContact,
    /// `contact.phone` of the response.
    ContactPhone,
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
    pub merge_into_found_note: Option<Box<Merge>>,
    /// The rule this step belongs to (a task, a tag change).
    pub automation: Option<String>,
}

/// What an `update-note` after a marker search merges into the note it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub event: CallEvent,
    /// Rules that fired with this event.
    pub automations: Vec<String>,
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
            automation: None,
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
    /// Key-value key of the event's record (its note), and of the caller's contact link.
    pub record_key: Option<String>,
    pub phone_key: Option<String>,
    /// The note body the steps write, recorded once they succeed.
    pub note_body: Option<String>,
    /// Key-value links to record with it (a call's leg ids → the id its activity is under).
    pub aliases: Vec<(String, String)>,
    /// For Dialpad contact events: what to record under `record_key` with the contact's id.
    pub contact_record: Option<String>,
    /// Keys to clear once the steps succeed (links to a deleted contact).
    pub clear_keys: Vec<String>,
    /// Keys to set once the steps succeed (a contact event applied).
    pub done_keys: Vec<String>,
    /// For calls with an entry in Conversations: its record's key, what it holds, and the
    /// recordings this plan's share links are for (in the order they are made).
    pub call_entry_key: Option<String>,
    /// The entry's id when it was known before this plan.
    pub call_entry_id: Option<String>,
    pub call_entry_attached: Vec<(String, String)>,
    pub new_recordings: Vec<String>,
    /// Other records to write once the steps succeed: `(key, value)`; a value may hold the
    /// placeholders the executor fills (a screen pop's time, a Dialpad contact's id).
    pub records: Vec<(String, String)>,
}

impl Plan {
    /// A plan with no steps yet, to be synced.
    pub(crate) fn empty(kind: EventKind, event_key: String) -> Plan {
        Plan {
            kind,
            event_key,
            outcome: Outcome::Synced,
            summary: String::new(),
            steps: Vec::new(),
            activity: None,
            record_key: None,
            phone_key: None,
            note_body: None,
            aliases: Vec::new(),
            contact_record: None,
            clear_keys: Vec::new(),
            done_keys: Vec::new(),
            call_entry_key: None,
            call_entry_id: None,
            call_entry_attached: Vec::new(),
            new_recordings: Vec::new(),
            records: Vec::new(),
        }
    }

    pub(crate) fn skip(kind: EventKind, event_key: String, reason: impl Into<String>) -> Plan {
        let reason = reason.into();
        Plan { summary: format!("skipped: {reason}"), outcome: Outcome::Skipped(reason), ..Plan::empty(kind, event_key) }
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
