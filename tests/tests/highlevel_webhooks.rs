//! HighLevel's contact webhooks on `POST /webhooks/highlevel` (issue 16, the host's side of
//! two-way contact sync): verified by the app's gate (Ed25519 signature, timestamp window,
//! `webhookId` ledger), routed to the tenant of their `locationId`, and taken like a Dialpad
//! delivery (the plugin's `route` at the door, the inbox, the tenant's lanes, `handle`, dead
//! letters and replay). Also: a tenant's credentials reach only their own API.
//!
//! The plugin's two-way sync is written beside this: today it answers `skipped` ("two-way
//! contact sync is off"), soon `synced`. The assertions hold for either: what they check is that
//! the event reached `handle` as a HighLevel webhook (its report's kind, `highlevel-contact`).

use dialpad_ghl_host::bindings::dialpad_ghl::sync::types::SyncError;
use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::backfill::Window;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::inbound::Source;
use dialpad_ghl_host::marketplace::{AppWebhookGate, MemoryReplayLedger, WebhookKeys, DEFAULT_WINDOW};
use dialpad_ghl_host::serve::setup::Setup;
use dialpad_ghl_host::serve::Server;
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use dialpad_ghl_host::tenants::registry::Tenants;
use dialpad_ghl_host::tenants::store::TenantStore;
use dialpad_ghl_host::tenants::{DialpadAuth, DialpadLink};
use e2e_tests::serve::{get_json, in_process, loopback_options, mock, LOCATION, SECRET, TOKEN};
use e2e_tests::tenants::{tenant_host, tenant_host_with, TenantHost, DIALPAD_KEY, PRIVATE_TOKEN};
use host_test::app_webhook::{self, now_ms, timestamp, SIGNATURE_HEADER};
use host_test::contact_webhook::{contact_body, contact_body_with, other_body};
use host_test::support::{loopback_request, loopback_request_with_headers, loopback_response};
use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NORTH: (&str, &str) = ("north", "locNorth");
const SOUTH: (&str, &str) = ("south", "locSouth");

fn as_json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn post_admin(host: &TenantHost, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = loopback_request("POST", &format!("{}{path}", host.server.admin_url()), body.to_string().as_bytes()).unwrap();
    (status, as_json(text))
}

/// A private-token tenant of `location`, with Dialpad connected (the credential two-way sync
/// writes Dialpad's contacts with).
fn add_tenant(host: &TenantHost, (id, location): (&str, &str)) {
    let (status, answer) = post_admin(host, "/api/tenants", json!({"id": id, "location_id": location, "token": PRIVATE_TOKEN}));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_admin(host, &format!("/api/tenants/{id}/dialpad"), json!({"api_key": DIALPAD_KEY}));
    assert_eq!(status, 200, "{answer}");
}

fn url(server: &Server) -> String {
    format!("{}/webhooks/highlevel", server.webhook_url())
}

/// POSTs `body` signed with the test key, as HighLevel does: `(status, answer)`.
fn deliver(server: &Server, body: &[u8]) -> (u16, Value) {
    let (status, text) = app_webhook::post(&url(server), body);
    (status, as_json(text))
}

fn update(location: &str, webhook_id: &str) -> Vec<u8> {
    contact_body("ContactUpdate", location, "hlContact1", webhook_id, &timestamp(now_ms()))
}

/// The inbox rows the monitor lists (newest first).
fn events(server: &Server) -> Vec<Value> {
    get_json(&format!("{}/api/events?limit=1000", server.admin_url()))["events"].as_array().unwrap().clone()
}

fn highlevel_rows(server: &Server) -> Vec<Value> {
    events(server).into_iter().filter(|e| e["source"] == "highlevel").collect()
}

/// Asserts a finished row is a HighLevel webhook the plugin handled as one, whatever two-way
/// sync made of it.
fn assert_handled_as_highlevel_contact(row: &Value) {
    assert_eq!(
        (row["source"].as_str(), row["source_name"].as_str(), row["kind"].as_str()),
        (Some("highlevel"), Some("HighLevel webhook"), Some("highlevel-contact")),
        "{row:#}"
    );
    assert_eq!(row["status"], "done", "{row:#}");
    let outcome = &row["outcome"];
    assert_eq!(outcome["kind"], "highlevel-contact", "the report is handle's, for a HighLevel contact: {row:#}");
    assert!(["synced", "skipped", "unchanged"].contains(&outcome["outcome"].as_str().unwrap_or_default()), "{row:#}");
    assert_eq!(row["plan"]["kind"], "highlevel-contact", "{row:#}");
}

#[test]
fn a_signed_contact_update_is_queued_for_its_locations_tenant_and_handled_there() {
    let host = tenant_host("hl-webhook-accepted");
    add_tenant(&host, NORTH);
    add_tenant(&host, SOUTH);
    let (status, answer) = deliver(&host.server, &update(NORTH.1, "wh-accepted-1"));
    assert_eq!(status, 200, "{answer}");
    let id = answer["accepted"].as_i64().unwrap_or_else(|| panic!("no queued id: {answer}"));
    assert_eq!((answer["tenant"].as_str(), answer["kind"].as_str()), (Some("north"), Some("highlevel-contact")), "{answer}");
    // The plugin names the lane: the contact's phone, as a call or text about the same person.
    assert_eq!(answer["lane"], "phone:+12065550174", "{answer}");
    assert!(host.server.wait_idle(Duration::from_secs(30)));

    let row = get_json(&format!("{}/api/events/{id}", host.server.admin_url()));
    assert_handled_as_highlevel_contact(&row);
    assert_eq!((row["tenant"].as_str(), row["lane"].as_str()), (Some("north"), Some("tenant/north/phone:+12065550174")), "{row:#}");
    assert_eq!(serde_json::from_str::<Value>(row["body"].as_str().unwrap()).unwrap()["webhookId"], "wh-accepted-1", "the bytes as HighLevel sent them");
    assert_eq!(highlevel_rows(&host.server).len(), 1);
    // South got nothing; the monitor shows where it came from.
    assert!(events(&host.server).iter().all(|e| e["tenant"] != "south"));
    let (status, page) = loopback_request("GET", &format!("{}/", host.server.admin_url()), b"").unwrap();
    assert!(status == 200 && page.contains("source_name"), "the page labels each event's source");
}

#[test]
fn unsigned_forged_stale_and_replayed_contact_webhooks_are_refused_and_stored_once_at_most() {
    let host = tenant_host("hl-webhook-refused");
    add_tenant(&host, NORTH);
    let body = update(NORTH.1, "wh-refused-1");
    let (status, answer) = loopback_request("POST", &url(&host.server), &body).unwrap();
    assert_eq!(status, 401, "unsigned: {answer}");
    let forged = app_webhook::sign(&update(NORTH.1, "wh-refused-other"));
    let (status, answer) = loopback_request_with_headers("POST", &url(&host.server), &[(SIGNATURE_HEADER, &forged)], &body).unwrap();
    assert_eq!(status, 401, "another body's signature: {answer}");
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let (status, _) = loopback_request_with_headers("POST", &url(&host.server), &[(SIGNATURE_HEADER, &app_webhook::sign(&body))], &tampered).unwrap();
    assert_eq!(status, 401, "a body changed after signing");
    let stale = contact_body("ContactUpdate", NORTH.1, "hlContact1", "wh-refused-stale", &timestamp(now_ms() - 600_000));
    let (status, answer) = deliver(&host.server, &stale);
    assert_eq!((status, answer["type"].as_str()), (409, Some("app-webhook-refused")), "ten minutes old: {answer}");
    let ahead = contact_body("ContactUpdate", NORTH.1, "hlContact1", "wh-refused-ahead", &timestamp(now_ms() + 600_000));
    assert_eq!(deliver(&host.server, &ahead).0, 409, "ten minutes ahead");
    let no_id = contact_body_with("ContactUpdate", NORTH.1, "hlContact1", "x", &timestamp(now_ms()), |b| {
        b.as_object_mut().unwrap().remove("webhookId");
    });
    assert_eq!(deliver(&host.server, &no_id).0, 400, "no webhookId: nothing to hold a replay against");
    assert!(highlevel_rows(&host.server).is_empty(), "nothing refused at the gate is stored");

    assert_eq!(deliver(&host.server, &body).0, 200);
    let (status, answer) = deliver(&host.server, &body);
    assert_eq!(status, 409, "the same webhookId again: {answer}");
    assert!(answer["message"].as_str().unwrap().contains("replay"), "{answer}");
    assert!(host.server.wait_idle(Duration::from_secs(30)));
    let rows = highlevel_rows(&host.server);
    assert_eq!(rows.len(), 1, "stored once: {rows:#?}");
    assert_handled_as_highlevel_contact(&rows[0]);
}

#[test]
fn an_unknown_location_is_404_and_the_same_webhook_is_taken_once_its_tenant_exists() {
    let host = tenant_host("hl-webhook-unknown");
    add_tenant(&host, NORTH);
    let body = update("locWest", "wh-west-1");
    let (status, answer) = deliver(&host.server, &body);
    assert_eq!((status, answer["type"].as_str()), (404, Some("unknown-location")), "{answer}");
    assert!(events(&host.server).is_empty(), "nothing stored");
    // Sent again before the location is installed: still unknown, not a replay.
    assert_eq!(deliver(&host.server, &body).0, 404);
    add_tenant(&host, ("west", "locWest"));
    let (status, answer) = deliver(&host.server, &body);
    assert_eq!((status, answer["tenant"].as_str()), (200, Some("west")), "{answer}");
    assert!(host.server.wait_idle(Duration::from_secs(30)));
    let rows = highlevel_rows(&host.server);
    assert_eq!((rows.len(), rows[0]["tenant"].as_str()), (1, Some("west")));
    assert_handled_as_highlevel_contact(&rows[0]);
}

#[test]
fn other_webhook_types_are_ignored_and_a_body_the_plugin_refuses_gets_the_dialpad_mapping() {
    let host = tenant_host("hl-webhook-other");
    add_tenant(&host, NORTH);
    for kind in ["NoteCreate", "InboundMessage", "ContactTagUpdate"] {
        let (status, answer) = deliver(&host.server, &other_body(kind, NORTH.1, &format!("wh-{kind}"), &timestamp(now_ms())));
        assert_eq!((status, answer), (200, json!({"ignored": kind})));
    }
    assert!(events(&host.server).is_empty(), "nothing stored for the types not taken");
    // Verified and fresh, but not a contact the plugin can read: 400, shown as refused.
    let no_contact_id = contact_body_with("ContactCreate", NORTH.1, "x", "wh-bad-1", &timestamp(now_ms()), |b| {
        b.as_object_mut().unwrap().remove("id");
    });
    let (status, answer) = deliver(&host.server, &no_contact_id);
    assert_eq!((status, answer["type"].as_str()), (400, Some("malformed-event")), "{answer}");
    let bad_phone = contact_body_with("ContactCreate", NORTH.1, "c2", "wh-bad-2", &timestamp(now_ms()), |b| b["phone"] = json!("not a phone"));
    assert_eq!(deliver(&host.server, &bad_phone).0, 400);
    let rows = highlevel_rows(&host.server);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|r| r["status"] == "refused" && r["tenant"] == "north" && r["source_name"] == "HighLevel webhook"), "{rows:#?}");
}

#[test]
fn a_full_store_answers_429_the_one_status_highlevel_retries_and_keeps_the_webhook_id_free() {
    // Dead letters over their budget: every delivery is turned away (507 to Dialpad).
    let host = tenant_host_with("hl-webhook-full", |options| options.limits.dead_letter_budget_bytes = 0);
    add_tenant(&host, NORTH);
    let body = update(NORTH.1, "wh-full-1");
    for _ in 0..2 {
        let (status, headers, text) = loopback_response("POST", &url(&host.server), &[(SIGNATURE_HEADER, &app_webhook::sign(&body))], &body).unwrap();
        assert_eq!(status, 429, "{text}");
        assert!(headers.iter().any(|(n, v)| n == "retry-after" && v == "60"), "{headers:?}");
        assert_eq!(as_json(text)["type"], "storage-full");
    }
    assert!(events(&host.server).is_empty());
}

#[test]
fn a_dead_letter_of_a_highlevel_webhook_is_replayed_to_handle_as_one() {
    let host = tenant_host("hl-webhook-replay");
    add_tenant(&host, NORTH);
    let body = update(NORTH.1, "wh-replay-1");
    assert_eq!(deliver(&host.server, &body).0, 200);
    assert!(host.server.wait_idle(Duration::from_secs(30)));
    // As a worker records a delivery that kept failing (two-way sync writing to a Dialpad that
    // did not answer, say): the same bytes, the same source.
    let letters = DeadLetters::open(&host.db).unwrap().for_tenant(NORTH.0);
    letters.record("inbox #1", Source::HighLevelWebhook, &body, &SyncError::Transport("Dialpad did not answer".into())).unwrap();
    let listed = get_json(&format!("{}/api/events", host.server.admin_url()))["dead_letters"].clone();
    assert_eq!((listed[0]["source"].as_str(), listed[0]["tenant"].as_str()), (Some("highlevel"), Some("north")), "{listed:#}");
    let id = listed[0]["id"].as_i64().unwrap();
    let (status, text) = loopback_request("POST", &format!("{}/api/dead-letters/{id}/replay", host.server.admin_url()), b"").unwrap();
    assert_eq!(status, 202, "{text}");
    let queued = as_json(text)["queued"].as_i64().unwrap();
    assert!(host.server.wait_idle(Duration::from_secs(30)));
    let row = get_json(&format!("{}/api/events/{queued}", host.server.admin_url()));
    assert_handled_as_highlevel_contact(&row);
    // Its delivery went through, so no failed one is kept: the letter is queued on its own.
    assert_eq!(row["replay_of"], Value::Null);
    let after = get_json(&format!("{}/api/events", host.server.admin_url()));
    assert_eq!(after["dead_letters"], json!([]), "the letter went through and was removed");
}

#[test]
fn the_single_location_serve_without_a_webhook_key_refuses_every_highlevel_webhook() {
    let mock = mock();
    let server = in_process(&mock, Some(SECRET), loopback_options(), "hl-webhook-no-key");
    for body in [update(LOCATION, "wh-nokey-1"), other_body("NoteCreate", LOCATION, "wh-nokey-2", &timestamp(now_ms()))] {
        let (status, answer) = deliver(&server, &body);
        assert_eq!((status, answer["type"].as_str()), (401, Some("not-configured")), "{answer}");
    }
    assert!(events(&server).is_empty(), "nothing unverified is stored");
}

#[test]
fn the_single_location_serve_with_a_webhook_key_queues_its_own_locations_contact_webhooks() {
    let mock = mock();
    let db = host_test::support::scratch_dir("hl-webhook-single").join("state.db");
    let mut settings = e2e_tests::quick_settings(&mock.base_url(), LOCATION, TOKEN);
    settings.set("webhook_secret", SECRET);
    let runtime = Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    let tenants = Tenants::new(runtime, settings.clone(), DeadLetters::open(&db).unwrap(), None, Box::new(|_, _| anyhow::bail!("no tenants here")));
    let gate = AppWebhookGate::new(WebhookKeys::ed25519(&app_webhook::test_public_key_pem()).unwrap());
    let setup = Setup::new(
        None,
        Some(gate),
        Box::new(MemoryReplayLedger::new(DEFAULT_WINDOW)),
        mock.base_url(),
        "http://127.0.0.1:9".into(),
        None,
        vec![],
        Duration::from_secs(5),
    );
    let server = Server::start_tenants(tenants, &db, loopback_options(), Some(setup)).unwrap();
    let (status, answer) = deliver(&server, &update(LOCATION, "wh-single-1"));
    assert_eq!((status, answer["tenant"].as_str()), (200, Some("")), "{answer}");
    assert_eq!(deliver(&server, &update("locElsewhere", "wh-single-2")).0, 404);
    assert!(server.wait_idle(Duration::from_secs(30)));
    let rows = highlevel_rows(&server);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_handled_as_highlevel_contact(&rows[0]);
    assert_eq!(rows[0]["lane"], "phone:+12065550174", "the single location's lanes are unprefixed");
}

/// A loopback API that records each request's method, path and `Authorization`, and answers
/// every one 200 with `answer`.
struct Recorder {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Debug)]
struct Seen {
    #[allow(dead_code)] // Shown when an assertion fails.
    request: String,
    authorization: Option<String>,
}

impl Recorder {
    fn start(answer: &'static str) -> Recorder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
                let (mut authorization, mut length) = (None, 0);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 {
                        break;
                    }
                    let Some((name, value)) = header.trim_end().split_once(':') else { break };
                    match name.trim().to_ascii_lowercase().as_str() {
                        "authorization" => authorization = Some(value.trim().to_string()),
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                record.lock().unwrap().push(Seen { request: format!("{method} {path}"), authorization });
                let reply =
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}", answer.len());
                let _ = reader.get_mut().write_all(reply.as_bytes());
            }
        });
        Recorder { base, seen }
    }

    fn authorizations(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().iter().map(|seen| seen.authorization.clone()).collect()
    }
}

#[test]
fn a_tenants_highlevel_token_and_dialpad_key_each_reach_their_own_api_only() {
    let (highlevel, dialpad) = (Recorder::start(r#"{"contact":{"id":"c1"}}"#), Recorder::start(r#"{"items":[]}"#));
    let db = host_test::support::scratch_dir("hl-webhook-credentials").join("state.db");
    let mut settings = e2e_tests::quick_settings(&highlevel.base, LOCATION, "the-hosts-own-token");
    settings.set("dialpad_api_base", dialpad.base.clone());
    settings.dialpad_key = Some(Secret::new("the-hosts-own-dialpad-key"));
    let vault = Arc::new(dialpad_ghl_host::storage::vault::Vault::new(dialpad_ghl_host::storage::vault::SecretKey::generate(), vec![]));
    let store = Arc::new(TenantStore::open(&db, Some(vault)).unwrap());
    let mut tenant =
        dialpad_ghl_host::tenants::lifecycle::put_private(&store, NORTH.0, NORTH.1, &Secret::new("north-highlevel-token"), Default::default()).unwrap();
    store.set_secret(&tenant.owner(), dialpad_ghl_host::tenants::secret_names::DIALPAD_KEY, &Secret::new("north-dialpad-key")).unwrap();
    tenant.dialpad = Some(DialpadLink { auth: DialpadAuth::ApiKey, registration: None });
    store.put(&tenant).unwrap();
    let single = Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    let (tenants, _) = Tenants::over_store(single, &settings, DeadLetters::open(&db).unwrap(), store, "");
    let north = tenants.get(NORTH.0).expect("the tenant is live");
    // One request to each API through the tenant's runtime: Dialpad's call listing, and a read of
    // a HighLevel contact.
    let window = Window { started_after: 1_773_100_800_000, started_before: Some(1_773_187_200_000) };
    let page = north.runtime.backfill_page(window, None).unwrap();
    assert!(page.is_ok(), "{page:?}");
    let read = north.runtime.invoke("get-contact", r#"{"contactId":"c1"}"#).unwrap();
    assert!(read.is_ok(), "{read:?}");
    // Actions of both APIs: each goes to its own origin with its own credential.
    let dialpad_action = north.runtime.invoke("users.list", r#"{"email":"ana@example.com"}"#).unwrap();
    assert!(dialpad_action.is_ok(), "{dialpad_action:?}");
    let highlevel_action = north.runtime.invoke("search-conversation", r#"{"contactId":"c1"}"#).unwrap();
    assert!(highlevel_action.is_ok(), "{highlevel_action:?}");
    let dialpad_key = Some("Bearer north-dialpad-key".to_string());
    let highlevel_token = Some("Bearer north-highlevel-token".to_string());
    assert_eq!(dialpad.authorizations(), [dialpad_key.clone(), dialpad_key], "{:?}", dialpad.seen.lock().unwrap());
    assert_eq!(highlevel.authorizations(), [highlevel_token.clone(), highlevel_token], "{:?}", highlevel.seen.lock().unwrap());
}

/// The outbound hook's side of a route limit (Dialpad's contact creates use one): a request over
/// the limit waits for a place up to the limit's bound, then fails unsent, as a transport error
/// the inbox retries. Shown on the call listing, a request the plugin makes today.
#[test]
fn a_request_over_its_route_limit_waits_up_to_the_bound_and_is_never_sent() {
    use dialpad_ghl_host::capability::outbound::{Origin, RateLimiter, RouteLimit};
    let (highlevel, dialpad) = (Recorder::start(r#"{}"#), Recorder::start(r#"{"items":[]}"#));
    let mut settings = e2e_tests::quick_settings(&highlevel.base, LOCATION, TOKEN);
    settings.set("dialpad_api_base", dialpad.base.clone());
    settings.dialpad_key = Some(Secret::new(DIALPAD_KEY));
    let mut options = settings.runtime_options(true).unwrap();
    let bound = Duration::from_millis(400);
    options.policy.route_limits.push(RouteLimit {
        origin: Origin::parse(&dialpad.base).unwrap(),
        methods: vec!["GET"],
        path: "/api/v2/call",
        limiter: Arc::new(RateLimiter::new(1, Duration::from_secs(60))),
        max_wait: bound,
        name: "one listing a minute",
    });
    let runtime = Runtime::new(e2e_tests::plugin(), options, KeyValueStore::new()).unwrap();
    let window = Window { started_after: 1_773_100_800_000, started_before: Some(1_773_187_200_000) };
    assert!(runtime.backfill_page(window, None).unwrap().is_ok());
    let started = std::time::Instant::now();
    let refused = runtime.backfill_page(window, None).unwrap();
    assert!(started.elapsed() >= bound, "gave up after {:?}", started.elapsed());
    assert!(matches!(&refused, Err(SyncError::Transport(_))), "{refused:?}");
    assert_eq!(dialpad.authorizations().len(), 1, "the request over the limit was sent");
    let log = runtime.http_log().entries();
    let last = log.last().unwrap();
    assert!(last.outcome.starts_with("not sent: one listing a minute had no place within"), "{last:?}");
}
