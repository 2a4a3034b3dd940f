//! Every workflow of issue 4 through the real component, the real host and the mock API:
//! the unified view, contact events through the field mapping, platform task and note events,
//! recap action items, follow-up task rules and tag rules (one test per rule kind), and
//! configuration errors with their paths.

// The WIT-generated error is what the tests assert on; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::views::Subject;
use dialpad_ghl_host::inbound::{Inbound, Source};
use e2e_tests::{fixture, fixture_with, operations, Events, Harness, Outcome, SyncError, FIXTURE_SECRET, LOCATION, TOKEN};
use host_test::ghl_mock::MockOptions;
use serde_json::{json, Value};

fn harness(config: Value) -> Harness {
    Harness::with(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }, |s| {
        for (k, v) in config.as_object().unwrap() {
            s.set(k, v.clone());
        }
    })
}

fn ids(report: &e2e_tests::Report) -> Vec<String> {
    operations(report).into_iter().map(|(id, _)| id).collect()
}

fn tags_of(h: &Harness, contact_id: &str) -> Vec<String> {
    let c = h.mock.contacts().into_iter().find(|c| c["id"] == contact_id).expect("contact exists");
    c["tags"].as_array().map(|t| t.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

fn tasks_of(h: &Harness, contact_id: &str) -> Vec<Value> {
    h.mock.tasks().into_iter().filter(|t| t["contactId"] == contact_id).collect()
}

fn platform(h: &Harness, event: Value) -> Result<e2e_tests::Report, SyncError> {
    h.runtime.handle_platform(&event.to_string()).expect("no trap")
}

fn view(h: &Harness, subject: Subject) -> dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::views::ContactView {
    h.runtime.view(&subject).expect("no trap").expect("a view")
}

// ---- 1. The unified view -------------------------------------------------------------------

#[test]
fn the_view_reads_four_things_at_once_caches_them_and_a_write_drops_the_cache() {
    let h = harness(json!({"view_cache_ttl_seconds": 300}));
    let dana = h.mock.seed_contact(json!({"locationId": LOCATION, "firstName": "Dana", "phone": "+12065550174"}));
    h.mock.seed_appointment(&dana, json!({"title": "Renewal review", "startTime": "2026-03-20T15:00:00Z"}));
    h.handle_fixture("call_inbound_missed.json").unwrap();

    // The mock holds each read until four wait at once: read one by one, they would each be
    // released by the 3 s fallback, one at a time, and the maximum would be 1.
    h.mock.reset_in_flight_max();
    h.mock.hold_reads_until(4);
    let before = h.mock.requests().len();
    let v = view(&h, Subject::Phone("(206) 555-0174".into()));
    h.mock.hold_reads_until(0);
    assert_eq!(h.mock.in_flight_max(), 4, "the four reads were in flight together");
    assert_eq!(
        h.requests()[before..].iter().map(|r| r.split(' ').nth(1).unwrap().split('?').next().unwrap().to_string()).collect::<std::collections::BTreeSet<_>>(),
        [format!("/contacts/{dana}"), format!("/contacts/{dana}/appointments"), format!("/contacts/{dana}/notes"), format!("/contacts/{dana}/tasks")].into()
    );
    assert_eq!(v.contact_id, dana);
    assert!(!v.from_cache);
    let contact: Value = serde_json::from_str(&v.contact).unwrap();
    assert_eq!(contact["firstName"], "Dana");
    let notes: Value = serde_json::from_str(&v.notes).unwrap();
    assert_eq!(notes.as_array().unwrap().len(), 1);
    let appointments: Value = serde_json::from_str(&v.appointments).unwrap();
    assert_eq!(appointments[0]["title"], "Renewal review");

    // Within the TTL: no request at all.
    let count = h.mock.requests().len();
    let cached = view(&h, Subject::ContactId(dana.clone()));
    assert!(cached.from_cache);
    assert!(cached.operations.is_empty());
    assert_eq!(h.mock.requests().len(), count);
    assert_eq!(cached.notes, v.notes);

    // A write the plugin makes to the contact drops its cached view.
    platform(&h, json!({"id": "e1", "type": "note.created", "contact": {"id": dana}, "note": {"ref": "n1", "body": "Prefers mornings."}})).unwrap();
    let fresh = view(&h, Subject::ContactId(dana.clone()));
    assert!(!fresh.from_cache);
    assert_eq!(fresh.operations.len(), 4);
    assert_eq!(serde_json::from_str::<Value>(&fresh.notes).unwrap().as_array().unwrap().len(), 2);
}

#[test]
fn an_action_that_writes_to_a_contact_drops_its_cached_view() {
    let h = harness(json!({"view_cache_ttl_seconds": 300}));
    let id = h.mock.seed_contact(json!({"locationId": LOCATION, "firstName": "Ana", "phone": "+13125550187"}));
    view(&h, Subject::ContactId(id.clone()));
    assert!(view(&h, Subject::ContactId(id.clone())).from_cache);
    h.runtime.invoke("get-contact", &json!({"contactId": id}).to_string()).unwrap().unwrap();
    assert!(view(&h, Subject::ContactId(id.clone())).from_cache, "a read keeps the cache");
    h.runtime.invoke("update-contact", &json!({"contactId": id, "body": {"firstName": "Anna"}}).to_string()).unwrap().unwrap();
    let fresh = view(&h, Subject::ContactId(id));
    assert!(!fresh.from_cache);
    assert_eq!(serde_json::from_str::<Value>(&fresh.contact).unwrap()["firstName"], "Anna");
}

#[test]
fn the_view_cache_can_be_turned_off_and_unknown_subjects_are_typed_errors() {
    let h = harness(json!({"view_cache_ttl_seconds": 0}));
    let id = h.mock.seed_contact(json!({"locationId": LOCATION, "phone": "+13125550187"}));
    view(&h, Subject::ContactId(id.clone()));
    assert!(!view(&h, Subject::ContactId(id)).from_cache);
    assert!(matches!(h.runtime.view(&Subject::Phone("+1 (415) 555-0199".into())).unwrap(), Err(SyncError::NotFound(_))));
    assert!(matches!(h.runtime.view(&Subject::DialpadContact("404".into())).unwrap(), Err(SyncError::NotFound(_))));
    assert!(matches!(h.runtime.view(&Subject::Phone("not a number".into())).unwrap(), Err(SyncError::MalformedEvent(_))));
    let missing = h.runtime.view(&Subject::ContactId("no-such-contact".into())).unwrap();
    assert!(matches!(missing, Err(SyncError::Upstream(ref u)) if u.status == 400 || u.status == 404), "{missing:?}");
}

// ---- 2. Contact created / updated / deleted -------------------------------------------------

fn mapping_config(on_delete: &str) -> Value {
    json!({
        "contact_tags": ["dialpad"],
        "on_contact_deleted": on_delete,
        "field_mapping": [
            {"to": "firstName", "from": "first_name"},
            {"to": "lastName", "from": "last_name"},
            {"to": "email", "from": "primary_email"},
            {"to": "phone", "from": "primary_phone"},
            {"to": "companyName", "from": "company_name"},
            {"custom_field": {"key": "contact.job_title"}, "from": "job_title"},
            {"to": "source", "template": "Dialpad ({{type}} contact)"}
        ]
    })
}

#[test]
fn contact_events_create_then_update_through_the_mapping_and_a_redelivery_writes_nothing() {
    let h = harness(mapping_config("ignore"));
    let created = h.handle_fixture("contact_created_shared.json").unwrap();
    assert_eq!(ids(&created), ["get-duplicate-contact", "get-duplicate-contact", "create-contact"]);
    let contacts = h.mock.contacts();
    assert_eq!(contacts.len(), 1);
    let c = &contacts[0];
    assert_eq!((c["firstName"].as_str(), c["lastName"].as_str(), c["companyName"].as_str()), (Some("Dana"), Some("Whitfield"), Some("Whitfield Logistics")));
    assert_eq!(
        (c["email"].as_str(), c["phone"].as_str(), c["source"].as_str()),
        (Some("dana.whitfield@example.org"), Some("+12065550174"), Some("Dialpad (shared contact)"))
    );
    assert_eq!(c["customFields"][0]["value"], "Operations Manager");
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(tags_of(&h, &id), ["dialpad"]);

    assert_eq!(h.handle_fixture("contact_created_shared.json").unwrap().outcome, Outcome::Unchanged);
    let updated = h.handle_fixture("contact_updated_new_email.json").unwrap();
    assert_eq!(operations(&updated), [("update-contact".to_string(), Some(200))]);
    assert_eq!(h.mock.contacts()[0]["email"], "dana@whitfield-logistics.example.org");
    assert_eq!(h.mock.contacts().len(), 1);

    // The caller's later call lands on the same contact: the phone is linked.
    let missed = h.handle_fixture("call_inbound_missed.json").unwrap();
    assert_eq!(missed.contact_id.as_deref(), Some(id.as_str()));
    assert_eq!(ids(&missed), ["create-note"]);
}

#[test]
fn a_contact_known_from_a_call_is_updated_not_duplicated() {
    let h = harness(mapping_config("ignore"));
    let call = h.handle_fixture("call_inbound_missed.json").unwrap();
    let created = h.handle_fixture("contact_created_shared.json").unwrap();
    assert_eq!(ids(&created), ["update-contact", "add-tags"]);
    assert_eq!(created.contact_id, call.contact_id);
    assert_eq!(h.mock.contacts().len(), 1);
}

#[test]
fn what_a_delete_does_is_configured() {
    for (mode, expected_ops) in [("ignore", vec![]), ("tag", vec!["add-tags"]), ("delete", vec!["delete-contact"])] {
        let h = harness(mapping_config(mode));
        h.handle_fixture("contact_created_shared.json").unwrap();
        let id = h.mock.contacts()[0]["id"].as_str().unwrap().to_string();
        let deleted = h.handle_fixture("contact_deleted.json").unwrap();
        assert_eq!(ids(&deleted), expected_ops, "{mode}");
        match mode {
            "ignore" => assert!(matches!(deleted.outcome, Outcome::Skipped(_))),
            "tag" => assert_eq!(tags_of(&h, &id), ["dialpad", "dialpad-deleted"]),
            _ => assert!(h.mock.contacts().is_empty()),
        }
        // A redelivered delete does nothing more.
        let again = h.handle_fixture("contact_deleted.json").unwrap();
        assert!(again.operations.is_empty(), "{mode}: {again:?}");
    }
}

// ---- 3. Platform task and note events, recap action items ------------------------------------

#[test]
fn platform_events_create_update_and_complete_tasks_and_notes() {
    let h = harness(json!({}));
    let dana = h.mock.seed_contact(json!({"locationId": LOCATION, "firstName": "Dana", "phone": "+12065550174", "email": "dana@example.org"}));
    let task = json!({"id": "e1", "type": "task.created", "contact": {"phone": "(206) 555-0174"},
        "task": {"ref": "crm-7", "title": "Prepare renewal", "body": "3-year option", "due": "2026-03-13T09:00:00-06:00", "assigned_to": "user-1"}});
    let created = platform(&h, task.clone()).unwrap();
    assert_eq!(ids(&created), ["get-duplicate-contact", "create-task"]);
    let t = &tasks_of(&h, &dana)[0];
    assert_eq!(
        (t["title"].as_str(), t["dueDate"].as_str(), t["assignedTo"].as_str(), t["completed"].as_bool()),
        (Some("Prepare renewal"), Some("2026-03-13T09:00:00-06:00"), Some("user-1"), Some(false))
    );
    assert_eq!(platform(&h, task).unwrap().outcome, Outcome::Unchanged);

    let updated = platform(&h, json!({"id": "e2", "type": "task.updated", "task": {"ref": "crm-7", "title": "Prepare renewal (3y)"}})).unwrap();
    assert_eq!(ids(&updated), ["update-task"]);
    let completed = platform(&h, json!({"id": "e3", "type": "task.completed", "task": {"ref": "crm-7"}})).unwrap();
    assert_eq!(ids(&completed), ["update-task-completed"]);
    let t = &tasks_of(&h, &dana)[0];
    assert_eq!((t["title"].as_str(), t["completed"].as_bool()), (Some("Prepare renewal (3y)"), Some(true)));

    platform(&h, json!({"id": "e4", "type": "note.created", "contact": {"email": "DANA@example.org"}, "note": {"ref": "n-1", "body": "Likes mornings."}}))
        .unwrap();
    platform(&h, json!({"id": "e5", "type": "note.updated", "note": {"ref": "n-1", "body": "Likes mornings; no Fridays."}})).unwrap();
    let notes = h.mock.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!((notes[0]["contactId"].as_str(), notes[0]["body"].as_str()), (Some(dana.as_str()), Some("Likes mornings; no Fridays.")));
}

#[test]
fn bad_platform_events_are_typed_errors_and_write_nothing() {
    let h = harness(json!({}));
    let err = platform(&h, json!({"type": "task.created", "task": {"title": "x", "due": "tomorrow"}})).unwrap_err();
    let SyncError::InvalidInput(problems) = err else { panic!("{err:?}") };
    assert_eq!(problems.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["/id", "/task/ref", "/task/due", "/contact"]);
    assert!(matches!(platform(&h, json!({"id": "e", "type": "task.completed", "task": {"ref": "never-created"}})), Err(SyncError::NotFound(_))));
    assert!(matches!(
        platform(&h, json!({"id": "e", "type": "note.created", "contact": {"phone": "+14155550199"}, "note": {"ref": "r", "body": "b"}})),
        Err(SyncError::NotFound(_))
    ));
    assert!(h.mock.notes().is_empty() && h.mock.tasks().is_empty());
}

/// Platform events are signed with their own secret: unsigned, signed with the webhook secret,
/// or sent while no `platform_secret` is configured, they are refused by every trigger and
/// write nothing.
#[test]
fn platform_events_need_their_own_signature_and_are_off_without_their_secret() {
    let h = harness(json!({"webhook_secret": FIXTURE_SECRET}));
    h.mock.seed_contact(json!({"locationId": LOCATION, "firstName": "Dana", "phone": "+12065550174"}));
    let note = json!({"id": "e1", "type": "note.created", "contact": {"phone": "(206) 555-0174"}, "note": {"ref": "n-1", "body": "forged"}}).to_string();
    let off = harness(json!({"webhook_secret": FIXTURE_SECRET, "platform_secret": null}));
    for (rt, body) in [
        (&h.runtime, note.as_bytes().to_vec()),
        (&h.runtime, host_test::jwt::sign(note.as_bytes(), FIXTURE_SECRET).into_bytes()),
        (&off.runtime, e2e_tests::signed_platform_event(&note)),
    ] {
        let event = Inbound::new(Source::Platform, body);
        assert!(matches!(rt.route(&event).unwrap(), Err(SyncError::InvalidSignature(_))));
        assert!(matches!(rt.handle(&event).unwrap().result, Err(SyncError::InvalidSignature(_))));
        assert!(matches!(rt.plan(&event).unwrap(), Err(SyncError::InvalidSignature(_))));
    }
    assert!(h.mock.requests().is_empty() && off.mock.requests().is_empty());
    assert!(h.mock.notes().is_empty());
}

/// The door (`route`) holds a signed event's `exp` to the clock; `handle` runs later, after
/// retries or from the dead letters, and never refuses what the door accepted for its age.
#[test]
fn a_token_accepted_at_the_door_is_handled_after_it_expires_and_redelivered_harmlessly() {
    let h = harness(json!({"jwt_leeway_seconds": 0}));
    h.mock.seed_contact(json!({"locationId": LOCATION, "firstName": "Dana", "phone": "+12065550174"}));
    let now = host_test::jwt::now();
    let task = json!({"id": "e-exp", "type": "task.created", "contact": {"phone": "(206) 555-0174"}, "iat": now, "exp": now + 1,
        "task": {"ref": "t-exp", "title": "Call back", "due": "2026-03-13T09:00:00-06:00"}});
    let event = Inbound::new(Source::Platform, host_test::jwt::sign(task.to_string().as_bytes(), e2e_tests::PLATFORM_SECRET).into_bytes());
    assert!(h.runtime.route(&event).unwrap().is_ok(), "fresh at the door");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let refused = h.runtime.route(&event).unwrap();
    assert!(matches!(refused, Err(SyncError::InvalidSignature(ref m)) if m.starts_with("JWT expired: exp")), "{refused:?}");
    // Accepted before it expired: handled now all the same, once.
    assert_eq!(h.runtime.handle(&event).unwrap().result.unwrap().outcome, Outcome::Synced);
    assert_eq!(h.runtime.handle(&event).unwrap().result.unwrap().outcome, Outcome::Unchanged);
    assert_eq!(h.mock.tasks().len(), 1);
}

#[test]
fn recap_action_items_become_tasks_once_and_the_recap_updates_the_calls_note() {
    let h = harness(json!({"time_zone": "America/New_York", "recap_action_items": {"due": {"next_day_at": "09:00"}, "assigned_to": "user-7"}}));
    h.handle_fixture("call_inbound_hangup_completed.json").unwrap();
    let recap = h.handle_fixture("call_recap_summary.json").unwrap();
    assert_eq!(ids(&recap), ["update-note", "create-task", "create-task"]);
    let contact = recap.contact_id.clone().unwrap();
    let tasks = tasks_of(&h, &contact);
    assert_eq!(
        tasks.iter().map(|t| t["title"].as_str().unwrap()).collect::<Vec<_>>(),
        ["Send Priya the annual billing quote for 12 seats plus 2 fax lines", "Follow up on Friday to confirm the signed order form"]
    );
    // The recap event is 2026-03-10 15:09 UTC: the next day at 09:00 in New York (EDT).
    assert_eq!(tasks[0]["dueDate"], "2026-03-11T09:00:00-04:00");
    assert_eq!(tasks[0]["assignedTo"], "user-7");
    assert_eq!(h.mock.notes().len(), 1);
    assert!(h.mock.notes()[0]["body"].as_str().unwrap().contains("Automations: recap action items"));
    assert_eq!(h.handle_fixture("call_recap_summary.json").unwrap().outcome, Outcome::Unchanged);
    assert_eq!(tasks_of(&h, &contact).len(), 2);
}

#[test]
fn action_items_can_be_turned_off() {
    let h = harness(json!({"recap_action_items": {"create_tasks": false}}));
    h.handle_fixture("call_inbound_hangup_completed.json").unwrap();
    assert_eq!(ids(&h.handle_fixture("call_recap_summary.json").unwrap()), ["update-note"]);
    assert!(h.mock.tasks().is_empty());
}

// ---- 4. Follow-up task rules, one per condition kind ------------------------------------------

/// The titles of the tasks a single rule makes over a whole day of events.
fn tasks_made_by(when: Value) -> Vec<String> {
    let h = harness(json!({
        "time_zone": "America/Chicago",
        "recap_action_items": {"create_tasks": false},
        "follow_up_rules": [{"name": "rule", "when": when, "task": {"title": "{{outcome}} {{direction}} {{phone}}", "due": {"after_minutes": 30}}}]
    }));
    for f in e2e_tests::DAY_OF_EVENTS {
        let _ = h.handle_fixture(f);
    }
    let mut titles: Vec<String> = h.mock.tasks().iter().map(|t| t["title"].as_str().unwrap().to_string()).collect();
    titles.sort();
    titles
}

#[test]
fn follow_up_rule_on_outcome() {
    assert_eq!(tasks_made_by(json!({"outcomes": ["missed"]})), ["missed inbound +12065550174"]);
    assert_eq!(tasks_made_by(json!({"outcomes": ["voicemail"]})), ["voicemail inbound +17375550166"]);
}

#[test]
fn follow_up_rule_on_duration() {
    assert_eq!(tasks_made_by(json!({"min_duration_seconds": 200})), ["completed inbound +13125550187"]);
    assert_eq!(tasks_made_by(json!({"min_duration_seconds": 100, "max_duration_seconds": 200})), ["completed outbound +15035550139"]);
}

#[test]
fn follow_up_rule_on_direction_and_labels() {
    assert_eq!(tasks_made_by(json!({"direction": "outbound"})), ["completed outbound +15035550139"]);
    assert_eq!(tasks_made_by(json!({"labels": ["Follow-Up"]})), ["completed outbound +15035550139"]);
}

#[test]
fn follow_up_rule_on_keywords_and_patterns_in_transcript_or_recap() {
    assert_eq!(tasks_made_by(json!({"keywords": ["call me back"], "text_in": ["transcript"]})), ["voicemail inbound +17375550166"]);
    assert_eq!(tasks_made_by(json!({"keywords": ["call me back"], "text_in": ["recap"]})), Vec::<String>::new());
    assert_eq!(tasks_made_by(json!({"pattern": r"\b\d+-seat\b", "text_in": ["recap"]})), ["completed inbound +13125550187"]);
}

#[test]
fn a_rule_fires_once_per_call_with_a_due_date_in_the_configured_zone() {
    let h = harness(json!({
        "time_zone": "America/Chicago",
        "follow_up_rules": [{"name": "callback", "when": {"outcomes": ["voicemail"]},
            "task": {"title": "Call {{contact_name}} back", "body": "Voicemail: {{phone}}", "assigned_to": "user-2", "due": {"next_day_at": "09:30"}}}]
    }));
    let first = h.handle_fixture("call_voicemail_uploaded.json").unwrap();
    assert_eq!(ids(&first), ["get-duplicate-contact", "create-contact", "create-note", "create-task"]);
    // The transcript is a later piece of the same call: the note is updated, no second task.
    let later = h.handle_fixture("call_voicemail_transcription.json").unwrap();
    assert_eq!(ids(&later), ["update-note"]);
    assert_eq!(h.handle_fixture("call_voicemail_uploaded.json").unwrap().outcome, Outcome::Unchanged);
    let tasks = h.mock.tasks();
    assert_eq!(tasks.len(), 1);
    // The body ends with the call's marker, by which a retry knows the task as its own.
    assert_eq!(
        (tasks[0]["title"].as_str(), tasks[0]["body"].as_str()),
        (Some("Call +17375550166 back"), Some("Voicemail: +17375550166\n\nDialpad call ID: 6307351874682880"))
    );
    // 2026-03-11 09:12 UTC is 04:12 in Chicago (CDT): next day at 09:30 local.
    assert_eq!(tasks[0]["dueDate"], "2026-03-12T09:30:00-05:00");
}

#[test]
fn on_a_stateless_host_the_note_says_which_rules_fired_so_none_fires_twice() {
    let h =
        harness(json!({"follow_up_rules": [{"name": "vm", "when": {"outcomes": ["voicemail"]}, "task": {"title": "Call back", "due": {"after_minutes": 5}}}]}));
    h.handle_fixture("call_voicemail_uploaded.json").unwrap();
    // A host whose key-value store forgets (wasmtime serve): the plugin finds the call's note,
    // reads "Automations: vm" on it, merges the transcript in, and makes no second task.
    let stateless = h.runtime_with(h.settings.runtime_options(false).unwrap(), dialpad_ghl_host::capability::keyvalue::KeyValueStore::new());
    let later = stateless.handle_webhook(&fixture("call_voicemail_transcription.json")).unwrap().unwrap();
    // The rule matches again; the task it would make is already there (same title and body,
    // whose last line is the call's marker), so it is not made twice.
    assert_eq!(ids(&later), ["get-duplicate-contact", "get-all-notes", "update-note", "get-all-tasks"]);
    assert_eq!(h.mock.tasks().len(), 1);
    assert_eq!(h.mock.notes().len(), 1);
    assert!(h.mock.notes()[0]["body"].as_str().unwrap().contains("Automations: vm\n\nTranscript:"));
}

// ---- 5. Tag rules ------------------------------------------------------------------------------

#[test]
fn tag_rules_add_and_remove_tags_on_calls_and_messages() {
    let h = harness(json!({
        "tag_rules": [
            {"name": "billing", "when": {"pattern": "annual (billing|pricing)", "text_in": ["recap"]}, "add": ["billing-interest"]},
            {"name": "warm", "when": {"direction": "outbound", "labels": ["sales"]}, "add": ["warm"], "remove": ["cold-lead"]},
            {"name": "sms quote", "when": {"on": "sms", "keywords": ["QUOTE"]}, "add": ["sms-lead"]},
            {"name": "never", "when": {"on": "sms", "keywords": ["unsubscribe"]}, "add": ["stop"]}
        ],
        "recap_action_items": {"create_tasks": false}
    }));
    let kenji = h.mock.seed_contact(json!({"locationId": LOCATION, "firstName": "Kenji", "phone": "+15035550139", "tags": ["cold-lead", "vip"]}));
    let outbound = h.handle_fixture("call_outbound_hangup_recorded.json").unwrap();
    assert_eq!(ids(&outbound), ["get-duplicate-contact", "create-note", "add-tags", "remove-tags"]);
    assert_eq!(tags_of(&h, &kenji), ["vip", "warm"]);

    let call = h.handle_fixture("call_inbound_hangup_completed.json").unwrap();
    let priya = call.contact_id.unwrap();
    assert!(tags_of(&h, &priya).is_empty());
    h.handle_fixture("call_recap_summary.json").unwrap();
    h.handle_fixture("sms_inbound.json").unwrap();
    assert_eq!(tags_of(&h, &priya), ["billing-interest", "sms-lead"]);
    // Redelivered: nothing more.
    assert!(h.handle_fixture("sms_inbound.json").unwrap().operations.is_empty());
}

#[test]
fn a_dry_run_shows_the_rules_steps_without_sending_them() {
    let h = harness(
        json!({"follow_up_rules": [{"name": "missed", "when": {"outcomes": ["missed"]}, "task": {"title": "Call back", "due": {"after_minutes": 60}}}],
        "tag_rules": [{"name": "t", "when": {"outcomes": ["missed"]}, "add": ["missed-call"]}]}),
    );
    let plan = h.runtime.plan_webhook(&fixture("call_inbound_missed.json")).unwrap().unwrap();
    let ops: Vec<&str> = plan.operations.iter().map(|o| o.operation_id.as_str()).collect();
    assert_eq!(ops, ["get-duplicate-contact", "get-duplicate-contact", "create-contact", "create-note", "add-tags", "create-task"]);
    let task: Value = serde_json::from_str(plan.operations[5].body.as_deref().unwrap()).unwrap();
    assert_eq!(task, json!({"title": "Call back", "body": "Dialpad call ID: 5402917760802816", "dueDate": "2026-03-10T17:21:13+00:00", "completed": false}));
    assert!(h.mock.requests().is_empty());
}

// ---- 6. Configuration errors, with their paths --------------------------------------------------

#[test]
fn configuration_errors_come_back_with_their_paths() {
    let h = harness(json!({}));
    let problems = h
        .runtime
        .validate_config(
            &json!({"location_id": "L", "time_zone": "Moon/Base",
                "tag_rules": [{"name": "x", "when": {"pattern": "(unclosed"}, "add": ["y"]}],
                "field_mapping": [{"to": "shoeSize", "from": "first_name"}]})
            .to_string(),
        )
        .unwrap();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["/time_zone", "/field_mapping/0/to", "/tag_rules/0/when/pattern"]);
    assert!(h.runtime.validate_config(&json!({"location_id": "L"}).to_string()).unwrap().is_empty());

    // A host that loads a bad configuration gets every problem on the first event.
    let bad = harness(json!({"follow_up_rules": [{"name": "r", "when": {"outcomes": ["lost"]}, "task": {}}]}));
    let err = bad.handle_fixture("call_inbound_missed.json").unwrap_err();
    let SyncError::BadConfig(problems) = err else { panic!("{err:?}") };
    assert_eq!(problems.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["/follow_up_rules/0/when/outcomes/0", "/follow_up_rules/0/task/title"]);
    assert!(bad.mock.requests().is_empty());
}

#[test]
fn mms_with_no_text_is_kept() {
    let h = harness(json!({}));
    let body = fixture_with("sms_inbound.json", |e| {
        e["text"] = json!("");
        e["text_content"] = json!("");
        e["mms"] = json!(true);
        e["mms_url"] = json!("https://dialpad.com/mms/EXAMPLE");
    });
    h.handle(&body).unwrap();
    let note = h.mock.notes()[0]["body"].as_str().unwrap().to_string();
    assert!(note.contains("Media: https://dialpad.com/mms/EXAMPLE") && note.contains("(no text)"), "{note}");
}
