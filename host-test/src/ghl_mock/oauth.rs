//! OAuth: the token endpoint's options and state, and its form and error helpers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use serde_json::json;

use super::reply::Reply;

/// HighLevel's OAuth token endpoint, on the same host as the API; not a Contacts API request.
pub(super) const OAUTH_TOKEN_PATH: &str = "/oauth/token";

/// HighLevel's OAuth 2.0 token endpoint, `POST /oauth/token`, for the refresh-token grant, and
/// the expiring access tokens it issues.
///
/// The request is `application/x-www-form-urlencoded`:
/// `grant_type=refresh_token&refresh_token=…&client_id=…&client_secret=…&user_type=Location`
/// (`user_type` optional, only `Location`). The answer is 200
/// `{"access_token", "token_type": "Bearer", "expires_in" (seconds, rounded up), "refresh_token",
/// "scope" (the granted scopes, space-separated), "userType": "Location", "locationId"}`.
/// Refresh tokens are single use: each refresh revokes the one it used and issues the next, and
/// only the latest is accepted. Errors are `{"error": …}` bodies:
/// 400 `invalid_request` (not form-encoded, missing parameter, other `user_type`),
/// 400 `unsupported_grant_type`, 401 `invalid_client` (wrong `client_id` or `client_secret`,
/// checked before the refresh token), 401 `invalid_grant` (revoked or unknown refresh token).
/// Other methods, or a mock without OAuth, get NestJS's 404.
///
/// With OAuth configured, API requests need an access token the endpoint issued and that has not
/// expired ([`MockOptions::token`] is accepted too when set); any other gets the usual 401.
/// Access tokens stay valid until they expire, also after a refresh. Tokens are deterministic
/// (`mock-access-000001`, `mock-refresh-000001`, …). Token requests are logged, with the secrets
/// redacted ([`RecordedRequest::body`]), but they are not API requests: no fault, rate limit,
/// read gate, latency or in-flight count applies to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthOptions {
    pub client_id: String,
    pub client_secret: String,
    /// The refresh token accepted first.
    pub refresh_token: String,
    /// Lifetime of an issued access token (HighLevel's is 24 hours).
    pub access_token_ttl: Duration,
    /// The location the tokens are for, echoed as `locationId`.
    pub location_id: String,
}

/// The token endpoint's state.
#[derive(Default)]
pub(super) struct OAuthTokens {
    /// The only refresh token accepted next.
    pub(super) refresh_token: Option<String>,
    /// Issued access tokens and when they expire (`None`: a lifetime beyond `Instant`'s range).
    pub(super) access: HashMap<String, Option<Instant>>,
    /// Tokens issued so far, for their names.
    pub(super) issued: u64,
    pub(super) refreshes: usize,
}

impl OAuthTokens {
    pub(super) fn new(options: Option<&OAuthOptions>) -> OAuthTokens {
        OAuthTokens { refresh_token: options.map(|o| o.refresh_token.clone()), ..OAuthTokens::default() }
    }
}

/// Form parameters whose values never reach the request log.
const SECRET_PARAMETERS: [&str; 3] = ["client_secret", "refresh_token", "code"];

/// An OAuth error body, `{"error": code}`.
pub(super) fn oauth_error(status: u16, code: &str) -> Reply {
    Reply::new(status, json!({ "error": code }))
}

pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// The token request's body for the log: the form with [`SECRET_PARAMETERS`] redacted, or a
/// placeholder when it is not form-encoded (a JSON body would otherwise be logged whole).
pub(super) fn redacted_form(headers: &HeaderMap, body: &[u8]) -> String {
    if !is_form(headers) {
        return format!("<{} bytes, not form-encoded>", body.len());
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(body) {
        let value = if SECRET_PARAMETERS.contains(&name.as_ref()) { "REDACTED".into() } else { value };
        out.append_pair(&name, &value);
    }
    out.finish()
}
