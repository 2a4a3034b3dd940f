//! Small helpers the tests and tools share.

/// A fresh, empty directory for one test or tool run: under the system's temporary directory,
/// named after `name` and this process, emptied first.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
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
    use std::io::{Read as _, Write as _};
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(|| invalid("only http:// URLs"))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n{extra}Connection: close\r\n\r\n",
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
