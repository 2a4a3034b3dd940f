//! The setup page in a real browser: install the HighLevel app for an agency, add a location
//! with a private token, connect its Dialpad, send a test event, check it, validate a
//! configuration.

use e2e_tests::tenants::{tenant_host, DIALPAD_KEY, PRIVATE_TOKEN};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Debian's Chromium, driven by playwright-core (tests/browser/setup.mjs), walks the setup page
/// against the mocks. Needs `tests/browser/install.sh` (CI sets `REQUIRE_BROWSER=1`).
#[test]
#[cfg_attr(browser_missing, ignore = "Chromium or playwright-core is missing: run tests/browser/install.sh")]
fn the_setup_page_installs_connects_checks_and_sends_a_test_event_in_a_real_browser() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let ready = Path::new("/usr/bin/chromium").exists() && browser_dir.join("node_modules/playwright-core").exists();
    assert!(ready, "Chromium or playwright-core is missing: run tests/browser/install.sh");
    let host = tenant_host("setup-browser");
    let screenshot = host_test::support::scratch_dir("setup-browser-shot").join("setup.png");
    let output = Command::new("node")
        .arg(browser_dir.join("setup.mjs"))
        .arg(host.server.admin_url())
        .arg(&screenshot)
        .env("PRIVATE_LOCATION", "acmeLocation")
        .env("PRIVATE_TOKEN", PRIVATE_TOKEN)
        .env("DIALPAD_KEY", DIALPAD_KEY)
        .output()
        .unwrap();
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success() && seen.get("error").is_none(), "{seen:#}\n{}", String::from_utf8_lossy(&output.stderr));
    host_test::figure!("setup page: {seen:#}");
    assert_eq!(seen["errors"], serde_json::json!([]), "console errors (a CSP violation?)");
    assert!(seen["install_result"].as_str().unwrap().contains("loc-tenantloca,loc-tenantlocb"), "{seen:#}");
    assert_eq!(seen["tenant_rows"], 3, "two installed locations and acme");
    assert!(seen["connect_result"].as_str().unwrap().starts_with("Dialpad connected: webhook "), "{seen:#}");
    assert!(seen["test_result"].as_str().unwrap().contains(": done"), "{seen:#}");
    let checks: Vec<&str> = seen["check_items"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(checks.len(), 6, "{checks:?}");
    assert!(checks.contains(&"✓ Actions available: all 262 (the HighLevel credential's scopes are not listed: all are assumed)"), "{checks:?}");
    assert!(checks.iter().all(|c| c.starts_with('✓')), "{checks:?}");
    assert!(seen["invalid_config"].as_str().unwrap().contains("location_id"), "{seen:#}");
    assert!(seen["valid_config"].as_str().unwrap().contains("The configuration is valid."), "{seen:#}");
    assert_eq!(seen["phone_overflow"], false, "the page scrolls sideways at a phone's width");
    // The test event landed in HighLevel, on acme's location only.
    let contacts = host.ghl.contacts();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0]["locationId"], "acmeLocation");
    // Dialpad: one webhook, for acme's own URL.
    let registered = host.dialpad.registered();
    assert_eq!(registered.webhooks.len(), 1);
    assert!(registered.webhooks[0].hook_url.ends_with("/webhooks/dialpad/acme"));
}
