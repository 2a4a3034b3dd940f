//! The axum side: the Router, its handlers, and what happens to an API request before and after
//! [`MockState`] answers it (fault, in-flight count, read gate, latency, rate limit, log).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::Value;

use super::connection::{cut_connection, ConnectionCut};
use super::dispatch::operation_of;
use super::faults::{server_error, FaultKind};
use super::marketplace::{CHOOSE_LOCATION_PATH, INSTALLED_LOCATIONS_PATH, LOCATION_TOKEN_PATH};
use super::oauth::{redacted_form, OAUTH_TOKEN_PATH};
use super::rate_limit::{rate_limit_headers, too_many_requests, Admission, RateLimit};
use super::reply::Reply;
use super::request_log::RecordedRequest;
use super::state::{InFlight, MockState};

/// Largest request body the mock reads; far above anything the Contacts API accepts.
const BODY_LIMIT: usize = 16 << 20;
/// Paths under this prefix are the mock's own debug routes: never gated, delayed or counted.
const DEBUG_PREFIX: &str = "/__mock/";

/// The axum Router over shared state, for callers that serve it themselves.
///
/// Every API request goes through one fallback handler that routes with
/// [`contacts_api::match_path`]; the only other routes are the two debug routes, which bypass
/// auth and are not logged, the OAuth token endpoint, and the Marketplace's routes (which,
/// without [`super::MockOptions::marketplace`], are API requests like any unknown path).
///
/// The drop faults need the connection-cutting listener [`MockServer`] serves with; served by
/// other means, a request that draws a drop fault is answered 502 instead (and logged so).
pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/__mock/state", get(debug_state))
        .route("/__mock/requests", get(debug_requests))
        .route(OAUTH_TOKEN_PATH, any(oauth_token))
        .route(CHOOSE_LOCATION_PATH, any(choose_location))
        .route(LOCATION_TOKEN_PATH, any(marketplace_route))
        .route(INSTALLED_LOCATIONS_PATH, any(marketplace_route))
        .fallback(api)
        .with_state(state)
}

async fn debug_state(State(state): State<Arc<MockState>>) -> Json<Value> {
    Json(state.snapshot())
}

async fn debug_requests(State(state): State<Arc<MockState>>) -> Json<Vec<RecordedRequest>> {
    Json(state.requests())
}

/// Reads the whole body (chunked or not) and hands the request to [`MockState::handle`].
///
/// Before that, an API request (anything not under `/__mock/`) draws its fault
/// ([`MockState::set_faults`]), counts itself in flight, waits at the read gate if it is a GET,
/// and sleeps the artificial latency; it stays counted until its response is built, even if the
/// client goes away while it waits. Then the fault, if any, takes effect, and the rate limit
/// ([`MockState::set_rate_limit`]) is checked just before the request is applied.
async fn api(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let cut = request.extensions().get::<ConnectInfo<ConnectionCut>>().map(|info| info.0.clone());
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str();
    let path_and_query = path_and_query(&parts.uri);
    let instrumented = !parts.uri.path().starts_with(DEBUG_PREFIX);
    let _in_flight = instrumented.then(|| InFlight::enter(&state));
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        let reply = Reply::error(413, "request entity too large");
        state.log(RecordedRequest::new(method, &path_and_query, &parts.headers, None, reply.status));
        return reply.into_response();
    };
    if !instrumented {
        let (status, body) = state.handle(method, &path_and_query, &parts.headers, &bytes);
        return Reply::new(status, body).into_response();
    }

    let fault = state.next_fault();
    if parts.method == axum::http::Method::GET {
        state.pass_read_gate().await;
    }
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let log = |status: u16| {
        let operation_id = operation_of(method, &path_and_query).map(|m| m.operation.id);
        let mut entry = RecordedRequest::new(method, &path_and_query, &parts.headers, operation_id, status);
        entry.fault = fault.as_ref().map(FaultKind::name);
        state.log(entry);
    };
    match &fault {
        Some(FaultKind::ServerError(status)) => {
            let reply = server_error(*status);
            log(reply.status);
            return reply.into_response();
        }
        Some(FaultKind::RateLimited { retry_after_ms }) => {
            let limit = state.rate_limit().unwrap_or(RateLimit::HIGHLEVEL_BURST);
            let retry_after = Duration::from_millis(*retry_after_ms);
            let reply = too_many_requests();
            log(reply.status);
            return with_headers(reply.into_response(), rate_limit_headers(limit, 0, Some(retry_after)));
        }
        Some(FaultKind::DropBeforeHandling) => {
            let response = cut_connection(cut.as_ref());
            log(response.as_ref().map_or(0, |r| r.status().as_u16()));
            return response.unwrap_or_default();
        }
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(*delay).await,
        Some(FaultKind::DropAfterHandling) | None => {}
    }

    // Past this point the request is handled normally: rate limit, then the API itself.
    let (admission, (operation_id, reply)) = match state.admit() {
        Admission::Rejected { limit, retry_after } => {
            let headers = rate_limit_headers(limit, 0, Some(retry_after));
            (headers, (operation_of(method, &path_and_query).map(|m| m.operation.id), too_many_requests()))
        }
        Admission::Admitted { limit, remaining } => (rate_limit_headers(limit, remaining, None), state.answer(method, &path_and_query, &parts.headers, &bytes)),
        Admission::Unlimited => (Vec::new(), state.answer(method, &path_and_query, &parts.headers, &bytes)),
    };
    let mut entry = RecordedRequest::new(method, &path_and_query, &parts.headers, operation_id, reply.status);
    entry.fault = fault.as_ref().map(FaultKind::name);
    if matches!(fault, Some(FaultKind::DropAfterHandling)) {
        let response = cut_connection(cut.as_ref());
        entry.status = response.as_ref().map_or(0, |r| r.status().as_u16());
        state.log(entry);
        return response.unwrap_or_default();
    }
    state.log(entry);
    with_headers(reply.into_response(), admission)
}

/// Path and query exactly as on the request line.
fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

fn with_headers(mut response: Response, headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    response.headers_mut().extend(headers);
    response
}

async fn oauth_token(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str();
    let path_and_query = path_and_query(&parts.uri);
    let (reply, logged_body) = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => (state.oauth_token(method, &parts.headers, &bytes), Some(redacted_form(&parts.headers, &bytes))),
        Err(_) => (Reply::error(413, "request entity too large"), None),
    };
    let mut entry = RecordedRequest::new(method, &path_and_query, &parts.headers, None, reply.status);
    entry.body = logged_body;
    state.log(entry);
    no_store(reply.into_response())
}

/// The authorization page: a 302 to the redirect URI with the code, or the refusal.
async fn choose_location(State(state): State<Arc<MockState>>, request: Request) -> Response {
    if state.options().marketplace.is_none() {
        return api(State(state), request).await;
    }
    let (parts, _) = request.into_parts();
    let path_and_query = path_and_query(&parts.uri);
    let (status, response) = match state.choose_location(parts.method.as_str(), &path_and_query) {
        Ok(target) => match HeaderValue::from_str(&target) {
            Ok(location) => (302, (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()),
            Err(_) => {
                let reply = Reply::error(400, "redirect_uri is not a valid URI");
                (reply.status, reply.into_response())
            }
        },
        Err(reply) => (reply.status, reply.into_response()),
    };
    state.log(RecordedRequest::new(parts.method.as_str(), &path_and_query, &parts.headers, None, status));
    no_store(response)
}

/// `POST /oauth/locationToken` and `GET /oauth/installedLocations`, logged like the token
/// endpoint (the form, which holds no secret, through the same redaction).
async fn marketplace_route(State(state): State<Arc<MockState>>, request: Request) -> Response {
    if state.options().marketplace.is_none() {
        return api(State(state), request).await;
    }
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str();
    let path_and_query = path_and_query(&parts.uri);
    let (reply, logged_body) = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) if parts.uri.path() == LOCATION_TOKEN_PATH => {
            (state.location_token(method, &parts.headers, &bytes), Some(redacted_form(&parts.headers, &bytes)))
        }
        Ok(_) => (state.installed_locations(method, &path_and_query, &parts.headers), None),
        Err(_) => (Reply::error(413, "request entity too large"), None),
    };
    let mut entry = RecordedRequest::new(method, &path_and_query, &parts.headers, None, reply.status);
    entry.body = logged_body;
    state.log(entry);
    no_store(reply.into_response())
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
