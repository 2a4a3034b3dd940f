//! Dialpad's OAuth endpoints, for apps registered with [`DialpadMock::add_oauth_client`].
//!
//! - `GET /oauth2/authorize?client_id&redirect_uri&response_type&scope&state&code_challenge
//!   &code_challenge_method` approves at once (no login, no consent screen): 302 to
//!   `redirect_uri` with `code` and `state` appended (a redirect URI's own query is kept, as
//!   Dialpad's docs promise). The code remembers the client, the redirect URI, the scope and
//!   the PKCE challenge. An unknown `client_id`, or a `redirect_uri` not registered for it, is
//!   a 400 with no redirect (RFC 6749 §4.1.2.1); a `response_type` other than `code`, or a
//!   `code_challenge_method` outside the spec's enum (`S256`, `plain`), redirects with
//!   `error=…`. Without `code_challenge_method` a challenge is `plain` (RFC 7636 §4.3).
//! - `POST /oauth2/token` takes `application/json` (the one media type the spec declares; else
//!   415), `AuthorizationCodeGrantBodySchema` or `RefreshTokenGrantBodySchema`, the client's
//!   credentials in the body or as `Authorization: Basic`. Checked in order: the client (401
//!   `invalid_client`), `grant_type` (400 `unsupported_grant_type`), then the grant: a code is
//!   single use, spent by the first attempt (RFC 6749 §10.5), and needs the `code_verifier`
//!   whose transformation matches its challenge (400 `invalid_grant`); a refresh token must be
//!   the client's latest, and is replaced by the answer's (rotation). The answer:
//!   `{access_token, token_type: "Bearer", expires_in, refresh_token}`.
//! - Issued access tokens are accepted by the API until they expire; tokens and codes are
//!   deterministic (`dialpad-access-000001`, …).
//!
//! [`DialpadMock::add_oauth_client`]: super::DialpadMock::add_oauth_client

use super::fields::is_json;
use super::reply::{Params, Reply};
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(super) const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub(super) const TOKEN_PATH: &str = "/oauth2/token";

/// An OAuth app known to the mock.
#[derive(Clone, Debug)]
pub struct DialpadOAuthClient {
    pub client_id: String,
    pub client_secret: String,
    /// The redirect URIs registered for it; `redirect_uri` must be one of them exactly.
    pub redirect_uris: Vec<String>,
    pub access_token_ttl: Duration,
}

/// What a code was issued for.
struct Grant {
    client_id: String,
    /// `(challenge, method)`.
    challenge: Option<(String, String)>,
}

#[derive(Default)]
pub(super) struct OAuthState {
    pub(super) clients: Vec<DialpadOAuthClient>,
    codes: HashMap<String, Grant>,
    /// The refresh token each client may use next.
    refresh: HashMap<String, String>,
    /// Issued access tokens and when they expire (`None`: beyond `Instant`'s range).
    access: HashMap<String, Option<Instant>>,
    issued: u64,
}

impl OAuthState {
    pub(super) fn access_is_live(&self, token: &str) -> bool {
        self.access.get(token).is_some_and(|expires| expires.is_none_or(|at| Instant::now() < at))
    }

    fn next(&mut self, what: &str) -> String {
        self.issued += 1;
        format!("dialpad-{what}-{:06}", self.issued)
    }
}

fn oauth_error(status: u16, code: &str, description: &str) -> Reply {
    Reply::json(status, json!({"error": code, "error_description": description}))
}

/// `redirect_uri` with `pairs` appended to its query.
fn redirect(uri: &str, pairs: &[(&str, &str)]) -> Reply {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    Reply::Redirect(format!("{uri}{sep}{}", query.finish()))
}

/// `GET /oauth2/authorize`.
pub(super) fn authorize(state: &mut OAuthState, params: &Params) -> Reply {
    let (Some(client_id), Some(redirect_uri)) = (params.get("client_id"), params.get("redirect_uri")) else {
        return oauth_error(400, "invalid_request", "client_id and redirect_uri are required");
    };
    let Some(client) = state.clients.iter().find(|c| c.client_id == client_id) else {
        return oauth_error(400, "invalid_client", "unknown client_id");
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return oauth_error(400, "invalid_request", "redirect_uri is not registered for this app");
    }
    let with_state = |mut pairs: Vec<(&'static str, String)>| {
        if let Some(s) = params.get("state") {
            pairs.push(("state", s.to_string()));
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect(redirect_uri, &pairs)
    };
    if params.get("response_type").is_some_and(|t| t != "code") {
        return with_state(vec![("error", "unsupported_response_type".into())]);
    }
    let challenge = match (params.get("code_challenge"), params.get("code_challenge_method")) {
        (_, Some(method)) if method != "S256" && method != "plain" => return with_state(vec![("error", "invalid_request".into())]),
        (None, Some(_)) => return with_state(vec![("error", "invalid_request".into())]),
        (Some(challenge), method) => Some((challenge.to_string(), method.unwrap_or("plain").to_string())),
        (None, None) => None,
    };
    let grant = Grant { client_id: client.client_id.clone(), challenge };
    let code = state.next("code");
    state.codes.insert(code.clone(), grant);
    with_state(vec![("code", code)])
}

/// The client's credentials: from the body, else from `Authorization: Basic`.
fn credentials(headers: &HeaderMap, body: &Value) -> Option<(String, String)> {
    if let (Some(id), Some(secret)) = (body["client_id"].as_str(), body["client_secret"].as_str()) {
        return Some((id.to_string(), secret.to_string()));
    }
    let basic = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// `POST /oauth2/token`.
pub(super) fn token(state: &mut OAuthState, headers: &HeaderMap, body: &[u8]) -> Reply {
    if !is_json(headers) {
        return Reply::json(415, json!({"error": "invalid_request", "error_description": "the body must be application/json"}));
    }
    let body: Value = match serde_json::from_slice(body) {
        Ok(body @ Value::Object(_)) => body,
        _ => return oauth_error(400, "invalid_request", "the body must be a JSON object"),
    };
    let client = credentials(headers, &body).and_then(|(id, secret)| state.clients.iter().find(|c| c.client_id == id && c.client_secret == secret).cloned());
    let Some(client) = client else {
        return oauth_error(401, "invalid_client", "unknown client or wrong client_secret");
    };
    match body["grant_type"].as_str() {
        Some("authorization_code") => {
            let Some(code) = body["code"].as_str() else {
                return oauth_error(400, "invalid_request", "code is required");
            };
            // Spent by this attempt whatever happens next, so a code cannot be guessed at twice.
            let Some(grant) = state.codes.remove(code).filter(|g| g.client_id == client.client_id) else {
                return oauth_error(400, "invalid_grant", "unknown, used or another app's code");
            };
            if let Some((challenge, method)) = &grant.challenge {
                let Some(verifier) = body["code_verifier"].as_str() else {
                    return oauth_error(400, "invalid_grant", "code_verifier is required: the authorization had a code_challenge");
                };
                let transformed = if method == "S256" { URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) } else { verifier.to_string() };
                if &transformed != challenge {
                    return oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge");
                }
            }
        }
        Some("refresh_token") => {
            let Some(refresh) = body["refresh_token"].as_str() else {
                return oauth_error(400, "invalid_request", "refresh_token is required");
            };
            if state.refresh.get(&client.client_id).map(String::as_str) != Some(refresh) {
                return oauth_error(400, "invalid_grant", "unknown or already used refresh_token");
            }
        }
        _ => return oauth_error(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"),
    }
    let access = state.next("access");
    let refresh = state.next("refresh");
    state.access.insert(access.clone(), Instant::now().checked_add(client.access_token_ttl));
    state.refresh.insert(client.client_id.clone(), refresh.clone());
    Reply::json(200, json!({"access_token": access, "token_type": "Bearer", "expires_in": client.access_token_ttl.as_secs(), "refresh_token": refresh}))
}
