//! `serve` in this process: its answers to every kind of delivery, `/healthz`, `/metrics`,
//! how often one delivery runs the plugin, retries and dead-letter replay. (The same server as
//! a separate process, killed and restarted, is tested with the binary: `cli/tests/serve.rs`.)
//! Each test runs twice: with its state in a SQLite file (`…_on_sqlite`) and in a PostgreSQL
//! database (`…_on_postgres`).

use e2e_tests::on_both_stores;
use e2e_tests::serve::{get_json, in_process_on, json_fixture as fixture, loopback_options, mock, sign, Store, SECRET, TOKEN};
use e2e_tests::{signed_platform_event, FIXTURES};
use host_test::ghl_mock::{FaultKind, Faults};
use host_test::support::loopback_request;
use serde_json::{json, Value};
use std::time::Duration;

on_both_stores!(refusals_are_typed_and_accepted_deliveries_are_handled_and_counted
    => refusals_are_typed_and_accepted_deliveries_are_handled_and_counted_on_sqlite, refusals_are_typed_and_accepted_deliveries_are_handled_and_counted_on_postgres);

fn refusals_are_typed_and_accepted_deliveries_are_handled_and_counted(store: Store) {
    let mock = mock();
    let (server, _) = in_process_on(store, &mock, |s| s.set("webhook_secret", SECRET), loopback_options(), "serve-answers");
    let post = |path: &str, body: &[u8]| {
        let (status, text) = loopback_request("POST", &format!("{}{path}", server.webhook_url()), body).unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)))
    };
    let hangup = fixture("call_inbound_hangup_completed.json");

    let (status, answer) = post("/webhooks/dialpad", &sign(&hangup, SECRET));
    assert_eq!((status, answer["kind"].as_str(), answer["lane"].as_str()), (200, Some("call"), Some("phone:+13125550187")), "{answer}");
    // The fixture's own signed vector, under its own secret, is refused here: wrong secret.
    let signed_fixture = std::fs::read(format!("{FIXTURES}call_inbound_hangup_completed.jwt")).unwrap();
    let (status, answer) = post("/webhooks/dialpad", &signed_fixture);
    assert_eq!((status, answer["type"].as_str()), (401, Some("invalid-signature")), "{answer}");
    assert!(answer["plain"].as_str().unwrap().contains("webhook secret"), "{answer}");
    let (status, answer) = post("/webhooks/dialpad", hangup.to_string().as_bytes());
    assert_eq!((status, answer["type"].as_str()), (401, Some("invalid-signature")), "unsigned while a secret is set: {answer}");
    let (status, answer) = post("/webhooks/dialpad", b"not an event");
    assert_eq!((status, answer["type"].as_str()), (400, Some("malformed-event")), "{answer}");
    let (status, _) = post("/webhooks/dialpad", &vec![b'x'; dialpad_ghl_host::serve::MAX_BODY_BYTES + 1]);
    assert_eq!(status, 413);
    let (status, answer) = post("/events/platform", &signed_platform_event(r#"{"id":"evt-1","type":"task.created"}"#));
    assert_eq!((status, answer["type"].as_str()), (400, Some("invalid-input")), "{answer}");
    assert_eq!(loopback_request("GET", &format!("{}/metrics", server.webhook_url()), b"").unwrap().0, 404, "metrics are on the admin listener only");

    assert!(server.wait_idle(Duration::from_secs(20)));
    let requests: Vec<String> = mock.requests().iter().map(|r| format!("{} {}", r.method, r.path_and_query)).collect();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!((mock.contacts().len(), mock.notes().len()), (1, 1));

    let health = get_json(&format!("{}/healthz", server.admin_url()));
    assert_eq!((health["status"].as_str(), health["queue_depth"].as_u64()), (Some("ok"), Some(0)), "{health}");
    let (status, metrics) = loopback_request("GET", &format!("{}/metrics", server.admin_url()), b"").unwrap();
    assert_eq!(status, 200);
    for line in [
        "dialpad_ghl_events_total{outcome=\"synced\"} 1",
        "dialpad_ghl_events_total{outcome=\"refused\"} 4",
        "dialpad_ghl_api_requests_total{status=\"201\"} 2",
        "dialpad_ghl_queue_depth 0",
        "dialpad_ghl_event_latency_seconds_count 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from\n{metrics}");
    }
    let events = get_json(&format!("{}/api/events", server.admin_url()));
    let statuses: Vec<&str> = events["events"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["refused", "refused", "refused", "refused", "done"]);
    let done = &events["events"][4];
    assert_eq!(done["plan"]["plan"].as_array().unwrap().len(), 3, "{done}");
    let http = done["http"].as_array().unwrap();
    assert_eq!(http.len(), 3);
    let shown = serde_json::to_string(&events).unwrap();
    assert!(!shown.contains(TOKEN) && !shown.contains(SECRET), "a secret reached the monitor");
    assert!(http.iter().all(|x| x["request_headers"].as_array().unwrap().iter().any(|h| h[0] == "authorization" && h[1] == "[redacted]")));
}

on_both_stores!(unsigned_platform_events_and_expired_tokens_are_refused_401_and_write_nothing
    => unsigned_platform_events_and_expired_tokens_are_refused_401_and_write_nothing_on_sqlite, unsigned_platform_events_and_expired_tokens_are_refused_401_and_write_nothing_on_postgres);

/// Issue 14: with a webhook secret set, an unsigned platform event got 200 and wrote a note on
/// the contact it found by phone, and a signed webhook from the year 2000 was synced. Now
/// both are refused at the door, 401, and nothing is queued, sent or written; with no
/// `platform_secret`, platform events are off altogether.
fn unsigned_platform_events_and_expired_tokens_are_refused_401_and_write_nothing(store: Store) {
    let mock = mock();
    mock.seed_contact(json!({"locationId": e2e_tests::serve::LOCATION, "firstName": "Priya", "phone": "+13125550187"}));
    let note = json!({"id": "evt-forged", "type": "note.created", "contact": {"phone": "(312) 555-0187"}, "note": {"ref": "n-forged", "body": "forged"}});
    let mut old = fixture("call_inbound_hangup_completed.json");
    old["iat"] = json!(946_684_800); // 2000-01-01
    old["exp"] = json!(946_688_400);
    for (name, platform_secret) in [("serve-unsigned-platform", Some(e2e_tests::PLATFORM_SECRET)), ("serve-platform-off", None)] {
        let (server, _) = in_process_on(
            store,
            &mock,
            |s| {
                s.set("webhook_secret", SECRET);
                if platform_secret.is_none() {
                    s.plugin_config.remove("platform_secret");
                }
            },
            loopback_options(),
            name,
        );
        let post = |path: &str, body: &[u8]| {
            let (status, text) = loopback_request("POST", &format!("{}{path}", server.webhook_url()), body).unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap())
        };
        let (status, answer) = post("/events/platform", note.to_string().as_bytes());
        assert_eq!((status, answer["type"].as_str()), (401, Some("invalid-signature")), "{name}: {answer}");
        if platform_secret.is_none() {
            assert!(answer["message"].as_str().unwrap().contains("platform events are off until `platform_secret` is configured"), "{answer}");
            let (status, _) = post("/events/platform", &signed_platform_event(&note.to_string()));
            assert_eq!(status, 401, "off means off, signed or not");
        }
        let (status, answer) = post("/webhooks/dialpad", &sign(&old, SECRET));
        assert_eq!((status, answer["type"].as_str()), (401, Some("invalid-signature")), "{name}: {answer}");
        assert!(answer["message"].as_str().unwrap().starts_with("JWT expired: exp 946688400 (2000-01-01 01:00 UTC)"), "{answer}");
        assert!(server.wait_idle(Duration::from_secs(20)));
        let events = get_json(&format!("{}/api/events", server.admin_url()));
        assert!(events["events"].as_array().unwrap().iter().all(|e| e["status"] == "refused"), "nothing queued: {events}");
    }
    assert!(mock.requests().is_empty(), "{:?}", mock.requests());
    assert_eq!((mock.contacts().len(), mock.notes().len(), mock.tasks().len()), (1, 0, 0));
}

on_both_stores!(a_delivery_runs_the_plugin_twice_and_the_page_shows_the_plan_that_ran
    => a_delivery_runs_the_plugin_twice_and_the_page_shows_the_plan_that_ran_on_sqlite, a_delivery_runs_the_plugin_twice_and_the_page_shows_the_plan_that_ran_on_postgres);

/// One delivery runs the plugin at most twice (`route` at the door, `handle` in the worker), and
/// the plan on the page is the plan that ran: what its steps name is what the report performed.
fn a_delivery_runs_the_plugin_twice_and_the_page_shows_the_plan_that_ran(store: Store) {
    let mock = mock();
    let (server, plugin) = in_process_on(store, &mock, |_| {}, loopback_options(), "serve-calls");
    let hangup = fixture("call_inbound_hangup_completed.json");
    let mut anonymous = fixture("call_inbound_missed.json");
    anonymous["external_number"] = json!("");
    anonymous["contact"]["phone"] = json!("");
    let task = json!({"id": "evt-calls-1", "type": "task.created", "contact": {"phone": hangup["external_number"]},
        "task": {"ref": "crm-task-1", "title": "Call back", "due": "2026-03-12T09:00:00-05:00"}});
    let deliveries: Vec<(&str, Vec<u8>)> = vec![
        ("/webhooks/dialpad", hangup.to_string().into_bytes()),
        ("/webhooks/dialpad", fixture("call_recap_summary.json").to_string().into_bytes()),
        ("/webhooks/dialpad", fixture("sms_inbound.json").to_string().into_bytes()),
        ("/webhooks/dialpad", anonymous.to_string().into_bytes()),
        ("/events/platform", signed_platform_event(&task.to_string())),
        ("/webhooks/dialpad", hangup.to_string().into_bytes()),
    ];
    let calls_before = plugin.plugin_calls();
    for (path, body) in &deliveries {
        let (status, text) = loopback_request("POST", &format!("{}{path}", server.webhook_url()), body).unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        assert!(server.wait_idle(Duration::from_secs(20)), "one at a time, so the platform event finds its contact");
    }
    assert_eq!(plugin.plugin_calls() - calls_before, 2 * deliveries.len() as u64, "route at the door, handle in the worker, nothing else");

    let events = get_json(&format!("{}/api/events", server.admin_url()));
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), deliveries.len());
    // Newest first.
    let outcomes: Vec<&str> = events.iter().map(|e| e["outcome"]["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["unchanged", "synced", "skipped", "synced", "synced", "synced"], "{events:?}");
    for event in events {
        let (plan, outcome) = (&event["plan"], &event["outcome"]);
        assert_eq!(plan["dry_run"], false, "{event}");
        assert_eq!((&plan["event_key"], &plan["outcome"]), (&outcome["event_key"], &outcome["outcome"]), "{event}");
        // Every request the report performed is a step of the plan, in the plan's order (a
        // conditional step that was not needed is in the plan and not in the report).
        let planned: Vec<&str> = plan["plan"].as_array().unwrap().iter().map(|s| s["operation_id"].as_str().unwrap()).collect();
        let mut steps = planned.iter();
        for performed in outcome["operations"].as_array().unwrap() {
            let id = performed["operation_id"].as_str().unwrap();
            assert!(steps.any(|p| *p == id), "{id} was performed but is not next in the plan {planned:?}: {event}");
        }
    }
}

on_both_stores!(transient_failures_are_retried_then_dead_lettered_and_a_replay_gets_through
    => transient_failures_are_retried_then_dead_lettered_and_a_replay_gets_through_on_sqlite, transient_failures_are_retried_then_dead_lettered_and_a_replay_gets_through_on_postgres);

fn transient_failures_are_retried_then_dead_lettered_and_a_replay_gets_through(store: Store) {
    let mock = mock();
    let (server, _) = in_process_on(store, &mock, |_| {}, loopback_options(), "serve-retries");
    mock.set_faults(Some(Faults { rate: 1.0, seed: 1, kinds: vec![FaultKind::ServerError(500)] }));
    let body = fixture("call_inbound_hangup_completed.json").to_string();
    let (status, _) = loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), body.as_bytes()).unwrap();
    assert_eq!(status, 200);
    assert!(server.wait_idle(Duration::from_secs(20)));
    let events = get_json(&format!("{}/api/events", server.admin_url()));
    let event = &events["events"][0];
    let failed = event["id"].clone();
    assert_eq!((event["status"].as_str(), event["attempts"].as_u64()), (Some("failed"), Some(3)), "{event}");
    assert!(event["outcome"]["plain"].as_str().unwrap().contains("HighLevel failed (500)"), "{event}");
    let letters = events["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{events}");
    assert_eq!(mock.contacts().len(), 0);

    mock.set_faults(None);
    let replay = format!("{}/api/dead-letters/{}/replay", server.admin_url(), letters[0]["id"]);
    let (status, answer) = loopback_request("POST", &replay, b"").unwrap();
    assert_eq!(status, 202, "{answer}");
    assert!(server.wait_idle(Duration::from_secs(20)));
    let events = get_json(&format!("{}/api/events", server.admin_url()));
    assert_eq!(events["dead_letters"].as_array().unwrap().len(), 0, "{events}");
    assert_eq!(events["events"][0]["status"], "done");
    // The replay is linked to the failed delivery, both ways.
    assert_eq!(events["events"][0]["replay_of"], failed);
    assert_eq!(get_json(&format!("{}/api/deliveries/{failed}", server.admin_url()))["replayed_by"], events["events"][0]["id"]);
    assert_eq!((mock.contacts().len(), mock.notes().len()), (1, 1));
    let (status, _) = loopback_request("POST", &replay, b"").unwrap();
    assert_eq!(status, 404, "the letter is gone");
}

on_both_stores!(a_dead_letter_whose_token_expired_since_is_replayed_from_the_page
    => a_dead_letter_whose_token_expired_since_is_replayed_from_the_page_on_sqlite, a_dead_letter_whose_token_expired_since_is_replayed_from_the_page_on_postgres);

/// A signed delivery accepted at the door and then dead-lettered is replayed from the page after
/// its token has expired: it is queued again with the lane it was accepted with, not refused
/// for its age (nothing accepted is lost).
fn a_dead_letter_whose_token_expired_since_is_replayed_from_the_page(store: Store) {
    let mock = mock();
    let adjust = |s: &mut dialpad_ghl_host::settings::Settings| {
        s.set("webhook_secret", SECRET);
        s.set("jwt_leeway_seconds", 0);
    };
    let (server, _) =
        in_process_on(store, &mock, adjust, dialpad_ghl_host::serve::ServeOptions { max_attempts: 1, ..loopback_options() }, "serve-expired-replay");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut claims = fixture("call_inbound_hangup_completed.json");
    claims["exp"] = json!(now + 2);
    mock.set_faults(Some(Faults { rate: 1.0, seed: 1, kinds: vec![FaultKind::ServerError(500)] }));
    let (status, answer) = loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), &sign(&claims, SECRET)).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(server.wait_idle(Duration::from_secs(20)));
    let letters = get_json(&format!("{}/api/events", server.admin_url()))["dead_letters"].clone();
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    mock.set_faults(None);
    // At the door the same body is now refused: the token has expired.
    std::thread::sleep(Duration::from_millis(3_100));
    let (status, refused) = loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), &sign(&claims, SECRET)).unwrap();
    assert_eq!(status, 401, "{refused}");
    let replay = format!("{}/api/dead-letters/{}/replay", server.admin_url(), letters[0]["id"]);
    let (status, answer) = loopback_request("POST", &replay, b"").unwrap();
    assert_eq!(status, 202, "{answer}");
    assert!(server.wait_idle(Duration::from_secs(20)));
    assert_eq!((mock.contacts().len(), mock.notes().len()), (1, 1), "the replayed call reached HighLevel");
    assert!(get_json(&format!("{}/api/events", server.admin_url()))["dead_letters"].as_array().unwrap().is_empty());
}
