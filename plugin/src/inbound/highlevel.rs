//! HighLevel's contact webhooks (`ContactCreate`, `ContactUpdate`, `ContactDelete`), as the
//! host hands them over after verifying HighLevel's Ed25519 signature. Other webhook types are
//! read as [`HighLevelEvent::Other`] and skipped by the planner with a reason.
//!
//! The body is HighLevel's contact (`id`, `locationId`, `firstName`, `lastName`, `email`,
//! `phone`, `companyName`, `website`, …; see `../shared/reference/ghl/webhooks/`). Unknown keys
//! are ignored; a known one of the wrong type is a typed error naming it.

use super::phone::{self, Region, E164};
use crate::error::SyncError;
use serde_json::{Map, Value};

/// One HighLevel webhook, read.
#[derive(Debug, Clone, PartialEq)]
pub enum HighLevelEvent {
    Contact(Box<HighLevelContact>),
    /// A webhook type the sync does not act on (its `type`).
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactChange {
    Created,
    Updated,
    Deleted,
}

impl ContactChange {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactChange::Created => "created",
            ContactChange::Updated => "updated",
            ContactChange::Deleted => "deleted",
        }
    }
}

/// A HighLevel contact as its webhook carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct HighLevelContact {
    pub change: ContactChange,
    pub location_id: String,
    pub id: String,
    pub phone: Option<E164>,
    /// `(HighLevel field, value)` for every non-empty field of [`SYNCED_FIELDS`].
    pub fields: Vec<(&'static str, String)>,
    /// SHA-256 (hex, first 16 bytes) of the synced fields: what the sync compares to tell its
    /// own write coming back (an echo) from a person's edit.
    pub content_hash: String,
}

impl HighLevelContact {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// The HighLevel contact fields two-way sync carries to Dialpad (`phone` in E.164, `email`
/// lower case).
pub const SYNCED_FIELDS: &[&str] = &["firstName", "lastName", "email", "phone", "companyName", "website"];

/// Reads one HighLevel webhook body (verified JSON bytes).
pub fn parse(json: &[u8], region: &Region) -> Result<HighLevelEvent, SyncError> {
    let value: Value = serde_json::from_slice(json).map_err(|e| SyncError::malformed(format!("HighLevel webhook body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(SyncError::malformed("HighLevel webhook body must be a JSON object"));
    };
    let kind = text(&obj, "type")?.ok_or_else(|| SyncError::malformed("HighLevel webhook without a `type`"))?;
    let change = match kind.as_str() {
        "ContactCreate" => ContactChange::Created,
        "ContactUpdate" => ContactChange::Updated,
        "ContactDelete" => ContactChange::Deleted,
        _ => return Ok(HighLevelEvent::Other(kind)),
    };
    let id = text(&obj, "id")?.ok_or_else(|| SyncError::malformed(format!("{kind} without the contact's `id`")))?;
    let location_id = text(&obj, "locationId")?.ok_or_else(|| SyncError::malformed(format!("{kind} without a `locationId`")))?;
    let mut fields = Vec::new();
    let mut phone = None;
    for name in SYNCED_FIELDS {
        let Some(value) = text(&obj, name)? else { continue };
        let value = match *name {
            "phone" => match phone::to_e164(&value, region) {
                Ok(e164) => {
                    phone = Some(e164.clone());
                    e164.as_str().to_string()
                }
                Err(_) => {
                    return Err(SyncError::malformed(format!("`phone` \"{value}\" is not a phone number in E.164 or a national format of {}", region.code)))
                }
            },
            "email" => value.to_lowercase(),
            _ => value,
        };
        fields.push((*name, value));
    }
    let content_hash = hash_fields(&fields);
    Ok(HighLevelEvent::Contact(Box::new(HighLevelContact { change, location_id, id, phone, fields, content_hash })))
}

/// The hash of a contact's synced fields, the same whichever side computes it.
pub fn hash_fields(fields: &[(&str, String)]) -> String {
    let mut text = String::new();
    for (name, value) in fields {
        text.push_str(name);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn text(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, SyncError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(_) => Err(SyncError::malformed(format!("`{key}` must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> &'static Region {
        phone::region("US").unwrap()
    }

    #[test]
    fn a_contact_update_is_read_with_its_synced_fields() {
        let body = br#"{"type":"ContactUpdate","locationId":"L","id":"c1","firstName":"Dana","lastName":"Whitfield","email":"Dana@X.example",
            "phone":"(206) 555-0174","companyName":"","tags":["a"],"customFields":[{"id":"f","value":"v"}]}"#;
        let HighLevelEvent::Contact(c) = parse(body, us()).unwrap() else { panic!() };
        assert_eq!((c.change, c.location_id.as_str(), c.id.as_str()), (ContactChange::Updated, "L", "c1"));
        assert_eq!(c.phone.as_ref().unwrap().as_str(), "+12065550174");
        assert_eq!(c.field("email"), Some("dana@x.example"));
        assert_eq!(c.field("companyName"), None);
        assert_eq!(c.content_hash, hash_fields(&c.fields));
    }

    #[test]
    fn other_types_are_read_and_bad_bodies_are_typed_errors() {
        assert_eq!(parse(br#"{"type":"NoteCreate","locationId":"L"}"#, us()).unwrap(), HighLevelEvent::Other("NoteCreate".into()));
        assert!(matches!(parse(b"{", us()), Err(SyncError::MalformedEvent(_))));
        assert!(matches!(parse(br#"{"type":"ContactUpdate","locationId":"L"}"#, us()), Err(SyncError::MalformedEvent(m)) if m.contains("`id`")));
        assert!(
            matches!(parse(br#"{"type":"ContactUpdate","locationId":"L","id":"c","email":3}"#, us()), Err(SyncError::MalformedEvent(m)) if m.contains("`email`"))
        );
        assert!(
            matches!(parse(br#"{"type":"ContactUpdate","locationId":"L","id":"c","phone":"twelve"}"#, us()), Err(SyncError::MalformedEvent(m)) if m.contains("`phone`"))
        );
    }
}
