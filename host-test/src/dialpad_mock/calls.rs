//! `GET /api/v2/call` (operation `call.list`, scope `calls:list`), for backfill tests.
//!
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
//! the admin-key and scope checks (any request with the key is allowed). `GET /api/v2/call/{id}`
//! → 404; another method on `/api/v2/call` → 405.
//!
//! [`DialpadMock::add_call`]: super::DialpadMock::add_call
//! [`DialpadMockOptions::page_size`]: super::DialpadMockOptions::page_size

use super::reply::{error, hex, unauthorized, unhex, Paging, Params, Reply};
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// The list endpoint's path.
pub const CALL_LIST_PATH: &str = "/api/v2/call";
/// The `state` of a concluded call; only these are listed.
pub const CONCLUDED_STATE: &str = "hangup";

/// Sort key of a call: `(date_started, call_id)`; the list is this key, descending.
pub(super) type Key = (i64, i64);

/// The calls, and the one-off fault of [`DialpadMock::fail_request_number`].
///
/// [`DialpadMock::fail_request_number`]: super::DialpadMock::fail_request_number
#[derive(Default)]
pub(super) struct Calls {
    /// Every call added, by key; a re-added `call_id` replaces its earlier version.
    pub(super) calls: BTreeMap<Key, Value>,
    /// List requests seen so far.
    pub(super) list_requests: usize,
    /// The value of `list_requests` whose request gets the one-off 503.
    pub(super) fail_at: Option<usize>,
}

/// The listing. Checked in this order: method, the one-off fault, the key, the parameters.
/// Stuck: the first page, whatever the cursor.
pub(super) fn list(inner: &mut Calls, paging: Paging, method: &str, params: &Params, authorized: bool) -> Reply {
    if method != "GET" {
        return error(405, "method not allowed");
    }
    inner.list_requests += 1;
    if inner.fail_at == Some(inner.list_requests) {
        inner.fail_at = None;
        return error(503, "injected failure: service unavailable");
    }
    if !authorized {
        return unauthorized();
    }

    let bound = |name: &str| -> Result<Option<i64>, Reply> {
        match params.get(name) {
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
    let resume = match params.get("cursor") {
        _ if paging.stuck => None,
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
    let page: Vec<(Key, Value)> = listed.by_ref().take(paging.page_size).map(|(k, call)| (*k, call.clone())).collect();
    let more = listed.next().is_some();
    let cursor = match page.last() {
        Some((last, _)) if more => Value::String(encode_cursor(*last)),
        _ => Value::Null,
    };
    let items: Vec<Value> = page.into_iter().map(|(_, call)| call).collect();
    Reply::json(200, json!({"items": items, "cursor": cursor}))
}

/// Cursor text: hex of `"v1:<date_started>:<call_id>"`, so clients treat it as opaque.
pub(super) fn encode_cursor((started, call_id): Key) -> String {
    hex(&format!("v1:{started}:{call_id}"))
}

pub(super) fn decode_cursor(cursor: &str) -> Option<Key> {
    let text = unhex(cursor)?;
    let mut parts = text.strip_prefix("v1:")?.split(':');
    let key = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    parts.next().is_none().then_some(key)
}
