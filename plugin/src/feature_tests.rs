//! The features that write where people look (issue 16), end to end through the pipeline over
//! a scripted transport: the exact requests, the records, and what a redelivery does.

use crate::config::Config;
use crate::execute::{HttpRequest, HttpResponse, NoAnswer, Transport};
use crate::inbound::event::InboundEvent;
use crate::pipeline::handle;
use crate::report::{Outcome, Report};
use crate::state::MemStore;
use serde_json::{json, Value};
use std::collections::VecDeque;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

/// Answers from a script; records every request with its body.
#[derive(Default)]
struct Scripted {
    answers: VecDeque<(u16, Value)>,
    sent: Vec<(String, String, Option<Value>)>,
}

impl Scripted {
    fn answer(mut self, status: u16, body: Value) -> Self {
        self.answers.push_back((status, body));
        self
    }
}

impl Transport for Scripted {
    fn send(&mut self, r: &HttpRequest) -> Result<HttpResponse, NoAnswer> {
        let body = r.body.as_ref().map(|b| serde_json::from_slice(b).unwrap());
        self.sent.push((r.method.as_str().to_string(), r.url.clone(), body));
        let sent: Vec<&str> = self.sent.iter().map(|(_, u, _)| u.as_str()).collect();
        let (status, body) = self.answers.pop_front().unwrap_or_else(|| panic!("unexpected request {} {} after {sent:?}", r.method.as_str(), r.url));
        Ok(HttpResponse { status, headers: vec![], body: body.to_string().into_bytes() })
    }
    fn sleep_ms(&mut self, _: u64) {}
}

fn config(extra: Value) -> Config {
    let mut c = json!({"location_id": "L", "api_base": "http://hl.test", "dialpad_api_base": "http://dp.test", "durable_state": true});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    Config::from_json(&c.to_string()).unwrap()
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}{name}")).unwrap()).unwrap()
}

fn run(body: &Value, config: &Config, store: &mut MemStore, transport: &mut Scripted) -> Report {
    handle(&InboundEvent::DialpadWebhook(body.to_string().into_bytes()), config, store, transport).result.unwrap()
}

fn requests(t: &Scripted) -> Vec<String> {
    t.sent.iter().map(|(m, u, _)| format!("{m} {u}")).collect()
}

fn conversations() -> Value {
    json!({"conversations": {"provider_id": "prov-1", "recording_privacy": "company"}})
}

#[test]
fn a_call_becomes_one_call_entry_named_by_its_note_and_a_redelivery_writes_nothing() {
    let cfg = config(conversations());
    let mut store = MemStore::default();
    store.0.insert("contact-by-phone:L:+13125550187".into(), b"c1".to_vec());
    let mut t = Scripted::default()
        .answer(200, json!({"conversations": [], "total": 0}))
        .answer(201, json!({"success": true, "conversation": {"id": "conv1"}}))
        .answer(200, json!({"success": true, "conversationId": "conv1", "messageId": "m1", "message": "ok"}))
        .answer(201, json!({"note": {"id": "n1"}}));
    let hangup = fixture("call_inbound_hangup_completed.json");
    let report = run(&hangup, &cfg, &mut store, &mut t);
    assert_eq!(
        requests(&t),
        [
            "GET http://hl.test/conversations/search?locationId=L&contactId=c1",
            "POST http://hl.test/conversations/",
            "POST http://hl.test/conversations/messages/inbound",
            "POST http://hl.test/contacts/c1/notes",
        ]
    );
    let entry = t.sent[2].2.clone().unwrap();
    assert_eq!(entry["type"], "Call");
    assert_eq!(entry["conversationId"], "conv1");
    assert_eq!(entry["conversationProviderId"], "prov-1");
    assert_eq!(entry["contactId"], "c1");
    assert_eq!(entry["altId"], "6011482093420544");
    assert_eq!(entry["call"], json!({"from": "+13125550187", "to": "+14155550142", "status": "completed"}));
    assert!(entry.get("direction").is_none());
    assert!(entry["date"].as_str().unwrap().starts_with("2026-03-10T15:04"), "{entry}");
    let note = t.sent[3].2.clone().unwrap()["body"].as_str().unwrap().to_string();
    assert!(note.contains("\nHighLevel call entry: m1\n"), "{note}");
    assert_eq!(report.call_entry_id.as_deref(), Some("m1"));

    // Redelivered, and a later piece of the same call: no second entry.
    let mut t = Scripted::default();
    let again = run(&hangup, &cfg, &mut store, &mut t);
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert!(t.sent.is_empty());
    let mut t = Scripted::default().answer(200, json!({"note": {"id": "n1"}}));
    let mut recap_only = cfg.clone();
    recap_only.action_items.create_tasks = false;
    run(&fixture("call_recap_summary.json"), &recap_only, &mut store, &mut t);
    assert_eq!(requests(&t), ["PUT http://hl.test/contacts/c1/notes/n1"]);
    assert!(t.sent[0].2.as_ref().unwrap()["body"].as_str().unwrap().contains("HighLevel call entry: m1"));
}

#[test]
fn a_new_callers_conversation_is_searched_by_the_contact_just_created() {
    let cfg = config(conversations());
    let mut t = Scripted::default()
        .answer(200, json!({}))
        .answer(201, json!({"contact": {"id": "c-new"}}))
        .answer(200, json!({"conversations": [], "total": 0}))
        .answer(201, json!({"success": true, "conversation": {"id": "conv1"}}))
        .answer(200, json!({"success": true, "conversationId": "conv1", "messageId": "m1", "message": "ok"}))
        .answer(201, json!({"note": {"id": "n1"}}));
    run(&fixture("call_inbound_hangup_completed.json"), &cfg, &mut MemStore::default(), &mut t);
    assert_eq!(requests(&t)[2], "GET http://hl.test/conversations/search?locationId=L&contactId=c-new");
    assert_eq!(t.sent[3].2.as_ref().unwrap()["contactId"], "c-new");
}

#[test]
fn a_voicemail_that_arrives_later_is_attached_through_a_share_link() {
    let cfg = config(conversations());
    let mut store = MemStore::default();
    store.0.insert("contact-by-phone:L:+17375550166".into(), b"c7".to_vec());
    let mut first = fixture("call_voicemail_uploaded.json");
    first["state"] = json!("voicemail");
    for key in ["voicemail_recording_id", "voicemail_link"] {
        first[key] = Value::Null;
    }
    first["recording_details"] = json!([]);
    let mut t = Scripted::default()
        .answer(200, json!({"conversations": [{"id": "conv7"}], "total": 1}))
        .answer(200, json!({"success": true, "conversationId": "conv7", "messageId": "m7", "message": "ok"}))
        .answer(201, json!({"note": {"id": "n7"}}));
    run(&first, &cfg, &mut store, &mut t);
    assert_eq!(t.sent[1].2.as_ref().unwrap()["call"]["status"], "voicemail");

    let mut t = Scripted::default()
        .answer(200, json!({"access_link": "https://dp.test/r/vm1", "id": 1}))
        .answer(200, json!({"success": true}))
        .answer(200, json!({"note": {"id": "n7"}}));
    let uploaded = fixture("call_voicemail_uploaded.json");
    run(&uploaded, &cfg, &mut store, &mut t);
    assert_eq!(
        requests(&t),
        [
            "POST http://dp.test/api/v2/recordingsharelink",
            "PUT http://hl.test/conversations/messages/m7/attachments",
            "PUT http://hl.test/contacts/c7/notes/n7"
        ]
    );
    assert_eq!(t.sent[0].2, Some(json!({"recording_id": "vm-6307351874682880-0001", "recording_type": "voicemail", "privacy": "company"})));
    assert_eq!(t.sent[1].2, Some(json!({"attachments": ["https://dp.test/r/vm1"]})));
    // The same voicemail again: nothing.
    let mut t = Scripted::default();
    run(&uploaded, &cfg, &mut store, &mut t);
    assert!(t.sent.is_empty(), "{:?}", requests(&t));
}

#[test]
fn without_durable_state_the_entry_is_looked_for_by_its_alt_id() {
    let mut cfg = config(conversations());
    cfg.durable_state = false;
    let mut store = MemStore::default();
    store.0.insert("contact-by-phone:L:+13125550187".into(), b"c1".to_vec());
    // An earlier delivery's entry landed, its note did not.
    let mut t = Scripted::default()
        .answer(200, json!({"notes": []}))
        .answer(200, json!({"conversations": [{"id": "conv1"}], "total": 1}))
        .answer(200, json!({"messages": [{"id": "m1", "altId": "6011482093420544"}], "lastMessageId": "m1", "nextPage": false}))
        .answer(201, json!({"note": {"id": "n1"}}));
    let report = run(&fixture("call_inbound_hangup_completed.json"), &cfg, &mut store, &mut t);
    assert_eq!(
        requests(&t),
        [
            "GET http://hl.test/contacts/c1/notes",
            "GET http://hl.test/conversations/search?locationId=L&contactId=c1",
            "GET http://hl.test/conversations/conv1/messages?type=TYPE_CALL&limit=100",
            "POST http://hl.test/contacts/c1/notes",
        ]
    );
    assert_eq!(report.call_entry_id.as_deref(), Some("m1"));
    assert!(t.sent[3].2.as_ref().unwrap()["body"].as_str().unwrap().contains("HighLevel call entry: m1"));
}

#[test]
fn call_entries_without_their_scope_are_a_configuration_error_before_any_write() {
    let mut extra = conversations();
    extra["scopes"] = json!(["contacts.readonly", "contacts.write"]);
    let cfg = config(extra);
    let mut t = Scripted::default();
    let handled =
        handle(&InboundEvent::DialpadWebhook(fixture("call_inbound_hangup_completed.json").to_string().into_bytes()), &cfg, &mut MemStore::default(), &mut t);
    assert_eq!(
        handled.result.unwrap_err(),
        crate::error::SyncError::MissingScope(vec!["conversations.readonly".into(), "conversations.write".into(), "conversations/message.write".into()])
    );
    assert!(t.sent.is_empty());
}

fn ringing(now_ms: i64) -> Value {
    let mut r = fixture("call_inbound_ringing_unknown_number.json");
    r["event_timestamp"] = json!(now_ms - 2_000);
    r
}

#[test]
fn ringing_pops_the_contact_on_the_agents_screen_once_and_the_sixth_in_a_minute_is_skipped() {
    let now = 1_800_000_000_000;
    crate::clock::tests::set_now_ms(now);
    let cfg = config(json!({"screen_pop": {}}));
    let mut store = MemStore::default();
    store.0.insert("contact-by-phone:L:+13125550187".into(), b"c1".to_vec());
    let mut t = Scripted::default().answer(200, json!({}));
    run(&ringing(now), &cfg, &mut store, &mut t);
    assert_eq!(requests(&t), ["POST http://dp.test/api/v2/users/5766401227931648/screenpop"]);
    assert_eq!(t.sent[0].2, Some(json!({"screen_pop_uri": "https://app.gohighlevel.com/v2/location/L/contacts/detail/c1"})));
    // Redelivered: no second pop.
    let mut t = Scripted::default();
    assert_eq!(run(&ringing(now), &cfg, &mut store, &mut t).outcome, Outcome::Unchanged);
    // Four more calls pop; the sixth in the minute is skipped with Dialpad's limit as its reason.
    for i in 1..=5 {
        let mut call = ringing(now);
        call["call_id"] = json!(7000 + i);
        let mut t = Scripted::default().answer(200, json!({}));
        let report = run(&call, &cfg, &mut store, &mut t);
        if i < 5 {
            assert_eq!(t.sent.len(), 1, "pop {i}");
        } else {
            assert!(t.sent.is_empty());
            assert!(matches!(report.outcome, Outcome::Skipped(ref r) if r.contains("Dialpad's limit")), "{:?}", report.outcome);
        }
    }
    // A stale ringing event, or one after the call ended, pops nothing.
    let mut stale = ringing(now);
    stale["call_id"] = json!(9001);
    stale["event_timestamp"] = json!(now - 120_000);
    let mut t = Scripted::default();
    assert!(matches!(run(&stale, &cfg, &mut MemStore::default(), &mut t).outcome, Outcome::Skipped(ref r) if r.contains("stale")));
}

#[test]
fn an_unknown_caller_gets_the_new_contact_page_when_configured() {
    let now = 1_800_000_000_000;
    crate::clock::tests::set_now_ms(now);
    let cfg = config(json!({"screen_pop": {"url": "https://crm.agency.example/v2/location/{{location_id}}/contacts/detail/{{contact_id}}",
        "unknown_caller_url": "https://crm.agency.example/v2/location/{{location_id}}/contacts/new?phone={{phone}}"}}));
    let mut t = Scripted::default().answer(200, json!({"contact": null})).answer(200, json!({}));
    run(&ringing(now), &cfg, &mut MemStore::default(), &mut t);
    // Without a page for unknown callers, nothing is popped, and the report says why.
    let plain = config(json!({"screen_pop": {}}));
    let mut none = Scripted::default().answer(200, json!({"contact": null}));
    let report = run(&ringing(now), &plain, &mut MemStore::default(), &mut none);
    assert_eq!(report.outcome, Outcome::Unchanged);
    assert!(report.summary.ends_with("no pop, HighLevel has no contact with this number (no unknown_caller_url)"), "{}", report.summary);
    assert_eq!(t.sent[1].2, Some(json!({"screen_pop_uri": "https://crm.agency.example/v2/location/L/contacts/new?phone=+13125550187"})));
    let mut t = Scripted::default().answer(200, json!({"contact": {"id": "c9"}})).answer(200, json!({}));
    run(&ringing(now), &cfg, &mut MemStore::default(), &mut t);
    assert_eq!(t.sent[1].2, Some(json!({"screen_pop_uri": "https://crm.agency.example/v2/location/L/contacts/detail/c9"})));
}

#[test]
fn follow_up_tasks_are_assigned_to_the_agents_highlevel_user() {
    let cfg = config(json!({"owners": {"fallback_user_id": "u-fallback"},
        "follow_up_rules": [{"name": "call-back", "when": {"outcomes": ["missed"]}, "task": {"title": "Call back {{contact_name}}", "due": {"after_minutes": 60}}}]}));
    let mut store = MemStore::default();
    store.0.insert("contact-by-phone:L:+12065550174".into(), b"c2".to_vec());
    let mut t = Scripted::default()
        .answer(200, json!({"users": [{"id": "u-maya", "email": "Maya.Patel@example.com"}]}))
        .answer(201, json!({"note": {"id": "n2"}}))
        .answer(201, json!({"task": {"id": "t2"}}));
    run(&fixture("call_inbound_missed.json"), &cfg, &mut store, &mut t);
    assert_eq!(requests(&t)[0], "GET http://hl.test/users/?locationId=L");
    assert_eq!(t.sent[1].2.as_ref().unwrap()["userId"], "u-maya");
    assert_eq!(t.sent[2].2.as_ref().unwrap()["assignedTo"], "u-maya");
    // Learned: the next call of the same agent reads no users.
    assert_eq!(store.0.get("owner:L:maya.patel@example.com").map(|v| v.as_slice()), Some(&b"u-maya"[..]));
}

fn highlevel(body: Value, config: &Config, store: &mut MemStore, transport: &mut Scripted) -> Report {
    handle(&InboundEvent::HighLevelWebhook(body.to_string().into_bytes()), config, store, transport).result.unwrap()
}

fn two_way() -> Config {
    config(json!({"two_way_contacts": {"conflicts": {"default": "newest"}}}))
}

#[test]
fn a_highlevel_edit_updates_dialpad_once_and_dialpads_echo_changes_nothing() {
    let cfg = two_way();
    let mut store = MemStore::default();
    let created = json!({"type": "ContactCreate", "locationId": "L", "id": "hl-1", "firstName": "Dana", "lastName": "Whitfield",
        "email": "dana@whitfield.example", "phone": "+12065550174", "companyName": "Whitfield Logistics"});
    let mut t = Scripted::default().answer(200, json!({"id": "dp-1", "first_name": "Dana"}));
    let report = highlevel(created.clone(), &cfg, &mut store, &mut t);
    assert_eq!(requests(&t), ["PUT http://dp.test/api/v2/contacts"]);
    assert_eq!(
        t.sent[0].2,
        Some(json!({"uid": "hl-1", "first_name": "Dana", "last_name": "Whitfield", "emails": ["dana@whitfield.example"], "phones": ["+12065550174"],
            "company_name": "Whitfield Logistics", "urls": []}))
    );
    assert_eq!(report.outcome, Outcome::Synced);
    // Dialpad tells of its new contact (the sync's own write): nothing goes back to HighLevel.
    let echo = json!({"event": "Created", "contact": {"id": "dp-1", "type": "shared", "first_name": "Dana", "last_name": "Whitfield",
        "phones": ["+12065550174"], "primary_phone": "+12065550174", "emails": ["dana@whitfield.example"], "primary_email": "dana@whitfield.example",
        "company_name": "Whitfield Logistics"}});
    let mut t = Scripted::default();
    assert_eq!(run(&echo, &cfg, &mut store, &mut t).outcome, Outcome::Unchanged);
    assert!(t.sent.is_empty());
    // HighLevel redelivers: nothing.
    let mut t = Scripted::default();
    assert_eq!(highlevel(created.clone(), &cfg, &mut store, &mut t).outcome, Outcome::Unchanged);
    // A person changes the e-mail in HighLevel: one PATCH with that field.
    let mut edited = created.clone();
    edited["type"] = json!("ContactUpdate");
    edited["email"] = json!("dana@new.example");
    let mut t = Scripted::default().answer(200, json!({"id": "dp-1"}));
    highlevel(edited, &cfg, &mut store, &mut t);
    assert_eq!(requests(&t), ["PATCH http://dp.test/api/v2/contacts/dp-1"]);
    assert_eq!(t.sent[0].2, Some(json!({"emails": ["dana@new.example"]})));
    let mut echo2 = echo.clone();
    echo2["event"] = json!("Updated");
    echo2["contact"]["emails"] = json!(["dana@new.example"]);
    echo2["contact"]["primary_email"] = json!("dana@new.example");
    let mut t = Scripted::default();
    assert_eq!(run(&echo2, &cfg, &mut store, &mut t).outcome, Outcome::Unchanged);
}

#[test]
fn a_dialpad_edit_updates_highlevel_once_and_highlevels_echo_changes_nothing() {
    let cfg = two_way();
    let mut store = MemStore::default();
    let mut t = Scripted::default().answer(200, json!({"contact": {"id": "hl-5"}})).answer(201, json!({"contact": {"id": "hl-5"}}));
    let created = fixture("contact_created_shared.json");
    run(&created, &cfg, &mut store, &mut t);
    let posted = t.sent.iter().find(|(m, _, _)| m == "POST").and_then(|(_, _, b)| b.clone()).unwrap_or_default();
    let mut t = Scripted::default().answer(200, json!({"contact": {"id": "hl-5"}}));
    let edit = fixture("contact_updated_new_email.json");
    let report = run(&edit, &cfg, &mut store, &mut t);
    assert_eq!(report.outcome, Outcome::Synced, "{posted}");
    let (_, url, body) = t.sent.last().unwrap().clone();
    assert!(url.ends_with("/contacts/hl-5"), "{url}");
    let body = body.unwrap();
    // HighLevel's webhook for that update (the sync's own write) goes nowhere.
    let mut hook = json!({"type": "ContactUpdate", "locationId": "L", "id": "hl-5"});
    for (k, v) in body.as_object().unwrap() {
        hook[k] = v.clone();
    }
    for k in ["firstName", "lastName", "email", "phone", "companyName", "website"] {
        if hook.get(k).is_none() {
            if let Some(v) = posted.get(k) {
                hook[k] = v.clone();
            }
        }
    }
    let mut t = Scripted::default();
    let echo = highlevel(hook, &cfg, &mut store, &mut t);
    assert!(t.sent.is_empty(), "{:?} {}", requests(&t), echo.summary);
    assert_eq!(echo.outcome, Outcome::Unchanged);
}
