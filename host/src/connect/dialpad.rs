//! Dialpad: the connection (a company API key or an OAuth access token, sent as `Bearer`) and
//! what the sync needs registered there: one webhook whose deliveries are signed, and the call,
//! SMS and contact event subscriptions that point at it. OAuth with PKCE is in [`oauth`], the
//! `check` command's report in [`status`].
//!
//! Everything follows Dialpad's spec (`shared/reference/dialpad/dialpad_api_spec.json`):
//!
//! - **Idempotent, list first.** [`DialpadConnection::register`] lists the webhooks and each kind
//!   of subscription before creating anything, so connecting twice creates nothing twice.
//! - **The webhook is reused, and PATCHed when its secret is not ours.** `WebhookProto` carries
//!   `signature.secret` in clear (the spec's GET example shows it), so the secret of a webhook
//!   with our `hook_url` can be compared with ours; when it differs, or the webhook is unsigned,
//!   `PATCH /api/v2/webhooks/{id} {secret}` (`UpdateWebhook` takes `secret`) sets ours. Deleting
//!   and recreating it instead would change its id and strand the subscriptions pointing at it.
//! - **Subscriptions name the webhook as `endpoint_id`**, the field of the current create and
//!   update schemas (an int64, sent as a JSON number); the endpoint descriptions still say
//!   "webhook_id", the name of older revisions.
//! - **Company-wide subscriptions only**: no `target_type`/`target_id`, so every user's calls
//!   and messages arrive. A subscription on our webhook that is scoped to one target is not
//!   ours to change, and is left alone.
//! - **SMS**: `direction: "all"` (required by the spec; "Use 'all' to get SMS events for all
//!   directions"), `include_internal` and `status` left at their defaults (false): the sync logs
//!   messages, not delivery receipts. **Contacts**: `contact_type: "shared"` (required; one
//!   subscription per type): the company's shared contacts are the ones the sync mirrors (it
//!   writes shared contacts itself, with `PUT /api/v2/contacts`); the update schema requires
//!   `contact_type` too, so every PATCH repeats it.
//! - **Ids** are int64 in the schemas but strings in the spec's examples (`"id": "1000"`), as
//!   protobuf's JSON mapping writes int64: both are read, and ids are kept as text.
//! - **Lists** follow `cursor` until an answer has none; a cursor handed out twice ends the
//!   listing with an error rather than looping.

pub mod oauth;
pub mod status;

// `status` is not re-exported: it builds on this module, and a re-export would make the two
// depend on each other (the workspace's module-graph check forbids import cycles).
pub use oauth::{DialpadOAuthApp, DialpadTokens, Pkce};

use super::http::{self as send, Answer};
use super::ConnectError;
use crate::capability::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::Duration;
use subtle::ConstantTimeEq as _;

/// Where Dialpad's API lives (`https://sandbox.dialpad.com` is its sandbox).
pub const DEFAULT_API_BASE: &str = "https://dialpad.com";
/// How long one request may take, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Every value of the spec's `call_states` enum (`CreateCallEventSubscription`); `all` means
/// every state.
pub const CALL_STATES: [&str; 32] = [
    "admin",
    "admin_recording",
    "ai_playbook",
    "all",
    "barge",
    "blocked",
    "call_transcription",
    "calling",
    "connected",
    "csat",
    "dispositions",
    "eavesdrop",
    "hangup",
    "hold",
    "merged",
    "missed",
    "monitor",
    "parked",
    "pcsat",
    "postcall",
    "preanswer",
    "queued",
    "recap_action_items",
    "recap_outcome",
    "recap_purposes",
    "recap_summary",
    "recording",
    "ringing",
    "takeover",
    "transcription",
    "voicemail",
    "voicemail_uploaded",
];
/// The SMS subscription's `direction`: both ways.
pub const SMS_DIRECTION: &str = "all";
/// The contact subscription's `contact_type`.
pub const CONTACT_TYPE: &str = "shared";
/// Pages one listing may take before it is taken for a listing that never ends.
const MAX_PAGES: usize = 1000;

/// A Dialpad account, as the host talks to it.
#[derive(Clone, Debug)]
pub struct DialpadConnection {
    /// [`DEFAULT_API_BASE`] unless testing; no trailing slash needed.
    pub api_base: String,
    /// A company API key or an OAuth access token: either goes in `Authorization: Bearer`.
    pub credential: Secret,
    pub timeout: Duration,
}

/// What the sync needs from Dialpad.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Where Dialpad delivers events: the host's public webhook URL.
    pub hook_url: String,
    /// The call states to subscribe to ([`CALL_STATES`]); none means no call subscription.
    pub call_states: Vec<String>,
    pub sms: bool,
    pub contacts: bool,
}

/// What [`DialpadConnection::register`] set up, for the host to store and later check or undo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub webhook_id: String,
    pub hook_url: String,
    pub call_subscription: Option<String>,
    pub sms_subscription: Option<String>,
    pub contact_subscription: Option<String>,
}

/// The three kinds of event subscription the sync uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubscriptionKind {
    Call,
    Sms,
    Contact,
}

impl SubscriptionKind {
    pub const ALL: [SubscriptionKind; 3] = [SubscriptionKind::Call, SubscriptionKind::Sms, SubscriptionKind::Contact];

    /// The last segment of its endpoint, `/api/v2/subscriptions/{segment}`.
    pub fn segment(self) -> &'static str {
        match self {
            SubscriptionKind::Call => "call",
            SubscriptionKind::Sms => "sms",
            SubscriptionKind::Contact => "contact",
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            SubscriptionKind::Call => "call",
            SubscriptionKind::Sms => "SMS",
            SubscriptionKind::Contact => "contact",
        }
    }

    fn path(self) -> String {
        format!("/api/v2/subscriptions/{}", self.segment())
    }
}

/// A webhook as Dialpad answers it (`WebhookProto`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub hook_url: String,
    /// `signature.secret`; `None` when deliveries are unsigned JSON.
    pub secret: Option<Secret>,
}

/// An event subscription as Dialpad answers it: the fields the sync looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub kind: SubscriptionKind,
    pub id: String,
    /// The id of the webhook it delivers to (`None`: a websocket, or nothing).
    pub webhook_id: Option<String>,
    /// The spec's default is true, so a missing `enabled` reads as true.
    pub enabled: bool,
    /// Call subscriptions: `call_states`.
    pub call_states: Vec<String>,
    /// SMS subscriptions: `direction`.
    pub direction: Option<String>,
    /// Contact subscriptions: `contact_type`.
    pub contact_type: Option<String>,
    /// `"<target_type> <target_id>"` when scoped to one target rather than company-wide.
    pub target: Option<String>,
}

/// What one subscription should deliver: the fields of its create and update bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Events {
    /// Call events in these states.
    Calls(Vec<String>),
    /// Messages in both directions ([`SMS_DIRECTION`]).
    Sms,
    /// Shared contacts ([`CONTACT_TYPE`]).
    Contacts,
}

impl Events {
    pub fn kind(&self) -> SubscriptionKind {
        match self {
            Events::Calls(_) => SubscriptionKind::Call,
            Events::Sms => SubscriptionKind::Sms,
            Events::Contacts => SubscriptionKind::Contact,
        }
    }

    /// The body of a create or an update, always enabling the subscription.
    fn body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        match self {
            Events::Calls(states) => body.insert("call_states".into(), json!(states)),
            Events::Sms => body.insert("direction".into(), json!(SMS_DIRECTION)),
            Events::Contacts => body.insert("contact_type".into(), json!(CONTACT_TYPE)),
        };
        body.insert("enabled".into(), json!(true));
        body
    }

    /// Whether `subscription` is one of ours for these events: on our webhook, company-wide,
    /// and (contacts) of our contact type, since a `local` one is another subscription.
    fn is_ours(&self, subscription: &Subscription, webhook_id: &str) -> bool {
        subscription.kind == self.kind()
            && subscription.webhook_id.as_deref() == Some(webhook_id)
            && subscription.target.is_none()
            && (!matches!(self, Events::Contacts) || subscription.contact_type.as_deref() == Some(CONTACT_TYPE))
    }

    /// Whether `subscription` delivers exactly these events (states compared as sets).
    fn delivered_by(&self, subscription: &Subscription) -> bool {
        subscription.enabled
            && match self {
                Events::Calls(states) => states.iter().collect::<HashSet<_>>() == subscription.call_states.iter().collect::<HashSet<_>>(),
                Events::Sms => subscription.direction.as_deref() == Some(SMS_DIRECTION),
                Events::Contacts => subscription.contact_type.as_deref() == Some(CONTACT_TYPE),
            }
    }
}

impl Wanted {
    /// The subscriptions wanted, in the order they are registered.
    pub fn events(&self) -> Vec<Events> {
        let mut events = Vec::new();
        if !self.call_states.is_empty() {
            events.push(Events::Calls(self.call_states.clone()));
        }
        if self.sms {
            events.push(Events::Sms);
        }
        if self.contacts {
            events.push(Events::Contacts);
        }
        events
    }
}

impl Registration {
    /// The subscription id registered for `kind`.
    pub fn subscription(&self, kind: SubscriptionKind) -> Option<&str> {
        match kind {
            SubscriptionKind::Call => self.call_subscription.as_deref(),
            SubscriptionKind::Sms => self.sms_subscription.as_deref(),
            SubscriptionKind::Contact => self.contact_subscription.as_deref(),
        }
    }

    fn subscription_mut(&mut self, kind: SubscriptionKind) -> &mut Option<String> {
        match kind {
            SubscriptionKind::Call => &mut self.call_subscription,
            SubscriptionKind::Sms => &mut self.sms_subscription,
            SubscriptionKind::Contact => &mut self.contact_subscription,
        }
    }
}

impl DialpadConnection {
    /// A connection to Dialpad itself, with the default timeout.
    pub fn new(credential: Secret) -> DialpadConnection {
        DialpadConnection { api_base: DEFAULT_API_BASE.into(), credential, timeout: DEFAULT_TIMEOUT }
    }

    /// Sets up what `wanted` needs, reusing whatever is already there (see the module docs):
    /// the webhook with our `hook_url` (its secret set to `secret` if it is not), then one
    /// subscription of each wanted kind on it (updated when it delivers other events or is
    /// disabled; extra copies deleted, as each would deliver every event again).
    pub async fn register(&self, wanted: &Wanted, secret: &Secret) -> Result<Registration, ConnectError> {
        let existing = self.webhooks().await?.into_iter().find(|w| w.hook_url == wanted.hook_url);
        let webhook_id = match existing {
            Some(webhook) if webhook.secret.as_ref().is_some_and(|s| same_secret(s, secret)) => webhook.id,
            Some(webhook) => {
                self.set_webhook_secret(&webhook.id, secret).await?;
                webhook.id
            }
            None => self.create_webhook(&wanted.hook_url, secret).await?.id,
        };
        let mut registration =
            Registration { webhook_id, hook_url: wanted.hook_url.clone(), call_subscription: None, sms_subscription: None, contact_subscription: None };
        for events in wanted.events() {
            let id = self.ensure_subscription(&registration.webhook_id, &events).await?;
            *registration.subscription_mut(events.kind()) = Some(id);
        }
        Ok(registration)
    }

    /// One subscription delivering `events` to the webhook: the existing one (updated if
    /// needed), or a new one. Its id.
    async fn ensure_subscription(&self, webhook_id: &str, events: &Events) -> Result<String, ConnectError> {
        let listed = self.subscriptions(events.kind()).await?;
        let mut ours = listed.into_iter().filter(|s| events.is_ours(s, webhook_id));
        let Some(kept) = ours.next() else {
            return Ok(self.create_subscription(webhook_id, events).await?.id);
        };
        if !events.delivered_by(&kept) {
            self.update_subscription(&kept.id, events).await?;
        }
        for extra in ours {
            self.delete_subscription(extra.kind, &extra.id).await?;
        }
        Ok(kept.id)
    }

    /// Deletes the registration's subscriptions, then its webhook. Anything already gone (404)
    /// counts as deleted.
    pub async fn unregister(&self, registration: &Registration) -> Result<(), ConnectError> {
        for kind in SubscriptionKind::ALL {
            if let Some(id) = registration.subscription(kind) {
                self.delete_subscription(kind, id).await?;
            }
        }
        self.delete_webhook(&registration.webhook_id).await?;
        Ok(())
    }

    /// Every webhook of the company (`GET /api/v2/webhooks`, all pages).
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, ConnectError> {
        self.list("/api/v2/webhooks", "listing Dialpad webhooks").await?.iter().map(webhook).collect()
    }

    /// One webhook (`GET /api/v2/webhooks/{id}`); `None` when there is none.
    pub async fn webhook(&self, id: &str) -> Result<Option<Webhook>, ConnectError> {
        let what = "reading a Dialpad webhook";
        let answer = self.request(http::Method::GET, &format!("/api/v2/webhooks/{}", path_id(id)?), None, what).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        webhook(&success(answer, what)?).map(Some)
    }

    /// `POST /api/v2/webhooks {hook_url, secret}`: with a secret, every delivery is an HS256 JWT.
    pub async fn create_webhook(&self, hook_url: &str, secret: &Secret) -> Result<Webhook, ConnectError> {
        let what = "creating the Dialpad webhook";
        let body = json!({"hook_url": hook_url, "secret": secret.expose()});
        webhook(&success(self.request(http::Method::POST, "/api/v2/webhooks", Some(&body), what).await?, what)?)
    }

    /// `PATCH /api/v2/webhooks/{id} {secret}`.
    pub async fn set_webhook_secret(&self, id: &str, secret: &Secret) -> Result<Webhook, ConnectError> {
        let what = "setting the Dialpad webhook's secret";
        let body = json!({"secret": secret.expose()});
        let answer = self.request(http::Method::PATCH, &format!("/api/v2/webhooks/{}", path_id(id)?), Some(&body), what).await?;
        webhook(&success(answer, what)?)
    }

    /// `DELETE /api/v2/webhooks/{id}`: whether it was there (a 404 is no error).
    pub async fn delete_webhook(&self, id: &str) -> Result<bool, ConnectError> {
        let what = "deleting the Dialpad webhook";
        let answer = self.request(http::Method::DELETE, &format!("/api/v2/webhooks/{}", path_id(id)?), None, what).await?;
        gone(answer, what)
    }

    /// Every subscription of one kind (`GET /api/v2/subscriptions/{kind}`, all pages).
    pub async fn subscriptions(&self, kind: SubscriptionKind) -> Result<Vec<Subscription>, ConnectError> {
        let what = format!("listing Dialpad {} subscriptions", kind.name());
        self.list(&kind.path(), &what).await?.iter().map(|item| subscription(kind, item)).collect()
    }

    /// One subscription (`GET /api/v2/subscriptions/{kind}/{id}`); `None` when there is none.
    pub async fn subscription(&self, kind: SubscriptionKind, id: &str) -> Result<Option<Subscription>, ConnectError> {
        let what = format!("reading the Dialpad {} subscription", kind.name());
        let answer = self.request(http::Method::GET, &format!("{}/{}", kind.path(), path_id(id)?), None, &what).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        subscription(kind, &success(answer, &what)?).map(Some)
    }

    /// `POST /api/v2/subscriptions/{kind} {endpoint_id, enabled: true, …}`, company-wide.
    pub async fn create_subscription(&self, webhook_id: &str, events: &Events) -> Result<Subscription, ConnectError> {
        let kind = events.kind();
        let what = format!("creating the Dialpad {} subscription", kind.name());
        let endpoint: i64 = webhook_id.parse().map_err(|_| ConnectError::Malformed(format!("the webhook id {webhook_id:?} is not an integer")))?;
        let mut body = events.body();
        body.insert("endpoint_id".into(), json!(endpoint));
        let answer = self.request(http::Method::POST, &kind.path(), Some(&Value::Object(body)), &what).await?;
        subscription(kind, &success(answer, &what)?)
    }

    /// `PATCH /api/v2/subscriptions/{kind}/{id}` with what `events` needs, enabled.
    pub async fn update_subscription(&self, id: &str, events: &Events) -> Result<Subscription, ConnectError> {
        let kind = events.kind();
        let what = format!("updating the Dialpad {} subscription", kind.name());
        let body = Value::Object(events.body());
        let answer = self.request(http::Method::PATCH, &format!("{}/{}", kind.path(), path_id(id)?), Some(&body), &what).await?;
        subscription(kind, &success(answer, &what)?)
    }

    /// `DELETE /api/v2/subscriptions/{kind}/{id}`: whether it was there (a 404 is no error).
    pub async fn delete_subscription(&self, kind: SubscriptionKind, id: &str) -> Result<bool, ConnectError> {
        let what = format!("deleting the Dialpad {} subscription", kind.name());
        let answer = self.request(http::Method::DELETE, &format!("{}/{}", kind.path(), path_id(id)?), None, &what).await?;
        gone(answer, &what)
    }

    /// Every item of a listing, following `cursor` from page to page.
    async fn list(&self, path: &str, what: &str) -> Result<Vec<Value>, ConnectError> {
        let mut items = Vec::new();
        let mut cursors = HashSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page_path = match &cursor {
                None => path.to_string(),
                Some(c) => format!("{path}?{}", url::form_urlencoded::Serializer::new(String::new()).append_pair("cursor", c).finish()),
            };
            let page = success(self.request(http::Method::GET, &page_path, None, what).await?, what)?;
            match &page["items"] {
                Value::Array(found) => items.extend(found.iter().cloned()),
                Value::Null => {}
                other => return Err(ConnectError::Malformed(format!("{what}: `items` is not a list: {other}"))),
            }
            match page["cursor"].as_str().filter(|c| !c.is_empty()) {
                None => return Ok(items),
                Some(next) if !cursors.insert(next.to_string()) => {
                    return Err(ConnectError::Malformed(format!("{what}: Dialpad handed out the cursor {next:?} twice; the listing does not advance")));
                }
                Some(next) => cursor = Some(next.to_string()),
            }
        }
        Err(ConnectError::Malformed(format!("{what}: no end after {MAX_PAGES} pages")))
    }

    /// One request with the credential; any answer (the caller judges its status).
    async fn request(&self, method: http::Method, path: &str, body: Option<&Value>, what: &str) -> Result<Answer, ConnectError> {
        let url = format!("{}{path}", self.api_base.trim_end_matches('/'));
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.credential.expose()))
            .header(http::header::ACCEPT, "application/json");
        let body = match body {
            Some(json) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                send::body(json.to_string())
            }
            None => send::body(bytes::Bytes::new()),
        };
        let request = request.body(body).map_err(|e| ConnectError::Transport(format!("{what}: {url}: {e}")))?;
        Ok(send::send(request, self.timeout, what).await?)
    }
}

/// A 2xx answer's JSON object; anything else is refused or malformed.
fn success(answer: Answer, what: &str) -> Result<Value, ConnectError> {
    if !(200..300).contains(&answer.status) {
        return Err(ConnectError::Refused { status: answer.status, reason: format!("{what}: {}", answer.reason()) });
    }
    match answer.json() {
        json @ Value::Object(_) => Ok(json),
        _ => Err(ConnectError::Malformed(format!("{what}: the answer is not a JSON object"))),
    }
}

/// A DELETE's answer: deleted (2xx), already gone (404), or refused.
fn gone(answer: Answer, what: &str) -> Result<bool, ConnectError> {
    match answer.status {
        200..=299 => Ok(true),
        404 => Ok(false),
        status => Err(ConnectError::Refused { status, reason: format!("{what}: {}", answer.reason()) }),
    }
}

/// An id for a path: the spec's path ids are int64, so only digits (nothing that could change
/// the path).
fn path_id(id: &str) -> Result<&str, ConnectError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(ConnectError::Malformed(format!("{id:?} is not a Dialpad id (an integer)")))
    }
}

/// An int64 id as text, from a JSON number or a string (the spec's examples use strings).
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => n.as_i64().map(|n| n.to_string()).or_else(|| n.as_u64().map(|n| n.to_string())),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn webhook(json: &Value) -> Result<Webhook, ConnectError> {
    let id = id_text(&json["id"]).ok_or_else(|| ConnectError::Malformed("a Dialpad webhook without an id".into()))?;
    Ok(Webhook {
        id,
        hook_url: json["hook_url"].as_str().unwrap_or_default().to_string(),
        secret: json["signature"]["secret"].as_str().filter(|s| !s.is_empty()).map(Secret::new),
    })
}

fn subscription(kind: SubscriptionKind, json: &Value) -> Result<Subscription, ConnectError> {
    let id = id_text(&json["id"]).ok_or_else(|| ConnectError::Malformed(format!("a Dialpad {} subscription without an id", kind.name())))?;
    let text = |field: &str| json[field].as_str().map(str::to_string);
    let target = id_text(&json["target_id"]).map(|target| format!("{} {target}", json["target_type"].as_str().unwrap_or("target")));
    Ok(Subscription {
        kind,
        id,
        webhook_id: id_text(&json["webhook"]["id"]),
        enabled: json["enabled"].as_bool().unwrap_or(true),
        call_states: json["call_states"].as_array().map(|states| states.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default(),
        direction: text("direction"),
        contact_type: text("contact_type"),
        target,
    })
}

/// Compares secrets in constant time, as any secret comparison should be.
fn same_secret(a: &Secret, b: &Secret) -> bool {
    a.expose().as_bytes().ct_eq(b.expose().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_numbers_and_strings() {
        assert_eq!(id_text(&json!("1000")), Some("1000".into()));
        assert_eq!(id_text(&json!(1000)), Some("1000".into()));
        assert_eq!(id_text(&json!(-9007199254740991_i64)), Some("-9007199254740991".into()));
        assert_eq!(id_text(&json!(null)), None);
        assert_eq!(id_text(&json!("")), None);
        assert!(path_id("123").is_ok());
        for bad in ["", "12/../x", "-1", "1 2", "abc"] {
            assert!(matches!(path_id(bad), Err(ConnectError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn the_spec_examples_parse() {
        let hook =
            webhook(&json!({"hook_url": "https://test.com/webhooks", "id": "1000", "signature": {"algo": "HS256", "secret": "test_secret", "type": "jwt"}}))
                .unwrap();
        assert_eq!((hook.id.as_str(), hook.hook_url.as_str()), ("1000", "https://test.com/webhooks"));
        assert_eq!(hook.secret, Some(Secret::new("test_secret")));
        let call = subscription(
            SubscriptionKind::Call,
            &json!({"call_states": ["barge", "hangup", "recording"], "enabled": true, "group_calls_only": true, "id": "1001",
                    "webhook": {"hook_url": "https://test.com", "id": "1000", "signature": {"algo": "HS256", "secret": "puppy", "type": "jwt"}}}),
        )
        .unwrap();
        assert_eq!((call.id.as_str(), call.webhook_id.as_deref(), call.enabled, call.target), ("1001", Some("1000"), true, None));
        assert_eq!(call.call_states, ["barge", "hangup", "recording"]);
        let targeted = subscription(SubscriptionKind::Sms, &json!({"id": 5, "direction": "inbound", "target_type": "user", "target_id": "42"})).unwrap();
        assert_eq!((targeted.target.as_deref(), targeted.direction.as_deref(), targeted.enabled), (Some("user 42"), Some("inbound"), true));
        assert!(matches!(subscription(SubscriptionKind::Contact, &json!({"contact_type": "shared"})), Err(ConnectError::Malformed(_))));
    }

    #[test]
    fn a_subscription_is_ours_only_on_our_webhook_company_wide_and_of_our_contact_type() {
        let sub = |webhook: &str, target: Option<&str>, contact_type: Option<&str>| Subscription {
            kind: SubscriptionKind::Contact,
            id: "1".into(),
            webhook_id: Some(webhook.into()),
            enabled: true,
            call_states: vec![],
            direction: None,
            contact_type: contact_type.map(str::to_string),
            target: target.map(str::to_string),
        };
        assert!(Events::Contacts.is_ours(&sub("7", None, Some("shared")), "7"));
        assert!(!Events::Contacts.is_ours(&sub("8", None, Some("shared")), "7"));
        assert!(!Events::Contacts.is_ours(&sub("7", Some("user 1"), Some("shared")), "7"));
        assert!(!Events::Contacts.is_ours(&sub("7", None, Some("local")), "7"));
        assert!(!Events::Sms.is_ours(&sub("7", None, Some("shared")), "7"), "another kind");
    }

    #[test]
    fn call_states_compare_as_sets() {
        let sub = |states: &[&str], enabled: bool| Subscription {
            kind: SubscriptionKind::Call,
            id: "1".into(),
            webhook_id: Some("7".into()),
            enabled,
            call_states: states.iter().map(|s| s.to_string()).collect(),
            direction: None,
            contact_type: None,
            target: None,
        };
        let wanted = Events::Calls(vec!["hangup".into(), "ringing".into()]);
        assert!(wanted.delivered_by(&sub(&["ringing", "hangup"], true)));
        assert!(!wanted.delivered_by(&sub(&["ringing", "hangup"], false)), "disabled");
        assert!(!wanted.delivered_by(&sub(&["hangup"], true)));
        assert!(!wanted.delivered_by(&sub(&["hangup", "ringing", "missed"], true)), "more states than wanted: updated to ours");
    }

    #[test]
    fn bodies_follow_the_spec() {
        assert_eq!(Value::Object(Events::Calls(vec!["hangup".into()]).body()), json!({"call_states": ["hangup"], "enabled": true}));
        assert_eq!(Value::Object(Events::Sms.body()), json!({"direction": "all", "enabled": true}));
        assert_eq!(Value::Object(Events::Contacts.body()), json!({"contact_type": "shared", "enabled": true}));
        let wanted = Wanted { hook_url: "https://h/x".into(), call_states: vec![], sms: true, contacts: false };
        assert_eq!(wanted.events(), [Events::Sms], "no call states: no call subscription");
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret(&Secret::new("abc"), &Secret::new("abc")));
        assert!(!same_secret(&Secret::new("abc"), &Secret::new("abd")));
        assert!(!same_secret(&Secret::new("abc"), &Secret::new("abcd")));
    }
}
