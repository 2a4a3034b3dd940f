//! Who may reach `serve`, and from where (issue 14).
//!
//! - **Unsafe binds are refused** ([`check_binds`]): the webhook listener on a non-loopback
//!   address without a `webhook_secret`, the admin listener on one without an admin token,
//!   unless a loudly named flag says otherwise (then a warning is printed at start).
//! - **The admin side** ([`Guard`]), on every request:
//!   - `Host` must name the listener (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`, its own
//!     address when bound to one) or a name given with `--admin-host`: anything else is 421.
//!     A page that an attacker's DNS name points at 127.0.0.1 is refused (DNS rebinding).
//!   - A state-changing request (POST) must come from an allowed origin: its `Origin` (else its
//!     `Referer`) must name an allowed host. A POST with a session cookie and neither header is
//!     refused; a bearer-token call may omit both (it is no browser's ambient credential).
//!   - With an admin token, everything but `/healthz` and the login page needs
//!     `Authorization: Bearer <token>` or the session cookie `/login` sets: an API path answers
//!     401 JSON, a page redirects to `/login`. Without a token (loopback only, unless the loud
//!     flag), the admin side is open.
//!   - Every answer carries a Content-Security-Policy (scripts and styles only with the
//!     response's nonce, no framing), `X-Frame-Options: DENY`, `X-Content-Type-Options:
//!     nosniff`, `Referrer-Policy: same-origin` and `Cache-Control: no-store`.
//! - **The contact card** (`/card`, `/tenants/{tenant}/card`) is the one exception, because a
//!   Dialpad app panel or a CRM shows it in a frame: with a `card_key`, `?key=<card_key>` opens
//!   the cards (and nothing else) without the admin token, which a frame cannot send; with
//!   `card_frame_ancestors`, its CSP names those origins in `frame-ancestors` and it has no
//!   `X-Frame-Options`. It keeps the `Cache-Control` it sets, and sends no referrer at all,
//!   since its own URL may hold the key.

use crate::capability::secret::Secret;
use crate::engine::Runtime;
use crate::settings::CardSettings;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The environment variable the CLI reads the admin token from (or `--admin-token-file`).
pub const ADMIN_TOKEN_ENV: &str = "DIALPAD_GHL_ADMIN_TOKEN";
/// The flag that lets the webhook listener face a public address without verifying bodies.
pub const ALLOW_UNVERIFIED_WEBHOOKS: &str = "--allow-unverified-webhooks-on-public-address";
/// The flag that lets the admin listener face a public address without authentication.
pub const ALLOW_UNAUTHENTICATED_ADMIN: &str = "--allow-unauthenticated-admin-on-public-address";
/// The session cookie `/login` sets.
pub const SESSION_COOKIE: &str = "dialpad_ghl_session";
/// How long a browser session lasts after its login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; the oldest goes first (only a token holder can make one).
const MAX_SESSIONS: usize = 256;
/// The shortest admin token accepted.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Who may use the admin side, and which unsafe binds are allowed anyway.
#[derive(Clone, Debug, Default)]
pub struct AccessOptions {
    /// The admin token: `Authorization: Bearer <token>`, or typed into `/login`. Required for
    /// an admin listener on a non-loopback address (unless the flag below).
    pub admin_token: Option<Secret>,
    /// More names the admin listener answers for (a reverse proxy's `Host`): `name` (any port)
    /// or `name:port`.
    pub admin_hosts: Vec<String>,
    /// [`ALLOW_UNVERIFIED_WEBHOOKS`]: something in front of serve verifies the webhooks.
    pub allow_unverified_webhooks_on_public_address: bool,
    /// [`ALLOW_UNAUTHENTICATED_ADMIN`]: something in front of serve authenticates admins.
    pub allow_unauthenticated_admin_on_public_address: bool,
}

/// Whether the plugin verifies Dialpad's bodies: a non-empty `webhook_secret` is configured.
pub fn webhooks_verified(runtime: &Runtime) -> bool {
    runtime.plugin_setting("webhook_secret").and_then(|v| v.as_str().map(|s| !s.is_empty())).unwrap_or(false)
}

/// Refuses the binds that would expose serve without a check, and returns the warnings to print
/// for those a loud flag allows.
pub fn check_binds(listen: SocketAddr, admin_listen: SocketAddr, access: &AccessOptions, webhooks_verified: bool) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    if let Some(token) = &access.admin_token {
        if token.expose().chars().count() < MIN_TOKEN_CHARS {
            anyhow::bail!(
                "the admin token is too short ({} characters; at least {MIN_TOKEN_CHARS}): anyone could guess it. Use a long random one, \
                 e.g. `openssl rand -hex 32`",
                token.expose().chars().count()
            );
        }
    }
    if !listen.ip().is_loopback() && !webhooks_verified {
        if !access.allow_unverified_webhooks_on_public_address {
            anyhow::bail!(
                "refusing to receive webhooks on {listen}, which is not a loopback address, without verifying them: anyone who can reach \
                 it could post events that write to your HighLevel contacts. Set `webhook_secret` in the configuration (or \
                 --webhook-secret / DIALPAD_WEBHOOK_SECRET) to the secret of Dialpad's webhook, so that only signed bodies are accepted; \
                 or, if something in front of serve verifies them, pass {ALLOW_UNVERIFIED_WEBHOOKS}"
            );
        }
        warnings.push(format!("{ALLOW_UNVERIFIED_WEBHOOKS}: webhooks on {listen} are NOT verified (no webhook_secret); anyone who reaches it can post events"));
    }
    if !admin_listen.ip().is_loopback() && access.admin_token.is_none() {
        if !access.allow_unauthenticated_admin_on_public_address {
            anyhow::bail!(
                "refusing to serve the admin side on {admin_listen}, which is not a loopback address, without authentication: it shows \
                 every event's names, phones and e-mails, and can replay dead letters. Set an admin token ({ADMIN_TOKEN_ENV}, or \
                 --admin-token-file FILE); or, if something in front of serve authenticates its users, pass {ALLOW_UNAUTHENTICATED_ADMIN}"
            );
        }
        warnings.push(format!(
            "{ALLOW_UNAUTHENTICATED_ADMIN}: the admin side on {admin_listen} has NO authentication; anyone who reaches it reads every \
             event and can replay dead letters"
        ));
    }
    Ok(warnings)
}

/// A host the admin listener answers for: a lower-case name and, when it must match, a port.
#[derive(Clone, Debug, PartialEq)]
struct AllowedHost {
    name: String,
    port: Option<u16>,
}

/// `name`, `name:port`, `[v6]` or `[v6]:port` → the lower-case name (brackets kept) and port.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    if authority.is_empty() || authority.contains(['/', '@', ' ', '\\']) {
        return None;
    }
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{inside}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    ((!name.is_empty() && !name.contains(':')) || name.starts_with('[')).then(|| (name.to_ascii_lowercase(), port))
}

/// A random value, hex-encoded: session ids and nonces.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the system's random number generator");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(value: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(value.as_bytes()).into()
}

/// Whether `given` is the secret, in constant time. Digests first: equal lengths, so the
/// comparison's time says nothing of the length.
fn same_secret(secret: Option<&Secret>, given: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    secret.is_some_and(|secret| bool::from(digest(secret.expose()).ct_eq(&digest(given))))
}

/// The per-response nonce that lets the page's own `<script>` and `<style>` run under the CSP.
#[derive(Clone, Debug)]
pub struct Nonce(String);

impl Nonce {
    /// `page` with every `{{nonce}}` replaced by this nonce.
    pub fn fill(&self, page: &str) -> String {
        page.replace("{{nonce}}", &self.0)
    }
}

/// A browser session: until when, and the name its person gave at the login (for the audit log).
struct Session {
    expires: Instant,
    name: String,
}

/// Who makes a request on the admin side, as the audit log names them: the name given at the
/// login with the session's short id, the admin token's API client, or, without a token, anyone
/// who reaches the listener.
#[derive(Clone, Debug)]
pub struct Actor(pub String);

/// The admin side's gate: allowed hosts, the token, the browser sessions.
pub struct Guard {
    token: Option<Secret>,
    hosts: Vec<AllowedHost>,
    /// Whether the session cookie says `Secure`: not on a loopback listener, which speaks
    /// plain HTTP there and whose cookie a browser would drop (browsers keep a Secure cookie
    /// only from https, or from http://localhost in some but not all of them). Off loopback, the
    /// admin side is meant to be reached through TLS (a reverse proxy), so the cookie is Secure.
    secure_cookie: bool,
    /// SHA-256 of each session id → when it expires. The digest is what is looked up, so the
    /// lookup's timing tells nothing about a valid id.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// `card_key`: opens the card paths, read-only, as `?key=`.
    card_key: Option<Secret>,
    /// `card_frame_ancestors`, checked sources joined by spaces; empty: the card is not framed.
    card_frame_ancestors: String,
}

impl Guard {
    /// The gate of the admin listener bound at `admin`; `card` says who else may open the
    /// contact card and who may frame it.
    pub fn new(options: &AccessOptions, admin: SocketAddr, card: &CardSettings) -> Arc<Guard> {
        let port = admin.port();
        let mut hosts: Vec<AllowedHost> =
            ["127.0.0.1", "localhost", "[::1]"].into_iter().map(|name| AllowedHost { name: name.into(), port: Some(port) }).collect();
        if !admin.ip().is_unspecified() && !admin.ip().is_loopback() {
            let name = match admin.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            };
            hosts.push(AllowedHost { name, port: Some(port) });
        }
        for given in &options.admin_hosts {
            match split_authority(given) {
                Some((name, port)) => hosts.push(AllowedHost { name, port }),
                None => tracing::warn!("serve: --admin-host {given:?} is not a host name (name or name:port): ignored"),
            }
        }
        // Checked when the settings were read; checked again here because the CSP header takes
        // them as they are.
        let ancestors: Vec<String> = card.frame_ancestors.iter().filter_map(|a| crate::settings::frame_ancestor(a)).collect();
        Arc::new(Guard {
            token: options.admin_token.clone(),
            hosts,
            secure_cookie: !admin.ip().is_loopback(),
            sessions: Mutex::new(HashMap::new()),
            card_key: card.key.clone(),
            card_frame_ancestors: ancestors.join(" "),
        })
    }

    /// Whether an authority (a `Host` header, an origin's host and port) names this listener.
    fn allowed(&self, authority: &str) -> bool {
        let Some((name, port)) = split_authority(authority) else { return false };
        self.hosts.iter().any(|h| h.name == name && (h.port.is_none() || h.port == Some(port.unwrap_or(80))))
    }

    /// Whether an `Origin` or `Referer` value names an allowed host over http(s).
    fn allowed_origin(&self, origin: &str) -> bool {
        let Some((scheme, rest)) = origin.split_once("://") else { return false };
        if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
            return false;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let Some((name, port)) = split_authority(authority) else { return false };
        let port = port.unwrap_or(if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 });
        self.hosts.iter().any(|h| h.name == name && (h.port.is_none() || h.port == Some(port)))
    }

    fn token_matches(&self, given: &str) -> bool {
        same_secret(self.token.as_ref(), given)
    }

    /// Whether a request to a card path may go on with its `?key=`: `None` when the key is the
    /// card key, else the refusal. Only reading: the card routes answer GET alone.
    fn card_key_check(&self, query: Option<&str>) -> Option<Response> {
        let given = query.and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(name, _)| name == "key").map(|(_, value)| value.into_owned()));
        let message = match given {
            Some(key) if same_secret(self.card_key.as_ref(), &key) => return None,
            Some(_) if self.card_key.is_some() => {
                tracing::warn!("serve: a card request with a wrong card key");
                "The card key in this link is wrong."
            }
            Some(_) => "This host has no card key: open the card as an admin (log in at /login, or send Authorization: Bearer <admin token>).",
            None => "This card needs the admin token (a login at /login, or Authorization: Bearer <token>), or the card key as ?key=.",
        };
        // A page, not JSON: a person sees it, often inside a Dialpad or CRM panel.
        let page = format!("<!doctype html>\n<html lang=\"en\"><meta charset=\"utf-8\"><title>Not allowed</title><p>{message}</p></html>\n");
        let mut answer = (StatusCode::UNAUTHORIZED, Html(page)).into_response();
        answer.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"dialpad-ghl admin\""));
        Some(answer)
    }

    fn bearer(headers: &HeaderMap) -> Option<&str> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    fn session_cookie(headers: &HeaderMap) -> Option<&str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.trim())
    }

    fn session_valid(&self, id: &str) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let key = digest(id);
        match sessions.get(&key) {
            Some(session) if session.expires > Instant::now() => true,
            Some(_) => {
                sessions.remove(&key);
                false
            }
            None => false,
        }
    }

    fn new_session(&self, name: &str) -> String {
        let id = random_hex(32);
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, session| session.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions.iter().min_by_key(|(_, session)| session.expires).map(|(k, _)| *k) {
                sessions.remove(&oldest);
            }
        }
        // A name is a label, not a credential: trimmed, printable, short.
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(60).collect();
        sessions.insert(digest(&id), Session { expires: now + SESSION_TTL, name });
        id
    }

    /// Who a request that passed the gate comes from (see [`Actor`]).
    fn actor(&self, headers: &HeaderMap) -> Actor {
        if Guard::bearer(headers).is_some_and(|given| self.token_matches(given)) {
            return Actor("API client (admin token)".into());
        }
        if let Some(id) = Guard::session_cookie(headers) {
            let key = digest(id);
            let short: String = key[..3].iter().map(|b| format!("{b:02x}")).collect();
            if let Some(session) = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
                let who = if session.name.is_empty() { "browser" } else { session.name.as_str() };
                return Actor(format!("{who} (session {short})"));
            }
        }
        Actor("anyone on the admin listener (no admin token set)".into())
    }

    fn cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        HeaderValue::from_str(&format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"))
            .expect("a cookie of hex digits")
    }

    /// `router` (the admin router) with the login page and this gate in front of every route.
    pub fn protect(self: &Arc<Self>, router: Router) -> Router {
        let login = Router::new().route("/login", get(login_page).post(login)).route("/logout", post(logout)).with_state(self.clone());
        router.merge(login).layer(axum::middleware::from_fn_with_state(self.clone(), gate))
    }
}

/// A refusal as JSON: `{"type": …, "message": …}`.
fn refusal(status: StatusCode, kind: &str, message: String) -> Response {
    (status, Json(json!({"type": kind, "message": message}))).into_response()
}

/// Paths anyone who passes the Host and Origin checks may reach.
fn public(path: &str) -> bool {
    matches!(path, "/healthz" | "/login" | "/logout")
}

/// Paths that answer JSON (or text for machines): unauthenticated, 401 instead of a redirect.
fn machine_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/api" || path == "/metrics"
}

/// The contact card's paths: `/card` and `/tenants/{tenant}/card`.
pub fn card_path(path: &str) -> bool {
    path == "/card"
        || path.strip_prefix("/tenants/").and_then(|rest| rest.strip_suffix("/card")).is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}

async fn gate(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    let nonce = Nonce(random_hex(16));
    let card = card_path(request.uri().path());
    let asset = request.uri().path().starts_with("/assets/");
    let mut response = match check(&guard, &request) {
        Some(refused) => refused,
        None => {
            request.extensions_mut().insert(nonce.clone());
            let actor = guard.actor(request.headers());
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
    };
    let headers = response.headers_mut();
    let framed = card && !guard.card_frame_ancestors.is_empty();
    let csp = if card {
        // The card has one style and no script, form, image or fetch of its own.
        let ancestors = if framed { guard.card_frame_ancestors.as_str() } else { "'none'" };
        format!("default-src 'none'; style-src 'nonce-{n}'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}", n = nonce.0)
    } else {
        format!(
            "default-src 'self'; script-src 'nonce-{n}'; style-src 'nonce-{n}'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            n = nonce.0
        )
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("an ASCII policy"));
    // `frame-ancestors` wins over X-Frame-Options in every current browser, but an older one
    // would obey DENY and refuse the frame the operator allowed.
    if !framed {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer` on the admin pages: under it a browser sends `Origin: null` with the
    // page's own form posts (/login, /logout), which the origin check would refuse.
    // `same-origin` sends nothing to other sites all the same. The card has no form, and its
    // URL may hold the card key: it sends no referrer, not even to this host.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static(if card { "no-referrer" } else { "same-origin" }));
    // The card says how long its view stays fresh (the plugin's cache), a vendored asset that
    // its URL names its version; everything else, and a card's refusal, is never stored.
    if !((card || asset) && headers.contains_key(header::CACHE_CONTROL)) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // A frame the operator allowed may sit in a page that demands CORP of what it embeds.
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static(if framed { "cross-origin" } else { "same-origin" }));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

/// The refusal for `request`, or `None` when it may go on.
fn check(guard: &Guard, request: &Request) -> Option<Response> {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| request.uri().authority().map(|a| a.as_str()));
    match host {
        Some(host) if guard.allowed(host) => {}
        Some(host) => {
            return Some(refusal(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected",
                format!("this admin listener does not answer for the host {host:?}; if that is its name, start serve with --admin-host {host}"),
            ))
        }
        None => return Some(refusal(StatusCode::MISDIRECTED_REQUEST, "misdirected", "the request names no host".into())),
    }
    let bearer = Guard::bearer(headers);
    let bearer_ok = bearer.is_some_and(|given| guard.token_matches(given));
    let cookie = Guard::session_cookie(headers);
    let state_changing = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if state_changing && !bearer_ok {
        let origin = headers.get(header::ORIGIN).or_else(|| headers.get(header::REFERER)).map(|v| v.to_str().unwrap_or("null"));
        match origin {
            Some(origin) if guard.allowed_origin(origin) => {}
            Some(origin) => {
                return Some(refusal(
                    StatusCode::FORBIDDEN,
                    "cross-origin",
                    format!("refused: this request comes from another site ({origin}); the admin side only takes changes from its own pages"),
                ))
            }
            None if cookie.is_some() => {
                return Some(refusal(
                    StatusCode::FORBIDDEN,
                    "cross-origin",
                    "refused: a change with a session cookie must say where it comes from (Origin); API clients send Authorization: Bearer".into(),
                ))
            }
            None => {}
        }
    }
    let path = request.uri().path();
    if guard.token.is_none() || bearer_ok || public(path) || cookie.is_some_and(|id| guard.session_valid(id)) {
        return None;
    }
    // A frame cannot send the token and a cross-site one never sends the SameSite=Strict
    // session cookie: the card answers 401 with what to do, never the login redirect, whose
    // page refuses to be framed.
    if card_path(path) && bearer.is_none() && !state_changing {
        return guard.card_key_check(request.uri().query());
    }
    if machine_path(path) || bearer.is_some() {
        let mut answer = refusal(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            if bearer.is_some() {
                "the admin token is wrong".into()
            } else {
                "the admin side needs the admin token: send Authorization: Bearer <token>, or log in at /login".into()
            },
        );
        answer.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"dialpad-ghl admin\""));
        return Some(answer);
    }
    Some(Redirect::to("/login").into_response())
}

const LOGIN_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Dialpad ⇄ HighLevel sync — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="{{nonce}}">
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { background: #1d2330; color: #fff; padding: 12px 20px; }
  header h1 { font-size: 17px; margin: 0; }
  form { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 16px; margin: 24px 20px; max-width: 420px; }
  label { display: block; margin-bottom: 10px; }
  input { font: inherit; width: 100%; box-sizing: border-box; padding: 4px 6px; margin-top: 4px; }
  button { font: inherit; padding: 3px 12px; border-radius: 4px; border: 1px solid #2a5bd7; background: #2a5bd7; color: #fff; cursor: pointer; }
  .failed { color: #9b1c1c; }
  .hint { color: #6b7280; }
</style>
</head>
<body>
<header><h1>Dialpad ⇄ HighLevel sync</h1></header>
<form method="post" action="/login">
  {{message}}
  <label>Your name <span class="hint">(optional: the audit log names who replayed or discarded what)</span>
    <input type="text" name="name" autocomplete="name" maxlength="60"></label>
  <label>Admin token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
  <button type="submit">Log in</button>
</form>
</body>
</html>
"#;

fn login_form(nonce: &Nonce, message: &str) -> Html<String> {
    Html(nonce.fill(LOGIN_PAGE).replace("{{message}}", message))
}

async fn login_page(State(guard): State<Arc<Guard>>, Extension(nonce): Extension<Nonce>, headers: HeaderMap) -> Response {
    if guard.token.is_none() || Guard::session_cookie(&headers).is_some_and(|id| guard.session_valid(id)) {
        return Redirect::to("/").into_response();
    }
    login_form(&nonce, "").into_response()
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
    /// Who is logging in, for the audit log (optional).
    #[serde(default)]
    name: String,
}

async fn login(State(guard): State<Arc<Guard>>, Extension(nonce): Extension<Nonce>, Form(form): Form<LoginForm>) -> Response {
    if guard.token.is_none() {
        return Redirect::to("/").into_response();
    }
    if !guard.token_matches(&form.token) {
        tracing::warn!("serve: a login with a wrong admin token");
        return (StatusCode::UNAUTHORIZED, login_form(&nonce, r#"<p class="failed">That is not the admin token.</p>"#)).into_response();
    }
    let id = guard.new_session(&form.name);
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(header::SET_COOKIE, guard.cookie(&id, SESSION_TTL.as_secs()));
    response
}

async fn logout(State(guard): State<Arc<Guard>>, headers: HeaderMap) -> Response {
    if let Some(id) = Guard::session_cookie(&headers) {
        guard.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&digest(id));
    }
    let mut response = Redirect::to(if guard.token.is_some() { "/login" } else { "/" }).into_response();
    response.headers_mut().insert(header::SET_COOKIE, guard.cookie("", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hosts: &[&str]) -> Arc<Guard> {
        let options = AccessOptions { admin_hosts: hosts.iter().map(|h| h.to_string()).collect(), ..AccessOptions::default() };
        Guard::new(&options, "127.0.0.1:8791".parse().unwrap(), &CardSettings::default())
    }

    #[test]
    fn hosts_name_the_listener_or_a_given_name() {
        let g = guard(&["admin.example.com", "proxy.example:8443"]);
        for ok in ["127.0.0.1:8791", "localhost:8791", "LOCALHOST:8791", "[::1]:8791", "admin.example.com", "admin.example.com:443", "proxy.example:8443"] {
            assert!(g.allowed(ok), "{ok}");
        }
        for bad in ["attacker.example:8791", "127.0.0.1:8792", "localhost", "proxy.example", "127.0.0.1:8791@x", "", "[::1"] {
            assert!(!g.allowed(bad), "{bad}");
        }
        assert!(g.allowed_origin("http://127.0.0.1:8791") && g.allowed_origin("https://admin.example.com"));
        assert!(g.allowed_origin("http://localhost:8791/page?x"));
        for bad in ["null", "http://attacker.example:8791", "file://127.0.0.1:8791", "http://127.0.0.1:8791.attacker.example"] {
            assert!(!g.allowed_origin(bad), "{bad}");
        }
    }

    #[test]
    fn unsafe_binds_need_the_loud_flags() {
        let (public, local) = ("0.0.0.0:8790".parse().unwrap(), "127.0.0.1:8791".parse().unwrap());
        let none = AccessOptions::default();
        assert!(check_binds(local, local, &none, false).unwrap().is_empty());
        let e = check_binds(public, local, &none, false).unwrap_err().to_string();
        assert!(e.contains("webhook_secret") && e.contains(ALLOW_UNVERIFIED_WEBHOOKS), "{e}");
        assert!(check_binds(public, local, &none, true).unwrap().is_empty());
        let e = check_binds(local, public, &none, true).unwrap_err().to_string();
        assert!(e.contains(ADMIN_TOKEN_ENV) && e.contains(ALLOW_UNAUTHENTICATED_ADMIN), "{e}");
        let loud = AccessOptions { allow_unauthenticated_admin_on_public_address: true, allow_unverified_webhooks_on_public_address: true, ..none };
        assert_eq!(check_binds(public, public, &loud, false).unwrap().len(), 2);
        let short = AccessOptions { admin_token: Some(Secret::new("short")), ..AccessOptions::default() };
        assert!(check_binds(local, local, &short, false).unwrap_err().to_string().contains("too short"));
    }
}
