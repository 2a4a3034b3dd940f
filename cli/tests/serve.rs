//! `serve` as a user runs it: a separate process receiving Dialpad webhooks over loopback,
//! killed with SIGKILL mid-stream and started again on the same state. (Its answers, metrics,
//! retries and page are tested in-process: `tests/tests/serve.rs`, `tests/tests/browser.rs`.)
//! Each test runs twice: on `<state>/state.db` (`…_on_sqlite`) and on a PostgreSQL database
//! given with `--database` (`…_on_postgres`).

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::engine::Runtime;
use e2e_tests::on_both_stores;
use e2e_tests::serve::{json_fixture as fixture, mock, sign, Store, LOCATION, SECRET, TOKEN};
use e2e_tests::Events;
use host_test::ghl_mock::Holdings;
use host_test::support::loopback_request;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dialpad-ghl");

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

/// The same events handled one by one, in order, by the library: what the mock must hold.
fn reference_holdings(bodies: &[Vec<u8>], secret: Option<&str>) -> Holdings {
    let mock = mock();
    // Retries do not come into it: nothing fails in this run.
    let mut settings = e2e_tests::quick_settings(&mock.base_url(), LOCATION, TOKEN);
    if let Some(secret) = secret {
        settings.set("webhook_secret", secret);
    }
    let runtime = Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::new()).unwrap();
    for body in bodies {
        runtime.handle_webhook(body).unwrap().unwrap();
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
    /// `serve` on `state`, its database `database` (a PostgreSQL URL) when given.
    fn start(state: &Path, database: Option<&str>, api_base: &str, secret: Option<&str>) -> ServeProcess {
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
        command.env_remove("DIALPAD_GHL_DATABASE");
        if let Some(url) = database {
            command.args(["--database", url]);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().expect("serve printed its addresses").unwrap();
        let (webhooks, admin, state_line) = (next(), next(), next());
        let url = |line: &str, prefix: &str| {
            line.strip_prefix(prefix).and_then(|rest| rest.split_whitespace().next()).unwrap_or_else(|| panic!("{line}")).to_string()
        };
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
fn survives_sigkill(name: &str, secret: Option<&str>, store: Store) {
    let events = day_of_calls(24);
    let bodies: Vec<Vec<u8>> = events.iter().map(|e| secret.map_or_else(|| e.to_string().into_bytes(), |s| sign(e, s))).collect();
    let expected = reference_holdings(&bodies, secret);
    // Per caller: duplicate search, contact, note; the recap's note update and its 2 tasks.
    let expected_requests = 24 * 6;
    let mock = mock();
    // Slow enough that the kill lands with writes in flight and deliveries queued.
    mock.set_latency(Duration::from_millis(25));
    let state = host_test::support::scratch_dir(name).join("state");
    let database = match store {
        Store::Sqlite => None,
        Store::Postgres => Some(host_test::postgres::database(name)),
    };

    let serve = ServeProcess::start(&state, database.as_deref(), &mock.base_url(), secret);
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
    assert!(
        queued_at_kill > 0 && requests_at_kill < expected_requests,
        "the kill came too late to test anything: {queued_at_kill} queued, {requests_at_kill} requests"
    );

    let serve = ServeProcess::start(&state, database.as_deref(), &mock.base_url(), secret);
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
        "serve ({name}, {store:?}): SIGKILL with {queued_at_kill} deliveries queued and {requests_at_kill} of ~{expected_requests} requests made; {} were queued at the restart; {} requests in all ({creates} POSTs); 24 contacts, 24 notes, equal to the run without a crash",
        serve.queued_at_start,
        mock.requests().len()
    );
}

on_both_stores!(|store| survives_sigkill("serve-sigkill-unsigned", None, store)
    => unsigned_webhooks_survive_a_sigkill_exactly_once_on_sqlite, unsigned_webhooks_survive_a_sigkill_exactly_once_on_postgres);

on_both_stores!(|store| survives_sigkill("serve-sigkill-signed", Some(SECRET), store)
    => signed_webhooks_survive_a_sigkill_exactly_once_on_sqlite, signed_webhooks_survive_a_sigkill_exactly_once_on_postgres);
