//! Click-to-call (operation `call.call`): `POST /api/v2/call` `{phone_number, user_id,
//! custom_data, outbound_caller_id, group_id, group_type, device_id, is_consult}` → the spec's
//! `RingCallProto` `{call_id}` (a string, as the mock writes every int64).
//!
//! `phone_number` must be E.164 and `outbound_caller_id` E.164 or `"blocked"`; `user_id` must be
//! a user (else 404); `group_type` is one of `callcenter`, `department`, `office` and goes with
//! `group_id`. At most 5 a minute per user (`limits.rs`). Every call is recorded with its
//! `custom_data` ([`super::DialpadMock::initiated_calls`]); none of them rings anything.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::checks::is_e164;
use super::fields::one_of;
use super::limits::{DialpadLimit, Limits};
use super::reply::{error, Reply};
use super::users::Users;

/// The first `call_id` handed out: large, like the fixtures' call ids.
const FIRST_CALL_ID: i64 = 6_100_000_000_000_001;
const GROUP_TYPES: [&str; 3] = ["callcenter", "department", "office"];

/// One call the mock was asked to ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitiatedCall {
    pub call_id: String,
    pub user_id: String,
    pub phone_number: String,
    pub custom_data: Option<String>,
    pub outbound_caller_id: Option<String>,
    pub group_id: Option<i64>,
    pub group_type: Option<String>,
    pub at: SystemTime,
}

pub(super) fn ring(calls: &mut Vec<InitiatedCall>, users: &Users, limits: &mut Limits, body: &Map<String, Value>) -> Reply {
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let phone_number = text("phone_number").unwrap_or_default();
    if !is_e164(&phone_number) {
        return error(400, &format!("phone_number must be in e164 format, not {phone_number:?}"));
    }
    let outbound_caller_id = text("outbound_caller_id");
    if let Some(caller_id) = outbound_caller_id.as_deref().filter(|id| *id != "blocked" && !is_e164(id)) {
        return error(400, &format!("outbound_caller_id must be in e164 format or \"blocked\", not {caller_id:?}"));
    }
    let group_type = match one_of(body, "group_type", &GROUP_TYPES) {
        Ok(group_type) => group_type,
        Err(reply) => return reply,
    };
    let group_id = body.get("group_id").and_then(Value::as_i64);
    if group_type.is_some() != group_id.is_some() {
        return error(400, "group_id and group_type go together");
    }
    let user = body.get("user_id").and_then(Value::as_i64).unwrap_or_default();
    if !users.exists(user) {
        return error(404, &format!("no user {user}"));
    }
    if let Err(reply) = limits.admit(DialpadLimit::Call, &user.to_string()) {
        return reply;
    }
    let call_id = (FIRST_CALL_ID + calls.len() as i64).to_string();
    calls.push(InitiatedCall {
        call_id: call_id.clone(),
        user_id: user.to_string(),
        phone_number,
        custom_data: text("custom_data"),
        outbound_caller_id,
        group_id,
        group_type,
        at: SystemTime::now(),
    });
    Reply::json(200, json!({ "call_id": call_id }))
}
