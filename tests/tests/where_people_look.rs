//! Issue 16 end to end, through the real component over the HighLevel and Dialpad mocks: calls
//! as Conversations call entries (a recording attached later, redeliveries writing nothing),
//! screen pops on ringing (Dialpad's 5 a minute), two-way contact sync with no echo either way,
//! follow-up tasks for the agent's HighLevel user, and click-to-call matched by its
//! `custom_data`.
//!
//! The mocks send their webhooks (HighLevel's signed contact webhooks, Dialpad's contact
//! events) as the real services would; the test hands each one to the component in turn, so a
//! write that came back as an event would show up as a request.

use dialpad_ghl_host::bindings::dialpad_ghl::sync::types as wit;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::{CompiledPlugin, Runtime};
use dialpad_ghl_host::inbound::{Inbound, Source};
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
use host_test::ghl_mock::{MockOptions, MockServer};
use host_test::support::Catcher;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");
const TOKEN: &str = "where-people-look-token";
const DIALPAD_KEY: &str = "where-people-look-dialpad-key";
const LOCATION: &str = "loc-look";
const MAYA: &str = "5766401227931648";

fn plugin() -> &'static CompiledPlugin {
    static PLUGIN: OnceLock<CompiledPlugin> = OnceLock::new();
    PLUGIN.get_or_init(|| CompiledPlugin::from_file(Path::new(artifacts::PLUGIN_WASM)).unwrap())
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}{name}")).unwrap()).unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Both mocks, a runtime configured with every feature of the issue, and receivers for the
/// mocks' webhooks.
struct World {
    highlevel: MockServer,
    dialpad: DialpadMock,
    runtime: Runtime,
    _catchers: (Catcher, Catcher),
    /// Webhooks already handed to the component, per mock.
    handed: (usize, usize),
}

impl World {
    fn new(durable: bool) -> World {
        let highlevel = MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }).unwrap();
        highlevel.add_user("hl-user-maya", "Maya", "Patel", "maya.patel@example.com");
        let dialpad = DialpadMock::start(DialpadMockOptions { api_key: DIALPAD_KEY.into(), page_size: 50 }).unwrap();
        let catchers = (Catcher::start().unwrap(), Catcher::start().unwrap());
        highlevel.set_contact_webhook(Some(catchers.0.url()));
        let hook = dialpad.add_webhook(&catchers.1.url(), None);
        dialpad.add_subscription("contact", json!({"endpoint_id": hook.parse::<i64>().unwrap_or_default(), "contact_type": "shared"}));
        let mut settings = e2e_tests::quick_settings(&highlevel.base_url(), LOCATION, TOKEN);
        settings.set("dialpad_api_base", dialpad.base_url());
        settings.dialpad_key = Some(Secret::new(DIALPAD_KEY));
        settings.set("conversations", json!({"provider_id": "mock-call-provider", "recording_privacy": "company"}));
        settings.set("screen_pop", json!({}));
        settings.set("owners", json!({"lookup": true}));
        settings.set("two_way_contacts", json!({"conflicts": {"default": "newest"}}));
        settings.set("recap_action_items", json!({"create_tasks": false}));
        settings.set(
            "follow_up_rules",
            json!([{"name": "call-back", "when": {"outcomes": ["missed"]}, "task": {"title": "Call back {{contact_name}}", "due": {"after_minutes": 60}}}]),
        );
        let runtime = Runtime::new(plugin(), settings.runtime_options(durable).unwrap(), KeyValueStore::new()).unwrap();
        World { highlevel, dialpad, runtime, _catchers: catchers, handed: (0, 0) }
    }

    fn dialpad_event(&self, body: &Value) -> wit::Report {
        self.handle(Inbound::new(Source::DialpadWebhook, body.to_string().into_bytes()))
    }

    fn handle(&self, event: Inbound) -> wit::Report {
        let handled = self.runtime.handle(&event).unwrap();
        handled.result.unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// Writes to each mock so far: (HighLevel, Dialpad), GETs left out.
    fn writes(&self) -> (usize, usize) {
        let highlevel = self.highlevel.requests().iter().filter(|r| r.method != "GET").count();
        let dialpad = self.dialpad.requests().iter().filter(|r| r.method != "GET").count();
        (highlevel, dialpad)
    }

    /// Hands every webhook the mocks sent since the last call to the component, as the host
    /// would (HighLevel's through its verified route, Dialpad's as contact events); returns the
    /// reports.
    fn deliver_webhooks(&mut self) -> Vec<wit::Report> {
        assert!(self.highlevel.wait_webhooks_delivered(Duration::from_secs(10)));
        assert!(self.dialpad.wait_webhooks_delivered(Duration::from_secs(10)));
        let from_highlevel: Vec<String> = self.highlevel.contact_webhook_deliveries().into_iter().skip(self.handed.0).map(|d| d.body).collect();
        let from_dialpad: Vec<String> = self.dialpad.contact_event_deliveries().into_iter().skip(self.handed.1).map(|d| d.body).collect();
        self.handed.0 += from_highlevel.len();
        self.handed.1 += from_dialpad.len();
        let mut reports = Vec::new();
        for body in from_highlevel {
            reports.push(self.handle(Inbound::new(Source::HighLevelWebhook, body.into_bytes())));
        }
        for body in from_dialpad {
            reports.push(self.dialpad_event(&serde_json::from_str(&body).unwrap()));
        }
        reports
    }

    fn create_contact(&self, first: &str, phone: &str) -> String {
        let input = json!({"body": {"firstName": first, "lastName": "Caller", "phone": phone}});
        let created: Value = serde_json::from_str(&self.runtime.invoke("create-contact", &input.to_string()).unwrap().unwrap()).unwrap();
        created["contact"]["id"].as_str().unwrap().to_string()
    }
}

fn outcome(r: &wit::Report) -> String {
    match &r.outcome {
        wit::Outcome::Synced => "synced".into(),
        wit::Outcome::Unchanged => "unchanged".into(),
        wit::Outcome::Skipped(reason) => format!("skipped: {reason}"),
    }
}

#[test]
fn a_call_gives_one_call_entry_and_one_note_a_recording_attached_later_and_a_redelivery_writes_nothing() {
    for durable in [true, false] {
        let world = World::new(durable);
        let hangup = fixture("call_inbound_hangup_completed.json");
        let report = world.dialpad_event(&hangup);
        let entries = world.highlevel.call_entries();
        assert_eq!(entries.len(), 1, "durable {durable}: {entries:?}");
        let entry = &entries[0];
        assert_eq!(entry["altId"], "6011482093420544");
        assert_eq!(report.call_entry_id.as_deref(), entry["id"].as_str());
        let note_bodies: Vec<String> = world.highlevel.notes().iter().map(|n| n["body"].as_str().unwrap_or_default().to_string()).collect();
        assert_eq!(note_bodies.len(), 1);
        assert!(note_bodies[0].contains(&format!("HighLevel call entry: {}", entry["id"].as_str().unwrap())), "{}", note_bodies[0]);

        // The call's recording arrives later: one share link, attached to the same entry.
        let mut recording = hangup.clone();
        recording["state"] = json!("recording");
        recording["event_timestamp"] = json!(hangup["event_timestamp"].as_u64().unwrap() + 60_000);
        recording["recording_details"] = json!([{"id": "rec-6011482093420544-1", "recording_type": "callrecording", "url": "https://dialpad.com/r/1"}]);
        recording["call_recording_ids"] = json!(["rec-6011482093420544-1"]);
        world.dialpad_event(&recording);
        let entries = world.highlevel.call_entries();
        assert_eq!(entries.len(), 1);
        let links: Vec<String> = world.dialpad.share_links().iter().filter_map(|l| l["access_link"].as_str().map(str::to_string)).collect();
        assert_eq!(links.len(), 1);
        assert_eq!(entries[0]["attachments"], json!(links));

        // Redelivered, both: nothing written anywhere.
        let before = world.writes();
        let again = world.dialpad_event(&hangup);
        world.dialpad_event(&recording);
        assert_eq!(world.writes(), before, "durable {durable}: a redelivery wrote");
        assert_eq!(again.call_entry_id.as_deref(), entries[0]["id"].as_str());
        assert_eq!(world.highlevel.call_entries().len(), 1);
    }
}

#[test]
fn ringing_gives_one_screen_pop_to_the_agent_with_the_contacts_page_and_the_sixth_in_a_minute_is_skipped() {
    let world = World::new(true);
    let contact = world.create_contact("Priya", "+13125550187");
    let ringing = |call_id: u64| {
        let mut r = fixture("call_inbound_ringing_unknown_number.json");
        r["call_id"] = json!(call_id);
        r["event_timestamp"] = json!(now_ms() - 1_000);
        r
    };
    let first = world.dialpad_event(&ringing(6011482093420544));
    assert_eq!(outcome(&first), "synced");
    let pops = world.dialpad.screen_pops();
    assert_eq!(pops.len(), 1);
    assert_eq!(pops[0].user_id, MAYA);
    assert_eq!(pops[0].uri, format!("https://app.gohighlevel.com/v2/location/{LOCATION}/contacts/detail/{contact}"));
    // The same ringing again: no second pop.
    assert_eq!(outcome(&world.dialpad_event(&ringing(6011482093420544))), "unchanged");
    for n in 2..=6u64 {
        let report = world.dialpad_event(&ringing(7_000_000 + n));
        if n < 6 {
            assert_eq!(outcome(&report), "synced", "pop {n}");
        } else {
            assert!(outcome(&report).contains("Dialpad's limit"), "{}", outcome(&report));
        }
    }
    assert_eq!(world.dialpad.screen_pops().len(), 5);
    assert!(world.dialpad.requests().iter().all(|r| r.status != 429), "the sixth was never sent");
    // A call that has ended pops nothing, even if its ringing arrives late.
    let hangup = fixture("call_inbound_hangup_completed.json");
    let mut ended = hangup.clone();
    ended["call_id"] = json!(8_000_001);
    world.dialpad_event(&ended);
    assert!(outcome(&world.dialpad_event(&ringing(8_000_001))).contains("ended"));
}

#[test]
fn a_highlevel_contact_edit_gives_one_dialpad_update_and_nothing_back() {
    let mut world = World::new(true);
    let contact = world.create_contact("Dana", "+12065550174");
    // HighLevel's ContactCreate: one shared Dialpad contact with uid = the HighLevel id.
    let reports = world.deliver_webhooks();
    assert_eq!(reports.iter().map(outcome).collect::<Vec<_>>(), ["synced"]);
    let dialpad_contact = world.dialpad.contact_by_uid(&contact).expect("the Dialpad contact");
    // Dialpad's event for that create comes back: nothing is written to HighLevel.
    let before = world.writes();
    let echoes = world.deliver_webhooks();
    assert_eq!(echoes.iter().map(outcome).collect::<Vec<_>>(), ["unchanged"], "{:?}", echoes.iter().map(|r| &r.summary).collect::<Vec<_>>());
    assert_eq!(world.writes(), before);

    // A person edits the e-mail in HighLevel.
    world.highlevel.edit_contact(&contact, json!({"email": "dana@new.example"}));
    let before = world.writes();
    let reports = world.deliver_webhooks();
    assert_eq!(reports.iter().map(outcome).collect::<Vec<_>>(), ["synced"]);
    let after = world.writes();
    assert_eq!((after.0 - before.0, after.1 - before.1), (0, 1), "one Dialpad update, nothing to HighLevel");
    let updated: Vec<Value> = world.dialpad.contacts().into_iter().filter(|c| c["id"] == dialpad_contact["id"]).collect();
    assert_eq!(updated[0]["primary_email"], "dana@new.example");
    // Dialpad's event for it: unchanged, and nothing more anywhere.
    let echoes = world.deliver_webhooks();
    assert_eq!(echoes.iter().map(outcome).collect::<Vec<_>>(), ["unchanged"]);
    assert_eq!(world.writes(), after);
    assert!(world.deliver_webhooks().is_empty());
}

#[test]
fn a_dialpad_contact_edit_gives_one_highlevel_update_and_nothing_back() {
    let mut world = World::new(true);
    let contact = world.create_contact("Dana", "+12065550174");
    world.deliver_webhooks();
    world.deliver_webhooks();
    let dialpad_id = world.dialpad.contact_by_uid(&contact).unwrap()["id"].as_str().unwrap().to_string();

    // A person edits the contact in Dialpad.
    world.dialpad.edit_contact(&dialpad_id, json!({"first_name": "Danielle"}));
    let before = world.writes();
    let reports = world.deliver_webhooks();
    assert_eq!(reports.iter().map(outcome).collect::<Vec<_>>(), ["synced"]);
    let after = world.writes();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 0), "one HighLevel update, nothing to Dialpad");
    let holder = world.highlevel.contacts().into_iter().find(|c| c["id"] == json!(contact)).unwrap();
    assert_eq!(holder["firstName"], "Danielle");
    // HighLevel's ContactUpdate for it: unchanged, and nothing more anywhere.
    let echoes = world.deliver_webhooks();
    assert_eq!(echoes.iter().map(outcome).collect::<Vec<_>>(), ["unchanged"], "{:?}", echoes.iter().map(|r| &r.summary).collect::<Vec<_>>());
    assert_eq!(world.writes(), after);
    assert!(world.deliver_webhooks().is_empty());
}

#[test]
fn follow_up_tasks_and_the_note_are_the_agents_highlevel_user() {
    let world = World::new(true);
    world.create_contact("Dana", "+12065550174");
    world.dialpad_event(&fixture("call_inbound_missed.json"));
    let tasks = world.highlevel.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["assignedTo"], "hl-user-maya");
    assert!(world.highlevel.notes().iter().all(|n| n["userId"] == "hl-user-maya"), "{:?}", world.highlevel.notes());
    let users_read = world.highlevel.requests().iter().filter(|r| r.path_and_query.starts_with("/users/")).count();
    assert_eq!(users_read, 1);
    // The next call of the same agent reads no users: the match is remembered.
    let mut another = fixture("call_inbound_missed.json");
    another["call_id"] = json!(5_402_917_760_802_999u64);
    world.dialpad_event(&another);
    assert_eq!(world.highlevel.requests().iter().filter(|r| r.path_and_query.starts_with("/users/")).count(), 1);
    assert_eq!(world.highlevel.tasks().iter().filter(|t| t["assignedTo"] == "hl-user-maya").count(), 2);
}

#[test]
fn click_to_call_starts_a_dialpad_call_whose_events_are_matched_to_the_contact_without_a_phone_search() {
    let world = World::new(true);
    let contact = world.create_contact("Kenji", "+15035550139");
    let answer = world.runtime.invoke("click-to-call", &json!({"contactId": contact, "userId": MAYA}).to_string()).unwrap().unwrap();
    assert!(answer.contains("call_id"), "{answer}");
    let calls = world.dialpad.initiated_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].user_id.as_str(), calls[0].phone_number.as_str()), (MAYA, "+15035550139"));
    assert_eq!(calls[0].custom_data.as_deref(), Some(format!("highlevel-contact:{contact}").as_str()));
    // The call's hangup carries the custom_data back: its note lands on that contact, found by
    // no search (even though Dialpad reports another number for the far end).
    let mut hangup = fixture("call_outbound_hangup_recorded.json");
    hangup["custom_data"] = json!(calls[0].custom_data);
    hangup["external_number"] = json!("+15035550100");
    let searches = || world.highlevel.requests().iter().filter(|r| r.operation_id == Some("get-duplicate-contact")).count();
    let before = searches();
    let report = world.dialpad_event(&hangup);
    assert_eq!(report.contact_id.as_deref(), Some(contact.as_str()));
    assert_eq!(searches(), before);
    // Bad input is a typed error before any request.
    let bad = world.runtime.invoke("click-to-call", r#"{"contactId": "x", "userId": "maya"}"#).unwrap();
    assert!(matches!(bad, Err(wit::SyncError::InvalidInput(ref p)) if p[0].path == "/userId"), "{bad:?}");
}
