//! The request log's entries.

use axum::http::{header, HeaderMap};
use std::time::Instant;

/// One request as the mock saw it. The token itself is never stored, only whether one was sent.
///
/// Every request is logged, including the ones that got an injected fault, were rate limited, or
/// went to `/oauth/token` or the Marketplace's routes; only the `/__mock/*` debug routes are not.
///
/// Two records are equal when they record the same request: [`RecordedRequest::at`] is not
/// compared.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query exactly as received (not decoded), so tests can check the encoding.
    pub path_and_query: String,
    /// The operation the path routes to, even when the request was rejected before dispatch
    /// (401, bad version, rate limit, injected fault): it tells a test what the caller *tried* to
    /// do. `None` for `/oauth/token`, the Marketplace's routes and unknown paths.
    pub operation_id: Option<&'static str>,
    /// The status the client received; **0 when no response was sent** (an injected drop:
    /// `fault` says whether the request was applied first).
    pub status: u16,
    pub authorization_present: bool,
    /// The injected fault, by [`FaultKind::name`] (`"server-error"`, `"rate-limited"`,
    /// `"delay"`, `"drop-before"`, `"drop-after"`); `None` for a request without one, including
    /// one rejected by the rate limit ([`MockOptions::rate_limit`]). Omitted from JSON when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
    /// Only for `/oauth/token` and `/oauth/locationToken`: the form body with the values of
    /// `client_secret`, `refresh_token` and `code` replaced by `REDACTED`. Omitted from JSON
    /// when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// When the mock logged it: as it answered, after its latency and after the request took
    /// effect (a write is in the mock's data from then on). Not serialized, not compared.
    #[serde(skip)]
    pub at: Instant,
}

impl PartialEq for RecordedRequest {
    fn eq(&self, other: &RecordedRequest) -> bool {
        let RecordedRequest { method, path_and_query, operation_id, status, authorization_present, fault, body, at: _ } = self;
        (method, path_and_query, operation_id, status, authorization_present, fault, body)
            == (&other.method, &other.path_and_query, &other.operation_id, &other.status, &other.authorization_present, &other.fault, &other.body)
    }
}

impl RecordedRequest {
    pub(super) fn new(method: &str, path_and_query: &str, headers: &HeaderMap, operation_id: Option<&'static str>, status: u16) -> RecordedRequest {
        RecordedRequest {
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            operation_id,
            status,
            authorization_present: headers.contains_key(header::AUTHORIZATION),
            fault: None,
            body: None,
            at: Instant::now(),
        }
    }
}
