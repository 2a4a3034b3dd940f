//! The trigger catalog (`meta.trigger-catalog`) and `triggers.normalize`, through the real
//! component: every schema compiles as JSON Schema 2020-12; every body the project holds (the
//! Dialpad fixtures, the demo's events, HighLevel webhooks as its pages show them, and a few
//! fixtures edited for the triggers no file exercises) is the payload of the trigger `normalize`
//! names, and its normalized event fits that trigger's event schema; a body that does not fit
//! gets the error `plan` gives it; and normalizing writes and sends nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dialpad_ghl_host::bindings::dialpad_ghl::sync::types::{NormalizedEvent, SyncError, TriggerInfo};
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::settings::Settings;
use e2e_tests::{fixture, fixture_with, plugin, FIXTURES, FIXTURE_SECRET};
use host_test::contact_webhook::{contact_body, other_body};
use host_test::demo;
use jsonschema::Validator;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const DEMO_EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../host-test/demo-events/");
/// The demo configuration's location: HighLevel webhooks must be for it.
const DEMO_LOCATION: &str = "demo-location";
const WEBHOOK_AT: &str = "2026-03-10T15:00:00.000Z";

/// A runtime on the demo's configuration, with a Dialpad webhook secret (only signed Dialpad
/// bodies are then read) or without.
fn runtime(webhook_secret: Option<&str>) -> Runtime {
    let mut settings = Settings { plugin_config: serde_json::from_str(demo::CONFIG).unwrap(), ..Settings::default() };
    if let Some(secret) = webhook_secret {
        settings.set("webhook_secret", secret);
    }
    Runtime::new(plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::new()).unwrap()
}

/// One body as its sender posts it, and the JSON its payload schema describes (a JWT's claims).
struct Body {
    name: String,
    event: Inbound,
    payload: Value,
    /// A Dialpad webhook signed with [`FIXTURE_SECRET`].
    signed: bool,
}

impl Body {
    fn json(name: impl Into<String>, source: Source, bytes: Vec<u8>) -> Body {
        let payload = serde_json::from_slice(&bytes).unwrap();
        Body { name: name.into(), event: Inbound::new(source, bytes), payload, signed: false }
    }

    fn token(name: impl Into<String>, source: Source, token: Vec<u8>) -> Body {
        let text = String::from_utf8(token.clone()).unwrap();
        let claims = text.split('.').nth(1).expect("a compact JWT has three parts");
        let payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        Body { name: name.into(), event: Inbound::new(source, token), payload, signed: source == Source::DialpadWebhook }
    }
}

/// The files of a folder a test reads every event of, by name.
fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names.into_iter().map(|name| (name.clone(), std::fs::read(format!("{dir}{name}")).unwrap())).collect()
}

/// Every body: the fixtures, the demo's events, HighLevel's contact webhooks and one of
/// another type, and fixtures edited for the triggers no file exercises.
fn bodies() -> Vec<Body> {
    let mut bodies = Vec::new();
    for (name, bytes) in files(FIXTURES) {
        match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("json") => bodies.push(Body::json(format!("fixture {name}"), Source::DialpadWebhook, bytes)),
            Some("jwt") => bodies.push(Body::token(format!("fixture {name}"), Source::DialpadWebhook, bytes)),
            _ => {}
        }
    }
    for (name, bytes) in files(DEMO_EVENTS) {
        let label = format!("demo {name}");
        match name.rsplit_once('.').map(|(_, ext)| ext) {
            _ if name == "demo-config.json" => {}
            Some("json") if name.starts_with("platform_") => {
                bodies.push(Body::token(label, Source::Platform, demo::signed_platform_event(std::str::from_utf8(&bytes).unwrap())))
            }
            Some("json") => bodies.push(Body::json(label, Source::DialpadWebhook, bytes)),
            Some("jwt") => bodies.push(Body::token(label, Source::DialpadWebhook, bytes)),
            _ => {}
        }
    }
    for kind in ["ContactCreate", "ContactUpdate", "ContactDelete"] {
        let body = contact_body(kind, DEMO_LOCATION, "hl-dana", &format!("wh-{kind}"), WEBHOOK_AT);
        bodies.push(Body::json(format!("HighLevel {kind}"), Source::HighLevelWebhook, body));
    }
    bodies.push(Body::json("HighLevel NoteCreate", Source::HighLevelWebhook, other_body("NoteCreate", DEMO_LOCATION, "wh-note", WEBHOOK_AT)));
    let state = |state: &'static str| move |v: &mut Value| v["state"] = json!(state);
    let edited = [
        ("call_inbound_missed.json", "state voicemail", fixture_with("call_inbound_missed.json", state("voicemail"))),
        ("call_outbound_hangup_recorded.json", "state recording", fixture_with("call_outbound_hangup_recorded.json", state("recording"))),
        ("call_inbound_hangup_completed.json", "state csat", fixture_with("call_inbound_hangup_completed.json", state("csat"))),
        (
            "sms_inbound.json",
            "sent by Maya",
            fixture_with("sms_inbound.json", |v| {
                v["direction"] = json!("outbound");
                v["from_number"] = json!("+14155550142");
                v["to_number"] = json!(["+13125550187"]);
            }),
        ),
    ];
    for (name, change, bytes) in edited {
        bodies.push(Body::json(format!("fixture {name}, {change}"), Source::DialpadWebhook, bytes));
    }
    bodies
}

/// A schema compiled as JSON Schema 2020-12, formats asserted.
fn compile(id: &str, what: &str, schema: &str) -> Validator {
    let schema: Value = serde_json::from_str(schema).unwrap_or_else(|e| panic!("{id}: the {what} schema is not JSON: {e}"));
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{id}");
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("{id}: the {what} schema is not a 2020-12 schema: {e}\n{schema:#}");
    }
    jsonschema::draft202012::options().should_validate_formats(true).build(&schema).unwrap_or_else(|e| panic!("{id}: the {what} schema: {e}"))
}

fn problems(validator: &Validator, value: &Value) -> Vec<String> {
    validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

struct Compiled {
    info: TriggerInfo,
    payload: Validator,
    event: Validator,
}

#[test]
fn every_body_is_the_payload_of_its_trigger_and_normalizes_to_its_event_schema() {
    let plain = runtime(None);
    let signed = runtime(Some(FIXTURE_SECRET));
    let catalog: BTreeMap<String, Compiled> = plain
        .trigger_catalog()
        .unwrap()
        .into_iter()
        .map(|info| {
            let payload = compile(&info.id, "payload", &info.payload_schema);
            let event = compile(&info.id, "event", &info.event_schema);
            (info.id.clone(), Compiled { info, payload, event })
        })
        .collect();
    assert_eq!(catalog.len(), plain.trigger_catalog().unwrap().len(), "trigger ids are unique");
    for (id, t) in &catalog {
        let inbound = match t.info.source.as_str() {
            "dialpad" => "dialpad-webhook",
            "highlevel" => "highlevel-webhook",
            "platform" => "platform-event",
            other => panic!("{id}: unknown source {other}"),
        };
        assert_eq!(t.info.inbound, inbound, "{id}");
        assert!(id.starts_with(&format!("{}.", t.info.source)), "{id}");
        assert!(!t.info.summary.is_empty() && !t.info.summary.contains('\n'), "{id}: one line");
    }

    let mut exercised: BTreeMap<&str, Vec<String>> = catalog.keys().map(|id| (id.as_str(), Vec::new())).collect();
    for body in bodies() {
        let runtime = if body.signed { &signed } else { &plain };
        let NormalizedEvent { trigger, event } = match runtime.normalize(&body.event).unwrap() {
            Ok(normalized) => normalized,
            Err(e) => panic!("{}: {e:?}", body.name),
        };
        let t = catalog.get(&trigger).unwrap_or_else(|| panic!("{}: normalize names {trigger}, which the catalog does not list", body.name));
        assert_eq!(problems(&t.payload, &body.payload), Vec::<String>::new(), "{}: the payload of {trigger}", body.name);
        let event: Value = serde_json::from_str(&event).unwrap();
        assert_eq!(problems(&t.event, &event), Vec::<String>::new(), "{}: the normalized event of {trigger}: {event:#}", body.name);
        exercised.get_mut(trigger.as_str()).unwrap().push(body.name);
    }

    eprintln!("{:<34} bodies", "trigger");
    for (id, names) in &exercised {
        eprintln!("{id:<34} {:>3}  {}", names.len(), names.join("; "));
    }
    let unexercised: Vec<&&str> = exercised.iter().filter(|(_, names)| names.is_empty()).map(|(id, _)| id).collect();
    assert!(unexercised.is_empty(), "triggers no body exercises: {unexercised:?}");
    // Reading is all it does: no key-value record, no request.
    for runtime in [&plain, &signed] {
        assert_eq!(runtime.keyvalue().keys(), Vec::<String>::new());
        assert_eq!(runtime.http_log().entries().len(), 0);
    }
}

#[test]
fn a_payload_schema_turns_away_what_the_trigger_is_not() {
    let plain = runtime(None);
    let catalog = plain.trigger_catalog().unwrap();
    let schema = |id: &str, event: bool| {
        let t = catalog.iter().find(|t| t.id == id).unwrap();
        if event {
            compile(id, "event", &t.event_schema)
        } else {
            compile(id, "payload", &t.payload_schema)
        }
    };
    let hangup: Value = serde_json::from_slice(&fixture("call_inbound_hangup_completed.json")).unwrap();
    assert!(schema("dialpad.call.hangup", false).is_valid(&hangup));
    assert!(!schema("dialpad.call.missed", false).is_valid(&hangup), "another state");
    let mut wrong = hangup.clone();
    wrong["talk_time"] = json!(true);
    assert!(!schema("dialpad.call.hangup", false).is_valid(&wrong), "a member the plugin reads, of a type it refuses");
    // Events are closed: a member the plugin does not write is not an event of its.
    let normalized = plain.normalize(&Inbound::new(Source::DialpadWebhook, hangup.to_string().into_bytes())).unwrap().unwrap();
    let mut event: Value = serde_json::from_str(&normalized.event).unwrap();
    assert!(schema("dialpad.call.hangup", true).is_valid(&event));
    event["facts"]["mood"] = json!("happy");
    assert!(!schema("dialpad.call.hangup", true).is_valid(&event));
}

#[test]
fn bodies_that_do_not_fit_get_the_error_plan_gives() {
    let plain = runtime(None);
    let signed = runtime(Some(FIXTURE_SECRET));
    let platform = |claims: &str| Inbound::new(Source::Platform, host_test::jwt::sign(claims.as_bytes(), demo::PLATFORM_SECRET).into_bytes());
    let cases: Vec<(&Runtime, Inbound, &str)> = vec![
        (&plain, Inbound::new(Source::DialpadWebhook, b"{\"call_id\": 1, \"state\":".to_vec()), "malformed-event"),
        (&plain, Inbound::new(Source::DialpadWebhook, b"[1, 2]".to_vec()), "malformed-event"),
        (&plain, Inbound::new(Source::DialpadWebhook, br#"{"hello": "world"}"#.to_vec()), "malformed-event"),
        (&plain, Inbound::new(Source::DialpadWebhook, br#"{"call_id": [1], "state": "hangup"}"#.to_vec()), "malformed-event"),
        (&plain, Inbound::new(Source::DialpadWebhook, br#"{"event": "Renamed", "contact": {"id": "1"}}"#.to_vec()), "malformed-event"),
        (&plain, Inbound::new(Source::DialpadWebhook, b"\xff\xfe".to_vec()), "malformed-event"),
        (&signed, Inbound::new(Source::DialpadWebhook, fixture("call_inbound_hangup_completed.json")), "invalid-signature"),
        (&plain, Inbound::new(Source::Platform, br#"{"id": "e", "type": "note.updated"}"#.to_vec()), "invalid-signature"),
        (&plain, platform(r#"{"id": "e", "type": "task.created", "task": {"ref": "t"}}"#), "invalid-input"),
        (&plain, Inbound::new(Source::HighLevelWebhook, contact_body("ContactUpdate", "another-location", "c", "wh", WEBHOOK_AT)), "invalid-input"),
        (&plain, Inbound::new(Source::HighLevelWebhook, br#"{"type": "ContactUpdate", "locationId": "demo-location"}"#.to_vec()), "malformed-event"),
    ];
    for (runtime, event, expected) in cases {
        let normalized = runtime.normalize(&event).unwrap().expect_err("a body that does not fit is refused");
        let planned = runtime.plan(&event).unwrap().expect_err("plan refuses it too");
        assert_eq!(normalized, planned, "{:?}", String::from_utf8_lossy(&event.body));
        let case = match &normalized {
            SyncError::MalformedEvent(_) => "malformed-event",
            SyncError::InvalidSignature(_) => "invalid-signature",
            SyncError::InvalidInput(_) => "invalid-input",
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(case, expected, "{:?}: {normalized:?}", String::from_utf8_lossy(&event.body));
    }
}
