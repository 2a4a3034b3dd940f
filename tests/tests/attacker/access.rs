//! Access to `serve` (issue 14, findings 3–5): the admin side without credentials, with a wrong
//! token, from a foreign `Host` (DNS rebinding) or a foreign page (a cross-origin form post to
//! the dead-letter replay); its security headers; unsafe binds; who may read the state files.

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::serve::access::{self, AccessOptions};
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use e2e_tests::serve::{in_process, json_fixture, loopback_options, mock, LOCATION, SECRET, TOKEN};
use host_test::ghl_mock::{FaultKind, Faults, MockServer};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::time::Duration;

const ADMIN_TOKEN: &str = "attacker-suite-admin-token-3f9a1c77";

/// An answer read off the wire.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One raw HTTP/1.1 request to `base` (`http://127.0.0.1:PORT`) with the given headers; `Host`
/// is the base's authority unless one is given. Bounded: 10 s to answer.
fn raw(method: &str, base: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let authority = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head += &format!("Host: {authority}\r\n");
    }
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Answer { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out += &rest[..size];
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn bearer() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

fn with_token(options: ServeOptions) -> ServeOptions {
    ServeOptions { access: AccessOptions { admin_token: Some(Secret::new(ADMIN_TOKEN)), ..AccessOptions::default() }, ..options }
}

/// Posts a hangup fixture to the webhook listener and waits until it is handled.
fn deliver(server: &Server, fixture: &str) {
    let body = json_fixture(fixture).to_string();
    let (status, text) = host_test::support::loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(server.wait_idle(Duration::from_secs(20)));
}

/// One dead letter: a call that HighLevel failed (503) on its only attempt.
fn dead_letter(server: &Server, mock: &MockServer) -> i64 {
    mock.set_faults(Some(Faults { rate: 1.0, seed: 1, kinds: vec![FaultKind::ServerError(503)] }));
    deliver(server, "call_inbound_missed.json");
    mock.set_faults(None);
    let events = raw("GET", &server.admin_url(), "/api/events", &[("Authorization", &bearer())], b"").json();
    events["dead_letters"][0]["id"].as_i64().unwrap_or_else(|| panic!("no dead letter: {events:#}"))
}

/// Logs in through `/login` as the page's form does; the session cookie (`name=value`).
fn log_in(admin: &str) -> String {
    let origin = admin.to_string();
    let answer =
        raw("POST", admin, "/login", &[("Origin", &origin), ("Content-Type", "application/x-www-form-urlencoded")], format!("token={ADMIN_TOKEN}").as_bytes());
    assert_eq!(answer.status, 303, "{}", answer.body);
    let cookie = answer.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_string()
}

/// Finding 3: with an admin token, nothing on the admin side but /healthz and the login page
/// answers without it: the API says 401 (JSON), the page sends the browser to /login, and a
/// wrong token is no better than none.
#[test]
fn the_admin_side_refuses_without_credentials_and_with_a_wrong_token() {
    let mock = mock();
    let server = in_process(&mock, None, with_token(loopback_options()), "attacker-no-credentials");
    deliver(&server, "call_inbound_hangup_completed.json");
    let admin = server.admin_url();
    let wrong = format!("Bearer {ADMIN_TOKEN}-not");
    for (method, path, headers) in [
        ("GET", "/api/events", vec![]),
        ("GET", "/api/events", vec![("Authorization", wrong.as_str())]),
        ("GET", "/api/events/1", vec![]),
        ("GET", "/api/events/1", vec![("Authorization", "Bearer ")]),
        ("GET", "/metrics", vec![]),
        ("POST", "/api/dead-letters/1/replay", vec![("Authorization", wrong.as_str())]),
    ] {
        let answer = raw(method, &admin, path, &headers, b"");
        assert_eq!(answer.status, 401, "{method} {path} {headers:?}: {}", answer.body);
        assert_eq!(answer.json()["type"], "unauthenticated", "{method} {path}");
        assert!(answer.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        assert!(!answer.body.contains("call_inbound") && !answer.body.contains("+1"), "{path} leaked: {}", answer.body);
    }
    let page = raw("GET", &admin, "/", &[], b"");
    assert_eq!((page.status, page.header("location")), (303, Some("/login")), "{}", page.body);
    let login = raw("GET", &admin, "/login", &[], b"");
    assert!(login.status == 200 && login.body.contains(r#"name="token""#), "{}", login.body);
    // /healthz stays open for probes and says nothing personal: counts only.
    let health = raw("GET", &admin, "/healthz", &[], b"");
    assert_eq!(health.status, 200);
    let mut keys: Vec<String> = health.json().as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["dead_letters", "queue_depth", "status", "workers"]);
}

/// Finding 3: the token opens the API as a bearer token, and the login page turns it into a
/// session cookie (HttpOnly, SameSite=Strict, Path=/; not Secure on loopback plain HTTP, where a
/// browser would drop it); a forged cookie does not pass, and /logout ends the session.
#[test]
fn a_bearer_token_or_a_login_session_opens_the_admin_side() {
    let mock = mock();
    let server = in_process(&mock, None, with_token(loopback_options()), "attacker-credentials");
    deliver(&server, "call_inbound_hangup_completed.json");
    let admin = server.admin_url();
    let events = raw("GET", &admin, "/api/events", &[("Authorization", &bearer())], b"");
    assert_eq!(events.status, 200, "{}", events.body);
    assert_eq!(events.json()["events"].as_array().unwrap().len(), 1);
    assert_eq!(raw("GET", &admin, "/metrics", &[("Authorization", &bearer())], b"").status, 200);

    let form = [("Origin", admin.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    let refused = raw("POST", &admin, "/login", &form, b"token=guess-guess-guess-guess");
    assert_eq!(refused.status, 401);
    assert!(refused.header("set-cookie").is_none());
    let answer = raw("POST", &admin, "/login", &form, format!("token={ADMIN_TOKEN}").as_bytes());
    assert_eq!((answer.status, answer.header("location")), (303, Some("/")));
    let set_cookie = answer.header("set-cookie").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "a Secure cookie is dropped by browsers on loopback http: {set_cookie}");
    assert!(!set_cookie.contains(ADMIN_TOKEN), "the cookie carries the token itself");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let value = cookie.split_once('=').unwrap().1;
    assert!(value.len() >= 32, "a session id too short to be random: {value}");

    assert_eq!(raw("GET", &admin, "/api/events", &[("Cookie", &cookie)], b"").status, 200);
    let page = raw("GET", &admin, "/", &[("Cookie", &cookie)], b"");
    assert!(page.status == 200 && page.body.contains("Recent events"), "{}", page.body);
    // One character changed: to `0`, or to `1` when it was `0` already (else the "forgery"
    // would be the real session one run in sixteen).
    let first = if value.starts_with('0') { '1' } else { '0' };
    let forged = format!("{}={first}{}", access::SESSION_COOKIE, &value[1..]);
    assert_eq!(raw("GET", &admin, "/api/events", &[("Cookie", &forged)], b"").status, 401);
    let a_second = log_in(&admin);
    assert_ne!(a_second, cookie, "each login gets its own random session");

    let out = raw("POST", &admin, "/logout", &[("Cookie", &cookie), ("Origin", &admin)], b"");
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(raw("GET", &admin, "/api/events", &[("Cookie", &cookie)], b"").status, 401, "the session outlived /logout");
    assert_eq!(raw("GET", &admin, "/api/events", &[("Cookie", &a_second)], b"").status, 200);
}

/// Finding 3 (DNS rebinding): a page on `attacker.example`, whose name the attacker points at
/// 127.0.0.1, reaches the loopback listener with `Host: attacker.example:PORT`: refused (421),
/// open admin side or not. The listener's own names and `--admin-host` names pass.
#[test]
fn a_foreign_host_is_refused() {
    let mock = mock();
    let options = ServeOptions { access: AccessOptions { admin_hosts: vec!["admin.example.com".into()], ..AccessOptions::default() }, ..loopback_options() };
    let server = in_process(&mock, None, options, "attacker-host");
    deliver(&server, "call_inbound_hangup_completed.json");
    let admin = server.admin_url();
    let port = admin.rsplit(':').next().unwrap().to_string();
    let other_port = format!("127.0.0.1:{}", port.parse::<u16>().unwrap().wrapping_add(1));
    for host in [format!("attacker.example:{port}"), "attacker.example".into(), other_port, format!("127.0.0.1.attacker.example:{port}")] {
        for path in ["/api/events", "/", "/metrics"] {
            let answer = raw("GET", &admin, path, &[("Host", &host)], b"");
            assert_eq!(answer.status, 421, "Host {host} {path}: {}", answer.body);
            assert_eq!(answer.json()["type"], "misdirected");
            assert!(!answer.body.contains("inbound call"), "{}", answer.body);
        }
    }
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}"), "admin.example.com".into()] {
        let answer = raw("GET", &admin, "/api/events", &[("Host", &host)], b"");
        assert_eq!(answer.status, 200, "Host {host}: {}", answer.body);
    }
}

/// Finding 3 (CSRF), on an open loopback admin side: a page elsewhere posts a form to
/// `/api/dead-letters/{id}/replay`. Whatever it claims to come from (another site, `null`, a
/// foreign Referer), it is refused with 403 and nothing is replayed: the dead letter stays, no
/// delivery is queued, nothing more reaches HighLevel.
#[test]
fn a_cross_origin_form_post_to_the_replay_replays_nothing() {
    let mock = mock();
    let server = in_process(&mock, None, ServeOptions { max_attempts: 1, ..loopback_options() }, "attacker-csrf-open");
    let id = dead_letter(&server, &mock);
    let admin = server.admin_url();
    let before = raw("GET", &admin, "/api/events", &[], b"").json();
    let notes = mock.notes().len();
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    for claim in [("Origin", "http://attacker.example"), ("Origin", "null"), ("Referer", "http://attacker.example/page.html")] {
        let answer = raw("POST", &admin, &format!("/api/dead-letters/{id}/replay"), &[claim, form], b"x=1");
        assert_eq!(answer.status, 403, "{claim:?}: {}", answer.body);
        assert_eq!(answer.json()["type"], "cross-origin");
    }
    assert!(server.wait_idle(Duration::from_secs(5)));
    let after = raw("GET", &admin, "/api/events", &[], b"").json();
    assert_eq!(after["events"].as_array().unwrap().len(), before["events"].as_array().unwrap().len(), "a delivery was queued");
    assert_eq!(after["dead_letters"], before["dead_letters"], "the dead letter changed");
    assert_eq!(mock.notes().len(), notes, "something reached HighLevel");
    // The page's own replay (same origin) still works.
    let own = raw("POST", &admin, &format!("/api/dead-letters/{id}/replay"), &[("Origin", &admin)], b"");
    assert_eq!(own.status, 202, "{}", own.body);
    assert!(server.wait_idle(Duration::from_secs(20)));
    assert_eq!(mock.notes().len(), notes + 1);
}

/// Finding 3 (CSRF) with a logged-in browser: even carrying the session cookie, a post from
/// another origin, or one that hides where it comes from, is refused; a bearer-token client
/// may omit Origin.
#[test]
fn a_session_cookie_does_not_carry_a_cross_origin_post() {
    let mock = mock();
    let server = in_process(&mock, None, with_token(ServeOptions { max_attempts: 1, ..loopback_options() }), "attacker-csrf-session");
    let id = dead_letter(&server, &mock);
    let admin = server.admin_url();
    let cookie = log_in(&admin);
    let path = format!("/api/dead-letters/{id}/replay");
    let foreign = raw("POST", &admin, &path, &[("Cookie", &cookie), ("Origin", "http://attacker.example")], b"");
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let hidden = raw("POST", &admin, &path, &[("Cookie", &cookie)], b"");
    assert_eq!(hidden.status, 403, "{}", hidden.body);
    assert!(server.wait_idle(Duration::from_secs(5)));
    let events = raw("GET", &admin, "/api/events", &[("Cookie", &cookie)], b"").json();
    assert_eq!(events["dead_letters"].as_array().unwrap().len(), 1);
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "a replay was queued");
    let api = raw("POST", &admin, &path, &[("Authorization", &bearer())], b"");
    assert_eq!(api.status, 202, "{}", api.body);
}

/// Finding 3: every admin answer (the page, the API, refusals, the login page) forbids framing
/// and sniffing and is not cached; the page's script and style run by the response's nonce,
/// with no `unsafe-inline`.
#[test]
fn every_admin_answer_carries_the_security_headers() {
    let mock = mock();
    let server = in_process(&mock, None, with_token(loopback_options()), "attacker-headers");
    let admin = server.admin_url();
    let auth = bearer();
    let answers = [
        ("page", raw("GET", &admin, "/", &[("Authorization", &auth)], b"")),
        ("api", raw("GET", &admin, "/api/events", &[("Authorization", &auth)], b"")),
        ("401", raw("GET", &admin, "/api/events", &[], b"")),
        ("421", raw("GET", &admin, "/", &[("Host", "attacker.example")], b"")),
        ("login", raw("GET", &admin, "/login", &[], b"")),
        ("healthz", raw("GET", &admin, "/healthz", &[], b"")),
    ];
    for (what, answer) in &answers {
        let csp = answer.header("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
        for directive in ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "form-action 'self'"] {
            assert!(csp.contains(directive), "{what}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: {csp}");
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"), "{what}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{what}");
        assert!(answer.header("referrer-policy").is_some(), "{what}");
    }
    let page = &answers[0].1;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a script nonce");
    assert!(nonce.len() >= 16);
    assert!(page.body.contains(&format!(r#"<script nonce="{nonce}">"#)) && page.body.contains(&format!(r#"<style nonce="{nonce}">"#)));
    assert!(!page.body.contains("{{nonce}}") && !page.body.contains(" style=\""), "inline code the CSP would block");
    let again = raw("GET", &admin, "/", &[("Authorization", &auth)], b"");
    assert!(!again.header("content-security-policy").unwrap().contains(nonce), "the nonce is reused");
}

/// A runtime as `serve` gets it, with or without a webhook secret.
fn runtime(mock: &MockServer, secret: Option<&str>, db: &std::path::Path) -> Runtime {
    let mut settings = e2e_tests::quick_settings(&mock.base_url(), LOCATION, TOKEN);
    if let Some(secret) = secret {
        settings.set("webhook_secret", secret);
    }
    Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(db).unwrap()).unwrap()
}

/// Finding 4: `Server::start` refuses the webhook listener on a non-loopback address without a
/// webhook secret, and the admin listener on one without an admin token, before binding
/// anything, with an error that says why and names the fix and the loud flag. (The flags are
/// checked on the decision itself, [`access::check_binds`], so that no test binds a public
/// address.)
#[test]
fn unsafe_binds_are_refused_unless_a_loud_flag_allows_them() {
    let mock = mock();
    let dir = host_test::support::scratch_dir("attacker-binds");
    let db = dir.join("state.db");
    for public in ["0.0.0.0:0", "[::]:0"] {
        let options = ServeOptions { listen: public.parse().unwrap(), ..loopback_options() };
        let error = Server::start(runtime(&mock, None, &db), &db, DeadLetters::open(&db).unwrap(), options).err().expect("refused");
        let error = format!("{error:#}");
        for needed in ["not a loopback address", "webhook_secret", access::ALLOW_UNVERIFIED_WEBHOOKS] {
            assert!(error.contains(needed), "{needed:?} not in: {error}");
        }
        let options = ServeOptions { admin_listen: public.parse().unwrap(), ..loopback_options() };
        let error = Server::start(runtime(&mock, Some(SECRET), &db), &db, DeadLetters::open(&db).unwrap(), options).err().expect("refused");
        let error = format!("{error:#}");
        for needed in ["not a loopback address", "without authentication", access::ADMIN_TOKEN_ENV, access::ALLOW_UNAUTHENTICATED_ADMIN] {
            assert!(error.contains(needed), "{needed:?} not in: {error}");
        }
    }
    assert_eq!(access::ALLOW_UNVERIFIED_WEBHOOKS, "--allow-unverified-webhooks-on-public-address");
    assert_eq!(access::ALLOW_UNAUTHENTICATED_ADMIN, "--allow-unauthenticated-admin-on-public-address");
    let (public, local) = ("0.0.0.0:8790".parse().unwrap(), "127.0.0.1:8791".parse().unwrap());
    let loud =
        AccessOptions { allow_unverified_webhooks_on_public_address: true, allow_unauthenticated_admin_on_public_address: true, ..AccessOptions::default() };
    let warnings = access::check_binds(public, public, &loud, false).unwrap();
    assert!(warnings.len() == 2 && warnings.iter().all(|w| w.contains("--allow-")), "{warnings:?}");
    // With the checks in place, a public address needs no flag and warns of nothing.
    let safe = AccessOptions { admin_token: Some(Secret::new(ADMIN_TOKEN)), ..AccessOptions::default() };
    assert!(access::check_binds(public, public, &safe, true).unwrap().is_empty());
    assert!(access::check_binds(local, local, &AccessOptions::default(), false).unwrap().is_empty());
}

/// Finding 5: `state.db` and its `-wal` and `-shm` are owner-only (0600), whether new or left
/// readable by an older host. (The folder itself, the compiled plugin and the binary's flags:
/// `cli/tests/access.rs`.)
#[cfg(unix)]
#[test]
fn the_state_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let mock = mock();
    for older in [false, true] {
        let dir = host_test::support::scratch_dir(if older { "attacker-files-older" } else { "attacker-files" });
        let db = dir.join("state.db");
        if older {
            std::fs::write(&db, b"").unwrap();
            for name in ["state.db", "state.db-wal", "state.db-shm"] {
                let path = dir.join(name);
                if name != "state.db" {
                    std::fs::write(&path, b"").unwrap();
                }
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        let server = Server::start(runtime(&mock, None, &db), &db, DeadLetters::open(&db).unwrap(), loopback_options()).unwrap();
        deliver(&server, "call_inbound_hangup_completed.json");
        for name in ["state.db", "state.db-wal", "state.db-shm"] {
            let path = dir.join(name);
            assert!(path.exists(), "{name} missing");
            assert_eq!(mode(&path), 0o600, "{name} (older host: {older}) is {:o}", mode(&path));
        }
        server.shutdown();
    }
}
