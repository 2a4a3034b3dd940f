//! The CLI as a user runs it: `demo`, `replay` (JSON lines, dry run) and `mock`, as separate
//! processes talking over loopback.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dialpad-ghl");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");
const TOKEN: &str = "cli-test-token-93c1";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}{name}")
}

/// The CLI with the credentials of the environment removed.
fn host() -> Command {
    let mut command = Command::new(BIN);
    command.env_remove("GHL_TOKEN").env_remove("DIALPAD_WEBHOOK_SECRET");
    command
}

fn run(args: &[&str]) -> Output {
    let out = host().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A `host-test mock` process, killed on drop.
struct MockProcess {
    child: Child,
    base: String,
}

impl MockProcess {
    fn start() -> MockProcess {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(BIN).args(["mock", "--listen", &format!("127.0.0.1:{port}"), "--token", TOKEN]).stdout(Stdio::piped()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(first.starts_with("mock Contacts API on http://127.0.0.1:"), "{first}");
        MockProcess { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// GETs one of the mock's debug routes.
    fn debug(&self, path: &str) -> Value {
        let addr = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap()
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn replay_against_a_mock_process_prints_one_json_line_per_event() {
    let mock = MockProcess::start();
    let files = ["call_inbound_ringing_unknown_number.json", "call_inbound_hangup_completed.json", "call_recap_summary.json", "sms_inbound.json"];
    let mut args = vec!["-v", "replay", "--api-base", &mock.base, "--token", TOKEN, "--location-id", "loc-cli"];
    let paths: Vec<String> = files.iter().map(|f| fixture(f)).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = run(&args);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4);
    let outcomes: Vec<&str> = lines.iter().map(|l| l["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, vec!["skipped", "synced", "synced", "synced"]);
    // Against an API this process does not own, the plugin may not trust its store's memory:
    // it looks for the call's note before writing (get-all-notes), and so writes exactly one.
    let ops = |i: usize| -> Vec<String> {
        lines[i]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{} {} {} → {} ×{}",
                    o["operation_id"].as_str().unwrap(),
                    o["method"].as_str().unwrap(),
                    o["path"].as_str().unwrap(),
                    o["status"],
                    o["attempts"]
                )
            })
            .collect()
    };
    assert_eq!(
        ops(1),
        vec![
            "get-duplicate-contact GET /contacts/search/duplicate?locationId=loc-cli&number=%2B13125550187 → 200 ×1",
            "create-contact POST /contacts/ → 201 ×1",
            "create-note POST /contacts/contact0000000000001/notes → 201 ×1",
        ]
    );
    assert_eq!(
        ops(2),
        vec![
            "update-note PUT /contacts/contact0000000000001/notes/note0000000000000001 → 200 ×1",
            // Without a store it may trust, the plugin reads the tasks before making any.
            "get-all-tasks GET /contacts/contact0000000000001/tasks → 200 ×1",
            "create-task POST /contacts/contact0000000000001/tasks → 201 ×1",
            "create-task POST /contacts/contact0000000000001/tasks → 201 ×1",
        ]
    );
    // The SMS is from the same caller: the contact link is known, and without a durable store
    // the plugin looks for the message's note before writing it.
    assert_eq!(
        ops(3),
        vec!["get-all-notes GET /contacts/contact0000000000001/notes → 200 ×1", "create-note POST /contacts/contact0000000000001/notes → 201 ×1",]
    );

    let state = mock.debug("/__mock/state");
    assert_eq!(state["contacts"].as_array().unwrap().len(), 1);
    assert_eq!(state["notes"].as_array().unwrap().len(), 2);
    // The outbound log (stderr, -v) shows every request, and never the token.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.matches(" → 20").count(), 9, "{stderr}");
    assert!(!stderr.contains(TOKEN) && !String::from_utf8_lossy(&out.stdout).contains(TOKEN));

    // A second replay of the same events, in a new process, writes nothing new.
    let again = json_lines(&run(&args));
    assert_eq!(again[1]["outcome"], "unchanged");
    assert_eq!(again[3]["outcome"], "unchanged");
    let state = mock.debug("/__mock/state");
    assert_eq!(state["notes"].as_array().unwrap().len(), 2);
}

#[test]
fn dry_run_prints_the_plan_and_sends_nothing() {
    let mock = MockProcess::start();
    let out = run(&["replay", "--dry-run", "--api-base", &mock.base, "--location-id", "L", &fixture("call_inbound_missed.json")]);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["dry_run"], true);
    let plan: Vec<&str> = lines[0]["plan"].as_array().unwrap().iter().map(|o| o["operation_id"].as_str().unwrap()).collect();
    assert_eq!(plan, vec!["get-duplicate-contact", "get-duplicate-contact", "create-contact", "get-all-notes", "update-note", "create-note"]);
    assert_eq!(lines[0]["plan"][1]["path"], "/contacts/search/duplicate?locationId=L&email=dana.whitfield%40example.org");
    assert_eq!(lines[0]["plan"][2]["body"]["firstName"], "Dana");
    assert!(mock.debug("/__mock/requests").as_array().unwrap().is_empty());
}

#[test]
fn replay_with_the_embedded_mock_and_a_bad_event() {
    let dir = host_test::support::scratch_dir("cli-bad");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"call_id": 7, "state": "hangup", "external_number": "not a number"}"#).unwrap();
    let out = host().args(["replay", "--mock", &fixture("call_inbound_hangup_completed.json"), bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a failed event fails the command");
    let lines = json_lines(&out);
    assert_eq!(lines[0]["outcome"], "synced");
    assert_eq!(lines[1]["outcome"], "failed");
    assert_eq!(lines[1]["error"]["type"], "malformed-event");
    assert!(lines[1]["error"]["message"].as_str().unwrap().starts_with("no usable phone number"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 2 events failed"));
}

#[test]
fn a_bad_configuration_fails_once_before_any_event() {
    let dir = host_test::support::scratch_dir("cli-bad-config");
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"location_id": "L", "time_zone": "Moon/Base"}"#).unwrap();
    let events = [fixture("call_inbound_missed.json"), fixture("call_inbound_hangup_completed.json"), fixture("sms_inbound.json")];
    let out = host().args(["replay", "--mock", "--config", config.to_str().unwrap()]).args(&events).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no event was handled: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("unknown time zone").count(), 1, "said once: {stderr}");
    assert!(stderr.contains("the configuration is invalid") && stderr.contains("/time_zone"), "{stderr}");
}

#[test]
fn demo_syncs_the_bundled_day_of_calls() {
    let out = run(&["demo"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("30 events: 20 synced, 6 unchanged, 2 skipped, 2 failed"), "{stdout}");
    assert!(
        stdout.contains(
            "67 HighLevel API requests, 5 Dialpad API requests (1 screen pop, 2 share links, 1 contact, 1 call); 4 contacts, 8 notes, 6 tasks, 5 call entries; tokens in host logs: never"
        ),
        "{stdout}"
    );
    // Each workflow shows: rules, tags, the mapping's custom field, platform events, the view.
    for shown in [
        "rules: billing interest, send pricing after long calls, recap action items",
        "rules: return voicemails",
        "rules: quote by sms",
        "tags: missed-call, dialpad, dialpad-deleted",
        r#"custom fields: [{"id":"jobTitleFieldId01","value":"Operations Manager"}]"#,
        "task task0000000000000006 [done] due 2026-03-16T09:00:00-05:00: Prepare Whitfield renewal (3-year option)",
        "4 requests were in flight at once on the mock",
        "from cache (0 s old), 0 requests",
        "1 appointments",
        // The workflows that write where people look, one line each.
        "screen pop → Maya Patel: https://app.gohighlevel.com/v2/location/demo-location/contacts/detail/contact0000000000002  (Priya rings again: synced [screen_pop.initiate 200])",
        r#"HighLevel contact edit (Kenji's company) → Dialpad contact uid-contact0000000000001 (uid contact0000000000001) has company "Watanabe Design": synced [contacts.create_with_uid 200]; Dialpad's echo: unchanged"#,
        r#"Dialpad contact edit (Kenji's e-mail) → HighLevel contact contact0000000000001 has email "kenji@watanabe-design.example": synced [update-contact 200]; HighLevel's echo: unchanged"#,
        "click-to-call → Dialpad call 6100000000000001 for contact contact0000000000001 (Kenji Watanabe's mobile +15035550188), custom_data highlevel-contact:contact0000000000001",
        "its hangup → contact contact0000000000001 by its custom_data, no phone search: synced [search-conversation 200, add-an-outbound-message 200, create-note 201]",
        "call 4617205983150080 (outbound completed) → call entry msg00000000000000002 in conversation conv0000000000000002 of Kenji Watanabe, recording attached; its note names it",
        "call 6307351874682880 (inbound voicemail) → call entry msg00000000000000004 in conversation conv0000000000000004 of +17375550166, recording attached; its note names it",
        "owners by the agent's e-mail → Maya Patel (user hl-user-maya): 4 notes, 5 tasks; Jordan Lee (user hl-user-jordan): 1 note, 0 tasks; HighLevel's users read 2 times",
        "Call back Dana Whitfield (assigned to Maya Patel)",
    ] {
        assert!(stdout.contains(shown), "{shown}\n{stdout}");
    }
    assert_eq!(stdout.matches("; its note names it").count(), 5, "{stdout}");
}

#[test]
fn validate_config_reports_every_problem_with_its_path_in_json_and_toml() {
    let dir = host_test::support::scratch_dir("cli-config");
    let json = dir.join("bad.json");
    std::fs::write(&json, r#"{"location_id":"L","time_zone":"Moon/Base","tag_rules":[{"name":"t","when":{"keywords":["x"]}}]}"#).unwrap();
    let out = host().args(["validate-config", json.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("bad.json: /time_zone: unknown time zone"), "{stdout}");
    assert!(stdout.contains("bad.json: /tag_rules/0: a tag rule needs tags to add or to remove"), "{stdout}");

    let toml = dir.join("good.toml");
    std::fs::write(&toml, "location_id = \"L\"\ntime_zone = \"Europe/Berlin\"\n\n[[follow_up_rules]]\nname = \"cb\"\nwhen = { outcomes = [\"missed\"] }\ntask = { title = \"Call {{contact_name}} back\", due = { next_day_at = \"09:00\" } }\n").unwrap();
    let out = host().args(["validate-config", toml.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.toml: valid"));

    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../host-test/demo-events/demo-config.json");
    assert!(host().args(["validate-config", demo]).output().unwrap().status.success());

    // The keys the host reads itself are valid too: one reader decides for `serve` and for this.
    let host_keys = dir.join("host-keys.toml");
    std::fs::write(
        &host_keys,
        "location_id = \"L\"\ntoken = \"t\"\ndialpad_api_key = \"k\"\n\n[oauth]\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"r\"\n\n[reconcile]\nevery_seconds = 900\nwindow_seconds = 86400\n\n[rate_limit]\nrequests = 50\nper_seconds = 10\n",
    )
    .unwrap();
    let out = host().args(["validate-config", host_keys.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let bad_host_key = dir.join("bad-host-key.json");
    std::fs::write(&bad_host_key, r#"{"location_id": "L", "rate_limit": {"requests": 0, "per_seconds": 10}}"#).unwrap();
    let out = host().args(["validate-config", bad_host_key.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rate_limit needs requests > 0"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn replay_takes_platform_events_and_view_prints_the_contact() {
    let dir = host_test::support::scratch_dir("cli-platform");
    // Platform events are HS256 JWTs signed with the configured `platform_secret`.
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"platform_secret": "cli-platform-secret"}"#).unwrap();
    let task =
        r#"{"id":"e1","type":"task.created","contact":{"phone":"+13125550187"},"task":{"ref":"r1","title":"Call back","due":"2026-03-12T09:00:00-05:00"}}"#;
    let event = dir.join("task.jwt");
    std::fs::write(&event, host_test::jwt::sign(task.as_bytes(), "cli-platform-secret")).unwrap();
    let unsigned = dir.join("task.json");
    std::fs::write(&unsigned, task).unwrap();
    let out = host()
        .args(["replay", "--mock", "--dry-run", "--config", config.to_str().unwrap(), &fixture("call_inbound_hangup_completed.json")])
        .args([event.to_str().unwrap(), unsigned.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the unsigned event fails");
    let lines = json_lines(&out);
    assert_eq!(lines[2]["error"]["type"], "invalid-signature", "{}", lines[2]);
    assert_eq!(lines[1]["kind"], "task");
    assert_eq!(lines[1]["plan"][1]["operation_id"], "create-task");
    assert_eq!(lines[1]["plan"][1]["body"]["dueDate"], "2026-03-12T09:00:00-05:00");

    let out = host().args(["view", "--mock", "--phone", "+13125550187"]).output().unwrap();
    assert!(!out.status.success());
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["type"], "not-found");
}

#[test]
fn config_schema_is_printed() {
    let schema: Value = serde_json::from_slice(&run(&["config-schema"]).stdout).unwrap();
    assert_eq!(schema["title"], "Dialpad ⇄ HighLevel sync configuration");
    let events: Value = serde_json::from_slice(&run(&["config-schema", "--platform-event"]).stdout).unwrap();
    assert_eq!(events["properties"]["type"]["enum"][0], "task.created");
}

#[test]
fn catalog_lists_every_operation_of_the_four_specs_and_what_the_grants_make_available() {
    let listed: Vec<Value> = serde_json::from_slice(&run(&["catalog", "--json"]).stdout).unwrap();
    // The tables, which `contacts-api`'s tests hold to the official specs one for one.
    let mut from_spec: Vec<String> = contacts_api::TABLES
        .iter()
        .flat_map(|table| table.iter())
        .map(|op| format!("{} {} {} {}", op.api.as_str(), op.id, op.method.as_str(), op.path))
        .collect();
    assert!(listed.iter().any(|o| o["id"] == "click-to-call" && o["api"] == "dialpad" && o["scope"] == "dialpad" && o["path"] == "/api/v2/call"));
    let mut ours: Vec<String> = listed
        .iter()
        .filter(|o| o["id"] != "click-to-call")
        .map(|o| format!("{} {} {} {}", o["api"].as_str().unwrap(), o["id"].as_str().unwrap(), o["method"].as_str().unwrap(), o["path"].as_str().unwrap()))
        .collect();
    from_spec.sort();
    ours.sort();
    assert_eq!(ours, from_spec);
    assert_eq!(ours.len(), 32 + 29 + 7 + 193);
    assert!(listed.iter().all(|o| o["input_schema"]["type"] == "object" && o["missing_scopes"] == serde_json::json!([])));
    let table = String::from_utf8(run(&["catalog"]).stdout).unwrap();
    let totals: Vec<&str> = table.lines().rev().take(6).collect();
    assert_eq!(
        totals,
        [
            "262 actions, 262 available",
            "workflow actions           1 (1 available)",
            "dialpad                  193 operations (193 available)",
            "highlevel-users            7 operations (7 available)",
            "highlevel-conversations   29 operations (29 available)",
            "highlevel-contacts        32 operations (32 available)",
        ],
        "{table}"
    );
    // With only contacts.readonly granted, the writes are listed as needing contacts.write.
    let table = String::from_utf8(run(&["catalog", "--api", "highlevel-contacts", "--scopes", "contacts.readonly"]).stdout).unwrap();
    let create = table.lines().find(|l| l.contains(" create-contact ")).unwrap();
    assert!(create.contains("needs contacts.write"), "{table}");
    assert!(table.trim_end().ends_with("highlevel-contacts   32 operations (10 available)\n32 actions, 10 available"), "{table}");
    // An unknown scope is refused, not taken for a grant of nothing.
    let out = host().args(["catalog", "--scopes", "contacts.everything"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/scopes/0: unknown scope"), "{out:?}");
}

#[test]
fn catalog_lists_the_triggers_with_their_schemas() {
    let listed: Vec<Value> = serde_json::from_slice(&run(&["catalog", "--triggers", "--json"]).stdout).unwrap();
    let draft = "https://json-schema.org/draft/2020-12/schema";
    assert!(listed.iter().all(|t| t["payload_schema"]["$schema"] == draft && t["event_schema"]["$schema"] == draft), "{listed:#?}");
    let ids: Vec<&str> = listed.iter().map(|t| t["id"].as_str().unwrap()).collect();
    for id in ["dialpad.call.hangup", "dialpad.sms.inbound", "dialpad.contact.created", "highlevel.ContactUpdate", "platform.task.created"] {
        assert!(ids.contains(&id), "{id} is not in {ids:?}");
    }
    let table = String::from_utf8(run(&["catalog", "--triggers"]).stdout).unwrap();
    let sources: Vec<&str> =
        ["dialpad", "highlevel", "platform"].into_iter().filter(|s| table.lines().any(|l| l.starts_with(s) && l.ends_with(" triggers"))).collect();
    assert_eq!(sources.len(), 3, "{table}");
    assert!(table.trim_end().ends_with(&format!("{} triggers", listed.len())), "{table}");
}

#[test]
fn invoke_runs_an_action_and_refuses_bad_input_with_a_typed_error() {
    let out = run(&["invoke", "--mock", "create-contact", "--input", r#"{"body":{"firstName":"Ana","phone":"+14155550100"}}"#]);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["contact"]["firstName"], "Ana");
    assert_eq!(created["contact"]["locationId"], "mock-location", "locationId defaults to the configured one");

    let out = Command::new(BIN).args(["invoke", "--mock", "create-note", "--input", r#"{"contactId":"c1","body":{"text":"x"}}"#]).output().unwrap();
    assert!(!out.status.success());
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["type"], "invalid-input");
    assert_eq!(error["problems"][0]["path"], "/body/text");
}

#[test]
fn failed_events_are_kept_in_the_state_dir_and_replay_dead_letters_delivers_them() {
    let dir = host_test::support::scratch_dir("cli-state");
    let state = dir.to_str().unwrap();
    // Nothing listens on this port: the event fails, and is kept.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down = format!("http://{closed}");
    let args = ["replay", "--state", state, "--api-base", &down, "--token", TOKEN, "--location-id", "loc-cli"];
    let out = host().args(args).arg(fixture("call_inbound_missed.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out)[0]["outcome"], "failed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept as dead letters"));

    let mock = MockProcess::start();
    let out = run(&["replay", "--dead-letters", "--state", state, "--api-base", &mock.base, "--token", TOKEN, "--location-id", "loc-cli"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["outcome"], "synced");
    assert!(String::from_utf8_lossy(&out.stderr).contains("dead letters: 1 delivered, 0 still failing"));
    // Delivered and recorded: the same event again, in a new process with the same state, sends nothing.
    let before = mock.debug("/__mock/requests").as_array().map(Vec::len);
    let again = json_lines(&run(&[
        "replay",
        "--state",
        state,
        "--api-base",
        &mock.base,
        "--token",
        TOKEN,
        "--location-id",
        "loc-cli",
        &fixture("call_inbound_missed.json"),
    ]));
    assert_eq!(again[0]["outcome"], "unchanged");
    assert_eq!(mock.debug("/__mock/requests").as_array().map(Vec::len), before);
    let out = run(&["replay", "--dead-letters", "--state", state, "--api-base", &mock.base, "--location-id", "loc-cli"]);
    assert!(json_lines(&out).is_empty());
}

#[test]
fn dist_writes_a_versioned_checksummed_artifact_and_its_wit() {
    use sha2::Digest as _;
    let out = host_test::support::scratch_dir("cli-dist");
    run(&["dist", "--out", out.to_str().unwrap()]);
    let version = env!("CARGO_PKG_VERSION");
    let wasm = std::fs::read(out.join(format!("dialpad-ghl-plugin-{version}.wasm"))).unwrap();
    let digest: String = sha2::Sha256::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect();
    let sums = std::fs::read_to_string(out.join(format!("dialpad-ghl-plugin-{version}.wasm.sha256"))).unwrap();
    assert_eq!(sums, format!("{digest}  dialpad-ghl-plugin-{version}.wasm\n"));
    let api = dialpad_ghl_host::version::HOST_API_VERSION;
    let wit = std::fs::read_to_string(out.join(format!("dialpad-ghl-sync-{api}.wit"))).unwrap();
    assert!(wit.contains(&format!("package dialpad-ghl:sync@{api};")));
    assert_eq!(dialpad_ghl_host::version::of(&wasm).unwrap().plugin.as_deref(), Some(version));
}

#[test]
fn a_plugin_of_another_api_version_is_refused_with_a_clear_message() {
    let built = std::fs::read(artifacts::PLUGIN_WASM).unwrap();
    let old = host_test::support::scratch_dir("cli-old-plugin").join("old.wasm");
    std::fs::write(&old, dialpad_ghl_host::version::stamp(&built, "0.0.9", "0.2.0")).unwrap();
    let out = host().args(["replay", "--mock", "--plugin", old.to_str().unwrap(), &fixture("call_inbound_missed.json")]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let host = dialpad_ghl_host::version::HOST_API_VERSION;
    assert!(stderr.contains(&format!("the plugin implements dialpad-ghl:sync@0.2.0, and this host speaks @{host}")), "{stderr}");
}

#[test]
fn bench_measures_every_goal_and_writes_the_document() {
    let out = host_test::support::scratch_dir("cli-bench").join("BENCHMARKS.md");
    let printed = String::from_utf8(run(&["bench", "--quick", "--burst-window", "200ms", "--out", out.to_str().unwrap()]).stdout).unwrap();
    let row =
        |start: &str| printed.lines().find(|l| l.starts_with(&format!("| {start}"))).unwrap_or_else(|| panic!("no row {start:?} in\n{printed}")).to_string();
    for measure in [
        "Instantiation per event, on-demand",
        "Instantiation per event, pooling",
        "Host + plugin per event",
        "Events per second",
        "Contact view, 4 reads",
        "Component size",
        "Host cold start",
        "Per event with 1 / 10 / 50 tenants",
        "Host memory per tenant",
        "Per event against the transcript's size",
        "New call from a known contact",
        "Time to HighLevel",
    ] {
        let line = row(measure);
        assert_eq!(line.matches(" | ").count(), 3, "{line}");
    }
    // The counts are exact, whatever the machine's speed.
    assert!(row("Contact view repeated").contains("| 0 requests (from cache: true) |"), "{printed}");
    assert!(row("Burst of 100 events").contains("| 0 (of "), "the limiter let a request through to a 429:\n{printed}");
    assert!(row("hangup, unknown caller").contains("| 3 (get-duplicate-contact, create-contact, create-note) | 2 |"), "{printed}");
    assert!(row("AI recap of the same call").contains("| 3 (update-note, create-task, create-task) | 3 |"), "{printed}");
    assert!(row("hangup redelivered").contains("| 0 (none) | 0 |"), "{printed}");
    assert!(row("Time to HighLevel").contains("; 0 429s;"), "the limiter let a request through to a 429:\n{printed}");
    let document = std::fs::read_to_string(&out).unwrap();
    assert!(document.starts_with("# Benchmarks\n\nOne run of `cargo run --release -- bench --quick --burst-window 200ms"), "{document}");
    assert!(document.contains("cores") && document.contains(&row("Component size")));
}

#[test]
fn backfill_lists_dialpad_calls_syncs_them_and_a_dry_run_only_plans() {
    use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
    let hangup: Value = serde_json::from_str(&std::fs::read_to_string(fixture("call_inbound_hangup_completed.json")).unwrap()).unwrap();
    let dialpad = DialpadMock::start(DialpadMockOptions { api_key: "cli-dialpad-key".into(), page_size: 2 }).unwrap();
    for i in 0..3u64 {
        let mut call = hangup.clone();
        call["call_id"] = serde_json::json!(7_400_000_000_000_000u64 + i);
        call["date_started"] = serde_json::json!(1_773_155_045_211u64 + i * 60_000);
        dialpad.add_call(call);
    }
    let api = MockProcess::start();
    let state = host_test::support::scratch_dir("cli-backfill");
    let state = state.to_str().unwrap();
    let dialpad_base = dialpad.base_url();
    let args = |extra: &[&'static str]| -> Vec<String> {
        let fixed = ["backfill", "--since", "2026-03-10", "--until", "2026-03-11", "--api-base", &api.base, "--token", TOKEN, "--location-id", "loc-cli"];
        let dialpad = ["--dialpad-api-base", &dialpad_base, "--dialpad-api-key", "cli-dialpad-key", "--state", state];
        fixed.iter().chain(dialpad.iter()).chain(extra.iter()).map(|a| a.to_string()).collect()
    };
    let run = |args: Vec<String>| run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let planned = run(args(&["--dry-run"]));
    let lines = json_lines(&planned);
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["dry_run"] == true), "{lines:?}");
    assert!(String::from_utf8_lossy(&planned.stderr).contains("backfill (dry run): 2 pages, 3 calls fetched"));
    assert_eq!(api.debug("/__mock/requests").as_array().map(Vec::len), Some(0), "the dry run wrote to HighLevel");

    let synced = run(args(&[]));
    let lines = json_lines(&synced);
    // One caller, three calls: the first creates the contact, each writes its note.
    assert_eq!(lines.iter().map(|l| l["outcome"].as_str().unwrap()).collect::<Vec<_>>(), ["synced", "synced", "synced"]);
    assert!(
        String::from_utf8_lossy(&synced.stderr).contains("2 pages, 3 calls fetched: 3 synced, 0 unchanged, 0 skipped, 0 failed"),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    let again = run(args(&[]));
    assert!(String::from_utf8_lossy(&again.stderr).contains("3 calls fetched: 0 synced, 3 unchanged"), "{}", String::from_utf8_lossy(&again.stderr));

    let without_key = host().args(["backfill", "--since", "2026-03-10", "--mock"]).output().unwrap();
    assert!(!without_key.status.success());
    assert!(String::from_utf8_lossy(&without_key.stderr).contains("give --dialpad-api-key"));
}
