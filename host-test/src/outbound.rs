//! Outbound HTTP policy, applied in `WasiHttpHooks::send_request` to every request the plugin
//! makes (Spin and wasmCloud put theirs in the same place):
//!
//! - fail-closed allowlist: only the configured origins (scheme, host, port) are reachable,
//!   judged from the request URI, never from a `Host` header;
//! - credential injection: the host adds `Authorization` for the origin it belongs to, so the
//!   token never enters the sandbox;
//! - a host-side deadline (wasmtime's default waits up to 600 s);
//! - a request/response log in which credentials are redacted.

use http::header::{HeaderValue, AUTHORIZATION};
use http_body_util::BodyExt;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// A secret value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Scheme, host and port: what the allowlist compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `http(s)://host[:port]` (a path, if any, is ignored).
    pub fn parse(url: &str) -> anyhow::Result<Origin> {
        let uri: http::Uri = url.parse().map_err(|e| anyhow::anyhow!("{url:?} is not a URL: {e}"))?;
        Origin::of(&uri).ok_or_else(|| anyhow::anyhow!("{url:?} is not an http(s) origin"))
    }

    pub fn of(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        Some(Origin { host: uri.host()?.to_ascii_lowercase(), port: uri.port_u16().unwrap_or(default_port), scheme })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// One outbound exchange as the host saw it.
#[derive(Clone, Debug, Serialize, PartialEq)]
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
    fn push(&self, exchange: HttpExchange) {
        match exchange.status {
            Some(status) => tracing::info!(target: "outbound", "{} {} → {status} ({} ms)", exchange.method, exchange.url, exchange.elapsed_ms),
            None => tracing::warn!(target: "outbound", "{} {} → {}", exchange.method, exchange.url, exchange.outcome),
        }
        self.0.lock().unwrap().push(exchange);
    }
}

/// What the plugin may reach, and with which credential.
#[derive(Clone, Debug)]
pub struct OutboundPolicy {
    pub allowed: Vec<Origin>,
    /// `Authorization: Bearer <secret>` added to requests for this origin.
    pub credentials: Vec<(Origin, Secret)>,
    /// Deadline for one request, from sending to the response head.
    pub timeout: Duration,
}

impl OutboundPolicy {
    fn credential_for(&self, origin: &Origin) -> Option<&Secret> {
        self.credentials.iter().find(|(o, _)| o == origin).map(|(_, s)| s)
    }
}

/// The `WasiHttpHooks` of one store.
pub struct OutboundHooks {
    pub policy: Arc<OutboundPolicy>,
    pub log: HttpLog,
}

type ResponseFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>> + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let policy = self.policy.clone();
        let log = self.log.clone();
        Box::new(async move {
            let started = Instant::now();
            let method = request.method().to_string();
            let url = request.uri().to_string();
            let origin = Origin::of(request.uri());
            let allowed = origin.as_ref().filter(|o| policy.allowed.contains(o));
            let Some(origin) = allowed else {
                log.push(HttpExchange {
                    method,
                    url,
                    request_headers: redacted(request.headers(), None),
                    status: None,
                    response_headers: Vec::new(),
                    outcome: "denied: origin not in the allowlist".into(),
                    elapsed_ms: 0,
                });
                return Err(HttpError::HttpRequestDenied);
            };
            let credential = policy.credential_for(origin);
            if let Some(secret) = credential {
                let value = HeaderValue::from_str(&format!("Bearer {}", secret.expose())).map_err(|_| HttpError::ConfigurationError)?;
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            let request_headers = redacted(request.headers(), credential);
            let options = RequestOptions {
                connect_timeout: Some(options.and_then(|o| o.connect_timeout).unwrap_or(policy.timeout).min(policy.timeout)),
                first_byte_timeout: Some(policy.timeout),
                between_bytes_timeout: Some(policy.timeout),
            };
            let result = tokio::time::timeout(policy.timeout, wasmtime_wasi_http::default_send_request(request, Some(options))).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let mut exchange = HttpExchange { method, url, request_headers, status: None, response_headers: Vec::new(), outcome: String::new(), elapsed_ms };
            match result {
                Err(_) => {
                    exchange.outcome = format!("timeout after {} ms", policy.timeout.as_millis());
                    log.push(exchange);
                    Err(HttpError::HttpResponseTimeout)
                }
                Ok(Err(e)) => {
                    let timed_out = matches!(
                        e,
                        HttpError::ConnectionTimeout | HttpError::ConnectionReadTimeout | HttpError::ConnectionWriteTimeout | HttpError::HttpResponseTimeout
                    );
                    exchange.outcome = if timed_out { format!("timeout after {} ms", policy.timeout.as_millis()) } else { format!("error: {e}") };
                    log.push(exchange);
                    Err(e)
                }
                Ok(Ok((response, io))) => {
                    exchange.status = Some(response.status().as_u16());
                    exchange.response_headers = redacted(response.headers(), None);
                    exchange.outcome = "ok".into();
                    log.push(exchange);
                    Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
                }
            }
        })
    }
}

/// Header list with `Authorization`, cookies, and any value containing the credential redacted.
fn redacted(headers: &http::HeaderMap, credential: Option<&Secret>) -> Vec<(String, String)> {
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

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Origin::parse("https://Services.LeadConnectorHQ.com").unwrap();
        assert_eq!(a, Origin::parse("https://services.leadconnectorhq.com:443/contacts/").unwrap());
        assert_ne!(a, Origin::parse("http://services.leadconnectorhq.com").unwrap());
        assert_ne!(a, Origin::parse("https://services.leadconnectorhq.com.evil.test").unwrap());
        assert!(Origin::parse("ftp://x").is_err());
    }

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
