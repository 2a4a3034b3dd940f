//! Stoplight Prism (`@stoplight/prism-cli`, installed by `tests/prism/install.sh`) serving one of
//! the official specs ([`Spec`]): HighLevel's Contacts, Conversations and Users specs and
//! Dialpad's, third-party judges of every request the plugin sends there, or HighLevel's OAuth
//! spec, the judge of the host's Marketplace client. HighLevel's APIs share one origin
//! (`api_base`), so a plugin talking to several of them goes through a
//! [`RecordingProxy::start_routed`] that sends each path prefix to its spec's Prism.
//!
//! Prism runs as `prism mock <spec> --errors`: a request that breaks the spec is answered with an
//! error status (422 for the body, 400 for query and header parameters, 401 for the security
//! scheme) and an `sl-violations` header
//! listing what is wrong; a conforming request gets a response built from the spec's examples
//! (static, not stateful). [`violations`] collects those headers from the host's outbound log,
//! or from a [`RecordingProxy`]'s for a client that keeps no log of headers. Dialpad's spec
//! declares no error responses, so Prism refuses a request that breaks it without that header
//! (see [`crate::prism_dialpad::request_violations`]).
//!
//! Without Prism installed, the tests that use it are ignored (the crate's `build.rs` says so
//! to the runner), unless `REQUIRE_PRISM=1` (CI), where they run and [`Prism::start`] fails.

use dialpad_ghl_host::capability::outbound::HttpExchange;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long Prism may take to load the spec and listen (it takes 2–5 s on 2 cores).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// The response header Prism adds to an answer for a request that breaks the spec.
pub const VIOLATIONS_HEADER: &str = "sl-violations";

/// HighLevel's OAuth spec, read where CI lays `../shared` beside the clone (no crate embeds it).
pub const OAUTH_SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/ghl/oauth.openapi.json");

/// Which spec Prism serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spec {
    /// The Contacts API, `apps/contacts.json` (embedded by `contacts-api`).
    Contacts,
    /// OAuth 2.0: `/oauth/token`, `/oauth/locationToken`, `/oauth/installedLocations`
    /// ([`OAUTH_SPEC_PATH`]).
    OAuth,
    /// The Conversations API, `apps/conversations.json` (`contacts-api/spec`, verbatim).
    Conversations,
    /// The Users API, `apps/users.json` (`contacts-api/spec`, verbatim).
    Users,
    /// Dialpad's API, `dialpad/dialpad_api_spec.json` (`contacts-api/spec`, verbatim): no
    /// `Version` header; its security (an API key as a Bearer token or `?apikey=`) is met by
    /// `Authorization: Bearer <anything>`.
    Dialpad,
}

/// The Conversations spec, as `contacts-api` keeps it (verbatim from `../shared/reference/ghl`).
pub const CONVERSATIONS_SPEC_JSON: &str = include_str!("../../contacts-api/spec/apps/conversations.json");
/// The Users spec, the same way.
pub const USERS_SPEC_JSON: &str = include_str!("../../contacts-api/spec/apps/users.json");
/// Dialpad's spec, the same way.
pub const DIALPAD_SPEC_JSON: &str = include_str!("../../contacts-api/spec/dialpad/dialpad_api_spec.json");

impl Spec {
    /// Where the spec lies upstream; HighLevel's `$ref` their error schemas as `../common/common-schemas.json`.
    fn file(self) -> &'static str {
        match self {
            Spec::Contacts => "apps/contacts.json",
            Spec::OAuth => "apps/oauth.json",
            Spec::Conversations => "apps/conversations.json",
            Spec::Users => "apps/users.json",
            Spec::Dialpad => "dialpad/dialpad_api_spec.json",
        }
    }

    fn text(self) -> String {
        match self {
            Spec::Contacts => contacts_api::SPEC_JSON.to_string(),
            Spec::OAuth => std::fs::read_to_string(OAUTH_SPEC_PATH).unwrap_or_else(|e| panic!("reading {OAUTH_SPEC_PATH}: {e}")),
            Spec::Conversations => CONVERSATIONS_SPEC_JSON.to_string(),
            Spec::Users => USERS_SPEC_JSON.to_string(),
            Spec::Dialpad => DIALPAD_SPEC_JSON.to_string(),
        }
    }

    /// A conforming request to see whether Prism answers (any status will do).
    fn probe(self) -> &'static str {
        match self {
            Spec::Contacts => "/contacts/search/duplicate?locationId=probe",
            Spec::OAuth => "/oauth/installedLocations?companyId=probe&appId=probe",
            Spec::Conversations => "/conversations/search?locationId=probe",
            Spec::Users => "/users/?locationId=probe",
            Spec::Dialpad => "/api/v2/webhooks",
        }
    }

    /// The `Version` header the spec's operations require (Dialpad's require none).
    pub fn version(self) -> Option<&'static str> {
        match self {
            Spec::Conversations => Some(contacts_api::CONVERSATIONS_VERSION_HEADER),
            Spec::Contacts | Spec::OAuth | Spec::Users => Some(contacts_api::API_VERSION_HEADER),
            Spec::Dialpad => None,
        }
    }
}

/// A running Prism mock of one spec on loopback; killed on drop.
pub struct Prism {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub base_url: String,
    child: Child,
    /// Temporary directory holding the spec (`apps/…json`), `common/common-schemas.json` and
    /// `prism.log` (Prism's stdout and stderr); removed on drop.
    dir: PathBuf,
    spec: Spec,
}

/// One answer to [`Prism::send_raw`].
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Where `install.sh` puts the binary.
pub fn default_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prism/node_modules/.bin/prism")
}

impl Prism {
    /// Starts Prism serving the Contacts spec; see [`Prism::start_spec`].
    pub fn start() -> Prism {
        Prism::start_spec(Spec::Contacts)
    }

    /// Starts Prism serving `spec` on a free loopback port and waits until it answers. Panics
    /// when it is not installed (the binary at `PRISM_BIN`, or [`default_bin`], does not exist)
    /// or does not come up.
    pub fn start_spec(spec: Spec) -> Prism {
        let bin = std::env::var_os("PRISM_BIN").map(PathBuf::from).unwrap_or_else(default_bin);
        assert!(bin.is_file(), "Prism is not installed: {} does not exist; run tests/prism/install.sh (needs Node.js and npm) or set PRISM_BIN", bin.display());

        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("e2e-prism-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));

        // The free port is found by binding port 0 and letting it go, so another process may
        // take it first: a Prism that exits before answering is started again on a new port.
        let mut last_log = String::new();
        for _attempt in 0..3 {
            lay_out_spec(&dir, spec);
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("finding a free loopback port").port();
            let log_path = dir.join("prism.log");
            let log = File::create(&log_path).expect("creating prism.log");
            let child = Command::new(&bin)
                .arg("mock")
                .arg(dir.join(spec.file()))
                .args(["--errors", "--host", "127.0.0.1", "--port", &port.to_string()])
                .env("SCARF_ANALYTICS", "false")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().expect("prism.log")))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("starting {} (is node on PATH?): {e}", bin.display()));
            let mut prism = Prism { base_url: format!("http://127.0.0.1:{port}"), child, dir: dir.clone(), spec };
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = prism.child.try_wait() {
                    last_log = prism.log();
                    eprintln!("prism exited before answering ({status}); log:\n{last_log}");
                    break;
                }
                if prism.probe() {
                    eprintln!("prism: listening on {} after {} ms ({})", prism.base_url, started.elapsed().as_millis(), bin.display());
                    return prism;
                }
                if started.elapsed() > STARTUP_TIMEOUT {
                    panic!("Prism did not answer on {} within {STARTUP_TIMEOUT:?}; log:\n{}", prism.base_url, prism.log());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            // Dropping `prism` reaps the process and removes the directory; the next attempt lays it out again.
        }
        panic!("Prism ({}) exited before answering, 3 times; last log:\n{last_log}", bin.display());
    }

    /// True once Prism answers HTTP (the probe is a conforming request of the spec; any status will do).
    fn probe(&self) -> bool {
        let mut headers = vec![("Authorization", "Bearer probe")];
        headers.extend(self.spec.version().map(|v| ("Version", v)));
        self.send_raw("GET", self.spec.probe(), &headers, None).is_ok_and(|r| r.status > 0)
    }

    /// The directory the spec was laid out in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What Prism has printed so far (it logs each request, and each violation).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prism.log")).unwrap_or_default()
    }

    /// Sends one HTTP/1.1 request straight to Prism (not through the host), `Connection: close`.
    pub fn send_raw(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: Option<&str>) -> std::io::Result<RawResponse> {
        self.send_bytes(method, path_and_query, headers, body.map(str::as_bytes))
    }

    /// [`Prism::send_raw`] with a body of bytes (a multipart body need not be text).
    pub fn send_bytes(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> std::io::Result<RawResponse> {
        let authority = self.base_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(authority)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut request = format!("{method} {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body.unwrap_or_default());
        stream.write_all(&request)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        parse_response(&raw)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw))))
    }
}

/// Writes the spec in the upstream layout, `apps/<spec>.json` + `common/common-schemas.json`:
/// every one of HighLevel's specs `$ref`s its error schemas as `../common/common-schemas.json`
/// (Dialpad's, in `dialpad/`, refers to no other file).
fn lay_out_spec(dir: &Path, spec: Spec) {
    let _ = std::fs::remove_dir_all(dir);
    let text = spec.text();
    for (path, text) in [(spec.file(), text.as_str()), ("common/common-schemas.json", contacts_api::COMMON_SCHEMAS_JSON)] {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

fn parse_response(raw: &[u8]) -> Option<RawResponse> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.")?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    Some(RawResponse { status, headers, body: body.to_string() })
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every request Prism found to break the spec: `METHOD url → status: <violations>`. Only
/// violations located in the request count; see [`response_defects`] for the others.
pub fn violations(log: &[HttpExchange]) -> Vec<String> {
    located(log, |location| location != "response")
}

/// Violations located in Prism's *response*: the spec's own example does not match the
/// spec's own response schema (a defect of the spec, not of the request). Prism answers 500.
pub fn response_defects(log: &[HttpExchange]) -> Vec<String> {
    located(log, |location| location == "response")
}

fn located(log: &[HttpExchange], keep: impl Fn(&str) -> bool) -> Vec<String> {
    log.iter()
        .flat_map(|e| {
            let status = e.status.map_or_else(|| e.outcome.clone(), |s| s.to_string());
            e.response_headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(VIOLATIONS_HEADER))
                .filter_map(|(_, value)| {
                    // The header is a JSON list of {location: [...], message, ...}; a header that
                    // does not parse counts, so a format change cannot hide a violation.
                    let kept: Vec<String> = match serde_json::from_str::<serde_json::Value>(value) {
                        Ok(serde_json::Value::Array(items)) => items
                            .iter()
                            .filter(|v| keep(v["location"][0].as_str().unwrap_or("")))
                            .map(|v| v["message"].as_str().unwrap_or("?").to_string())
                            .collect(),
                        _ if keep("") => vec![value.clone()],
                        _ => Vec::new(),
                    };
                    (!kept.is_empty()).then(|| format!("{} {} → {status}: {}", e.method, e.url, kept.join("; ")))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A loopback proxy in front of a server (Prism) that keeps every exchange, headers included,
/// as an [`HttpExchange`]: the host's own clients (`connect::*`) hand back only the status and
/// the body, and Prism's verdict is a header. One request per connection, answered and closed;
/// stopped on drop.
pub struct RecordingProxy {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub base_url: String,
    log: Arc<Mutex<Vec<HttpExchange>>>,
    steers: Arc<Mutex<Vec<Steer>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingProxy {
    /// Proxies to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> RecordingProxy {
        RecordingProxy::start_routed(&[("", upstream)])
    }

    /// Proxies each request to the upstream of the first `(path prefix, upstream)` whose prefix
    /// the request's path starts with (`""` matches every path): one origin in front of several
    /// Prisms, as HighLevel's APIs share one. A request no prefix matches gets a 502.
    pub fn start_routed(routes: &[(&str, &str)]) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let base_url = format!("http://{}", listener.local_addr().expect("the proxy's address"));
        let (log, stop, steers) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let routes: Vec<(String, String)> =
            routes.iter().map(|(prefix, upstream)| (prefix.to_string(), upstream.trim_start_matches("http://").to_string())).collect();
        let (keep, stopped, steering) = (log.clone(), stop.clone(), steers.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    forward(stream, &routes, &keep, &steering);
                }
            }
        });
        RecordingProxy { base_url, log, steers, stop, thread: Some(thread) }
    }

    /// Steers the client down a path Prism's static examples never take: the next `method`
    /// request whose path (without the query) is `path` is still sent to Prism and judged, and
    /// when Prism accepts it (a 2xx without `sl-violations`) the client gets `body` (JSON) with
    /// that status instead of the example. A refused request keeps Prism's answer. Used once.
    pub fn steer(&self, method: &str, path: &str, body: &str) {
        self.steers.lock().unwrap_or_else(|e| e.into_inner()).push(Steer { method: method.into(), path: path.into(), body: body.into() });
    }

    /// The exchanges so far, emptying the log.
    pub fn take(&self) -> Vec<HttpExchange> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.base_url.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A canned answer for one request that Prism accepted ([`RecordingProxy::steer`]).
struct Steer {
    method: String,
    path: String,
    body: String,
}

/// Reads one request from `client`, sends it to the upstream its path routes to with
/// `Connection: close`, logs the exchange and passes the answer back as it came (logged first,
/// so a client that has its answer finds it in the log), or steered; nothing when the client
/// sent no whole request.
fn forward(mut client: TcpStream, routes: &[(String, String)], log: &Mutex<Vec<HttpExchange>>, steers: &Mutex<Vec<Steer>>) -> Option<()> {
    let started = Instant::now();
    client.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = client.read(&mut chunk).ok().filter(|n| *n > 0)?;
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    let length = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    let (method, target) = request_line.split_once(' ').map(|(m, rest)| (m.to_string(), rest.rsplit_once(' ').map_or(rest, |(t, _)| t).to_string()))?;
    let path = target.split('?').next().unwrap_or(&target).to_string();
    let upstream = routes.iter().find(|(prefix, _)| path.starts_with(prefix.as_str())).map_or("", |(_, upstream)| upstream.as_str());

    let mut request = format!("{request_line}\r\n");
    for (name, value) in headers.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("connection")) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let answer = TcpStream::connect(upstream).and_then(|mut server| {
        if upstream.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no route for {path}")));
        }
        server.set_read_timeout(Some(Duration::from_secs(30)))?;
        server.write_all(request.as_bytes())?;
        server.write_all(&body)?;
        let mut answer = Vec::new();
        server.read_to_end(&mut answer)?;
        Ok(answer)
    });
    let mut parsed = answer.as_ref().ok().and_then(|a| parse_response(a));
    let mut answer = answer;
    let accepted = parsed.as_ref().is_some_and(|r| (200..300).contains(&r.status) && r.header(VIOLATIONS_HEADER).is_none());
    let steer = {
        let mut steers = steers.lock().unwrap_or_else(|e| e.into_inner());
        let found = steers.iter().position(|s| s.method.eq_ignore_ascii_case(&method) && s.path == path).filter(|_| accepted);
        found.map(|i| steers.remove(i))
    };
    if let (Some(steer), Some(prism)) = (steer, parsed.as_mut()) {
        let status = prism.status;
        answer = Ok(format!(
            "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            steer.body.len(),
            steer.body
        )
        .into_bytes());
        prism.body = steer.body;
        prism.headers = vec![("content-type".into(), "application/json".into())];
    }
    let exchange = HttpExchange {
        method,
        url: format!("http://{upstream}{target}"),
        request_headers: headers.into_iter().map(|(n, v)| if n.eq_ignore_ascii_case("authorization") { (n, "[redacted]".into()) } else { (n, v) }).collect(),
        status: parsed.as_ref().map(|r| r.status),
        response_headers: parsed.as_ref().map(|r| r.headers.clone()).unwrap_or_default(),
        outcome: match &answer {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        },
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        // Token requests carry the client secret: the log keeps no request body.
        request_body: None,
        response_body: parsed.map(|r| r.body),
    };
    log.lock().unwrap_or_else(|e| e.into_inner()).push(exchange);
    let _ = client.write_all(answer.as_deref().unwrap_or(&b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..]));
    let _ = client.shutdown(std::net::Shutdown::Both);
    Some(())
}
