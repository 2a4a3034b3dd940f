//! The same component on a stock host: served through its `wasi:http/incoming-handler` export
//! the way `wasmtime serve -Scli -Shttp -Sconfig -Skeyvalue` serves it
//! (`host_test::stock_host`), with the configuration given as the README's command line gives
//! it, against the mock Contacts API. No credential injection (the token is in the
//! configuration), no durable key-value store (the plugin reads HighLevel back instead).

use bytes::Bytes;
use e2e_tests::*;
use host_test::ghl_mock::{MockOptions, MockServer, RateLimit};
use host_test::stock_host::{StockComponent, StockHost, StockServer};
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

/// The plugin compiled and linked once per process, as `wasmtime serve` links it.
fn component() -> &'static StockComponent {
    static COMPONENT: OnceLock<StockComponent> = OnceLock::new();
    COMPONENT.get_or_init(|| StockComponent::from_file(std::path::Path::new(artifacts::PLUGIN_WASM)).expect("linking the plugin as wasmtime serve does"))
}

/// Standard base64 (what `base64 -w0` prints).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8) | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= chunk.len() { char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]) } else { '=' });
        }
    }
    out
}

/// The `wasi:config` variables a `-S` argument gives, parsed as wasmtime's CLI parses `-S`
/// values (`crates/cli-flags/src/opt.rs`): the value is cut at every comma first, then each
/// piece is `option[=value]`, and `config-var`'s value is `KEY=VALUE`, cut at its first `=`.
fn config_vars_of_wasi_flag(flag: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for piece in flag.split(',') {
        let (option, value) = piece.split_once('=').map_or((piece, None), |(o, v)| (o, Some(v)));
        match option {
            "config-var" => {
                let value = value.ok_or("config-var needs KEY=VALUE")?;
                let (key, value) = value.split_once('=').unwrap_or((value, ""));
                vars.push((key.to_string(), value.to_string()));
            }
            "cli" | "http" | "config" | "keyvalue" => {}
            other => return Err(format!("unknown -S / --wasi option: {other}")),
        }
    }
    Ok(vars)
}

/// The README's `-Sconfig-var=config=base64:$(base64 -w0 config.json)`, as the component gets it.
fn config_vars(config: &Value) -> Vec<(String, String)> {
    config_vars_of_wasi_flag(&format!("config-var=config=base64:{}", base64(config.to_string().as_bytes()))).unwrap()
}

/// A mock requiring [`TOKEN`], and the plugin served on loopback with a configuration that
/// targets it and holds the token (`extra` is merged in).
struct Stock {
    mock: MockServer,
    server: StockServer,
}

impl Stock {
    fn new(extra: Value) -> Stock {
        Stock::with(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }, extra)
    }

    fn with(options: MockOptions, extra: Value) -> Stock {
        let mock = MockServer::start(options).unwrap();
        let mut config =
            json!({"api_base": mock.base_url(), "location_id": LOCATION, "token": TOKEN, "retry_base_delay_ms": 1, "platform_secret": PLATFORM_SECRET});
        config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let host = StockHost::with_component(component(), config_vars(&config));
        let server = host.serve(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        Stock { mock, server }
    }

    fn post(&self, path: &str, body: &[u8]) -> Answer {
        request(self.server.addr(), "POST", path, body)
    }

    fn requests(&self) -> Vec<String> {
        self.mock.requests().iter().map(|r| format!("{} {} → {}", r.method, r.path_and_query, r.status)).collect()
    }
}

/// One HTTP exchange as a webhook sender sees it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `(status, type)` of a refusal.
    fn refusal(&self) -> (u16, String) {
        (self.status, self.json()["type"].as_str().unwrap_or_default().to_string())
    }

    /// The paths of a refusal's `problems`.
    fn problem_paths(&self) -> Vec<String> {
        self.json()["problems"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap().to_string()).collect()
    }

    fn operations(&self) -> Vec<(String, u64)> {
        let report = self.json();
        report["operations"].as_array().unwrap().iter().map(|o| (o["operation_id"].as_str().unwrap().to_string(), o["status"].as_u64().unwrap())).collect()
    }
}

/// A plain HTTP/1.1 request over a fresh connection (`Connection: close`), read to the end.
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Answer { status, headers, body: String::from_utf8(body).unwrap() }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[line_end + 2 + size + 2..];
    }
}

const HANGUP: &str = "call_inbound_hangup_completed.json";

#[test]
fn the_configuration_passes_wasmtime_command_line_only_as_base64() {
    let config = json!({"location_id": LOCATION, "token": TOKEN, "api_base": "https://services.leadconnectorhq.com"});
    // As plain JSON, `-Sconfig-var=config={…}` is cut at the first comma: wasmtime refuses it.
    let plain = format!("config-var=config={config}");
    let refused = config_vars_of_wasi_flag(&plain).unwrap_err();
    assert!(refused.starts_with("unknown -S / --wasi option: \""), "{refused}");
    // In base64 it arrives whole.
    let vars = config_vars(&config);
    assert_eq!(vars.len(), 1);
    assert_eq!(vars[0].0, "config");
    assert!(vars[0].1.starts_with("base64:") && !vars[0].1.contains(','));
}

#[test]
fn a_hangup_syncs_one_contact_and_one_note_and_its_redelivery_writes_nothing() {
    let stock = Stock::new(json!({}));
    let first = stock.post("/webhooks/dialpad", &fixture(HANGUP));
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let report = first.json();
    assert_eq!((report["kind"].as_str(), report["outcome"].as_str()), (Some("call"), Some("synced")));
    assert_eq!(report["event_key"], "call:6011482093420544:hangup");
    assert_eq!(report["contact_id"], "contact0000000000001");
    assert_eq!(report["note_id"], "note0000000000000001");
    assert_eq!(first.operations(), [("get-duplicate-contact".into(), 200), ("create-contact".into(), 201), ("create-note".into(), 201)]);
    assert_eq!(
        stock.requests(),
        [
            "GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B13125550187 → 200",
            "POST /contacts/ → 201",
            "POST /contacts/contact0000000000001/notes → 201",
        ]
    );
    // No host injects the credential here: the plugin sent the token of its configuration.
    assert!(stock.mock.requests().iter().all(|r| r.authorization_present));
    let contacts = stock.mock.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        (contacts[0]["phone"].as_str(), contacts[0]["locationId"].as_str(), contacts[0]["source"].as_str()),
        (Some("+13125550187"), Some(LOCATION), Some("Dialpad"))
    );
    let notes = stock.mock.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["contactId"], "contact0000000000001");
    let body = notes[0]["body"].as_str().unwrap();
    assert!(body.starts_with("Dialpad call: inbound, completed\nFrom: +13125550187\nWhen: 2026-03-10 15:04 UTC\nDuration: 4m 07s\n"), "{body}");
    assert!(body.ends_with("Dialpad call ID: 6011482093420544"), "{body}");

    // Dialpad delivers it again (to `/` this time). The key-value store of the first request is
    // gone, so the plugin finds the contact and reads its notes back: nothing is written.
    let again = stock.post("/", &fixture(HANGUP));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["outcome"], "unchanged");
    assert_eq!(again.operations(), [("get-duplicate-contact".into(), 200), ("get-all-notes".into(), 200)]);
    assert_eq!(
        stock.requests()[3..],
        ["GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B13125550187 → 200", "GET /contacts/contact0000000000001/notes → 200",]
    );
    assert_eq!(stock.mock.contacts().len(), 1, "no duplicate contact");
    assert_eq!(stock.mock.notes(), notes, "still the one note, unchanged");
}

#[test]
fn a_signed_webhook_is_synced_and_a_wrong_signature_is_a_401() {
    let jwt = std::fs::read(format!("{FIXTURES}call_inbound_hangup_completed.jwt")).unwrap();
    let stock = Stock::new(json!({"webhook_secret": FIXTURE_SECRET}));
    let signed = stock.post("/webhooks/dialpad", &jwt);
    assert_eq!(signed.status, 200, "{}", signed.body);
    assert_eq!((signed.json()["event_key"].as_str(), signed.json()["outcome"].as_str()), (Some("call:6011482093420544:hangup"), Some("synced")));
    assert_eq!((stock.mock.contacts().len(), stock.mock.notes().len()), (1, 1));
    // With a secret configured, the same event unsigned is refused too.
    let unsigned = stock.post("/webhooks/dialpad", &fixture(HANGUP));
    assert_eq!(unsigned.refusal(), (401, "invalid-signature".to_string()), "{}", unsigned.body);

    let other = Stock::new(json!({"webhook_secret": "some-other-secret"}));
    let refused = other.post("/webhooks/dialpad", &jwt);
    assert_eq!(refused.refusal(), (401, "invalid-signature".to_string()), "{}", refused.body);
    assert!(!refused.json()["message"].as_str().unwrap().is_empty());
    assert!(other.mock.requests().is_empty(), "a refused webhook sends nothing");
}

#[test]
fn malformed_bodies_are_400s_that_write_nothing() {
    let stock = Stock::new(json!({}));
    let bad = stock.post("/webhooks/dialpad", b"{\"call_id\": 12, \"state\": ");
    assert_eq!(bad.refusal(), (400, "malformed-event".to_string()), "{}", bad.body);
    let platform = stock.post("/events/platform", &signed_platform_event(r#"{"type": "task.created", "task": {"title": "x", "due": "tomorrow"}}"#));
    assert_eq!(platform.refusal(), (400, "invalid-input".to_string()), "{}", platform.body);
    assert_eq!(platform.problem_paths(), ["/id", "/task/ref", "/task/due", "/contact"]);
    assert!(stock.mock.requests().is_empty());
}

#[test]
fn a_platform_task_event_creates_the_task() {
    let stock = Stock::new(json!({}));
    let dana = stock.mock.seed_contact(json!({"locationId": LOCATION, "firstName": "Dana", "phone": "+12065550174"}));
    let event = json!({"id": "evt-2001", "type": "task.created", "contact": {"phone": "(206) 555-0174"},
        "task": {"ref": "crm-task-17", "title": "Prepare Whitfield renewal", "body": "Renewal due next month.", "due": "2026-03-13T09:00:00-06:00"}});
    let answer = stock.post("/events/platform", &signed_platform_event(&event.to_string()));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!((answer.json()["kind"].as_str(), answer.json()["outcome"].as_str()), (Some("task"), Some("synced")));
    assert_eq!(answer.json()["contact_id"], dana.as_str());
    assert_eq!(
        stock.requests(),
        ["GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B12065550174 → 200".to_string(), format!("POST /contacts/{dana}/tasks → 201"),]
    );
    let tasks = stock.mock.tasks();
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(
        (t["contactId"].as_str(), t["title"].as_str(), t["body"].as_str(), t["dueDate"].as_str(), t["completed"].as_bool()),
        (Some(dana.as_str()), Some("Prepare Whitfield renewal"), Some("Renewal due next month."), Some("2026-03-13T09:00:00-06:00"), Some(false))
    );
}

/// Issue 14 on a stock host, where the component's own HTTP handler is the door: an unsigned
/// platform event with a webhook secret set (it used to write a note on the contact found by
/// phone), a signed one while platform events are off, and a signed webhook that expired in
/// 2000 are all 401s that send and write nothing; a fresh signed one goes through.
#[test]
fn unsigned_platform_events_and_expired_tokens_are_401s_that_write_nothing() {
    let note = json!({"id": "evt-forged", "type": "note.created", "contact": {"phone": "(206) 555-0174"}, "note": {"ref": "n-1", "body": "forged"}});
    let mut old = serde_json::from_slice::<Value>(&fixture(HANGUP)).unwrap();
    old["iat"] = json!(946_684_800);
    old["exp"] = json!(946_688_400);
    let old = host_test::jwt::sign(old.to_string().as_bytes(), FIXTURE_SECRET);
    for extra in [json!({"webhook_secret": FIXTURE_SECRET}), json!({"webhook_secret": FIXTURE_SECRET, "platform_secret": null})] {
        let stock = Stock::new(extra.clone());
        stock.mock.seed_contact(json!({"locationId": LOCATION, "firstName": "Dana", "phone": "+12065550174"}));
        let unsigned = stock.post("/events/platform", note.to_string().as_bytes());
        assert_eq!(unsigned.refusal(), (401, "invalid-signature".to_string()), "{extra}: {}", unsigned.body);
        let expired = stock.post("/webhooks/dialpad", old.as_bytes());
        assert_eq!(expired.refusal(), (401, "invalid-signature".to_string()), "{}", expired.body);
        assert!(expired.json()["message"].as_str().unwrap().starts_with("JWT expired: exp 946688400"), "{}", expired.body);
        let signed = stock.post("/events/platform", &signed_platform_event(&note.to_string()));
        let off = extra.get("platform_secret").is_some_and(Value::is_null);
        if off {
            assert_eq!(signed.refusal(), (401, "invalid-signature".to_string()), "{}", signed.body);
            assert!(signed.json()["message"].as_str().unwrap().contains("platform events are off"), "{}", signed.body);
            assert!(stock.mock.requests().is_empty(), "{:?}", stock.requests());
            assert!(stock.mock.notes().is_empty());
        } else {
            assert_eq!(signed.status, 200, "{}", signed.body);
            assert_eq!(stock.mock.notes().len(), 1, "the signed note only");
        }
    }
}

#[test]
fn health_unknown_paths_and_wrong_methods() {
    let stock = Stock::new(json!({}));
    let health = request(stock.server.addr(), "GET", "/healthz", b"");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let get = request(stock.server.addr(), "GET", "/webhooks/dialpad", b"");
    assert_eq!(get.refusal(), (405, "method-not-allowed".to_string()));
    assert_eq!(get.header("allow"), Some("POST"));
    let post_health = stock.post("/healthz", b"{}");
    assert_eq!((post_health.refusal(), post_health.header("allow")), ((405, "method-not-allowed".to_string()), Some("GET")));
    assert_eq!(stock.post("/webhooks/zoom", &fixture(HANGUP)).refusal(), (404, "unknown-path".to_string()));
    assert!(stock.mock.requests().is_empty());
}

#[test]
fn failures_a_sender_should_retry_are_5xx() {
    // The Contacts API is down: the port is held (bound, never listening), so connections to it
    // are refused and no other test can take it meanwhile.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let api_base = format!("http://{}", held.local_addr().unwrap());
    let stock = Stock::new(json!({"api_base": api_base, "max_attempts": 2}));
    let down = stock.post("/webhooks/dialpad", &fixture(HANGUP));
    assert_eq!(down.refusal(), (502, "transport".to_string()), "{}", down.body);

    // HighLevel keeps answering 429: 503, with the wait it asked for.
    let limited = Stock::with(
        MockOptions { token: Some(TOKEN.into()), rate_limit: Some(RateLimit { max_requests: 0, window: Duration::from_secs(30) }), ..MockOptions::default() },
        json!({"max_attempts": 1}),
    );
    let answer = limited.post("/webhooks/dialpad", &fixture(HANGUP));
    assert_eq!(answer.refusal(), (503, "rate-limited".to_string()), "{}", answer.body);
    assert_eq!(answer.header("retry-after"), Some("30"));

    // HighLevel refuses the request (here: the token is not the one it expects): 502.
    let refused = Stock::with(MockOptions { token: Some("another-token".into()), ..MockOptions::default() }, json!({}));
    let answer = refused.post("/webhooks/dialpad", &fixture(HANGUP));
    assert_eq!(answer.refusal(), (502, "upstream".to_string()), "{}", answer.body);
    assert_eq!(refused.requests(), ["GET /contacts/search/duplicate?locationId=loc-e2e&number=%2B13125550187 → 401"]);
    assert!(refused.mock.notes().is_empty());
}

#[test]
fn a_bad_configuration_is_a_500_naming_each_problem() {
    let mock = MockServer::start(MockOptions::default()).unwrap();
    let config = json!({"api_base": mock.base_url(), "max_attempts": 0});
    let server = StockHost::with_component(component(), config_vars(&config)).serve(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let answer = request(server.addr(), "POST", "/webhooks/dialpad", &fixture(HANGUP));
    assert_eq!(answer.refusal(), (500, "bad-config".to_string()), "{}", answer.body);
    assert_eq!(answer.problem_paths(), ["/location_id", "/max_attempts"]);
    assert!(mock.requests().is_empty());
}

/// In-process, through the proxy bindings without a socket: bodies over 1 MiB are refused,
/// with or without a `Content-Length`.
#[test]
fn bodies_over_one_mebibyte_are_413s() {
    let mock = MockServer::start(MockOptions::default()).unwrap();
    let host = StockHost::with_component(component(), config_vars(&json!({"api_base": mock.base_url(), "location_id": LOCATION, "token": TOKEN})));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let post = |body: Vec<u8>, declared: bool| {
        let mut builder = http::Request::post("http://stock.test/webhooks/dialpad");
        if declared {
            builder = builder.header("content-length", body.len());
        }
        runtime.block_on(host.handle(builder.body(Bytes::from(body)).unwrap())).unwrap()
    };
    for declared in [true, false] {
        let response = post(vec![b' '; (1 << 20) + 1], declared);
        assert_eq!(response.status(), 413, "with Content-Length: {declared}");
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["type"], "body-too-large");
    }
    // At the limit the body is read, and here judged as an event.
    let response = post(vec![b' '; 1 << 20], true);
    assert_eq!(response.status(), 400);
    assert!(mock.requests().is_empty());
}
