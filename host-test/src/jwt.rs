//! Compact HS256 JWTs, as Dialpad signs its webhooks with the webhook secret and the automation
//! platform its task and note events with the platform secret: the one signer of the tests,
//! the demo and the benchmarks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};

/// `header.claims.signature`, with the header `{"alg":"HS256","typ":"JWT"}`; `claims` are sent
/// as they are (the event's JSON, usually).
pub fn sign(claims: &[u8], secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{header}.{claims}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{claims}.{signature}")
}

/// Seconds since 1970, for the time claims (`iat`, `exp`, `nbf`) of a token signed now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// The demo's signed webhook (Dialpad's fixture), signed again here, is byte for byte the same.
    #[test]
    fn the_signer_reproduces_dialpads_signature() {
        use base64::Engine as _;
        let jwt = std::str::from_utf8(crate::demo::SIGNED_EVENT).unwrap().trim();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap();
        assert_eq!(super::sign(&claims, crate::demo::WEBHOOK_SECRET), jwt);
    }
}
