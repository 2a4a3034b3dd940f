//! OAuth 2.0 location tokens, kept by the host: the plugin never sees a token.
//!
//! HighLevel's access tokens live a day, and each refresh returns a new refresh token (the old
//! one must be assumed used up), so the host:
//! - refreshes before expiry (a margin ahead), and stores every rotated refresh token at once
//!   through `persist`, before using the new access token;
//! - on a 401 from the API, refreshes once and retries the request once (the outbound hook
//!   calls [`OAuthTokens::refresh_after`]); two requests that meet the same 401 refresh once.
//!
//! The token endpoint is called with wasmtime-wasi-http's own client (`default_send_request`),
//! the one every plugin request goes through, so TLS and timeouts behave the same.

use crate::capability::secret::Secret;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How to refresh: the app's credentials and where to ask.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// `https://services.leadconnectorhq.com/oauth/token` for HighLevel.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The refresh token to start from (the last one stored).
    pub refresh_token: Secret,
    /// Refresh this long before the access token expires.
    pub refresh_margin: Duration,
    pub timeout: Duration,
}

struct Tokens {
    access: Option<(Secret, Instant)>,
    refresh: Secret,
}

/// Stores a new refresh token somewhere durable.
type PersistRefreshToken = Box<dyn Fn(&Secret) -> anyhow::Result<()> + Send + Sync>;

/// The location's tokens, shared by every request of every runtime built from one settings.
pub struct OAuthTokens {
    settings: OAuthSettings,
    tokens: tokio::sync::Mutex<Tokens>,
    persist: PersistRefreshToken,
    refreshes: AtomicUsize,
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens").field("token_url", &self.settings.token_url).field("refreshes", &self.refresh_count()).finish()
    }
}

impl OAuthTokens {
    /// `persist` is called with every new refresh token, before it is used.
    pub fn new(settings: OAuthSettings, persist: impl Fn(&Secret) -> anyhow::Result<()> + Send + Sync + 'static) -> OAuthTokens {
        let refresh = settings.refresh_token.clone();
        OAuthTokens { settings, tokens: tokio::sync::Mutex::new(Tokens { access: None, refresh }), persist: Box::new(persist), refreshes: AtomicUsize::new(0) }
    }

    pub fn refresh_count(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }

    /// A valid access token, refreshed first when there is none or it expires within the margin.
    pub async fn bearer(&self) -> Result<Secret, String> {
        let mut tokens = self.tokens.lock().await;
        if let Some((access, expires)) = &tokens.access {
            if Instant::now() + self.settings.refresh_margin < *expires {
                return Ok(access.clone());
            }
        }
        self.refresh(&mut tokens).await
    }

    /// After a 401 for `stale`: a fresh token (refreshed now, unless another request already did).
    pub async fn refresh_after(&self, stale: &Secret) -> Result<Secret, String> {
        let mut tokens = self.tokens.lock().await;
        if let Some((access, _)) = &tokens.access {
            if access != stale {
                return Ok(access.clone());
            }
        }
        self.refresh(&mut tokens).await
    }

    async fn refresh(&self, tokens: &mut Tokens) -> Result<Secret, String> {
        let s = &self.settings;
        let form = crate::connect::http::form([
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh.expose()),
            ("client_id", &s.client_id),
            ("client_secret", s.client_secret.expose()),
            ("user_type", "Location"),
        ]);
        let request = http::Request::post(&s.token_url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(form)
            .map_err(|e| format!("token request: {e}"))?;
        let answer = crate::connect::http::send(request, s.timeout, "token endpoint").await?;
        let (status, body) = (answer.status, answer.body);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        // The error fields only: the body of a refusal carries no secret, but say no more than needed.
        if status != 200 {
            let reason = json["error"].as_str().or(json["message"].as_str()).unwrap_or("refused");
            return Err(format!("token endpoint answered {status}: {reason}"));
        }
        let (Some(access), Some(refresh)) = (json["access_token"].as_str(), json["refresh_token"].as_str()) else {
            return Err("token endpoint answered without access_token and refresh_token".into());
        };
        let refresh = Secret::new(refresh);
        (self.persist)(&refresh).map_err(|e| format!("storing the new refresh token failed: {e:#}"))?;
        let lifetime = Duration::from_secs(json["expires_in"].as_u64().unwrap_or(0));
        let access = Secret::new(access);
        tokens.access = Some((access.clone(), Instant::now() + lifetime));
        tokens.refresh = refresh;
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        tracing::info!(target: "oauth", "access token refreshed (valid {} s)", lifetime.as_secs());
        Ok(access)
    }
}
