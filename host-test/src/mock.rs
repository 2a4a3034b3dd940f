//! In-memory mock of HighLevel's Contacts API v2 (`Version: 2021-07-28`).
//!
//! The mock exists so the plugin can be exercised end to end without a HighLevel account, and so
//! tests can assert the exact list of requests the plugin made. It aims to be *faithful* rather
//! than convenient: a request the real server would reject must be rejected here too, or the
//! tests would pass against the mock and fail in production.
//!
//! Two sources keep it honest instead of a second hand-written description of the API:
//! * routing, scopes and success statuses come from [`contacts_api::OPERATIONS`] through
//!   [`contacts_api::match_path`];
//! * request validation (allowed body properties, their types, required properties, required query
//!   parameters) is derived at startup from the embedded official OpenAPI spec, so a property the
//!   spec does not whitelist gets the same 422 the real NestJS server answers.
//!
//! Behaviour the spec does not describe (error texts for 400/403/404, the duplicate-contact 400)
//! follows what the real server is reported to answer; see `shared/reference/notes/ghl-contacts-api.md`.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use contacts_api::{Method, Operation, Scope, API_VERSION_HEADER};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

/// The official Contacts spec, verbatim (see `spec/SOURCE.txt`).
const CONTACTS_SPEC: &str = include_str!("../spec/apps/contacts.json");
/// The error DTOs the Contacts spec references as `../common/common-schemas.json`.
const COMMON_SCHEMAS: &str = include_str!("../spec/common/common-schemas.json");

/// Largest request body the mock reads; far above anything the Contacts API accepts.
const BODY_LIMIT: usize = 16 << 20;
/// How long a dropped [`MockServer`] waits for in-flight connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

const MSG_VERSION: &str = "version header must be 2021-07-28";
const MSG_FORBIDDEN: &str = "The token is not authorized for this scope.";
const MSG_NOT_JSON: &str = "Unexpected token in JSON body";
const MSG_DUPLICATE: &str = "This location does not allow duplicated contacts.";

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

/// How a mock behaves; the knobs mirror settings of a real HighLevel location and token.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// The only bearer token accepted; `None` accepts any bearer token.
    pub token: Option<String>,
    /// The location's "Allow Duplicate Contact" setting: when false, creating a contact whose
    /// email or phone is already used in the location fails with 400.
    pub allow_duplicates: bool,
    /// Scopes granted to the token; operations needing another scope answer 403.
    pub scopes: Vec<Scope>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            token: None,
            allow_duplicates: false,
            scopes: vec![Scope::ContactsReadonly, Scope::ContactsWrite],
        }
    }
}

/// One request as the mock saw it. The token itself is never stored, only whether one was sent.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query exactly as received (not decoded), so tests can check the encoding.
    pub path_and_query: String,
    /// The operation the path routes to, even when the request was rejected before dispatch
    /// (401, bad version): it tells a test what the caller *tried* to do.
    pub operation_id: Option<&'static str>,
    pub status: u16,
    pub authorization_present: bool,
}

/// The mock's shared state: options plus the Mutex-protected data. Handlers never hold the lock
/// across an `.await`; every operation is a short synchronous critical section.
pub struct MockState {
    options: MockOptions,
    data: Mutex<Data>,
}

/// A running mock on 127.0.0.1 (random port unless given). Runs on its own thread with its own
/// tokio runtime, so callers can be plain synchronous code. Dropping it shuts the server down.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<MockState>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts a mock on `127.0.0.1:0` (a free port chosen by the OS).
    pub fn start(options: MockOptions) -> anyhow::Result<MockServer> {
        MockServer::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options)
    }

    /// Starts a mock on `addr`. The socket is bound before this returns, so the mock accepts
    /// connections as soon as the caller has the [`MockServer`] in hand.
    pub fn start_on(addr: SocketAddr, options: MockOptions) -> anyhow::Result<MockServer> {
        // Parse the embedded spec up front so a broken embed fails here, not in a request.
        spec();
        let std_listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding the mock Contacts API to {addr}"))?;
        std_listener.set_nonblocking(true).context("making the mock's listener non-blocking")?;
        let addr = std_listener.local_addr().context("reading the mock's local address")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the mock's tokio runtime")?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).context("registering the mock's listener with tokio")?
        };
        let state = Arc::new(MockState::new(options));
        let app = router(Arc::clone(&state));
        let (shutdown, stop) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("ghl-mock-{}", addr.port()))
            .spawn(move || serve(runtime, listener, app, stop))
            .context("spawning the mock's server thread")?;
        Ok(MockServer { addr, state, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash, ready to prefix operation paths.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state, for callers that want to inspect it without going through HTTP.
    pub fn state(&self) -> &Arc<MockState> {
        &self.state
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// All contacts, in creation order.
    pub fn contacts(&self) -> Vec<Value> {
        self.state.contacts()
    }

    /// All notes of all contacts, in creation order, each with its `contactId`.
    pub fn notes(&self) -> Vec<Value> {
        self.state.notes()
    }

    /// Seeds a contact directly (no request logged); returns its id.
    pub fn seed_contact(&self, contact: Value) -> String {
        self.state.seed_contact(contact)
    }

    /// Blocks the calling thread until the server stops (for the `mock` CLI command). The server
    /// only stops on its own if its accept loop fails, so in practice this runs until the
    /// process is terminated.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server thread's body: serve until told to stop, drain for a moment, then drop the runtime,
/// which cancels any connection that outlived the grace period. This is what guarantees the
/// thread never outlives its [`MockServer`].
fn serve(
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    app: Router,
    stop: oneshot::Receiver<()>,
) {
    runtime.block_on(async move {
        let (drain, drained) = oneshot::channel::<()>();
        let mut server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = drained.await;
                })
                .into_future(),
        );
        tokio::select! {
            // A send from Drop, or the sender dropped: either way the owner is gone.
            _ = stop => {}
            // The accept loop ended by itself; nothing left to drain.
            _ = &mut server => return,
        }
        let _ = drain.send(());
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
    });
}

/// The axum Router over shared state, for callers that serve it themselves.
///
/// Every API request goes through one fallback handler that routes with
/// [`contacts_api::match_path`]; the only other routes are the two debug routes, which bypass
/// auth and are not logged.
pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/__mock/state", get(debug_state))
        .route("/__mock/requests", get(debug_requests))
        .fallback(api)
        .with_state(state)
}

async fn debug_state(State(state): State<Arc<MockState>>) -> Json<Value> {
    Json(json!({ "contacts": state.contacts(), "notes": state.notes() }))
}

async fn debug_requests(State(state): State<Arc<MockState>>) -> Json<Vec<RecordedRequest>> {
    Json(state.requests())
}

/// Reads the whole body (chunked or not) and hands the request to [`MockState::handle`].
async fn api(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query =
        parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let (status, body) = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => state.handle(parts.method.as_str(), &path_and_query, &parts.headers, &bytes),
        Err(_) => {
            let reply = Reply::error(413, "request entity too large");
            state.record(parts.method.as_str(), &path_and_query, &parts.headers, None, reply.status);
            (reply.status, reply.body)
        }
    };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

impl MockState {
    pub fn new(options: MockOptions) -> MockState {
        MockState { options, data: Mutex::new(Data::default()) }
    }

    pub fn options(&self) -> &MockOptions {
        &self.options
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// All contacts, in creation order.
    pub fn contacts(&self) -> Vec<Value> {
        self.lock().contacts.iter().cloned().map(Value::Object).collect()
    }

    /// All notes, in creation order, each with its `contactId`.
    pub fn notes(&self) -> Vec<Value> {
        self.lock().notes.iter().cloned().map(Value::Object).collect()
    }

    /// Stores a contact as if it had been created earlier; returns its id. An `id` in `contact`
    /// is kept, otherwise the next deterministic id is used. Missing `dateAdded`/`dateUpdated`
    /// are set to now, `tags` defaults to `[]`, and the derived fields (`name`, `*LowerCase`) are
    /// filled in like for a created contact. Nothing is logged.
    ///
    /// Panics if `contact` is not a JSON object: seeding is test setup, so that is a bug.
    pub fn seed_contact(&self, contact: Value) -> String {
        let Value::Object(mut fields) = contact else {
            panic!("seed_contact takes a JSON object, got {contact}");
        };
        let id = match fields.remove("id") {
            Some(Value::String(id)) => Some(id),
            _ => None,
        };
        let now = now_iso8601();
        let mut data = self.lock();
        let index = data.insert_contact(id, fields, &now);
        data.contacts[index]["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Answers one API request and records it in the request log. This is the whole mock minus
    /// HTTP: `method` and `path_and_query` as on the request line, `body` the raw bytes.
    /// Returns the status and the JSON body.
    pub fn handle(&self, method: &str, path_and_query: &str, headers: &HeaderMap, body: &[u8]) -> (u16, Value) {
        let path = path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path);
        let matched = Method::parse(method).and_then(|m| contacts_api::match_path(m, path));
        let reply = self.respond(method, path_and_query, headers, matched.as_ref(), body);
        self.record(method, path_and_query, headers, matched.map(|m| m.operation.id), reply.status);
        (reply.status, reply.body)
    }

    fn record(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        operation_id: Option<&'static str>,
        status: u16,
    ) {
        let request = RecordedRequest {
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            operation_id,
            status,
            authorization_present: headers.contains_key(header::AUTHORIZATION),
        };
        self.lock().requests.push(request);
    }

    /// The checks, always in this order (so a test can predict which error wins):
    /// auth, version, route, scope, then request validation, then the operation itself.
    fn respond(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        matched: Option<&contacts_api::Matched>,
        raw_body: &[u8],
    ) -> Reply {
        if !self.authorized(headers) {
            return spec().unauthorized();
        }
        if headers.get("version").and_then(|v| v.to_str().ok()) != Some(API_VERSION_HEADER) {
            return Reply::error(400, MSG_VERSION);
        }
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let Some(matched) = matched else {
            return Reply::error(404, format!("Cannot {method} {path}"));
        };
        let op = matched.operation;
        if !self.options.scopes.contains(&op.scope) {
            return Reply::new(403, json!({ "statusCode": 403, "message": MSG_FORBIDDEN, "error": "Forbidden" }));
        }

        let rules = spec().rules(op);
        let query = parse_query(query);
        // The body is parsed before it is validated, like Express's body parser runs before
        // Nest's ValidationPipe: malformed JSON is a 400, never a 422.
        let body = match &rules.body {
            Some(_) => match parse_body(raw_body) {
                Ok(body) => body,
                Err(reply) => return reply,
            },
            None => Map::new(),
        };
        let mut problems: Vec<String> = rules
            .required_query
            .iter()
            .filter(|name| query_value(&query, name).is_none_or(|v| v.trim().is_empty()))
            .map(|name| format!("{name} should not be empty"))
            .collect();
        if let Some(body_rules) = &rules.body {
            problems.extend(body_rules.check(&body));
        }
        if !problems.is_empty() {
            return spec().unprocessable(problems);
        }

        self.dispatch(op, &matched.params, &query, body)
    }

    /// `Authorization: Bearer <token>` with a non-empty token, equal to the configured one if any.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return false;
        };
        let token = token.trim();
        scheme.eq_ignore_ascii_case("bearer")
            && !token.is_empty()
            && self.options.token.as_deref().is_none_or(|expected| expected == token)
    }

    fn dispatch(
        &self,
        op: &'static Operation,
        params: &[(&'static str, String)],
        query: &[(String, String)],
        body: Map<String, Value>,
    ) -> Reply {
        let param = |name: &str| params.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str());
        let ok = op.success_status;
        let now = now_iso8601();
        let mut data = self.lock();
        match op.id {
            "create-contact" => data.create_contact(body, self.options.allow_duplicates, ok, &now),
            "upsert-contact" => data.upsert_contact(body, self.options.allow_duplicates, ok, &now),
            "get-contact" => data.get_contact(param("contactId"), ok),
            "update-contact" => data.update_contact(param("contactId"), body, ok, &now),
            "get-duplicate-contact" => data.duplicate_contact(query, ok),
            "create-note" => data.create_note(param("contactId"), body, ok, &now),
            "get-all-notes" => data.all_notes(param("contactId"), ok),
            "get-note" => data.get_note(param("contactId"), param("id"), ok),
            "update-note" => data.update_note(param("contactId"), param("id"), body, ok),
            "add-tags" => data.add_tags(param("contactId"), &body, ok, &now),
            other => Reply::error(501, format!("mock: {other} is not implemented yet")),
        }
    }

    /// A panic in one handler must not wedge every later request, so poisoning is ignored: the
    /// data is plain values and stays consistent enough for a mock.
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ------------------------------------------------------------------------------------------------
// Responses
// ------------------------------------------------------------------------------------------------

/// A status and JSON body, before it becomes an HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn new(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    /// The `BadRequestDTO` shape (`statusCode` + string `message`), used for every non-422 error.
    fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::new(status, json!({ "statusCode": status, "message": message.into() }))
    }

    fn contact_not_found(id: &str) -> Reply {
        Reply::error(400, format!("Contact with id {id} not found"))
    }

    fn note_not_found(id: &str) -> Reply {
        Reply::error(400, format!("Note with id {id} not found"))
    }
}

// ------------------------------------------------------------------------------------------------
// Data and operations
// ------------------------------------------------------------------------------------------------

/// Everything behind the mutex. Contacts and notes are kept as JSON objects so that any field
/// the spec allows is stored and echoed back exactly as sent, without a struct to keep in sync.
#[derive(Default)]
struct Data {
    contacts: Vec<Map<String, Value>>,
    notes: Vec<Map<String, Value>>,
    requests: Vec<RecordedRequest>,
    contact_counter: u64,
    note_counter: u64,
    trace_counter: u64,
}

impl Data {
    /// `contact0000000000001`, …: deterministic (tests assert exact request lists) and 20
    /// characters like real ids. Skips ids already taken by seeded contacts.
    fn next_contact_id(&mut self) -> String {
        loop {
            self.contact_counter += 1;
            let id = format!("contact{:013}", self.contact_counter);
            if self.contact_index(&id).is_none() {
                return id;
            }
        }
    }

    fn next_note_id(&mut self) -> String {
        self.note_counter += 1;
        format!("note{:016}", self.note_counter)
    }

    /// Upsert's `traceId`: UUID-shaped like the real one, but deterministic.
    fn next_trace_id(&mut self) -> String {
        self.trace_counter += 1;
        format!("00000000-0000-4000-8000-{:012}", self.trace_counter)
    }

    fn contact_index(&self, id: &str) -> Option<usize> {
        self.contacts.iter().position(|c| c.get("id").and_then(Value::as_str) == Some(id))
    }

    /// Stores a new contact built from `fields`; returns its index.
    fn insert_contact(&mut self, id: Option<String>, fields: Map<String, Value>, now: &str) -> usize {
        let id = id.unwrap_or_else(|| self.next_contact_id());
        let mut contact = Map::new();
        contact.insert("id".into(), Value::String(id));
        contact.insert("tags".into(), json!([]));
        contact.insert("dateAdded".into(), Value::String(now.to_owned()));
        contact.insert("dateUpdated".into(), Value::String(now.to_owned()));
        apply_fields(&mut contact, fields);
        self.contacts.push(contact);
        self.contacts.len() - 1
    }

    /// The location's duplicate rule: email first (case-insensitive), then phone (exact after
    /// trimming), within one location. Returns the index of the existing contact and the field
    /// that matched. Empty values never match.
    fn find_duplicate(
        &self,
        location: &str,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Option<(usize, &'static str)> {
        let candidates = || {
            self.contacts
                .iter()
                .enumerate()
                .filter(|(_, c)| c.get("locationId").and_then(Value::as_str) == Some(location))
                .map(|(index, c)| (index, |name: &str| str_field(c, name).map(str::trim)))
        };
        if let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()).map(str::to_lowercase) {
            if let Some((index, _)) =
                candidates().find(|(_, field)| field("email").is_some_and(|e| e.to_lowercase() == email))
            {
                return Some((index, "email"));
            }
        }
        if let Some(phone) = phone.map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((index, _)) = candidates().find(|(_, field)| field("phone") == Some(phone)) {
                return Some((index, "phone"));
            }
        }
        None
    }

    fn create_contact(&mut self, body: Map<String, Value>, allow_duplicates: bool, ok: u16, now: &str) -> Reply {
        if !allow_duplicates {
            let location = str_field(&body, "locationId").unwrap_or_default();
            if let Some((index, matching_field)) =
                self.find_duplicate(location, str_field(&body, "email"), str_field(&body, "phone"))
            {
                let existing = &self.contacts[index];
                return Reply::new(
                    400,
                    json!({
                        "statusCode": 400,
                        "message": MSG_DUPLICATE,
                        "meta": {
                            "contactId": existing["id"],
                            "contactName": str_field(existing, "name").unwrap_or_default(),
                            "matchingField": matching_field,
                        }
                    }),
                );
            }
        }
        let index = self.insert_contact(None, body, now);
        Reply::new(ok, json!({ "contact": self.contacts[index] }))
    }

    /// Upsert: update the contact the duplicate rule finds, or create one. `tags` in the body
    /// replaces all tags (the real API's documented behaviour). With duplicates allowed and
    /// `createNewIfDuplicateAllowed: true`, a new contact is always created.
    fn upsert_contact(&mut self, mut body: Map<String, Value>, allow_duplicates: bool, ok: u16, now: &str) -> Reply {
        // A request flag, not a contact field: never stored.
        let asked_for_new = body.remove("createNewIfDuplicateAllowed") == Some(Value::Bool(true));
        let create_new = allow_duplicates && asked_for_new;
        let location = str_field(&body, "locationId").unwrap_or_default();
        let existing = if create_new {
            None
        } else {
            self.find_duplicate(location, str_field(&body, "email"), str_field(&body, "phone"))
        };
        let trace_id = self.next_trace_id();
        let (new, index) = match existing {
            Some((index, _)) => {
                body.remove("locationId");
                let contact = &mut self.contacts[index];
                apply_fields(contact, body);
                contact.insert("dateUpdated".into(), Value::String(now.to_owned()));
                (false, index)
            }
            None => (true, self.insert_contact(None, body, now)),
        };
        Reply::new(ok, json!({ "new": new, "contact": self.contacts[index], "traceId": trace_id }))
    }

    fn get_contact(&self, id: &str, ok: u16) -> Reply {
        match self.contact_index(id) {
            Some(index) => Reply::new(ok, json!({ "contact": self.contacts[index] })),
            None => Reply::contact_not_found(id),
        }
    }

    fn update_contact(&mut self, id: &str, body: Map<String, Value>, ok: u16, now: &str) -> Reply {
        let Some(index) = self.contact_index(id) else {
            return Reply::contact_not_found(id);
        };
        let contact = &mut self.contacts[index];
        apply_fields(contact, body);
        contact.insert("dateUpdated".into(), Value::String(now.to_owned()));
        Reply::new(ok, json!({ "succeded": true, "contact": contact }))
    }

    fn duplicate_contact(&self, query: &[(String, String)], ok: u16) -> Reply {
        let location = query_value(query, "locationId").unwrap_or_default();
        let found = self.find_duplicate(location, query_value(query, "email"), query_value(query, "number"));
        let contact = found.map_or(Value::Null, |(index, _)| Value::Object(self.contacts[index].clone()));
        Reply::new(ok, json!({ "contact": contact }))
    }

    fn create_note(&mut self, contact_id: &str, body: Map<String, Value>, ok: u16, now: &str) -> Reply {
        if self.contact_index(contact_id).is_none() {
            return Reply::contact_not_found(contact_id);
        }
        let mut note = Map::new();
        note.insert("id".into(), Value::String(self.next_note_id()));
        note.insert("dateAdded".into(), Value::String(now.to_owned()));
        note.insert("contactId".into(), Value::String(contact_id.to_owned()));
        merge(&mut note, body);
        self.notes.push(note.clone());
        Reply::new(ok, json!({ "note": note }))
    }

    fn all_notes(&self, contact_id: &str, ok: u16) -> Reply {
        if self.contact_index(contact_id).is_none() {
            return Reply::contact_not_found(contact_id);
        }
        let notes: Vec<&Map<String, Value>> = self.notes.iter().filter(|n| note_of(n, contact_id)).collect();
        Reply::new(ok, json!({ "notes": notes }))
    }

    /// The note `id` of contact `contact_id`: the contact must exist, and the note must belong to it.
    fn note_index(&self, contact_id: &str, id: &str) -> Result<usize, Reply> {
        if self.contact_index(contact_id).is_none() {
            return Err(Reply::contact_not_found(contact_id));
        }
        self.notes
            .iter()
            .position(|n| note_of(n, contact_id) && n.get("id").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| Reply::note_not_found(id))
    }

    fn get_note(&self, contact_id: &str, id: &str, ok: u16) -> Reply {
        match self.note_index(contact_id, id) {
            Ok(index) => Reply::new(ok, json!({ "note": self.notes[index] })),
            Err(reply) => reply,
        }
    }

    fn update_note(&mut self, contact_id: &str, id: &str, body: Map<String, Value>, ok: u16) -> Reply {
        match self.note_index(contact_id, id) {
            Ok(index) => {
                merge(&mut self.notes[index], body);
                Reply::new(ok, json!({ "note": self.notes[index] }))
            }
            Err(reply) => reply,
        }
    }

    /// Adds tags to a contact (keeping the existing ones, no duplicates) and answers with all of them.
    fn add_tags(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        let Some(index) = self.contact_index(contact_id) else {
            return Reply::contact_not_found(contact_id);
        };
        let contact = &mut self.contacts[index];
        let mut tags = match contact.get("tags") {
            Some(Value::Array(tags)) => tags.clone(),
            _ => Vec::new(),
        };
        for tag in body.get("tags").and_then(Value::as_array).into_iter().flatten() {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        contact.insert("tags".into(), Value::Array(tags.clone()));
        contact.insert("dateUpdated".into(), Value::String(now.to_owned()));
        Reply::new(ok, json!({ "tags": tags }))
    }
}

fn note_of(note: &Map<String, Value>, contact_id: &str) -> bool {
    note.get("contactId").and_then(Value::as_str) == Some(contact_id)
}

fn str_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

/// Copies `fields` over `target`. A `null` removes the field: the mock never emits nulls, and
/// sending `null` for a nullable property clears it.
fn merge(target: &mut Map<String, Value>, fields: Map<String, Value>) {
    for (key, value) in fields {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

/// [`merge`] for contacts, then recomputes the fields HighLevel derives from the sent ones.
fn apply_fields(contact: &mut Map<String, Value>, fields: Map<String, Value>) {
    merge(contact, fields);
    refresh_derived(contact);
}

/// `name` is first + " " + last (whichever are present; an explicitly sent `name` survives only
/// when neither is set), plus the lowercase copies the real API returns for searching.
fn refresh_derived(contact: &mut Map<String, Value>) {
    let first = str_field(contact, "firstName").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let last = str_field(contact, "lastName").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let mut set_or_remove = |key: &str, value: Option<String>| match value {
        Some(v) => {
            contact.insert(key.to_owned(), Value::String(v));
        }
        None => {
            contact.remove(key);
        }
    };
    set_or_remove("firstNameLowerCase", first.as_deref().map(str::to_lowercase));
    set_or_remove("lastNameLowerCase", last.as_deref().map(str::to_lowercase));
    if first.is_some() || last.is_some() {
        let name = [first, last].into_iter().flatten().collect::<Vec<_>>().join(" ");
        contact.insert("name".into(), Value::String(name));
    }
    let full_lower = str_field(contact, "name").map(str::to_lowercase);
    let email_lower = str_field(contact, "email").map(str::to_lowercase);
    match full_lower {
        Some(v) => contact.insert("fullNameLowerCase".into(), Value::String(v)),
        None => contact.remove("fullNameLowerCase"),
    };
    match email_lower {
        Some(v) => contact.insert("emailLowerCase".into(), Value::String(v)),
        None => contact.remove("emailLowerCase"),
    };
}

// ------------------------------------------------------------------------------------------------
// Request parsing
// ------------------------------------------------------------------------------------------------

/// Splits a raw query string into decoded pairs, decoding values like HighLevel does (`+` is a
/// space), so an un-encoded `+1312…` phone number does not match, exactly as in production.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (contacts_api::decode_query_value(key), contacts_api::decode_query_value(value))
        })
        .collect()
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// An empty body counts as `{}` (Express's JSON parser does the same), so a missing body reports
/// missing required properties rather than a parse error.
fn parse_body(raw: &[u8]) -> Result<Map<String, Value>, Reply> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(_) => Err(spec().unprocessable(vec!["request body must be a JSON object".to_owned()])),
        Err(_) => Err(Reply::error(400, MSG_NOT_JSON)),
    }
}

// ------------------------------------------------------------------------------------------------
// Validation rules derived from the spec
// ------------------------------------------------------------------------------------------------

/// The JSON types the spec's top-level property `type`s name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonType {
    String,
    Boolean,
    Number,
    Array,
    Object,
}

impl JsonType {
    fn from_spec(name: &str) -> Option<JsonType> {
        match name {
            "string" => Some(JsonType::String),
            "boolean" => Some(JsonType::Boolean),
            "number" | "integer" => Some(JsonType::Number),
            "array" => Some(JsonType::Array),
            "object" => Some(JsonType::Object),
            _ => None,
        }
    }

    fn of(value: &Value) -> Option<JsonType> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(JsonType::Boolean),
            Value::Number(_) => Some(JsonType::Number),
            Value::String(_) => Some(JsonType::String),
            Value::Array(_) => Some(JsonType::Array),
            Value::Object(_) => Some(JsonType::Object),
        }
    }

    /// class-validator's wording, which HighLevel's NestJS server returns verbatim.
    fn violation(self, property: &str) -> String {
        match self {
            JsonType::String => format!("{property} must be a string"),
            JsonType::Boolean => format!("{property} must be a boolean value"),
            JsonType::Number => format!("{property} must be a number conforming to the specified constraints"),
            JsonType::Array => format!("{property} must be an array"),
            JsonType::Object => format!("{property} must be an object"),
        }
    }
}

/// One top-level property of a request-body schema.
#[derive(Debug)]
struct PropertyRule {
    name: String,
    /// Accepted JSON types; empty means the spec gives no checkable type (e.g. `anyOf`).
    /// The first one is the declared type. The type of the spec's own `example` is accepted
    /// too: `dateOfBirth` is declared `object` but documented and exemplified as a string, and
    /// the real server takes the string.
    accepts: Vec<JsonType>,
}

/// The whitelist of one request-body schema.
#[derive(Debug)]
struct BodyRules {
    /// Empty when the spec declares no properties (`SearchBodyV2DTO`, `AddContactToCampaignDto`):
    /// that means "undocumented", not "accepts nothing", so such bodies are not checked.
    properties: Vec<PropertyRule>,
    required: Vec<String>,
}

impl BodyRules {
    /// Every problem with `body`, one message each, in HighLevel's wording.
    fn check(&self, body: &Map<String, Value>) -> Vec<String> {
        if self.properties.is_empty() {
            return Vec::new();
        }
        let mut problems: Vec<String> = body
            .keys()
            .filter(|key| !self.properties.iter().any(|p| &p.name == *key))
            .map(|key| format!("property {key} should not exist"))
            .collect();
        for property in &self.properties {
            let required = self.required.contains(&property.name);
            match body.get(&property.name) {
                None | Some(Value::Null) if required => problems.push(format!("{} should not be empty", property.name)),
                Some(Value::String(s)) if required && s.is_empty() => {
                    problems.push(format!("{} should not be empty", property.name))
                }
                // Optional properties accept null (class-validator's @IsOptional): it clears them.
                None | Some(Value::Null) => {}
                Some(value) => {
                    let fits = property.accepts.is_empty()
                        || JsonType::of(value).is_some_and(|t| property.accepts.contains(&t));
                    if !fits {
                        problems.push(property.accepts[0].violation(&property.name));
                    }
                }
            }
        }
        problems
    }
}

/// What the spec says one operation's request must look like.
#[derive(Debug)]
struct OperationRules {
    /// `None` when the operation declares no request body (its body, if any, is ignored).
    body: Option<BodyRules>,
    required_query: Vec<String>,
}

/// The parsed spec: validation rules per operation and the error bodies the common schemas fix.
struct Spec {
    rules: HashMap<&'static str, OperationRules>,
    unauthorized: Value,
    unprocessable_error: String,
}

/// Parsed once, on first use; the embedded files are constants, so this cannot fail at runtime
/// unless the embed itself is broken, which the tests catch.
fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(CONTACTS_SPEC, COMMON_SCHEMAS))
}

impl Spec {
    fn parse(contacts: &str, common: &str) -> Spec {
        let doc: Value = serde_json::from_str(contacts).expect("the embedded contacts.json is JSON");
        let common: Value = serde_json::from_str(common).expect("the embedded common-schemas.json is JSON");
        let mut rules = HashMap::new();
        for op in contacts_api::OPERATIONS {
            let entry = &doc["paths"][op.path][op.method.as_str().to_ascii_lowercase()];
            assert_eq!(
                entry["operationId"],
                op.id,
                "contacts_api::OPERATIONS disagrees with the embedded spec on {} {}",
                op.method.as_str(),
                op.path
            );
            let body = entry["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .map(|reference| body_rules(&doc, reference));
            let required_query = entry["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            rules.insert(op.id, OperationRules { body, required_query });
        }
        let dto = |name: &str| &common["components"]["schemas"][name]["properties"];
        let unauthorized = json!({
            "statusCode": 401,
            "message": dto("UnauthorizedDTO")["message"]["example"],
            "error": dto("UnauthorizedDTO")["error"]["example"],
        });
        let unprocessable_error =
            dto("UnprocessableDTO")["error"]["example"].as_str().unwrap_or("Unprocessable Entity").to_owned();
        Spec { rules, unauthorized, unprocessable_error }
    }

    fn rules(&self, op: &Operation) -> &OperationRules {
        &self.rules[op.id]
    }

    /// `UnauthorizedDTO`, with the texts of the common schema's examples.
    fn unauthorized(&self) -> Reply {
        Reply::new(401, self.unauthorized.clone())
    }

    /// `UnprocessableDTO`: unlike every other error, `message` is an array.
    fn unprocessable(&self, problems: Vec<String>) -> Reply {
        Reply::new(422, json!({ "statusCode": 422, "message": problems, "error": self.unprocessable_error }))
    }
}

/// Resolves a local `#/components/...` reference.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn body_rules(doc: &Value, reference: &str) -> BodyRules {
    let schema = resolve(doc, reference).unwrap_or_else(|| panic!("the embedded spec has no {reference}"));
    let properties = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| {
            // A `$ref`'d property takes the referenced schema's type (e.g. `DndSettingsSchema`).
            let declared = property["$ref"].as_str().and_then(|r| resolve(doc, r)).unwrap_or(property);
            let mut accepts: Vec<JsonType> =
                declared["type"].as_str().and_then(JsonType::from_spec).into_iter().collect();
            if let Some(example) = property.get("example").and_then(JsonType::of) {
                if !accepts.is_empty() && !accepts.contains(&example) {
                    accepts.push(example);
                }
            }
            PropertyRule { name: name.clone(), accepts }
        })
        .collect();
    let required =
        schema["required"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_owned)).collect();
    BodyRules { properties, required }
}

// ------------------------------------------------------------------------------------------------
// Time
// ------------------------------------------------------------------------------------------------

/// `2026-03-10T15:04:05.123Z`, the format of the real API's `dateAdded`/`dateUpdated`.
fn now_iso8601() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    const LOC: &str = "loc0000000000000001";

    /// A response as the tiny test client sees it.
    #[derive(Debug)]
    struct Resp {
        status: u16,
        body: Value,
    }

    /// A deliberately minimal blocking HTTP/1.1 client (`Connection: close`, read to EOF), so
    /// the tests exercise the real socket path without adding a client crate.
    fn raw(
        server: &MockServer,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        chunked: bool,
    ) -> Resp {
        let mut stream = TcpStream::connect(server.addr()).expect("connect to mock");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", server.addr());
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut bytes = Vec::new();
        match body {
            Some(body) if chunked => {
                request.push_str("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                bytes.extend_from_slice(request.as_bytes());
                for chunk in body.chunks(7) {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            }
            Some(body) => {
                request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()));
                bytes.extend_from_slice(request.as_bytes());
                bytes.extend_from_slice(body);
            }
            None => {
                request.push_str("\r\n");
                bytes.extend_from_slice(request.as_bytes());
            }
        }
        stream.write_all(&bytes).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("end of response head");
        let head = String::from_utf8_lossy(&response[..split]).to_string();
        let mut payload = response[split + 4..].to_vec();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            payload = dechunk(&payload);
        }
        let body =
            if payload.is_empty() { Value::Null } else { serde_json::from_slice(&payload).expect("JSON response") };
        Resp { status, body }
    }

    fn dechunk(mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
            data = &data[line_end + 2 + size + 2..];
        }
    }

    const GOOD: &[(&str, &str)] = &[("Authorization", "Bearer test-token"), ("Version", "2021-07-28")];

    /// An authorized, versioned API call.
    fn call(server: &MockServer, method: &str, target: &str, body: Option<Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        raw(server, method, target, GOOD, body.as_deref().map(str::as_bytes), false)
    }

    fn start() -> MockServer {
        MockServer::start(MockOptions::default()).unwrap()
    }

    fn create(server: &MockServer, fields: Value) -> Resp {
        let mut body = json!({ "locationId": LOC });
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        call(server, "POST", "/contacts/", Some(body))
    }

    #[test]
    fn missing_or_wrong_bearer_is_401() {
        let server = MockServer::start(MockOptions { token: Some("right".into()), ..MockOptions::default() }).unwrap();
        let unauthorized =
            json!({"statusCode":401,"message":"Invalid token: access token is invalid","error":"Unauthorized"});
        let version = ("Version", "2021-07-28");
        for headers in [
            vec![version],
            vec![("Authorization", "Basic right"), version],
            vec![("Authorization", "Bearer wrong"), version],
        ] {
            let r = raw(&server, "GET", "/contacts/x", &headers, None, false);
            assert_eq!((r.status, &r.body), (401, &unauthorized), "{headers:?}");
        }
        // Auth comes before the version check.
        assert_eq!(raw(&server, "GET", "/contacts/x", &[], None, false).status, 401);
        let r = raw(&server, "GET", "/contacts/x", &[("Authorization", "Bearer right"), version], None, false);
        assert_eq!(r.status, 400, "right token gets through to the operation: {:?}", r.body);
        let log = server.requests();
        assert_eq!(log.iter().map(|r| r.authorization_present).collect::<Vec<_>>(), [false, true, true, false, true]);
    }

    #[test]
    fn missing_or_wrong_version_is_400() {
        let server = start();
        let expected = json!({"statusCode":400,"message":"version header must be 2021-07-28"});
        for headers in
            [vec![("Authorization", "Bearer t")], vec![("Authorization", "Bearer t"), ("Version", "2021-04-15")]]
        {
            let r = raw(&server, "POST", "/contacts/", &headers, Some(b"{}"), false);
            assert_eq!((r.status, r.body), (400, expected.clone()));
        }
    }

    #[test]
    fn unknown_property_missing_required_and_wrong_type_are_422() {
        let server = start();
        let id = create(&server, json!({})).body["contact"]["id"].as_str().unwrap().to_owned();
        // UpdateContactDto has no gender/locationId: the whitelist comes from the spec.
        let r = call(&server, "PUT", &format!("/contacts/{id}"), Some(json!({ "gender": "male" })));
        assert_eq!(
            (r.status, r.body),
            (
                422,
                json!({"statusCode":422,"message":["property gender should not exist"],"error":"Unprocessable Entity"})
            )
        );
        // One message per problem.
        let r = call(&server, "POST", "/contacts/", Some(json!({ "dnd": "yes", "tags": "a", "foo": 1 })));
        assert_eq!(r.status, 422);
        let mut messages: Vec<String> = serde_json::from_value(r.body["message"].clone()).unwrap();
        messages.sort();
        assert_eq!(
            messages,
            [
                "dnd must be a boolean value",
                "locationId should not be empty",
                "property foo should not exist",
                "tags must be an array"
            ]
        );
        // Create does allow gender and companyName; dateOfBirth is a string in practice; null is fine for optional fields.
        let r = create(
            &server,
            json!({ "gender": "female", "companyName": "Acme", "dateOfBirth": "1990-09-25", "website": null }),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["contact"]["dateOfBirth"], "1990-09-25");
        assert!(r.body["contact"].get("website").is_none());
        // A missing body is `{}`: the required property is reported.
        let r = call(&server, "POST", &format!("/contacts/{id}/notes"), None);
        assert_eq!(r.body["message"], json!(["body should not be empty"]));
        // Nothing was stored by rejected requests.
        assert_eq!(server.contacts().len(), 2);
    }

    #[test]
    fn malformed_json_is_400_and_chunked_bodies_work() {
        let server = start();
        let r = raw(&server, "POST", "/contacts/", GOOD, Some(b"{\"locationId\": "), false);
        assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Unexpected token in JSON body"})));
        let body = json!({ "locationId": LOC, "firstName": "Ada", "lastName": "Lovelace" }).to_string();
        let r = raw(&server, "POST", "/contacts/", GOOD, Some(body.as_bytes()), true);
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["contact"]["name"], "Ada Lovelace");
    }

    #[test]
    fn duplicate_create_is_400_with_meta() {
        let server = start();
        let first = create(&server, json!({ "firstName": "Ada", "phone": "+13125550187", "email": "Ada@Example.com" }));
        assert_eq!(first.status, 201);
        let id = first.body["contact"]["id"].clone();
        let r = create(&server, json!({ "phone": " +13125550187 " }));
        assert_eq!(
            (r.status, r.body),
            (
                400,
                json!({"statusCode":400,"message":"This location does not allow duplicated contacts.",
                       "meta":{"contactId":id,"contactName":"Ada","matchingField":"phone"}})
            )
        );
        let r = create(&server, json!({ "email": "ada@EXAMPLE.com", "phone": "+19999999999" }));
        assert_eq!((r.status, &r.body["meta"]["matchingField"]), (400, &json!("email")));
        // Other locations are independent.
        let r = call(&server, "POST", "/contacts/", Some(json!({ "locationId": "other", "phone": "+13125550187" })));
        assert_eq!(r.status, 201);
        assert_eq!(server.contacts().len(), 2);

        let lenient = MockServer::start(MockOptions { allow_duplicates: true, ..MockOptions::default() }).unwrap();
        assert_eq!(create(&lenient, json!({ "phone": "+13125550187" })).status, 201);
        assert_eq!(create(&lenient, json!({ "phone": "+13125550187" })).status, 201);
    }

    #[test]
    fn duplicate_search_needs_percent_encoded_plus() {
        let server = start();
        let id = create(&server, json!({ "phone": "+13125550187", "email": "a+b@example.com" })).body["contact"]["id"]
            .clone();
        let r =
            call(&server, "GET", &format!("/contacts/search/duplicate?locationId={LOC}&number=%2B13125550187"), None);
        assert_eq!((r.status, &r.body["contact"]["id"]), (200, &id));
        let r = call(&server, "GET", &format!("/contacts/search/duplicate?locationId={LOC}&number=+13125550187"), None);
        assert_eq!((r.status, r.body), (200, json!({ "contact": null })));
        let r = call(
            &server,
            "GET",
            &format!("/contacts/search/duplicate?locationId={LOC}&email=A%2BB%40example.com"),
            None,
        );
        assert_eq!(r.body["contact"]["id"], id);
        let r = call(&server, "GET", "/contacts/search/duplicate?number=%2B13125550187", None);
        assert_eq!(
            (r.status, r.body),
            (
                422,
                json!({"statusCode":422,"message":["locationId should not be empty"],"error":"Unprocessable Entity"})
            )
        );
    }

    #[test]
    fn notes_create_list_get_update() {
        let server = start();
        let contact = create(&server, json!({})).body["contact"]["id"].as_str().unwrap().to_owned();
        let notes = format!("/contacts/{contact}/notes");
        let r = call(&server, "POST", &notes, Some(json!({ "body": "first", "userId": "u1" })));
        assert_eq!(r.status, 201);
        let note = &r.body["note"];
        assert_eq!(
            (&note["id"], &note["body"], &note["userId"], &note["contactId"]),
            (&json!("note0000000000000001"), &json!("first"), &json!("u1"), &json!(contact))
        );
        assert!(note.get("title").is_none());
        call(&server, "POST", &notes, Some(json!({ "body": "second", "pinned": true })));
        let r = call(&server, "GET", &notes, None);
        let bodies: Vec<&Value> = r.body["notes"].as_array().unwrap().iter().map(|n| &n["body"]).collect();
        assert_eq!((r.status, bodies), (200, vec![&json!("first"), &json!("second")]));

        let r = call(
            &server,
            "PUT",
            &format!("{notes}/note0000000000000001"),
            Some(json!({ "title": "T", "color": "#FFAA00" })),
        );
        assert_eq!(r.status, 200);
        assert_eq!((&r.body["note"]["body"], &r.body["note"]["title"]), (&json!("first"), &json!("T")));
        let r = call(&server, "GET", &format!("{notes}/note0000000000000001"), None);
        assert_eq!(r.body["note"]["color"], "#FFAA00");
        let r = call(&server, "GET", &format!("{notes}/nope"), None);
        assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Note with id nope not found"})));
        let r = call(&server, "POST", "/contacts/ghost/notes", Some(json!({ "body": "x" })));
        assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Contact with id ghost not found"})));
        assert_eq!(server.notes().len(), 2);
    }

    #[test]
    fn add_tags_is_a_union() {
        let server = start();
        let id = create(&server, json!({ "tags": ["a", "b"] })).body["contact"]["id"].as_str().unwrap().to_owned();
        let r = call(&server, "POST", &format!("/contacts/{id}/tags"), Some(json!({ "tags": ["b", "c", "c"] })));
        assert_eq!((r.status, r.body), (201, json!({ "tags": ["a", "b", "c"] })));
        assert_eq!(
            call(&server, "GET", &format!("/contacts/{id}"), None).body["contact"]["tags"],
            json!(["a", "b", "c"])
        );
        let r = call(&server, "POST", &format!("/contacts/{id}/tags"), Some(json!({})));
        assert_eq!(r.body["message"], json!(["tags should not be empty"]));
    }

    #[test]
    fn upsert_matches_email_then_phone_and_overwrites_tags() {
        let server = start();
        let id = create(&server, json!({ "email": "ada@example.com", "phone": "+1555", "tags": ["a", "b"] })).body
            ["contact"]["id"]
            .clone();
        let r = call(
            &server,
            "POST",
            "/contacts/upsert",
            Some(json!({ "locationId": LOC, "email": "ADA@example.com", "tags": ["c"], "firstName": "Ada" })),
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            (&r.body["new"], &r.body["contact"]["id"], &r.body["contact"]["tags"]),
            (&json!(false), &id, &json!(["c"]))
        );
        assert_eq!((&r.body["contact"]["phone"], &r.body["contact"]["name"]), (&json!("+1555"), &json!("Ada")));
        assert!(r.body["traceId"].is_string());
        let r = call(
            &server,
            "POST",
            "/contacts/upsert",
            Some(json!({ "locationId": LOC, "phone": "+1555", "lastName": "L" })),
        );
        assert_eq!((&r.body["new"], &r.body["contact"]["name"]), (&json!(false), &json!("Ada L")));
        let r =
            call(&server, "POST", "/contacts/upsert", Some(json!({ "locationId": LOC, "email": "new@example.com" })));
        assert_eq!(
            (r.status, &r.body["new"], &r.body["contact"]["id"]),
            (200, &json!(true), &json!("contact0000000000002"))
        );
        assert_eq!(server.contacts().len(), 2);
    }

    #[test]
    fn get_and_update_contact() {
        let server = start();
        let id = create(&server, json!({ "firstName": "Ada", "email": "Ada@X.com", "tags": ["a"] })).body["contact"]
            ["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = call(&server, "PUT", &format!("/contacts/{id}"), Some(json!({ "lastName": "Byron", "tags": ["z"] })));
        assert_eq!((r.status, &r.body["succeded"]), (200, &json!(true)));
        let contact = &r.body["contact"];
        assert_eq!(
            (&contact["name"], &contact["lastNameLowerCase"], &contact["tags"]),
            (&json!("Ada Byron"), &json!("byron"), &json!(["z"]))
        );
        let got = call(&server, "GET", &format!("/contacts/{id}"), None);
        assert_eq!((got.status, &got.body["contact"]), (200, contact));
        assert_eq!((&contact["emailLowerCase"], &contact["locationId"]), (&json!("ada@x.com"), &json!(LOC)));
        for key in ["dateAdded", "dateUpdated"] {
            let date = contact[key].as_str().unwrap();
            assert_eq!((date.len(), &date[10..11], &date[23..]), (24, "T", "Z"), "{date}");
        }
        let r = call(&server, "GET", "/contacts/nobody", None);
        assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Contact with id nobody not found"})));
        let r = call(&server, "PUT", "/contacts/nobody", Some(json!({})));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn ungranted_scope_is_403() {
        let server =
            MockServer::start(MockOptions { scopes: vec![Scope::ContactsReadonly], ..MockOptions::default() }).unwrap();
        let r = create(&server, json!({}));
        assert_eq!(
            (r.status, r.body),
            (
                403,
                json!({"statusCode":403,"message":"The token is not authorized for this scope.","error":"Forbidden"})
            )
        );
        assert_eq!(call(&server, "GET", "/contacts/x", None).status, 400, "readonly operations still work");
    }

    #[test]
    fn unknown_paths_and_methods_are_404_and_unimplemented_is_501() {
        let server = start();
        let r = call(&server, "GET", "/contacts/a/b/c/d/e?x=1", None);
        assert_eq!((r.status, r.body), (404, json!({"statusCode":404,"message":"Cannot GET /contacts/a/b/c/d/e"})));
        assert_eq!(call(&server, "PATCH", "/contacts/x", None).status, 404);
        assert_eq!(call(&server, "GET", "/nothing", None).status, 404);
        let r = call(&server, "DELETE", "/contacts/x", None);
        assert_eq!(
            (r.status, r.body),
            (501, json!({"statusCode":501,"message":"mock: delete-contact is not implemented yet"}))
        );
    }

    #[test]
    fn ids_are_deterministic() {
        let server = start();
        let ids: Vec<Value> = (0..3)
            .map(|i| create(&server, json!({ "email": format!("{i}@x.com") })).body["contact"]["id"].clone())
            .collect();
        assert_eq!(ids, [json!("contact0000000000001"), json!("contact0000000000002"), json!("contact0000000000003")]);
        assert!(ids.iter().all(|id| id.as_str().unwrap().len() == 20));
        // A seeded id in the way is skipped; a seeded contact without id takes the next one.
        server.seed_contact(json!({ "id": "contact0000000000004", "locationId": LOC }));
        assert_eq!(server.seed_contact(json!({ "locationId": LOC, "firstName": "Seed" })), "contact0000000000005");
        let r = call(&server, "GET", "/contacts/contact0000000000005", None);
        assert_eq!((&r.body["contact"]["name"], &r.body["contact"]["tags"]), (&json!("Seed"), &json!([])));
        let r = call(&server, "POST", "/contacts/contact0000000000001/notes", Some(json!({ "body": "n" })));
        assert_eq!(r.body["note"]["id"].as_str().unwrap().len(), 20);
    }

    #[test]
    fn request_log_records_everything_but_debug_routes() {
        let server = start();
        server.seed_contact(json!({ "locationId": LOC }));
        raw(&server, "GET", "/contacts/contact0000000000001", &[("Version", "2021-07-28")], None, false);
        call(&server, "GET", "/contacts/search/duplicate?locationId=L&number=%2B1555", None);
        call(&server, "POST", "/contacts", Some(json!({ "locationId": LOC })));
        call(&server, "GET", "/contacts/x/y/z/w/v", None);
        assert_eq!(
            raw(&server, "GET", "/__mock/state", &[], None, false).body["contacts"].as_array().unwrap().len(),
            2
        );
        let logged = raw(&server, "GET", "/__mock/requests", &[], None, false).body;
        let rec = |method: &str, pq: &str, op: Option<&'static str>, status, auth| RecordedRequest {
            method: method.into(),
            path_and_query: pq.into(),
            operation_id: op,
            status,
            authorization_present: auth,
        };
        let expected = vec![
            rec("GET", "/contacts/contact0000000000001", Some("get-contact"), 401, false),
            rec(
                "GET",
                "/contacts/search/duplicate?locationId=L&number=%2B1555",
                Some("get-duplicate-contact"),
                200,
                true,
            ),
            rec("POST", "/contacts", Some("create-contact"), 201, true),
            rec("GET", "/contacts/x/y/z/w/v", None, 404, true),
        ];
        assert_eq!(server.requests(), expected);
        assert_eq!(logged, serde_json::to_value(&expected).unwrap());
        assert!(!serde_json::to_string(&server.requests()).unwrap().contains("test-token"));
    }

    #[test]
    fn dropping_the_server_stops_it() {
        let server = start();
        let addr = server.addr();
        assert_eq!(server.base_url(), format!("http://127.0.0.1:{}", addr.port()));
        let _idle = TcpStream::connect(addr).unwrap(); // an idle connection must not block shutdown forever
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn rules_come_from_the_spec() {
        let names = |id: &str| -> Vec<String> {
            let body = spec().rules(contacts_api::op(id)).body.as_ref().unwrap();
            body.properties.iter().map(|p| p.name.clone()).collect()
        };
        assert!(names("create-contact").contains(&"gender".to_owned()));
        assert!(!names("update-contact").iter().any(|n| n == "locationId" || n == "companyName" || n == "gender"));
        let create = spec().rules(contacts_api::op("create-contact")).body.as_ref().unwrap();
        assert_eq!(create.required, ["locationId"]);
        let dnd = create.properties.iter().find(|p| p.name == "dndSettings").unwrap();
        assert_eq!(dnd.accepts, [JsonType::Object]);
        assert!(spec()
            .rules(contacts_api::op("search-contacts-advanced"))
            .body
            .as_ref()
            .unwrap()
            .properties
            .is_empty());
        assert!(spec().rules(contacts_api::op("get-contact")).body.is_none());
        assert_eq!(spec().rules(contacts_api::op("get-duplicate-contact")).required_query, ["locationId"]);
        assert_eq!(spec().unauthorized().body["message"], "Invalid token: access token is invalid");
    }
}
