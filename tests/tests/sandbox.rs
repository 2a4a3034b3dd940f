//! The host's sandbox, proven with a deliberately hostile component (`tests/hostile-plugin/`)
//! and with a silent server: a runaway guest is stopped, memory is capped, requests outside
//! the allowlist are refused and logged, no environment or filesystem is granted, a trap does
//! not take the host down, and a request that gets no answer times out.

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::engine::{CompiledPlugin, Runtime};
use e2e_tests::*;
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn hostile() -> &'static CompiledPlugin {
    static HOSTILE: OnceLock<CompiledPlugin> = OnceLock::new();
    HOSTILE.get_or_init(|| CompiledPlugin::from_file(std::path::Path::new(artifacts::HOSTILE_PLUGIN_WASM)).unwrap())
}

/// The hostile component in a host that allows only the mock, with tight limits.
fn hostile_runtime(h: &Harness) -> Runtime {
    let mut settings = h.settings.clone();
    settings.event_deadline = Duration::from_millis(500);
    settings.memory_limit_bytes = 16 << 20;
    Runtime::new(hostile(), settings.runtime_options(true).unwrap(), KeyValueStore::new()).unwrap()
}

fn summary(result: Result<Report, SyncError>) -> String {
    result.unwrap().summary
}

#[test]
fn a_runaway_guest_is_stopped_by_the_epoch_deadline_and_the_host_keeps_serving() {
    let h = Harness::new();
    let rt = hostile_runtime(&h);
    let started = Instant::now();
    let trap = rt.handle_webhook(b"spin").expect_err("an endless loop must trap");
    assert!(format!("{trap:?}").contains("interrupt"), "{trap:?}");
    // Generous bound: the point is that it stops at all, not how fast (that is a benchmark).
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(summary(rt.handle_webhook(b"hello").unwrap()), "harmless: hello");
    // The real plugin in the same process is unaffected.
    assert_eq!(h.handle_fixture("call_inbound_hangup_completed.json").unwrap().outcome, Outcome::Synced);
}

#[test]
fn memory_is_capped() {
    let h = Harness::new();
    let rt = hostile_runtime(&h);
    let trap = rt.handle_webhook(b"grow").expect_err("growing past the cap must trap");
    let text = format!("{trap:?}");
    assert!(text.contains("memory") || text.contains("unreachable"), "{text}");
    assert_eq!(summary(rt.handle_webhook(b"again").unwrap()), "harmless: again");
}

#[test]
fn a_request_outside_the_allowlist_is_refused_and_logged() {
    let h = Harness::new();
    let rt = hostile_runtime(&h);
    let result = rt.handle_webhook(b"exfiltrate").expect("no trap");
    assert!(matches!(result, Err(SyncError::Transport(_))), "{result:?}");
    let log = rt.http_log().entries();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].url, "http://exfiltrate.example:8080/loot");
    assert_eq!(log[0].outcome, "denied: origin not in the allowlist");
    assert!(h.mock.requests().is_empty());
}

#[test]
fn no_environment_and_no_filesystem_are_granted() {
    std::env::set_var("HOST_SECRET_FOR_SANDBOX_TEST", "must-not-leak");
    let h = Harness::new();
    let rt = hostile_runtime(&h);
    assert_eq!(summary(rt.handle_webhook(b"env").unwrap()), "env: []");
    let fs = summary(rt.handle_webhook(b"read-file").unwrap());
    assert!(fs.starts_with("no filesystem"), "{fs}");
}

#[test]
fn a_panicking_guest_traps_and_the_host_survives() {
    let h = Harness::new();
    let rt = hostile_runtime(&h);
    assert!(rt.handle_webhook(b"panic").is_err());
    assert_eq!(summary(rt.handle_webhook(b"after").unwrap()), "harmless: after");
}

/// A server that accepts connections and never answers: the host's own deadline ends each
/// request (wasmtime's default would wait 600 s), the plugin retries the idempotent search,
/// then reports a typed transport error.
#[test]
fn a_request_that_gets_no_answer_times_out() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in silent.incoming().take(3) {
            open.push(stream);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let h = Harness::new();
    let mut settings = h.settings.clone();
    settings.set("api_base", format!("http://{addr}"));
    settings.request_timeout = Duration::from_millis(300);
    let rt = Runtime::new(plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::new()).unwrap();
    let err = rt.handle_webhook(&fixture("call_inbound_hangup_completed.json")).unwrap().unwrap_err();
    match err {
        SyncError::Transport(m) => {
            assert!(m.starts_with("get-duplicate-contact"), "{m}");
            assert!(m.contains("timed out reading the response") || m.contains("no response in time"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let log = rt.http_log().entries();
    assert_eq!(log.len(), 3, "three attempts");
    assert!(log.iter().all(|e| e.outcome == "timeout after 300 ms"), "{log:?}");
    drop(held);
}
