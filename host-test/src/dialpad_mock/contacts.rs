//! Contacts (operations `contacts.create`, `contacts.create_with_uid`, `contacts.get`,
//! `contacts.update`, `contacts.delete`), answered as the spec's `ContactProto`.
//!
//! - `POST /api/v2/contacts` (`CreateContactMessage`, `first_name` and `last_name` required):
//!   with `owner_id` (a user's id) a **local** contact of that user, else a **shared** one.
//!   Ids are numeric strings, like the fixtures'.
//! - `PUT /api/v2/contacts` (`CreateContactMessageWithUid`, `uid` required too): creates the
//!   shared contact of that `uid`, or replaces the one that exists: the body is the whole
//!   contact, so a field it leaves out is cleared. Its id is `uid-<uid>`: Dialpad's "generated
//!   id" embeds the uid, in a form it does not document. `ContactProto` has no `uid` field, so
//!   no answer shows it.
//! - `GET`, `PATCH` (`UpdateContactMessage`: what it names changes, lists are replaced whole),
//!   `DELETE /api/v2/contacts/{id}` (answers the deleted contact). An unknown id → 404.
//!
//! `phones` must be E.164 ("must be in e164 format"); the first phone and the first email are
//! the primary ones. Names, company and job title are "[single-line only]". Creates count
//! against the contact-create limit (`limits.rs`); a PUT that replaces does not.

use serde_json::{json, Map, Value};

use super::checks::{is_e164, single_line};
use super::limits::{DialpadLimit, Limits};
use super::reply::{error, Reply};
use super::users::Users;

/// The first id handed out: large and numeric, like the fixtures' `5908860431927296`.
const FIRST_ID: i64 = 5_908_860_000_000_001;
/// The contact fields the create and update messages carry.
const FIELDS: [&str; 9] = ["company_name", "emails", "extension", "first_name", "job_title", "last_name", "phones", "trunk_group", "urls"];

pub(super) struct StoredContact {
    pub(super) id: String,
    /// The owning user's id, for a local contact.
    owner_id: Option<String>,
    /// The uid of a contact created by `PUT`.
    pub(super) uid: Option<String>,
    /// The message fields as last set.
    fields: Map<String, Value>,
}

/// A change to announce as a contact event: `Created`, `Updated` or `Deleted`, and the contact.
pub(super) struct ContactEvent {
    pub(super) event: &'static str,
    pub(super) contact: Value,
}

/// The contacts, in creation order.
#[derive(Default)]
pub(super) struct Contacts {
    pub(super) list: Vec<StoredContact>,
    created: i64,
}

impl Contacts {
    fn position(&self, id: &str) -> Result<usize, Reply> {
        self.list.iter().position(|c| c.id == id).ok_or_else(|| error(404, &format!("no contact {id}")))
    }

    /// `POST /api/v2/contacts`, the body checked against its schema already.
    pub(super) fn create(&mut self, body: &Map<String, Value>, users: &Users, limits: &mut Limits) -> Result<(Value, ContactEvent), Reply> {
        check_values(body)?;
        let owner_id = body.get("owner_id").and_then(Value::as_str).map(str::to_owned);
        if let Some(owner) = &owner_id {
            if !owner.parse().is_ok_and(|id| users.exists(id)) {
                return Err(error(400, &format!("owner_id {owner}: no such user")));
            }
        }
        limits.admit(DialpadLimit::ContactCreate, "")?;
        let id = (FIRST_ID + self.created).to_string();
        self.created += 1;
        self.list.push(StoredContact { id, owner_id, uid: None, fields: message_fields(body) });
        Ok(announce("Created", self.list.last().expect("just pushed")))
    }

    /// `PUT /api/v2/contacts`.
    pub(super) fn put_with_uid(&mut self, body: &Map<String, Value>, limits: &mut Limits) -> Result<(Value, ContactEvent), Reply> {
        check_values(body)?;
        let uid = body.get("uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(existing) = self.list.iter_mut().find(|c| c.uid.as_deref() == Some(uid.as_str())) {
            existing.fields = message_fields(body);
            return Ok(announce("Updated", existing));
        }
        limits.admit(DialpadLimit::ContactCreate, "")?;
        self.list.push(StoredContact { id: format!("uid-{uid}"), owner_id: None, uid: Some(uid), fields: message_fields(body) });
        Ok(announce("Created", self.list.last().expect("just pushed")))
    }

    pub(super) fn get(&self, id: &str) -> Result<Value, Reply> {
        Ok(proto(&self.list[self.position(id)?]))
    }

    /// `PATCH /api/v2/contacts/{id}`, and a person's edit.
    pub(super) fn update(&mut self, id: &str, body: &Map<String, Value>) -> Result<(Value, ContactEvent), Reply> {
        let at = self.position(id)?;
        check_values(body)?;
        let contact = &mut self.list[at];
        for (name, value) in message_fields(body) {
            contact.fields.insert(name, value);
        }
        Ok(announce("Updated", contact))
    }

    pub(super) fn delete(&mut self, id: &str) -> Result<(Value, ContactEvent), Reply> {
        let at = self.position(id)?;
        let contact = self.list.remove(at);
        Ok(announce("Deleted", &contact))
    }
}

/// The answer and the event of a change.
fn announce(event: &'static str, contact: &StoredContact) -> (Value, ContactEvent) {
    let proto = proto(contact);
    (proto.clone(), ContactEvent { event, contact: proto })
}

/// The message fields of a body, `null`s left out.
fn message_fields(body: &Map<String, Value>) -> Map<String, Value> {
    FIELDS.iter().filter_map(|name| body.get(*name).filter(|v| !v.is_null()).map(|v| (name.to_string(), v.clone()))).collect()
}

/// The checks of values the schema's types do not express.
fn check_values(body: &Map<String, Value>) -> Result<(), Reply> {
    single_line(body, &["first_name", "last_name", "company_name", "job_title"])?;
    let phones = body.get("phones").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
    match phones.into_iter().find(|p| !is_e164(p)) {
        Some(phone) => Err(error(400, &format!("phones: {phone:?} is not in e164 format"))),
        None => Ok(()),
    }
}

/// The contact's `ContactProto`, shaped like the fixtures' (`extension` and `trunk_group`
/// empty when unset).
pub(super) fn proto(contact: &StoredContact) -> Value {
    let fields = &contact.fields;
    let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let list = |name: &str| fields.get(name).cloned().unwrap_or_else(|| json!([]));
    let (first, last) = (text("first_name"), text("last_name"));
    let mut proto = json!({
        "id": contact.id,
        "type": if contact.owner_id.is_some() { "local" } else { "shared" },
        "first_name": first,
        "last_name": last,
        "display_name": format!("{first} {last}").trim(),
        "phones": list("phones"),
        "emails": list("emails"),
        "urls": list("urls"),
        "trunk_group": text("trunk_group"),
        "extension": text("extension"),
    });
    for (primary, of) in [("primary_phone", "phones"), ("primary_email", "emails")] {
        if let Some(first) = proto[of].get(0).cloned() {
            proto[primary] = first;
        }
    }
    for optional in ["company_name", "job_title"] {
        if let Some(value) = fields.get(optional) {
            proto[optional] = value.clone();
        }
    }
    if let Some(owner) = &contact.owner_id {
        proto["owner_id"] = json!(owner);
    }
    proto
}
