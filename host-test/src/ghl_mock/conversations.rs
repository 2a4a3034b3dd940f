//! HighLevel's Conversations API as the call log uses it (`contacts_api::CONVERSATIONS`,
//! `Version: 2021-04-15`): conversations of contacts, and call messages in them.
//!
//! - `GET /conversations/search?locationId=&contactId=` → `SendConversationResponseDto`
//!   (`{conversations, total}`), newest first, `limit` (default 20) at most.
//! - `POST /conversations/` `{locationId, contactId}` → 201 `{success, conversation}`. The
//!   contact must exist in the location (else the Contacts API's 400). A second conversation
//!   of the same contact → 400 with the existing one's id (below).
//! - `POST /conversations/messages/inbound` and `/outbound` → `ProcessMessageResponseDto`. Only
//!   `type: "Call"` is kept (any other type of the spec's enum → 400: the mock has no SMS or
//!   email); the conversation must exist; `conversationProviderId` must be the location's call
//!   provider ([`super::MockOptions::conversation_provider_id`]); inbound's `contactId` must be
//!   the conversation's contact. `call {from, to, status}`, `altId`, `date`, `attachments` and
//!   inbound's `message` are kept. Two messages with one `altId` are two messages: the mock
//!   does not dedupe, so a test sees a client that logs a call twice.
//! - `GET /conversations/{conversationId}/messages?type=&limit=&lastMessageId=` →
//!   `GetMessagesByConversationResponseDto`, newest first.
//! - `PUT /conversations/messages/{messageId}/attachments` `{attachments}` replaces them → 200
//!   `{success: true}`; an unknown message → the spec's 404 "Message not found".
//!
//! Validation is the service's (one 400 listing every problem, see `reply::invalid_for`):
//! the table's whitelist and types, plus here the enums, the nested `call`, at most five
//! attachment URLs and an ISO 8601 `date`.
//!
//! Ids are deterministic: `conv0000000000000001`, `msg00000000000000001`, …

use contacts_api::Operation;
use serde_json::{json, Map, Value};

use super::fields::str_field;
use super::marketplace::location_forbidden;
use super::reply::Reply;
use super::validate::query_value;

/// The spec's `CallDataDTO.status` enum.
pub(super) const CALL_STATUSES: [&str; 8] = ["pending", "completed", "answered", "busy", "no-answer", "failed", "canceled", "voicemail"];
/// The spec's `ProcessMessageBodyDto.type` enum (inbound); outbound's is `Call` alone.
const INBOUND_TYPES: [&str; 17] = [
    "SMS",
    "RCS",
    "Email",
    "WhatsApp",
    "GMB",
    "IG",
    "FB",
    "Custom",
    "WebChat",
    "Live_Chat",
    "Call",
    "IVR_Call",
    "Campaign_Call",
    "Campaign_VoiceMail",
    "TIKTOK",
    "ALL_IN_ONE_CHAT",
    "FORM_SUBMISSION",
];
/// The spec's enum of get-messages' `type` filter.
const TYPE_FILTERS: [&str; 19] = [
    "TYPE_CALL",
    "TYPE_SMS",
    "TYPE_RCS",
    "TYPE_EMAIL",
    "TYPE_FACEBOOK",
    "TYPE_GMB",
    "TYPE_INSTAGRAM",
    "TYPE_WHATSAPP",
    "TYPE_ACTIVITY_APPOINTMENT",
    "TYPE_ACTIVITY_CONTACT",
    "TYPE_ACTIVITY_INVOICE",
    "TYPE_ACTIVITY_PAYMENT",
    "TYPE_ACTIVITY_OPPORTUNITY",
    "TYPE_LIVE_CHAT",
    "TYPE_INTERNAL_COMMENTS",
    "TYPE_ACTIVITY_EMPLOYEE_ACTION_LOG",
    "TYPE_TIKTOK",
    "TYPE_ACTIVITY_WHATSAPP",
    "TYPE_FORM_SUBMISSION",
];
/// "Maximum 5 URLs" (`AddMessageAttachmentsDto`); held to the call messages' attachments too.
const MAX_ATTACHMENTS: usize = 5;
const DEFAULT_LIMIT: usize = 20;

/// Conversations and their call messages, each in creation order.
#[derive(Default)]
pub(super) struct Conversations {
    pub(super) conversations: Vec<Map<String, Value>>,
    /// Every call message: `id, conversationId, contactId, locationId, direction, type: 1,
    /// messageType: "TYPE_CALL", altId, call, attachments, dateAdded`, ….
    pub(super) messages: Vec<Map<String, Value>>,
    conversation_counter: u64,
    message_counter: u64,
}

/// What an operation needs beside the conversations.
pub(super) struct Context<'a> {
    pub(super) contacts: &'a [Map<String, Value>],
    /// [`super::MockOptions::conversation_provider_id`].
    pub(super) provider: Option<&'a str>,
    /// The location a Marketplace Location token is bound to.
    pub(super) bound: Option<&'a str>,
    pub(super) now: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Inbound,
    Outbound,
}

/// The problems the service's validation finds beyond the table's whitelist and types.
pub(super) fn check(op: &Operation, body: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    let one_of = |name: &str, allowed: &[&str]| format!("{name} must be one of the following values: {}", allowed.join(", "));
    match (op.id, str_field(body, "type")) {
        ("add-an-inbound-message", Some(kind)) if !INBOUND_TYPES.contains(&kind) => problems.push(one_of("type", &INBOUND_TYPES)),
        ("add-an-outbound-message", Some(kind)) if kind != "Call" => problems.push(one_of("type", &["Call"])),
        _ => {}
    }
    if let Some(Value::Object(call)) = body.get("call") {
        for (key, value) in call {
            match key.as_str() {
                "from" | "to" if !value.is_string() => problems.push(format!("call.{key} must be a string")),
                "status" if !value.as_str().is_some_and(|s| CALL_STATUSES.contains(&s)) => problems.push(one_of("call.status", &CALL_STATUSES)),
                "from" | "to" | "status" => {}
                other => problems.push(format!("property call.{other} should not exist")),
            }
        }
    }
    if let Some(Value::Array(items)) = body.get("attachments") {
        if items.iter().any(|item| !item.is_string()) {
            problems.push("each value in attachments must be a string".into());
        }
        if items.len() > MAX_ATTACHMENTS {
            problems.push(format!("attachments must contain no more than {MAX_ATTACHMENTS} elements"));
        }
    }
    if str_field(body, "date").is_some_and(|date| humantime::parse_rfc3339_weak(date).is_err()) {
        problems.push("date must be a valid ISO 8601 date string".into());
    }
    problems
}

impl Conversations {
    /// Answers one Conversations operation; `id` is the path's `{conversationId}` or
    /// `{messageId}`.
    pub(super) fn answer(&mut self, op: &Operation, id: &str, query: &[(String, String)], body: &Map<String, Value>, cx: &Context) -> Reply {
        match op.id {
            "search-conversation" => self.search(query, op.success_status, cx),
            "create-conversation" => self.create(body, op.success_status, cx),
            "add-an-inbound-message" => self.add_call(Direction::Inbound, body, op.success_status, cx),
            "add-an-outbound-message" => self.add_call(Direction::Outbound, body, op.success_status, cx),
            "get-messages" => self.messages_of(id, query, op.success_status, cx),
            "add-message-attachments" => self.set_attachments(id, body, op.success_status, cx),
            other => Reply::error(501, format!("mock: {other} is not implemented yet")),
        }
    }

    fn search(&self, query: &[(String, String)], ok: u16, cx: &Context) -> Reply {
        let location = query_value(query, "locationId").unwrap_or_default();
        let contact = query_value(query, "contactId");
        let limit = query_value(query, "limit").and_then(|l| l.parse::<f64>().ok()).map_or(DEFAULT_LIMIT, |l| l.max(1.0) as usize);
        let found: Vec<&Map<String, Value>> = self
            .conversations
            .iter()
            .rev()
            .filter(|c| str_field(c, "locationId") == Some(location) && contact.is_none_or(|id| str_field(c, "contactId") == Some(id)))
            .collect();
        let listed: Vec<Value> = found.iter().take(limit).map(|c| self.listed(c, cx.contacts)).collect();
        Reply::new(ok, json!({ "conversations": listed, "total": found.len() }))
    }

    /// A conversation as search lists it (`ConversationSchema`): with its contact's name,
    /// email and phone.
    fn listed(&self, conversation: &Map<String, Value>, contacts: &[Map<String, Value>]) -> Value {
        let mut out = conversation.clone();
        let contact = contacts.iter().find(|c| c.get("id") == conversation.get("contactId"));
        let field = |name: &str| contact.and_then(|c| str_field(c, name)).unwrap_or_default().to_owned();
        out.insert("fullName".into(), Value::String(field("name")));
        out.insert("contactName".into(), Value::String(field("name")));
        out.insert("email".into(), Value::String(field("email")));
        out.insert("phone".into(), Value::String(field("phone")));
        Value::Object(out)
    }

    fn create(&mut self, body: &Map<String, Value>, ok: u16, cx: &Context) -> Reply {
        let location = str_field(body, "locationId").unwrap_or_default();
        let contact = str_field(body, "contactId").unwrap_or_default();
        if !cx.contacts.iter().any(|c| str_field(c, "id") == Some(contact) && str_field(c, "locationId") == Some(location)) {
            return Reply::contact_not_found(contact);
        }
        // Not in the spec: integrators report that HighLevel refuses a second conversation of
        // a contact this way, naming the existing one, and clients rely on that id.
        if let Some(existing) = self.conversations.iter().find(|c| str_field(c, "contactId") == Some(contact) && str_field(c, "locationId") == Some(location)) {
            return Reply::new(400, json!({ "statusCode": 400, "message": "Conversation already exists", "conversationId": existing["id"] }));
        }
        self.conversation_counter += 1;
        let conversation = json!({
            "id": format!("conv{:016}", self.conversation_counter),
            "contactId": contact,
            "locationId": location,
            "dateAdded": cx.now,
            "dateUpdated": cx.now,
            "lastMessageDate": cx.now,
            "lastMessageBody": "",
            "type": "TYPE_PHONE",
            "unreadCount": 0,
            "deleted": false,
        });
        let Value::Object(conversation) = conversation else { unreachable!("a json! object") };
        self.conversations.push(conversation.clone());
        let mut answer = conversation;
        for listing_only in ["lastMessageBody", "type", "unreadCount"] {
            answer.remove(listing_only);
        }
        Reply::new(ok, json!({ "success": true, "conversation": answer }))
    }

    /// The conversation's index, checked against a bound token's location.
    fn conversation(&self, id: &str, cx: &Context) -> Result<usize, Reply> {
        let index = self
            .conversations
            .iter()
            .position(|c| str_field(c, "id") == Some(id))
            .ok_or_else(|| Reply::error(400, format!("Conversation with id {id} not found")))?;
        match cx.bound {
            Some(bound) if str_field(&self.conversations[index], "locationId") != Some(bound) => Err(location_forbidden()),
            _ => Ok(index),
        }
    }

    fn add_call(&mut self, direction: Direction, body: &Map<String, Value>, ok: u16, cx: &Context) -> Reply {
        let kind = str_field(body, "type").unwrap_or_default();
        if kind != "Call" {
            return Reply::error(400, format!("mock: messages of type {kind} are not supported by the mock, only Call"));
        }
        let provider = str_field(body, "conversationProviderId").unwrap_or_default();
        // The text is the mock's: HighLevel documents none. (Without any provider id HighLevel
        // is reported to answer 201 and drop the message; the spec requires it, and so does the
        // mock, since a dropped call log is a bug a test must see.)
        if cx.provider.is_some_and(|expected| expected != provider) {
            return Reply::error(400, "Conversation provider not found");
        }
        let index = match self.conversation(str_field(body, "conversationId").unwrap_or_default(), cx) {
            Ok(index) => index,
            Err(reply) => return reply,
        };
        let conversation = &self.conversations[index];
        let contact = str_field(conversation, "contactId").unwrap_or_default().to_owned();
        if direction == Direction::Inbound && str_field(body, "contactId") != Some(contact.as_str()) {
            return Reply::error(400, "contactId does not match the conversation's contact");
        }
        self.message_counter += 1;
        let id = format!("msg{:017}", self.message_counter);
        let date = str_field(body, "date").unwrap_or(cx.now).to_owned();
        let mut message = json!({
            "id": id,
            "conversationId": conversation["id"],
            "contactId": contact,
            "locationId": conversation["locationId"],
            "direction": if direction == Direction::Inbound { "inbound" } else { "outbound" },
            "type": 1,
            "messageType": "TYPE_CALL",
            "status": "delivered",
            "source": "api",
            "conversationProviderId": provider,
            "attachments": body.get("attachments").cloned().unwrap_or_else(|| json!([])),
            "dateAdded": date,
        });
        for kept in ["altId", "call"] {
            if let Some(value) = body.get(kept).filter(|v| !v.is_null()) {
                message[kept] = value.clone();
            }
        }
        if let Some(text) = str_field(body, "message") {
            message["body"] = Value::String(text.to_owned());
        }
        let conversation = &mut self.conversations[index];
        conversation.insert("lastMessageDate".into(), Value::String(date.clone()));
        conversation.insert("dateUpdated".into(), Value::String(cx.now.to_owned()));
        conversation.insert("lastMessageType".into(), json!("TYPE_CALL"));
        let Value::Object(message) = message else { unreachable!("a json! object") };
        self.messages.push(message);
        Reply::new(
            ok,
            json!({ "success": true, "conversationId": self.conversations[index]["id"], "messageId": id, "message": "Message added", "contactId": contact, "dateAdded": date }),
        )
    }

    fn messages_of(&self, conversation_id: &str, query: &[(String, String)], ok: u16, cx: &Context) -> Reply {
        if let Err(reply) = self.conversation(conversation_id, cx) {
            return reply;
        }
        let types: Vec<&str> = query_value(query, "type").map(|t| t.split(',').map(str::trim).collect()).unwrap_or_default();
        if types.iter().any(|t| !TYPE_FILTERS.contains(t)) {
            return Reply::new(
                400,
                json!({ "statusCode": 400, "message": [format!("type must be one of the following values: {}", TYPE_FILTERS.join(", "))], "error": "Bad Request" }),
            );
        }
        let limit = query_value(query, "limit").and_then(|l| l.parse::<f64>().ok()).map_or(DEFAULT_LIMIT, |l| l.max(1.0) as usize);
        let mut newest_first = self
            .messages
            .iter()
            .rev()
            .filter(|m| str_field(m, "conversationId") == Some(conversation_id))
            .filter(|_| types.is_empty() || types.contains(&"TYPE_CALL"));
        if let Some(after) = query_value(query, "lastMessageId") {
            newest_first.by_ref().take_while(|m| str_field(m, "id") != Some(after)).for_each(drop);
        }
        let page: Vec<Value> = newest_first.by_ref().take(limit).map(as_listed).collect();
        let next_page = newest_first.next().is_some();
        let last = page.last().map_or(Value::Null, |m| m["id"].clone());
        Reply::new(ok, json!({ "lastMessageId": last, "nextPage": next_page, "messages": page }))
    }

    fn set_attachments(&mut self, message_id: &str, body: &Map<String, Value>, ok: u16, cx: &Context) -> Reply {
        let Some(message) = self.messages.iter_mut().find(|m| str_field(m, "id") == Some(message_id)) else {
            return Reply::error(404, "Message not found");
        };
        if cx.bound.is_some_and(|bound| str_field(message, "locationId") != Some(bound)) {
            return location_forbidden();
        }
        message.insert("attachments".into(), body.get("attachments").cloned().unwrap_or_else(|| json!([])));
        Reply::new(ok, json!({ "success": true }))
    }
}

/// A stored call message as get-messages lists it (`GetMessageResponseDto`), plus `altId`,
/// which the spec's DTO omits but the service returns (integrators match their own ids on it).
/// The call's status is under `meta.call.status`, where integrators read it, and under the
/// spec's `meta.callStatus`.
fn as_listed(message: &Map<String, Value>) -> Value {
    let mut out = message.clone();
    let call = out.remove("call");
    let status = call.as_ref().and_then(|c| c.get("status")).cloned().unwrap_or(Value::Null);
    out.insert("meta".into(), json!({ "call": { "status": status }, "callStatus": status }));
    Value::Object(out)
}
