//! Upstream APIs that misbehave: HighLevel blackholed while `serve` has a queue (the circuit
//! breaker), and a Dialpad listing whose cursor never advances (the backfill's cursor guard),
//! against the Dialpad mock and against Prism serving Dialpad's official spec.

use dialpad_ghl_host::backfill::{run, stuck_listing, Mode};
use dialpad_ghl_host::bindings::dialpad_ghl::sync::types::SyncError;
use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::backfill::Window;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::report;
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::settings::Settings;
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use e2e_tests::serve::{json_fixture, mock, LOCATION, TOKEN};
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
use host_test::support::loopback_request;
use serde_json::json;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A loopback TCP relay in front of an API that can be switched to a blackhole: while it is
/// one, connections are accepted and never answered (a hung backend behind its load balancer),
/// and they stay so; once it answers, new connections are relayed to the API.
struct Blackhole {
    addr: SocketAddr,
    dark: Arc<AtomicBool>,
    /// The connections swallowed, held open until the relay is dropped.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Blackhole {
    fn start(api: SocketAddr) -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (dark, held) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (d, h) = (dark.clone(), held.clone());
        // The accept loop ends with the test process.
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    h.lock().unwrap().push(client);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(api) else { continue };
                for (mut from, mut to) in [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n @ 1..) = from.read(&mut buf) {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Blackhole { addr, dark, held }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_dark(&self, dark: bool) {
        self.dark.store(dark, Ordering::SeqCst);
    }
}

/// `n` hangups from `n` different callers.
fn hangups(n: usize) -> Vec<Vec<u8>> {
    let hangup = json_fixture("call_inbound_hangup_completed.json");
    (0..n)
        .map(|i| {
            let mut call = hangup.clone();
            let number = format!("+1206555{:04}", 4000 + i);
            call["call_id"] = json!(7_400_000_000_000_000u64 + i as u64);
            call["external_number"] = json!(number);
            call["contact"]["phone"] = json!(number);
            call["contact"]["id"] = json!(5_400_000_000_000_000u64 + i as u64);
            call.to_string().into_bytes()
        })
        .collect()
}

/// What one blackhole run measured.
struct Drain {
    /// From the API answering again to the queue empty.
    after_recovery: Duration,
    contacts: usize,
    notes: usize,
    dead_letters: u64,
    /// How often the circuit opened.
    opened: u64,
}

/// `serve` with 4 workers behind the relay: `n` deliveries arrive as the API goes dark for
/// `dark`, then it answers; how long after that the queue takes to drain.
fn blackholed_serve(name: &str, n: usize, dark: Duration, breaker: bool) -> Drain {
    let api = mock();
    let relay = Blackhole::start(api.addr());
    let mut settings = e2e_tests::quick_settings(&relay.url(), LOCATION, TOKEN);
    if !breaker {
        settings.api_breaker = None;
    }
    let circuit = settings.api_breaker.clone();
    let db = host_test::support::scratch_dir(name).join("state.db");
    let runtime = Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    let options = ServeOptions {
        workers: 4,
        // Retries without the breaker each take a timeout; with it they are quick, so give the
        // deliveries enough of them to outlast the blackhole.
        max_attempts: 10,
        retry_base: Duration::from_millis(500),
        ..e2e_tests::serve::loopback_options()
    };
    let server = Server::start(runtime, &db, DeadLetters::open(&db).unwrap(), options).unwrap();
    relay.set_dark(true);
    let went_dark = Instant::now();
    for body in hangups(n) {
        let (status, answer) = loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), &body).unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    std::thread::sleep(dark.saturating_sub(went_dark.elapsed()));
    let queued = server.inbox().queued().unwrap();
    relay.set_dark(false);
    let recovered = Instant::now();
    assert!(server.wait_idle(Duration::from_secs(90)), "the queue did not drain");
    let after_recovery = recovered.elapsed();
    let metrics = loopback_request("GET", &format!("{}/metrics", server.admin_url()), b"").unwrap().1;
    let dead_letters = metrics.lines().find_map(|l| l.strip_prefix("dialpad_ghl_dead_letters ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let drain =
        Drain { after_recovery, contacts: api.contacts().len(), notes: api.notes().len(), dead_letters, opened: circuit.map_or(0, |c| c.times_opened()) };
    e2e_tests::figure!(
        "attacker: blackhole of {} ms, {n} deliveries, 4 workers, breaker {}: {queued} queued at recovery; drained {} ms after it; \
         {} contacts, {} notes, {} dead letters; the circuit opened {} times",
        dark.as_millis(),
        if breaker { "on" } else { "off" },
        drain.after_recovery.as_millis(),
        drain.contacts,
        drain.notes,
        drain.dead_letters,
        drain.opened,
    );
    relay.held.lock().unwrap().clear();
    server.shutdown();
    drain
}

#[test]
fn a_blackholed_api_does_not_stall_the_queue_past_its_recovery() {
    let n = 16;
    let drain = blackholed_serve("attacker-blackhole", n, Duration::from_secs(5), true);
    assert_eq!((drain.contacts, drain.notes, drain.dead_letters), (n, n, 0), "every call synced exactly once");
    assert!(drain.opened >= 1, "the stalled requests opened the circuit");
    assert!(drain.after_recovery < Duration::from_secs(10), "drained {:?} after the API answered again", drain.after_recovery);
}

/// The same without the breaker: each worker waits out the 20 s request timeout.
#[test]
fn without_the_breaker_the_queue_waits_for_the_request_timeout() {
    let n = 16;
    let drain = blackholed_serve("attacker-blackhole-off", n, Duration::from_secs(5), false);
    assert_eq!((drain.contacts, drain.notes, drain.dead_letters), (n, n, 0), "every call synced exactly once");
    assert!(drain.after_recovery > Duration::from_secs(12), "drained {:?} after the API answered again", drain.after_recovery);
}

const DIALPAD_KEY: &str = "attacker-dialpad-key";
/// 2026-03-10T00:00:00Z.
const DAY: u64 = 1_773_100_800_000;
const WINDOW: Window = Window { started_after: DAY, started_before: Some(DAY + 86_400_000) };

fn backfill_settings(api_base: &str, dialpad_base: &str) -> Settings {
    let mut settings = e2e_tests::quick_settings(api_base, LOCATION, TOKEN);
    settings.set("dialpad_api_base", dialpad_base);
    settings.dialpad_key = Some(Secret::new(DIALPAD_KEY));
    settings
}

/// Backfills `WINDOW`; it must end with the typed error. Returns the pages and the message.
fn backfill_ends_stuck(settings: &Settings) -> (u64, String) {
    let runtime = Runtime::new(e2e_tests::plugin(), settings.runtime_options(false).unwrap(), KeyValueStore::new()).unwrap();
    let started = Instant::now();
    let result = run(&runtime, None, WINDOW, Mode::Sync, |_, _| {}).unwrap();
    let (progress, error): (_, SyncError) = result.expect_err("a listing that never advances ended as if complete");
    assert!(stuck_listing(&error), "{error:?}");
    let message = report::error_message(&error);
    e2e_tests::figure!("attacker: stuck listing stopped after {} pages in {} ms: {message}", progress.pages, started.elapsed().as_millis());
    (progress.pages, message)
}

#[test]
fn a_cursor_that_never_advances_ends_the_backfill_with_an_error_naming_it() {
    let (api, dialpad) = (mock(), DialpadMock::start(DialpadMockOptions { api_key: DIALPAD_KEY.into(), page_size: 5 }).unwrap());
    let hangup = json_fixture("call_inbound_hangup_completed.json");
    for i in 0..12u64 {
        let mut call = hangup.clone();
        call["call_id"] = json!(7_500_000_000_000_000u64 + i);
        call["date_started"] = json!(DAY + 3_600_000 + i * 60_000);
        call["external_number"] = json!(format!("+1206555{:04}", 5000 + i));
        call["contact"]["phone"] = call["external_number"].clone();
        dialpad.add_call(call);
    }
    dialpad.repeat_first_page(true);
    let (pages, message) = backfill_ends_stuck(&backfill_settings(&api.base_url(), &dialpad.base_url()));
    assert_eq!(pages, 2, "{message}");
    assert!(message.contains("Dialpad repeated the cursor \"") && message.contains("stopped after 2 pages"), "{message}");
    assert_eq!(dialpad.requests().len(), 2);
    assert_eq!(api.contacts().len(), 5, "the first page's calls were synced once");
}

/// Prism serving Dialpad's official spec answers every listing with the spec's example, whose
/// cursor is `"string"`: the case the issue found (1,200 pages in 60 s, never ending).
#[test]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
fn prism_serving_dialpads_spec_repeats_its_cursor_and_the_backfill_stops() {
    let prism = DialpadPrism::start();
    let api = mock();
    let (pages, message) = backfill_ends_stuck(&backfill_settings(&api.base_url(), &prism.base_url));
    assert_eq!(pages, 2, "{message}");
    assert!(message.contains("Dialpad repeated the cursor \"string\""), "{message}");
}

/// Prism mocking Dialpad's official spec on a free loopback port; killed on drop.
struct DialpadPrism {
    base_url: String,
    child: std::process::Child,
}

impl DialpadPrism {
    fn start() -> DialpadPrism {
        let bin = std::env::var_os("PRISM_BIN").map(std::path::PathBuf::from).unwrap_or_else(e2e_tests::prism::default_bin);
        let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/dialpad/dialpad_api_spec.json");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(&bin)
            .args(["mock", spec, "--errors", "--host", "127.0.0.1", "--port", &port.to_string()])
            .env("SCARF_ANALYTICS", "false")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let prism = DialpadPrism { base_url: format!("http://127.0.0.1:{port}"), child };
        let started = Instant::now();
        while loopback_request("GET", &format!("{}/api/v2/call", prism.base_url), b"").is_err() {
            assert!(started.elapsed() < e2e_tests::prism::STARTUP_TIMEOUT, "Prism did not answer on {}", prism.base_url);
            std::thread::sleep(Duration::from_millis(200));
        }
        prism
    }
}

impl Drop for DialpadPrism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
