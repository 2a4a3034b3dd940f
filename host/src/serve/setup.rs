//! `serve`'s setup side: the setup page and the tenants' API on the admin listener (install the
//! HighLevel app, connect Dialpad, check, validate a configuration, send a test event), and
//! HighLevel's webhooks on the webhook listener, verified before anything is read from them:
//! the app's INSTALL and UNINSTALL, acted on here, and contact webhooks, queued for the tenant
//! of their location like any delivery.

use super::inbox::Inbox;
use crate::capability::secret::Secret;
use crate::connect::dialpad::{DialpadOAuthApp, Pkce};
use crate::connect::highlevel::UserType;
use crate::inbound::{Inbound, Source};
use crate::marketplace::{AppEvent, AppWebhookGate, ContactWebhook, GateRefusal, ReplayLedger};
use crate::tenants::check::{self, CheckContext};
use crate::tenants::credentials::MarketplaceCredentials;
use crate::tenants::lifecycle::{self, DialpadCredential, DialpadTarget, Uninstalled};
use crate::tenants::registry::Tenants;
use crate::tenants::{agency_owner, DialpadAuth};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the setup side needs beside the tenants.
pub struct Setup {
    /// The Marketplace app and its agencies' tokens; `None`: no app configured (private tokens only).
    pub marketplace: Option<Arc<MarketplaceCredentials>>,
    /// Verifies HighLevel's webhooks; `None`: `/webhooks/highlevel` refuses every delivery (401).
    pub gate: Option<AppWebhookGate>,
    /// Remembers HighLevel webhooks' ids, so a replayed one is refused.
    pub ledger: Mutex<Box<dyn ReplayLedger + Send>>,
    /// HighLevel's API origin (for `check`).
    pub api_base: String,
    pub dialpad_api_base: String,
    /// Where Dialpad reaches the webhook listener; needed to connect Dialpad.
    pub public_url: Option<String>,
    pub call_states: Vec<String>,
    pub timeout: Duration,
    /// Authorization requests under way: `state` → the install's kind, when it was asked.
    pending: Mutex<HashMap<String, (UserType, Instant)>>,
    /// A Dialpad OAuth app, when configured.
    pub dialpad_oauth: Option<DialpadOAuthApp>,
    /// Dialpad authorizations under way: `state` → the tenant, its PKCE pair, when it was asked.
    pending_dialpad: Mutex<HashMap<String, (String, Pkce, Instant)>>,
}

impl Setup {
    /// The setup side from the host's settings: the Marketplace app (from
    /// [`Tenants::over_store`](crate::tenants::registry::Tenants::over_store)), the app webhooks'
    /// gate when a webhook key is configured, and the ledger of their ids in `state_db`;
    /// `admin_url` is where the admin listener is reached (the default Dialpad redirect).
    pub fn from_settings(
        settings: &crate::settings::Settings,
        marketplace: Option<Arc<MarketplaceCredentials>>,
        state_db: &std::path::Path,
        admin_url: &str,
    ) -> anyhow::Result<Setup> {
        use crate::marketplace::{SqliteReplayLedger, WebhookKeys, DEFAULT_WINDOW, HIGHLEVEL_LEGACY_RSA_KEY};
        let gate = match settings.connect.marketplace.as_ref().and_then(|m| m.webhook_public_key.as_ref().map(|key| (m, key))) {
            Some((m, key)) => {
                let mut keys = WebhookKeys::ed25519(key)?;
                if let Some(legacy) = &m.legacy_webhook_key {
                    keys = keys.with_legacy_rsa(legacy.as_deref().unwrap_or(HIGHLEVEL_LEGACY_RSA_KEY))?;
                }
                let gate = AppWebhookGate::new(keys);
                Some(match &m.app_id {
                    Some(app) => gate.for_app(app.clone()),
                    None => gate,
                })
            }
            None => None,
        };
        let ledger = SqliteReplayLedger::open(state_db, gate.as_ref().map_or(DEFAULT_WINDOW, |g| g.window()))?;
        let mut setup = Setup::new(
            marketplace,
            gate,
            Box::new(ledger),
            settings.api_base(),
            settings.dialpad_api_base(),
            settings.connect.public_url.clone(),
            settings.call_states(),
            settings.request_timeout,
        );
        let redirect = format!("{}/oauth/dialpad/callback", admin_url.trim_end_matches('/'));
        setup.dialpad_oauth = settings.connect.dialpad_oauth.as_ref().map(|o| o.app(&settings.dialpad_api_base(), &redirect, settings.request_timeout));
        Ok(setup)
    }
}

/// What the setup side needs of `serve` (implemented by its shared state): the tenants, the
/// inbox, the door every delivery goes through, and this side's own parts.
pub(crate) trait Host: Send + Sync + 'static {
    fn tenants(&self) -> &Tenants;
    fn inbox(&self) -> &Inbox;
    fn setup(&self) -> Option<&Setup>;
    /// Checks and queues a delivery for a tenant, as the webhook listener does.
    fn receive(&self, tenant: &str, event: crate::inbound::Inbound) -> (StatusCode, Value);
    /// Counts a refused delivery on `/metrics`.
    fn count_refusal(&self);
}

/// How long an authorization may take before its `state` is forgotten.
const AUTHORIZE_WINDOW: Duration = Duration::from_secs(600);

impl Setup {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        marketplace: Option<Arc<MarketplaceCredentials>>,
        gate: Option<AppWebhookGate>,
        ledger: Box<dyn ReplayLedger + Send>,
        api_base: String,
        dialpad_api_base: String,
        public_url: Option<String>,
        call_states: Vec<String>,
        timeout: Duration,
    ) -> Setup {
        Setup {
            marketplace,
            gate,
            ledger: Mutex::new(ledger),
            api_base,
            dialpad_api_base,
            public_url,
            call_states,
            timeout,
            pending: Mutex::default(),
            dialpad_oauth: None,
            pending_dialpad: Mutex::default(),
        }
    }
}

/// The ledger as `serve` holds it (SQLite in production, memory in tests).
impl ReplayLedger for Box<dyn ReplayLedger + Send> {
    fn first_time(&mut self, webhook_id: &str, at_ms: i64) -> anyhow::Result<bool> {
        (**self).first_time(webhook_id, at_ms)
    }

    fn forget(&mut self, webhook_id: &str) -> anyhow::Result<()> {
        (**self).forget(webhook_id)
    }
}

/// The setup page: one static file that uses the API below.
const SETUP_PAGE: &str = include_str!("setup.html");

type Answer = (StatusCode, Json<Value>);

fn error(status: StatusCode, kind: &str, message: impl std::fmt::Display) -> Answer {
    (status, Json(json!({"type": kind, "message": message.to_string()})))
}

fn setup_of(s: &impl Host) -> Result<&Setup, Answer> {
    s.setup().ok_or_else(|| error(StatusCode::NOT_FOUND, "not-configured", "tenants are not enabled on this host: start serve with a secret key"))
}

fn store_of(s: &impl Host) -> Result<&Arc<crate::tenants::store::TenantStore>, Answer> {
    s.tenants().store().ok_or_else(|| error(StatusCode::NOT_FOUND, "not-configured", "tenants are not enabled on this host: start serve with a secret key"))
}

/// The admin listener's setup routes.
pub(super) fn admin_routes<H: Host>() -> Router<Arc<H>> {
    Router::new()
        .route("/setup", get(|Extension(nonce): Extension<super::access::Nonce>| async move { Html(nonce.fill(SETUP_PAGE)) }))
        .route("/api/tenants", get(list_tenants::<H>).post(add_tenant::<H>))
        .route("/api/tenants/{id}", delete(remove_tenant::<H>))
        .route("/api/tenants/{id}/dialpad", post(connect_dialpad::<H>).delete(disconnect_dialpad::<H>))
        .route("/api/tenants/{id}/check", get(check_tenant::<H>))
        .route("/api/tenants/{id}/test-event", post(test_event::<H>))
        .route("/api/validate-config", post(validate_config::<H>))
        .route("/api/installs/reconcile", post(reconcile_now::<H>))
        .route("/oauth/highlevel/start", get(authorize::<H>))
        .route("/oauth/highlevel/callback", get(callback::<H>))
        .route("/oauth/dialpad/start", get(dialpad_authorize::<H>))
        .route("/oauth/dialpad/callback", get(dialpad_callback::<H>))
}

/// The webhook listener's route for HighLevel's webhooks.
pub(super) fn webhook_routes<H: Host>() -> Router<Arc<H>> {
    Router::new().route("/webhooks/highlevel", post(app_webhook::<H>))
}

async fn list_tenants<H: Host>(State(s): State<Arc<H>>) -> Answer {
    let public_url = s.setup().and_then(|setup| setup.public_url.clone());
    let tenants: Vec<Value> = s
        .tenants()
        .all()
        .iter()
        .map(|live| {
            let t = &live.tenant;
            json!({
                "id": t.id, "name": t.name, "location_id": t.location_id, "company_id": t.company_id, "highlevel": t.highlevel,
                "scopes": t.scopes,
                "dialpad": t.dialpad.as_ref().map(|d| json!({"auth": d.auth, "registration": d.registration})),
                "webhook_url": public_url.as_deref().map(|url| lifecycle::hook_url(url, &t.id)),
                "last_event": s.inbox().last_of_tenant(&t.id).ok().flatten().map(|(at, status)| json!({"at": check::iso_time(at), "status": status})),
            })
        })
        .collect();
    let setup = s.setup();
    let (marketplace, dialpad_oauth) = (setup.is_some_and(|setup| setup.marketplace.is_some()), setup.is_some_and(|setup| setup.dialpad_oauth.is_some()));
    (StatusCode::OK, Json(json!({"tenants": tenants, "marketplace": marketplace, "dialpad_oauth": dialpad_oauth})))
}

#[derive(serde::Deserialize)]
struct NewTenant {
    id: String,
    location_id: String,
    token: String,
    #[serde(default)]
    config: Map<String, Value>,
}

async fn add_tenant<H: Host>(State(s): State<Arc<H>>, body: axum::body::Bytes) -> Answer {
    let store = match store_of(&*s) {
        Ok(store) => store.clone(),
        Err(answer) => return answer,
    };
    let given: NewTenant = match serde_json::from_slice(&body) {
        Ok(given) => given,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid-input", format!("expected {{\"id\", \"location_id\", \"token\", \"config\"?}}: {e}")),
    };
    match lifecycle::put_private(&store, &given.id, &given.location_id, &Secret::new(given.token), given.config) {
        Ok(tenant) => (StatusCode::OK, Json(json!({"tenant": tenant.id}))),
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid-input", format!("{e:#}")),
    }
}

async fn remove_tenant<H: Host>(State(s): State<Arc<H>>, UrlPath(id): UrlPath<String>) -> Answer {
    match remove_tenants(&*s, std::slice::from_ref(&id)).await {
        Ok(0) => error(StatusCode::NOT_FOUND, "not-found", format!("no tenant {id}")),
        Ok(_) => (StatusCode::OK, Json(json!({"removed": id}))),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "storage", format!("{e:#}")),
    }
}

#[derive(serde::Deserialize)]
struct DialpadKey {
    api_key: String,
}

async fn connect_dialpad<H: Host>(State(s): State<Arc<H>>, UrlPath(id): UrlPath<String>, body: axum::body::Bytes) -> Answer {
    let (setup, store) = match (setup_of(&*s), store_of(&*s)) {
        (Ok(setup), Ok(store)) => (setup, store.clone()),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    let Ok(DialpadKey { api_key }) = serde_json::from_slice(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid-input", "expected {\"api_key\": \"…\"} (a Dialpad company API key)");
    };
    let Some(public_url) = setup.public_url.as_deref() else {
        return error(StatusCode::CONFLICT, "not-configured", "set public_url in the configuration: where Dialpad reaches this host's webhook listener");
    };
    let credential = DialpadCredential { auth: DialpadAuth::ApiKey, credential: Secret::new(api_key), refresh: None };
    let target = DialpadTarget { api_base: &setup.dialpad_api_base, public_url, call_states: &setup.call_states, timeout: setup.timeout };
    match lifecycle::connect_dialpad(&store, &id, credential, target).await {
        Ok(registration) => {
            let _ = s.tenants().refresh();
            (StatusCode::OK, Json(json!({"registration": registration})))
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, "dialpad", format!("{e:#}")),
    }
}

async fn disconnect_dialpad<H: Host>(State(s): State<Arc<H>>, UrlPath(id): UrlPath<String>) -> Answer {
    let (setup, store) = match (setup_of(&*s), store_of(&*s)) {
        (Ok(setup), Ok(store)) => (setup, store.clone()),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    match lifecycle::disconnect_dialpad(&store, &id, &setup.dialpad_api_base, setup.timeout).await {
        Ok(was) => (StatusCode::OK, Json(json!({"disconnected": was}))),
        Err(e) => error(StatusCode::BAD_GATEWAY, "dialpad", format!("{e:#}")),
    }
}

async fn check_tenant<H: Host>(State(s): State<Arc<H>>, UrlPath(id): UrlPath<String>) -> Answer {
    let (setup, store) = match (setup_of(&*s), store_of(&*s)) {
        (Ok(setup), Ok(store)) => (setup, store.clone()),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    let Some(live) = s.tenants().get(&id).filter(|_| !id.is_empty()) else { return error(StatusCode::NOT_FOUND, "not-found", format!("no tenant {id}")) };
    let context = CheckContext {
        store: &store,
        api_base: &setup.api_base,
        dialpad_api_base: &setup.dialpad_api_base,
        public_url: setup.public_url.as_deref(),
        call_states: &setup.call_states,
        timeout: setup.timeout,
        last_event: s.inbox().last_of_tenant(&id).ok().flatten(),
    };
    let report = check::check(&live, &context).await;
    (StatusCode::OK, Json(serde_json::to_value(&report).unwrap_or_default()))
}

/// A signed Dialpad call (a missed call from a test number) delivered to the tenant's own
/// webhook path, as Dialpad would: it is checked, queued and handled like any other.
async fn test_event<H: Host>(State(s): State<Arc<H>>, UrlPath(id): UrlPath<String>) -> Response {
    let store = match store_of(&*s) {
        Ok(store) => store.clone(),
        Err(answer) => return answer.into_response(),
    };
    let secret = match store.secret(&crate::tenants::owner(&id), crate::tenants::secret_names::WEBHOOK_SECRET) {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return error(StatusCode::CONFLICT, "not-connected", format!("tenant {id} has no Dialpad webhook secret: connect Dialpad first")).into_response()
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "storage", format!("{e:#}")).into_response(),
    };
    let body = test_call_jwt(&secret);
    let shared = s.clone();
    match tokio::task::spawn_blocking(move || shared.receive(&id, crate::inbound::Inbound::new(crate::inbound::Source::DialpadWebhook, body))).await {
        Ok((status, answer)) => (status, Json(answer)).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "host", e).into_response(),
    }
}

/// A missed call from +1 202 555 0100 (a number reserved for fiction), signed with `secret`.
fn test_call_jwt(secret: &Secret) -> Vec<u8> {
    use base64::Engine as _;
    use hmac::Mac as _;
    let now = crate::serve::inbox::now_ms();
    let claims = json!({
        "call_id": now, "state": "hangup", "direction": "inbound", "external_number": "+12025550100",
        "internal_number": "+12025550199", "contact": {"name": "Dialpad test call", "phone": "+12025550100"},
        "date_started": now - 30_000, "date_ended": now, "iat": now / 1000, "exp": now / 1000 + 300,
    });
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let signing_input = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes())).into_bytes()
}

async fn validate_config<H: Host>(State(s): State<Arc<H>>, body: axum::body::Bytes) -> Answer {
    let text = String::from_utf8_lossy(&body).into_owned();
    let shared = s.clone();
    match tokio::task::spawn_blocking(move || shared.tenants().single().runtime.validate_config(&text)).await {
        Ok(Ok(problems)) => {
            let problems: Vec<Value> = problems.iter().map(|p| json!({"path": p.path, "message": p.message})).collect();
            (StatusCode::OK, Json(json!({"valid": problems.is_empty(), "problems": problems})))
        }
        Ok(Err(trap)) => error(StatusCode::INTERNAL_SERVER_ERROR, "host", format!("{trap:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "host", e),
    }
}

#[derive(serde::Deserialize)]
struct AuthorizeQuery {
    /// `agency` (the default: an agency admin picks locations) or `location`.
    #[serde(default)]
    install: Option<String>,
}

async fn authorize<H: Host>(State(s): State<Arc<H>>, Query(q): Query<AuthorizeQuery>) -> Response {
    let Some(marketplace) = s.setup().and_then(|setup| setup.marketplace.as_ref()) else {
        return error(StatusCode::NOT_FOUND, "not-configured", "no Marketplace app is configured (marketplace in the configuration)").into_response();
    };
    let user_type = match q.install.as_deref() {
        None | Some("agency") => UserType::Company,
        Some("location") => UserType::Location,
        Some(other) => return error(StatusCode::BAD_REQUEST, "invalid-input", format!("install={other}: use agency or location")).into_response(),
    };
    let state = lifecycle::generate_secret().expose()[..32].to_string();
    let setup = s.setup().expect("checked above");
    {
        let mut pending = setup.pending.lock().unwrap();
        pending.retain(|_, (_, at)| at.elapsed() < AUTHORIZE_WINDOW);
        pending.insert(state.clone(), (user_type, Instant::now()));
    }
    Redirect::to(&marketplace.app().authorize_url(&state)).into_response()
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback<H: Host>(State(s): State<Arc<H>>, Query(q): Query<CallbackQuery>) -> Response {
    let (Ok(setup), Ok(store)) = (setup_of(&*s), store_of(&*s)) else {
        return error(StatusCode::NOT_FOUND, "not-configured", "tenants are not enabled on this host").into_response();
    };
    let Some(marketplace) = &setup.marketplace else {
        return error(StatusCode::NOT_FOUND, "not-configured", "no Marketplace app is configured").into_response();
    };
    if let Some(refused) = q.error {
        return error(StatusCode::BAD_REQUEST, "authorization-refused", format!("HighLevel did not authorize the app: {refused}")).into_response();
    }
    let pending = q.state.as_deref().and_then(|state| setup.pending.lock().unwrap().remove(state));
    let Some((user_type, _)) = pending.filter(|(_, at)| at.elapsed() < AUTHORIZE_WINDOW) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid-state",
            "this authorization was not started here, or took longer than 10 minutes: start it again from the setup page",
        )
        .into_response();
    };
    let Some(code) = q.code else { return error(StatusCode::BAD_REQUEST, "invalid-input", "the callback has no code").into_response() };
    let grant = match marketplace.app().exchange_code(&code, user_type).await {
        Ok(grant) => grant,
        Err(e) => return error(StatusCode::BAD_GATEWAY, "highlevel", format!("exchanging the code: {e}")).into_response(),
    };
    match lifecycle::install(store, marketplace.app(), grant).await {
        Ok(tenants) => {
            let _ = s.tenants().refresh();
            let ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
            Redirect::to(&format!("/setup?installed={}", ids.join(","))).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "install", format!("{e:#}")).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct DialpadAuthorizeQuery {
    tenant: String,
}

/// Sends the admin to Dialpad to authorize the app for a tenant (PKCE: the verifier stays here).
async fn dialpad_authorize<H: Host>(State(s): State<Arc<H>>, Query(q): Query<DialpadAuthorizeQuery>) -> Response {
    let Some((setup, app)) = s.setup().and_then(|setup| setup.dialpad_oauth.as_ref().map(|app| (setup, app))) else {
        return error(StatusCode::NOT_FOUND, "not-configured", "no Dialpad OAuth app is configured (dialpad_oauth in the configuration)").into_response();
    };
    if s.tenants().get(&q.tenant).filter(|_| !q.tenant.is_empty()).is_none() {
        return error(StatusCode::NOT_FOUND, "not-found", format!("no tenant {}", q.tenant)).into_response();
    }
    let state = lifecycle::generate_secret().expose()[..32].to_string();
    let pkce = Pkce::generate();
    let url = app.authorize_url(&state, &pkce);
    {
        let mut pending = setup.pending_dialpad.lock().unwrap();
        pending.retain(|_, (_, _, at)| at.elapsed() < AUTHORIZE_WINDOW);
        pending.insert(state, (q.tenant, pkce, Instant::now()));
    }
    Redirect::to(&url).into_response()
}

/// Dialpad sends the admin back: the code (with the PKCE verifier) becomes tokens, and the
/// tenant's Dialpad is connected with them.
async fn dialpad_callback<H: Host>(State(s): State<Arc<H>>, Query(q): Query<CallbackQuery>) -> Response {
    let (Ok(setup), Ok(store)) = (setup_of(&*s), store_of(&*s)) else {
        return error(StatusCode::NOT_FOUND, "not-configured", "tenants are not enabled on this host").into_response();
    };
    let Some(app) = &setup.dialpad_oauth else { return error(StatusCode::NOT_FOUND, "not-configured", "no Dialpad OAuth app is configured").into_response() };
    if let Some(refused) = q.error {
        return error(StatusCode::BAD_REQUEST, "authorization-refused", format!("Dialpad did not authorize the app: {refused}")).into_response();
    }
    let pending = q.state.as_deref().and_then(|state| setup.pending_dialpad.lock().unwrap().remove(state));
    let Some((tenant, pkce, _)) = pending.filter(|(_, _, at)| at.elapsed() < AUTHORIZE_WINDOW) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid-state",
            "this authorization was not started here, or took longer than 10 minutes: start it again from the setup page",
        )
        .into_response();
    };
    let Some(code) = q.code else { return error(StatusCode::BAD_REQUEST, "invalid-input", "the callback has no code").into_response() };
    let tokens = match app.exchange_code(&code, &pkce).await {
        Ok(tokens) => tokens,
        Err(e) => return error(StatusCode::BAD_GATEWAY, "dialpad", format!("exchanging the code: {e}")).into_response(),
    };
    let Some(public_url) = setup.public_url.as_deref() else {
        return error(StatusCode::CONFLICT, "not-configured", "set public_url in the configuration: where Dialpad reaches this host's webhook listener")
            .into_response();
    };
    let credential = DialpadCredential { auth: DialpadAuth::OAuth, credential: tokens.access, refresh: tokens.refresh };
    let target = DialpadTarget { api_base: &setup.dialpad_api_base, public_url, call_states: &setup.call_states, timeout: setup.timeout };
    match lifecycle::connect_dialpad(store, &tenant, credential, target).await {
        Ok(_) => {
            let _ = s.tenants().refresh();
            Redirect::to(&format!("/setup?connected={tenant}")).into_response()
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, "dialpad", format!("{e:#}")).into_response(),
    }
}

/// HighLevel's webhooks. HighLevel sends again only after a 429, so a failure that is ours
/// (the ledger, the inbox) answers 429; a delivery that can never pass answers 4xx. Without a key
/// to verify them, every delivery is refused: nothing unverified is acted on or stored.
async fn app_webhook<H: Host>(State(s): State<Arc<H>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Some((setup, gate)) = s.setup().and_then(|setup| setup.gate.as_ref().map(|gate| (setup, gate))) else {
        s.count_refusal();
        return error(
            StatusCode::UNAUTHORIZED,
            "not-configured",
            "no HighLevel webhook key is configured (marketplace.webhook_public_key): HighLevel's webhooks cannot be verified, so none is accepted",
        )
        .into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let checked = {
        let mut ledger = setup.ledger.lock().unwrap();
        gate.check(header, &body, crate::serve::inbox::now_ms(), &mut *ledger)
    };
    let event = match checked {
        Ok(event) => event,
        Err(refusal) => {
            let status = match &refusal {
                r if r.is_ours() => StatusCode::TOO_MANY_REQUESTS,
                GateRefusal::Signature(_) => StatusCode::UNAUTHORIZED,
                GateRefusal::Event(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            };
            s.count_refusal();
            let answer = error(status, "app-webhook-refused", &refusal);
            return if status == StatusCode::TOO_MANY_REQUESTS {
                (answer.0, [(header::RETRY_AFTER, "60")], answer.1).into_response()
            } else {
                answer.into_response()
            };
        }
    };
    let webhook_id = event.webhook_id().map(str::to_string);
    let (answer, taken) = match event {
        AppEvent::Contact(contact) => {
            let answer = contact_webhook(&s, contact, body.to_vec()).await;
            // Only a queued contact webhook keeps its id: one refused for an unknown location
            // may be sent again once the location is installed, one answered 429 is sent again
            // by HighLevel, and neither must then look like a replay.
            let taken = answer.status().is_success();
            (answer, taken)
        }
        // Verified, and nothing here acts on it (NoteCreate, InboundMessage, another app's event).
        AppEvent::Other { kind } => ((StatusCode::OK, Json(json!({"ignored": kind}))).into_response(), true),
        event => {
            let answer = act_on(&*s, setup, event).await;
            let taken = answer.status() != StatusCode::TOO_MANY_REQUESTS;
            (answer, taken)
        }
    };
    // Not taken (our failure, after which HighLevel sends it again, or not queued): forgotten.
    if let (false, Some(id)) = (taken, webhook_id) {
        if let Err(e) = setup.ledger.lock().unwrap().forget(&id) {
            tracing::error!("serve: forgetting HighLevel webhook {id}: {e:#}");
        }
    }
    answer
}

/// A verified contact webhook, handed to the tenant of its location through the door every
/// delivery takes (`Host::receive`: the plugin's `route`, the inbox, the tenant's lanes, its
/// retries and dead letters), and answered as HighLevel understands: 200 with the queued id, 4xx
/// for a body that can never pass (the plugin's refusal, as a Dialpad delivery's), 404 for a
/// location no tenant has, and 429 for any failure of ours.
async fn contact_webhook<H: Host>(s: &Arc<H>, contact: ContactWebhook, body: Vec<u8>) -> Response {
    let Some(tenant) = s.tenants().for_location(&contact.location_id).map(|live| live.tenant.id.clone()) else {
        s.count_refusal();
        return error(
            StatusCode::NOT_FOUND,
            "unknown-location",
            format!("no tenant here has HighLevel location {}: install the app there, or add a tenant for it", contact.location_id),
        )
        .into_response();
    };
    let shared = s.clone();
    let to = tenant.clone();
    let (status, mut answer) = match tokio::task::spawn_blocking(move || shared.receive(&to, Inbound::new(Source::HighLevelWebhook, body))).await {
        Ok(answered) => answered,
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, json!({"type": "host", "message": e.to_string()})),
    };
    if status.is_server_error() {
        // HighLevel retries a 429 and nothing else: a full inbox or dead-letter budget (507), a
        // store that failed (503) or a plugin that trapped (500) would otherwise lose the change.
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "60")], Json(answer)).into_response();
    }
    if status.is_success() {
        answer["tenant"] = Value::String(tenant);
    }
    (status, Json(answer)).into_response()
}

/// Acts on a verified app webhook.
async fn act_on(s: &impl Host, setup: &Setup, event: AppEvent) -> Response {
    let Ok(store) = store_of(s) else { return error(StatusCode::NOT_FOUND, "not-configured", "tenants are not enabled").into_response() };
    match event {
        AppEvent::Install(install) => {
            let Some(company) = install.company_id.clone() else {
                return (StatusCode::OK, Json(json!({"pending": install.locations(), "message": "finish the install from the setup page"}))).into_response();
            };
            let known = match store.list() {
                Ok(known) => known,
                Err(e) => return error(StatusCode::TOO_MANY_REQUESTS, "storage", format!("{e:#}")).into_response(),
            };
            let mut made = Vec::new();
            let mut pending = Vec::new();
            for location in install.locations() {
                match known.iter().find(|t| t.location_id == location).cloned() {
                    Some(tenant) => made.push(tenant.id),
                    None => match lifecycle::add_agency_location(store, &company, location) {
                        Ok(Some(tenant)) => made.push(tenant.id),
                        Ok(None) => pending.push(location.to_string()),
                        Err(e) => return error(StatusCode::TOO_MANY_REQUESTS, "storage", format!("{e:#}")).into_response(),
                    },
                }
            }
            let _ = s.tenants().refresh();
            (StatusCode::OK, Json(json!({"tenants": made, "pending": pending}))).into_response()
        }
        AppEvent::Uninstall(uninstall) => {
            let which = match (&uninstall.location_id, &uninstall.company_id) {
                (Some(location), _) => Uninstalled::Location(location),
                (None, Some(company)) => Uninstalled::Agency(company),
                (None, None) => return error(StatusCode::BAD_REQUEST, "invalid-input", "the UNINSTALL names no location and no company").into_response(),
            };
            let ids: Vec<String> = match lifecycle::uninstalled_tenants(store, &which) {
                Ok(tenants) => tenants.into_iter().map(|t| t.id).collect(),
                Err(e) => return error(StatusCode::TOO_MANY_REQUESTS, "storage", format!("{e:#}")).into_response(),
            };
            if let Err(e) = remove_tenants(s, &ids).await {
                return error(StatusCode::TOO_MANY_REQUESTS, "storage", format!("{e:#}")).into_response();
            }
            if let Uninstalled::Agency(company) = which {
                if let Err(e) = store.remove_secrets(&agency_owner(company)) {
                    return error(StatusCode::TOO_MANY_REQUESTS, "storage", format!("{e:#}")).into_response();
                }
                if let Some(marketplace) = &setup.marketplace {
                    marketplace.forget_agency(company);
                }
            }
            (StatusCode::OK, Json(json!({"removed": ids}))).into_response()
        }
        // Answered by the caller before the store is needed.
        other @ (AppEvent::Contact(_) | AppEvent::Other { .. }) => (StatusCode::OK, Json(json!({"ignored": other.kind()}))).into_response(),
    }
}

async fn reconcile_now<H: Host>(State(s): State<Arc<H>>) -> Answer {
    match reconcile_installs(&*s).await {
        Ok(drift) => (StatusCode::OK, Json(drift)),
        Err(e) => error(StatusCode::BAD_GATEWAY, "highlevel", format!("{e:#}")),
    }
}

/// How often `serve` compares each agency's tenants with HighLevel's list of installs.
pub const RECONCILE_INSTALLS_EVERY: Duration = Duration::from_secs(3600);

/// Compares every agency's tenants with `GET /oauth/installedLocations`: adds the locations
/// installed since, removes those uninstalled (an UNINSTALL that never came).
pub(super) async fn reconcile_installs(host: &impl Host) -> anyhow::Result<Value> {
    let (Some(setup), Some(store)) = (host.setup(), host.tenants().store()) else { return Ok(json!({"agencies": []})) };
    let Some(marketplace) = &setup.marketplace else { return Ok(json!({"agencies": []})) };
    let mut report = Vec::new();
    for company in store.agencies()? {
        match lifecycle::reconcile_agency(store, marketplace, &company).await {
            Ok(drift) => {
                remove_tenants(host, &drift.uninstalled).await?;
                report.push(json!({"company": company, "added": drift.added, "removed": drift.uninstalled}));
            }
            Err(e) => report.push(json!({"company": company, "error": format!("{e:#}")})),
        }
    }
    host.tenants().refresh()?;
    Ok(json!({"agencies": report}))
}

/// Removes tenants: their Dialpad registrations, the tenants and their secrets, and their
/// queued deliveries (cancelled). Returns how many existed.
async fn remove_tenants(host: &impl Host, ids: &[String]) -> anyhow::Result<usize> {
    let Some(store) = host.tenants().store() else { return Ok(0) };
    let (dialpad_api_base, timeout) =
        host.setup().map(|s| (s.dialpad_api_base.clone(), s.timeout)).unwrap_or_else(|| ("https://dialpad.com".into(), Duration::from_secs(30)));
    let mut removed = 0;
    for id in ids {
        if lifecycle::remove(store, id, &dialpad_api_base, timeout).await? {
            removed += 1;
        }
        let cancelled = host.inbox().cancel_tenant(id, &format!("tenant {id} was removed (uninstalled)"))?;
        tracing::info!("serve: tenant {id} removed; {cancelled} queued deliveries cancelled");
    }
    host.tenants().refresh()?;
    Ok(removed)
}
