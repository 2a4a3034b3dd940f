//! The shipped plugin is binaryen's `-Oz` of the component the Rust toolchain built
//! (`plugin-build`'s `optimize`): both must do exactly the same. Every bundled demo event is
//! replayed in order through each, against its own fresh mocks of HighLevel and Dialpad, and
//! the reports (plan and result, in full), what HighLevel then holds and every request each
//! API received (method, path, operation, status, body) must be identical.

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::{CompiledPlugin, Runtime};
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::settings::Settings;
use host_test::demo;
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
use host_test::ghl_mock::{MockOptions, MockServer};
use serde_json::Value;
use std::path::Path;

/// One event as delivered: made once, so that both components get the very same bytes (the
/// ringing event carries the time it is delivered at, a platform event the time it was signed).
struct Event {
    name: String,
    source: Source,
    body: Vec<u8>,
    /// Delivered to a runtime with the demo's webhook secret set (a signed Dialpad event).
    signed: bool,
}

fn events() -> Vec<Event> {
    let event = |name: &str, source, body: Vec<u8>| Event { name: name.into(), source, body, signed: false };
    let mut events: Vec<Event> = demo::EVENTS.iter().map(|(name, body)| event(name, Source::DialpadWebhook, demo::as_delivered_now(body))).collect();
    events.extend(demo::PLATFORM_EVENTS.iter().map(|(name, e)| event(name, Source::Platform, demo::signed_platform_event(e))));
    events.push(event("platform_note_priya.json", Source::Platform, demo::signed_platform_event(demo::PRIYA_NOTE)));
    events.push(event("contact_deleted.json", Source::DialpadWebhook, demo::CONTACT_DELETED.to_vec()));
    events.push(Event { signed: true, ..event("call_inbound_hangup_completed.jwt", Source::DialpadWebhook, demo::SIGNED_EVENT.to_vec()) });
    events
}

/// What one component did with the events.
#[derive(Debug, PartialEq)]
struct Run {
    /// Per event: its name and the `Handled` (plan and result), in full.
    handled: Vec<(String, String)>,
    /// What HighLevel holds afterwards, without the mock's clock readings.
    contacts: Vec<Value>,
    notes: Vec<Value>,
    tasks: Vec<Value>,
    appointments: Vec<Value>,
    /// Every request HighLevel's mock received (method, path and query, operation id, status,
    /// credential present, fault, body), in order.
    requests: Vec<Value>,
    /// Every request as the host sent it (method, path and query, body): the mock keeps no
    /// bodies but OAuth's.
    sent: Vec<(String, String, Option<String>, Option<u16>)>,
    /// Every request Dialpad's mock received, with its body.
    dialpad: Vec<String>,
}

fn replay(component: &str, events: &[Event]) -> Run {
    let plugin = CompiledPlugin::from_file(Path::new(component)).unwrap_or_else(|e| panic!("compiling {component}: {e:#}"));
    let mock = MockServer::start(MockOptions { token: Some(demo::TOKEN.into()), ..MockOptions::default() }).unwrap();
    // As the demo seeds it: one existing contact, the Dialpad agents as HighLevel users.
    mock.seed_contact(serde_json::json!({
        "locationId": "demo-location", "firstName": "Kenji", "lastName": "Watanabe",
        "email": "kenji.watanabe@example.net", "phone": "+15035550139", "source": "HighLevel", "tags": ["cold-lead"]
    }));
    for (id, first, last, email) in demo::HIGHLEVEL_USERS {
        mock.add_user(id, first, last, email);
    }
    let dialpad_options = DialpadMockOptions::default();
    let dialpad_key = dialpad_options.api_key.clone();
    let dialpad = DialpadMock::start(dialpad_options).unwrap();

    let Value::Object(config) = serde_json::from_str(demo::CONFIG).unwrap() else { panic!("the demo's config is an object") };
    let mut settings = Settings { plugin_config: config, ..Settings::default() };
    settings.set("api_base", mock.base_url());
    settings.token = Some(Secret::new(demo::TOKEN));
    settings.set("dialpad_api_base", dialpad.base_url());
    settings.dialpad_key = Some(Secret::new(dialpad_key));
    let kv = KeyValueStore::new();
    let runtime = Runtime::new(&plugin, settings.runtime_options(true).unwrap(), kv.clone()).unwrap();
    let mut signed_settings = settings.clone();
    signed_settings.set("webhook_secret", demo::WEBHOOK_SECRET);
    let signed = Runtime::new(&plugin, signed_settings.runtime_options(true).unwrap(), kv).unwrap();

    let handled = events
        .iter()
        .map(|e| {
            let rt = if e.signed { &signed } else { &runtime };
            let handled = rt.handle(&Inbound::new(e.source, e.body.clone())).unwrap_or_else(|trap| panic!("{component} trapped on {}: {trap:#}", e.name));
            (e.name.clone(), format!("{handled:?}"))
        })
        .collect();

    let (base, dialpad_base) = (mock.base_url(), dialpad.base_url());
    let sent = [&runtime, &signed]
        .iter()
        .flat_map(|rt| rt.http_log().entries())
        .map(|x| {
            let url = x.url.replace(&base, "<highlevel>").replace(&dialpad_base, "<dialpad>");
            (x.method, url, x.request_body, x.status)
        })
        .collect();
    Run {
        handled,
        contacts: without_clock(mock.contacts()),
        notes: without_clock(mock.notes()),
        tasks: without_clock(mock.tasks()),
        appointments: without_clock(mock.appointments()),
        requests: mock.requests().iter().map(|r| serde_json::to_value(r).unwrap()).collect(),
        sent,
        dialpad: dialpad.requests().iter().map(|r| format!("{} {} → {} {:?}", r.method, r.path_and_query, r.status, r.body)).collect(),
    }
}

/// `values` without the times the mock stamps its records with when it writes them.
fn without_clock(mut values: Vec<Value>) -> Vec<Value> {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("dateAdded");
                map.remove("dateUpdated");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    values.iter_mut().for_each(strip);
    values
}

#[test]
fn the_optimized_plugin_does_exactly_what_the_unoptimized_one_does() {
    let (optimized, unoptimized) = (artifacts::PLUGIN_WASM, artifacts::PLUGIN_UNOPTIMIZED_WASM);
    let (small, big) = (std::fs::metadata(optimized).unwrap().len(), std::fs::metadata(unoptimized).unwrap().len());
    assert!(small < big, "the optimized plugin ({small} bytes) is smaller than the unoptimized one ({big} bytes)");

    let events = events();
    let (before, after) = (replay(unoptimized, &events), replay(optimized, &events));
    // The runs did something worth comparing.
    assert_eq!(before.handled.len(), events.len());
    assert!(before.contacts.len() > 1 && !before.notes.is_empty() && !before.tasks.is_empty(), "{before:#?}");
    assert!(before.requests.len() > events.len(), "{} requests", before.requests.len());
    assert!(before.sent.iter().any(|(_, _, body, _)| body.is_some()));

    for ((name, b), (_, a)) in before.handled.iter().zip(&after.handled) {
        assert_eq!(b, a, "{name}: the two components handled it differently");
    }
    assert_eq!(before.contacts, after.contacts);
    assert_eq!(before.notes, after.notes);
    assert_eq!(before.tasks, after.tasks);
    assert_eq!(before.appointments, after.appointments);
    assert_eq!(before.requests, after.requests);
    assert_eq!(before.sent, after.sent);
    assert_eq!(before.dialpad, after.dialpad);
    assert_eq!(before, after);
}
