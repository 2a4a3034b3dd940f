//! The `WasiHttpHooks::send_request` hook of one store: every request the plugin makes passes
//! the allowlist, gets its origin's credential (a static token, or an OAuth token the host
//! refreshes), waits for its route's limit (a bounded wait) and its origin's rate limiter, has a
//! host-side deadline for the whole exchange, passes its origin's circuit breaker, is sent on a
//! kept connection (`client.rs`), and is logged redacted.

use super::breaker::{CircuitBreaker, Rejected, Ticket};
use super::log::{redacted, shown_body, HttpExchange, HttpLog};
use super::policy::{Origin, OutboundPolicy};
use http::header::{HeaderValue, AUTHORIZATION};
use http_body_util::{BodyExt, Full};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The `WasiHttpHooks` of one store.
pub struct OutboundHooks {
    pub policy: Arc<OutboundPolicy>,
    pub log: HttpLog,
    /// When the store's event deadline stops the plugin (`None`: never). A request does not
    /// wait for a route's limit so long that its answer could not come back before it.
    pub deadline: Option<Instant>,
}

type ResponseFuture = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let policy = self.policy.clone();
        let log = self.log.clone();
        let deadline = self.deadline;
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
            // The plugin may ask for a shorter connect timeout, never a longer one. The whole
            // exchange (connect, answer, body) is held to `policy.timeout` below.
            let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(policy.connect_timeout).min(policy.connect_timeout).min(policy.timeout);
            let breaker = policy.breaker_for(origin).cloned();
            let mut retried = false;
            loop {
                // First, so that a request waiting for its route's limit holds no place in the
                // origin's window and no breaker ticket meanwhile. Held until this attempt's
                // answer is read, like the origin's slot.
                let _route_slot = match policy.route_limit_for(origin, parts.method.as_str(), parts.uri.path()) {
                    Some(limit) => {
                        // A request sent after the deadline's margin would be answered to a
                        // plugin already stopped: done at the API, unknown to the plugin.
                        let wait = deadline
                            .map_or(limit.max_wait, |at| limit.max_wait.min(at.saturating_duration_since(Instant::now()).saturating_sub(policy.timeout)));
                        match limit.limiter.acquire_within(wait).await {
                            Some(slot) => Some(slot),
                            None => {
                                let reason = format!("not sent: {} had no place within {} ms", limit.name, wait.as_millis());
                                return Err(not_sent(&log, &method, &url, &parts.headers, reason));
                            }
                        }
                    }
                    None => None,
                };
                // Before the rate limiter: a request refused here takes no place in its window.
                let mut ticket = match &breaker {
                    Some(breaker) => match breaker.admit(Instant::now()) {
                        Ok(ticket) => Some(ticket),
                        Err(Rejected(reason)) => return Err(not_sent(&log, &method, &url, &parts.headers, reason)),
                    },
                    None => None,
                };
                // Held until this attempt's answer is read (end of the iteration).
                let _slot = match policy.rate_limiters.iter().find(|(o, _)| o == origin) {
                    Some((_, limiter)) => Some(limiter.acquire().await),
                    None => None,
                };
                let started = Instant::now();
                if let Some(ticket) = &mut ticket {
                    ticket.sending(started);
                }
                let mut request = http::Request::new(Full::new(body.clone()));
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = parts.uri.clone();
                *request.version_mut() = parts.version;
                *request.headers_mut() = parts.headers.clone();
                if let Some(secret) = &credential {
                    let value = HeaderValue::from_str(&format!("Bearer {}", secret.expose())).map_err(|_| HttpError::ConfigurationError)?;
                    request.headers_mut().insert(AUTHORIZATION, value);
                }
                let request_headers = redacted(request.headers(), credential.as_ref());
                let send = tokio::time::timeout(policy.timeout, super::client::send(request, connect_timeout));
                let result = match (&breaker, &mut ticket) {
                    (Some(breaker), Some(ticket)) => watched(breaker, ticket, send).await,
                    _ => Some(send.await),
                };
                let elapsed_ms = started.elapsed().as_millis() as u64;
                let mut exchange = HttpExchange {
                    method: method.clone(),
                    url: url.clone(),
                    request_headers,
                    elapsed_ms,
                    request_body: shown_body(&body, credential.as_ref()),
                    ..HttpExchange::default()
                };
                // No answer: a failure for the breaker; an answer, whatever its status, closes it.
                if let (Some(breaker), Some(ticket)) = (&breaker, ticket.take()) {
                    match &result {
                        Some(Ok(Ok(_))) => breaker.answered(ticket, Instant::now()),
                        _ => {
                            breaker.failed(ticket, Instant::now());
                        }
                    }
                }
                let Some(result) = result else {
                    let reason = format!(
                        "circuit open: no answer from {origin} in {} ms while other requests waited too; given up",
                        breaker.as_ref().map_or(0, |b| b.settings().stall.as_millis())
                    );
                    exchange.outcome = reason.clone();
                    log.push(exchange);
                    return Err(HttpError::InternalError(Some(reason)));
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
                            HttpError::ConnectionTimeout
                                | HttpError::ConnectionReadTimeout
                                | HttpError::ConnectionWriteTimeout
                                | HttpError::HttpResponseTimeout
                        );
                        exchange.outcome = match &e {
                            HttpError::ConnectionTimeout => {
                                format!("connect timeout after {} ms", connect_timeout.as_millis())
                            }
                            _ if timed_out => format!("timeout after {} ms", policy.timeout.as_millis()),
                            _ => format!("error: {e}"),
                        };
                        log.push(exchange);
                        Err(e)
                    }
                    Ok(Ok(response)) => {
                        let status = response.status().as_u16();
                        exchange.status = Some(status);
                        exchange.response_headers = redacted(response.headers(), None);
                        // Read whole by the client (small JSON), so that the log can show it.
                        let (response_parts, bytes) = response.into_parts();
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
                        // The connection is the pool's, driven on its own runtime: nothing left to drive here.
                        let rest: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
                        Ok((response, rest))
                    }
                };
            }
        })
    }
}

/// Waits for `send`, unless the request stalls (no answer from its origin in the breaker's
/// `stall`) and the circuit opens meanwhile: then `None`, and the request is given up.
async fn watched<F: Future>(breaker: &CircuitBreaker, ticket: &mut Ticket, send: F) -> Option<F::Output> {
    let mut opened = breaker.subscribe();
    tokio::pin!(send);
    tokio::select! {
        out = &mut send => return Some(out),
        _ = tokio::time::sleep(breaker.settings().stall) => {}
    }
    if breaker.stalled(ticket, Instant::now()) {
        return None;
    }
    loop {
        tokio::select! {
            out = &mut send => return Some(out),
            changed = opened.changed() => if changed.is_err() || breaker.gave_up(ticket) { return None },
        }
    }
}

/// A request the host did not send (its route's limit had no place in time, its origin's
/// breaker is open): logged with the reason, and failed as a host error the plugin reports.
fn not_sent(log: &HttpLog, method: &str, url: &str, headers: &http::HeaderMap, reason: String) -> HttpError {
    log.push(HttpExchange {
        method: method.to_string(),
        url: url.to_string(),
        request_headers: redacted(headers, None),
        outcome: reason.clone(),
        ..HttpExchange::default()
    });
    HttpError::InternalError(Some(reason))
}

/// A refresh that failed: logged, and the request fails as a host error the plugin reports.
fn oauth_failure(log: &HttpLog, method: &str, url: &str, reason: String) -> HttpError {
    log.push(HttpExchange { method: method.to_string(), url: url.to_string(), outcome: format!("no credential: {reason}"), ..HttpExchange::default() });
    HttpError::InternalError(Some(format!("OAuth: {reason}")))
}
