//! HighLevel's contact webhooks (`ContactCreate`, `ContactUpdate`, `ContactDelete`), sent to
//! the URL a test sets ([`super::MockServer::set_contact_webhook`]) for every contact the API
//! creates, updates or deletes, whoever asks (the sync included: its own writes come back to
//! it, as in production), and for every edit a person makes ([`super::MockServer::edit_contact`]).
//!
//! The body is the contact with the fields of `shared/reference/ghl/webhooks/ContactUpdate.md`
//! plus `type`; signed like the app webhooks, Ed25519 with the test key in `x-ghl-signature`
//! ([`crate::app_webhook`]). No `timestamp` or `webhookId`: the documented contact webhooks have
//! none, and the host's gate asks for them on INSTALL and UNINSTALL only. Tag-only changes (the
//! tag operations, the bulk ones) would be `ContactTagUpdate` webhooks, which the mock does not
//! send. Deliveries go out from the outbox's thread ([`crate::outbox`]).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};

use super::reply::Reply;
use crate::outbox::{Outbox, Outgoing, WebhookDelivery};

/// The contact fields a contact webhook carries (the documented schema, `type` aside).
const FIELDS: [&str; 22] = [
    "locationId",
    "id",
    "address1",
    "city",
    "companyName",
    "country",
    "source",
    "dateAdded",
    "dateOfBirth",
    "dnd",
    "email",
    "name",
    "firstName",
    "lastName",
    "phone",
    "postalCode",
    "state",
    "tags",
    "website",
    "attachments",
    "assignedTo",
    "customFields",
];

/// Which webhook a change fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ContactChange {
    Create,
    Update,
    Delete,
}

impl ContactChange {
    pub(super) fn webhook_type(self) -> &'static str {
        match self {
            ContactChange::Create => "ContactCreate",
            ContactChange::Update => "ContactUpdate",
            ContactChange::Delete => "ContactDelete",
        }
    }
}

/// The change a Contacts operation made, read from its successful answer (`deleted`: the
/// contact as it was before a delete): the webhook to send and the contact it carries.
pub(super) fn change_of(operation_id: &str, reply: &Reply, deleted: Option<Map<String, Value>>) -> Option<(ContactChange, Map<String, Value>)> {
    let answered = || reply.body.get("contact").and_then(Value::as_object).cloned();
    match operation_id {
        "create-contact" => Some((ContactChange::Create, answered()?)),
        "upsert-contact" if reply.body["new"] == Value::Bool(true) => Some((ContactChange::Create, answered()?)),
        "upsert-contact" | "update-contact" => Some((ContactChange::Update, answered()?)),
        "delete-contact" => Some((ContactChange::Delete, deleted?)),
        _ => None,
    }
}

/// The webhook's body: `type`, the documented fields the contact has, and the `timestamp` and
/// `webhookId` every webhook carries for replay protection (WebhookAuthentication.md).
pub(super) fn webhook_body(change: ContactChange, contact: &Map<String, Value>) -> Map<String, Value> {
    static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut body = Map::new();
    body.insert("type".into(), Value::String(change.webhook_type().into()));
    body.insert("timestamp".into(), Value::String(super::time::now_iso8601()));
    let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    body.insert("webhookId".into(), Value::String(format!("mock-webhook-{}-{n}", std::process::id())));
    for field in FIELDS {
        if let Some(value) = contact.get(field) {
            body.insert(field.into(), value.clone());
        }
    }
    body
}

/// Where contact webhooks go, and the ones sent.
#[derive(Default)]
pub(super) struct ContactWebhooks {
    url: Mutex<Option<String>>,
    outbox: Outbox,
}

impl ContactWebhooks {
    pub(super) fn set_url(&self, url: Option<String>) {
        *self.url.lock().unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// Queues the webhook of `change` of `contact`, signed, if a URL is set.
    pub(super) fn announce(&self, change: ContactChange, contact: &Map<String, Value>) {
        let Some(url) = self.url.lock().unwrap_or_else(PoisonError::into_inner).clone() else {
            return;
        };
        let body = serde_json::to_vec(&webhook_body(change, contact)).expect("a JSON map always serializes");
        let signature = crate::app_webhook::sign(&body);
        self.outbox.send(Outgoing {
            url,
            event: change.webhook_type().into(),
            contact_id: contact.get("id").and_then(Value::as_str).unwrap_or_default().into(),
            content_type: "application/json",
            headers: vec![(crate::app_webhook::SIGNATURE_HEADER.into(), signature)],
            body,
        });
    }

    pub(super) fn wait(&self, timeout: Duration) -> bool {
        self.outbox.wait(timeout)
    }

    pub(super) fn deliveries(&self) -> Vec<WebhookDelivery> {
        self.outbox.deliveries()
    }
}
