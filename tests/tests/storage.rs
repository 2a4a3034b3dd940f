//! The host's stores on both backends, from one suite: each test runs on a SQLite file
//! (`…_on_sqlite`) and on a PostgreSQL database of the throwaway test server
//! (`…_on_postgres`; see `host_test::postgres`). Every store is opened the way the host opens
//! it, through a "path" that is a file or a `postgres://` URL, and each test asserts the state
//! left behind, read back through a new connection where it matters (what a restarted process
//! would find).

// The WIT-generated error is what the tests assert on; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use dialpad_ghl_host::backfill::{run, Backfills, Mode};
use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::backfill::Window;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::inbound::Source;
use dialpad_ghl_host::marketplace::{ReplayLedger as _, SqliteReplayLedger};
use dialpad_ghl_host::serve::inbox::{Arrival, Handled, Inbox, Status};
use dialpad_ghl_host::storage::db::{Db, Location, Value as DbValue};
use dialpad_ghl_host::storage::dead_letters::{replay_dead_letters, DeadLetters};
use dialpad_ghl_host::storage::lease::Leases;
use dialpad_ghl_host::storage::vault::{SecretKey, Vault};
use dialpad_ghl_host::tenants::store::TenantStore;
use dialpad_ghl_host::tenants::{HighLevelAuth, Tenant};
use e2e_tests::on_both_stores;
use e2e_tests::serve::{state_location, Store};
use e2e_tests::{fixture, plugin, quick_settings, SyncError, LOCATION, TOKEN};
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
use host_test::ghl_mock::{MockOptions, MockServer};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Every row of `sql`, read through a connection of its own (as another process would).
fn raw_rows(path: &Path, sql: &str) -> Vec<Vec<DbValue>> {
    let db = Db::open(&Location::of(path), "").unwrap();
    db.rows(sql, vec![]).unwrap().iter().map(|row| (0..row.len()).map(|i| row.get_ref(i).cloned().unwrap_or(DbValue::Null)).collect()).collect()
}

fn text(value: &DbValue) -> String {
    match value {
        DbValue::Text(t) => t.clone(),
        DbValue::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        DbValue::Integer(i) => i.to_string(),
        DbValue::Real(r) => r.to_string(),
        DbValue::Null => "NULL".into(),
    }
}

// The key-value store: the plugin's records.

on_both_stores!(key_value_records_are_set_read_listed_deleted_and_survive_a_reopen
    => key_value_records_are_set_read_listed_deleted_and_survive_a_reopen_on_sqlite,
       key_value_records_are_set_read_listed_deleted_and_survive_a_reopen_on_postgres);

fn key_value_records_are_set_read_listed_deleted_and_survive_a_reopen(store: Store) {
    let path = state_location(store, "storage-kv");
    let kv = KeyValueStore::open(&path).unwrap();
    assert!(kv.is_empty());
    assert_eq!(kv.try_get("call:1").unwrap(), None);
    kv.set("call:1", b"first");
    kv.set("call:1", b"second");
    kv.set("call:2", &[0, 159, 146, 150, 255]);
    kv.set("contact:+13125550187", b"{\"id\":\"c-1\"}");
    kv.try_delete("call:2").unwrap();
    kv.try_delete("never-set").unwrap();
    assert_eq!(kv.get("call:1").as_deref(), Some(&b"second"[..]));
    assert_eq!(kv.get("call:2"), None);
    assert_eq!(kv.keys(), ["call:1", "contact:+13125550187"], "sorted, the deleted one gone");

    // Tenants share a phone number and never a record.
    let (acme, globex) = (kv.namespaced("acme"), kv.namespaced("globex"));
    acme.set("contact:+13125550187", b"acme's");
    globex.set("contact:+13125550187", b"globex's");
    globex.set("call:9", b"globex's call");
    assert_eq!(acme.get("contact:+13125550187").as_deref(), Some(&b"acme's"[..]));
    // Several at once (`get-many`): in the order asked, the missing ones `None`, each tenant
    // its own records only.
    let asked = ["call:9", "never-set", "contact:+13125550187", "call:9"].map(String::from);
    assert_eq!(globex.try_get_many(&asked).unwrap(), [Some(b"globex's call".to_vec()), None, Some(b"globex's".to_vec()), Some(b"globex's call".to_vec())]);
    assert_eq!(acme.try_get_many(&asked).unwrap(), [None, None, Some(b"acme's".to_vec()), None]);
    assert_eq!(kv.try_get_many(&[]).unwrap(), Vec::<Option<Vec<u8>>>::new());
    assert_eq!(globex.keys(), ["call:9", "contact:+13125550187"]);
    assert_eq!(kv.keys(), ["call:1", "contact:+13125550187"], "the host's view lists no tenant's key");
    assert_eq!(globex.clear().unwrap(), 2, "an uninstalled tenant's records go");
    assert!(globex.is_empty());

    // Each write was committed when it returned: another connection sees it at once, and a
    // new process on the same database finds everything.
    let other = KeyValueStore::open(&path).unwrap();
    assert_eq!(other.get("call:1").as_deref(), Some(&b"second"[..]));
    drop((kv, acme, globex, other));
    let reopened = KeyValueStore::open(&path).unwrap();
    assert_eq!(reopened.keys(), ["call:1", "contact:+13125550187"]);
    assert_eq!(reopened.namespaced("acme").keys(), ["contact:+13125550187"]);
    assert_eq!(reopened.namespaced("globex").keys(), Vec::<String>::new());
    let rows = raw_rows(&path, "SELECT key, value FROM kv ORDER BY key");
    let rows: Vec<(String, String)> = rows.iter().map(|r| (text(&r[0]), text(&r[1]))).collect();
    assert_eq!(
        rows,
        [
            ("call:1".into(), "second".into()),
            ("contact:+13125550187".into(), "{\"id\":\"c-1\"}".into()),
            ("tenant/acme/contact:+13125550187".into(), "acme's".into())
        ]
    );
}

// Dead letters.

fn healthy_runtime(api: &MockServer, path: &Path) -> Runtime {
    Runtime::new(plugin(), quick_settings(&api.base_url(), LOCATION, TOKEN).runtime_options(true).unwrap(), KeyValueStore::open(path).unwrap()).unwrap()
}

on_both_stores!(dead_letters_are_recorded_counted_listed_replayed_and_removed
    => dead_letters_are_recorded_counted_listed_replayed_and_removed_on_sqlite,
       dead_letters_are_recorded_counted_listed_replayed_and_removed_on_postgres);

fn dead_letters_are_recorded_counted_listed_replayed_and_removed(store: Store) {
    let path = state_location(store, "storage-dead-letters");
    let letters = DeadLetters::open(&path).unwrap();
    assert!(letters.is_empty());
    assert_eq!(letters.bytes(), 0);
    let (missed, sms) = (fixture("call_inbound_missed.json"), fixture("sms_inbound.json"));
    let reset = SyncError::Transport("connection reset".into());
    letters.record("missed.json", Source::DialpadWebhook, &missed, &SyncError::Transport("timed out".into())).unwrap();
    letters.record("missed.json", Source::DialpadWebhook, &missed, &reset).unwrap();
    letters.record("sms.json", Source::DialpadWebhook, &sms, &reset).unwrap();
    // The same body failing for a tenant is that tenant's letter.
    let acme = letters.for_tenant("acme");
    acme.record("missed.json", Source::DialpadWebhook, &missed, &reset).unwrap();

    let listed = letters.list().unwrap();
    assert_eq!(listed.iter().map(|l| (l.name.as_str(), l.failures, l.tenant.as_str())).collect::<Vec<_>>(), [("missed.json", 2, ""), ("sms.json", 1, "")]);
    assert_eq!(listed[0].body, missed);
    assert_eq!(listed[0].error, json!({"type": "transport", "message": "connection reset"}), "the last error is kept");
    assert_eq!(acme.list().unwrap().len(), 1);
    assert_eq!(letters.list_all().unwrap().len(), 3);
    assert!(letters.bytes() >= (missed.len() * 2 + sms.len()) as u64, "{}", letters.bytes());

    // Kept across a reopen, with their counts.
    drop((letters, acme));
    let letters = DeadLetters::open(&path).unwrap();
    assert_eq!(letters.list().unwrap(), listed);

    // A replay against a healthy API gets both of the host's letters through and removes them;
    // the tenant's stays.
    let api = MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }).unwrap();
    let tally = replay_dead_letters(&healthy_runtime(&api, &path), &letters, |_, _| {}).unwrap();
    assert_eq!((tally.succeeded, tally.still_failing), (2, 0));
    assert!(letters.is_empty());
    assert_eq!(api.notes().len(), 2, "a note for the missed call and for the SMS");
    let acme = letters.for_tenant("acme");
    let left = acme.list().unwrap();
    assert_eq!(left.len(), 1);
    acme.remove(left[0].id).unwrap();
    assert!(letters.list_all().unwrap().is_empty());

    // `remove_body`, and pruning by age: a letter that failed just now is kept by a day's
    // retention and goes with none.
    letters.record("sms.json", Source::DialpadWebhook, &sms, &reset).unwrap();
    letters.record("missed.json", Source::DialpadWebhook, &missed, &reset).unwrap();
    letters.remove_body(&sms).unwrap();
    assert_eq!(letters.prune(Duration::from_secs(86_400)).unwrap(), 0);
    assert_eq!(letters.len(), 1);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(letters.prune(Duration::ZERO).unwrap(), 1);
    assert_eq!(letters.bytes(), 0);
    assert!(raw_rows(&path, "SELECT id FROM dead_letters").is_empty());
}

// Tenants and their sealed secrets.

fn tenant(id: &str) -> Tenant {
    Tenant {
        id: id.into(),
        location_id: format!("L-{id}"),
        company_id: None,
        name: format!("{id} Inc."),
        config: Default::default(),
        highlevel: HighLevelAuth::PrivateToken,
        scopes: Vec::new(),
        dialpad: None,
        created_ms: 0,
        updated_ms: 0,
    }
}

on_both_stores!(tenants_are_kept_and_their_secrets_sealed_bound_to_their_owner_and_erased
    => tenants_are_kept_and_their_secrets_sealed_bound_to_their_owner_and_erased_on_sqlite,
       tenants_are_kept_and_their_secrets_sealed_bound_to_their_owner_and_erased_on_postgres);

fn tenants_are_kept_and_their_secrets_sealed_bound_to_their_owner_and_erased(store: Store) {
    let path = state_location(store, "storage-tenants");
    let (old_key, new_key) = (SecretKey::generate(), SecretKey::generate());
    let tenants = TenantStore::open(&path, Some(Arc::new(Vault::new(old_key.clone(), vec![])))).unwrap();
    let generation = tenants.generation().unwrap();
    let first = tenants.put(&tenant("acme")).unwrap();
    tenants.put(&tenant("globex")).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    let again = tenants.put(&Tenant { name: "Acme Renamed".into(), ..tenant("acme") }).unwrap();
    assert_eq!(again.created_ms, first.created_ms, "a replaced tenant keeps its creation time");
    assert!(again.updated_ms > first.updated_ms);
    tenants.set_secret("tenant:acme", "highlevel_token", &Secret::new("pit-acme-plain")).unwrap();
    tenants.set_secret("tenant:globex", "highlevel_token", &Secret::new("pit-globex-plain")).unwrap();
    tenants.set_secret("agency:c1", "refresh", &Secret::new("refresh-plain")).unwrap();
    assert_eq!(tenants.generation().unwrap(), generation + 6, "every change counted");
    assert_eq!(
        tenants.list().unwrap().iter().map(|t| (t.id.as_str(), t.name.as_str())).collect::<Vec<_>>(),
        [("acme", "Acme Renamed"), ("globex", "globex Inc.")]
    );
    assert_eq!(tenants.get("globex").unwrap().unwrap().location_id, "L-globex");
    assert_eq!(tenants.get("initech").unwrap(), None);
    assert_eq!(tenants.secret("tenant:acme", "highlevel_token").unwrap().unwrap().expose(), "pit-acme-plain");
    assert_eq!(tenants.agencies().unwrap(), ["c1"]);

    // Sealed at rest.
    let sealed = raw_rows(&path, "SELECT owner, name, sealed FROM secrets ORDER BY owner");
    assert_eq!(sealed.len(), 3);
    assert!(sealed.iter().all(|r| !text(&r[2]).contains("plain")), "a secret is stored in the clear: {sealed:?}");
    // A sealed value copied to another owner's row does not open there.
    let db = Db::open(&Location::of(&path), "").unwrap();
    db.execute("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE owner = 'tenant:acme') WHERE owner = 'tenant:globex'", []).unwrap();
    assert!(tenants.secret("tenant:globex", "highlevel_token").is_err());
    tenants.set_secret("tenant:globex", "highlevel_token", &Secret::new("pit-globex-plain")).unwrap();

    // A key rotation reseals everything, in a new process that has both keys.
    drop(tenants);
    let rotating = TenantStore::open(&path, Some(Arc::new(Vault::new(new_key.clone(), vec![old_key.clone()])))).unwrap();
    assert_eq!(rotating.rotate().unwrap(), 3);
    assert_eq!(rotating.rotate().unwrap(), 0, "nothing left under the old key");
    drop(rotating);
    let tenants = TenantStore::open(&path, Some(Arc::new(Vault::new(new_key, vec![])))).unwrap();
    assert_eq!(tenants.secret("tenant:globex", "highlevel_token").unwrap().unwrap().expose(), "pit-globex-plain");
    let only_old = TenantStore::open(&path, Some(Arc::new(Vault::new(old_key, vec![])))).unwrap();
    assert!(only_old.secret("agency:c1", "refresh").is_err());

    // Removing a tenant erases its secrets.
    assert!(tenants.remove("acme").unwrap());
    assert!(!tenants.remove("acme").unwrap());
    assert_eq!(tenants.secret("tenant:acme", "highlevel_token").unwrap(), None);
    tenants.remove_secrets("agency:c1").unwrap();
    assert_eq!(tenants.agencies().unwrap(), Vec::<String>::new());
    assert_eq!(tenants.list().unwrap().iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["globex"]);
    let owners: Vec<String> = raw_rows(&path, "SELECT owner || '/' || name FROM secrets ORDER BY owner").iter().map(|r| text(&r[0])).collect();
    assert_eq!(owners, ["tenant:globex/highlevel_token"]);
}

// Backfill cursors.

/// 2026-03-10T00:00:00Z: the calls start after it.
const DAY: u64 = 1_773_100_800_000;
const DIALPAD_KEY: &str = "storage-test-dialpad-key";

on_both_stores!(an_interrupted_backfill_keeps_its_cursor_and_a_new_process_resumes_there
    => an_interrupted_backfill_keeps_its_cursor_and_a_new_process_resumes_there_on_sqlite,
       an_interrupted_backfill_keeps_its_cursor_and_a_new_process_resumes_there_on_postgres);

fn an_interrupted_backfill_keeps_its_cursor_and_a_new_process_resumes_there(store: Store) {
    let hangup = e2e_tests::serve::json_fixture("call_inbound_hangup_completed.json");
    let dialpad = DialpadMock::start(DialpadMockOptions { api_key: DIALPAD_KEY.into(), page_size: 5 }).unwrap();
    for i in 0..12u64 {
        let mut call = hangup.clone();
        let (started, number) = (DAY + 3_600_000 + i * 60_000, format!("+1206555{:04}", 4000 + i));
        call["call_id"] = json!(7_400_000_000_000_000u64 + i);
        call["date_started"] = json!(started);
        call["date_connected"] = json!(started + 5_000);
        call["date_ended"] = json!(started + 120_000);
        call["external_number"] = json!(number);
        call["contact"]["phone"] = json!(number);
        call["contact"]["id"] = json!(5_400_000_000_000_000u64 + i);
        dialpad.add_call(call);
    }
    let api = MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }).unwrap();
    let mut settings = quick_settings(&api.base_url(), LOCATION, TOKEN);
    settings.set("dialpad_api_base", dialpad.base_url());
    settings.dialpad_key = Some(Secret::new(DIALPAD_KEY));
    let path = state_location(store, "storage-backfills");
    let runtime = Runtime::new(plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&path).unwrap()).unwrap();
    let window = Window { started_after: DAY, started_before: Some(DAY + 86_400_000) };

    // A tenant's unfinished run of the same window is its own.
    let tenant = Backfills::for_tenant(&path, "acme").unwrap();
    let stopped = run(&runtime, Some(&tenant), window, Mode::Sync, |_, _| dialpad.fail_with(Some(503))).unwrap();
    assert_eq!(stopped.expect_err("page 2 cannot be fetched").0.pages, 1);
    dialpad.fail_with(None);

    let kept = Backfills::open(&path).unwrap();
    let stopped = run(&runtime, Some(&kept), window, Mode::Sync, |progress, _| {
        if progress.pages == 2 {
            dialpad.fail_with(Some(503));
        }
    })
    .unwrap();
    let (progress, _) = stopped.expect_err("page 3 cannot be fetched");
    assert_eq!((progress.pages, progress.fetched), (2, 10));
    dialpad.fail_with(None);
    let rows = raw_rows(&path, "SELECT started_after, started_before, cursor, progress FROM backfills");
    assert_eq!(rows.len(), 1);
    assert_eq!((text(&rows[0][0]), text(&rows[0][1])), (DAY.to_string(), (DAY + 86_400_000).to_string()));
    assert!(!matches!(rows[0][2], DbValue::Null), "the cursor of page 3 is kept: {rows:?}");
    let tenant_rows = raw_rows(&path, "SELECT tenant, progress FROM tenant_backfills");
    assert_eq!(tenant_rows.len(), 1);
    assert_eq!(text(&tenant_rows[0][0]), "acme");

    // A new process resumes at page 3: the first page is not asked for again.
    drop(kept);
    let first_pages = || dialpad.requests().iter().filter(|r| !r.path_and_query.contains("cursor=")).count();
    let before = first_pages();
    let kept = Backfills::open(&path).unwrap();
    let done = run(&runtime, Some(&kept), window, Mode::Sync, |_, _| {}).unwrap().unwrap_or_else(|(_, e)| panic!("{e:?}"));
    // (The tenant's run synced page 1 on the same records: those calls are unchanged here.)
    assert_eq!((done.pages, done.fetched, done.synced + done.unchanged, done.failed, done.done), (3, 12, 12, 0, true), "{done:?}");
    assert_eq!(first_pages(), before, "the backfill started over instead of resuming");
    assert_eq!(api.contacts().len(), 12);
    let progress: serde_json::Value = serde_json::from_str(&text(&raw_rows(&path, "SELECT progress FROM backfills")[0][0])).unwrap();
    assert_eq!((progress["done"].as_bool(), progress["fetched"].as_u64()), (Some(true), Some(12)), "{progress}");
}

// The marketplace's replay ledger.

on_both_stores!(the_replay_ledger_refuses_a_repeat_forgets_after_two_windows_and_one_of_racing_workers_wins
    => the_replay_ledger_refuses_a_repeat_forgets_after_two_windows_and_one_of_racing_workers_wins_on_sqlite,
       the_replay_ledger_refuses_a_repeat_forgets_after_two_windows_and_one_of_racing_workers_wins_on_postgres);

fn the_replay_ledger_refuses_a_repeat_forgets_after_two_windows_and_one_of_racing_workers_wins(store: Store) {
    const WINDOW: Duration = Duration::from_secs(300);
    let path = state_location(store, "storage-replay-ledger");
    let mut ledger = SqliteReplayLedger::open(&path, WINDOW).unwrap();
    assert!(ledger.is_empty().unwrap());
    assert!(ledger.first_time("w-1", 1_000_000).unwrap());
    assert!(!ledger.first_time("w-1", 1_000_001).unwrap());
    assert!(ledger.first_time("w-2", 1_000_002).unwrap());
    // Kept across a reopen.
    drop(ledger);
    let mut ledger = SqliteReplayLedger::open(&path, WINDOW).unwrap();
    assert!(!ledger.first_time("w-2", 1_000_003).unwrap());
    // Still remembered just inside two windows, forgotten after.
    assert!(!ledger.first_time("w-1", 1_000_000 + 600_000).unwrap());
    assert!(ledger.first_time("w-3", 1_000_000 + 600_001).unwrap());
    assert!(ledger.first_time("w-1", 1_000_000 + 600_003).unwrap());
    assert_eq!(ledger.len().unwrap(), 2, "w-2 went with the pruning; w-1 and w-3 are left");
    ledger.forget("w-3").unwrap();
    assert!(ledger.first_time("w-3", 1_000_000 + 600_004).unwrap(), "a forgotten id is new again");

    // Eight workers, each with its own connection, given the same ids at once: one of them
    // takes each.
    let taken = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (path, taken, barrier) = (path.clone(), taken.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut ledger = SqliteReplayLedger::open(&path, WINDOW).unwrap();
                barrier.wait();
                for i in 0..20 {
                    if ledger.first_time(&format!("race-{i}"), 1_000_000 + 600_010).unwrap() {
                        taken.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(taken.load(Ordering::SeqCst), 20, "each id was new to exactly one worker");
    assert_eq!(ledger.len().unwrap(), 22, "w-1, w-3 and the 20 raced ids");
}

// Leases.

on_both_stores!(a_lease_is_one_holders_and_eight_racing_holders_never_share_it
    => a_lease_is_one_holders_and_eight_racing_holders_never_share_it_on_sqlite,
       a_lease_is_one_holders_and_eight_racing_holders_never_share_it_on_postgres);

fn a_lease_is_one_holders_and_eight_racing_holders_never_share_it(store: Store) {
    let location = Location::of(&state_location(store, "storage-leases"));
    let leases = Leases::open(&location).unwrap();
    let long = Duration::from_secs(60);
    assert!(leases.try_hold("reconcile", "a", long).unwrap());
    assert!(leases.try_hold("reconcile", "a", long).unwrap(), "its holder extends it");
    assert!(!leases.try_hold("reconcile", "b", long).unwrap());
    assert_eq!(leases.holder("reconcile").unwrap().as_deref(), Some("a"));
    leases.release("reconcile", "b").unwrap();
    assert_eq!(leases.holder("reconcile").unwrap().as_deref(), Some("a"), "only its holder releases it");
    leases.release("reconcile", "a").unwrap();
    assert_eq!(leases.holder("reconcile").unwrap(), None);
    // A lease that runs out is anyone's.
    assert!(leases.try_hold("retention", "b", Duration::from_millis(30)).unwrap());
    assert!(!leases.try_hold("retention", "a", long).unwrap());
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(leases.holder("retention").unwrap(), None);
    assert!(leases.try_hold("retention", "a", long).unwrap());
    // A heartbeat renews every lease of its holder; a stopping replica gives them all up.
    assert!(leases.try_hold("lane:phone:+1", "a", Duration::from_millis(30)).unwrap());
    assert_eq!(leases.renew_all("a", long).unwrap(), 2);
    std::thread::sleep(Duration::from_millis(60));
    assert!(!leases.try_hold("lane:phone:+1", "b", long).unwrap(), "renewed, so still a's");
    assert_eq!(leases.release_all("a").unwrap(), 2);
    assert_eq!((leases.holder("retention").unwrap(), leases.holder("lane:phone:+1").unwrap()), (None, None));

    // Eight holders, each with its own connection, racing for one name: never two at once.
    let inside = Arc::new(AtomicUsize::new(0));
    let (most, held) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let barrier = Arc::new(Barrier::new(8));
    let holders: Vec<_> = (0..8)
        .map(|i| {
            let (location, inside, most, held, barrier) = (location.clone(), inside.clone(), most.clone(), held.clone(), barrier.clone());
            std::thread::spawn(move || {
                let leases = Leases::open(&location).unwrap();
                let me = format!("replica-{i}");
                barrier.wait();
                for _ in 0..60 {
                    if leases.try_hold("race", &me, long).unwrap() {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        held.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(leases.holder("race").unwrap().as_deref(), Some(me.as_str()));
                        std::thread::sleep(Duration::from_micros(200));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        leases.release("race", &me).unwrap();
                    }
                }
            })
        })
        .collect();
    for holder in holders {
        holder.join().unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two holders held the lease at once");
    assert!(held.load(Ordering::SeqCst) >= 8, "the lease changed hands: {} holds", held.load(Ordering::SeqCst));
    assert_eq!(leases.holder("race").unwrap(), None);
}

// The inbox.

fn arrival<'a>(name: &'a str, body: &'a [u8], lane: &'a str) -> Arrival<'a> {
    Arrival { tenant: "", source: Source::DialpadWebhook, name, body, kind: "call", lane, replay_of: None }
}

fn handled(status: Status, outcome: &str) -> Handled {
    Handled { status, outcome: json!({"outcome": outcome, "event_key": "k", "operations": []}), plan: json!({"plan": []}), http: json!([]), duration_ms: 3 }
}

on_both_stores!(the_inbox_keeps_accepted_deliveries_and_hands_out_one_per_lane_in_order
    => the_inbox_keeps_accepted_deliveries_and_hands_out_one_per_lane_in_order_on_sqlite,
       the_inbox_keeps_accepted_deliveries_and_hands_out_one_per_lane_in_order_on_postgres);

fn the_inbox_keeps_accepted_deliveries_and_hands_out_one_per_lane_in_order(store: Store) {
    let path = state_location(store, "storage-inbox");
    let inbox = Inbox::open(&path).unwrap();
    let a1 = inbox.accept(arrival("a1", b"{\"n\":\"a1\"}", "phone:+1")).unwrap();
    let a2 = inbox.accept(arrival("a2", b"{\"n\":\"a2\"}", "phone:+1")).unwrap();
    let b1 = inbox.accept(arrival("b1", b"{\"n\":\"b1\"}", "phone:+2")).unwrap();
    assert!(a1 < a2 && a2 < b1);
    assert_eq!(inbox.queued().unwrap(), 3);

    // The oldest first; a lane's next waits while the lane is busy, another lane does not.
    let first = inbox.claim().unwrap().unwrap();
    assert_eq!((first.id, first.name.as_str(), first.body.as_slice(), first.attempts), (a1, "a1", &b"{\"n\":\"a1\"}"[..], 0));
    let second = inbox.claim().unwrap().unwrap();
    assert_eq!(second.id, b1, "a2 waits behind a1 on its lane");
    inbox.finish(&second, &handled(Status::Done, "synced")).unwrap();
    // A try that failed goes back, due again after its delay, and is handed out again.
    inbox.retry_later(&first, &handled(Status::Failed, "upstream"), Duration::from_millis(20)).unwrap();
    let again = inbox.claim().unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (a1, 1));
    inbox.finish(&again, &handled(Status::Done, "synced")).unwrap();
    assert_eq!(inbox.queued().unwrap(), 1);
    let row = inbox.get(a1).unwrap().unwrap();
    assert_eq!((row["status"].as_str(), row["attempts"].as_i64()), (Some("done"), Some(2)), "{row}");
    assert_eq!(row["tries"].as_array().map(Vec::len), Some(2), "{row}");

    // Accepted is kept: a new process finds a2 queued and hands it out.
    drop(inbox);
    let inbox = Inbox::open(&path).unwrap();
    assert_eq!(inbox.queued().unwrap(), 1);
    let last = inbox.claim().unwrap().unwrap();
    assert_eq!((last.id, last.lane.as_str()), (a2, "phone:+1"));
    inbox.finish(&last, &handled(Status::Done, "unchanged")).unwrap();
    assert_eq!(inbox.queued().unwrap(), 0);
    let statuses: Vec<(i64, String)> =
        inbox.recent(10).unwrap().iter().map(|e| (e["id"].as_i64().unwrap(), e["status"].as_str().unwrap().to_string())).collect();
    assert_eq!(statuses, [(b1, "done".to_string()), (a2, "done".to_string()), (a1, "done".to_string())]);
    assert_eq!(inbox.route_of("", b"{\"n\":\"b1\"}").unwrap(), Some(("call".to_string(), "phone:+2".to_string())));
    inbox.stop();
    assert!(inbox.claim().unwrap().is_none(), "a stopped inbox hands out nothing");
    let rows = raw_rows(&path, "SELECT id, status FROM inbox ORDER BY id");
    assert_eq!(
        rows.iter().map(|r| (text(&r[0]), text(&r[1]))).collect::<Vec<_>>(),
        [(a1.to_string(), "done".into()), (a2.to_string(), "done".into()), (b1.to_string(), "done".into())]
    );
}
