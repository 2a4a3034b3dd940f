//! The executor: runs a plan's steps over HTTP. The only place that talks to the API.
//!
//! Every request carries `Version: 2021-07-28` and JSON; `Authorization: Bearer` only when the
//! configuration holds a token (otherwise the host injects it). 429 is retried with backoff
//! that honours `Retry-After` and the `X-RateLimit-*` window; 5xx and "no answer" are retried
//! for idempotent methods only, since a retried POST whose first attempt did land would write
//! twice. Other 4xx are reported with the API's message and not retried.

use crate::config::Config;
use crate::error::{SyncError, UpstreamFailure};
use crate::plan::activity::{automations_in, CallActivity, CALL_ENTRY_LINE};
use crate::plan::vocabulary::{
    Capture, Plan, Ref, Step, When, CALL_ENTRY_ID, CONTACT_ID, CONTACT_PHONE, CONVERSATION_ID, DIALPAD_USER_ID, OWNER_ID, SHARE_LINKS,
};
use crate::report::ExecutedOperation;
use contacts_api::Method;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// The host's outbound policy refused it: retrying cannot help.
    Denied,
    /// Refused connection, reset, timeout: a retry may get through.
    Failed(String),
}

/// Outbound HTTP as the executor needs it. In the component this is `wasi:http` through waki;
/// in unit tests, a scripted fake.
pub trait Transport {
    /// Sends one request. `Err` means no answer came.
    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, NoAnswer>;
    /// Waits before a retry.
    fn sleep_ms(&mut self, ms: u64);
    /// Sends independent requests, concurrently where the transport can; answers in order.
    fn send_all(&mut self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, NoAnswer>> {
        requests.iter().map(|r| self.send(r)).collect()
    }
}

/// What running a plan found and did, also when it stopped on an error, so the caller can
/// record what was learned (a contact created before a failure must not be created again).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Execution {
    pub operations: Vec<ExecutedOperation>,
    pub contact_id: Option<String>,
    pub note_id: Option<String>,
    pub error: Option<SyncError>,
    /// The response body of a `Capture::Response` step.
    pub response: Option<Value>,
    /// The call's activity as written, when it was merged into a note found by its marker.
    pub merged_activity: Option<CallActivity>,
    /// Body of the call's note found by a marker search.
    found_note_body: Option<String>,
    /// A note step (create or update) succeeded in this run.
    pub note_written: bool,
    /// `task.id` of a created task.
    pub task_id: Option<String>,
    /// Rules whose steps did not all succeed (the run stopped on or before one of them).
    pub unfinished_automations: Vec<String>,
    /// Lists read for [`When::NoSameItem`].
    found_tasks: Option<Vec<Value>>,
    found_notes: Option<Vec<Value>>,
    /// The contact's conversation, found or created.
    pub conversation_id: Option<String>,
    /// The call's entry in Conversations, added or found by its `altId`.
    pub call_entry_id: Option<String>,
    /// Dialpad share links made for the call's recordings, in order.
    pub share_links: Vec<String>,
    /// The HighLevel user the agent is, matched by e-mail.
    pub owner_id: Option<String>,
    /// The Dialpad contact written.
    pub dialpad_contact_id: Option<String>,
    /// The contact's phone, read.
    pub contact_phone: Option<String>,
}

const BACKOFF_CAP_MS: u64 = 8_000;
const UPSTREAM_BODY_LIMIT: usize = 2048;

/// Runs independent steps whose ids are all known (the reads of a contact view) at once: the
/// first attempts go out together, then any that needs a retry is retried on its own.
/// Returns the operations performed and the response bodies in step order.
pub fn execute_together(steps: &[Step], config: &Config, transport: &mut dyn Transport) -> (Vec<ExecutedOperation>, Result<Vec<Value>, SyncError>) {
    let empty = Execution::default();
    let mut paths = Vec::new();
    for step in steps {
        match render(step, &empty) {
            Ok(path) => paths.push(path),
            Err(param) => return (Vec::new(), Err(SyncError::malformed(format!("{} needs {{{param}}}", step.operation.id)))),
        }
    }
    let requests: Vec<HttpRequest> = steps.iter().zip(&paths).map(|(s, p)| build_request(s, p, s.body.as_ref(), config)).collect();
    let answers = transport.send_all(&requests);
    let mut operations = Vec::new();
    let mut bodies = Vec::new();
    let mut error = None;
    for ((step, request), answer) in steps.iter().zip(&requests).zip(answers) {
        let path = &request.url[origin(step.operation.api, config).len()..];
        match settle(step, request, Some(answer), config, transport) {
            Ok((response, attempts)) => {
                operations.push(executed(step, path, Some(response.status), attempts));
                bodies.push(serde_json::from_slice(&response.body).unwrap_or(Value::Null));
            }
            Err((e, status, attempts)) => {
                operations.push(executed(step, path, status, attempts));
                error.get_or_insert(e);
            }
        }
    }
    (operations, error.map_or(Ok(bodies), Err))
}

/// Runs the plan's steps in order, resolving ids as it goes.
pub fn execute(plan: &Plan, config: &Config, transport: &mut dyn Transport) -> Execution {
    let mut run = Execution::default();
    // Whether the contact existed before this event (for `When::ContactExisted`).
    let mut contact_existed = false;
    for step in &plan.steps {
        if let Some(Ref::Known(id)) = &step.contact {
            run.contact_id.get_or_insert_with(|| id.clone());
            contact_existed = true;
        }
        let body = match step.when {
            When::Always => step.body.clone(),
            When::NoContactFound if run.contact_id.is_none() => step.body.clone(),
            When::ContactExisted if contact_existed => step.body.clone(),
            When::NoNoteFound if run.note_id.is_none() => step.body.clone(),
            When::NoteDiffers if run.note_id.is_some() => match merge_into_found_note(step, &mut run) {
                Some(body) => Some(body),
                None => continue,
            },
            When::NoSameItem if run.contact_id.is_some() => match same_item(step, &run) {
                Some(id) => {
                    // The earlier attempt's write landed: take its id, as if this one made it.
                    match step.capture {
                        Capture::Note => run.note_id = Some(id),
                        _ => run.task_id = Some(id),
                    }
                    continue;
                }
                None => step.body.clone(),
            },
            When::NoConversationFound if run.conversation_id.is_none() => step.body.clone(),
            When::NoCallEntryFound if run.call_entry_id.is_none() => step.body.clone(),
            When::CallEntryKnown if run.call_entry_id.is_some() => step.body.clone(),
            When::NoOwnerFound if run.owner_id.is_none() => step.body.clone(),
            When::AutomationNew
                if run.note_written
                    && !run.found_note_body.as_deref().map(automations_in).unwrap_or_default().iter().any(|a| Some(a) == step.automation.as_ref()) =>
            {
                step.body.clone()
            }
            _ => continue,
        };
        let path = match render(step, &run) {
            Ok(p) => p,
            Err(param) => {
                run.error = Some(SyncError::malformed(format!("{} needs {{{param}}}, which no earlier step resolved", step.operation.id)));
                return stopped_at(run, plan, step);
            }
        };
        let body = body.map(|b| fill(b, &run));
        match send_with_retries(step, &path, body.as_ref(), config, transport) {
            Ok((response, attempts)) => {
                run.operations.push(executed(step, &path, Some(response.status), attempts));
                let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
                match &step.capture {
                    Capture::Nothing => {}
                    Capture::Contact => {
                        run.contact_id = str_at(&json, &["contact", "id"]);
                        contact_existed = run.contact_id.is_some();
                    }
                    Capture::CreatedContact => {
                        run.contact_id = str_at(&json, &["contact", "id"]).or_else(|| str_at(&json, &["meta", "contactId"]));
                        contact_existed = response.status == 400;
                    }
                    Capture::Note => {
                        run.note_id = str_at(&json, &["note", "id"]).or(run.note_id.take());
                        run.note_written = true;
                    }
                    Capture::Task => run.task_id = str_at(&json, &["task", "id"]),
                    Capture::Tasks => run.found_tasks = json["tasks"].as_array().cloned(),
                    Capture::Notes => run.found_notes = json["notes"].as_array().cloned(),
                    Capture::Response => run.response = Some(json),
                    Capture::Conversation => {
                        run.conversation_id = json["conversations"].as_array().and_then(|c| c.first()).and_then(|c| c["id"].as_str()).map(str::to_string)
                    }
                    Capture::CreatedConversation => run.conversation_id = str_at(&json, &["conversation", "id"]).or_else(|| str_at(&json, &["conversationId"])),
                    Capture::CallEntryWithAltId(alt_id) => {
                        let found = json["messages"].as_array().and_then(|m| m.iter().find(|m| m["altId"].as_str() == Some(alt_id.as_str())));
                        run.call_entry_id = found.and_then(|m| m["id"].as_str()).map(str::to_string);
                    }
                    Capture::CallEntry => run.call_entry_id = str_at(&json, &["messageId"]),
                    Capture::ShareLink => run.share_links.extend(str_at(&json, &["access_link"])),
                    Capture::UserWithEmail(email, fallback) => {
                        let users = json["users"].as_array().or(json["items"].as_array());
                        let has_email = |u: &Value| {
                            u["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(email))
                                || u["emails"].as_array().is_some_and(|list| list.iter().any(|e| e.as_str().is_some_and(|e| e.eq_ignore_ascii_case(email))))
                        };
                        run.owner_id = users
                            .and_then(|list| list.iter().find(|u| has_email(u)))
                            .and_then(|user| user["id"].as_str().map(str::to_string).or_else(|| user["id"].as_u64().map(|n| n.to_string())))
                            .or_else(|| fallback.clone());
                    }
                    Capture::ContactPhone => run.contact_phone = str_at(&json, &["contact", "phone"]),
                    Capture::DialpadContact => run.dialpad_contact_id = str_at(&json, &["id"]).or_else(|| json["id"].as_u64().map(|n| n.to_string())),
                    Capture::NoteWithMarker(marker) => {
                        let found = json["notes"]
                            .as_array()
                            .and_then(|notes| notes.iter().find(|n| n["body"].as_str().is_some_and(|b| b.lines().any(|l| l.trim() == marker))));
                        run.note_id = found.and_then(|n| n["id"].as_str().map(str::to_string));
                        run.found_note_body = found.and_then(|n| n["body"].as_str().map(str::to_string));
                        // The note names the call's entry: it exists, whatever the records say.
                        if let Some(entry) = run.found_note_body.as_deref().and_then(|b| b.lines().find_map(|l| l.strip_prefix(CALL_ENTRY_LINE))) {
                            run.call_entry_id = Some(entry.trim().to_string());
                        }
                    }
                }
                let id_missing = match step.capture {
                    Capture::ContactPhone => run.contact_phone.is_none(),
                    Capture::UserWithEmail(..) if step.operation.id == "users.list" => run.owner_id.is_none(),
                    Capture::CreatedContact => run.contact_id.is_none(),
                    Capture::CreatedConversation => run.conversation_id.is_none(),
                    Capture::CallEntry => run.call_entry_id.is_none(),
                    Capture::ShareLink => run.share_links.is_empty(),
                    Capture::Note => run.note_id.is_none(),
                    Capture::Task => run.task_id.is_none(),
                    _ => false,
                };
                if id_missing {
                    run.error = Some(SyncError::Upstream(Box::new(failure(step, &path, &response, "response carries no id"))));
                    return stopped_at(run, plan, step);
                }
            }
            Err((error, status, attempts)) => {
                run.operations.push(executed(step, &path, status, attempts));
                run.error = Some(error);
                return stopped_at(run, plan, step);
            }
        }
    }
    run
}

/// The body for an `update-note` after a marker search: the found note read back as an
/// activity, with this event merged in. `None` when there is nothing to write: the merge
/// changes nothing, or the note no longer reads back (a person edited it; it is left alone
/// rather than overwritten).
/// The id of an item in the list read earlier that says what `step` would write: a task with
/// the same title and body, or a note with the same body.
fn same_item(step: &Step, run: &Execution) -> Option<String> {
    let body = step.body.as_ref()?;
    let (list, fields): (&Option<Vec<Value>>, &[&str]) = match step.capture {
        Capture::Note => (&run.found_notes, &["body"]),
        _ => (&run.found_tasks, &["title", "body"]),
    };
    let text = |v: &Value, f: &str| v[f].as_str().unwrap_or_default().trim().to_string();
    list.as_ref()?.iter().find(|item| fields.iter().all(|f| text(item, f) == text(body, f))).and_then(|item| item["id"].as_str().map(str::to_string))
}

/// Notes, for the caller's records, the rules of the failed step and of every step after it.
fn stopped_at(mut run: Execution, plan: &Plan, failed: &Step) -> Execution {
    let from = plan.steps.iter().position(|s| std::ptr::eq(s, failed)).unwrap_or(0);
    for name in plan.steps[from..].iter().filter_map(|s| s.automation.clone()) {
        if !run.unfinished_automations.contains(&name) {
            run.unfinished_automations.push(name);
        }
    }
    run
}

fn merge_into_found_note(step: &Step, run: &mut Execution) -> Option<Value> {
    let found = run.found_note_body.as_deref()?;
    let mut activity = CallActivity::from_note_body(found)?;
    let merge = step.merge_into_found_note.as_deref()?;
    activity.merge(&merge.event);
    if activity.call_entry_id.is_none() {
        activity.call_entry_id = run.call_entry_id.clone();
    }
    for name in &merge.automations {
        if !activity.automations.contains(name) {
            activity.automations.push(name.clone());
        }
    }
    let body = activity.note_body();
    if body == found {
        return None;
    }
    run.merged_activity = Some(activity);
    Some(serde_json::json!({ "body": body }))
}

fn render(step: &Step, run: &Execution) -> Result<String, &'static str> {
    let resolve = |r: &Option<Ref>, resolved: &Option<String>| -> Option<String> {
        match r {
            Some(Ref::Known(id)) => Some(id.clone()),
            Some(Ref::Resolved) => resolved.clone(),
            None => None,
        }
    };
    let contact = resolve(&step.contact, &run.contact_id);
    let note = resolve(&step.note, &run.note_id);
    let mut path = step.operation.render_path(|name| match step.other_params.iter().find(|(n, _)| *n == name) {
        Some((_, v)) => Some(v.as_str()),
        None => match name {
            "contactId" => contact.as_deref(),
            "id" => note.as_deref(),
            "conversationId" => run.conversation_id.as_deref(),
            "messageId" => run.call_entry_id.as_deref(),
            _ => None,
        },
    })?;
    // A query may name the contact an earlier step of the run found or created (the
    // conversation search of a new caller).
    let query = step.query.iter().map(|(k, v)| (*k, if v == CONTACT_ID { run.contact_id.as_deref().unwrap_or(v) } else { v.as_str() }));
    path.push_str(&contacts_api::query_string(query));
    Ok(path)
}

/// The body with the placeholders of [`crate::plan::vocabulary`] filled from the run.
fn fill(body: Value, run: &Execution) -> Value {
    match body {
        Value::String(s) => match s.as_str() {
            CONTACT_ID => run.contact_id.clone().map_or(Value::String(s), Value::String),
            CONVERSATION_ID => run.conversation_id.clone().map_or(Value::String(s), Value::String),
            OWNER_ID => run.owner_id.clone().map_or(Value::Null, Value::String),
            CONTACT_PHONE => run.contact_phone.clone().map_or(Value::String(s), Value::String),
            DIALPAD_USER_ID => run.owner_id.as_deref().and_then(|id| id.parse::<u64>().ok()).map_or(Value::String(s), Value::from),
            _ if s.contains(CALL_ENTRY_ID) => Value::String(s.replace(CALL_ENTRY_ID, run.call_entry_id.as_deref().unwrap_or("(not made)"))),
            // A screen pop's URL names the contact found.
            _ if s.contains(CONTACT_ID) && run.contact_id.is_some() => Value::String(s.replace(CONTACT_ID, run.contact_id.as_deref().unwrap_or_default())),
            _ => Value::String(s),
        },
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .flat_map(|item| match item {
                    Value::String(s) if s == SHARE_LINKS => run.share_links.iter().cloned().map(Value::String).collect::<Vec<_>>(),
                    other => vec![fill(other, run)],
                })
                .collect(),
        ),
        // A key whose value is a missing owner is left out (unassigned, not assigned to null).
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, fill(v, run))).filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

fn executed(step: &Step, path: &str, status: Option<u16>, attempts: u32) -> ExecutedOperation {
    ExecutedOperation {
        operation_id: step.operation.id.to_string(),
        method: step.operation.method.as_str().to_string(),
        path: path.to_string(),
        status,
        attempts,
    }
}

/// Sends one step, retrying what may be retried. `Ok` carries a success status, or the
/// duplicate refusal that `create-contact` turns into the existing contact's id.
fn send_with_retries(
    step: &Step,
    path: &str,
    body: Option<&Value>,
    config: &Config,
    transport: &mut dyn Transport,
) -> Result<(HttpResponse, u32), (SyncError, Option<u16>, u32)> {
    settle(step, &build_request(step, path, body, config), None, config, transport)
}

/// Judges the answer to a request (`first`, when it was already sent) and retries what may be
/// retried.
fn settle(
    step: &Step,
    request: &HttpRequest,
    mut first: Option<Result<HttpResponse, NoAnswer>>,
    config: &Config,
    transport: &mut dyn Transport,
) -> Result<(HttpResponse, u32), (SyncError, Option<u16>, u32)> {
    let path = &request.url[origin(step.operation.api, config).len()..];
    let idempotent = step.operation.method != Method::Post;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt >= config.max_attempts;
        let answer = match first.take() {
            Some(answer) => answer,
            None => transport.send(request),
        };
        match answer {
            Err(NoAnswer::Denied) => {
                let reason = format!("{} {path}: refused by the host's outbound policy (is api_base allowed?)", step.operation.id);
                return Err((SyncError::Transport(reason), None, attempt));
            }
            Err(NoAnswer::Failed(reason)) => {
                if last || !idempotent {
                    return Err((SyncError::Transport(format!("{} {path}: {reason}", step.operation.id)), None, attempt));
                }
                transport.sleep_ms(backoff_ms(config, attempt, None));
            }
            Ok(response) if (200..300).contains(&response.status) => return Ok((response, attempt)),
            Ok(response) if response.status == 400 && step.capture == Capture::CreatedContact && duplicate_of(&response).is_some() => {
                return Ok((response, attempt))
            }
            // The contact's conversation exists already (made by someone else since the search):
            // HighLevel refuses with its id, which is the one wanted.
            Ok(response) if response.status == 400 && step.capture == Capture::CreatedConversation && existing_conversation(&response).is_some() => {
                return Ok((response, attempt))
            }
            // Deleting what is already gone is done (an earlier attempt's delete may have
            // landed without its answer): HighLevel says 400 "… not found", or 404.
            Ok(response) if step.operation.method == Method::Delete && is_not_found(&response) => return Ok((response, attempt)),
            Ok(response) if response.status == 429 => {
                let wait = retry_after_ms(&response);
                if last {
                    return Err((SyncError::RateLimited { operation_id: step.operation.id.to_string(), retry_after_ms: wait }, Some(429), attempt));
                }
                transport.sleep_ms(backoff_ms(config, attempt, wait));
            }
            Ok(response) if response.status >= 500 && idempotent && !last => {
                transport.sleep_ms(backoff_ms(config, attempt, retry_after_ms(&response)));
            }
            Ok(response) => {
                let status = response.status;
                return Err((SyncError::Upstream(Box::new(failure(step, path, &response, ""))), Some(status), attempt));
            }
        }
    }
}

/// The request for one step, to its API's origin with that API's `Version` header and, when
/// the configuration holds one, that API's credential (never another API's: a HighLevel token
/// never goes to Dialpad, and back).
fn build_request(step: &Step, path: &str, body: Option<&Value>, config: &Config) -> HttpRequest {
    let api = step.operation.api;
    let mut headers = vec![("Accept", "application/json".to_string())];
    if let Some(version) = api.version_header() {
        headers.push(("Version", version.to_string()));
    }
    let credential = if api.is_highlevel() { &config.token } else { &config.dialpad_api_key };
    if let Some(token) = credential {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    let multipart = step.operation.body.is_some_and(|b| b.content == contacts_api::Content::Multipart);
    let body = body.map(|b| {
        if multipart {
            headers.push(("Content-Type", format!("multipart/form-data; boundary={MULTIPART_BOUNDARY}")));
            multipart_body(b)
        } else {
            headers.push(("Content-Type", "application/json".to_string()));
            b.to_string().into_bytes()
        }
    });
    HttpRequest { method: step.operation.method, url: format!("{}{path}", origin(api, config)), headers, body }
}

/// Separates the parts of a multipart body; no value the plugin sends holds it.
const MULTIPART_BOUNDARY: &str = "dialpad-ghl-sync-7c1f0e9a";

/// A `multipart/form-data` body from an object of fields (RFC 7578): a string or number is a
/// text part, an array one part per item, a `{"filename", "content_type", "content"}` a file.
/// Written here rather than with a crate: it is the one multipart request (Conversations'
/// upload), and a multipart crate would pull an HTTP stack into the component.
fn multipart_body(body: &Value) -> Vec<u8> {
    let mut out = String::new();
    let mut part = |name: &str, value: &Value| {
        out.push_str(&format!("--{MULTIPART_BOUNDARY}\r\n"));
        if crate::actions::is_file(value) {
            let content_type = value["content_type"].as_str().unwrap_or("application/octet-stream");
            let filename = value["filename"].as_str().unwrap_or_default().replace('"', "%22");
            out.push_str(&format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"));
            out.push_str(value["content"].as_str().unwrap_or_default());
        } else {
            out.push_str(&format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"));
            match value {
                Value::String(s) => out.push_str(s),
                other => out.push_str(&other.to_string()),
            }
        }
        out.push_str("\r\n");
    };
    for (name, value) in body.as_object().into_iter().flatten() {
        match value {
            Value::Array(items) => items.iter().for_each(|item| part(name, item)),
            Value::Null => {}
            other => part(name, other),
        }
    }
    out.push_str(&format!("--{MULTIPART_BOUNDARY}--\r\n"));
    out.into_bytes()
}

/// The origin an API's requests go to.
pub(crate) fn origin(api: contacts_api::Api, config: &Config) -> &str {
    if api.is_highlevel() {
        &config.api_base
    } else {
        &config.dialpad_api_base
    }
}

fn is_not_found(response: &HttpResponse) -> bool {
    let message = || serde_json::from_slice::<Value>(&response.body).ok().and_then(|j| j["message"].as_str().map(str::to_ascii_lowercase)).unwrap_or_default();
    response.status == 404 || (response.status == 400 && message().ends_with("not found"))
}

/// The existing conversation's id in an "already exists" refusal.
fn existing_conversation(response: &HttpResponse) -> Option<String> {
    let json: Value = serde_json::from_slice(&response.body).ok()?;
    str_at(&json, &["conversationId"])
}

/// The existing contact's id in a "does not allow duplicated contacts" refusal.
fn duplicate_of(response: &HttpResponse) -> Option<String> {
    let json: Value = serde_json::from_slice(&response.body).ok()?;
    str_at(&json, &["meta", "contactId"])
}

/// How long the API asked us to wait: `Retry-After` (seconds), else the rest of the
/// `X-RateLimit-Interval-Milliseconds` window when `X-RateLimit-Remaining` is 0.
pub(crate) fn retry_after_ms(response: &HttpResponse) -> Option<u64> {
    if let Some(secs) = response.header("retry-after").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some((secs.max(0.0) * 1000.0) as u64);
    }
    let remaining = response.header("x-ratelimit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
    let interval = response.header("x-ratelimit-interval-milliseconds").and_then(|v| v.trim().parse::<u64>().ok());
    match (remaining, interval) {
        (Some(0), Some(ms)) => Some(ms),
        _ => None,
    }
}

/// Exponential from 250 ms, capped at 8 s; what the API asked for wins (capped at a minute).
pub(crate) fn backoff_ms(config: &Config, attempt: u32, asked: Option<u64>) -> u64 {
    let exponential = config.retry_base_delay_ms.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(BACKOFF_CAP_MS);
    asked.map(|ms| ms.min(60_000)).unwrap_or(exponential)
}

fn failure(step: &Step, path: &str, response: &HttpResponse, note: &str) -> UpstreamFailure {
    let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    // HighLevel's `message` is a string on 400/401 and a list of strings on 422.
    let mut message = match &json["message"] {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
        _ => String::new(),
    };
    if !note.is_empty() {
        message = if message.is_empty() { note.to_string() } else { format!("{message} ({note})") };
    }
    let text = String::from_utf8_lossy(&response.body);
    let mut cut = text.len().min(UPSTREAM_BODY_LIMIT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    UpstreamFailure {
        operation_id: step.operation.id.to_string(),
        method: step.operation.method.as_str().to_string(),
        path: path.to_string(),
        status: response.status,
        message,
        body: text[..cut].to_string(),
    }
}

fn str_at(json: &Value, path: &[&str]) -> Option<String> {
    let mut v = json;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}
