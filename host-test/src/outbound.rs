//! Outbound HTTP policy, applied in `WasiHttpHooks::send_request` to every request the plugin
//! makes (Spin and wasmCloud put theirs in the same place):
//!
//! - fail-closed allowlist: only the configured origins (scheme, host, port) are reachable,
//!   judged from the request URI, never from a `Host` header;
//! - credential injection: the host adds `Authorization` for the origin it belongs to, so the
//!   token never enters the sandbox;
//! - a host-side deadline (wasmtime's default waits up to 600 s);
//! - a rate limiter that keeps each location under HighLevel's burst limit (100 requests per
//!   10 s), so a burst of events waits its turn instead of collecting 429s;
//! - a request/response log in which credentials are redacted.

use http::header::{HeaderValue, AUTHORIZATION};
use crate::oauth::OAuthTokens;
use http_body_util::{BodyExt, Full};
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
fn shown_body(bytes: &[u8], credential: Option<&Secret>) -> Option<String> {
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
    /// Per origin; shared by every runtime built from the same settings (one location, one
    /// credential).
    pub rate_limiters: Vec<(Origin, Arc<RateLimiter>)>,
    /// OAuth tokens for this origin, in place of a static credential.
    pub oauth: Option<(Origin, Arc<OAuthTokens>)>,
}

/// A sliding-window limiter: at most `max` requests in any `window`, where a request holds
/// its place from the moment it is sent until `window` after its answer came back. HighLevel
/// counts a request when it arrives, which is between the two, so however the network delays
/// one request against another, no window on the server's side sees more than `max`. (Counting
/// from the send alone let 16 of 1,516 requests of a burst through to a 429: one request's
/// arrival delayed, the next one's not.)
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    slots: Mutex<Slots>,
    freed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Slots {
    in_flight: usize,
    /// When each answered request came back, oldest first.
    answered: std::collections::VecDeque<Instant>,
}

/// A place in the limiter's window, held while the request is out; dropping it (the answer
/// came, or none will) starts its `window`.
#[derive(Debug)]
pub struct RateSlot {
    limiter: Arc<RateLimiter>,
}

impl Drop for RateSlot {
    fn drop(&mut self) {
        let mut slots = self.limiter.slots.lock().unwrap();
        slots.in_flight -= 1;
        slots.answered.push_back(Instant::now());
        drop(slots);
        self.limiter.freed.notify_waiters();
    }
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter { max: max.max(1) as usize, window, slots: Mutex::new(Slots::default()), freed: tokio::sync::Notify::new() }
    }

    /// HighLevel's burst limit per location: 100 requests per 10 seconds.
    pub fn highlevel() -> RateLimiter {
        RateLimiter::new(100, Duration::from_secs(10))
    }

    /// Waits for a place in the window, and holds it until the slot is dropped.
    pub async fn acquire(self: &Arc<Self>) -> RateSlot {
        loop {
            // Registered before looking, so a slot freed in between still wakes this one.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let next_free = {
                let mut slots = self.slots.lock().unwrap();
                let now = Instant::now();
                while slots.answered.front().is_some_and(|t| *t + self.window <= now) {
                    slots.answered.pop_front();
                }
                if slots.in_flight + slots.answered.len() < self.max {
                    slots.in_flight += 1;
                    return RateSlot { limiter: self.clone() };
                }
                slots.answered.front().map(|t| *t + self.window)
            };
            match next_free {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = &mut freed => {}
                    }
                }
                // Every place is held by a request still out: its answer frees one.
                None => freed.await,
            }
        }
    }
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
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let policy = self.policy.clone();
        let log = self.log.clone();
        Box::new(async move {
            let method = request.method().to_string();
            let url = request.uri().to_string();
            let origin = Origin::of(request.uri());
            let allowed = origin.as_ref().filter(|o| policy.allowed.contains(o));
            let Some(origin) = allowed else {
                log.push(HttpExchange {
                    method,
                    url,
                    request_headers: redacted(request.headers(), None),
                    outcome: "denied: origin not in the allowlist".into(),
                    ..HttpExchange::default()
                });
                return Err(HttpError::HttpRequestDenied);
            };
            let oauth = policy.oauth.as_ref().filter(|(o, _)| o == origin).map(|(_, tokens)| tokens.clone());
            let mut credential = match &oauth {
                Some(tokens) => Some(tokens.bearer().await.map_err(|e| oauth_failure(&log, &method, &url, e))?),
                None => policy.credential_for(origin).cloned(),
            };
            // Held whole (requests are small JSON), so that a 401 can be answered with one retry.
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let options = RequestOptions {
                connect_timeout: Some(options.and_then(|o| o.connect_timeout).unwrap_or(policy.timeout).min(policy.timeout)),
                first_byte_timeout: Some(policy.timeout),
                between_bytes_timeout: Some(policy.timeout),
            };
            let mut retried = false;
            loop {
                // Held until this attempt's answer is read (end of the iteration).
                let _slot = match policy.rate_limiters.iter().find(|(o, _)| o == origin) {
                    Some((_, limiter)) => Some(limiter.acquire().await),
                    None => None,
                };
                let started = Instant::now();
                let mut request = http::Request::new(Full::new(body.clone()).map_err(|never| match never {}).boxed_unsync());
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = parts.uri.clone();
                *request.version_mut() = parts.version;
                *request.headers_mut() = parts.headers.clone();
                if let Some(secret) = &credential {
                    let value = HeaderValue::from_str(&format!("Bearer {}", secret.expose())).map_err(|_| HttpError::ConfigurationError)?;
                    request.headers_mut().insert(AUTHORIZATION, value);
                }
                let request_headers = redacted(request.headers(), credential.as_ref());
                let result = tokio::time::timeout(policy.timeout, wasmtime_wasi_http::default_send_request(request, Some(options))).await;
                let elapsed_ms = started.elapsed().as_millis() as u64;
                let mut exchange = HttpExchange {
                    method: method.clone(),
                    url: url.clone(),
                    request_headers,
                    elapsed_ms,
                    request_body: shown_body(&body, credential.as_ref()),
                    ..HttpExchange::default()
                };
                return match result {
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
                        let status = response.status().as_u16();
                        exchange.status = Some(status);
                        exchange.response_headers = redacted(response.headers(), None);
                        // Read whole (small JSON) so the log can show it; the connection's
                        // own future is driven meanwhile, as the body needs it.
                        let (response_parts, response_body) = response.into_parts();
                        let mut io = Box::pin(io);
                        let mut io_result = None;
                        let collected = tokio::time::timeout(policy.timeout, async {
                            let collect = response_body.collect();
                            tokio::pin!(collect);
                            loop {
                                tokio::select! {
                                    read = &mut collect => break read,
                                    done = &mut io, if io_result.is_none() => io_result = Some(done),
                                }
                            }
                        })
                        .await;
                        let bytes = match collected {
                            Ok(Ok(c)) => c.to_bytes(),
                            Ok(Err(e)) => {
                                exchange.outcome = format!("error reading the response: {e}");
                                log.push(exchange);
                                return Err(e);
                            }
                            Err(_) => {
                                exchange.outcome = format!("timeout after {} ms reading the response", policy.timeout.as_millis());
                                log.push(exchange);
                                return Err(HttpError::HttpResponseTimeout);
                            }
                        };
                        exchange.response_body = shown_body(&bytes, credential.as_ref());
                        exchange.elapsed_ms = started.elapsed().as_millis() as u64;
                        exchange.outcome = "ok".into();
                        log.push(exchange);
                        // An access token refused before its time (revoked, rotated elsewhere):
                        // refresh once and send once more.
                        if let (401, Some(tokens), false, Some(stale)) = (status, &oauth, retried, &credential) {
                            credential = Some(tokens.refresh_after(stale).await.map_err(|e| oauth_failure(&log, &method, &url, e))?);
                            retried = true;
                            continue;
                        }
                        let response = http::Response::from_parts(response_parts, Full::new(bytes).map_err(|never| match never {}).boxed_unsync());
                        let rest: Box<dyn Future<Output = Result<(), HttpError>> + Send> = match io_result {
                            Some(done) => Box::new(async move { done }),
                            None => Box::new(io),
                        };
                        Ok((response, rest))
                    }
                };
            }
        })
    }
}

/// A refresh that failed: logged, and the request fails as a host error the plugin reports.
fn oauth_failure(log: &HttpLog, method: &str, url: &str, reason: String) -> HttpError {
    log.push(HttpExchange { method: method.to_string(), url: url.to_string(), outcome: format!("no credential: {reason}"), ..HttpExchange::default() });
    HttpError::InternalError(Some(format!("OAuth: {reason}")))
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
    fn the_limiter_frees_a_place_a_window_after_the_answer() {
        let window = Duration::from_millis(200);
        let limiter = Arc::new(RateLimiter::new(3, window));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let held: Vec<RateSlot> = vec![limiter.acquire().await, limiter.acquire().await, limiter.acquire().await];
            // All three places are out: a fourth waits for an answer, then a window more.
            let fourth = tokio::spawn({
                let limiter = limiter.clone();
                async move {
                    let slot = limiter.acquire().await;
                    (Instant::now(), slot)
                }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!fourth.is_finished(), "a fourth request went out while three were held");
            let answered = Instant::now();
            drop(held);
            let (started, _slot) = fourth.await.unwrap();
            assert!(started >= answered + window, "the fourth went {:?} after the answers", started - answered);
        });
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
