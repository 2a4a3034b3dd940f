//! What a test does behind the API's back for contacts and the agents' tools: seed users, edit
//! a contact as a person in Dialpad would, tune the rate limits, wait for the contact events,
//! read the contacts, screen pops, share links and calls.

use super::click_to_call::InitiatedCall;
use super::contact_events;
use super::contacts;
use super::limits::DialpadLimit;
use super::operations;
use super::screen_pop::ScreenPop;
use super::server::DialpadMock;
use crate::outbox::WebhookDelivery;
use serde_json::Value;
use std::time::Duration;

impl DialpadMock {
    /// Adds (or replaces) an active user: `GET /api/v2/users` lists it, screen pops and
    /// click-to-call accept it. The fixtures' agents are there from the start.
    pub fn add_user(&self, id: i64, first_name: &str, last_name: &str, email: &str) {
        self.shared.lock().desk.users.add(id, first_name, last_name, email);
    }

    /// Every user (`UserProto`), in id order.
    pub fn users(&self) -> Vec<Value> {
        self.shared.lock().desk.users.0.values().cloned().collect()
    }

    /// Every contact (`ContactProto`), in creation order.
    pub fn contacts(&self) -> Vec<Value> {
        self.shared.lock().desk.contacts.list.iter().map(contacts::proto).collect()
    }

    /// The contact `PUT /api/v2/contacts` made for `uid`, if any.
    pub fn contact_by_uid(&self, uid: &str) -> Option<Value> {
        self.shared.lock().desk.contacts.list.iter().find(|c| c.uid.as_deref() == Some(uid)).map(contacts::proto)
    }

    /// Changes a contact as a person in Dialpad would: `fields` as a `PATCH` body (checked
    /// like one); one `Updated` event goes to the contact subscriptions. Nothing is logged.
    /// Returns the contact.
    ///
    /// # Panics
    /// If there is no such contact or the fields are refused: a broken test.
    pub fn edit_contact(&self, id: &str, fields: Value) -> Value {
        let mut inner = self.shared.lock();
        let (contact, event) = operations::edit_contact(&mut inner.desk, id, &fields).unwrap_or_else(|reply| panic!("edit_contact {id} {fields}: {reply:?}"));
        contact_events::deliver(&self.shared.outbox, &inner.store, &event);
        contact
    }

    /// Every screen pop asked for, in order.
    pub fn screen_pops(&self) -> Vec<ScreenPop> {
        self.shared.lock().desk.screen_pops.clone()
    }

    /// Every recording share link made (`RecordingShareLink`), in order.
    pub fn share_links(&self) -> Vec<Value> {
        self.shared.lock().desk.share_links.0.clone()
    }

    /// Every click-to-call asked for, in order, with its `custom_data`.
    pub fn initiated_calls(&self) -> Vec<InitiatedCall> {
        self.shared.lock().desk.calls.clone()
    }

    /// Replaces one of the rate limits (`max` requests per sliding `window`); its window
    /// starts empty. By default the spec's: 100 contact creates a minute, 5 screen pops and 5
    /// calls a minute per user.
    pub fn set_rate_limit(&self, limit: DialpadLimit, max: usize, window: Duration) {
        self.shared.lock().desk.limits.set(limit, max, window);
    }

    /// Every contact event sent so far, in order, with the receiver's answer.
    pub fn contact_event_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.outbox.deliveries()
    }

    /// Waits until every contact event queued so far has been delivered; false if `timeout`
    /// passed first.
    pub fn wait_webhooks_delivered(&self, timeout: Duration) -> bool {
        self.shared.outbox.wait(timeout)
    }
}
