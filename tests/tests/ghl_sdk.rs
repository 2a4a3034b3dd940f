//! HighLevel's official Node SDK (`@gohighlevel/api-client`, pinned in tests/ghl-sdk) as a second
//! judge of the app webhooks: what the harness signs and the host's `WebhookKeys` accepts or
//! refuses, the SDK's `webhooks.verifyEd25519Signature` accepts or refuses alike; and the SDK's
//! own webhook middleware takes the harness's INSTALL and UNINSTALL as HighLevel's.
//!
//! Needs `tests/ghl-sdk/install.sh`; without it the runner lists these tests as ignored, with
//! that reason, unless `REQUIRE_GHL_SDK=1` (CI), where a missing SDK fails them.

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE};
use base64::Engine as _;
use dialpad_ghl_host::marketplace::{
    AppEvent, AppWebhookGate, GateRefusal, MemoryReplayLedger, SignatureRefusal, WebhookKeys, DEFAULT_WINDOW, SIGNATURE_HEADER,
};
use host_test::app_webhook as signer;
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A test app id: HighLevel's are 24 hex digits, and the SDK takes the client id's part
/// before the first `-` as the app id, so it must have none.
const APP: &str = "6650aa00bb11cc22dd33ee44";

/// An Ed25519 public key that is not the test key: the one third-party code attributes to
/// HighLevel (SPKI DER in base64; unconfirmed, and beside the point here, where it is only
/// "another key").
const OTHER_KEY: &str = "MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=";

fn sdk_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ghl-sdk");
    assert!(dir.join("node_modules/@gohighlevel/api-client/package.json").exists(), "HighLevel's SDK is not installed: run tests/ghl-sdk/install.sh");
    dir
}

fn sdk_version() -> String {
    let package = std::fs::read(sdk_dir().join("node_modules/@gohighlevel/api-client/package.json")).unwrap();
    serde_json::from_slice::<Value>(&package).unwrap()["version"].as_str().unwrap_or("?").to_string()
}

/// Runs tests/ghl-sdk/verify.mjs with `input` on stdin; its JSON answer.
fn judge(args: &[&str], input: &Value) -> Vec<Value> {
    let dir = sdk_dir();
    let mut child = Command::new("node")
        .arg(dir.join("verify.mjs"))
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (the SDK needs Node.js)");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "verify.mjs failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("verify.mjs answered {stdout:?}: {e}"))
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
    /// Empty: no `x-ghl-signature` header.
    signature: String,
    public_key: String,
}

impl Case {
    fn ours(&self) -> Result<(), SignatureRefusal> {
        let keys = WebhookKeys::ed25519(&self.public_key).unwrap_or_else(|e| panic!("{}: {e}", self.name));
        keys.verify(|name| (name == SIGNATURE_HEADER && !self.signature.is_empty()).then(|| self.signature.clone()), &self.body)
    }

    fn json(&self) -> Value {
        json!({ "body_b64": BASE64.encode(&self.body), "signature": self.signature, "public_key": self.public_key })
    }
}

/// Both verdicts for each case: `(name, ours, the SDK's)`.
fn verdicts(cases: &[Case]) -> Vec<(&'static str, Result<(), SignatureRefusal>, bool)> {
    let sdk = judge(&[], &Value::Array(cases.iter().map(Case::json).collect()));
    assert_eq!(sdk.len(), cases.len());
    cases.iter().zip(sdk).map(|(case, sdk)| (case.name, case.ours(), sdk["valid"].as_bool().unwrap_or_else(|| panic!("{}: {sdk}", case.name)))).collect()
}

fn install() -> Vec<u8> {
    signer::install_body(APP, "co-1", Some("loc-1"), &[], "w-1", &signer::timestamp(signer::now_ms()))
}

#[test]
#[cfg_attr(ghl_sdk_missing, ignore = "HighLevel's SDK is not installed: run tests/ghl-sdk/install.sh")]
fn the_sdk_and_the_host_agree_on_every_signature() {
    let body = install();
    let signature = signer::sign(&body);
    let pem = signer::test_public_key_pem();
    let tampered = String::from_utf8(body.clone()).unwrap().replace("loc-1", "loc-2").into_bytes();
    let respaced = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    let uninstall = signer::uninstall_body(APP, None, Some("loc-1"), "w-2", &signer::timestamp(signer::now_ms()));
    let case = |name, body: &[u8], signature: &str, public_key: &str| Case {
        name,
        body: body.to_vec(),
        signature: signature.to_string(),
        public_key: public_key.to_string(),
    };
    let cases = [
        case("valid (PEM key)", &body, &signature, &pem),
        case("valid (raw key, base64)", &body, &signature, &signer::test_public_key_base64()),
        case("valid (SPKI DER key, base64)", &body, &signature, &signer::test_public_key_spki_base64()),
        case("valid (raw key, hex)", &body, &signature, &signer::test_public_key_hex()),
        case("valid UNINSTALL", &uninstall, &signer::sign(&uninstall), &pem),
        case("valid, signature without its = padding", &body, signature.trim_end_matches('='), &pem),
        case("valid, signature with spaces around", &body, &format!(" {signature} "), &pem),
        case("tampered body (one location id changed)", &tampered, &signature, &pem),
        case("same JSON, other spacing", &respaced, &signature, &pem),
        case("another body's signature", &body, &signer::sign(&uninstall), &pem),
        case("wrong key", &body, &signature, OTHER_KEY),
        case("missing header (empty signature)", &body, "", &pem),
        case("malformed: not base64", &body, "not a signature", &pem),
        case("malformed: truncated", &body, &signature[..43], &pem),
        case("64 zero bytes", &body, &BASE64.encode([0u8; 64]), &pem),
    ];
    let results = verdicts(&cases);
    let mut table = String::new();
    for (name, ours, sdk) in &results {
        let ours_text = ours.as_ref().map_or_else(|refusal| format!("refused ({refusal})"), |()| "accepted".to_string());
        table.push_str(&format!("\n  {name:<42} SDK {:<8} host {ours_text}", if *sdk { "accepts" } else { "refuses" }));
    }
    host_test::figure!("ghl_sdk: @gohighlevel/api-client {} verifyEd25519Signature and WebhookKeys::verify on {} cases:{table}", sdk_version(), results.len());
    for (name, ours, sdk) in &results {
        assert_eq!(ours.is_ok(), *sdk, "{name}: the SDK {} but the host {ours:?}", if *sdk { "accepts" } else { "refuses" });
    }
    let accepted = results.iter().filter(|(_, _, sdk)| *sdk).count();
    assert_eq!(accepted, 7, "the seven valid cases, and only those, pass");
    // The host's refusals say what was wrong.
    let reason = |name: &str| results.iter().find(|(n, ..)| *n == name).unwrap().1.clone().unwrap_err();
    assert_eq!(reason("missing header (empty signature)"), SignatureRefusal::Missing);
    assert!(matches!(reason("malformed: truncated"), SignatureRefusal::Malformed { .. }));
    assert_eq!(reason("wrong key"), SignatureRefusal::Invalid { header: SIGNATURE_HEADER });
}

/// Where the host is knowingly stricter than the SDK: Node's base64 decoder skips characters
/// outside the alphabet and takes the URL-safe one too, so the SDK accepts a signature with
/// stray characters in it or in the other alphabet; the host refuses both as malformed (no
/// sender writes them, and a lenient reader of signatures is one more thing to trust).
#[test]
#[cfg_attr(ghl_sdk_missing, ignore = "HighLevel's SDK is not installed: run tests/ghl-sdk/install.sh")]
fn the_host_is_stricter_than_the_sdk_only_about_base64_spelling() {
    let body = install();
    let signature = signer::sign(&body);
    let pem = signer::test_public_key_pem();
    let mut cases = vec![Case {
        name: "a stray character inside",
        body: body.clone(),
        signature: format!("{}!{}", &signature[..20], &signature[20..]),
        public_key: pem.clone(),
    }];
    // The URL-safe spelling differs only where the signature has a + or a /; the fixed key and
    // a few bodies make sure one does.
    let url_safe = (0..16)
        .map(|n| signer::install_body(APP, "co-1", Some("loc-1"), &[], &format!("w-url-{n}"), "2025-06-25T06:57:06.225Z"))
        .map(|body| (signer::sign(&body), body))
        .find(|(signature, _)| signature.contains(['+', '/']))
        .expect("one of 16 signatures has a + or a /");
    cases.push(Case {
        name: "the URL-safe alphabet",
        body: url_safe.1.clone(),
        signature: URL_SAFE.encode(BASE64.decode(&url_safe.0).unwrap()),
        public_key: pem,
    });
    for (name, ours, sdk) in verdicts(&cases) {
        assert!(sdk, "{name}: the SDK now refuses it; the host could stop being stricter");
        assert!(matches!(ours, Err(SignatureRefusal::Malformed { .. })), "{name}: {ours:?}");
    }
}

/// The SDK's webhook middleware (`ghl.webhooks.subscribe()`, what an Express app mounts) given
/// the harness's deliveries: it verifies the signature, then for INSTALL looks up the company's
/// token to mint the location's (no company token is stored, so it stops there and calls
/// nobody) and for UNINSTALL deletes the location's stored session. The host's gate is given the
/// same deliveries.
#[test]
#[cfg_attr(ghl_sdk_missing, ignore = "HighLevel's SDK is not installed: run tests/ghl-sdk/install.sh")]
fn the_sdks_webhook_middleware_takes_the_harnesss_install_and_uninstall() {
    let now = signer::now_ms();
    let at = signer::timestamp(now);
    let install = signer::install_body(APP, "co-1", Some("loc-1"), &[], "w-install", &at);
    let uninstall = signer::uninstall_body(APP, None, Some("loc-1"), "w-uninstall", &at);
    let other_app = signer::install_body("7770aa00bb11cc22dd33ee44", "co-1", Some("loc-1"), &[], "w-other", &at);
    let tampered = String::from_utf8(install.clone()).unwrap().replace("loc-1", "loc-2").into_bytes();
    let deliveries: [(&str, &[u8], String, &[&str]); 5] = [
        ("INSTALL", &install, signer::sign(&install), &[]),
        ("UNINSTALL", &uninstall, signer::sign(&uninstall), &["loc-1"]),
        ("another app's INSTALL", &other_app, signer::sign(&other_app), &[]),
        ("tampered INSTALL", &tampered, signer::sign(&install), &[]),
        ("unsigned INSTALL", &install, String::new(), &[]),
    ];
    let input = deliveries
        .iter()
        .map(|(_, body, signature, sessions)| {
            json!({ "body_b64": BASE64.encode(body), "signature": signature, "public_key": signer::test_public_key_pem(),
                    "client_id": format!("{APP}-mbnwxkz4"), "sessions": sessions })
        })
        .collect();
    let sdk = judge(&["--middleware"], &Value::Array(input));
    let gate = AppWebhookGate::new(WebhookKeys::ed25519(&signer::test_public_key_pem()).unwrap()).for_app(APP);
    let mut seen = MemoryReplayLedger::new(DEFAULT_WINDOW);
    let ours: Vec<Result<AppEvent, GateRefusal>> = deliveries
        .iter()
        .map(|(_, body, signature, _)| gate.check(|name| (name == SIGNATURE_HEADER && !signature.is_empty()).then(|| signature.clone()), body, now, &mut seen))
        .collect();
    let mut table = String::new();
    for ((name, ..), (sdk, ours)) in deliveries.iter().zip(sdk.iter().zip(&ours)) {
        let ours = ours.as_ref().map_or_else(|refusal| format!("refused ({refusal})"), |event| format!("{event:?}"));
        table.push_str(&format!("\n  {name:<22} SDK {sdk}\n  {:<22} host {ours}", ""));
    }
    host_test::figure!("ghl_sdk: the SDK's webhook middleware and the host's gate:{table}");

    let flags = |i: usize| (sdk[i]["isSignatureValid"].clone(), sdk[i]["error"].clone(), sdk[i]["calls"].clone());
    // Verified, and the SDK went on to set the location up from the company's token.
    assert_eq!(flags(0), (json!(true), Value::Null, json!(["getAccessToken:co-1"])));
    assert!(matches!(&ours[0], Ok(AppEvent::Install(i)) if i.location_id.as_deref() == Some("loc-1") && i.company_id.as_deref() == Some("co-1")));
    // Verified, and the location's session was forgotten.
    assert_eq!(flags(1), (json!(true), Value::Null, json!(["deleteSession:loc-1"])));
    assert_eq!(sdk[1]["sessionsLeft"], json!([]));
    assert!(matches!(&ours[1], Ok(AppEvent::Uninstall(u)) if u.location_id.as_deref() == Some("loc-1")));
    // Another app's: the SDK passes it on before looking at the signature; the host verifies
    // it, then passes it on as nothing to do.
    assert_eq!(flags(2), (Value::Null, Value::Null, json!([])));
    assert!(matches!(&ours[2], Ok(AppEvent::Other { kind }) if kind == "INSTALL"));
    // Tampered: both refuse to act.
    assert_eq!(flags(3), (json!(false), Value::Null, json!([])));
    assert!(matches!(&ours[3], Err(GateRefusal::Signature(SignatureRefusal::Invalid { .. }))));
    // Unsigned: the SDK does not act on it either, but only flags it (skippedSignatureVerification)
    // and hands it on to the app; the host refuses it outright.
    assert_eq!((sdk[4]["skippedSignatureVerification"].clone(), sdk[4]["calls"].clone()), (json!(true), json!([])));
    assert!(matches!(&ours[4], Err(GateRefusal::Signature(SignatureRefusal::Missing))));
}
