//! Small helpers the tests and tools share.

/// A fresh, empty directory for one test or tool run: under the system's temporary directory,
/// named after `name`, this process and a count of the calls in it, emptied first. The count
/// keeps two tests that run at once in one process (a test on both stores) from sharing, and
/// emptying, one directory.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{name}-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// One HTTP/1.1 request to a loopback `http://` URL, for tests and tools that talk to the
/// servers here: `(status, body)`. The connection is closed after the answer.
pub fn loopback_request(method: &str, url: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    loopback_response(method, url, &[], body).map(|(status, _, body)| (status, body))
}

/// [`loopback_request`] with more request headers (a signature, say).
pub fn loopback_request_with_headers(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<(u16, String)> {
    loopback_response(method, url, headers, body).map(|(status, _, body)| (status, body))
}

/// An answer's headers, in order, names lowercased.
pub type Headers = Vec<(String, String)>;

/// [`loopback_request`] with the answer's headers too, for a redirect's `Location`:
/// `(status, headers, body)`.
pub fn loopback_exchange(method: &str, url: &str, body: &[u8]) -> std::io::Result<(u16, Headers, String)> {
    loopback_response(method, url, &[], body)
}

/// [`loopback_request_with_headers`] with the answer's headers.
pub fn loopback_response(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<(u16, Headers, String)> {
    loopback_typed(method, url, "application/json", headers, body)
}

/// [`loopback_response`] with another `Content-Type` than JSON (a signed Dialpad event is a
/// JWT, not JSON).
pub fn loopback_typed(method: &str, url: &str, content_type: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<(u16, Headers, String)> {
    use std::io::{Read as _, Write as _};
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(|| invalid("only http:// URLs"))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nContent-Type: {content_type}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    // A server may answer (413) before reading a large body, and close: that is its answer.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| invalid("no end of the response head"))?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("no status"))?;
    let answer_headers: Headers =
        head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        return Ok((status, answer_headers, body.to_string()));
    }
    let (mut decoded, mut rest) = (String::new(), body);
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 || after.len() < size {
            break;
        }
        decoded.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    Ok((status, answer_headers, decoded))
}

/// Prints one of the test suites' figures (events, faults, cases) where `cargo test` shows it
/// even for a passing test: straight to the process's stderr, which the test harness's output
/// capture (it captures the `print!` macros) does not intercept.
#[macro_export]
macro_rules! figure {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// One request a [`Catcher`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caught {
    pub method: String,
    pub path: String,
    /// Names lowercased.
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Caught {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP receiver for the webhooks the mocks send: records every request and answers
/// each with the status of [`Catcher::answer_with`] (200 at first). Serves from a thread of its
/// own until dropped.
pub struct Catcher {
    addr: std::net::SocketAddr,
    caught: std::sync::Arc<std::sync::Mutex<Vec<Caught>>>,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Catcher {
    pub fn start() -> std::io::Result<Catcher> {
        use std::sync::atomic::{AtomicBool, AtomicU16};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let caught = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let status = std::sync::Arc::new(AtomicU16::new(200));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (into, answer, stopped) = (caught.clone(), status.clone(), stop.clone());
        std::thread::Builder::new().name(format!("catcher-{}", addr.port())).spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    // A broken request is the sender's problem; the next one is served.
                    let _ = catch_one(stream, &into, answer.load(std::sync::atomic::Ordering::SeqCst));
                }
            }
        })?;
        Ok(Catcher { addr, caught, status, stop })
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The status every later request is answered with.
    pub fn answer_with(&self, status: u16) {
        self.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn caught(&self) -> Vec<Caught> {
        self.caught.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Drop for Catcher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

fn catch_one(stream: std::net::TcpStream, into: &std::sync::Mutex<Vec<Caught>>, status: u16) -> std::io::Result<()> {
    use std::io::{BufRead as _, Read as _, Write as _};
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    let mut headers = Headers::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        match line.trim_end().split_once(':') {
            Some((name, value)) => headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string())),
            None => break,
        }
    }
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    into.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Caught { method, path, headers, body });
    reader.get_mut().write_all(format!("HTTP/1.1 {status} Answer\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes())
}
