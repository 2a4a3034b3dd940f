//! HighLevel's app webhooks (INSTALL, UNINSTALL) as HighLevel sends them, signed with a test key
//! pair instead of HighLevel's: the body per AppInstall.md / AppUninstall.md plus `timestamp`
//! and `webhookId`, and its Ed25519 signature in `x-ghl-signature`. A receiver under test is
//! configured with [`test_public_key_pem`] (or another form of the same key).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePublicKey as _;
use ed25519_dalek::Signer as _;
use serde_json::{json, Value};

/// The test key pair's seed: fixed, so that a key printed in a failure or pasted into a
/// configuration stays valid from run to run. Not a secret: it only ever signs test bodies.
pub const TEST_SEED: [u8; 32] = *b"dialpad-ghl-test-app-webhook-key";

/// The header HighLevel signs app webhooks in.
pub const SIGNATURE_HEADER: &str = "x-ghl-signature";

pub fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&TEST_SEED)
}

/// The test public key as a PEM (SPKI), the form HighLevel's Marketplace shows.
pub fn test_public_key_pem() -> String {
    signing_key().verifying_key().to_public_key_pem(LineEnding::LF).expect("an Ed25519 key always encodes")
}

/// The raw 32-byte test public key in base64.
pub fn test_public_key_base64() -> String {
    BASE64.encode(signing_key().verifying_key().as_bytes())
}

/// The test public key's SPKI DER in base64 (the PEM's body on one line).
pub fn test_public_key_spki_base64() -> String {
    BASE64.encode(signing_key().verifying_key().to_public_key_der().expect("an Ed25519 key always encodes").as_bytes())
}

/// The raw 32-byte test public key as 64 hex digits.
pub fn test_public_key_hex() -> String {
    signing_key().verifying_key().as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The Ed25519 signature of `body` by the test key, in base64: an `x-ghl-signature` value.
pub fn sign(body: &[u8]) -> String {
    BASE64.encode(signing_key().sign(body).to_bytes())
}

/// A `timestamp` as HighLevel writes it (JavaScript's `toISOString`): `2025-06-25T06:57:06.225Z`.
pub fn timestamp(unix_ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms.max(0).unsigned_abs());
    humantime::format_rfc3339_millis(at).to_string()
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An `INSTALL` body: at a location (`location`), in several at once (`locations`, a bulk
/// install's `locationIds`), or at the agency (neither). The fields not given are filled as a
/// non-white-labelled agency's install of a free app sends them.
pub fn install_body(app_id: &str, company_id: &str, location: Option<&str>, locations: &[&str], webhook_id: &str, timestamp: &str) -> Vec<u8> {
    let at_location = location.is_some() || !locations.is_empty();
    let mut body = json!({
        "type": "INSTALL",
        "appId": app_id,
        "versionId": app_id,
        "installType": if at_location { "Location" } else { "Company" },
        "companyId": company_id,
        "userId": "test-user-1",
        "planId": "test-plan-1",
        "trial": {},
        "isWhitelabelCompany": false,
        "whitelabelDetails": {},
        "companyName": "Test Agency",
        "timestamp": timestamp,
        "webhookId": webhook_id,
    });
    if let Some(location) = location {
        body["locationId"] = Value::from(location);
    }
    if !locations.is_empty() {
        body["locationIds"] = Value::from(locations);
    }
    serde_json::to_vec(&body).expect("a JSON value always serializes")
}

/// An `UNINSTALL` body: of a location (`location`), or of the agency (`company` only).
pub fn uninstall_body(app_id: &str, company_id: Option<&str>, location: Option<&str>, webhook_id: &str, timestamp: &str) -> Vec<u8> {
    let mut body = json!({ "type": "UNINSTALL", "appId": app_id, "timestamp": timestamp, "webhookId": webhook_id });
    if let Some(company) = company_id {
        body["companyId"] = Value::from(company);
    }
    if let Some(location) = location {
        body["locationId"] = Value::from(location);
    }
    serde_json::to_vec(&body).expect("a JSON value always serializes")
}

/// POSTs `body` to a loopback `url` with its test signature in `x-ghl-signature`, as HighLevel
/// delivers an app webhook: `(status, answer body)`.
pub fn post(url: &str, body: &[u8]) -> (u16, String) {
    let signature = sign(body);
    crate::support::loopback_request_with_headers("POST", url, &[(SIGNATURE_HEADER, &signature)], body).unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialpad_ghl_host::marketplace::{AppWebhookGate, MemoryReplayLedger, WebhookKeys, DEFAULT_WINDOW};
    use std::collections::HashMap;
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};

    #[test]
    fn every_form_of_the_test_key_verifies_the_test_signature() {
        let body = install_body("app-1", "co-1", Some("loc-1"), &[], "w-1", &timestamp(now_ms()));
        let signature = sign(&body);
        for key in [test_public_key_pem(), test_public_key_base64(), test_public_key_spki_base64(), test_public_key_hex()] {
            let keys = WebhookKeys::ed25519(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(keys.verify(|name| (name == SIGNATURE_HEADER).then(|| signature.clone()), &body), Ok(()), "{key}");
        }
        assert!(test_public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!((test_public_key_hex().len(), test_public_key_spki_base64().len()), (64, 60));
    }

    #[test]
    fn timestamps_are_written_as_highlevel_writes_them() {
        assert_eq!(timestamp(1_750_834_626_225), "2025-06-25T06:57:06.225Z");
        assert_eq!(dialpad_ghl_host::marketplace::event::parse_timestamp(&timestamp(1_750_834_626_225)), Some(1_750_834_626_225));
    }

    #[test]
    fn the_bodies_carry_the_documented_fields() {
        let bulk: Value = serde_json::from_slice(&install_body("app-1", "co-1", None, &["l1", "l2"], "w-1", "2025-06-25T06:57:06.225Z")).unwrap();
        assert_eq!((bulk["installType"].as_str(), bulk["locationIds"][1].as_str(), bulk.get("locationId")), (Some("Location"), Some("l2"), None));
        let agency: Value = serde_json::from_slice(&install_body("app-1", "co-1", None, &[], "w-1", "2025-06-25T06:57:06.225Z")).unwrap();
        assert_eq!(agency["installType"], "Company");
        let gone: Value = serde_json::from_slice(&uninstall_body("app-1", None, Some("loc-1"), "w-2", "2025-06-25T06:57:06.225Z")).unwrap();
        assert_eq!((gone["type"].as_str(), gone["locationId"].as_str(), gone.get("companyId")), (Some("UNINSTALL"), Some("loc-1"), None));
    }

    /// A one-request receiver on loopback that puts the delivery through the host's gate and
    /// answers 200 with the event's kind, or 401 with the refusal.
    fn receiver() -> (String, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/webhooks/highlevel", listener.local_addr().unwrap());
        let serve = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut headers = HashMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let Some((name, value)) = line.trim_end().split_once(':') else { break };
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
            let mut body = vec![0; headers["content-length"].parse().unwrap()];
            reader.read_exact(&mut body).unwrap();
            let gate = AppWebhookGate::new(WebhookKeys::ed25519(&test_public_key_pem()).unwrap()).for_app("app-1");
            let answer = match gate.check(|name| headers.get(name).cloned(), &body, now_ms(), &mut MemoryReplayLedger::new(DEFAULT_WINDOW)) {
                Ok(event) => format!("200 OK\r\n\r\n{}", event.kind()),
                Err(refusal) => format!("401 Unauthorized\r\n\r\n{refusal}"),
            };
            reader.get_mut().write_all(format!("HTTP/1.1 {answer}").as_bytes()).unwrap();
        });
        (url, serve)
    }

    #[test]
    fn a_posted_install_passes_the_hosts_gate() {
        let (url, serve) = receiver();
        let body = install_body("app-1", "co-1", Some("loc-1"), &[], "w-1", &timestamp(now_ms()));
        assert_eq!(post(&url, &body), (200, "INSTALL".to_string()));
        serve.join().unwrap();
        // The same body unsigned is refused.
        let (url, serve) = receiver();
        let (status, answer) = crate::support::loopback_request("POST", &url, &body).unwrap();
        assert_eq!((status, answer.as_str()), (401, "the webhook is not signed: no x-ghl-signature header"));
        serve.join().unwrap();
    }

    #[test]
    fn a_posted_uninstall_passes_the_hosts_gate() {
        let (url, serve) = receiver();
        assert_eq!(post(&url, &uninstall_body("app-1", Some("co-1"), None, "w-2", &timestamp(now_ms()))), (200, "UNINSTALL".to_string()));
        serve.join().unwrap();
    }
}
