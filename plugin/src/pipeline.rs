//! One event end to end: read (UTF-8, signature, classify, normalize) → load known state →
//! plan → execute → record → report. Generic over the store and the transport, so the whole
//! pipeline runs in native unit tests as it runs in the component. Every export that takes an
//! event (`triggers`, `backfill`, the HTTP handler) comes through here, and the event's source
//! is looked at in one place: [`inbound::read`].
//!
//! One plan per event. The known state is read once, then one plan is made; its steps carry
//! their own conditions (look before creating when an earlier write may have landed unseen,
//! a rule's task retried from the record, a note found by its marker updated rather than made
//! twice). The executor decides at run time which conditional steps run, and merges the note
//! it found into an `update-note`'s body, but it never plans again. So the plan [`handle`]
//! returns is the one plan the event got, exactly what [`plan`] shows for a dry run on the
//! same state.

use crate::config::Config;
use crate::error::SyncError;
use crate::execute::{execute, Execution, Transport};
use crate::inbound::dialpad::Event;
use crate::inbound::event::{EventKind, InboundEvent};
use crate::inbound::highlevel::HighLevelEvent;
use crate::inbound::platform::{Action, PlatformEvent};
use crate::inbound::read::{self as inbound, Inbound, Moment};
use crate::plan::platform::PlatformKnown;
use crate::plan::screen_pop::SCREEN_POP_SUFFIX;
use crate::plan::to_dialpad::HighLevelKnown;
use crate::plan::vocabulary::{KnownState, Plan, CALL_ENTRY_ID, CALL_SYNC_SCOPES, CONTACT_ID, DIALPAD_CONTACT_ID, OWNER_ID};
use crate::report::{Handled, Outcome, PlanView, Report, Route};
use crate::state::{
    call_alias_key, call_ended_key, call_entry_key, contact_event_key, dialpad_contact_key, highlevel_contact_key, highlevel_state_key, owner_key, pending_key,
    phone_key, platform_event_key, platform_link_key, read_text, screen_pop_key, state_keys, text, view_key, CallEntryRecord, ContactRecord, NoteRecord,
    PlatformLink, Store, CLEARED, DONE, MARK,
};

/// Checks an event as [`handle`] would (bytes, signature, shape) and names its lane: the other
/// party's phone number when there is one, since a call, a text and a contact edit about one
/// person may each create that person's contact, and must not race to do it.
///
/// This is the door: a signed event's time claims are held to `now` (seconds since 1970) here,
/// and only here (see [`Moment`]).
pub fn route(event: &InboundEvent, config: &Config, now: u64) -> Result<Route, SyncError> {
    Ok(match inbound::read(event, config, Moment::Arriving { now })? {
        Inbound::Dialpad(event) => route_dialpad(&event),
        Inbound::Platform(event) => route_platform(&event),
        Inbound::HighLevel(event) => route_highlevel(&event),
    })
}

/// A HighLevel contact webhook's lane: the contact's phone (as a Dialpad event about the same
/// person uses), else the HighLevel contact.
fn route_highlevel(event: &HighLevelEvent) -> Route {
    let lane = match event {
        HighLevelEvent::Contact(c) => match &c.phone {
            Some(phone) => format!("phone:{phone}"),
            None => format!("highlevel-contact:{}", c.id),
        },
        HighLevelEvent::Other(kind) => format!("highlevel:{kind}"),
    };
    Route { kind: EventKind::HighLevelContact, lane }
}

fn route_dialpad(event: &Event) -> Route {
    let lane = match event {
        Event::Call(call) => match &call.external_phone {
            Some(phone) => format!("phone:{phone}"),
            None => format!("call:{}", call.default_activity_id()),
        },
        Event::Sms(sms) => match &sms.external_phone {
            Some(phone) => format!("phone:{phone}"),
            None => format!("sms:{}", sms.id),
        },
        Event::Contact(contact) => match &contact.phone {
            Some(phone) => format!("phone:{phone}"),
            None => format!("contact:{}", contact.id),
        },
        Event::AgentStatus => "agent-status".to_string(),
    };
    Route { kind: event.kind(), lane }
}

/// A platform task or note event's lane: its contact's phone, else its contact, else its `ref`.
fn route_platform(event: &PlatformEvent) -> Route {
    let lane = match (&event.phone, &event.contact_id) {
        (Some(phone), _) => format!("phone:{phone}"),
        (None, Some(contact)) => format!("contact:{contact}"),
        (None, None) => format!("ref:{}", event.reference),
    };
    Route { kind: event.kind, lane }
}

/// Plans one event without sending or writing anything (a dry run). Its signature is verified;
/// its age is not held against it.
pub fn plan(event: &InboundEvent, config: &Config, store: &mut dyn Store) -> Result<PlanView, SyncError> {
    Ok(plan_inbound(inbound::read(event, config, Moment::Accepted)?, config, store)?.plan.view())
}

/// Handles one event a host accepted at the door ([`route`]): the plan it made and ran, and
/// the report. Its signature is verified again; its age is not held against it, so a retry or
/// a dead letter replayed hours later is handled as it would have been on arrival.
pub fn handle(event: &InboundEvent, config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Handled {
    handle_at(event, Moment::Accepted, config, store, transport)
}

/// Handles one event as it arrives, where handling is the door itself (the component's HTTP
/// handler on a stock host): its time claims are held to `now`, as [`route`] holds them.
pub fn handle_arriving(event: &InboundEvent, now: u64, config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Handled {
    handle_at(event, Moment::Arriving { now }, config, store, transport)
}

fn handle_at(event: &InboundEvent, moment: Moment, config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Handled {
    match inbound::read(event, config, moment).and_then(|event| plan_inbound(event, config, store)) {
        Ok(planned) => run(planned, config, store, transport),
        Err(error) => Handled::unplanned(error),
    }
}

/// Plans a call listed by Dialpad's API (trusted: the plugin fetched it itself).
pub fn plan_listed_call(json: &[u8], config: &Config, store: &mut dyn Store) -> Result<PlanView, SyncError> {
    Ok(plan_inbound(inbound::read_trusted_dialpad(json, config)?, config, store)?.plan.view())
}

/// Handles a call listed by Dialpad's API as its hangup webhook is handled.
pub fn handle_listed_call(json: &[u8], config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Handled {
    match inbound::read_trusted_dialpad(json, config).and_then(|event| plan_inbound(event, config, store)) {
        Ok(planned) => run(planned, config, store, transport),
        Err(error) => Handled::unplanned(error),
    }
}

/// An event planned, with what the store knew when it was planned.
struct Planned {
    plan: Plan,
    known: Known,
}

enum Known {
    Dialpad(Box<KnownState>),
    Platform(Box<(PlatformEvent, PlatformKnown)>),
    HighLevel,
}

/// Reads what the store knows about the event, and plans it. Nothing is written.
fn plan_inbound(event: Inbound, config: &Config, store: &mut dyn Store) -> Result<Planned, SyncError> {
    match event {
        Inbound::Dialpad(event) => {
            let known = known_state(&event, config, store, crate::clock::now_ms())?;
            let plan = crate::plan::dialpad::plan(&event, config, &known)?;
            Ok(Planned { plan, known: Known::Dialpad(Box::new(known)) })
        }
        Inbound::Platform(event) => {
            let known = platform_known(&event, config, store)?;
            config.require_scopes(CALL_SYNC_SCOPES)?;
            let plan = crate::plan::platform::plan(&event, config, &known);
            Ok(Planned { plan, known: Known::Platform(Box::new((event, known))) })
        }
        Inbound::HighLevel(event) => {
            let known = highlevel_known(&event, config, store)?;
            Ok(Planned { plan: crate::plan::to_dialpad::plan(&event, config, &known), known: Known::HighLevel })
        }
    }
}

/// Executes the plan and records what it learned. The plan returned is the one executed.
fn run(planned: Planned, config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Handled {
    let Planned { plan, known } = planned;
    let result = match known {
        Known::Dialpad(known) => run_dialpad(&plan, &known, config, store, transport),
        Known::Platform(platform) => run_platform(&platform.0, &plan, &platform.1, config, store, transport),
        Known::HighLevel => run_highlevel(&plan, config, store, transport),
    };
    Handled { plan: Some(plan.view()), result }
}

fn run_dialpad(plan: &Plan, known: &KnownState, config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Result<Report, SyncError> {
    let mut report = Report {
        kind: plan.kind,
        event_key: plan.event_key.clone(),
        outcome: plan.outcome.clone(),
        summary: plan.summary.clone(),
        contact_id: known.record.as_ref().map(|c| c.contact_id.clone()).or(known.contact_id.clone()),
        note_id: known.record.as_ref().map(|c| c.note_id.clone()),
        call_entry_id: known.call_entry.as_ref().map(|e| e.id.clone()),
        operations: Vec::new(),
    };
    if plan.steps.is_empty() {
        // Nothing to write, but a leg may name legs not linked yet (its call is recorded).
        if known.record.is_some() {
            record_aliases(plan, store)?;
        }
        return Ok(report);
    }
    let pending = plan.record_key.as_deref().map(pending_key);
    mark_pending(plan, pending.as_deref(), store)?;
    let run = execute(plan, config, transport);
    report.operations = run.operations.clone();
    report.contact_id = run.contact_id.clone().or(report.contact_id);
    report.note_id = run.note_id.clone().or(report.note_id);
    report.call_entry_id = run.call_entry_id.clone().or(report.call_entry_id);
    // Record what was learned even when a later step failed: a contact created before the
    // failure is linked, so the retry finds it instead of creating another.
    record(plan, &run, known.record.as_ref().map(|r| r.note_id.as_str()), store)?;
    forget_view(&run, config, store)?;
    // Only now: a host killed between the writes and the records finds the mark, and looks
    // before it writes again.
    settle_pending(&run, pending.as_deref(), store)?;
    if let Some(error) = run.error {
        return Err(error);
    }
    match (&report.contact_id, &report.note_id) {
        (Some(contact), Some(note)) => report.summary = format!("{} → note {note} on contact {contact}", report.summary),
        (Some(contact), None) => report.summary = format!("{} {contact}", report.summary),
        _ => {}
    }
    // A pop planned "if HighLevel has the caller" that found no one: say so.
    if plan.event_key.ends_with(SCREEN_POP_SUFFIX) && !report.operations.iter().any(|o| o.operation_id == "screen_pop.initiate") {
        report.summary = format!("{}: no pop, HighLevel has no contact with this number (no unknown_caller_url)", plan.summary);
    }
    if report.operations.iter().all(|o| o.method == "GET") {
        report.outcome = Outcome::Unchanged;
    }
    Ok(report)
}

fn run_platform(
    event: &PlatformEvent,
    plan: &Plan,
    known: &PlatformKnown,
    config: &Config,
    store: &mut dyn Store,
    transport: &mut dyn Transport,
) -> Result<Report, SyncError> {
    if plan.steps.is_empty() && plan.outcome == Outcome::Synced {
        let noun = if event.kind == EventKind::Task { "task" } else { "note" };
        return Err(SyncError::NotFound(format!("no {noun} was created with ref \"{}\" (its .created event must come first)", event.reference)));
    }
    let pending = pending_key(&platform_event_key(&config.location_id, &event.id));
    mark_pending(plan, Some(&pending), store)?;
    let run = execute(plan, config, transport);
    let result = record_platform_event(event, plan, &run, known, config, store);
    // After the records (see `run_dialpad`); a record that failed keeps the mark.
    if !matches!(result, Err(SyncError::Storage(_))) {
        settle_pending(&run, Some(&pending), store)?;
    }
    result
}

/// What a platform event's run learned: its links and its done mark.
fn record_platform_event(
    event: &PlatformEvent,
    plan: &Plan,
    run: &Execution,
    known: &PlatformKnown,
    config: &Config,
    store: &mut dyn Store,
) -> Result<Report, SyncError> {
    let mut report = Report {
        kind: plan.kind,
        event_key: plan.event_key.clone(),
        outcome: plan.outcome.clone(),
        summary: plan.summary.clone(),
        contact_id: run.contact_id.clone().or(known.linked.as_ref().map(|l| l.0.clone())),
        note_id: run.note_id.clone(),
        call_entry_id: None,
        operations: run.operations.clone(),
    };
    if plan.steps.is_empty() {
        return Ok(report);
    }
    if let (Some(key), Some(contact)) = (&plan.phone_key, &run.contact_id) {
        store.set(key, contact.as_bytes()).map_err(SyncError::Storage)?;
    }
    forget_view(run, config, store)?;
    if let Some(error) = &run.error {
        return Err(error.clone());
    }
    let Some(contact) = run.contact_id.clone() else {
        return Err(SyncError::NotFound("no HighLevel contact matches the event's contact (phone, e-mail)".into()));
    };
    if event.action == Action::Created {
        let created = run.task_id.clone().or(run.note_id.clone()).unwrap_or_default();
        let link = PlatformLink { contact_id: contact.clone(), id: created.clone() };
        store.set(&platform_link_key(&config.location_id, event.kind, &event.reference), &link.encode()).map_err(SyncError::Storage)?;
        report.summary = format!("{} → {created} on contact {contact}", report.summary);
    }
    store.set(&platform_event_key(&config.location_id, &event.id), DONE).map_err(SyncError::Storage)?;
    report.contact_id = Some(contact);
    Ok(report)
}

/// Reads what the store knows about a platform event, its `ref` and its contact.
fn platform_known(event: &PlatformEvent, config: &Config, store: &mut dyn Store) -> Result<PlatformKnown, SyncError> {
    Ok(PlatformKnown {
        done: read_text(store, &platform_event_key(&config.location_id, &event.id))?.is_some(),
        linked: read_text(store, &platform_link_key(&config.location_id, event.kind, &event.reference))?
            .and_then(|v| PlatformLink::decode(&v))
            .map(|l| (l.contact_id, l.id)),
        uncertain: read_text(store, &pending_key(&platform_event_key(&config.location_id, &event.id)))?.is_some(),
        phone_contact: match &event.phone {
            Some(p) => read_text(store, &phone_key(&config.location_id, p.as_str()))?,
            None => None,
        },
    })
}

/// Runs one Contacts API operation as an action; returns the API's JSON response.
/// A write to a contact drops its cached view, as the plugin's own writes do.
pub fn invoke_action(operation_id: &str, input: &str, config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Result<String, SyncError> {
    let plan = crate::actions::plan_invocation(operation_id, input, config)?;
    let run = execute(&plan, config, transport);
    forget_view(&run, config, store)?;
    if let Some(error) = run.error {
        return Err(error);
    }
    Ok(crate::actions::normalize_response(run.response.unwrap_or(serde_json::Value::Null)).to_string())
}

/// Reads what the store knows about a HighLevel contact: its Dialpad contact and its state.
fn highlevel_known(event: &HighLevelEvent, config: &Config, store: &mut dyn Store) -> Result<HighLevelKnown, SyncError> {
    let HighLevelEvent::Contact(contact) = event else { return Ok(HighLevelKnown::default()) };
    if config.two_way_contacts.is_none() {
        return Ok(HighLevelKnown::default());
    }
    let location = &config.location_id;
    let dialpad_id = read_text(store, &highlevel_contact_key(location, &contact.id))?;
    let record = match &dialpad_id {
        Some(id) => store.get(&dialpad_contact_key(location, id)).map_err(SyncError::Storage)?.and_then(|b| ContactRecord::decode(&b)),
        None => None,
    };
    let state = read_text(store, &highlevel_state_key(location, &contact.id))?.and_then(|t| serde_json::from_str(&t).ok());
    Ok(HighLevelKnown { dialpad_id, state, record })
}

/// Runs a HighLevel webhook's plan and records what HighLevel and Dialpad now hold.
fn run_highlevel(plan: &Plan, config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Result<Report, SyncError> {
    let run = execute(plan, config, transport);
    write_records(plan, &run, store)?;
    if let Some(error) = run.error {
        return Err(error);
    }
    let mut summary = plan.summary.clone();
    if let Some(id) = &run.dialpad_contact_id {
        summary = format!("{summary} {id}");
    }
    Ok(Report {
        kind: plan.kind,
        event_key: plan.event_key.clone(),
        outcome: plan.outcome.clone(),
        summary,
        contact_id: None,
        note_id: None,
        call_entry_id: None,
        operations: run.operations,
    })
}

/// Reads what the store knows about a Dialpad event's caller and call.
fn known_state(event: &Event, config: &Config, store: &mut dyn Store, now_ms: i64) -> Result<KnownState, SyncError> {
    let mut known = KnownState::default();
    let location = &config.location_id;
    // Two reads of several keys each (`get-many`), not one call per key: the call's aliases
    // first, since the other keys are named by the activity they find.
    if let Event::Call(call) = event {
        let aliases: Vec<String> = call.all_call_ids().map(|id| call_alias_key(location, id)).collect();
        known.call_activity_id = store.get_many(&aliases).map_err(SyncError::Storage)?.into_iter().flatten().find_map(text);
    }
    let mut keys = Keys::default();
    let event_seen = match event {
        Event::Contact(contact) => Some(keys.add(contact_event_key(config, &contact.content_hash))),
        _ => None,
    };
    let (mut call_entry, mut call_ended, mut screen_pops, mut owner) = (None, None, None, None);
    if let Event::Call(call) = event {
        let activity_id = known.call_activity_id.clone().unwrap_or_else(|| call.default_activity_id().to_string());
        if config.conversations.is_some() {
            call_entry = Some(keys.add(call_entry_key(location, &activity_id)));
        }
        if config.screen_pop.is_some() {
            call_ended = Some(keys.add(call_ended_key(location, &activity_id)));
            screen_pops = call.agent.user_id.as_ref().map(|user| keys.add(screen_pop_key(location, user)));
        }
        if let (Some(_), Some(email)) = (&config.owners, &call.agent.email) {
            owner = Some(keys.add(owner_key(location, email)));
        }
        // A call started by click-to-call names its contact: no phone search.
        known.contact_id = call.custom_contact_id().map(str::to_string);
    }
    let (phone_key, record_key) = state_keys(event, config, known.call_activity_id.as_deref());
    let phone = phone_key.filter(|_| known.contact_id.is_none()).map(|key| keys.add(key));
    let record = record_key.map(|key| (keys.add(pending_key(&key)), keys.add(key)));
    let mut values = store.get_many(&keys.0).map_err(SyncError::Storage)?;
    let mut take = |at: Option<usize>| at.and_then(|i| values[i].take());
    known.event_seen = take(event_seen).and_then(text).is_some();
    known.call_entry = take(call_entry).and_then(|b| CallEntryRecord::decode(&b));
    known.call_ended = take(call_ended).and_then(text).is_some();
    known.screen_pops = take(screen_pops).and_then(text).map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default();
    known.owner_id = take(owner).and_then(text);
    if let Some(found) = take(phone).and_then(text) {
        known.contact_id = Some(found);
    }
    if let Some((pending, record)) = record {
        known.uncertain = take(Some(pending)).and_then(text).is_some();
        if let Some(bytes) = take(Some(record)) {
            match event {
                Event::Contact(_) => known.contact_record = ContactRecord::decode(&bytes),
                _ => known.record = NoteRecord::decode(&bytes),
            }
        }
    }
    known.now_ms = now_ms;
    if let (Event::Contact(_), Some(_)) = (event, &config.two_way_contacts) {
        let linked = known.contact_record.as_ref().map(|r| r.contact_id.clone()).or(known.contact_id.clone());
        if let Some(id) = linked {
            known.highlevel_state = read_text(store, &highlevel_state_key(&config.location_id, &id))?.and_then(|t| serde_json::from_str(&t).ok());
        }
    }
    Ok(known)
}

/// The keys of one `get-many`, each added where it is needed and read back by its place.
#[derive(Default)]
struct Keys(Vec<String>);

impl Keys {
    fn add(&mut self, key: String) -> usize {
        self.0.push(key);
        self.0.len() - 1
    }
}

/// `known_note`: the note recorded before, for a run that only did a rule's steps.
fn record(plan: &Plan, run: &Execution, known_note: Option<&str>, store: &mut dyn Store) -> Result<(), SyncError> {
    let storage = SyncError::Storage;
    let complete = run.error.is_none();
    if let (Some(key), Some(contact)) = (&plan.phone_key, &run.contact_id) {
        store.set(key, contact.as_bytes()).map_err(storage)?;
    }
    if let (true, Some(key), Some(contact), Some(written)) = (complete, &plan.record_key, &run.contact_id, &plan.contact_record) {
        store.set(key, &ContactRecord { contact_id: contact.clone(), written: written.clone() }.encode()).map_err(storage)?;
    }
    if complete {
        for key in &plan.clear_keys {
            store.set(key, CLEARED).map_err(storage)?;
        }
        for key in &plan.done_keys {
            store.set(key, MARK).map_err(storage)?;
        }
    }
    // The call's entry, as soon as it exists: a retry after a later step failed never adds it twice.
    if let (Some(key), Some(entry)) = (&plan.call_entry_key, run.call_entry_id.as_ref().or(plan.call_entry_id.as_ref())) {
        let mut attached = plan.call_entry_attached.clone();
        if run.operations.iter().any(|o| o.operation_id == "add-message-attachments" && o.status.is_some_and(|s| s < 300))
            || run.operations.iter().any(|o| o.operation_id.starts_with("add-an-") && o.status.is_some_and(|s| s < 300))
        {
            attached.extend(plan.new_recordings.iter().cloned().zip(run.share_links.iter().cloned()));
        }
        store.set(key, &CallEntryRecord { id: entry.clone(), attached }.encode()).map_err(storage)?;
    }
    write_records(plan, run, store)?;
    // What was written: a call merged into its found note, else the plan's own body (with the
    // call entry's id the run resolved).
    let mut activity = run.merged_activity.as_ref().or(plan.activity.as_ref()).cloned().unwrap_or_default();
    let entry_id = run.call_entry_id.as_deref().unwrap_or_default();
    let written_body = run.merged_activity.as_ref().map(|a| a.note_body()).or_else(|| plan.note_body.clone()).map(|b| b.replace(CALL_ENTRY_ID, entry_id));
    if activity.call_entry_id.as_deref() == Some(CALL_ENTRY_ID) {
        activity.call_entry_id = run.call_entry_id.clone();
    }
    // The note is recorded once it is written, even when a rule's step after it failed; that
    // rule is left out of the record, so the next event of the call retries it. Rules count as
    // done only as the record and this run know them: a note found by its marker may name a
    // rule whose steps never ran (its create landed, unseen, and the run stopped there).
    let note_done = complete || run.note_written;
    activity.automations = plan.activity.as_ref().map(|a| a.automations.clone()).unwrap_or_default();
    activity.automations.retain(|a| !run.unfinished_automations.contains(a));
    let note = run.note_id.as_deref().or(known_note);
    if let (true, Some(key), Some(contact), Some(note), Some(written_body)) = (note_done, &plan.record_key, &run.contact_id, note, written_body) {
        let record = NoteRecord { contact_id: contact.clone(), note_id: note.to_string(), activity, written_body };
        store.set(key, &record.encode()).map_err(storage)?;
        record_aliases(plan, store)?;
    }
    Ok(())
}

/// The plan's other records, once its steps succeeded, with the ids the run resolved.
fn write_records(plan: &Plan, run: &Execution, store: &mut dyn Store) -> Result<(), SyncError> {
    if run.error.is_some() {
        return Ok(());
    }
    let fill = |text: &str| {
        text.replace(DIALPAD_CONTACT_ID, run.dialpad_contact_id.as_deref().unwrap_or_default())
            .replace(OWNER_ID, run.owner_id.as_deref().unwrap_or_default())
            .replace(CONTACT_ID, run.contact_id.as_deref().unwrap_or_default())
    };
    for (key, value) in &plan.records {
        let key = fill(key);
        // A placeholder nothing resolved (no contact was found or made) records nothing.
        if key.ends_with(':') {
            continue;
        }
        store.set(&key, fill(value).as_bytes()).map_err(SyncError::Storage)?;
    }
    Ok(())
}

/// The key-value key saying that a delivery of the event behind `key` sent a write whose
/// answer never came (see [`KnownState::uncertain`]).
/// Set before a plan's writes go out, so that even a host that dies mid-plan leaves the mark.
fn mark_pending(plan: &Plan, key: Option<&str>, store: &mut dyn Store) -> Result<(), SyncError> {
    match key {
        Some(key) if plan.steps.iter().any(|s| s.operation.method != contacts_api::Method::Get) => store.set(key, MARK).map_err(SyncError::Storage),
        _ => Ok(()),
    }
}

/// Cleared unless a write went unanswered (no answer, or a 5xx that may have been applied).
fn settle_pending(run: &Execution, key: Option<&str>, store: &mut dyn Store) -> Result<(), SyncError> {
    let unsure = run.error.is_some() && run.operations.iter().any(|o| o.method != "GET" && o.status.is_none_or(|s| s >= 500));
    match key {
        Some(key) if !unsure => store.set(key, CLEARED).map_err(SyncError::Storage),
        _ => Ok(()),
    }
}

/// A write to a contact drops its cached view, so the next screen pop reads it fresh.
fn forget_view(run: &Execution, config: &Config, store: &mut dyn Store) -> Result<(), SyncError> {
    let wrote = run.operations.iter().any(|o| o.method != "GET" && o.status.is_some_and(|s| s < 300));
    if let (true, Some(contact)) = (wrote, &run.contact_id) {
        store.set(&view_key(&config.location_id, contact), CLEARED).map_err(SyncError::Storage)?;
    }
    Ok(())
}

/// Links each id a call leg names to the id its call is recorded under.
fn record_aliases(plan: &Plan, store: &mut dyn Store) -> Result<(), SyncError> {
    for (alias, activity_id) in &plan.aliases {
        store.set(alias, activity_id.as_bytes()).map_err(SyncError::Storage)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::{HttpRequest, HttpResponse, NoAnswer};
    use crate::inbound::signature::tests::sign;
    use crate::inbound::signature::PLATFORM_EVENTS_OFF;
    use crate::state::MemStore;
    use serde_json::json;
    use std::collections::VecDeque;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    /// Answers from a script, records every request and every sleep.
    #[derive(Default)]
    struct Scripted {
        answers: VecDeque<Result<HttpResponse, NoAnswer>>,
        sent: Vec<(String, String)>,
        slept: Vec<u64>,
    }
    impl Scripted {
        fn answer(mut self, status: u16, body: serde_json::Value) -> Self {
            self.answers.push_back(Ok(HttpResponse { status, headers: vec![], body: body.to_string().into_bytes() }));
            self
        }
        fn answer_with(mut self, status: u16, headers: &[(&str, &str)]) -> Self {
            let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            self.answers.push_back(Ok(HttpResponse { status, headers, body: b"{}".to_vec() }));
            self
        }
    }
    impl Transport for Scripted {
        fn send(&mut self, r: &HttpRequest) -> Result<HttpResponse, NoAnswer> {
            self.sent.push((r.method.as_str().to_string(), r.url.clone()));
            self.answers.pop_front().expect("unexpected request")
        }
        fn sleep_ms(&mut self, ms: u64) {
            self.slept.push(ms);
        }
    }

    const PLATFORM_SECRET: &str = "platform-s3cret";
    /// 2026-03-10 15:00 UTC.
    const NOW: u64 = 1_773_154_800;

    fn config() -> Config {
        Config::from_json(&json!({"location_id": "L", "api_base": "http://api.test", "durable_state": true, "platform_secret": PLATFORM_SECRET}).to_string())
            .unwrap()
    }

    /// A platform event as the platform sends it: an HS256 JWT signed with its secret.
    fn platform_event(event: &str) -> InboundEvent {
        let claims: serde_json::Value = serde_json::from_str(event).unwrap();
        InboundEvent::PlatformEvent(sign(&claims, PLATFORM_SECRET, "HS256").into_bytes())
    }

    /// HighLevel's answers to a first call from an unknown number: no duplicate, contact `c1`,
    /// note `n1`.
    fn new_caller_answers() -> Scripted {
        Scripted::default().answer(200, json!({"contact": null})).answer(201, json!({"contact": {"id": "c1"}})).answer(201, json!({"note": {"id": "n1"}}))
    }

    fn body(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    fn route_body(body: &[u8], config: &Config) -> Result<Route, SyncError> {
        route(&InboundEvent::DialpadWebhook(body.to_vec()), config, NOW)
    }

    fn route_platform_event(text: &str, config: &Config) -> Result<Route, SyncError> {
        route(&platform_event(text), config, NOW)
    }

    fn plan_body(body: &[u8], config: &Config, store: &mut dyn Store) -> Result<PlanView, SyncError> {
        plan(&InboundEvent::DialpadWebhook(body.to_vec()), config, store)
    }

    fn handle_body(body: &[u8], config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Result<Report, SyncError> {
        handle(&InboundEvent::DialpadWebhook(body.to_vec()), config, store, transport).result
    }

    #[test]
    fn lanes_follow_the_other_party_so_one_person_is_never_handled_twice_at_once() {
        let cfg = config();
        let lane = |name: &str| route_body(&body(name), &cfg).unwrap().lane;
        // The call, its recap and the caller's text share a lane; the agent's status has its own.
        assert_eq!(lane("call_inbound_hangup_completed.json"), "phone:+13125550187");
        assert_eq!(lane("call_recap_summary.json"), "phone:+13125550187");
        assert_eq!(lane("sms_inbound.json"), "phone:+13125550187");
        assert_eq!(lane("agent_status_on_duty.json"), "agent-status");
        assert_eq!(route_body(&body("contact_created_shared.json"), &cfg).unwrap().kind, EventKind::Contact);
        let task = r#"{"id":"e1","type":"task.created","contact":{"phone":"(312) 555-0187"},"task":{"ref":"t1","title":"Call back","due":"2026-03-12T09:00:00-05:00"}}"#;
        assert_eq!(route_platform_event(task, &cfg).unwrap().lane, "phone:+13125550187");
        // Routing checks what handling would: a signed body without the secret is refused.
        let signed = body("call_inbound_hangup_completed.jwt");
        assert!(matches!(route_body(&signed, &cfg), Err(SyncError::InvalidSignature(_))));
        assert!(matches!(route_body(b"{", &cfg), Err(SyncError::MalformedEvent(_))));
    }

    /// A store that counts its calls: what crosses into the host for one event.
    #[derive(Default)]
    struct Counted(MemStore, Vec<String>);
    impl Store for Counted {
        fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
            self.1.push(format!("get {key}"));
            self.0.get(key)
        }
        fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
            self.1.push(format!("set {key}"));
            self.0.set(key, value)
        }
        fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, String> {
            self.1.push(format!("get-many {}", keys.join(" ")));
            keys.iter().map(|key| self.0.get(key)).collect()
        }
    }

    #[test]
    fn a_call_reads_what_is_known_in_two_calls_to_the_store() {
        let cfg = config();
        let mut store = Counted::default();
        let mut api = new_caller_answers();
        let hangup = body("call_inbound_hangup_completed.json");
        handle_body(&hangup, &cfg, &mut store, &mut api).unwrap();
        store.1.clear();
        let redelivered = handle_body(&hangup, &cfg, &mut store, &mut Scripted::default()).unwrap();
        assert_eq!(redelivered.outcome, Outcome::Unchanged);
        let reads: Vec<&String> = store.1.iter().filter(|call| call.starts_with("get")).collect();
        assert_eq!(
            reads,
            ["get-many call-leg:L:6011482093420544", "get-many contact-by-phone:L:+13125550187 pending:call:L:6011482093420544 call:L:6011482093420544"]
        );
    }

    /// A store whose record writes fail, as if the host died after the writes and before the
    /// records: only pending marks and view drops get through.
    struct RecordsLost(MemStore);
    impl Store for RecordsLost {
        fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
            self.0.get(key)
        }
        fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
            if key.starts_with("pending:") || key.starts_with("view:") {
                self.0.set(key, value)
            } else {
                Err("the host died".into())
            }
        }
    }

    #[test]
    fn the_pending_mark_outlives_writes_whose_records_were_lost() {
        let cfg = config();
        let mut store = RecordsLost(MemStore::default());
        let mut api = new_caller_answers();
        let result = handle_body(&body("call_inbound_hangup_completed.json"), &cfg, &mut store, &mut api);
        assert!(matches!(result, Err(SyncError::Storage(_))), "{result:?}");
        assert_eq!(api.sent.len(), 3);
        let marks: Vec<&Vec<u8>> = store.0 .0.iter().filter(|(k, _)| k.starts_with("pending:")).map(|(_, v)| v).collect();
        assert_eq!(marks, [&b"1".to_vec()], "the next delivery must look before it writes");
    }

    #[test]
    fn hangup_then_recap_then_redelivery() {
        let cfg = config();
        let mut store = MemStore::default();
        let mut api = new_caller_answers();
        let r = handle_body(&body("call_inbound_hangup_completed.json"), &cfg, &mut store, &mut api).unwrap();
        assert_eq!(r.outcome, Outcome::Synced);
        assert_eq!((r.contact_id.as_deref(), r.note_id.as_deref()), (Some("c1"), Some("n1")));
        assert_eq!(
            api.sent,
            vec![
                ("GET".into(), "http://api.test/contacts/search/duplicate?locationId=L&number=%2B13125550187".into()),
                ("POST".into(), "http://api.test/contacts/".into()),
                ("POST".into(), "http://api.test/contacts/c1/notes".into()),
            ]
        );

        // The recap updates the note, and its two action items become tasks.
        let mut api = Scripted::default()
            .answer(200, json!({"note": {"id": "n1"}}))
            .answer(201, json!({"task": {"id": "t1"}}))
            .answer(201, json!({"task": {"id": "t2"}}));
        let r = handle_body(&body("call_recap_summary.json"), &cfg, &mut store, &mut api).unwrap();
        assert_eq!(
            api.sent,
            vec![
                ("PUT".into(), "http://api.test/contacts/c1/notes/n1".into()),
                ("POST".into(), "http://api.test/contacts/c1/tasks".into()),
                ("POST".into(), "http://api.test/contacts/c1/tasks".into()),
            ]
        );
        assert_eq!(r.outcome, Outcome::Synced);

        let mut api = Scripted::default();
        let r = handle_body(&body("call_recap_summary.json"), &cfg, &mut store, &mut api).unwrap();
        assert_eq!(r.outcome, Outcome::Unchanged);
        assert!(api.sent.is_empty());
    }

    #[test]
    fn duplicate_refusal_yields_the_existing_contact() {
        let mut api = Scripted::default()
            .answer(200, json!({"contact": null}))
            .answer(200, json!({"contact": null}))
            .answer(400, json!({"statusCode": 400, "message": "This location does not allow duplicated contacts.", "meta": {"contactId": "existing", "matchingField": "phone"}}))
            .answer(201, json!({"note": {"id": "n"}}));
        let r = handle_body(&body("call_inbound_missed.json"), &config(), &mut MemStore::default(), &mut api).unwrap();
        assert_eq!(r.contact_id.as_deref(), Some("existing"));
        assert_eq!(api.sent[3].1, "http://api.test/contacts/existing/notes");
    }

    #[test]
    fn rate_limits_are_waited_out_and_other_errors_reported() {
        let mut store = MemStore::default();
        let mut api = Scripted::default()
            .answer_with(429, &[("Retry-After", "2")])
            .answer(200, json!({"contact": {"id": "c"}}))
            .answer(422, json!({"statusCode": 422, "message": ["property foo should not exist"], "error": "Unprocessable Entity"}));
        let err = handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).unwrap_err();
        assert_eq!(api.slept, vec![2000]);
        let SyncError::Upstream(f) = err else { panic!("{err:?}") };
        assert_eq!((f.operation_id.as_str(), f.status, f.message.as_str()), ("create-note", 422, "property foo should not exist"));
        // The contact found before the failure is remembered: the retry needs no search.
        let mut api = Scripted::default().answer(201, json!({"note": {"id": "n"}}));
        handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).unwrap();
        assert_eq!(api.sent, vec![("POST".into(), "http://api.test/contacts/c/notes".into())]);
    }

    #[test]
    fn a_note_whose_answer_was_lost_is_found_not_written_twice() {
        let mut store = MemStore::default();
        store.set(&crate::state::phone_key("L", "+12065550174"), b"c").unwrap();
        // The note lands, but its answer is lost: the event fails and says so.
        let mut api = Scripted::default();
        api.answers.push_back(Err(NoAnswer::Failed("connection reset".into())));
        assert!(handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).is_err());
        // Redelivered: the plugin looks for the note by its marker first, finds it, writes nothing.
        let planned = plan_body(&body("call_inbound_missed.json"), &config(), &mut MemStore::default()).unwrap();
        let written: serde_json::Value = serde_json::from_str(planned.operations.last().unwrap().body.as_deref().unwrap()).unwrap();
        let found = json!({"notes": [{"id": "n0", "body": "A note a person wrote."}, {"id": "n7", "body": written["body"]}]});
        let mut api = Scripted::default().answer(200, found);
        let r = handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).unwrap();
        assert_eq!(api.sent, vec![("GET".into(), "http://api.test/contacts/c/notes".into())]);
        assert_eq!(r.note_id.as_deref(), Some("n7"));
        // Recorded now: the next delivery needs nothing, and no longer looks.
        let mut api = Scripted::default();
        assert_eq!(handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).unwrap().outcome, Outcome::Unchanged);
        assert!(api.sent.is_empty());
    }

    #[test]
    fn a_rule_whose_task_failed_is_done_by_the_next_delivery_without_touching_the_note() {
        let cfg = config();
        let mut store = MemStore::default();
        let mut api = Scripted::default().answer(200, json!({"contact": {"id": "c1"}})).answer(201, json!({"note": {"id": "n1"}}));
        handle_body(&body("call_inbound_hangup_completed.json"), &cfg, &mut store, &mut api).unwrap();
        // The recap updates the note; its first action item's task is refused.
        let mut api = Scripted::default()
            .answer(200, json!({"note": {"id": "n1"}}))
            .answer(422, json!({"statusCode": 422, "message": ["dueDate must be a valid ISO 8601 date string"]}));
        assert!(handle_body(&body("call_recap_summary.json"), &cfg, &mut store, &mut api).is_err());
        // Redelivered: the note already says it all; only the action items' tasks are sent.
        let mut api = Scripted::default().answer(201, json!({"task": {"id": "t1"}})).answer(201, json!({"task": {"id": "t2"}}));
        let r = handle_body(&body("call_recap_summary.json"), &cfg, &mut store, &mut api).unwrap();
        assert_eq!(api.sent, vec![("POST".into(), "http://api.test/contacts/c1/tasks".into()), ("POST".into(), "http://api.test/contacts/c1/tasks".into())]);
        assert_eq!(r.outcome, Outcome::Synced);
        // And once more: nothing left to do.
        let mut api = Scripted::default();
        assert_eq!(handle_body(&body("call_recap_summary.json"), &cfg, &mut store, &mut api).unwrap().outcome, Outcome::Unchanged);
    }

    #[test]
    fn a_post_is_not_retried_after_no_answer() {
        let mut store = MemStore::default();
        store.set(&crate::state::phone_key("L", "+12065550174"), b"c").unwrap();
        let mut api = Scripted::default();
        api.answers.push_back(Err(NoAnswer::Failed("connection reset".into())));
        let err = handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).unwrap_err();
        assert!(matches!(err, SyncError::Transport(_)));
        assert_eq!(api.sent.len(), 1);
    }

    #[test]
    fn dry_run_plans_without_requests_or_writes() {
        let mut store = MemStore::default();
        let view = plan_body(&body("call_inbound_hangup_completed.json"), &config(), &mut store).unwrap();
        assert_eq!(view.operations.len(), 3);
        assert!(store.0.is_empty());
    }

    #[test]
    fn handle_returns_the_plan_it_ran_the_one_a_dry_run_shows() {
        let cfg = config();
        let event = InboundEvent::DialpadWebhook(body("call_inbound_hangup_completed.json"));
        let dry = plan(&event, &cfg, &mut MemStore::default()).unwrap();
        let mut store = MemStore::default();
        let mut api = new_caller_answers();
        let handled = handle(&event, &cfg, &mut store, &mut api);
        assert_eq!(handled.plan.as_ref(), Some(&dry));
        let ran: Vec<&str> = handled.plan.as_ref().unwrap().operations.iter().map(|o| o.operation_id.as_str()).collect();
        assert_eq!(ran, ["get-duplicate-contact", "create-contact", "create-note"]);
        assert_eq!(handled.result.unwrap().outcome, Outcome::Synced);
        // A redelivery is planned too: a plan with nothing to do.
        let again = handle(&event, &cfg, &mut store, &mut Scripted::default());
        assert_eq!(again.plan.as_ref().map(|p| (p.outcome.clone(), p.operations.len())), Some((Outcome::Unchanged, 0)));
        assert_eq!(again.plan, plan(&event, &cfg, &mut store).ok());
        // A platform event's plan, also when the run fails after planning.
        let task = r#"{"id":"e1","type":"task.created","contact":{"id":"c1"},"task":{"ref":"t1","title":"Call back","due":"2026-03-12T09:00:00-05:00"}}"#;
        let event = platform_event(task);
        let mut api = Scripted::default().answer(422, json!({"statusCode": 422, "message": ["no"]}));
        let handled = handle(&event, &cfg, &mut MemStore::default(), &mut api);
        assert!(matches!(handled.result, Err(SyncError::Upstream(_))));
        assert_eq!(handled.plan, plan(&event, &cfg, &mut MemStore::default()).ok());
        assert_eq!(handled.plan.unwrap().operations[0].operation_id, "create-task");
    }

    #[test]
    fn an_event_that_fails_before_planning_has_no_plan() {
        let cfg = config();
        for event in [
            InboundEvent::DialpadWebhook(b"{".to_vec()),
            InboundEvent::DialpadWebhook(vec![0xff, 0xfe]),
            InboundEvent::DialpadWebhook(body("call_inbound_hangup_completed.jwt")),
            InboundEvent::PlatformEvent(b"{}".to_vec()),
            platform_event("{}"),
        ] {
            let handled = handle(&event, &cfg, &mut MemStore::default(), &mut Scripted::default());
            assert_eq!(handled.plan, None, "{event:?}");
            assert!(handled.result.is_err());
        }
        let read_only = Config::from_json(r#"{"location_id":"L","scopes":["contacts.readonly"]}"#).unwrap();
        let handled = handle(&InboundEvent::DialpadWebhook(body("call_inbound_missed.json")), &read_only, &mut MemStore::default(), &mut Scripted::default());
        assert_eq!((handled.plan, handled.result), (None, Err(SyncError::MissingScope(vec!["contacts.write".into()]))));
        /// A store that does not answer.
        struct Down;
        impl Store for Down {
            fn get(&mut self, _: &str) -> Result<Option<Vec<u8>>, String> {
                Err("down".into())
            }
            fn set(&mut self, _: &str, _: &[u8]) -> Result<(), String> {
                Err("down".into())
            }
        }
        let handled = handle(&InboundEvent::DialpadWebhook(body("call_inbound_missed.json")), &cfg, &mut Down, &mut Scripted::default());
        assert_eq!((handled.plan, handled.result), (None, Err(SyncError::Storage("down".into()))));
    }

    #[test]
    fn an_anonymous_caller_is_routed_and_skipped_without_a_request() {
        let cfg = config();
        let call = InboundEvent::DialpadWebhook(crate::plan::dialpad::tests::anonymous("call_inbound_missed.json"));
        let routed = route(&call, &cfg, NOW).unwrap();
        assert_eq!((routed.kind, routed.lane.as_str()), (EventKind::Call, "call:5402917760802816"));
        let reason = "anonymous caller: no phone number to match a contact";
        let mut store = MemStore::default();
        // `Scripted::default()` panics on any request.
        let handled = handle(&call, &cfg, &mut store, &mut Scripted::default());
        let report = handled.result.unwrap();
        assert_eq!(report.outcome, Outcome::Skipped(reason.into()));
        assert!(report.operations.is_empty());
        assert_eq!(handled.plan.as_ref().map(|p| (&p.outcome, p.operations.len())), Some((&Outcome::Skipped(reason.into()), 0)));
        assert_eq!(plan(&call, &cfg, &mut store).unwrap().outcome, Outcome::Skipped(reason.into()));
        assert!(store.0.is_empty(), "nothing recorded: {:?}", store.0.keys());

        let sms = InboundEvent::DialpadWebhook(crate::plan::dialpad::tests::anonymous("sms_inbound.json"));
        let routed = route(&sms, &cfg, NOW).unwrap();
        assert_eq!((routed.kind, routed.lane.as_str()), (EventKind::Sms, "sms:5287316104912896"));
        let handled = handle(&sms, &cfg, &mut store, &mut Scripted::default());
        assert_eq!(handled.result.unwrap().outcome, Outcome::Skipped("anonymous sender: no phone number to match a contact".into()));
    }

    /// Every trigger's answer to one event, on a store and an API that must stay untouched.
    fn every_trigger(event: &InboundEvent, cfg: &Config) -> [Result<(), SyncError>; 3] {
        let mut store = MemStore::default();
        // `Scripted::default()` panics on any request.
        let handled = handle(event, cfg, &mut store, &mut Scripted::default());
        let planned = plan(event, cfg, &mut store);
        assert!(store.0.is_empty(), "nothing recorded: {:?}", store.0.keys());
        assert_eq!(handled.plan, None);
        [route(event, cfg, NOW).map(|_| ()), handled.result.map(|_| ()), planned.map(|_| ())]
    }

    const TASK: &str = r#"{"id":"e1","type":"task.created","contact":{"id":"c1"},"task":{"ref":"t1","title":"Call back","due":"2026-03-12T09:00:00-05:00"}}"#;

    #[test]
    fn platform_events_are_off_in_every_trigger_until_their_secret_is_configured() {
        let off = Config::from_json(r#"{"location_id":"L","webhook_secret":"w"}"#).unwrap();
        let unsigned = InboundEvent::PlatformEvent(TASK.as_bytes().to_vec());
        let webhook_signed = InboundEvent::PlatformEvent(sign(&serde_json::from_str(TASK).unwrap(), "w", "HS256").into_bytes());
        for event in [unsigned, webhook_signed, platform_event(TASK)] {
            let refused = Err(SyncError::InvalidSignature(PLATFORM_EVENTS_OFF.into()));
            assert_eq!(every_trigger(&event, &off), [refused.clone(), refused.clone(), refused], "{event:?}");
        }
    }

    #[test]
    fn unsigned_and_wrongly_signed_platform_events_write_nothing() {
        let cfg = config();
        let claims: serde_json::Value = serde_json::from_str(TASK).unwrap();
        let tampered = {
            let good = sign(&claims, PLATFORM_SECRET, "HS256");
            let forged = sign(&json!({"id": "e1", "type": "task.created", "contact": {"id": "someone-else"}, "task": claims["task"]}), "x", "HS256");
            let (g, f): (Vec<&str>, Vec<&str>) = (good.split('.').collect(), forged.split('.').collect());
            format!("{}.{}.{}", g[0], f[1], g[2])
        };
        for (what, body) in [
            ("unsigned", TASK.to_string()),
            ("signed with another secret", sign(&claims, "another-secret", "HS256")),
            ("alg none", sign(&claims, PLATFORM_SECRET, "none")),
            ("tampered claims", tampered),
        ] {
            let event = InboundEvent::PlatformEvent(body.into_bytes());
            for answer in every_trigger(&event, &cfg) {
                assert!(matches!(answer, Err(SyncError::InvalidSignature(_))), "{what}: {answer:?}");
            }
        }
    }

    #[test]
    fn a_signed_platform_event_is_routed_handled_and_redelivered_harmlessly() {
        let cfg = config();
        let event = platform_event(TASK);
        assert_eq!(route(&event, &cfg, NOW).unwrap(), Route { kind: EventKind::Task, lane: "contact:c1".into() });
        let mut store = MemStore::default();
        let mut api = Scripted::default().answer(201, json!({"task": {"id": "hl-t1"}}));
        let report = handle(&event, &cfg, &mut store, &mut api).result.unwrap();
        assert_eq!((report.outcome, api.sent.len()), (Outcome::Synced, 1));
        // The same token again (a platform retrying): a harmless redelivery.
        assert_eq!(route(&event, &cfg, NOW + 5).unwrap().kind, EventKind::Task);
        let again = handle(&event, &cfg, &mut store, &mut Scripted::default()).result.unwrap();
        assert_eq!((again.outcome, again.operations.len()), (Outcome::Unchanged, 0));
    }

    #[test]
    fn time_claims_are_checked_at_the_door_and_an_accepted_token_is_never_refused_for_its_age() {
        let cfg = config();
        let mut call: serde_json::Value = serde_json::from_slice(&body("call_inbound_missed.json")).unwrap();
        call["iat"] = json!(NOW - 10);
        call["exp"] = json!(NOW + 600);
        let signed_cfg =
            Config::from_json(&json!({"location_id": "L", "api_base": "http://api.test", "durable_state": true, "webhook_secret": "w"}).to_string()).unwrap();
        let webhook = InboundEvent::DialpadWebhook(sign(&call, "w", "HS256").into_bytes());
        let mut task: serde_json::Value = serde_json::from_str(TASK).unwrap();
        task["iat"] = json!(NOW - 10);
        task["exp"] = json!(NOW + 600);
        let platform = InboundEvent::PlatformEvent(sign(&task, PLATFORM_SECRET, "HS256").into_bytes());
        let later = NOW + 600 + 300 + 1; // past exp and the default leeway
        for (event, cfg, answers) in [
            (&webhook, &signed_cfg, vec![(200, json!({"contact": {"id": "c1"}})), (201, json!({"note": {"id": "n1"}})), (201, json!({"task": {"id": "t"}}))]),
            (&platform, &cfg, vec![(201, json!({"task": {"id": "hl-t1"}}))]),
        ] {
            // Accepted at the door while fresh; at the door once expired, refused with its claim.
            assert!(route(event, cfg, NOW).is_ok());
            assert!(route(event, cfg, NOW + 600 + 300).is_ok(), "the leeway's edge");
            assert!(matches!(route(event, cfg, later), Err(SyncError::InvalidSignature(ref m)) if m.starts_with("JWT expired: exp")));
            let mut store = MemStore::default();
            // Where handling is the door (a stock host's HTTP handler), the same: nothing sent.
            let refused = handle_arriving(event, later, cfg, &mut store, &mut Scripted::default());
            assert!(matches!(refused.result, Err(SyncError::InvalidSignature(_))));
            assert!(store.0.is_empty());
            // But `handle` runs after the door accepted it, however much later (retries, a
            // dead letter replayed): the expired token is handled, and a redelivery is harmless.
            let mut api = Scripted::default();
            for (status, body) in answers {
                api = api.answer(status, body);
            }
            assert!(plan(event, cfg, &mut store).is_ok());
            assert_eq!(handle(event, cfg, &mut store, &mut api).result.unwrap().outcome, Outcome::Synced);
            assert_eq!(handle(event, cfg, &mut store, &mut Scripted::default()).result.unwrap().outcome, Outcome::Unchanged);
        }
        // Not valid yet and issued in the future, past the leeway: refused at the door.
        let mut early = task.clone();
        early["nbf"] = json!(NOW + 301);
        let early = InboundEvent::PlatformEvent(sign(&early, PLATFORM_SECRET, "HS256").into_bytes());
        assert!(matches!(route(&early, &cfg, NOW), Err(SyncError::InvalidSignature(ref m)) if m.starts_with("JWT not valid yet: nbf")));
        assert!(route(&early, &cfg, NOW + 1).is_ok());
        let mut future = task;
        future["iat"] = json!(NOW + 301);
        let future = InboundEvent::PlatformEvent(sign(&future, PLATFORM_SECRET, "HS256").into_bytes());
        assert!(matches!(route(&future, &cfg, NOW), Err(SyncError::InvalidSignature(ref m)) if m.starts_with("JWT issued in the future: iat")));
        // With no leeway configured, one second counts.
        let strict = Config::from_json(&json!({"location_id": "L", "platform_secret": PLATFORM_SECRET, "jwt_leeway_seconds": 0}).to_string()).unwrap();
        assert!(route(&future, &strict, NOW + 301).is_ok());
        assert!(route(&future, &strict, NOW + 300).is_err());
    }
}
