//! The operator's console's API against a real `serve`, the real component and the HighLevel
//! mock: a token outage fails every call, the banner names it, "replay all failed" recovers
//! every one of them linked both ways and logged; a call's story; search; discards; refusals.

use dialpad_ghl_host::serve::{ServeOptions, Server};
use e2e_tests::serve::{get_json, in_process, in_process_with, json_fixture as fixture, loopback_options, mock, sign, LOCATION, SECRET};
use host_test::support::loopback_request_with_headers;
use serde_json::{json, Value};
use std::time::Duration;

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let (status, text) = loopback_request_with_headers("POST", url, &[("Content-Type", "application/json")], body.to_string().as_bytes()).unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A hangup of its own call, from its own caller.
fn call(n: u64) -> Value {
    let mut call = fixture("call_inbound_hangup_completed.json");
    let phone = format!("+1206555{:04}", 100 + n);
    call["call_id"] = json!(7_100_000_000_000_000u64 + n);
    call["external_number"] = json!(phone);
    call["contact"]["phone"] = json!(phone);
    call["contact"]["id"] = json!(5_000_000_000_000_000u64 + n);
    call
}

fn deliver(server: &Server, body: &Value) {
    let (status, answer) =
        loopback_request_with_headers("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), &[], body.to_string().as_bytes()).unwrap();
    assert_eq!(status, 200, "{answer}");
}

fn deliveries(server: &Server, query: &str) -> Vec<Value> {
    get_json(&format!("{}/api/deliveries?{query}", server.admin_url()))["deliveries"].as_array().unwrap().clone()
}

#[test]
fn after_a_token_outage_replay_all_failed_recovers_every_call_linked_and_logged() {
    let mock = mock();
    let server = in_process(&mock, None, ServeOptions { max_attempts: 1, ..loopback_options() }, "console-outage");
    mock.refuse_tokens(true);
    for n in 0..6 {
        deliver(&server, &call(n));
    }
    assert!(server.wait_idle(Duration::from_secs(30)));
    let failed = deliveries(&server, "state=failed");
    assert_eq!(failed.len(), 6, "{failed:#?}");
    assert!(failed.iter().all(|row| row["error"] == "upstream:401"), "{failed:#?}");
    // The banner: every delivery of the location failing with 401, with what to do.
    let overview = get_json(&format!("{}/api/overview", server.admin_url()));
    assert_eq!(overview["failed"], 6);
    let incidents = overview["incidents"].as_array().unwrap();
    let credentials = incidents.iter().find(|i| i["kind"] == "credentials").unwrap_or_else(|| panic!("{overview:#}"));
    assert!(credentials["title"].as_str().unwrap().contains(LOCATION) && credentials["title"].as_str().unwrap().contains("401"), "{credentials:#}");
    assert!(credentials["advice"].as_str().unwrap().to_lowercase().contains("reconnect"), "{credentials:#}");

    mock.refuse_tokens(false);
    let (status, answer) = post_json(&format!("{}/api/deliveries/replay", server.admin_url()), &json!({"state": "failed"}));
    assert_eq!(status, 202, "{answer}");
    assert_eq!((answer["queued"].as_array().unwrap().len(), answer["skipped"].as_u64()), (6, Some(0)), "{answer}");
    assert!(server.wait_idle(Duration::from_secs(30)));
    assert_eq!((mock.contacts().len(), mock.notes().len()), (6, 6), "every call reached HighLevel once");
    for row in &failed {
        let old = get_json(&format!("{}/api/deliveries/{}", server.admin_url(), row["id"]));
        let new = get_json(&format!("{}/api/deliveries/{}", server.admin_url(), old["replayed_by"]));
        assert_eq!((new["replay_of"].clone(), new["state"].as_str()), (row["id"].clone(), Some("synced")), "{new:#}");
        assert_eq!(new["call_id"], old["call_id"]);
    }
    let overview = get_json(&format!("{}/api/overview", server.admin_url()));
    assert_eq!((overview["failed"].as_u64(), overview["incidents"].as_array().unwrap().len()), (Some(0), 0), "{overview:#}");
    // Replaying again finds nothing, and each replayed row refuses a second replay.
    let (_, again) = post_json(&format!("{}/api/deliveries/replay", server.admin_url()), &json!({}));
    assert_eq!(again["queued"], json!([]));
    let (status, refused) = post_json(&format!("{}/api/deliveries/{}/replay", server.admin_url(), failed[0]["id"]), &json!({}));
    assert_eq!((status, refused["type"].as_str()), (409, Some("conflict")), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("already replayed"), "{refused}");
    let audit = get_json(&format!("{}/api/audit", server.admin_url()))["entries"].clone();
    let entries: Vec<(&str, usize)> =
        audit.as_array().unwrap().iter().map(|e| (e["action"].as_str().unwrap(), e["deliveries"].as_array().unwrap().len())).collect();
    assert_eq!(entries, [("replay-all", 0), ("replay-all", 6)], "{audit:#}");
    assert!(audit[1]["actor"].as_str().unwrap().contains("no admin token"), "{audit:#}");
}

#[test]
fn a_calls_story_shows_its_legs_in_order_with_links_and_search_finds_it_in_any_format() {
    let mock = mock();
    let server = in_process(&mock, None, loopback_options(), "console-story");
    for name in ["call_inbound_ringing_unknown_number.json", "call_inbound_connected.json", "call_inbound_hangup_completed.json", "call_recap_summary.json"] {
        deliver(&server, &fixture(name));
        assert!(server.wait_idle(Duration::from_secs(20)));
    }
    deliver(&server, &call(1));
    assert!(server.wait_idle(Duration::from_secs(20)));
    let story = get_json(&format!("{}/api/calls/6011482093420544?tenant=", server.admin_url()));
    let legs: Vec<&str> = story["events"].as_array().unwrap().iter().map(|e| e["leg"].as_str().unwrap_or("?")).collect();
    assert_eq!(legs, ["ringing", "connected", "hangup", "recap_summary"], "{story:#}");
    let contact = mock.contacts()[0]["id"].as_str().unwrap().to_string();
    let note = mock.notes()[0]["id"].as_str().unwrap().to_string();
    assert_eq!((story["contact_id"].as_str(), story["note_id"].as_str()), (Some(contact.as_str()), Some(note.as_str())), "{story:#}");
    assert_eq!(story["links"]["contact"], format!("https://app.gohighlevel.com/v2/location/{LOCATION}/contacts/detail/{contact}"));
    let hangup = &story["events"][2];
    let writes: Vec<&str> = hangup["changes"].as_array().unwrap().iter().map(|c| c["operation_id"].as_str().unwrap()).collect();
    assert!(writes.contains(&"create-note"), "{hangup:#}");
    // Search: the caller's number as a person types it, the call id, the HighLevel contact.
    // The contact finds the legs that wrote to it (ringing and connected wrote nothing).
    for (q, legs) in [("(312)%20555-0187", 4), ("6011482093420544", 4), (contact.as_str(), 2)] {
        let found = deliveries(&server, &format!("q={q}"));
        assert_eq!(found.len(), legs, "{q}: {found:#?}");
        assert!(found.iter().all(|row| row["call_id"] == "6011482093420544"), "{q}");
    }
    assert_eq!(deliveries(&server, "q=%2B12065550101").len(), 1);
    let (status, text) = loopback_request_with_headers("GET", &format!("{}/api/deliveries?state=lost", server.admin_url()), &[], b"").unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid-input") && text.contains("lost"), "{text}");
    let (status, _) = loopback_request_with_headers("GET", &format!("{}/api/calls/1?tenant=", server.admin_url()), &[], b"").unwrap();
    assert_eq!(status, 404);
}

#[test]
fn a_discard_needs_a_reason_is_logged_and_a_refusal_shows_why_and_what_came() {
    let mock = mock();
    let (server, _) = in_process_with(&mock, |s| s.set("webhook_secret", SECRET), ServeOptions { max_attempts: 1, ..loopback_options() }, "console-discard");
    mock.refuse_tokens(true);
    let (status, _) = loopback_request_with_headers("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), &[], &sign(&call(3), SECRET)).unwrap();
    assert_eq!(status, 200);
    assert!(server.wait_idle(Duration::from_secs(20)));
    mock.refuse_tokens(false);
    let id = deliveries(&server, "state=failed")[0]["id"].clone();
    let discard = format!("{}/api/deliveries/{id}/discard", server.admin_url());
    let (status, answer) = post_json(&discard, &json!({"reason": "  "}));
    assert_eq!((status, answer["type"].as_str()), (400, Some("invalid-input")), "{answer}");
    let (status, answer) = post_json(&discard, &json!({"reason": "a test call from the installer"}));
    assert_eq!(status, 200, "{answer}");
    let row = get_json(&format!("{}/api/deliveries/{id}", server.admin_url()));
    assert_eq!((row["state"].as_str(), row["discarded"]["reason"].as_str()), (Some("discarded"), Some("a test call from the installer")));
    assert_eq!(get_json(&format!("{}/api/overview", server.admin_url()))["failed"], 0);
    assert_eq!(get_json(&format!("{}/api/events", server.admin_url()))["dead_letters"], json!([]), "its dead letter went with it");
    let (status, _) = post_json(&format!("{}/api/deliveries/{id}/replay", server.admin_url()), &json!({}));
    assert_eq!(status, 409, "a discarded delivery is not replayed");
    assert_eq!(mock.notes().len(), 0);
    let audit = get_json(&format!("{}/api/audit", server.admin_url()))["entries"][0].clone();
    assert_eq!(
        (audit["action"].as_str(), audit["reason"].as_str(), audit["deliveries"].clone()),
        (Some("discard"), Some("a test call from the installer"), json!([id]))
    );

    // Unsigned: refused at the door, with its reason in plain words and what was sent.
    let unsigned = call(4).to_string();
    let (status, _) = loopback_request_with_headers("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), &[], unsigned.as_bytes()).unwrap();
    assert_eq!(status, 401);
    let refused = &deliveries(&server, "state=refused")[0];
    assert!(refused["words"].as_str().unwrap_or_default().starts_with("Refused"), "{refused:#}");
    assert_eq!(refused["error"], "invalid-signature");
    let full = get_json(&format!("{}/api/deliveries/{}", server.admin_url(), refused["id"]));
    assert_eq!(full["body"].as_str(), Some(unsigned.as_str()));
}
