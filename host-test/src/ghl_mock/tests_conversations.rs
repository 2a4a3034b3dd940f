//! The Conversations API (the call log) and the Users API.

use serde_json::{json, Value};

use super::*;

const CONV: &[(&str, &str)] = &[("Authorization", "Bearer test-token"), ("Version", "2021-04-15")];
const PROVIDER: &str = "mock-call-provider";

/// An authorized Conversations call (`Version: 2021-04-15`).
fn conv(server: &MockServer, method: &str, target: &str, body: Option<Value>) -> Resp {
    let body = body.map(|b| b.to_string());
    raw(server, method, target, CONV, body.as_deref().map(str::as_bytes), false)
}

/// A contact with a conversation: `(contact id, conversation id)`.
fn contact_with_conversation(server: &MockServer) -> (String, String) {
    let contact = server.seed_contact(json!({ "locationId": LOC, "firstName": "Dana", "lastName": "Whitfield", "phone": "+12065550174" }));
    let r = conv(server, "POST", "/conversations/", Some(json!({ "locationId": LOC, "contactId": contact })));
    assert_eq!(r.status, 201, "{}", r.body);
    (contact, r.body["conversation"]["id"].as_str().unwrap().to_owned())
}

fn inbound(conversation: &str, contact: &str) -> Value {
    json!({
        "type": "Call", "conversationId": conversation, "contactId": contact, "conversationProviderId": PROVIDER,
        "call": { "from": "+12065550174", "to": "+14155550142", "status": "completed" }, "altId": "6011482093420544",
        "date": "2026-03-10T15:04:05.000Z",
    })
}

fn bad_request(problems: &[&str]) -> Value {
    json!({ "statusCode": 400, "message": problems, "error": "Bad Request" })
}

#[test]
fn conversations_and_users_need_their_own_version_header() {
    let server = start();
    for version in [None, Some("2021-07-28")] {
        let mut headers = vec![("Authorization", "Bearer t")];
        headers.extend(version.map(|v| ("Version", v)));
        let r = raw(&server, "GET", &format!("/conversations/search?locationId={LOC}"), &headers, None, false);
        assert_eq!((r.status, r.body), (400, json!({"statusCode": 400, "message": "version header must be 2021-04-15"})), "{version:?}");
    }
    let r = raw(&server, "GET", &format!("/users/?locationId={LOC}"), CONV, None, false);
    assert_eq!((r.status, r.body), (400, json!({"statusCode": 400, "message": "version header must be 2021-07-28"})));
    let log = server.requests();
    assert_eq!(
        log.iter().map(|r| r.operation_id).collect::<Vec<_>>(),
        [Some("search-conversation"), Some("search-conversation"), Some("get-user-by-location")]
    );
}

#[test]
fn a_contact_has_one_conversation_found_by_search() {
    let server = start();
    let (contact, id) = contact_with_conversation(&server);
    let created = &server.conversations()[0];
    assert_eq!((created["id"].as_str(), created["contactId"].as_str(), created["locationId"].as_str()), (Some(id.as_str()), Some(contact.as_str()), Some(LOC)));

    let again = conv(&server, "POST", "/conversations/", Some(json!({ "locationId": LOC, "contactId": contact })));
    assert_eq!((again.status, again.body), (400, json!({"statusCode": 400, "message": "Conversation already exists", "conversationId": id})));
    let unknown = conv(&server, "POST", "/conversations/", Some(json!({ "locationId": LOC, "contactId": "nobody" })));
    assert_eq!((unknown.status, unknown.body["message"].as_str()), (400, Some("Contact with id nobody not found")));

    let found = conv(&server, "GET", &format!("/conversations/search?locationId={LOC}&contactId={contact}"), None);
    assert_eq!((found.status, &found.body["total"]), (200, &json!(1)));
    let listed = &found.body["conversations"][0];
    assert_eq!(
        (&listed["id"], &listed["fullName"], &listed["phone"], &listed["type"]),
        (&json!(id), &json!("Dana Whitfield"), &json!("+12065550174"), &json!("TYPE_PHONE"))
    );
    let none = conv(&server, "GET", &format!("/conversations/search?locationId={LOC}&contactId=other"), None);
    assert_eq!(none.body, json!({ "conversations": [], "total": 0 }));
    let r = conv(&server, "GET", "/conversations/search", None);
    assert_eq!((r.status, r.body), (400, bad_request(&["locationId should not be empty"])));
}

#[test]
fn validation_failures_are_400_listing_every_problem() {
    let server = start();
    let (contact, id) = contact_with_conversation(&server);
    let r = conv(&server, "POST", "/conversations/", Some(json!({ "locationId": LOC })));
    assert_eq!((r.status, r.body), (400, bad_request(&["contactId should not be empty"])));

    let mut body = inbound(&id, &contact);
    body["type"] = json!("Fax");
    body["call"]["status"] = json!("done");
    body["attachments"] = json!(["1", "2", "3", "4", "5", "6"]);
    body["colour"] = json!("red");
    body.as_object_mut().unwrap().remove("conversationProviderId");
    let r = conv(&server, "POST", "/conversations/messages/inbound", Some(body));
    let problems = r.body["message"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().split(':').next().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(r.status, 400);
    assert_eq!(
        problems,
        [
            "property colour should not exist",
            "conversationProviderId should not be empty",
            "type must be one of the following values",
            "call.status must be one of the following values",
            "attachments must contain no more than 5 elements",
        ]
    );
    let r = conv(&server, "POST", "/conversations/messages/outbound", Some(json!({ "type": "SMS", "conversationId": id, "conversationProviderId": PROVIDER })));
    assert_eq!((r.status, r.body), (400, bad_request(&["type must be one of the following values: Call"])));
    let r = conv(&server, "PUT", "/conversations/messages/m1/attachments", Some(json!({})));
    assert_eq!((r.status, r.body), (400, bad_request(&["attachments should not be empty"])));
    assert!(server.call_entries().is_empty());
}

#[test]
fn call_messages_are_kept_listed_and_get_their_attachments_replaced() {
    let server = start();
    let (contact, id) = contact_with_conversation(&server);
    let r = conv(&server, "POST", "/conversations/messages/inbound", Some(inbound(&id, &contact)));
    assert_eq!(r.status, 200, "{}", r.body);
    let first = r.body["messageId"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body,
        json!({ "success": true, "conversationId": id, "messageId": first, "message": "Message added", "contactId": contact, "dateAdded": "2026-03-10T15:04:05.000Z" })
    );
    let outbound = json!({ "type": "Call", "conversationId": id, "conversationProviderId": PROVIDER, "altId": "out-1", "call": { "status": "no-answer" } });
    let second = conv(&server, "POST", "/conversations/messages/outbound", Some(outbound)).body["messageId"].as_str().unwrap().to_owned();

    let r = conv(&server, "GET", &format!("/conversations/{id}/messages?type=TYPE_CALL"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((&r.body["lastMessageId"], &r.body["nextPage"]), (&json!(first), &json!(false)));
    let listed = r.body["messages"].as_array().unwrap();
    assert_eq!(listed.iter().map(|m| m["id"].as_str().unwrap()).collect::<Vec<_>>(), [second.as_str(), first.as_str()], "newest first");
    let newest = &listed[0];
    assert_eq!(
        (&newest["type"], &newest["messageType"], &newest["direction"], &newest["altId"]),
        (&json!(1), &json!("TYPE_CALL"), &json!("outbound"), &json!("out-1"))
    );
    assert_eq!(
        (&newest["meta"]["call"]["status"], &newest["meta"]["callStatus"], &newest["contactId"]),
        (&json!("no-answer"), &json!("no-answer"), &json!(contact))
    );
    assert_eq!(listed[1]["direction"], "inbound");

    let page = conv(&server, "GET", &format!("/conversations/{id}/messages?limit=1"), None);
    assert_eq!((&page.body["lastMessageId"], &page.body["nextPage"]), (&json!(second), &json!(true)));
    let rest = conv(&server, "GET", &format!("/conversations/{id}/messages?limit=1&lastMessageId={second}"), None);
    assert_eq!((&rest.body["lastMessageId"], &rest.body["nextPage"]), (&json!(first), &json!(false)));
    assert_eq!(conv(&server, "GET", &format!("/conversations/{id}/messages?type=TYPE_SMS"), None).body["messages"], json!([]));
    assert_eq!(conv(&server, "GET", &format!("/conversations/{id}/messages?type=TYPE_FAX"), None).status, 400);

    let recording = json!({ "attachments": ["https://dialpad.example/r/srl0000000000001"] });
    let r = conv(&server, "PUT", &format!("/conversations/messages/{first}/attachments"), Some(recording));
    assert_eq!((r.status, r.body), (200, json!({ "success": true })));
    let entries = server.call_entries();
    assert_eq!(entries.len(), 2);
    assert_eq!((&entries[0]["attachments"], &entries[0]["altId"]), (&json!(["https://dialpad.example/r/srl0000000000001"]), &json!("6011482093420544")));
    assert_eq!(entries[0]["call"], json!({ "from": "+12065550174", "to": "+14155550142", "status": "completed" }));
    let r = conv(&server, "PUT", "/conversations/messages/nope/attachments", Some(json!({ "attachments": [] })));
    assert_eq!((r.status, r.body), (404, json!({ "statusCode": 404, "message": "Message not found" })));
}

#[test]
fn call_messages_need_the_provider_an_existing_conversation_and_its_contact() {
    let server = start();
    let (contact, id) = contact_with_conversation(&server);
    let post = |body: Value| conv(&server, "POST", "/conversations/messages/inbound", Some(body));
    let mut body = inbound(&id, &contact);
    body["conversationProviderId"] = json!("someone-else");
    assert_eq!(post(body).body, json!({ "statusCode": 400, "message": "Conversation provider not found" }));
    let mut body = inbound(&id, &contact);
    body["type"] = json!("SMS");
    let r = post(body);
    assert_eq!((r.status, r.body["message"].as_str()), (400, Some("mock: messages of type SMS are not supported by the mock, only Call")));
    let r = post(inbound("conv-unknown", &contact));
    assert_eq!((r.status, r.body["message"].as_str()), (400, Some("Conversation with id conv-unknown not found")));
    let r = post(inbound(&id, "another-contact"));
    assert_eq!((r.status, r.body["message"].as_str()), (400, Some("contactId does not match the conversation's contact")));
    assert!(server.call_entries().is_empty());

    // Without a configured provider, any provider id is taken.
    let any = MockServer::start(MockOptions { conversation_provider_id: None, ..MockOptions::default() }).unwrap();
    let (contact, id) = contact_with_conversation(&any);
    let mut body = inbound(&id, &contact);
    body["conversationProviderId"] = json!("whatever");
    assert_eq!(conv(&any, "POST", "/conversations/messages/inbound", Some(body)).status, 200);
}

#[test]
fn conversations_and_users_need_their_scopes() {
    let server =
        MockServer::start(MockOptions { scopes: vec![Scope::ContactsReadonly, Scope::ContactsWrite, Scope::ConversationsReadonly], ..MockOptions::default() })
            .unwrap();
    let contact = server.seed_contact(json!({ "locationId": LOC }));
    assert_eq!(conv(&server, "GET", &format!("/conversations/search?locationId={LOC}"), None).status, 200);
    let r = conv(&server, "POST", "/conversations/", Some(json!({ "locationId": LOC, "contactId": contact })));
    assert_eq!((r.status, r.body["message"].as_str()), (403, Some("The token is not authorized for this scope.")));
    assert_eq!(call(&server, "GET", &format!("/users/?locationId={LOC}"), None).status, 403);
    assert!(server.conversations().is_empty());
}

#[test]
fn users_are_listed_for_their_location() {
    let server = start();
    assert_eq!(call(&server, "GET", &format!("/users/?locationId={LOC}"), None).body, json!({ "users": [] }));
    server.add_user("user0000000000000001", "Maya", "Patel", "maya.patel@example.com");
    server.add_user("user0000000000000002", "Jordan", "Lee", "jordan.lee@example.com");
    let r = call(&server, "GET", &format!("/users?locationId={LOC}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let maya = &r.body["users"][0];
    assert_eq!((&maya["id"], &maya["name"], &maya["email"]), (&json!("user0000000000000001"), &json!("Maya Patel"), &json!("maya.patel@example.com")));
    assert_eq!(maya["roles"]["locationIds"], json!([LOC]));
    assert_eq!(r.body["users"].as_array().unwrap().len(), 2);
    let r = call(&server, "GET", "/users/", None);
    assert_eq!((r.status, r.body), (400, bad_request(&["locationId should not be empty"])));
}
