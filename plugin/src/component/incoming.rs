//! `wasi:http/incoming-handler`: the same component as a plain HTTP service, for hosts that
//! serve `wasi:http/proxy` components as they are (`wasmtime serve`, Spin, wasmCloud). The
//! routes and the status of each typed error are in the WIT docs of the world `plugin`.
//!
//! Written on waki's bindings (`waki::bindings`), which already hold the `wasi:http` types the
//! outbound client uses: one set of `wasi:http` bindings in the component, and one exporter.

use super::{wit, Component};
use serde_json::{Map, Value};
use waki::bindings::exports::wasi::http::incoming_handler::Guest;
use waki::bindings::wasi::http::types::{ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use waki::bindings::wasi::io::streams::StreamError;
// The largest body accepted is the limit the event reader applies.
use crate::inbound::signature::MAX_BODY_BYTES;

/// `Retry-After` of a `rate-limited` answer when HighLevel did not say: its burst window.
const DEFAULT_RETRY_AFTER_SECS: u64 = 10;

impl Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let answer = answer(&request);
        respond(out, answer);
    }
}

/// What to send back.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// One more header (`Allow`, `Retry-After`).
    header: Option<(&'static str, String)>,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Answer {
        Answer { status, content_type: "application/json", body: body.to_string().into_bytes(), header: None }
    }

    fn refusal(status: u16, kind: &str, message: String) -> Answer {
        Answer::json(status, &object(vec![("type", kind.into()), ("message", message.into())]))
    }

    fn with_header(mut self, name: &'static str, value: String) -> Answer {
        self.header = Some((name, value));
        self
    }
}

enum Route {
    Webhook,
    Platform,
    Health,
}

fn answer(request: &IncomingRequest) -> Answer {
    let target = request.path_with_query().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let route = match path {
        "/" | "/webhooks/dialpad" => Route::Webhook,
        "/events/platform" => Route::Platform,
        "/healthz" => Route::Health,
        _ => {
            let message = format!("no route {path}: POST /webhooks/dialpad, POST /events/platform, GET /healthz");
            return Answer::refusal(404, "unknown-path", message);
        }
    };
    let method = request.method();
    let allowed = if matches!(route, Route::Health) { "GET" } else { "POST" };
    let method_allowed = match method {
        Method::Get => allowed == "GET",
        Method::Post => allowed == "POST",
        _ => false,
    };
    if !method_allowed {
        return Answer::refusal(405, "method-not-allowed", format!("{path} takes {allowed}")).with_header("allow", allowed.to_string());
    }
    if let Route::Health = route {
        return Answer { status: 200, content_type: "text/plain", body: b"ok".to_vec(), header: None };
    }
    let body = match read_body(request) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    // The path names the source; the bytes go as they came to the handling `triggers.handle`
    // runs, which reads every source's bytes the same way. This handler is the door on a stock
    // host (no `route` comes first), so a signed event's time claims are checked here too.
    let event = match route {
        Route::Platform => wit::InboundEvent::PlatformEvent(body),
        _ => wit::InboundEvent::DialpadWebhook(body),
    };
    let handled = super::handle_event(event, true);
    match handled.result {
        Ok(r) => Answer::json(200, &report_json(&r, handled.plan.as_ref())),
        Err(e) => error_answer(&e),
    }
}

/// The request body; refused when it is larger than [`MAX_BODY_BYTES`] (reading stops there,
/// whatever `Content-Length` says) or could not be read whole.
fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, Answer> {
    let unreadable = || Answer::refusal(400, "unreadable-body", "the request body could not be read whole".into());
    let body = request.consume().map_err(|()| unreadable())?;
    let mut out = Vec::new();
    // The stream is a child of the body: dropped (end of this block) before it.
    {
        let stream = body.stream().map_err(|()| unreadable())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    out.extend_from_slice(&chunk);
                    if out.len() > MAX_BODY_BYTES {
                        return Err(Answer::refusal(413, "body-too-large", format!("the body is over {MAX_BODY_BYTES} bytes")));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(_)) => return Err(unreadable()),
            }
        }
    }
    Ok(out)
}

fn respond(out: ResponseOutparam, answer: Answer) {
    let mut headers =
        vec![("content-type".to_string(), answer.content_type.as_bytes().to_vec()), ("content-length".to_string(), answer.body.len().to_string().into_bytes())];
    if let Some((name, value)) = answer.header {
        headers.push((name.to_string(), value.into_bytes()));
    }
    let response = OutgoingResponse::new(Fields::from_list(&headers).unwrap_or_else(|_| Fields::new()));
    let _ = response.set_status_code(answer.status);
    let Ok(body) = response.body() else {
        return ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some("response body already taken".into()))));
    };
    ResponseOutparam::set(out, Ok(response));
    if super::http::write_body(&body, &answer.body).is_ok() {
        let _ = OutgoingBody::finish(body, None);
    }
}

/// A JSON object of these members.
fn object(members: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    for (k, v) in members {
        map.insert(k.to_string(), v);
    }
    Value::Object(map)
}

fn outcome_json(o: &wit::Outcome) -> (&'static str, Option<&str>) {
    match o {
        wit::Outcome::Synced => ("synced", None),
        wit::Outcome::Unchanged => ("unchanged", None),
        wit::Outcome::Skipped(reason) => ("skipped", Some(reason.as_str())),
    }
}

/// The plan the event ran, as `triggers.handle` returns it: its outcome and summary as planned,
/// and its operations with their bodies and conditions.
fn plan_json(p: &wit::EventPlan) -> Value {
    let (outcome, reason) = outcome_json(&p.outcome);
    let operations = p.operations.iter().map(|o| {
        object(vec![
            ("operation_id", o.operation_id.as_str().into()),
            ("method", o.method.as_str().into()),
            ("path", o.path.as_str().into()),
            ("body", o.body.as_deref().into()),
            ("condition", o.condition.as_deref().into()),
        ])
    });
    object(vec![("outcome", outcome.into()), ("reason", reason.into()), ("summary", p.summary.as_str().into()), ("operations", operations.collect())])
}

fn report_json(r: &wit::Report, plan: Option<&wit::EventPlan>) -> Value {
    let (outcome, reason) = outcome_json(&r.outcome);
    let kind = match r.kind {
        wit::EventKind::Call => "call",
        wit::EventKind::Contact => "contact",
        wit::EventKind::Sms => "sms",
        wit::EventKind::AgentStatus => "agent-status",
        wit::EventKind::Task => "task",
        wit::EventKind::Note => "note",
        wit::EventKind::HighlevelContact => "highlevel-contact",
    };
    let operations = r.operations.iter().map(|o| {
        object(vec![
            ("operation_id", o.operation_id.as_str().into()),
            ("method", o.method.as_str().into()),
            ("path", o.path.as_str().into()),
            ("status", o.status.into()),
            ("attempts", o.attempts.into()),
        ])
    });
    object(vec![
        ("kind", kind.into()),
        ("event_key", r.event_key.as_str().into()),
        ("outcome", outcome.into()),
        ("reason", reason.into()),
        ("summary", r.summary.as_str().into()),
        ("contact_id", r.contact_id.as_deref().into()),
        ("note_id", r.note_id.as_deref().into()),
        ("operations", operations.collect()),
        ("plan", plan.map_or(Value::Null, plan_json)),
    ])
}

/// The typed error as `{type, message}` (and `problems` where it has them), with the status a
/// webhook sender acts on: 4xx for what a retry cannot fix, 5xx (retried) for the rest.
fn error_answer(e: &wit::SyncError) -> Answer {
    use wit::SyncError as E;
    let problems_text =
        |p: &[wit::Problem]| p.iter().map(|p| format!("{}: {}", if p.path.is_empty() { "/" } else { &p.path }, p.message)).collect::<Vec<_>>().join("; ");
    let (status, kind, message) = match e {
        E::InvalidSignature(m) => (401, "invalid-signature", m.clone()),
        E::MalformedEvent(m) => (400, "malformed-event", m.clone()),
        E::InvalidInput(p) => (400, "invalid-input", problems_text(p)),
        E::UnknownOperation(id) => (400, "unknown-operation", format!("no Contacts API operation is called \"{id}\"")),
        E::BadConfig(p) => (500, "bad-config", problems_text(p)),
        E::MissingScope(s) => (500, "missing-scope", format!("the configured scopes do not grant {}", s.join(", "))),
        E::RateLimited(r) => (503, "rate-limited", format!("HighLevel kept answering 429 to {}", r.operation_id)),
        E::Upstream(u) => (502, "upstream", format!("{} {} {} answered {}: {}", u.operation_id, u.method, u.path, u.status, u.message)),
        E::Transport(m) => (502, "transport", m.clone()),
        E::Storage(m) => (503, "storage", m.clone()),
        E::NotFound(m) => (503, "not-found", m.clone()),
    };
    let answer = match e {
        E::BadConfig(p) | E::InvalidInput(p) => {
            let problems = p.iter().map(|p| object(vec![("path", p.path.as_str().into()), ("message", p.message.as_str().into())])).collect();
            Answer::json(status, &object(vec![("type", kind.into()), ("message", message.into()), ("problems", problems)]))
        }
        _ => Answer::refusal(status, kind, message),
    };
    match e {
        E::RateLimited(r) => {
            let secs = r.retry_after_ms.map(|ms| ms.div_ceil(1000).max(1)).unwrap_or(DEFAULT_RETRY_AFTER_SECS);
            answer.with_header("retry-after", secs.to_string())
        }
        _ => answer,
    }
}
