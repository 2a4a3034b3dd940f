//! A Dialpad call that ends is synced to HighLevel: through the real component, the real host
//! and the mock Contacts API, asserting the API's final state and the exact request list.

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use e2e_tests::*;
use host_test::ghl_mock::MockOptions;
use serde_json::Value;

#[test]
fn a_day_of_events_gives_one_contact_per_caller_and_one_note_per_call() {
    let h = Harness::new();
    let mut outcomes = Vec::new();
    for name in DAY_OF_EVENTS {
        let report = h.handle_fixture(name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        outcomes.push((*name, report::outcome_name(&report.outcome).0));
    }
    assert_eq!(
        outcomes,
        vec![
            ("call_inbound_ringing_unknown_number.json", "skipped"),
            ("call_inbound_connected.json", "skipped"),
            ("call_inbound_hangup_completed.json", "synced"),
            ("call_recap_summary.json", "synced"),
            ("call_outbound_hangup_recorded.json", "synced"),
            ("call_inbound_missed.json", "synced"),
            ("call_voicemail_uploaded.json", "synced"),
            ("call_voicemail_transcription.json", "synced"),
            ("sms_inbound.json", "synced"),
            ("contact_created_shared.json", "synced"),
            ("contact_updated_new_email.json", "synced"),
            ("contact_deleted.json", "skipped"),
            ("agent_status_on_duty.json", "skipped"),
        ]
    );
    assert_eq!(
        h.requests(),
        vec![
            "GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B13125550187 → 200",
            "POST /contacts/ → 201",
            "POST /contacts/contact0000000000001/notes → 201",
            "PUT /contacts/contact0000000000001/notes/note0000000000000001 → 200",
            // The recap's two action items become tasks (on by default).
            "POST /contacts/contact0000000000001/tasks → 201",
            "POST /contacts/contact0000000000001/tasks → 201",
            "GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B15035550139 → 200",
            // Not found by phone, Kenji is looked for by e-mail before being created.
            "GET /contacts/search/duplicate?locationId=loc-e2e&email=kenji.watanabe%40example.net → 200",
            "POST /contacts/ → 201",
            "POST /contacts/contact0000000000002/notes → 201",
            "GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B12065550174 → 200",
            "GET /contacts/search/duplicate?locationId=loc-e2e&email=dana.whitfield%40example.org → 200",
            "POST /contacts/ → 201",
            "POST /contacts/contact0000000000003/notes → 201",
            "GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B17375550166 → 200",
            "POST /contacts/ → 201",
            "POST /contacts/contact0000000000004/notes → 201",
            "PUT /contacts/contact0000000000004/notes/note0000000000000004 → 200",
            // The SMS comes from the first caller, whose contact is known: one request.
            "POST /contacts/contact0000000000001/notes → 201",
            // Dana's Dialpad contact is created, then updated: her number links it to the
            // contact her call made, which is updated through the field mapping.
            "PUT /contacts/contact0000000000003 → 200",
            "PUT /contacts/contact0000000000003 → 200",
        ]
    );

    let contacts = h.mock.contacts();
    let phones: Vec<&str> = contacts.iter().map(|c| c["phone"].as_str().unwrap()).collect();
    assert_eq!(phones, vec!["+13125550187", "+15035550139", "+12065550174", "+17375550166"]);
    // Known Dialpad contacts bring their names; unknown callers' formatted numbers do not.
    let names: Vec<(Option<&str>, Option<&str>)> = contacts.iter().map(|c| (c["firstName"].as_str(), c["lastName"].as_str())).collect();
    assert_eq!(names, vec![(None, None), (Some("Kenji"), Some("Watanabe")), (Some("Dana"), Some("Whitfield")), (None, None)]);
    assert_eq!(contacts[1]["email"], "kenji.watanabe@example.net");
    assert!(contacts.iter().all(|c| c["source"] == "Dialpad" && c["locationId"] == LOCATION));

    let notes = h.mock.notes();
    assert_eq!(notes.len(), 5, "one note per ended call, one per message");
    let body_of = |call_id: &str| -> String {
        let marker = format!("Dialpad call ID: {call_id}");
        let matching: Vec<&Value> = notes.iter().filter(|n| n["body"].as_str().unwrap().ends_with(&marker)).collect();
        assert_eq!(matching.len(), 1, "exactly one note for call {call_id}");
        matching[0]["body"].as_str().unwrap().to_string()
    };
    let first = body_of("6011482093420544");
    assert!(
        first.starts_with(
            "Dialpad call: inbound, completed\nFrom: +13125550187\nWhen: 2026-03-10 15:04 UTC\nDuration: 4m 07s\nAgent: Maya Patel <maya.patel@example.com>"
        ),
        "{first}"
    );
    assert!(first.contains("Dialpad Ai recap:\nCaller Priya from Lakeside Dental"), "the recap updates the call's note: {first}");
    let recorded = body_of("4617205983150080");
    assert!(recorded.contains("Dialpad call: outbound, completed\nTo: +15035550139"));
    assert!(recorded.contains("Recording: https://dialpad.com/secureblob/recording/EXAMPLErecordingBlobKeyD0001"));
    assert!(body_of("5402917760802816").starts_with("Dialpad call: inbound, missed"));
    let voicemail = body_of("6307351874682880");
    assert!(voicemail.contains("Voicemail: https://dialpad.com/secureblob/voicemail/"));
    assert!(voicemail.contains("Transcript:\nHi Maya, this is Carlos Mendes"), "the transcript updates the voicemail note");
    // Notes sit on the contact of their caller.
    assert_eq!(notes[0]["contactId"], contacts[0]["id"]);
    assert_eq!(notes[3]["contactId"], contacts[3]["id"]);
    let sms = notes[4]["body"].as_str().unwrap();
    assert_eq!(notes[4]["contactId"], contacts[0]["id"]);
    assert!(sms.starts_with("Dialpad SMS: inbound\nFrom: +13125550187\n") && sms.ends_with("Dialpad SMS ID: 5287316104912896"), "{sms}");
}

#[test]
fn ringing_and_connected_write_nothing_and_other_kinds_say_why() {
    let h = Harness::new();
    for (name, reason) in [
        ("call_inbound_ringing_unknown_number.json", "call still in progress (ringing)"),
        ("call_inbound_connected.json", "call still in progress (connected)"),
        ("agent_status_on_duty.json", "agent status events have no Contacts API counterpart"),
    ] {
        let report = h.handle_fixture(name).unwrap();
        match report.outcome {
            Outcome::Skipped(r) => assert!(r.starts_with(reason), "{name}: {r}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(report.operations.is_empty());
    }
    assert!(h.mock.requests().is_empty());
    assert!(h.kv.is_empty());
}

#[test]
fn a_known_caller_is_found_not_duplicated() {
    let h = Harness::new();
    let existing = h.mock.seed_contact(serde_json::json!({
        "locationId": LOCATION, "firstName": "Kenji", "lastName": "W.", "phone": "+15035550139"
    }));
    let report = h.handle_fixture("call_outbound_hangup_recorded.json").unwrap();
    assert_eq!(report.contact_id.as_deref(), Some(existing.as_str()));
    assert_eq!(
        h.requests(),
        vec!["GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B15035550139 → 200".to_string(), format!("POST /contacts/{existing}/notes → 201"),]
    );
    assert_eq!(h.mock.contacts().len(), 1);
    assert_eq!(h.mock.contacts()[0]["lastName"], "W.", "the HighLevel name is not overwritten");

    // The next call of the same caller needs no search at all.
    let second = fixture_with("call_outbound_hangup_recorded.json", |v| v["call_id"] = 4617205983150081u64.into());
    let report = h.handle(&second).unwrap();
    assert_eq!(operations(&report), vec![("create-note".to_string(), Some(201))]);
}

#[test]
fn a_caller_is_matched_by_email_when_the_phone_is_unknown() {
    let h = Harness::new();
    let existing = h.mock.seed_contact(serde_json::json!({
        "locationId": LOCATION, "firstName": "Kenji", "email": "Kenji.Watanabe@Example.net", "phone": "+15035550100"
    }));
    let report = h.handle_fixture("call_outbound_hangup_recorded.json").unwrap();
    assert_eq!(report.contact_id.as_deref(), Some(existing.as_str()));
    assert_eq!(
        h.requests(),
        vec![
            "GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B15035550139 → 200".to_string(),
            "GET /contacts/search/duplicate?locationId=loc-e2e&email=kenji.watanabe%40example.net → 200".to_string(),
            format!("POST /contacts/{existing}/notes → 201"),
        ]
    );
    assert_eq!(h.mock.contacts().len(), 1, "no duplicate contact");
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let h = Harness::new();
    h.handle_fixture("call_inbound_hangup_completed.json").unwrap();
    let before = h.mock.requests().len();
    let again = h.handle_fixture("call_inbound_hangup_completed.json").unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert!(again.operations.is_empty());
    assert_eq!(h.mock.requests().len(), before);
    assert_eq!(h.mock.notes().len(), 1);
}

/// Under a host whose key-value store forgets everything between events (as `wasmtime serve`
/// does), the plugin finds the call's note again through its marker line.
#[test]
fn a_stateless_host_still_writes_one_note_per_call() {
    let h = Harness::new();
    let stateless = |h: &Harness| h.runtime_with(h.settings.runtime_options(false).unwrap(), KeyValueStore::new());
    let first = stateless(&h).handle_webhook(&fixture("call_inbound_hangup_completed.json")).unwrap().unwrap();
    assert_eq!(operations(&first), vec![("get-duplicate-contact".into(), Some(200)), ("create-contact".into(), Some(201)), ("create-note".into(), Some(201))]);
    let again = stateless(&h).handle_webhook(&fixture("call_inbound_hangup_completed.json")).unwrap().unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(operations(&again), vec![("get-duplicate-contact".into(), Some(200)), ("get-all-notes".into(), Some(200))]);
    let recap = stateless(&h).handle_webhook(&fixture("call_recap_summary.json")).unwrap().unwrap();
    assert_eq!(
        operations(&recap),
        vec![
            ("get-duplicate-contact".into(), Some(200)),
            ("get-all-notes".into(), Some(200)),
            ("update-note".into(), Some(200)),
            // Without a record, the contact's tasks are read first: none is made twice.
            ("get-all-tasks".into(), Some(200)),
            ("create-task".into(), Some(201)),
            ("create-task".into(), Some(201))
        ]
    );
    // The recap redelivered: both tasks are found (same title and body), none is made again.
    let again = stateless(&h).handle_webhook(&fixture("call_recap_summary.json")).unwrap().unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(h.mock.tasks().len(), 2);
    // The hangup redelivered after the recap: the note is read back and merged, so the recap
    // stays and nothing is written.
    let late = stateless(&h).handle_webhook(&fixture("call_inbound_hangup_completed.json")).unwrap().unwrap();
    assert_eq!(late.outcome, Outcome::Unchanged);
    assert_eq!(h.mock.contacts().len(), 1);
    assert_eq!(h.mock.notes().len(), 1);
    let body = h.mock.notes()[0]["body"].as_str().unwrap().to_string();
    assert!(body.contains("Duration: 4m 07s") && body.contains("Dialpad Ai recap:"), "{body}");
}

#[test]
fn a_dry_run_plans_without_sending_or_storing() {
    let h = Harness::new();
    let plan = h.runtime.plan_webhook(&fixture("call_inbound_hangup_completed.json")).unwrap().unwrap();
    let line = report::plan_line("hangup", &Ok(plan.clone()));
    assert_eq!(plan.event_key, "call:6011482093420544:hangup");
    let ops: Vec<(&str, &str, Option<&str>)> = plan.operations.iter().map(|o| (o.operation_id.as_str(), o.path.as_str(), o.condition.as_deref())).collect();
    assert_eq!(
        ops,
        vec![
            ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-e2e&number=%2B13125550187", None),
            ("create-contact", "/contacts/", Some("if the duplicate search finds no contact")),
            ("create-note", "/contacts/{contactId}/notes", None),
        ]
    );
    assert_eq!(line["plan"][1]["body"]["phone"], "+13125550187");
    assert!(h.mock.requests().is_empty());
    assert!(h.kv.is_empty());
}

#[test]
fn upstream_refusals_are_typed_with_the_apis_message() {
    // The mock expects another token than the host holds.
    let h = Harness::with(MockOptions { token: Some("another-token".into()), ..MockOptions::default() }, |_| {});
    let err = h.handle_fixture("call_inbound_hangup_completed.json").unwrap_err();
    let SyncError::Upstream(failure) = err else { panic!("{err:?}") };
    assert_eq!((failure.operation_id.as_str(), failure.status), ("get-duplicate-contact", 401));
    assert_eq!(failure.message, "Invalid token: access token is invalid");
    assert_eq!(h.mock.requests().len(), 1, "a 401 is not retried and stops the plan");
}

#[test]
fn the_plugin_reports_its_versions_and_config_schema() {
    let h = Harness::new();
    let meta = h.runtime.meta().unwrap();
    assert_eq!(meta.plugin_version, "0.1.0");
    assert_eq!(meta.api_version, dialpad_ghl_host::version::HOST_API_VERSION);
    assert_eq!(meta.api_version, "0.9.0");
    let schema: Value = serde_json::from_str(&meta.config_schema).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["location_id"]));
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["webhook_secret"].is_object());
}

/// The legs of one call into a call center — the entry leg R, the call-center leg C (master R,
/// operator O) and the agent's leg O (entry point C) — are one activity and one note, in
/// whichever order the legs arrive (as long as one leg links the others).
#[test]
fn the_legs_of_a_transferred_call_are_one_note() {
    let leg = |id: u64, master: Option<u64>, entry: Option<u64>, operator: Option<u64>, connected: bool| -> Vec<u8> {
        fixture_with("call_inbound_hangup_completed.json", |v| {
            v["call_id"] = id.into();
            v["master_call_id"] = master.map_or(Value::Null, Value::from);
            v["entry_point_call_id"] = entry.map_or(Value::Null, Value::from);
            v["operator_call_id"] = operator.map_or(Value::Null, Value::from);
            if !connected {
                v["date_connected"] = Value::Null;
                v["talk_time"] = 0.into();
                v["duration"] = 0.into();
            }
        })
    };
    let (r, c, o) = (7_000_000_000_000_001u64, 7_000_000_000_000_002u64, 7_000_000_000_000_003u64);
    let root = leg(r, None, None, None, false);
    let center = leg(c, Some(r), None, Some(o), false);
    let agent = leg(o, None, Some(c), None, true);
    for (order, legs) in [("agent first", [&agent, &center, &root]), ("root first", [&root, &center, &agent])] {
        let h = Harness::new();
        for body in legs {
            h.handle(body).unwrap_or_else(|e| panic!("{order}: {e:?}"));
        }
        assert_eq!(h.mock.contacts().len(), 1, "{order}");
        let notes = h.mock.notes();
        assert_eq!(notes.len(), 1, "{order}: one note for the call, not one per leg: {notes:#?} {:#?}", h.requests());
        let body = notes[0]["body"].as_str().unwrap();
        assert!(body.starts_with("Dialpad call: inbound, completed"), "{order}: the agent's answered leg makes it completed: {body}");
        assert!(body.contains("Duration: 4m 07s"), "{order}: {body}");
    }
}
