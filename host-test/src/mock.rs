//! In-memory mock of HighLevel's Contacts API v2 (`Version: 2021-07-28`).
//!
//! The mock exists so the plugin can be exercised end to end without a HighLevel account, and so
//! tests can assert the exact list of requests the plugin made. It aims to be *faithful* rather
//! than convenient: a request the real server would reject must be rejected here too, or the
//! tests would pass against the mock and fail in production.
//!
//! One table keeps it honest instead of a second hand-written description of the API:
//! [`contacts_api::OPERATIONS`], generated from the official spec, gives routing (through
//! [`contacts_api::match_path`]), scopes, success statuses and request validation (required query
//! parameters, the body whitelist, required body properties and their JSON types), so a property
//! the spec does not whitelist gets the same 422 the real NestJS server answers. The only spec
//! text the mock reads itself is the common error schemas, for the 401/422 texts.
//!
//! All 32 operations are implemented, with the response shapes the spec declares. Behaviour the
//! spec does not describe (error texts for 400/403/404, the duplicate-contact 400, the search body,
//! the deprecated list's paging) follows what the real server is reported to do; see
//! `shared/reference/notes/ghl-contacts-api.md`.
//!
//! Three opt-in behaviours make it a hostile server for resilience tests, each in its own section
//! below: deterministic fault injection ([`Faults`]), HighLevel's burst rate limit
//! ([`RateLimit`]), and the OAuth token endpoint with expiring, rotating tokens ([`OAuthOptions`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::serve::{IncomingStream, Listener};
use axum::{Json, Router};
use contacts_api::{Body, Method, Operation, Scope, ValueKind, API_VERSION_HEADER};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, watch};

/// The error DTOs the Contacts spec references as `../common/common-schemas.json`.
const COMMON_SCHEMAS: &str = contacts_api::COMMON_SCHEMAS_JSON;

/// Largest request body the mock reads; far above anything the Contacts API accepts.
const BODY_LIMIT: usize = 16 << 20;
/// How long a dropped [`MockServer`] waits for in-flight connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long a GET held by the read gate ([`MockState::hold_reads_until`]) waits for the rest of
/// its batch before it proceeds alone: a client that never sends the batch is slow, not stuck.
const GATE_FALLBACK: Duration = Duration::from_secs(3);
/// Paths under this prefix are the mock's own debug routes: never gated, delayed or counted.
const DEBUG_PREFIX: &str = "/__mock/";
/// HighLevel's OAuth token endpoint, on the same host as the API; not a Contacts API request.
const OAUTH_TOKEN_PATH: &str = "/oauth/token";

const MSG_VERSION: &str = "version header must be 2021-07-28";
const MSG_FORBIDDEN: &str = "The token is not authorized for this scope.";
const MSG_NOT_JSON: &str = "Unexpected token in JSON body";
const MSG_DUPLICATE: &str = "This location does not allow duplicated contacts.";
const MSG_NUMBER: &str = "must be a number conforming to the specified constraints";

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

/// How a mock behaves; the knobs mirror settings of a real HighLevel location and token.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// The only bearer token accepted; `None` accepts any bearer token. With [`MockOptions::oauth`]
    /// set, the access tokens issued by `/oauth/token` are accepted too, and `None` accepts only
    /// those.
    pub token: Option<String>,
    /// The location's "Allow Duplicate Contact" setting: when false, creating a contact whose
    /// email or phone is already used in the location fails with 400.
    pub allow_duplicates: bool,
    /// Scopes granted to the token; operations needing another scope answer 403.
    pub scopes: Vec<Scope>,
    /// Artificial latency added to every API request (not the `/__mock/*` routes) before it is
    /// answered, to make benchmarks see something like a network round trip. Zero by default;
    /// [`MockState::set_latency`] changes it at runtime.
    pub latency: Duration,
    /// Faults injected into API requests from the start; `None` (the default) injects none.
    /// [`MockState::set_faults`] changes them at runtime.
    pub faults: Option<Faults>,
    /// A burst rate limit like HighLevel's; `None` (the default) never limits.
    /// [`MockState::set_rate_limit`] changes it at runtime.
    pub rate_limit: Option<RateLimit>,
    /// Serves `POST /oauth/token` and requires the access tokens it issues; `None` (the default)
    /// answers 404 there.
    pub oauth: Option<OAuthOptions>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            token: None,
            allow_duplicates: false,
            scopes: vec![Scope::ContactsReadonly, Scope::ContactsWrite],
            latency: Duration::ZERO,
            faults: None,
            rate_limit: None,
            oauth: None,
        }
    }
}

/// One request as the mock saw it. The token itself is never stored, only whether one was sent.
///
/// Every request is logged, including the ones that got an injected fault, were rate limited, or
/// went to `/oauth/token`; only the `/__mock/*` debug routes are not.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query exactly as received (not decoded), so tests can check the encoding.
    pub path_and_query: String,
    /// The operation the path routes to, even when the request was rejected before dispatch
    /// (401, bad version, rate limit, injected fault): it tells a test what the caller *tried* to
    /// do. `None` for `/oauth/token` and unknown paths.
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
    /// Only for `/oauth/token`: the form body with the values of `client_secret`,
    /// `refresh_token` and `code` replaced by `REDACTED`. Omitted from JSON when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl RecordedRequest {
    fn new(
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        operation_id: Option<&'static str>,
        status: u16,
    ) -> RecordedRequest {
        RecordedRequest {
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            operation_id,
            status,
            authorization_present: headers.contains_key(header::AUTHORIZATION),
            fault: None,
            body: None,
        }
    }
}

/// The mock's shared state: options plus the Mutex-protected data. Handlers never hold the lock
/// across an `.await`; every operation is a short synchronous critical section.
///
/// Besides the data it carries concurrency instrumentation, so a test can prove that a client
/// issued requests concurrently without asserting anything about timing: the number of API
/// requests in flight and its maximum ([`MockState::in_flight_max`]), and a read gate
/// ([`MockState::hold_reads_until`]) that holds GETs until a whole batch is waiting at once.
pub struct MockState {
    options: MockOptions,
    data: Mutex<Data>,
    /// API requests between entering the handler and producing their response, including the
    /// time spent held by the read gate or sleeping the artificial latency.
    in_flight: AtomicUsize,
    /// The largest `in_flight` seen since creation or the last [`MockState::reset_in_flight_max`].
    in_flight_max: AtomicUsize,
    /// The artificial latency, in microseconds.
    latency_micros: AtomicU64,
    gate: Mutex<Gate>,
    /// Carries [`Gate::generation`]: a held GET waits for it to change.
    gate_released: watch::Sender<u64>,
    /// The faults to inject and their counters (section "Fault injection").
    faults: Mutex<FaultPlan>,
    /// The rate limit and its window (section "Rate limit").
    limiter: Mutex<Limiter>,
    /// Refresh and access tokens (section "OAuth").
    oauth: Mutex<OAuthTokens>,
}

/// The read gate's state. Every GET that arrives while `batch > 0` counts itself in `waiting`;
/// the one that brings `waiting` to `batch` releases the whole batch by bumping `generation`.
struct Gate {
    /// How many GETs must be waiting at once to be released; 0 disables the gate.
    batch: usize,
    /// GETs currently held.
    waiting: usize,
    /// Batches released so far (also by [`MockState::hold_reads_until`] lowering `batch`).
    generation: u64,
    /// How long a held GET waits before it proceeds alone ([`GATE_FALLBACK`]; shorter in tests).
    fallback: Duration,
}

/// Per contact phone: how many contacts, their notes' bodies, their tasks' titles.
pub type Holdings = BTreeMap<String, (usize, Vec<String>, Vec<String>)>;

/// A running mock on 127.0.0.1 (random port unless given). Runs on its own thread with its own
/// tokio runtime, so callers can be plain synchronous code. Dropping it shuts the server down.
pub struct MockServer {
    server: LoopbackServer,
    state: Arc<MockState>,
}

/// An axum app served on a loopback port from a thread of its own, with its own tokio runtime,
/// so that callers can be plain synchronous code; dropping it shuts the server down. The mocks
/// (this one, and Dialpad's call listing) run on it.
pub struct LoopbackServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Binds `addr` (port 0: any free port) before returning, so the server accepts connections
    /// as soon as the caller has it in hand; `name` names the thread and the errors.
    pub fn start(name: &str, addr: SocketAddr, app: Router) -> anyhow::Result<LoopbackServer> {
        let std_listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding the {name} to {addr}"))?;
        std_listener.set_nonblocking(true).with_context(|| format!("making the {name}'s listener non-blocking"))?;
        let addr = std_listener.local_addr().with_context(|| format!("reading the {name}'s local address"))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().with_context(|| format!("building the {name}'s tokio runtime"))?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).with_context(|| format!("registering the {name}'s listener with tokio"))?
        };
        let (shutdown, stop) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("{}-{}", name.replace(' ', "-"), addr.port()))
            .spawn(move || serve(runtime, listener, app, stop))
            .with_context(|| format!("spawning the {name}'s server thread"))?;
        Ok(LoopbackServer { addr, shutdown: Some(shutdown), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Blocks the calling thread until the server stops (for the CLI). The server only stops
    /// on its own if its accept loop fails, so in practice this runs until the process ends.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl MockServer {
    /// Starts a mock on `127.0.0.1:0` (a free port chosen by the OS).
    pub fn start(options: MockOptions) -> anyhow::Result<MockServer> {
        MockServer::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options)
    }

    /// Starts a mock on `addr`. The socket is bound before this returns, so the mock accepts
    /// connections as soon as the caller has the [`MockServer`] in hand.
    pub fn start_on(addr: SocketAddr, options: MockOptions) -> anyhow::Result<MockServer> {
        // Parse the embedded error schemas up front so a broken embed fails here, not in a request.
        error_texts();
        let state = Arc::new(MockState::new(options));
        let server = LoopbackServer::start("mock Contacts API", addr, router(Arc::clone(&state)))?;
        Ok(MockServer { server, state })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash, ready to prefix operation paths.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
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

    /// All tasks of all contacts, in creation order, each with its `contactId`.
    pub fn tasks(&self) -> Vec<Value> {
        self.state.tasks()
    }

    /// All appointments, in seeding order, each with its `contactId`.
    pub fn appointments(&self) -> Vec<Value> {
        self.state.appointments()
    }

    /// Seeds a contact directly (no request logged); returns its id.
/// What the location holds, without the ids the mock made up: contacts by phone, each with
    /// how many there are, their notes' bodies and their tasks' titles (sorted). Two runs that
    /// synced the same events hold equal values.
    pub fn holdings(&self) -> Holdings {
        let (notes, tasks) = (self.notes(), self.tasks());
        let mut held = Holdings::new();
        for contact in self.contacts() {
            let id = contact["id"].as_str().unwrap_or_default();
            let entry = held.entry(contact["phone"].as_str().unwrap_or("-").to_string()).or_default();
            entry.0 += 1;
            entry.1.extend(notes.iter().filter(|n| n["contactId"] == id).filter_map(|n| n["body"].as_str().map(str::to_string)));
            entry.2.extend(tasks.iter().filter(|t| t["contactId"] == id).filter_map(|t| t["title"].as_str().map(str::to_string)));
            entry.1.sort();
            entry.2.sort();
        }
        held
    }

        pub fn seed_contact(&self, contact: Value) -> String {
        self.state.seed_contact(contact)
    }

    /// Seeds an appointment of `contact_id` (the API cannot create one); returns its id.
    pub fn seed_appointment(&self, contact_id: &str, event: Value) -> String {
        self.state.seed_appointment(contact_id, event)
    }

    /// The most API requests that were in flight at once; see [`MockState::in_flight_max`].
    pub fn in_flight_max(&self) -> usize {
        self.state.in_flight_max()
    }

    /// Starts a new measurement of [`MockServer::in_flight_max`].
    pub fn reset_in_flight_max(&self) {
        self.state.reset_in_flight_max()
    }

    /// Holds GETs until `n` are waiting at once; see [`MockState::hold_reads_until`].
    pub fn hold_reads_until(&self, n: usize) {
        self.state.hold_reads_until(n)
    }

    /// Changes the artificial latency of every later API request; see [`MockOptions::latency`].
    pub fn set_latency(&self, latency: Duration) {
        self.state.set_latency(latency)
    }

    /// Replaces the injected faults; see [`MockState::set_faults`].
    pub fn set_faults(&self, faults: Option<Faults>) {
        self.state.set_faults(faults)
    }

    /// Faults injected so far, by kind; see [`MockState::fault_counts`].
    pub fn fault_counts(&self) -> BTreeMap<String, usize> {
        self.state.fault_counts()
    }

    /// Replaces the rate limit; see [`MockState::set_rate_limit`].
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.state.set_rate_limit(limit)
    }

    /// Requests rejected by the rate limit so far; see [`MockState::rate_limited_count`].
    pub fn rate_limited_count(&self) -> usize {
        self.state.rate_limited_count()
    }

    /// Makes every access token issued so far expired; see [`MockState::expire_access_tokens`].
    pub fn expire_access_tokens(&self) {
        self.state.expire_access_tokens()
    }

    /// Successful token refreshes so far; see [`MockState::oauth_refresh_count`].
    pub fn oauth_refresh_count(&self) -> usize {
        self.state.oauth_refresh_count()
    }

    /// The refresh token `/oauth/token` accepts next; see [`MockState::current_refresh_token`].
    pub fn current_refresh_token(&self) -> Option<String> {
        self.state.current_refresh_token()
    }

    /// Blocks the calling thread until the server stops (for the `mock` CLI command). The server
    /// only stops on its own if its accept loop fails, so in practice this runs until the
    /// process is terminated.
    pub fn wait(self) {
        self.server.wait();
    }
}

/// The server thread's body: serve until told to stop, drain for a moment, then drop the runtime,
/// which cancels any connection that outlived the grace period. This is what guarantees the
/// thread never outlives its [`MockServer`].
///
/// Connections are accepted through [`CuttableListener`], so a handler can close its connection
/// without a response (the drop faults).
fn serve(
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    app: Router,
    stop: oneshot::Receiver<()>,
) {
    runtime.block_on(async move {
        let (drain, drained) = oneshot::channel::<()>();
        let mut server = tokio::spawn(
            axum::serve(CuttableListener(listener), app.into_make_service_with_connect_info::<ConnectionCut>())
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
/// auth and are not logged, and the OAuth token endpoint.
///
/// The drop faults need the connection-cutting listener [`MockServer`] serves with; served by
/// other means, a request that draws a drop fault is answered 502 instead (and logged so).
pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/__mock/state", get(debug_state))
        .route("/__mock/requests", get(debug_requests))
        .route(OAUTH_TOKEN_PATH, any(oauth_token))
        .fallback(api)
        .with_state(state)
}

async fn debug_state(State(state): State<Arc<MockState>>) -> Json<Value> {
    Json(state.snapshot())
}

async fn debug_requests(State(state): State<Arc<MockState>>) -> Json<Vec<RecordedRequest>> {
    Json(state.requests())
}

/// Reads the whole body (chunked or not) and hands the request to [`MockState::handle`].
///
/// Before that, an API request (anything not under `/__mock/`) draws its fault
/// ([`MockState::set_faults`]), counts itself in flight, waits at the read gate if it is a GET,
/// and sleeps the artificial latency; it stays counted until its response is built, even if the
/// client goes away while it waits. Then the fault, if any, takes effect, and the rate limit
/// ([`MockState::set_rate_limit`]) is checked just before the request is applied.
async fn api(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let cut = request.extensions().get::<ConnectInfo<ConnectionCut>>().map(|info| info.0.clone());
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str();
    let path_and_query = path_and_query(&parts.uri);
    let instrumented = !parts.uri.path().starts_with(DEBUG_PREFIX);
    let _in_flight = instrumented.then(|| InFlight::enter(&state));
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        let reply = Reply::error(413, "request entity too large");
        state.log(RecordedRequest::new(method, &path_and_query, &parts.headers, None, reply.status));
        return reply.into_response();
    };
    if !instrumented {
        let (status, body) = state.handle(method, &path_and_query, &parts.headers, &bytes);
        return Reply::new(status, body).into_response();
    }

    let fault = state.next_fault();
    if parts.method == axum::http::Method::GET {
        state.pass_read_gate().await;
    }
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let log = |status: u16| {
        let operation_id = operation_of(method, &path_and_query).map(|m| m.operation.id);
        let mut entry = RecordedRequest::new(method, &path_and_query, &parts.headers, operation_id, status);
        entry.fault = fault.as_ref().map(FaultKind::name);
        state.log(entry);
    };
    match &fault {
        Some(FaultKind::ServerError(status)) => {
            let reply = server_error(*status);
            log(reply.status);
            return reply.into_response();
        }
        Some(FaultKind::RateLimited { retry_after_ms }) => {
            let limit = state.rate_limit().unwrap_or(RateLimit::HIGHLEVEL_BURST);
            let retry_after = Duration::from_millis(*retry_after_ms);
            let reply = too_many_requests();
            log(reply.status);
            return with_headers(reply.into_response(), rate_limit_headers(limit, 0, Some(retry_after)));
        }
        Some(FaultKind::DropBeforeHandling) => {
            let response = cut_connection(cut.as_ref());
            log(response.as_ref().map_or(0, |r| r.status().as_u16()));
            return response.unwrap_or_default();
        }
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(*delay).await,
        Some(FaultKind::DropAfterHandling) | None => {}
    }

    // Past this point the request is handled normally: rate limit, then the API itself.
    let (admission, (operation_id, reply)) = match state.admit() {
        Admission::Rejected { limit, retry_after } => {
            let headers = rate_limit_headers(limit, 0, Some(retry_after));
            (headers, (operation_of(method, &path_and_query).map(|m| m.operation.id), too_many_requests()))
        }
        Admission::Admitted { limit, remaining } => {
            (rate_limit_headers(limit, remaining, None), state.answer(method, &path_and_query, &parts.headers, &bytes))
        }
        Admission::Unlimited => (Vec::new(), state.answer(method, &path_and_query, &parts.headers, &bytes)),
    };
    let mut entry = RecordedRequest::new(method, &path_and_query, &parts.headers, operation_id, reply.status);
    entry.fault = fault.as_ref().map(FaultKind::name);
    if matches!(fault, Some(FaultKind::DropAfterHandling)) {
        let response = cut_connection(cut.as_ref());
        entry.status = response.as_ref().map_or(0, |r| r.status().as_u16());
        state.log(entry);
        return response.unwrap_or_default();
    }
    state.log(entry);
    with_headers(reply.into_response(), admission)
}

/// Path and query exactly as on the request line.
fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// The operation `method` and `path_and_query` route to, if any.
fn operation_of(method: &str, path_and_query: &str) -> Option<contacts_api::Matched> {
    let path = path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path);
    Method::parse(method).and_then(|m| contacts_api::match_path(m, path))
}

fn with_headers(mut response: Response, headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    response.headers_mut().extend(headers);
    response
}

/// Counts one API request in flight for as long as it lives.
struct InFlight<'a>(&'a MockState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a MockState) -> InFlight<'a> {
        let now = state.in_flight.fetch_add(1, AtomicOrdering::SeqCst) + 1;
        state.in_flight_max.fetch_max(now, AtomicOrdering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
    }
}

/// A GET held by the read gate. Dropping it (released, timed out, or cancelled because the
/// client went away) takes it out of the waiting count unless its batch was released, so a
/// straggler never counts towards a later batch.
struct GateTicket<'a> {
    state: &'a MockState,
    generation: u64,
}

impl Drop for GateTicket<'_> {
    fn drop(&mut self) {
        let mut gate = self.state.gate_lock();
        if gate.generation == self.generation {
            gate.waiting = gate.waiting.saturating_sub(1);
        }
    }
}

impl Gate {
    /// Lets every held GET proceed and re-arms the gate for the next batch.
    fn release(&mut self, released: &watch::Sender<u64>) {
        self.waiting = 0;
        self.generation += 1;
        released.send_replace(self.generation);
    }
}

impl MockState {
    pub fn new(options: MockOptions) -> MockState {
        let latency_micros = AtomicU64::new(micros(options.latency));
        MockState {
            data: Mutex::new(Data::default()),
            in_flight: AtomicUsize::new(0),
            in_flight_max: AtomicUsize::new(0),
            latency_micros,
            gate: Mutex::new(Gate { batch: 0, waiting: 0, generation: 0, fallback: GATE_FALLBACK }),
            gate_released: watch::Sender::new(0),
            faults: Mutex::new(FaultPlan::new(options.faults.clone())),
            limiter: Mutex::new(Limiter::new(options.rate_limit)),
            oauth: Mutex::new(OAuthTokens::new(options.oauth.as_ref())),
            options,
        }
    }

    /// The options the mock was started with. `latency`, `faults` and `rate_limit` are the
    /// initial values only; see [`MockState::latency`], [`MockState::faults`] and
    /// [`MockState::rate_limit`] for the current ones.
    pub fn options(&self) -> &MockOptions {
        &self.options
    }

    /// The most API requests that were in flight at once (entered the handler, response not yet
    /// built) since the mock started or [`MockState::reset_in_flight_max`] was last called. A
    /// request held by the read gate or sleeping the artificial latency counts as in flight; the
    /// `/__mock/*` debug routes never count.
    ///
    /// With [`MockState::hold_reads_until`]`(n)`, a value of `n` proves that the client had `n`
    /// GETs outstanding at once, whatever the timing.
    pub fn in_flight_max(&self) -> usize {
        self.in_flight_max.load(AtomicOrdering::SeqCst)
    }

    /// Starts a new measurement: the maximum becomes the number of requests in flight right now
    /// (0 when the mock is idle).
    pub fn reset_in_flight_max(&self) {
        self.in_flight_max.store(self.in_flight.load(AtomicOrdering::SeqCst), AtomicOrdering::SeqCst);
    }

    /// Arms the read gate: from now on every API GET waits until `n` GETs are waiting at once,
    /// then the whole batch proceeds together and the gate re-arms for the next `n`. A GET whose
    /// batch is not complete within 3 seconds proceeds alone, so a client that sends fewer than
    /// `n` GETs at once is slow but never stuck (and its [`MockState::in_flight_max`] stays
    /// below `n`). `0` disables the gate; lowering `n` releases the waiting GETs if there are
    /// now enough of them (all of them for `0`). Other methods and the `/__mock/*` routes are
    /// never held.
    pub fn hold_reads_until(&self, n: usize) {
        let mut gate = self.gate_lock();
        gate.batch = n;
        if gate.waiting > 0 && (n == 0 || gate.waiting >= n) {
            gate.release(&self.gate_released);
        }
    }

    /// The artificial latency currently added to every API request.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(AtomicOrdering::Relaxed))
    }

    /// Changes the artificial latency of every API request that has not started sleeping yet
    /// (microsecond resolution).
    pub fn set_latency(&self, latency: Duration) {
        self.latency_micros.store(micros(latency), AtomicOrdering::Relaxed);
    }

    /// The read gate, as [`MockState::hold_reads_until`] describes it.
    async fn pass_read_gate(&self) {
        let (generation, fallback) = {
            let mut gate = self.gate_lock();
            if gate.batch == 0 {
                return;
            }
            gate.waiting += 1;
            if gate.waiting >= gate.batch {
                gate.release(&self.gate_released);
                return;
            }
            (gate.generation, gate.fallback)
        };
        let _ticket = GateTicket { state: self, generation };
        // `wait_for` looks at the current value first, so a release between unlocking and
        // subscribing is not missed. The sender lives in `self`, so the channel never closes.
        let mut released = self.gate_released.subscribe();
        let _ = tokio::time::timeout(fallback, released.wait_for(|g| *g != generation)).await;
    }

    fn gate_lock(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// All tasks, in creation order, each with its `contactId` (`TaskSchema` shape).
    pub fn tasks(&self) -> Vec<Value> {
        self.lock().tasks.iter().cloned().map(Value::Object).collect()
    }

    /// All appointments (seeded with [`MockState::seed_appointment`]), in seeding order.
    pub fn appointments(&self) -> Vec<Value> {
        self.lock().appointments.iter().cloned().map(Value::Object).collect()
    }

    /// Everything the mock holds, as `GET /__mock/state` shows it: `contacts`, `notes`, `tasks`,
    /// `appointments`, plus `followers`, `campaigns` and `workflows`, each an object keyed by
    /// contact id (contacts without any are left out), and the counters `inFlightMax`
    /// ([`MockState::in_flight_max`]), `faults` ([`MockState::fault_counts`]), `rateLimited`
    /// ([`MockState::rate_limited_count`]) and `oauthRefreshes`
    /// ([`MockState::oauth_refresh_count`]).
    pub fn snapshot(&self) -> Value {
        // The counters have their own locks; take them before (never while) holding the data.
        let (faults, rate_limited, refreshes) =
            (self.fault_counts(), self.rate_limited_count(), self.oauth_refresh_count());
        let data = self.lock();
        let objects = |list: &[Map<String, Value>]| Value::Array(list.iter().cloned().map(Value::Object).collect());
        let mut followers = Map::new();
        for contact in &data.contacts {
            if let (Some(id), Some(Value::Array(list))) = (str_field(contact, "id"), contact.get("followers")) {
                if !list.is_empty() {
                    followers.insert(id.to_owned(), Value::Array(list.clone()));
                }
            }
        }
        let mut campaigns = Map::new();
        for (contact_id, campaign_id) in &data.campaigns {
            push_to(&mut campaigns, contact_id, Value::String(campaign_id.clone()));
        }
        let mut workflows = Map::new();
        for (contact_id, enrolment) in &data.workflows {
            push_to(&mut workflows, contact_id, Value::Object(enrolment.clone()));
        }
        json!({
            "contacts": objects(&data.contacts),
            "notes": objects(&data.notes),
            "tasks": objects(&data.tasks),
            "appointments": objects(&data.appointments),
            "followers": followers,
            "campaigns": campaigns,
            "workflows": workflows,
            "inFlightMax": self.in_flight_max(),
            "faults": faults,
            "rateLimited": rate_limited,
            "oauthRefreshes": refreshes,
        })
    }

    /// Stores a contact as if it had been created earlier; returns its id. An `id` in `contact`
    /// is kept, otherwise the next deterministic id is used. Missing `dateAdded`/`dateUpdated`
    /// are set to now, `tags` and `customFields` default to `[]`, and the derived fields (`name`,
    /// `*LowerCase`) are filled in like for a created contact. `customFields` may be given in
    /// either the write shape (`{id|key, field_value}`) or the read shape (`{id, value}`).
    /// Nothing is logged.
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
        if let Some(Value::Array(entries)) = fields.get_mut("customFields") {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                if !entry.contains_key("field_value") {
                    if let Some(value) = entry.remove("value") {
                        entry.insert("field_value".into(), value);
                    }
                }
            }
        }
        let now = now_iso8601();
        let mut data = self.lock();
        let index = data.insert_contact(id, fields, &now);
        data.contacts[index]["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Stores an appointment of `contact_id` (the API has no way to create one); returns its id.
    /// `event` is kept as given (`GetEventSchema` fields), plus `id` (the next `event…` id unless
    /// one is given) and `contactId`; `locationId` is copied from the contact when missing. The
    /// contact does not have to exist. Nothing is logged.
    ///
    /// Panics if `event` is not a JSON object: seeding is test setup, so that is a bug.
    pub fn seed_appointment(&self, contact_id: &str, event: Value) -> String {
        let Value::Object(mut event) = event else {
            panic!("seed_appointment takes a JSON object, got {event}");
        };
        let mut data = self.lock();
        let id = match event.remove("id") {
            Some(Value::String(id)) => id,
            _ => data.next_event_id(),
        };
        event.insert("id".into(), Value::String(id.clone()));
        event.insert("contactId".into(), Value::String(contact_id.to_owned()));
        if !event.contains_key("locationId") {
            let location = data.contact_index(contact_id).and_then(|i| data.contacts[i].get("locationId").cloned());
            if let Some(location) = location {
                event.insert("locationId".into(), location);
            }
        }
        data.appointments.push(event);
        id
    }

    /// Answers one API request and records it in the request log. This is the whole mock minus
    /// HTTP: `method` and `path_and_query` as on the request line, `body` the raw bytes.
    /// Returns the status and the JSON body.
    ///
    /// Faults and the rate limit are HTTP-level behaviours and do not apply here; OAuth access
    /// tokens do ([`MockOptions::oauth`]).
    pub fn handle(&self, method: &str, path_and_query: &str, headers: &HeaderMap, body: &[u8]) -> (u16, Value) {
        let (operation_id, reply) = self.answer(method, path_and_query, headers, body);
        self.log(RecordedRequest::new(method, path_and_query, headers, operation_id, reply.status));
        (reply.status, reply.body)
    }

    /// [`MockState::handle`] without the logging: the operation the request routes to, and the reply.
    fn answer(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Option<&'static str>, Reply) {
        let matched = operation_of(method, path_and_query);
        let reply = self.respond(method, path_and_query, headers, matched.as_ref(), body);
        (matched.map(|m| m.operation.id), reply)
    }

    fn log(&self, request: RecordedRequest) {
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
            return unauthorized();
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

        let query = parse_query(query);
        // The body is parsed before it is validated, like Express's body parser runs before
        // Nest's ValidationPipe: malformed JSON is a 400, never a 422.
        let body = match op.body {
            Some(_) => match parse_body(raw_body) {
                Ok(body) => body,
                Err(reply) => return reply,
            },
            None => Map::new(),
        };
        let mut problems = check_query(op, &query);
        problems.extend(check_path(op, &matched.params));
        if let Some(rules) = op.body {
            problems.extend(check_body(rules, &body));
        }
        if !problems.is_empty() {
            return unprocessable(problems);
        }

        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        self.dispatch(op, &matched.params, &query, body, &format!("http://{host}"))
    }

    /// `Authorization: Bearer <token>` with a non-empty token, equal to the configured one if any.
    /// With OAuth configured, an unexpired access token issued by `/oauth/token` is accepted
    /// too, and no token is accepted just for being a token.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return false;
        };
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return false;
        }
        match &self.options.oauth {
            None => self.options.token.as_deref().is_none_or(|expected| expected == token),
            Some(_) => self.options.token.as_deref() == Some(token) || self.access_token_valid(token),
        }
    }

    /// `origin` is `http://<Host header>`, for the absolute `nextPageUrl` of the deprecated list.
    fn dispatch(
        &self,
        op: &'static Operation,
        params: &[(&'static str, String)],
        query: &[(String, String)],
        body: Map<String, Value>,
        origin: &str,
    ) -> Reply {
        let param = |name: &str| params.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str());
        let contact = param("contactId");
        let ok = op.success_status;
        let now = now_iso8601();
        let mut data = self.lock();
        match op.id {
            // Contacts
            "create-contact" => data.create_contact(body, self.options.allow_duplicates, ok, &now),
            "upsert-contact" => data.upsert_contact(body, self.options.allow_duplicates, ok, &now),
            "get-contact" => data.get_contact(contact, ok),
            "update-contact" => data.update_contact(contact, body, ok, &now),
            "delete-contact" => data.delete_contact(contact, ok),
            // Search and lists
            "get-duplicate-contact" => data.duplicate_contact(query, ok),
            "search-contacts-advanced" => data.search(&body, ok),
            "get-contacts" => data.list_contacts(query, origin, ok),
            "get-contacts-by-businessId" => data.business_contacts(param("businessId"), query, ok),
            // Bulk
            "add-remove-contact-from-business" => data.bulk_business(&body, ok, &now),
            "create-association" => data.bulk_tags(param("type"), &body, ok, &now),
            // Tags
            "add-tags" => data.add_tags(contact, &body, ok, &now),
            "remove-tags" => data.remove_tags(contact, &body, ok, &now),
            // Notes
            "create-note" => data.create_note(contact, body, ok, &now),
            "get-all-notes" => data.all_children(Child::Note, contact, ok),
            "get-note" => data.get_child(Child::Note, contact, param("id"), ok),
            "update-note" => data.update_child(Child::Note, contact, param("id"), body, ok),
            "delete-note" => data.delete_child(Child::Note, contact, param("id"), ok),
            // Tasks
            "get-all-tasks" => data.all_children(Child::Task, contact, ok),
            "create-task" => data.create_task(contact, body, ok),
            "get-task" => data.get_child(Child::Task, contact, param("taskId"), ok),
            "update-task" | "update-task-completed" => data.update_child(Child::Task, contact, param("taskId"), body, ok),
            "delete-task" => data.delete_child(Child::Task, contact, param("taskId"), ok),
            // Appointments
            "get-appointments-for-contact" => data.appointments_of(contact, ok),
            // Followers
            "add-followers-contact" => data.add_followers(contact, &body, ok, &now),
            "remove-followers-contact" => data.remove_followers(contact, &body, ok, &now),
            // Campaigns
            "add-contact-to-campaign" => data.add_to_campaign(contact, param("campaignId"), ok),
            "remove-contact-from-campaign" => data.remove_from_campaigns(contact, Some(param("campaignId")), ok),
            "remove-contact-from-every-campaign" => data.remove_from_campaigns(contact, None, ok),
            // Workflows
            "add-contact-to-workflow" => data.add_to_workflow(contact, param("workflowId"), &body, ok),
            "delete-contact-from-workflow" => data.remove_from_workflow(contact, param("workflowId"), ok),
            // Only reachable if the spec (and so the table) grows an operation the mock lacks.
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
// Fault injection
// ------------------------------------------------------------------------------------------------

/// Faults injected into API requests, to test a client's retries and idempotency.
///
/// Every API request (anything but `/__mock/*` and `/oauth/token`) that arrives while faults are
/// set gets a sequence number `n`, counted from 0 since the faults were last set (with
/// [`MockState::set_faults`], or at start from [`MockOptions::faults`]). Whether request `n` gets
/// a fault, and which, depends only on `seed` and `n` ([`Faults::fault_for`]), so a client that
/// sends the same requests in the same order meets the same faults on every run. The number is
/// drawn once the request's body has been read, before the read gate and the latency; requests
/// sent concurrently are numbered in whatever order they arrive.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Share of API requests that get a fault, from 0.0 (none) to 1.0 (all).
    pub rate: f64,
    pub seed: u64,
    /// The faults to choose from, with equal odds (list one twice to double its odds); an empty
    /// list injects nothing.
    pub kinds: Vec<FaultKind>,
}

/// One injected fault. Whatever the kind, the request is logged ([`RecordedRequest::fault`]).
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Answered with this status (500, 502, 503, …) and a `{"statusCode", "message"}` body
    /// without applying the request.
    ServerError(u16),
    /// Answered like an exhausted rate limit without applying the request: 429, the body of
    /// [`MockOptions::rate_limit`]'s 429, `Retry-After` (seconds, rounded up),
    /// `X-RateLimit-Remaining: 0`, and `X-RateLimit-Max` / `X-RateLimit-Interval-Milliseconds`
    /// from the current rate limit (HighLevel's 100 per 10 s when none is set).
    RateLimited { retry_after_ms: u64 },
    /// Waits this long (after the artificial latency), then handles the request normally.
    Delay(Duration),
    /// Closes the connection without sending a byte; the request is not applied.
    DropBeforeHandling,
    /// Applies the request (rate limit included), then closes the connection without sending a
    /// byte: the "lost response" case.
    DropAfterHandling,
}

impl FaultKind {
    /// Every [`FaultKind::name`], the keys of [`MockState::fault_counts`].
    pub const NAMES: [&'static str; 5] = ["server-error", "rate-limited", "delay", "drop-before", "drop-after"];

    /// The kind's name in [`MockState::fault_counts`] and [`RecordedRequest::fault`].
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::ServerError(_) => "server-error",
            FaultKind::RateLimited { .. } => "rate-limited",
            FaultKind::Delay(_) => "delay",
            FaultKind::DropBeforeHandling => "drop-before",
            FaultKind::DropAfterHandling => "drop-after",
        }
    }
}

impl Faults {
    /// `rate` of faults of every kind, with equal odds: 500, 502, 503, 429 (`Retry-After: 1`), a
    /// 20 ms delay, and both drops.
    pub fn mixed(rate: f64, seed: u64) -> Faults {
        Faults {
            rate,
            seed,
            kinds: vec![
                FaultKind::ServerError(500),
                FaultKind::ServerError(502),
                FaultKind::ServerError(503),
                FaultKind::RateLimited { retry_after_ms: 1000 },
                FaultKind::Delay(Duration::from_millis(20)),
                FaultKind::DropBeforeHandling,
                FaultKind::DropAfterHandling,
            ],
        }
    }

    /// The fault of the `n`-th API request (from 0), a pure function of `seed` and `n`:
    /// splitmix64 of both gives a uniform draw in [0, 1) compared with `rate`, and a second
    /// round picks the kind.
    pub fn fault_for(&self, n: u64) -> Option<&FaultKind> {
        if self.kinds.is_empty() {
            return None;
        }
        let hash = splitmix64(self.seed ^ splitmix64(n));
        // The top 53 bits, as an f64 in [0, 1).
        let draw = (hash >> 11) as f64 / (1u64 << 53) as f64;
        // Written so that a NaN rate injects nothing.
        let faulted = draw < self.rate;
        let kinds = self.kinds.len() as u64;
        faulted.then(|| self.kinds.get(usize::try_from(splitmix64(hash) % kinds).unwrap_or(0))).flatten()
    }
}

/// One step of SplitMix64 (Steele, Lea, Flood 2014): a fast, well-mixed hash of a `u64`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The current faults, the next request's sequence number, and how many of each kind were
/// injected since the mock started (the counters survive [`MockState::set_faults`]).
struct FaultPlan {
    faults: Option<Faults>,
    next: u64,
    counts: BTreeMap<String, usize>,
}

impl FaultPlan {
    fn new(faults: Option<Faults>) -> FaultPlan {
        let counts = FaultKind::NAMES.iter().map(|name| ((*name).to_owned(), 0)).collect();
        FaultPlan { faults, next: 0, counts }
    }
}

impl MockState {
    /// Replaces the injected faults (`None` stops them) and restarts the sequence numbering at
    /// 0, so the requests after this call meet exactly [`Faults::fault_for`]`(0)`, `(1)`, ….
    /// Requests already past their draw are not affected.
    pub fn set_faults(&self, faults: Option<Faults>) {
        let mut plan = self.faults_lock();
        plan.faults = faults;
        plan.next = 0;
    }

    /// The faults currently injected.
    pub fn faults(&self) -> Option<Faults> {
        self.faults_lock().faults.clone()
    }

    /// How many faults of each kind were injected since the mock started, keyed by
    /// [`FaultKind::name`]; every kind is present, with 0 if it never occurred.
    pub fn fault_counts(&self) -> BTreeMap<String, usize> {
        self.faults_lock().counts.clone()
    }

    /// Draws the fault of the next API request, and counts it.
    fn next_fault(&self) -> Option<FaultKind> {
        let mut plan = self.faults_lock();
        let n = plan.next;
        let fault = plan.faults.as_ref()?.fault_for(n).cloned();
        plan.next += 1;
        if let Some(fault) = &fault {
            *plan.counts.entry(fault.name().to_owned()).or_default() += 1;
        }
        fault
    }

    fn faults_lock(&self) -> MutexGuard<'_, FaultPlan> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The body of a [`FaultKind::ServerError`]: `{"statusCode", "message"}` with the reason phrase.
fn server_error(status: u16) -> Reply {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Server Error");
    Reply::error(status, reason)
}

/// Closes the connection `cut` belongs to without a response: `None` when done. Without a `cut`
/// (the router served by something else than [`MockServer`]) there is no way to, so the request
/// gets a 502 instead.
fn cut_connection(cut: Option<&ConnectionCut>) -> Option<Response> {
    match cut {
        Some(cut) => {
            cut.pull();
            None
        }
        None => Some(Reply::error(502, "mock: dropping a connection needs MockServer's listener").into_response()),
    }
}

/// The listener [`MockServer`] serves with: plain TCP, but every connection carries a
/// [`ConnectionCut`] that handlers receive as `ConnectInfo`.
///
/// axum's `serve` insists on infallible services, so a handler cannot make hyper drop its
/// connection by failing; it pulls the connection's cut instead and returns a response that is
/// never sent: from then on every read and write on the connection fails, so hyper gives up on
/// the connection at its first attempt to write the response, before a single byte goes out,
/// and closes the socket.
struct CuttableListener(tokio::net::TcpListener);

/// A connection accepted by [`CuttableListener`].
struct CuttableStream {
    stream: tokio::net::TcpStream,
    cut: ConnectionCut,
}

/// A connection's kill switch, shared between its [`CuttableStream`] and the handlers of its
/// requests.
#[derive(Clone, Debug, Default)]
struct ConnectionCut(Arc<AtomicBool>);

impl ConnectionCut {
    fn pull(&self) {
        self.0.store(true, AtomicOrdering::SeqCst);
    }

    fn is_pulled(&self) -> bool {
        self.0.load(AtomicOrdering::SeqCst)
    }
}

fn cut_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "mock: connection dropped by an injected fault")
}

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CuttableStream, SocketAddr) {
        // axum's own impl retries failed accepts.
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (CuttableStream { stream, cut: ConnectionCut::default() }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, CuttableListener>> for ConnectionCut {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> ConnectionCut {
        stream.io().cut.clone()
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_pulled() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_pulled() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_pulled() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_pulled() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Shutting down sends no data, so it is allowed after a cut.
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

// ------------------------------------------------------------------------------------------------
// Rate limit
// ------------------------------------------------------------------------------------------------

/// A burst limit like HighLevel's (100 requests per 10 s per location; the mock is one
/// location, so the limit is global).
///
/// The window **slides**: a request is admitted when fewer than `max_requests` requests were
/// admitted in the `window` before it, so a slot frees exactly `window` after the request that
/// took it. Rejected requests take no slot. Only API requests count, not `/__mock/*` nor
/// `/oauth/token`; requests refused by an injected fault before being handled (server error,
/// 429, drop-before) take no slot either.
///
/// An admitted request's response carries `X-RateLimit-Max`, `X-RateLimit-Remaining` (slots left
/// after it) and `X-RateLimit-Interval-Milliseconds`. A rejected one is not applied and gets
/// 429 `{"statusCode":429,"message":"Too Many Requests"}` with the same headers (remaining 0)
/// and `Retry-After`: seconds until the oldest slot frees, rounded up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max_requests: u32,
    pub window: Duration,
}

impl RateLimit {
    /// HighLevel's burst limit: 100 requests per 10 seconds.
    pub const HIGHLEVEL_BURST: RateLimit = RateLimit { max_requests: 100, window: Duration::from_secs(10) };
}

/// The current limit, when the requests of the current window were admitted (oldest first,
/// never more than `max_requests`), and the requests rejected since the mock started.
struct Limiter {
    limit: Option<RateLimit>,
    admitted: VecDeque<Instant>,
    rejected: usize,
}

/// What the limiter says about one request.
enum Admission {
    Unlimited,
    Admitted { limit: RateLimit, remaining: u32 },
    Rejected { limit: RateLimit, retry_after: Duration },
}

impl Limiter {
    fn new(limit: Option<RateLimit>) -> Limiter {
        Limiter { limit, admitted: VecDeque::new(), rejected: 0 }
    }

    fn admit(&mut self, now: Instant) -> Admission {
        let Some(limit) = self.limit else {
            return Admission::Unlimited;
        };
        while self.admitted.front().is_some_and(|at| now.saturating_duration_since(*at) >= limit.window) {
            self.admitted.pop_front();
        }
        let max = usize::try_from(limit.max_requests).unwrap_or(usize::MAX);
        if self.admitted.len() >= max {
            self.rejected += 1;
            // With `max_requests` 0 nothing is ever admitted; a full window is the honest answer.
            let retry_after = self
                .admitted
                .front()
                .map_or(limit.window, |oldest| (*oldest + limit.window).saturating_duration_since(now));
            return Admission::Rejected { limit, retry_after };
        }
        self.admitted.push_back(now);
        let remaining = u32::try_from(max - self.admitted.len()).unwrap_or(u32::MAX);
        Admission::Admitted { limit, remaining }
    }
}

impl MockState {
    /// Replaces the rate limit (`None` removes it) and starts a fresh window: no slot is taken.
    /// [`MockState::rate_limited_count`] is not reset.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        let mut limiter = self.limiter_lock();
        limiter.limit = limit;
        limiter.admitted.clear();
    }

    /// The rate limit currently enforced.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.limiter_lock().limit
    }

    /// Requests rejected by the rate limit since the mock started (not counting the 429s of
    /// [`FaultKind::RateLimited`], which [`MockState::fault_counts`] counts).
    pub fn rate_limited_count(&self) -> usize {
        self.limiter_lock().rejected
    }

    fn admit(&self) -> Admission {
        self.limiter_lock().admit(Instant::now())
    }

    fn limiter_lock(&self) -> MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// HighLevel's 429 body.
fn too_many_requests() -> Reply {
    Reply::error(429, "Too Many Requests")
}

/// `X-RateLimit-Max`, `X-RateLimit-Remaining`, `X-RateLimit-Interval-Milliseconds`, and
/// `Retry-After` (whole seconds, rounded up) when given.
fn rate_limit_headers(
    limit: RateLimit,
    remaining: u32,
    retry_after: Option<Duration>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (HeaderName::from_static("x-ratelimit-max"), HeaderValue::from(limit.max_requests)),
        (HeaderName::from_static("x-ratelimit-remaining"), HeaderValue::from(remaining)),
        (
            HeaderName::from_static("x-ratelimit-interval-milliseconds"),
            HeaderValue::from(u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX)),
        ),
    ];
    if let Some(retry_after) = retry_after {
        headers.push((header::RETRY_AFTER, HeaderValue::from(whole_seconds_up(retry_after))));
    }
    headers
}

/// `duration` in seconds, rounded up.
fn whole_seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

// ------------------------------------------------------------------------------------------------
// OAuth
// ------------------------------------------------------------------------------------------------

/// HighLevel's OAuth 2.0 token endpoint, `POST /oauth/token`, for the refresh-token grant, and
/// the expiring access tokens it issues.
///
/// The request is `application/x-www-form-urlencoded`:
/// `grant_type=refresh_token&refresh_token=…&client_id=…&client_secret=…&user_type=Location`
/// (`user_type` optional, only `Location`). The answer is 200
/// `{"access_token", "token_type": "Bearer", "expires_in" (seconds, rounded up), "refresh_token",
/// "scope" (the granted scopes, space-separated), "userType": "Location", "locationId"}`.
/// Refresh tokens are single use: each refresh revokes the one it used and issues the next, and
/// only the latest is accepted. Errors are `{"error": …}` bodies:
/// 400 `invalid_request` (not form-encoded, missing parameter, other `user_type`),
/// 400 `unsupported_grant_type`, 401 `invalid_client` (wrong `client_id` or `client_secret`,
/// checked before the refresh token), 401 `invalid_grant` (revoked or unknown refresh token).
/// Other methods, or a mock without OAuth, get NestJS's 404.
///
/// With OAuth configured, API requests need an access token the endpoint issued and that has not
/// expired ([`MockOptions::token`] is accepted too when set); any other gets the usual 401.
/// Access tokens stay valid until they expire, also after a refresh. Tokens are deterministic
/// (`mock-access-000001`, `mock-refresh-000001`, …). Token requests are logged, with the secrets
/// redacted ([`RecordedRequest::body`]), but they are not API requests: no fault, rate limit,
/// read gate, latency or in-flight count applies to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthOptions {
    pub client_id: String,
    pub client_secret: String,
    /// The refresh token accepted first.
    pub refresh_token: String,
    /// Lifetime of an issued access token (HighLevel's is 24 hours).
    pub access_token_ttl: Duration,
    /// The location the tokens are for, echoed as `locationId`.
    pub location_id: String,
}

/// The token endpoint's state.
#[derive(Default)]
struct OAuthTokens {
    /// The only refresh token accepted next.
    refresh_token: Option<String>,
    /// Issued access tokens and when they expire (`None`: a lifetime beyond `Instant`'s range).
    access: HashMap<String, Option<Instant>>,
    /// Tokens issued so far, for their names.
    issued: u64,
    refreshes: usize,
}

impl OAuthTokens {
    fn new(options: Option<&OAuthOptions>) -> OAuthTokens {
        OAuthTokens { refresh_token: options.map(|o| o.refresh_token.clone()), ..OAuthTokens::default() }
    }
}

/// Form parameters whose values never reach the request log.
const SECRET_PARAMETERS: [&str; 3] = ["client_secret", "refresh_token", "code"];

async fn oauth_token(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str();
    let path_and_query = path_and_query(&parts.uri);
    let (reply, logged_body) = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => (state.oauth_token(method, &parts.headers, &bytes), Some(redacted_form(&parts.headers, &bytes))),
        Err(_) => (Reply::error(413, "request entity too large"), None),
    };
    let mut entry = RecordedRequest::new(method, &path_and_query, &parts.headers, None, reply.status);
    entry.body = logged_body;
    state.log(entry);
    let mut response = reply.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl MockState {
    /// Makes every access token issued so far expire now; later requests with them get 401.
    /// Tokens issued afterwards are not affected.
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for expiry in self.oauth_lock().access.values_mut() {
            *expiry = Some(now);
        }
    }

    /// Successful refreshes at `/oauth/token` so far.
    pub fn oauth_refresh_count(&self) -> usize {
        self.oauth_lock().refreshes
    }

    /// The refresh token `/oauth/token` accepts next; `None` without [`MockOptions::oauth`].
    pub fn current_refresh_token(&self) -> Option<String> {
        self.oauth_lock().refresh_token.clone()
    }

    /// Whether `token` was issued by `/oauth/token` and has not expired.
    fn access_token_valid(&self, token: &str) -> bool {
        self.oauth_lock().access.get(token).is_some_and(|expiry| expiry.is_none_or(|at| Instant::now() < at))
    }

    /// The token endpoint, as [`OAuthOptions`] describes it.
    fn oauth_token(&self, method: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        let Some(options) = self.options.oauth.as_ref().filter(|_| method == "POST") else {
            return Reply::error(404, format!("Cannot {method} {OAUTH_TOKEN_PATH}"));
        };
        if !is_form(headers) {
            return oauth_error(400, "invalid_request");
        }
        let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str);
        match field("grant_type") {
            Some("refresh_token") => {}
            Some(_) => return oauth_error(400, "unsupported_grant_type"),
            None => return oauth_error(400, "invalid_request"),
        }
        if field("client_id") != Some(options.client_id.as_str())
            || field("client_secret") != Some(options.client_secret.as_str())
        {
            return oauth_error(401, "invalid_client");
        }
        if field("user_type").is_some_and(|t| t != "Location") {
            return oauth_error(400, "invalid_request");
        }
        let Some(presented) = field("refresh_token") else {
            return oauth_error(400, "invalid_request");
        };

        let mut tokens = self.oauth_lock();
        if tokens.refresh_token.as_deref() != Some(presented) {
            return oauth_error(401, "invalid_grant");
        }
        tokens.issued += 1;
        let access_token = format!("mock-access-{:06}", tokens.issued);
        let refresh_token = format!("mock-refresh-{:06}", tokens.issued);
        tokens.access.insert(access_token.clone(), Instant::now().checked_add(options.access_token_ttl));
        tokens.refresh_token = Some(refresh_token.clone());
        tokens.refreshes += 1;
        let scope = self.options.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        Reply::new(
            200,
            json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": whole_seconds_up(options.access_token_ttl),
                "refresh_token": refresh_token,
                "scope": scope,
                "userType": "Location",
                "locationId": options.location_id,
            }),
        )
    }

    fn oauth_lock(&self) -> MutexGuard<'_, OAuthTokens> {
        self.oauth.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An OAuth error body, `{"error": code}`.
fn oauth_error(status: u16, code: &str) -> Reply {
    Reply::new(status, json!({ "error": code }))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// The token request's body for the log: the form with [`SECRET_PARAMETERS`] redacted, or a
/// placeholder when it is not form-encoded (a JSON body would otherwise be logged whole).
fn redacted_form(headers: &HeaderMap, body: &[u8]) -> String {
    if !is_form(headers) {
        return format!("<{} bytes, not form-encoded>", body.len());
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(body) {
        let value = if SECRET_PARAMETERS.contains(&name.as_ref()) { "REDACTED".into() } else { value };
        out.append_pair(&name, &value);
    }
    out.finish()
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

/// The two kinds of items a contact owns that the API reads, updates and deletes alike.
#[derive(Clone, Copy)]
enum Child {
    Note,
    Task,
}

impl Child {
    fn list_key(self) -> &'static str {
        match self {
            Child::Note => "notes",
            Child::Task => "tasks",
        }
    }

    fn item_key(self) -> &'static str {
        match self {
            Child::Note => "note",
            Child::Task => "task",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Child::Note => "Note",
            Child::Task => "Task",
        }
    }
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

    /// `{"succeded": true}` (sic), the body of every delete and of the campaign/workflow operations.
    fn succeded(status: u16) -> Reply {
        Reply::new(status, json!({ "succeded": true }))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(self.body))
            .into_response()
    }
}

/// The error texts the common schemas fix, read from their examples.
struct ErrorTexts {
    unauthorized: Value,
    unprocessable_error: String,
}

/// Parsed once, on first use; the embedded file is a constant, so this cannot fail at runtime
/// unless the embed itself is broken, which the tests catch.
fn error_texts() -> &'static ErrorTexts {
    static TEXTS: OnceLock<ErrorTexts> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let common: Value = serde_json::from_str(COMMON_SCHEMAS).expect("the embedded common-schemas.json is JSON");
        let dto = |name: &str| &common["components"]["schemas"][name]["properties"];
        ErrorTexts {
            unauthorized: json!({
                "statusCode": 401,
                "message": dto("UnauthorizedDTO")["message"]["example"],
                "error": dto("UnauthorizedDTO")["error"]["example"],
            }),
            unprocessable_error: dto("UnprocessableDTO")["error"]["example"]
                .as_str()
                .unwrap_or("Unprocessable Entity")
                .to_owned(),
        }
    })
}

/// `UnauthorizedDTO`, with the texts of the common schema's examples.
fn unauthorized() -> Reply {
    Reply::new(401, error_texts().unauthorized.clone())
}

/// `UnprocessableDTO`: unlike every other error, `message` is an array.
fn unprocessable(problems: Vec<String>) -> Reply {
    Reply::new(422, json!({ "statusCode": 422, "message": problems, "error": error_texts().unprocessable_error }))
}

// ------------------------------------------------------------------------------------------------
// Data and operations
// ------------------------------------------------------------------------------------------------

/// Everything behind the mutex. Contacts, notes, tasks and appointments are kept as JSON objects
/// so that any field the spec allows is stored and echoed back exactly as sent, without a struct
/// to keep in sync. Followers live on the contact (`followers`, as `ContactsSearchSchema` lists
/// them); campaign and workflow memberships are kept beside it.
#[derive(Default)]
struct Data {
    contacts: Vec<Map<String, Value>>,
    notes: Vec<Map<String, Value>>,
    tasks: Vec<Map<String, Value>>,
    appointments: Vec<Map<String, Value>>,
    /// `(contactId, campaignId)`, in enrolment order.
    campaigns: Vec<(String, String)>,
    /// `(contactId, {workflowId, eventStartTime?})`, in enrolment order.
    workflows: Vec<(String, Map<String, Value>)>,
    /// Custom-field ids by `(locationId, key)`: a field written by `key` keeps one id.
    custom_field_ids: HashMap<(String, String), String>,
    requests: Vec<RecordedRequest>,
    contact_counter: u64,
    note_counter: u64,
    task_counter: u64,
    event_counter: u64,
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

    fn next_task_id(&mut self) -> String {
        self.task_counter += 1;
        format!("task{:016}", self.task_counter)
    }

    fn next_event_id(&mut self) -> String {
        loop {
            self.event_counter += 1;
            let id = format!("event{:015}", self.event_counter);
            if !self.appointments.iter().any(|e| str_field(e, "id") == Some(&id)) {
                return id;
            }
        }
    }

    /// Upsert's `traceId`: UUID-shaped like the real one, but deterministic.
    fn next_trace_id(&mut self) -> String {
        self.trace_counter += 1;
        format!("00000000-0000-4000-8000-{:012}", self.trace_counter)
    }

    fn contact_index(&self, id: &str) -> Option<usize> {
        self.contacts.iter().position(|c| str_field(c, "id") == Some(id))
    }

    /// The contact's index, or the 400 every operation on an unknown contact answers.
    fn existing(&self, id: &str) -> Result<usize, Reply> {
        self.contact_index(id).ok_or_else(|| Reply::contact_not_found(id))
    }

    /// Stores a new contact built from `fields`; returns its index.
    fn insert_contact(&mut self, id: Option<String>, fields: Map<String, Value>, now: &str) -> usize {
        let id = id.unwrap_or_else(|| self.next_contact_id());
        let mut contact = Map::new();
        contact.insert("id".into(), Value::String(id));
        contact.insert("tags".into(), json!([]));
        contact.insert("customFields".into(), json!([]));
        contact.insert("dateAdded".into(), Value::String(now.to_owned()));
        contact.insert("dateUpdated".into(), Value::String(now.to_owned()));
        self.contacts.push(contact);
        let index = self.contacts.len() - 1;
        self.apply_contact_fields(index, fields);
        index
    }

    /// Writes request fields onto a stored contact: [`merge`] for plain fields, the custom-field
    /// conversion for `customFields`, then the derived fields.
    ///
    /// Custom fields are written as `{id, key?, field_value}` and read as `{id, value}`. Each
    /// written entry updates the stored entry with the same id (others are kept); an entry with
    /// only a `key` gets the id that key already has in the location, or `cf_<key>`. A `null` or
    /// `""` `field_value` clears the field; an entry without `field_value`, or with neither id
    /// nor key, changes nothing.
    fn apply_contact_fields(&mut self, index: usize, mut fields: Map<String, Value>) {
        let written = fields.remove("customFields");
        let contact = &mut self.contacts[index];
        merge(contact, fields);
        if let Some(Value::Array(entries)) = written {
            let location = str_field(contact, "locationId").unwrap_or_default().to_owned();
            let mut stored = match contact.remove("customFields") {
                Some(Value::Array(stored)) => stored,
                _ => Vec::new(),
            };
            for entry in entries.iter().filter_map(Value::as_object) {
                let key = str_field(entry, "key").filter(|k| !k.is_empty());
                let id = match (str_field(entry, "id").filter(|id| !id.is_empty()), key) {
                    (Some(id), Some(key)) => {
                        self.custom_field_ids.insert((location.clone(), key.to_owned()), id.to_owned());
                        id.to_owned()
                    }
                    (Some(id), None) => id.to_owned(),
                    (None, Some(key)) => self
                        .custom_field_ids
                        .entry((location.clone(), key.to_owned()))
                        .or_insert_with(|| format!("cf_{key}"))
                        .clone(),
                    (None, None) => continue,
                };
                let Some(value) = entry.get("field_value") else {
                    continue;
                };
                let position = stored.iter().position(|s| s["id"].as_str() == Some(id.as_str()));
                match (position, value.is_null() || value == "") {
                    (Some(at), true) => {
                        stored.remove(at);
                    }
                    (None, true) => {}
                    (Some(at), false) => stored[at]["value"] = value.clone(),
                    (None, false) => stored.push(json!({ "id": id, "value": value })),
                }
            }
            contact.insert("customFields".into(), Value::Array(stored));
        }
        refresh_derived(contact);
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
                .filter(|(_, c)| str_field(c, "locationId") == Some(location))
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
                self.apply_contact_fields(index, body);
                self.touch(index, now);
                (false, index)
            }
            None => (true, self.insert_contact(None, body, now)),
        };
        Reply::new(ok, json!({ "new": new, "contact": self.contacts[index], "traceId": trace_id }))
    }

    fn touch(&mut self, index: usize, now: &str) {
        self.contacts[index].insert("dateUpdated".into(), Value::String(now.to_owned()));
    }

    fn get_contact(&self, id: &str, ok: u16) -> Reply {
        match self.existing(id) {
            Ok(index) => Reply::new(ok, json!({ "contact": self.contacts[index] })),
            Err(reply) => reply,
        }
    }

    fn update_contact(&mut self, id: &str, body: Map<String, Value>, ok: u16, now: &str) -> Reply {
        let index = match self.existing(id) {
            Ok(index) => index,
            Err(reply) => return reply,
        };
        self.apply_contact_fields(index, body);
        self.touch(index, now);
        Reply::new(ok, json!({ "succeded": true, "contact": self.contacts[index] }))
    }

    /// Deletes the contact with everything hanging off it: notes, tasks, appointments and
    /// campaign/workflow memberships.
    fn delete_contact(&mut self, id: &str, ok: u16) -> Reply {
        let index = match self.existing(id) {
            Ok(index) => index,
            Err(reply) => return reply,
        };
        self.contacts.remove(index);
        self.notes.retain(|n| !belongs_to(n, id));
        self.tasks.retain(|t| !belongs_to(t, id));
        self.appointments.retain(|e| !belongs_to(e, id));
        self.campaigns.retain(|(contact, _)| contact != id);
        self.workflows.retain(|(contact, _)| contact != id);
        Reply::succeded(ok)
    }

    fn duplicate_contact(&self, query: &[(String, String)], ok: u16) -> Reply {
        let location = query_value(query, "locationId").unwrap_or_default();
        let found = self.find_duplicate(location, query_value(query, "email"), query_value(query, "number"));
        let contact = found.map_or(Value::Null, |(index, _)| Value::Object(self.contacts[index].clone()));
        Reply::new(ok, json!({ "contact": contact }))
    }

    /// Contacts of `location` matching the free-text `query`, in creation order.
    fn in_location<'a>(
        &'a self,
        location: &'a str,
        text: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Map<String, Value>> {
        self.contacts
            .iter()
            .filter(move |c| str_field(c, "locationId") == Some(location))
            .filter(move |c| text.is_none_or(|q| matches_text(c, q)))
    }

    /// `POST /contacts/search`. The spec leaves `SearchBodyV2DTO` empty; the fields below follow
    /// the published search documentation: `locationId` and `pageLimit` (≤ 500) required, `page`
    /// 1-based, `query` free text over name/email/phone, `filters` (`{field, operator, value}` or
    /// `{group: AND|OR, filters}`, all ANDed), `sort` (`[{field, direction}]`, creation order
    /// otherwise), `searchAfter` (the cursor each returned contact carries). Unknown fields are
    /// ignored, like the open schema says.
    fn search(&self, body: &Map<String, Value>, ok: u16) -> Reply {
        let problems = check_search(body);
        if !problems.is_empty() {
            return unprocessable(problems);
        }
        let location = str_field(body, "locationId").unwrap_or_default();
        let text = str_field(body, "query");
        let filters = body.get("filters").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let mut found: Vec<&Map<String, Value>> =
            self.in_location(location, text).filter(|c| filters.iter().all(|f| filter_matches(c, f))).collect();
        for rule in body.get("sort").and_then(Value::as_array).into_iter().flatten().rev() {
            let field = rule["field"].as_str().unwrap_or_default();
            let descending = rule["direction"].as_str() == Some("desc");
            // Stable sorts, last rule first, give the lexicographic order of all rules.
            found.sort_by(|a, b| {
                let order = compare_sort_keys(lookup(a, field), lookup(b, field));
                if descending {
                    order.reverse()
                } else {
                    order
                }
            });
        }
        let total = found.len();
        let limit = body["pageLimit"].as_f64().unwrap_or(0.0) as usize;
        let start = match body.get("searchAfter").and_then(Value::as_array) {
            Some(cursor) => {
                let after_id = cursor.iter().rev().find_map(Value::as_str).unwrap_or_default();
                found.iter().position(|c| str_field(c, "id") == Some(after_id)).map_or(total, |at| at + 1)
            }
            None => (body.get("page").and_then(Value::as_f64).unwrap_or(1.0) as usize)
                .saturating_sub(1)
                .saturating_mul(limit),
        };
        let contacts: Vec<Value> = found
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|c| {
                let mut c = c.clone();
                let cursor = json!([date_added_ms(&c), c["id"]]);
                c.insert("searchAfter".into(), cursor);
                Value::Object(c)
            })
            .collect();
        Reply::new(ok, json!({ "contacts": contacts, "total": total }))
    }

    /// `GET /contacts/` (deprecated): cursor paging over creation order. `startAfterId` (the last
    /// id of the previous page) wins; otherwise `startAfter` (epoch ms) starts at the first
    /// contact added after it. `count` and `meta.total` are the number of matching contacts.
    fn list_contacts(&self, query: &[(String, String)], origin: &str, ok: u16) -> Reply {
        let limit = match query_value(query, "limit").map(str::trim) {
            None | Some("") => 20,
            Some(limit) => match limit.parse::<f64>() {
                Ok(n) if n > 100.0 => return unprocessable(vec!["limit must not be greater than 100".into()]),
                Ok(n) if n < 1.0 => return unprocessable(vec!["limit must not be less than 1".into()]),
                Ok(n) => n as usize,
                Err(_) => return unprocessable(vec![format!("limit {MSG_NUMBER}")]),
            },
        };
        let location = query_value(query, "locationId").unwrap_or_default();
        let text = query_value(query, "query").filter(|q| !q.trim().is_empty());
        let all: Vec<&Map<String, Value>> = self.in_location(location, text).collect();
        let after_id = query_value(query, "startAfterId").filter(|id| !id.is_empty());
        let after_ms = query_value(query, "startAfter").and_then(|ms| ms.trim().parse::<f64>().ok());
        let start = match (after_id.and_then(|id| all.iter().position(|c| str_field(c, "id") == Some(id))), after_ms) {
            (Some(at), _) => at + 1,
            (None, Some(ms)) => all.iter().position(|c| date_added_ms(c) as f64 > ms).unwrap_or(all.len()),
            (None, None) => 0,
        };
        let page: Vec<&Map<String, Value>> = all.iter().skip(start).take(limit).copied().collect();
        let current = start / limit + 1;
        let more = start + page.len() < all.len();
        let last = page.last();
        let next_url = match last {
            Some(last) if more => {
                let ms = date_added_ms(last).to_string();
                let mut pairs = vec![("locationId", location), ("startAfter", ms.as_str())];
                pairs.push(("startAfterId", str_field(last, "id").unwrap_or_default()));
                let limit_given = query_value(query, "limit");
                pairs.extend(limit_given.map(|l| ("limit", l)));
                pairs.extend(text.map(|q| ("query", q)));
                let pairs: Vec<(&str, String)> = pairs.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
                Value::String(format!(
                    "{origin}/contacts/{}",
                    contacts_api::query_string(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                ))
            }
            _ => Value::Null,
        };
        Reply::new(
            ok,
            json!({
                "contacts": page,
                "count": all.len(),
                "meta": {
                    "total": all.len(),
                    "nextPageUrl": next_url,
                    "startAfterId": last.map_or(Value::Null, |c| c["id"].clone()),
                    "startAfter": last.map_or(Value::Null, |c| json!(date_added_ms(c))),
                    "currentPage": current,
                    "nextPage": if more { json!(current + 1) } else { Value::Null },
                    "prevPage": if current > 1 { json!(current - 1) } else { Value::Null },
                }
            }),
        )
    }

    /// `GET /contacts/business/{businessId}`: `skip`/`limit` paging (number strings, defaults
    /// "0"/"25") over the location's contacts with that `businessId`; `count` is all matches.
    fn business_contacts(&self, business: &str, query: &[(String, String)], ok: u16) -> Reply {
        let number = |name: &str, default: usize| match query_value(query, name).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| format!("{name} must be a number string")),
        };
        let (limit, skip) = match (number("limit", 25), number("skip", 0)) {
            (Ok(limit), Ok(skip)) => (limit, skip),
            (limit, skip) => return unprocessable(limit.err().into_iter().chain(skip.err()).collect()),
        };
        let location = query_value(query, "locationId").unwrap_or_default();
        let text = query_value(query, "query").filter(|q| !q.trim().is_empty());
        let all: Vec<&Map<String, Value>> =
            self.in_location(location, text).filter(|c| str_field(c, "businessId") == Some(business)).collect();
        let page: Vec<&Map<String, Value>> = all.iter().skip(skip).take(limit).copied().collect();
        Reply::new(ok, json!({ "contacts": page, "count": all.len() }))
    }

    /// Sets (or, with `null`, clears) `businessId` on each listed contact of the location.
    /// Ids that are unknown or in another location are skipped and left out of `ids`.
    fn bulk_business(&mut self, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        let location = str_field(body, "locationId").unwrap_or_default();
        let business = body.get("businessId").cloned().unwrap_or(Value::Null);
        let mut updated = Vec::new();
        for id in body["ids"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let Some(index) = self.contact_index(id) else { continue };
            if str_field(&self.contacts[index], "locationId") != Some(location) {
                continue;
            }
            let mut fields = Map::new();
            fields.insert("businessId".into(), business.clone());
            merge(&mut self.contacts[index], fields);
            self.touch(index, now);
            if !updated.iter().any(|u| u == id) {
                updated.push(id.to_owned());
            }
        }
        Reply::new(ok, json!({ "success": true, "ids": updated }))
    }

    /// `POST /contacts/bulk/tags/update/{add|remove}`: one `responses` item per listed contact
    /// (duplicates included). Unknown contacts and contacts of another location are per-item
    /// errors counted in `errorCount`; the request itself succeeds.
    fn bulk_tags(&mut self, kind: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        let remove_all = matches!(body.get("removeAllTags"), Some(Value::Bool(true)))
            || str_field(body, "removeAllTags") == Some("true");
        if remove_all && kind != "remove" {
            return unprocessable(vec!["removeAllTags can only be used with remove type".into()]);
        }
        let location = str_field(body, "locationId").unwrap_or_default();
        let tags: Vec<Value> = string_items(body, "tags");
        let mut responses = Vec::new();
        let mut errors = 0;
        for id in body["contacts"].as_array().into_iter().flatten() {
            let id = id.as_str().unwrap_or_default();
            let index = match self.contact_index(id) {
                Some(index) if str_field(&self.contacts[index], "locationId") == Some(location) => index,
                found => {
                    errors += 1;
                    let message = if found.is_some() {
                        "contact does not belong to location".to_owned()
                    } else {
                        format!("Contact with id {id} not found")
                    };
                    responses.push(json!({ "contactId": id, "message": message, "type": "error" }));
                    continue;
                }
            };
            let old = contact_list(&self.contacts[index], "tags");
            let (new, added, removed) = if kind == "add" {
                let (new, added) = union(&old, &tags);
                (new, added, Vec::new())
            } else if remove_all {
                (Vec::new(), Vec::new(), old.clone())
            } else {
                let (new, removed) = difference(&old, &tags);
                (new, Vec::new(), removed)
            };
            self.contacts[index].insert("tags".into(), Value::Array(new));
            self.touch(index, now);
            responses.push(json!({
                "contactId": id,
                "message": "Tags updated",
                "type": "success",
                "oldTags": old,
                "tagsAdded": added,
                "tagsRemoved": removed,
            }));
        }
        Reply::new(ok, json!({ "succeded": true, "errorCount": errors, "responses": responses }))
    }

    /// Adds tags to a contact (keeping the existing ones, no duplicates) and answers with all of them.
    fn add_tags(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        self.edit_list(contact_id, "tags", body, true, now)
            .map_or_else(|e| e, |(all, _)| Reply::new(ok, json!({ "tags": all })))
    }

    /// Removes tags from a contact and answers with the remaining ones.
    fn remove_tags(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        self.edit_list(contact_id, "tags", body, false, now)
            .map_or_else(|e| e, |(all, _)| Reply::new(ok, json!({ "tags": all })))
    }

    fn add_followers(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        self.edit_list(contact_id, "followers", body, true, now)
            .map_or_else(|e| e, |(all, added)| Reply::new(ok, json!({ "followers": all, "followersAdded": added })))
    }

    fn remove_followers(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        self.edit_list(contact_id, "followers", body, false, now).map_or_else(
            |e| e,
            |(all, removed)| Reply::new(ok, json!({ "followers": all, "followersRemoved": removed })),
        )
    }

    /// Adds (`add`) or removes the body's `field` strings to/from the contact's `field` list.
    /// Returns the new list and the values actually added or removed.
    fn edit_list(
        &mut self,
        contact_id: &str,
        field: &str,
        body: &Map<String, Value>,
        add: bool,
        now: &str,
    ) -> Result<(Vec<Value>, Vec<Value>), Reply> {
        let index = self.existing(contact_id)?;
        let old = contact_list(&self.contacts[index], field);
        let given = string_items(body, field);
        let (new, changed) = if add { union(&old, &given) } else { difference(&old, &given) };
        self.contacts[index].insert(field.to_owned(), Value::Array(new.clone()));
        self.touch(index, now);
        Ok((new, changed))
    }

    fn create_note(&mut self, contact_id: &str, body: Map<String, Value>, ok: u16, now: &str) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let mut note = Map::new();
        note.insert("id".into(), Value::String(self.next_note_id()));
        note.insert("dateAdded".into(), Value::String(now.to_owned()));
        note.insert("contactId".into(), Value::String(contact_id.to_owned()));
        merge(&mut note, body);
        self.notes.push(note.clone());
        Reply::new(ok, json!({ "note": note }))
    }

    /// The notes or the tasks.
    fn children(&self, kind: Child) -> &Vec<Map<String, Value>> {
        match kind {
            Child::Note => &self.notes,
            Child::Task => &self.tasks,
        }
    }

    fn children_mut(&mut self, kind: Child) -> &mut Vec<Map<String, Value>> {
        match kind {
            Child::Note => &mut self.notes,
            Child::Task => &mut self.tasks,
        }
    }

    /// `get-all-notes` / `get-all-tasks`: the contact must exist.
    fn all_children(&self, kind: Child, contact_id: &str, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let items: Vec<&Map<String, Value>> = self.children(kind).iter().filter(|n| belongs_to(n, contact_id)).collect();
        Reply::new(ok, json!({ (kind.list_key()): items }))
    }

    /// The note or task `id` of contact `contact_id`: the contact must exist, and the item must belong to it.
    fn child_index(&self, kind: Child, contact_id: &str, id: &str) -> Result<usize, Reply> {
        self.existing(contact_id)?;
        self.children(kind)
            .iter()
            .position(|n| belongs_to(n, contact_id) && str_field(n, "id") == Some(id))
            .ok_or_else(|| Reply::error(400, format!("{} with id {id} not found", kind.noun())))
    }

    fn get_child(&self, kind: Child, contact_id: &str, id: &str, ok: u16) -> Reply {
        match self.child_index(kind, contact_id, id) {
            Ok(index) => Reply::new(ok, json!({ (kind.item_key()): self.children(kind)[index] })),
            Err(reply) => reply,
        }
    }

    /// `update-note`, and both `update-task` (any of the five fields) and `update-task-completed` (`{completed}`).
    fn update_child(&mut self, kind: Child, contact_id: &str, id: &str, body: Map<String, Value>, ok: u16) -> Reply {
        match self.child_index(kind, contact_id, id) {
            Ok(index) => {
                let item = &mut self.children_mut(kind)[index];
                merge(item, body);
                Reply::new(ok, json!({ (kind.item_key()): item }))
            }
            Err(reply) => reply,
        }
    }

    fn delete_child(&mut self, kind: Child, contact_id: &str, id: &str, ok: u16) -> Reply {
        match self.child_index(kind, contact_id, id) {
            Ok(index) => {
                self.children_mut(kind).remove(index);
                Reply::succeded(ok)
            }
            Err(reply) => reply,
        }
    }

    /// A task is `TaskSchema`: `{id, title, body?, assignedTo?, dueDate, completed, contactId}`.
    fn create_task(&mut self, contact_id: &str, body: Map<String, Value>, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let mut task = Map::new();
        task.insert("id".into(), Value::String(self.next_task_id()));
        task.insert("contactId".into(), Value::String(contact_id.to_owned()));
        merge(&mut task, body);
        self.tasks.push(task.clone());
        Reply::new(ok, json!({ "task": task }))
    }

    fn appointments_of(&self, contact_id: &str, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let events: Vec<&Map<String, Value>> = self.appointments.iter().filter(|e| belongs_to(e, contact_id)).collect();
        Reply::new(ok, json!({ "events": events }))
    }

    /// Enrolling twice is harmless: the membership is kept once.
    fn add_to_campaign(&mut self, contact_id: &str, campaign_id: &str, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        if !self.campaigns.iter().any(|(c, k)| c == contact_id && k == campaign_id) {
            self.campaigns.push((contact_id.to_owned(), campaign_id.to_owned()));
        }
        Reply::succeded(ok)
    }

    /// One campaign, or (`None`) all of them. Removing a membership that does not exist succeeds.
    fn remove_from_campaigns(&mut self, contact_id: &str, campaign_id: Option<&str>, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        self.campaigns.retain(|(c, k)| !(c == contact_id && campaign_id.is_none_or(|id| id == k)));
        Reply::succeded(ok)
    }

    /// Enrolling again replaces the stored `eventStartTime`.
    fn add_to_workflow(&mut self, contact_id: &str, workflow_id: &str, body: &Map<String, Value>, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let mut enrolment = Map::new();
        enrolment.insert("workflowId".into(), Value::String(workflow_id.to_owned()));
        if let Some(start) = body.get("eventStartTime").filter(|v| !v.is_null()) {
            enrolment.insert("eventStartTime".into(), start.clone());
        }
        match self
            .workflows
            .iter_mut()
            .find(|(c, e)| c == contact_id && str_field(e, "workflowId") == Some(workflow_id))
        {
            Some((_, existing)) => *existing = enrolment,
            None => self.workflows.push((contact_id.to_owned(), enrolment)),
        }
        Reply::succeded(ok)
    }

    /// Removing a membership that does not exist succeeds.
    fn remove_from_workflow(&mut self, contact_id: &str, workflow_id: &str, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        self.workflows.retain(|(c, e)| !(c == contact_id && str_field(e, "workflowId") == Some(workflow_id)));
        Reply::succeded(ok)
    }
}

fn belongs_to(item: &Map<String, Value>, contact_id: &str) -> bool {
    str_field(item, "contactId") == Some(contact_id)
}

fn str_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

/// The string items of an array property of a request body (validation has checked it is one).
fn string_items(body: &Map<String, Value>, name: &str) -> Vec<Value> {
    body.get(name).and_then(Value::as_array).into_iter().flatten().filter(|v| v.is_string()).cloned().collect()
}

/// A stored list field of a contact (`tags`, `followers`), empty when absent.
fn contact_list(contact: &Map<String, Value>, name: &str) -> Vec<Value> {
    match contact.get(name) {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    }
}

/// `old` plus the values of `given` it lacks (each once); returns the union and what was added.
fn union(old: &[Value], given: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let mut all = old.to_vec();
    let mut added = Vec::new();
    for value in given {
        if !all.contains(value) {
            all.push(value.clone());
            added.push(value.clone());
        }
    }
    (all, added)
}

/// `old` without the values of `given`; returns what is left and what was removed.
fn difference(old: &[Value], given: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let (removed, kept): (Vec<Value>, Vec<Value>) = old.iter().cloned().partition(|v| given.contains(v));
    (kept, removed)
}

/// Appends `value` to the array at `map[key]`, creating it.
fn push_to(map: &mut Map<String, Value>, key: &str, value: Value) {
    if let Value::Array(list) = map.entry(key.to_owned()).or_insert_with(|| json!([])) {
        list.push(value);
    }
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

/// `dateAdded` in epoch milliseconds (0 when missing or unparsable), the deprecated list's
/// `startAfter` and the first element of a search cursor.
fn date_added_ms(contact: &Map<String, Value>) -> u64 {
    str_field(contact, "dateAdded")
        .and_then(|d| humantime::parse_rfc3339_weak(d).ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

// ------------------------------------------------------------------------------------------------
// Search
// ------------------------------------------------------------------------------------------------

const OPERATORS: &[&str] = &["eq", "not_eq", "contains", "not_contains", "exists", "not_exists", "range"];
const MAX_PAGE_LIMIT: u64 = 500;

/// Free text: a case-insensitive substring of the name, first/last name or email, or (when the
/// text has digits and no letters) a digit substring of the phone, so `312 555` finds `+1312555…`.
fn matches_text(contact: &Map<String, Value>, text: &str) -> bool {
    let text = text.trim().to_lowercase();
    if text.is_empty() {
        return true;
    }
    let in_fields = ["name", "firstName", "lastName", "email", "phone"]
        .iter()
        .filter_map(|f| str_field(contact, f))
        .any(|v| v.to_lowercase().contains(&text));
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let phone_digits =
        || -> String { str_field(contact, "phone").unwrap_or_default().chars().filter(char::is_ascii_digit).collect() };
    in_fields || (!digits.is_empty() && !text.chars().any(char::is_alphabetic) && phone_digits().contains(&digits))
}

/// A contact's value for a filter/sort field: a top-level property, `customFields.<id>` (the
/// custom field's value), or a dotted path into nested objects.
fn lookup<'a>(contact: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    if let Some(value) = contact.get(field) {
        return Some(value);
    }
    if let Some(id) = field.strip_prefix("customFields.").or_else(|| field.strip_prefix("customField.")) {
        return contact.get("customFields")?.as_array()?.iter().find(|f| f["id"] == id)?.get("value");
    }
    let mut segments = field.split('.');
    let mut current = contact.get(segments.next()?)?;
    for segment in segments {
        current = current.get(segment)?;
    }
    Some(current)
}

/// Strings compare case-insensitively; numbers and booleans by their JSON text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// Every scalar the field holds: the value itself, or each item of an array (`tags`).
fn scalars(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(value) => scalar_text(value).into_iter().collect(),
        None => Vec::new(),
    }
}

fn filter_matches(contact: &Map<String, Value>, filter: &Value) -> bool {
    if let Some(group) = filter.get("group").and_then(Value::as_str) {
        let mut inner = filter["filters"].as_array().into_iter().flatten();
        return if group.eq_ignore_ascii_case("or") {
            inner.any(|f| filter_matches(contact, f))
        } else {
            inner.all(|f| filter_matches(contact, f))
        };
    }
    let field = lookup(contact, filter["field"].as_str().unwrap_or_default());
    let have = scalars(field);
    // A list value (`"value": ["a", "b"]`) matches any of its items.
    let wanted = scalars(filter.get("value"));
    let eq = || have.iter().any(|h| wanted.contains(h));
    let contains = || have.iter().any(|h| wanted.iter().any(|w| h.contains(w.as_str())));
    match filter["operator"].as_str().unwrap_or_default() {
        "eq" => eq(),
        "not_eq" => !eq(),
        "contains" => contains(),
        "not_contains" => !contains(),
        "exists" => is_present(field),
        "not_exists" => !is_present(field),
        "range" => in_range(field, &filter["value"]),
        _ => false,
    }
}

/// `range` takes `{gt|gte|lt|lte: bound}`; numbers compare as numbers, anything else as text
/// (so ISO dates compare chronologically).
fn in_range(field: Option<&Value>, bounds: &Value) -> bool {
    let Some(field) = field.filter(|f| !f.is_null()) else {
        return false;
    };
    [
        ("gt", &[Ordering::Greater][..]),
        ("gte", &[Ordering::Greater, Ordering::Equal]),
        ("lt", &[Ordering::Less]),
        ("lte", &[Ordering::Less, Ordering::Equal]),
    ]
    .iter()
    .all(|(name, allowed)| {
        bounds.get(*name).is_none_or(|bound| allowed.contains(&compare_sort_keys(Some(field), Some(bound))))
    })
}

/// Sort order of two field values: numbers numerically, everything else as lowercase text,
/// numbers before text, missing values last.
fn compare_sort_keys(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => {
                let text = |v: &Value| scalar_text(v).unwrap_or_else(|| v.to_string());
                text(a).cmp(&text(b))
            }
        },
    }
}

/// The search body's rules, in class-validator's wording.
fn check_search(body: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    match body.get("locationId") {
        None | Some(Value::Null) => problems.push("locationId should not be empty".to_owned()),
        Some(Value::String(s)) if s.is_empty() => problems.push("locationId should not be empty".to_owned()),
        Some(Value::String(_)) => {}
        Some(_) => problems.push("locationId must be a string".to_owned()),
    }
    match body.get("pageLimit") {
        None | Some(Value::Null) => problems.push("pageLimit should not be empty".to_owned()),
        Some(value) => problems.extend(check_integer("pageLimit", value, Some(MAX_PAGE_LIMIT))),
    }
    if let Some(page) = body.get("page").filter(|v| !v.is_null()) {
        problems.extend(check_integer("page", page, None));
    }
    match body.get("query") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => problems.push("query must be a string".to_owned()),
    }
    match body.get("filters") {
        None | Some(Value::Null) => {}
        Some(Value::Array(filters)) => {
            for filter in filters {
                check_filter(filter, &mut problems);
            }
        }
        Some(_) => problems.push("filters must be an array".to_owned()),
    }
    match body.get("sort") {
        None | Some(Value::Null) => {}
        Some(Value::Array(rules)) => {
            for rule in rules {
                if rule["field"].as_str().is_none_or(str::is_empty) {
                    problems.push("sort.field should not be empty".to_owned());
                }
                if !matches!(rule["direction"].as_str(), Some("asc" | "desc")) {
                    problems.push("sort.direction must be one of the following values: asc, desc".to_owned());
                }
            }
        }
        Some(_) => problems.push("sort must be an array".to_owned()),
    }
    match body.get("searchAfter") {
        None | Some(Value::Null) | Some(Value::Array(_)) => {}
        Some(_) => problems.push("searchAfter must be an array".to_owned()),
    }
    problems
}

/// A positive integer, at most `max`.
fn check_integer(name: &str, value: &Value, max: Option<u64>) -> Vec<String> {
    match value.as_f64() {
        None => vec![format!("{name} {MSG_NUMBER}")],
        Some(n) if n.fract() != 0.0 => vec![format!("{name} must be an integer number")],
        Some(n) if n < 1.0 => vec![format!("{name} must not be less than 1")],
        Some(n) if max.is_some_and(|max| n > max as f64) => {
            vec![format!("{name} must not be greater than {}", max.unwrap_or_default())]
        }
        Some(_) => Vec::new(),
    }
}

fn check_filter(filter: &Value, problems: &mut Vec<String>) {
    let Some(filter) = filter.as_object() else {
        problems.push("each value in filters must be an object".to_owned());
        return;
    };
    if let Some(group) = filter.get("group") {
        if !matches!(group.as_str(), Some("AND" | "OR")) {
            problems.push("filters.group must be one of the following values: AND, OR".to_owned());
        }
        match filter.get("filters") {
            Some(Value::Array(inner)) => inner.iter().for_each(|f| check_filter(f, problems)),
            _ => problems.push("filters.filters must be an array".to_owned()),
        }
        return;
    }
    if str_field(filter, "field").is_none_or(str::is_empty) {
        problems.push("filters.field should not be empty".to_owned());
    }
    match str_field(filter, "operator") {
        Some(op) if OPERATORS.contains(&op) => {
            let needs_value = !matches!(op, "exists" | "not_exists");
            if needs_value && filter.get("value").is_none_or(Value::is_null) {
                problems.push("filters.value should not be empty".to_owned());
            }
            if op == "range" && !filter.get("value").is_some_and(Value::is_object) {
                problems.push("filters.value must be an object".to_owned());
            }
        }
        _ => problems.push(format!("filters.operator must be one of the following values: {}", OPERATORS.join(", "))),
    }
}

// ------------------------------------------------------------------------------------------------
// Request parsing and validation (rules from `contacts_api::OPERATIONS`)
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
        Ok(_) => Err(unprocessable(vec!["request body must be a JSON object".to_owned()])),
        Err(_) => Err(Reply::error(400, MSG_NOT_JSON)),
    }
}

/// The JSON type of a value, as the table names types; `None` for `null`.
fn kind_of(value: &Value) -> Option<ValueKind> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(ValueKind::Boolean),
        Value::Number(_) => Some(ValueKind::Number),
        Value::String(_) => Some(ValueKind::String),
        Value::Array(_) => Some(ValueKind::Array),
        Value::Object(_) => Some(ValueKind::Object),
    }
}

/// class-validator's wording, which HighLevel's NestJS server returns verbatim.
fn violation(kind: ValueKind, property: &str) -> String {
    match kind {
        ValueKind::String => format!("{property} must be a string"),
        ValueKind::Boolean => format!("{property} must be a boolean value"),
        ValueKind::Number => format!("{property} {MSG_NUMBER}"),
        ValueKind::Array => format!("{property} must be an array"),
        ValueKind::Object => format!("{property} must be an object"),
    }
}

/// Required query parameters must be non-blank; numeric and boolean ones must parse.
fn check_query(op: &Operation, query: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for param in op.query {
        match query_value(query, param.name).map(str::trim) {
            None | Some("") if param.required => problems.push(format!("{} should not be empty", param.name)),
            None | Some("") => {}
            Some(value) => {
                let fits = match param.kind {
                    ValueKind::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
                    ValueKind::Boolean => matches!(value, "true" | "false"),
                    _ => true,
                };
                if !fits {
                    problems.push(violation(param.kind, param.name));
                }
            }
        }
    }
    problems
}

/// Path parameters the spec leaves undeclared: `{type}` of the bulk-tags operation is `add` or
/// `remove` (its description and `removeAllTags` say so).
fn check_path(op: &Operation, params: &[(&'static str, String)]) -> Vec<String> {
    let bulk_type = params.iter().find(|(name, _)| *name == "type").map(|(_, v)| v.as_str());
    match (op.id, bulk_type) {
        ("create-association", Some("add" | "remove")) => Vec::new(),
        ("create-association", _) => vec!["type must be one of the following values: add, remove".to_owned()],
        _ => Vec::new(),
    }
}

/// Every problem with `body`, one message each, in HighLevel's wording: properties the schema
/// does not list (the server's whitelist), required ones missing or empty, wrong JSON types.
/// An open schema (the spec lists no properties) passes anything.
fn check_body(rules: &Body, body: &Map<String, Value>) -> Vec<String> {
    if rules.open {
        return Vec::new();
    }
    let mut problems: Vec<String> = body
        .keys()
        .filter(|key| !rules.properties.iter().any(|p| p.name == key.as_str()))
        .map(|key| format!("property {key} should not exist"))
        .collect();
    for property in rules.properties {
        let empty = format!("{} should not be empty", property.name);
        match body.get(property.name) {
            None if property.required => problems.push(empty),
            Some(Value::Null) if property.required && !property.nullable => problems.push(empty),
            Some(Value::String(s)) if property.required && s.is_empty() => problems.push(empty),
            // Optional properties accept null (class-validator's @IsOptional): it clears them.
            None | Some(Value::Null) => {}
            Some(value) => {
                if !kind_of(value).is_some_and(|kind| property.accepts(&kind)) {
                    problems.push(violation(property.kind, property.name));
                }
            }
        }
    }
    problems
}

// ------------------------------------------------------------------------------------------------
// Time
// ------------------------------------------------------------------------------------------------

/// `2026-03-10T15:04:05.123Z`, the format of the real API's `dateAdded`/`dateUpdated`.
/// `duration` in whole microseconds, saturating.
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

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
        /// Names lowercased.
        headers: Vec<(String, String)>,
    }

    impl Resp {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
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
        try_raw(server, method, target, headers, body, chunked).expect("a response, not a dropped connection")
    }

    /// [`raw`], but `None` when the server closed the connection without a byte of response.
    fn try_raw(
        server: &MockServer,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        chunked: bool,
    ) -> Option<Resp> {
        try_raw_at(server.addr(), method, target, headers, body, chunked)
    }

    /// [`try_raw`] for a server that is not a [`MockServer`].
    fn try_raw_at(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        chunked: bool,
    ) -> Option<Resp> {
        let mut stream = TcpStream::connect(addr).expect("connect to mock");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if body.is_some() && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            request.push_str("Content-Type: application/json\r\n");
        }
        let mut bytes = Vec::new();
        match body {
            Some(body) if chunked => {
                request.push_str("Transfer-Encoding: chunked\r\n\r\n");
                bytes.extend_from_slice(request.as_bytes());
                for chunk in body.chunks(7) {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            }
            Some(body) => {
                request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                bytes.extend_from_slice(request.as_bytes());
                bytes.extend_from_slice(body);
            }
            None => {
                request.push_str("\r\n");
                bytes.extend_from_slice(request.as_bytes());
            }
        }
        stream.write_all(&bytes).unwrap();
        let response = read_until_closed(&mut stream);
        if response.is_empty() {
            return None;
        }
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("end of response head");
        let head = String::from_utf8_lossy(&response[..split]).to_string();
        let mut payload = response[split + 4..].to_vec();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            payload = dechunk(&payload);
        }
        let body =
            if payload.is_empty() { Value::Null } else { serde_json::from_slice(&payload).expect("JSON response") };
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Some(Resp { status, body, headers })
    }

    /// Everything the server sends until it closes the connection. A reset counts as closed
    /// (a server that closes with unread data resets); a read timeout fails the test.
    fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
        let mut response = Vec::new();
        match stream.read_to_end(&mut response) {
            Ok(_) => response,
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) =>
            {
                response
            }
            Err(e) => panic!("the mock neither answered nor closed the connection: {e}"),
        }
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
    fn unknown_paths_and_methods_are_404() {
        let server = start();
        let r = call(&server, "GET", "/contacts/a/b/c/d/e?x=1", None);
        assert_eq!((r.status, r.body), (404, json!({"statusCode":404,"message":"Cannot GET /contacts/a/b/c/d/e"})));
        assert_eq!(call(&server, "PATCH", "/contacts/x", None).status, 404);
        assert_eq!(call(&server, "GET", "/nothing", None).status, 404);
        assert_eq!(call(&server, "POST", "/contacts/x/tasks/t/completed", Some(json!({}))).status, 404);
        assert_eq!(call(&server, "GET", "/contacts/x/campaigns/c1", None).status, 404);
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
            fault: None,
            body: None,
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

    // --------------------------------------------------------------------------------------------
    // Helpers for the operations added with the table
    // --------------------------------------------------------------------------------------------

    fn contact_id(server: &MockServer, fields: Value) -> String {
        let r = create(server, fields);
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["contact"]["id"].as_str().unwrap().to_owned()
    }

    fn state(server: &MockServer) -> Value {
        raw(server, "GET", "/__mock/state", &[], None, false).body
    }

    /// A value of `kind` that passes validation.
    fn minimal(kind: ValueKind) -> Value {
        match kind {
            ValueKind::String => json!("x"),
            ValueKind::Number => json!(1),
            ValueKind::Boolean => json!(true),
            ValueKind::Array => json!(["x"]),
            ValueKind::Object => json!({}),
        }
    }

    /// The smallest body the table accepts for `op`: its required properties, or `{}`.
    fn valid_body(op: &Operation) -> Option<Value> {
        let rules = op.body?;
        let required = rules.properties.iter().filter(|p| p.required);
        Some(Value::Object(required.map(|p| (p.name.to_owned(), minimal(p.kind))).collect()))
    }

    /// `op`'s path with `contact` as `{contactId}`, `add` as the bulk `{type}`, `x` for the rest.
    fn path_of(op: &Operation, contact: &str) -> String {
        op.render_path(|name| {
            Some(match name {
                "contactId" => contact,
                "type" => "add",
                _ => "x",
            })
        })
        .unwrap()
    }

    fn messages(r: &Resp) -> Vec<String> {
        serde_json::from_value(r.body["message"].clone()).unwrap_or_default()
    }

    fn spec_doc() -> &'static Value {
        static DOC: OnceLock<Value> = OnceLock::new();
        DOC.get_or_init(|| serde_json::from_str(contacts_api::SPEC_JSON).unwrap())
    }

    /// Asserts that `body` fits the success response schema the official spec declares for
    /// `op_id`: types, required properties, nullability, `$ref`s, items. As for request bodies,
    /// a value of the type of the spec's own example is accepted where it contradicts the
    /// declared type (the bulk-tags `responses` items are declared strings, exemplified objects).
    /// Operations whose response has no schema (search, duplicate) pass.
    fn conforms(op_id: &str, body: &Value) {
        let op = contacts_api::op(op_id);
        let doc = spec_doc();
        let method = op.method.as_str().to_ascii_lowercase();
        let response = &doc["paths"][op.path][method]["responses"][op.success_status.to_string()];
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            return;
        }
        let mut errors = Vec::new();
        fit(doc, schema, body, "$", None, &mut errors);
        assert!(errors.is_empty(), "{op_id} does not fit its response schema: {errors:?}\n{body:#}");
    }

    fn json_type(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    fn fit(doc: &Value, schema: &Value, value: &Value, at: &str, example: Option<&Value>, errors: &mut Vec<String>) {
        let schema = match schema["$ref"].as_str() {
            Some(reference) => match reference.strip_prefix('#') {
                Some(pointer) => doc.pointer(pointer).unwrap_or_else(|| panic!("no {reference} in the spec")),
                None => return,
            },
            None => schema,
        };
        if value.is_null() {
            if schema["nullable"] != true {
                errors.push(format!("{at} is null"));
            }
            return;
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            fit(doc, part, value, at, None, errors);
        }
        if let Some(options) = schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
            let fits_one = options.iter().any(|option| {
                let mut inner = Vec::new();
                fit(doc, option, value, at, None, &mut inner);
                inner.is_empty()
            });
            if !fits_one {
                errors.push(format!("{at} fits none of its anyOf/oneOf"));
            }
            return;
        }
        let declared = schema["type"].as_str().or_else(|| schema.get("properties").map(|_| "object"));
        let example = schema.get("example").or(example);
        if let Some(declared) = declared {
            let actual = json_type(value);
            if actual != declared && !(declared == "integer" && actual == "number") {
                if example.is_none_or(|e| json_type(e) != actual) {
                    errors.push(format!("{at} is {actual}, the schema says {declared}"));
                }
                return;
            }
        }
        match value {
            Value::Object(object) => {
                for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if !object.contains_key(required) {
                        errors.push(format!("{at}.{required} is missing"));
                    }
                }
                for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                    if let Some(v) = object.get(name) {
                        fit(doc, property, v, &format!("{at}.{name}"), None, errors);
                    }
                }
            }
            Value::Array(items) => {
                let hint = schema["example"].as_array().and_then(|e| e.first());
                for (i, item) in items.iter().enumerate() {
                    fit(doc, &schema["items"], item, &format!("{at}[{i}]"), hint, errors);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_conformance_checker_catches_wrong_shapes() {
        let panics = |op: &str, body: Value| {
            let op = op.to_owned();
            std::panic::catch_unwind(move || conforms(&op, &body)).is_err()
        };
        assert!(!panics("get-task", json!({ "task": { "id": "t", "completed": true } })));
        assert!(panics("get-task", json!({ "task": { "id": "t", "completed": "yes" } })));
        assert!(panics("get-all-tasks", json!({ "tasks": {} })));
        assert!(panics("add-remove-contact-from-business", json!({ "success": true })));
        assert!(panics("get-contact", json!({ "contact": { "customFields": [{ "id": "a", "value": 1 }] } })));
    }

    // --------------------------------------------------------------------------------------------
    // Validation and routing over the whole table
    // --------------------------------------------------------------------------------------------

    /// Every rule of every operation comes from the table: required query parameters, required
    /// body properties, the whitelist and each property's type.
    #[test]
    fn validation_follows_the_operations_table() {
        let server = start();
        let contact = contact_id(&server, json!({}));
        let mut checked = 0;
        for op in contacts_api::OPERATIONS {
            let path = path_of(op, &contact);
            let method = op.method.as_str();
            let required_query: Vec<String> =
                op.query.iter().filter(|p| p.required).map(|p| format!("{} should not be empty", p.name)).collect();
            if !required_query.is_empty() {
                let r = call(&server, method, &path, None);
                assert_eq!((r.status, messages(&r)), (422, required_query), "{}", op.id);
                checked += 1;
            }
            let Some(rules) = op.body.filter(|rules| !rules.open) else {
                continue;
            };
            let required: Vec<String> = rules
                .properties
                .iter()
                .filter(|p| p.required)
                .map(|p| format!("{} should not be empty", p.name))
                .collect();
            if !required.is_empty() {
                let r = call(&server, method, &path, Some(json!({})));
                assert_eq!((r.status, messages(&r)), (422, required), "{}", op.id);
            }
            let mut body = valid_body(op).unwrap();
            body["__unlisted"] = json!(1);
            let r = call(&server, method, &path, Some(body));
            assert_eq!(
                (r.status, messages(&r)),
                (422, vec!["property __unlisted should not exist".to_owned()]),
                "{}",
                op.id
            );
            for property in rules.properties {
                let wrong = [json!(12345), json!("s"), json!(true), json!([]), json!({})]
                    .into_iter()
                    .find(|v| !property.accepts(&kind_of(v).unwrap()))
                    .unwrap();
                let mut body = valid_body(op).unwrap();
                body[property.name] = wrong;
                let r = call(&server, method, &path, Some(body));
                assert_eq!(
                    (r.status, messages(&r)),
                    (422, vec![violation(property.kind, property.name)]),
                    "{} {}",
                    op.id,
                    property.name
                );
                checked += 1;
            }
        }
        assert!(checked >= 80, "only {checked} rules checked");
        assert_eq!(unauthorized().body["message"], "Invalid token: access token is invalid");
        // A non-object JSON body is a 422, not a parse error.
        let r = call(&server, "POST", &format!("/contacts/{contact}/tags"), Some(json!(["a"])));
        assert_eq!((r.status, messages(&r)), (422, vec!["request body must be a JSON object".to_owned()]));
    }

    #[test]
    fn every_operation_on_an_unknown_contact_is_400() {
        let server = start();
        server.seed_contact(json!({ "id": "real", "locationId": LOC }));
        let mut seen = 0;
        for op in contacts_api::OPERATIONS.iter().filter(|op| op.path_params().any(|p| p == "contactId")) {
            let r = call(&server, op.method.as_str(), &path_of(op, "ghost"), valid_body(op));
            assert_eq!(
                (r.status, r.body),
                (400, json!({"statusCode":400,"message":"Contact with id ghost not found"})),
                "{}",
                op.id
            );
            seen += 1;
        }
        assert_eq!(seen, 24);
        // Nothing was created or changed for the unknown contact.
        let s = state(&server);
        assert_eq!(s["notes"], json!([]));
        assert_eq!(s["tasks"], json!([]));
        assert_eq!((&s["campaigns"], &s["workflows"], &s["followers"]), (&json!({}), &json!({}), &json!({})));
    }

    #[test]
    fn write_operations_need_the_write_scope() {
        let server =
            MockServer::start(MockOptions { scopes: vec![Scope::ContactsReadonly], ..MockOptions::default() }).unwrap();
        let id = server.seed_contact(json!({ "locationId": LOC, "tags": ["a"] }));
        let forbidden =
            json!({"statusCode":403,"message":"The token is not authorized for this scope.","error":"Forbidden"});
        for op in contacts_api::OPERATIONS {
            let r = call(&server, op.method.as_str(), &path_of(op, &id), valid_body(op));
            if op.scope == Scope::ContactsWrite {
                assert_eq!((r.status, &r.body), (403, &forbidden), "{}", op.id);
            } else {
                assert_ne!(r.status, 403, "{}", op.id);
            }
        }
        // The two bulk operations declare no scope in the spec; they write, so they need write.
        let r = call(
            &server,
            "POST",
            "/contacts/bulk/tags/update/remove",
            Some(json!({ "contacts": [id], "tags": ["a"], "locationId": LOC })),
        );
        assert_eq!(r.status, 403);
        assert_eq!(server.contacts()[0]["tags"], json!(["a"]), "nothing was written");
        let r = call(&server, "POST", "/contacts/search", Some(json!({ "locationId": LOC, "pageLimit": 10 })));
        assert_eq!((r.status, &r.body["total"]), (200, &json!(1)), "search is a read");
    }

    // --------------------------------------------------------------------------------------------
    // Contacts
    // --------------------------------------------------------------------------------------------

    #[test]
    fn delete_contact_removes_it_and_everything_of_it() {
        let server = start();
        let id = contact_id(&server, json!({ "firstName": "Ada" }));
        let other = contact_id(&server, json!({ "email": "o@x.com" }));
        let base = format!("/contacts/{id}");
        assert_eq!(call(&server, "POST", &format!("{base}/notes"), Some(json!({ "body": "n" }))).status, 201);
        let task = json!({ "title": "t", "dueDate": "2020-10-25T11:00:00Z", "completed": false });
        assert_eq!(call(&server, "POST", &format!("{base}/tasks"), Some(task)).status, 201);
        assert_eq!(call(&server, "POST", &format!("{base}/campaigns/c1"), Some(json!({}))).status, 201);
        assert_eq!(call(&server, "POST", &format!("{base}/workflow/w1"), Some(json!({}))).status, 200);
        assert_eq!(
            call(&server, "POST", &format!("{base}/followers"), Some(json!({ "followers": ["u1"] }))).status,
            201
        );
        server.seed_appointment(&id, json!({ "title": "Call" }));
        assert_eq!(
            call(&server, "POST", &format!("/contacts/{other}/notes"), Some(json!({ "body": "kept" }))).status,
            201
        );

        let r = call(&server, "DELETE", &base, None);
        assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
        conforms("delete-contact", &r.body);
        let r = call(&server, "GET", &base, None);
        assert_eq!((r.status, &r.body["message"]), (400, &json!(format!("Contact with id {id} not found"))));
        assert_eq!(call(&server, "DELETE", &base, None).status, 400);
        assert_eq!(server.contacts().len(), 1);
        assert_eq!(server.notes().iter().map(|n| n["body"].clone()).collect::<Vec<_>>(), [json!("kept")]);
        assert!(server.tasks().is_empty() && server.appointments().is_empty());
        let s = state(&server);
        assert_eq!((&s["campaigns"], &s["workflows"], &s["followers"]), (&json!({}), &json!({}), &json!({})));
    }

    #[test]
    fn custom_fields_are_written_as_field_value_and_read_as_value() {
        let server = start();
        let r = create(
            &server,
            json!({ "email": "ada@x.com", "customFields": [
                { "id": "abc", "field_value": "x" },
                { "key": "fav_color", "field_value": "blue" },
                { "id": "num", "key": "age", "field_value": "42" },
                { "field_value": "no id, no key: ignored" },
            ]}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        conforms("create-contact", &r.body);
        assert_eq!(
            r.body["contact"]["customFields"],
            json!([{ "id": "abc", "value": "x" }, { "id": "cf_fav_color", "value": "blue" }, { "id": "num", "value": "42" }])
        );
        let id = r.body["contact"]["id"].as_str().unwrap().to_owned();

        // A key maps to the id it already has; "" clears; fields not mentioned are kept.
        let r = call(
            &server,
            "PUT",
            &format!("/contacts/{id}"),
            Some(json!({ "customFields": [
                { "key": "fav_color", "field_value": "red" },
                { "key": "age", "field_value": "43" },
                { "id": "abc", "field_value": "" },
            ]})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        conforms("update-contact", &r.body);
        let expected = json!([{ "id": "cf_fav_color", "value": "red" }, { "id": "num", "value": "43" }]);
        assert_eq!(r.body["contact"]["customFields"], expected);
        let got = call(&server, "GET", &format!("/contacts/{id}"), None);
        conforms("get-contact", &got.body);
        assert_eq!(got.body["contact"]["customFields"], expected);
        assert!(!got.body.to_string().contains("field_value"));

        let r = call(
            &server,
            "POST",
            "/contacts/upsert",
            Some(
                json!({ "locationId": LOC, "email": "ada@x.com", "customFields": [{ "id": "num", "field_value": null }, { "id": "new", "field_value": "v" }] }),
            ),
        );
        conforms("upsert-contact", &r.body);
        assert_eq!(
            (&r.body["new"], &r.body["contact"]["customFields"]),
            (&json!(false), &json!([{ "id": "cf_fav_color", "value": "red" }, { "id": "new", "value": "v" }]))
        );
        // Seeds take the read shape too; a new contact starts with none.
        let seeded = server.seed_contact(json!({ "locationId": LOC, "customFields": [{ "id": "s", "value": "1" }] }));
        let got = call(&server, "GET", &format!("/contacts/{seeded}"), None);
        assert_eq!(got.body["contact"]["customFields"], json!([{ "id": "s", "value": "1" }]));
        assert_eq!(create(&server, json!({})).body["contact"]["customFields"], json!([]));
    }

    // --------------------------------------------------------------------------------------------
    // Search and lists
    // --------------------------------------------------------------------------------------------

    fn search(server: &MockServer, body: Value) -> Resp {
        call(server, "POST", "/contacts/search", Some(body))
    }

    fn first_names(r: &Resp) -> Vec<String> {
        r.body["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["firstName"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// Ada, Bob and Cy in [`LOC`], another Ada elsewhere.
    fn search_fixture() -> MockServer {
        let server = start();
        create(
            &server,
            json!({ "firstName": "Ada", "lastName": "Lovelace", "email": "ada@x.com", "phone": "+13125550101",
                    "tags": ["vip", "lead"], "customFields": [{ "id": "cf1", "field_value": "gold" }] }),
        );
        create(&server, json!({ "firstName": "Bob", "email": "bob@y.com", "phone": "+13125550102", "tags": ["lead"] }));
        create(&server, json!({ "firstName": "Cy", "tags": [] }));
        call(&server, "POST", "/contacts/", Some(json!({ "locationId": "elsewhere", "firstName": "Ada" })));
        server
    }

    #[test]
    fn search_filters_and_query() {
        let server = search_fixture();
        let find = |filters: Value| {
            let r = search(&server, json!({ "locationId": LOC, "pageLimit": 100, "filters": filters }));
            assert_eq!(r.status, 200, "{}", r.body);
            first_names(&r)
        };
        let leaf =
            |field: &str, operator: &str, value: Value| json!({ "field": field, "operator": operator, "value": value });
        assert_eq!(find(json!([leaf("firstName", "eq", json!("ADA"))])), ["Ada"]);
        assert_eq!(find(json!([leaf("tags", "eq", json!("vip"))])), ["Ada"]);
        assert_eq!(find(json!([leaf("tags", "eq", json!(["vip", "lead"]))])), ["Ada", "Bob"]);
        assert_eq!(find(json!([leaf("firstName", "not_eq", json!("ada"))])), ["Bob", "Cy"]);
        assert_eq!(find(json!([leaf("email", "contains", json!("@x."))])), ["Ada"]);
        assert_eq!(find(json!([leaf("email", "not_contains", json!("@x."))])), ["Bob", "Cy"]);
        assert_eq!(find(json!([{ "field": "email", "operator": "exists" }])), ["Ada", "Bob"]);
        assert_eq!(find(json!([{ "field": "email", "operator": "not_exists" }])), ["Cy"]);
        assert_eq!(find(json!([{ "field": "tags", "operator": "exists" }])), ["Ada", "Bob"], "[] does not exist");
        assert_eq!(find(json!([leaf("customFields.cf1", "eq", json!("gold"))])), ["Ada"]);
        assert_eq!(find(json!([leaf("phone", "range", json!({ "gte": "+13125550102" }))])), ["Bob"]);
        // Top-level filters are ANDed; groups are AND or OR and nest.
        assert_eq!(
            find(json!([leaf("tags", "eq", json!("lead")), leaf("email", "contains", json!("y.com"))])),
            ["Bob"]
        );
        assert_eq!(
            find(
                json!([{ "group": "OR", "filters": [leaf("firstName", "eq", json!("bob")), leaf("tags", "eq", json!("vip"))] }])
            ),
            ["Ada", "Bob"]
        );
        assert_eq!(
            find(json!([{ "group": "AND", "filters": [
                leaf("tags", "eq", json!("lead")),
                { "group": "OR", "filters": [leaf("firstName", "eq", json!("cy")), leaf("email", "contains", json!("bob"))] },
            ]}])),
            ["Bob"]
        );
        assert_eq!(find(json!([])), ["Ada", "Bob", "Cy"]);

        let q =
            |query: &str| first_names(&search(&server, json!({ "locationId": LOC, "pageLimit": 10, "query": query })));
        assert_eq!(q("lovelace"), ["Ada"]);
        assert_eq!(q("BOB@"), ["Bob"]);
        assert_eq!(q("555 0102"), ["Bob"]);
        assert_eq!(q("3125550"), ["Ada", "Bob"]);
        let r = search(&server, json!({ "locationId": "elsewhere", "pageLimit": 10 }));
        assert_eq!((first_names(&r), &r.body["total"]), (vec!["Ada".to_owned()], &json!(1)));
    }

    #[test]
    fn search_sorts_and_pages() {
        let server = search_fixture();
        let r = search(
            &server,
            json!({ "locationId": LOC, "pageLimit": 10, "sort": [{ "field": "firstName", "direction": "desc" }] }),
        );
        assert_eq!(first_names(&r), ["Cy", "Bob", "Ada"]);
        let r = search(
            &server,
            json!({ "locationId": LOC, "pageLimit": 10, "sort": [{ "field": "email", "direction": "asc" }] }),
        );
        assert_eq!(first_names(&r), ["Ada", "Bob", "Cy"], "missing values sort last");

        let page = |n: u64| search(&server, json!({ "locationId": LOC, "page": n, "pageLimit": 2 }));
        let first = page(1);
        assert_eq!(
            (first.status, first_names(&first), &first.body["total"]),
            (200, vec!["Ada".to_owned(), "Bob".into()], &json!(3))
        );
        let keys: Vec<&String> = first.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["contacts", "total"]);
        assert_eq!(first_names(&page(2)), ["Cy"]);
        assert_eq!((first_names(&page(3)).len(), &page(3).body["total"]), (0, &json!(3)));
        // Each contact carries its cursor; `searchAfter` continues after it.
        let cursor = first.body["contacts"][1]["searchAfter"].clone();
        assert_eq!(cursor[1], first.body["contacts"][1]["id"]);
        assert!(cursor[0].as_u64().unwrap() > 1_600_000_000_000);
        let r = search(&server, json!({ "locationId": LOC, "pageLimit": 2, "searchAfter": cursor }));
        assert_eq!(first_names(&r), ["Cy"]);
        assert_eq!(search(&server, json!({ "locationId": LOC, "pageLimit": 500 })).status, 200);
    }

    #[test]
    fn search_validation_is_422() {
        let server = search_fixture();
        let problems = |body: Value| {
            let r = search(&server, body);
            assert_eq!((r.status, &r.body["error"]), (422, &json!("Unprocessable Entity")), "{}", r.body);
            messages(&r)
        };
        assert_eq!(
            problems(json!({ "locationId": LOC, "pageLimit": 501 })),
            ["pageLimit must not be greater than 500"]
        );
        assert_eq!(problems(json!({})), ["locationId should not be empty", "pageLimit should not be empty"]);
        assert_eq!(
            problems(json!({ "locationId": LOC, "pageLimit": "10", "page": 0 })),
            ["pageLimit must be a number conforming to the specified constraints", "page must not be less than 1"]
        );
        assert_eq!(
            problems(json!({ "locationId": LOC, "pageLimit": 10, "filters": [{ "field": "email", "operator": "like", "value": "a" }] })),
            ["filters.operator must be one of the following values: eq, not_eq, contains, not_contains, exists, not_exists, range"]
        );
        assert_eq!(
            problems(
                json!({ "locationId": LOC, "pageLimit": 10, "filters": [{ "group": "XOR", "filters": [{ "field": "email", "operator": "eq" }] }] })
            ),
            ["filters.group must be one of the following values: AND, OR", "filters.value should not be empty"]
        );
        assert_eq!(
            problems(json!({ "locationId": LOC, "pageLimit": 10, "sort": [{ "field": "email", "direction": "up" }] })),
            ["sort.direction must be one of the following values: asc, desc"]
        );
    }

    #[test]
    fn deprecated_list_pages_by_creation_order() {
        let server = start();
        let ids: Vec<String> = (1..=5)
            .map(|i| {
                server.seed_contact(json!({ "locationId": LOC, "firstName": format!("C{i}"), "dateAdded": format!("2024-01-01T00:00:0{i}.000Z") }))
            })
            .collect();
        server.seed_contact(json!({ "locationId": "elsewhere", "firstName": "Other" }));
        let ms = |i: usize| 1_704_067_200_000u64 + 1000 * i as u64;
        let list = |query: &str| {
            let r = call(&server, "GET", &format!("/contacts/?locationId={LOC}{query}"), None);
            assert_eq!(r.status, 200, "{}", r.body);
            conforms("get-contacts", &r.body);
            r
        };

        let first = list("&limit=2");
        assert_eq!(first_names(&first), ["C1", "C2"]);
        assert_eq!(first.body["count"], 5);
        let next_url = format!(
            "{}/contacts/?locationId={LOC}&startAfter={}&startAfterId={}&limit=2",
            server.base_url(),
            ms(2),
            ids[1]
        );
        assert_eq!(
            first.body["meta"],
            json!({ "total": 5, "nextPageUrl": next_url, "startAfterId": ids[1], "startAfter": ms(2),
                    "currentPage": 1, "nextPage": 2, "prevPage": null })
        );
        // Page 2 from the previous page's startAfterId + startAfter, and again from nextPageUrl.
        let second = list(&format!("&limit=2&startAfterId={}&startAfter={}", ids[1], ms(2)));
        assert_eq!(first_names(&second), ["C3", "C4"]);
        assert_eq!(
            (&second.body["meta"]["currentPage"], &second.body["meta"]["prevPage"], &second.body["meta"]["nextPage"]),
            (&json!(2), &json!(1), &json!(3))
        );
        let followed = call(&server, "GET", next_url.strip_prefix(&server.base_url()).unwrap(), None);
        assert_eq!(followed.body, second.body);
        let third = list(&format!("&limit=2&startAfterId={}&startAfter={}", ids[3], ms(4)));
        assert_eq!(first_names(&third), ["C5"]);
        assert_eq!((&third.body["meta"]["nextPage"], &third.body["meta"]["nextPageUrl"]), (&Value::Null, &Value::Null));
        // startAfter alone: contacts added after that instant.
        assert_eq!(first_names(&list(&format!("&startAfter={}", ms(3)))), ["C4", "C5"]);
        // Default limit 20; free-text query.
        assert_eq!(first_names(&list("")).len(), 5);
        let r = list("&query=c3");
        assert_eq!((first_names(&r), &r.body["count"]), (vec!["C3".to_owned()], &json!(1)));

        let problems = |target: &str| {
            let r = call(&server, "GET", target, None);
            assert_eq!(r.status, 422);
            messages(&r)
        };
        assert_eq!(problems(&format!("/contacts/?locationId={LOC}&limit=101")), ["limit must not be greater than 100"]);
        assert_eq!(
            problems(&format!("/contacts/?locationId={LOC}&limit=ten")),
            ["limit must be a number conforming to the specified constraints"]
        );
        assert_eq!(problems("/contacts/?limit=5"), ["locationId should not be empty"]);
    }

    #[test]
    fn bulk_business_sets_and_clears_and_lists() {
        let server = start();
        let a = contact_id(&server, json!({ "firstName": "A" }));
        let b = contact_id(&server, json!({ "firstName": "B" }));
        contact_id(&server, json!({ "firstName": "C" }));
        let elsewhere = server.seed_contact(json!({ "locationId": "elsewhere" }));
        let r = call(
            &server,
            "POST",
            "/contacts/bulk/business",
            Some(json!({ "locationId": LOC, "ids": [a, b, "ghost", elsewhere], "businessId": "biz1" })),
        );
        assert_eq!((r.status, &r.body), (200, &json!({ "success": true, "ids": [a, b] })));
        conforms("add-remove-contact-from-business", &r.body);
        assert_eq!(call(&server, "GET", &format!("/contacts/{a}"), None).body["contact"]["businessId"], "biz1");

        let list = |query: &str| {
            let r = call(&server, "GET", &format!("/contacts/business/biz1?locationId={LOC}{query}"), None);
            assert_eq!(r.status, 200, "{}", r.body);
            conforms("get-contacts-by-businessId", &r.body);
            r
        };
        let r = list("");
        assert_eq!((first_names(&r), &r.body["count"]), (vec!["A".to_owned(), "B".into()], &json!(2)));
        let r = list("&limit=1&skip=1");
        assert_eq!((first_names(&r), &r.body["count"]), (vec!["B".to_owned()], &json!(2)));
        assert_eq!(first_names(&list("&query=a")), ["A"]);
        let r = call(&server, "GET", &format!("/contacts/business/biz1?locationId={LOC}&limit=x"), None);
        assert_eq!((r.status, messages(&r)), (422, vec!["limit must be a number string".to_owned()]));
        let r = call(&server, "GET", "/contacts/business/biz1", None);
        assert_eq!((r.status, messages(&r)), (422, vec!["locationId should not be empty".to_owned()]));

        // null clears.
        let r = call(
            &server,
            "POST",
            "/contacts/bulk/business",
            Some(json!({ "locationId": LOC, "ids": [a], "businessId": null })),
        );
        assert_eq!((r.status, &r.body), (200, &json!({ "success": true, "ids": [a] })));
        assert!(call(&server, "GET", &format!("/contacts/{a}"), None).body["contact"].get("businessId").is_none());
        assert_eq!(first_names(&list("")), ["B"]);
        let r = call(&server, "POST", "/contacts/bulk/business", Some(json!({ "locationId": LOC, "ids": [a] })));
        assert_eq!((r.status, messages(&r)), (422, vec!["businessId should not be empty".to_owned()]));
    }

    // --------------------------------------------------------------------------------------------
    // Tags, notes, tasks, appointments, followers, campaigns, workflows
    // --------------------------------------------------------------------------------------------

    #[test]
    fn bulk_tags_add_and_remove_with_per_item_errors() {
        let server = start();
        let a = contact_id(&server, json!({ "tags": ["t1"] }));
        let b = contact_id(&server, json!({ "email": "b@x.com" }));
        let elsewhere = server.seed_contact(json!({ "locationId": "elsewhere" }));
        let r = call(
            &server,
            "POST",
            "/contacts/bulk/tags/update/add",
            Some(json!({ "contacts": [a, "ghost", b, elsewhere], "tags": ["t2", "t1"], "locationId": LOC })),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        conforms("create-association", &r.body);
        assert_eq!(
            r.body,
            json!({ "succeded": true, "errorCount": 2, "responses": [
                { "contactId": a, "message": "Tags updated", "type": "success", "oldTags": ["t1"], "tagsAdded": ["t2"], "tagsRemoved": [] },
                { "contactId": "ghost", "message": "Contact with id ghost not found", "type": "error" },
                { "contactId": b, "message": "Tags updated", "type": "success", "oldTags": [], "tagsAdded": ["t2", "t1"], "tagsRemoved": [] },
                { "contactId": elsewhere, "message": "contact does not belong to location", "type": "error" },
            ]})
        );
        let tags = |id: &str| call(&server, "GET", &format!("/contacts/{id}"), None).body["contact"]["tags"].clone();
        assert_eq!((tags(&a), tags(&b)), (json!(["t1", "t2"]), json!(["t2", "t1"])));

        let r = call(
            &server,
            "POST",
            "/contacts/bulk/tags/update/remove",
            Some(json!({ "contacts": [a], "tags": ["t1", "zz"], "locationId": LOC })),
        );
        assert_eq!((r.status, &r.body["errorCount"]), (201, &json!(0)));
        assert_eq!(
            (&r.body["responses"][0]["tagsRemoved"], &r.body["responses"][0]["oldTags"]),
            (&json!(["t1"]), &json!(["t1", "t2"]))
        );
        assert_eq!(tags(&a), json!(["t2"]));
        let r = call(
            &server,
            "POST",
            "/contacts/bulk/tags/update/remove",
            Some(json!({ "contacts": [b], "tags": [], "locationId": LOC, "removeAllTags": true })),
        );
        assert_eq!((r.status, &r.body["responses"][0]["tagsRemoved"]), (201, &json!(["t2", "t1"])));
        assert_eq!(tags(&b), json!([]));

        let r = call(
            &server,
            "POST",
            "/contacts/bulk/tags/update/add",
            Some(json!({ "contacts": [a], "tags": ["x"], "locationId": LOC, "removeAllTags": true })),
        );
        assert_eq!((r.status, messages(&r)), (422, vec!["removeAllTags can only be used with remove type".to_owned()]));
        let r = call(
            &server,
            "POST",
            "/contacts/bulk/tags/update/toggle",
            Some(json!({ "contacts": [a], "tags": ["x"], "locationId": LOC })),
        );
        assert_eq!(
            (r.status, messages(&r)),
            (422, vec!["type must be one of the following values: add, remove".to_owned()])
        );
        assert_eq!(tags(&a), json!(["t2"]));
    }

    #[test]
    fn remove_tags_answers_what_is_left() {
        let server = start();
        let id = contact_id(&server, json!({ "tags": ["a", "b", "c"] }));
        let r = call(&server, "DELETE", &format!("/contacts/{id}/tags"), Some(json!({ "tags": ["b", "zz"] })));
        assert_eq!((r.status, &r.body), (200, &json!({ "tags": ["a", "c"] })));
        conforms("remove-tags", &r.body);
        assert_eq!(server.contacts()[0]["tags"], json!(["a", "c"]));
        let r = call(&server, "DELETE", &format!("/contacts/{id}/tags"), None);
        assert_eq!((r.status, messages(&r)), (422, vec!["tags should not be empty".to_owned()]));
        let r = call(&server, "POST", &format!("/contacts/{id}/tags"), Some(json!({ "tags": ["d"] })));
        conforms("add-tags", &r.body);
    }

    #[test]
    fn delete_note() {
        let server = start();
        let id = contact_id(&server, json!({}));
        let other = contact_id(&server, json!({ "email": "o@x.com" }));
        let note = call(&server, "POST", &format!("/contacts/{id}/notes"), Some(json!({ "body": "n" })));
        conforms("create-note", &note.body);
        let note = note.body["note"]["id"].as_str().unwrap().to_owned();
        let r = call(&server, "DELETE", &format!("/contacts/{other}/notes/{note}"), None);
        assert_eq!((r.status, &r.body["message"]), (400, &json!(format!("Note with id {note} not found"))));
        let r = call(&server, "DELETE", &format!("/contacts/{id}/notes/{note}"), None);
        assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
        conforms("delete-note", &r.body);
        assert!(server.notes().is_empty());
        assert_eq!(call(&server, "GET", &format!("/contacts/{id}/notes/{note}"), None).status, 400);
        let r = call(&server, "GET", &format!("/contacts/{id}/notes"), None);
        assert_eq!((r.status, &r.body), (200, &json!({ "notes": [] })));
        conforms("get-all-notes", &r.body);
    }

    #[test]
    fn tasks_lifecycle() {
        let server = start();
        let id = contact_id(&server, json!({}));
        let other = contact_id(&server, json!({ "email": "o@x.com" }));
        let tasks = format!("/contacts/{id}/tasks");
        let r = call(
            &server,
            "POST",
            &tasks,
            Some(
                json!({ "title": "Call back", "body": "re: quote", "dueDate": "2020-10-25T11:00:00Z", "completed": false, "assignedTo": "u1" }),
            ),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        conforms("create-task", &r.body);
        let task = json!({ "id": "task0000000000000001", "title": "Call back", "body": "re: quote", "assignedTo": "u1",
                           "dueDate": "2020-10-25T11:00:00Z", "completed": false, "contactId": id });
        assert_eq!(r.body, json!({ "task": task }));
        let r = call(&server, "POST", &tasks, Some(json!({ "title": "t" })));
        assert_eq!(
            (r.status, messages(&r)),
            (422, vec!["completed should not be empty".to_owned(), "dueDate should not be empty".into()])
        );
        call(
            &server,
            "POST",
            &tasks,
            Some(json!({ "title": "Second", "dueDate": "2020-10-26T11:00:00Z", "completed": true })),
        );

        let r = call(&server, "GET", &tasks, None);
        assert_eq!((r.status, r.body["tasks"].as_array().unwrap().len()), (200, 2));
        conforms("get-all-tasks", &r.body);
        let one = format!("{tasks}/task0000000000000001");
        let r = call(&server, "GET", &one, None);
        assert_eq!((r.status, &r.body["task"]), (200, &task));
        conforms("get-task", &r.body);
        let r = call(&server, "PUT", &one, Some(json!({ "title": "Call back today", "body": null })));
        assert_eq!(r.status, 200);
        conforms("update-task", &r.body);
        assert_eq!((&r.body["task"]["title"], r.body["task"].get("body")), (&json!("Call back today"), None));
        let r = call(&server, "PUT", &format!("{one}/completed"), Some(json!({ "completed": true })));
        assert_eq!(
            (r.status, &r.body["task"]["completed"], &r.body["task"]["title"]),
            (200, &json!(true), &json!("Call back today"))
        );
        conforms("update-task-completed", &r.body);
        let r = call(&server, "PUT", &format!("{one}/completed"), Some(json!({})));
        assert_eq!((r.status, messages(&r)), (422, vec!["completed should not be empty".to_owned()]));

        // Another contact's task is not found through this contact, and vice versa.
        let r = call(&server, "GET", &format!("/contacts/{other}/tasks/task0000000000000001"), None);
        assert_eq!(
            (r.status, r.body),
            (400, json!({"statusCode":400,"message":"Task with id task0000000000000001 not found"}))
        );
        assert_eq!(call(&server, "GET", &format!("/contacts/{other}/tasks"), None).body, json!({ "tasks": [] }));
        let r = call(&server, "DELETE", &one, None);
        assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
        conforms("delete-task", &r.body);
        assert_eq!(call(&server, "DELETE", &one, None).status, 400);
        assert_eq!(server.tasks().iter().map(|t| t["title"].clone()).collect::<Vec<_>>(), [json!("Second")]);
        assert_eq!(state(&server)["tasks"][0]["id"], "task0000000000000002");
    }

    #[test]
    fn appointments_are_seeded_and_listed() {
        let server = start();
        let id = contact_id(&server, json!({}));
        let other = contact_id(&server, json!({ "email": "o@x.com" }));
        let event = json!({ "calendarId": "cal1", "title": "Demo", "status": "booked", "appointmentStatus": "confirmed",
                            "startTime": "2021-07-16 11:00:00", "endTime": "2021-07-16 11:30:00", "users": ["u1"] });
        let first = server.seed_appointment(&id, event.clone());
        assert_eq!(first, "event000000000000001");
        server.seed_appointment(&other, json!({ "title": "Other" }));
        assert_eq!(server.seed_appointment(&id, json!({ "id": "mine", "title": "Later" })), "mine");
        let r = call(&server, "GET", &format!("/contacts/{id}/appointments"), None);
        assert_eq!(r.status, 200);
        conforms("get-appointments-for-contact", &r.body);
        let events = r.body["events"].as_array().unwrap();
        assert_eq!(events.iter().map(|e| e["title"].clone()).collect::<Vec<_>>(), [json!("Demo"), json!("Later")]);
        let mut expected = event;
        expected["id"] = json!(first);
        expected["contactId"] = json!(id);
        expected["locationId"] = json!(LOC);
        assert_eq!(events[0], expected);
        assert_eq!(server.appointments().len(), 3);
        assert_eq!(state(&server)["appointments"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn followers_add_and_remove() {
        let server = start();
        let id = contact_id(&server, json!({}));
        let followers = format!("/contacts/{id}/followers");
        let r = call(&server, "POST", &followers, Some(json!({ "followers": ["u1", "u2"] })));
        assert_eq!((r.status, &r.body), (201, &json!({ "followers": ["u1", "u2"], "followersAdded": ["u1", "u2"] })));
        conforms("add-followers-contact", &r.body);
        let r = call(&server, "POST", &followers, Some(json!({ "followers": ["u2", "u3", "u3"] })));
        assert_eq!(r.body, json!({ "followers": ["u1", "u2", "u3"], "followersAdded": ["u3"] }));
        let r = call(&server, "DELETE", &followers, Some(json!({ "followers": ["u1", "u9"] })));
        assert_eq!((r.status, &r.body), (200, &json!({ "followers": ["u2", "u3"], "followersRemoved": ["u1"] })));
        conforms("remove-followers-contact", &r.body);
        assert_eq!(state(&server)["followers"], json!({ id.clone(): ["u2", "u3"] }));
        let r = call(&server, "DELETE", &followers, Some(json!({})));
        assert_eq!((r.status, messages(&r)), (422, vec!["followers should not be empty".to_owned()]));
    }

    #[test]
    fn campaigns_and_workflows_are_tracked() {
        let server = start();
        let id = contact_id(&server, json!({}));
        let campaigns = format!("/contacts/{id}/campaigns");
        // The body is an empty (open) object; a missing one is fine too.
        let r = call(&server, "POST", &format!("{campaigns}/c1"), Some(json!({})));
        assert_eq!((r.status, &r.body), (201, &json!({ "succeded": true })));
        conforms("add-contact-to-campaign", &r.body);
        assert_eq!(call(&server, "POST", &format!("{campaigns}/c2"), None).status, 201);
        assert_eq!(call(&server, "POST", &format!("{campaigns}/c3"), None).status, 201);
        assert_eq!(call(&server, "POST", &format!("{campaigns}/c1"), None).status, 201, "enrolling twice is harmless");
        assert_eq!(state(&server)["campaigns"], json!({ id.clone(): ["c1", "c2", "c3"] }));
        let r = call(&server, "DELETE", &format!("{campaigns}/c2"), None);
        assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
        conforms("remove-contact-from-campaign", &r.body);
        assert_eq!(state(&server)["campaigns"], json!({ id.clone(): ["c1", "c3"] }));
        let r = call(&server, "DELETE", &format!("{campaigns}/removeAll"), None);
        assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
        conforms("remove-contact-from-every-campaign", &r.body);
        assert_eq!(state(&server)["campaigns"], json!({}));

        let workflow = format!("/contacts/{id}/workflow");
        let r = call(
            &server,
            "POST",
            &format!("{workflow}/w1"),
            Some(json!({ "eventStartTime": "2021-06-23T03:30:00+01:00" })),
        );
        assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
        conforms("add-contact-to-workflow", &r.body);
        call(&server, "POST", &format!("{workflow}/w2"), None);
        assert_eq!(
            state(&server)["workflows"],
            json!({ id.clone(): [{ "workflowId": "w1", "eventStartTime": "2021-06-23T03:30:00+01:00" }, { "workflowId": "w2" }] })
        );
        let r = call(
            &server,
            "DELETE",
            &format!("{workflow}/w1"),
            Some(json!({ "eventStartTime": "2021-06-23T03:30:00+01:00" })),
        );
        assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
        conforms("delete-contact-from-workflow", &r.body);
        assert_eq!(state(&server)["workflows"], json!({ id.clone(): [{ "workflowId": "w2" }] }));
        let r = call(&server, "POST", &format!("{workflow}/w3"), Some(json!({ "eventStartTime": 5 })));
        assert_eq!((r.status, messages(&r)), (422, vec!["eventStartTime must be a string".to_owned()]));
    }

    // --------------------------------------------------------------------------------------------
    // Concurrency instrumentation: in-flight count, read gate, latency
    // --------------------------------------------------------------------------------------------

    /// `n` authorized GETs of `target`, each from its own thread, all started at once.
    fn concurrent_gets(server: &MockServer, target: &str, n: usize) -> Vec<Resp> {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..n).map(|_| scope.spawn(|| call(server, "GET", target, None))).collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    /// Polls `condition` (no assertion on how long it takes, only a generous bound against hangs).
    fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !condition() {
            assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `(batches released, GETs waiting)` of the read gate.
    fn gate(server: &MockServer) -> (u64, usize) {
        let gate = server.state().gate_lock();
        (gate.generation, gate.waiting)
    }

    #[test]
    fn read_gate_releases_full_batches_together() {
        let server = start();
        let id = server.seed_contact(json!({ "locationId": LOC }));
        // Far beyond the test client's 10 s read timeout: a GET released by the fallback rather
        // than by its batch would fail the test instead of passing slowly.
        server.state().gate_lock().fallback = Duration::from_secs(60);
        server.hold_reads_until(4);
        let target = format!("/contacts/{id}");
        for batch in 1..=2 {
            server.reset_in_flight_max();
            assert_eq!(server.in_flight_max(), 0);
            let replies = concurrent_gets(&server, &target, 4);
            assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
            assert_eq!(server.in_flight_max(), 4);
            assert_eq!(gate(&server), (batch, 0), "released by the gate, which re-armed");
        }
        assert_eq!(state(&server)["inFlightMax"], 4, "the debug routes are not counted");

        // Writes and the debug routes are never held (a held one would hit the read timeout).
        assert_eq!(create(&server, json!({})).status, 201);
        assert_eq!(raw(&server, "GET", "/__mock/requests", &[], None, false).status, 200);
        assert_eq!(server.in_flight_max(), 4);
        server.hold_reads_until(0);
        assert_eq!(call(&server, "GET", &target, None).status, 200);
        assert_eq!(gate(&server), (2, 0));
        assert_eq!(server.requests().len(), 10);
    }

    #[test]
    fn a_lone_read_proceeds_after_the_fallback() {
        let server = start();
        let id = server.seed_contact(json!({ "locationId": LOC }));
        let fallback = Duration::from_millis(200);
        server.state().gate_lock().fallback = fallback;
        server.hold_reads_until(4);
        // A sequential client: each GET waits out the fallback alone, and never counts towards
        // the next one's batch.
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let r = call(&server, "GET", &format!("/contacts/{id}"), None);
            assert!(started.elapsed() >= fallback, "{:?}", started.elapsed());
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(gate(&server), (0, 0));
        }
        assert_eq!(server.in_flight_max(), 1);
    }

    #[test]
    fn lowering_or_disabling_the_gate_releases_held_reads() {
        let server = start();
        server.state().gate_lock().fallback = Duration::from_secs(60);
        server.hold_reads_until(3);
        std::thread::scope(|scope| {
            let held: Vec<_> = (0..2).map(|_| scope.spawn(|| call(&server, "GET", "/contacts/ghost", None))).collect();
            wait_until("two held GETs", || gate(&server) == (0, 2));
            // Held requests are in flight.
            assert_eq!(server.state().in_flight.load(AtomicOrdering::SeqCst), 2);
            assert_eq!(server.in_flight_max(), 2);
            server.hold_reads_until(2);
            for thread in held {
                assert_eq!(thread.join().unwrap().status, 400);
            }
        });
        assert_eq!(gate(&server), (1, 0));

        std::thread::scope(|scope| {
            let held = scope.spawn(|| call(&server, "GET", "/contacts/ghost", None));
            wait_until("one held GET", || gate(&server) == (1, 1));
            server.hold_reads_until(0);
            assert_eq!(held.join().unwrap().status, 400);
        });
        assert_eq!(gate(&server), (2, 0));
        assert_eq!(server.state().in_flight.load(AtomicOrdering::SeqCst), 0);
        assert_eq!(server.in_flight_max(), 2);
    }

    #[test]
    fn latency_delays_every_api_request() {
        let latency = Duration::from_millis(150);
        let server = MockServer::start(MockOptions { latency, ..MockOptions::default() }).unwrap();
        assert_eq!(server.state().latency(), latency);
        let started = std::time::Instant::now();
        assert_eq!(create(&server, json!({})).status, 201);
        assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

        let latency = Duration::from_millis(250);
        server.set_latency(latency);
        assert_eq!(server.state().latency(), latency);
        let started = std::time::Instant::now();
        assert_eq!(call(&server, "GET", "/contacts/contact0000000000001", None).status, 200);
        assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

        server.set_latency(Duration::ZERO);
        assert_eq!(server.state().latency(), Duration::ZERO);
        assert_eq!(server.in_flight_max(), 1);
    }

    // --------------------------------------------------------------------------------------------
    // Fault injection
    // --------------------------------------------------------------------------------------------

    fn faults(rate: f64, seed: u64, kinds: Vec<FaultKind>) -> Faults {
        Faults { rate, seed, kinds }
    }

    fn start_with_faults(faults: Faults) -> MockServer {
        MockServer::start(MockOptions { faults: Some(faults), ..MockOptions::default() }).unwrap()
    }

    /// `(operation, status, fault)` of every logged request.
    fn outcomes(server: &MockServer) -> Vec<(Option<&'static str>, u16, Option<&'static str>)> {
        server.requests().iter().map(|r| (r.operation_id, r.status, r.fault)).collect()
    }

    fn no_faults_but(kind: &str, count: usize) -> BTreeMap<String, usize> {
        FaultKind::NAMES.iter().map(|name| ((*name).to_owned(), if *name == kind { count } else { 0 })).collect()
    }

    #[test]
    fn the_fault_plan_is_a_pure_function_of_seed_and_number() {
        let plan = |faults: &Faults| (0..10_000).map(|n| faults.fault_for(n).cloned()).collect::<Vec<_>>();
        let mixed = Faults::mixed(0.2, 7);
        let drawn = plan(&mixed);
        assert_eq!(drawn, plan(&Faults::mixed(0.2, 7)));
        assert_ne!(drawn, plan(&Faults::mixed(0.2, 8)), "another seed, another plan");
        let faulted = drawn.iter().flatten().count();
        assert!((1_800..=2_200).contains(&faulted), "{faulted} faults in 10000 requests at 20%");
        for kind in &mixed.kinds {
            let seen = drawn.iter().flatten().filter(|k| *k == kind).count();
            assert!(seen > 200, "{kind:?} drawn {seen} times, expected about 285");
        }
        assert!(plan(&Faults::mixed(0.0, 1)).iter().all(Option::is_none));
        assert!(plan(&Faults::mixed(1.0, 1)).iter().all(Option::is_some));
        assert!(plan(&faults(1.0, 1, vec![])).iter().all(Option::is_none), "no kinds, no faults");
        assert!(plan(&faults(f64::NAN, 1, vec![FaultKind::DropBeforeHandling])).iter().all(Option::is_none));
    }

    #[test]
    fn server_error_and_rate_limited_faults_are_answered_without_applying_the_request() {
        let server = start_with_faults(faults(1.0, 1, vec![FaultKind::ServerError(503)]));
        let r = create(&server, json!({ "email": "a@example.com" }));
        assert_eq!((r.status, &r.body), (503, &json!({ "statusCode": 503, "message": "Service Unavailable" })));

        server.set_faults(Some(faults(1.0, 1, vec![FaultKind::RateLimited { retry_after_ms: 1_500 }])));
        let r = create(&server, json!({ "email": "a@example.com" }));
        assert_eq!((r.status, &r.body), (429, &json!({ "statusCode": 429, "message": "Too Many Requests" })));
        assert_eq!(r.header("retry-after"), Some("2"), "1.5 s rounded up");
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(r.header("x-ratelimit-max"), Some("100"), "HighLevel's burst limit when none is set");
        assert_eq!(r.header("x-ratelimit-interval-milliseconds"), Some("10000"));
        assert!(server.contacts().is_empty(), "neither request was applied");

        // The debug routes are never faulted; the counters are in the snapshot.
        let snapshot = state(&server);
        assert_eq!(
            snapshot["faults"],
            json!({ "delay": 0, "drop-after": 0, "drop-before": 0, "rate-limited": 1, "server-error": 1 })
        );
        assert_eq!(snapshot["rateLimited"], 0, "an injected 429 is a fault, not rate limiting");
        let logged = raw(&server, "GET", "/__mock/requests", &[], None, false).body;
        assert_eq!(logged[1]["fault"], "rate-limited");

        server.set_faults(None);
        assert_eq!(server.state().faults(), None);
        assert_eq!(create(&server, json!({ "email": "a@example.com" })).status, 201);
        assert_eq!(
            outcomes(&server),
            [
                (Some("create-contact"), 503, Some("server-error")),
                (Some("create-contact"), 429, Some("rate-limited")),
                (Some("create-contact"), 201, None),
            ]
        );
        let logged = raw(&server, "GET", "/__mock/requests", &[], None, false).body;
        assert!(logged[2].get("fault").is_none() && logged[2].get("body").is_none(), "{logged}");
        assert_eq!(server.fault_counts().values().sum::<usize>(), 2);
    }

    #[test]
    fn a_delay_fault_waits_then_applies_the_request() {
        let delay = Duration::from_millis(150);
        let server = start();
        server.set_faults(Some(faults(1.0, 3, vec![FaultKind::Delay(delay)])));
        let started = Instant::now();
        assert_eq!(create(&server, json!({})).status, 201);
        assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
        assert_eq!(server.contacts().len(), 1);
        assert_eq!(outcomes(&server), [(Some("create-contact"), 201, Some("delay"))]);
        assert_eq!(server.fault_counts(), no_faults_but("delay", 1));
    }

    /// Reads one response with a `Content-Length` from a kept-alive connection; returns its status.
    fn read_one_response(stream: &mut TcpStream) -> u16 {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let length = head
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
            })
            .expect("Content-Length");
        stream.read_exact(&mut vec![0; length]).unwrap();
        head.split(' ').nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn drop_faults_close_the_connection_without_a_byte_of_response() {
        for (kind, applied) in [(FaultKind::DropBeforeHandling, false), (FaultKind::DropAfterHandling, true)] {
            let server = start();
            // A kept-alive connection (no `Connection: close`), so only the server can end it.
            let mut stream = TcpStream::connect(server.addr()).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let send = |stream: &mut TcpStream, email: &str| {
                let body = json!({ "locationId": LOC, "email": email }).to_string();
                let request = format!(
                    "POST /contacts/ HTTP/1.1\r\nHost: mock\r\nAuthorization: Bearer t\r\nVersion: 2021-07-28\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(request.as_bytes()).unwrap();
            };
            send(&mut stream, "a@example.com");
            assert_eq!(read_one_response(&mut stream), 201);
            server.set_faults(Some(faults(1.0, 5, vec![kind.clone()])));
            send(&mut stream, "b@example.com");
            assert_eq!(read_until_closed(&mut stream), b"", "{kind:?}: closed without a response");
            drop(stream);

            let emails: Vec<_> = server.contacts().iter().map(|c| c["email"].as_str().unwrap().to_owned()).collect();
            let expected: &[&str] = if applied { &["a@example.com", "b@example.com"] } else { &["a@example.com"] };
            assert_eq!(emails, expected, "{kind:?}");
            assert_eq!(
                outcomes(&server),
                [(Some("create-contact"), 201, None), (Some("create-contact"), 0, Some(kind.name()))]
            );
            assert_eq!(server.fault_counts(), no_faults_but(kind.name(), 1));
            // The server itself carries on.
            server.set_faults(None);
            assert_eq!(create(&server, json!({})).status, 201, "{kind:?}");
        }
    }

    #[test]
    fn faults_follow_the_seeded_plan_request_by_request() {
        let plan = faults(
            0.5,
            42,
            vec![
                FaultKind::ServerError(502),
                FaultKind::RateLimited { retry_after_ms: 1 },
                FaultKind::Delay(Duration::from_millis(1)),
                FaultKind::DropBeforeHandling,
                FaultKind::DropAfterHandling,
            ],
        );
        let expected_status = |n: u64| match plan.fault_for(n) {
            None | Some(FaultKind::Delay(_)) => Some(200),
            Some(FaultKind::ServerError(status)) => Some(*status),
            Some(FaultKind::RateLimited { .. }) => Some(429),
            Some(FaultKind::DropBeforeHandling | FaultKind::DropAfterHandling) => None,
        };
        let run = || {
            let server = start_with_faults(plan.clone());
            let id = server.seed_contact(json!({ "locationId": LOC }));
            let target = format!("/contacts/{id}");
            let seen: Vec<Option<u16>> = (0..60)
                .map(|i| {
                    if i % 10 == 0 {
                        state(&server); // the debug routes draw no number
                    }
                    try_raw(&server, "GET", &target, GOOD, None, false).map(|r| r.status)
                })
                .collect();
            // Setting the faults again restarts the numbering.
            server.set_faults(Some(plan.clone()));
            let again: Vec<Option<u16>> =
                (0..10).map(|_| try_raw(&server, "GET", &target, GOOD, None, false).map(|r| r.status)).collect();
            (seen, again, server.requests(), server.fault_counts())
        };
        let (seen, again, log, counts) = run();
        for (n, status) in seen.iter().enumerate() {
            let n = n as u64;
            assert_eq!(*status, expected_status(n), "request {n}");
            assert_eq!(log[n as usize].status, status.unwrap_or(0), "request {n}");
            assert_eq!(log[n as usize].fault, plan.fault_for(n).map(FaultKind::name), "request {n}");
        }
        assert_eq!(again, (0..10).map(expected_status).collect::<Vec<_>>());
        let mut tally = no_faults_but("", 0);
        for n in (0..60).chain(0..10) {
            if let Some(kind) = plan.fault_for(n) {
                *tally.get_mut(kind.name()).unwrap() += 1;
            }
        }
        assert_eq!(counts, tally);
        assert!(tally.values().all(|count| *count > 0), "every kind is exercised: {tally:?}");
        assert_eq!(run(), (seen, again, log, counts), "a second run meets the same faults");
    }

    #[test]
    fn drop_faults_outside_the_mock_listener_are_502() {
        let state = Arc::new(MockState::new(MockOptions {
            faults: Some(faults(1.0, 1, vec![FaultKind::DropBeforeHandling])),
            ..MockOptions::default()
        }));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .into_future(),
            )
        });
        let r = try_raw_at(addr, "GET", "/contacts/x", GOOD, None, false).expect("a response");
        assert_eq!(r.status, 502, "{}", r.body);
        assert_eq!(state.requests()[0].status, 502);
        assert_eq!(state.requests()[0].fault, Some("drop-before"));
        stop.send(()).unwrap();
        thread.join().unwrap().unwrap();
    }

    // --------------------------------------------------------------------------------------------
    // Rate limit
    // --------------------------------------------------------------------------------------------

    /// `(X-RateLimit-Remaining, X-RateLimit-Max, X-RateLimit-Interval-Milliseconds)`.
    fn limit_headers(r: &Resp) -> (Option<&str>, Option<&str>, Option<&str>) {
        (r.header("x-ratelimit-remaining"), r.header("x-ratelimit-max"), r.header("x-ratelimit-interval-milliseconds"))
    }

    #[test]
    fn requests_over_the_rate_limit_get_429_and_are_not_applied() {
        let limit = RateLimit { max_requests: 3, window: Duration::from_secs(60) };
        let server = MockServer::start(MockOptions { rate_limit: Some(limit), ..MockOptions::default() }).unwrap();
        assert_eq!(server.state().rate_limit(), Some(limit));
        for remaining in ["2", "1", "0"] {
            let r = create(&server, json!({}));
            assert_eq!(r.status, 201);
            assert_eq!(limit_headers(&r), (Some(remaining), Some("3"), Some("60000")));
            assert_eq!(r.header("retry-after"), None);
            state(&server); // the debug routes are not limited, and take no slot
        }
        let r = create(&server, json!({}));
        assert_eq!((r.status, &r.body), (429, &json!({ "statusCode": 429, "message": "Too Many Requests" })));
        assert_eq!(limit_headers(&r), (Some("0"), Some("3"), Some("60000")));
        let retry_after: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((59..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(server.contacts().len(), 3, "the fourth was not applied");
        assert_eq!(server.rate_limited_count(), 1);
        assert_eq!(state(&server)["rateLimited"], 1);
        assert_eq!(outcomes(&server).last(), Some(&(Some("create-contact"), 429, None)));
        assert_eq!(server.fault_counts(), no_faults_but("", 0));

        server.set_rate_limit(None);
        let r = create(&server, json!({}));
        assert_eq!((r.status, limit_headers(&r)), (201, (None, None, None)));

        // A new limit starts with a fresh window.
        server.set_rate_limit(Some(RateLimit { max_requests: 1, window: Duration::from_secs(60) }));
        let r = create(&server, json!({}));
        assert_eq!((r.status, limit_headers(&r)), (201, (Some("0"), Some("1"), Some("60000"))));
        assert_eq!(create(&server, json!({})).status, 429);
        assert_eq!(server.rate_limited_count(), 2);
        assert_eq!(server.contacts().len(), 5);
    }

    #[test]
    fn the_rate_limit_window_slides() {
        let window = Duration::from_secs(1);
        let server = start();
        server.set_rate_limit(Some(RateLimit { max_requests: 1, window }));
        let started = Instant::now();
        // An answered request takes a slot whatever its status.
        assert_eq!(call(&server, "GET", "/contacts/ghost", None).status, 400);
        let second = call(&server, "GET", "/contacts/ghost", None);
        // Only a machine too slow to send two requests within the window could see otherwise.
        if started.elapsed() < window {
            assert_eq!((second.status, second.header("retry-after")), (429, Some("1")));
        }
        // The slot frees `window` after it was taken, and the rejected request took none.
        std::thread::sleep(window);
        assert_eq!(call(&server, "GET", "/contacts/ghost", None).status, 400);
    }

    #[test]
    fn requests_refused_by_a_fault_take_no_rate_limit_slot() {
        let server = start_with_faults(faults(1.0, 9, vec![FaultKind::ServerError(500)]));
        server.set_rate_limit(Some(RateLimit { max_requests: 1, window: Duration::from_secs(60) }));
        for _ in 0..3 {
            assert_eq!(create(&server, json!({})).status, 500);
        }
        server.set_faults(Some(faults(1.0, 9, vec![FaultKind::DropAfterHandling])));
        assert!(try_raw(
            &server,
            "POST",
            "/contacts/",
            GOOD,
            Some(json!({ "locationId": LOC }).to_string().as_bytes()),
            false
        )
        .is_none());
        assert_eq!(server.contacts().len(), 1, "a drop-after request is applied, and takes the slot");
        server.set_faults(None);
        assert_eq!(create(&server, json!({})).status, 429);
        assert_eq!(server.rate_limited_count(), 1);
    }

    // --------------------------------------------------------------------------------------------
    // OAuth
    // --------------------------------------------------------------------------------------------

    const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

    fn oauth_options() -> OAuthOptions {
        OAuthOptions {
            client_id: "client-1".into(),
            client_secret: "s3cret".into(),
            refresh_token: "refresh-0".into(),
            access_token_ttl: Duration::from_secs(3600),
            location_id: LOC.into(),
        }
    }

    fn start_with_oauth(options: OAuthOptions) -> MockServer {
        MockServer::start(MockOptions { oauth: Some(options), ..MockOptions::default() }).unwrap()
    }

    fn token_request(server: &MockServer, form: &str) -> Resp {
        raw(server, "POST", "/oauth/token", &[FORM], Some(form.as_bytes()), false)
    }

    fn refresh(server: &MockServer, refresh_token: &str, client_secret: &str) -> Resp {
        token_request(
            server,
            &format!(
                "grant_type=refresh_token&refresh_token={refresh_token}&client_id=client-1\
                 &client_secret={client_secret}&user_type=Location"
            ),
        )
    }

    /// A GET with `token` as bearer.
    fn get_with(server: &MockServer, token: &str, target: &str) -> Resp {
        let bearer = format!("Bearer {token}");
        raw(server, "GET", target, &[("Authorization", &bearer), ("Version", "2021-07-28")], None, false)
    }

    fn access_token(r: &Resp) -> String {
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    #[test]
    fn refresh_tokens_are_single_use_and_rotate() {
        let server = start_with_oauth(oauth_options());
        let target = format!("/contacts/{}", server.seed_contact(json!({ "locationId": LOC })));
        assert_eq!(server.current_refresh_token().as_deref(), Some("refresh-0"));
        assert_eq!(get_with(&server, "anything", &target).status, 401, "with OAuth, not any token will do");

        let r = refresh(&server, "refresh-0", "s3cret");
        let access = access_token(&r);
        let next = r.body["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(
            r.body,
            json!({
                "access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": next,
                "scope": "contacts.readonly contacts.write", "userType": "Location", "locationId": LOC,
            })
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_ne!(next, "refresh-0");
        assert_eq!(server.current_refresh_token(), Some(next.clone()));
        assert_eq!(get_with(&server, &access, &target).status, 200);

        let invalid_grant = json!({ "error": "invalid_grant" });
        let invalid_client = json!({ "error": "invalid_client" });
        let r = refresh(&server, "refresh-0", "s3cret");
        assert_eq!((r.status, &r.body), (401, &invalid_grant), "the used refresh token is revoked");
        let r = refresh(&server, &next, "wrong");
        assert_eq!((r.status, &r.body), (401, &invalid_client));
        let r = token_request(
            &server,
            &format!("grant_type=refresh_token&refresh_token={next}&client_id=other&client_secret=s3cret"),
        );
        assert_eq!((r.status, &r.body), (401, &invalid_client));
        assert_eq!(server.current_refresh_token(), Some(next.clone()), "failed attempts revoke nothing");

        let r = refresh(&server, &next, "s3cret");
        let second = access_token(&r);
        assert_ne!(second, access);
        assert_eq!(refresh(&server, &next, "s3cret").status, 401, "single use again");
        assert_eq!(get_with(&server, &second, &target).status, 200);
        assert_eq!(get_with(&server, &access, &target).status, 200, "valid until it expires");
        assert_eq!(server.oauth_refresh_count(), 2);
        assert_eq!(state(&server)["oauthRefreshes"], 2);

        let tokens: Vec<_> = server.requests().into_iter().filter(|r| r.path_and_query == "/oauth/token").collect();
        assert_eq!(tokens.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 401, 401, 401, 200, 401]);
        assert!(tokens.iter().all(|r| r.operation_id.is_none() && r.fault.is_none() && !r.authorization_present));
        assert_eq!(
            tokens[0].body.as_deref(),
            Some(
                "grant_type=refresh_token&refresh_token=REDACTED&client_id=client-1&client_secret=REDACTED\
                 &user_type=Location"
            )
        );
        assert_eq!(
            tokens[3].body.as_deref(),
            Some("grant_type=refresh_token&refresh_token=REDACTED&client_id=other&client_secret=REDACTED")
        );
        let logged = serde_json::to_string(&server.requests()).unwrap();
        for secret in ["s3cret", "wrong", "refresh-0", next.as_str(), access.as_str()] {
            assert!(!logged.contains(secret), "{secret} leaked into the request log");
        }
    }

    #[test]
    fn expired_access_tokens_get_the_usual_401() {
        let server = MockServer::start(MockOptions {
            token: Some("static-token".into()),
            oauth: Some(oauth_options()),
            ..MockOptions::default()
        })
        .unwrap();
        let target = format!("/contacts/{}", server.seed_contact(json!({ "locationId": LOC })));
        let access = access_token(&refresh(&server, "refresh-0", "s3cret"));
        assert_eq!(get_with(&server, &access, &target).status, 200);
        server.expire_access_tokens();
        let r = get_with(&server, &access, &target);
        assert_eq!((r.status, &r.body), (401, &error_texts().unauthorized));
        assert_eq!(get_with(&server, "static-token", &target).status, 200, "the configured token still works");
        let current = server.current_refresh_token().unwrap();
        let fresh = access_token(&refresh(&server, &current, "s3cret"));
        assert_eq!(get_with(&server, &fresh, &target).status, 200, "tokens issued later are not expired");

        // And on their own, after `access_token_ttl`.
        let ttl = Duration::from_millis(200);
        let server = start_with_oauth(OAuthOptions { access_token_ttl: ttl, ..oauth_options() });
        let r = refresh(&server, "refresh-0", "s3cret");
        assert_eq!(r.body["expires_in"], 1, "200 ms, rounded up");
        let access = access_token(&r);
        std::thread::sleep(ttl);
        assert_eq!(get_with(&server, &access, "/contacts/x").status, 401);
        assert_eq!(get_with(&server, "static-token", "/contacts/x").status, 401, "no token configured here");
    }

    #[test]
    fn the_token_endpoint_is_not_an_api_request() {
        let server = MockServer::start(MockOptions {
            oauth: Some(oauth_options()),
            faults: Some(faults(1.0, 2, vec![FaultKind::ServerError(500)])),
            rate_limit: Some(RateLimit { max_requests: 1, window: Duration::from_secs(60) }),
            ..MockOptions::default()
        })
        .unwrap();
        let mut access = String::new();
        for _ in 0..3 {
            let r = refresh(&server, &server.current_refresh_token().unwrap(), "s3cret");
            access = access_token(&r);
            assert_eq!(limit_headers(&r), (None, None, None));
        }
        assert_eq!(server.fault_counts(), no_faults_but("", 0));
        assert_eq!((server.rate_limited_count(), server.in_flight_max()), (0, 0));

        let target = format!("/contacts/{}", server.seed_contact(json!({ "locationId": LOC })));
        assert_eq!(get_with(&server, &access, &target).status, 500, "the first API request draws fault 0");
        server.set_faults(None);
        let r = get_with(&server, &access, &target);
        assert_eq!((r.status, r.header("x-ratelimit-remaining")), (200, Some("0")));
        assert_eq!(get_with(&server, &access, &target).status, 429);
    }

    #[test]
    fn token_request_errors() {
        let r = refresh(&start(), "refresh-0", "s3cret");
        assert_eq!((r.status, &r.body), (404, &json!({ "statusCode": 404, "message": "Cannot POST /oauth/token" })));

        let server = start_with_oauth(oauth_options());
        let r = raw(&server, "GET", "/oauth/token", &[], None, false);
        assert_eq!((r.status, &r.body), (404, &json!({ "statusCode": 404, "message": "Cannot GET /oauth/token" })));
        let json_body = json!({ "grant_type": "refresh_token", "refresh_token": "refresh-0" }).to_string();
        let r = raw(&server, "POST", "/oauth/token", &[], Some(json_body.as_bytes()), false);
        assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "form-encoded only");
        let r =
            token_request(&server, "grant_type=authorization_code&code=abc&client_id=client-1&client_secret=s3cret");
        assert_eq!((r.status, &r.body), (400, &json!({ "error": "unsupported_grant_type" })));
        let r = token_request(&server, "client_id=client-1&client_secret=s3cret&refresh_token=refresh-0");
        assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "no grant_type");
        let r = token_request(&server, "grant_type=refresh_token&client_id=client-1&client_secret=s3cret");
        assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "no refresh_token");
        let r = token_request(
            &server,
            "grant_type=refresh_token&refresh_token=refresh-0&client_id=client-1&client_secret=s3cret\
             &user_type=Company",
        );
        assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "location tokens only");
        assert_eq!(server.current_refresh_token().as_deref(), Some("refresh-0"));
        assert_eq!(server.oauth_refresh_count(), 0);

        let bodies: Vec<_> = server.requests().into_iter().map(|r| r.body.unwrap_or_default()).collect();
        assert_eq!(bodies[1], format!("<{} bytes, not form-encoded>", json_body.len()));
        assert_eq!(bodies[2], "grant_type=authorization_code&code=REDACTED&client_id=client-1&client_secret=REDACTED");
        assert!(!bodies.iter().any(|b| b.contains("s3cret") || b.contains("refresh-0")), "{bodies:?}");
    }
}
