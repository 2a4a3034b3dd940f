//! The monitoring page in a real browser.

use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::serve::access::AccessOptions;
use dialpad_ghl_host::serve::ServeOptions;
use e2e_tests::serve::{get_json, in_process, json_fixture as fixture, loopback_options, mock, TOKEN};
use host_test::ghl_mock::{FaultKind, Faults};
use host_test::support::loopback_request;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The monitoring page in Debian's Chromium, driven by playwright-core (tests/browser): a
/// synced event shows with its plan and redacted HTTP operations, and pressing Replay on a dead
/// letter gets it into HighLevel. Needs `tests/browser/install.sh` (CI runs it and sets
/// `REQUIRE_BROWSER=1`, which turns a missing browser into a failure instead of a skip).
#[test]
#[cfg_attr(browser_missing, ignore = "Chromium or playwright-core is missing: run tests/browser/install.sh")]
fn the_monitoring_page_shows_events_and_replays_a_dead_letter_in_a_real_browser() {
    in_a_real_browser(None);
}

/// The same with an admin token: the browser is sent to /login, logs in with the token (a
/// session cookie), and the page, its JSON reads and its Replay button work as before.
#[test]
#[cfg_attr(browser_missing, ignore = "Chromium or playwright-core is missing: run tests/browser/install.sh")]
fn the_monitoring_page_works_after_a_login_with_the_admin_token() {
    in_a_real_browser(Some("browser-test-admin-token-0d41c9"));
}

fn in_a_real_browser(admin_token: Option<&str>) {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let ready = Path::new("/usr/bin/chromium").exists() && browser_dir.join("node_modules/playwright-core").exists();
    assert!(ready, "Chromium or playwright-core is missing: run tests/browser/install.sh");
    let mock = mock();
    let access = AccessOptions { admin_token: admin_token.map(Secret::new), ..AccessOptions::default() };
    let name = if admin_token.is_some() { "serve-browser-login" } else { "serve-browser" };
    let server = in_process(&mock, None, ServeOptions { max_attempts: 1, access, ..loopback_options() }, name);
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

    let screenshot = host_test::support::scratch_dir(&format!("{name}-shot")).join("monitor.png");
    let mut node = Command::new("node");
    node.arg(browser_dir.join("monitor.mjs")).arg(server.admin_url()).arg(&screenshot).env_remove("ADMIN_TOKEN");
    if let Some(token) = admin_token {
        node.env("ADMIN_TOKEN", token);
    }
    let output = node.output().unwrap();
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success() && seen.get("error").is_none(), "{seen:#}\n{}", String::from_utf8_lossy(&output.stderr));
    let text = |key: &str| seen[key].as_str().unwrap_or_default().to_string();
    if admin_token.is_some() {
        assert!(text("login_url").ends_with("/login") && text("login_title").contains("log in"), "{seen:#}");
    }
    assert_eq!(seen["console_errors"], serde_json::json!([]), "the page logged errors (a CSP violation?)");
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
    let events = match admin_token {
        None => get_json(&format!("{}/api/events", server.admin_url())),
        Some(_) => {
            assert_eq!(loopback_request("GET", &format!("{}/api/events", server.admin_url()), b"").unwrap().0, 401);
            Value::Null
        }
    };
    assert!(events.is_null() || events["dead_letters"].as_array().unwrap().is_empty());
    host_test::figure!("browser: {} showed the event and replayed the dead letter; screenshot {}", text("chromium"), screenshot.display());
}
