//! Every key-value key the plugin reads or writes, and every stored record's format, in one
//! place; and the [`Store`] they live in (`wasi:keyvalue/store`, bucket `""`, in the
//! component). An empty value is a cleared link or mark: the store is never asked to delete.
//!
//! | key | value |
//! |---|---|
//! | `contact-by-phone:{location}:{e164}` | HighLevel contact id ([`phone_key`]) |
//! | `call:{location}:{call id}` | [`NoteRecord`] ([`call_key`]) |
//! | `call-leg:{location}:{leg id}` | the id the leg's call is recorded under ([`call_alias_key`]) |
//! | `call-entry:{location}:{call id}` | [`CallEntryRecord`] ([`call_entry_key`]) |
//! | `screen-pop:{location}:{dialpad user id}` | the times of the user's latest pops ([`screen_pop_key`]) |
//! | `call-ended:{location}:{call id}` | [`MARK`] once the call ended ([`call_ended_key`]) |
//! | `highlevel-contact:{location}:{contact id}` | the linked Dialpad contact id ([`highlevel_contact_key`]) |
//! | `owner:{location}:{e-mail}` | the HighLevel user id of an agent ([`owner_key`]) |
//! | `highlevel-state:{location}:{contact id}` | the synced fields as HighLevel holds them ([`highlevel_state_key`]) |
//! | `sms:{location}:{sms id}` | [`NoteRecord`] ([`sms_key`]) |
//! | `dialpad-contact:{location}:{dialpad id}` | [`ContactRecord`] ([`dialpad_contact_key`]) |
//! | `contact-event:{location}:{content hash}` | [`MARK`] ([`contact_event_key`]) |
//! | `platform-event:{location}:{event id}` | [`DONE`] ([`platform_event_key`]) |
//! | `platform-task:…` / `platform-note:{location}:{ref}` | [`PlatformLink`] ([`platform_link_key`]) |
//! | `view:{location}:{contact id}` | [`CachedView`] ([`view_key`]) |
//! | `pending:{any key above}` | [`MARK`] while a write may have landed unseen ([`pending_key`]) |

use crate::config::Config;
use crate::error::SyncError;
use crate::inbound::dialpad::Event;
use crate::inbound::event::EventKind;
use crate::plan::activity::CallActivity;
use serde_json::Value;

/// Key-value storage as the sync needs it (`wasi:keyvalue/store` in the component).
pub trait Store {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Several values, in the order of `keys` (`wasi:keyvalue/batch` `get-many` in the
    /// component: one call into the host for all of them).
    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, String> {
        keys.iter().map(|key| self.get(key)).collect()
    }
}

/// A non-empty text value (an empty one is a cleared link).
pub fn read_text(store: &mut dyn Store, key: &str) -> Result<Option<String>, SyncError> {
    Ok(store.get(key).map_err(SyncError::Storage)?.and_then(text))
}

/// A stored value as text, as [`read_text`] reads it: an empty one is a cleared link.
pub fn text(bytes: Vec<u8>) -> Option<String> {
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

/// The value of a cleared link or mark.
pub const CLEARED: &[u8] = b"";
/// The value of a set mark (a pending write, a contact event applied).
pub const MARK: &[u8] = b"1";
/// The value recording that a platform event was handled.
pub const DONE: &[u8] = b"done";

/// The key-value key linking a phone number to a HighLevel contact.
pub fn phone_key(location_id: &str, e164: &str) -> String {
    format!("contact-by-phone:{location_id}:{e164}")
}

/// The key-value key of a call's entry in Conversations.
pub fn call_entry_key(location_id: &str, call_id: &str) -> String {
    format!("call-entry:{location_id}:{call_id}")
}

/// The key-value key of a Dialpad user's latest screen pops.
pub fn screen_pop_key(location_id: &str, user_id: &str) -> String {
    format!("screen-pop:{location_id}:{user_id}")
}

/// The key-value key saying a call has ended (no screen pop after it).
pub fn call_ended_key(location_id: &str, call_id: &str) -> String {
    format!("call-ended:{location_id}:{call_id}")
}

/// The key-value key linking a HighLevel contact to the Dialpad contact two-way sync wrote.
pub fn highlevel_contact_key(location_id: &str, contact_id: &str) -> String {
    format!("highlevel-contact:{location_id}:{contact_id}")
}

/// The key-value key of a HighLevel contact's synced fields as HighLevel last held them (JSON).
pub fn highlevel_state_key(location_id: &str, contact_id: &str) -> String {
    format!("highlevel-state:{location_id}:{contact_id}")
}

/// The key-value key of an agent's HighLevel user, by e-mail.
pub fn owner_key(location_id: &str, email: &str) -> String {
    format!("owner:{location_id}:{email}")
}

/// A call's entry in Conversations: its id, then one `recording id<space>share link` line per
/// recording attached.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallEntryRecord {
    pub id: String,
    pub attached: Vec<(String, String)>,
}

impl CallEntryRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut text = self.id.clone();
        for (recording, link) in &self.attached {
            text.push_str(&format!("\n{recording} {link}"));
        }
        text.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<CallEntryRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        let id = lines.next().filter(|id| !id.is_empty())?.to_string();
        let attached = lines.filter_map(|l| l.split_once(' ')).map(|(r, l)| (r.to_string(), l.to_string())).collect();
        Some(CallEntryRecord { id, attached })
    }
}

/// The key-value key of a call's record.
pub fn call_key(location_id: &str, call_id: &str) -> String {
    format!("call:{location_id}:{call_id}")
}

/// The key-value key linking a call leg's id to the id its call is recorded under.
pub fn call_alias_key(location_id: &str, call_id: &str) -> String {
    format!("call-leg:{location_id}:{call_id}")
}

/// The key-value key of an SMS's record.
pub fn sms_key(location_id: &str, sms_id: &str) -> String {
    format!("sms:{location_id}:{sms_id}")
}

/// The key-value key linking a Dialpad contact to its HighLevel contact ([`ContactRecord`]).
pub fn dialpad_contact_key(location_id: &str, dialpad_id: &str) -> String {
    format!("dialpad-contact:{location_id}:{dialpad_id}")
}

/// The key-value key recording that a contact event with this content was applied.
pub fn contact_event_key(config: &Config, content_hash: &str) -> String {
    format!("contact-event:{}:{content_hash}", config.location_id)
}

/// The key-value key recording that a platform event was handled.
pub fn platform_event_key(location_id: &str, id: &str) -> String {
    format!("platform-event:{location_id}:{id}")
}

/// The key-value key linking a platform task's or note's `ref` to HighLevel's ids.
pub fn platform_link_key(location_id: &str, kind: EventKind, reference: &str) -> String {
    let what = if kind == EventKind::Task { "task" } else { "note" };
    format!("platform-{what}:{location_id}:{reference}")
}

/// The key-value key of a contact's cached view.
pub fn view_key(location_id: &str, contact_id: &str) -> String {
    format!("view:{location_id}:{contact_id}")
}

/// The key-value key saying that a delivery of the event behind `key` sent a write whose
/// answer never came (see `KnownState::uncertain`).
pub fn pending_key(key: &str) -> String {
    format!("pending:{key}")
}

/// The key-value record of one call or message: where its note is and what it says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NoteRecord {
    pub contact_id: String,
    pub note_id: String,
    pub activity: CallActivity,
    /// The note body last written, so an event that changes nothing writes nothing.
    pub written_body: String,
}

impl NoteRecord {
    /// `contact id`, `note id`, newest event timestamp, then the note as written, one per line.
    /// The activity is not stored twice: it is the note read back (`from_note_body`), which
    /// keeps serde's derive code out of the component.
    pub fn encode(&self) -> Vec<u8> {
        let last = self.activity.last_event_ms.map(|ms| ms.to_string()).unwrap_or_default();
        let automations = self.activity.automations.join(",");
        format!("{}\n{}\n{last}\n{automations}\n{}", self.contact_id, self.note_id, self.written_body).into_bytes()
    }

    /// `None` when the bytes are not a record. A note that does not read back (it cannot
    /// happen with notes this version wrote) leaves only the ids: the call's note is then
    /// updated from this event alone rather than written twice.
    pub fn decode(bytes: &[u8]) -> Option<NoteRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(5, '\n');
        let (contact_id, note_id, last, automations, written_body) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if contact_id.is_empty() || note_id.is_empty() {
            return None;
        }
        let mut activity = CallActivity::from_note_body(written_body).unwrap_or_default();
        activity.last_event_ms = last.parse().ok();
        // The rules whose steps all succeeded: the note may name one whose task then failed.
        activity.automations = automations.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect();
        Some(NoteRecord { contact_id: contact_id.into(), note_id: note_id.into(), activity, written_body: written_body.into() })
    }
}

/// The key-value keys the planner wants read for an event: the caller's contact link, and the
/// record of the call or message. For a call, `activity_id` is the id its legs are recorded
/// under (from the leg links; see [`call_alias_key`]).
pub fn state_keys(event: &Event, config: &Config, activity_id: Option<&str>) -> (Option<String>, Option<String>) {
    let location = &config.location_id;
    match event {
        Event::Call(c) => {
            (c.external_phone.as_ref().map(|p| phone_key(location, p.as_str())), Some(call_key(location, activity_id.unwrap_or(c.default_activity_id()))))
        }
        Event::Sms(m) => (m.external_phone.as_ref().map(|p| phone_key(location, p.as_str())), Some(sms_key(location, &m.id))),
        Event::Contact(c) => (c.phone.as_ref().map(|p| phone_key(location, p.as_str())), Some(dialpad_contact_key(location, &c.id))),
        _ => (None, None),
    }
}

/// What the store says about a Dialpad contact: its HighLevel id, a newline, and the mapped
/// fields last written (or [`ContactRecord::DELETED`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub contact_id: String,
    pub written: String,
}

impl ContactRecord {
    /// `written` of a contact whose Dialpad contact was deleted (and the deletion handled).
    pub const DELETED: &'static str = "deleted";

    pub fn encode(&self) -> Vec<u8> {
        format!("{}\n{}", self.contact_id, self.written).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<ContactRecord> {
        let (id, written) = std::str::from_utf8(bytes).ok()?.split_once('\n')?;
        (!id.is_empty()).then(|| ContactRecord { contact_id: id.into(), written: written.into() })
    }
}

/// A platform task's or note's link: the HighLevel contact, a newline, the task or note id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformLink {
    pub contact_id: String,
    pub id: String,
}

impl PlatformLink {
    pub fn encode(&self) -> Vec<u8> {
        format!("{}\n{}", self.contact_id, self.id).into_bytes()
    }

    /// `None` for a value that is not a link.
    pub fn decode(text: &str) -> Option<PlatformLink> {
        text.split_once('\n').map(|(c, i)| PlatformLink { contact_id: c.to_string(), id: i.to_string() })
    }
}

/// A contact's cached view: when it was read (unix seconds), a newline, the view's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedView {
    pub at_seconds: u64,
    pub view: Value,
}

impl CachedView {
    pub fn encode(&self) -> Vec<u8> {
        format!("{}\n{}", self.at_seconds, self.view).into_bytes()
    }

    /// `None` for a value that is not a view (a dropped one is empty).
    pub fn decode(bytes: Vec<u8>) -> Option<CachedView> {
        let text = String::from_utf8(bytes).ok()?;
        let (at, json) = text.split_once('\n')?;
        Some(CachedView { at_seconds: at.parse().ok()?, view: serde_json::from_str(json).ok()? })
    }
}

/// An in-memory [`Store`] for unit tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MemStore(pub std::collections::HashMap<String, Vec<u8>>);

#[cfg(test)]
impl Store for MemStore {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(key).cloned())
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.insert(key.into(), value.into());
        Ok(())
    }
}
