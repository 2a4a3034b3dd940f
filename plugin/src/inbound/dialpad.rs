//! Dialpad webhook events: classification by shape, and normalization.
//!
//! Real bodies keep growing, so unknown keys are ignored. Ids and timestamps arrive as numbers
//! or strings; `""`, `null`, a missing key and `{}` all mean "absent". Phone numbers become
//! E.164; e-mails become lower case. A value of the wrong type in a field the sync reads is a
//! typed error naming the field, never a guess.

use super::event::EventKind;
use super::json::{self, Json, Members};
use super::phone::{self, Region, E164};
use crate::error::SyncError;

/// One classified, normalized Dialpad event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Call(Box<CallEvent>),
    /// Contact created / updated / deleted in Dialpad.
    Contact(Box<ContactEvent>),
    /// SMS (or MMS) in or out.
    Sms(Box<SmsEvent>),
    AgentStatus,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Call(_) => EventKind::Call,
            Event::Contact(_) => EventKind::Contact,
            Event::Sms(_) => EventKind::Sms,
            Event::AgentStatus => EventKind::AgentStatus,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What a call state means to the sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRole {
    /// The call is still going (ringing, connected, hold, …): nothing to write yet.
    InProgress,
    /// The call ended: hangup, missed, voicemail.
    Ended,
    /// More about an ended call: voicemail audio, transcript, recording, AI recap.
    FollowUp,
    /// A state the sync does not act on (supervisor states, surveys, …) or does not know.
    Ignored,
}

pub fn state_role(state: &str) -> StateRole {
    match state {
        "calling" | "ringing" | "preanswer" | "queued" | "connected" | "hold" | "parked" | "merged" | "monitor" | "barge" | "eavesdrop" | "takeover" => {
            StateRole::InProgress
        }
        "hangup" | "missed" | "voicemail" => StateRole::Ended,
        "voicemail_uploaded" | "transcription" | "call_transcription" | "recording" | "recap_summary" | "recap_action_items" | "recap_outcome"
        | "recap_purposes" => StateRole::FollowUp,
        _ => StateRole::Ignored,
    }
}

/// The external party of a call, as Dialpad knows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Party {
    pub dialpad_id: Option<String>,
    /// A person's name; `None` when Dialpad's name is only a formatted number or a place.
    pub name: Option<String>,
    pub email: Option<String>,
    /// Dialpad's contact type: `local`, `shared`, `user`, …
    pub contact_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Agent {
    pub name: Option<String>,
    pub email: Option<String>,
    /// The Dialpad user's id, when the call's target is a user (not a call center or a group):
    /// whose screen a pop goes to.
    pub user_id: Option<String>,
}

/// A recording of a call or a voicemail, by the id Dialpad's share-link API takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub id: String,
    /// `recording_type` of `POST /api/v2/recordingsharelink`: `callrecording`,
    /// `admincallrecording` or `voicemail`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    pub call_id: String,
    /// The other legs this leg names: `master_call_id`, `entry_point_call_id`,
    /// `operator_call_id`, in that order (absent and self references left out).
    pub related_call_ids: Vec<String>,
    /// `master_call_id`, else `entry_point_call_id`.
    pub parent_call_id: Option<String>,
    pub state: String,
    pub direction: Option<Direction>,
    /// The external party's number in E.164; `None` when the body has no usable number.
    pub external_phone: Option<E164>,
    /// The number as Dialpad sent it, for error messages.
    pub external_number_raw: Option<String>,
    pub internal_number: Option<String>,
    pub party: Party,
    pub agent: Agent,
    pub is_internal: bool,
    pub started_ms: Option<i64>,
    pub connected_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub event_ms: Option<i64>,
    /// Talk time in ms (`talk_time`, else `duration`).
    pub talk_ms: Option<i64>,
    pub recording_urls: Vec<String>,
    pub voicemail_link: Option<String>,
    pub transcript: Option<String>,
    pub recap_summary: Option<String>,
    pub recap_action_items: Vec<String>,
    pub recap_outcome: Option<String>,
    pub review_link: Option<String>,
    pub labels: Vec<String>,
    /// The call's recordings and voicemail, by id.
    pub recordings: Vec<Recording>,
    /// `custom_data` as the call was started with it (click-to-call puts the HighLevel
    /// contact id there).
    pub custom_data: Option<String>,
}

impl CallEvent {
    /// The idempotency key of this event.
    pub fn event_key(&self) -> String {
        format!("call:{}:{}", self.call_id, self.state)
    }

    /// The id one call's legs share when no earlier leg is known: the master leg's, else the
    /// entry point's, else this leg's own. A leg seen earlier wins (see `KnownState`).
    pub fn default_activity_id(&self) -> &str {
        self.parent_call_id.as_deref().unwrap_or(&self.call_id)
    }

    /// The HighLevel contact a click-to-call started this call for (`custom_data` of the form
    /// `highlevel-contact:<id>`, see `actions`).
    pub fn custom_contact_id(&self) -> Option<&str> {
        self.custom_data.as_deref()?.strip_prefix(CUSTOM_DATA_PREFIX).map(str::trim).filter(|id| !id.is_empty())
    }

    /// Every id by which this leg's call can be found: its own and the ones it names.
    pub fn all_call_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.call_id.as_str()).chain(self.related_call_ids.iter().map(String::as_str))
    }
}

/// How click-to-call marks the HighLevel contact in a call's `custom_data`.
pub const CUSTOM_DATA_PREFIX: &str = "highlevel-contact:";

/// Parses and classifies one event (already verified JSON bytes).
pub fn parse(json: &[u8], default_region: &Region) -> Result<Event, SyncError> {
    let value = json::parse(json).map_err(|e| SyncError::malformed(format!("body is not valid JSON: {e}")))?;
    let Json::Object(obj) = value else {
        return Err(SyncError::malformed("event must be a JSON object"));
    };
    let f = Fields(&obj);
    if obj.contains_key("call_id") && obj.contains_key("state") {
        return parse_call(&f, default_region).map(|c| Event::Call(Box::new(c)));
    }
    if obj.contains_key("event") && obj.contains_key("contact") {
        return parse_contact(&f, default_region, json).map(|c| Event::Contact(Box::new(c)));
    }
    if obj.contains_key("on_duty_status") {
        return Ok(Event::AgentStatus);
    }
    if obj.contains_key("from_number") || obj.contains_key("to_number") || obj.contains_key("text") {
        return parse_sms(&f, default_region).map(|s| Event::Sms(Box::new(s)));
    }
    Err(SyncError::malformed(
        "not a Dialpad event: expected call_id+state (call), event+contact (contact), from_number/to_number/text (SMS) or on_duty_status (agent status)",
    ))
}

fn parse_call(f: &Fields, region: &Region) -> Result<CallEvent, SyncError> {
    let call_id = f.id("call_id")?.ok_or_else(|| SyncError::malformed("call_id is empty"))?;
    let state = f.text("state")?.ok_or_else(|| SyncError::malformed("state is empty"))?.to_ascii_lowercase();
    let contact = f.object("contact")?;
    let target = f.object("target")?;
    let external_raw = match f.text("external_number")? {
        Some(n) => Some(n),
        None => contact.as_ref().map(|c| c.text("phone")).transpose()?.flatten(),
    };
    // A withheld caller ID is no number at all: the call is anonymous, not malformed.
    let external_raw = external_raw.filter(|n| !phone::is_withheld(n));
    let external_phone = external_raw.as_deref().and_then(|n| phone::to_e164(n, region).ok());
    let party = match &contact {
        Some(c) => Party {
            dialpad_id: c.id("id")?,
            name: c.text("name")?.filter(|n| is_person_name(n)),
            email: c.text("email")?.map(|e| e.to_lowercase()),
            contact_type: c.text("type")?,
        },
        None => Party::default(),
    };
    let agent = match &target {
        Some(t) => Agent {
            name: t.text("name")?,
            email: t.text("email")?.map(|e| e.to_lowercase()),
            user_id: if t.text("type")?.as_deref() == Some("user") { t.id("id")? } else { None },
        },
        None => Agent::default(),
    };
    let mut recording_urls = Vec::new();
    let mut recordings: Vec<Recording> = Vec::new();
    for rec in f.objects("recording_details")? {
        let kind = rec.text("recording_type")?;
        if let Some(url) = rec.text("url")? {
            if kind.as_deref() != Some("voicemail") {
                recording_urls.push(url);
            }
        }
        if let Some(id) = rec.id("id")? {
            recordings.push(Recording { id, kind: kind.unwrap_or_else(|| "callrecording".into()) });
        }
    }
    let listed = f.strings_or_items("call_recording_ids")?.into_iter().map(|id| Recording { id, kind: "callrecording".into() });
    let voicemail = f.id("voicemail_recording_id")?.map(|id| Recording { id, kind: "voicemail".into() });
    for recording in listed.chain(voicemail) {
        if !recordings.iter().any(|r| r.id == recording.id) {
            recordings.push(recording);
        }
    }
    let talk_ms = match f.millis("talk_time")? {
        Some(ms) => Some(ms),
        None => f.millis("duration")?,
    };
    let mut related_call_ids = Vec::new();
    let mut parent_call_id = None;
    for key in ["master_call_id", "entry_point_call_id", "operator_call_id"] {
        if let Some(id) = f.id(key)?.filter(|id| *id != call_id && !related_call_ids.contains(id)) {
            if key != "operator_call_id" && parent_call_id.is_none() {
                parent_call_id = Some(id.clone());
            }
            related_call_ids.push(id);
        }
    }
    Ok(CallEvent {
        related_call_ids,
        parent_call_id,
        call_id,
        state,
        direction: match f.text("direction")?.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("inbound") => Some(Direction::Inbound),
            Some("outbound") => Some(Direction::Outbound),
            _ => None,
        },
        external_phone,
        external_number_raw: external_raw,
        internal_number: f.text("internal_number")?,
        party,
        agent,
        is_internal: f.flag("is_internal")?.unwrap_or(false),
        started_ms: f.millis("date_started")?,
        connected_ms: f.millis("date_connected")?,
        ended_ms: f.millis("date_ended")?,
        event_ms: f.millis("event_timestamp")?,
        talk_ms,
        recording_urls,
        voicemail_link: f.text("voicemail_link")?,
        transcript: f.text("transcription_text")?,
        recap_summary: f.text("recap_summary")?,
        recap_action_items: f.strings_or_items("recap_action_items")?,
        recap_outcome: f.text("recap_outcome")?,
        review_link: f.text("company_call_review_share_link")?,
        labels: f.strings_or_items("labels")?,
        recordings,
        custom_data: f.text("custom_data")?,
    })
}

/// One SMS or MMS, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsEvent {
    pub id: String,
    pub direction: Option<Direction>,
    /// The external party's number: the sender of an inbound message, the recipient of an
    /// outbound one.
    pub external_phone: Option<E164>,
    pub external_number_raw: Option<String>,
    pub party: Party,
    /// The Dialpad user or group on our side.
    pub agent: Agent,
    pub agent_number: Option<String>,
    pub is_internal: bool,
    pub created_ms: Option<i64>,
    /// The message text; `None` when empty (an MMS may carry only media).
    pub text: Option<String>,
    pub mms_url: Option<String>,
}

impl SmsEvent {
    pub fn event_key(&self) -> String {
        format!("sms:{}", self.id)
    }
}

fn parse_sms(f: &Fields, region: &Region) -> Result<SmsEvent, SyncError> {
    let id = f.id("id")?.ok_or_else(|| SyncError::malformed("SMS id is empty"))?;
    let direction = match f.text("direction")?.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("inbound") => Some(Direction::Inbound),
        Some("outbound") => Some(Direction::Outbound),
        _ => None,
    };
    let contact = f.object("contact")?;
    let target = f.object("target")?;
    // `to_number` is a list in real bodies (one string in some exports).
    let to_number = f.strings_or_items("to_number")?.into_iter().next();
    let from_number = f.text("from_number")?;
    let contact_phone = contact.as_ref().map(|c| c.text("phone_number")).transpose()?.flatten();
    let external_raw = match direction {
        Some(Direction::Outbound) => to_number.or(contact_phone),
        _ => from_number.or(contact_phone),
    };
    let external_raw = external_raw.filter(|n| !phone::is_withheld(n));
    let external_phone = external_raw.as_deref().and_then(|n| phone::to_e164(n, region).ok());
    let party = match &contact {
        Some(c) => Party { dialpad_id: c.id("id")?, name: c.text("name")?.filter(|n| is_person_name(n)), email: None, contact_type: None },
        None => Party::default(),
    };
    let (agent, agent_number) = match &target {
        Some(t) => (Agent { name: t.text("name")?, email: None, user_id: None }, t.text("phone_number")?),
        None => (Agent::default(), None),
    };
    let text = match f.text("text")? {
        Some(t) => Some(t),
        None => f.text("text_content")?,
    };
    Ok(SmsEvent {
        id,
        direction,
        external_phone,
        external_number_raw: external_raw,
        party,
        agent,
        agent_number,
        is_internal: f.flag("is_internal")?.unwrap_or(false),
        created_ms: f.millis("created_date")?,
        text,
        mms_url: if f.flag("mms")?.unwrap_or(false) || f.get("mms_url").is_some() { f.text("mms_url")? } else { None },
    })
}

/// A display name that names a person: not a formatted number, not Dialpad's "City, ST" caller
/// location, not empty.
fn is_person_name(name: &str) -> bool {
    let n = name.trim();
    if n.is_empty() || phone::looks_like_phone_number(n) || n.chars().filter(char::is_ascii_digit).count() >= 3 {
        return false;
    }
    // CNAM-style locations such as "Alameda, CA".
    if let Some((place, st)) = n.rsplit_once(", ") {
        if st.len() == 2 && st.chars().all(|c| c.is_ascii_uppercase()) && !place.is_empty() {
            return false;
        }
    }
    true
}

/// What happened to a Dialpad contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactAction {
    Created,
    Updated,
    Deleted,
}

impl ContactAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactAction::Created => "created",
            ContactAction::Updated => "updated",
            ContactAction::Deleted => "deleted",
        }
    }
}

/// A Dialpad contact event: the contact's fields by the names the field mapping uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactEvent {
    pub action: ContactAction,
    pub id: String,
    pub phone: Option<E164>,
    pub email: Option<String>,
    /// `(field, value)` for every non-empty field of [`CONTACT_FIELDS`].
    pub fields: Vec<(&'static str, String)>,
    /// SHA-256 (hex, first 16 bytes) of the event's JSON: what identifies a redelivery.
    pub content_hash: String,
}

impl ContactEvent {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// The Dialpad contact fields a mapping may use. `primary_phone` is sent in E.164; `phone`
/// and `email` are the primary ones, or the first of the lists; `url` is the first URL.
pub const CONTACT_FIELDS: &[&str] =
    &["id", "type", "first_name", "last_name", "display_name", "primary_phone", "primary_email", "company_name", "job_title", "url", "extension"];

fn parse_contact(f: &Fields, region: &Region, json: &[u8]) -> Result<ContactEvent, SyncError> {
    let action = match f.text("event")?.unwrap_or_default().to_ascii_lowercase().as_str() {
        "created" | "create" => ContactAction::Created,
        "updated" | "update" => ContactAction::Updated,
        "deleted" | "delete" => ContactAction::Deleted,
        other => return Err(SyncError::malformed(format!("contact `event` must be Created, Updated or Deleted, got \"{other}\""))),
    };
    let c = f.object("contact")?.ok_or_else(|| SyncError::malformed("contact event without a `contact` object"))?;
    let id = c.id("id")?.ok_or_else(|| SyncError::malformed("`contact.id` is empty"))?;
    let phones = c.strings_or_items("phones")?;
    let emails = c.strings_or_items("emails")?;
    let raw_phone = c.text("primary_phone")?.or_else(|| phones.first().cloned());
    let phone = raw_phone.as_deref().and_then(|p| phone::to_e164(p, region).ok());
    let email = c.text("primary_email")?.or_else(|| emails.first().cloned()).map(|e| e.to_lowercase());
    let mut fields = vec![("id", id.clone())];
    for name in ["type", "first_name", "last_name", "display_name", "company_name", "job_title", "extension"] {
        if let Some(v) = c.text(name)? {
            fields.push((name, v));
        }
    }
    if let Some(p) = &phone {
        fields.push(("primary_phone", p.as_str().to_string()));
    }
    if let Some(e) = &email {
        fields.push(("primary_email", e.clone()));
    }
    if let Some(url) = c.strings_or_items("urls")?.into_iter().next() {
        fields.push(("url", url));
    }
    // A display name that is only the formatted number is not a name.
    fields.retain(|(n, v)| !n.ends_with("name") || is_person_name(v));
    let digest = <sha2::Sha256 as sha2::Digest>::digest(json);
    let content_hash = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Ok(ContactEvent { action, id, phone, email, fields, content_hash })
}

/// Typed, lenient access to an event object's fields. Each accessor names the field in its
/// error, so a malformed body is reported as "`call_id` must be …", not as a serde position.
struct Fields<'a>(&'a Members<'a>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Json<'a>> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn wrong(key: &str, want: &str, got: &Json) -> SyncError {
        let got = match got {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        };
        SyncError::malformed(format!("`{key}` must be {want}, got {got}"))
    }

    /// Number-or-string id; `""` is absent.
    fn id(&self, key: &str) -> Result<Option<String>, SyncError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(Json::Number(n)) => Ok(Some(match n.as_u64() {
                Some(u) => u.to_string(),
                None => n.to_string(),
            })),
            Some(other) => Err(Self::wrong(key, "a number or a string", other)),
        }
    }

    /// Text; `""` and whitespace-only are absent. Numbers are accepted as their text.
    fn text(&self, key: &str) -> Result<Option<String>, SyncError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(Json::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(Self::wrong(key, "a string", other)),
        }
    }

    /// Milliseconds: an integer, a float (truncated) or a numeric string.
    fn millis(&self, key: &str) -> Result<Option<i64>, SyncError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Number(n)) => Ok(n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))),
            Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Json::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| Some(f as i64))
                .ok_or_else(|| SyncError::malformed(format!("`{key}` must be a number of milliseconds, got \"{s}\""))),
            Some(other) => Err(Self::wrong(key, "a number", other)),
        }
    }

    /// A boolean; Dialpad exports sometimes say `"TRUE"` / `"FALSE"`.
    fn flag(&self, key: &str) -> Result<Option<bool>, SyncError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(Json::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Json::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(Some(false)),
            Some(other) => Err(Self::wrong(key, "a boolean", other)),
        }
    }

    /// A nested object; `{}` is absent.
    fn object(&self, key: &str) -> Result<Option<Fields<'a>>, SyncError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Object(m)) if m.is_empty() => Ok(None),
            Some(Json::Object(m)) => Ok(Some(Fields(m))),
            Some(other) => Err(Self::wrong(key, "an object", other)),
        }
    }

    fn objects(&self, key: &str) -> Result<Vec<Fields<'a>>, SyncError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Json::Array(items)) => items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Json::Object(m) => Ok(Fields(m)),
                    other => Err(Self::wrong(key, "a list of objects", other)),
                })
                .collect(),
            Some(other) => Err(Self::wrong(key, "a list", other)),
        }
    }

    /// A list of strings; a single string counts as a list of one, and objects with a
    /// `content` field (Dialpad's REST recap shape) give their content.
    fn strings_or_items(&self, key: &str) -> Result<Vec<String>, SyncError> {
        let one = |v: &Json| -> Result<Option<String>, SyncError> {
            match v {
                Json::Null => Ok(None),
                Json::String(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
                // Numbers as their text, as every other field takes them (a phone list of numbers).
                Json::Number(n) => Ok(Some(n.to_string())),
                Json::Object(m) => Fields(m).text("content"),
                other => Err(Self::wrong(key, "a list of strings", other)),
            }
        };
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Json::Array(items)) => Ok(items.iter().map(one).collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect()),
            Some(v) => Ok(one(v)?.into_iter().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    fn fixture(name: &str) -> Event {
        parse(&std::fs::read(format!("{FIXTURES}{name}")).unwrap(), phone::region("US").unwrap()).unwrap()
    }

    fn call(name: &str) -> CallEvent {
        match fixture(name) {
            Event::Call(c) => *c,
            other => panic!("{name} is not a call: {other:?}"),
        }
    }

    #[test]
    fn fixtures_classify_by_shape() {
        assert_eq!(fixture("agent_status_on_duty.json"), Event::AgentStatus);
        let Event::Sms(sms) = fixture("sms_inbound.json") else { panic!() };
        assert_eq!(sms.id, "5287316104912896");
        assert_eq!(sms.direction, Some(Direction::Inbound));
        assert_eq!(sms.external_phone.as_ref().map(E164::as_str), Some("+13125550187"));
        assert_eq!(sms.party.name, None, "a formatted number is not a name");
        assert_eq!(sms.agent.name.as_deref(), Some("Maya Patel"));
        assert!(sms.text.as_deref().unwrap().starts_with("Hi Maya, it's Priya"));
        assert!(
            matches!(fixture("contact_created_shared.json"), Event::Contact(ref c) if c.action == ContactAction::Created && c.phone.as_ref().map(E164::as_str) == Some("+12065550174"))
        );
        assert!(
            matches!(fixture("contact_deleted.json"), Event::Contact(ref c) if c.action == ContactAction::Deleted && c.field("company_name") == Some("Whitfield Logistics"))
        );
        for f in ["call_inbound_ringing_unknown_number.json", "call_inbound_missed.json", "call_recap_summary.json"] {
            assert!(matches!(fixture(f), Event::Call(_)), "{f}");
        }
    }

    #[test]
    fn hangup_fixture_normalizes() {
        let c = call("call_inbound_hangup_completed.json");
        assert_eq!(c.call_id, "6011482093420544");
        assert_eq!(c.state, "hangup");
        assert_eq!(c.direction, Some(Direction::Inbound));
        assert_eq!(c.external_phone.as_ref().map(E164::as_str), Some("+13125550187"));
        // Dialpad's name for an unknown caller is a formatted number: never a person's name.
        assert_eq!(c.party.name, None);
        assert_eq!(c.party.email, None, "\"\" is absent");
        assert_eq!(c.party.dialpad_id.as_deref(), Some("4904325631934464"));
        assert_eq!(c.agent.name.as_deref(), Some("Maya Patel"));
        assert_eq!(c.talk_ms, Some(247_318));
        assert_eq!(c.connected_ms, Some(1_773_155_057_749));
    }

    #[test]
    fn recorded_outbound_call_keeps_its_recording_and_person() {
        let c = call("call_outbound_hangup_recorded.json");
        assert_eq!(c.direction, Some(Direction::Outbound));
        assert_eq!(c.party.name.as_deref(), Some("Kenji Watanabe"));
        assert_eq!(c.party.email.as_deref(), Some("kenji.watanabe@example.net"));
        assert_eq!(c.recording_urls, vec!["https://dialpad.com/secureblob/recording/EXAMPLErecordingBlobKeyD0001".to_string()]);
        assert_eq!(c.labels, vec!["sales".to_string(), "follow-up".to_string()]);
    }

    #[test]
    fn ids_and_numbers_in_odd_formats() {
        let us = phone::region("US").unwrap();
        let body = br#"{"call_id":"  77 ","state":"HANGUP","external_number":"(415) 555-0100","date_started":"1773155045211",
            "talk_time":1500.7,"contact":{},"target":null,"is_internal":"FALSE","recap_action_items":"Call back"}"#;
        let Event::Call(c) = parse(body, us).unwrap() else { panic!() };
        assert_eq!(c.call_id, "77");
        assert_eq!(c.state, "hangup");
        assert_eq!(c.external_phone.unwrap().as_str(), "+14155550100");
        assert_eq!(c.started_ms, Some(1_773_155_045_211));
        assert_eq!(c.talk_ms, Some(1500));
        assert!(!c.is_internal);
        assert_eq!(c.recap_action_items, vec!["Call back".to_string()]);
        assert_eq!(c.party, Party::default());
    }

    #[test]
    fn wrong_types_are_named() {
        let us = phone::region("US").unwrap();
        let err = parse(br#"{"call_id":[1],"state":"hangup"}"#, us).unwrap_err();
        assert_eq!(err, SyncError::malformed("`call_id` must be a number or a string, got an array"));
        let err = parse(br#"{"call_id":1,"state":"hangup","date_started":"yesterday"}"#, us).unwrap_err();
        assert!(matches!(err, SyncError::MalformedEvent(m) if m.contains("date_started")));
        assert!(matches!(parse(b"[1,2]", us), Err(SyncError::MalformedEvent(_))));
        assert!(matches!(parse(br#"{"hello":"world"}"#, us), Err(SyncError::MalformedEvent(_))));
        assert!(matches!(parse(br#"{"call_id":1,"state":"#, us), Err(SyncError::MalformedEvent(_))));
    }

    #[test]
    fn person_names() {
        assert!(is_person_name("Dana Whitfield"));
        assert!(is_person_name("José Ñúñez 🎧"));
        assert!(!is_person_name("(312) 555-0187"));
        assert!(!is_person_name("Alameda, CA"));
        assert!(!is_person_name("  "));
    }
}
