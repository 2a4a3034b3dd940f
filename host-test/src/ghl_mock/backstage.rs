//! What a test does behind the API's back for the call log and two-way sync: seed users, edit a
//! contact as a person in HighLevel's UI would, point contact webhooks somewhere and wait for
//! them, read the conversations and call messages.

use std::time::Duration;

use serde_json::Value;

use super::contact_webhooks::ContactChange;
use super::state::MockState;
use super::time::now_iso8601;
use super::users;
use crate::outbox::WebhookDelivery;

impl MockState {
    /// Adds a user of every location (`GET /users/` lists it); a user with the same id is
    /// replaced. Nothing is logged.
    pub fn add_user(&self, id: &str, first_name: &str, last_name: &str, email: &str) {
        let mut data = self.lock();
        data.users.retain(|u| u.get("id").and_then(Value::as_str) != Some(id));
        data.users.push(users::user(id, first_name, last_name, email));
    }

    /// The users, in seeding order.
    pub fn users(&self) -> Vec<Value> {
        self.lock().users.iter().cloned().map(Value::Object).collect()
    }

    /// Every conversation, in creation order.
    pub fn conversations(&self) -> Vec<Value> {
        self.lock().conversations.conversations.iter().cloned().map(Value::Object).collect()
    }

    /// Every call message (inbound and outbound), in creation order, as stored: `id,
    /// conversationId, contactId, locationId, direction, type: 1, messageType: "TYPE_CALL",
    /// status, conversationProviderId, altId, call {from, to, status}, attachments, dateAdded`,
    /// and `body` when the inbound request had a `message`.
    pub fn call_entries(&self) -> Vec<Value> {
        self.lock().conversations.messages.iter().cloned().map(Value::Object).collect()
    }

    /// Sends a contact webhook to `url` for every later contact create, update and delete
    /// (`None`: no more webhooks); see `contact_webhooks.rs`.
    pub fn set_contact_webhook(&self, url: Option<String>) {
        self.webhooks.set_url(url)
    }

    /// Changes a contact as a person editing it in HighLevel would: `fields` are written as an
    /// update request's body would write them (no validation, nothing logged), and one
    /// `ContactUpdate` webhook goes out. Returns the contact as stored.
    ///
    /// Panics if there is no such contact or `fields` is not a JSON object: a broken test.
    pub fn edit_contact(&self, id: &str, fields: Value) -> Value {
        let Value::Object(fields) = fields else {
            panic!("edit_contact takes a JSON object, got {fields}");
        };
        let mut data = self.lock();
        let reply = data.update_contact(id, fields, 200, &now_iso8601());
        let contact = match reply.body.get("contact") {
            Some(Value::Object(contact)) if reply.status == 200 => contact.clone(),
            _ => panic!("edit_contact: {}", reply.body),
        };
        self.webhooks.announce(ContactChange::Update, &contact);
        Value::Object(contact)
    }

    /// Every contact webhook sent so far, in order, with the receiver's answer.
    pub fn contact_webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.webhooks.deliveries()
    }

    /// Waits until every contact webhook queued so far has been delivered; false if `timeout`
    /// passed first.
    pub fn wait_webhooks_delivered(&self, timeout: Duration) -> bool {
        self.webhooks.wait(timeout)
    }
}
