//! Connecting Dialpad: the host's client (`connect::dialpad`) against the Dialpad mock (exact
//! requests, idempotent registration, status, unregistration, OAuth with PKCE), and every
//! request it sends judged by Prism against Dialpad's official spec.

use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::connect::dialpad::status::Part;
use dialpad_ghl_host::connect::dialpad::{DialpadConnection, DialpadOAuthApp, Events, Pkce, Registration, SubscriptionKind, Wanted, CALL_STATES};
use dialpad_ghl_host::connect::ConnectError;
use e2e_tests::prism_dialpad::{flagged, request_violations, response_defects, DialpadPrism, Exchange, SHIM_KEY};
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions, DialpadOAuthClient};
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::time::Duration;

const KEY: &str = "dialpad-connect-key";
const SECRET: &str = "whsec-connect-7c1e";
const HOOK: &str = "https://sync.example.com/dialpad/events";
const STATES: [&str; 8] = ["ringing", "connected", "hangup", "missed", "voicemail_uploaded", "transcription", "recording", "recap_summary"];

fn mock(page_size: usize) -> DialpadMock {
    DialpadMock::start(DialpadMockOptions { api_key: KEY.into(), page_size }).expect("starting the Dialpad mock")
}

fn connection(base: &str, credential: &str) -> DialpadConnection {
    DialpadConnection { api_base: base.into(), credential: Secret::new(credential), timeout: Duration::from_secs(10) }
}

fn wanted(states: &[&str]) -> Wanted {
    Wanted { hook_url: HOOK.into(), call_states: states.iter().map(|s| s.to_string()).collect(), sms: true, contacts: true }
}

/// `METHOD path → status` of the mock's requests from `from` on.
fn lines(mock: &DialpadMock, from: usize) -> Vec<String> {
    mock.requests()[from..].iter().map(|r| format!("{} {} → {}", r.method, r.path_and_query, r.status)).collect()
}

fn body(mock: &DialpadMock, index: usize) -> Value {
    serde_json::from_str(mock.requests()[index].body.as_deref().expect("a body")).unwrap()
}

fn endpoint(registration: &Registration) -> i64 {
    registration.webhook_id.parse().unwrap()
}

#[tokio::test]
async fn register_lists_first_creates_each_part_once_and_patches_changed_states() {
    let mock = mock(25);
    let dialpad = connection(&mock.base_url(), KEY);
    let secret = Secret::new(SECRET);

    let registration = dialpad.register(&wanted(&STATES), &secret).await.unwrap();
    let (call, sms, contact) =
        (registration.call_subscription.clone().unwrap(), registration.sms_subscription.clone().unwrap(), registration.contact_subscription.clone().unwrap());
    assert_eq!(
        lines(&mock, 0),
        [
            "GET /api/v2/webhooks → 200",
            "POST /api/v2/webhooks → 200",
            "GET /api/v2/subscriptions/call → 200",
            "POST /api/v2/subscriptions/call → 200",
            "GET /api/v2/subscriptions/sms → 200",
            "POST /api/v2/subscriptions/sms → 200",
            "GET /api/v2/subscriptions/contact → 200",
            "POST /api/v2/subscriptions/contact → 200",
        ]
    );
    assert_eq!(body(&mock, 1), json!({"hook_url": HOOK, "secret": "REDACTED"}), "the log never holds the secret");
    let id = endpoint(&registration);
    assert_eq!(body(&mock, 3), json!({"call_states": STATES, "enabled": true, "endpoint_id": id}));
    assert_eq!(body(&mock, 5), json!({"direction": "all", "enabled": true, "endpoint_id": id}));
    assert_eq!(body(&mock, 7), json!({"contact_type": "shared", "enabled": true, "endpoint_id": id}));

    let registered = mock.registered();
    assert_eq!(registered.webhooks.len(), 1);
    assert_eq!((registered.webhooks[0].hook_url.as_str(), registered.webhooks[0].secret.as_deref()), (HOOK, Some(SECRET)), "every delivery is signed");
    let ids: Vec<(&str, &str)> = registered.subscriptions.iter().map(|s| (s.kind, s.id.as_str())).collect();
    assert_eq!(ids, [("call", call.as_str()), ("sms", sms.as_str()), ("contact", contact.as_str())]);
    assert!(registered.subscriptions.iter().all(|s| s.enabled && s.webhook_id.as_deref() == Some(registration.webhook_id.as_str())));
    assert_eq!(registration.hook_url, HOOK);

    // Again: lists only, and the same registration.
    let before = mock.requests().len();
    let again = dialpad.register(&wanted(&STATES), &secret).await.unwrap();
    assert_eq!(again, registration);
    assert_eq!(
        lines(&mock, before),
        [
            "GET /api/v2/webhooks → 200",
            "GET /api/v2/subscriptions/call → 200",
            "GET /api/v2/subscriptions/sms → 200",
            "GET /api/v2/subscriptions/contact → 200"
        ]
    );
    assert_eq!(mock.registered(), registered, "nothing created twice");

    // The same states in another order are the same subscription; other states are a PATCH.
    let mut shuffled = STATES;
    shuffled.reverse();
    let before = mock.requests().len();
    dialpad.register(&wanted(&shuffled), &secret).await.unwrap();
    assert_eq!(lines(&mock, before).len(), 4, "states compare as sets: {:?}", lines(&mock, before));
    let before = mock.requests().len();
    let changed = dialpad.register(&wanted(&["hangup", "missed"]), &secret).await.unwrap();
    assert_eq!(changed, registration, "the same subscription, updated");
    assert_eq!(
        lines(&mock, before),
        [
            "GET /api/v2/webhooks → 200".to_string(),
            "GET /api/v2/subscriptions/call → 200".into(),
            format!("PATCH /api/v2/subscriptions/call/{call} → 200"),
            "GET /api/v2/subscriptions/sms → 200".into(),
            "GET /api/v2/subscriptions/contact → 200".into(),
        ]
    );
    assert_eq!(body(&mock, before + 2), json!({"call_states": ["hangup", "missed"], "enabled": true}));
    let after = mock.registered();
    assert_eq!(after.subscriptions.len(), 3);
    assert_eq!(after.subscriptions[0].proto["call_states"], json!(["hangup", "missed"]));
}

#[tokio::test]
async fn register_adopts_what_is_there_sets_our_secret_and_leaves_others_alone() {
    // Two webhooks a page, so the webhook and subscription listings both follow a cursor.
    let mock = mock(2);
    for n in 0..3 {
        mock.add_webhook(&format!("https://other.example.com/{n}"), Some("theirs"));
    }
    let ours = mock.add_webhook(HOOK, Some("an-old-secret"));
    let theirs: i64 = mock.registered().webhooks[0].id.parse().unwrap();
    let id: i64 = ours.parse().unwrap();
    let stale_call = mock.add_subscription("call", json!({"endpoint_id": id, "call_states": ["hangup"], "enabled": false}));
    let scoped_call = mock.add_subscription("call", json!({"endpoint_id": id, "call_states": ["hangup"], "target_type": "user", "target_id": 7}));
    let other_call = mock.add_subscription("call", json!({"endpoint_id": theirs, "call_states": STATES}));
    let sms = mock.add_subscription("sms", json!({"endpoint_id": id, "direction": "all"}));
    let sms_again = mock.add_subscription("sms", json!({"endpoint_id": id, "direction": "inbound"}));
    let local_contacts = mock.add_subscription("contact", json!({"endpoint_id": id, "contact_type": "local"}));

    let dialpad = connection(&mock.base_url(), KEY);
    let registration = dialpad.register(&wanted(&STATES), &Secret::new(SECRET)).await.unwrap();
    assert_eq!(registration.webhook_id, ours, "the webhook with our hook_url is reused");
    assert_eq!(registration.call_subscription.as_deref(), Some(stale_call.as_str()), "the company-wide one, updated");
    assert_eq!(registration.sms_subscription.as_deref(), Some(sms.as_str()));
    let contact = registration.contact_subscription.clone().unwrap();
    assert!(![local_contacts.as_str(), sms.as_str()].contains(&contact.as_str()), "a local-contact subscription is another subscription");

    let requests: Vec<String> = lines(&mock, 0).into_iter().filter(|l| !l.starts_with("GET")).collect();
    assert_eq!(
        requests,
        [
            format!("PATCH /api/v2/webhooks/{ours} → 200"),
            format!("PATCH /api/v2/subscriptions/call/{stale_call} → 200"),
            format!("DELETE /api/v2/subscriptions/sms/{sms_again} → 200"),
            "POST /api/v2/subscriptions/contact → 200".to_string(),
        ]
    );
    let gets = lines(&mock, 0).iter().filter(|l| l.starts_with("GET /api/v2/webhooks")).count();
    assert_eq!(gets, 2, "4 webhooks, 2 a page: {:?}", lines(&mock, 0));
    assert_eq!(body(&mock, mock.requests().iter().position(|r| r.method == "PATCH").unwrap()), json!({"secret": "REDACTED"}));

    let registered = mock.registered();
    assert_eq!(registered.webhooks.len(), 4, "no new webhook");
    assert_eq!(registered.webhooks.iter().find(|w| w.id == ours).unwrap().secret.as_deref(), Some(SECRET), "our secret set");
    let find = |id: &str| registered.subscriptions.iter().find(|s| s.id == id).cloned();
    let updated = find(&stale_call).unwrap();
    assert!(updated.enabled);
    assert_eq!(updated.proto["call_states"], json!(STATES));
    assert_eq!(find(&scoped_call).unwrap().proto["call_states"], json!(["hangup"]), "a subscription scoped to one user is left alone");
    assert_eq!(find(&other_call).unwrap().webhook_id.as_deref(), Some(theirs.to_string().as_str()), "another webhook's is left alone");
    assert!(find(&sms_again).is_none(), "a duplicate would deliver every message twice");
    assert!(find(&local_contacts).is_some());
}

#[tokio::test]
async fn status_names_each_problem_and_registering_again_repairs_it() {
    let mock = mock(25);
    let dialpad = connection(&mock.base_url(), KEY);
    let want = wanted(&STATES);
    let registration = dialpad.register(&want, &Secret::new(SECRET)).await.unwrap();

    let before = mock.requests().len();
    let status = dialpad.status(&registration, &want).await.unwrap();
    assert!(status.is_healthy(), "{status}");
    assert_eq!(status.parts.len(), 4);
    let call = registration.call_subscription.clone().unwrap();
    let (sms, contact) = (registration.sms_subscription.clone().unwrap(), registration.contact_subscription.clone().unwrap());
    assert_eq!(
        lines(&mock, before),
        [
            format!("GET /api/v2/webhooks/{} → 200", registration.webhook_id),
            format!("GET /api/v2/subscriptions/call/{call} → 200"),
            format!("GET /api/v2/subscriptions/sms/{sms} → 200"),
            format!("GET /api/v2/subscriptions/contact/{contact} → 200"),
        ]
    );

    // Behind its back: the call subscription deleted, the SMS one disabled.
    assert!(mock.remove_subscription(&call));
    assert!(mock.set_subscription_enabled(&sms, false));
    let status = dialpad.status(&registration, &want).await.unwrap();
    eprintln!("status after changes behind its back:\n{status}");
    assert!(!status.is_healthy());
    let calls = status.part(Part::Subscription(SubscriptionKind::Call)).unwrap();
    assert!(!calls.exists);
    assert_eq!(calls.problems.len(), 1);
    assert_eq!(calls.id.as_deref(), Some(call.as_str()), "which one");
    assert!(calls.problems[0].what.contains("no longer exists"), "{status}");
    assert!(status.to_string().contains(&format!("call subscription {call}: it no longer exists")), "{status}");
    assert!(calls.problems[0].todo.contains("connect Dialpad again"), "{status}");
    let texts = status.part(Part::Subscription(SubscriptionKind::Sms)).unwrap();
    assert!(texts.exists && texts.problems[0].what.contains("disabled"), "{status}");
    assert!(status.part(Part::Webhook).unwrap().problems.is_empty() && status.part(Part::Subscription(SubscriptionKind::Contact)).unwrap().problems.is_empty());
    assert_eq!(status.problems().count(), 2);

    // The sync now wants one more state: the (new) subscription lacks it.
    let mut more = want.clone();
    more.call_states.push("voicemail".into());
    let repaired = dialpad.register(&want, &Secret::new(SECRET)).await.unwrap();
    assert_ne!(repaired.call_subscription.as_deref(), Some(call.as_str()), "recreated");
    assert_eq!(repaired.sms_subscription, registration.sms_subscription, "re-enabled in place");
    let status = dialpad.status(&repaired, &want).await.unwrap();
    assert!(status.is_healthy(), "{status}");
    let status = dialpad.status(&repaired, &more).await.unwrap();
    let lacks: Vec<String> = status.problems().map(|(part, p)| format!("{part}: {}", p.what)).collect();
    assert_eq!(lacks, ["call subscription: it lacks the call states voicemail"]);
    assert_eq!(mock.registered().subscriptions.len(), 3);

    // The webhook gone: said first, and the subscriptions now deliver to nothing.
    let webhook_id = repaired.webhook_id.clone();
    assert!(dialpad.delete_webhook(&webhook_id).await.unwrap());
    let status = dialpad.status(&repaired, &want).await.unwrap();
    let webhook = status.part(Part::Webhook).unwrap();
    assert!(!webhook.exists && webhook.problems[0].what.contains("no longer exists"), "{status}");
    assert!(status.part(Part::Subscription(SubscriptionKind::Sms)).unwrap().problems[0].what.contains("delivers to no webhook"), "{status}");

    // A registration without the subscription the sync now wants.
    let partial = Registration { sms_subscription: None, ..registration.clone() };
    let status = dialpad.status(&partial, &want).await.unwrap();
    assert!(status.part(Part::Subscription(SubscriptionKind::Sms)).unwrap().problems[0].what.contains("no SMS subscription is registered"), "{status}");
}

#[tokio::test]
async fn unregister_deletes_the_subscriptions_then_the_webhook_and_tolerates_what_is_gone() {
    let mock = mock(25);
    let dialpad = connection(&mock.base_url(), KEY);
    let registration = dialpad.register(&wanted(&STATES), &Secret::new(SECRET)).await.unwrap();
    let (call, sms, contact) =
        (registration.call_subscription.clone().unwrap(), registration.sms_subscription.clone().unwrap(), registration.contact_subscription.clone().unwrap());
    assert!(mock.remove_subscription(&sms));

    let before = mock.requests().len();
    dialpad.unregister(&registration).await.unwrap();
    assert_eq!(
        lines(&mock, before),
        [
            format!("DELETE /api/v2/subscriptions/call/{call} → 200"),
            format!("DELETE /api/v2/subscriptions/sms/{sms} → 404"),
            format!("DELETE /api/v2/subscriptions/contact/{contact} → 200"),
            format!("DELETE /api/v2/webhooks/{} → 200", registration.webhook_id),
        ]
    );
    assert!(mock.registered().is_empty(), "{:?}", mock.registered());
    dialpad.unregister(&registration).await.expect("everything already gone is no error");
    assert!(lines(&mock, before + 4).iter().all(|l| l.ends_with("→ 404")));

    // The registration is what the host stores.
    let stored = serde_json::to_string(&registration).unwrap();
    assert_eq!(serde_json::from_str::<Registration>(&stored).unwrap(), registration);
}

#[tokio::test]
async fn refusals_and_failures_are_typed() {
    let mock = mock(25);
    let wrong_key = connection(&mock.base_url(), "not-the-key").register(&wanted(&STATES), &Secret::new(SECRET)).await;
    assert!(matches!(&wrong_key, Err(ConnectError::Refused { status: 401, .. })), "{wrong_key:?}");

    let dialpad = connection(&mock.base_url(), KEY);
    let bad_state = dialpad.register(&wanted(&["hangup", "transferred"]), &Secret::new(SECRET)).await;
    match &bad_state {
        Err(ConnectError::Refused { status: 400, reason }) => assert!(reason.contains("transferred") && reason.contains("call subscription"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(!CALL_STATES.contains(&"transferred"), "Dialpad has no such state");

    mock.fail_with(Some(503));
    let down = dialpad.register(&wanted(&STATES), &Secret::new(SECRET)).await;
    assert!(matches!(down, Err(ConnectError::Refused { status: 503, .. })), "{down:?}");
    mock.fail_with(None);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = connection(&format!("http://127.0.0.1:{port}"), KEY).webhooks().await;
    assert!(matches!(nowhere, Err(ConnectError::Transport(_))), "{nowhere:?}");
    let forged = dialpad.subscription(SubscriptionKind::Call, "1/../../webhooks").await;
    assert!(matches!(forged, Err(ConnectError::Malformed(_))), "an id cannot change the path: {forged:?}");

    // A listing that hands out its cursor again ends with an error, not a loop.
    let looping = DialpadMock::start(DialpadMockOptions { api_key: KEY.into(), page_size: 1 }).unwrap();
    looping.add_webhook("https://a.example.com/", None);
    looping.add_webhook("https://b.example.com/", None);
    let lister = connection(&looping.base_url(), KEY);
    assert_eq!(lister.webhooks().await.unwrap().len(), 2, "two pages");
    looping.repeat_first_page(true);
    match lister.webhooks().await {
        Err(ConnectError::Malformed(why)) => assert!(why.contains("twice"), "{why}"),
        other => panic!("{other:?}"),
    }
    let paged = lines(&looping, 2);
    assert!(paged.len() == 2 && paged[1].starts_with("GET /api/v2/webhooks?cursor="), "{paged:?}");
}

const CLIENT_ID: &str = "dialpad-app-1";
const CLIENT_SECRET: &str = "dialpad-app-secret-2b7f";
const REDIRECT: &str = "https://sync.example.com/oauth/dialpad/callback";

/// GETs an absolute loopback URL without following a redirect: (status, Location).
fn get_no_redirect(url: &str) -> (u16, Option<String>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream.write_all(format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let location = response.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_string()));
    (status, location)
}

/// The user's round trip: the authorize URL, approved at once; the code and state it returns.
fn approve(app: &DialpadOAuthApp, state: &str, pkce: &Pkce) -> (String, String) {
    let (status, location) = get_no_redirect(&app.authorize_url(state, pkce));
    assert_eq!(status, 302);
    let location = location.unwrap();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, REDIRECT);
    let pairs: std::collections::HashMap<String, String> = url_pairs(query);
    (pairs["code"].clone(), pairs["state"].clone())
}

fn url_pairs(query: &str) -> std::collections::HashMap<String, String> {
    query.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_string(), String::from_utf8(percent_decode(v)).unwrap())).collect()
}

/// Form decoding (`+` is a space), enough for the mock's redirect.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[tokio::test]
async fn oauth_with_pkce_end_to_end() {
    let mock = mock(25);
    mock.add_oauth_client(DialpadOAuthClient {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![REDIRECT.into()],
        access_token_ttl: Duration::from_secs(1800),
    });
    let app = DialpadOAuthApp {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        redirect_uri: REDIRECT.into(),
        scopes: vec!["recordings_export".into()],
        authorize_base: mock.base_url(),
        timeout: Duration::from_secs(10),
    };

    // Another verifier than the challenge's is refused, and spends the code.
    let pkce = Pkce::generate();
    let (code, state) = approve(&app, "state /1", &pkce);
    assert_eq!(state, "state /1");
    let wrong = app.exchange_code(&code, &Pkce::generate()).await;
    match &wrong {
        Err(ConnectError::Refused { status: 400, reason }) => assert!(reason.contains("code_verifier does not match"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(app.exchange_code(&code, &pkce).await, Err(ConnectError::Refused { status: 400, .. })), "a code is single use");
    let wrong_app = DialpadOAuthApp { client_secret: Secret::new("nope"), ..app.clone() };
    let (code, _) = approve(&app, "s2", &pkce);
    assert!(matches!(wrong_app.exchange_code(&code, &pkce).await, Err(ConnectError::Refused { status: 401, .. })));

    let (code, _) = approve(&app, "s3", &pkce);
    let tokens = app.exchange_code(&code, &pkce).await.unwrap();
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(1800)));
    let first_refresh = tokens.refresh.clone().expect("a refresh token");

    // The access token works wherever the API key does.
    let as_user = connection(&mock.base_url(), tokens.access.expose());
    let registration = as_user.register(&wanted(&STATES), &Secret::new(SECRET)).await.unwrap();
    assert!(as_user.status(&registration, &wanted(&STATES)).await.unwrap().is_healthy());

    let refreshed = app.refresh(&first_refresh).await.unwrap();
    assert_ne!(refreshed.access, tokens.access);
    assert_ne!(refreshed.refresh.as_ref(), Some(&first_refresh), "rotated");
    assert!(matches!(app.refresh(&first_refresh).await, Err(ConnectError::Refused { status: 400, .. })), "the old refresh token is spent");
    connection(&mock.base_url(), refreshed.access.expose()).unregister(&registration).await.unwrap();
    assert!(mock.registered().is_empty());

    let log = format!("{:?}", mock.requests());
    for secret in [CLIENT_SECRET, pkce.verifier.expose(), &code, first_refresh.expose(), SECRET] {
        assert!(!log.contains(secret), "the mock's log holds a secret: {log}");
    }
    let tokens_sent: Vec<Value> =
        mock.requests().iter().filter(|r| r.path_and_query == "/oauth2/token").map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap()).collect();
    assert_eq!(
        tokens_sent.last().unwrap(),
        &json!({"grant_type": "refresh_token", "refresh_token": "REDACTED", "client_id": CLIENT_ID, "client_secret": "REDACTED"})
    );
    assert_eq!(
        tokens_sent[0],
        json!({"grant_type": "authorization_code", "code": "REDACTED", "code_verifier": "REDACTED", "client_id": CLIENT_ID, "client_secret": "REDACTED"})
    );
}

/// The operation of the spec a request is for, and whether the request reached it.
fn operation(method: &str, path_and_query: &str) -> String {
    let path = path_and_query.split('?').next().unwrap();
    let template: Vec<&str> = path.split('/').map(|s| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { "{id}" } else { s }).collect();
    format!("{method} {}", template.join("/"))
}

/// Every kind of request the client sends, through the real client, against Prism serving
/// Dialpad's spec (answers built from the schemas): none breaks the spec.
#[tokio::test]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
async fn every_connect_request_conforms_to_dialpads_spec() {
    let prism = DialpadPrism::start(false);
    let dialpad = connection(&prism.base_url, KEY);
    let secret = Secret::new(SECRET);
    let want = wanted(&STATES);
    let mut outcomes = Vec::new();
    let mut note = |what: &str, result: String| outcomes.push(format!("{what}: {result}"));

    // Prism keeps no state and answers with generated ids: each request is sent on its own.
    note("webhooks", format!("{:?}", dialpad.webhooks().await.map(|w| w.len())));
    note("create_webhook", format!("{:?}", dialpad.create_webhook(HOOK, &secret).await.map(|w| w.id)));
    note("set_webhook_secret", format!("{:?}", dialpad.set_webhook_secret("1000", &secret).await.map(|w| w.id)));
    note("webhook", format!("{:?}", dialpad.webhook("1000").await.map(|w| w.is_some())));
    for events in [Events::Calls(STATES.iter().map(|s| s.to_string()).collect()), Events::Sms, Events::Contacts] {
        let kind = events.kind();
        note("subscriptions", format!("{:?}", dialpad.subscriptions(kind).await.map(|s| s.len())));
        note("create_subscription", format!("{:?}", dialpad.create_subscription("1000", &events).await.map(|s| s.id)));
        note("update_subscription", format!("{:?}", dialpad.update_subscription("1001", &events).await.map(|s| s.id)));
        note("subscription", format!("{:?}", dialpad.subscription(kind, "1001").await.map(|s| s.is_some())));
        note("delete_subscription", format!("{:?}", dialpad.delete_subscription(kind, "1001").await));
    }
    note("delete_webhook", format!("{:?}", dialpad.delete_webhook("1000").await));
    let registration = Registration {
        webhook_id: "1000".into(),
        hook_url: HOOK.into(),
        call_subscription: Some("1001".into()),
        sms_subscription: Some("1002".into()),
        contact_subscription: Some("1003".into()),
    };
    note("register", format!("{:?}", dialpad.register(&want, &secret).await.map(|r| r.webhook_id)));
    note("status", format!("{:?}", dialpad.status(&registration, &want).await.map(|s| s.problems().count())));
    note("unregister", format!("{:?}", dialpad.unregister(&registration).await));

    let app = DialpadOAuthApp {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        redirect_uri: REDIRECT.into(),
        scopes: vec!["recordings_export".into(), "message_content_export".into()],
        authorize_base: prism.base_url.clone(),
        timeout: Duration::from_secs(10),
    };
    let pkce = Pkce::generate();
    note("exchange_code", format!("{:?}", app.exchange_code("prism-code", &pkce).await.map(|t| t.refresh.is_some())));
    note("refresh", format!("{:?}", app.refresh(&Secret::new("prism-refresh")).await.map(|t| t.refresh.is_some())));
    // The authorize URL is the browser's request, not the client's: sent as the browser would.
    let authorize = app.authorize_url("state-1", &pkce);
    let answer = prism.send_raw("GET", authorize.strip_prefix(&prism.base_url).unwrap(), &[], None);
    note("authorize_url", format!("{}", answer.status));

    let exchanges = prism.exchanges();
    for line in &outcomes {
        eprintln!("prism-dialpad: {line}");
    }
    for e in &exchanges {
        eprintln!("prism-dialpad: {}", e.line());
    }
    let found = request_violations(&exchanges);
    let defects = response_defects(&exchanges);
    eprintln!("prism-dialpad: {} requests, {} request violations, {} response defects", exchanges.len(), found.len(), defects.len());
    for v in &found {
        eprintln!("prism-dialpad: violation: {v}");
    }
    assert!(found.is_empty(), "Prism found {} request(s) that break Dialpad's spec:\n{}", found.len(), found.join("\n"));
    let refused: Vec<String> = exchanges.iter().filter(|e| !(200..300).contains(&e.status)).map(Exchange::line).collect();
    assert!(refused.is_empty(), "with answers built from the schemas, every request is answered 2xx: {refused:#?}");

    let reached: std::collections::BTreeSet<String> = exchanges.iter().map(|e| operation(&e.method, &e.path_and_query)).collect();
    let mut expected = vec![
        "GET /api/v2/webhooks",
        "POST /api/v2/webhooks",
        "GET /api/v2/webhooks/{id}",
        "PATCH /api/v2/webhooks/{id}",
        "DELETE /api/v2/webhooks/{id}",
        "POST /oauth2/token",
        "GET /oauth2/authorize",
    ];
    let per_kind: Vec<String> = ["call", "sms", "contact"]
        .iter()
        .flat_map(|k| {
            [
                "GET /api/v2/subscriptions/K",
                "POST /api/v2/subscriptions/K",
                "GET /api/v2/subscriptions/K/{id}",
                "PATCH /api/v2/subscriptions/K/{id}",
                "DELETE /api/v2/subscriptions/K/{id}",
            ]
            .map(|o| o.replace("/K", &format!("/{k}")))
        })
        .collect();
    expected.extend(per_kind.iter().map(String::as_str));
    for op in &expected {
        assert!(reached.contains(*op), "{op} never reached Prism: {reached:?}");
    }
    assert!(exchanges.iter().any(|e| e.path_and_query.contains("cursor=")), "a listing followed a cursor");
    assert!(exchanges.iter().filter(|e| e.path_and_query.starts_with("/oauth2/")).all(|e| e.shimmed));
    assert!(exchanges.iter().all(|e| !e.path_and_query.contains(SHIM_KEY)), "the shim is the proxy's, not the client's");
}

/// A request the judge must refuse: method, path, headers, body, the status, and a word of
/// the violation.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Option<&'a str>, u16, &'a str);

/// The judge works on this spec: what the client must not send is refused, the spec's own
/// defects show as such, and the shim is needed for the token endpoint.
#[test]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
fn prism_refuses_what_dialpads_spec_forbids() {
    let prism = DialpadPrism::start(true);
    let json = [("Authorization", "Bearer k"), ("Content-Type", "application/json")];
    let cases: [Case; 7] = [
        ("POST", "/api/v2/subscriptions/call", &json, Some(r#"{"endpoint_id":1000,"call_states":["hangup","transferred"]}"#), 422, "call_states"),
        ("POST", "/api/v2/subscriptions/call", &json, Some(r#"{"endpoint_id":"1000","call_states":["hangup"]}"#), 422, "endpoint_id"),
        ("POST", "/api/v2/subscriptions/sms", &json, Some(r#"{"endpoint_id":1000}"#), 422, "direction"),
        ("PATCH", "/api/v2/subscriptions/contact/1", &json, Some(r#"{"enabled":true}"#), 422, "contact_type"),
        ("DELETE", "/api/v2/subscriptions/sms/abc", &json, None, 422, "id"),
        ("GET", "/api/v2/webhooks", &[], None, 401, "UNAUTHORIZED"),
        (
            "POST",
            "/oauth2/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some("grant_type=refresh_token&refresh_token=r&client_id=c&client_secret=s"),
            415,
            "INVALID_CONTENT_TYPE",
        ),
    ];
    for (method, path, headers, body, status, needle) in cases {
        let answer = prism.send_raw(method, path, headers, body);
        let exchange = prism.take();
        let found = request_violations(&exchange);
        eprintln!("prism-dialpad: {method} {path} {} → {}: {found:?}", body.unwrap_or(""), answer.status);
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert!(found.len() == 1 && found[0].contains(needle), "{method} {path}: {found:?}");
        assert!(!flagged(&exchange[0]), "Prism's own refusals carry no sl-violations header on this spec");
    }

    // The spec's examples write int64 ids as strings: a defect of the spec, not of the request.
    let answer = prism.send_raw("GET", "/api/v2/webhooks", &[("Authorization", "Bearer k")], None);
    let exchange = prism.take();
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert!(request_violations(&exchange).is_empty());
    let defects = response_defects(&exchange);
    assert!(defects.iter().any(|d| d.contains("id must be integer")), "{defects:?}");
    eprintln!("prism-dialpad: spec defect: {defects:?}");

    // The spec's global security covers the token endpoint too: without the shim Prism refuses
    // the very request that gets a key (sent here straight to Prism).
    let body = r#"{"grant_type":"refresh_token","refresh_token":"r","client_id":"c","client_secret":"s"}"#;
    let unshimmed = raw(&prism.prism_url, "POST", "/oauth2/token", &[("Content-Type", "application/json")], body);
    assert_eq!(unshimmed, 401, "the spec's global security applies to /oauth2/token");
    let shimmed = prism.send_raw("POST", "/oauth2/token", &[("Content-Type", "application/json")], Some(body));
    assert_eq!(shimmed.status, 200, "{}", shimmed.body);
}

/// One request straight to a server: its status.
fn raw(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let authority = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    stream.write_all(format!("{head}\r\n{body}").as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}
