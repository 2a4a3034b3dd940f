//! Call, SMS and contact event subscriptions (operations
//! `webhook_{call,sms,contact}_event_subscription.{list,create,get,update,delete}`).
//!
//! Bodies follow the spec's `Create…EventSubscription` / `Update…EventSubscription` schemas:
//!
//! - every kind: `endpoint_id` (int64: the webhook's id; required to create, since "a webhook_id
//!   is required"; must name an existing webhook) and `enabled` (default true);
//! - **call**: `call_states` (each one of [`CALL_STATES`]), `group_calls_only`, `target_type`
//!   ([`TARGET_TYPES`]) with `target_id`;
//! - **sms**: `direction` ([`SMS_DIRECTIONS`], required to create), `include_internal`, `status`
//!   (both default false), `target_type` with `target_id`;
//! - **contact**: `contact_type` ([`CONTACT_TYPES`]), required to create **and** to update (the
//!   update schema requires it too).
//!
//! A field outside the schema (say the legacy `webhook_id`), a value of the wrong type, a value
//! outside its enum, or a `target_type` without `target_id` (or the reverse) → 400. Answers
//! are the `…EventSubscriptionProto`: the fields, `id`, `enabled`, and the whole `webhook`
//! (`WebhookProto`, secret included, as in the spec's examples). Lists page in id order and
//! take `target_type`/`target_id` filters (call and SMS). An id of another kind → 404.

use super::fields::{self, known};
use super::reply::{error, page, Paging, Params, Reply};
use super::store::{Kind, Store, StoredSubscription, StoredWebhook};
use super::webhooks;
use axum::http::HeaderMap;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The spec's `call_states` enum: the one list the host's client uses too.
pub use dialpad_ghl_host::connect::dialpad::CALL_STATES;
/// The spec's `target_type` enum (call and SMS subscriptions).
pub const TARGET_TYPES: [&str; 11] =
    ["callcenter", "callrouter", "channel", "coachinggroup", "coachingteam", "department", "office", "room", "staffgroup", "unknown", "user"];
/// The spec's SMS `direction` enum.
pub const SMS_DIRECTIONS: [&str; 3] = ["all", "inbound", "outbound"];
/// The spec's `contact_type` enum.
pub const CONTACT_TYPES: [&str; 2] = ["local", "shared"];

/// The kind's fields, in its create and update schemas.
fn fields_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Call => &["call_states", "enabled", "endpoint_id", "group_calls_only", "target_id", "target_type"],
        Kind::Sms => &["direction", "enabled", "endpoint_id", "include_internal", "status", "target_id", "target_type"],
        Kind::Contact => &["contact_type", "enabled", "endpoint_id"],
    }
}

/// The schema's name, for errors.
fn schema(kind: Kind, create: bool) -> String {
    let name = match kind {
        Kind::Call => "CallEventSubscription",
        Kind::Sms => "SmsEventSubscription",
        Kind::Contact => "ContactEventSubscription",
    };
    format!("{}{name}", if create { "Create" } else { "Update" })
}

/// Fields every answer carries, at the schema's defaults.
fn defaults(kind: Kind) -> Value {
    match kind {
        Kind::Call => json!({"call_states": [], "group_calls_only": false}),
        Kind::Sms => json!({"include_internal": false, "status": false}),
        Kind::Contact => json!({}),
    }
}

/// The `…EventSubscriptionProto` of a subscription.
pub(super) fn proto(id: i64, subscription: &StoredSubscription, webhooks: &BTreeMap<i64, StoredWebhook>) -> Value {
    let mut proto = defaults(subscription.kind);
    for (name, value) in &subscription.fields {
        // int64 as a string, as the spec's examples write ids.
        proto[name] = if name == "target_id" { json!(value.to_string()) } else { value.clone() };
    }
    proto["id"] = json!(id.to_string());
    proto["enabled"] = json!(subscription.enabled);
    if let Some((webhook_id, webhook)) = subscription.webhook_id.and_then(|w| webhooks.get_key_value(&w)) {
        proto["webhook"] = webhooks::proto(*webhook_id, webhook);
    }
    proto
}

/// `body` applied to `subscription` (a fresh one when creating), validated whole before
/// anything changes.
fn apply(
    subscription: &StoredSubscription,
    body: &Map<String, Value>,
    create: bool,
    webhooks: &BTreeMap<i64, StoredWebhook>,
) -> Result<StoredSubscription, Reply> {
    let kind = subscription.kind;
    known(body, fields_of(kind), &schema(kind, create))?;
    let mut next = subscription.clone();
    match fields::integer(body, "endpoint_id")? {
        Some(endpoint) if !webhooks.contains_key(&endpoint) => return Err(error(400, &format!("endpoint_id {endpoint}: no such webhook"))),
        Some(endpoint) => next.webhook_id = Some(endpoint),
        None if create => return Err(error(400, "endpoint_id is required: the id of the webhook to deliver to")),
        None => {}
    }
    if let Some(enabled) = fields::boolean(body, "enabled")? {
        next.enabled = enabled;
    }
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            next.fields.insert(name.to_string(), value);
        }
    };
    match kind {
        Kind::Call => {
            set("call_states", fields::list_of(body, "call_states", &CALL_STATES)?.map(|s| json!(s)));
            set("group_calls_only", fields::boolean(body, "group_calls_only")?.map(Value::Bool));
        }
        Kind::Sms => {
            let direction = fields::one_of(body, "direction", &SMS_DIRECTIONS)?;
            if create && direction.is_none() {
                return Err(error(400, &format!("direction is required: one of {}", SMS_DIRECTIONS.join(", "))));
            }
            set("direction", direction.map(Value::String));
            set("include_internal", fields::boolean(body, "include_internal")?.map(Value::Bool));
            set("status", fields::boolean(body, "status")?.map(Value::Bool));
        }
        Kind::Contact => {
            let Some(contact_type) = fields::one_of(body, "contact_type", &CONTACT_TYPES)? else {
                return Err(error(400, &format!("contact_type is required: one of {}", CONTACT_TYPES.join(", "))));
            };
            set("contact_type", Some(Value::String(contact_type)));
        }
    }
    if kind != Kind::Contact {
        set("target_type", fields::one_of(body, "target_type", &TARGET_TYPES)?.map(Value::String));
        set("target_id", fields::integer(body, "target_id")?.map(|id| json!(id)));
        if next.fields.contains_key("target_type") != next.fields.contains_key("target_id") {
            return Err(error(400, "target_type and target_id go together"));
        }
    }
    Ok(next)
}

/// Creates a subscription from a create body; its id.
pub(super) fn create(store: &mut Store, kind: Kind, body: &Value) -> Result<i64, Reply> {
    let body = body.as_object().ok_or_else(|| error(400, "the body must be a JSON object"))?;
    let fresh = StoredSubscription { kind, webhook_id: None, enabled: true, fields: Map::new() };
    let subscription = apply(&fresh, body, true, &store.webhooks)?;
    let id = store.new_id();
    store.subscriptions.insert(id, subscription);
    Ok(id)
}

/// `GET` and `POST /api/v2/subscriptions/{kind}`.
pub(super) fn collection(store: &mut Store, paging: Paging, kind: Kind, method: &str, params: &Params, headers: &HeaderMap, body: &[u8]) -> Reply {
    if method == "POST" {
        let created = fields::object(headers, body).and_then(|body| create(store, kind, &Value::Object(body)));
        return match created {
            Ok(id) => Reply::json(200, proto(id, &store.subscriptions[&id], &store.webhooks)),
            Err(reply) => reply,
        };
    }
    let target_type = params.get("target_type");
    if let Some(t) = target_type.filter(|t| !TARGET_TYPES.contains(t)) {
        return error(400, &format!("target_type must be one of {}, not {t:?}", TARGET_TYPES.join(", ")));
    }
    let target_id = match params.get("target_id").map(str::parse::<i64>) {
        Some(Err(_)) => return error(400, "target_id must be an integer"),
        Some(Ok(id)) => Some(id),
        None => None,
    };
    let items = store
        .subscriptions
        .iter()
        .filter(|(_, s)| s.kind == kind)
        .filter(|(_, s)| target_type.is_none_or(|t| s.fields.get("target_type").and_then(Value::as_str) == Some(t)))
        .filter(|(_, s)| target_id.is_none_or(|t| s.fields.get("target_id").and_then(Value::as_i64) == Some(t)))
        .map(|(id, s)| (*id, proto(*id, s, &store.webhooks)))
        .collect();
    page(items, &format!("subscriptions/{}", kind.segment()), params.get("cursor"), paging)
}

/// `GET`, `PATCH` and `DELETE /api/v2/subscriptions/{kind}/{id}`.
pub(super) fn item(store: &mut Store, kind: Kind, method: &str, id: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
    let id = match fields::path_id(id) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let Some(existing) = store.subscriptions.get(&id).filter(|s| s.kind == kind) else {
        return error(404, &format!("no {} event subscription {id}", kind.segment()));
    };
    match method {
        "GET" => Reply::json(200, proto(id, existing, &store.webhooks)),
        "DELETE" => {
            let answer = proto(id, existing, &store.webhooks);
            store.subscriptions.remove(&id);
            Reply::json(200, answer)
        }
        _ => match fields::object(headers, body).and_then(|body| apply(existing, &body, false, &store.webhooks)) {
            Ok(updated) => {
                let answer = proto(id, &updated, &store.webhooks);
                store.subscriptions.insert(id, updated);
                Reply::json(200, answer)
            }
            Err(reply) => reply,
        },
    }
}
