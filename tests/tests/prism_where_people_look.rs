//! Conformance of the features that write where people look (issue 16): every request the real
//! plugin sends through the real host to HighLevel's Conversations and Users APIs and to
//! Dialpad's API is judged by Stoplight Prism (`prism mock --errors`) on that API's official
//! spec, and none may break it.
//!
//! HighLevel's APIs share one origin (`api_base`, the only HighLevel origin the host's outbound
//! policy lets through), so `api_base` is a loopback router that sends `/conversations…` to a
//! Prism on the Conversations spec, `/users…` to one on the Users spec, and the rest to one on
//! the Contacts spec (the flows also find and create contacts, notes, tasks);
//! `dialpad_api_base` is a Prism on Dialpad's spec. The verdicts are read from the host's own
//! outbound log: `sl-violations` located in the request, and Prism's own refusals (422, 400,
//! 401, 404, 405, 415).
//!
//! Prism answers from examples, not state: where an example would hide an operation (the
//! conversation search always finds one), the router steers that one answer
//! ([`RecordingProxy::steer`]) after Prism has judged the request. Later steps may fail on
//! Prism's made-up ids; that is printed, not asserted: the assertions are that each expected
//! operation was sent and that no request broke its spec. An example that breaks its own spec's
//! schema is a defect of the spec, printed as such.
//!
//! Needs `tests/prism/install.sh`; without it the runner lists this test as ignored, with that
//! reason, unless `REQUIRE_PRISM=1` (CI), where a missing Prism fails it.

use contacts_api::Method;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::outbound::HttpExchange;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::settings::Settings;
use e2e_tests::prism::{Prism, RecordingProxy, Spec};
use e2e_tests::prism_dialpad::{request_violations, response_defects, DialpadPrism, Exchange};
use e2e_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Every request the features of issue 16 add, by the spec's operation id.
const NEW_OPERATIONS: &[&str] = &[
    "search-conversation",
    "create-conversation",
    "get-messages",
    "add-an-inbound-message",
    "add-an-outbound-message",
    "add-message-attachments",
    "get-user-by-location",
    "contacts.create_with_uid",
    "contacts.create",
    "contacts.update",
    "contacts.delete",
    "screen_pop.initiate",
    "recording_share_link.create",
    "call.call",
    "users.list",
];

/// The Prisms and the router in front of HighLevel's three.
struct Judges {
    router: RecordingProxy,
    dialpad: DialpadPrism,
    _prisms: [Prism; 3],
}

impl Judges {
    /// Starts the four Prisms side by side (each takes a few seconds to load its spec).
    fn start() -> Judges {
        let (contacts, conversations, users, dialpad) = std::thread::scope(|s| {
            let contacts = s.spawn(|| Prism::start_spec(Spec::Contacts));
            let conversations = s.spawn(|| Prism::start_spec(Spec::Conversations));
            let users = s.spawn(|| Prism::start_spec(Spec::Users));
            // Answers built from the schemas (`--ignoreExamples`): the spec's examples write
            // int64 ids as strings, so Prism could not serve the share link's or the users'.
            let dialpad = s.spawn(|| DialpadPrism::start(false));
            (contacts.join().unwrap(), conversations.join().unwrap(), users.join().unwrap(), dialpad.join().unwrap())
        });
        let router = RecordingProxy::start_routed(&[("/conversations", &conversations.base_url), ("/users", &users.base_url), ("", &contacts.base_url)]);
        Judges { router, dialpad, _prisms: [contacts, conversations, users] }
    }

    /// A host with every feature of issue 16 on, HighLevel at the router and Dialpad at its
    /// Prism, each credential bound to its origin; `extra` adds or replaces settings.
    fn runtime(&self, durable: bool, extra: Value) -> Runtime {
        let mut config = json!({
            "api_base": self.router.base_url.clone(),
            "dialpad_api_base": self.dialpad.base_url.clone(),
            "location_id": LOCATION,
            "conversations": {"provider_id": "prov-e2e", "recording_privacy": "company"},
            "screen_pop": {"unknown_caller_url": "https://app.gohighlevel.com/v2/location/{{location_id}}/contacts/new?phone={{phone}}"},
            "owners": {"lookup": true, "fallback_user_id": "user-fallback"},
            "two_way_contacts": {},
            "follow_up_rules": [{"name": "missed", "when": {"outcomes": ["missed"]}, "task": {"title": "Call {{contact_name}} back", "due": {"after_minutes": 60}}}]
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let mut settings = Settings::default();
        for (k, v) in config.as_object().unwrap() {
            settings.set(k, v.clone());
        }
        settings.token = Some(Secret::new(TOKEN));
        settings.dialpad_key = Some(Secret::new("dialpad-e2e-key"));
        Runtime::new(plugin(), settings.runtime_options(durable).unwrap(), KeyValueStore::new()).unwrap()
    }
}

/// The spec operation a logged request is for, in any of the four APIs (`?` if none).
fn operation_id(e: &HttpExchange) -> &'static str {
    let path = e.url.split_once("://").map_or(e.url.as_str(), |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let path = path.split('?').next().unwrap_or(path);
    let Some(method) = Method::parse(&e.method) else { return "?" };
    contacts_api::TABLES.iter().find_map(|table| contacts_api::match_path_in(table, method, path)).map_or("?", |m| m.operation.id)
}

fn request_line(e: &HttpExchange) -> String {
    let status = e.status.map_or_else(|| e.outcome.clone(), |s| s.to_string());
    format!("{} {} {} → {status}", operation_id(e), e.method, e.url)
}

/// What a run of the plugin ended with, in one line.
fn outcome(result: &Result<Report, SyncError>) -> String {
    match result {
        Ok(report) => match report::outcome_name(&report.outcome) {
            (name, Some(reason)) => format!("{name}: {reason}"),
            (name, None) => name.to_string(),
        },
        Err(error) => format!("error: {}", report::error_message(error)),
    }
}

/// One HighLevel contact webhook, as the host's gate hands it on once it checked the signature.
fn highlevel_webhook(kind: &str, id: &str, email: &str) -> Vec<u8> {
    json!({
        "type": kind, "locationId": LOCATION, "id": id, "firstName": "Dana", "lastName": "Whitfield", "name": "Dana Whitfield",
        "email": email, "phone": "+12065550174", "companyName": "Whitfield Logistics", "source": "public api", "tags": [],
        "dateAdded": "2026-03-10T15:00:00.000Z", "dnd": false, "country": "US"
    })
    .to_string()
    .into_bytes()
}

#[test]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
fn every_request_of_the_features_where_people_look_conforms_to_its_official_spec() {
    let started = Instant::now();
    let judges = Judges::start();
    eprintln!("prism: four Prisms up after {} ms", started.elapsed().as_millis());
    let mut log: Vec<HttpExchange> = Vec::new();
    let mut rows: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut keep = |name: &str, result: String, rt: &Runtime, log: &mut Vec<HttpExchange>| {
        let exchanges = rt.http_log().take();
        rows.push((name.to_string(), result, exchanges.iter().map(request_line).collect()));
        log.extend(exchanges);
    };
    let call = |rt: &Runtime, body: &[u8]| outcome(&rt.handle_webhook(body).expect("the plugin must not trap"));

    // Durable state: a finished call in a conversation not found (steered) → create-conversation
    // and an inbound call entry.
    let durable = judges.runtime(true, json!({}));
    judges.router.steer("GET", "/conversations/search", r#"{"conversations":[],"total":0}"#);
    let result = call(&durable, &fixture("call_inbound_hangup_completed.json"));
    keep("hangup (durable, no conversation yet)", result, &durable, &mut log);
    // A recorded outbound call: outbound entry, share link, attachments.
    let result = call(&durable, &fixture("call_outbound_hangup_recorded.json"));
    keep("outbound hangup, recorded", result, &durable, &mut log);
    // A voicemail whose recording arrives after its entry was added: share link + attachments.
    let voicemail = fixture_with("call_voicemail_uploaded.json", |e| {
        e["state"] = json!("voicemail");
        for key in ["voicemail_recording_id", "voicemail_link"] {
            e[key] = Value::Null;
        }
        e["recording_details"] = json!([]);
    });
    let result = call(&durable, &voicemail);
    keep("voicemail, no recording yet", result, &durable, &mut log);
    let result = call(&durable, &fixture("call_voicemail_uploaded.json"));
    keep("voicemail uploaded", result, &durable, &mut log);
    // A missed call: the agent's HighLevel user looked up, the follow-up task assigned.
    let result = call(&durable, &fixture("call_inbound_missed.json"));
    keep("missed, owners lookup + follow-up", result, &durable, &mut log);
    // An unknown caller rings (on a fresh store: the durable one saw that call end): duplicate
    // search, then the screen pop.
    let fresh = judges.runtime(true, json!({}));
    let now_ms = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let ringing = fixture_with("call_inbound_ringing_unknown_number.json", |e| e["event_timestamp"] = json!(now_ms));
    let result = call(&fresh, &ringing);
    keep("ringing, screen pop", result, &fresh, &mut log);

    // Without durable state the entry is looked for among the conversation's messages first.
    let stateless = judges.runtime(false, json!({}));
    let result = call(&stateless, &fixture("call_inbound_hangup_completed.json"));
    keep("hangup (no durable state)", result, &stateless, &mut log);

    // HighLevel's contact webhooks, two-way: created (uid upsert), updated (PATCH by the id
    // Dialpad answered), deleted.
    for (name, body) in [
        ("HighLevel ContactCreate", highlevel_webhook("ContactCreate", "hl-dana", "dana@whitfield.example")),
        ("HighLevel ContactUpdate", highlevel_webhook("ContactUpdate", "hl-dana", "dana@new.example")),
        ("HighLevel ContactDelete", highlevel_webhook("ContactDelete", "hl-dana", "dana@new.example")),
    ] {
        let handled = durable.handle(&Inbound::new(Source::HighLevelWebhook, body)).expect("the plugin must not trap");
        keep(name, outcome(&handled.result), &durable, &mut log);
    }
    // Local contacts of one Dialpad user: a plain create with the owner.
    let local = judges.runtime(true, json!({"two_way_contacts": {"local_owner_id": "5766401227931648"}}));
    let handled = local.handle(&Inbound::new(Source::HighLevelWebhook, highlevel_webhook("ContactCreate", "hl-lee", "lee@example.com"))).expect("no trap");
    keep("HighLevel ContactCreate (local contact)", outcome(&handled.result), &local, &mut log);

    // Click-to-call: by e-mail with the contact's own phone (get-contact, users.list, call),
    // and by user id with a number (the call alone).
    for (name, input) in [
        ("click-to-call by e-mail", json!({"contactId": "ocQHyuzHvysMo5N5VsXc", "email": "maya.patel@example.com"})),
        ("click-to-call by user id", json!({"contactId": "ocQHyuzHvysMo5N5VsXc", "userId": "5766401227931648", "phone": "+13125550187"})),
    ] {
        let result = durable.invoke("click-to-call", &input.to_string()).expect("the plugin must not trap");
        keep(name, result.map(|_| "ok".to_string()).unwrap_or_else(|e| format!("error: {}", report::error_message(&e))), &durable, &mut log);
    }

    for (name, result, requests) in &rows {
        eprintln!("{name:<42} {result:<70} {}", requests.join(" | "));
    }
    let exchanges: Vec<Exchange> = log.iter().map(Exchange::from_host_log).collect();
    let found = request_violations(&exchanges);
    let defects = response_defects(&exchanges);
    let mut per_operation: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &log {
        *per_operation.entry(operation_id(e)).or_default() += 1;
    }
    eprintln!("\nprism: per operation: {per_operation:?}");
    eprintln!("prism: requests judged: {}, request violations: {}, spec defects: {}", log.len(), found.len(), defects.len());
    for d in &defects {
        eprintln!("prism: spec defect (its example breaks its own response schema): {d}");
    }
    for v in &found {
        eprintln!("prism: violation: {v}");
    }
    eprintln!("prism: took {} ms in all", started.elapsed().as_millis());

    let unanswered: Vec<String> = log.iter().filter(|e| e.status.is_none()).map(request_line).collect();
    assert!(unanswered.is_empty(), "requests that got no answer from Prism: {unanswered:#?}");
    assert!(found.is_empty(), "Prism found {} request(s) that break their official spec:\n{}", found.len(), found.join("\n"));
    let missing: Vec<&&str> = NEW_OPERATIONS.iter().filter(|op| !per_operation.contains_key(**op)).collect();
    assert!(missing.is_empty(), "never sent, so never judged: {missing:?}; sent: {per_operation:?}");
    assert!(!per_operation.contains_key("?"), "a request no spec operation matches: {per_operation:?}");
    // The owner lookup reached the task: assigned (the example users do not match the agent,
    // so to the fallback user).
    let task = log.iter().find(|e| operation_id(e) == "create-task").and_then(|e| e.request_body.clone()).unwrap_or_default();
    assert!(task.contains(r#""assignedTo":"user-fallback""#), "{task}");
}
