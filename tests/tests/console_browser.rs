//! The operator's console (`host/src/serve/monitor.html`, `docs/console.md`) in a real browser:
//! Debian's Chromium driven by playwright-core (`tests/browser/console.mjs`), against an
//! in-process `serve` and the mock HighLevel API. Each test checks what the page shows (the JSON
//! the script prints) and what HighLevel ends up holding (the mock), and writes screenshots of
//! the views to a scratch folder, and to `docs/console/` with `UPDATE_SCREENSHOTS=1`.
//!
//! Needs `tests/browser/install.sh`; without Chromium or playwright-core the browser tests are
//! ignored with that reason (`REQUIRE_BROWSER=1` turns that into a failure). The test of the
//! guide's screenshots needs no browser.

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::inbound::Source;
use dialpad_ghl_host::serve::access::AccessOptions;
use dialpad_ghl_host::serve::alerts::AlertSettings;
use dialpad_ghl_host::serve::inbox::{Arrival, Handled, Inbox, Status};
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use e2e_tests::serve::{alerts_told, get_json, json_fixture, loopback_options, mock, LOCATION, TOKEN};
use host_test::ghl_mock::{FaultKind, Faults, MockServer};
use host_test::support::{loopback_request, Catcher};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One browser test at a time: each starts a Chromium, and the waits are for a quiet machine.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    ONE_BROWSER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repository").to_path_buf()
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// A `serve` on `db` against `mock` (the host's single location), started in this process.
fn start(mock: &MockServer, db: &Path, options: ServeOptions) -> Server {
    let settings = e2e_tests::quick_settings(&mock.base_url(), LOCATION, TOKEN);
    let runtime = Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(db).unwrap()).unwrap();
    Server::start(runtime, db, DeadLetters::open(db).unwrap(), options).unwrap()
}

/// Posts a Dialpad webhook body and waits until the inbox has handled it; its delivery id.
fn post(server: &Server, body: &[u8]) -> i64 {
    let (status, text) = loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), body).unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(server.wait_idle(Duration::from_secs(30)), "the inbox did not drain");
    serde_json::from_str::<Value>(&text).unwrap()["accepted"].as_i64().expect("an accepted delivery's id")
}

fn post_fixture(server: &Server, name: &str) -> i64 {
    post(server, json_fixture(name).to_string().as_bytes())
}

const FIRST_NAMES: [&str; 8] = ["Avery", "Jordan", "Priya", "Mateo", "Grace", "Tomás", "Aiko", "Noah"];
const LAST_NAMES: [&str; 8] = ["Chen", "Okafor", "Lindqvist", "Patel", "Moreau", "Byrne", "Haddad", "Kowalski"];

/// The caller of call `n`: a name, and a number of their own.
fn caller(n: u64) -> (String, String) {
    (format!("{} {}", FIRST_NAMES[(n % 8) as usize], LAST_NAMES[((n / 8) % 8) as usize]), format!("+1206555{:04}", n % 10_000))
}

/// A call of the outbound fixture with its own call id, number, name and e-mail.
fn call_body(n: u64) -> Vec<u8> {
    e2e_tests::fixture_with("call_outbound_hangup_recorded.json", |event| {
        let (name, phone) = caller(n);
        event["call_id"] = json!(7_100_000_000_000_000u64 + n);
        event["external_number"] = json!(phone);
        event["contact"]["phone"] = json!(phone);
        event["contact"]["name"] = json!(name);
        event["contact"]["email"] = json!(format!("caller{n}@example.org"));
        event["contact"]["id"] = json!(6_600_000_000_000_000u64 + n);
    })
}

/// Stores `count` handled deliveries, numbered from `first`, through the inbox's own API:
/// accepted together ([`Inbox::accept_many`]: one transaction), then claimed and finished one by
/// one inside one more, so every label and search key is the one `serve` makes, and ten thousand
/// rows take seconds, not the minutes of a disk sync each. One lane: a claim looks at one row.
/// One in 500 failed (HighLevel answered 503): the newest one, among them.
fn seed(db: &Path, first: u64, count: u64) {
    let inbox = Inbox::open(db).unwrap();
    let numbers: Vec<u64> = (first..first + count).collect();
    let bodies: Vec<Vec<u8>> = numbers.iter().map(|n| call_body(*n)).collect();
    let names: Vec<String> = numbers.iter().map(|n| format!("seeded call {n}")).collect();
    let arrivals: Vec<Arrival<'_>> = bodies
        .iter()
        .zip(&names)
        .map(|(body, name)| Arrival { tenant: "", source: Source::DialpadWebhook, name, body, kind: "call", lane: "seeded", replay_of: None })
        .collect();
    inbox.accept_many(&arrivals).unwrap();
    inbox.with_db(|sql| Ok(sql.execute_batch("BEGIN")?)).unwrap();
    for _ in &numbers {
        let delivery = inbox.claim().unwrap().expect("a seeded delivery");
        let n: u64 = delivery.name.strip_prefix("seeded call ").and_then(|n| n.parse().ok()).expect("a seeded delivery's name");
        let call_id = 7_100_000_000_000_000u64 + n;
        let failed = n % 500 == 499;
        let outcome = if failed {
            json!({"event": delivery.name, "outcome": "failed", "error": {"type": "upstream", "status": 503, "message": "HighLevel answered 503 Service Unavailable"},
                   "plain": "HighLevel failed (503): it was down for a moment. Replay it once HighLevel answers."})
        } else {
            json!({"event": delivery.name, "kind": "call", "event_key": format!("call:{call_id}:hangup"), "outcome": "synced",
                   "summary": format!("outbound call to {} ({}m {:02}s) → note on contact seeded-{n}", caller(n).1, 1 + n % 9, (n * 7) % 60),
                   "contact_id": format!("seeded-{n}"), "note_id": format!("note-{n}"), "call_entry_id": null,
                   "operations": [{"operation_id": "create-note", "method": "POST", "path": format!("/contacts/seeded-{n}/notes"), "status": 201, "attempts": 1}]})
        };
        let handled = Handled { status: if failed { Status::Failed } else { Status::Done }, outcome, plan: Value::Null, http: json!([]), duration_ms: 3 };
        inbox.finish(&delivery, &handled).unwrap();
    }
    inbox.with_db(|sql| Ok(sql.execute_batch("COMMIT")?)).unwrap();
}

/// Runs `console.mjs <scenario>` against the admin listener with `env`; what it saw.
fn run_console(scenario: &str, admin_url: &str, shots: &Path, env: &[(&str, String)]) -> Value {
    let ready = Path::new("/usr/bin/chromium").exists() && browser_dir().join("node_modules/playwright-core").exists();
    assert!(ready, "Chromium or playwright-core is missing: run tests/browser/install.sh");
    let mut node = Command::new("node");
    node.arg(browser_dir().join("console.mjs")).arg(scenario).arg(admin_url).arg(shots).env_remove("ADMIN_TOKEN").env_remove("ADMIN_NAME");
    for (name, value) in env {
        node.env(name, value);
    }
    let output = node.output().expect("running node");
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)));
    assert!(output.status.success() && seen.get("error").is_none(), "{seen:#}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(seen["console_errors"], json!([]), "the page logged errors (a CSP violation? a failed script?): {seen:#}");
    seen
}

/// The screenshots a scenario took: in `shots` always; copied to `docs/console/` with
/// `UPDATE_SCREENSHOTS=1`. Each is `{file, id}`: the element of monitor.html it shows.
fn keep_screenshots(seen: &Value, shots: &Path) {
    let update = std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v.trim() == "1");
    let docs = repo().join("docs/console");
    for shot in seen["shots"].as_array().expect("the scenario's screenshots") {
        let file = shot["file"].as_str().unwrap();
        let from = shots.join(file);
        assert!(from.metadata().is_ok_and(|m| m.len() > 1000), "no screenshot {}", from.display());
        if update {
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::copy(&from, docs.join(file)).unwrap();
        }
        host_test::figure!("console screenshot {} (#{}): {}", file, shot["id"].as_str().unwrap_or_default(), from.display());
    }
}

fn texts(value: &Value) -> Vec<String> {
    value.as_array().map(|list| list.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()).unwrap_or_default()
}

fn ids(rows: &Value) -> Vec<i64> {
    rows.as_array().map(|list| list.iter().filter_map(|r| r["id"].as_i64()).collect()).unwrap_or_default()
}

/// (a) Among 10,000 stored deliveries, the filters and the search (a phone typed another way,
/// the Dialpad call id, the HighLevel contact id, an e-mail) find the one call; the view lives
/// in the URL (a reload keeps it); paging goes older and back; Enter on a row opens it.
#[test]
#[cfg_attr(browser_missing, ignore = "Chromium or playwright-core is missing: run tests/browser/install.sh")]
fn the_console_finds_one_call_among_ten_thousand_deliveries() {
    let _one = one_browser();
    let mock = mock();
    let shots = host_test::support::scratch_dir("console-search-shots");
    let db = host_test::support::scratch_dir("console-search").join("state.db");
    let started = Instant::now();
    seed(&db, 1, 4_999);
    // The call to find, handled for real (HighLevel holds its contact and note), in the middle.
    let server = start(&mock, &db, loopback_options());
    let needle = post_fixture(&server, "call_outbound_hangup_recorded.json");
    server.shutdown();
    seed(&db, 5_000, 5_000);
    let seeded_in = started.elapsed();
    let server = start(&mock, &db, loopback_options());
    let admin = server.admin_url();
    let all = get_json(&format!("{admin}/api/deliveries?limit=1"));
    assert_eq!(ids(&all["deliveries"]), vec![10_000], "10,000 deliveries stored: {all}");
    let contact = mock.contacts()[0]["id"].as_str().unwrap().to_string();
    assert_eq!(mock.contacts().len(), 1);

    let env = [
        ("NEEDLE", needle.to_string()),
        ("NEEDLE_PHONE", "(503) 555-0139".to_string()),
        ("NEEDLE_CALL", "4617205983150080".to_string()),
        ("NEEDLE_CONTACT", contact.clone()),
        ("SEEDED_EMAIL", "Caller7321@example.org".to_string()),
        ("SEEDED_ID", (7_321 + 1).to_string()),
    ];
    let seen = run_console("search", &admin, &shots, &env);
    keep_screenshots(&seen, &shots);

    let first = &seen["first_page"];
    assert_eq!((first["count"].as_i64(), first["first_id"].as_i64(), first["older"].as_bool()), (Some(50), Some(10_000), Some(true)), "{seen:#}");
    for search in ["phone_search", "call_search", "contact_search"] {
        assert_eq!(ids(&seen[search]["rows"]), vec![needle], "{search} did not find delivery #{needle} alone: {seen:#}");
        let row = seen[search]["rows"][0]["text"].as_str().unwrap();
        assert!(row.contains("Kenji Watanabe") && row.contains("synced") && row.contains(&format!("Delivery #{needle}")), "{row}");
    }
    assert!(seen["phone_search"]["url"].as_str().unwrap().contains("q=%28503%29"), "the search is not in the URL: {seen:#}");
    assert_eq!(ids(&seen["after_reload"]["rows"]), vec![needle], "a reload lost the view: {seen:#}");
    assert_eq!(seen["after_reload"]["q"], "(503) 555-0139");
    assert_eq!(ids(&seen["email_search"]["rows"]), vec![7_321 + 1], "the seeded call by its e-mail (another case): {seen:#}");
    // One in 500 seeded deliveries failed: 499, 999, … 9,999: twenty.
    assert_eq!(seen["failed_view"]["count"].as_i64(), Some(20), "{seen:#}");
    assert_eq!(texts(&seen["failed_view"]["states"]).iter().filter(|s| *s == "failed").count(), 20);
    assert_eq!((seen["sms_view"]["count"].as_i64(), seen["sms_view"]["empty"].as_str()), (Some(0), Some("No delivery matches this view.")));
    assert_eq!(seen["future_view"]["count"].as_i64(), Some(0), "a range after now holds nothing: {seen:#}");
    let older = &seen["older_page"];
    assert_eq!((older["first_id"].as_i64(), older["last_id"].as_i64()), (Some(9_950), Some(9_901)), "{seen:#}");
    assert_eq!(seen["newer_page"]["first_id"].as_i64(), Some(10_000));
    let detail = seen["keyboard_detail"].as_str().unwrap();
    for expected in
        [format!("Delivery #{needle}"), "Kenji Watanabe".into(), "4617205983150080".into(), contact.clone(), "Plan".into(), "HTTP operations".into()]
    {
        assert!(detail.contains(&expected), "{expected:?} not in the detail opened with Enter:\n{detail}");
    }
    assert!(seen["keyboard_focus_kept"].as_bool().unwrap(), "a poll moved the focus: {seen:#}");
    // HighLevel holds the one real call, untouched by the browsing.
    assert_eq!((mock.contacts().len(), mock.notes().len()), (1, 1));
    host_test::figure!(
        "console: 10,000 deliveries stored in {:.1} s; the phone, the call id, the contact id and an e-mail each found one; {}",
        seeded_in.as_secs_f64(),
        seen["chromium"].as_str().unwrap_or_default()
    );
}

/// (b) A call's story: ringing, connected, hangup and the recap, in order, each with its time,
/// state and what it changed in HighLevel, and links to the contact, the note and the call
/// entry that open in a new tab.
#[test]
#[cfg_attr(browser_missing, ignore = "Chromium or playwright-core is missing: run tests/browser/install.sh")]
fn a_calls_story_shows_its_legs_and_links() {
    let _one = one_browser();
    let mock = mock();
    let shots = host_test::support::scratch_dir("console-story-shots");
    let db = host_test::support::scratch_dir("console-story").join("state.db");
    let server = start(&mock, &db, loopback_options());
    let legs: Vec<i64> =
        ["call_inbound_ringing_unknown_number.json", "call_inbound_connected.json", "call_inbound_hangup_completed.json", "call_recap_summary.json"]
            .into_iter()
            .map(|name| post_fixture(&server, name))
            .collect();
    let story = get_json(&format!("{}/api/calls/6011482093420544?tenant=", server.admin_url()));
    assert_eq!(ids(&story["events"]), legs, "{story:#}");
    let contact = mock.contacts()[0]["id"].as_str().unwrap().to_string();
    assert_eq!(mock.contacts().len(), 1, "one caller, one contact");

    let seen = run_console("story", &server.admin_url(), &shots, &[("CALL", "6011482093420544".into()), ("LEGS", legs.len().to_string())]);
    keep_screenshots(&seen, &shots);
    let events = seen["events"].as_array().unwrap();
    assert_eq!(events.iter().map(|e| e["id"].as_i64().unwrap()).collect::<Vec<_>>(), legs, "{seen:#}");
    let steps: Vec<&str> = events.iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["Ringing", "Connected", "Hung up", "Recap"], "{seen:#}");
    for event in events {
        let text = event["text"].as_str().unwrap();
        assert!(text.contains(" 2026, ") || text.contains(", "), "no time: {text}");
        assert!(event["state"].as_str().is_some_and(|s| !s.is_empty()), "{event}");
    }
    // The hangup wrote the note (and the call entry): its changes are listed.
    let hangup = &events[2];
    assert!(texts(&hangup["changes"]).iter().any(|c| c.contains("POST") && c.contains("/notes")), "{hangup:#}");
    let links = seen["links"].as_array().unwrap();
    assert!(!links.is_empty(), "no links: {seen:#}");
    for link in links {
        assert_eq!((link["target"].as_str(), link["rel"].as_str()), (Some("_blank"), Some("noopener")), "{link}");
    }
    let contact_link = links.iter().find(|l| l["class"].as_str().is_some_and(|c| c.contains("link-contact"))).expect("a link to the contact");
    assert!(contact_link["href"].as_str().unwrap().contains(&contact), "{contact_link} does not open contact {contact}");
    assert!(seen["title"].as_str().unwrap().contains("(312) 555-0187") || seen["title"].as_str().unwrap().contains("+13125550187"), "{seen:#}");
    assert!(seen["back_to"].as_str().unwrap().starts_with("Delivery #"), "{seen:#}");
    // HighLevel holds what the story links to: the contact, the call's note, its call entry.
    let note = story["note_id"].as_str().expect("the call's note");
    assert!(mock.notes().iter().any(|n| n["id"] == note), "note {note} is not in HighLevel: {:#?}", mock.notes());
    if let Some(entry) = story["call_entry_id"].as_str() {
        assert!(mock.call_entries().iter().any(|c| c["id"] == entry || c["messageId"] == entry), "call entry {entry}: {:#?}", mock.call_entries());
        assert!(links.iter().any(|l| l["class"].as_str().is_some_and(|c| c.contains("link-call_entry"))), "no link to the call entry: {seen:#}");
    }
}

/// (c) HighLevel refuses the token (401) for a while: three calls fail. With the token good
/// again, "Replay all failed in this view" queues every one, each gets through, and the page and
/// the API link them both ways; the audit log names who did it.
#[test]
#[cfg_attr(browser_missing, ignore = "Chromium or playwright-core is missing: run tests/browser/install.sh")]
fn replay_all_failed_recovers_a_token_outage() {
    let _one = one_browser();
    let mock = mock();
    let shots = host_test::support::scratch_dir("console-replay-shots");
    let db = host_test::support::scratch_dir("console-replay").join("state.db");
    let admin_token = "console-browser-admin-token-5be1";
    let access = AccessOptions { admin_token: Some(Secret::new(admin_token)), ..AccessOptions::default() };
    let server = start(&mock, &db, ServeOptions { max_attempts: 1, access, ..loopback_options() });
    mock.set_faults(Some(Faults { rate: 1.0, seed: 7, kinds: vec![FaultKind::ServerError(401)] }));
    let failed: Vec<i64> = ["call_inbound_missed.json", "call_outbound_hangup_recorded.json", "call_inbound_hangup_completed.json"]
        .into_iter()
        .map(|name| post_fixture(&server, name))
        .collect();
    assert!(mock.contacts().is_empty() && mock.notes().is_empty(), "nothing got through the outage");
    // The token is good again.
    mock.set_faults(None);

    let env = [("ADMIN_TOKEN", admin_token.to_string()), ("ADMIN_NAME", "Dana".to_string()), ("EXPECT_FAILED", failed.len().to_string())];
    let seen = run_console("replay-all", &server.admin_url(), &shots, &env);
    keep_screenshots(&seen, &shots);
    assert!(server.wait_idle(Duration::from_secs(30)));

    let mut shown = ids(&seen["failed_rows"]);
    shown.sort();
    assert_eq!(shown, failed, "{seen:#}");
    for row in seen["failed_rows"].as_array().unwrap() {
        assert!(row["text"].as_str().unwrap().contains("failed"), "{row}");
    }
    let detail = seen["failed_detail"].as_str().unwrap();
    assert!(detail.contains("Replay delivery #") && detail.contains("Discard") && detail.contains("upstream:401"), "{detail}");
    assert_eq!(seen["bulk_result"], "3 deliveries queued again.", "{seen:#}");
    // Every failed row now says where its replay went, and the replay where it came from.
    let mut links: Vec<(i64, i64)> =
        seen["replayed_rows"].as_array().unwrap().iter().map(|r| (r["id"].as_i64().unwrap(), r["replayed_by"].as_i64().unwrap())).collect();
    links.sort();
    assert_eq!(links.iter().map(|(from, _)| *from).collect::<Vec<_>>(), failed, "{seen:#}");
    // The replay opened from its failed row: "Replay of delivery #…", synced on the page.
    let (opened_from, opened) = (seen["replay_detail"]["from"].as_i64().unwrap(), seen["replay_detail"]["id"].as_i64().unwrap());
    assert!(links.contains(&(opened_from, opened)), "{seen:#}");
    assert_eq!(seen["replay_detail"]["replay_of"].as_i64(), Some(opened_from), "{seen:#}");
    assert_eq!(seen["replay_detail"]["state"], "synced", "the replay did not get through on the page: {seen:#}");
    assert_eq!(seen["toggle_kept_open"], true, "a poll closed the HTTP operations the operator opened: {seen:#}");
    assert_eq!(seen["failed_count_after"], "0", "{seen:#}");
    let audit = seen["audit"].as_str().unwrap();
    assert!(audit.contains("Dana") && audit.contains("replayed all failed"), "{audit}");
    for (from, _) in &links {
        assert!(audit.contains(&format!("#{from}")), "#{from} not in the audit log: {audit}");
    }

    // The API says the same, and HighLevel now holds every call.
    let auth = format!("Bearer {admin_token}");
    let api = |path: &str| -> Value {
        let (status, _, text) =
            host_test::support::loopback_response("GET", &format!("{}{path}", server.admin_url()), &[("Authorization", auth.as_str())], b"").unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    };
    for (from, to) in &links {
        let old = api(&format!("/api/deliveries/{from}"));
        let new = api(&format!("/api/deliveries/{to}"));
        assert_eq!((old["state"].as_str(), old["replayed_by"].as_i64()), (Some("failed"), Some(*to)), "{old:#}");
        assert_eq!((new["state"].as_str(), new["replay_of"].as_i64()), (Some("synced"), Some(*from)), "{new:#}");
    }
    assert_eq!(api("/api/overview")["failed"], 0);
    let entries = api("/api/audit")["entries"].clone();
    let entry = entries.as_array().unwrap().iter().find(|e| e["action"] == "replay-all").expect("the replay in the audit log");
    let mut logged: Vec<i64> = entry["deliveries"].as_array().unwrap().iter().filter_map(Value::as_i64).collect();
    logged.sort();
    assert_eq!(logged, failed);
    assert!(entry["actor"].as_str().unwrap().starts_with("Dana"), "{entry}");
    assert_eq!(mock.contacts().len(), 3, "three callers");
    for call in ["5402917760802816", "4617205983150080", "6011482093420544"] {
        let notes = mock.notes().iter().filter(|n| n["body"].as_str().is_some_and(|b| b.contains(call))).count();
        assert_eq!(notes, 1, "call {call}: one note after the replay: {:#?}", mock.notes());
    }
}

/// (d) A burst of failures (HighLevel down) shows as a banner naming what is wrong and what to
/// do, and on the chart of deliveries and failures; at phone width the page stacks and does not
/// scroll sideways. Each incident reaches the alerts' loopback receiver once, and once more when
/// the failures are settled (discarded from the page).
#[test]
#[cfg_attr(browser_missing, ignore = "Chromium or playwright-core is missing: run tests/browser/install.sh")]
fn a_failure_burst_shows_a_banner_and_the_chart() {
    let _one = one_browser();
    let mock = mock();
    let shots = host_test::support::scratch_dir("console-burst-shots");
    let db = host_test::support::scratch_dir("console-burst").join("state.db");
    // The alerts go to a loopback receiver standing for a Slack or Teams incoming webhook.
    let receiver = Catcher::start().unwrap();
    let alerts = AlertSettings { webhook_url: Some(receiver.url().parse().unwrap()), check_every: Duration::from_millis(100), ..AlertSettings::default() };
    let server = start(&mock, &db, ServeOptions { max_attempts: 1, alerts, ..loopback_options() });
    for n in 0..6 {
        post(&server, &call_body(n));
    }
    mock.set_faults(Some(Faults { rate: 1.0, seed: 3, kinds: vec![FaultKind::ServerError(503)] }));
    for n in 6..18 {
        post(&server, &call_body(n));
    }
    let overview = get_json(&format!("{}/api/overview", server.admin_url()));
    assert_eq!(overview["failed"], 12, "{overview:#}");
    let incidents = overview["incidents"].as_array().cloned().unwrap_or_default();
    assert!(!incidents.is_empty(), "twelve failures in a row raised no incident: {overview:#}");
    let keys: Vec<String> = incidents.iter().map(|i| i["key"].as_str().unwrap().to_string()).collect();
    let opened: Vec<(String, String)> = keys.iter().map(|k| ("open".to_string(), k.clone())).collect();
    wait_until(|| alerts_told(&receiver).len() >= keys.len());

    let seen = run_console("burst", &server.admin_url(), &shots, &[]);
    keep_screenshots(&seen, &shots);
    let banners = seen["banners"].as_array().unwrap();
    assert_eq!(banners.len(), incidents.len(), "{seen:#}");
    for (banner, incident) in banners.iter().zip(&incidents) {
        let text = banner["text"].as_str().unwrap();
        assert_eq!(banner["role"], "alert");
        assert!(text.contains(incident["title"].as_str().unwrap()) && text.contains(incident["advice"].as_str().unwrap()), "{text} vs {incident}");
    }
    assert!(seen["chart"]["canvas"].as_bool().unwrap(), "no chart drawn: {seen:#}");
    let summary = seen["chart"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("18 deliveries, 12 failed, 0 refused"), "{summary}");
    assert_eq!(seen["chart"]["series"], json!(["Deliveries", "Failed", "Refused"]), "{seen:#}");
    // The chart library comes from this host, cached for a year under its versioned URL.
    let (status, headers, script) =
        host_test::support::loopback_response("GET", &format!("{}/assets/uplot.js?v=1.6.32", server.admin_url()), &[], b"").unwrap();
    assert_eq!(status, 200);
    assert!(script.starts_with("/*! https://github.com/leeoniya/uPlot (v1.6.32) */"), "{}", &script[..80.min(script.len())]);
    let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header("cache-control"), "public, max-age=31536000, immutable");
    let phone = &seen["phone"];
    assert!(phone["page_width"].as_i64().unwrap() <= 390, "the page scrolls sideways at phone width: {phone}");
    assert_eq!(phone["rows_as_cards"], true, "{phone}");
    assert_eq!(phone["banner_visible"], true, "{phone}");
    assert_eq!((phone["filters_folded"].as_bool(), phone["filters_open"].as_bool()), (Some(true), Some(true)), "{phone}");
    // Discarded: one from its detail, the eleven others at once; each with its reason, logged.
    let one = seen["discard_one"]["id"].as_i64().unwrap();
    assert_eq!(seen["discard_one"]["result"], format!("Delivery #{one} discarded."), "{seen:#}");
    assert_eq!(seen["discard_one"]["state"], "discarded", "{seen:#}");
    assert_eq!(seen["discard_all"], "11 deliveries discarded.", "{seen:#}");
    let audit = seen["audit"].as_str().unwrap();
    assert!(audit.contains("a test call to our own number") && audit.contains("HighLevel was down; these calls were entered by hand"), "{audit}");
    let detail = get_json(&format!("{}/api/deliveries/{one}", server.admin_url()));
    assert_eq!((detail["state"].as_str(), detail["discarded"]["reason"].as_str()), (Some("discarded"), Some("a test call to our own number")), "{detail:#}");
    let page = get_json(&format!("{}/api/deliveries?state=discarded&limit=200", server.admin_url()));
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 12, "{page:#}");
    assert_eq!(get_json(&format!("{}/api/overview", server.admin_url()))["failed"], 0);
    // Each incident was told once when it opened and, once every failure was discarded, once
    // when it was over: nothing more however many checks ran meanwhile.
    wait_until(|| alerts_told(&receiver).len() >= 2 * keys.len());
    std::thread::sleep(Duration::from_millis(400));
    let resolved: Vec<(String, String)> = keys.iter().map(|k| ("resolved".to_string(), k.clone())).collect();
    let mut expected = opened.clone();
    expected.extend(resolved);
    let mut seen_told = alerts_told(&receiver);
    // Incidents open (and end) at their own checks: compare the openings, then the endings, as sets.
    for told in [&mut seen_told, &mut expected] {
        told[..keys.len()].sort();
        told[keys.len()..].sort();
    }
    assert_eq!(seen_told, expected, "the alerts told");
    assert!(receiver.caught().iter().all(|c| serde_json::from_slice::<Value>(&c.body).unwrap()["text"].is_string()), "a message without text");
    // HighLevel: the six before the outage, nothing after (a discard sends nothing).
    assert_eq!(mock.contacts().len(), 6);
    let requests = mock.requests().len();
    assert!(server.wait_idle(Duration::from_secs(5)));
    assert_eq!(mock.requests().len(), requests, "a discarded delivery was sent");
    server.shutdown();
}

/// Waits up to 20 s for `done`.
fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for the alerts");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The guide (`docs/console.md`) shows screenshots that exist, each of an element the page still
/// has: `![what](console/NAME.png "#element-id")`. A renamed view or a lost screenshot fails here.
#[test]
fn the_console_guide_shows_screenshots_of_elements_the_page_has() {
    // After the browser tests of this run, which rewrite the screenshots with UPDATE_SCREENSHOTS=1.
    let _one = one_browser();
    let guide = std::fs::read_to_string(repo().join("docs/console.md")).expect("docs/console.md");
    let page = std::fs::read_to_string(repo().join("host/src/serve/monitor.html")).unwrap();
    let mut shown = Vec::new();
    for (at, _) in guide.match_indices("](console/") {
        let rest = &guide[at + 2..];
        let end = rest.find(')').expect("a closed image link");
        let (file, title) = match rest[..end].split_once(' ') {
            Some((file, title)) => (file, title.trim().trim_matches('"')),
            None => (&rest[..end], ""),
        };
        assert!(file.ends_with(".png"), "{file}");
        let id = title.strip_prefix('#').unwrap_or_else(|| panic!("{file}: its title must name the element it shows, as \"#id\""));
        assert!(repo().join("docs").join(file).metadata().is_ok_and(|m| m.len() > 1000), "docs/{file} is missing (UPDATE_SCREENSHOTS=1 makes it)");
        assert!(page.contains(&format!("id=\"{id}\"")), "docs/console.md shows #{id} in {file}, which monitor.html no longer has");
        shown.push(file.to_string());
    }
    for view in ["history", "detail", "story", "replay-all", "charts", "phone"] {
        assert!(shown.contains(&format!("console/{view}.png")), "the guide does not show console/{view}.png");
    }
    // And every screenshot in docs/console/ is in the guide.
    for entry in std::fs::read_dir(repo().join("docs/console")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(shown.contains(&format!("console/{name}")), "docs/console/{name} is not in the guide");
    }
}
