//! HighLevel's contact webhooks (`ContactCreate`, `ContactUpdate`, `ContactDelete`) as HighLevel
//! sends them to an app: the body of ContactCreate.md and its siblings, plus the `timestamp` and
//! `webhookId` every webhook carries (WebhookAuthentication.md). [`crate::app_webhook::post`]
//! signs and sends one with the test key.

use serde_json::{json, Value};

/// A contact webhook body of `kind` for the contact `contact_id` of `location_id`, with the
/// fields of the pages' example (a phone in E.164, an e-mail, tags, a custom field).
pub fn contact_body(kind: &str, location_id: &str, contact_id: &str, webhook_id: &str, timestamp: &str) -> Vec<u8> {
    contact_body_with(kind, location_id, contact_id, webhook_id, timestamp, |_| {})
}

/// [`contact_body`], edited before it is serialized (a field removed, another phone).
pub fn contact_body_with(kind: &str, location_id: &str, contact_id: &str, webhook_id: &str, timestamp: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = json!({
        "type": kind,
        "locationId": location_id,
        "id": contact_id,
        "address1": "3535 1st St N",
        "city": "Dolomite",
        "state": "AL",
        "companyName": "Whitfield Roofing",
        "country": "US",
        "source": "test form",
        "dateAdded": "2026-03-10T15:00:00.000Z",
        "dnd": false,
        "email": "dana.whitfield@example.com",
        "name": "Dana Whitfield",
        "firstName": "Dana",
        "lastName": "Whitfield",
        "phone": "+12065550174",
        "postalCode": "35061",
        "tags": ["lead"],
        "website": "https://whitfield.example.com/",
        "attachments": [],
        "assignedTo": "",
        "customFields": [{"id": "BcdmQEsNgz6AVpgLVUJ0", "value": "XYZ Corp"}],
        "timestamp": timestamp,
        "webhookId": webhook_id,
    });
    edit(&mut body);
    serde_json::to_vec(&body).expect("a JSON value always serializes")
}

/// Another webhook type of the same location (`NoteCreate`, `InboundMessage`, …), which the
/// sync does not take.
pub fn other_body(kind: &str, location_id: &str, webhook_id: &str, timestamp: &str) -> Vec<u8> {
    let body =
        json!({"type": kind, "locationId": location_id, "id": "other-1", "contactId": "c-1", "body": "test", "timestamp": timestamp, "webhookId": webhook_id});
    serde_json::to_vec(&body).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app_webhook::{now_ms, sign, test_public_key_pem, timestamp, SIGNATURE_HEADER};
    use dialpad_ghl_host::marketplace::{AppEvent, AppWebhookGate, MemoryReplayLedger, WebhookKeys, DEFAULT_WINDOW};

    #[test]
    fn a_signed_contact_body_passes_the_hosts_gate_as_a_contact_webhook() {
        let gate = AppWebhookGate::new(WebhookKeys::ed25519(&test_public_key_pem()).unwrap()).for_app("app-1");
        let mut seen = MemoryReplayLedger::new(DEFAULT_WINDOW);
        for kind in ["ContactCreate", "ContactUpdate", "ContactDelete"] {
            let body = contact_body(kind, "loc-1", "c-1", &format!("w-{kind}"), &timestamp(now_ms()));
            let signature = sign(&body);
            let event = gate.check(|name| (name == SIGNATURE_HEADER).then(|| signature.clone()), &body, now_ms(), &mut seen).unwrap();
            assert!(matches!(&event, AppEvent::Contact(c) if c.kind == kind && c.location_id == "loc-1"), "{event:?}");
        }
        let note = other_body("NoteCreate", "loc-1", "w-note", &timestamp(now_ms()));
        let signature = sign(&note);
        let event = gate.check(|name| (name == SIGNATURE_HEADER).then(|| signature.clone()), &note, now_ms(), &mut seen).unwrap();
        assert_eq!(event, AppEvent::Other { kind: "NoteCreate".into() });
    }
}
