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
pub async fn send(request: http::Request<Body>, timeout: Duration, what: &str) -> Result<Answer, String> {
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
