//! Contact webhooks: what the API's changes and a person's edits send, signed.

use std::time::Duration;

use dialpad_ghl_host::marketplace::{AppEvent, AppWebhookGate, MemoryReplayLedger, WebhookKeys, DEFAULT_WINDOW};
use serde_json::{json, Value};

use super::*;
use crate::app_webhook::{now_ms, test_public_key_pem, SIGNATURE_HEADER};
use crate::support::Catcher;

const WAIT: Duration = Duration::from_secs(10);

fn listening() -> (MockServer, Catcher) {
    let server = start();
    let catcher = Catcher::start().unwrap();
    server.set_contact_webhook(Some(catcher.url()));
    (server, catcher)
}

fn sent(server: &MockServer) -> Vec<(String, String)> {
    assert!(server.wait_webhooks_delivered(WAIT), "the webhooks were not delivered in time");
    server.contact_webhook_deliveries().into_iter().map(|d| (d.event, d.contact_id)).collect()
}

#[test]
fn contact_changes_through_the_api_send_signed_webhooks_in_order() {
    let (server, catcher) = listening();
    let contact = json!({ "firstName": "Dana", "lastName": "Whitfield", "email": "dana@example.org", "companyName": "Whitfield Logistics" });
    let id = create(&server, contact).body["contact"]["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&server, "PUT", &format!("/contacts/{id}"), Some(json!({ "website": "https://whitfield-logistics.example.org" }))).status, 200);
    let upsert = |email: &str| call(&server, "POST", "/contacts/upsert", Some(json!({ "locationId": LOC, "email": email }))).body["contact"]["id"].clone();
    upsert("dana@example.org");
    let other = upsert("kenji@example.net").as_str().unwrap().to_owned();
    // Tag changes are ContactTagUpdate webhooks, which the mock does not send.
    assert_eq!(call(&server, "POST", &format!("/contacts/{id}/tags"), Some(json!({ "tags": ["vip"] }))).status, 201);
    assert_eq!(call(&server, "DELETE", &format!("/contacts/{other}"), None).status, 200);
    // A refused change sends nothing.
    assert_eq!(call(&server, "PUT", "/contacts/unknown", Some(json!({ "firstName": "X" }))).status, 400);

    let expected = [("ContactCreate", &id), ("ContactUpdate", &id), ("ContactUpdate", &id), ("ContactCreate", &other), ("ContactDelete", &other)];
    assert_eq!(sent(&server), expected.map(|(e, c)| (e.to_owned(), c.clone())));
    assert!(server.contact_webhook_deliveries().iter().all(|d| d.status == 200 && d.url == catcher.url()));

    let caught = catcher.caught();
    let keys = WebhookKeys::ed25519(&test_public_key_pem()).unwrap();
    let gate = AppWebhookGate::new(keys.clone()).for_app("app-1");
    for request in &caught {
        let header = |name: &str| request.header(name).map(str::to_owned);
        assert_eq!(keys.verify(header, &request.body), Ok(()), "signed with the test key");
        let event = gate.check(header, &request.body, now_ms(), &mut MemoryReplayLedger::new(DEFAULT_WINDOW)).unwrap();
        assert!(matches!(event, AppEvent::Contact(_)), "the host's gate takes contact webhooks (timestamp and webhookId included): {event:?}");
        assert!(request.header(SIGNATURE_HEADER).is_some());
        assert_eq!((request.method.as_str(), request.header("content-type")), ("POST", Some("application/json")));
    }
    let update: Value = serde_json::from_slice(&caught[1].body).unwrap();
    assert_eq!(
        (&update["type"], &update["id"], &update["locationId"], &update["name"], &update["companyName"], &update["website"]),
        (
            &json!("ContactUpdate"),
            &json!(id),
            &json!(LOC),
            &json!("Dana Whitfield"),
            &json!("Whitfield Logistics"),
            &json!("https://whitfield-logistics.example.org")
        )
    );
    assert!(update.get("emailLowerCase").is_none() && update.get("dateUpdated").is_none(), "only the documented fields: {update}");
    let deleted: Value = serde_json::from_slice(&caught[4].body).unwrap();
    assert_eq!((&deleted["type"], &deleted["email"]), (&json!("ContactDelete"), &json!("kenji@example.net")));
}

#[test]
fn a_persons_edit_fires_one_contact_update() {
    let (server, catcher) = listening();
    let id = server.seed_contact(json!({ "locationId": LOC, "firstName": "Dana", "phone": "+12065550174" }));
    let edited = server.edit_contact(&id, json!({ "email": "dana@whitfield.example", "lastName": "Whitfield" }));
    assert_eq!((&edited["name"], &edited["email"]), (&json!("Dana Whitfield"), &json!("dana@whitfield.example")));
    assert_eq!(sent(&server), [("ContactUpdate".to_owned(), id.clone())]);
    let body: Value = serde_json::from_slice(&catcher.caught()[0].body).unwrap();
    assert_eq!((&body["email"], &body["phone"]), (&json!("dana@whitfield.example"), &json!("+12065550174")));
    assert_eq!(server.contacts()[0]["email"], "dana@whitfield.example");
    assert!(server.requests().is_empty(), "a person's edit is not an API request");
}

#[test]
fn deliveries_record_the_receivers_answer_and_stop_with_the_url() {
    let (server, catcher) = listening();
    catcher.answer_with(500);
    create(&server, json!({ "firstName": "A" }));
    assert!(server.wait_webhooks_delivered(WAIT));
    assert_eq!(server.contact_webhook_deliveries()[0].status, 500);

    server.set_contact_webhook(None);
    create(&server, json!({ "firstName": "B" }));
    assert!(server.wait_webhooks_delivered(WAIT));
    assert_eq!(server.contact_webhook_deliveries().len(), 1, "no URL, no webhook");

    // A receiver that is gone: status 0, and the next delivery still goes out.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    server.set_contact_webhook(Some(format!("http://{gone}/hook")));
    create(&server, json!({ "firstName": "C" }));
    server.set_contact_webhook(Some(catcher.url()));
    create(&server, json!({ "firstName": "D" }));
    assert!(server.wait_webhooks_delivered(WAIT));
    let statuses: Vec<u16> = server.contact_webhook_deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [500, 0, 500]);
}
