//! Backfill and reconciliation: Dialpad's call listing (the Dialpad mock) through the plugin
//! into the Contacts API (the HighLevel mock), compared with the same calls delivered as
//! webhooks.

use dialpad_ghl_host::backfill::{run, Backfills, Mode, Progress};
use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::backfill::Window;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::{CompiledPlugin, Runtime};
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::settings::{Reconcile, Settings};
use e2e_tests::Events;
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
use host_test::ghl_mock::{Holdings, MockOptions, MockServer};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");
const TOKEN: &str = "backfill-test-token";
const DIALPAD_KEY: &str = "backfill-test-dialpad-key";
const LOCATION: &str = "loc-backfill";
/// 2026-03-10T00:00:00Z: the calls start after it.
const DAY: u64 = 1_773_100_800_000;

fn plugin() -> &'static CompiledPlugin {
    static PLUGIN: OnceLock<CompiledPlugin> = OnceLock::new();
    PLUGIN.get_or_init(|| CompiledPlugin::from_file(Path::new(artifacts::PLUGIN_WASM)).unwrap())
}

/// `n` concluded calls on 2026-03-10, one a minute: 3 of every 4 from a new caller, the fourth
/// a second call from the caller before it.
fn calls(n: usize) -> Vec<Value> {
    let hangup: Value = serde_json::from_slice(&std::fs::read(format!("{FIXTURES}call_inbound_hangup_completed.json")).unwrap()).unwrap();
    (0..n)
        .map(|i| {
            let caller = i - usize::from(i % 4 == 3);
            let number = format!("+1206555{:04}", 3000 + caller);
            let mut call = hangup.clone();
            let started = DAY + 3_600_000 + i as u64 * 60_000;
            call["call_id"] = json!(7_300_000_000_000_000u64 + i as u64);
            call["date_started"] = json!(started);
            call["date_connected"] = json!(started + 5_000);
            call["date_ended"] = json!(started + 120_000);
            call["external_number"] = json!(number);
            call["contact"]["phone"] = json!(number);
            call["contact"]["id"] = json!(5_300_000_000_000_000u64 + caller as u64);
            call
        })
        .collect()
}

fn highlevel() -> MockServer {
    MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }).unwrap()
}

fn dialpad(calls: &[Value], page_size: usize) -> DialpadMock {
    let dialpad = DialpadMock::start(DialpadMockOptions { api_key: DIALPAD_KEY.into(), page_size }).unwrap();
    for call in calls {
        dialpad.add_call(call.clone());
    }
    dialpad
}

fn settings(api: &MockServer, dialpad: Option<&DialpadMock>) -> Settings {
    let mut settings = e2e_tests::quick_settings(&api.base_url(), LOCATION, TOKEN);
    if let Some(dialpad) = dialpad {
        settings.set("dialpad_api_base", dialpad.base_url());
        settings.dialpad_key = Some(Secret::new(DIALPAD_KEY));
    }
    settings
}

fn runtime(settings: &Settings, kv: KeyValueStore) -> Runtime {
    Runtime::new(plugin(), settings.runtime_options(true).unwrap(), kv).unwrap()
}

/// The calls delivered as webhooks, in order, on a fresh location: what a backfill must match.
fn webhook_holdings(calls: &[Value]) -> (Holdings, usize) {
    let api = highlevel();
    let runtime = runtime(&settings(&api, None), KeyValueStore::new());
    for call in calls {
        runtime.handle_webhook(call.to_string().as_bytes()).unwrap().unwrap();
    }
    (api.holdings(), api.requests().iter().filter(|r| r.method == "POST").count())
}

const WINDOW: Window = Window { started_after: DAY, started_before: Some(DAY + 86_400_000) };

fn backfill(runtime: &Runtime, kept: Option<&Backfills>) -> Progress {
    run(runtime, kept, WINDOW, Mode::Sync, |_, _| {}).unwrap().unwrap_or_else(|(_, e)| panic!("{e:?}"))
}

#[test]
fn a_backfill_reproduces_the_webhook_state_and_a_second_run_changes_nothing() {
    let calls = calls(30);
    let (expected, expected_posts) = webhook_holdings(&calls);
    let (api, dialpad) = (highlevel(), dialpad(&calls, 7));
    let runtime = runtime(&settings(&api, Some(&dialpad)), KeyValueStore::new());
    let progress = backfill(&runtime, None);
    assert_eq!((progress.pages, progress.fetched, progress.synced, progress.failed, progress.done), (5, 30, 30, 0, true), "{progress:?}");
    assert_eq!(api.holdings(), expected);
    assert_eq!(api.requests().iter().filter(|r| r.method == "POST").count(), expected_posts);
    // The Dialpad key went to Dialpad only, the HighLevel token to HighLevel only.
    let log = runtime.http_log().entries();
    let authorized =
        |host: &str| log.iter().filter(|e| e.url.starts_with(host)).all(|e| e.request_headers.iter().any(|(k, v)| k == "authorization" && v == "[redacted]"));
    assert!(authorized(&dialpad.base_url()) && authorized(&api.base_url()));
    assert!(dialpad.requests().iter().all(|r| r.status == 200), "{:?}", dialpad.requests());

    let before = api.requests().len();
    let again = backfill(&runtime, None);
    assert_eq!((again.fetched, again.synced, again.unchanged), (30, 0, 30), "{again:?}");
    assert_eq!(api.requests().len(), before, "a second backfill sent requests to HighLevel");
    assert_eq!(api.holdings(), expected);
}

#[test]
fn calls_synced_by_webhook_are_not_synced_again_by_the_backfill() {
    let calls = calls(24);
    let (expected, expected_posts) = webhook_holdings(&calls);
    let (api, dialpad) = (highlevel(), dialpad(&calls, 10));
    let runtime = runtime(&settings(&api, Some(&dialpad)), KeyValueStore::new());
    for call in &calls[..12] {
        runtime.handle_webhook(call.to_string().as_bytes()).unwrap().unwrap();
    }
    let progress = backfill(&runtime, None);
    assert_eq!((progress.fetched, progress.synced, progress.unchanged), (24, 12, 12), "{progress:?}");
    assert_eq!(api.holdings(), expected);
    assert_eq!(api.requests().iter().filter(|r| r.method == "POST").count(), expected_posts, "a create was sent twice");
}

#[test]
fn an_interrupted_backfill_resumes_at_the_page_it_stopped_on() {
    let calls = calls(30);
    let (expected, _) = webhook_holdings(&calls);
    let (api, dialpad) = (highlevel(), dialpad(&calls, 7));
    let db = host_test::support::scratch_dir("backfill-resume").join("state.db");
    let kept = Backfills::open(&db).unwrap();
    let runtime = runtime(&settings(&api, Some(&dialpad)), KeyValueStore::open(&db).unwrap());
    // Dialpad stops answering after the second page.
    let stopped = run(&runtime, Some(&kept), WINDOW, Mode::Sync, |progress, _| {
        if progress.pages == 2 {
            dialpad.fail_with(Some(503));
        }
    })
    .unwrap();
    let (progress, error) = stopped.expect_err("the third page cannot be fetched");
    assert_eq!((progress.pages, progress.fetched, progress.synced), (2, 14, 14), "{progress:?} {error:?}");
    dialpad.fail_with(None);
    let first_page_requests = || dialpad.requests().iter().filter(|r| !r.path_and_query.contains("cursor=")).count();
    assert_eq!(first_page_requests(), 1);

    // A new process on the same state: it goes on from page 3.
    drop(kept);
    let kept = Backfills::open(&db).unwrap();
    let progress = backfill(&runtime, Some(&kept));
    assert_eq!((progress.pages, progress.fetched, progress.synced, progress.done), (5, 30, 30, true), "{progress:?}");
    assert_eq!(first_page_requests(), 1, "the backfill started over instead of resuming");
    assert_eq!(api.holdings(), expected);
    // Finished: the same window again lists everything, and changes nothing.
    let before = api.requests().len();
    let again = backfill(&runtime, Some(&kept));
    assert_eq!((again.fetched, again.unchanged), (30, 30));
    assert_eq!(api.requests().len(), before);
}

#[test]
fn a_dry_run_plans_each_call_and_sends_nothing_to_highlevel() {
    let calls = calls(8);
    let (api, dialpad) = (highlevel(), dialpad(&calls, 5));
    let runtime = runtime(&settings(&api, Some(&dialpad)), KeyValueStore::new());
    let mut lines = Vec::new();
    let progress = run(&runtime, None, WINDOW, Mode::DryRun, |_, page| lines.extend_from_slice(page)).unwrap().unwrap();
    assert_eq!((progress.pages, progress.fetched), (2, 8));
    assert_eq!(lines.len(), 8);
    assert!(lines.iter().all(|l| l["dry_run"] == true && l["plan"].as_array().is_some_and(|p| !p.is_empty())), "{lines:#?}");
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}

#[test]
fn the_schedule_in_serve_catches_a_call_whose_webhook_never_came() {
    let calls = calls(3);
    let (api, dialpad) = (highlevel(), dialpad(&calls[..1], 25));
    let db = host_test::support::scratch_dir("backfill-reconcile").join("state.db");
    let runtime = runtime(&settings(&api, Some(&dialpad)), KeyValueStore::open(&db).unwrap());
    let server = Server::start(
        runtime,
        &db,
        dialpad_ghl_host::storage::dead_letters::DeadLetters::open(&db).unwrap(),
        ServeOptions {
            // The calls are from March; the window reaches back a year.
            reconcile: Some(Reconcile { every: Duration::from_millis(200), window: Duration::from_secs(366 * 86_400) }),
            ..e2e_tests::serve::loopback_options()
        },
    )
    .unwrap();
    // The second call arrives by webhook; the first and third only in Dialpad's listing.
    let (status, _) =
        host_test::support::loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), calls[1].to_string().as_bytes()).unwrap();
    assert_eq!(status, 200);
    // Handled before Dialpad's listing shows it, so the count below is the reconciliation's own:
    // were both at once, either could be the one that writes (and the holdings would still match).
    assert!(server.wait_idle(Duration::from_secs(20)));
    dialpad.add_call(calls[1].clone());
    dialpad.add_call(calls[2].clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.notes().len() < 3 {
        assert!(Instant::now() < deadline, "the reconciliation did not catch the calls: {} notes", api.notes().len());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Passes go on every 200 ms: give a few more, then nothing may have been written twice.
    std::thread::sleep(Duration::from_millis(700));
    let (expected, expected_posts) = webhook_holdings(&calls);
    assert_eq!(api.holdings(), expected);
    assert_eq!(api.requests().iter().filter(|r| r.method == "POST").count(), expected_posts);
    let (_, metrics) = host_test::support::loopback_request("GET", &format!("{}/metrics", server.admin_url()), b"").unwrap();
    assert!(metrics.contains("dialpad_ghl_reconciled_calls_total{outcome=\"synced\"} 2"), "{metrics}");
    assert!(dialpad.requests().len() >= 3, "{:?}", dialpad.requests());
}
