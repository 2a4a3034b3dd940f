//! Host settings: the plugin's configuration (given to it through `wasi:config`) and what the
//! host keeps to itself (the API credential, limits). The credential is taken out of the
//! configuration before the plugin sees it and injected by the outbound policy instead.

use crate::capability::outbound::{BreakerSettings, CircuitBreaker, Origin, OutboundPolicy, RateLimiter, RouteLimit};
use crate::capability::secret::Secret;
use crate::engine::RuntimeOptions;
use crate::oauth::{OAuthSettings, OAuthTokens};
use crate::serve::alerts::AlertSettings;
use crate::storage::db::Location;
use anyhow::{bail, Context as _};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Settings {
    /// The plugin configuration JSON object (see `meta.config-schema`), without the token.
    pub plugin_config: Map<String, Value>,
    /// Bearer token for the Contacts API, injected by the host.
    pub token: Option<Secret>,
    /// Per-request deadline of the outbound policy.
    pub request_timeout: Duration,
    /// Deadline of a connection (`connect_timeout_seconds`): a blackholed API is usually a
    /// connect that never completes.
    pub connect_timeout: Duration,
    /// The circuit breakers of HighLevel's and Dialpad's origins (`circuit_breaker`), shared
    /// like the rate limiters. `None`: requests always go out.
    pub api_breaker: Option<Arc<CircuitBreaker>>,
    pub dialpad_breaker: Option<Arc<CircuitBreaker>>,
    pub memory_limit_bytes: usize,
    /// Budget of one event.
    pub event_deadline: Duration,
    /// Keeps the location under HighLevel's burst limit; shared by the runtimes built from
    /// these settings (and their clones). `None`: no limit (tests of the API's own 429s).
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// OAuth location tokens for the API origin, instead of `token`.
    pub oauth: Option<Arc<OAuthTokens>>,
    /// The configuration's `oauth` section, until [`Settings::start_oauth`] makes `oauth` of it.
    pub oauth_app: Option<OAuthApp>,
    /// Dialpad API key, injected by the host into requests to Dialpad's origin (the backfill's
    /// call listing). Dialpad's origin is allowed only when this is set.
    pub dialpad_key: Option<Secret>,
    /// Keeps the call listing under Dialpad's limit (1,200 requests per minute).
    pub dialpad_rate_limiter: Option<Arc<RateLimiter>>,
    /// Keeps two-way sync's contact creates under Dialpad's limit (100 a minute per company):
    /// a create over it waits for a place (up to [`DIALPAD_CONTACT_CREATE_WAIT`]) instead of
    /// being answered 429. Shared like the others; each tenant has its own.
    pub dialpad_contact_limiter: Option<Arc<RateLimiter>>,
    /// `serve`'s scheduled reconciliation: every `every`, the calls of the last `window` are
    /// listed and synced, so a call whose webhook never came is caught.
    pub reconcile: Option<Reconcile>,
    /// Connecting accounts: the Marketplace app, where Dialpad reaches this host, what to
    /// subscribe to (`marketplace`, `public_url`, `dialpad_call_states`).
    pub connect: ConnectSettings,
    /// `serve`'s contact card: its key, who may frame it, where its link goes.
    pub card: CardSettings,
    /// `serve`'s alerts (`alerts`): where incidents are told, and the rules of what is one.
    pub alerts: AlertSettings,
    /// The database several `serve` replicas share (PostgreSQL), when they do: the rate
    /// limiters of HighLevel's and Dialpad's origins then keep their places there, keyed by
    /// origin and location, so the replicas together stay under each limit. `None`: in memory.
    pub shared_store: Option<Location>,
}

/// HighLevel's web app, where the card's "Open in HighLevel" link goes by default.
pub const DEFAULT_HIGHLEVEL_APP_URL: &str = "https://app.gohighlevel.com";
/// The shortest `card_key` accepted: it is a password that travels in URLs.
pub const MIN_CARD_KEY_CHARS: usize = 16;

/// The contact card `serve` shows on its admin listener (`/card`, see `docs/operating.md`).
#[derive(Clone, Debug)]
pub struct CardSettings {
    /// `card_key`: opens the cards, and nothing else, as `?key=`. A frame in a Dialpad app panel
    /// or a CRM can neither send the admin token nor carry the admin session (its cookie is
    /// SameSite=Strict, so a cross-site frame never sends it).
    pub key: Option<Secret>,
    /// `card_frame_ancestors`: the origins that may show the card in a frame (CSP
    /// `frame-ancestors` sources); empty: nobody may frame it.
    pub frame_ancestors: Vec<String>,
    /// `highlevel_app_url`: HighLevel's web app, a white-label agency's own domain included,
    /// without a trailing slash.
    pub app_url: String,
    /// `highlevel_links`: where the card's and the console's links go.
    pub links: LinkTemplates,
}

impl Default for CardSettings {
    fn default() -> Self {
        CardSettings { key: None, frame_ancestors: Vec::new(), app_url: DEFAULT_HIGHLEVEL_APP_URL.into(), links: LinkTemplates::default() }
    }
}

/// `highlevel_links`: URL templates of a HighLevel contact, note and call entry, with
/// `{app}` (`highlevel_app_url`), `{locationId}`, `{contactId}`, `{noteId}` and
/// `{callEntryId}`. HighLevel shows a contact's notes and its conversation on the contact's
/// page and documents no link to one note or one message, so the note and the call entry go
/// to their contact's page unless the operator knows better.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTemplates {
    pub contact: String,
    pub note: String,
    pub call_entry: String,
}

pub const DEFAULT_CONTACT_LINK: &str = "{app}/v2/location/{locationId}/contacts/detail/{contactId}";

impl Default for LinkTemplates {
    fn default() -> Self {
        LinkTemplates { contact: DEFAULT_CONTACT_LINK.into(), note: DEFAULT_CONTACT_LINK.into(), call_entry: DEFAULT_CONTACT_LINK.into() }
    }
}

/// The ids a link template may name.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkIds<'a> {
    pub location_id: &'a str,
    pub contact_id: Option<&'a str>,
    pub note_id: Option<&'a str>,
    pub call_entry_id: Option<&'a str>,
}

impl LinkTemplates {
    const PLACEHOLDERS: [&'static str; 5] = ["{app}", "{locationId}", "{contactId}", "{noteId}", "{callEntryId}"];

    /// `template` filled in, each id percent-encoded; `None` when it names an id not known.
    pub fn render(template: &str, app_url: &str, ids: LinkIds<'_>) -> Option<String> {
        let mut out = template.replace("{app}", app_url.trim_end_matches('/'));
        for (placeholder, value) in
            [("{locationId}", Some(ids.location_id)), ("{contactId}", ids.contact_id), ("{noteId}", ids.note_id), ("{callEntryId}", ids.call_entry_id)]
        {
            if out.contains(placeholder) {
                out = out.replace(placeholder, &path_segment(value.filter(|v| !v.is_empty())?));
            }
        }
        Some(out)
    }

    /// A template as given: an http(s) URL once filled in, naming only known placeholders.
    fn check(name: &str, template: &str) -> Result<String, String> {
        let mut rest = template.to_string();
        for placeholder in Self::PLACEHOLDERS {
            rest = rest.replace(placeholder, "x");
        }
        if let Some(at) = rest.find('{') {
            return Err(format!("highlevel_links.{name} names {}, which is not one of {}", &rest[at..], Self::PLACEHOLDERS.join(", ")));
        }
        let filled = rest.replacen("x", "https://app.example", usize::from(template.starts_with("{app}")));
        match url::Url::parse(&filled) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(template.trim().to_string()),
            _ => Err(format!("highlevel_links.{name} must be an http(s) URL template, such as {DEFAULT_CONTACT_LINK}")),
        }
    }
}

/// `/`-free and percent-encoded: an id put into a link's path.
pub fn path_segment(id: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A `frame-ancestors` source as the card's CSP takes it: `'self'`, or an http(s) origin whose
/// host may start with `*.` and whose port may be `*`. Anything else is refused, since the
/// value goes into a response header as it is (a `;` would add a directive).
pub fn frame_ancestor(given: &str) -> Option<String> {
    let given = given.trim().trim_end_matches('/');
    if given == "'self'" {
        return Some(given.into());
    }
    let (scheme, authority) = given.split_once("://")?;
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |label: &str| !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let host_ok = !bare.is_empty() && bare.split('.').all(label_ok);
    let port_ok = port.is_none_or(|p| p == "*" || (!p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit())));
    (host_ok && port_ok).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

/// The host's settings for installs and connections (see `docs/connect.md`).
#[derive(Clone, Debug, Default)]
pub struct ConnectSettings {
    pub marketplace: Option<MarketplaceSettings>,
    /// Where Dialpad reaches the webhook listener (`https://sync.example.com`): each tenant's
    /// webhook is `<public_url>/webhooks/dialpad/<tenant>`.
    pub public_url: Option<String>,
    /// The call states subscribed to at Dialpad (default [`SYNC_CALL_STATES`]).
    pub call_states: Vec<String>,
    /// A Dialpad OAuth app (`dialpad_oauth`): tenants connect Dialpad by authorizing it instead
    /// of pasting an API key.
    pub dialpad_oauth: Option<DialpadOAuthSettings>,
}

/// A Dialpad OAuth app (`dialpad_oauth` in the configuration).
#[derive(Clone, Debug)]
pub struct DialpadOAuthSettings {
    pub client_id: String,
    pub client_secret: Secret,
    /// Default: `<admin address>/oauth/dialpad/callback`.
    pub redirect_uri: Option<String>,
    pub scopes: Vec<String>,
}

impl DialpadOAuthSettings {
    /// The app as the connect client uses it, on Dialpad at `dialpad_base`.
    pub fn app(&self, dialpad_base: &str, default_redirect: &str, timeout: Duration) -> crate::connect::dialpad::DialpadOAuthApp {
        crate::connect::dialpad::DialpadOAuthApp {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            redirect_uri: self.redirect_uri.clone().unwrap_or_else(|| default_redirect.to_string()),
            scopes: self.scopes.clone(),
            authorize_base: dialpad_base.to_string(),
            timeout,
        }
    }
}

/// The HighLevel Marketplace app this host is installed as (`marketplace` in the configuration).
#[derive(Clone, Debug)]
pub struct MarketplaceSettings {
    pub client_id: String,
    pub client_secret: Secret,
    pub app_id: Option<String>,
    /// Default: `<admin address>/oauth/highlevel/callback`.
    pub redirect_uri: Option<String>,
    pub scopes: Vec<String>,
    /// Default: HighLevel's (`marketplace.leadconnectorhq.com` for white-label agencies).
    pub marketplace_base: Option<String>,
    /// The app's Ed25519 public key, which verifies `x-ghl-signature` (PEM, base64 or hex).
    pub webhook_public_key: Option<String>,
    /// The legacy `x-wh-signature` (RSA) is accepted only when set: `Some(None)` for HighLevel's
    /// published key, `Some(Some(pem))` for another.
    pub legacy_webhook_key: Option<Option<String>>,
}

/// The call states the sync subscribes to: the ends of calls and what arrives after them
/// (voicemail, recording, transcripts, the Ai recap).
pub const SYNC_CALL_STATES: [&str; 10] = [
    "hangup",
    "missed",
    "voicemail",
    "voicemail_uploaded",
    "recording",
    "transcription",
    "call_transcription",
    "recap_summary",
    "recap_action_items",
    "recap_outcome",
];

/// What a Marketplace app asks for by default: Contacts, and the agency's installed locations
/// and their tokens.
pub const DEFAULT_SCOPES: [&str; 5] = ["contacts.readonly", "contacts.write", "locations.readonly", "oauth.readonly", "oauth.write"];

impl MarketplaceSettings {
    /// The app as the connect client uses it: HighLevel at `api_base`, the code coming back to
    /// the redirect URI (or, when none is configured, `default_redirect`).
    pub fn app(&self, api_base: &str, default_redirect: &str, timeout: Duration) -> crate::connect::highlevel::MarketplaceApp {
        let mut app = crate::connect::highlevel::MarketplaceApp::new(
            self.client_id.clone(),
            self.client_secret.clone(),
            self.redirect_uri.clone().unwrap_or_else(|| default_redirect.to_string()),
            self.scopes.clone(),
        );
        app.app_id = self.app_id.clone();
        app.api_base = api_base.to_string();
        if let Some(base) = &self.marketplace_base {
            app.marketplace_base = base.clone();
        }
        app.timeout = timeout;
        app
    }

    fn from_json(value: &Value, path: &Path) -> anyhow::Result<MarketplaceSettings> {
        const KEYS: [&str; 8] =
            ["client_id", "client_secret", "app_id", "redirect_uri", "scopes", "marketplace_base", "webhook_public_key", "legacy_webhook_key"];
        let Value::Object(given) = value else { bail!("{}: marketplace must be an object", path.display()) };
        if let Some(unknown) = given.keys().find(|k| !KEYS.contains(&k.as_str())) {
            bail!("{}: marketplace has no key {unknown:?} (it takes {})", path.display(), KEYS.join(", "));
        }
        let text = |key: &str| -> anyhow::Result<Option<String>> {
            match given.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(_) => bail!("{}: marketplace.{key} must be a non-empty string", path.display()),
            }
        };
        let (Some(client_id), Some(client_secret)) = (text("client_id")?, text("client_secret")?) else {
            bail!("{}: marketplace needs client_id and client_secret (the app's, from the Marketplace's Advanced Settings → Auth)", path.display());
        };
        let scopes = match given.get("scopes") {
            None => DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
            Some(Value::Array(list)) if list.iter().all(Value::is_string) && !list.is_empty() => {
                list.iter().filter_map(Value::as_str).map(str::to_string).collect()
            }
            Some(_) => bail!("{}: marketplace.scopes must be a list of scope names", path.display()),
        };
        let legacy_webhook_key = match given.get("legacy_webhook_key") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(None),
            Some(Value::String(pem)) => Some(Some(pem.clone())),
            Some(_) => bail!("{}: marketplace.legacy_webhook_key must be true (HighLevel's published key) or a PEM", path.display()),
        };
        Ok(MarketplaceSettings {
            client_id,
            client_secret: Secret::new(client_secret),
            app_id: text("app_id")?,
            redirect_uri: text("redirect_uri")?,
            scopes,
            marketplace_base: text("marketplace_base")?,
            webhook_public_key: text("webhook_public_key")?,
            legacy_webhook_key,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconcile {
    pub every: Duration,
    pub window: Duration,
}

/// Dialpad's contact-create endpoint: `POST` creates, `PUT` creates or updates by `uid`.
pub const DIALPAD_CONTACTS_PATH: &str = "/api/v2/contacts";

/// The longest a contact create waits for a place under Dialpad's limit: the limit's own
/// minute (the event's deadline may cut it shorter, see the outbound hooks).
pub const DIALPAD_CONTACT_CREATE_WAIT: Duration = Duration::from_secs(60);

/// An OAuth app's credentials and the location's refresh token, as configured.
#[derive(Clone, Debug)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Default: `<api_base>/oauth/token`, HighLevel's.
    pub token_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            plugin_config: Map::new(),
            token: None,
            request_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            api_breaker: Some(Arc::new(CircuitBreaker::new(BreakerSettings::default()))),
            dialpad_breaker: Some(Arc::new(CircuitBreaker::new(BreakerSettings::default()))),
            memory_limit_bytes: 64 << 20,
            event_deadline: Duration::from_secs(60),
            rate_limiter: Some(Arc::new(RateLimiter::highlevel())),
            oauth: None,
            oauth_app: None,
            dialpad_key: None,
            dialpad_rate_limiter: Some(Arc::new(RateLimiter::new(1200, Duration::from_secs(60)))),
            dialpad_contact_limiter: Some(Arc::new(RateLimiter::dialpad_contact_creates())),
            reconcile: None,
            connect: ConnectSettings::default(),
            card: CardSettings::default(),
            alerts: AlertSettings::default(),
            shared_store: None,
        }
    }
}

/// A configuration file as JSON: JSON as written, or TOML (by its `.toml` extension) converted.
pub fn config_document(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))
    } else {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    }
}

impl Settings {
    /// Reads a configuration file (JSON, or TOML when it ends in `.toml`): the plugin's
    /// settings, plus `token` for the host.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let Value::Object(map) = config_document(path)? else { bail!("{} must hold an object (a table)", path.display()) };
        let mut settings = Settings { plugin_config: map, ..Settings::default() };
        if let Some(oauth) = settings.plugin_config.remove("oauth") {
            let text = |key: &str| oauth.get(key).and_then(Value::as_str).map(str::to_string);
            let (Some(client_id), Some(client_secret), Some(refresh_token)) = (text("client_id"), text("client_secret"), text("refresh_token")) else {
                bail!("{}: oauth needs client_id, client_secret and refresh_token", path.display());
            };
            settings.oauth_app = Some(OAuthApp {
                client_id,
                client_secret: Secret::new(client_secret),
                refresh_token: Secret::new(refresh_token),
                token_url: text("token_url"),
            });
        }
        // `{"requests": 100, "per_seconds": 10}` (HighLevel's burst limit, the default), or
        // `false` to send without waiting (an API with no limit, a load test).
        match settings.plugin_config.remove("rate_limit") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(false)) => settings.rate_limiter = None,
            Some(limit) => {
                let (Some(requests), Some(per_seconds)) = (limit.get("requests").and_then(Value::as_u64), limit.get("per_seconds").and_then(Value::as_f64))
                else {
                    bail!("{}: rate_limit must be false or {{\"requests\": <n>, \"per_seconds\": <s>}}", path.display());
                };
                if requests == 0 || per_seconds <= 0.0 {
                    bail!("{}: rate_limit needs requests > 0 and per_seconds > 0", path.display());
                }
                settings.rate_limiter = Some(Arc::new(RateLimiter::new(requests.min(u32::MAX as u64) as u32, std::time::Duration::from_secs_f64(per_seconds))));
            }
        }
        settings.read_upstream_keys(path)?;
        if let Some(key) = settings.plugin_config.remove("dialpad_api_key") {
            match key {
                Value::String(k) if !k.is_empty() => settings.dialpad_key = Some(Secret::new(k)),
                Value::String(_) | Value::Null => {}
                _ => bail!("{}: dialpad_api_key must be a string", path.display()),
            }
        }
        // `{"every_seconds": 900, "window_seconds": 86400}`.
        if let Some(reconcile) = settings.plugin_config.remove("reconcile") {
            let seconds = |key: &str| reconcile.get(key).and_then(Value::as_f64).filter(|s| *s > 0.0).map(Duration::from_secs_f64);
            let (Some(every), Some(window)) = (seconds("every_seconds"), seconds("window_seconds")) else {
                bail!("{}: reconcile needs every_seconds > 0 and window_seconds > 0", path.display());
            };
            settings.reconcile = Some(Reconcile { every, window });
        }
        settings.read_connect_keys(path)?;
        settings.read_card_keys(path)?;
        if let Some(alerts) = settings.plugin_config.remove("alerts").filter(|v| !v.is_null()) {
            settings.alerts = AlertSettings::from_json(&alerts).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
        if let Some(token) = settings.plugin_config.remove("token") {
            match token {
                Value::String(t) if !t.is_empty() => settings.token = Some(Secret::new(t)),
                Value::Null => {}
                Value::String(_) => {}
                _ => bail!("{}: token must be a string", path.display()),
            }
        }
        Ok(settings)
    }

    /// `marketplace`, `dialpad_oauth`, `public_url` and `dialpad_call_states`.
    fn read_connect_keys(&mut self, path: &Path) -> anyhow::Result<()> {
        if let Some(marketplace) = self.plugin_config.remove("marketplace") {
            self.connect.marketplace = Some(MarketplaceSettings::from_json(&marketplace, path)?);
        }
        if let Some(oauth) = self.plugin_config.remove("dialpad_oauth") {
            let text = |key: &str| oauth.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
            let (Some(client_id), Some(client_secret)) = (text("client_id"), text("client_secret")) else {
                bail!("{}: dialpad_oauth needs client_id and client_secret (the Dialpad app's)", path.display());
            };
            let scopes =
                oauth.get("scopes").and_then(Value::as_array).map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
            self.connect.dialpad_oauth =
                Some(DialpadOAuthSettings { client_id, client_secret: Secret::new(client_secret), redirect_uri: text("redirect_uri"), scopes });
        }
        match self.plugin_config.remove("public_url") {
            None | Some(Value::Null) => {}
            Some(Value::String(url)) if url.starts_with("http://") || url.starts_with("https://") => {
                self.connect.public_url = Some(url.trim_end_matches('/').to_string())
            }
            Some(_) => bail!("{}: public_url must be an http(s) URL (where Dialpad reaches the webhook listener)", path.display()),
        }
        match self.plugin_config.remove("dialpad_call_states") {
            None | Some(Value::Null) => {}
            Some(Value::Array(states)) => {
                for state in &states {
                    let Some(state) = state.as_str().filter(|s| crate::connect::dialpad::CALL_STATES.contains(s)) else {
                        bail!("{}: dialpad_call_states has {state}, which is not one of Dialpad's call states", path.display());
                    };
                    self.connect.call_states.push(state.to_string());
                }
            }
            Some(_) => bail!("{}: dialpad_call_states must be a list of Dialpad call states", path.display()),
        }
        Ok(())
    }

    /// `card_key`, `card_frame_ancestors`, `highlevel_app_url` and `highlevel_links`.
    fn read_card_keys(&mut self, path: &Path) -> anyhow::Result<()> {
        match self.plugin_config.remove("card_key") {
            None | Some(Value::Null) => {}
            Some(Value::String(key)) => {
                let key = key.trim();
                if key.chars().count() < MIN_CARD_KEY_CHARS {
                    bail!(
                        "{}: card_key is too short ({} characters; at least {MIN_CARD_KEY_CHARS}): anyone could guess it. Use a long random one, \
                         e.g. `openssl rand -hex 24`",
                        path.display(),
                        key.chars().count()
                    );
                }
                self.card.key = Some(Secret::new(key));
            }
            Some(_) => bail!("{}: card_key must be a string", path.display()),
        }
        match self.plugin_config.remove("card_frame_ancestors") {
            None | Some(Value::Null) => {}
            Some(Value::Array(origins)) => {
                for origin in &origins {
                    let Some(source) = origin.as_str().and_then(frame_ancestor) else {
                        bail!(
                            "{}: card_frame_ancestors has {origin}, which is not an origin (https://app.example.com, https://*.example.com:8443 \
                             or 'self')",
                            path.display()
                        );
                    };
                    self.card.frame_ancestors.push(source);
                }
            }
            Some(_) => bail!("{}: card_frame_ancestors must be a list of origins (https://app.example.com)", path.display()),
        }
        match self.plugin_config.remove("highlevel_app_url") {
            None | Some(Value::Null) => {}
            Some(Value::String(given)) => match url::Url::parse(given.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() && url.query().is_none() && url.fragment().is_none() => {
                    self.card.app_url = url.as_str().trim_end_matches('/').to_string();
                }
                _ => bail!("{}: highlevel_app_url must be an http(s) URL, such as https://app.gohighlevel.com or your agency's domain", path.display()),
            },
            Some(_) => bail!("{}: highlevel_app_url must be a string (an http(s) URL)", path.display()),
        }
        match self.plugin_config.remove("highlevel_links") {
            None | Some(Value::Null) => {}
            Some(Value::Object(given)) => {
                for (name, template) in given {
                    let Some(template) = template.as_str() else { bail!("{}: highlevel_links.{name} must be a string (a URL template)", path.display()) };
                    let template = LinkTemplates::check(&name, template).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    match name.as_str() {
                        "contact" => self.card.links.contact = template,
                        "note" => self.card.links.note = template,
                        "call_entry" => self.card.links.call_entry = template,
                        _ => bail!("{}: highlevel_links has no key {name:?} (it takes contact, note, call_entry)", path.display()),
                    }
                }
            }
            Some(_) => {
                bail!("{}: highlevel_links must be an object: {{\"contact\": \"{DEFAULT_CONTACT_LINK}\", \"note\": …, \"call_entry\": …}}", path.display())
            }
        }
        Ok(())
    }

    /// The call states to subscribe to at Dialpad.
    pub fn call_states(&self) -> Vec<String> {
        if self.connect.call_states.is_empty() {
            SYNC_CALL_STATES.iter().map(|s| s.to_string()).collect()
        } else {
            self.connect.call_states.clone()
        }
    }

    /// `circuit_breaker` (`false`, or `{"failures", "cool_down_seconds", "max_cool_down_seconds",
    /// "stall_seconds"}`, each optional) and `connect_timeout_seconds`.
    fn read_upstream_keys(&mut self, path: &Path) -> anyhow::Result<()> {
        match self.plugin_config.remove("circuit_breaker") {
            None | Some(Value::Null) | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => (self.api_breaker, self.dialpad_breaker) = (None, None),
            Some(Value::Object(given)) => {
                const KEYS: [&str; 4] = ["failures", "cool_down_seconds", "max_cool_down_seconds", "stall_seconds"];
                if let Some(unknown) = given.keys().find(|k| !KEYS.contains(&k.as_str())) {
                    bail!("{}: circuit_breaker has no key {unknown:?} (it takes {})", path.display(), KEYS.join(", "));
                }
                let mut breaker = BreakerSettings::default();
                if let Some(failures) = given.get("failures") {
                    breaker.failures = failures
                        .as_u64()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| anyhow::anyhow!("{}: circuit_breaker.failures must be 1 to 1000", path.display()))?
                        as u32;
                }
                for (key, field) in [
                    ("cool_down_seconds", &mut breaker.cool_down),
                    ("max_cool_down_seconds", &mut breaker.max_cool_down),
                    ("stall_seconds", &mut breaker.stall),
                ] {
                    if let Some(value) = given.get(key) {
                        *field = positive_seconds(value)
                            .ok_or_else(|| anyhow::anyhow!("{}: circuit_breaker.{key} must be a number of seconds > 0", path.display()))?;
                    }
                }
                self.api_breaker = Some(Arc::new(CircuitBreaker::new(breaker)));
                self.dialpad_breaker = Some(Arc::new(CircuitBreaker::new(breaker)));
            }
            Some(_) => bail!("{}: circuit_breaker must be false or {{\"failures\": <n>, \"cool_down_seconds\": <s>, …}}", path.display()),
        }
        if let Some(value) = self.plugin_config.remove("connect_timeout_seconds") {
            self.connect_timeout =
                positive_seconds(&value).ok_or_else(|| anyhow::anyhow!("{}: connect_timeout_seconds must be a number of seconds > 0", path.display()))?;
        }
        Ok(())
    }

    /// Starts the configured OAuth app: refresh tokens rotate, so the newest is kept in
    /// `<state>/oauth-refresh-token` (owner-only), which wins over the configured one.
    pub fn start_oauth(&mut self, state: Option<&Path>) -> anyhow::Result<()> {
        let Some(app) = self.oauth_app.take() else { return Ok(()) };
        let Some(state) = state else { bail!("OAuth refresh tokens rotate on every refresh: give --state so the newest is kept") };
        let file = state.join("oauth-refresh-token");
        crate::storage::private::private_file(&file)?;
        let refresh_token = match std::fs::read_to_string(&file) {
            Ok(stored) if !stored.trim().is_empty() => Secret::new(stored.trim()),
            _ => app.refresh_token,
        };
        let settings = OAuthSettings {
            token_url: app.token_url.unwrap_or_else(|| format!("{}/oauth/token", self.api_base())),
            client_id: app.client_id,
            client_secret: app.client_secret,
            refresh_token,
            refresh_margin: Duration::from_secs(300),
            timeout: self.request_timeout,
        };
        self.oauth = Some(Arc::new(OAuthTokens::new(settings, move |token| write_secret(&file, token.expose()))));
        Ok(())
    }

    /// Sets one plugin setting (the CLI's `--api-base`, `--location-id`, …).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.plugin_config.insert(key.to_string(), value.into());
    }

    pub fn api_base(&self) -> String {
        self.plugin_config.get("api_base").and_then(Value::as_str).unwrap_or(contacts_api::DEFAULT_API_BASE).trim_end_matches('/').to_string()
    }

    /// Dialpad's API origin, as the plugin will use it.
    pub fn dialpad_api_base(&self) -> String {
        self.plugin_config.get("dialpad_api_base").and_then(Value::as_str).unwrap_or("https://dialpad.com").trim_end_matches('/').to_string()
    }

    /// The runtime options: the plugin's config var, an allowlist of exactly the API origin
    /// (and Dialpad's, when a Dialpad key is set), and each credential bound to its origin.
    pub fn runtime_options(&self, durable_state: bool) -> anyhow::Result<RuntimeOptions> {
        let origin = Origin::parse(&self.api_base()).context("api_base")?;
        let mut config = self.plugin_config.clone();
        config.insert("durable_state".into(), Value::Bool(durable_state));
        let mut allowed = vec![origin.clone()];
        let mut credentials: Vec<(Origin, Secret)> = self.token.iter().map(|t| (origin.clone(), t.clone())).collect();
        let mut rate_limiters: Vec<(Origin, Arc<RateLimiter>)> =
            self.rate_limiter.iter().map(|l| (origin.clone(), self.shared_limiter(l, "requests", &origin))).collect();
        let mut breakers: Vec<(Origin, Arc<CircuitBreaker>)> = self.api_breaker.iter().map(|b| (origin.clone(), b.clone())).collect();
        let mut route_limits = Vec::new();
        if let Some(key) = &self.dialpad_key {
            let dialpad = Origin::parse(&self.dialpad_api_base()).context("dialpad_api_base")?;
            if dialpad == origin {
                bail!("dialpad_api_base and api_base are the same origin: each credential must go to its own API only");
            }
            allowed.push(dialpad.clone());
            credentials.push((dialpad.clone(), key.clone()));
            rate_limiters.extend(self.dialpad_rate_limiter.iter().map(|l| (dialpad.clone(), self.shared_limiter(l, "requests", &dialpad))));
            breakers.extend(self.dialpad_breaker.iter().map(|b| (dialpad.clone(), b.clone())));
            route_limits.extend(self.dialpad_contact_limiter.iter().map(|limiter| RouteLimit {
                origin: dialpad.clone(),
                methods: vec!["POST", "PUT"],
                path: DIALPAD_CONTACTS_PATH,
                limiter: self.shared_limiter(limiter, "contact-creates", &dialpad),
                max_wait: DIALPAD_CONTACT_CREATE_WAIT,
                name: "Dialpad's contact-create limit (100 a minute)",
            }));
        }
        Ok(RuntimeOptions {
            config_vars: vec![("config".into(), Value::Object(config).to_string())],
            policy: OutboundPolicy {
                allowed,
                credentials,
                timeout: self.request_timeout,
                connect_timeout: self.connect_timeout,
                rate_limiters,
                route_limits,
                breakers,
                oauth: self.oauth.clone().map(|tokens| (origin.clone(), tokens)),
            },
            memory_limit_bytes: self.memory_limit_bytes,
            deadline: self.event_deadline,
        })
    }
}

impl Settings {
    /// `limiter` as the runtimes use it: itself, or, when the store is shared, a limiter with
    /// its limit whose places are in the shared database under `<what> <origin> <location id>`
    /// (the same key on every replica serving that location). A place whose replica died counts
    /// as answered [`Settings::shared_give_up`] after it was sent.
    fn shared_limiter(&self, limiter: &Arc<RateLimiter>, what: &str, origin: &Origin) -> Arc<RateLimiter> {
        match &self.shared_store {
            Some(store) if limiter.shared_key().is_none() => {
                let location = self.plugin_config.get("location_id").and_then(Value::as_str).unwrap_or_default();
                Arc::new(limiter.shared_as(store, format!("{what} {origin} {location}"), self.shared_give_up()))
            }
            _ => limiter.clone(),
        }
    }

    /// How long a request holds its place at most: its answer's head, then its body, each
    /// within `request_timeout`, and a margin.
    pub fn shared_give_up(&self) -> Duration {
        self.request_timeout * 2 + Duration::from_secs(5)
    }
}

/// A number of seconds > 0 (at most a day).
fn positive_seconds(value: &Value) -> Option<Duration> {
    value.as_f64().filter(|s| *s > 0.0 && *s <= 86_400.0).map(Duration::from_secs_f64)
}

/// Writes a secret readable by its owner only, replacing the file in one step.
fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial).with_context(|| format!("writing {}", partial.display()))?;
    // `mode` applies only to a new file: a partial one left by an older host is tightened.
    crate::storage::private::private_file(&partial)?;
    file.write_all(value.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration file in a fresh folder, and how to read `text` written to it.
    fn config_file() -> (std::path::PathBuf, impl Fn(&str) -> anyhow::Result<Settings>) {
        let path = tempfile::tempdir().unwrap().keep().join("c.json");
        let file = path.clone();
        (path, move |text: &str| {
            std::fs::write(&file, text).unwrap();
            Settings::from_file(&file)
        })
    }

    #[test]
    fn the_token_stays_with_the_host() {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("c.json");
        std::fs::write(&path, r#"{"location_id":"L","token":"pit-secret","api_base":"http://127.0.0.1:9/"}"#).unwrap();
        let s = Settings::from_file(&path).unwrap();
        let options = s.runtime_options(true).unwrap();
        assert!(!options.config_vars[0].1.contains("pit-secret"));
        assert!(options.config_vars[0].1.contains("\"durable_state\":true"));
        assert_eq!(options.policy.allowed, vec![Origin::parse("http://127.0.0.1:9").unwrap()]);
        assert_eq!(options.policy.credentials[0].1.expose(), "pit-secret");

        let toml = dir.join("c.toml");
        std::fs::write(
            &toml,
            "location_id = \"L\"\ntime_zone = \"America/Chicago\"\n\n[[tag_rules]]\nname = \"hot\"\nadd = [\"hot\"]\nwhen = { keywords = [\"pricing\"] }\n",
        )
        .unwrap();
        let s = Settings::from_file(&toml).unwrap();
        assert_eq!(s.plugin_config["tag_rules"][0]["when"]["keywords"][0], "pricing");
        assert_eq!(s.plugin_config["time_zone"], "America/Chicago");
    }

    #[test]
    fn each_credential_goes_to_its_own_origin_and_contact_creates_are_limited_at_dialpads() {
        let mut s = Settings::default();
        s.set("api_base", "https://services.leadconnectorhq.com");
        s.set("dialpad_api_base", "https://dialpad.com/");
        s.token = Some(Secret::new("pit-highlevel"));
        // Without a Dialpad credential, Dialpad's origin is not reachable at all.
        let options = s.runtime_options(false).unwrap();
        assert_eq!((options.policy.allowed.len(), options.policy.route_limits.len()), (1, 0));
        s.dialpad_key = Some(Secret::new("dialpad-key"));
        let policy = s.runtime_options(false).unwrap().policy;
        let (highlevel, dialpad) = (Origin::parse("https://services.leadconnectorhq.com").unwrap(), Origin::parse("https://dialpad.com").unwrap());
        let bound: Vec<(&Origin, &str)> = policy.credentials.iter().map(|(o, secret)| (o, secret.expose())).collect();
        assert_eq!(bound, [(&highlevel, "pit-highlevel"), (&dialpad, "dialpad-key")]);
        assert_eq!(policy.route_limits.len(), 1);
        let limit = &policy.route_limits[0];
        assert!(limit.applies(&dialpad, "POST", DIALPAD_CONTACTS_PATH) && limit.applies(&dialpad, "PUT", DIALPAD_CONTACTS_PATH));
        assert!(!limit.applies(&dialpad, "POST", "/api/v2/users/1/screenpop"), "screen pops are the plugin's to skip, never queued here");
        assert_eq!(limit.max_wait, DIALPAD_CONTACT_CREATE_WAIT);
        // Every runtime of these settings shares the one limiter: a company's minute is one minute.
        assert!(Arc::ptr_eq(&limit.limiter, &s.clone().runtime_options(true).unwrap().policy.route_limits[0].limiter));
    }

    #[test]
    fn a_shared_store_keys_each_limiter_by_origin_and_location() {
        let mut s = Settings::default();
        s.set("api_base", "https://services.leadconnectorhq.com");
        s.set("dialpad_api_base", "https://dialpad.com");
        s.set("location_id", "locA");
        s.dialpad_key = Some(Secret::new("dialpad-key"));
        assert!(s.runtime_options(false).unwrap().policy.rate_limiters.iter().all(|(_, l)| l.shared_key().is_none()), "in memory by default");
        // Nothing is opened until a request asks for a place.
        s.shared_store = Some(Location::Postgres("postgres://sync@db.example/sync".into()));
        let policy = s.runtime_options(false).unwrap().policy;
        let keys: Vec<&str> = policy.rate_limiters.iter().map(|(_, l)| l.shared_key().unwrap()).collect();
        assert_eq!(keys, ["requests https://services.leadconnectorhq.com:443 locA", "requests https://dialpad.com:443 locA"]);
        assert_eq!(policy.route_limits[0].limiter.shared_key(), Some("contact-creates https://dialpad.com:443 locA"));
        let highlevel = &policy.rate_limiters[0].1;
        assert_eq!((highlevel.max(), highlevel.window()), (100, Duration::from_secs(10)));
        // Another replica serving the location (its own settings) uses the same keys.
        let other = s.clone().runtime_options(true).unwrap().policy;
        assert_eq!(other.rate_limiters[0].1.shared_key(), Some(keys[0]));
    }

    #[test]
    fn the_breaker_and_the_connect_timeout_are_host_keys() {
        let (_, read) = config_file();
        let s = read(r#"{"location_id":"L","circuit_breaker":{"failures":5,"stall_seconds":2.5},"connect_timeout_seconds":3}"#).unwrap();
        let breaker = s.api_breaker.as_ref().unwrap().settings();
        assert_eq!((breaker.failures, breaker.stall, breaker.cool_down), (5, Duration::from_millis(2500), BreakerSettings::default().cool_down));
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        assert!(!s.plugin_config.contains_key("circuit_breaker") && !s.plugin_config.contains_key("connect_timeout_seconds"));
        let options = s.runtime_options(false).unwrap();
        assert_eq!((options.policy.breakers.len(), options.policy.connect_timeout), (1, Duration::from_secs(3)));
        assert!(read(r#"{"location_id":"L","circuit_breaker":false}"#).unwrap().api_breaker.is_none());
        let bad = read(r#"{"location_id":"L","circuit_breaker":{"failure":5}}"#).unwrap_err().to_string();
        assert!(bad.contains("circuit_breaker has no key \"failure\""), "{bad}");
        assert!(read(r#"{"location_id":"L","connect_timeout_seconds":0}"#).is_err());
        // Clones share the breaker, as they share the rate limiters.
        let default = Settings::default();
        assert!(Arc::ptr_eq(default.api_breaker.as_ref().unwrap(), default.clone().api_breaker.as_ref().unwrap()));
    }

    #[test]
    fn the_cards_key_frames_and_link_are_host_keys() {
        let (_, read) = config_file();
        let s = read(r#"{"location_id":"L"}"#).unwrap();
        assert!(s.card.key.is_none() && s.card.frame_ancestors.is_empty());
        assert_eq!(s.card.app_url, DEFAULT_HIGHLEVEL_APP_URL);
        let s = read(
            r#"{"location_id":"L","card_key":" card-key-0123456789abcdef ","card_frame_ancestors":["https://app.dialpad.com","https://*.Example.com:8443/","'self'"],
                "highlevel_app_url":"https://crm.agency.example/"}"#,
        )
        .unwrap();
        assert_eq!(s.card.key.as_ref().unwrap().expose(), "card-key-0123456789abcdef");
        assert_eq!(s.card.frame_ancestors, ["https://app.dialpad.com", "https://*.example.com:8443", "'self'"]);
        assert_eq!(s.card.app_url, "https://crm.agency.example");
        for key in ["card_key", "card_frame_ancestors", "highlevel_app_url"] {
            assert!(!s.plugin_config.contains_key(key), "{key} stays with the host");
        }
        let short = read(r#"{"location_id":"L","card_key":"short"}"#).unwrap_err().to_string();
        assert!(short.contains("card_key is too short"), "{short}");
        for bad in [r#"["https://a.example; script-src *"]"#, r#"["javascript://x"]"#, r#"["https://a.example/path"]"#, r#"["*"]"#, r#""https://a.example""#] {
            let e = read(&format!(r#"{{"location_id":"L","card_frame_ancestors":{bad}}}"#)).unwrap_err().to_string();
            assert!(e.contains("card_frame_ancestors"), "{bad}: {e}");
        }
        assert!(read(r#"{"location_id":"L","highlevel_app_url":"app.gohighlevel.com"}"#).is_err());
        assert!(read(r#"{"location_id":"L","highlevel_app_url":"https://x.example/?a=1"}"#).is_err());
    }

    #[test]
    fn alerts_are_a_host_key() {
        let (path, read) = config_file();
        let s = read(r#"{"location_id":"L"}"#).unwrap();
        assert!(!s.alerts.sends());
        let s = read(r#"{"location_id":"L","alerts":{"webhook_url":"https://hooks.slack.com/services/T/B/x","rules":{"failure_burst":8}}}"#).unwrap();
        assert_eq!(s.alerts.webhook_url.as_ref().map(|u| u.host_str()), Some(Some("hooks.slack.com")));
        assert_eq!(s.alerts.rules.failure_burst, 8);
        assert!(!s.plugin_config.contains_key("alerts"), "alerts stay with the host");
        let bad = read(r#"{"location_id":"L","alerts":{"smtp":{"server":"smtp.example.com","from":"a@example.com","to":[]}}}"#).unwrap_err().to_string();
        assert_eq!(bad, format!("{}: alerts.smtp.to must list at least one e-mail address", path.display()));
    }

    #[test]
    fn link_templates_are_checked_when_read_and_filled_with_encoded_ids() {
        let (_, read) = config_file();
        let s =
            read(r#"{"location_id":"L","highlevel_app_url":"https://crm.agency.example/","highlevel_links":{"note":"{app}/notes/{noteId}?c={contactId}"}}"#)
                .unwrap();
        assert!(!s.plugin_config.contains_key("highlevel_links"), "the links stay with the host");
        let ids = LinkIds { location_id: "loc 1", contact_id: Some("c/2"), note_id: Some("n3"), call_entry_id: None };
        let links = &s.card.links;
        assert_eq!(
            LinkTemplates::render(&links.contact, &s.card.app_url, ids).as_deref(),
            Some("https://crm.agency.example/v2/location/loc%201/contacts/detail/c%2F2")
        );
        assert_eq!(LinkTemplates::render(&links.note, &s.card.app_url, ids).as_deref(), Some("https://crm.agency.example/notes/n3?c=c%2F2"));
        let unknown_id = LinkIds { contact_id: None, ..ids };
        assert_eq!(LinkTemplates::render(&links.contact, &s.card.app_url, unknown_id), None, "a link whose id is not known is left out");
        let bad = read(r#"{"location_id":"L","highlevel_links":{"contact":"{app}/c/{id}"}}"#).unwrap_err().to_string();
        assert!(bad.contains("highlevel_links.contact names {id}"), "{bad}");
        let bad = read(r#"{"location_id":"L","highlevel_links":{"contact":"javascript:alert(1)"}}"#).unwrap_err().to_string();
        assert!(bad.contains("must be an http(s) URL template"), "{bad}");
        let bad = read(r#"{"location_id":"L","highlevel_links":{"task":"{app}"}}"#).unwrap_err().to_string();
        assert!(bad.contains("has no key \"task\""), "{bad}");
    }
}
