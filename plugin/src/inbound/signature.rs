//! Signed bodies → event JSON: one HS256 JWT verifier for every source that signs, and the
//! check of a token's time claims at the door.
//!
//! - **Dialpad webhooks.** With `webhook_secret` set, Dialpad's POST body *is* a compact JWS
//!   (`header.claims.signature`) signed HS256 with the shared secret, and the claims are the
//!   event itself. Without one, the body is the plain JSON event. Content-Type is not documented
//!   for signed deliveries, so the body is sniffed. With a secret configured, plain JSON is
//!   refused: otherwise anyone could forge events.
//! - **Platform events** travel the same way, signed with their own `platform_secret`, and are
//!   never accepted unsigned: without `platform_secret` they are off.
//!
//! **Time claims.** `exp`, `nbf` and `iat` (seconds since 1970), when a token has them, are
//! checked with `jwt_leeway_seconds` of leeway *at the door only* (`triggers.route` and the HTTP
//! handler, see [`Door`]): a body accepted there is never refused later for its age, since a
//! host handles it after retries or replays it from its dead letters hours later. The signature
//! is checked every time.

use crate::error::SyncError;
use crate::inbound::time::utc_minutes;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Largest body accepted. Dialpad bodies are a few KB; a 24 KB transcript fits many times.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A delivery arriving: the time to hold its token's time claims to, and the leeway allowed for
/// clocks that disagree. Only the door has one; `handle` and `plan` read without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Door {
    /// Now, in seconds since 1970 (UTC).
    pub now: u64,
    pub leeway: u64,
}

/// The Dialpad event as JSON bytes: the body itself, or the verified claims.
pub fn dialpad_json(body: &[u8], secret: Option<&str>, door: Option<Door>) -> Result<Vec<u8>, SyncError> {
    let text = body_text(body)?;
    if text.starts_with('{') || text.starts_with('[') {
        return match secret {
            Some(_) => Err(SyncError::InvalidSignature("unsigned JSON body refused: a webhook secret is configured, so Dialpad sends HS256 JWTs".into())),
            None => Ok(text.as_bytes().to_vec()),
        };
    }
    let parts = jws_parts(text).ok_or_else(|| SyncError::malformed("body is neither a JSON object nor a compact JWT (header.claims.signature)"))?;
    let Some(secret) = secret else {
        return Err(SyncError::InvalidSignature("body is a signed JWT but no webhook secret is configured to verify it".into()));
    };
    verified_claims(parts, secret, "webhook_secret", door)
}

/// The message of a platform event refused because `platform_secret` is not configured.
pub const PLATFORM_EVENTS_OFF: &str =
    "platform events are off until `platform_secret` is configured: each must then be an HS256 JWT signed with it, whose claims are the event";

/// The platform event as JSON bytes: the verified claims of the HS256 JWT that carries it.
/// Without `platform_secret` (`None`) platform events are off: every body is refused.
pub fn platform_json(body: &[u8], secret: Option<&str>, door: Option<Door>) -> Result<Vec<u8>, SyncError> {
    let Some(secret) = secret else {
        return Err(SyncError::InvalidSignature(PLATFORM_EVENTS_OFF.into()));
    };
    let text = body_text(body)?;
    if text.starts_with('{') || text.starts_with('[') {
        return Err(SyncError::InvalidSignature("unsigned platform event refused: it must be an HS256 JWT signed with `platform_secret`".into()));
    }
    let parts = jws_parts(text).ok_or_else(|| SyncError::malformed("platform event is not a compact JWT (header.claims.signature)"))?;
    verified_claims(parts, secret, "platform_secret", door)
}

/// The body as trimmed, non-empty text within the size limit.
fn body_text(body: &[u8]) -> Result<&str, SyncError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(SyncError::malformed(format!("body is {} bytes; the limit is {MAX_BODY_BYTES}", body.len())));
    }
    let text = std::str::from_utf8(body).map_err(|_| SyncError::malformed("body is not UTF-8"))?.trim();
    if text.is_empty() {
        return Err(SyncError::malformed("body is empty"));
    }
    Ok(text)
}

/// A compact JWS's three parts, when the text has that shape.
fn jws_parts(text: &str) -> Option<[&str; 3]> {
    let mut parts = text.split('.');
    let found = [parts.next()?, parts.next()?, parts.next()?];
    let shaped = parts.next().is_none() && found.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    shaped.then_some(found)
}

/// The one verifier: the token's claims once its HS256 signature verifies with `secret` (the
/// setting called `secret_name`), and, at the door, its time claims hold.
fn verified_claims([header, claims, signature]: [&str; 3], secret: &str, secret_name: &str, door: Option<Door>) -> Result<Vec<u8>, SyncError> {
    verify_hs256(header, claims, signature, secret, secret_name)?;
    let claims = URL_SAFE_NO_PAD.decode(claims).map_err(|_| SyncError::malformed("JWT claims are not valid base64url"))?;
    let times = time_claims(&claims)?;
    if let Some(door) = door {
        check_time_claims(&times, door)?;
    }
    Ok(claims)
}

fn verify_hs256(header_b64: &str, claims_b64: &str, signature_b64: &str, secret: &str, secret_name: &str) -> Result<(), SyncError> {
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
    mac.verify_slice(&signature).map_err(|_| SyncError::InvalidSignature(format!("JWT signature does not match the configured {secret_name}")))
}

/// The registered time claims a token may carry (RFC 7519 §4.1.4–6), in seconds since 1970.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TimeClaims {
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
}

/// Reads `exp`, `nbf` and `iat` from the claims. Claims that are not a JSON object have none
/// (their source's parser refuses them with its own message); a time claim that is not a
/// number is a malformed event, wherever it is read.
pub fn time_claims(claims: &[u8]) -> Result<TimeClaims, SyncError> {
    let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice::<serde_json::Value>(claims) else {
        return Ok(TimeClaims::default());
    };
    let read = |name: &str| match claims.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| SyncError::malformed(format!("JWT claim {name} must be a number of seconds since 1970 (a NumericDate), not {value}"))),
    };
    Ok(TimeClaims { exp: read("exp")?, nbf: read("nbf")?, iat: read("iat")? })
}

/// Holds a token's time claims to the door's clock: expired (`exp` before now − leeway), not yet
/// valid (`nbf` after now + leeway) and issued in the future (`iat` after now + leeway) are
/// refused as `invalid-signature`, with the claim and its time.
pub fn check_time_claims(claims: &TimeClaims, door: Door) -> Result<(), SyncError> {
    let (now, leeway) = (door.now as f64, door.leeway as f64);
    // Whole seconds in the message: formatting an `f64` would cost the component ~20 KB.
    let when = |secs: i64| utc_minutes(secs.saturating_mul(1000));
    let refuse = |what: &str, claim: &str, t: f64| {
        let secs = t.floor() as i64;
        SyncError::InvalidSignature(format!(
            "JWT {what}: {claim} {secs} ({}) against now {} ({}), with {} s of leeway",
            when(secs),
            door.now,
            when(door.now as i64),
            door.leeway
        ))
    };
    if let Some(exp) = claims.exp.filter(|&exp| exp < now - leeway) {
        return Err(refuse("expired", "exp", exp));
    }
    if let Some(nbf) = claims.nbf.filter(|&nbf| nbf > now + leeway) {
        return Err(refuse("not valid yet", "nbf", nbf));
    }
    if let Some(iat) = claims.iat.filter(|&iat| iat > now + leeway) {
        return Err(refuse("issued in the future", "iat", iat));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn sign(claims: &serde_json::Value, secret: &str, alg: &str) -> String {
        sign_as(claims.to_string().as_bytes(), secret, alg)
    }

    /// HS256 over claims that need not be JSON.
    pub fn sign_bytes(claims: &[u8], secret: &str) -> String {
        sign_as(claims, secret, "HS256")
    }

    fn sign_as(claims: &[u8], secret: &str, alg: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": alg, "typ": "JWT"}).to_string());
        let c = URL_SAFE_NO_PAD.encode(claims);
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{h}.{c}").as_bytes());
        format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");
    const FIXTURE_SECRET: &str = "dialpad-fixture-secret-not-for-production";
    /// 2026-03-10 15:00 UTC.
    const NOW: u64 = 1_773_154_800;
    const DOOR: Door = Door { now: NOW, leeway: 300 };

    fn refused_for(result: Result<Vec<u8>, SyncError>) -> String {
        match result {
            Err(SyncError::InvalidSignature(m)) => m,
            other => panic!("expected invalid-signature, got {other:?}"),
        }
    }

    #[test]
    fn the_fixture_jwt_verifies_with_its_secret_only() {
        let jwt = std::fs::read(format!("{FIXTURES}call_inbound_hangup_completed.jwt")).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{FIXTURES}call_inbound_hangup_completed.json")).unwrap()).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&dialpad_json(&jwt, Some(FIXTURE_SECRET), Some(DOOR)).unwrap()).unwrap();
        assert_eq!(claims, json);
        assert!(refused_for(dialpad_json(&jwt, Some("another-secret"), None)).ends_with("does not match the configured webhook_secret"));
        assert!(matches!(dialpad_json(&jwt, None, None), Err(SyncError::InvalidSignature(_))));
    }

    #[test]
    fn plain_json_is_refused_when_a_secret_is_set() {
        assert!(matches!(dialpad_json(b"{\"call_id\":1}", Some("s"), None), Err(SyncError::InvalidSignature(_))));
        assert_eq!(dialpad_json(b" {\"call_id\":1}\n", None, None).unwrap(), b"{\"call_id\":1}");
        // Plain JSON has no claims to hold to the clock: an `exp` in it is just a field.
        assert!(dialpad_json(br#"{"call_id":1,"exp":1}"#, None, Some(DOOR)).is_ok());
    }

    #[test]
    fn forged_and_broken_tokens_are_refused() {
        let claims = serde_json::json!({"call_id": 1, "state": "hangup"});
        let good = sign(&claims, "s3cret", "HS256");
        assert!(dialpad_json(good.as_bytes(), Some("s3cret"), None).is_ok());
        // alg none, with or without a signature
        let none = sign(&claims, "s3cret", "none");
        assert!(matches!(dialpad_json(none.as_bytes(), Some("s3cret"), None), Err(SyncError::InvalidSignature(_))));
        let (h, rest) = none.split_once('.').unwrap();
        let unsigned = format!("{h}.{}.", rest.split('.').next().unwrap());
        assert!(matches!(dialpad_json(unsigned.as_bytes(), Some("s3cret"), None), Err(SyncError::InvalidSignature(_))));
        // tampered claims
        let parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::json!({"call_id": 2, "state": "hangup"}).to_string());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert!(matches!(dialpad_json(tampered.as_bytes(), Some("s3cret"), None), Err(SyncError::InvalidSignature(_))));
        // truncated
        let truncated = &good[..good.len() / 2];
        assert!(dialpad_json(truncated.as_bytes(), Some("s3cret"), None).is_err());
        assert!(matches!(dialpad_json(b"not a body", Some("s3cret"), None), Err(SyncError::MalformedEvent(_))));
        assert!(matches!(dialpad_json(b"", None, None), Err(SyncError::MalformedEvent(_))));
        assert!(matches!(dialpad_json(format!("{good}.more").as_bytes(), Some("s3cret"), None), Err(SyncError::MalformedEvent(_))));
    }

    #[test]
    fn platform_events_are_off_without_their_secret_and_signed_with_it() {
        let event = json!({"id": "e1", "type": "note.updated", "note": {"ref": "n", "body": "b"}});
        let signed = sign(&event, "platform-s3cret", "HS256");
        // Off: whatever the body, signed or not, even empty.
        for body in [event.to_string().as_bytes(), signed.as_bytes(), b"".as_slice(), b"\xff"] {
            assert_eq!(refused_for(platform_json(body, None, Some(DOOR))), PLATFORM_EVENTS_OFF);
        }
        // On: only a token signed with the platform secret gets through; its claims are the event.
        let claims: serde_json::Value = serde_json::from_slice(&platform_json(signed.as_bytes(), Some("platform-s3cret"), Some(DOOR)).unwrap()).unwrap();
        assert_eq!(claims, event);
        assert!(refused_for(platform_json(event.to_string().as_bytes(), Some("platform-s3cret"), None)).starts_with("unsigned platform event refused"));
        let webhook_signed = sign(&event, "webhook-s3cret", "HS256");
        assert!(refused_for(platform_json(webhook_signed.as_bytes(), Some("platform-s3cret"), None)).ends_with("does not match the configured platform_secret"));
        assert!(matches!(
            platform_json(sign(&event, "platform-s3cret", "none").as_bytes(), Some("platform-s3cret"), None),
            Err(SyncError::InvalidSignature(_))
        ));
        assert!(matches!(platform_json(b"task.created", Some("platform-s3cret"), None), Err(SyncError::MalformedEvent(_))));
    }

    /// A token signed with `claims` and its time claims added.
    fn timed(times: serde_json::Value) -> String {
        let mut claims = json!({"call_id": 1, "state": "hangup"});
        claims.as_object_mut().unwrap().extend(times.as_object().unwrap().clone());
        sign(&claims, "s3cret", "HS256")
    }

    #[test]
    fn time_claims_are_held_to_the_clock_at_the_door_with_the_leeway() {
        let at_door = |times: serde_json::Value| dialpad_json(timed(times).as_bytes(), Some("s3cret"), Some(DOOR));
        let (now, leeway) = (NOW as i64, 300);
        // Within the leeway, at both edges, and without time claims at all.
        for ok in [
            json!({}),
            json!({"exp": now - leeway, "nbf": now + leeway, "iat": now + leeway}),
            json!({"exp": now + 60, "nbf": now - 60, "iat": now - 60}),
            json!({"exp": now as f64 - 299.5}),
            json!({"exp": null}),
        ] {
            assert!(at_door(ok.clone()).is_ok(), "{ok}");
        }
        // One second past an edge, and far past it: refused, naming the claim and the time.
        let m = refused_for(at_door(json!({"exp": now - leeway - 1})));
        assert_eq!(m, "JWT expired: exp 1773154499 (2026-03-10 14:54 UTC) against now 1773154800 (2026-03-10 15:00 UTC), with 300 s of leeway");
        let m = refused_for(at_door(json!({"exp": 946_771_200, "iat": 946_684_800})));
        assert!(m.starts_with("JWT expired: exp 946771200 (2000-01-02 00:00 UTC)"), "{m}");
        let m = refused_for(at_door(json!({"nbf": now + leeway + 1})));
        assert!(m.starts_with("JWT not valid yet: nbf 1773155101 (2026-03-10 15:05 UTC)"), "{m}");
        let m = refused_for(at_door(json!({"iat": now + 3600})));
        assert!(m.starts_with("JWT issued in the future: iat 1773158400 (2026-03-10 16:00 UTC)"), "{m}");
        // No leeway: the edge itself is the limit.
        let strict = Door { now: NOW, leeway: 0 };
        assert!(dialpad_json(timed(json!({"exp": now})).as_bytes(), Some("s3cret"), Some(strict)).is_ok());
        assert!(dialpad_json(timed(json!({"exp": now - 1})).as_bytes(), Some("s3cret"), Some(strict)).is_err());
        // The same holds for platform events, with their own secret.
        let event = json!({"id": "e1", "type": "note.updated", "note": {"ref": "n", "body": "b"}, "exp": now - 3600});
        let expired = sign(&event, "p", "HS256");
        assert!(refused_for(platform_json(expired.as_bytes(), Some("p"), Some(DOOR))).starts_with("JWT expired: exp"));
        // Past the door (handle, plan), an accepted token is never refused for its age.
        assert!(dialpad_json(timed(json!({"exp": 946_771_200})).as_bytes(), Some("s3cret"), None).is_ok());
        assert!(platform_json(expired.as_bytes(), Some("p"), None).is_ok());
    }

    #[test]
    fn a_time_claim_that_is_not_a_number_is_malformed_wherever_it_is_read() {
        for door in [Some(DOOR), None] {
            let result = dialpad_json(timed(json!({"exp": "tomorrow"})).as_bytes(), Some("s3cret"), door);
            assert!(matches!(result, Err(SyncError::MalformedEvent(ref m)) if m.starts_with("JWT claim exp must be a number")), "{result:?}");
        }
        // Claims that are not an object have no time claims: the source's parser refuses them.
        assert_eq!(time_claims(b"[1]"), Ok(TimeClaims::default()));
        assert_eq!(time_claims(b"not json"), Ok(TimeClaims::default()));
    }
}
