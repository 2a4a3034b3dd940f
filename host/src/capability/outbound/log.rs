//! The request/response log of outbound exchanges, with credentials redacted from headers and
//! bodies.

use crate::capability::secret::Secret;
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// One outbound exchange as the host saw it.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HttpExchange {
    pub method: String,
    pub url: String,
    /// Request headers as sent, with credential values replaced by `[redacted]`.
    pub request_headers: Vec<(String, String)>,
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    /// `ok`, `denied: …`, `timeout after …`, or the transport error.
    pub outcome: String,
    pub elapsed_ms: u64,
    /// The body sent, as text (cut at [`BODY_SHOWN_BYTES`]), with the credential redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    /// The body received, the same way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

/// How much of a body the log keeps: Contacts API bodies are small JSON documents.
pub const BODY_SHOWN_BYTES: usize = 16 * 1024;

/// A body as the log shows it: text cut at [`BODY_SHOWN_BYTES`], the credential redacted.
pub(super) fn shown_body(bytes: &[u8], credential: Option<&Secret>) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let Ok(text) = std::str::from_utf8(bytes) else { return Some(format!("<{} bytes, not text>", bytes.len())) };
    let mut text = match credential {
        Some(c) if !c.expose().is_empty() => text.replace(c.expose(), "[redacted]"),
        _ => text.to_string(),
    };
    if text.len() > BODY_SHOWN_BYTES {
        let cut = (0..=BODY_SHOWN_BYTES).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push_str(&format!("… ({} bytes in all)", bytes.len()));
    }
    Some(text)
}

/// The shared log of outbound exchanges.
#[derive(Clone, Default)]
pub struct HttpLog(Arc<Mutex<Vec<HttpExchange>>>);

impl HttpLog {
    pub fn entries(&self) -> Vec<HttpExchange> {
        self.0.lock().unwrap().clone()
    }
    pub fn take(&self) -> Vec<HttpExchange> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    pub(super) fn push(&self, exchange: HttpExchange) {
        match exchange.status {
            Some(status) => tracing::info!(target: "outbound", "{} {} → {status} ({} ms)", exchange.method, exchange.url, exchange.elapsed_ms),
            None => tracing::warn!(target: "outbound", "{} {} → {}", exchange.method, exchange.url, exchange.outcome),
        }
        self.0.lock().unwrap().push(exchange);
    }
}

/// Header list with `Authorization`, cookies, and any value containing the credential redacted.
pub(super) fn redacted(headers: &http::HeaderMap, credential: Option<&Secret>) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let text = value.to_str().unwrap_or("<binary>");
            let sensitive = matches!(name.as_str(), "authorization" | "cookie" | "set-cookie" | "proxy-authorization")
                || credential.is_some_and(|c| !c.expose().is_empty() && text.contains(c.expose()));
            let shown = if sensitive { "[redacted]".to_string() } else { text.to_string() };
            (name.as_str().to_string(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderValue, AUTHORIZATION};

    #[test]
    fn credentials_never_show_in_header_lists() {
        let mut h = http::HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tok-123"));
        h.insert("x-echo", HeaderValue::from_static("tok-123"));
        h.insert("version", HeaderValue::from_static("2021-07-28"));
        let shown = redacted(&h, Some(&Secret::new("tok-123")));
        assert!(shown.iter().all(|(_, v)| !v.contains("tok-123")), "{shown:?}");
        assert!(shown.contains(&("version".into(), "2021-07-28".into())));
        assert_eq!(format!("{:?}", Secret::new("tok-123")), "Secret([redacted])");
    }
}
