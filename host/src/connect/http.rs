//! One small HTTP client for the host's own requests (token endpoints, HighLevel's install
//! endpoints, Dialpad's webhook registration): wasmtime-wasi-http's `default_send_request`, the
//! client every plugin request goes through, so TLS and timeouts behave the same.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions};

/// A request body for [`send`].
pub type Body = http_body_util::combinators::BoxBody<Bytes, HttpError>;

/// A body from bytes (empty for a GET or a DELETE).
pub fn body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A form-encoded body, as OAuth token endpoints take it.
pub fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Body {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    body(form.finish())
}

/// An answer: the status and the whole body (parsed as JSON by [`Answer::json`]).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// The error fields of a refusal only (`error`, `message`): a refusal's body carries no
    /// secret, but say no more than needed.
    pub fn reason(&self) -> String {
        let json = self.json();
        json["error_description"]
            .as_str()
            .or(json["error"].as_str())
            .or(json["message"].as_str())
            .or(json["error"]["message"].as_str())
            .unwrap_or("refused")
            .to_string()
    }
}

/// Sends `request` and reads the whole answer within `timeout` (each phase and in total).
/// `what` names the endpoint in the error (`"token endpoint"`).
pub async fn send(mut request: http::Request<Body>, timeout: Duration, what: &str) -> Result<Answer, String> {
    // The connection-level client sends the headers it is given and no more, and HTTP/1.1
    // requires `Host` (RFC 9112 §3.2): a server may answer 400 without it, and Node's does.
    if !request.headers().contains_key(http::header::HOST) {
        let host = request.uri().authority().and_then(|a| http::HeaderValue::from_str(a.as_str().rsplit('@').next()?).ok());
        if let Some(host) = host {
            request.headers_mut().insert(http::header::HOST, host);
        }
    }
    let options = RequestOptions { connect_timeout: Some(timeout), first_byte_timeout: Some(timeout), between_bytes_timeout: Some(timeout) };
    let answer = async {
        let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
        tokio::spawn(io);
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, HttpError>(Answer { status, body })
    };
    tokio::time::timeout(timeout, answer).await.map_err(|_| format!("{what}: no answer in {} ms", timeout.as_millis()))?.map_err(|e| format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// What a server on loopback receives from [`send`], with its answer.
    fn head_received(request: impl FnOnce(String) -> http::Request<Body>) -> (String, Answer) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}").unwrap();
            String::from_utf8(head).unwrap().to_ascii_lowercase()
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let answer = runtime.block_on(send(request(base), Duration::from_secs(5), "test")).unwrap();
        (server.join().unwrap(), answer)
    }

    #[test]
    fn the_host_header_comes_from_the_uri() {
        let (head, answer) = head_received(|base| http::Request::get(format!("{base}/a?b=c")).body(body(Bytes::new())).unwrap());
        let authority = head.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_string);
        assert!(head.starts_with("get /a?b=c http/1.1\r\n"), "{head}");
        assert!(authority.as_deref().is_some_and(|a| a.starts_with("127.0.0.1:")), "{head}");
        assert_eq!((answer.status, answer.json()), (200, serde_json::json!({})));

        let (head, _) = head_received(|base| http::Request::get(format!("{base}/")).header("Host", "api.example").body(body(Bytes::new())).unwrap());
        assert_eq!(head.matches("host:").count(), 1, "{head}");
        assert!(head.contains("host: api.example\r\n"), "one given is kept: {head}");
    }
}
