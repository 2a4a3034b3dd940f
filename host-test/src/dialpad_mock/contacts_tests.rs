//! Contacts, their rate limit, and the contact events they send.

use super::api_tests::{self, message};
use super::*;
use crate::support::{loopback_request_with_headers, Catcher};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use std::time::Duration;

const KEY: &str = "contacts-key";
const WAIT: Duration = Duration::from_secs(10);
const MAYA: i64 = 5_766_401_227_931_648;

fn start() -> DialpadMock {
    api_tests::start(KEY)
}

/// An API request with the key: (status, body).
fn api(mock: &DialpadMock, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api_tests::api_with(KEY, mock, method, path, body)
}

fn dana() -> Value {
    json!({ "first_name": "Dana", "last_name": "Whitfield", "phones": ["+12065550174"], "emails": ["dana.whitfield@example.org"], "company_name": "Whitfield Logistics" })
}

#[test]
fn contacts_are_created_read_updated_and_deleted() {
    let mock = start();
    let (status, shared) = api(&mock, "POST", "/api/v2/contacts", Some(dana()));
    assert_eq!(status, 200, "{shared}");
    let id = shared["id"].as_str().unwrap().to_owned();
    assert_eq!(
        shared,
        json!({
            "id": id, "type": "shared", "first_name": "Dana", "last_name": "Whitfield", "display_name": "Dana Whitfield",
            "phones": ["+12065550174"], "primary_phone": "+12065550174", "emails": ["dana.whitfield@example.org"],
            "primary_email": "dana.whitfield@example.org", "company_name": "Whitfield Logistics", "urls": [], "trunk_group": "", "extension": "",
        })
    );
    let (_, local) = api(&mock, "POST", "/api/v2/contacts", Some(json!({ "first_name": "Kenji", "last_name": "Watanabe", "owner_id": MAYA.to_string() })));
    assert_eq!((&local["type"], &local["owner_id"]), (&json!("local"), &json!(MAYA.to_string())));

    assert_eq!(api(&mock, "GET", &format!("/api/v2/contacts/{id}"), None), (200, shared.clone()));
    let (status, patched) =
        api(&mock, "PATCH", &format!("/api/v2/contacts/{id}"), Some(json!({ "emails": ["dana@whitfield.example", "dana.whitfield@example.org"] })));
    assert_eq!((status, &patched["primary_email"], &patched["first_name"]), (200, &json!("dana@whitfield.example"), &json!("Dana")));
    let (status, deleted) = api(&mock, "DELETE", &format!("/api/v2/contacts/{id}"), None);
    assert_eq!((status, deleted), (200, patched));
    let (status, gone) = api(&mock, "GET", &format!("/api/v2/contacts/{id}"), None);
    assert_eq!((status, message(&gone)), (404, format!("no contact {id}").as_str()));
    assert_eq!(mock.contacts(), [local]);
    assert_eq!(mock.requests().len(), 6, "every request is logged");
}

#[test]
fn contact_bodies_are_checked_against_the_table() {
    let mock = start();
    let refused = |body: Value| {
        let (status, answer) = api(&mock, "POST", "/api/v2/contacts", Some(body));
        assert_eq!(status, 400, "{answer}");
        message(&answer).to_owned()
    };
    assert_eq!(refused(json!({ "last_name": "Whitfield" })), "first_name is required");
    assert_eq!(refused(json!({ "first_name": "Dana", "last_name": "" })), "last_name is required");
    assert!(refused(json!({ "first_name": "D", "last_name": "W", "uid": "x" })).starts_with("uid is not a field of CreateContactMessage"));
    assert_eq!(refused(json!({ "first_name": "D", "last_name": "W", "phones": "+12065550174" })), "phones must be a list of strings, not \"+12065550174\"");
    assert_eq!(refused(json!({ "first_name": "D", "last_name": "W", "phones": ["206-555-0174"] })), "phones: \"206-555-0174\" is not in e164 format");
    assert_eq!(refused(json!({ "first_name": "D", "last_name": "W", "owner_id": "42" })), "owner_id 42: no such user");
    assert_eq!(refused(json!({ "first_name": "D\nX", "last_name": "W" })), "first_name must be a single line");
    let (status, answer) = api(&mock, "PUT", "/api/v2/contacts", Some(json!({ "first_name": "D", "last_name": "W" })));
    assert_eq!((status, message(&answer)), (400, "uid is required"));
    let (status, _) = loopback_request_with_headers("POST", &format!("{}/api/v2/contacts", mock.base_url()), &[], dana().to_string().as_bytes()).unwrap();
    assert_eq!(status, 401, "the key is required");
    assert!(mock.contacts().is_empty());
}

#[test]
fn put_with_the_same_uid_twice_is_one_contact() {
    let mock = start();
    let mut body = dana();
    body["uid"] = json!("ghl-contact-0001");
    let (status, first) = api(&mock, "PUT", "/api/v2/contacts", Some(body));
    assert_eq!((status, &first["id"], &first["type"]), (200, &json!("uid-ghl-contact-0001"), &json!("shared")));
    let (status, second) =
        api(&mock, "PUT", "/api/v2/contacts", Some(json!({ "uid": "ghl-contact-0001", "first_name": "Dana", "last_name": "Whitfield-Lee" })));
    assert_eq!((status, &second["id"], &second["display_name"]), (200, &first["id"], &json!("Dana Whitfield-Lee")));
    assert_eq!(second["phones"], json!([]), "PUT carries the whole contact: what it leaves out is cleared");
    assert_eq!(mock.contacts().len(), 1);
    assert_eq!(mock.contact_by_uid("ghl-contact-0001"), Some(second.clone()));
    assert_eq!(api(&mock, "GET", "/api/v2/contacts/uid-ghl-contact-0001", None), (200, second));
}

#[test]
fn the_101st_contact_create_in_a_minute_is_429() {
    let mock = start();
    for n in 0..100 {
        let (status, answer) = api(&mock, "POST", "/api/v2/contacts", Some(json!({ "first_name": "C", "last_name": n.to_string() })));
        assert_eq!(status, 200, "create {n}: {answer}");
    }
    let (status, answer) = api(&mock, "POST", "/api/v2/contacts", Some(json!({ "first_name": "C", "last_name": "100" })));
    assert_eq!((status, &answer["error"]["code"]), (429, &json!(429)), "{answer}");
    let (status, _) = api(&mock, "PUT", "/api/v2/contacts", Some(json!({ "uid": "u", "first_name": "C", "last_name": "U" })));
    assert_eq!(status, 429, "a PUT that creates counts");
    let some = mock.contacts()[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(api(&mock, "PATCH", &format!("/api/v2/contacts/{some}"), Some(json!({ "job_title": "x" }))).0, 200, "updates do not count");
    assert_eq!(mock.contacts().len(), 100);
}

#[test]
fn the_create_window_slides() {
    let mock = start();
    let window = Duration::from_millis(400);
    mock.set_rate_limit(DialpadLimit::ContactCreate, 3, window);
    let create = |uid: &str| api(&mock, "PUT", "/api/v2/contacts", Some(json!({ "uid": uid, "first_name": "C", "last_name": uid }))).0;
    assert_eq!([create("a"), create("b"), create("c"), create("d")], [200, 200, 200, 429]);
    assert_eq!(create("a"), 200, "replacing an existing uid is not a create");
    std::thread::sleep(window + Duration::from_millis(50));
    assert_eq!([create("d"), create("e"), create("f"), create("g")], [200, 200, 200, 429]);
}

/// The claims of a JWT signed with `secret`, checked by signing them again.
fn verified_claims(jwt: &str, secret: &str) -> Value {
    let claims = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap();
    assert_eq!(crate::jwt::sign(&claims, secret), jwt, "signed with the webhook's secret");
    serde_json::from_slice(&claims).unwrap()
}

#[test]
fn contact_changes_go_to_the_contact_subscriptions_signed() {
    let mock = start();
    let (signed, plain) = (Catcher::start().unwrap(), Catcher::start().unwrap());
    let shared_hook = mock.add_webhook(&signed.url(), Some("contact-secret"));
    let local_hook = mock.add_webhook(&plain.url(), None);
    mock.add_subscription("contact", json!({ "endpoint_id": shared_hook.parse::<i64>().unwrap(), "contact_type": "shared" }));
    mock.add_subscription("contact", json!({ "endpoint_id": local_hook.parse::<i64>().unwrap(), "contact_type": "local" }));
    let disabled = mock.add_subscription("contact", json!({ "endpoint_id": local_hook.parse::<i64>().unwrap(), "contact_type": "shared", "enabled": false }));

    let (_, created) = api(&mock, "POST", "/api/v2/contacts", Some(dana()));
    let id = created["id"].as_str().unwrap().to_owned();
    api(&mock, "PATCH", &format!("/api/v2/contacts/{id}"), Some(json!({ "job_title": "Operations Manager" })));
    let edited = mock.edit_contact(&id, json!({ "emails": ["dana@whitfield.example"] }));
    api(&mock, "DELETE", &format!("/api/v2/contacts/{id}"), None);
    let (_, local) = api(&mock, "POST", "/api/v2/contacts", Some(json!({ "first_name": "Kenji", "last_name": "Watanabe", "owner_id": MAYA.to_string() })));

    assert!(mock.wait_webhooks_delivered(WAIT));
    let sent: Vec<(String, String, u16)> = mock.contact_event_deliveries().into_iter().map(|d| (d.event, d.contact_id, d.status)).collect();
    let local_id = local["id"].as_str().unwrap().to_owned();
    let expected = [("Created", &id), ("Updated", &id), ("Updated", &id), ("Deleted", &id), ("Created", &local_id)];
    assert_eq!(sent, expected.map(|(e, c)| (e.to_owned(), c.clone(), 200)));

    let caught = signed.caught();
    assert_eq!(caught.len(), 4, "shared contacts go to the shared subscription only");
    assert_eq!(caught[0].header("content-type"), Some("application/jwt"));
    let events: Vec<Value> = caught.iter().map(|c| verified_claims(std::str::from_utf8(&c.body).unwrap(), "contact-secret")).collect();
    assert_eq!(events[0], json!({ "event": "Created", "contact": created }));
    assert_eq!(events[1]["contact"]["job_title"], "Operations Manager");
    assert_eq!(events[2], json!({ "event": "Updated", "contact": edited }));
    assert_eq!(events[3]["event"], "Deleted");
    let unsigned = plain.caught();
    assert_eq!(unsigned.len(), 1);
    assert_eq!(serde_json::from_slice::<Value>(&unsigned[0].body).unwrap(), json!({ "event": "Created", "contact": local }));

    // Enabled again, the second shared subscription gets the next change too.
    mock.set_subscription_enabled(&disabled, true);
    api(&mock, "PUT", "/api/v2/contacts", Some(json!({ "uid": "u1", "first_name": "A", "last_name": "B" })));
    assert!(mock.wait_webhooks_delivered(WAIT));
    assert_eq!((signed.caught().len(), plain.caught().len()), (5, 2));
}

#[test]
fn a_persons_edit_fires_one_updated_event() {
    let mock = start();
    let catcher = Catcher::start().unwrap();
    let hook = mock.add_webhook(&catcher.url(), None);
    mock.add_subscription("contact", json!({ "endpoint_id": hook.parse::<i64>().unwrap(), "contact_type": "shared" }));
    let (_, created) = api(&mock, "PUT", "/api/v2/contacts", Some(json!({ "uid": "ghl-1", "first_name": "Dana", "last_name": "Whitfield" })));
    assert!(mock.wait_webhooks_delivered(WAIT));
    let before = mock.contact_event_deliveries().len();
    let edited = mock.edit_contact("uid-ghl-1", json!({ "company_name": "Whitfield Logistics" }));
    assert_eq!((&edited["company_name"], &edited["id"]), (&json!("Whitfield Logistics"), &created["id"]));
    assert!(mock.wait_webhooks_delivered(WAIT));
    let after = mock.contact_event_deliveries();
    assert_eq!(after.len(), before + 1);
    assert_eq!((after[before].event.as_str(), after[before].contact_id.as_str()), ("Updated", "uid-ghl-1"));
    assert_eq!(mock.requests().len(), 1, "a person's edit is not an API request");
}
