//! Webhooks, subscriptions, OAuth and the redacted log.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::io::{Read as _, Write as _};
use std::time::Duration;

const KEY: &str = "connect-key";

fn start() -> DialpadMock {
    DialpadMock::start(DialpadMockOptions { api_key: KEY.into(), page_size: 2 }).unwrap()
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with these headers (and a JSON content type when there is a body).
fn send(mock: &DialpadMock, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let mut stream = std::net::TcpStream::connect(mock.addr()).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", mock.addr());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{}", body.map_or(0, str::len), body.unwrap_or_default()));
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    Answer { status, headers, body: serde_json::from_str(body).unwrap_or(Value::Null) }
}

/// An API request with the key and, for a body, `Content-Type: application/json`.
fn api(mock: &DialpadMock, method: &str, path: &str, body: Option<Value>) -> Answer {
    let bearer = format!("Bearer {KEY}");
    let text = body.map(|b| b.to_string());
    send(mock, method, path, &[("Authorization", &bearer), ("Content-Type", "application/json")], text.as_deref())
}

fn message(answer: &Answer) -> String {
    answer.body["error"]["message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn webhooks_are_created_listed_in_pages_updated_and_deleted() {
    let mock = start();
    let created = api(&mock, "POST", "/api/v2/webhooks", Some(json!({"hook_url": "https://sync.example.com/a", "secret": "s3cret"})));
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["id"].as_str().expect("ids are strings, as in the spec's examples").to_string();
    assert_eq!(created.body, json!({"id": id, "hook_url": "https://sync.example.com/a", "signature": {"algo": "HS256", "secret": "s3cret", "type": "jwt"}}));
    let unsigned = api(&mock, "POST", "/api/v2/webhooks", Some(json!({"hook_url": "http://sync.example.com/b"})));
    assert_eq!(unsigned.status, 200);
    assert!(unsigned.body.get("signature").is_none(), "no secret, no signature: {}", unsigned.body);
    let third = api(&mock, "POST", "/api/v2/webhooks", Some(json!({"hook_url": "https://sync.example.com/a", "secret": ""})));
    assert_eq!(third.status, 200, "a second webhook on the same URL is allowed");

    // Two per page: a cursor, then the last page without one.
    let first = api(&mock, "GET", "/api/v2/webhooks", None);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["cursor"].as_str().unwrap().to_string();
    let second = api(&mock, "GET", &format!("/api/v2/webhooks?cursor={cursor}"), None);
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert!(second.body.get("cursor").is_none(), "{}", second.body);
    assert_eq!(api(&mock, "GET", "/api/v2/webhooks?cursor=zz", None).status, 400);

    let got = api(&mock, "GET", &format!("/api/v2/webhooks/{id}"), None);
    assert_eq!(got.body, created.body);
    let patched = api(&mock, "PATCH", &format!("/api/v2/webhooks/{id}"), Some(json!({"secret": "rotated"})));
    assert_eq!(
        (patched.status, &patched.body["signature"]["secret"], &patched.body["hook_url"]),
        (200, &json!("rotated"), &json!("https://sync.example.com/a"))
    );
    let moved = api(&mock, "PATCH", &format!("/api/v2/webhooks/{id}"), Some(json!({"hook_url": "https://sync.example.com/c"})));
    assert_eq!((&moved.body["hook_url"], &moved.body["signature"]["secret"]), (&json!("https://sync.example.com/c"), &json!("rotated")));

    let deleted = api(&mock, "DELETE", &format!("/api/v2/webhooks/{id}"), None);
    assert_eq!((deleted.status, &deleted.body["id"]), (200, &json!(id)));
    assert_eq!(api(&mock, "DELETE", &format!("/api/v2/webhooks/{id}"), None).status, 404);
    assert_eq!(api(&mock, "GET", &format!("/api/v2/webhooks/{id}"), None).status, 404);
    assert_eq!(mock.registered().webhooks.len(), 2);
}

#[test]
fn bad_webhook_bodies_are_400_and_other_methods_405() {
    let mock = start();
    for (body, needle) in [
        (json!({"secret": "s"}), "hook_url is required"),
        (json!({"hook_url": "not a url"}), "hook_url"),
        (json!({"hook_url": "ftp://x.example.com/"}), "hook_url"),
        (json!({"hook_url": 7}), "hook_url must be a string"),
        (json!({"hook_url": "https://x.example.com/", "secret": "two\nlines"}), "single line"),
        (json!({"hook_url": "https://x.example.com/", "signature": {}}), "signature is not a field of CreateWebhook"),
    ] {
        let answer = api(&mock, "POST", "/api/v2/webhooks", Some(body.clone()));
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert!(message(&answer).contains(needle), "{body}: {}", answer.body);
    }
    let bearer = format!("Bearer {KEY}");
    let form =
        send(&mock, "POST", "/api/v2/webhooks", &[("Authorization", &bearer), ("Content-Type", "application/x-www-form-urlencoded")], Some("hook_url=x"));
    assert_eq!(form.status, 415);
    assert_eq!(api(&mock, "PUT", "/api/v2/webhooks", None).status, 405);
    assert_eq!(api(&mock, "POST", "/api/v2/webhooks/1", Some(json!({}))).status, 405);
    assert_eq!(api(&mock, "GET", "/api/v2/webhooks/abc", None).status, 400);
    assert!(mock.registered().is_empty());
}

#[test]
fn every_api_path_needs_the_key_or_a_live_token() {
    let mock = start();
    for (method, path) in
        [("GET", "/api/v2/webhooks"), ("POST", "/api/v2/webhooks"), ("GET", "/api/v2/subscriptions/call"), ("DELETE", "/api/v2/subscriptions/sms/1")]
    {
        assert_eq!(send(&mock, method, path, &[], None).status, 401, "{method} {path}");
        assert_eq!(send(&mock, method, path, &[("Authorization", "Bearer wrong")], None).status, 401, "{method} {path}");
    }
    assert_eq!(send(&mock, "GET", &format!("/api/v2/webhooks?apikey={KEY}"), &[], None).status, 200);
    assert_eq!(send(&mock, "GET", "/api/v2/nothing-here", &[], None).status, 404, "an unknown path is 404 before auth");
    assert_eq!(send(&mock, "GET", "/api/v2/subscriptions/agent_status", &[], None).status, 404, "not mocked");
}

#[test]
fn subscriptions_validate_the_specs_fields_and_enums() {
    let mock = start();
    let hook = mock.add_webhook("https://sync.example.com/h", Some("s"));
    let endpoint: i64 = hook.parse().unwrap();
    let refused = [
        ("call", json!({"endpoint_id": endpoint, "call_states": ["hangup", "transferred"]}), "transferred"),
        ("call", json!({"endpoint_id": endpoint, "call_states": "hangup"}), "must be a list"),
        ("call", json!({"call_states": ["hangup"]}), "endpoint_id is required"),
        ("call", json!({"webhook_id": endpoint, "call_states": ["hangup"]}), "webhook_id is not a field of CreateCallEventSubscription"),
        ("call", json!({"endpoint_id": hook.clone(), "call_states": ["hangup"]}), "endpoint_id must be an integer"),
        ("call", json!({"endpoint_id": endpoint + 999, "call_states": ["hangup"]}), "no such webhook"),
        ("call", json!({"endpoint_id": endpoint, "target_type": "user"}), "go together"),
        ("call", json!({"endpoint_id": endpoint, "target_type": "company", "target_id": 1}), "target_type must be one of"),
        ("call", json!({"endpoint_id": endpoint, "enabled": "yes"}), "enabled must be a boolean"),
        ("sms", json!({"endpoint_id": endpoint}), "direction is required"),
        ("sms", json!({"endpoint_id": endpoint, "direction": "both"}), "direction must be one of"),
        ("sms", json!({"endpoint_id": endpoint, "direction": "all", "call_states": ["hangup"]}), "not a field of CreateSmsEventSubscription"),
        ("contact", json!({"endpoint_id": endpoint}), "contact_type is required"),
        ("contact", json!({"endpoint_id": endpoint, "contact_type": "global"}), "contact_type must be one of"),
    ];
    for (kind, body, needle) in refused {
        let answer = api(&mock, "POST", &format!("/api/v2/subscriptions/{kind}"), Some(body.clone()));
        assert_eq!(answer.status, 400, "{kind} {body}: {}", answer.body);
        assert!(message(&answer).contains(needle), "{kind} {body}: {}", answer.body);
    }
    assert!(mock.registered().subscriptions.is_empty());

    let call = api(&mock, "POST", "/api/v2/subscriptions/call", Some(json!({"endpoint_id": endpoint, "call_states": ["hangup", "ringing"], "enabled": true})));
    assert_eq!(call.status, 200, "{}", call.body);
    let id = call.body["id"].as_str().unwrap().to_string();
    let webhook = json!({"id": hook, "hook_url": "https://sync.example.com/h", "signature": {"algo": "HS256", "secret": "s", "type": "jwt"}});
    assert_eq!(call.body, json!({"id": id, "call_states": ["hangup", "ringing"], "enabled": true, "group_calls_only": false, "webhook": webhook}));
    let sms =
        api(&mock, "POST", "/api/v2/subscriptions/sms", Some(json!({"endpoint_id": endpoint, "direction": "all", "target_type": "office", "target_id": 42})));
    assert_eq!(sms.status, 200, "{}", sms.body);
    assert_eq!((&sms.body["target_id"], &sms.body["include_internal"], &sms.body["status"]), (&json!("42"), &json!(false), &json!(false)));
    let contact = api(&mock, "POST", "/api/v2/subscriptions/contact", Some(json!({"endpoint_id": endpoint, "contact_type": "shared"})));
    assert_eq!((contact.status, &contact.body["contact_type"], &contact.body["enabled"]), (200, &json!("shared"), &json!(true)));
    let contact_id = contact.body["id"].as_str().unwrap();

    // Updates: only what is sent changes; the contact update needs contact_type too.
    let patched = api(&mock, "PATCH", &format!("/api/v2/subscriptions/call/{id}"), Some(json!({"call_states": ["missed"]})));
    assert_eq!((patched.status, &patched.body["call_states"], &patched.body["enabled"]), (200, &json!(["missed"]), &json!(true)));
    let bad = api(&mock, "PATCH", &format!("/api/v2/subscriptions/call/{id}"), Some(json!({"call_states": ["nope"], "enabled": false})));
    assert_eq!(bad.status, 400);
    assert_eq!(api(&mock, "GET", &format!("/api/v2/subscriptions/call/{id}"), None).body["enabled"], json!(true), "a refused update changes nothing");
    let no_type = api(&mock, "PATCH", &format!("/api/v2/subscriptions/contact/{contact_id}"), Some(json!({"enabled": false})));
    assert!(no_type.status == 400 && message(&no_type).contains("contact_type is required"), "{}", no_type.body);
    let disabled = api(&mock, "PATCH", &format!("/api/v2/subscriptions/contact/{contact_id}"), Some(json!({"contact_type": "shared", "enabled": false})));
    assert_eq!(disabled.body["enabled"], json!(false));

    // Lists: one kind each, filters, pages.
    let calls = api(&mock, "GET", "/api/v2/subscriptions/call", None);
    assert_eq!(calls.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(api(&mock, "GET", "/api/v2/subscriptions/sms?target_type=office&target_id=42", None).body["items"].as_array().unwrap().len(), 1);
    assert_eq!(api(&mock, "GET", "/api/v2/subscriptions/sms?target_type=user", None).body["items"], json!([]));
    assert_eq!(api(&mock, "GET", "/api/v2/subscriptions/sms?target_type=company", None).status, 400);
    assert_eq!(api(&mock, "GET", &format!("/api/v2/subscriptions/sms/{id}"), None).status, 404, "a call subscription's id is no SMS subscription");
    assert_eq!(api(&mock, "GET", &format!("/api/v2/subscriptions/call/{hook}"), None).status, 404, "a webhook's id is no subscription");
    for state in &CALL_STATES[..3] {
        mock.add_subscription("call", json!({"endpoint_id": endpoint, "call_states": [state]}));
    }
    let first = api(&mock, "GET", "/api/v2/subscriptions/call", None);
    let cursor = first.body["cursor"].as_str().unwrap();
    let second = api(&mock, "GET", &format!("/api/v2/subscriptions/call?cursor={cursor}"), None);
    assert_eq!(first.body["items"].as_array().unwrap().len() + second.body["items"].as_array().unwrap().len(), 4);
    let webhooks_cursor = api(&mock, "GET", &format!("/api/v2/subscriptions/sms?cursor={cursor}"), None);
    assert_eq!(webhooks_cursor.status, 400, "a cursor belongs to its listing");

    // Deleting the webhook leaves its subscriptions, pointing at nothing.
    assert_eq!(api(&mock, "DELETE", &format!("/api/v2/webhooks/{hook}"), None).status, 200);
    let orphan = api(&mock, "GET", &format!("/api/v2/subscriptions/call/{id}"), None);
    assert!(orphan.body.get("webhook").is_none(), "{}", orphan.body);
    assert!(mock.registered().subscriptions.iter().all(|s| s.webhook_id.is_none()));
    let deleted = api(&mock, "DELETE", &format!("/api/v2/subscriptions/call/{id}"), None);
    assert_eq!((deleted.status, &deleted.body["id"]), (200, &json!(id)));
    assert_eq!(api(&mock, "DELETE", &format!("/api/v2/subscriptions/call/{id}"), None).status, 404);
}

#[test]
fn test_hooks_change_subscriptions_behind_the_clients_back() {
    let mock = start();
    let hook = mock.add_webhook("https://sync.example.com/h", None);
    let id = mock.add_subscription("sms", json!({"endpoint_id": hook.parse::<i64>().unwrap(), "direction": "inbound"}));
    let registered = mock.registered();
    assert_eq!(registered.webhooks, [RegisteredWebhook { id: hook.clone(), hook_url: "https://sync.example.com/h".into(), secret: None }]);
    assert_eq!((registered.subscriptions[0].kind, registered.subscriptions[0].webhook_id.as_deref()), ("sms", Some(hook.as_str())));
    assert_eq!(registered.subscriptions[0].proto["direction"], "inbound");
    assert!(mock.set_subscription_enabled(&id, false));
    assert!(!mock.registered().subscriptions[0].enabled);
    assert!(mock.remove_subscription(&id));
    assert!(!mock.remove_subscription(&id));
    assert!(mock.registered().subscriptions.is_empty());
}

const CLIENT: &str = "app-1";
const CLIENT_SECRET: &str = "app-secret-1";
const REDIRECT: &str = "https://sync.example.com/oauth/dialpad?tenant=t1";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn with_client() -> DialpadMock {
    let mock = start();
    mock.add_oauth_client(DialpadOAuthClient {
        client_id: CLIENT.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![REDIRECT.into()],
        access_token_ttl: Duration::from_secs(3600),
    });
    mock
}

fn authorize(mock: &DialpadMock, extra: &[(&str, &str)]) -> Answer {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", CLIENT).append_pair("redirect_uri", REDIRECT).append_pair("response_type", "code").append_pair("state", "st 1");
    for (k, v) in extra {
        query.append_pair(k, v);
    }
    send(mock, "GET", &format!("/oauth2/authorize?{}", query.finish()), &[], None)
}

/// The code from an approval's redirect, after checking the rest of it.
fn code_of(answer: &Answer) -> String {
    assert_eq!(answer.status, 302);
    let location = answer.header("location").unwrap();
    let (base, query) = location.split_once("?tenant=t1&").unwrap_or_else(|| panic!("the redirect URI's own query is kept: {location}"));
    assert_eq!(base, "https://sync.example.com/oauth/dialpad");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    assert_eq!(pairs[1], ("state".into(), "st 1".into()));
    pairs[0].1.clone()
}

fn token(mock: &DialpadMock, body: Value) -> Answer {
    send(mock, "POST", "/oauth2/token", &[("Content-Type", "application/json")], Some(&body.to_string()))
}

#[test]
fn the_pkce_flow_issues_tokens_that_open_the_api_and_refresh_rotates_them() {
    let mock = with_client();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let approval = authorize(&mock, &[("code_challenge", &challenge), ("code_challenge_method", "S256"), ("scope", "recordings_export")]);
    let code = code_of(&approval);

    // The wrong verifier spends the code.
    let wrong = token(
        &mock,
        json!({"grant_type": "authorization_code", "code": code, "code_verifier": "x".repeat(43), "client_id": CLIENT, "client_secret": CLIENT_SECRET}),
    );
    assert_eq!((wrong.status, &wrong.body["error"]), (400, &json!("invalid_grant")), "{}", wrong.body);
    let again =
        token(&mock, json!({"grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER, "client_id": CLIENT, "client_secret": CLIENT_SECRET}));
    assert_eq!(again.status, 400, "a code is single use");

    let code = code_of(&authorize(&mock, &[("code_challenge", &challenge), ("code_challenge_method", "S256")]));
    let missing = token(&mock, json!({"grant_type": "authorization_code", "code": code, "client_id": CLIENT, "client_secret": CLIENT_SECRET}));
    assert!(missing.status == 400 && missing.body["error_description"].as_str().unwrap().contains("code_verifier is required"));

    let code = code_of(&authorize(&mock, &[("code_challenge", &challenge), ("code_challenge_method", "S256")]));
    let issued =
        token(&mock, json!({"grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER, "client_id": CLIENT, "client_secret": CLIENT_SECRET}));
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!((&issued.body["token_type"], &issued.body["expires_in"]), (&json!("Bearer"), &json!(3600)));
    let access = issued.body["access_token"].as_str().unwrap().to_string();
    let refresh = issued.body["refresh_token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {access}");
    assert_eq!(send(&mock, "GET", "/api/v2/webhooks", &[("Authorization", &bearer)], None).status, 200, "the access token opens the API");

    let refreshed = token(&mock, json!({"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT, "client_secret": CLIENT_SECRET}));
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let next = refreshed.body["refresh_token"].as_str().unwrap();
    assert_ne!(next, refresh, "rotated");
    let reused = token(&mock, json!({"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT, "client_secret": CLIENT_SECRET}));
    assert_eq!((reused.status, &reused.body["error"]), (400, &json!("invalid_grant")), "the old refresh token is spent");
    let new_bearer = format!("Bearer {}", refreshed.body["access_token"].as_str().unwrap());
    assert_eq!(send(&mock, "GET", "/api/v2/webhooks", &[("Authorization", &new_bearer)], None).status, 200);
}

#[test]
fn the_token_endpoint_checks_the_client_the_grant_and_the_media_type() {
    let mock = with_client();
    let plain = code_of(&authorize(&mock, &[("code_challenge", VERIFIER)]));
    let form = send(&mock, "POST", "/oauth2/token", &[("Content-Type", "application/x-www-form-urlencoded")], Some("grant_type=authorization_code&code=x"));
    assert_eq!(form.status, 415, "the spec declares application/json only");
    let wrong_secret =
        token(&mock, json!({"grant_type": "authorization_code", "code": plain, "code_verifier": VERIFIER, "client_id": CLIENT, "client_secret": "nope"}));
    assert_eq!((wrong_secret.status, &wrong_secret.body["error"]), (401, &json!("invalid_client")));
    let grant = token(&mock, json!({"grant_type": "password", "client_id": CLIENT, "client_secret": CLIENT_SECRET}));
    assert_eq!((grant.status, &grant.body["error"]), (400, &json!("unsupported_grant_type")));
    // Basic auth instead of body credentials; a plain challenge is the verifier itself.
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{CLIENT_SECRET}")));
    let body = json!({"grant_type": "authorization_code", "code": plain, "code_verifier": VERIFIER}).to_string();
    let ok = send(&mock, "POST", "/oauth2/token", &[("Content-Type", "application/json"), ("Authorization", &basic)], Some(&body));
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn authorize_refuses_unknown_apps_and_redirects_other_errors() {
    let mock = with_client();
    let unknown = send(
        &mock,
        "GET",
        &format!("/oauth2/authorize?client_id=nope&redirect_uri={}", url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()),
        &[],
        None,
    );
    assert_eq!((unknown.status, &unknown.body["error"]), (400, &json!("invalid_client")));
    let elsewhere = send(&mock, "GET", &format!("/oauth2/authorize?client_id={CLIENT}&redirect_uri=https%3A%2F%2Fevil.example.com%2F"), &[], None);
    assert_eq!(elsewhere.status, 400, "never redirects to an unregistered URI");
    assert!(elsewhere.header("location").is_none());
    let method = authorize(&mock, &[("code_challenge", "c"), ("code_challenge_method", "S512")]);
    assert_eq!(method.status, 302);
    assert!(method.header("location").unwrap().contains("error=invalid_request"), "{:?}", method.header("location"));
    let implicit = send(
        &mock,
        "GET",
        &format!(
            "/oauth2/authorize?client_id={CLIENT}&redirect_uri={}&response_type=token",
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        ),
        &[],
        None,
    );
    assert!(implicit.header("location").unwrap().contains("error=unsupported_response_type"));
    assert_eq!(send(&mock, "POST", "/oauth2/authorize", &[], None).status, 405);
}

#[test]
fn the_log_redacts_every_secret() {
    let mock = with_client();
    api(&mock, "POST", "/api/v2/webhooks", Some(json!({"hook_url": "https://sync.example.com/a", "secret": "whsec-123"})));
    token(&mock, json!({"grant_type": "refresh_token", "refresh_token": "rt-456", "client_id": CLIENT, "client_secret": CLIENT_SECRET}));
    token(
        &mock,
        json!({"grant_type": "authorization_code", "code": "code-789", "code_verifier": VERIFIER, "client_id": CLIENT, "client_secret": CLIENT_SECRET}),
    );
    send(&mock, "GET", "/oauth2/authorize?code=code-789&secret=whsec-123&client_id=app-1&state=kept", &[], None);
    let log = format!("{:?}", mock.requests());
    for secret in ["whsec-123", "rt-456", "code-789", VERIFIER, CLIENT_SECRET] {
        assert!(!log.contains(secret), "{secret} leaked: {log}");
    }
    let requests = mock.requests();
    assert_eq!(requests[0].body.as_deref(), Some(r#"{"hook_url":"https://sync.example.com/a","secret":"REDACTED"}"#));
    assert_eq!(requests[3].path_and_query, "/oauth2/authorize?code=REDACTED&secret=REDACTED&client_id=app-1&state=kept");
    assert_eq!(redact::path_and_query("/x"), "/x");
}
