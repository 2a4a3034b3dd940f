//! The pure planner: event + configuration + known state → the Contacts API operations to send.
//!
//! No I/O here. A plan is a list of steps; a step's path may refer to an id that an earlier
//! step resolves (the contact found or created, the call's note found), and may run only under
//! a condition on what earlier steps found. The executor runs it; a dry run prints it.
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

use crate::activity::{note_marker, CallActivity};
use crate::rules::{self, Facts};
use crate::config::Config;
use crate::dialpad::{state_role, CallEvent, Direction, Event, Party, SmsEvent, StateRole};
use crate::phone::E164;
use crate::error::{EventKind, Outcome, PlanView, PlannedOperation, SyncError};
use crate::time;
use contacts_api::{op, Operation, Scope};
use serde_json::{json, Value};

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
    pub contact_record: Option<crate::contact_sync::ContactRecord>,
    /// An earlier delivery of this call or message stopped after sending a write whose answer
    /// never came: it may have landed. Creates are then checked for first (the note by its
    /// marker, tasks by title and body), so a retry never writes them twice.
    pub uncertain: bool,
    /// For Dialpad contact events: this very event (same content) was applied before.
    pub event_seen: bool,
}

/// The key-value record of one call or message: where its note is and what it says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NoteRecord {
    pub contact_id: String,
    pub note_id: String,
    pub activity: CallActivity,
    /// The note body last written, so an event that changes nothing writes nothing.
    pub written_body: String,
}

impl NoteRecord {
    /// `contact id`, `note id`, newest event timestamp, then the note as written, one per line.
    /// The activity is not stored twice: it is the note read back (`from_note_body`), which
    /// keeps serde's derive code out of the component.
    pub fn encode(&self) -> Vec<u8> {
        let last = self.activity.last_event_ms.map(|ms| ms.to_string()).unwrap_or_default();
        let automations = self.activity.automations.join(",");
        format!("{}\n{}\n{last}\n{automations}\n{}", self.contact_id, self.note_id, self.written_body).into_bytes()
    }

    /// `None` when the bytes are not a record. A note that does not read back (it cannot
    /// happen with notes this version wrote) leaves only the ids: the call's note is then
    /// updated from this event alone rather than written twice.
    pub fn decode(bytes: &[u8]) -> Option<NoteRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(5, '\n');
        let (contact_id, note_id, last, automations, written_body) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if contact_id.is_empty() || note_id.is_empty() {
            return None;
        }
        let mut activity = CallActivity::from_note_body(written_body).unwrap_or_default();
        activity.last_event_ms = last.parse().ok();
        // The rules whose steps all succeeded: the note may name one whose task then failed.
        activity.automations = automations.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect();
        Some(NoteRecord { contact_id: contact_id.into(), note_id: note_id.into(), activity, written_body: written_body.into() })
    }
}

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

/// The key-value key linking a phone number to a HighLevel contact.
pub fn phone_key(location_id: &str, e164: &str) -> String {
    format!("contact-by-phone:{location_id}:{e164}")
}

/// The key-value key of a call's record.
pub fn call_key(location_id: &str, call_id: &str) -> String {
    format!("call:{location_id}:{call_id}")
}

/// The key-value key linking a call leg's id to the id its call is recorded under.
pub fn call_alias_key(location_id: &str, call_id: &str) -> String {
    format!("call-leg:{location_id}:{call_id}")
}

/// The key-value key of an SMS's record.
pub fn sms_key(location_id: &str, sms_id: &str) -> String {
    format!("sms:{location_id}:{sms_id}")
}

/// The key-value keys the planner wants read for an event: the caller's contact link, and the
/// record of the call or message. For a call, `activity_id` is the id its legs are recorded
/// under (from the leg links; see [`call_alias_key`]).
pub fn state_keys(event: &Event, config: &Config, activity_id: Option<&str>) -> (Option<String>, Option<String>) {
    let location = &config.location_id;
    match event {
        Event::Call(c) => (
            c.external_phone.as_ref().map(|p| phone_key(location, p.as_str())),
            Some(call_key(location, activity_id.unwrap_or(c.default_activity_id()))),
        ),
        Event::Sms(m) => (m.external_phone.as_ref().map(|p| phone_key(location, p.as_str())), Some(sms_key(location, &m.id))),
        Event::Contact(c) => (
            c.phone.as_ref().map(|p| phone_key(location, p.as_str())),
            Some(crate::contact_sync::dialpad_contact_key(location, &c.id)),
        ),
        _ => (None, None),
    }
}

/// Plans one event. Pure: the same inputs always give the same plan.
pub fn plan(event: &Event, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
    // Checked for every kind, so a misconfigured trigger says what is missing on its first event.
    config.require_scopes(CALL_SYNC_SCOPES)?;
    match event {
        Event::Call(call) => plan_call(call, config, known),
        Event::Sms(sms) => plan_sms(sms, config, known),
        Event::Contact(contact) => Ok(crate::contact_sync::plan_contact(contact, config, known)),
        Event::AgentStatus => {
            Ok(Plan::skip(EventKind::AgentStatus, "agent-status".into(), "agent status events have no Contacts API counterpart"))
        }
    }
}

fn no_usable_phone(raw: &Option<String>, config: &Config, fields: &str) -> SyncError {
    SyncError::malformed(match raw {
        Some(raw) => format!("no usable phone number: \"{raw}\" is not a phone number in E.164 or a national format of {}", config.default_region.code),
        None => format!("no usable phone number: {fields} are empty"),
    })
}

fn plan_call(call: &CallEvent, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
    let key = call.event_key();
    match state_role(&call.state) {
        StateRole::InProgress => {
            return Ok(Plan::skip(EventKind::Call, key, format!("call still in progress ({}): nothing is written until it ends", call.state)))
        }
        StateRole::Ignored => return Ok(Plan::skip(EventKind::Call, key, format!("call state \"{}\" is not synced", call.state))),
        StateRole::Ended | StateRole::FollowUp => {}
    }
    if call.is_internal {
        return Ok(Plan::skip(EventKind::Call, key, "internal call between Dialpad users: no external contact"));
    }
    let phone = call.external_phone.as_ref().ok_or_else(|| no_usable_phone(&call.external_number_raw, config, "external_number and contact.phone"))?;
    // Legs of one call (transfers, call centers) share one activity and one note, recorded
    // under the id of the first leg seen, or of the leg this one names as its master.
    let activity_id = known.call_activity_id.clone().unwrap_or_else(|| call.default_activity_id().to_string());
    let mut activity = known.record.as_ref().map(|r| r.activity.clone()).unwrap_or_default();
    activity.call_id = activity_id.clone();
    activity.merge(call);
    let event_ms = activity.last_event_ms.or(call.ended_ms).or(activity.started_ms).unwrap_or_default();
    let context = TaskContext { contact_name: call.party.name.as_deref(), call: Some(&activity), sms: None, event_ms, marker: note_marker(&activity_id) };
    let fired = automations(&Facts::of_call(&activity), config, &activity.automations, &context);
    activity.automations.extend(fired.iter().map(|a| a.name.clone()));
    let note = NoteSubject {
        kind: EventKind::Call,
        event_key: key,
        record_key: call_key(&config.location_id, &activity_id),
        phone,
        party: &call.party,
        marker: note_marker(&activity_id),
        body: activity.note_body(),
        summary: call_summary(&activity),
        merge: Some(Box::new(Merge { event: call.clone(), automations: fired.iter().map(|a| a.name.clone()).collect() })),
    };
    let mut plan = plan_note(note, config, known);
    add_automations(&mut plan, fired, config, known);
    plan.aliases = call.all_call_ids().map(|id| (call_alias_key(&config.location_id, id), activity_id.clone())).collect();
    plan.activity = Some(activity);
    Ok(plan)
}

fn plan_sms(sms: &SmsEvent, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
    if sms.is_internal {
        return Ok(Plan::skip(EventKind::Sms, sms.event_key(), "internal message between Dialpad users: no external contact"));
    }
    let phone = sms.external_phone.as_ref().ok_or_else(|| no_usable_phone(&sms.external_number_raw, config, "from_number, to_number and contact.phone_number"))?;
    let direction = sms.direction.map(Direction::as_str).unwrap_or("unknown-direction");
    let done = known.record.as_ref().map(|r| r.activity.automations.clone()).unwrap_or_default();
    let context = TaskContext {
        contact_name: sms.party.name.as_deref(),
        call: None,
        sms: Some(sms),
        event_ms: sms.created_ms.unwrap_or_default(),
        marker: sms_note_marker(&sms.id),
    };
    let fired = automations(&Facts::of_sms(sms), config, &done, &context);
    let mut all = done.clone();
    all.extend(fired.iter().map(|a| a.name.clone()));
    let note = NoteSubject {
        kind: EventKind::Sms,
        event_key: sms.event_key(),
        record_key: sms_key(&config.location_id, &sms.id),
        phone,
        party: &sms.party,
        marker: sms_note_marker(&sms.id),
        body: sms_note_body(sms, &all),
        summary: format!("{direction} SMS {} {}", if sms.direction == Some(Direction::Outbound) { "to" } else { "from" }, phone),
        // A message never changes: a found note is left as it is.
        merge: None,
    };
    let mut plan = plan_note(note, config, known);
    add_automations(&mut plan, fired, config, known);
    plan.activity = Some(CallActivity { automations: all, ..CallActivity::default() });
    Ok(plan)
}

/// What a task's placeholders and due date are filled from.
struct TaskContext<'a> {
    contact_name: Option<&'a str>,
    call: Option<&'a CallActivity>,
    sms: Option<&'a SmsEvent>,
    event_ms: i64,
    /// The call's or message's note marker, also the last line of its rules' tasks, so the
    /// same rule's task on two calls of one contact differ, and a retry recognises its own.
    marker: String,
}

/// A rule that newly fired, with the steps it takes (their contact is set by the caller).
struct Automation {
    name: String,
    steps: Vec<Step>,
}

/// The rules that match the event and have not fired for it yet, in configuration order:
/// tag rules, follow-up rules, then recap action items.
fn automations(facts: &Facts, config: &Config, done: &[String], context: &TaskContext) -> Vec<Automation> {
    let new = |name: &String| !done.contains(name);
    let mut fired = Vec::new();
    for rule in config.tag_rules.iter().filter(|r| new(&r.name) && r.when.matches(facts)) {
        let mut steps = Vec::new();
        if !rule.add.is_empty() {
            steps.push(Step { body: Some(json!({ "tags": rule.add })), ..Step::new("add-tags") });
        }
        if !rule.remove.is_empty() {
            steps.push(Step { body: Some(json!({ "tags": rule.remove })), ..Step::new("remove-tags") });
        }
        fired.push(Automation { name: rule.name.clone(), steps });
    }
    for rule in config.follow_up_rules.iter().filter(|r| new(&r.name) && r.when.matches(facts)) {
        let value = |n: &str| rules::task_value(n, &rule.name, context.contact_name, context.call, context.sms);
        let mut body = json!({
            "title": rule.task.title.render(&value),
            "dueDate": rule.task.due.at(context.event_ms, &config.time_zone),
            "completed": false,
        });
        body["body"] = json!(match &rule.task.body {
            Some(text) => format!("{}\n\n{}", text.render(&value), context.marker),
            None => context.marker.clone(),
        });
        if let Some(user) = &rule.task.assigned_to {
            body["assignedTo"] = json!(user);
        }
        fired.push(Automation { name: rule.name.clone(), steps: vec![Step { body: Some(body), ..Step::new("create-task") }] });
    }
    let items = context.call.map(|a| a.recap_action_items.as_slice()).unwrap_or_default();
    if config.action_items.create_tasks && !items.is_empty() && new(&rules::ACTION_ITEMS.to_string()) {
        let call_id = context.call.map(|a| a.call_id.as_str()).unwrap_or_default();
        let steps = items
            .iter()
            .map(|item| {
                let mut body = json!({
                    "title": item,
                    "body": format!("Action item from the Dialpad Ai recap of call {call_id}."),
                    "dueDate": config.action_items.due.at(context.event_ms, &config.time_zone),
                    "completed": false,
                });
                if let Some(user) = &config.action_items.assigned_to {
                    body["assignedTo"] = json!(user);
                }
                Step { body: Some(body), ..Step::new("create-task") }
            })
            .collect();
        fired.push(Automation { name: rules::ACTION_ITEMS.to_string(), steps });
    }
    fired
}

/// Appends the rules' steps after the note's, on the note's contact. A failed step leaves its
/// rule unrecorded, so the next event of the call retries it. Without a durable record, or
/// after a delivery whose write may have landed unseen, the contact's tasks are read first and
/// a task already there is not made again; tags are idempotent.
fn add_automations(plan: &mut Plan, fired: Vec<Automation>, config: &Config, known: &KnownState) {
    if matches!(plan.outcome, Outcome::Skipped(_)) || fired.is_empty() {
        return;
    }
    // The note may already say everything (it was written, then a rule's step failed): the
    // rules still to do run on the recorded contact.
    let contact = plan.steps.last().and_then(|s| s.contact.clone()).or_else(|| known.record.as_ref().map(|r| Ref::Known(r.contact_id.clone())));
    let Some(contact) = contact else { return };
    plan.outcome = Outcome::Synced;
    let names: Vec<&str> = fired.iter().map(|a| a.name.as_str()).collect();
    if !names.is_empty() {
        plan.summary = format!("{}; rules: {}", plan.summary, names.join(", "));
    }
    let verify = !config.durable_state || known.uncertain;
    let makes_tasks = fired.iter().flat_map(|a| &a.steps).any(|s| s.operation.id == "create-task");
    if verify && makes_tasks {
        plan.steps.push(Step { contact: Some(contact.clone()), when: When::ContactExisted, capture: Capture::Tasks, ..Step::new("get-all-tasks") });
    }
    for automation in fired {
        for step in automation.steps {
            let when = match (step.operation.id, config.durable_state, verify) {
                ("create-task", _, true) => When::NoSameItem,
                (_, false, _) => When::AutomationNew,
                _ => When::Always,
            };
            plan.steps.push(Step { contact: Some(contact.clone()), when, automation: Some(automation.name.clone()), ..step });
        }
    }
}

/// An event that becomes one note on the external party's contact.
struct NoteSubject<'a> {
    kind: EventKind,
    event_key: String,
    record_key: String,
    phone: &'a E164,
    party: &'a Party,
    /// The note's last line, by which it is found again.
    marker: String,
    body: String,
    summary: String,
    /// For calls: merged into a note found by its marker (stateless hosts).
    merge: Option<Box<Merge>>,
}

/// Finds or creates the contact, then creates the note, or updates it when it exists and
/// says something else.
fn plan_note(subject: NoteSubject, config: &Config, known: &KnownState) -> Plan {
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

/// The line that identifies a message's note.
pub fn sms_note_marker(sms_id: &str) -> String {
    format!("Dialpad SMS ID: {sms_id}")
}

/// The note of one message. Empty text is kept as such: an MMS may carry only its media.
pub fn sms_note_body(sms: &SmsEvent, automations: &[String]) -> String {
    let mut lines = Vec::new();
    let (kind, direction) = (if sms.mms_url.is_some() { "MMS" } else { "SMS" }, sms.direction.map(Direction::as_str).unwrap_or("unknown-direction"));
    lines.push(format!("Dialpad {kind}: {direction}"));
    let external = sms.external_phone.as_ref().map(E164::as_str).unwrap_or("?");
    let ours = match (&sms.agent.name, &sms.agent_number) {
        (Some(n), Some(p)) => format!("{n} ({p})"),
        (Some(n), None) => n.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => "Dialpad".to_string(),
    };
    match sms.direction {
        Some(Direction::Outbound) => lines.extend([format!("From: {ours}"), format!("To: {external}")]),
        _ => lines.extend([format!("From: {external}"), format!("To: {ours}")]),
    }
    if let Some(ms) = sms.created_ms {
        lines.push(format!("When: {}", time::utc_minutes(ms)));
    }
    if let Some(url) = &sms.mms_url {
        lines.push(format!("Media: {url}"));
    }
    lines.extend(crate::activity::automations_line(automations));
    lines.push(String::new());
    lines.push(sms.text.clone().unwrap_or_else(|| "(no text)".to_string()));
    lines.push(String::new());
    lines.push(sms_note_marker(&sms.id));
    lines.join("\n")
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

fn call_summary(a: &CallActivity) -> String {
    let direction = a.direction.map(|d| d.as_str()).unwrap_or("unknown-direction");
    let preposition = if a.direction == Some(crate::dialpad::Direction::Outbound) { "to" } else { "from" };
    let result = a.result.as_str();
    match a.talk_ms {
        Some(ms) => format!("{direction} call {preposition} {} ({result}, {})", a.external_phone, time::duration(ms)),
        None => format!("{direction} call {preposition} {} ({result})", a.external_phone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialpad;
    use crate::phone;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    fn event(name: &str) -> Event {
        dialpad::parse(&std::fs::read(format!("{FIXTURES}{name}")).unwrap(), phone::region("US").unwrap()).unwrap()
    }

    fn config(durable: bool) -> Config {
        Config::from_json(&json!({"location_id": "loc-1", "durable_state": durable}).to_string()).unwrap()
    }

    fn ops(plan: &Plan) -> Vec<(&str, String, Option<&'static str>)> {
        plan.steps.iter().map(|s| (s.operation.id, s.display_path(), s.when.describe())).collect()
    }

    #[test]
    fn unknown_caller_is_searched_created_and_noted() {
        let plan = plan(&event("call_inbound_hangup_completed.json"), &config(true), &KnownState::default()).unwrap();
        assert_eq!(plan.outcome, Outcome::Synced);
        assert_eq!(plan.event_key, "call:6011482093420544:hangup");
        assert_eq!(
            ops(&plan),
            vec![
                ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-1&number=%2B13125550187".to_string(), None),
                ("create-contact", "/contacts/".to_string(), Some("if the duplicate search finds no contact")),
                ("create-note", "/contacts/{contactId}/notes".to_string(), None),
            ]
        );
        // The formatted number Dialpad uses as a name is not sent as one.
        assert_eq!(plan.steps[1].body, Some(json!({"locationId": "loc-1", "phone": "+13125550187", "source": "Dialpad"})));
        let body = plan.steps[2].body.as_ref().unwrap()["body"].as_str().unwrap().to_string();
        assert!(body.starts_with("Dialpad call: inbound, completed\nFrom: +13125550187\nWhen: 2026-03-10 15:04 UTC\nDuration: 4m 07s\nAgent: Maya Patel <maya.patel@example.com>"), "{body}");
        assert!(body.ends_with("Dialpad call ID: 6011482093420544"));
    }

    #[test]
    fn a_caller_not_found_by_phone_is_looked_for_by_email() {
        let plan = plan(&event("call_outbound_hangup_recorded.json"), &config(true), &KnownState::default()).unwrap();
        assert_eq!(
            ops(&plan),
            vec![
                ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-1&number=%2B15035550139".to_string(), None),
                ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-1&email=kenji.watanabe%40example.net".to_string(), Some("if the duplicate search finds no contact")),
                ("create-contact", "/contacts/".to_string(), Some("if the duplicate search finds no contact")),
                ("create-note", "/contacts/{contactId}/notes".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_known_caller_needs_one_request() {
        let known = KnownState { contact_id: Some("c-9".into()), ..Default::default() };
        let plan = plan(&event("call_outbound_hangup_recorded.json"), &config(true), &known).unwrap();
        assert_eq!(ops(&plan), vec![("create-note", "/contacts/c-9/notes".to_string(), None)]);
        let body = plan.steps[0].body.as_ref().unwrap()["body"].as_str().unwrap();
        assert!(body.contains("Recording: https://dialpad.com/secureblob/recording/EXAMPLErecordingBlobKeyD0001"));
        assert!(body.contains("Dialpad call: outbound, completed\nTo: +15035550139"));
    }

    #[test]
    fn without_durable_state_the_note_is_looked_for_first() {
        let plan = plan(&event("call_inbound_missed.json"), &config(false), &KnownState::default()).unwrap();
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.operation.id).collect();
        assert_eq!(ids, vec!["get-duplicate-contact", "get-duplicate-contact", "create-contact", "get-all-notes", "update-note", "create-note"]);
        assert_eq!(plan.steps[2].body.as_ref().unwrap()["firstName"], "Dana");
        assert_eq!(plan.steps[2].body.as_ref().unwrap()["lastName"], "Whitfield");
    }

    #[test]
    fn in_progress_and_other_kinds_are_skipped_with_a_reason() {
        for f in ["call_inbound_ringing_unknown_number.json", "call_inbound_connected.json"] {
            let p = plan(&event(f), &config(true), &KnownState::default()).unwrap();
            assert!(matches!(p.outcome, Outcome::Skipped(ref r) if r.contains("in progress")), "{f}");
            assert!(p.steps.is_empty());
        }
        let p = plan(&event("agent_status_on_duty.json"), &config(true), &KnownState::default()).unwrap();
        assert!(matches!(p.outcome, Outcome::Skipped(_)));
        assert!(p.steps.is_empty());
    }

    #[test]
    fn a_later_piece_updates_the_note_and_a_redelivery_writes_nothing() {
        let cfg = config(true);
        let first = plan(&event("call_voicemail_uploaded.json"), &cfg, &KnownState::default()).unwrap();
        let activity = first.activity.clone().unwrap();
        let record = NoteRecord { contact_id: "c-1".into(), note_id: "n-1".into(), written_body: activity.note_body(), activity };
        let known = KnownState { contact_id: Some("c-1".into()), record: Some(record.clone()), ..Default::default() };

        let again = plan(&event("call_voicemail_uploaded.json"), &cfg, &known).unwrap();
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert!(again.steps.is_empty());

        let transcript = plan(&event("call_voicemail_transcription.json"), &cfg, &known).unwrap();
        assert_eq!(ops(&transcript), vec![("update-note", "/contacts/c-1/notes/n-1".to_string(), None)]);
        let body = transcript.steps[0].body.as_ref().unwrap()["body"].as_str().unwrap();
        assert!(body.contains("Dialpad call: inbound, voicemail"));
        assert!(body.contains("Transcript:\n"));
    }

    #[test]
    fn an_sms_becomes_one_note_on_its_senders_contact() {
        let first = plan(&event("sms_inbound.json"), &config(true), &KnownState::default()).unwrap();
        assert_eq!(first.event_key, "sms:5287316104912896");
        assert_eq!(
            ops(&first),
            vec![
                ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-1&number=%2B13125550187".to_string(), None),
                ("create-contact", "/contacts/".to_string(), Some("if the duplicate search finds no contact")),
                ("create-note", "/contacts/{contactId}/notes".to_string(), None),
            ]
        );
        let body = first.steps[2].body.as_ref().unwrap()["body"].as_str().unwrap().to_string();
        assert_eq!(
            body,
            "Dialpad SMS: inbound\nFrom: +13125550187\nTo: Maya Patel (+14155550142)\nWhen: 2026-03-12 14:02 UTC\n\nHi Maya, it's Priya from Lakeside Dental. Did the annual quote go out yet?\n\nDialpad SMS ID: 5287316104912896"
        );
        // A status update of the same message (pending → success) writes nothing.
        let record = NoteRecord { contact_id: "c".into(), note_id: "n".into(), activity: Default::default(), written_body: body };
        let again = plan(&event("sms_inbound.json"), &config(true), &KnownState { contact_id: Some("c".into()), record: Some(record), ..Default::default() }).unwrap();
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert!(again.steps.is_empty());
    }

    #[test]
    fn an_mms_without_text_is_kept_with_its_media() {
        let us = phone::region("US").unwrap();
        let body = br#"{"id":9,"direction":"outbound","from_number":"+14155550142","to_number":["(312) 555-0187"],"text":"","mms":true,
            "mms_url":"https://dialpad.com/mms/abc","target":{"name":"Maya Patel"},"created_date":1773324169183}"#;
        let mms = plan(&dialpad::parse(body, us).unwrap(), &config(true), &KnownState::default()).unwrap();
        let note = mms.steps.last().unwrap().body.as_ref().unwrap()["body"].as_str().unwrap().to_string();
        assert!(note.starts_with("Dialpad MMS: outbound\nFrom: Maya Patel\nTo: +13125550187\n"), "{note}");
        assert!(note.contains("Media: https://dialpad.com/mms/abc\n\n(no text)\n"), "{note}");
    }

    #[test]
    fn no_usable_phone_number_is_a_typed_error() {
        let us = phone::region("US").unwrap();
        for body in [
            r#"{"call_id":1,"state":"hangup","external_number":"","contact":{"phone":""}}"#,
            r#"{"call_id":1,"state":"hangup","external_number":"blocked"}"#,
            r#"{"call_id":1,"state":"hangup"}"#,
        ] {
            let e = dialpad::parse(body.as_bytes(), us).unwrap();
            let err = plan(&e, &config(true), &KnownState::default()).unwrap_err();
            assert!(matches!(err, SyncError::MalformedEvent(ref m) if m.starts_with("no usable phone number")), "{body}: {err:?}");
        }
    }

    #[test]
    fn missing_write_scope_is_refused_before_any_request() {
        let cfg = Config::from_json(r#"{"location_id":"l","scopes":["contacts.readonly"]}"#).unwrap();
        let err = plan(&event("call_inbound_hangup_completed.json"), &cfg, &KnownState::default()).unwrap_err();
        assert_eq!(err, SyncError::MissingScope(vec!["contacts.write".into()]));
    }
}
