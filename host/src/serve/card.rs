//! The contact card: the unified view (`views.get`) of one HighLevel contact as a small HTML
//! page (the contact, its open tasks, latest notes and next appointment), for a Dialpad app
//! panel or any CRM frame.
//!
//! - On the admin listener, behind its authentication: `GET /card?phone=…` or
//!   `?contact=<HighLevel contact id>` for the host's own location, `GET
//!   /tenants/{tenant}/card?…` for a tenant. The card key (`?key=`) and framing are the gate's
//!   business ([`super::access`]).
//! - `?format=json`, or `Accept: application/json`: the view as JSON (`report::view_json`).
//! - The plugin caches the view for `view_cache_ttl_seconds`; the card says how old it is and
//!   lets the browser keep it for what is left of that time, so a panel that reloads does not
//!   reach HighLevel again.
//! - [`render`] is a pure function of the view, the time and HighLevel's app URL. Everything
//!   that comes from HighLevel is escaped ([`escape`]), and the page's one style carries the
//!   response's CSP nonce.

use super::access::Nonce;
use crate::bindings::dialpad_ghl::sync::types::SyncError;
use crate::bindings::exports::dialpad_ghl::sync::views::Subject;
use crate::report;
use crate::settings::{CardSettings, LinkIds, LinkTemplates};
use crate::tenants::registry::{LiveTenant, Tenants};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::Arc;

/// What the card needs of `serve` (implemented by its shared state).
pub(crate) trait Host: Send + Sync + 'static {
    fn tenants(&self) -> &Tenants;
    fn card(&self) -> &CardSettings;
    /// Counts one request the plugin sent for a card on `/metrics` (`None`: no answer).
    fn count_request(&self, status: Option<u16>);
}

/// The admin listener's card routes.
pub(super) fn routes<H: Host>() -> Router<Arc<H>> {
    Router::new().route("/card", get(single::<H>)).route("/tenants/{tenant}/card", get(tenant::<H>))
}

/// The plugin's `view_cache_ttl_seconds` when the configuration does not say.
const DEFAULT_VIEW_TTL_SECONDS: u64 = 60;
/// The latest notes shown.
const NOTES_SHOWN: usize = 5;
/// Open tasks shown; the rest are counted, and HighLevel is a click away.
const TASKS_SHOWN: usize = 10;
/// A note's first line is cut here: the card is read at a phone's width.
const NOTE_LINE_CHARS: usize = 160;

/// The page around the card (or around a problem): `{{title}}`, `{{body}}` and the nonce.
const PAGE: &str = include_str!("card.html");

async fn single<H: Host>(State(s): State<Arc<H>>, RawQuery(query): RawQuery, headers: HeaderMap, Extension(nonce): Extension<Nonce>) -> Response {
    answer(s, None, query, &headers, &nonce).await
}

async fn tenant<H: Host>(
    State(s): State<Arc<H>>,
    UrlPath(tenant): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Extension(nonce): Extension<Nonce>,
) -> Response {
    answer(s, Some(tenant), query, &headers, &nonce).await
}

/// Why there is no card: the status, a type for JSON clients, plain words for people, and the
/// plugin's typed error when there is one.
struct Failure {
    status: StatusCode,
    kind: &'static str,
    message: String,
    error: Option<Value>,
}

impl Failure {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure { status, kind, message: message.into(), error: None }
    }

    fn into_response(self, json: bool, nonce: &Nonce) -> Response {
        if json {
            let mut body = json!({"type": self.kind, "message": self.message});
            if let Some(error) = self.error {
                body["error"] = error;
            }
            (self.status, Json(body)).into_response()
        } else {
            (self.status, Html(nonce.fill(&problem_page(&self.message)))).into_response()
        }
    }
}

async fn answer<H: Host>(s: Arc<H>, tenant: Option<String>, query: Option<String>, headers: &HeaderMap, nonce: &Nonce) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or_default());
    let json = match params.wants_json(headers) {
        Ok(json) => json,
        Err(message) => return Failure::new(StatusCode::BAD_REQUEST, "invalid-input", message).into_response(false, nonce),
    };
    let subject = match params.subject() {
        Ok(subject) => subject,
        Err(message) => return Failure::new(StatusCode::BAD_REQUEST, "invalid-input", message).into_response(json, nonce),
    };
    let (app_url, contact_link) = (s.card().app_url.clone(), s.card().links.contact.clone());
    // The tenant lookup may read the store, and the plugin sends requests: off the async threads.
    let looked = match tokio::task::spawn_blocking(move || look(&*s, tenant.as_deref(), &subject)).await {
        Ok(looked) => looked,
        Err(e) => Err(Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "host", format!("The card could not be made: {e}"))),
    };
    let Looked { view, ttl, location_id } = match looked {
        Ok(looked) => looked,
        Err(failure) => return failure.into_response(json, nonce),
    };
    // The browser may keep it as long as the plugin's cache would serve it.
    let max_age = ttl.saturating_sub(view["age_seconds"].as_u64().unwrap_or_default());
    let mut response = if json {
        Json(view).into_response()
    } else {
        let at = Context { now_ms: now_ms(), app_url: &app_url, contact_link: &contact_link, location_id: &location_id };
        Html(nonce.fill(&render(&view, &at))).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&format!("private, max-age={max_age}")).expect("digits"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// A view ready to show: `report::view_json`'s JSON, the plugin's cache lifetime, and the
/// location to link to when the contact does not name its own.
struct Looked {
    view: Value,
    ttl: u64,
    location_id: String,
}

/// The view of `subject` at `tenant` (`None`: the host's own location), through the plugin.
fn look(host: &impl Host, tenant: Option<&str>, subject: &Subject) -> Result<Looked, Failure> {
    let live = live_of(host.tenants(), tenant)?;
    // A log of its own: the shared runtime's would keep every card's exchanges.
    let runtime = live.runtime.with_own_log();
    let result = runtime.view(subject);
    for exchange in runtime.http_log().take() {
        host.count_request(exchange.status);
    }
    match result {
        Ok(Ok(view)) => Ok(Looked {
            view: report::view_json(&view),
            ttl: live.runtime.plugin_setting("view_cache_ttl_seconds").and_then(|v| v.as_u64()).unwrap_or(DEFAULT_VIEW_TTL_SECONDS),
            location_id: live.tenant.location_id.clone(),
        }),
        Ok(Err(error)) => Err(failure_of(&error, subject)),
        Err(trap) => {
            tracing::error!("serve: the plugin trapped while reading a contact's view: {trap:#}");
            Err(Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "host", "The plugin failed while reading the contact; try again."))
        }
    }
}

fn live_of(tenants: &Tenants, tenant: Option<&str>) -> Result<Arc<LiveTenant>, Failure> {
    match tenant {
        None if tenants.serves_single() => Ok(tenants.single().clone()),
        None => Err(Failure::new(StatusCode::NOT_FOUND, "not-found", "This host has no location of its own: open a tenant's card at /tenants/<tenant>/card.")),
        Some(id) => tenants
            .get(id)
            .filter(|_| !id.is_empty())
            .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, "unknown-tenant", format!("There is no tenant {id} here."))),
    }
}

/// The answer to a typed error: 404 when there is no such contact, 400 when the request was
/// wrong, 502 when HighLevel (or the way to it) failed.
fn failure_of(error: &SyncError, subject: &Subject) -> Failure {
    let (status, kind, message) = match (error, subject) {
        (SyncError::NotFound(_), Subject::Phone(phone)) => {
            (StatusCode::NOT_FOUND, "not-found", format!("No HighLevel contact has this phone number ({phone})."))
        }
        (SyncError::NotFound(_), Subject::ContactId(id)) => (StatusCode::NOT_FOUND, "not-found", format!("No HighLevel contact has the id {id}.")),
        // HighLevel answers an unknown contact id with 400 "Contact with id … not found".
        (SyncError::Upstream(u), Subject::ContactId(id)) if u.status == 404 || (u.status == 400 && u.message.to_ascii_lowercase().contains("not found")) => {
            (StatusCode::NOT_FOUND, "not-found", format!("No HighLevel contact has the id {id}."))
        }
        (SyncError::NotFound(_), Subject::DialpadContact(_)) => (StatusCode::NOT_FOUND, "not-found", report::plain_words(error)),
        // The plugin's own words: `"…" is not a phone number in E.164 or a national format of US`.
        (SyncError::MalformedEvent(m), _) => (StatusCode::BAD_REQUEST, "invalid-input", format!("{m}.")),
        (SyncError::InvalidInput(_), _) => (StatusCode::BAD_REQUEST, "invalid-input", report::plain_words(error)),
        _ => (StatusCode::BAD_GATEWAY, "upstream", report::plain_words(error)),
    };
    Failure { status, kind, message, error: Some(report::error_json(error)) }
}

/// The card request's query: `phone`, `contact`, `format` (`key` is the gate's).
#[derive(Debug, Default, PartialEq)]
struct Params {
    phone: Option<String>,
    contact: Option<String>,
    format: Option<String>,
}

impl Params {
    fn parse(query: &str) -> Params {
        let mut params = Params::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name);
            // `?phone=+13125550187`, as people type it: a leading `+` is the number's, not an
            // encoded space (which would make it a national number of the default region).
            let value = match raw.strip_prefix('+') {
                Some(rest) if name == "phone" => format!("+{}", decode(rest)),
                _ => decode(raw),
            };
            match name.as_str() {
                "phone" => params.phone = Some(value),
                "contact" => params.contact = Some(value),
                "format" => params.format = Some(value),
                _ => {}
            }
        }
        params
    }

    fn subject(&self) -> Result<Subject, String> {
        match (self.phone.as_deref().map(str::trim), self.contact.as_deref().map(str::trim)) {
            (Some(_), Some(_)) => Err("Give a phone number or a contact id, not both.".into()),
            (Some(""), None) => Err("The phone number is empty: /card?phone=+13125550187.".into()),
            (None, Some("")) => Err("The contact id is empty: /card?contact=<HighLevel contact id>.".into()),
            (Some(phone), None) => Ok(Subject::Phone(phone.into())),
            (None, Some(id)) => Ok(Subject::ContactId(id.into())),
            (None, None) => Err("Say whose card to show: /card?phone=+13125550187 or /card?contact=<HighLevel contact id>.".into()),
        }
    }

    /// JSON for `format=json`, or for an `Accept` that names `application/json` (a browser's
    /// does not).
    fn wants_json(&self, headers: &HeaderMap) -> Result<bool, String> {
        match self.format.as_deref() {
            Some("json") => Ok(true),
            Some("html") => Ok(false),
            Some(other) => Err(format!("format={other} is not known: use json or html.")),
            None => Ok(headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|media| media.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json"))),
        }
    }
}

/// A query component, percent-decoded (`+` is a space).
fn decode(component: &str) -> String {
    url::form_urlencoded::parse(format!("x={component}").as_bytes()).next().map(|(_, value)| value.into_owned()).unwrap_or_default()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What a card is rendered against besides the view.
pub struct Context<'a> {
    /// Now, in milliseconds since 1970: what is overdue, upcoming, how long ago.
    pub now_ms: i64,
    /// HighLevel's web app (`highlevel_app_url`), without a trailing slash.
    pub app_url: &'a str,
    /// `highlevel_links.contact`: where "Open in HighLevel" goes.
    pub contact_link: &'a str,
    /// The location to link to when the contact does not name its own.
    pub location_id: &'a str,
}

/// `text` with everything HTML gives a meaning to replaced by a character reference, for
/// element content and quoted attributes alike. Braces too, so that nothing from HighLevel can
/// be taken for one of the page's `{{…}}` placeholders.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '{' => out.push_str("&#123;"),
            '}' => out.push_str("&#125;"),
            c => out.push(c),
        }
    }
    out
}

/// The page with `title` and `body` (already HTML) in it; the nonce is filled in per response.
fn page(title: &str, body: &str) -> String {
    PAGE.replace("{{title}}", &escape(title)).replace("{{body}}", body)
}

/// A page that says only `message` (escaped).
pub fn problem_page(message: &str) -> String {
    page("Contact card", &format!("<p class=\"problem\">{}</p>", escape(message)))
}

/// The card of a view (`report::view_json`'s JSON): the contact's name, phone, e-mail, company
/// and tags; its open tasks by due date; its latest notes, newest first, by their first line; its
/// next appointment; a link to the contact in HighLevel; how old the view is.
pub fn render(view: &Value, at: &Context<'_>) -> String {
    let contact = &view["contact"];
    let name = contact_name(contact);
    let mut body = String::new();
    let _ = writeln!(body, "<h1>{}</h1>", escape(&name));
    let mut details = String::new();
    for (label, key) in [("Phone", "phone"), ("E-mail", "email"), ("Company", "companyName")] {
        if let Some(value) = text(contact, key) {
            let _ = writeln!(details, "<dt>{label}</dt><dd>{}</dd>", escape(value));
        }
    }
    let tags: Vec<&str> = contact["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).filter(|t| !t.trim().is_empty()).collect();
    if !tags.is_empty() {
        let tags: String = tags.iter().map(|t| format!("<span class=\"tag\">{}</span>", escape(t))).collect();
        let _ = writeln!(details, "<dt>Tags</dt><dd>{tags}</dd>");
    }
    if !details.is_empty() {
        let _ = writeln!(body, "<dl>\n{details}</dl>");
    }
    body.push_str(&open_tasks(&view["tasks"], at.now_ms));
    body.push_str(&latest_notes(&view["notes"], at.now_ms));
    body.push_str(&next_appointment(&view["appointments"], at.now_ms));
    let contact_id = view["contact_id"].as_str().or_else(|| contact["id"].as_str()).unwrap_or_default();
    let location_id = text(contact, "locationId").unwrap_or(at.location_id);
    if !contact_id.is_empty() && !location_id.is_empty() {
        let ids = LinkIds { location_id, contact_id: Some(contact_id), ..LinkIds::default() };
        let link = LinkTemplates::render(at.contact_link, at.app_url, ids).unwrap_or_default();
        let _ = writeln!(body, "<a class=\"open\" href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">Open in HighLevel</a>", escape(&link));
    }
    let age = view["age_seconds"].as_u64().unwrap_or_default();
    let fresh = if view["from_cache"].as_bool() == Some(true) && age > 0 { format!("As of {} ago.", duration_words(age)) } else { "As of just now.".into() };
    let _ = writeln!(body, "<footer>{fresh}</footer>");
    page(&format!("{name} — contact card"), &body)
}

/// The contact's name as HighLevel shows it, else whatever names it best.
fn contact_name(contact: &Value) -> String {
    if let Some(name) = text(contact, "contactName").or_else(|| text(contact, "name")) {
        return name.to_string();
    }
    let joined = [text(contact, "firstName"), text(contact, "lastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    if !joined.is_empty() {
        return joined;
    }
    ["companyName", "email", "phone"].into_iter().find_map(|key| text(contact, key)).unwrap_or("Unnamed contact").to_string()
}

/// A non-blank string field, trimmed.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn open_tasks(tasks: &Value, now_ms: i64) -> String {
    let mut open: Vec<(&Value, Option<Time>)> =
        tasks.as_array().into_iter().flatten().filter(|t| t["completed"].as_bool() != Some(true)).map(|t| (t, time_of(&t["dueDate"]))).collect();
    // Soonest due first; those without a date last.
    open.sort_by_key(|(_, due)| due.map_or(i64::MAX, |d| d.ms));
    let mut out = format!("<h2>Open tasks ({})</h2>\n", open.len());
    if open.is_empty() {
        out.push_str("<p class=\"none\">None</p>\n");
        return out;
    }
    out.push_str("<ul>\n");
    for (task, due) in open.iter().take(TASKS_SHOWN) {
        let title = text(task, "title").unwrap_or("Untitled task");
        let when = match (due, text(task, "dueDate")) {
            (Some(due), _) if due.ms < now_ms => format!("<span class=\"when overdue\">Overdue: due {}</span>", escape(&due.words())),
            (Some(due), _) => format!("<span class=\"when\">Due {}</span>", escape(&due.words())),
            (None, Some(raw)) => format!("<span class=\"when\">Due {}</span>", escape(raw)),
            (None, None) => "<span class=\"when\">No due date</span>".into(),
        };
        let _ = writeln!(out, "<li>{}{when}</li>", escape(title));
    }
    if open.len() > TASKS_SHOWN {
        let _ = writeln!(out, "<li class=\"when\">and {} more in HighLevel</li>", open.len() - TASKS_SHOWN);
    }
    out.push_str("</ul>\n");
    out
}

fn latest_notes(notes: &Value, now_ms: i64) -> String {
    let mut notes: Vec<(&Value, Option<Time>)> = notes.as_array().into_iter().flatten().map(|n| (n, time_of(&n["dateAdded"]))).collect();
    // Newest first; those without a date last.
    notes.sort_by_key(|(_, added)| std::cmp::Reverse(added.map_or(i64::MIN, |a| a.ms)));
    let mut out = String::from("<h2>Latest notes</h2>\n");
    if notes.is_empty() {
        out.push_str("<p class=\"none\">None</p>\n");
        return out;
    }
    out.push_str("<ul>\n");
    for (note, added) in notes.iter().take(NOTES_SHOWN) {
        let line = first_line(note["body"].as_str().unwrap_or_default());
        let line = if line.is_empty() { "(empty note)".to_string() } else { line };
        let when = match added {
            Some(added) => format!("{}, {}", added.words(), relative(now_ms, added.ms)),
            None => text(note, "dateAdded").unwrap_or("no date").to_string(),
        };
        let _ = writeln!(out, "<li>{}<span class=\"when\">{}</span></li>", escape(&line), escape(&when));
    }
    out.push_str("</ul>\n");
    out
}

fn next_appointment(appointments: &Value, now_ms: i64) -> String {
    let next = appointments
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| !matches!(text(a, "appointmentStatus").map(str::to_ascii_lowercase).as_deref(), Some("cancelled" | "invalid")))
        .filter_map(|a| time_of(&a["startTime"]).filter(|start| start.ms > now_ms).map(|start| (a, start)))
        .min_by_key(|(_, start)| start.ms);
    let mut out = String::from("<h2>Next appointment</h2>\n");
    match next {
        None => out.push_str("<p class=\"none\">None</p>\n"),
        Some((appointment, start)) => {
            let title = text(appointment, "title").unwrap_or("Appointment");
            let mut when = format!("{}, {}", start.words(), relative(now_ms, start.ms));
            if let Some(status) = text(appointment, "appointmentStatus") {
                let _ = write!(when, " · {status}");
            }
            let _ = writeln!(out, "<p class=\"appointment\">{}<span class=\"when\">{}</span></p>", escape(title), escape(&when));
        }
    }
    out
}

/// The first non-blank line of a note, as text (HighLevel keeps notes written in its editor as
/// HTML), cut at [`NOTE_LINE_CHARS`].
fn first_line(body: &str) -> String {
    let plain = plain_text(body);
    let line = plain.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    if line.chars().count() > NOTE_LINE_CHARS {
        format!("{}…", line.chars().take(NOTE_LINE_CHARS - 1).collect::<String>().trim_end())
    } else {
        line.to_string()
    }
}

/// HTML as text: tags dropped (a block's end is a line break), the common entities decoded. The
/// result is escaped again before it is shown, so this needs to be readable, not exact.
fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let tag_like = after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!');
        match after.find('>').filter(|_| tag_like) {
            Some(end) => {
                let name: String =
                    after[..end].trim_start_matches('/').chars().take_while(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
                if matches!(name.as_str(), "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6") {
                    out.push('\n');
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// `12 s`, `5 min`, `3 h`, `2 days`, `3 months`, `2 years`.
fn duration_words(seconds: u64) -> String {
    const DAY: u64 = 86_400;
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * DAY => format!("{} h", s / 3600),
        s if s < 60 * DAY => format!("{} days", s / DAY),
        s if s < 730 * DAY => format!("{} months", s / (30 * DAY)),
        s => format!("{} years", s / (365 * DAY)),
    }
}

/// `in 3 h`, `2 days ago`, `just now`.
fn relative(now_ms: i64, at_ms: i64) -> String {
    let seconds = (at_ms - now_ms) / 1000;
    match seconds {
        s if s > -60 && s <= 0 => "just now".into(),
        s if s > 0 && s < 60 => "in less than a minute".into(),
        s if s > 0 => format!("in {}", duration_words(s as u64)),
        s => format!("{} ago", duration_words(s.unsigned_abs())),
    }
}

/// A time as HighLevel writes it: the instant, and the offset it was written in (it is shown
/// in that offset, as written: the host has no time zone rules of its own).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Time {
    /// Milliseconds since 1970, UTC.
    ms: i64,
    /// Minutes east of UTC.
    offset_minutes: i32,
    /// A date alone (`2026-03-20`) has no time to show.
    has_time: bool,
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

impl Time {
    /// `Fri 20 Mar 2026, 15:00 UTC`, `Fri 20 Mar 2026, 10:00 UTC-05:00`, `Fri 20 Mar 2026`.
    fn words(&self) -> String {
        let local = self.ms + i64::from(self.offset_minutes) * 60_000;
        let days = local.div_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
        let date = format!("{weekday} {day} {} {year}", MONTHS[(month - 1) as usize]);
        if !self.has_time {
            return date;
        }
        let minutes = local.rem_euclid(86_400_000) / 60_000;
        let zone = match self.offset_minutes {
            0 => "UTC".to_string(),
            m => format!("UTC{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60),
        };
        format!("{date}, {:02}:{:02} {zone}", minutes / 60, minutes % 60)
    }
}

/// An ISO 8601 string (`2026-03-20T15:00:00Z`, `…T10:00:00.000-05:00`, `2026-03-20`), or a
/// number of milliseconds since 1970.
fn time_of(value: &Value) -> Option<Time> {
    match value {
        Value::String(s) => parse_time(s),
        Value::Number(n) => n.as_i64().map(|ms| Time { ms, offset_minutes: 0, has_time: true }),
        _ => None,
    }
}

fn parse_time(given: &str) -> Option<Time> {
    let s = given.trim();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    if s.as_bytes().get(4) != Some(&b'-') || s.as_bytes().get(7) != Some(&b'-') || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date_ms = days_from_civil(year, month, day) * 86_400_000;
    if s.len() == 10 {
        return Some(Time { ms: date_ms, offset_minutes: 0, has_time: false });
    }
    if !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return None;
    }
    let (hour, minute) = (digits(11, 2)?, digits(14, 2)?);
    if s.as_bytes().get(13) != Some(&b':') || hour > 23 || minute > 59 {
        return None;
    }
    let mut at = 16;
    let mut second = 0;
    if s.as_bytes().get(at) == Some(&b':') {
        second = digits(17, 2)?.min(59);
        at = 19;
    }
    let mut millis = 0;
    if s.as_bytes().get(at) == Some(&b'.') {
        let fraction: String = s[at + 1..].chars().take_while(char::is_ascii_digit).collect();
        if fraction.is_empty() {
            return None;
        }
        millis = format!("{:0<3}", &fraction[..fraction.len().min(3)]).parse::<i64>().ok()?;
        at += 1 + fraction.len();
    }
    let offset_minutes = match &s[at..] {
        // No zone: HighLevel's times are UTC.
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let rest = zone[1..].replace(':', "");
            if rest.len() != 4 && rest.len() != 2 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i32 = rest[..2].parse().ok()?;
            let minutes: i32 = if rest.len() == 4 { rest[2..].parse().ok()? } else { 0 };
            if hours > 18 || minutes > 59 {
                return None;
            }
            sign * (hours * 60 + minutes)
        }
    };
    let local = date_ms + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    Some(Time { ms: local - i64::from(offset_minutes) * 60_000, offset_minutes, has_time: true })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a number of days since 1970-01-01 (`civil_from_days`, the inverse of the above).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-15T12:00:00Z.
    const NOW: i64 = 1_773_576_000_000;

    fn context() -> Context<'static> {
        Context { now_ms: NOW, app_url: "https://app.gohighlevel.com", contact_link: crate::settings::DEFAULT_CONTACT_LINK, location_id: "locFallback" }
    }

    fn view() -> Value {
        json!({
            "contact_id": "c1",
            "contact": {
                "id": "c1", "locationId": "loc1", "firstName": "Priya", "lastName": "Raman", "phone": "+13125550187",
                "email": "priya@example.org", "companyName": "Raman & Sons", "tags": ["vip", "renewal"],
            },
            "tasks": [
                {"id": "t1", "title": "Send the quote", "dueDate": "2026-03-16T09:00:00Z", "completed": false},
                {"id": "t2", "title": "Old follow-up", "dueDate": "2026-03-01T09:00:00Z", "completed": true},
                {"id": "t3", "title": "Call back", "dueDate": "2026-03-14T09:00:00Z", "completed": false},
            ],
            "notes": (1..=7).map(|n| json!({"id": format!("n{n}"), "body": format!("Note {n}\nsecond line"), "dateAdded": format!("2026-03-0{n}T10:00:00.000Z")})).collect::<Vec<_>>(),
            "appointments": [
                {"id": "a1", "title": "Last week's demo", "startTime": "2026-03-08T15:00:00Z"},
                {"id": "a2", "title": "Renewal review", "startTime": "2026-03-20T10:00:00-05:00", "appointmentStatus": "confirmed"},
                {"id": "a3", "title": "Cancelled one", "startTime": "2026-03-16T10:00:00Z", "appointmentStatus": "cancelled"},
                {"id": "a4", "title": "Later", "startTime": "2026-04-20T10:00:00Z"},
            ],
            "from_cache": true,
            "age_seconds": 12,
        })
    }

    #[test]
    fn escaping_leaves_no_markup_and_no_placeholder() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>{{nonce}}"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;&#123;&#123;nonce&#125;&#125;"
        );
        let mut hostile = view();
        hostile["contact"]["firstName"] = json!("<script>alert(1)</script>");
        hostile["contact"]["lastName"] = json!("{{nonce}}");
        hostile["notes"][6]["body"] = json!("<img src=x onerror=alert(1)> &lt;b&gt;");
        let html = render(&hostile, &context());
        assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // The note's own markup is dropped; its escaped text is shown as text, escaped again.
        assert!(html.contains("<li>&lt;b&gt;<span"), "{html}");
        assert_eq!(html.matches("{{nonce}}").count(), 1, "only the page's own style takes the nonce");
    }

    #[test]
    fn the_card_shows_the_contact_open_tasks_latest_notes_and_next_appointment() {
        let html = render(&view(), &context());
        for part in ["<h1>Priya Raman</h1>", "+13125550187", "priya@example.org", "Raman &amp; Sons", "<span class=\"tag\">vip</span>", "As of 12 s ago."] {
            assert!(html.contains(part), "{part}: {html}");
        }
        // Open tasks by due date, the overdue one first and marked; the completed one not at all.
        assert!(html.contains("Open tasks (2)"));
        let (call_back, quote) = (html.find("Call back").unwrap(), html.find("Send the quote").unwrap());
        assert!(call_back < quote);
        assert!(html.contains("Overdue: due Sat 14 Mar 2026, 09:00 UTC"), "{html}");
        assert!(html.contains("Due Mon 16 Mar 2026, 09:00 UTC"));
        assert!(!html.contains("Old follow-up"));
        // The five newest notes, newest first, by their first line.
        let shown: Vec<usize> = (3..=7).rev().map(|n| html.find(&format!("<li>Note {n}<")).unwrap_or_else(|| panic!("note {n}: {html}"))).collect();
        assert!(shown.windows(2).all(|w| w[0] < w[1]));
        assert!(!html.contains("Note 2<") && !html.contains("Note 1<") && !html.contains("second line"));
        assert!(html.contains("Sat 7 Mar 2026, 10:00 UTC, 8 days ago"), "{html}");
        // The soonest future appointment that is not cancelled, in the offset it was written in.
        assert!(html.contains("Renewal review<span class=\"when\">Fri 20 Mar 2026, 10:00 UTC-05:00, in 5 days · confirmed</span>"), "{html}");
        assert!(!html.contains("Last week") && !html.contains("Cancelled one") && !html.contains(">Later<"));
        assert!(html.contains(r#"href="https://app.gohighlevel.com/v2/location/loc1/contacts/detail/c1""#));
        assert!(html.contains("<title>Priya Raman — contact card</title>"));
    }

    #[test]
    fn an_empty_view_says_none_and_links_to_the_configured_app() {
        let view = json!({"contact_id": "c 2", "contact": {"phone": "+13125550187"}, "tasks": [], "notes": [], "appointments": [], "from_cache": false, "age_seconds": 0});
        let at = Context { app_url: "https://crm.agency.example/", ..context() };
        let html = render(&view, &at);
        assert!(html.contains("<h1>+13125550187</h1>"));
        assert_eq!(html.matches("<p class=\"none\">None</p>").count(), 3, "{html}");
        assert!(html.contains(r#"href="https://crm.agency.example/v2/location/locFallback/contacts/detail/c%202""#), "{html}");
        assert!(html.contains("As of just now."));
        let no_location = Context { location_id: "", ..context() };
        assert!(!render(&view, &no_location).contains("Open in HighLevel"));
    }

    #[test]
    fn times_are_read_as_highlevel_writes_them() {
        let t = parse_time("2026-03-20T15:00:00Z").unwrap();
        assert_eq!((t.ms, t.words()), (1_774_018_800_000, "Fri 20 Mar 2026, 15:00 UTC".to_string()));
        assert_eq!(parse_time("2026-03-20T10:00:00.250-05:00").unwrap().ms, 1_774_018_800_250);
        assert_eq!(parse_time("2026-03-20T20:30:00+0530").unwrap().words(), "Fri 20 Mar 2026, 20:30 UTC+05:30");
        assert_eq!(parse_time("2024-02-29").unwrap().words(), "Thu 29 Feb 2024");
        assert_eq!(parse_time("1969-12-31T23:59:00Z").unwrap().words(), "Wed 31 Dec 1969, 23:59 UTC");
        for bad in ["", "2026-02-30T10:00:00Z", "2026-03-20T25:00:00Z", "20260320", "2026-03-20T10:00:00 EST", "soon"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(time_of(&json!(1_774_018_800_000i64)).unwrap().words(), "Fri 20 Mar 2026, 15:00 UTC");
        let relatives =
            [NOW - 1_000, NOW + 30_000, NOW + 3 * 3_600_000, NOW - 90_000, NOW + 90 * 86_400_000, NOW - 3 * 365 * 86_400_000].map(|at| relative(NOW, at));
        assert_eq!(relatives, ["just now", "in less than a minute", "in 3 h", "90 s ago", "in 3 months", "3 years ago"]);
    }

    #[test]
    fn notes_are_shown_by_their_first_line_as_text() {
        assert_eq!(first_line("\n\n  Called about pricing.  \nMore"), "Called about pricing.");
        assert_eq!(first_line("<p>Prefers&nbsp;mornings &amp; e-mail</p><p>Second</p>"), "Prefers mornings & e-mail");
        assert_eq!(first_line("x < y and <3"), "x < y and <3");
        let long = "a".repeat(400);
        assert_eq!(first_line(&long).chars().count(), NOTE_LINE_CHARS);
    }

    #[test]
    fn the_query_names_one_subject() {
        let params = Params::parse("phone=+13125550187&key=k");
        assert!(matches!(params.subject(), Ok(Subject::Phone(p)) if p == "+13125550187"));
        assert!(matches!(Params::parse("phone=%2B1%20312%20555%200187").subject(), Ok(Subject::Phone(p)) if p == "+1 312 555 0187"));
        assert!(matches!(Params::parse("contact=abc123").subject(), Ok(Subject::ContactId(c)) if c == "abc123"));
        for bad in ["", "phone=", "contact=%20", "phone=1&contact=2", "key=only"] {
            assert!(Params::parse(bad).subject().is_err(), "{bad}");
        }
        let mut accept = HeaderMap::new();
        assert_eq!(Params::parse("").wants_json(&accept), Ok(false));
        accept.insert(header::ACCEPT, HeaderValue::from_static("text/html, application/json;q=0.9"));
        assert_eq!(Params::parse("").wants_json(&accept), Ok(true));
        assert_eq!(Params::parse("format=html").wants_json(&accept), Ok(false));
        assert_eq!(Params::parse("format=json").wants_json(&HeaderMap::new()), Ok(true));
        assert!(Params::parse("format=xml").wants_json(&accept).is_err());
    }
}
