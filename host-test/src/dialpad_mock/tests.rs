//! The call listing (`GET /api/v2/call`).

use super::calls::{decode_cursor, encode_cursor};
use super::*;
use crate::support::loopback_request;
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};

const KEY: &str = "secret-key";
const T0: i64 = 1_700_000_000_000;

fn start(page_size: usize) -> DialpadMock {
    DialpadMock::start(DialpadMockOptions { api_key: KEY.to_owned(), page_size }).unwrap()
}

fn call(id: i64, started: i64, state: &str) -> Value {
    json!({"call_id": id, "date_started": started, "state": state, "direction": "inbound"})
}

/// GET `/api/v2/call?apikey=KEY&<query>`: (status, parsed body).
fn list(mock: &DialpadMock, query: &str) -> (u16, Value) {
    let sep = if query.is_empty() { "" } else { "&" };
    let url = format!("{}{CALL_LIST_PATH}?apikey={KEY}{sep}{query}", mock.base_url());
    let (status, body) = loopback_request("GET", &url, b"").unwrap();
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

fn ids(body: &Value) -> Vec<i64> {
    body["items"].as_array().unwrap().iter().map(|c| c["call_id"].as_i64().unwrap()).collect()
}

fn cursor(body: &Value) -> Option<String> {
    body["cursor"].as_str().map(str::to_owned)
}

/// A GET with extra headers, which `loopback_request` cannot send: (status, body).
fn raw_get(mock: &DialpadMock, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(mock.addr()).unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", mock.addr());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Calls 1..=60, concluded, pairs sharing a start time (so a tie straddles the first page
/// boundary), plus 5 unfinished calls in between that must never be listed.
fn sixty(mock: &DialpadMock) -> Vec<i64> {
    for id in 1..=60 {
        mock.add_call(call(id, T0 + (id - 1) / 2 * 1000, CONCLUDED_STATE));
    }
    for id in 101..=105 {
        mock.add_call(call(id, T0 + (id - 100) * 7000, if id % 2 == 0 { "connected" } else { "ringing" }));
    }
    (1..=60).rev().collect()
}

#[test]
fn pages_through_sixty_calls_in_reverse_chronological_order() {
    let mock = start(25);
    let expected = sixty(&mock);
    let (mut seen, mut pages, mut query) = (Vec::new(), Vec::new(), String::new());
    loop {
        let (status, body) = list(&mock, &query);
        assert_eq!(status, 200, "{body}");
        let page = ids(&body);
        pages.push(page.len());
        seen.extend(page);
        match cursor(&body) {
            Some(c) => query = format!("cursor={c}"),
            None => break,
        }
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(pages, [25, 25, 10]);
    assert_eq!(seen, expected, "each concluded call once, newest first, ties by call_id descending");
    let started: Vec<i64> = (0..60).map(|i| T0 + (expected[i] - 1) / 2 * 1000).collect();
    assert!(started.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(mock.requests().len(), 3);
    assert!(mock.requests().iter().all(|r| r.method == "GET" && r.status == 200));
}

#[test]
fn an_exact_multiple_of_the_page_size_ends_with_a_null_cursor() {
    let mock = start(5);
    for id in 1..=10 {
        mock.add_call(call(id, T0 + id, CONCLUDED_STATE));
    }
    let (_, first) = list(&mock, "");
    let (_, second) = list(&mock, &format!("cursor={}", cursor(&first).unwrap()));
    assert_eq!(ids(&second), [5, 4, 3, 2, 1]);
    assert_eq!(second["cursor"], Value::Null);
    // Nothing at all: an empty page, null cursor.
    let (status, empty) = list(&mock, &format!("started_after={}", T0 + 100));
    assert_eq!((status, empty), (200, json!({"items": [], "cursor": null})));
}

#[test]
fn started_after_and_started_before_are_exclusive_bounds() {
    let mock = start(25);
    for id in 1..=10 {
        mock.add_call(call(id, T0 + id * 1000, CONCLUDED_STATE));
    }
    mock.add_call(call(11, T0 + 5500, "connected"));
    let window = |q: &str| {
        let (status, body) = list(&mock, q);
        assert_eq!(status, 200, "{q}: {body}");
        ids(&body)
    };
    assert_eq!(window(&format!("started_after={}", T0 + 7000)), [10, 9, 8]);
    assert_eq!(window(&format!("started_before={}", T0 + 3000)), [2, 1]);
    assert_eq!(window(&format!("started_after={}&started_before={}", T0 + 3000, T0 + 7000)), [6, 5, 4]);
    assert_eq!(window(&format!("started_after={}&started_before={}", T0 + 3000, T0 + 3001)), Vec::<i64>::new());
    // Unknown and unimplemented parameters are ignored.
    assert_eq!(window("target_id=42&target_type=user&foo=bar").len(), 10);

    let (status, body) = list(&mock, "started_after=yesterday");
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("started_after"), "{body}");
    let (status, _) = list(&mock, "started_before=1.5");
    assert_eq!(status, 400);
}

#[test]
fn filters_apply_across_pages() {
    let mock = start(3);
    for id in 1..=20 {
        mock.add_call(call(id, T0 + id * 1000, CONCLUDED_STATE));
    }
    let filter = format!("started_after={}&started_before={}", T0 + 5000, T0 + 13000);
    let (mut seen, mut query) = (Vec::new(), filter.clone());
    loop {
        let (status, body) = list(&mock, &query);
        assert_eq!(status, 200);
        seen.extend(ids(&body));
        let Some(c) = cursor(&body) else { break };
        query = format!("{filter}&cursor={c}");
    }
    assert_eq!(seen, [12, 11, 10, 9, 8, 7, 6]);
}

#[test]
fn wrong_or_missing_key_is_401_and_bearer_works() {
    let mock = start(25);
    mock.add_call(call(1, T0, CONCLUDED_STATE));
    let base = mock.base_url();

    let (status, body) = loopback_request("GET", &format!("{base}{CALL_LIST_PATH}?apikey=nope"), b"").unwrap();
    assert_eq!(status, 401);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], 401);
    assert!(body["error"]["message"].is_string());
    let (status, _) = loopback_request("GET", &format!("{base}{CALL_LIST_PATH}"), b"").unwrap();
    assert_eq!(status, 401);

    let bearer = format!("Bearer {KEY}");
    let (status, body) = raw_get(&mock, CALL_LIST_PATH, &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&serde_json::from_str(&body).unwrap()), [1]);
    let (status, _) = raw_get(&mock, CALL_LIST_PATH, &[("Authorization", "Bearer wrong")]);
    assert_eq!(status, 401);
    let (status, _) = raw_get(&mock, CALL_LIST_PATH, &[("Authorization", KEY)]);
    assert_eq!(status, 401);

    let statuses: Vec<u16> = mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 200, 401, 401], "refused requests are recorded too");
    assert_eq!(mock.requests()[0].path_and_query, format!("{CALL_LIST_PATH}?apikey=nope"));
}

#[test]
fn bad_cursor_is_400_and_other_paths_404() {
    let mock = start(25);
    mock.add_call(call(1, T0, CONCLUDED_STATE));
    for bad in ["garbage", "zz", "abc", &encode_cursor((T0, 1))[2..]] {
        let (status, body) = list(&mock, &format!("cursor={bad}"));
        assert_eq!(status, 400, "cursor {bad:?}: {body}");
        assert_eq!(body["error"]["code"], 400);
    }
    let (status, _) = loopback_request("GET", &format!("{}/api/v2/calls?apikey={KEY}", mock.base_url()), b"").unwrap();
    assert_eq!(status, 404);
    let (status, _) = loopback_request("GET", &format!("{}/api/v2/call/1?apikey={KEY}", mock.base_url()), b"").unwrap();
    assert_eq!(status, 404);
    let (status, _) = loopback_request("PUT", &format!("{}{CALL_LIST_PATH}?apikey={KEY}", mock.base_url()), b"{}").unwrap();
    assert_eq!(status, 405);
    // POST is click-to-call, which wants a number and a user.
    let (status, body) = loopback_request("POST", &format!("{}{CALL_LIST_PATH}?apikey={KEY}", mock.base_url()), b"{}").unwrap();
    assert_eq!((status, body.contains("phone_number is required")), (400, true), "{body}");
    assert_eq!(decode_cursor(&encode_cursor((T0, -7))), Some((T0, -7)));
}

#[test]
fn fail_request_number_fails_that_request_once() {
    let mock = start(25);
    let expected = sixty(&mock);
    list(&mock, ""); // before the knob: not counted
    mock.fail_request_number(2);
    let (status, first) = list(&mock, "");
    assert_eq!(status, 200);
    let next = format!("cursor={}", cursor(&first).unwrap());
    let (status, body) = list(&mock, &next);
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], 503);
    let (status, second) = list(&mock, &next);
    assert_eq!(status, 200, "the retry with the same cursor succeeds");
    assert_eq!(ids(&second), expected[25..50]);
    let (status, third) = list(&mock, &format!("cursor={}", cursor(&second).unwrap()));
    assert_eq!(status, 200);
    assert_eq!(ids(&third), expected[50..]);
    let statuses: Vec<u16> = mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 503, 200, 200]);
}

#[test]
fn fail_with_answers_everything_until_cleared() {
    let mock = start(25);
    mock.add_call(call(1, T0, CONCLUDED_STATE));
    mock.fail_with(Some(503));
    assert_eq!(list(&mock, "").0, 503);
    assert_eq!(list(&mock, "cursor=garbage").0, 503);
    mock.fail_with(Some(429));
    assert_eq!(loopback_request("GET", &format!("{}/elsewhere", mock.base_url()), b"").unwrap().0, 429);
    mock.fail_with(None);
    assert_eq!(list(&mock, "").0, 200);
    assert_eq!(mock.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [503, 503, 429, 200]);
}

#[test]
fn newer_calls_added_mid_paging_do_not_disturb_it() {
    let mock = start(25);
    let expected = sixty(&mock);
    let newest = T0 + 29 * 1000;
    let (_, first) = list(&mock, "");
    let mut seen = ids(&first);
    // New calls arrive, all newer than the window's newest call, one in the tie range too.
    for id in 200..210 {
        mock.add_call(call(id, newest + 1 + id, CONCLUDED_STATE));
    }
    mock.add_call(call(61, newest, CONCLUDED_STATE));
    let mut next = cursor(&first);
    while let Some(c) = next {
        let (status, body) = list(&mock, &format!("cursor={c}"));
        assert_eq!(status, 200);
        seen.extend(ids(&body));
        next = cursor(&body);
    }
    assert_eq!(seen, expected, "no repeats, no skips, nothing newer slipped in");
    // A fresh listing sees them, newest first.
    let (_, fresh) = list(&mock, "");
    assert_eq!(ids(&fresh)[..12], [209, 208, 207, 206, 205, 204, 203, 202, 201, 200, 61, 60]);
}

#[test]
fn re_adding_a_call_replaces_it() {
    let mock = start(25);
    mock.add_call(call(7, T0, "connected"));
    assert_eq!(ids(&list(&mock, "").1), Vec::<i64>::new());
    mock.add_call(json!({"call_id": "7", "date_started": T0 + 1, "state": "hangup"}));
    let (_, body) = list(&mock, "");
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["call_id"], "7");
}
