//! Webhooks (operations `webhooks.list`, `webhooks.create`, `webhooks.get`, `webhook.update`,
//! `webhooks.delete`).
//!
//! - `POST /api/v2/webhooks` takes `CreateWebhook {hook_url (required), secret}` and answers
//!   the `WebhookProto` `{id, hook_url, signature: {algo: "HS256", secret, type: "jwt"}}`.
//!   `hook_url` must be an absolute `http`/`https` URL; `secret` is "[single-line only]" (a
//!   line break → 400). An empty or absent secret means unsigned deliveries: no `signature`.
//!   Two webhooks may share a `hook_url` (nothing in the spec forbids it), so a client that does
//!   not list first shows up as a duplicate.
//! - The secret **is** echoed back, by every answer, as the spec's examples show
//!   (`"signature": {"secret": "test_secret", …}`).
//! - `PATCH /api/v2/webhooks/{id}` takes `UpdateWebhook {hook_url, secret}`, each optional.
//! - `DELETE` answers the deleted webhook. Its subscriptions stay, pointing at nothing (whether
//!   Dialpad deletes them too is not documented; leaving them shows a client that does not
//!   delete them first).
//! - `GET /api/v2/webhooks?cursor=` pages through every webhook in id order.

use super::fields::{self, known};
use super::reply::{error, page, Paging, Params, Reply};
use super::store::{Store, StoredWebhook};
use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

const FIELDS: [&str; 2] = ["hook_url", "secret"];

/// The `WebhookProto` of a webhook.
pub(super) fn proto(id: i64, webhook: &StoredWebhook) -> Value {
    let mut proto = json!({"id": id.to_string(), "hook_url": webhook.hook_url});
    if let Some(secret) = &webhook.secret {
        proto["signature"] = json!({"algo": "HS256", "secret": secret, "type": "jwt"});
    }
    proto
}

/// `GET` and `POST /api/v2/webhooks`.
pub(super) fn collection(store: &mut Store, paging: Paging, method: &str, params: &Params, headers: &HeaderMap, body: &[u8]) -> Reply {
    if method == "GET" {
        let items = store.webhooks.iter().map(|(id, w)| (*id, proto(*id, w))).collect();
        return page(items, "webhooks", params.get("cursor"), paging);
    }
    let body = match fields::object(headers, body).and_then(|b| known(&b, &FIELDS, "CreateWebhook").map(|()| b)) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let hook_url = match hook_url(&body) {
        Ok(Some(url)) => url,
        Ok(None) => return error(400, "hook_url is required"),
        Err(reply) => return reply,
    };
    let secret = match secret(&body) {
        Ok(secret) => secret.flatten(),
        Err(reply) => return reply,
    };
    let id = store.new_id();
    let webhook = StoredWebhook { hook_url, secret };
    let answer = proto(id, &webhook);
    store.webhooks.insert(id, webhook);
    Reply::json(200, answer)
}

/// `GET`, `PATCH` and `DELETE /api/v2/webhooks/{id}`.
pub(super) fn item(store: &mut Store, method: &str, id: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
    let id = match fields::path_id(id) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    if !store.webhooks.contains_key(&id) {
        return error(404, &format!("no webhook {id}"));
    }
    match method {
        "GET" => Reply::json(200, proto(id, &store.webhooks[&id])),
        "DELETE" => {
            let webhook = store.webhooks.remove(&id).expect("checked above");
            Reply::json(200, proto(id, &webhook))
        }
        _ => {
            let body = match fields::object(headers, body).and_then(|b| known(&b, &FIELDS, "UpdateWebhook").map(|()| b)) {
                Ok(body) => body,
                Err(reply) => return reply,
            };
            let (hook_url, secret) = match (hook_url(&body), secret(&body)) {
                (Ok(hook_url), Ok(secret)) => (hook_url, secret),
                (Err(reply), _) | (_, Err(reply)) => return reply,
            };
            let webhook = store.webhooks.get_mut(&id).expect("checked above");
            if let Some(hook_url) = hook_url {
                webhook.hook_url = hook_url;
            }
            if let Some(secret) = secret {
                webhook.secret = secret;
            }
            Reply::json(200, proto(id, webhook))
        }
    }
}

/// `hook_url`, when present: an absolute http(s) URL.
fn hook_url(body: &Map<String, Value>) -> Result<Option<String>, Reply> {
    let Some(text) = fields::string(body, "hook_url")? else {
        return Ok(None);
    };
    match url::Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(Some(text)),
        _ => Err(error(400, &format!("hook_url must be an http or https URL, not {text:?}"))),
    }
}

/// `secret`, when present: `Some(None)` for an empty one (unsigned deliveries).
fn secret(body: &Map<String, Value>) -> Result<Option<Option<String>>, Reply> {
    match fields::string(body, "secret")? {
        Some(secret) if secret.contains(['\n', '\r']) => Err(error(400, "secret must be a single line")),
        Some(secret) => Ok(Some(Some(secret).filter(|s| !s.is_empty()))),
        None => Ok(None),
    }
}
