//! The signature on a HighLevel app webhook: `x-ghl-signature` (Ed25519 over the raw body,
//! base64), and the legacy `x-wh-signature` (RSA PKCS#1 v1.5 with SHA-256, base64) only where a
//! legacy key is configured. Verified over the bytes received, never over re-serialized JSON:
//! any change of spacing or key order would break the signature.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use std::fmt;

/// The header of the current signature (Ed25519).
pub const SIGNATURE_HEADER: &str = "x-ghl-signature";
/// The header of the legacy signature (RSA-SHA256), which HighLevel says it no longer sends.
pub const LEGACY_SIGNATURE_HEADER: &str = "x-wh-signature";

/// HighLevel's public key for the legacy `x-wh-signature`, as published in its Webhook
/// Authentication guide (a 4096-bit RSA key, SPKI PEM).
pub const HIGHLEVEL_LEGACY_RSA_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo: followed by the raw 32-byte key it is
/// the whole SPKI, which is what a base64 of the PEM's body decodes to.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// Standard base64, padding optional: HighLevel's SDK decodes with Node's `Buffer.from(…,
/// 'base64')`, which takes a signature or key without its `=` padding, so refusing one would
/// refuse what the reference implementation accepts. Node also skips characters outside the
/// alphabet; that is not copied (a signature with stray characters is refused as malformed).
const BASE64: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

/// The keys a receiver checks HighLevel's app webhooks with. With neither configured every
/// webhook is refused.
#[derive(Clone, Debug, Default)]
pub struct WebhookKeys {
    ed25519: Option<ed25519_dalek::VerifyingKey>,
    legacy_rsa: Option<rsa::RsaPublicKey>,
}

impl WebhookKeys {
    /// HighLevel's Ed25519 public key (from the app's Marketplace settings), in any form the
    /// official SDK accepts: a PEM (SPKI), the raw 32-byte key as 64 hex digits, or base64 of
    /// either the raw key or the SPKI DER (the PEM's body on one line).
    pub fn ed25519(text: &str) -> anyhow::Result<Self> {
        Ok(WebhookKeys { ed25519: Some(parse_ed25519(text)?), legacy_rsa: None })
    }

    /// Also accepts the legacy `x-wh-signature`, checked against this RSA public key (PEM, SPKI
    /// or PKCS#1); [`HIGHLEVEL_LEGACY_RSA_KEY`] is HighLevel's.
    pub fn with_legacy_rsa(self, pem: &str) -> anyhow::Result<Self> {
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        use rsa::pkcs8::DecodePublicKey as _;
        let pem = pem.trim();
        let key = rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|e| anyhow::anyhow!("the legacy webhook key is not an RSA public key in PEM form: {e}"))?;
        Ok(WebhookKeys { legacy_rsa: Some(key), ..self })
    }

    pub fn has_legacy(&self) -> bool {
        self.legacy_rsa.is_some()
    }

    /// Checks the signature of `body`; `header` looks a request header up by its lower-case name.
    ///
    /// `x-ghl-signature` decides whenever it is present and an Ed25519 key is configured: a
    /// failing one is refused even if a valid `x-wh-signature` comes with it, as the official
    /// SDK does, so that a forged body cannot be let in through the weaker, retired scheme.
    /// `x-wh-signature` is checked only when there is no `x-ghl-signature` to check, and only
    /// with a legacy key configured.
    pub fn verify(&self, header: impl Fn(&str) -> Option<String>, body: &[u8]) -> Result<(), SignatureRefusal> {
        // An empty header is no signature (the SDK treats it as absent too).
        let present = |name: &str| header(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let current = present(SIGNATURE_HEADER);
        if let (Some(signature), Some(key)) = (&current, &self.ed25519) {
            return verify_ed25519(key, signature, body);
        }
        match (present(LEGACY_SIGNATURE_HEADER), &self.legacy_rsa) {
            (Some(signature), Some(key)) => verify_rsa(key, &signature, body),
            // An `x-ghl-signature` with no Ed25519 key to check it against is a configuration
            // gap, not the sender's fault: say so rather than "legacy not allowed".
            (_, _) if current.is_some() => Err(SignatureRefusal::NoKey { header: SIGNATURE_HEADER }),
            (Some(_), None) => Err(SignatureRefusal::LegacyNotAllowed),
            (None, _) => Err(SignatureRefusal::Missing),
        }
    }
}

fn parse_ed25519(text: &str) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let text = text.trim();
    let unusable = |e: &dyn fmt::Display| anyhow::anyhow!("the webhook public key is not an Ed25519 public key: {e}");
    if text.contains("-----BEGIN") {
        return ed25519_dalek::VerifyingKey::from_public_key_pem(text).map_err(|e| unusable(&e));
    }
    // Hex only for exactly the raw key's 64 digits, as the SDK reads it; anything else is base64.
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16)).collect::<Result<Vec<u8>, _>>().map_err(|e| unusable(&e))?
    } else {
        BASE64.decode(text).map_err(|e| unusable(&e))?
    };
    let raw = match bytes.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(raw) if raw.len() == 32 => raw,
        _ => &bytes[..],
    };
    let raw: &[u8; 32] = raw.try_into().map_err(|_| unusable(&format_args!("{} bytes, expected 32 (or the 44 of its SPKI DER)", bytes.len())))?;
    ed25519_dalek::VerifyingKey::from_bytes(raw).map_err(|e| unusable(&e))
}

fn decode(header: &'static str, signature: &str) -> Result<Vec<u8>, SignatureRefusal> {
    BASE64.decode(signature).map_err(|e| SignatureRefusal::Malformed { header, reason: format!("not base64 ({e})") })
}

fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, signature: &str, body: &[u8]) -> Result<(), SignatureRefusal> {
    let bytes = decode(SIGNATURE_HEADER, signature)?;
    let signature = ed25519_dalek::Signature::from_slice(&bytes)
        .map_err(|_| SignatureRefusal::Malformed { header: SIGNATURE_HEADER, reason: format!("{} bytes, an Ed25519 signature has 64", bytes.len()) })?;
    // Strict: also refuses the non-canonical and small-order encodings that plain verification
    // lets through; HighLevel's own signatures are never of that kind.
    key.verify_strict(body, &signature).map_err(|_| SignatureRefusal::Invalid { header: SIGNATURE_HEADER })
}

fn verify_rsa(key: &rsa::RsaPublicKey, signature: &str, body: &[u8]) -> Result<(), SignatureRefusal> {
    use rsa::traits::PublicKeyParts as _;
    let bytes = decode(LEGACY_SIGNATURE_HEADER, signature)?;
    if bytes.len() != key.size() {
        return Err(SignatureRefusal::Malformed {
            header: LEGACY_SIGNATURE_HEADER,
            reason: format!("{} bytes, the legacy key's signatures have {}", bytes.len(), key.size()),
        });
    }
    let signature =
        rsa::pkcs1v15::Signature::try_from(&bytes[..]).map_err(|e| SignatureRefusal::Malformed { header: LEGACY_SIGNATURE_HEADER, reason: e.to_string() })?;
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone())
        .verify(body, &signature)
        .map_err(|_| SignatureRefusal::Invalid { header: LEGACY_SIGNATURE_HEADER })
}

/// Why a webhook's signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureRefusal {
    /// Neither `x-ghl-signature` nor `x-wh-signature` (or only empty ones).
    Missing,
    /// A signature that cannot be one: not base64, or the wrong length.
    Malformed { header: &'static str, reason: String },
    /// A well-formed signature that does not match the body and the key.
    Invalid { header: &'static str },
    /// Only the legacy `x-wh-signature`, and no legacy key is configured.
    LegacyNotAllowed,
    /// A signature header for which no key is configured.
    NoKey { header: &'static str },
}

impl fmt::Display for SignatureRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureRefusal::Missing => write!(f, "the webhook is not signed: no {SIGNATURE_HEADER} header"),
            SignatureRefusal::Malformed { header, reason } => write!(f, "the {header} header is not a signature: {reason}"),
            SignatureRefusal::Invalid { header } => write!(f, "the {header} signature does not match the body: not sent by HighLevel, or altered on the way"),
            SignatureRefusal::LegacyNotAllowed => {
                write!(f, "the webhook carries only the legacy {LEGACY_SIGNATURE_HEADER} signature, and no legacy key is configured")
            }
            SignatureRefusal::NoKey { header } => write!(f, "the webhook is signed with {header}, but no key for it is configured"),
        }
    }
}

impl std::error::Error for SignatureRefusal {}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    use ed25519_dalek::Signer as _;

    const BODY: &[u8] = br#"{"type":"INSTALL","appId":"app-1","webhookId":"w-1","timestamp":"2025-06-25T06:57:06.225Z"}"#;

    fn signer(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    fn sign(key: &ed25519_dalek::SigningKey, body: &[u8]) -> String {
        BASE64.encode(key.sign(body).to_bytes())
    }

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn keys() -> WebhookKeys {
        WebhookKeys::ed25519(&BASE64.encode(signer(7).verifying_key().as_bytes())).unwrap()
    }

    /// A 2048-bit RSA key for the legacy scheme's tests (made with `openssl genpkey`; HighLevel's
    /// own private key is, of course, not available to sign with).
    const TEST_RSA_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCu5gdPmDWmzZaG
8N6ebj72mcsInCiF+nTafUwW/6KXKa76R164w5a6hf47iQwIZ7L9yvYyMqG1+Gfm
cI/WeiuVxnTlIX0j2C+61EbDPyAQylntXYDpy5ChELYGsATVGppgZELzTNf/+hc6
aaBq0CCEtjG/z72Tnu1HOLlle59Jlq9jHVztsTl6yEZLvm14i7B5CTH5shNeX8YU
uWINiZIxTP36POGzdvvdOzpYv6tSwIRATeUdoZ+czH1LtEIZsuMY6DW2NyChvKmx
ptxBbglb9zVVcbqL67vDfyzWwqnYS0QasquJCwDbKmS2Y1OYpA/aq6i9KcNA8pDQ
MrrXSCsHAgMBAAECggEAB/Wz8sML+zATZKLwb+y3QnAEHLuPOyW+aGyhQ6yw3CR5
JxxnatZCPl9cD1VwwEDj8L5FvSVBedQmsT3Ko8UCWBV3DXkcNBqiB8AQeKx6uVRU
QUPrEYsnHCDhyQmz5FBmR4Tq6IvpirEL43DjWjJDZS2t2BcDWxd+xXMZXqjJums3
PB3CFJm94NsdxyPmuaLx6KWFu0SMFfSePQuGw3sPUAdD95CfIkmeh0uasELeV+CK
isDXW1eZUOcdwyAMOoSNvUEpch0qppgq4gFBBSUjbt9pvrXVJ9oXYPyKSGbcSkuO
rmr3iXMCWu/kHSTd58gUt3U8rOsUjfj9cZZ91CU0oQKBgQD1Rmn4NpbfA6GkBLoF
RIlwuJJ+XwbbBY1dwsULGZHsCuDTRlyp9I3iGLmNCclicZvNfpT48FBUKuh4c4K/
pNX+4BjrcAWnEg1J4R+x+t68zVZNtMjPb82ot7GR6LDeu9beoDItKkS7UhdmqXdo
UGI1PT7XtcVAWzn4MDBH8TuypwKBgQC2i9ObDTSjNc3crMcZaHX2V0qIvnd1drjm
PK0ya2Ptz30Oq1De8B5QBowjKhr/qGB4gTgLreNxf4AkQxYbCb9Wel4kmhHySH4S
tMM1CAsoPOUWKUzwSWVlzEDHMUlboRZVv88i2I6b+6kXn/GZFl3gqaEQL7XypkVC
neTWqgawoQKBgDvr/vmoBIXpcjUK/pNI4jcKsKd0+czKd3X/nnoOviqnobOcDglr
eLpTBgnh6TRGwySaFzUWKNnXPcInnjrJv4osH4ptbMQbUenJuR+XRZFkrQAA+cpL
6zeb4SLfcU6JH352LqwAFpiY/qSTJFv0v3l4RAEZJF6LqwbqZvE8izQjAoGAYhlE
bzeqiOb6KVQEbugPNIH2gQPySIKznK8Q2F6TxhHR/9caz6O0dob+Okt/VNKUfU3b
45Lf/ndpUpNmxsL3Oy7pdrwBVvWUItNXcCFRdZ878Svit+KJhio8yY74ADDSQuSg
GPbNtI+KcDK47+7wJjKiZoNtQOgPolwdxSp8C+ECgYBL5fMOHGr4Fcqlw20pyfX7
JpU/Ea1zig236hiw2T27RSRxPDGhZn9qqBkM7fzSrHJK/endCdDt8Lj4CEDXIKqJ
sHoynXu0GRs/4YF9N65qtUQ5POMn48DXcK1OCbTSLgbwc69d1e93bKfId3aae3Aw
kerrBBnwMWgk4PrzTDhVCQ==
-----END PRIVATE KEY-----
";

    fn rsa_pair() -> (rsa::pkcs1v15::SigningKey<sha2::Sha256>, String) {
        use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(TEST_RSA_PRIVATE_KEY).unwrap();
        let public = private.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        (rsa::pkcs1v15::SigningKey::new(private), public)
    }

    fn rsa_sign(key: &rsa::pkcs1v15::SigningKey<sha2::Sha256>, body: &[u8]) -> String {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        BASE64.encode(key.sign(body).to_bytes())
    }

    #[test]
    fn a_valid_signature_passes_and_any_change_to_the_body_fails() {
        let signature = sign(&signer(7), BODY);
        assert_eq!(keys().verify(headers(&[(SIGNATURE_HEADER, &signature)]), BODY), Ok(()));
        let tampered = String::from_utf8(BODY.to_vec()).unwrap().replace("app-1", "app-2");
        assert_eq!(keys().verify(headers(&[(SIGNATURE_HEADER, &signature)]), tampered.as_bytes()), Err(SignatureRefusal::Invalid { header: SIGNATURE_HEADER }));
        // The same JSON with other spacing is other bytes: the raw body is what is signed.
        let respaced = String::from_utf8(BODY.to_vec()).unwrap().replace(',', ", ");
        assert!(keys().verify(headers(&[(SIGNATURE_HEADER, &signature)]), respaced.as_bytes()).is_err());
    }

    #[test]
    fn a_signature_by_another_key_fails() {
        let signature = sign(&signer(8), BODY);
        assert_eq!(keys().verify(headers(&[(SIGNATURE_HEADER, &signature)]), BODY), Err(SignatureRefusal::Invalid { header: SIGNATURE_HEADER }));
    }

    #[test]
    fn a_missing_or_empty_header_is_missing() {
        assert_eq!(keys().verify(headers(&[]), BODY), Err(SignatureRefusal::Missing));
        assert_eq!(keys().verify(headers(&[(SIGNATURE_HEADER, "  ")]), BODY), Err(SignatureRefusal::Missing));
        assert_eq!(WebhookKeys::default().verify(headers(&[]), BODY), Err(SignatureRefusal::Missing));
    }

    #[test]
    fn malformed_signatures_are_told_apart_from_wrong_ones() {
        let signature = sign(&signer(7), BODY);
        for bad in ["not base64!", &signature[..40], "AAAA"] {
            let refusal = keys().verify(headers(&[(SIGNATURE_HEADER, bad)]), BODY).unwrap_err();
            assert!(matches!(refusal, SignatureRefusal::Malformed { header: SIGNATURE_HEADER, .. }), "{bad}: {refusal:?}");
            assert!(refusal.to_string().starts_with("the x-ghl-signature header is not a signature"), "{refusal}");
        }
        // Without its padding it is still the signature (Node decodes it so).
        assert_eq!(keys().verify(headers(&[(SIGNATURE_HEADER, signature.trim_end_matches('='))]), BODY), Ok(()));
    }

    #[test]
    fn the_key_is_read_in_every_form_the_sdk_takes() {
        let public = signer(7).verifying_key();
        let pem = public.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).unwrap();
        let der = public.to_public_key_der().unwrap();
        let hex: String = public.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let signature = sign(&signer(7), BODY);
        for form in [pem.clone(), format!("\n{pem}\n"), BASE64.encode(public.as_bytes()), BASE64.encode(der.as_bytes()), hex.clone(), hex.to_uppercase()] {
            let keys = WebhookKeys::ed25519(&form).unwrap_or_else(|e| panic!("{form}: {e}"));
            assert_eq!(keys.verify(headers(&[(SIGNATURE_HEADER, &signature)]), BODY), Ok(()), "{form}");
        }
        for bad in ["", "AAAA", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", HIGHLEVEL_LEGACY_RSA_KEY] {
            assert!(WebhookKeys::ed25519(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn highlevels_published_legacy_key_parses() {
        use rsa::traits::PublicKeyParts as _;
        let keys = keys().with_legacy_rsa(HIGHLEVEL_LEGACY_RSA_KEY).unwrap();
        assert!(keys.has_legacy());
        assert_eq!(keys.legacy_rsa.as_ref().map(|k| k.size() * 8), Some(4096));
    }

    #[test]
    fn the_legacy_signature_counts_only_with_a_legacy_key() {
        let (rsa_key, rsa_public) = rsa_pair();
        let legacy = rsa_sign(&rsa_key, BODY);
        let only_legacy = headers(&[(LEGACY_SIGNATURE_HEADER, &legacy)]);
        assert_eq!(keys().verify(&only_legacy, BODY), Err(SignatureRefusal::LegacyNotAllowed));
        let with_legacy = keys().with_legacy_rsa(&rsa_public).unwrap();
        assert_eq!(with_legacy.verify(&only_legacy, BODY), Ok(()));
        assert_eq!(with_legacy.verify(&only_legacy, b"{}"), Err(SignatureRefusal::Invalid { header: LEGACY_SIGNATURE_HEADER }));
        // HighLevel's real key is configured but did not sign this.
        let highlevel = keys().with_legacy_rsa(HIGHLEVEL_LEGACY_RSA_KEY).unwrap();
        assert!(matches!(highlevel.verify(&only_legacy, BODY), Err(SignatureRefusal::Malformed { header: LEGACY_SIGNATURE_HEADER, .. })));
        // A legacy-only receiver checks the legacy header even when the current one comes too.
        let legacy_only = WebhookKeys::default().with_legacy_rsa(&rsa_public).unwrap();
        assert_eq!(legacy_only.verify(headers(&[(SIGNATURE_HEADER, "x"), (LEGACY_SIGNATURE_HEADER, &legacy)]), BODY), Ok(()));
        assert_eq!(WebhookKeys::default().verify(headers(&[(SIGNATURE_HEADER, "x")]), BODY), Err(SignatureRefusal::NoKey { header: SIGNATURE_HEADER }));
    }

    #[test]
    fn a_bad_current_signature_is_not_rescued_by_a_good_legacy_one() {
        let (rsa_key, rsa_public) = rsa_pair();
        let keys = keys().with_legacy_rsa(&rsa_public).unwrap();
        let legacy = rsa_sign(&rsa_key, BODY);
        let forged = sign(&signer(8), BODY);
        assert_eq!(
            keys.verify(headers(&[(SIGNATURE_HEADER, &forged), (LEGACY_SIGNATURE_HEADER, &legacy)]), BODY),
            Err(SignatureRefusal::Invalid { header: SIGNATURE_HEADER })
        );
        let good = sign(&signer(7), BODY);
        assert_eq!(keys.verify(headers(&[(SIGNATURE_HEADER, &good), (LEGACY_SIGNATURE_HEADER, "garbage")]), BODY), Ok(()));
    }
}
