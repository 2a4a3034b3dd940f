//! HighLevel's official Node SDK (`@gohighlevel/api-client`, pinned in tests/ghl-sdk) as a second
//! judge of the app webhooks: what the harness signs and the host's `WebhookKeys` accepts or
//! refuses, the SDK's `webhooks.verifyEd25519Signature` accepts or refuses alike; and the SDK's
//! own webhook middleware takes the harness's INSTALL and UNINSTALL as HighLevel's. And the other
//! way round: the SDK's own OAuth and Contacts calls, pointed at the HighLevel mock, get the
//! answers HighLevel would give (tests/ghl-sdk/client.mjs).
//!
//! Needs `tests/ghl-sdk/install.sh`; without it the runner lists these tests as ignored, with
//! that reason, unless `REQUIRE_GHL_SDK=1` (CI), where a missing SDK fails them.

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE};
use base64::Engine as _;
use dialpad_ghl_host::marketplace::{
    AppEvent, AppWebhookGate, GateRefusal, MemoryReplayLedger, SignatureRefusal, WebhookKeys, DEFAULT_WINDOW, SIGNATURE_HEADER,
};
use host_test::app_webhook as signer;
use host_test::ghl_mock::{MarketplaceOptions, MockOptions, MockServer};
use host_test::support::loopback_exchange;
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// Runs `script` (in tests/ghl-sdk) with `input` on stdin: its JSON answer, and everything it
/// printed (stdout, then stderr), for the test to check what it let out.
fn node(script: &str, args: &[&str], input: &Value) -> (Value, String) {
    let dir = sdk_dir();
    let mut child = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (the SDK needs Node.js)");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    let answer = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script} answered {stdout:?}: {e}"));
    (answer, format!("{stdout}{stderr}"))
}

/// Runs tests/ghl-sdk/verify.mjs with `input` on stdin; its JSON answer.
fn judge(args: &[&str], input: &Value) -> Vec<Value> {
    match node("verify.mjs", args, input).0 {
        Value::Array(verdicts) => verdicts,
        other => panic!("verify.mjs answered {other}"),
    }
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

/// The SDK's client id for the OAuth test: the app id, then `-` and a suffix, as HighLevel
/// issues them (the SDK keys its session storage by the part before the `-`).
const CLIENT_ID: &str = "6650aa00bb11cc22dd33ee44-mbnwxkz4";
const CLIENT_SECRET: &str = "sdk-judge-secret-7c1e";
const COMPANY: &str = "company-sdk-0000000001";
const LOC_A: &str = "loc-sdk-a";
const LOC_B: &str = "loc-sdk-b";
const REDIRECT: &str = "https://sync.example/highlevel/callback";
const SCOPES: &str = "contacts.readonly contacts.write oauth.readonly oauth.write";

/// client.mjs's steps, in the order it takes them.
const STEPS: [&str; 16] = [
    "exchange_code",
    "location_token",
    "installed_locations",
    "create_contact",
    "get_contact",
    "update_contact",
    "search_contacts",
    "duplicate_contact",
    "create_note",
    "create_task",
    "list_notes",
    "list_tasks",
    "other_location_contact",
    "other_location_create",
    "other_location_create_unaided",
    "default_version",
];

/// The answer to a Location token's request about another location, HighLevel's text.
fn location_refusal() -> Value {
    json!({ "statusCode": 403, "message": "The token does not have access to this location." })
}

/// HighLevel's SDK installs the app on the mock and uses it as an app would
/// (tests/ghl-sdk/client.mjs): its authorization URL is accepted, its code exchange gets an
/// agency token, its location-token request a token for that location, its installed-locations
/// query both locations; with the location's token its Contacts calls create, read, update,
/// find and annotate a contact, and its calls about another location are refused with 403. The
/// mock ends up holding what the SDK was told, and the script never prints a token.
#[test]
#[cfg_attr(ghl_sdk_missing, ignore = "HighLevel's SDK is not installed: run tests/ghl-sdk/install.sh")]
fn the_sdks_oauth_and_contacts_calls_get_highlevels_answers_from_the_mock() {
    let mock = MockServer::start(MockOptions {
        token: None,
        marketplace: Some(MarketplaceOptions {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            app_id: APP.into(),
            company_id: COMPANY.into(),
            locations: vec![LOC_A.into(), LOC_B.into()],
            access_token_ttl: Duration::from_secs(86_400),
        }),
        ..MockOptions::default()
    })
    .expect("starting the mock");
    let base = mock.base_url();

    // The SDK's authorization URL: HighLevel's query, but at /oauth/chooselocation, where
    // HighLevel's Authorization page documents /v2/oauth/chooselocation (the mock serves that
    // one, so the query is sent there). The SDK adds no `state`; an app needing one appends it.
    let (authorize, _) = node("client.mjs", &["--authorize-url"], &json!({ "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPES }));
    let authorize = authorize["url"].as_str().expect("a URL").to_string();
    let query = authorize.strip_prefix("https://marketplace.gohighlevel.com/oauth/chooselocation?").unwrap_or_else(|| panic!("the SDK's address: {authorize}"));
    assert_eq!(
        query,
        format!(
            "client_id={CLIENT_ID}&redirect_uri=https%3A%2F%2Fsync.example%2Fhighlevel%2Fcallback\
             &scope=contacts.readonly+contacts.write+oauth.readonly+oauth.write&response_type=code"
        )
    );
    let (status, headers, body) = loopback_exchange("GET", &format!("{base}/v2/oauth/chooselocation?{query}"), b"").expect("the authorization page answers");
    assert_eq!(status, 302, "{body}");
    let location = headers.iter().find(|(name, _)| name == "location").map(|(_, v)| v.clone()).expect("a Location header");
    let code =
        location.strip_prefix(&format!("{REDIRECT}?code=")).unwrap_or_else(|| panic!("back to the redirect URI with only a code: {location}")).to_string();

    let elsewhere = mock.seed_contact(json!({ "locationId": LOC_B, "firstName": "Bo" }));
    let job = json!({
        "base_url": base, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code, "redirect_uri": REDIRECT,
        "company_id": COMPANY, "location_id": LOC_A, "app_id": APP, "other_location_id": LOC_B, "other_contact_id": elsewhere,
    });
    let (answer, printed) = node("client.mjs", &[], &job);
    let steps = &answer["steps"];
    let mut names: Vec<&str> = steps.as_object().expect("steps by name").keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = STEPS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "client.mjs's steps");
    let mut table = String::new();
    for name in STEPS {
        let outcome = &steps[name];
        let verdict = if outcome["ok"] == json!(true) { "ok".to_string() } else { format!("refused: {}", outcome["error"]) };
        table.push_str(&format!("\n  {name:<30} {:<5} {verdict}", outcome["status"]));
    }
    host_test::figure!("ghl_sdk: @gohighlevel/api-client {} against the mock's OAuth and Contacts API:{table}", sdk_version());

    // Nothing secret was printed: no token, no code, no client secret.
    for secret in ["mock-company-", "mock-location-", "mock-code-", CLIENT_SECRET] {
        assert!(!printed.contains(secret), "client.mjs printed {secret}…:\n{printed}");
    }

    // OAuth: an agency token for the whole install, then a location token without a refresh token.
    assert_eq!(
        steps["exchange_code"],
        json!({
            "ok": true, "status": 200, "token_type": "Bearer", "userType": "Company", "companyId": COMPANY, "locationId": null,
            "approvedLocations": [LOC_A, LOC_B], "isBulkInstallation": true, "scope": SCOPES, "expires_in": 86_400,
            "userId": "mock-user-0000000001", "has_access_token": true, "has_refresh_token": true,
        })
    );
    assert_eq!(
        steps["location_token"],
        json!({
            "ok": true, "status": 200, "token_type": "Bearer", "locationId": LOC_A, "scope": SCOPES, "expires_in": 86_400,
            "userId": "mock-user-0000000001", "appId": APP, "has_access_token": true, "has_refresh_token": false,
        })
    );
    let listed = |id: &str| json!({ "_id": id, "name": format!("Location {id}"), "isInstalled": true });
    assert_eq!(steps["installed_locations"], json!({ "ok": true, "status": 200, "count": 2, "locations": [listed(LOC_A), listed(LOC_B)] }));

    // Contacts, with the location's token: created, echoed by get, updated, found twice.
    let created = &steps["create_contact"];
    let id = created["contact"]["id"].as_str().unwrap_or_else(|| panic!("a created contact: {created}")).to_string();
    let contact = |last: &str, tags: &[&str]| json!({ "id": id, "locationId": LOC_A, "firstName": "Sdk", "lastName": last, "email": "sdk.judge@example.com", "phone": "+13125550142", "tags": tags });
    assert_eq!(*created, json!({ "ok": true, "status": 201, "contact": contact("Judge", &["sdk"]) }));
    assert_eq!(steps["get_contact"], json!({ "ok": true, "status": 200, "contact": contact("Judge", &["sdk"]) }));
    let updated = contact("Judged", &["sdk", "updated"]);
    assert_eq!(steps["update_contact"], json!({ "ok": true, "status": 200, "succeded": true, "contact": updated }));
    assert_eq!(steps["search_contacts"], json!({ "ok": true, "status": 200, "total": 1, "ids": [id] }));
    assert_eq!(steps["duplicate_contact"], json!({ "ok": true, "status": 200, "contact": updated }), "the email matched whatever its case");

    // A note and a task attached to it, and listed back.
    let note_id = steps["create_note"]["note"]["id"].as_str().unwrap_or_else(|| panic!("a note: {}", steps["create_note"])).to_string();
    let note = json!({ "id": note_id, "body": "Called through the SDK", "contactId": id });
    assert_eq!(steps["create_note"], json!({ "ok": true, "status": 201, "note": note }));
    let task_id = steps["create_task"]["task"]["id"].as_str().unwrap_or_else(|| panic!("a task: {}", steps["create_task"])).to_string();
    assert_eq!(
        steps["create_task"],
        json!({ "ok": true, "status": 201, "task": { "id": task_id, "title": "Call back", "body": "From the SDK", "contactId": id, "completed": false } })
    );
    assert_eq!(steps["list_notes"], json!({ "ok": true, "status": 200, "notes": [note] }));
    assert_eq!(steps["list_tasks"], json!({ "ok": true, "status": 200, "tasks": [{ "id": task_id, "title": "Call back", "contactId": id }] }));

    // Another location, with this location's token: HighLevel's 403, which the SDK raises as an
    // error with the answer attached.
    let refused = json!({ "ok": false, "status": 403, "error": "The token does not have access to this location.", "answer": location_refusal() });
    assert_eq!(steps["other_location_contact"], refused);
    assert_eq!(steps["other_location_create"], refused);
    // Left to itself, the SDK picks the token by the location the body names, has none for it,
    // and refuses before sending anything.
    assert_eq!(
        steps["other_location_create_unaided"],
        json!({ "ok": false, "status": null, "error": "Authentication token required but not available", "answer": null })
    );
    // The SDK's default Version, refused as the spec allows only 2021-07-28.
    assert_eq!(
        steps["default_version"],
        json!({ "ok": false, "status": 400, "error": "version header must be 2021-07-28", "answer": { "statusCode": 400, "message": "version header must be 2021-07-28" } })
    );

    // The mock holds what the SDK was told: the contact as updated, its note and task, and
    // nothing at the other location but the contact seeded there.
    let held: Vec<Value> =
        mock.contacts().iter().map(|c| json!([c["id"], c["locationId"], c["firstName"], c["lastName"], c["email"], c["phone"], c["tags"]])).collect();
    assert_eq!(
        held,
        [
            json!([elsewhere, LOC_B, "Bo", null, null, null, []]),
            json!([id, LOC_A, "Sdk", "Judged", "sdk.judge@example.com", "+13125550142", ["sdk", "updated"]])
        ]
    );
    let notes: Vec<Value> = mock.notes().iter().map(|n| json!([n["id"], n["contactId"], n["body"]])).collect();
    assert_eq!(notes, [json!([note_id, id, "Called through the SDK"])]);
    let tasks: Vec<Value> = mock.tasks().iter().map(|t| json!([t["id"], t["contactId"], t["title"], t["body"], t["completed"]])).collect();
    assert_eq!(tasks, [json!([task_id, id, "Call back", "From the SDK", false])]);

    // And it saw exactly these requests: the unaided one never left the SDK.
    let seen: Vec<(String, String, u16)> =
        mock.requests().into_iter().map(|r| (r.method, r.path_and_query.split('?').next().unwrap_or_default().to_string(), r.status)).collect();
    let entry = |method: &str, path: String, status: u16| (method.to_string(), path, status);
    assert_eq!(
        seen,
        [
            entry("GET", "/v2/oauth/chooselocation".into(), 302),
            entry("POST", "/oauth/token".into(), 200),
            entry("POST", "/oauth/locationToken".into(), 200),
            entry("GET", "/oauth/installedLocations".into(), 200),
            entry("POST", "/contacts/".into(), 201),
            entry("GET", format!("/contacts/{id}"), 200),
            entry("PUT", format!("/contacts/{id}"), 200),
            entry("POST", "/contacts/search".into(), 200),
            entry("GET", "/contacts/search/duplicate".into(), 200),
            entry("POST", format!("/contacts/{id}/notes"), 201),
            entry("POST", format!("/contacts/{id}/tasks"), 201),
            entry("GET", format!("/contacts/{id}/notes"), 200),
            entry("GET", format!("/contacts/{id}/tasks"), 200),
            entry("GET", format!("/contacts/{elsewhere}"), 403),
            entry("POST", "/contacts/".into(), 403),
            entry("GET", format!("/contacts/{id}"), 400),
        ]
    );
}
