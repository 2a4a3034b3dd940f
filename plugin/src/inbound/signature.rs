//! Webhook body → event JSON, verifying Dialpad's HS256 signature when a secret is set.
//!
//! With a secret, Dialpad's POST body *is* a compact JWS (`header.claims.signature`) signed
//! HS256 with the shared secret, and the claims are the event itself. Without one, the body is
//! the plain JSON event. Content-Type is not documented for signed deliveries, so the body is
//! sniffed. With a secret configured, plain JSON is refused: otherwise anyone could forge events.

use crate::error::SyncError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Largest body accepted. Dialpad bodies are a few KB; a 24 KB transcript fits many times.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Returns the event as JSON bytes (the body itself, or the verified claims).
pub fn event_json(body: &[u8], secret: Option<&str>) -> Result<Vec<u8>, SyncError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(SyncError::malformed(format!("body is {} bytes; the limit is {MAX_BODY_BYTES}", body.len())));
    }
    let text = std::str::from_utf8(body).map_err(|_| SyncError::malformed("body is not UTF-8"))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SyncError::malformed("body is empty"));
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return match secret {
            Some(_) => Err(SyncError::InvalidSignature("unsigned JSON body refused: a webhook secret is configured, so Dialpad sends HS256 JWTs".into())),
            None => Ok(trimmed.as_bytes().to_vec()),
        };
    }
    let parts: Vec<&str> = trimmed.split('.').collect();
    let is_jws = parts.len() == 3 && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    if !is_jws {
        return Err(SyncError::malformed("body is neither a JSON object nor a compact JWT (header.claims.signature)"));
    }
    let Some(secret) = secret else {
        return Err(SyncError::InvalidSignature("body is a signed JWT but no webhook secret is configured to verify it".into()));
    };
    verify_hs256(parts[0], parts[1], parts[2], secret)?;
    URL_SAFE_NO_PAD.decode(parts[1]).map_err(|_| SyncError::malformed("JWT claims are not valid base64url"))
}

fn verify_hs256(header_b64: &str, claims_b64: &str, signature_b64: &str, secret: &str) -> Result<(), SyncError> {
    let header = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| SyncError::malformed("JWT header is not valid base64url (truncated?)"))?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|_| SyncError::malformed("JWT header is not JSON (truncated?)"))?;
    match header.get("alg").and_then(|a| a.as_str()) {
        Some("HS256") => {}
        Some(other) => return Err(SyncError::InvalidSignature(format!("JWT alg \"{other}\" refused: only HS256 is accepted"))),
        None => return Err(SyncError::InvalidSignature("JWT header has no alg".into())),
    }
    if signature_b64.is_empty() {
        return Err(SyncError::InvalidSignature("JWT has no signature".into()));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| SyncError::InvalidSignature("JWT signature is not valid base64url".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(claims_b64.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&signature).map_err(|_| SyncError::InvalidSignature("JWT signature does not match the configured webhook secret".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sign(claims: &serde_json::Value, secret: &str, alg: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": alg, "typ": "JWT"}).to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{h}.{c}").as_bytes());
        format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");
    const FIXTURE_SECRET: &str = "dialpad-fixture-secret-not-for-production";

    #[test]
    fn the_fixture_jwt_verifies_with_its_secret_only() {
        let jwt = std::fs::read(format!("{FIXTURES}call_inbound_hangup_completed.jwt")).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{FIXTURES}call_inbound_hangup_completed.json")).unwrap()).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&event_json(&jwt, Some(FIXTURE_SECRET)).unwrap()).unwrap();
        assert_eq!(claims, json);
        assert!(matches!(event_json(&jwt, Some("another-secret")), Err(SyncError::InvalidSignature(_))));
        assert!(matches!(event_json(&jwt, None), Err(SyncError::InvalidSignature(_))));
    }

    #[test]
    fn plain_json_is_refused_when_a_secret_is_set() {
        assert!(matches!(event_json(b"{\"call_id\":1}", Some("s")), Err(SyncError::InvalidSignature(_))));
        assert_eq!(event_json(b" {\"call_id\":1}\n", None).unwrap(), b"{\"call_id\":1}");
    }

    #[test]
    fn forged_and_broken_tokens_are_refused() {
        let claims = serde_json::json!({"call_id": 1, "state": "hangup"});
        let good = sign(&claims, "s3cret", "HS256");
        assert!(event_json(good.as_bytes(), Some("s3cret")).is_ok());
        // alg none, with or without a signature
        let none = sign(&claims, "s3cret", "none");
        assert!(matches!(event_json(none.as_bytes(), Some("s3cret")), Err(SyncError::InvalidSignature(_))));
        let (h, rest) = none.split_once('.').unwrap();
        let unsigned = format!("{h}.{}.", rest.split('.').next().unwrap());
        assert!(matches!(event_json(unsigned.as_bytes(), Some("s3cret")), Err(SyncError::InvalidSignature(_))));
        // tampered claims
        let parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::json!({"call_id": 2, "state": "hangup"}).to_string());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert!(matches!(event_json(tampered.as_bytes(), Some("s3cret")), Err(SyncError::InvalidSignature(_))));
        // truncated
        let truncated = &good[..good.len() / 2];
        assert!(event_json(truncated.as_bytes(), Some("s3cret")).is_err());
        assert!(matches!(event_json(b"not a body", Some("s3cret")), Err(SyncError::MalformedEvent(_))));
        assert!(matches!(event_json(b"", None), Err(SyncError::MalformedEvent(_))));
    }
}
