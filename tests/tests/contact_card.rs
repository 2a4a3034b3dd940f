//! The contact card (issue 16): `serve`'s admin listener shows a contact's unified view as a
//! small HTML page, by phone or HighLevel id, for the host's own location and for tenants,
//! through the real plugin and the mock HighLevel API. It is served from the plugin's view
//! cache within its TTL, escapes what HighLevel holds, opens with the admin token or the card
//! key only, and may be framed by the origins `card_frame_ancestors` names and no others.

use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::serve::access::AccessOptions;
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::settings::CardSettings;
use e2e_tests::serve::{in_process_with, loopback_options, mock, LOCATION};
use e2e_tests::tenants::{tenant_host, PRIVATE_TOKEN};
use host_test::ghl_mock::MockServer;
use host_test::support::{loopback_response, Headers};
use serde_json::{json, Value};
use std::time::Duration;

const ADMIN_TOKEN: &str = "card-test-admin-token-3f9a1c";
const CARD_KEY: &str = "card-test-card-key-7be20d41";
const PHONE: &str = "+13125550187";
/// What the plugin's view cache keeps a view for in these tests.
const TTL: u64 = 300;

/// One answer: status, headers (names lower-cased), body.
struct Answer {
    status: u16,
    headers: Headers,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let (status, headers, body) = loopback_response("GET", &format!("{base}{path}"), headers, b"").unwrap();
    Answer { status, headers, body }
}

/// A `serve` for the mock's location, its view cache kept for [`TTL`], and the runtime that
/// writes the seeded tasks and notes.
fn serve(mock: &MockServer, options: ServeOptions, name: &str) -> (Server, Runtime) {
    in_process_with(mock, |settings| settings.set("view_cache_ttl_seconds", TTL), options, name)
}

/// Priya, with an open task and a completed one, six notes written a few milliseconds apart
/// (`Note 1` the oldest), a past appointment, the next one and a later one; returns her id.
fn seed_priya(mock: &MockServer, runtime: &Runtime, location: &str) -> String {
    let id = mock.seed_contact(json!({
        "locationId": location, "firstName": "Priya", "lastName": "Raman", "phone": PHONE, "email": "priya@example.org",
        "companyName": "Raman Supply", "tags": ["vip", "renewal"],
    }));
    let invoke = |operation: &str, input: Value| {
        runtime.invoke(operation, &input.to_string()).expect("no trap").unwrap_or_else(|e| panic!("{operation}: {e:?}"));
    };
    invoke("create-task", json!({"contactId": id, "body": {"title": "Send the renewal quote", "dueDate": "2099-01-05T09:00:00Z", "completed": false}}));
    invoke("create-task", json!({"contactId": id, "body": {"title": "Old follow-up", "dueDate": "2020-01-05T09:00:00Z", "completed": true}}));
    for n in 1..=6 {
        invoke("create-note", json!({"contactId": id, "body": {"body": format!("Note {n}\nmore of note {n}")}}));
        std::thread::sleep(Duration::from_millis(5));
    }
    mock.seed_appointment(&id, json!({"title": "Last year's demo", "startTime": "2020-03-20T15:00:00Z"}));
    mock.seed_appointment(&id, json!({"title": "Renewal review", "startTime": "2099-01-10T15:00:00Z", "appointmentStatus": "confirmed"}));
    mock.seed_appointment(&id, json!({"title": "Quarterly check-in", "startTime": "2099-04-10T15:00:00Z"}));
    id
}

fn assert_priyas_card(card: &Answer, id: &str) {
    assert_eq!(card.status, 200, "{}", card.body);
    assert!(card.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{:?}", card.headers);
    let html = &card.body;
    for part in ["<h1>Priya Raman</h1>", PHONE, "priya@example.org", "Raman Supply", "<span class=\"tag\">vip</span>", "Send the renewal quote"] {
        assert!(html.contains(part), "{part} missing: {html}");
    }
    assert!(html.contains("Open tasks (1)") && !html.contains("Old follow-up"), "the completed task is not shown: {html}");
    assert!(html.contains("Due Mon 5 Jan 2099, 09:00 UTC"), "{html}");
    // The five newest notes, newest first, each by its first line.
    let at: Vec<usize> = (2..=6).rev().map(|n| html.find(&format!("<li>Note {n}<")).unwrap_or_else(|| panic!("note {n}: {html}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "newest first: {at:?}");
    assert!(!html.contains("<li>Note 1<") && !html.contains("more of note"), "{html}");
    // The next appointment: not the past one, not the later one.
    assert!(html.contains("Renewal review<span class=\"when\">Sat 10 Jan 2099, 15:00 UTC"), "{html}");
    assert!(!html.contains("Last year's demo") && !html.contains("Quarterly check-in"));
    assert!(html.contains(&format!(r#"href="https://app.gohighlevel.com/v2/location/{LOCATION}/contacts/detail/{id}""#)), "{html}");
    let csp = card.header("content-security-policy").unwrap();
    let nonce = csp.split("style-src 'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a style nonce");
    assert!(html.contains(&format!(r#"<style nonce="{nonce}">"#)) && !html.contains("{{"), "{html}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{csp}");
}

#[test]
fn the_card_by_phone_and_by_id_shows_the_contact_and_a_second_look_within_the_ttl_asks_highlevel_nothing() {
    let mock = mock();
    let (server, runtime) = serve(&mock, loopback_options(), "card-phone-and-id");
    let id = seed_priya(&mock, &runtime, LOCATION);
    let admin = server.admin_url();

    let first = get(&admin, &format!("/card?phone={PHONE}"), &[]);
    assert_priyas_card(&first, &id);
    assert!(first.body.contains("As of just now."), "{}", first.body);
    assert_eq!(first.header("cache-control"), Some(format!("private, max-age={TTL}").as_str()));
    // Not frameable unless card_frame_ancestors says by whom.
    assert_eq!(first.header("x-frame-options"), Some("DENY"));
    assert!(first.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(first.header("referrer-policy"), Some("no-referrer"));

    // By id, a second later: the plugin's cache answers, HighLevel hears nothing.
    std::thread::sleep(Duration::from_millis(1_100));
    let requests = mock.requests().len();
    let second = get(&admin, &format!("/card?contact={id}"), &[]);
    assert_priyas_card(&second, &id);
    assert_eq!(mock.requests().len(), requests, "served from the view cache");
    assert!(second.body.contains(" s ago."), "{}", second.body);
    let max_age: u64 = second.header("cache-control").unwrap().strip_prefix("private, max-age=").unwrap().parse().unwrap();
    assert!((TTL - 5..TTL).contains(&max_age), "what is left of the TTL: {max_age}");

    // The same view as JSON, by `format=json` or by `Accept`.
    for (path, headers) in
        [(format!("/card?contact={id}&format=json"), vec![]), ("/card?phone=%2B13125550187".to_string(), vec![("Accept", "application/json")])]
    {
        let answer = get(&admin, &path, &headers);
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let view = answer.json();
        assert_eq!((view["contact_id"].as_str(), view["from_cache"].as_bool()), (Some(id.as_str()), Some(true)), "{view}");
        assert_eq!(view["contact"]["firstName"], "Priya");
        assert_eq!(view["notes"].as_array().unwrap().len(), 6);
    }
    assert_eq!(mock.requests().len(), requests);
}

#[test]
fn a_script_in_a_contacts_name_is_shown_as_text() {
    let mock = mock();
    let (server, _) = serve(&mock, loopback_options(), "card-escaping");
    let id = mock
        .seed_contact(json!({"locationId": LOCATION, "firstName": "<script>alert(1)</script>", "lastName": "\"><img src=x onerror=alert(2)>", "phone": PHONE}));
    let card = get(&server.admin_url(), &format!("/card?contact={id}"), &[]);
    assert_eq!(card.status, 200, "{}", card.body);
    assert!(!card.body.contains("<script>") && !card.body.contains("<img"), "{}", card.body);
    assert!(card.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", card.body);
    assert!(card.body.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"), "{}", card.body);
}

#[test]
fn the_card_opens_with_the_admin_token_or_its_key_and_the_key_opens_nothing_else() {
    let mock = mock();
    let options = ServeOptions {
        access: AccessOptions { admin_token: Some(Secret::new(ADMIN_TOKEN)), ..AccessOptions::default() },
        card: CardSettings { key: Some(Secret::new(CARD_KEY)), ..CardSettings::default() },
        ..loopback_options()
    };
    let (server, runtime) = serve(&mock, options, "card-key");
    let id = seed_priya(&mock, &runtime, LOCATION);
    let admin = server.admin_url();
    let card = |query: &str, headers: &[(&str, &str)]| get(&admin, &format!("/card?contact={id}{query}"), headers);

    let requests = mock.requests().len();
    let none = card("", &[]);
    assert_eq!(none.status, 401, "{}", none.body);
    assert!(none.body.contains("?key=") && !none.body.contains("Priya"), "{}", none.body);
    let wrong = card("&key=card-test-card-key-7be20d40", &[]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("The card key in this link is wrong."), "{}", wrong.body);
    assert_eq!(card("&key=", &[]).status, 401);
    assert_eq!(mock.requests().len(), requests, "a refused card reads nothing");

    assert_priyas_card(&card(&format!("&key={CARD_KEY}"), &[]), &id);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    assert_priyas_card(&card("", &[("Authorization", &bearer)]), &id);
    let json = card(&format!("&key={CARD_KEY}&format=json"), &[]);
    assert_eq!((json.status, json.json()["contact_id"].as_str()), (200, Some(id.as_str())));

    // The card key is no admin token: every other admin path refuses it.
    assert_eq!(get(&admin, &format!("/api/events?key={CARD_KEY}"), &[]).status, 401);
    assert_eq!(get(&admin, &format!("/metrics?key={CARD_KEY}"), &[]).status, 401);
    let page = get(&admin, &format!("/?key={CARD_KEY}"), &[]);
    assert_eq!((page.status, page.header("location")), (303, Some("/login")));
    assert_eq!(get(&admin, "/card", &[("Authorization", &format!("Bearer {CARD_KEY}"))]).status, 401);
}

#[test]
fn card_frame_ancestors_let_the_named_origins_frame_the_card_and_nothing_else() {
    let mock = mock();
    let frames = vec!["https://app.dialpad.com".to_string(), "https://*.crm.example".to_string()];
    let options = ServeOptions { card: CardSettings { frame_ancestors: frames, ..CardSettings::default() }, ..loopback_options() };
    let (server, runtime) = serve(&mock, options, "card-frames");
    let id = seed_priya(&mock, &runtime, LOCATION);
    let admin = server.admin_url();
    let card = get(&admin, &format!("/card?contact={id}"), &[]);
    assert_priyas_card(&card, &id);
    let csp = card.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors https://app.dialpad.com https://*.crm.example"), "{csp}");
    assert_eq!(card.header("x-frame-options"), None, "DENY would stop the frame in an older browser");
    // A refusal on the card's path is framed too, so the panel shows it.
    assert_eq!(get(&admin, "/card", &[]).header("x-frame-options"), None);
    // The rest of the admin side never is.
    for path in ["/", "/api/events", "/login"] {
        let answer = get(&admin, path, &[]);
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{path}");
        assert!(answer.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"), "{path}");
    }
}

#[test]
fn an_unknown_phone_is_404_a_bad_request_400_and_a_refusing_highlevel_502() {
    let mock = mock();
    let (server, _) = serve(&mock, loopback_options(), "card-errors");
    let admin = server.admin_url();
    let unknown = get(&admin, "/card?phone=+14155550199", &[]);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.body.contains("No HighLevel contact has this phone number (+14155550199)."), "{}", unknown.body);
    assert_eq!(unknown.header("cache-control"), Some("no-store"));
    let unknown_id = get(&admin, "/card?contact=noSuchContact", &[]);
    assert_eq!(unknown_id.status, 404, "{}", unknown_id.body);
    assert!(unknown_id.body.contains("No HighLevel contact has the id noSuchContact."), "{}", unknown_id.body);
    let json = get(&admin, "/card?phone=%2B14155550199&format=json", &[]);
    assert_eq!((json.status, json.json()["type"].as_str()), (404, Some("not-found")));
    for (query, words) in [
        ("", "Say whose card to show"),
        ("?phone=", "The phone number is empty"),
        ("?contact=%20", "The contact id is empty"),
        ("?phone=%2B13125550187&contact=abc", "not both"),
        ("?contact=abc&format=xml", "format=xml is not known"),
        ("?phone=not%20a%20number", "&quot;not a number&quot; is not a phone number"),
    ] {
        let answer = get(&admin, &format!("/card{query}"), &[]);
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert!(answer.body.contains(words), "{query}: {}", answer.body);
        assert!(answer.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{query}");
    }

    // HighLevel refuses the host's credential: the card says so in plain words.
    let (refused, _) = in_process_with(&mock, |settings| settings.token = Some(Secret::new("not-the-token")), loopback_options(), "card-upstream");
    let answer = get(&refused.admin_url(), "/card?contact=anyContact", &[]);
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("HighLevel refused the credential (401)"), "{}", answer.body);
}

#[test]
fn a_tenants_card_comes_from_its_own_location_and_an_unknown_tenant_is_404() {
    let host = tenant_host("card-tenants");
    let admin = host.server.admin_url();
    let (status, text) = host_test::support::loopback_request(
        "POST",
        &format!("{admin}/api/tenants"),
        json!({"id": "north", "location_id": "locNorth", "token": PRIVATE_TOKEN}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let id = host.ghl.seed_contact(json!({"locationId": "locNorth", "firstName": "Nora", "lastName": "North", "phone": PHONE}));
    let card = get(&admin, &format!("/tenants/north/card?phone={PHONE}"), &[]);
    assert_eq!(card.status, 200, "{}", card.body);
    assert!(card.body.contains("<h1>Nora North</h1>"), "{}", card.body);
    assert!(card.body.contains(&format!("/v2/location/locNorth/contacts/detail/{id}\"")), "{}", card.body);
    let unknown = get(&admin, &format!("/tenants/south/card?phone={PHONE}"), &[]);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.body.contains("There is no tenant south here."), "{}", unknown.body);
    // This host has no location of its own.
    let single = get(&admin, &format!("/card?phone={PHONE}"), &[]);
    assert_eq!(single.status, 404, "{}", single.body);
    assert!(single.body.contains("/tenants/&lt;tenant&gt;/card"), "{}", single.body);
}
