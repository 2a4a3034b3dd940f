//! What the Dialpad mock's endpoint tests share: a mock with a key, and requests that carry it.

use super::{DialpadMock, DialpadMockOptions};
use crate::support::loopback_request_with_headers;
use serde_json::Value;

pub(super) fn start(key: &str) -> DialpadMock {
    DialpadMock::start(DialpadMockOptions { api_key: key.into(), page_size: 25 }).unwrap()
}

/// An API request with `key` as its bearer token: (status, body).
pub(super) fn api_with(key: &str, mock: &DialpadMock, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let bearer = format!("Bearer {key}");
    let text = body.map_or(String::new(), |b| b.to_string());
    let (status, answer) =
        loopback_request_with_headers(method, &format!("{}{path}", mock.base_url()), &[("Authorization", &bearer)], text.as_bytes()).unwrap();
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

/// The message of a Dialpad error body.
pub(super) fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}
