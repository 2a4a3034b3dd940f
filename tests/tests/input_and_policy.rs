//! Bad input, signatures, configuration, scopes, the outbound allowlist and the credential:
//! each gets a typed answer, and nothing is written that should not be.

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::outbound::Origin;
use dialpad_ghl_host::version::HOST_API_VERSION;
use e2e_tests::*;

#[test]
fn the_signed_fixture_verifies_with_its_secret_and_fails_with_any_other() {
    let h = Harness::with(Default::default(), |s| s.set("webhook_secret", FIXTURE_SECRET));
    let jwt = fixture("call_inbound_hangup_completed.jwt");
    let report = h.handle(&jwt).unwrap();
    assert_eq!(report.outcome, Outcome::Synced);
    assert_eq!(report.event_key, "call:6011482093420544:hangup");
    assert_eq!(h.mock.notes().len(), 1);

    let other = Harness::with(Default::default(), |s| s.set("webhook_secret", "some-other-secret"));
    match other.handle(&jwt) {
        Err(SyncError::InvalidSignature(m)) => assert!(m.contains("does not match"), "{m}"),
        r => panic!("{r:?}"),
    }
    // With a secret configured, an unsigned body is refused too.
    match other.handle_fixture("call_inbound_hangup_completed.json") {
        Err(SyncError::InvalidSignature(m)) => assert!(m.contains("unsigned JSON body refused"), "{m}"),
        r => panic!("{r:?}"),
    }
    assert!(other.mock.requests().is_empty());
    assert!(other.kv.is_empty());
}

#[test]
fn bad_input_gets_a_typed_error_and_writes_nothing() {
    let h = Harness::new();
    let signed = Harness::with(Default::default(), |s| s.set("webhook_secret", FIXTURE_SECRET));
    let jwt = String::from_utf8(fixture("call_inbound_hangup_completed.jwt")).unwrap();
    let truncated_jwt = jwt.trim()[..jwt.trim().len() - 20].to_string();
    let (header, _) = jwt.split_once('.').unwrap();
    let claims_cut = format!("{header}.eyJjYWxsX2lkIjo.xyz");
    let no_phone = fixture_with("call_inbound_hangup_completed.json", |v| {
        v["external_number"] = "twelve".into();
        v["contact"]["phone"] = "".into();
    });
    let cases: Vec<(&str, &Harness, Vec<u8>, &str)> = vec![
        ("malformed JSON", &h, br#"{"call_id": 1, "state": "hangup", "#.to_vec(), "malformed-event"),
        ("not an event", &h, br#"{"hello": "world"}"#.to_vec(), "malformed-event"),
        ("empty body", &h, Vec::new(), "malformed-event"),
        ("truncated JWT signature", &signed, truncated_jwt.into_bytes(), "invalid-signature"),
        ("JWT cut inside the claims", &signed, claims_cut.into_bytes(), "invalid-signature"),
        ("no usable phone number", &h, no_phone, "malformed-event"),
        ("wrong id type", &h, br#"{"call_id": {"x": 1}, "state": "hangup"}"#.to_vec(), "malformed-event"),
    ];
    for (what, harness, body, expected) in cases {
        let err = harness.handle(&body).expect_err(what);
        let json = report::error_json(&err);
        assert_eq!(json["type"], expected, "{what}: {json}");
        assert!(!json["message"].as_str().unwrap().is_empty(), "{what}");
    }
    for harness in [&h, &signed] {
        assert!(harness.mock.requests().is_empty());
        assert!(harness.mock.contacts().is_empty());
        assert!(harness.kv.is_empty());
    }
}

#[test]
fn configuration_errors_name_their_paths() {
    let h = Harness::with(Default::default(), |s| {
        s.plugin_config.remove("location_id");
        s.set("scopes", serde_json::json!(["contacts.write", "contacts.all"]));
        s.set("colour", "red");
    });
    let err = h.handle_fixture("call_inbound_hangup_completed.json").unwrap_err();
    let SyncError::BadConfig(problems) = err else { panic!("{err:?}") };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, vec!["/colour", "/location_id", "/scopes/1"]);
    assert!(h.mock.requests().is_empty());
}

#[test]
fn a_missing_scope_is_refused_before_any_request() {
    let h = Harness::with(Default::default(), |s| s.set("scopes", serde_json::json!(["contacts.readonly"])));
    let err = h.handle_fixture("call_inbound_hangup_completed.json").unwrap_err();
    assert_eq!(err, SyncError::MissingScope(vec!["contacts.write".into()]));
    assert!(h.mock.requests().is_empty());
}

#[test]
fn requests_outside_the_allowlist_are_refused_and_logged() {
    let h = Harness::new();
    let mut options = h.settings.runtime_options(true).unwrap();
    options.policy.allowed = vec![Origin::parse("https://services.leadconnectorhq.com").unwrap()];
    options.policy.credentials.clear();
    let fenced = h.runtime_with(options, KeyValueStore::new());
    let err = fenced.handle_webhook(&fixture("call_inbound_hangup_completed.json")).unwrap().unwrap_err();
    match err {
        SyncError::Transport(m) => assert!(m.contains("refused by the host's outbound policy"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(h.mock.requests().is_empty(), "the mock was never reached");
    let log = fenced.http_log().entries();
    assert_eq!(log.len(), 1, "a denial is final: no retry");
    assert_eq!(log[0].outcome, "denied: origin not in the allowlist");
    assert!(log[0].url.starts_with(&h.mock.base_url()));

    // A write is refused the same way, and the refusal is known as one (not retried, not
    // mistaken for a dropped connection) although the request had a body.
    h.handle_fixture("call_inbound_hangup_completed.json").unwrap();
    let known_caller_new_call = fixture_with("call_inbound_hangup_completed.json", |v| v["call_id"] = 6011482093420545u64.into());
    let before = h.mock.requests().len();
    let mut options = h.settings.runtime_options(true).unwrap();
    options.policy.allowed = vec![Origin::parse("https://services.leadconnectorhq.com").unwrap()];
    let fenced = h.runtime_with(options, h.kv.clone());
    let err = fenced.handle_webhook(&known_caller_new_call).unwrap().unwrap_err();
    match err {
        SyncError::Transport(m) => {
            assert!(m.starts_with("create-note /contacts/contact0000000000001/notes") && m.contains("refused by the host's outbound policy"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fenced.http_log().entries().len(), 1);
    assert_eq!(h.mock.requests().len(), before);
}

#[test]
fn the_token_is_injected_by_the_host_and_never_logged() {
    let h = Harness::new();
    for name in DAY_OF_EVENTS {
        h.handle_fixture(name).unwrap();
    }
    // The mock requires the token, so every request carried it…
    let requests = h.mock.requests();
    assert_eq!(requests.len(), 21, "the day of events of call_sync");
    assert!(requests.iter().all(|r| r.authorization_present && r.status < 300));
    // …yet the plugin never saw it: it is not in the configuration the plugin reads.
    let options = h.settings.runtime_options(true).unwrap();
    assert!(options.config_vars.iter().all(|(_, v)| !v.contains(TOKEN)));
    // And no log line carries it: the host's request log, the reports, the key-value store.
    let log = h.runtime.http_log().entries();
    assert_eq!(log.len(), requests.len());
    let mut lines: Vec<String> = log.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    for name in DAY_OF_EVENTS {
        lines.push(report::report_line(name, &h.handle_fixture(name)).to_string());
    }
    for key in h.kv.keys() {
        lines.push(format!("{key}={}", String::from_utf8_lossy(&h.kv.get(&key).unwrap())));
    }
    assert!(log.iter().all(|e| e.request_headers.iter().any(|(k, v)| k == "authorization" && v == "[redacted]")));
    let leaks: Vec<&String> = lines.iter().filter(|l| l.contains(TOKEN)).collect();
    assert!(leaks.is_empty(), "token found in: {leaks:?}");
}

/// The component imports only standard WASI interfaces and exports this package's own, plus
/// `wasi:http/incoming-handler` for stock hosts (`wasmtime serve`, Spin, wasmCloud).
#[test]
fn the_component_speaks_only_standard_wasi_and_its_own_interfaces() {
    let plugin = plugin();
    let ty = plugin.component().component_type();
    let imports: Vec<String> = ty.imports(plugin.engine()).map(|(name, _)| name.to_string()).collect();
    let exports: Vec<String> = ty.exports(plugin.engine()).map(|(name, _)| name.to_string()).collect();
    // `types` holds only type definitions: the world imports it implicitly, with no functions.
    assert!(imports.iter().all(|i| i.starts_with("wasi:") || *i == format!("dialpad-ghl:sync/types@{HOST_API_VERSION}")), "{imports:?}");
    for needed in ["wasi:http/outgoing-handler@", "wasi:config/store@0.2.0-rc.1", "wasi:keyvalue/store@0.2.0-draft"] {
        assert!(imports.iter().any(|i| i.starts_with(needed)), "{needed} not in {imports:?}");
    }
    for forbidden in ["wasi:sockets/tcp", "wasi:sockets/udp", "wasi:http/incoming-handler"] {
        assert!(!imports.iter().any(|i| i.starts_with(forbidden)), "{forbidden} in {imports:?}");
    }
    for interface in ["triggers", "meta", "actions", "views", "backfill"] {
        assert!(exports.contains(&format!("dialpad-ghl:sync/{interface}@{HOST_API_VERSION}")), "{interface}: {exports:?}");
    }
    // One version of wasi:http in the WIT (waki's 0.2.2): the export keeps it.
    assert!(exports.contains(&"wasi:http/incoming-handler@0.2.2".to_string()), "{exports:?}");
    assert!(exports.iter().all(|e| e.starts_with("dialpad-ghl:sync/") || e == "wasi:http/incoming-handler@0.2.2"), "{exports:?}");
}

#[test]
fn a_trigger_names_missing_scopes_whatever_the_event() {
    let h = Harness::with(Default::default(), |s| s.set("scopes", serde_json::json!(["contacts.write"])));
    for name in ["call_inbound_ringing_unknown_number.json", "agent_status_on_duty.json"] {
        assert_eq!(h.handle_fixture(name).unwrap_err(), SyncError::MissingScope(vec!["contacts.readonly".into()]), "{name}");
    }
}
