//! What every endpoint shares: answers, errors, query parameters and paging.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An answer.
#[derive(Debug)]
pub(super) enum Reply {
    Json(u16, Value),
    /// 302 to this location, no body.
    Redirect(String),
}

impl Reply {
    pub(super) fn json(status: u16, body: Value) -> Reply {
        Reply::Json(status, body)
    }

    pub(super) fn status(&self) -> u16 {
        match self {
            Reply::Json(status, _) => *status,
            Reply::Redirect(_) => 302,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(status, body) => (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response(),
            Reply::Redirect(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        }
    }
}

pub(super) fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": status, "message": message}}))
}

pub(super) fn unauthorized() -> Reply {
    error(401, "Unauthorized: a valid API key or access token is required (Authorization: Bearer or ?apikey=)")
}

/// The query's parameters, decoded.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(query: &str) -> Params {
        Params(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Text as hex, for opaque cursors.
pub(super) fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return None;
    }
    let bytes: Vec<u8> = (0..cursor.len()).step_by(2).map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).ok()).collect::<Option<_>>()?;
    String::from_utf8(bytes).ok()
}

/// How listings page: items a page, and whether they are stuck on their first page
/// (`DialpadMock::repeat_first_page`).
#[derive(Clone, Copy)]
pub(super) struct Paging {
    pub(super) page_size: usize,
    pub(super) stuck: bool,
}

/// One page of `items` (in id order) after the cursor's id; the cursor is absent on the last
/// page, as in the spec's examples. The cursor names its collection, so one listing's cursor
/// is refused by another (400). Stuck: the first page, whatever the cursor.
pub(super) fn page(items: Vec<(i64, Value)>, collection: &str, cursor: Option<&str>, paging: Paging) -> Reply {
    let after = match cursor {
        _ if paging.stuck => None,
        None => None,
        Some(c) => match unhex(c).and_then(|t| t.strip_prefix(&format!("{collection}:")).and_then(|id| id.parse::<i64>().ok())) {
            Some(id) => Some(id),
            None => return error(400, &format!("invalid cursor: {c:?}")),
        },
    };
    let mut rest = items.into_iter().filter(|(id, _)| after.is_none_or(|a| *id > a));
    let page: Vec<(i64, Value)> = rest.by_ref().take(paging.page_size).collect();
    let mut body = json!({"items": page.iter().map(|(_, item)| item.clone()).collect::<Vec<_>>()});
    if let (Some((last, _)), true) = (page.last(), rest.next().is_some()) {
        body["cursor"] = json!(hex(&format!("{collection}:{last}")));
    }
    Reply::json(200, body)
}
