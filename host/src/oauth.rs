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
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How to refresh with a refresh token: the app's credentials and where to ask.
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

/// A fresh access token and how long it lives.
pub struct FreshToken {
    pub access: Secret,
    pub lifetime: Duration,
}

/// What [`TokenSource::fetch`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<FreshToken, String>> + Send + 'a>>;

/// Where new access tokens come from: a refresh-token grant ([`RefreshGrant`]), or an agency's
/// token exchanged for a location's (`connect::highlevel`). [`OAuthTokens`] never calls it twice
/// at once.
pub trait TokenSource: Send + Sync {
    fn fetch(&self) -> TokenFuture<'_>;
}

/// Stores a new refresh token somewhere durable.
type PersistRefreshToken = Box<dyn Fn(&Secret) -> anyhow::Result<()> + Send + Sync>;

/// The refresh-token grant: each refresh rotates the refresh token, which is stored through
/// `persist` before the new access token is used.
pub struct RefreshGrant {
    settings: OAuthSettings,
    /// `Location` or `Company`.
    user_type: &'static str,
    refresh: tokio::sync::Mutex<Secret>,
    persist: PersistRefreshToken,
}

impl RefreshGrant {
    pub fn new(settings: OAuthSettings, user_type: &'static str, persist: impl Fn(&Secret) -> anyhow::Result<()> + Send + Sync + 'static) -> RefreshGrant {
        let refresh = tokio::sync::Mutex::new(settings.refresh_token.clone());
        RefreshGrant { settings, user_type, refresh, persist: Box::new(persist) }
    }
}

impl TokenSource for RefreshGrant {
    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let s = &self.settings;
            let mut refresh = self.refresh.lock().await;
            let form = crate::connect::http::form([
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
                ("client_id", &s.client_id),
                ("client_secret", s.client_secret.expose()),
                ("user_type", self.user_type),
            ]);
            let request = http::Request::post(&s.token_url)
                .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(http::header::ACCEPT, "application/json")
                .body(form)
                .map_err(|e| format!("token request: {e}"))?;
            let answer = crate::connect::http::send(request, s.timeout, "token endpoint").await?;
            if answer.status != 200 {
                return Err(format!("token endpoint answered {}: {}", answer.status, answer.reason()));
            }
            let json = answer.json();
            let (Some(access), Some(next)) = (json["access_token"].as_str(), json["refresh_token"].as_str()) else {
                return Err("token endpoint answered without access_token and refresh_token".into());
            };
            let next = Secret::new(next);
            (self.persist)(&next).map_err(|e| format!("storing the new refresh token failed: {e:#}"))?;
            *refresh = next;
            Ok(FreshToken { access: Secret::new(access), lifetime: Duration::from_secs(json["expires_in"].as_u64().unwrap_or(0)) })
        })
    }
}

/// One location's (or agency's) access token, shared by every request of every runtime built
/// from one settings.
pub struct OAuthTokens {
    source: Box<dyn TokenSource>,
    /// Refresh this long before the access token expires.
    margin: Duration,
    access: tokio::sync::Mutex<Option<(Secret, Instant)>>,
    refreshes: AtomicUsize,
    /// What the tokens are for, in logs (`"location L1"`).
    label: String,
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens").field("for", &self.label).field("refreshes", &self.refresh_count()).finish()
    }
}

impl OAuthTokens {
    /// A location's refresh-token grant; `persist` is called with every new refresh token,
    /// before it is used.
    pub fn new(settings: OAuthSettings, persist: impl Fn(&Secret) -> anyhow::Result<()> + Send + Sync + 'static) -> OAuthTokens {
        let margin = settings.refresh_margin;
        let label = settings.token_url.clone();
        OAuthTokens::from_source(RefreshGrant::new(settings, "Location", persist), margin, label)
    }

    pub fn from_source(source: impl TokenSource + 'static, margin: Duration, label: impl Into<String>) -> OAuthTokens {
        OAuthTokens { source: Box::new(source), margin, access: tokio::sync::Mutex::new(None), refreshes: AtomicUsize::new(0), label: label.into() }
    }

    pub fn refresh_count(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }

    /// A valid access token, refreshed first when there is none or it expires within the margin.
    pub async fn bearer(&self) -> Result<Secret, String> {
        let mut access = self.access.lock().await;
        if let Some((token, expires)) = &*access {
            if Instant::now() + self.margin < *expires {
                return Ok(token.clone());
            }
        }
        self.refresh(&mut access).await
    }

    /// After a 401 for `stale`: a fresh token (refreshed now, unless another request already did).
    pub async fn refresh_after(&self, stale: &Secret) -> Result<Secret, String> {
        let mut access = self.access.lock().await;
        if let Some((token, _)) = &*access {
            if token != stale {
                return Ok(token.clone());
            }
        }
        self.refresh(&mut access).await
    }

    async fn refresh(&self, access: &mut Option<(Secret, Instant)>) -> Result<Secret, String> {
        let fresh = self.source.fetch().await?;
        *access = Some((fresh.access.clone(), Instant::now() + fresh.lifetime));
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        tracing::info!(target: "oauth", "access token for {} refreshed (valid {} s)", self.label, fresh.lifetime.as_secs());
        Ok(fresh.access)
    }
}
