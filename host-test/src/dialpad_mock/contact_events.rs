//! Contact events out: every contact created, updated or deleted through the API (whoever
//! asks, the sync included) or edited by a person ([`super::DialpadMock::edit_contact`]) is
//! POSTed to the webhook of every enabled contact subscription whose `contact_type` is the
//! contact's `type`, as `{"event": "Created"|"Updated"|"Deleted", "contact": ContactProto}`
//! (the fixtures' `contact_*.json`). With a webhook secret the body is an HS256 JWT of that
//! event, signed with the secret ([`crate::jwt`]), sent as `application/jwt`; without one, the
//! JSON itself. A subscription whose webhook is gone delivers nothing. Deliveries go out from
//! the outbox's thread ([`crate::outbox`]).

use serde_json::json;

use super::contacts::ContactEvent;
use super::store::{Kind, Store};
use crate::outbox::{Outbox, Outgoing};

pub(super) fn deliver(outbox: &Outbox, store: &Store, change: &ContactEvent) {
    let contact_type = change.contact["type"].as_str().unwrap_or_default();
    let body = json!({ "event": change.event, "contact": change.contact }).to_string();
    let contact_id = change.contact["id"].as_str().unwrap_or_default();
    for subscription in store.subscriptions.values() {
        if subscription.kind != Kind::Contact || !subscription.enabled {
            continue;
        }
        if subscription.fields.get("contact_type").and_then(|t| t.as_str()) != Some(contact_type) {
            continue;
        }
        let Some(webhook) = subscription.webhook_id.and_then(|id| store.webhooks.get(&id)) else {
            continue;
        };
        let (content_type, sent) = match &webhook.secret {
            Some(secret) => ("application/jwt", crate::jwt::sign(body.as_bytes(), secret).into_bytes()),
            None => ("application/json", body.clone().into_bytes()),
        };
        outbox.send(Outgoing {
            url: webhook.hook_url.clone(),
            event: change.event.into(),
            contact_id: contact_id.into(),
            content_type,
            headers: Vec::new(),
            body: sent,
        });
    }
}
