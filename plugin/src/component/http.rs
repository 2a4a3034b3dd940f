//! Outbound HTTP on the `wasi:http` bindings that waki generates (`waki::bindings`).
//!
//! Not waki's `Client`: that pulls the `http` crate, `anyhow` and URL encoding into the
//! component for a job this file does in a page, and it hides the host's error code when a
//! request with a body is denied (it writes the body after sending, sees the stream closed,
//! and reports that). Here the body-write failure is not final: the response future is asked,
//! and it carries the host's real `ErrorCode`, so a policy denial is known as one. The same
//! bindings give the pollable futures that concurrent reads need.

use crate::execute::{HttpRequest, HttpResponse, NoAnswer};
use contacts_api::Method as ApiMethod;
use std::time::Duration;
use waki::bindings::wasi::http::outgoing_handler;
use waki::bindings::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use waki::bindings::wasi::io::poll;
use waki::bindings::wasi::io::streams::StreamError;

/// Responses larger than this are cut off: the Contacts API answers in kilobytes.
const MAX_RESPONSE_BYTES: usize = 8 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn send(request: &HttpRequest) -> Result<HttpResponse, NoAnswer> {
    let future = start(request)?;
    loop {
        if let Some(answer) = take(&future) {
            return answer;
        }
        future.subscribe().block();
    }
}

/// Sends every request before waiting for any, then waits on all their futures at once
/// (`wasi:io/poll`): the host works on them concurrently, so n reads cost one round trip.
pub fn send_all(requests: &[HttpRequest]) -> Vec<Result<HttpResponse, NoAnswer>> {
    let started: Vec<Result<FutureIncomingResponse, NoAnswer>> = requests.iter().map(start).collect();
    let mut answers: Vec<Option<Result<HttpResponse, NoAnswer>>> = started.iter().map(|s| s.as_ref().err().cloned().map(Err)).collect();
    loop {
        let waiting: Vec<(usize, &FutureIncomingResponse)> =
            started.iter().enumerate().filter(|(i, _)| answers[*i].is_none()).filter_map(|(i, s)| s.as_ref().ok().map(|f| (i, f))).collect();
        if waiting.is_empty() {
            break;
        }
        let mut pending = Vec::new();
        for (i, future) in waiting {
            match take(future) {
                Some(answer) => answers[i] = Some(answer),
                None => pending.push(future.subscribe()),
            }
        }
        if !pending.is_empty() {
            poll::poll(&pending.iter().collect::<Vec<_>>());
        }
    }
    answers.into_iter().map(|a| a.unwrap_or_else(|| Err(NoAnswer::Failed("no answer".into())))).collect()
}

/// Hands the request to the host; the answer comes through the returned future.
fn start(request: &HttpRequest) -> Result<FutureIncomingResponse, NoAnswer> {
    let (scheme, rest) = request.url.split_once("://").ok_or_else(|| NoAnswer::Failed(format!("not a URL: {}", request.url)))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let headers: Vec<(String, Vec<u8>)> = request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    let fields = Fields::from_list(&headers).map_err(|_| NoAnswer::Failed("a request header was refused".into()))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method {
        ApiMethod::Get => Method::Get,
        ApiMethod::Post => Method::Post,
        ApiMethod::Put => Method::Put,
        ApiMethod::Patch => Method::Patch,
        ApiMethod::Delete => Method::Delete,
    };
    let scheme = match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => Scheme::Other(other.to_string()),
    };
    let invalid = |what: &str| NoAnswer::Failed(format!("invalid request {what}"));
    outgoing.set_method(&method).map_err(|()| invalid("method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    outgoing.set_authority(Some(authority)).map_err(|()| invalid("authority"))?;
    outgoing.set_path_with_query(Some(path)).map_err(|()| invalid("path"))?;
    let body = outgoing.body().map_err(|()| invalid("body"))?;
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT.as_nanos() as u64));

    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(no_answer)?;
    // A failed write means the host dropped the request; the future says why.
    let written = write_body(&body, request.body.as_deref().unwrap_or_default()).is_ok();
    if written {
        OutgoingBody::finish(body, None).map_err(no_answer)?;
    } else {
        drop(body);
    }
    Ok(future)
}

/// The answer, once the future has one.
fn take(future: &FutureIncomingResponse) -> Option<Result<HttpResponse, NoAnswer>> {
    let response = match future.get()? {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => return Some(Err(no_answer(code))),
        Err(()) => return Some(Err(NoAnswer::Failed("response already taken".into()))),
    };
    let status = response.status();
    let headers = response.headers().entries().into_iter().filter_map(|(k, v)| String::from_utf8(v).ok().map(|v| (k, v))).collect();
    let incoming = match response.consume() {
        Ok(incoming) => incoming,
        Err(()) => return Some(Err(NoAnswer::Failed("response body already taken".into()))),
    };
    let body = read_body(&incoming);
    IncomingBody::finish(incoming);
    Some(body.map(|body| HttpResponse { status, headers, body }))
}

pub(super) fn write_body(body: &OutgoingBody, mut bytes: &[u8]) -> Result<(), StreamError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body.write().map_err(|()| StreamError::Closed)?;
    let ready = stream.subscribe();
    while !bytes.is_empty() {
        ready.block();
        let permit = stream.check_write()? as usize;
        let (chunk, rest) = bytes.split_at(bytes.len().min(permit));
        stream.write(chunk)?;
        bytes = rest;
    }
    stream.blocking_flush()
}

fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, NoAnswer> {
    // The stream is a child of the body: it is dropped (end of this function) before the body.
    let stream = incoming.stream().map_err(|()| NoAnswer::Failed("response body stream already taken".into()))?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                out.extend_from_slice(&chunk);
                if out.len() > MAX_RESPONSE_BYTES {
                    return Err(NoAnswer::Failed(format!("response larger than {MAX_RESPONSE_BYTES} bytes")));
                }
            }
            Err(StreamError::Closed) => return Ok(out),
            Err(StreamError::LastOperationFailed(e)) => return Err(NoAnswer::Failed(format!("reading the response: {}", e.to_debug_string()))),
        }
    }
}

fn no_answer(code: ErrorCode) -> NoAnswer {
    match code {
        ErrorCode::HttpRequestDenied => NoAnswer::Denied,
        other => NoAnswer::Failed(describe(&other)),
    }
}

/// The error in words. Written out rather than `{:?}`: the derived Debug of this 39-variant
/// enum costs kilobytes of component size, and these read better in a report.
fn describe(code: &ErrorCode) -> String {
    let text = match code {
        ErrorCode::DnsTimeout => "DNS lookup timed out",
        ErrorCode::DnsError(_) => "DNS lookup failed",
        ErrorCode::DestinationNotFound => "destination not found",
        ErrorCode::DestinationUnavailable => "destination unavailable",
        ErrorCode::ConnectionRefused => "connection refused",
        ErrorCode::ConnectionTerminated => "connection terminated",
        ErrorCode::ConnectionTimeout => "connection timed out",
        ErrorCode::ConnectionReadTimeout => "timed out reading the response",
        ErrorCode::ConnectionWriteTimeout => "timed out sending the request",
        ErrorCode::HttpResponseTimeout => "no response in time",
        ErrorCode::TlsProtocolError | ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) => "TLS failed",
        ErrorCode::HttpResponseIncomplete => "response incomplete",
        ErrorCode::HttpProtocolError => "HTTP protocol error",
        ErrorCode::InternalError(Some(message)) => return format!("host error: {message}"),
        _ => "request failed in the host",
    };
    text.to_string()
}
