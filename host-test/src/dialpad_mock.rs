//! In-memory mock of Dialpad's call-list endpoint, `GET /api/v2/call` (operation `call.list`,
//! scope `calls:list`), for backfill tests.
//!
//! What it implements, from `shared/reference/dialpad/dialpad_api_spec.json`:
//!
//! - **Auth**: the API key as `Authorization: Bearer <key>` or as `?apikey=<key>` (the spec's two
//!   security schemes); either one matching is enough. Missing or wrong → 401.
//! - **Filters**: `started_after` (exclusive: `date_started > value`) and `started_before`
//!   (exclusive: `date_started < value`), UTC ms since the epoch; each optional, each must be an
//!   integer (else 400). They are applied on every request, cursor or not, so a client keeps
//!   sending the same filters with each page.
//! - **Concluded calls only** ("This API will only include calls that have already concluded"):
//!   the mock's assumption is that a concluded call is one whose `state` is `"hangup"` (Dialpad's
//!   terminal call state). Calls in any other state (`"connected"`, `"ringing"`, missing, ...)
//!   are stored but not listed, until [`DialpadMock::add_call`] replaces them with a hangup.
//! - **Order**: reverse-chronological by `date_started`, ties broken by `call_id`, descending.
//! - **Paging**: [`DialpadMockOptions::page_size`] items per page; the response is
//!   `{"items": [...], "cursor": "..."|null}` with `cursor` null on the last page. The cursor is
//!   opaque to clients (hex): it encodes the `(date_started, call_id)` of the last item returned,
//!   and the next page continues strictly after that item in the ordering. So a cursor stays
//!   valid, and paging neither repeats nor skips, when calls newer than the window are added
//!   mid-paging. A cursor the mock did not issue → 400.
//!
//! Not implemented: `target_id`/`target_type` (ignored like any other unknown query parameter),
//! the 1200/min rate limit, the admin-key and scope checks (any request with the key is allowed).
//! Any other path → 404; another method on `/api/v2/call` → 405.
//!
//! Two fault knobs for resilience tests: [`DialpadMock::fail_with`] (every request gets one
//! status until cleared) and [`DialpadMock::fail_request_number`] (one list request gets a 503).
//! Every request is recorded, refused ones included ([`DialpadMock::requests`]).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::ghl_mock::LoopbackServer;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The list endpoint's path.
pub const CALL_LIST_PATH: &str = "/api/v2/call";
/// The `state` of a concluded call; only these are listed.
pub const CONCLUDED_STATE: &str = "hangup";
/// How the mock behaves.
#[derive(Clone, Debug)]
pub struct DialpadMockOptions {
    /// The API key requests must carry (Bearer header or `?apikey=`).
    pub api_key: String,
    /// Calls per page (Dialpad's own page size is not documented). Must be at least 1.
    pub page_size: usize,
}

impl Default for DialpadMockOptions {
    fn default() -> Self {
        DialpadMockOptions { api_key: "dialpad-test-key".to_owned(), page_size: 25 }
    }
}

/// One request as the mock saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialpadRequest {
    pub method: String,
    /// Path and query exactly as received (not decoded).
    pub path_and_query: String,
    /// The status the client received.
    pub status: u16,
}

/// Sort key of a call: `(date_started, call_id)`; the list is this key, descending.
type Key = (i64, i64);

struct Inner {
    /// Every call added, by key; a re-added `call_id` replaces its earlier version.
    calls: BTreeMap<Key, Value>,
    requests: Vec<DialpadRequest>,
    fail_with: Option<u16>,
    /// List (`GET /api/v2/call`) requests seen so far.
    list_requests: usize,
    /// The value of `list_requests` whose request gets the one-off 503.
    fail_at: Option<usize>,
    /// Answer every list request with the first page and its cursor, whatever the cursor asked.
    stuck: bool,
}

struct Shared {
    options: DialpadMockOptions,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running mock on 127.0.0.1. Runs on its own thread with its own tokio runtime, so callers can
/// be plain synchronous code. Dropping it shuts the server down.
pub struct DialpadMock {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl DialpadMock {
    /// Starts a mock on `127.0.0.1:0` (a free port chosen by the OS).
    pub fn start(options: DialpadMockOptions) -> anyhow::Result<DialpadMock> {
        DialpadMock::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options)
    }

    /// Starts a mock on `addr`. The socket is bound before this returns.
    pub fn start_on(addr: SocketAddr, options: DialpadMockOptions) -> anyhow::Result<DialpadMock> {
        anyhow::ensure!(options.page_size >= 1, "the Dialpad mock's page_size must be at least 1");
        let shared = Arc::new(Shared {
            options,
            inner: Mutex::new(Inner { calls: BTreeMap::new(), requests: Vec::new(), fail_with: None, list_requests: 0, fail_at: None, stuck: false }),
        });
        let server = LoopbackServer::start("Dialpad mock", addr, Router::new().fallback(handle).with_state(Arc::clone(&shared)))?;
        Ok(DialpadMock { server, shared })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Adds a call (a CallProto). It needs an integer `call_id` and `date_started` (ms), each a
    /// JSON number or a string of digits; it is listed only if its `state` is `"hangup"`. Adding
    /// a `call_id` again replaces the earlier version (e.g. a call that has since concluded).
    ///
    /// # Panics
    /// If `call_id` or `date_started` is missing or not an integer: a broken test fixture.
    pub fn add_call(&self, call: Value) {
        let call_id = integer(call.get("call_id")).unwrap_or_else(|| panic!("call without an integer call_id: {call}"));
        let started = integer(call.get("date_started")).unwrap_or_else(|| panic!("call without an integer date_started: {call}"));
        let mut inner = self.shared.lock();
        inner.calls.retain(|&(_, id), _| id != call_id);
        inner.calls.insert((started, call_id), call);
    }

    /// Every request received so far, in arrival order, refused ones included.
    pub fn requests(&self) -> Vec<DialpadRequest> {
        self.shared.lock().requests.clone()
    }

    /// Answer every request from now on with this status (e.g. 503) until cleared with `None`.
    pub fn fail_with(&self, status: Option<u16>) {
        self.shared.lock().fail_with = status;
    }

    /// Fail only the `n`th list request (`GET /api/v2/call`) from now on (1-based), once, with
    /// 503. A later call replaces an earlier one still pending; `n == 0` cancels it.
    pub fn fail_request_number(&self, n: usize) {
        let mut inner = self.shared.lock();
        inner.fail_at = (n > 0).then(|| inner.list_requests + n);
    }

    /// From now on, answer every list request with the first page of its window and that page's
    /// cursor, whatever cursor it carries, as an API whose listing never advances (Prism serving
    /// Dialpad's spec answers with the same example every time). `false` pages normally again.
    pub fn repeat_first_page(&self, on: bool) {
        self.shared.lock().stuck = on;
    }

    /// Blocks the calling thread until the server stops (only if its accept loop fails).
    pub fn wait(self) {
        self.server.wait();
    }
}

/// An integer from a JSON number or a string of digits.
fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn error(status: u16, message: &str) -> (u16, Value) {
    (status, json!({"error": {"code": status, "message": message}}))
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().as_str().to_owned();
    let uri = request.uri();
    let path_and_query = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let (status, body) = respond(&shared, &method, uri.path(), uri.query().unwrap_or(""), request.headers());
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    shared.lock().requests.push(DialpadRequest { method, path_and_query, status: code.as_u16() });
    (code, Json(body)).into_response()
}

/// The whole of one request's handling, under the lock (no `.await` inside).
fn respond(shared: &Shared, method: &str, path: &str, query: &str, headers: &HeaderMap) -> (u16, Value) {
    let mut inner = shared.lock();
    if let Some(status) = inner.fail_with {
        return error(status, "injected failure");
    }
    if path != CALL_LIST_PATH && path != "/api/v2/call/" {
        return error(404, "not found");
    }
    if method != "GET" {
        return error(405, "method not allowed");
    }
    inner.list_requests += 1;
    if inner.fail_at == Some(inner.list_requests) {
        inner.fail_at = None;
        return error(503, "injected failure: service unavailable");
    }

    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());

    let key = shared.options.api_key.as_str();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && token.trim() == key);
    if !(bearer || param("apikey") == Some(key)) {
        return error(401, "Unauthorized: a valid API key is required (Authorization: Bearer or ?apikey=)");
    }

    let bound = |name: &str| -> Result<Option<i64>, (u16, Value)> {
        match param(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| error(400, &format!("{name} must be an integer (UTC ms): {v:?}"))),
        }
    };
    let after = match bound("started_after") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let before = match bound("started_before") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let resume = match param("cursor") {
        _ if inner.stuck => None,
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(k) => Some(k),
            None => return error(400, &format!("invalid cursor: {c:?}")),
        },
    };

    // Descending key order, strictly after the cursor's item, inside the window, concluded only.
    let mut listed = inner
        .calls
        .iter()
        .rev()
        .filter(|(k, _)| resume.is_none_or(|r| Reverse(**k) > Reverse(r)))
        .filter(|((started, _), _)| after.is_none_or(|a| *started > a) && before.is_none_or(|b| *started < b))
        .filter(|(_, call)| call.get("state").and_then(Value::as_str) == Some(CONCLUDED_STATE));
    let page: Vec<(Key, Value)> = listed.by_ref().take(shared.options.page_size).map(|(k, call)| (*k, call.clone())).collect();
    let more = listed.next().is_some();
    let cursor = match page.last() {
        Some((last, _)) if more => Value::String(encode_cursor(*last)),
        _ => Value::Null,
    };
    let items: Vec<Value> = page.into_iter().map(|(_, call)| call).collect();
    (200, json!({"items": items, "cursor": cursor}))
}

/// Cursor text: hex of `"v1:<date_started>:<call_id>"`, so clients treat it as opaque.
fn encode_cursor((started, call_id): Key) -> String {
    format!("v1:{started}:{call_id}").bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<Key> {
    if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return None;
    }
    let bytes: Vec<u8> = (0..cursor.len()).step_by(2).map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).ok()).collect::<Option<_>>()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.strip_prefix("v1:")?.split(':');
    let key = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    parts.next().is_none().then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::loopback_request;
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
        let (status, _) = loopback_request("POST", &format!("{}{CALL_LIST_PATH}?apikey={KEY}", mock.base_url()), b"{}").unwrap();
        assert_eq!(status, 405);
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
}
