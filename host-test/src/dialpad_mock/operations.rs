//! The operations routed through `contacts_api::DIALPAD` (contacts, screen pop, recording
//! share links, click-to-call, users): what they share, [`Desk`], and each one's handling
//! after the API key: the query's and the body's checks against the table, then the endpoint.

use axum::http::HeaderMap;
use contacts_api::{Matched, Method, DIALPAD};
use serde_json::Value;

use super::checks;
use super::click_to_call::{self, InitiatedCall};
use super::contacts::{ContactEvent, Contacts};
use super::limits::Limits;
use super::reply::{error, Paging, Params, Reply};
use super::screen_pop::{self, ScreenPop};
use super::share_links::ShareLinks;
use super::users::Users;

/// What these operations hold.
#[derive(Default)]
pub(super) struct Desk {
    pub(super) contacts: Contacts,
    pub(super) users: Users,
    pub(super) screen_pops: Vec<ScreenPop>,
    pub(super) share_links: ShareLinks,
    pub(super) calls: Vec<InitiatedCall>,
    pub(super) limits: Limits,
}

/// The table's operations this desk answers; the server answers webhooks, subscriptions, the
/// call listing and OAuth itself, and Prism stands in for the rest of Dialpad's API.
const ANSWERED: &[&str] = &[
    "contacts.create",
    "contacts.create_with_uid",
    "contacts.update",
    "contacts.delete",
    "contacts.get",
    "screen_pop.initiate",
    "recording_share_link.create",
    "call.call",
    "users.list",
];

/// The answered operation for `method path`, if any.
pub(super) fn route(method: &str, path: &str) -> Option<Matched> {
    contacts_api::match_path_in(DIALPAD, Method::parse(method)?, path).filter(|m| ANSWERED.contains(&m.operation.id))
}

/// Whether some answered operation has `path` (under another method: a 405).
pub(super) fn has_path(path: &str) -> bool {
    [Method::Get, Method::Post, Method::Put, Method::Patch, Method::Delete].into_iter().any(|m| route(m.as_str(), path).is_some())
}

/// Answers one operation; the contact change to announce, if there was one.
pub(super) fn answer(
    desk: &mut Desk,
    matched: &Matched,
    params: &Params,
    headers: &HeaderMap,
    raw: &[u8],
    paging: Paging,
    now: &str,
) -> (Reply, Option<ContactEvent>) {
    let op = matched.operation;
    if let Err(reply) = checks::query(op, params) {
        return (reply, None);
    }
    let body = match op.body {
        Some(_) => match checks::body(op, headers, raw) {
            Ok(body) => body,
            Err(reply) => return (reply, None),
        },
        None => Default::default(),
    };
    let id = matched.params.first().map_or("", |(_, v)| v.as_str());
    let Desk { contacts, users, screen_pops, share_links, calls, limits } = desk;
    let changed = match op.id {
        "contacts.create" => contacts.create(&body, users, limits),
        "contacts.create_with_uid" => contacts.put_with_uid(&body, limits),
        "contacts.update" => contacts.update(id, &body),
        "contacts.delete" => contacts.delete(id),
        "contacts.get" => return (contacts.get(id).map_or_else(|e| e, |c| Reply::json(200, c)), None),
        "screen_pop.initiate" => return (screen_pop::initiate(screen_pops, users, limits, id, &body), None),
        "recording_share_link.create" => return (share_links.create(&body, now), None),
        "call.call" => return (click_to_call::ring(calls, users, limits, &body), None),
        "users.list" => return (users.list(params, paging), None),
        other => unreachable!("{other} is not in ANSWERED"),
    };
    match changed {
        Ok((contact, event)) => (Reply::json(op.success_status, contact), Some(event)),
        Err(reply) => (reply, None),
    }
}

/// A person's edit of a contact (`fields` as a `PATCH` body would carry them).
pub(super) fn edit_contact(desk: &mut Desk, id: &str, fields: &Value) -> Result<(Value, ContactEvent), Reply> {
    let fields = fields.as_object().ok_or_else(|| error(400, "the fields must be a JSON object"))?;
    let op = contacts_api::op("contacts.update");
    checks::fits(op, op.body.expect("contacts.update has a body"), fields)?;
    desk.contacts.update(id, fields)
}
