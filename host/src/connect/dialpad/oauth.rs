//! Dialpad OAuth with PKCE (RFC 7636), for apps used across companies: the user is sent to
//! `GET /oauth2/authorize`, Dialpad redirects back with a code, and the code is exchanged at
//! `POST /oauth2/token` for an access token that works wherever an API key does.
//!
//! From the spec: the token endpoint's request body is `application/json` (the only media type
//! it declares; RFC 6749 would use a form), one of `AuthorizationCodeGrantBodySchema`
//! (`grant_type: "authorization_code"`, `code`, `code_verifier`) or
//! `RefreshTokenGrantBodySchema` (`grant_type: "refresh_token"`, `refresh_token`), each with
//! `client_id` and `client_secret` ("in the request body, or in a basic authorization header":
//! the body here). The answer is `AuthorizeTokenResponseBodySchema`: `access_token`,
//! `expires_in` (seconds), `refresh_token`, `id_token`, `token_type`, all optional.

use crate::capability::secret::Secret;
use crate::connect::http::{self as send};
use crate::connect::ConnectError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::time::Duration;

/// Random bytes in a verifier: 48 bytes are 64 base64url characters, inside RFC 7636's 43–128.
const VERIFIER_BYTES: usize = 48;

/// An OAuth app registered with Dialpad (through its form: there is no self-serve console).
#[derive(Clone, Debug)]
pub struct DialpadOAuthApp {
    pub client_id: String,
    pub client_secret: Secret,
    /// One of the redirect URIs registered for the app.
    pub redirect_uri: String,
    /// Extra scopes (`recordings_export`, `message_content_export`, …); none for the basic access.
    pub scopes: Vec<String>,
    /// `https://dialpad.com` (or the sandbox): the authorize and token endpoints live under it.
    pub authorize_base: String,
    pub timeout: Duration,
}

/// One authorization's PKCE pair: the verifier stays with the host, the challenge goes in the
/// authorize URL.
#[derive(Clone, Debug)]
pub struct Pkce {
    pub verifier: Secret,
    /// `BASE64URL(SHA256(verifier))`, without padding (method `S256`).
    pub challenge: String,
}

/// What the token endpoint issued.
#[derive(Clone, Debug)]
pub struct DialpadTokens {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub expires_in: Option<Duration>,
}

impl Pkce {
    /// A fresh verifier from the system's random number generator, and its challenge.
    pub fn generate() -> Pkce {
        let mut bytes = [0u8; VERIFIER_BYTES];
        getrandom::getrandom(&mut bytes).expect("the system's random number generator");
        Pkce::from_verifier(Secret::new(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The pair for a given verifier.
    pub fn from_verifier(verifier: Secret) -> Pkce {
        let challenge = s256(verifier.expose());
        Pkce { verifier, challenge }
    }
}

/// RFC 7636's `S256` transformation.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl DialpadOAuthApp {
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.authorize_base.trim_end_matches('/'))
    }

    /// Where to send the user: `/oauth2/authorize` with the app, the redirect URI, the scopes,
    /// `state` (checked when the user comes back) and the PKCE challenge.
    pub fn authorize_url(&self, state: &str, pkce: &Pkce) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("response_type", "code");
        query.append_pair("client_id", &self.client_id);
        query.append_pair("redirect_uri", &self.redirect_uri);
        if !self.scopes.is_empty() {
            query.append_pair("scope", &self.scopes.join(" "));
        }
        query.append_pair("state", state);
        query.append_pair("code_challenge", &pkce.challenge);
        query.append_pair("code_challenge_method", "S256");
        format!("{}?{}", self.endpoint("/oauth2/authorize"), query.finish())
    }

    /// Exchanges the code Dialpad redirected back with, proving the authorization was ours
    /// with the PKCE verifier.
    pub async fn exchange_code(&self, code: &str, pkce: &Pkce) -> Result<DialpadTokens, ConnectError> {
        self.token(json!({
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": pkce.verifier.expose(),
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose(),
        }))
        .await
    }

    /// A new token pair for a refresh token (Dialpad hands out "another refresh token": keep
    /// the new one).
    pub async fn refresh(&self, refresh: &Secret) -> Result<DialpadTokens, ConnectError> {
        self.token(json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh.expose(),
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose(),
        }))
        .await
    }

    async fn token(&self, body: Value) -> Result<DialpadTokens, ConnectError> {
        let what = "Dialpad's token endpoint";
        let request = http::Request::post(self.endpoint("/oauth2/token"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(send::body(body.to_string()))
            .map_err(|e| ConnectError::Transport(format!("{what}: {e}")))?;
        let answer = send::send(request, self.timeout, what).await?;
        if !(200..300).contains(&answer.status) {
            return Err(ConnectError::Refused { status: answer.status, reason: answer.reason() });
        }
        tokens(&answer.json())
    }
}

fn tokens(json: &Value) -> Result<DialpadTokens, ConnectError> {
    let access = json["access_token"].as_str().filter(|t| !t.is_empty());
    let access = access.ok_or_else(|| ConnectError::Malformed("Dialpad's token endpoint answered without an access_token".into()))?;
    Ok(DialpadTokens {
        access: Secret::new(access),
        refresh: json["refresh_token"].as_str().filter(|t| !t.is_empty()).map(Secret::new),
        // Only a positive lifetime means anything (Prism's generated answers carry negative ones).
        expires_in: json["expires_in"].as_u64().filter(|s| *s > 0).map(Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> DialpadOAuthApp {
        DialpadOAuthApp {
            client_id: "client 1&2".into(),
            client_secret: Secret::new("s"),
            redirect_uri: "https://sync.example.com/oauth/dialpad?tenant=a&b=c d".into(),
            scopes: vec!["recordings_export".into(), "message_content_export".into()],
            authorize_base: "https://dialpad.com/".into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// RFC 7636, Appendix B.
    #[test]
    fn the_challenge_matches_rfc_7636_appendix_b() {
        let pkce = Pkce::from_verifier(Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert_eq!(pkce.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn generated_verifiers_are_long_enough_unreserved_and_fresh() {
        let (a, b) = (Pkce::generate(), Pkce::generate());
        let verifier = a.verifier.expose();
        assert!((43..=128).contains(&verifier.len()), "{}", verifier.len());
        assert!(verifier.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)), "RFC 7636's unreserved characters only");
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge, s256(verifier));
        assert!(!a.challenge.contains('=') && !a.challenge.contains('+') && !a.challenge.contains('/'), "base64url without padding");
        assert!(!format!("{a:?}").contains(verifier), "the verifier never prints");
    }

    #[test]
    fn the_authorize_url_encodes_every_parameter() {
        let pkce = Pkce::from_verifier(Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        let url = app().authorize_url("st/ate=1&x", &pkce);
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "https://dialpad.com/oauth2/authorize", "one slash, whatever the base ends with");
        assert!(!query.contains(' ') && !query.contains("&b=") && !query.contains("&x"), "values cannot break out: {query}");
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let expected = [
            ("response_type", "code"),
            ("client_id", "client 1&2"),
            ("redirect_uri", "https://sync.example.com/oauth/dialpad?tenant=a&b=c d"),
            ("scope", "recordings_export message_content_export"),
            ("state", "st/ate=1&x"),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ("code_challenge_method", "S256"),
        ];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        assert!(!url.contains(pkce.verifier.expose()), "the verifier stays home");

        let no_scopes = DialpadOAuthApp { scopes: vec![], ..app() }.authorize_url("s", &pkce);
        assert!(!no_scopes.contains("scope="), "{no_scopes}");
    }

    #[test]
    fn token_answers_parse() {
        let full = tokens(&json!({"access_token": "a", "refresh_token": "r", "expires_in": 3600, "token_type": "Bearer"})).unwrap();
        assert_eq!((full.access.expose(), full.refresh.as_ref().map(Secret::expose), full.expires_in), ("a", Some("r"), Some(Duration::from_secs(3600))));
        let bare = tokens(&json!({"access_token": "a", "expires_in": -9007199254740991_i64})).unwrap();
        assert_eq!((bare.refresh, bare.expires_in), (None, None));
        assert!(matches!(tokens(&json!({"refresh_token": "r"})), Err(ConnectError::Malformed(_))));
    }
}
