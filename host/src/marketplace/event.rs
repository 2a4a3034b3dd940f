//! The webhooks HighLevel sends to an app's Default Webhook URL, read from the body: the app
//! lifecycle's `INSTALL` and `UNINSTALL` (AppInstall.md, AppUninstall.md), and the contact
//! webhooks two-way sync takes (`ContactCreate`, `ContactUpdate`, `ContactDelete`:
//! ContactCreate.md and its siblings), of which only what routing and replay protection need is
//! read here (the plugin reads the rest); any other `type` is passed on by name.
//!
//! `timestamp` and `webhookId` are not in those two pages' examples but are in every webhook
//! per the Webhook Authentication guide (and in HighLevel's sample install payload), and replay
//! protection rests on them: an app event without them is refused. `timestamp` is an ISO 8601
//! UTC instant as JavaScript's `toISOString` writes it (`2025-06-25T06:57:06.225Z`; the guide
//! shows it without milliseconds, `2025-01-28T14:35:00Z`); both are read.

use serde_json::{Map, Value};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEvent {
    Install(Install),
    Uninstall(Uninstall),
    /// A contact webhook of one location, for the plugin.
    Contact(ContactWebhook),
    /// Another webhook type, or an app event for another app (see `AppWebhookGate::check`):
    /// nothing to do here.
    Other {
        kind: String,
    },
}

/// The app was installed in a location (sub-account), in several at once (bulk install), or
/// at the agency (company) level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    pub app_id: String,
    /// `Location` or `Company`, as sent. When it is missing (the official page's examples
    /// have none) it is `Location` if a location is named, else `Company`: the page's two
    /// kinds of example differ exactly so.
    pub install_type: String,
    pub location_id: Option<String>,
    /// A bulk install's `locationIds`; empty otherwise.
    pub location_ids: Vec<String>,
    /// Absent "in case of app installation via future locations" (AppInstall.md).
    pub company_id: Option<String>,
    pub user_id: Option<String>,
    pub webhook_id: String,
    /// `timestamp`, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl Install {
    /// Every location this install is for: `locationId` and the bulk `locationIds`, each once.
    pub fn locations(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.location_id.iter().chain(&self.location_ids).map(String::as_str).collect();
        let mut seen = std::collections::BTreeSet::new();
        all.retain(|l| seen.insert(*l));
        all
    }
}

/// The app was removed from a location, or from the agency (then only `companyId` is given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uninstall {
    pub app_id: String,
    pub location_id: Option<String>,
    pub company_id: Option<String>,
    pub webhook_id: String,
    pub timestamp_ms: i64,
}

/// The contact webhooks handed to the plugin (`inbound-event.highlevel-webhook`).
pub const CONTACT_WEBHOOKS: [&str; 3] = ["ContactCreate", "ContactUpdate", "ContactDelete"];

/// A contact was created, updated or deleted in a location. Its pages document no `appId`: it
/// comes to the app because the app subscribed to it, so no other app's can be told apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactWebhook {
    /// One of [`CONTACT_WEBHOOKS`].
    pub kind: String,
    /// Whose contact: the tenant the body is handed to.
    pub location_id: String,
    pub webhook_id: String,
    pub timestamp_ms: i64,
}

impl AppEvent {
    /// Reads a webhook body. Only `type` is required of other webhooks.
    pub fn parse(body: &[u8]) -> Result<AppEvent, EventError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| EventError::NotJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(EventError::NotAnObject);
        };
        let kind = required(&fields, "type")?;
        match kind.as_str() {
            "INSTALL" => {
                let location_id = optional(&fields, "locationId")?;
                let location_ids = match fields.get("locationIds") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(ids)) => ids
                        .iter()
                        .map(|id| {
                            id.as_str()
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .ok_or(EventError::BadField { field: "locationIds", expected: "a list of ids" })
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(EventError::BadField { field: "locationIds", expected: "a list of ids" }),
                };
                let install_type = match optional(&fields, "installType")? {
                    Some(t) => t,
                    None if location_id.is_some() || !location_ids.is_empty() => "Location".to_string(),
                    None => "Company".to_string(),
                };
                Ok(AppEvent::Install(Install {
                    app_id: required(&fields, "appId")?,
                    install_type,
                    location_id,
                    location_ids,
                    company_id: optional(&fields, "companyId")?,
                    user_id: optional(&fields, "userId")?,
                    webhook_id: required(&fields, "webhookId")?,
                    timestamp_ms: timestamp(&fields)?,
                }))
            }
            "UNINSTALL" => {
                let uninstall = Uninstall {
                    app_id: required(&fields, "appId")?,
                    location_id: optional(&fields, "locationId")?,
                    company_id: optional(&fields, "companyId")?,
                    webhook_id: required(&fields, "webhookId")?,
                    timestamp_ms: timestamp(&fields)?,
                };
                if uninstall.location_id.is_none() && uninstall.company_id.is_none() {
                    // Nothing would say what to forget.
                    return Err(EventError::MissingField("locationId or companyId"));
                }
                Ok(AppEvent::Uninstall(uninstall))
            }
            contact if CONTACT_WEBHOOKS.contains(&contact) => Ok(AppEvent::Contact(ContactWebhook {
                location_id: required(&fields, "locationId")?,
                webhook_id: required(&fields, "webhookId")?,
                timestamp_ms: timestamp(&fields)?,
                kind: contact.to_string(),
            })),
            _ => Ok(AppEvent::Other { kind }),
        }
    }

    /// The webhook's `type` (`INSTALL`, `UNINSTALL`, or the other one's).
    pub fn kind(&self) -> &str {
        match self {
            AppEvent::Install(_) => "INSTALL",
            AppEvent::Uninstall(_) => "UNINSTALL",
            AppEvent::Contact(contact) => &contact.kind,
            AppEvent::Other { kind } => kind,
        }
    }

    /// The `webhookId` the replay ledger records: `None` for the types nothing acts on.
    pub fn webhook_id(&self) -> Option<&str> {
        match self {
            AppEvent::Install(i) => Some(&i.webhook_id),
            AppEvent::Uninstall(u) => Some(&u.webhook_id),
            AppEvent::Contact(c) => Some(&c.webhook_id),
            AppEvent::Other { .. } => None,
        }
    }
}

/// A text field that must be there and not be empty.
fn required(fields: &Map<String, Value>, name: &'static str) -> Result<String, EventError> {
    optional(fields, name)?.ok_or(EventError::MissingField(name))
}

/// A text field that may be absent (or null, or empty: HighLevel sends `""` for unknown ids).
fn optional(fields: &Map<String, Value>, name: &'static str) -> Result<Option<String>, EventError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(EventError::BadField { field: name, expected: "text" }),
    }
}

fn timestamp(fields: &Map<String, Value>) -> Result<i64, EventError> {
    let text = required(fields, "timestamp")?;
    parse_timestamp(&text).ok_or(EventError::BadTimestamp(text))
}

/// An RFC 3339 UTC instant (`Z`), with or without fractional seconds, as milliseconds since
/// the epoch. Offsets other than `Z` are not read: JavaScript's `toISOString`, which writes
/// HighLevel's timestamps, always uses `Z`.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339(text.trim()).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// Why a webhook body could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventError {
    NotJson(String),
    NotAnObject,
    MissingField(&'static str),
    BadField { field: &'static str, expected: &'static str },
    BadTimestamp(String),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::NotJson(e) => write!(f, "the webhook body is not JSON: {e}"),
            EventError::NotAnObject => write!(f, "the webhook body is not a JSON object"),
            EventError::MissingField(name) => write!(f, "the webhook has no {name}"),
            EventError::BadField { field, expected } => write!(f, "the webhook's {field} is not {expected}"),
            EventError::BadTimestamp(text) => write!(f, "the webhook's timestamp {text:?} is not an ISO 8601 UTC time such as 2025-06-25T06:57:06.225Z"),
        }
    }
}

impl std::error::Error for EventError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<AppEvent, EventError> {
        AppEvent::parse(json.as_bytes())
    }

    #[test]
    fn a_location_install_as_highlevel_documents_it() {
        // HighLevel's sample install payload (Authorization docs), as sent.
        let event = parse(
            r#"{"type":"INSTALL","appId":"665c6bb13d4e5364bdec0e2f","versionId":"665c6bb13d4e5364bdec0e2f","installType":"Location",
            "locationId":"HjiMUOsCCHCjtxzEf8PR","companyId":"GNb7aIv4rQFVb9iwNl5K","userId":"Rg6BRRiHh7dS9gJy3W8a",
            "companyName":"Marketplace and Integrations Prod Agency","isWhitelabelCompany":true,
            "whitelabelDetails":{"logoUrl":"https://...gif","domain":"rajender.dentistsnear.me"},
            "timestamp":"2025-06-25T06:57:06.225Z","webhookId":"1a533f85-1f1e-4886-891e-ee0cf4666e90"}"#,
        )
        .unwrap();
        assert_eq!(
            event,
            AppEvent::Install(Install {
                app_id: "665c6bb13d4e5364bdec0e2f".into(),
                install_type: "Location".into(),
                location_id: Some("HjiMUOsCCHCjtxzEf8PR".into()),
                location_ids: vec![],
                company_id: Some("GNb7aIv4rQFVb9iwNl5K".into()),
                user_id: Some("Rg6BRRiHh7dS9gJy3W8a".into()),
                webhook_id: "1a533f85-1f1e-4886-891e-ee0cf4666e90".into(),
                timestamp_ms: 1_750_834_626_225,
            })
        );
        assert_eq!(event.kind(), "INSTALL");
    }

    #[test]
    fn bulk_and_agency_installs() {
        let AppEvent::Install(bulk) = parse(
            r#"{"type":"INSTALL","appId":"a","installType":"Location","companyId":"c","locationIds":["l1","l2","l1"],"locationId":"l2","webhookId":"w","timestamp":"2025-01-28T14:35:00Z"}"#,
        )
        .unwrap() else {
            panic!("not an install")
        };
        assert_eq!((bulk.locations(), bulk.timestamp_ms), (vec!["l2", "l1"], 1_738_074_900_000));
        // AppInstall.md's agency example: no installType, no location.
        let AppEvent::Install(agency) =
            parse(r#"{"type":"INSTALL","appId":"a","companyId":"c","planId":"p","trial":{"onTrial":true},"webhookId":"w","timestamp":"2025-01-28T14:35:00Z"}"#)
                .unwrap()
        else {
            panic!("not an install")
        };
        assert_eq!((agency.install_type.as_str(), agency.locations(), agency.user_id.as_deref()), ("Company", vec![], None));
    }

    #[test]
    fn uninstalls_of_a_location_and_of_the_agency() {
        let at = r#""webhookId":"w","timestamp":"2025-01-28T14:35:00.5Z""#;
        let location = parse(&format!(r#"{{"type":"UNINSTALL","appId":"a","locationId":"l",{at}}}"#)).unwrap();
        assert_eq!(
            location,
            AppEvent::Uninstall(Uninstall {
                app_id: "a".into(),
                location_id: Some("l".into()),
                company_id: None,
                webhook_id: "w".into(),
                timestamp_ms: 1_738_074_900_500
            })
        );
        let AppEvent::Uninstall(agency) = parse(&format!(r#"{{"type":"UNINSTALL","appId":"a","companyId":"c",{at}}}"#)).unwrap() else { panic!() };
        assert_eq!((agency.location_id, agency.company_id.as_deref()), (None, Some("c")));
        assert_eq!(parse(&format!(r#"{{"type":"UNINSTALL","appId":"a",{at}}}"#)), Err(EventError::MissingField("locationId or companyId")));
    }

    #[test]
    fn other_types_pass_by_name() {
        assert_eq!(parse(r#"{"type":"NoteCreate","locationId":"l","id":"n"}"#), Ok(AppEvent::Other { kind: "NoteCreate".into() }));
        assert_eq!(parse(r#"{"type":"ContactTagUpdate","locationId":"l","id":"c"}"#).unwrap().webhook_id(), None);
    }

    #[test]
    fn contact_webhooks_need_their_location_and_replay_fields() {
        // ContactUpdate.md's example, with the fields every webhook carries (WebhookAuthentication.md).
        let event = parse(
            r#"{"type":"ContactUpdate","locationId":"ve9EPM428h8vShlRW1KT","id":"nmFmQEsNgz6AVpgLVUJ0","phone":"+919509597501","tags":[],
            "customFields":[{"id":"BcdmQEsNgz6AVpgLVUJ0","value":"XYZ Corp"}],"timestamp":"2025-01-28T14:35:00Z","webhookId":"abc123xyz"}"#,
        )
        .unwrap();
        assert_eq!(
            event,
            AppEvent::Contact(ContactWebhook {
                kind: "ContactUpdate".into(),
                location_id: "ve9EPM428h8vShlRW1KT".into(),
                webhook_id: "abc123xyz".into(),
                timestamp_ms: 1_738_074_900_000
            })
        );
        assert_eq!((event.kind(), event.webhook_id()), ("ContactUpdate", Some("abc123xyz")));
        let at = r#""webhookId":"w","timestamp":"2025-01-28T14:35:00Z""#;
        assert_eq!(parse(&format!(r#"{{"type":"ContactDelete","id":"c",{at}}}"#)), Err(EventError::MissingField("locationId")));
        assert_eq!(
            parse(r#"{"type":"ContactCreate","locationId":"l","id":"c","timestamp":"2025-01-28T14:35:00Z"}"#),
            Err(EventError::MissingField("webhookId"))
        );
        assert_eq!(parse(r#"{"type":"ContactCreate","locationId":"l","id":"c","webhookId":"w"}"#), Err(EventError::MissingField("timestamp")));
    }

    #[test]
    fn bad_bodies_are_typed_errors_in_plain_words() {
        let cases: &[(&str, EventError)] = &[
            ("{not json", EventError::NotJson(String::new())),
            ("[1]", EventError::NotAnObject),
            (r#"{"appId":"a"}"#, EventError::MissingField("type")),
            (r#"{"type":"INSTALL","appId":"a","locationId":"l","timestamp":"2025-01-28T14:35:00Z"}"#, EventError::MissingField("webhookId")),
            (r#"{"type":"INSTALL","appId":"a","locationId":"l","webhookId":"w"}"#, EventError::MissingField("timestamp")),
            (r#"{"type":"INSTALL","appId":7,"webhookId":"w","timestamp":"2025-01-28T14:35:00Z"}"#, EventError::BadField { field: "appId", expected: "text" }),
            (
                r#"{"type":"INSTALL","appId":"a","locationIds":"l","webhookId":"w","timestamp":"2025-01-28T14:35:00Z"}"#,
                EventError::BadField { field: "locationIds", expected: "a list of ids" },
            ),
            (r#"{"type":"INSTALL","appId":"a","webhookId":"w","timestamp":"1738074900000"}"#, EventError::BadTimestamp("1738074900000".into())),
            (
                r#"{"type":"UNINSTALL","appId":"a","locationId":"l","webhookId":"w","timestamp":"2025-01-28T14:35:00+02:00"}"#,
                EventError::BadTimestamp("2025-01-28T14:35:00+02:00".into()),
            ),
        ];
        for (body, expected) in cases {
            let error = parse(body).unwrap_err();
            match (&error, expected) {
                (EventError::NotJson(_), EventError::NotJson(_)) => {}
                _ => assert_eq!(&error, expected, "{body}"),
            }
            assert!(error.to_string().starts_with("the webhook"), "{error}");
        }
        // A number is not the documented text form either.
        assert_eq!(
            parse(r#"{"type":"INSTALL","appId":"a","webhookId":"w","timestamp":1738074900000}"#),
            Err(EventError::BadField { field: "timestamp", expected: "text" })
        );
    }
}
