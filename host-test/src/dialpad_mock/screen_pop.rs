//! Screen pops (operation `screen_pop.initiate`): `POST /api/v2/users/{id}/screenpop`
//! `{screen_pop_uri}` → 200 `InitiateScreenPopResponse`. Every field of it is optional and the
//! mock has no devices, so the answer is `{}`: a client must not need `device`.
//!
//! The user must exist (else 404); the URI must be absolute and carry no user info ("url with
//! userinfo subcomponent … is not supported for security reasons"; else 400). At most 5 a
//! minute per user (`limits.rs`). Each pop is recorded ([`super::DialpadMock::screen_pops`]).

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::fields::path_id;
use super::limits::{DialpadLimit, Limits};
use super::reply::{error, Reply};
use super::users::Users;

/// One screen pop the mock was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenPop {
    pub user_id: String,
    pub uri: String,
    pub at: SystemTime,
}

pub(super) fn initiate(pops: &mut Vec<ScreenPop>, users: &Users, limits: &mut Limits, user: &str, body: &Map<String, Value>) -> Reply {
    let id = match path_id(user) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    if !users.exists(id) {
        return error(404, &format!("no user {id}"));
    }
    let uri = body.get("screen_pop_uri").and_then(Value::as_str).unwrap_or_default();
    match url::Url::parse(uri) {
        Ok(url) if url.username().is_empty() && url.password().is_none() => {}
        Ok(_) => return error(400, "screen_pop_uri: a URL with user info is not supported"),
        Err(_) => return error(400, &format!("screen_pop_uri must be an absolute URL, not {uri:?}")),
    }
    if let Err(reply) = limits.admit(DialpadLimit::ScreenPop, &id.to_string()) {
        return reply;
    }
    pops.push(ScreenPop { user_id: id.to_string(), uri: uri.to_owned(), at: SystemTime::now() });
    Reply::json(200, json!({}))
}
