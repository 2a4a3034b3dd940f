//! Screen pops, recording share links, click-to-call and users.

use super::api_tests::{self, message};
use super::*;
use serde_json::{json, Value};
use std::time::Duration;

const KEY: &str = "desk-key";
const MAYA: i64 = 5_766_401_227_931_648;
const JORDAN: i64 = 6_231_954_071_076_864;

fn start() -> DialpadMock {
    api_tests::start(KEY)
}

fn api(mock: &DialpadMock, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api_tests::api_with(KEY, mock, method, path, body)
}

#[test]
fn the_sixth_screen_pop_of_a_user_in_a_minute_is_429() {
    let mock = start();
    let pop = |user: i64, uri: &str| api(&mock, "POST", &format!("/api/v2/users/{user}/screenpop"), Some(json!({ "screen_pop_uri": uri })));
    let uri = "https://app.gohighlevel.com/v2/location/L1/contacts/detail/c1";
    for _ in 0..5 {
        assert_eq!(pop(MAYA, uri), (200, json!({})));
    }
    let (status, answer) = pop(MAYA, uri);
    assert_eq!((status, &answer["error"]["code"]), (429, &json!(429)), "{answer}");
    assert_eq!(pop(JORDAN, uri).0, 200, "the limit is per user");

    assert_eq!(pop(42, uri).0, 404);
    assert_eq!(message(&pop(JORDAN, "https://user:pw@example.com/x").1), "screen_pop_uri: a URL with user info is not supported");
    assert_eq!(pop(JORDAN, "not a url").0, 400);
    let (status, answer) = api(&mock, "POST", &format!("/api/v2/users/{JORDAN}/screenpop"), Some(json!({})));
    assert_eq!((status, message(&answer)), (400, "screen_pop_uri is required"));
    assert_eq!(api(&mock, "GET", &format!("/api/v2/users/{JORDAN}/screenpop"), None).0, 405);

    let pops = mock.screen_pops();
    assert_eq!(pops.len(), 6);
    assert_eq!((pops[0].user_id.as_str(), pops[0].uri.as_str()), (MAYA.to_string().as_str(), uri));
    assert_eq!(pops[5].user_id, JORDAN.to_string());
}

#[test]
fn a_smaller_screen_pop_window_slides() {
    let mock = start();
    let window = Duration::from_millis(300);
    mock.set_rate_limit(DialpadLimit::ScreenPop, 1, window);
    let pop = || api(&mock, "POST", &format!("/api/v2/users/{MAYA}/screenpop"), Some(json!({ "screen_pop_uri": "https://x.example/" }))).0;
    assert_eq!([pop(), pop()], [200, 429]);
    std::thread::sleep(window + Duration::from_millis(50));
    assert_eq!(pop(), 200);
}

#[test]
fn recording_share_links_are_made_once_per_recording_and_privacy() {
    let mock = start();
    let share = |body: Value| api(&mock, "POST", "/api/v2/recordingsharelink", Some(body));
    let (status, link) = share(json!({ "recording_id": "rec-1", "recording_type": "callrecording", "privacy": "company" }));
    assert_eq!(status, 200, "{link}");
    let id = link["id"].as_str().unwrap();
    assert_eq!(link["access_link"], format!("https://dialpad.example/r/{id}"));
    assert_eq!((&link["item_id"], &link["type"], &link["privacy"]), (&json!("rec-1"), &json!("callrecording"), &json!("company")));
    assert_eq!(share(json!({ "recording_id": "rec-1", "recording_type": "callrecording", "privacy": "company" })).1, link);
    let (_, owner) = share(json!({ "recording_id": "rec-1", "recording_type": "callrecording" }));
    assert_eq!(owner["privacy"], "owner", "the default privacy");
    assert_ne!(owner["id"], link["id"]);
    let (status, answer) = share(json!({ "recording_id": "rec-1", "recording_type": "video" }));
    assert_eq!((status, message(&answer).starts_with("recording_type must be one of")), (400, true), "{answer}");
    assert_eq!(message(&share(json!({ "recording_type": "voicemail" })).1), "recording_id is required");
    assert_eq!(mock.share_links().len(), 2);
}

#[test]
fn click_to_call_records_the_custom_data_and_is_limited_per_user() {
    let mock = start();
    let ring = |body: Value| api(&mock, "POST", "/api/v2/call", Some(body));
    let (status, answer) = ring(json!({ "phone_number": "+13125550187", "user_id": MAYA, "custom_data": "ghl:loc1:c1" }));
    assert_eq!(status, 200, "{answer}");
    let call_id = answer["call_id"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        assert_eq!(ring(json!({ "phone_number": "+13125550187", "user_id": MAYA })).0, 200);
    }
    assert_eq!(ring(json!({ "phone_number": "+13125550187", "user_id": MAYA })).0, 429);

    assert_eq!(
        message(&ring(json!({ "phone_number": "+13125550187", "user_id": JORDAN.to_string() })).1),
        format!("user_id must be an integer, not \"{JORDAN}\"")
    );
    assert_eq!(message(&ring(json!({ "user_id": JORDAN })).1), "phone_number is required");
    assert_eq!(ring(json!({ "phone_number": "312-555-0187", "user_id": JORDAN })).0, 400);
    assert_eq!(ring(json!({ "phone_number": "+13125550187", "user_id": 42 })).0, 404);
    assert_eq!(message(&ring(json!({ "phone_number": "+13125550187", "user_id": JORDAN, "group_type": "office" })).1), "group_id and group_type go together");

    let calls = mock.initiated_calls();
    assert_eq!(calls.len(), 5);
    assert_eq!(
        (calls[0].call_id.as_str(), calls[0].custom_data.as_deref(), calls[0].user_id.as_str()),
        (call_id.as_str(), Some("ghl:loc1:c1"), MAYA.to_string().as_str())
    );
    assert_eq!(calls[1].custom_data, None);
}

#[test]
fn users_are_found_by_email() {
    let mock = start();
    let (status, maya) = api(&mock, "GET", "/api/v2/users?email=Maya.Patel%40example.com", None);
    assert_eq!(status, 200, "{maya}");
    let items = maya["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (&items[0]["id"], &items[0]["display_name"], &items[0]["emails"]),
        (&json!(MAYA.to_string()), &json!("Maya Patel"), &json!(["maya.patel@example.com"]))
    );
    assert_eq!(items[0]["phone_numbers"], json!(["+14155550142"]));
    mock.add_user(42, "Priya", "Shah", "priya@example.com");
    assert_eq!(api(&mock, "GET", "/api/v2/users?email=priya@example.com", None).1["items"][0]["id"], "42");
    assert_eq!(api(&mock, "GET", "/api/v2/users?email=nobody@example.com", None).1, json!({ "items": [] }));
    assert_eq!(api(&mock, "GET", "/api/v2/users", None).1["items"].as_array().unwrap().len(), 3);
    assert_eq!(message(&api(&mock, "GET", "/api/v2/users?company_admin=maybe", None).1), "company_admin must be boolean, not \"maybe\"");
    assert_eq!(mock.users().len(), 3);
    // The user just added can be popped to.
    assert_eq!(api(&mock, "POST", "/api/v2/users/42/screenpop", Some(json!({ "screen_pop_uri": "https://x.example/" }))).0, 200);
}
