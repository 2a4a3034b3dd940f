//! Unit tests of the mock, through real sockets.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use contacts_api::{Operation, Scope, ValueKind};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::faults::{FaultKind, Faults};
use super::handlers::router;
use super::oauth::OAuthOptions;
use super::options::MockOptions;
use super::rate_limit::RateLimit;
use super::reply::{error_texts, unauthorized};
use super::request_log::RecordedRequest;
use super::server::MockServer;
use super::state::MockState;
use super::validate::{kind_of, violation};

#[path = "tests_conversations.rs"]
mod conversations;
#[path = "tests_marketplace.rs"]
mod marketplace;
#[path = "tests_webhooks.rs"]
mod webhooks;

const LOC: &str = "loc0000000000000001";

/// A response as the tiny test client sees it.
#[derive(Debug)]
struct Resp {
    status: u16,
    body: Value,
    /// Names lowercased.
    headers: Vec<(String, String)>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A deliberately minimal blocking HTTP/1.1 client (`Connection: close`, read to EOF), so
/// the tests exercise the real socket path without adding a client crate.
fn raw(server: &MockServer, method: &str, target: &str, headers: &[(&str, &str)], body: Option<&[u8]>, chunked: bool) -> Resp {
    try_raw(server, method, target, headers, body, chunked).expect("a response, not a dropped connection")
}

/// [`raw`], but `None` when the server closed the connection without a byte of response.
fn try_raw(server: &MockServer, method: &str, target: &str, headers: &[(&str, &str)], body: Option<&[u8]>, chunked: bool) -> Option<Resp> {
    try_raw_at(server.addr(), method, target, headers, body, chunked)
}

/// [`try_raw`] for a server that is not a [`MockServer`].
fn try_raw_at(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: Option<&[u8]>, chunked: bool) -> Option<Resp> {
    let mut stream = TcpStream::connect(addr).expect("connect to mock");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if body.is_some() && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        request.push_str("Content-Type: application/json\r\n");
    }
    let mut bytes = Vec::new();
    match body {
        Some(body) if chunked => {
            request.push_str("Transfer-Encoding: chunked\r\n\r\n");
            bytes.extend_from_slice(request.as_bytes());
            for chunk in body.chunks(7) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        }
        Some(body) => {
            request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            bytes.extend_from_slice(request.as_bytes());
            bytes.extend_from_slice(body);
        }
        None => {
            request.push_str("\r\n");
            bytes.extend_from_slice(request.as_bytes());
        }
    }
    stream.write_all(&bytes).unwrap();
    let response = read_until_closed(&mut stream);
    if response.is_empty() {
        return None;
    }
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("end of response head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut payload = response[split + 4..].to_vec();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        payload = dechunk(&payload);
    }
    let body = if payload.is_empty() { Value::Null } else { serde_json::from_slice(&payload).expect("JSON response") };
    let headers =
        head.lines().skip(1).filter_map(|line| line.split_once(':')).map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned())).collect();
    Some(Resp { status, body, headers })
}

/// Everything the server sends until it closes the connection. A reset counts as closed
/// (a server that closes with unread data resets); a read timeout fails the test.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => response,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => response,
        Err(e) => panic!("the mock neither answered nor closed the connection: {e}"),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

const GOOD: &[(&str, &str)] = &[("Authorization", "Bearer test-token"), ("Version", "2021-07-28")];

/// An authorized, versioned API call.
fn call(server: &MockServer, method: &str, target: &str, body: Option<Value>) -> Resp {
    let body = body.map(|b| b.to_string());
    raw(server, method, target, GOOD, body.as_deref().map(str::as_bytes), false)
}

fn start() -> MockServer {
    MockServer::start(MockOptions::default()).unwrap()
}

fn create(server: &MockServer, fields: Value) -> Resp {
    let mut body = json!({ "locationId": LOC });
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    call(server, "POST", "/contacts/", Some(body))
}

#[test]
fn missing_or_wrong_bearer_is_401() {
    let server = MockServer::start(MockOptions { token: Some("right".into()), ..MockOptions::default() }).unwrap();
    let unauthorized = json!({"statusCode":401,"message":"Invalid token: access token is invalid","error":"Unauthorized"});
    let version = ("Version", "2021-07-28");
    for headers in [vec![version], vec![("Authorization", "Basic right"), version], vec![("Authorization", "Bearer wrong"), version]] {
        let r = raw(&server, "GET", "/contacts/x", &headers, None, false);
        assert_eq!((r.status, &r.body), (401, &unauthorized), "{headers:?}");
    }
    // Auth comes before the version check.
    assert_eq!(raw(&server, "GET", "/contacts/x", &[], None, false).status, 401);
    let r = raw(&server, "GET", "/contacts/x", &[("Authorization", "Bearer right"), version], None, false);
    assert_eq!(r.status, 400, "right token gets through to the operation: {:?}", r.body);
    let log = server.requests();
    assert_eq!(log.iter().map(|r| r.authorization_present).collect::<Vec<_>>(), [false, true, true, false, true]);
}

#[test]
fn missing_or_wrong_version_is_400() {
    let server = start();
    let expected = json!({"statusCode":400,"message":"version header must be 2021-07-28"});
    for headers in [vec![("Authorization", "Bearer t")], vec![("Authorization", "Bearer t"), ("Version", "2021-04-15")]] {
        let r = raw(&server, "POST", "/contacts/", &headers, Some(b"{}"), false);
        assert_eq!((r.status, r.body), (400, expected.clone()));
    }
}

#[test]
fn unknown_property_missing_required_and_wrong_type_are_422() {
    let server = start();
    let id = create(&server, json!({})).body["contact"]["id"].as_str().unwrap().to_owned();
    // UpdateContactDto has no gender/locationId: the whitelist comes from the spec.
    let r = call(&server, "PUT", &format!("/contacts/{id}"), Some(json!({ "gender": "male" })));
    assert_eq!((r.status, r.body), (422, json!({"statusCode":422,"message":["property gender should not exist"],"error":"Unprocessable Entity"})));
    // One message per problem.
    let r = call(&server, "POST", "/contacts/", Some(json!({ "dnd": "yes", "tags": "a", "foo": 1 })));
    assert_eq!(r.status, 422);
    let mut messages: Vec<String> = serde_json::from_value(r.body["message"].clone()).unwrap();
    messages.sort();
    assert_eq!(messages, ["dnd must be a boolean value", "locationId should not be empty", "property foo should not exist", "tags must be an array"]);
    // Create does allow gender and companyName; dateOfBirth is a string in practice; null is fine for optional fields.
    let r = create(&server, json!({ "gender": "female", "companyName": "Acme", "dateOfBirth": "1990-09-25", "website": null }));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["contact"]["dateOfBirth"], "1990-09-25");
    assert!(r.body["contact"].get("website").is_none());
    // A missing body is `{}`: the required property is reported.
    let r = call(&server, "POST", &format!("/contacts/{id}/notes"), None);
    assert_eq!(r.body["message"], json!(["body should not be empty"]));
    // Nothing was stored by rejected requests.
    assert_eq!(server.contacts().len(), 2);
}

#[test]
fn malformed_json_is_400_and_chunked_bodies_work() {
    let server = start();
    let r = raw(&server, "POST", "/contacts/", GOOD, Some(b"{\"locationId\": "), false);
    assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Unexpected token in JSON body"})));
    let body = json!({ "locationId": LOC, "firstName": "Ada", "lastName": "Lovelace" }).to_string();
    let r = raw(&server, "POST", "/contacts/", GOOD, Some(body.as_bytes()), true);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["contact"]["name"], "Ada Lovelace");
}

#[test]
fn duplicate_create_is_400_with_meta() {
    let server = start();
    let first = create(&server, json!({ "firstName": "Ada", "phone": "+13125550187", "email": "Ada@Example.com" }));
    assert_eq!(first.status, 201);
    let id = first.body["contact"]["id"].clone();
    let r = create(&server, json!({ "phone": " +13125550187 " }));
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"statusCode":400,"message":"This location does not allow duplicated contacts.",
                   "meta":{"contactId":id,"contactName":"Ada","matchingField":"phone"}})
        )
    );
    let r = create(&server, json!({ "email": "ada@EXAMPLE.com", "phone": "+19999999999" }));
    assert_eq!((r.status, &r.body["meta"]["matchingField"]), (400, &json!("email")));
    // Other locations are independent.
    let r = call(&server, "POST", "/contacts/", Some(json!({ "locationId": "other", "phone": "+13125550187" })));
    assert_eq!(r.status, 201);
    assert_eq!(server.contacts().len(), 2);

    let lenient = MockServer::start(MockOptions { allow_duplicates: true, ..MockOptions::default() }).unwrap();
    assert_eq!(create(&lenient, json!({ "phone": "+13125550187" })).status, 201);
    assert_eq!(create(&lenient, json!({ "phone": "+13125550187" })).status, 201);
}

#[test]
fn duplicate_search_needs_percent_encoded_plus() {
    let server = start();
    let id = create(&server, json!({ "phone": "+13125550187", "email": "a+b@example.com" })).body["contact"]["id"].clone();
    let r = call(&server, "GET", &format!("/contacts/search/duplicate?locationId={LOC}&number=%2B13125550187"), None);
    assert_eq!((r.status, &r.body["contact"]["id"]), (200, &id));
    let r = call(&server, "GET", &format!("/contacts/search/duplicate?locationId={LOC}&number=+13125550187"), None);
    assert_eq!((r.status, r.body), (200, json!({ "contact": null })));
    let r = call(&server, "GET", &format!("/contacts/search/duplicate?locationId={LOC}&email=A%2BB%40example.com"), None);
    assert_eq!(r.body["contact"]["id"], id);
    let r = call(&server, "GET", "/contacts/search/duplicate?number=%2B13125550187", None);
    assert_eq!((r.status, r.body), (422, json!({"statusCode":422,"message":["locationId should not be empty"],"error":"Unprocessable Entity"})));
}

#[test]
fn notes_create_list_get_update() {
    let server = start();
    let contact = create(&server, json!({})).body["contact"]["id"].as_str().unwrap().to_owned();
    let notes = format!("/contacts/{contact}/notes");
    let r = call(&server, "POST", &notes, Some(json!({ "body": "first", "userId": "u1" })));
    assert_eq!(r.status, 201);
    let note = &r.body["note"];
    assert_eq!(
        (&note["id"], &note["body"], &note["userId"], &note["contactId"]),
        (&json!("note0000000000000001"), &json!("first"), &json!("u1"), &json!(contact))
    );
    assert!(note.get("title").is_none());
    call(&server, "POST", &notes, Some(json!({ "body": "second", "pinned": true })));
    let r = call(&server, "GET", &notes, None);
    let bodies: Vec<&Value> = r.body["notes"].as_array().unwrap().iter().map(|n| &n["body"]).collect();
    assert_eq!((r.status, bodies), (200, vec![&json!("first"), &json!("second")]));

    let r = call(&server, "PUT", &format!("{notes}/note0000000000000001"), Some(json!({ "title": "T", "color": "#FFAA00" })));
    assert_eq!(r.status, 200);
    assert_eq!((&r.body["note"]["body"], &r.body["note"]["title"]), (&json!("first"), &json!("T")));
    let r = call(&server, "GET", &format!("{notes}/note0000000000000001"), None);
    assert_eq!(r.body["note"]["color"], "#FFAA00");
    let r = call(&server, "GET", &format!("{notes}/nope"), None);
    assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Note with id nope not found"})));
    let r = call(&server, "POST", "/contacts/ghost/notes", Some(json!({ "body": "x" })));
    assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Contact with id ghost not found"})));
    assert_eq!(server.notes().len(), 2);
}

#[test]
fn add_tags_is_a_union() {
    let server = start();
    let id = create(&server, json!({ "tags": ["a", "b"] })).body["contact"]["id"].as_str().unwrap().to_owned();
    let r = call(&server, "POST", &format!("/contacts/{id}/tags"), Some(json!({ "tags": ["b", "c", "c"] })));
    assert_eq!((r.status, r.body), (201, json!({ "tags": ["a", "b", "c"] })));
    assert_eq!(call(&server, "GET", &format!("/contacts/{id}"), None).body["contact"]["tags"], json!(["a", "b", "c"]));
    let r = call(&server, "POST", &format!("/contacts/{id}/tags"), Some(json!({})));
    assert_eq!(r.body["message"], json!(["tags should not be empty"]));
}

#[test]
fn upsert_matches_email_then_phone_and_overwrites_tags() {
    let server = start();
    let id = create(&server, json!({ "email": "ada@example.com", "phone": "+1555", "tags": ["a", "b"] })).body["contact"]["id"].clone();
    let r = call(&server, "POST", "/contacts/upsert", Some(json!({ "locationId": LOC, "email": "ADA@example.com", "tags": ["c"], "firstName": "Ada" })));
    assert_eq!(r.status, 200);
    assert_eq!((&r.body["new"], &r.body["contact"]["id"], &r.body["contact"]["tags"]), (&json!(false), &id, &json!(["c"])));
    assert_eq!((&r.body["contact"]["phone"], &r.body["contact"]["name"]), (&json!("+1555"), &json!("Ada")));
    assert!(r.body["traceId"].is_string());
    let r = call(&server, "POST", "/contacts/upsert", Some(json!({ "locationId": LOC, "phone": "+1555", "lastName": "L" })));
    assert_eq!((&r.body["new"], &r.body["contact"]["name"]), (&json!(false), &json!("Ada L")));
    let r = call(&server, "POST", "/contacts/upsert", Some(json!({ "locationId": LOC, "email": "new@example.com" })));
    assert_eq!((r.status, &r.body["new"], &r.body["contact"]["id"]), (200, &json!(true), &json!("contact0000000000002")));
    assert_eq!(server.contacts().len(), 2);
}

#[test]
fn get_and_update_contact() {
    let server = start();
    let id = create(&server, json!({ "firstName": "Ada", "email": "Ada@X.com", "tags": ["a"] })).body["contact"]["id"].as_str().unwrap().to_owned();
    let r = call(&server, "PUT", &format!("/contacts/{id}"), Some(json!({ "lastName": "Byron", "tags": ["z"] })));
    assert_eq!((r.status, &r.body["succeded"]), (200, &json!(true)));
    let contact = &r.body["contact"];
    assert_eq!((&contact["name"], &contact["lastNameLowerCase"], &contact["tags"]), (&json!("Ada Byron"), &json!("byron"), &json!(["z"])));
    let got = call(&server, "GET", &format!("/contacts/{id}"), None);
    assert_eq!((got.status, &got.body["contact"]), (200, contact));
    assert_eq!((&contact["emailLowerCase"], &contact["locationId"]), (&json!("ada@x.com"), &json!(LOC)));
    for key in ["dateAdded", "dateUpdated"] {
        let date = contact[key].as_str().unwrap();
        assert_eq!((date.len(), &date[10..11], &date[23..]), (24, "T", "Z"), "{date}");
    }
    let r = call(&server, "GET", "/contacts/nobody", None);
    assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Contact with id nobody not found"})));
    let r = call(&server, "PUT", "/contacts/nobody", Some(json!({})));
    assert_eq!(r.status, 400);
}

#[test]
fn ungranted_scope_is_403() {
    let server = MockServer::start(MockOptions { scopes: vec![Scope::ContactsReadonly], ..MockOptions::default() }).unwrap();
    let r = create(&server, json!({}));
    assert_eq!((r.status, r.body), (403, json!({"statusCode":403,"message":"The token is not authorized for this scope.","error":"Forbidden"})));
    assert_eq!(call(&server, "GET", "/contacts/x", None).status, 400, "readonly operations still work");
}

#[test]
fn unknown_paths_and_methods_are_404() {
    let server = start();
    let r = call(&server, "GET", "/contacts/a/b/c/d/e?x=1", None);
    assert_eq!((r.status, r.body), (404, json!({"statusCode":404,"message":"Cannot GET /contacts/a/b/c/d/e"})));
    assert_eq!(call(&server, "PATCH", "/contacts/x", None).status, 404);
    assert_eq!(call(&server, "GET", "/nothing", None).status, 404);
    assert_eq!(call(&server, "POST", "/contacts/x/tasks/t/completed", Some(json!({}))).status, 404);
    assert_eq!(call(&server, "GET", "/contacts/x/campaigns/c1", None).status, 404);
}

#[test]
fn ids_are_deterministic() {
    let server = start();
    let ids: Vec<Value> = (0..3).map(|i| create(&server, json!({ "email": format!("{i}@x.com") })).body["contact"]["id"].clone()).collect();
    assert_eq!(ids, [json!("contact0000000000001"), json!("contact0000000000002"), json!("contact0000000000003")]);
    assert!(ids.iter().all(|id| id.as_str().unwrap().len() == 20));
    // A seeded id in the way is skipped; a seeded contact without id takes the next one.
    server.seed_contact(json!({ "id": "contact0000000000004", "locationId": LOC }));
    assert_eq!(server.seed_contact(json!({ "locationId": LOC, "firstName": "Seed" })), "contact0000000000005");
    let r = call(&server, "GET", "/contacts/contact0000000000005", None);
    assert_eq!((&r.body["contact"]["name"], &r.body["contact"]["tags"]), (&json!("Seed"), &json!([])));
    let r = call(&server, "POST", "/contacts/contact0000000000001/notes", Some(json!({ "body": "n" })));
    assert_eq!(r.body["note"]["id"].as_str().unwrap().len(), 20);
}

#[test]
fn request_log_records_everything_but_debug_routes() {
    let server = start();
    server.seed_contact(json!({ "locationId": LOC }));
    raw(&server, "GET", "/contacts/contact0000000000001", &[("Version", "2021-07-28")], None, false);
    call(&server, "GET", "/contacts/search/duplicate?locationId=L&number=%2B1555", None);
    call(&server, "POST", "/contacts", Some(json!({ "locationId": LOC })));
    call(&server, "GET", "/contacts/x/y/z/w/v", None);
    assert_eq!(raw(&server, "GET", "/__mock/state", &[], None, false).body["contacts"].as_array().unwrap().len(), 2);
    let logged = raw(&server, "GET", "/__mock/requests", &[], None, false).body;
    let rec = |method: &str, pq: &str, op: Option<&'static str>, status, auth| RecordedRequest {
        method: method.into(),
        path_and_query: pq.into(),
        operation_id: op,
        status,
        authorization_present: auth,
        fault: None,
        body: None,
        at: std::time::Instant::now(),
    };
    let expected = vec![
        rec("GET", "/contacts/contact0000000000001", Some("get-contact"), 401, false),
        rec("GET", "/contacts/search/duplicate?locationId=L&number=%2B1555", Some("get-duplicate-contact"), 200, true),
        rec("POST", "/contacts", Some("create-contact"), 201, true),
        rec("GET", "/contacts/x/y/z/w/v", None, 404, true),
    ];
    assert_eq!(server.requests(), expected);
    assert_eq!(logged, serde_json::to_value(&expected).unwrap());
    assert!(!serde_json::to_string(&server.requests()).unwrap().contains("test-token"));
}

#[test]
fn dropping_the_server_stops_it() {
    let server = start();
    let addr = server.addr();
    assert_eq!(server.base_url(), format!("http://127.0.0.1:{}", addr.port()));
    let _idle = TcpStream::connect(addr).unwrap(); // an idle connection must not block shutdown forever
    drop(server);
    assert!(TcpStream::connect(addr).is_err());
}

// --------------------------------------------------------------------------------------------
// Helpers for the operations added with the table
// --------------------------------------------------------------------------------------------

fn contact_id(server: &MockServer, fields: Value) -> String {
    let r = create(server, fields);
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["contact"]["id"].as_str().unwrap().to_owned()
}

fn state(server: &MockServer) -> Value {
    raw(server, "GET", "/__mock/state", &[], None, false).body
}

/// A value of `kind` that passes validation.
fn minimal(kind: ValueKind) -> Value {
    match kind {
        ValueKind::String => json!("x"),
        ValueKind::Number => json!(1),
        ValueKind::Boolean => json!(true),
        ValueKind::Array => json!(["x"]),
        ValueKind::Object => json!({}),
    }
}

/// The smallest body the table accepts for `op`: its required properties, or `{}`.
fn valid_body(op: &Operation) -> Option<Value> {
    let rules = op.body?;
    let properties = rules.properties(op.api);
    let required = properties.iter().filter(|p| p.required);
    Some(Value::Object(required.map(|p| (p.name.to_owned(), minimal(p.kind(op.api).unwrap_or(ValueKind::Object)))).collect()))
}

/// `op`'s path with `contact` as `{contactId}`, `add` as the bulk `{type}`, `x` for the rest.
fn path_of(op: &Operation, contact: &str) -> String {
    op.render_path(|name| {
        Some(match name {
            "contactId" => contact,
            "type" => "add",
            _ => "x",
        })
    })
    .unwrap()
}

fn messages(r: &Resp) -> Vec<String> {
    serde_json::from_value(r.body["message"].clone()).unwrap_or_default()
}

fn spec_doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(contacts_api::SPEC_JSON).unwrap())
}

/// Asserts that `body` fits the success response schema the official spec declares for
/// `op_id`: types, required properties, nullability, `$ref`s, items. As for request bodies,
/// a value of the type of the spec's own example is accepted where it contradicts the
/// declared type (the bulk-tags `responses` items are declared strings, exemplified objects).
/// Operations whose response has no schema (search, duplicate) pass.
fn conforms(op_id: &str, body: &Value) {
    let op = contacts_api::op(op_id);
    let doc = spec_doc();
    let method = op.method.as_str().to_ascii_lowercase();
    let response = &doc["paths"][op.path][method]["responses"][op.success_status.to_string()];
    let schema = &response["content"]["application/json"]["schema"];
    if schema.is_null() {
        return;
    }
    let mut errors = Vec::new();
    fit(doc, schema, body, "$", None, &mut errors);
    assert!(errors.is_empty(), "{op_id} does not fit its response schema: {errors:?}\n{body:#}");
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn fit(doc: &Value, schema: &Value, value: &Value, at: &str, example: Option<&Value>, errors: &mut Vec<String>) {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => match reference.strip_prefix('#') {
            Some(pointer) => doc.pointer(pointer).unwrap_or_else(|| panic!("no {reference} in the spec")),
            None => return,
        },
        None => schema,
    };
    if value.is_null() {
        if schema["nullable"] != true {
            errors.push(format!("{at} is null"));
        }
        return;
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        fit(doc, part, value, at, None, errors);
    }
    if let Some(options) = schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
        let fits_one = options.iter().any(|option| {
            let mut inner = Vec::new();
            fit(doc, option, value, at, None, &mut inner);
            inner.is_empty()
        });
        if !fits_one {
            errors.push(format!("{at} fits none of its anyOf/oneOf"));
        }
        return;
    }
    let declared = schema["type"].as_str().or_else(|| schema.get("properties").map(|_| "object"));
    let example = schema.get("example").or(example);
    if let Some(declared) = declared {
        let actual = json_type(value);
        if actual != declared && !(declared == "integer" && actual == "number") {
            if example.is_none_or(|e| json_type(e) != actual) {
                errors.push(format!("{at} is {actual}, the schema says {declared}"));
            }
            return;
        }
    }
    match value {
        Value::Object(object) => {
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !object.contains_key(required) {
                    errors.push(format!("{at}.{required} is missing"));
                }
            }
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                if let Some(v) = object.get(name) {
                    fit(doc, property, v, &format!("{at}.{name}"), None, errors);
                }
            }
        }
        Value::Array(items) => {
            let hint = schema["example"].as_array().and_then(|e| e.first());
            for (i, item) in items.iter().enumerate() {
                fit(doc, &schema["items"], item, &format!("{at}[{i}]"), hint, errors);
            }
        }
        _ => {}
    }
}

#[test]
fn the_conformance_checker_catches_wrong_shapes() {
    let panics = |op: &str, body: Value| {
        let op = op.to_owned();
        std::panic::catch_unwind(move || conforms(&op, &body)).is_err()
    };
    assert!(!panics("get-task", json!({ "task": { "id": "t", "completed": true } })));
    assert!(panics("get-task", json!({ "task": { "id": "t", "completed": "yes" } })));
    assert!(panics("get-all-tasks", json!({ "tasks": {} })));
    assert!(panics("add-remove-contact-from-business", json!({ "success": true })));
    assert!(panics("get-contact", json!({ "contact": { "customFields": [{ "id": "a", "value": 1 }] } })));
}

// --------------------------------------------------------------------------------------------
// Validation and routing over the whole table
// --------------------------------------------------------------------------------------------

/// Every rule of every operation comes from the table: required query parameters, required
/// body properties, the whitelist and each property's type.
#[test]
fn validation_follows_the_operations_table() {
    let server = start();
    let contact = contact_id(&server, json!({}));
    let mut checked = 0;
    for op in contacts_api::OPERATIONS {
        let path = path_of(op, &contact);
        let method = op.method.as_str();
        let required_query: Vec<String> = op.query().filter(|p| p.required).map(|p| format!("{} should not be empty", p.name)).collect();
        if !required_query.is_empty() {
            let r = call(&server, method, &path, None);
            assert_eq!((r.status, messages(&r)), (422, required_query), "{}", op.id);
            checked += 1;
        }
        let Some(rules) = op.body.filter(|rules| !rules.open(op.api)) else {
            continue;
        };
        let required: Vec<String> = rules.properties(op.api).iter().filter(|p| p.required).map(|p| format!("{} should not be empty", p.name)).collect();
        if !required.is_empty() {
            let r = call(&server, method, &path, Some(json!({})));
            assert_eq!((r.status, messages(&r)), (422, required), "{}", op.id);
        }
        let mut body = valid_body(op).unwrap();
        body["__unlisted"] = json!(1);
        let r = call(&server, method, &path, Some(body));
        assert_eq!((r.status, messages(&r)), (422, vec!["property __unlisted should not exist".to_owned()]), "{}", op.id);
        for property in rules.properties(op.api) {
            let wrong =
                [json!(12345), json!("s"), json!(true), json!([]), json!({})].into_iter().find(|v| !property.accepts(op.api, kind_of(v).unwrap())).unwrap();
            let mut body = valid_body(op).unwrap();
            body[property.name] = wrong;
            let r = call(&server, method, &path, Some(body));
            assert_eq!((r.status, messages(&r)), (422, vec![violation(property.kind(op.api).unwrap(), property.name)]), "{} {}", op.id, property.name);
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} rules checked");
    assert_eq!(unauthorized().body["message"], "Invalid token: access token is invalid");
    // A non-object JSON body is a 422, not a parse error.
    let r = call(&server, "POST", &format!("/contacts/{contact}/tags"), Some(json!(["a"])));
    assert_eq!((r.status, messages(&r)), (422, vec!["request body must be a JSON object".to_owned()]));
}

#[test]
fn every_operation_on_an_unknown_contact_is_400() {
    let server = start();
    server.seed_contact(json!({ "id": "real", "locationId": LOC }));
    let mut seen = 0;
    for op in contacts_api::OPERATIONS.iter().filter(|op| op.path_params().any(|p| p == "contactId")) {
        let r = call(&server, op.method.as_str(), &path_of(op, "ghost"), valid_body(op));
        assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Contact with id ghost not found"})), "{}", op.id);
        seen += 1;
    }
    assert_eq!(seen, 24);
    // Nothing was created or changed for the unknown contact.
    let s = state(&server);
    assert_eq!(s["notes"], json!([]));
    assert_eq!(s["tasks"], json!([]));
    assert_eq!((&s["campaigns"], &s["workflows"], &s["followers"]), (&json!({}), &json!({}), &json!({})));
}

#[test]
fn write_operations_need_the_write_scope() {
    let server = MockServer::start(MockOptions { scopes: vec![Scope::ContactsReadonly], ..MockOptions::default() }).unwrap();
    let id = server.seed_contact(json!({ "locationId": LOC, "tags": ["a"] }));
    let forbidden = json!({"statusCode":403,"message":"The token is not authorized for this scope.","error":"Forbidden"});
    for op in contacts_api::OPERATIONS {
        let r = call(&server, op.method.as_str(), &path_of(op, &id), valid_body(op));
        if op.scope == Scope::ContactsWrite {
            assert_eq!((r.status, &r.body), (403, &forbidden), "{}", op.id);
        } else {
            assert_ne!(r.status, 403, "{}", op.id);
        }
    }
    // The two bulk operations declare no scope in the spec; they write, so they need write.
    let r = call(&server, "POST", "/contacts/bulk/tags/update/remove", Some(json!({ "contacts": [id], "tags": ["a"], "locationId": LOC })));
    assert_eq!(r.status, 403);
    assert_eq!(server.contacts()[0]["tags"], json!(["a"]), "nothing was written");
    let r = call(&server, "POST", "/contacts/search", Some(json!({ "locationId": LOC, "pageLimit": 10 })));
    assert_eq!((r.status, &r.body["total"]), (200, &json!(1)), "search is a read");
}

// --------------------------------------------------------------------------------------------
// Contacts
// --------------------------------------------------------------------------------------------

#[test]
fn delete_contact_removes_it_and_everything_of_it() {
    let server = start();
    let id = contact_id(&server, json!({ "firstName": "Ada" }));
    let other = contact_id(&server, json!({ "email": "o@x.com" }));
    let base = format!("/contacts/{id}");
    assert_eq!(call(&server, "POST", &format!("{base}/notes"), Some(json!({ "body": "n" }))).status, 201);
    let task = json!({ "title": "t", "dueDate": "2020-10-25T11:00:00Z", "completed": false });
    assert_eq!(call(&server, "POST", &format!("{base}/tasks"), Some(task)).status, 201);
    assert_eq!(call(&server, "POST", &format!("{base}/campaigns/c1"), Some(json!({}))).status, 201);
    assert_eq!(call(&server, "POST", &format!("{base}/workflow/w1"), Some(json!({}))).status, 200);
    assert_eq!(call(&server, "POST", &format!("{base}/followers"), Some(json!({ "followers": ["u1"] }))).status, 201);
    server.seed_appointment(&id, json!({ "title": "Call" }));
    assert_eq!(call(&server, "POST", &format!("/contacts/{other}/notes"), Some(json!({ "body": "kept" }))).status, 201);

    let r = call(&server, "DELETE", &base, None);
    assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
    conforms("delete-contact", &r.body);
    let r = call(&server, "GET", &base, None);
    assert_eq!((r.status, &r.body["message"]), (400, &json!(format!("Contact with id {id} not found"))));
    assert_eq!(call(&server, "DELETE", &base, None).status, 400);
    assert_eq!(server.contacts().len(), 1);
    assert_eq!(server.notes().iter().map(|n| n["body"].clone()).collect::<Vec<_>>(), [json!("kept")]);
    assert!(server.tasks().is_empty() && server.appointments().is_empty());
    let s = state(&server);
    assert_eq!((&s["campaigns"], &s["workflows"], &s["followers"]), (&json!({}), &json!({}), &json!({})));
}

#[test]
fn custom_fields_are_written_as_field_value_and_read_as_value() {
    let server = start();
    let r = create(
        &server,
        json!({ "email": "ada@x.com", "customFields": [
            { "id": "abc", "field_value": "x" },
            { "key": "fav_color", "field_value": "blue" },
            { "id": "num", "key": "age", "field_value": "42" },
            { "field_value": "no id, no key: ignored" },
        ]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    conforms("create-contact", &r.body);
    assert_eq!(
        r.body["contact"]["customFields"],
        json!([{ "id": "abc", "value": "x" }, { "id": "cf_fav_color", "value": "blue" }, { "id": "num", "value": "42" }])
    );
    let id = r.body["contact"]["id"].as_str().unwrap().to_owned();

    // A key maps to the id it already has; "" clears; fields not mentioned are kept.
    let r = call(
        &server,
        "PUT",
        &format!("/contacts/{id}"),
        Some(json!({ "customFields": [
            { "key": "fav_color", "field_value": "red" },
            { "key": "age", "field_value": "43" },
            { "id": "abc", "field_value": "" },
        ]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    conforms("update-contact", &r.body);
    let expected = json!([{ "id": "cf_fav_color", "value": "red" }, { "id": "num", "value": "43" }]);
    assert_eq!(r.body["contact"]["customFields"], expected);
    let got = call(&server, "GET", &format!("/contacts/{id}"), None);
    conforms("get-contact", &got.body);
    assert_eq!(got.body["contact"]["customFields"], expected);
    assert!(!got.body.to_string().contains("field_value"));

    let r = call(
        &server,
        "POST",
        "/contacts/upsert",
        Some(json!({ "locationId": LOC, "email": "ada@x.com", "customFields": [{ "id": "num", "field_value": null }, { "id": "new", "field_value": "v" }] })),
    );
    conforms("upsert-contact", &r.body);
    assert_eq!(
        (&r.body["new"], &r.body["contact"]["customFields"]),
        (&json!(false), &json!([{ "id": "cf_fav_color", "value": "red" }, { "id": "new", "value": "v" }]))
    );
    // Seeds take the read shape too; a new contact starts with none.
    let seeded = server.seed_contact(json!({ "locationId": LOC, "customFields": [{ "id": "s", "value": "1" }] }));
    let got = call(&server, "GET", &format!("/contacts/{seeded}"), None);
    assert_eq!(got.body["contact"]["customFields"], json!([{ "id": "s", "value": "1" }]));
    assert_eq!(create(&server, json!({})).body["contact"]["customFields"], json!([]));
}

// --------------------------------------------------------------------------------------------
// Search and lists
// --------------------------------------------------------------------------------------------

fn search(server: &MockServer, body: Value) -> Resp {
    call(server, "POST", "/contacts/search", Some(body))
}

fn first_names(r: &Resp) -> Vec<String> {
    r.body["contacts"].as_array().unwrap().iter().map(|c| c["firstName"].as_str().unwrap_or("").to_owned()).collect()
}

/// Ada, Bob and Cy in [`LOC`], another Ada elsewhere.
fn search_fixture() -> MockServer {
    let server = start();
    create(
        &server,
        json!({ "firstName": "Ada", "lastName": "Lovelace", "email": "ada@x.com", "phone": "+13125550101",
                "tags": ["vip", "lead"], "customFields": [{ "id": "cf1", "field_value": "gold" }] }),
    );
    create(&server, json!({ "firstName": "Bob", "email": "bob@y.com", "phone": "+13125550102", "tags": ["lead"] }));
    create(&server, json!({ "firstName": "Cy", "tags": [] }));
    call(&server, "POST", "/contacts/", Some(json!({ "locationId": "elsewhere", "firstName": "Ada" })));
    server
}

#[test]
fn search_filters_and_query() {
    let server = search_fixture();
    let find = |filters: Value| {
        let r = search(&server, json!({ "locationId": LOC, "pageLimit": 100, "filters": filters }));
        assert_eq!(r.status, 200, "{}", r.body);
        first_names(&r)
    };
    let leaf = |field: &str, operator: &str, value: Value| json!({ "field": field, "operator": operator, "value": value });
    assert_eq!(find(json!([leaf("firstName", "eq", json!("ADA"))])), ["Ada"]);
    assert_eq!(find(json!([leaf("tags", "eq", json!("vip"))])), ["Ada"]);
    assert_eq!(find(json!([leaf("tags", "eq", json!(["vip", "lead"]))])), ["Ada", "Bob"]);
    assert_eq!(find(json!([leaf("firstName", "not_eq", json!("ada"))])), ["Bob", "Cy"]);
    assert_eq!(find(json!([leaf("email", "contains", json!("@x."))])), ["Ada"]);
    assert_eq!(find(json!([leaf("email", "not_contains", json!("@x."))])), ["Bob", "Cy"]);
    assert_eq!(find(json!([{ "field": "email", "operator": "exists" }])), ["Ada", "Bob"]);
    assert_eq!(find(json!([{ "field": "email", "operator": "not_exists" }])), ["Cy"]);
    assert_eq!(find(json!([{ "field": "tags", "operator": "exists" }])), ["Ada", "Bob"], "[] does not exist");
    assert_eq!(find(json!([leaf("customFields.cf1", "eq", json!("gold"))])), ["Ada"]);
    assert_eq!(find(json!([leaf("phone", "range", json!({ "gte": "+13125550102" }))])), ["Bob"]);
    // Top-level filters are ANDed; groups are AND or OR and nest.
    assert_eq!(find(json!([leaf("tags", "eq", json!("lead")), leaf("email", "contains", json!("y.com"))])), ["Bob"]);
    assert_eq!(find(json!([{ "group": "OR", "filters": [leaf("firstName", "eq", json!("bob")), leaf("tags", "eq", json!("vip"))] }])), ["Ada", "Bob"]);
    assert_eq!(
        find(json!([{ "group": "AND", "filters": [
            leaf("tags", "eq", json!("lead")),
            { "group": "OR", "filters": [leaf("firstName", "eq", json!("cy")), leaf("email", "contains", json!("bob"))] },
        ]}])),
        ["Bob"]
    );
    assert_eq!(find(json!([])), ["Ada", "Bob", "Cy"]);

    let q = |query: &str| first_names(&search(&server, json!({ "locationId": LOC, "pageLimit": 10, "query": query })));
    assert_eq!(q("lovelace"), ["Ada"]);
    assert_eq!(q("BOB@"), ["Bob"]);
    assert_eq!(q("555 0102"), ["Bob"]);
    assert_eq!(q("3125550"), ["Ada", "Bob"]);
    let r = search(&server, json!({ "locationId": "elsewhere", "pageLimit": 10 }));
    assert_eq!((first_names(&r), &r.body["total"]), (vec!["Ada".to_owned()], &json!(1)));
}

#[test]
fn search_sorts_and_pages() {
    let server = search_fixture();
    let r = search(&server, json!({ "locationId": LOC, "pageLimit": 10, "sort": [{ "field": "firstName", "direction": "desc" }] }));
    assert_eq!(first_names(&r), ["Cy", "Bob", "Ada"]);
    let r = search(&server, json!({ "locationId": LOC, "pageLimit": 10, "sort": [{ "field": "email", "direction": "asc" }] }));
    assert_eq!(first_names(&r), ["Ada", "Bob", "Cy"], "missing values sort last");

    let page = |n: u64| search(&server, json!({ "locationId": LOC, "page": n, "pageLimit": 2 }));
    let first = page(1);
    assert_eq!((first.status, first_names(&first), &first.body["total"]), (200, vec!["Ada".to_owned(), "Bob".into()], &json!(3)));
    let keys: Vec<&String> = first.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["contacts", "total"]);
    assert_eq!(first_names(&page(2)), ["Cy"]);
    assert_eq!((first_names(&page(3)).len(), &page(3).body["total"]), (0, &json!(3)));
    // Each contact carries its cursor; `searchAfter` continues after it.
    let cursor = first.body["contacts"][1]["searchAfter"].clone();
    assert_eq!(cursor[1], first.body["contacts"][1]["id"]);
    assert!(cursor[0].as_u64().unwrap() > 1_600_000_000_000);
    let r = search(&server, json!({ "locationId": LOC, "pageLimit": 2, "searchAfter": cursor }));
    assert_eq!(first_names(&r), ["Cy"]);
    assert_eq!(search(&server, json!({ "locationId": LOC, "pageLimit": 500 })).status, 200);
}

#[test]
fn search_validation_is_422() {
    let server = search_fixture();
    let problems = |body: Value| {
        let r = search(&server, body);
        assert_eq!((r.status, &r.body["error"]), (422, &json!("Unprocessable Entity")), "{}", r.body);
        messages(&r)
    };
    assert_eq!(problems(json!({ "locationId": LOC, "pageLimit": 501 })), ["pageLimit must not be greater than 500"]);
    assert_eq!(problems(json!({})), ["locationId should not be empty", "pageLimit should not be empty"]);
    assert_eq!(
        problems(json!({ "locationId": LOC, "pageLimit": "10", "page": 0 })),
        ["pageLimit must be a number conforming to the specified constraints", "page must not be less than 1"]
    );
    assert_eq!(
        problems(json!({ "locationId": LOC, "pageLimit": 10, "filters": [{ "field": "email", "operator": "like", "value": "a" }] })),
        ["filters.operator must be one of the following values: eq, not_eq, contains, not_contains, exists, not_exists, range"]
    );
    assert_eq!(
        problems(json!({ "locationId": LOC, "pageLimit": 10, "filters": [{ "group": "XOR", "filters": [{ "field": "email", "operator": "eq" }] }] })),
        ["filters.group must be one of the following values: AND, OR", "filters.value should not be empty"]
    );
    assert_eq!(
        problems(json!({ "locationId": LOC, "pageLimit": 10, "sort": [{ "field": "email", "direction": "up" }] })),
        ["sort.direction must be one of the following values: asc, desc"]
    );
}

#[test]
fn deprecated_list_pages_by_creation_order() {
    let server = start();
    let ids: Vec<String> = (1..=5)
        .map(|i| server.seed_contact(json!({ "locationId": LOC, "firstName": format!("C{i}"), "dateAdded": format!("2024-01-01T00:00:0{i}.000Z") })))
        .collect();
    server.seed_contact(json!({ "locationId": "elsewhere", "firstName": "Other" }));
    let ms = |i: usize| 1_704_067_200_000u64 + 1000 * i as u64;
    let list = |query: &str| {
        let r = call(&server, "GET", &format!("/contacts/?locationId={LOC}{query}"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        conforms("get-contacts", &r.body);
        r
    };

    let first = list("&limit=2");
    assert_eq!(first_names(&first), ["C1", "C2"]);
    assert_eq!(first.body["count"], 5);
    let next_url = format!("{}/contacts/?locationId={LOC}&startAfter={}&startAfterId={}&limit=2", server.base_url(), ms(2), ids[1]);
    assert_eq!(
        first.body["meta"],
        json!({ "total": 5, "nextPageUrl": next_url, "startAfterId": ids[1], "startAfter": ms(2),
                "currentPage": 1, "nextPage": 2, "prevPage": null })
    );
    // Page 2 from the previous page's startAfterId + startAfter, and again from nextPageUrl.
    let second = list(&format!("&limit=2&startAfterId={}&startAfter={}", ids[1], ms(2)));
    assert_eq!(first_names(&second), ["C3", "C4"]);
    assert_eq!((&second.body["meta"]["currentPage"], &second.body["meta"]["prevPage"], &second.body["meta"]["nextPage"]), (&json!(2), &json!(1), &json!(3)));
    let followed = call(&server, "GET", next_url.strip_prefix(&server.base_url()).unwrap(), None);
    assert_eq!(followed.body, second.body);
    let third = list(&format!("&limit=2&startAfterId={}&startAfter={}", ids[3], ms(4)));
    assert_eq!(first_names(&third), ["C5"]);
    assert_eq!((&third.body["meta"]["nextPage"], &third.body["meta"]["nextPageUrl"]), (&Value::Null, &Value::Null));
    // startAfter alone: contacts added after that instant.
    assert_eq!(first_names(&list(&format!("&startAfter={}", ms(3)))), ["C4", "C5"]);
    // Default limit 20; free-text query.
    assert_eq!(first_names(&list("")).len(), 5);
    let r = list("&query=c3");
    assert_eq!((first_names(&r), &r.body["count"]), (vec!["C3".to_owned()], &json!(1)));

    let problems = |target: &str| {
        let r = call(&server, "GET", target, None);
        assert_eq!(r.status, 422);
        messages(&r)
    };
    assert_eq!(problems(&format!("/contacts/?locationId={LOC}&limit=101")), ["limit must not be greater than 100"]);
    assert_eq!(problems(&format!("/contacts/?locationId={LOC}&limit=ten")), ["limit must be a number conforming to the specified constraints"]);
    assert_eq!(problems("/contacts/?limit=5"), ["locationId should not be empty"]);
}

#[test]
fn bulk_business_sets_and_clears_and_lists() {
    let server = start();
    let a = contact_id(&server, json!({ "firstName": "A" }));
    let b = contact_id(&server, json!({ "firstName": "B" }));
    contact_id(&server, json!({ "firstName": "C" }));
    let elsewhere = server.seed_contact(json!({ "locationId": "elsewhere" }));
    let r = call(&server, "POST", "/contacts/bulk/business", Some(json!({ "locationId": LOC, "ids": [a, b, "ghost", elsewhere], "businessId": "biz1" })));
    assert_eq!((r.status, &r.body), (200, &json!({ "success": true, "ids": [a, b] })));
    conforms("add-remove-contact-from-business", &r.body);
    assert_eq!(call(&server, "GET", &format!("/contacts/{a}"), None).body["contact"]["businessId"], "biz1");

    let list = |query: &str| {
        let r = call(&server, "GET", &format!("/contacts/business/biz1?locationId={LOC}{query}"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        conforms("get-contacts-by-businessId", &r.body);
        r
    };
    let r = list("");
    assert_eq!((first_names(&r), &r.body["count"]), (vec!["A".to_owned(), "B".into()], &json!(2)));
    let r = list("&limit=1&skip=1");
    assert_eq!((first_names(&r), &r.body["count"]), (vec!["B".to_owned()], &json!(2)));
    assert_eq!(first_names(&list("&query=a")), ["A"]);
    let r = call(&server, "GET", &format!("/contacts/business/biz1?locationId={LOC}&limit=x"), None);
    assert_eq!((r.status, messages(&r)), (422, vec!["limit must be a number string".to_owned()]));
    let r = call(&server, "GET", "/contacts/business/biz1", None);
    assert_eq!((r.status, messages(&r)), (422, vec!["locationId should not be empty".to_owned()]));

    // null clears.
    let r = call(&server, "POST", "/contacts/bulk/business", Some(json!({ "locationId": LOC, "ids": [a], "businessId": null })));
    assert_eq!((r.status, &r.body), (200, &json!({ "success": true, "ids": [a] })));
    assert!(call(&server, "GET", &format!("/contacts/{a}"), None).body["contact"].get("businessId").is_none());
    assert_eq!(first_names(&list("")), ["B"]);
    let r = call(&server, "POST", "/contacts/bulk/business", Some(json!({ "locationId": LOC, "ids": [a] })));
    assert_eq!((r.status, messages(&r)), (422, vec!["businessId should not be empty".to_owned()]));
}

// --------------------------------------------------------------------------------------------
// Tags, notes, tasks, appointments, followers, campaigns, workflows
// --------------------------------------------------------------------------------------------

#[test]
fn bulk_tags_add_and_remove_with_per_item_errors() {
    let server = start();
    let a = contact_id(&server, json!({ "tags": ["t1"] }));
    let b = contact_id(&server, json!({ "email": "b@x.com" }));
    let elsewhere = server.seed_contact(json!({ "locationId": "elsewhere" }));
    let r = call(
        &server,
        "POST",
        "/contacts/bulk/tags/update/add",
        Some(json!({ "contacts": [a, "ghost", b, elsewhere], "tags": ["t2", "t1"], "locationId": LOC })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    conforms("create-association", &r.body);
    assert_eq!(
        r.body,
        json!({ "succeded": true, "errorCount": 2, "responses": [
            { "contactId": a, "message": "Tags updated", "type": "success", "oldTags": ["t1"], "tagsAdded": ["t2"], "tagsRemoved": [] },
            { "contactId": "ghost", "message": "Contact with id ghost not found", "type": "error" },
            { "contactId": b, "message": "Tags updated", "type": "success", "oldTags": [], "tagsAdded": ["t2", "t1"], "tagsRemoved": [] },
            { "contactId": elsewhere, "message": "contact does not belong to location", "type": "error" },
        ]})
    );
    let tags = |id: &str| call(&server, "GET", &format!("/contacts/{id}"), None).body["contact"]["tags"].clone();
    assert_eq!((tags(&a), tags(&b)), (json!(["t1", "t2"]), json!(["t2", "t1"])));

    let r = call(&server, "POST", "/contacts/bulk/tags/update/remove", Some(json!({ "contacts": [a], "tags": ["t1", "zz"], "locationId": LOC })));
    assert_eq!((r.status, &r.body["errorCount"]), (201, &json!(0)));
    assert_eq!((&r.body["responses"][0]["tagsRemoved"], &r.body["responses"][0]["oldTags"]), (&json!(["t1"]), &json!(["t1", "t2"])));
    assert_eq!(tags(&a), json!(["t2"]));
    let r = call(&server, "POST", "/contacts/bulk/tags/update/remove", Some(json!({ "contacts": [b], "tags": [], "locationId": LOC, "removeAllTags": true })));
    assert_eq!((r.status, &r.body["responses"][0]["tagsRemoved"]), (201, &json!(["t2", "t1"])));
    assert_eq!(tags(&b), json!([]));

    let r = call(&server, "POST", "/contacts/bulk/tags/update/add", Some(json!({ "contacts": [a], "tags": ["x"], "locationId": LOC, "removeAllTags": true })));
    assert_eq!((r.status, messages(&r)), (422, vec!["removeAllTags can only be used with remove type".to_owned()]));
    let r = call(&server, "POST", "/contacts/bulk/tags/update/toggle", Some(json!({ "contacts": [a], "tags": ["x"], "locationId": LOC })));
    assert_eq!((r.status, messages(&r)), (422, vec!["type must be one of the following values: add, remove".to_owned()]));
    assert_eq!(tags(&a), json!(["t2"]));
}

#[test]
fn remove_tags_answers_what_is_left() {
    let server = start();
    let id = contact_id(&server, json!({ "tags": ["a", "b", "c"] }));
    let r = call(&server, "DELETE", &format!("/contacts/{id}/tags"), Some(json!({ "tags": ["b", "zz"] })));
    assert_eq!((r.status, &r.body), (200, &json!({ "tags": ["a", "c"] })));
    conforms("remove-tags", &r.body);
    assert_eq!(server.contacts()[0]["tags"], json!(["a", "c"]));
    let r = call(&server, "DELETE", &format!("/contacts/{id}/tags"), None);
    assert_eq!((r.status, messages(&r)), (422, vec!["tags should not be empty".to_owned()]));
    let r = call(&server, "POST", &format!("/contacts/{id}/tags"), Some(json!({ "tags": ["d"] })));
    conforms("add-tags", &r.body);
}

#[test]
fn delete_note() {
    let server = start();
    let id = contact_id(&server, json!({}));
    let other = contact_id(&server, json!({ "email": "o@x.com" }));
    let note = call(&server, "POST", &format!("/contacts/{id}/notes"), Some(json!({ "body": "n" })));
    conforms("create-note", &note.body);
    let note = note.body["note"]["id"].as_str().unwrap().to_owned();
    let r = call(&server, "DELETE", &format!("/contacts/{other}/notes/{note}"), None);
    assert_eq!((r.status, &r.body["message"]), (400, &json!(format!("Note with id {note} not found"))));
    let r = call(&server, "DELETE", &format!("/contacts/{id}/notes/{note}"), None);
    assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
    conforms("delete-note", &r.body);
    assert!(server.notes().is_empty());
    assert_eq!(call(&server, "GET", &format!("/contacts/{id}/notes/{note}"), None).status, 400);
    let r = call(&server, "GET", &format!("/contacts/{id}/notes"), None);
    assert_eq!((r.status, &r.body), (200, &json!({ "notes": [] })));
    conforms("get-all-notes", &r.body);
}

#[test]
fn tasks_lifecycle() {
    let server = start();
    let id = contact_id(&server, json!({}));
    let other = contact_id(&server, json!({ "email": "o@x.com" }));
    let tasks = format!("/contacts/{id}/tasks");
    let r = call(
        &server,
        "POST",
        &tasks,
        Some(json!({ "title": "Call back", "body": "re: quote", "dueDate": "2020-10-25T11:00:00Z", "completed": false, "assignedTo": "u1" })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    conforms("create-task", &r.body);
    let task = json!({ "id": "task0000000000000001", "title": "Call back", "body": "re: quote", "assignedTo": "u1",
                       "dueDate": "2020-10-25T11:00:00Z", "completed": false, "contactId": id });
    assert_eq!(r.body, json!({ "task": task }));
    let r = call(&server, "POST", &tasks, Some(json!({ "title": "t" })));
    assert_eq!((r.status, messages(&r)), (422, vec!["completed should not be empty".to_owned(), "dueDate should not be empty".into()]));
    call(&server, "POST", &tasks, Some(json!({ "title": "Second", "dueDate": "2020-10-26T11:00:00Z", "completed": true })));

    let r = call(&server, "GET", &tasks, None);
    assert_eq!((r.status, r.body["tasks"].as_array().unwrap().len()), (200, 2));
    conforms("get-all-tasks", &r.body);
    let one = format!("{tasks}/task0000000000000001");
    let r = call(&server, "GET", &one, None);
    assert_eq!((r.status, &r.body["task"]), (200, &task));
    conforms("get-task", &r.body);
    let r = call(&server, "PUT", &one, Some(json!({ "title": "Call back today", "body": null })));
    assert_eq!(r.status, 200);
    conforms("update-task", &r.body);
    assert_eq!((&r.body["task"]["title"], r.body["task"].get("body")), (&json!("Call back today"), None));
    let r = call(&server, "PUT", &format!("{one}/completed"), Some(json!({ "completed": true })));
    assert_eq!((r.status, &r.body["task"]["completed"], &r.body["task"]["title"]), (200, &json!(true), &json!("Call back today")));
    conforms("update-task-completed", &r.body);
    let r = call(&server, "PUT", &format!("{one}/completed"), Some(json!({})));
    assert_eq!((r.status, messages(&r)), (422, vec!["completed should not be empty".to_owned()]));

    // Another contact's task is not found through this contact, and vice versa.
    let r = call(&server, "GET", &format!("/contacts/{other}/tasks/task0000000000000001"), None);
    assert_eq!((r.status, r.body), (400, json!({"statusCode":400,"message":"Task with id task0000000000000001 not found"})));
    assert_eq!(call(&server, "GET", &format!("/contacts/{other}/tasks"), None).body, json!({ "tasks": [] }));
    let r = call(&server, "DELETE", &one, None);
    assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
    conforms("delete-task", &r.body);
    assert_eq!(call(&server, "DELETE", &one, None).status, 400);
    assert_eq!(server.tasks().iter().map(|t| t["title"].clone()).collect::<Vec<_>>(), [json!("Second")]);
    assert_eq!(state(&server)["tasks"][0]["id"], "task0000000000000002");
}

#[test]
fn appointments_are_seeded_and_listed() {
    let server = start();
    let id = contact_id(&server, json!({}));
    let other = contact_id(&server, json!({ "email": "o@x.com" }));
    let event = json!({ "calendarId": "cal1", "title": "Demo", "status": "booked", "appointmentStatus": "confirmed",
                        "startTime": "2021-07-16 11:00:00", "endTime": "2021-07-16 11:30:00", "users": ["u1"] });
    let first = server.seed_appointment(&id, event.clone());
    assert_eq!(first, "event000000000000001");
    server.seed_appointment(&other, json!({ "title": "Other" }));
    assert_eq!(server.seed_appointment(&id, json!({ "id": "mine", "title": "Later" })), "mine");
    let r = call(&server, "GET", &format!("/contacts/{id}/appointments"), None);
    assert_eq!(r.status, 200);
    conforms("get-appointments-for-contact", &r.body);
    let events = r.body["events"].as_array().unwrap();
    assert_eq!(events.iter().map(|e| e["title"].clone()).collect::<Vec<_>>(), [json!("Demo"), json!("Later")]);
    let mut expected = event;
    expected["id"] = json!(first);
    expected["contactId"] = json!(id);
    expected["locationId"] = json!(LOC);
    assert_eq!(events[0], expected);
    assert_eq!(server.appointments().len(), 3);
    assert_eq!(state(&server)["appointments"].as_array().unwrap().len(), 3);
}

#[test]
fn followers_add_and_remove() {
    let server = start();
    let id = contact_id(&server, json!({}));
    let followers = format!("/contacts/{id}/followers");
    let r = call(&server, "POST", &followers, Some(json!({ "followers": ["u1", "u2"] })));
    assert_eq!((r.status, &r.body), (201, &json!({ "followers": ["u1", "u2"], "followersAdded": ["u1", "u2"] })));
    conforms("add-followers-contact", &r.body);
    let r = call(&server, "POST", &followers, Some(json!({ "followers": ["u2", "u3", "u3"] })));
    assert_eq!(r.body, json!({ "followers": ["u1", "u2", "u3"], "followersAdded": ["u3"] }));
    let r = call(&server, "DELETE", &followers, Some(json!({ "followers": ["u1", "u9"] })));
    assert_eq!((r.status, &r.body), (200, &json!({ "followers": ["u2", "u3"], "followersRemoved": ["u1"] })));
    conforms("remove-followers-contact", &r.body);
    assert_eq!(state(&server)["followers"], json!({ id.clone(): ["u2", "u3"] }));
    let r = call(&server, "DELETE", &followers, Some(json!({})));
    assert_eq!((r.status, messages(&r)), (422, vec!["followers should not be empty".to_owned()]));
}

#[test]
fn campaigns_and_workflows_are_tracked() {
    let server = start();
    let id = contact_id(&server, json!({}));
    let campaigns = format!("/contacts/{id}/campaigns");
    // The body is an empty (open) object; a missing one is fine too.
    let r = call(&server, "POST", &format!("{campaigns}/c1"), Some(json!({})));
    assert_eq!((r.status, &r.body), (201, &json!({ "succeded": true })));
    conforms("add-contact-to-campaign", &r.body);
    assert_eq!(call(&server, "POST", &format!("{campaigns}/c2"), None).status, 201);
    assert_eq!(call(&server, "POST", &format!("{campaigns}/c3"), None).status, 201);
    assert_eq!(call(&server, "POST", &format!("{campaigns}/c1"), None).status, 201, "enrolling twice is harmless");
    assert_eq!(state(&server)["campaigns"], json!({ id.clone(): ["c1", "c2", "c3"] }));
    let r = call(&server, "DELETE", &format!("{campaigns}/c2"), None);
    assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
    conforms("remove-contact-from-campaign", &r.body);
    assert_eq!(state(&server)["campaigns"], json!({ id.clone(): ["c1", "c3"] }));
    let r = call(&server, "DELETE", &format!("{campaigns}/removeAll"), None);
    assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
    conforms("remove-contact-from-every-campaign", &r.body);
    assert_eq!(state(&server)["campaigns"], json!({}));

    let workflow = format!("/contacts/{id}/workflow");
    let r = call(&server, "POST", &format!("{workflow}/w1"), Some(json!({ "eventStartTime": "2021-06-23T03:30:00+01:00" })));
    assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
    conforms("add-contact-to-workflow", &r.body);
    call(&server, "POST", &format!("{workflow}/w2"), None);
    assert_eq!(
        state(&server)["workflows"],
        json!({ id.clone(): [{ "workflowId": "w1", "eventStartTime": "2021-06-23T03:30:00+01:00" }, { "workflowId": "w2" }] })
    );
    let r = call(&server, "DELETE", &format!("{workflow}/w1"), Some(json!({ "eventStartTime": "2021-06-23T03:30:00+01:00" })));
    assert_eq!((r.status, &r.body), (200, &json!({ "succeded": true })));
    conforms("delete-contact-from-workflow", &r.body);
    assert_eq!(state(&server)["workflows"], json!({ id.clone(): [{ "workflowId": "w2" }] }));
    let r = call(&server, "POST", &format!("{workflow}/w3"), Some(json!({ "eventStartTime": 5 })));
    assert_eq!((r.status, messages(&r)), (422, vec!["eventStartTime must be a string".to_owned()]));
}

// --------------------------------------------------------------------------------------------
// Concurrency instrumentation: in-flight count, read gate, latency
// --------------------------------------------------------------------------------------------

/// `n` authorized GETs of `target`, each from its own thread, all started at once.
fn concurrent_gets(server: &MockServer, target: &str, n: usize) -> Vec<Resp> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n).map(|_| scope.spawn(|| call(server, "GET", target, None))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// Polls `condition` (no assertion on how long it takes, only a generous bound against hangs).
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `(batches released, GETs waiting)` of the read gate.
fn gate(server: &MockServer) -> (u64, usize) {
    let gate = server.state().gate_lock();
    (gate.generation, gate.waiting)
}

#[test]
fn read_gate_releases_full_batches_together() {
    let server = start();
    let id = server.seed_contact(json!({ "locationId": LOC }));
    // Far beyond the test client's 10 s read timeout: a GET released by the fallback rather
    // than by its batch would fail the test instead of passing slowly.
    server.state().gate_lock().fallback = Duration::from_secs(60);
    server.hold_reads_until(4);
    let target = format!("/contacts/{id}");
    for batch in 1..=2 {
        server.reset_in_flight_max();
        assert_eq!(server.in_flight_max(), 0);
        let replies = concurrent_gets(&server, &target, 4);
        assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
        assert_eq!(server.in_flight_max(), 4);
        assert_eq!(gate(&server), (batch, 0), "released by the gate, which re-armed");
    }
    assert_eq!(state(&server)["inFlightMax"], 4, "the debug routes are not counted");

    // Writes and the debug routes are never held (a held one would hit the read timeout).
    assert_eq!(create(&server, json!({})).status, 201);
    assert_eq!(raw(&server, "GET", "/__mock/requests", &[], None, false).status, 200);
    assert_eq!(server.in_flight_max(), 4);
    server.hold_reads_until(0);
    assert_eq!(call(&server, "GET", &target, None).status, 200);
    assert_eq!(gate(&server), (2, 0));
    assert_eq!(server.requests().len(), 10);
}

#[test]
fn a_lone_read_proceeds_after_the_fallback() {
    let server = start();
    let id = server.seed_contact(json!({ "locationId": LOC }));
    let fallback = Duration::from_millis(200);
    server.state().gate_lock().fallback = fallback;
    server.hold_reads_until(4);
    // A sequential client: each GET waits out the fallback alone, and never counts towards
    // the next one's batch.
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let r = call(&server, "GET", &format!("/contacts/{id}"), None);
        assert!(started.elapsed() >= fallback, "{:?}", started.elapsed());
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(gate(&server), (0, 0));
    }
    assert_eq!(server.in_flight_max(), 1);
}

#[test]
fn lowering_or_disabling_the_gate_releases_held_reads() {
    let server = start();
    server.state().gate_lock().fallback = Duration::from_secs(60);
    server.hold_reads_until(3);
    std::thread::scope(|scope| {
        let held: Vec<_> = (0..2).map(|_| scope.spawn(|| call(&server, "GET", "/contacts/ghost", None))).collect();
        wait_until("two held GETs", || gate(&server) == (0, 2));
        // Held requests are in flight.
        assert_eq!(server.state().in_flight.load(AtomicOrdering::SeqCst), 2);
        assert_eq!(server.in_flight_max(), 2);
        server.hold_reads_until(2);
        for thread in held {
            assert_eq!(thread.join().unwrap().status, 400);
        }
    });
    assert_eq!(gate(&server), (1, 0));

    std::thread::scope(|scope| {
        let held = scope.spawn(|| call(&server, "GET", "/contacts/ghost", None));
        wait_until("one held GET", || gate(&server) == (1, 1));
        server.hold_reads_until(0);
        assert_eq!(held.join().unwrap().status, 400);
    });
    assert_eq!(gate(&server), (2, 0));
    assert_eq!(server.state().in_flight.load(AtomicOrdering::SeqCst), 0);
    assert_eq!(server.in_flight_max(), 2);
}

#[test]
fn latency_delays_every_api_request() {
    let latency = Duration::from_millis(150);
    let server = MockServer::start(MockOptions { latency, ..MockOptions::default() }).unwrap();
    assert_eq!(server.state().latency(), latency);
    let started = std::time::Instant::now();
    assert_eq!(create(&server, json!({})).status, 201);
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    let latency = Duration::from_millis(250);
    server.set_latency(latency);
    assert_eq!(server.state().latency(), latency);
    let started = std::time::Instant::now();
    assert_eq!(call(&server, "GET", "/contacts/contact0000000000001", None).status, 200);
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    server.set_latency(Duration::ZERO);
    assert_eq!(server.state().latency(), Duration::ZERO);
    assert_eq!(server.in_flight_max(), 1);
}

// --------------------------------------------------------------------------------------------
// Fault injection
// --------------------------------------------------------------------------------------------

fn faults(rate: f64, seed: u64, kinds: Vec<FaultKind>) -> Faults {
    Faults { rate, seed, kinds }
}

fn start_with_faults(faults: Faults) -> MockServer {
    MockServer::start(MockOptions { faults: Some(faults), ..MockOptions::default() }).unwrap()
}

/// `(operation, status, fault)` of every logged request.
fn outcomes(server: &MockServer) -> Vec<(Option<&'static str>, u16, Option<&'static str>)> {
    server.requests().iter().map(|r| (r.operation_id, r.status, r.fault)).collect()
}

fn no_faults_but(kind: &str, count: usize) -> BTreeMap<String, usize> {
    FaultKind::NAMES.iter().map(|name| ((*name).to_owned(), if *name == kind { count } else { 0 })).collect()
}

#[test]
fn the_fault_plan_is_a_pure_function_of_seed_and_number() {
    let plan = |faults: &Faults| (0..10_000).map(|n| faults.fault_for(n).cloned()).collect::<Vec<_>>();
    let mixed = Faults::mixed(0.2, 7);
    let drawn = plan(&mixed);
    assert_eq!(drawn, plan(&Faults::mixed(0.2, 7)));
    assert_ne!(drawn, plan(&Faults::mixed(0.2, 8)), "another seed, another plan");
    let faulted = drawn.iter().flatten().count();
    assert!((1_800..=2_200).contains(&faulted), "{faulted} faults in 10000 requests at 20%");
    for kind in &mixed.kinds {
        let seen = drawn.iter().flatten().filter(|k| *k == kind).count();
        assert!(seen > 200, "{kind:?} drawn {seen} times, expected about 285");
    }
    assert!(plan(&Faults::mixed(0.0, 1)).iter().all(Option::is_none));
    assert!(plan(&Faults::mixed(1.0, 1)).iter().all(Option::is_some));
    assert!(plan(&faults(1.0, 1, vec![])).iter().all(Option::is_none), "no kinds, no faults");
    assert!(plan(&faults(f64::NAN, 1, vec![FaultKind::DropBeforeHandling])).iter().all(Option::is_none));
}

#[test]
fn server_error_and_rate_limited_faults_are_answered_without_applying_the_request() {
    let server = start_with_faults(faults(1.0, 1, vec![FaultKind::ServerError(503)]));
    let r = create(&server, json!({ "email": "a@example.com" }));
    assert_eq!((r.status, &r.body), (503, &json!({ "statusCode": 503, "message": "Service Unavailable" })));

    server.set_faults(Some(faults(1.0, 1, vec![FaultKind::RateLimited { retry_after_ms: 1_500 }])));
    let r = create(&server, json!({ "email": "a@example.com" }));
    assert_eq!((r.status, &r.body), (429, &json!({ "statusCode": 429, "message": "Too Many Requests" })));
    assert_eq!(r.header("retry-after"), Some("2"), "1.5 s rounded up");
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("x-ratelimit-max"), Some("100"), "HighLevel's burst limit when none is set");
    assert_eq!(r.header("x-ratelimit-interval-milliseconds"), Some("10000"));
    assert!(server.contacts().is_empty(), "neither request was applied");

    // The debug routes are never faulted; the counters are in the snapshot.
    let snapshot = state(&server);
    assert_eq!(snapshot["faults"], json!({ "delay": 0, "drop-after": 0, "drop-before": 0, "rate-limited": 1, "server-error": 1 }));
    assert_eq!(snapshot["rateLimited"], 0, "an injected 429 is a fault, not rate limiting");
    let logged = raw(&server, "GET", "/__mock/requests", &[], None, false).body;
    assert_eq!(logged[1]["fault"], "rate-limited");

    server.set_faults(None);
    assert_eq!(server.state().faults(), None);
    assert_eq!(create(&server, json!({ "email": "a@example.com" })).status, 201);
    assert_eq!(
        outcomes(&server),
        [(Some("create-contact"), 503, Some("server-error")), (Some("create-contact"), 429, Some("rate-limited")), (Some("create-contact"), 201, None),]
    );
    let logged = raw(&server, "GET", "/__mock/requests", &[], None, false).body;
    assert!(logged[2].get("fault").is_none() && logged[2].get("body").is_none(), "{logged}");
    assert_eq!(server.fault_counts().values().sum::<usize>(), 2);
}

#[test]
fn a_delay_fault_waits_then_applies_the_request() {
    let delay = Duration::from_millis(150);
    let server = start();
    server.set_faults(Some(faults(1.0, 3, vec![FaultKind::Delay(delay)])));
    let started = Instant::now();
    assert_eq!(create(&server, json!({})).status, 201);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert_eq!(server.contacts().len(), 1);
    assert_eq!(outcomes(&server), [(Some("create-contact"), 201, Some("delay"))]);
    assert_eq!(server.fault_counts(), no_faults_but("delay", 1));
}

/// Reads one response with a `Content-Length` from a kept-alive connection; returns its status.
fn read_one_response(stream: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length =
        head.lines().find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).expect("Content-Length");
    stream.read_exact(&mut vec![0; length]).unwrap();
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn drop_faults_close_the_connection_without_a_byte_of_response() {
    for (kind, applied) in [(FaultKind::DropBeforeHandling, false), (FaultKind::DropAfterHandling, true)] {
        let server = start();
        // A kept-alive connection (no `Connection: close`), so only the server can end it.
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let send = |stream: &mut TcpStream, email: &str| {
            let body = json!({ "locationId": LOC, "email": email }).to_string();
            let request = format!(
                "POST /contacts/ HTTP/1.1\r\nHost: mock\r\nAuthorization: Bearer t\r\nVersion: 2021-07-28\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).unwrap();
        };
        send(&mut stream, "a@example.com");
        assert_eq!(read_one_response(&mut stream), 201);
        server.set_faults(Some(faults(1.0, 5, vec![kind.clone()])));
        send(&mut stream, "b@example.com");
        assert_eq!(read_until_closed(&mut stream), b"", "{kind:?}: closed without a response");
        drop(stream);

        let emails: Vec<_> = server.contacts().iter().map(|c| c["email"].as_str().unwrap().to_owned()).collect();
        let expected: &[&str] = if applied { &["a@example.com", "b@example.com"] } else { &["a@example.com"] };
        assert_eq!(emails, expected, "{kind:?}");
        assert_eq!(outcomes(&server), [(Some("create-contact"), 201, None), (Some("create-contact"), 0, Some(kind.name()))]);
        assert_eq!(server.fault_counts(), no_faults_but(kind.name(), 1));
        // The server itself carries on.
        server.set_faults(None);
        assert_eq!(create(&server, json!({})).status, 201, "{kind:?}");
    }
}

#[test]
fn faults_follow_the_seeded_plan_request_by_request() {
    let plan = faults(
        0.5,
        42,
        vec![
            FaultKind::ServerError(502),
            FaultKind::RateLimited { retry_after_ms: 1 },
            FaultKind::Delay(Duration::from_millis(1)),
            FaultKind::DropBeforeHandling,
            FaultKind::DropAfterHandling,
        ],
    );
    let expected_status = |n: u64| match plan.fault_for(n) {
        None | Some(FaultKind::Delay(_)) => Some(200),
        Some(FaultKind::ServerError(status)) => Some(*status),
        Some(FaultKind::RateLimited { .. }) => Some(429),
        Some(FaultKind::DropBeforeHandling | FaultKind::DropAfterHandling) => None,
    };
    let run = || {
        let server = start_with_faults(plan.clone());
        let id = server.seed_contact(json!({ "locationId": LOC }));
        let target = format!("/contacts/{id}");
        let seen: Vec<Option<u16>> = (0..60)
            .map(|i| {
                if i % 10 == 0 {
                    state(&server); // the debug routes draw no number
                }
                try_raw(&server, "GET", &target, GOOD, None, false).map(|r| r.status)
            })
            .collect();
        // Setting the faults again restarts the numbering.
        server.set_faults(Some(plan.clone()));
        let again: Vec<Option<u16>> = (0..10).map(|_| try_raw(&server, "GET", &target, GOOD, None, false).map(|r| r.status)).collect();
        (seen, again, server.requests(), server.fault_counts())
    };
    let (seen, again, log, counts) = run();
    for (n, status) in seen.iter().enumerate() {
        let n = n as u64;
        assert_eq!(*status, expected_status(n), "request {n}");
        assert_eq!(log[n as usize].status, status.unwrap_or(0), "request {n}");
        assert_eq!(log[n as usize].fault, plan.fault_for(n).map(FaultKind::name), "request {n}");
    }
    assert_eq!(again, (0..10).map(expected_status).collect::<Vec<_>>());
    let mut tally = no_faults_but("", 0);
    for n in (0..60).chain(0..10) {
        if let Some(kind) = plan.fault_for(n) {
            *tally.get_mut(kind.name()).unwrap() += 1;
        }
    }
    assert_eq!(counts, tally);
    assert!(tally.values().all(|count| *count > 0), "every kind is exercised: {tally:?}");
    assert_eq!(run(), (seen, again, log, counts), "a second run meets the same faults");
}

#[test]
fn drop_faults_outside_the_mock_listener_are_502() {
    let state = Arc::new(MockState::new(MockOptions { faults: Some(faults(1.0, 1, vec![FaultKind::DropBeforeHandling])), ..MockOptions::default() }));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(Arc::clone(&state));
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        runtime.block_on(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .into_future(),
        )
    });
    let r = try_raw_at(addr, "GET", "/contacts/x", GOOD, None, false).expect("a response");
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(state.requests()[0].status, 502);
    assert_eq!(state.requests()[0].fault, Some("drop-before"));
    stop.send(()).unwrap();
    thread.join().unwrap().unwrap();
}

// --------------------------------------------------------------------------------------------
// Rate limit
// --------------------------------------------------------------------------------------------

/// `(X-RateLimit-Remaining, X-RateLimit-Max, X-RateLimit-Interval-Milliseconds)`.
fn limit_headers(r: &Resp) -> (Option<&str>, Option<&str>, Option<&str>) {
    (r.header("x-ratelimit-remaining"), r.header("x-ratelimit-max"), r.header("x-ratelimit-interval-milliseconds"))
}

#[test]
fn requests_over_the_rate_limit_get_429_and_are_not_applied() {
    let limit = RateLimit { max_requests: 3, window: Duration::from_secs(60) };
    let server = MockServer::start(MockOptions { rate_limit: Some(limit), ..MockOptions::default() }).unwrap();
    assert_eq!(server.state().rate_limit(), Some(limit));
    for remaining in ["2", "1", "0"] {
        let r = create(&server, json!({}));
        assert_eq!(r.status, 201);
        assert_eq!(limit_headers(&r), (Some(remaining), Some("3"), Some("60000")));
        assert_eq!(r.header("retry-after"), None);
        state(&server); // the debug routes are not limited, and take no slot
    }
    let r = create(&server, json!({}));
    assert_eq!((r.status, &r.body), (429, &json!({ "statusCode": 429, "message": "Too Many Requests" })));
    assert_eq!(limit_headers(&r), (Some("0"), Some("3"), Some("60000")));
    let retry_after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(server.contacts().len(), 3, "the fourth was not applied");
    assert_eq!(server.rate_limited_count(), 1);
    assert_eq!(state(&server)["rateLimited"], 1);
    assert_eq!(outcomes(&server).last(), Some(&(Some("create-contact"), 429, None)));
    assert_eq!(server.fault_counts(), no_faults_but("", 0));

    server.set_rate_limit(None);
    let r = create(&server, json!({}));
    assert_eq!((r.status, limit_headers(&r)), (201, (None, None, None)));

    // A new limit starts with a fresh window.
    server.set_rate_limit(Some(RateLimit { max_requests: 1, window: Duration::from_secs(60) }));
    let r = create(&server, json!({}));
    assert_eq!((r.status, limit_headers(&r)), (201, (Some("0"), Some("1"), Some("60000"))));
    assert_eq!(create(&server, json!({})).status, 429);
    assert_eq!(server.rate_limited_count(), 2);
    assert_eq!(server.contacts().len(), 5);
}

#[test]
fn the_rate_limit_window_slides() {
    let window = Duration::from_secs(1);
    let server = start();
    server.set_rate_limit(Some(RateLimit { max_requests: 1, window }));
    let started = Instant::now();
    // An answered request takes a slot whatever its status.
    assert_eq!(call(&server, "GET", "/contacts/ghost", None).status, 400);
    let second = call(&server, "GET", "/contacts/ghost", None);
    // Only a machine too slow to send two requests within the window could see otherwise.
    if started.elapsed() < window {
        assert_eq!((second.status, second.header("retry-after")), (429, Some("1")));
    }
    // The slot frees `window` after it was taken, and the rejected request took none.
    std::thread::sleep(window);
    assert_eq!(call(&server, "GET", "/contacts/ghost", None).status, 400);
}

#[test]
fn requests_refused_by_a_fault_take_no_rate_limit_slot() {
    let server = start_with_faults(faults(1.0, 9, vec![FaultKind::ServerError(500)]));
    server.set_rate_limit(Some(RateLimit { max_requests: 1, window: Duration::from_secs(60) }));
    for _ in 0..3 {
        assert_eq!(create(&server, json!({})).status, 500);
    }
    server.set_faults(Some(faults(1.0, 9, vec![FaultKind::DropAfterHandling])));
    assert!(try_raw(&server, "POST", "/contacts/", GOOD, Some(json!({ "locationId": LOC }).to_string().as_bytes()), false).is_none());
    assert_eq!(server.contacts().len(), 1, "a drop-after request is applied, and takes the slot");
    server.set_faults(None);
    assert_eq!(create(&server, json!({})).status, 429);
    assert_eq!(server.rate_limited_count(), 1);
}

// --------------------------------------------------------------------------------------------
// OAuth
// --------------------------------------------------------------------------------------------

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn oauth_options() -> OAuthOptions {
    OAuthOptions {
        client_id: "client-1".into(),
        client_secret: "s3cret".into(),
        refresh_token: "refresh-0".into(),
        access_token_ttl: Duration::from_secs(3600),
        location_id: LOC.into(),
    }
}

fn start_with_oauth(options: OAuthOptions) -> MockServer {
    MockServer::start(MockOptions { oauth: Some(options), ..MockOptions::default() }).unwrap()
}

fn token_request(server: &MockServer, form: &str) -> Resp {
    raw(server, "POST", "/oauth/token", &[FORM], Some(form.as_bytes()), false)
}

fn refresh(server: &MockServer, refresh_token: &str, client_secret: &str) -> Resp {
    token_request(
        server,
        &format!(
            "grant_type=refresh_token&refresh_token={refresh_token}&client_id=client-1\
             &client_secret={client_secret}&user_type=Location"
        ),
    )
}

/// A GET with `token` as bearer.
fn get_with(server: &MockServer, token: &str, target: &str) -> Resp {
    let bearer = format!("Bearer {token}");
    raw(server, "GET", target, &[("Authorization", &bearer), ("Version", "2021-07-28")], None, false)
}

fn access_token(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn refresh_tokens_are_single_use_and_rotate() {
    let server = start_with_oauth(oauth_options());
    let target = format!("/contacts/{}", server.seed_contact(json!({ "locationId": LOC })));
    assert_eq!(server.current_refresh_token().as_deref(), Some("refresh-0"));
    assert_eq!(get_with(&server, "anything", &target).status, 401, "with OAuth, not any token will do");

    let r = refresh(&server, "refresh-0", "s3cret");
    let access = access_token(&r);
    let next = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body,
        json!({
            "access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": next,
            "scope": "contacts.readonly contacts.write conversations.readonly conversations.write conversations/livechat.write conversations/message.readonly conversations/message.write users.readonly users.write",
            "userType": "Location", "locationId": LOC,
        })
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_ne!(next, "refresh-0");
    assert_eq!(server.current_refresh_token(), Some(next.clone()));
    assert_eq!(get_with(&server, &access, &target).status, 200);

    let invalid_grant = json!({ "error": "invalid_grant" });
    let invalid_client = json!({ "error": "invalid_client" });
    let r = refresh(&server, "refresh-0", "s3cret");
    assert_eq!((r.status, &r.body), (401, &invalid_grant), "the used refresh token is revoked");
    let r = refresh(&server, &next, "wrong");
    assert_eq!((r.status, &r.body), (401, &invalid_client));
    let r = token_request(&server, &format!("grant_type=refresh_token&refresh_token={next}&client_id=other&client_secret=s3cret"));
    assert_eq!((r.status, &r.body), (401, &invalid_client));
    assert_eq!(server.current_refresh_token(), Some(next.clone()), "failed attempts revoke nothing");

    let r = refresh(&server, &next, "s3cret");
    let second = access_token(&r);
    assert_ne!(second, access);
    assert_eq!(refresh(&server, &next, "s3cret").status, 401, "single use again");
    assert_eq!(get_with(&server, &second, &target).status, 200);
    assert_eq!(get_with(&server, &access, &target).status, 200, "valid until it expires");
    assert_eq!(server.oauth_refresh_count(), 2);
    assert_eq!(state(&server)["oauthRefreshes"], 2);

    let tokens: Vec<_> = server.requests().into_iter().filter(|r| r.path_and_query == "/oauth/token").collect();
    assert_eq!(tokens.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 401, 401, 401, 200, 401]);
    assert!(tokens.iter().all(|r| r.operation_id.is_none() && r.fault.is_none() && !r.authorization_present));
    assert_eq!(
        tokens[0].body.as_deref(),
        Some(
            "grant_type=refresh_token&refresh_token=REDACTED&client_id=client-1&client_secret=REDACTED\
             &user_type=Location"
        )
    );
    assert_eq!(tokens[3].body.as_deref(), Some("grant_type=refresh_token&refresh_token=REDACTED&client_id=other&client_secret=REDACTED"));
    let logged = serde_json::to_string(&server.requests()).unwrap();
    for secret in ["s3cret", "wrong", "refresh-0", next.as_str(), access.as_str()] {
        assert!(!logged.contains(secret), "{secret} leaked into the request log");
    }
}

#[test]
fn expired_access_tokens_get_the_usual_401() {
    let server = MockServer::start(MockOptions { token: Some("static-token".into()), oauth: Some(oauth_options()), ..MockOptions::default() }).unwrap();
    let target = format!("/contacts/{}", server.seed_contact(json!({ "locationId": LOC })));
    let access = access_token(&refresh(&server, "refresh-0", "s3cret"));
    assert_eq!(get_with(&server, &access, &target).status, 200);
    server.expire_access_tokens();
    let r = get_with(&server, &access, &target);
    assert_eq!((r.status, &r.body), (401, &error_texts().unauthorized));
    assert_eq!(get_with(&server, "static-token", &target).status, 200, "the configured token still works");
    let current = server.current_refresh_token().unwrap();
    let fresh = access_token(&refresh(&server, &current, "s3cret"));
    assert_eq!(get_with(&server, &fresh, &target).status, 200, "tokens issued later are not expired");

    // And on their own, after `access_token_ttl`.
    let ttl = Duration::from_millis(200);
    let server = start_with_oauth(OAuthOptions { access_token_ttl: ttl, ..oauth_options() });
    let r = refresh(&server, "refresh-0", "s3cret");
    assert_eq!(r.body["expires_in"], 1, "200 ms, rounded up");
    let access = access_token(&r);
    std::thread::sleep(ttl);
    assert_eq!(get_with(&server, &access, "/contacts/x").status, 401);
    assert_eq!(get_with(&server, "static-token", "/contacts/x").status, 401, "no token configured here");
}

#[test]
fn the_token_endpoint_is_not_an_api_request() {
    let server = MockServer::start(MockOptions {
        oauth: Some(oauth_options()),
        faults: Some(faults(1.0, 2, vec![FaultKind::ServerError(500)])),
        rate_limit: Some(RateLimit { max_requests: 1, window: Duration::from_secs(60) }),
        ..MockOptions::default()
    })
    .unwrap();
    let mut access = String::new();
    for _ in 0..3 {
        let r = refresh(&server, &server.current_refresh_token().unwrap(), "s3cret");
        access = access_token(&r);
        assert_eq!(limit_headers(&r), (None, None, None));
    }
    assert_eq!(server.fault_counts(), no_faults_but("", 0));
    assert_eq!((server.rate_limited_count(), server.in_flight_max()), (0, 0));

    let target = format!("/contacts/{}", server.seed_contact(json!({ "locationId": LOC })));
    assert_eq!(get_with(&server, &access, &target).status, 500, "the first API request draws fault 0");
    server.set_faults(None);
    let r = get_with(&server, &access, &target);
    assert_eq!((r.status, r.header("x-ratelimit-remaining")), (200, Some("0")));
    assert_eq!(get_with(&server, &access, &target).status, 429);
}

#[test]
fn token_request_errors() {
    let r = refresh(&start(), "refresh-0", "s3cret");
    assert_eq!((r.status, &r.body), (404, &json!({ "statusCode": 404, "message": "Cannot POST /oauth/token" })));

    let server = start_with_oauth(oauth_options());
    let r = raw(&server, "GET", "/oauth/token", &[], None, false);
    assert_eq!((r.status, &r.body), (404, &json!({ "statusCode": 404, "message": "Cannot GET /oauth/token" })));
    let json_body = json!({ "grant_type": "refresh_token", "refresh_token": "refresh-0" }).to_string();
    let r = raw(&server, "POST", "/oauth/token", &[], Some(json_body.as_bytes()), false);
    assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "form-encoded only");
    let r = token_request(&server, "grant_type=authorization_code&code=abc&client_id=client-1&client_secret=s3cret");
    assert_eq!((r.status, &r.body), (400, &json!({ "error": "unsupported_grant_type" })));
    let r = token_request(&server, "client_id=client-1&client_secret=s3cret&refresh_token=refresh-0");
    assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "no grant_type");
    let r = token_request(&server, "grant_type=refresh_token&client_id=client-1&client_secret=s3cret");
    assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "no refresh_token");
    let r = token_request(
        &server,
        "grant_type=refresh_token&refresh_token=refresh-0&client_id=client-1&client_secret=s3cret\
         &user_type=Company",
    );
    assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "location tokens only");
    assert_eq!(server.current_refresh_token().as_deref(), Some("refresh-0"));
    assert_eq!(server.oauth_refresh_count(), 0);

    let bodies: Vec<_> = server.requests().into_iter().map(|r| r.body.unwrap_or_default()).collect();
    assert_eq!(bodies[1], format!("<{} bytes, not form-encoded>", json_body.len()));
    assert_eq!(bodies[2], "grant_type=authorization_code&code=REDACTED&client_id=client-1&client_secret=REDACTED");
    assert!(!bodies.iter().any(|b| b.contains("s3cret") || b.contains("refresh-0")), "{bodies:?}");
}
