//! The server: the mock's state, its public handle, and the routing of each request to its
//! endpoint.

use super::calls::{self, Calls, CALL_LIST_PATH};
use super::contact_events;
use super::oauth::{self, DialpadOAuthClient};
use super::operations::{self, Desk};
use super::redact;
use super::reply::{error, unauthorized, Paging, Params, Reply};
use super::store::{Kind, Store, StoredWebhook};
use super::subscriptions;
use super::webhooks;
use crate::ghl_mock::LoopbackServer;
use crate::outbox::Outbox;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Bodies past this are refused (413); Dialpad's are small JSON documents.
const BODY_LIMIT: usize = 1 << 20;

/// How the mock behaves.
#[derive(Clone, Debug)]
pub struct DialpadMockOptions {
    /// The API key requests must carry (Bearer header or `?apikey=`).
    pub api_key: String,
    /// Items per page of every listing (Dialpad's own page size is not documented). Must be at
    /// least 1.
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
    /// Path and query as received (not decoded), secrets redacted.
    pub path_and_query: String,
    /// The status the client received.
    pub status: u16,
    /// The body, secrets redacted (JSON re-serialised compactly); `None` when empty.
    pub body: Option<String>,
}

/// A webhook, as [`DialpadMock::registered`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredWebhook {
    pub id: String,
    pub hook_url: String,
    pub secret: Option<String>,
}

/// A subscription, as [`DialpadMock::registered`] shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisteredSubscription {
    /// `call`, `sms` or `contact`.
    pub kind: &'static str,
    pub id: String,
    /// `None` once its webhook is deleted (the mock leaves such subscriptions in place).
    pub webhook_id: Option<String>,
    pub enabled: bool,
    /// The subscription as `GET` answers it.
    pub proto: Value,
}

/// Everything registered, each in id order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Registered {
    pub webhooks: Vec<RegisteredWebhook>,
    pub subscriptions: Vec<RegisteredSubscription>,
}

impl Registered {
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.subscriptions.is_empty()
    }
}

pub(super) struct Inner {
    calls: Calls,
    pub(super) store: Store,
    /// Contacts, users, screen pops, share links, click-to-call (`operations.rs`).
    pub(super) desk: Desk,
    oauth: oauth::OAuthState,
    requests: Vec<DialpadRequest>,
    fail_with: Option<u16>,
    /// Answer every listing with its first page and that page's cursor, whatever the cursor.
    stuck: bool,
}

pub(super) struct Shared {
    options: DialpadMockOptions,
    inner: Mutex<Inner>,
    /// Contact events on their way out (`contact_events.rs`).
    pub(super) outbox: Outbox,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running mock on 127.0.0.1. Runs on its own thread with its own tokio runtime, so callers can
/// be plain synchronous code. Dropping it shuts the server down.
pub struct DialpadMock {
    server: LoopbackServer,
    pub(super) shared: Arc<Shared>,
}

impl DialpadMock {
    /// Starts a mock on `127.0.0.1:0` (a free port chosen by the OS).
    pub fn start(options: DialpadMockOptions) -> anyhow::Result<DialpadMock> {
        DialpadMock::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options)
    }

    /// Starts a mock on `addr`. The socket is bound before this returns.
    pub fn start_on(addr: SocketAddr, options: DialpadMockOptions) -> anyhow::Result<DialpadMock> {
        anyhow::ensure!(options.page_size >= 1, "the Dialpad mock's page_size must be at least 1");
        let inner = Inner {
            calls: Calls::default(),
            store: Store::new(),
            desk: Desk::default(),
            oauth: oauth::OAuthState::default(),
            requests: Vec::new(),
            fail_with: None,
            stuck: false,
        };
        let shared = Arc::new(Shared { options, inner: Mutex::new(inner), outbox: Outbox::default() });
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
        inner.calls.calls.retain(|&(_, id), _| id != call_id);
        inner.calls.calls.insert((started, call_id), call);
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
        inner.calls.fail_at = (n > 0).then(|| inner.calls.list_requests + n);
    }

    /// From now on, answer every list request (calls, webhooks, subscriptions) with the first
    /// page of its window and that page's cursor, whatever cursor it carries, as an API whose
    /// listing never advances (Prism serving Dialpad's spec answers with the same example every
    /// time). `false` pages normally again.
    pub fn repeat_first_page(&self, on: bool) {
        self.shared.lock().stuck = on;
    }

    /// Every webhook and subscription, each in id order.
    pub fn registered(&self) -> Registered {
        let inner = self.shared.lock();
        let store = &inner.store;
        let webhooks =
            store.webhooks.iter().map(|(id, w)| RegisteredWebhook { id: id.to_string(), hook_url: w.hook_url.clone(), secret: w.secret.clone() }).collect();
        let subscriptions = store
            .subscriptions
            .iter()
            .map(|(id, s)| RegisteredSubscription {
                kind: s.kind.segment(),
                id: id.to_string(),
                webhook_id: s.webhook_id.filter(|w| store.webhooks.contains_key(w)).map(|w| w.to_string()),
                enabled: s.enabled,
                proto: subscriptions::proto(*id, s, &store.webhooks),
            })
            .collect();
        Registered { webhooks, subscriptions }
    }

    /// Adds a webhook as if created through the API; its id.
    pub fn add_webhook(&self, hook_url: &str, secret: Option<&str>) -> String {
        let mut inner = self.shared.lock();
        let id = inner.store.new_id();
        inner.store.webhooks.insert(id, StoredWebhook { hook_url: hook_url.into(), secret: secret.map(str::to_string) });
        id.to_string()
    }

    /// Adds a subscription of `kind` (`call`, `sms`, `contact`) as if created through the API
    /// with `body` (a create body, `endpoint_id` included); its id.
    ///
    /// # Panics
    /// If the kind is unknown or the API would refuse the body: a broken test.
    pub fn add_subscription(&self, kind: &str, body: Value) -> String {
        let kind = Kind::parse(kind).unwrap_or_else(|| panic!("no subscription kind {kind:?}"));
        let mut inner = self.shared.lock();
        let id = subscriptions::create(&mut inner.store, kind, &body).unwrap_or_else(|reply| panic!("add_subscription {body}: {reply:?}"));
        id.to_string()
    }

    /// Deletes a subscription behind the client's back; whether it was there.
    pub fn remove_subscription(&self, id: &str) -> bool {
        let id = id.parse().unwrap_or_default();
        self.shared.lock().store.subscriptions.remove(&id).is_some()
    }

    /// Enables or disables a subscription behind the client's back; whether it was there.
    pub fn set_subscription_enabled(&self, id: &str, enabled: bool) -> bool {
        let id = id.parse().unwrap_or_default();
        self.shared.lock().store.subscriptions.get_mut(&id).map(|s| s.enabled = enabled).is_some()
    }

    /// Registers an OAuth app: its authorize requests are approved at once.
    pub fn add_oauth_client(&self, client: DialpadOAuthClient) {
        self.shared.lock().oauth.clients.push(client);
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

/// Where a path leads.
enum Route<'a> {
    Calls,
    Webhooks,
    Webhook(&'a str),
    Subscriptions(Kind),
    Subscription(Kind, &'a str),
    Authorize,
    Token,
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Route<'a>> {
        if path == CALL_LIST_PATH || path == "/api/v2/call/" {
            return Some(Route::Calls);
        }
        match path {
            oauth::AUTHORIZE_PATH => return Some(Route::Authorize),
            oauth::TOKEN_PATH => return Some(Route::Token),
            _ => {}
        }
        let rest = path.strip_prefix("/api/v2/")?;
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        match segments.as_slice() {
            ["webhooks"] => Some(Route::Webhooks),
            ["webhooks", id] => Some(Route::Webhook(id)),
            ["subscriptions", kind] => Some(Route::Subscriptions(Kind::parse(kind)?)),
            ["subscriptions", kind, id] => Some(Route::Subscription(Kind::parse(kind)?, id)),
            _ => None,
        }
    }

    fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::Calls | Route::Authorize => &["GET"],
            Route::Token => &["POST"],
            Route::Webhooks | Route::Subscriptions(_) => &["GET", "POST"],
            Route::Webhook(_) | Route::Subscription(..) => &["GET", "PATCH", "DELETE"],
        }
    }
}

/// Whether the request carries the API key or a live access token, as a Bearer or `?apikey=`.
fn authorized(shared: &Shared, oauth: &oauth::OAuthState, headers: &HeaderMap, params: &Params) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    [bearer, params.get("apikey")].into_iter().flatten().any(|token| token == shared.options.api_key || oauth.access_is_live(token))
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let uri = &parts.uri;
    let path_and_query = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let (reply, bytes) = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => (respond(&shared, &method, uri.path(), uri.query().unwrap_or(""), &parts.headers, &bytes), bytes),
        Err(_) => (error(413, "the body is too large"), Default::default()),
    };
    let logged =
        DialpadRequest { method, path_and_query: redact::path_and_query(&path_and_query), status: reply.status(), body: redact::body(&parts.headers, &bytes) };
    shared.lock().requests.push(logged);
    reply.into_response()
}

/// The whole of one request's handling, under the lock (no `.await` inside).
fn respond(shared: &Shared, method: &str, path: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
    let mut inner = shared.lock();
    if let Some(status) = inner.fail_with {
        return error(status, "injected failure");
    }
    let params = Params::parse(query);
    let paging = Paging { page_size: shared.options.page_size, stuck: inner.stuck };
    if let Some(matched) = operations::route(method, path) {
        if !authorized(shared, &inner.oauth, headers, &params) {
            return unauthorized();
        }
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let inner = &mut *inner;
        let (reply, change) = operations::answer(&mut inner.desk, &matched, &params, headers, body, paging, &now);
        // Queued under the lock, so events go out in the order the changes were made.
        if let Some(change) = change {
            contact_events::deliver(&shared.outbox, &inner.store, &change);
        }
        return reply;
    }
    let Some(route) = Route::parse(path) else {
        return if operations::has_path(path) { error(405, "method not allowed") } else { error(404, "not found") };
    };
    if let Route::Calls = route {
        // Its own order of checks (the one-off fault counts requests before the key is checked).
        let authorized = authorized(shared, &inner.oauth, headers, &params);
        return calls::list(&mut inner.calls, paging, method, &params, authorized);
    }
    if !route.methods().contains(&method) {
        return error(405, "method not allowed");
    }
    match route {
        Route::Authorize => return oauth::authorize(&mut inner.oauth, &params),
        Route::Token => return oauth::token(&mut inner.oauth, headers, body),
        _ => {}
    }
    if !authorized(shared, &inner.oauth, headers, &params) {
        return unauthorized();
    }
    let store = &mut inner.store;
    match route {
        Route::Webhooks => webhooks::collection(store, paging, method, &params, headers, body),
        Route::Webhook(id) => webhooks::item(store, method, id, headers, body),
        Route::Subscriptions(kind) => subscriptions::collection(store, paging, kind, method, &params, headers, body),
        Route::Subscription(kind, id) => subscriptions::item(store, kind, method, id, headers, body),
        Route::Calls | Route::Authorize | Route::Token => unreachable!("answered above"),
    }
}
