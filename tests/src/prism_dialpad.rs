//! Stoplight Prism serving Dialpad's official spec (`shared/reference/dialpad/dialpad_api_spec.json`),
//! behind a small recording proxy: the judge of every request the host's Dialpad client
//! (`connect::dialpad`) sends.
//!
//! The client's sender reads only the status and the body of an answer, so the proxy keeps
//! what Prism's verdict is made of: each request as sent, and each answer's headers and body.
//!
//! How Prism (`mock --errors`) answers this spec, which declares no error responses:
//!
//! - a request that breaks the spec gets Prism's own `application/problem+json` refusal, **without
//!   an `sl-violations` header**: 422 `UNPROCESSABLE_ENTITY` (body, path or query, with a
//!   `validation` list), 415 `INVALID_CONTENT_TYPE`, 401 `UNAUTHORIZED` (security scheme), 404
//!   or 405 (no such path or method). [`request_violations`] counts these, and any
//!   `sl-violations` entry located in the request;
//! - an answer built from one of the spec's own examples that breaks the spec's own schema is a
//!   500 whose `sl-violations` are all located in the response: a defect of the spec, not of the
//!   request ([`response_defects`]). The spec's examples write int64 ids as strings (`"id":
//!   "1000"`), so every webhook and subscription example is one; started with
//!   `examples: false` (`--ignoreExamples`), Prism builds its answers from the schemas instead.
//!
//! The spec's global security (an API key as a Bearer or `?apikey=`) also covers
//! `/oauth2/authorize` and `/oauth2/token`, where a client has no key yet (it is getting one).
//! So the proxy adds `apikey=` [`SHIM_KEY`] to those two paths' requests, and marks the exchange
//! `shimmed`: Prism then judges what the client actually sends (the body, the query).
//!
//! Without Prism installed, the tests that use it are ignored (the crate's `build.rs` says so
//! to the runner), unless `REQUIRE_PRISM=1` (CI), where they run and [`DialpadPrism::start`] fails.

use crate::prism::{default_bin, RawResponse, STARTUP_TIMEOUT, VIOLATIONS_HEADER};
use dialpad_ghl_host::capability::outbound::HttpExchange;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Dialpad's spec, where CI lays `../shared` beside the clone.
pub const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/dialpad/dialpad_api_spec.json");
/// The key the proxy adds to `/oauth2/` requests (see the module docs).
pub const SHIM_KEY: &str = "prism-oauth-shim";
/// Prism's refusals name their kind with this prefix.
const PRISM_ERRORS: &str = "https://stoplight.io/prism/errors#";

/// One request through the proxy and Prism's answer.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    /// As the client sent it (before the shim).
    pub path_and_query: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    /// Whether the proxy added [`SHIM_KEY`].
    pub shimmed: bool,
    /// 0 when Prism could not be reached.
    pub status: u16,
    /// Names lowercased.
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
}

impl Exchange {
    /// `METHOD path → status`.
    pub fn line(&self) -> String {
        format!("{} {} → {}{}", self.method, self.path_and_query, self.status, if self.shimmed { " (apikey shim)" } else { "" })
    }

    /// An exchange of the host's outbound log (`Runtime::http_log`), so [`request_violations`]
    /// can judge what the plugin sent through the host, to this Prism or to any other.
    pub fn from_host_log(e: &HttpExchange) -> Exchange {
        let path_and_query = e.url.split_once("://").map_or(e.url.as_str(), |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..])).to_string();
        Exchange {
            method: e.method.clone(),
            path_and_query,
            request_headers: e.request_headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect(),
            request_body: e.request_body.clone().unwrap_or_default(),
            shimmed: false,
            status: e.status.unwrap_or(0),
            response_headers: e.response_headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect(),
            response_body: e.response_body.clone().unwrap_or_default(),
        }
    }

    /// As the host's outbound log would have it, for [`crate::prism`]'s detectors.
    fn as_http_exchange(&self) -> HttpExchange {
        HttpExchange {
            method: self.method.clone(),
            url: self.path_and_query.clone(),
            status: Some(self.status),
            response_headers: self.response_headers.clone(),
            outcome: "ok".into(),
            ..HttpExchange::default()
        }
    }
}

/// Prism on the Dialpad spec, and the proxy in front of it; both stopped on drop.
pub struct DialpadPrism {
    /// The proxy: point the client here. `http://127.0.0.1:<port>`, no trailing slash.
    pub base_url: String,
    /// Prism itself.
    pub prism_url: String,
    child: Child,
    log_path: PathBuf,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    stop: Arc<AtomicBool>,
    proxy_addr: std::net::SocketAddr,
    proxy: Option<JoinHandle<()>>,
}

impl DialpadPrism {
    /// Starts Prism (`--errors`, and `--ignoreExamples` unless `examples`) on a free loopback
    /// port, waits until it answers, and starts the proxy. Panics when Prism is not installed
    /// (`PRISM_BIN`, or [`default_bin`]), the spec is missing, or Prism does not come up.
    pub fn start(examples: bool) -> DialpadPrism {
        let bin = std::env::var_os("PRISM_BIN").map(PathBuf::from).unwrap_or_else(default_bin);
        assert!(bin.is_file(), "Prism is not installed: {} does not exist; run tests/prism/install.sh (needs Node.js and npm) or set PRISM_BIN", bin.display());
        assert!(std::path::Path::new(SPEC).is_file(), "Dialpad's spec is missing: {SPEC} (is ../shared beside the clone?)");
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let log_path = std::env::temp_dir().join(format!("e2e-prism-dialpad-{}-{}.log", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));

        // A free port found by binding port 0 may be taken before Prism binds it: a Prism that
        // exits before answering is started again on a new port.
        for _attempt in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("finding a free loopback port").port();
            let log = File::create(&log_path).expect("creating the Prism log");
            let mut command = Command::new(&bin);
            command.arg("mock").arg(SPEC).args(["--errors", "--host", "127.0.0.1", "--port", &port.to_string()]);
            if !examples {
                command.arg("--ignoreExamples");
            }
            let mut child = command
                .env("SCARF_ANALYTICS", "false")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().expect("the Prism log")))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("starting {} (is node on PATH?): {e}", bin.display()));
            let prism_url = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("prism exited before answering ({status}); log:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
                    break;
                }
                if forward(&prism_url, "GET", "/api/v2/webhooks", &[("authorization".into(), "Bearer probe".into())], b"").is_ok() {
                    eprintln!("prism: Dialpad's spec served on {prism_url} after {} ms", started.elapsed().as_millis());
                    return DialpadPrism::with_proxy(prism_url, child, log_path);
                }
                if started.elapsed() > STARTUP_TIMEOUT {
                    let _ = child.kill();
                    panic!("Prism did not answer on {prism_url} within {STARTUP_TIMEOUT:?}; log:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.wait();
        }
        panic!("Prism ({}) exited before answering, 3 times", bin.display());
    }

    fn with_proxy(prism_url: String, child: Child, log_path: PathBuf) -> DialpadPrism {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let proxy_addr = listener.local_addr().expect("the proxy's address");
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping, upstream) = (Arc::clone(&exchanges), Arc::clone(&stop), prism_url.clone());
        let proxy = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                // One request a connection, in turn: the client opens one per request.
                relay(stream, &upstream, &log);
            }
        });
        DialpadPrism { base_url: format!("http://{proxy_addr}"), prism_url, child, log_path, exchanges, stop, proxy_addr, proxy: Some(proxy) }
    }

    /// Every exchange so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes the exchanges so far, leaving none.
    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.exchanges.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What Prism has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// One request through the proxy (so it is recorded), `Connection: close`.
    pub fn send_raw(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: Option<&str>) -> RawResponse {
        let mut stream = TcpStream::connect(self.proxy_addr).expect("connecting to the proxy");
        let mut request = format!("{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.proxy_addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{}", body.map_or(0, str::len), body.unwrap_or_default()));
        stream.write_all(request.as_bytes()).expect("writing to the proxy");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("reading from the proxy");
        let (status, headers, body) = parse_response(&raw).expect("the proxy answers HTTP");
        RawResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
    }
}

impl Drop for DialpadPrism {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.proxy_addr);
        if let Some(proxy) = self.proxy.take() {
            let _ = proxy.join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Reads one request from the client, sends it on to Prism, records the exchange, and hands
/// Prism's answer back: recorded first, so whoever reads the log after the answer finds it.
fn relay(client: TcpStream, upstream: &str, log: &Mutex<Vec<Exchange>>) -> Option<()> {
    client.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path_and_query) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)?
    } else {
        let mut body = vec![0; find("content-length").and_then(|v| v.parse().ok()).unwrap_or(0)];
        reader.read_exact(&mut body).ok()?;
        body
    };

    let shimmed = path_and_query.starts_with("/oauth2/");
    let sent_path = if shimmed {
        let sep = if path_and_query.contains('?') { '&' } else { '?' };
        format!("{path_and_query}{sep}apikey={SHIM_KEY}")
    } else {
        path_and_query.clone()
    };
    let kept: Vec<(String, String)> =
        headers.iter().filter(|(n, _)| !matches!(n.as_str(), "host" | "connection" | "content-length" | "transfer-encoding")).cloned().collect();
    let (status, response_headers, response_body) = match forward(upstream, &method, &sent_path, &kept, &body) {
        Ok(answer) => answer,
        Err(e) => (502, vec![], format!("the proxy could not reach Prism: {e}").into_bytes()),
    };

    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in response_headers.iter().filter(|(n, _)| !matches!(n.as_str(), "connection" | "content-length" | "transfer-encoding" | "keep-alive")) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", response_body.len()));
    let exchange = Exchange {
        method,
        path_and_query,
        request_headers: headers,
        request_body: String::from_utf8_lossy(&body).into_owned(),
        shimmed,
        status: if (100..600).contains(&status) { status } else { 0 },
        response_headers,
        response_body: String::from_utf8_lossy(&response_body).into_owned(),
    };
    log.lock().unwrap_or_else(|e| e.into_inner()).push(exchange);
    let mut out = client;
    let _ = out.write_all(head.as_bytes()).and_then(|()| out.write_all(&response_body));
    let _ = out.flush();
    Some(())
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown")
}

fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// One request to Prism, `Connection: close`: status, headers (names lowercased), body.
fn forward(upstream: &str, method: &str, path_and_query: &str, headers: &[(String, String)], body: &[u8]) -> std::io::Result<Answer> {
    let authority = upstream.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("{method} {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw))))
}

fn parse_response(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.")?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { read_chunked(&mut BufReader::new(rest))? } else { rest.to_vec() };
    Some((status, headers, body))
}

/// Every exchange whose request Prism found to break the spec: `METHOD path → status: what`.
/// Prism's own refusals (422, 415, 401, 404, 405) and `sl-violations` located in the request.
pub fn request_violations(exchanges: &[Exchange]) -> Vec<String> {
    let mut found = crate::prism::violations(&exchanges.iter().map(Exchange::as_http_exchange).collect::<Vec<_>>());
    for e in exchanges {
        let json: serde_json::Value = serde_json::from_str(&e.response_body).unwrap_or_default();
        let kind = json["type"].as_str().and_then(|t| t.strip_prefix(PRISM_ERRORS));
        if let Some(kind) = kind.filter(|k| *k != "VIOLATIONS") {
            let details: Vec<&str> = json["validation"].as_array().map(|v| v.iter().filter_map(|v| v["message"].as_str()).collect()).unwrap_or_default();
            let detail = if details.is_empty() { json["title"].as_str().unwrap_or("?").to_string() } else { details.join("; ") };
            found.push(format!("{} {} → {}: {kind}: {detail}", e.method, e.path_and_query, e.status));
        } else if e.status == 0 || e.status == 502 {
            found.push(format!("{}: {}", e.line(), e.response_body));
        }
    }
    found
}

/// Every `sl-violations` entry located in Prism's answer: the spec's example breaks the spec's
/// own schema (Prism answers 500).
pub fn response_defects(exchanges: &[Exchange]) -> Vec<String> {
    crate::prism::response_defects(&exchanges.iter().map(Exchange::as_http_exchange).collect::<Vec<_>>())
}

/// Whether `e` carries Prism's violations header at all.
pub fn flagged(e: &Exchange) -> bool {
    e.response_headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(VIOLATIONS_HEADER))
}
