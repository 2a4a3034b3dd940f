//! The trigger catalog (`meta.trigger-catalog`) and `triggers.normalize`: every kind of inbound
//! event the plugin handles, with the JSON Schemas of its payload and of its normalized event,
//! and one event read as the rules and mappings see it.
//!
//! The schemas are written as shapes (`contacts_api::shape`, a few bytes each) and turned into
//! JSON Schemas only when the catalog is asked for, so the component carries no schema text of
//! its own. What several triggers share (the Dialpad call body, the rules' facts) is written
//! once, in `POOL`. A payload shape names the members the plugin reads: senders post many
//! more, so its objects are opened to other members. A normalized event's objects stay closed:
//! `normalize` writes no member its schema does not list.
//!
//! `normalize` reads an event with [`read`], as `plan` does: the same bytes, signature and shape
//! checks, and the same typed errors. It sends nothing and writes nothing. What the planner
//! alone refuses (missing scopes, an ended call whose number is no phone number) stays
//! `plan`'s: the normalized event shows such a number under `number`, with `phone` null.

use crate::config::rules::{Facts, TASK_PLACEHOLDERS};
use crate::config::Config;
use crate::error::SyncError;
use crate::inbound::dialpad::{CallEvent, ContactAction, ContactEvent, Direction, Event, SmsEvent};
use crate::inbound::event::{EventKind, InboundEvent};
use crate::inbound::highlevel::{ContactChange, HighLevelContact, HighLevelEvent};
use crate::inbound::phone::E164;
use crate::inbound::platform::{Action, PlatformEvent};
use crate::inbound::read::{read, Inbound, Moment};
use crate::plan::activity::CallActivity;
use crate::plan::automations::{facts_of_call, facts_of_sms, task_value};
use contacts_api::shape::{self, Pool};
use serde_json::{Map, Value};

/// One trigger of the catalog, as [`catalog`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerInfo {
    pub id: &'static str,
    /// `dialpad`, `highlevel` or `platform`.
    pub source: &'static str,
    /// The WIT `inbound-event` case it arrives as.
    pub inbound: &'static str,
    pub kind: EventKind,
    pub summary: &'static str,
    pub payload_schema: Value,
    pub event_schema: Value,
}

/// An inbound event as the plugin reads it: which trigger it is, and what the rules and
/// mappings see of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub trigger: &'static str,
    pub event: Value,
}

/// The shapes the triggers share, by index (`#N`). Dialpad's bodies carry ids, texts and times
/// as numbers or strings, and `null` or `""` for absent (see `inbound::dialpad`).
const POOL: Pool = &[
    // Payloads.
    ("id", "(s|n)?"),                                               // 0
    ("text", "(s|n)?"),                                             // 1
    ("ms", "(n|s)?"),                                               // 2
    ("flag", "(b|s)?"),                                             // 3
    ("list_item", "(s|n|{content:#1})?"),                           // 4
    ("list", "([#4]|#4)"),                                          // 5
    ("call_contact", "{id:#0,name:#1,email:#1,type:#1,phone:#1}?"), // 6
    ("call_target", "{id:#0,name:#1,email:#1,type:#1}?"),           // 7
    (
        "call", // 8
        "{call_id!:#0,state!:s,direction:<inbound|outbound>?,external_number:#1,internal_number:#1,contact:#6,target:#7,is_internal:#3,\
         date_started:#2,date_connected:#2,date_ended:#2,event_timestamp:#2,talk_time:#2,duration:#2,master_call_id:#0,entry_point_call_id:#0,\
         operator_call_id:#0,recording_details:[{id:#0,recording_type:#1,url:#1}?]?,call_recording_ids:#5,voicemail_recording_id:#0,\
         voicemail_link:#1,transcription_text:#1,recap_summary:#1,recap_action_items:#5,recap_outcome:#1,company_call_review_share_link:#1,\
         labels:#5,custom_data:#1}",
    ),
    (
        "sms", // 9
        "{id!:#0,direction:<inbound|outbound>?,from_number:#1,to_number:#5,contact:{id:#0,name:#1,phone_number:#1}?,\
         target:{name:#1,phone_number:#1}?,is_internal:#3,created_date:#2,text:#1,text_content:#1,mms:#3,mms_url:#1}",
    ),
    (
        "contact", // 10
        "{event!:s,contact!:{id!:#0,type:#1,first_name:#1,last_name:#1,display_name:#1,company_name:#1,job_title:#1,extension:#1,\
         primary_phone:#1,phones:#5,primary_email:#1,emails:#5,urls:#5}}",
    ),
    ("highlevel_contact", "{type!:s,id!:s,locationId!:s,firstName:s?,lastName:s?,email:s?,phone:s?,companyName:s?,website:s?}"), // 11
    // Normalized events.
    (
        "facts", // 12
        "{on!:<call|sms>,outcome!:<completed|missed|voicemail|ended>?,direction!:<inbound|outbound>?,talk_seconds!:i?,transcript!:s?,\
         recap!:s?,sms_text!:s?,labels!:[s]}",
    ),
    (
        "placeholders", // 13
        "{contact_name!:s?,phone!:s?,direction!:s?,outcome!:s?,duration!:s?,agent!:s?,call_id!:s?,recap_summary!:s?,sms_text!:s?}",
    ),
    (
        "call_event", // 14
        "{call_id!:s,activity_id!:s,related_call_ids!:[s],state!:s,phone!:s?,number!:s?,internal!:b,dialpad_contact_id!:s?,contact_email!:s?,\
         agent_email!:s?,agent_user_id!:s?,highlevel_contact_id!:s?,started_ms!:i?,ended_ms!:i?,event_ms!:i?,recording_urls!:[s],\
         voicemail_link!:s?,review_link!:s?,recap_action_items!:[s],facts!:#12,placeholders!:#13}",
    ),
    (
        "sms_event", // 15
        "{sms_id!:s,phone!:s?,number!:s?,internal!:b,dialpad_contact_id!:s?,agent_number!:s?,created_ms!:i?,mms_url!:s?,facts!:#12,\
         placeholders!:#13}",
    ),
    (
        "contact_event", // 16
        "{dialpad_contact_id!:s,phone!:s?,email!:s?,fields!:{id!:s,type:s,first_name:s,last_name:s,display_name:s,primary_phone:s,\
         primary_email:s,company_name:s,job_title:s,url:s,extension:s}}",
    ),
    ("highlevel_event", "{contact_id!:s,location_id!:s,phone!:s?,fields!:{firstName:s,lastName:s,email:s,phone:s,companyName:s,website:s}}"), // 17
    ("platform_event", "{event_id!:s,ref!:s,contact!:{id!:s?,phone!:s?,email!:s?},fields!:{title:s,body:s,dueDate:s,assignedTo:s}}"),         // 18
];

struct Trigger {
    id: &'static str,
    kind: EventKind,
    summary: &'static str,
    /// The payload's shape; `None`: a platform event, whose schema is the platform's own
    /// (`platform-event.schema.json`).
    payload: Option<&'static str>,
    /// The payload member that tells this trigger from its siblings, and the values it takes
    /// here (none: any value, or no such member).
    member: &'static str,
    values: &'static [&'static str],
    /// The normalized event's shape.
    event: &'static str,
}

const fn call(id: &'static str, states: &'static [&'static str], summary: &'static str) -> Trigger {
    Trigger { id, kind: EventKind::Call, summary, payload: Some("#8"), member: "state", values: states, event: "#14" }
}

const fn sms(id: &'static str, direction: &'static [&'static str], summary: &'static str) -> Trigger {
    Trigger { id, kind: EventKind::Sms, summary, payload: Some("#9"), member: "direction", values: direction, event: "#15" }
}

const fn contact(id: &'static str, event: &'static [&'static str], summary: &'static str) -> Trigger {
    Trigger { id, kind: EventKind::Contact, summary, payload: Some("#10"), member: "event", values: event, event: "#16" }
}

const fn highlevel(id: &'static str, kind: &'static [&'static str], summary: &'static str) -> Trigger {
    Trigger { id, kind: EventKind::HighLevelContact, summary, payload: Some("#11"), member: "type", values: kind, event: "#17" }
}

const fn platform(id: &'static str, kind: EventKind, kind_type: &'static [&'static str], summary: &'static str) -> Trigger {
    Trigger { id, kind, summary, payload: None, member: "type", values: kind_type, event: "#18" }
}

/// Every trigger. A call's trigger is the one that lists its state (`inbound::dialpad::state_role`
/// says what each state means to the sync); a state none lists is `dialpad.call.other`.
const TRIGGERS: &[Trigger] = &[
    call(
        "dialpad.call.ringing",
        &["ringing"],
        "A call rings: an inbound call ringing one user pops the caller's HighLevel contact on their screen (`screen_pop`); nothing else is written.",
    ),
    call(
        "dialpad.call.in_progress",
        &["calling", "preanswer", "queued", "connected", "hold", "parked", "merged", "monitor", "barge", "eavesdrop", "takeover"],
        "A call is under way (dialing, queued, connected, on hold, parked, merged, supervised): skipped, nothing is written until it ends.",
    ),
    call(
        "dialpad.call.hangup",
        &["hangup"],
        "A call ended: the caller's contact (found by E.164 phone, then e-mail, or created) gets the call's note, completed or missed; the rules fire.",
    ),
    call("dialpad.call.missed", &["missed"], "A call nobody answered: the caller's contact gets the call's note as missed; the rules fire."),
    call("dialpad.call.voicemail", &["voicemail"], "A call went to voicemail: the caller's contact gets the call's note as a voicemail; the rules fire."),
    call(
        "dialpad.call.voicemail_uploaded",
        &["voicemail_uploaded"],
        "A voicemail's audio is ready: its link goes on the call's note, and the call counts as a voicemail.",
    ),
    call(
        "dialpad.call.transcription",
        &["transcription", "call_transcription"],
        "A call's or a voicemail's transcript is ready: it goes on the call's note, and the rules read it.",
    ),
    call("dialpad.call.recording", &["recording"], "A call's recording is ready: its link goes on the call's note."),
    call(
        "dialpad.call.recap",
        &["recap_summary", "recap_action_items", "recap_outcome", "recap_purposes"],
        "A Dialpad Ai recap is ready: it goes on the call's note, the rules read it, and its action items may become tasks.",
    ),
    call("dialpad.call.other", &[], "A call state the sync does not act on (surveys, and states it does not know): skipped with a reason."),
    sms(
        "dialpad.sms.inbound",
        &["inbound"],
        "A text (SMS or MMS) came in: the sender's contact (found or created) gets it as a note; the SMS rules fire. A text with no direction counts as inbound.",
    ),
    sms("dialpad.sms.outbound", &["outbound"], "A text was sent: the recipient's contact (found or created) gets it as a note; the SMS rules fire."),
    contact(
        "dialpad.contact.created",
        &["Created"],
        "A Dialpad contact was created: its HighLevel contact is created, or found and updated, through the field mapping, with the configured tags.",
    ),
    contact(
        "dialpad.contact.updated",
        &["Updated"],
        "A Dialpad contact was edited: its HighLevel contact (found or created) gets the mapped fields that changed.",
    ),
    contact(
        "dialpad.contact.deleted",
        &["Deleted"],
        "A Dialpad contact was deleted: its HighLevel contact is tagged, deleted or kept, as `on_contact_deleted` says.",
    ),
    Trigger {
        id: "dialpad.agent_status",
        kind: EventKind::AgentStatus,
        summary: "An agent's availability changed: skipped, it has no Contacts API counterpart.",
        payload: Some("{on_duty_status!:x}"),
        member: "",
        values: &[],
        event: "{}",
    },
    highlevel(
        "highlevel.ContactCreate",
        &["ContactCreate"],
        "A HighLevel contact was created: with `two_way_contacts`, it becomes a Dialpad contact (shared, or a user's local one); otherwise skipped.",
    ),
    highlevel(
        "highlevel.ContactUpdate",
        &["ContactUpdate"],
        "A HighLevel contact was edited: with `two_way_contacts`, its Dialpad contact (made if not linked yet) gets the fields that changed; the sync's own writes coming back change nothing.",
    ),
    highlevel(
        "highlevel.ContactDelete",
        &["ContactDelete"],
        "A HighLevel contact was deleted: with `two_way_contacts`, its Dialpad contact is deleted or kept, as `on_delete` says.",
    ),
    Trigger {
        id: "highlevel.other",
        kind: EventKind::HighLevelContact,
        summary: "Any other HighLevel webhook (NoteCreate, InboundMessage, …): skipped as not synced (the reference host answers it `ignored` without calling the plugin).",
        payload: Some("{type!:s}"),
        member: "",
        values: &[],
        event: "{type!:s}",
    },
    platform(
        "platform.task.created",
        EventKind::Task,
        &["task.created"],
        "The platform made a task: it is created on the HighLevel contact it names (by id, else phone, then e-mail) and linked to its `ref`.",
    ),
    platform("platform.task.updated", EventKind::Task, &["task.updated"], "The platform changed a task: the HighLevel task linked to its `ref` is updated."),
    platform(
        "platform.task.completed",
        EventKind::Task,
        &["task.completed"],
        "The platform completed a task: the HighLevel task linked to its `ref` is marked completed.",
    ),
    platform(
        "platform.note.created",
        EventKind::Note,
        &["note.created"],
        "The platform wrote a note: it is attached to the HighLevel contact it names and linked to its `ref`.",
    ),
    platform("platform.note.updated", EventKind::Note, &["note.updated"], "The platform changed a note: the HighLevel note linked to its `ref` is updated."),
];

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every trigger, with its schemas.
pub fn catalog() -> Vec<TriggerInfo> {
    TRIGGERS.iter().map(info).collect()
}

fn info(t: &Trigger) -> TriggerInfo {
    let source = t.id.split('.').next().unwrap_or_default();
    let mut payload = match t.payload {
        Some(text) => {
            let description = match source {
                "dialpad" => "The body Dialpad posts (for a signed webhook, the JWT's claims), by the members the plugin reads; others are allowed and ignored. Ids, texts and times may be numbers or strings; null and \"\" are absent.",
                _ => "The body HighLevel posts (its signature verified by the host), by the members the plugin reads; others are allowed and ignored.",
            };
            let mut schema = document(text, format!("{}: payload", t.id), description);
            open(&mut schema);
            schema
        }
        None => {
            let mut schema: Value =
                serde_json::from_str(crate::inbound::platform::JSON_SCHEMA).expect("platform-event.schema.json is JSON (a unit test reads it)");
            // The schema narrowed to one `type` is another document: the original's id is not its.
            if let Some(members) = schema.as_object_mut() {
                members.remove("$id");
            }
            schema["title"] = format!("{}: payload", t.id).into();
            schema
        }
    };
    if !t.values.is_empty() {
        payload["properties"][t.member] = object(vec![("enum", t.values.into())]);
    }
    let mut event = document(
        t.event,
        format!("{}: normalized event", t.id),
        "What `triggers.normalize` returns for this trigger: the event as the rules and mappings read it. No other members appear.",
    );
    // `{}` is any object in the shape language; an event with no members is closed too.
    if event.get("properties").is_none() && event["type"] == "object" {
        event["additionalProperties"] = false.into();
    }
    TriggerInfo {
        id: t.id,
        source,
        inbound: match source {
            "dialpad" => "dialpad-webhook",
            "highlevel" => "highlevel-webhook",
            _ => "platform-event",
        },
        kind: t.kind,
        summary: t.summary,
        payload_schema: payload,
        event_schema: event,
    }
}

/// A shape as a JSON Schema document, the pool's shapes it uses under `$defs`.
fn document(text: &'static str, title: String, description: &str) -> Value {
    let mut defs = Map::new();
    let schema = shape::json_schema(&shape::parse(text), POOL, &mut defs);
    let mut doc = Map::new();
    doc.insert("$schema".into(), DRAFT.into());
    doc.insert("title".into(), title.into());
    doc.insert("description".into(), description.into());
    if let Value::Object(members) = schema {
        doc.extend(members);
    }
    if !defs.is_empty() {
        doc.insert("$defs".into(), Value::Object(defs));
    }
    Value::Object(doc)
}

/// Lets every object of a payload schema hold members it does not list.
fn open(schema: &mut Value) {
    match schema {
        Value::Object(members) => {
            if members.get("additionalProperties") == Some(&Value::Bool(false)) {
                members.remove("additionalProperties");
            }
            members.values_mut().for_each(open);
        }
        Value::Array(items) => items.iter_mut().for_each(open),
        _ => {}
    }
}

/// Reads one event as `plan` reads it, and says which trigger it is and what the rules and
/// mappings see of it.
pub fn normalize(event: &InboundEvent, config: &Config) -> Result<Normalized, SyncError> {
    Ok(match read(event, config, Moment::Accepted)? {
        Inbound::Dialpad(Event::Call(call)) => Normalized { trigger: trigger_of_state(&call.state), event: call_event(&call) },
        Inbound::Dialpad(Event::Sms(sms)) => Normalized {
            trigger: if sms.direction == Some(Direction::Outbound) { "dialpad.sms.outbound" } else { "dialpad.sms.inbound" },
            event: sms_event(&sms),
        },
        Inbound::Dialpad(Event::Contact(contact)) => Normalized {
            trigger: match contact.action {
                ContactAction::Created => "dialpad.contact.created",
                ContactAction::Updated => "dialpad.contact.updated",
                ContactAction::Deleted => "dialpad.contact.deleted",
            },
            event: contact_event(&contact),
        },
        Inbound::Dialpad(Event::AgentStatus) => Normalized { trigger: "dialpad.agent_status", event: object(Vec::new()) },
        Inbound::HighLevel(HighLevelEvent::Contact(contact)) => Normalized {
            trigger: match contact.change {
                ContactChange::Created => "highlevel.ContactCreate",
                ContactChange::Updated => "highlevel.ContactUpdate",
                ContactChange::Deleted => "highlevel.ContactDelete",
            },
            event: highlevel_event(&contact),
        },
        Inbound::HighLevel(HighLevelEvent::Other(kind)) => Normalized { trigger: "highlevel.other", event: object(vec![("type", kind.into())]) },
        Inbound::Platform(event) => Normalized {
            trigger: match (event.kind, event.action) {
                (EventKind::Note, Action::Created) => "platform.note.created",
                (EventKind::Note, _) => "platform.note.updated",
                (_, Action::Created) => "platform.task.created",
                (_, Action::Updated) => "platform.task.updated",
                (_, Action::Completed) => "platform.task.completed",
            },
            event: platform_event(&event),
        },
    })
}

fn trigger_of_state(state: &str) -> &'static str {
    TRIGGERS.iter().find(|t| t.kind == EventKind::Call && t.values.contains(&state)).map_or("dialpad.call.other", |t| t.id)
}

/// A call as this event alone tells it (the rules see a call's pieces merged: a transcript
/// arriving after the hangup is read with the hangup's outcome).
fn call_event(call: &CallEvent) -> Value {
    let mut activity = CallActivity { call_id: call.default_activity_id().to_string(), ..CallActivity::default() };
    activity.merge(call);
    object(vec![
        ("call_id", call.call_id.as_str().into()),
        ("activity_id", activity.call_id.as_str().into()),
        ("related_call_ids", call.related_call_ids.as_slice().into()),
        ("state", call.state.as_str().into()),
        ("phone", phone(&call.external_phone)),
        ("number", call.external_number_raw.as_deref().into()),
        ("internal", call.is_internal.into()),
        ("dialpad_contact_id", call.party.dialpad_id.as_deref().into()),
        ("contact_email", call.party.email.as_deref().into()),
        ("agent_email", call.agent.email.as_deref().into()),
        ("agent_user_id", call.agent.user_id.as_deref().into()),
        ("highlevel_contact_id", call.custom_contact_id().into()),
        ("started_ms", call.started_ms.into()),
        ("ended_ms", call.ended_ms.into()),
        ("event_ms", call.event_ms.into()),
        ("recording_urls", call.recording_urls.as_slice().into()),
        ("voicemail_link", call.voicemail_link.as_deref().into()),
        ("review_link", call.review_link.as_deref().into()),
        ("recap_action_items", call.recap_action_items.as_slice().into()),
        ("facts", facts(&facts_of_call(&activity))),
        ("placeholders", placeholders(call.party.name.as_deref(), Some(&activity), None)),
    ])
}

fn sms_event(sms: &SmsEvent) -> Value {
    object(vec![
        ("sms_id", sms.id.as_str().into()),
        ("phone", phone(&sms.external_phone)),
        ("number", sms.external_number_raw.as_deref().into()),
        ("internal", sms.is_internal.into()),
        ("dialpad_contact_id", sms.party.dialpad_id.as_deref().into()),
        ("agent_number", sms.agent_number.as_deref().into()),
        ("created_ms", sms.created_ms.into()),
        ("mms_url", sms.mms_url.as_deref().into()),
        ("facts", facts(&facts_of_sms(sms))),
        ("placeholders", placeholders(sms.party.name.as_deref(), None, Some(sms))),
    ])
}

/// What the rules' conditions test (`config::rules::Facts`), by the names of their `when` keys.
fn facts(f: &Facts) -> Value {
    object(vec![
        ("on", if f.sms { "sms" } else { "call" }.into()),
        ("outcome", Some(f.outcome).filter(|o| !o.is_empty()).into()),
        ("direction", f.direction.map(Direction::as_str).into()),
        ("talk_seconds", f.talk_seconds.into()),
        ("transcript", f.transcript.into()),
        ("recap", f.recap.as_deref().into()),
        ("sms_text", f.sms_text.into()),
        ("labels", f.labels.into()),
    ])
}

/// What each task placeholder renders for this event; `rule`, the rule's own name, is not the
/// event's.
fn placeholders(contact_name: Option<&str>, call: Option<&CallActivity>, sms: Option<&SmsEvent>) -> Value {
    let mut values = Map::new();
    for name in TASK_PLACEHOLDERS.iter().filter(|name| **name != "rule") {
        values.insert(name.to_string(), task_value(name, "", contact_name, call, sms).filter(|v| !v.is_empty()).into());
    }
    Value::Object(values)
}

/// A Dialpad contact: `fields` by the names a field mapping's `from` takes (`CONTACT_FIELDS`).
fn contact_event(contact: &ContactEvent) -> Value {
    object(vec![
        ("dialpad_contact_id", contact.id.as_str().into()),
        ("phone", phone(&contact.phone)),
        ("email", contact.email.as_deref().into()),
        ("fields", fields(&contact.fields)),
    ])
}

/// A HighLevel contact: `fields` are the ones two-way sync carries to Dialpad (`SYNCED_FIELDS`).
fn highlevel_event(contact: &HighLevelContact) -> Value {
    object(vec![
        ("contact_id", contact.id.as_str().into()),
        ("location_id", contact.location_id.as_str().into()),
        ("phone", phone(&contact.phone)),
        ("fields", fields(&contact.fields)),
    ])
}

/// A platform event: `fields` are the HighLevel task or note fields it sends.
fn platform_event(event: &PlatformEvent) -> Value {
    let contact = object(vec![("id", event.contact_id.as_deref().into()), ("phone", phone(&event.phone)), ("email", event.email.as_deref().into())]);
    object(vec![
        ("event_id", event.id.as_str().into()),
        ("ref", event.reference.as_str().into()),
        ("contact", contact),
        ("fields", Value::Object(event.fields.clone())),
    ])
}

fn fields(fields: &[(&str, String)]) -> Value {
    let mut values = Map::new();
    for (name, value) in fields {
        values.insert(name.to_string(), value.as_str().into());
    }
    Value::Object(values)
}

fn phone(phone: &Option<E164>) -> Value {
    phone.as_ref().map(E164::as_str).into()
}

/// A JSON object of these members. Built from `Value`s, one insert at a time, to keep the
/// component small: `json!` sends each member through serde's serializer, and collecting into
/// the map sorts the members first, each a copy of the sort's code.
fn object(members: Vec<(&str, Value)>) -> Value {
    let mut object = Map::new();
    for (name, value) in members {
        object.insert(name.to_string(), value);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::dialpad::{state_role, StateRole, CONTACT_FIELDS};
    use crate::inbound::highlevel::SYNCED_FIELDS;
    use serde_json::json;
    use shape::Shape;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    fn config() -> Config {
        Config::from_json(r#"{"location_id":"L","platform_secret":"p"}"#).unwrap()
    }

    fn dialpad(body: &[u8]) -> Normalized {
        normalize(&InboundEvent::DialpadWebhook(body.to_vec()), &config()).unwrap()
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    fn trigger(id: &str) -> &'static Trigger {
        TRIGGERS.iter().find(|t| t.id == id).unwrap_or_else(|| panic!("no trigger {id}"))
    }

    /// Every way `event` does not fit its trigger's event shape (closed objects, types).
    fn misfits(n: &Normalized) -> Vec<shape::Mismatch> {
        let mut out = Vec::new();
        shape::check(&shape::parse(trigger(n.trigger).event), &n.event, POOL, "", &mut out);
        out
    }

    fn keys(fields: Vec<shape::Field>) -> Vec<&'static str> {
        fields.iter().map(|f| f.name).collect()
    }

    #[test]
    fn ids_are_unique_and_every_schema_is_made() {
        let catalog = catalog();
        let mut ids: Vec<&str> = catalog.iter().map(|t| t.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), TRIGGERS.len());
        for t in &catalog {
            assert!(t.id.starts_with(&format!("{}.", t.source)), "{}", t.id);
            for schema in [&t.payload_schema, &t.event_schema] {
                assert_eq!(schema["$schema"], DRAFT, "{}", t.id);
                assert!(schema["title"].as_str().unwrap().starts_with(t.id));
            }
            // Payloads are open everywhere, events closed everywhere but where a shape said `{}`.
            let text = t.payload_schema.to_string();
            assert!(!text.contains(r#""additionalProperties":false"#) || t.source == "platform", "{}: {text}", t.id);
            assert!(t.event_schema.to_string().contains(r#""additionalProperties":false"#), "{}", t.id);
        }
        let other = catalog.iter().find(|t| t.id == "dialpad.call.other").unwrap();
        assert!(other.payload_schema.get("properties").is_none(), "any state: {}", other.payload_schema);
        let hangup = catalog.iter().find(|t| t.id == "dialpad.call.hangup").unwrap();
        assert_eq!(hangup.payload_schema["properties"]["state"], json!({"enum": ["hangup"]}));
        assert_eq!(hangup.payload_schema["$ref"], "#/$defs/call");
        let task = catalog.iter().find(|t| t.id == "platform.task.completed").unwrap();
        assert_eq!(task.payload_schema["properties"]["type"], json!({"enum": ["task.completed"]}));
        assert!(task.payload_schema.get("$id").is_none());
    }

    #[test]
    fn the_call_triggers_follow_what_each_state_means_to_the_sync() {
        for t in TRIGGERS.iter().filter(|t| t.kind == EventKind::Call) {
            for state in t.values {
                let expected = match t.id {
                    "dialpad.call.ringing" | "dialpad.call.in_progress" => StateRole::InProgress,
                    "dialpad.call.hangup" | "dialpad.call.missed" | "dialpad.call.voicemail" => StateRole::Ended,
                    _ => StateRole::FollowUp,
                };
                assert_eq!(state_role(state), expected, "{state}");
                assert_eq!(trigger_of_state(state), t.id);
            }
        }
        assert_eq!(state_role("csat"), StateRole::Ignored);
        assert_eq!(trigger_of_state("csat"), "dialpad.call.other");
    }

    #[test]
    fn normalized_events_name_what_rules_and_mappings_read() {
        let pooled = |name: &str| shape::parse(POOL.iter().find(|(n, _)| *n == name).unwrap().1);
        let placeholders: Vec<&str> = TASK_PLACEHOLDERS.iter().copied().filter(|p| *p != "rule").collect();
        assert_eq!(keys(pooled("placeholders").fields(POOL)), placeholders);
        let field = |event: &str, name: &str| pooled(event).fields(POOL).into_iter().find(|f| f.name == name).unwrap().shape;
        let sorted = |mut names: Vec<&'static str>| {
            names.sort();
            names
        };
        assert_eq!(sorted(keys(field("contact_event", "fields").fields(POOL))), sorted(CONTACT_FIELDS.to_vec()));
        assert_eq!(keys(field("highlevel_event", "fields").fields(POOL)), SYNCED_FIELDS);
        assert_eq!(field("call_event", "facts"), Shape::Ref(12));
    }

    #[test]
    fn every_fixture_is_its_trigger_and_fits_its_event_schema() {
        let expected = [
            ("call_inbound_ringing_unknown_number.json", "dialpad.call.ringing"),
            ("call_inbound_connected.json", "dialpad.call.in_progress"),
            ("call_inbound_hangup_completed.json", "dialpad.call.hangup"),
            ("call_outbound_hangup_recorded.json", "dialpad.call.hangup"),
            ("call_inbound_missed.json", "dialpad.call.missed"),
            ("call_voicemail_uploaded.json", "dialpad.call.voicemail_uploaded"),
            ("call_voicemail_transcription.json", "dialpad.call.transcription"),
            ("call_recap_summary.json", "dialpad.call.recap"),
            ("sms_inbound.json", "dialpad.sms.inbound"),
            ("contact_created_shared.json", "dialpad.contact.created"),
            ("contact_updated_new_email.json", "dialpad.contact.updated"),
            ("contact_deleted.json", "dialpad.contact.deleted"),
            ("agent_status_on_duty.json", "dialpad.agent_status"),
        ];
        for (name, id) in expected {
            let n = dialpad(&fixture(name));
            assert_eq!(n.trigger, id, "{name}");
            assert_eq!(misfits(&n), [], "{name}: {}", n.event);
        }
    }

    #[test]
    fn a_hangup_reads_as_the_rules_and_templates_see_it() {
        let n = dialpad(&fixture("call_inbound_hangup_completed.json"));
        assert_eq!(n.event["phone"], "+13125550187");
        assert_eq!(n.event["activity_id"], "6011482093420544");
        assert_eq!(n.event["agent_user_id"], "5766401227931648");
        assert_eq!(
            n.event["facts"],
            json!({"on": "call", "outcome": "completed", "direction": "inbound", "talk_seconds": 247, "transcript": null, "recap": null, "sms_text": null, "labels": []})
        );
        assert_eq!(n.event["placeholders"]["contact_name"], "+13125550187", "a formatted number is no name: the phone stands in");
        assert_eq!(n.event["placeholders"]["duration"], "4m 07s");
        assert_eq!(n.event["placeholders"]["agent"], "Maya Patel");
        assert_eq!(n.event["placeholders"]["sms_text"], Value::Null);
        let recap = dialpad(&fixture("call_recap_summary.json"));
        assert!(recap.event["facts"]["recap"].as_str().unwrap().contains("annual billing"));
        assert_eq!(recap.event["recap_action_items"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn other_sources_and_edited_bodies_fit_too() {
        let edit = |name: &str, change: &dyn Fn(&mut Value)| {
            let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
            change(&mut v);
            dialpad(v.to_string().as_bytes())
        };
        let outbound = edit("sms_inbound.json", &|v| v["direction"] = json!("outbound"));
        assert_eq!(outbound.trigger, "dialpad.sms.outbound");
        assert_eq!(outbound.event["facts"]["sms_text"], outbound.event["placeholders"]["sms_text"]);
        assert_eq!(edit("call_inbound_missed.json", &|v| v["state"] = json!("voicemail")).event["facts"]["outcome"], "voicemail");
        let other = edit("call_inbound_hangup_completed.json", &|v| v["state"] = json!("csat"));
        assert_eq!(other.trigger, "dialpad.call.other");
        // A number that is no phone number is the planner's to refuse; here it is only shown.
        let odd = edit("call_inbound_missed.json", &|v| v["external_number"] = json!("call me"));
        assert_eq!((odd.event["phone"].clone(), odd.event["number"].clone()), (Value::Null, json!("call me")));
        for n in [outbound, other, odd] {
            assert_eq!(misfits(&n), [], "{}", n.event);
        }

        let hl = |body: &str| normalize(&InboundEvent::HighLevelWebhook(body.as_bytes().to_vec()), &config());
        let update = hl(r#"{"type":"ContactUpdate","locationId":"L","id":"c1","email":"Dana@X.example","phone":"(206) 555-0174","tags":["a"]}"#).unwrap();
        assert_eq!(update.trigger, "highlevel.ContactUpdate");
        assert_eq!(
            update.event,
            json!({"contact_id": "c1", "location_id": "L", "phone": "+12065550174", "fields": {"email": "dana@x.example", "phone": "+12065550174"}})
        );
        let note = hl(r#"{"type":"NoteCreate","locationId":"L"}"#).unwrap();
        assert_eq!((note.trigger, note.event.clone()), ("highlevel.other", json!({"type": "NoteCreate"})));
        assert!(matches!(hl(r#"{"type":"ContactCreate","locationId":"M","id":"c"}"#), Err(SyncError::InvalidInput(_))));

        let signed = |claims: Value| InboundEvent::PlatformEvent(crate::inbound::signature::tests::sign(&claims, "p", "HS256").into_bytes());
        let task = json!({"id": "e1", "type": "task.created", "contact": {"phone": "(206) 555-0174"}, "task": {"ref": "t", "title": "Call", "due": "2026-03-12T09:00:00-05:00"}});
        let n = normalize(&signed(task), &config()).unwrap();
        assert_eq!(n.trigger, "platform.task.created");
        assert_eq!(n.event["contact"], json!({"id": null, "phone": "+12065550174", "email": null}));
        assert_eq!(n.event["fields"], json!({"title": "Call", "dueDate": "2026-03-12T09:00:00-05:00"}));
        for n in [update, note, n] {
            assert_eq!(misfits(&n), [], "{}", n.event);
        }
    }

    #[test]
    fn bodies_that_do_not_fit_get_the_errors_reading_gives() {
        let cfg = config();
        for body in [&b"{"[..], b"[1]", br#"{"hello":1}"#, br#"{"call_id":[1],"state":"hangup"}"#, b"\xff"] {
            let event = InboundEvent::DialpadWebhook(body.to_vec());
            assert_eq!(normalize(&event, &cfg).unwrap_err(), read(&event, &cfg, Moment::Accepted).unwrap_err());
        }
        let signed = Config::from_json(r#"{"location_id":"L","webhook_secret":"s"}"#).unwrap();
        assert!(matches!(normalize(&InboundEvent::DialpadWebhook(fixture("sms_inbound.json")), &signed), Err(SyncError::InvalidSignature(_))));
    }
}
