//! Backfill and reconciliation: Dialpad's concluded calls, listed page by page through its API
//! (`GET /api/v2/call`, newest first, cursor paging), each handled as its hangup webhook is.
//! The records that make a webhook's redelivery write nothing make a listed call that was
//! already synced write nothing, whichever came first.

use crate::config::Config;
use crate::error::{SyncError, UpstreamFailure};
use crate::execute::{backoff_ms, retry_after_ms, HttpRequest, NoAnswer, Transport};
use crate::pipeline;
use crate::report::{PlanView, Report};
use crate::state::Store;
use contacts_api::Method;
use serde_json::Value;

/// Calls that started in this window (UTC ms, both bounds exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub started_after: u64,
    pub started_before: Option<u64>,
}

/// One page of the listing, handled (or planned: `T` is a plan then).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub calls: Vec<(String, Result<T, SyncError>)>,
    pub next_cursor: Option<String>,
    pub oldest_started: Option<u64>,
}

/// The listing's URL for one page.
pub fn list_url(config: &Config, window: &Window, cursor: Option<&str>) -> String {
    let query = url_query(&[
        ("started_after", Some(window.started_after.to_string())),
        ("started_before", window.started_before.map(|t| t.to_string())),
        ("cursor", cursor.map(str::to_string)),
    ]);
    format!("{}/api/v2/call{query}", config.dialpad_api_base)
}

fn url_query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", percent_encode(v)))).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn percent_encode(value: &str) -> String {
    value.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Fetches one page: the calls as Dialpad lists them, and the next cursor. A GET: no answer,
/// 429 and 5xx are retried with the executor's backoff.
pub fn fetch_page(config: &Config, window: &Window, cursor: Option<&str>, transport: &mut dyn Transport) -> Result<(Vec<Value>, Option<String>), SyncError> {
    let url = list_url(config, window, cursor);
    let mut headers = vec![("Accept", "application/json".to_string())];
    if let Some(key) = &config.dialpad_api_key {
        headers.push(("Authorization", format!("Bearer {key}")));
    }
    let request = HttpRequest { method: Method::Get, url: url.clone(), headers, body: None };
    let path = &url[config.dialpad_api_base.len()..];
    let failure = |status: u16, body: &[u8], message: String| {
        SyncError::Upstream(Box::new(UpstreamFailure {
            operation_id: "dialpad-list-calls".into(),
            method: "GET".into(),
            path: path.to_string(),
            status,
            message,
            body: String::from_utf8_lossy(body).chars().take(2000).collect(),
        }))
    };
    let mut attempt = 0;
    let response = loop {
        attempt += 1;
        let last = attempt >= config.max_attempts;
        match transport.send(&request) {
            Err(NoAnswer::Denied) => {
                return Err(SyncError::Transport(format!("GET {path}: refused by the host's outbound policy (is dialpad_api_base allowed?)")))
            }
            Err(NoAnswer::Failed(reason)) if last => return Err(SyncError::Transport(format!("GET {path}: {reason}"))),
            Err(NoAnswer::Failed(_)) => transport.sleep_ms(backoff_ms(config, attempt, None)),
            Ok(r) if (200..300).contains(&r.status) => break r,
            Ok(r) if r.status == 429 && last => {
                return Err(SyncError::RateLimited { operation_id: "dialpad-list-calls".into(), retry_after_ms: retry_after_ms(&r) })
            }
            Ok(r) if (r.status == 429 || r.status >= 500) && !last => transport.sleep_ms(backoff_ms(config, attempt, retry_after_ms(&r))),
            Ok(r) => {
                let message = serde_json::from_slice::<Value>(&r.body)
                    .ok()
                    .and_then(|j| j["error"]["message"].as_str().or(j["message"].as_str()).map(str::to_string))
                    .unwrap_or_else(|| "Dialpad refused the call listing".into());
                return Err(failure(r.status, &r.body, message));
            }
        }
    };
    let json: Value = serde_json::from_slice(&response.body).map_err(|e| failure(response.status, &response.body, format!("the listing is not JSON: {e}")))?;
    let items = match &json["items"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        _ => return Err(failure(response.status, &response.body, "the listing's `items` is not a list".into())),
    };
    let cursor = json["cursor"].as_str().filter(|c| !c.is_empty()).map(str::to_string);
    Ok((items, cursor))
}

fn call_id(call: &Value) -> String {
    match &call["call_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "?".into(),
    }
}

fn oldest_started(calls: &[Value]) -> Option<u64> {
    calls.iter().filter_map(|c| c["date_started"].as_f64()).map(|t| t.max(0.0) as u64).min()
}

/// Fetches one page and handles each of its calls.
pub fn sync_page(
    config: &Config,
    window: &Window,
    cursor: Option<&str>,
    store: &mut dyn Store,
    transport: &mut dyn Transport,
) -> Result<Page<Report>, SyncError> {
    let (items, next_cursor) = fetch_page(config, window, cursor, transport)?;
    let calls = items.iter().map(|call| (call_id(call), pipeline::handle_listed_call(call.to_string().as_bytes(), config, store, transport).result)).collect();
    Ok(Page { calls, next_cursor, oldest_started: oldest_started(&items) })
}

/// Fetches one page and plans each of its calls; writes nothing.
pub fn plan_page(
    config: &Config,
    window: &Window,
    cursor: Option<&str>,
    store: &mut dyn Store,
    transport: &mut dyn Transport,
) -> Result<Page<PlanView>, SyncError> {
    let (items, next_cursor) = fetch_page(config, window, cursor, transport)?;
    let calls = items.iter().map(|call| (call_id(call), pipeline::plan_listed_call(call.to_string().as_bytes(), config, store))).collect();
    Ok(Page { calls, next_cursor, oldest_started: oldest_started(&items) })
}
