//! `serve` as a user runs it: a separate process receiving Dialpad webhooks over loopback,
//! killed with SIGKILL mid-stream and started again on the same state, and the same server
//! in-process for its answers, `/healthz`, `/metrics`, retries and dead-letter replay.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use host_test::engine::{CompiledPlugin, Runtime};
use host_test::keyvalue::KeyValueStore;
use host_test::mock::{Holdings, FaultKind, Faults, MockOptions, MockServer};
use host_test::outbound::Secret;
use host_test::serve::{ServeOptions, Server};
use host_test::settings::Settings;
use host_test::{dead_letters::DeadLetters, loopback_request};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_host-test");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");
const TOKEN: &str = "serve-test-token-5d2e";
const SECRET: &str = "serve-test-webhook-secret-81f0";
const LOCATION: &str = "loc-serve";

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{FIXTURES}{name}")).unwrap()).unwrap()
}

/// A compact HS256 JWT whose claims are `claims`, as Dialpad signs with a webhook secret.
fn sign(claims: &Value, secret: &str) -> Vec<u8> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{claims}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{claims}.{signature}").into_bytes()
}

/// `callers` calls, each a hangup and then its AI recap, from distinct numbers.
fn day_of_calls(callers: usize) -> Vec<Value> {
    let (hangup, recap) = (fixture("call_inbound_hangup_completed.json"), fixture("call_recap_summary.json"));
    let mut events = Vec::new();
    for i in 0..callers {
        let number = format!("+1312555{:04}", 2000 + i);
        for template in [&hangup, &recap] {
            let mut event = template.clone();
            event["call_id"] = json!(7_100_000_000_000_000u64 + i as u64);
            event["external_number"] = json!(number);
            event["contact"]["phone"] = json!(number);
            event["contact"]["id"] = json!(5_100_000_000_000_000u64 + i as u64);
            event["contact"]["name"] = json!(format!("Caller {i}"));
            events.push(event);
        }
    }
    events
}

fn mock() -> MockServer {
    MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }).unwrap()
}

/// The same events handled one by one, in order, by the library: what the mock must hold.
fn reference_holdings(bodies: &[Vec<u8>], secret: Option<&str>) -> Holdings {
    let mock = mock();
    let mut settings = Settings::default();
    settings.set("api_base", mock.base_url());
    settings.set("location_id", LOCATION);
    settings.token = Some(Secret::new(TOKEN));
    settings.rate_limiter = None;
    if let Some(secret) = secret {
        settings.set("webhook_secret", secret);
    }
    let plugin = CompiledPlugin::from_file(Path::new(host_test::PLUGIN_WASM)).unwrap();
    let runtime = Runtime::new(&plugin, settings.runtime_options(true).unwrap(), KeyValueStore::new()).unwrap();
    for body in bodies {
        runtime.handle(body).unwrap().unwrap();
    }
    mock.holdings()
}

/// A `host-test serve` process. Dropping it kills it.
struct ServeProcess {
    child: Child,
    webhooks: String,
    admin: String,
    queued_at_start: u64,
}

impl ServeProcess {
    fn start(state: &Path, api_base: &str, secret: Option<&str>) -> ServeProcess {
        let config = state.with_extension("config.json");
        // No client-side limit: the mock has none, and the test wants the stream fast.
        std::fs::write(&config, json!({"location_id": LOCATION, "token": TOKEN, "rate_limit": false}).to_string()).unwrap();
        let mut command = Command::new(BIN);
        command.env_remove("GHL_TOKEN").env_remove("DIALPAD_WEBHOOK_SECRET");
        command.args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--workers", "4", "--retry-base", "50ms"]);
        command.args(["--api-base", api_base, "--config", config.to_str().unwrap(), "--state", state.to_str().unwrap()]);
        if let Some(secret) = secret {
            command.args(["--webhook-secret", secret]);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().expect("serve printed its addresses").unwrap();
        let (webhooks, admin, state_line) = (next(), next(), next());
        let url = |line: &str, prefix: &str| line.strip_prefix(prefix).and_then(|rest| rest.split_whitespace().next()).unwrap_or_else(|| panic!("{line}")).to_string();
        let queued_at_start = state_line.rsplit_once('(').and_then(|(_, rest)| rest.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap();
        ServeProcess {
            child,
            webhooks: url(&webhooks, "webhooks: ").trim_end_matches("/webhooks/dialpad").to_string(),
            admin: url(&admin, "monitor: ").trim_end_matches('/').to_string(),
            queued_at_start,
        }
    }

    fn post(&self, body: &[u8]) -> (u16, Value) {
        let (status, text) = loopback_request("POST", &format!("{}/webhooks/dialpad", self.webhooks), body).unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn health(&self) -> Value {
        serde_json::from_str(&loopback_request("GET", &format!("{}/healthz", self.admin), b"").unwrap().1).unwrap()
    }

    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.health()["queue_depth"] != 0 {
            assert!(Instant::now() < deadline, "serve did not drain its inbox: {}", self.health());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts a day of calls, SIGKILLs serve while its workers are writing, starts it again on the
/// same state, posts the rest (and redelivers what was sent before the kill, as Dialpad
/// retries), and compares HighLevel with a run that never crashed.
fn survives_sigkill(name: &str, secret: Option<&str>) {
    let events = day_of_calls(24);
    let bodies: Vec<Vec<u8>> = events.iter().map(|e| secret.map_or_else(|| e.to_string().into_bytes(), |s| sign(e, s))).collect();
    let expected = reference_holdings(&bodies, secret);
    // Per caller: duplicate search, contact, note; the recap's note update and its 2 tasks.
    let expected_requests = 24 * 6;
    let mock = mock();
    // Slow enough that the kill lands with writes in flight and deliveries queued.
    mock.set_latency(Duration::from_millis(25));
    let state = host_test::scratch_dir(name).join("state");

    let serve = ServeProcess::start(&state, &mock.base_url(), secret);
    let (before, after) = bodies.split_at(32);
    for body in before {
        let (status, answer) = serve.post(body);
        assert_eq!(status, 200, "{answer}");
        assert!(answer["accepted"].as_i64().is_some(), "{answer}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while mock.requests().len() < expected_requests / 4 {
        assert!(Instant::now() < deadline, "serve made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let queued_at_kill = serve.health()["queue_depth"].as_u64().unwrap();
    serve.kill();
    let requests_at_kill = mock.requests().len();
    assert!(queued_at_kill > 0 && requests_at_kill < expected_requests, "the kill came too late to test anything: {queued_at_kill} queued, {requests_at_kill} requests");

    let serve = ServeProcess::start(&state, &mock.base_url(), secret);
    assert!(serve.queued_at_start > 0, "the acknowledged deliveries were not kept");
    for body in after.iter().chain(before.iter().take(8)) {
        assert_eq!(serve.post(body).0, 200);
    }
    serve.wait_idle();
    let health = serve.health();
    assert_eq!(health["dead_letters"], 0, "{health}");
    let held = mock.holdings();
    if held != expected {
        for r in mock.requests() {
            eprintln!("{} {} {} {:?}", r.method, r.path_and_query, r.status, r.operation_id);
        }
    }
    assert_eq!(held, expected, "HighLevel differs from a run without the crash");
    assert_eq!(held.len(), 24);
    assert!(held.values().all(|(contacts, notes, _)| *contacts == 1 && notes.len() == 1), "{held:#?}");
    let creates = mock.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(creates, 24 * 4, "a create was sent twice: a contact, a note and two tasks per caller");
    host_test::figure!(
        "serve ({name}): SIGKILL with {queued_at_kill} deliveries queued and {requests_at_kill} of ~{expected_requests} requests made; {} were queued at the restart; {} requests in all ({creates} POSTs); 24 contacts, 24 notes, equal to the run without a crash",
        serve.queued_at_start,
        mock.requests().len()
    );
}

#[test]
fn unsigned_webhooks_survive_a_sigkill_exactly_once() {
    survives_sigkill("serve-sigkill-unsigned", None);
}

#[test]
fn signed_webhooks_survive_a_sigkill_exactly_once() {
    survives_sigkill("serve-sigkill-signed", Some(SECRET));
}

/// An in-process `serve` against the embedded mock.
fn in_process(mock: &MockServer, secret: Option<&str>, options: ServeOptions, name: &str) -> Server {
    let mut settings = Settings::default();
    settings.set("api_base", mock.base_url());
    settings.set("location_id", LOCATION);
    settings.set("retry_base_delay_ms", 1);
    settings.token = Some(Secret::new(TOKEN));
    settings.rate_limiter = None;
    if let Some(secret) = secret {
        settings.set("webhook_secret", secret);
    }
    let db = host_test::scratch_dir(name).join("state.db");
    let plugin = CompiledPlugin::from_file(Path::new(host_test::PLUGIN_WASM)).unwrap();
    let runtime = Runtime::new(&plugin, settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    Server::start(runtime, &db, DeadLetters::open(&db).unwrap(), options).unwrap()
}

fn loopback_options() -> ServeOptions {
    ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        max_attempts: 3,
        retry_base: Duration::from_millis(20),
        reconcile: None,
    }
}

fn get_json(url: &str) -> Value {
    let (status, text) = loopback_request("GET", url, b"").unwrap();
    assert_eq!(status, 200, "{url}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn refusals_are_typed_and_accepted_deliveries_are_handled_and_counted() {
    let mock = mock();
    let server = in_process(&mock, Some(SECRET), loopback_options(), "serve-answers");
    let post = |path: &str, body: &[u8]| {
        let (status, text) = loopback_request("POST", &format!("{}{path}", server.webhook_url()), body).unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)))
    };
    let hangup = fixture("call_inbound_hangup_completed.json");

    let (status, answer) = post("/webhooks/dialpad", &sign(&hangup, SECRET));
    assert_eq!((status, answer["kind"].as_str(), answer["lane"].as_str()), (200, Some("call"), Some("phone:+13125550187")), "{answer}");
    // The fixture's own signed vector, under its own secret, is refused here: wrong secret.
    let signed_fixture = std::fs::read(format!("{FIXTURES}call_inbound_hangup_completed.jwt")).unwrap();
    let (status, answer) = post("/webhooks/dialpad", &signed_fixture);
    assert_eq!((status, answer["type"].as_str()), (401, Some("invalid-signature")), "{answer}");
    assert!(answer["plain"].as_str().unwrap().contains("webhook secret"), "{answer}");
    let (status, answer) = post("/webhooks/dialpad", hangup.to_string().as_bytes());
    assert_eq!((status, answer["type"].as_str()), (401, Some("invalid-signature")), "unsigned while a secret is set: {answer}");
    let (status, answer) = post("/webhooks/dialpad", b"not an event");
    assert_eq!((status, answer["type"].as_str()), (400, Some("malformed-event")), "{answer}");
    let (status, _) = post("/webhooks/dialpad", &vec![b'x'; host_test::serve::MAX_BODY_BYTES + 1]);
    assert_eq!(status, 413);
    let (status, answer) = post("/events/platform", br#"{"id":"evt-1","type":"task.created"}"#);
    assert_eq!((status, answer["type"].as_str()), (400, Some("invalid-input")), "{answer}");
    assert_eq!(loopback_request("GET", &format!("{}/metrics", server.webhook_url()), b"").unwrap().0, 404, "metrics are on the admin listener only");

    assert!(server.wait_idle(Duration::from_secs(20)));
    let requests: Vec<String> = mock.requests().iter().map(|r| format!("{} {}", r.method, r.path_and_query)).collect();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!((mock.contacts().len(), mock.notes().len()), (1, 1));

    let health = get_json(&format!("{}/healthz", server.admin_url()));
    assert_eq!((health["status"].as_str(), health["queue_depth"].as_u64()), (Some("ok"), Some(0)), "{health}");
    let (status, metrics) = loopback_request("GET", &format!("{}/metrics", server.admin_url()), b"").unwrap();
    assert_eq!(status, 200);
    for line in [
        "dialpad_ghl_events_total{outcome=\"synced\"} 1",
        "dialpad_ghl_events_total{outcome=\"refused\"} 4",
        "dialpad_ghl_api_requests_total{status=\"201\"} 2",
        "dialpad_ghl_queue_depth 0",
        "dialpad_ghl_event_latency_seconds_count 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from\n{metrics}");
    }
    let events = get_json(&format!("{}/api/events", server.admin_url()));
    let statuses: Vec<&str> = events["events"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["refused", "refused", "refused", "refused", "done"]);
    let done = &events["events"][4];
    assert_eq!(done["plan"]["plan"].as_array().unwrap().len(), 3, "{done}");
    let http = done["http"].as_array().unwrap();
    assert_eq!(http.len(), 3);
    let shown = serde_json::to_string(&events).unwrap();
    assert!(!shown.contains(TOKEN) && !shown.contains(SECRET), "a secret reached the monitor");
    assert!(http.iter().all(|x| x["request_headers"].as_array().unwrap().iter().any(|h| h[0] == "authorization" && h[1] == "[redacted]")));
}

#[test]
fn transient_failures_are_retried_then_dead_lettered_and_a_replay_gets_through() {
    let mock = mock();
    let server = in_process(&mock, None, loopback_options(), "serve-retries");
    mock.set_faults(Some(Faults { rate: 1.0, seed: 1, kinds: vec![FaultKind::ServerError(500)] }));
    let body = fixture("call_inbound_hangup_completed.json").to_string();
    let (status, _) = loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), body.as_bytes()).unwrap();
    assert_eq!(status, 200);
    assert!(server.wait_idle(Duration::from_secs(20)));
    let events = get_json(&format!("{}/api/events", server.admin_url()));
    let event = &events["events"][0];
    assert_eq!((event["status"].as_str(), event["attempts"].as_u64()), (Some("failed"), Some(3)), "{event}");
    assert!(event["outcome"]["plain"].as_str().unwrap().contains("HighLevel failed (500)"), "{event}");
    let letters = events["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{events}");
    assert_eq!(mock.contacts().len(), 0);

    mock.set_faults(None);
    let replay = format!("{}/api/dead-letters/{}/replay", server.admin_url(), letters[0]["id"]);
    let (status, answer) = loopback_request("POST", &replay, b"").unwrap();
    assert_eq!(status, 202, "{answer}");
    assert!(server.wait_idle(Duration::from_secs(20)));
    let events = get_json(&format!("{}/api/events", server.admin_url()));
    assert_eq!(events["dead_letters"].as_array().unwrap().len(), 0, "{events}");
    assert_eq!(events["events"][0]["status"], "done");
    assert_eq!(events["events"][0]["replay_of"], letters[0]["id"]);
    assert_eq!((mock.contacts().len(), mock.notes().len()), (1, 1));
    let (status, _) = loopback_request("POST", &replay, b"").unwrap();
    assert_eq!(status, 404, "the letter is gone");
}

/// The monitoring page in Debian's Chromium, driven by playwright-core (tests/browser): a
/// synced event shows with its plan and redacted HTTP operations, and pressing Replay on a dead
/// letter gets it into HighLevel. Needs `tests/browser/install.sh` (CI runs it and sets
/// `REQUIRE_BROWSER=1`, which turns a missing browser into a failure instead of a skip).
#[test]
fn the_monitoring_page_shows_events_and_replays_a_dead_letter_in_a_real_browser() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    let ready = Path::new("/usr/bin/chromium").exists() && browser_dir.join("node_modules/playwright-core").exists();
    if !ready {
        assert!(std::env::var_os("REQUIRE_BROWSER").is_none(), "REQUIRE_BROWSER is set, but Chromium or playwright-core is missing: run tests/browser/install.sh");
        eprintln!("skipped: no browser (run tests/browser/install.sh)");
        return;
    }
    let mock = mock();
    let server = in_process(&mock, None, ServeOptions { max_attempts: 1, ..loopback_options() }, "serve-browser");
    let post = |name: &str| {
        let body = fixture(name).to_string();
        assert_eq!(loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), body.as_bytes()).unwrap().0, 200);
        assert!(server.wait_idle(Duration::from_secs(20)));
    };
    post("call_inbound_hangup_completed.json");
    mock.set_faults(Some(Faults { rate: 1.0, seed: 1, kinds: vec![FaultKind::ServerError(503)] }));
    post("call_inbound_missed.json");
    mock.set_faults(None);
    assert_eq!((mock.contacts().len(), mock.notes().len()), (1, 1));

    let screenshot = host_test::scratch_dir("serve-browser-shot").join("monitor.png");
    let output = Command::new("node").arg(browser_dir.join("monitor.mjs")).arg(server.admin_url()).arg(&screenshot).output().unwrap();
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success() && seen.get("error").is_none(), "{seen:#}\n{}", String::from_utf8_lossy(&output.stderr));
    let text = |key: &str| seen[key].as_str().unwrap_or_default().to_string();
    assert!(text("synced_row").contains("synced") && text("synced_row").contains("inbound call"), "{seen:#}");
    let detail = text("detail");
    for expected in ["Plan", "HTTP operations", "create-note", "POST http://127.0.0.1", "[redacted]", "Dialpad call ID: 6011482093420544"] {
        assert!(detail.contains(expected), "{expected:?} not on the page:\n{detail}");
    }
    assert!(text("dead_letter").contains("HighLevel failed (503)") || text("dead_letter").contains("503"), "{seen:#}");
    assert!(text("message").contains("queued again"), "{seen:#}");
    assert!(!text("page_text").contains(TOKEN) && !detail.contains(TOKEN), "the token reached the page");
    assert!(server.wait_idle(Duration::from_secs(20)));
    assert_eq!((mock.contacts().len(), mock.notes().len()), (2, 2), "the replayed call reached HighLevel");
    let events = get_json(&format!("{}/api/events", server.admin_url()));
    assert!(events["dead_letters"].as_array().unwrap().is_empty());
    host_test::figure!("browser: {} showed the event and replayed the dead letter; screenshot {}", text("chromium"), screenshot.display());
}
