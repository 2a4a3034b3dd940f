//! A tenant's HighLevel token from a Marketplace install, kept fresh by the host:
//! - a location install refreshes its own token (single-use refresh tokens, rotated);
//! - an agency install mints each location's token from the agency's token
//!   (`POST /oauth/locationToken`), which is refreshed and rotated in turn, once for all of the
//!   agency's locations.
//!
//! The store is the source of truth for refresh tokens: each refresh reads the newest one and
//! stores its successor before the new access token is used, so `serve` and a CLI command
//! (`check`) never hold a used-up refresh token for long.
//!
//! When several `serve` replicas share the store ([`MarketplaceCredentials::shared`]), an
//! owner's read-refresh-store is done under a lease (`oauth:<owner>/<name>`), one replica at a
//! time: two replicas refreshing at the same moment would otherwise both send the same refresh
//! token, and the second, already used up, would be refused. A replica that finds the lease
//! held waits for it, then reads the refresh token the other stored.

use super::store::TenantStore;
use super::{agency_owner, secret_names as names, HighLevelAuth, Tenant};
use crate::capability::secret::Secret;
use crate::connect::highlevel::{MarketplaceApp, UserType};
use crate::connect::ConnectError;
use crate::oauth::{FreshToken, OAuthTokens, TokenFuture, TokenSource};
use crate::storage::lease::Leases;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the tenant's HighLevel bearer token comes from.
pub enum HighLevelCredential {
    Token(Secret),
    OAuth(Arc<OAuthTokens>),
    /// Not usable (yet): why, in plain words. Its events are still accepted, then fail with
    /// HighLevel's 401 and wait as dead letters, replayable once the credential is fixed.
    Missing(String),
}

/// Refresh this long before an access token expires.
const MARGIN: Duration = Duration::from_secs(300);

/// The Marketplace app and the agencies' shared tokens.
pub struct MarketplaceCredentials {
    app: Arc<MarketplaceApp>,
    store: Arc<TenantStore>,
    /// One token per agency, shared by its locations (a refresh token is single use).
    agencies: Mutex<HashMap<String, Arc<OAuthTokens>>>,
    /// When replicas share the store: the leases that let one of them at a time refresh.
    shared: Option<SharedRefresh>,
}

/// The leases of the shared store, and this replica's name among their holders.
#[derive(Clone)]
struct SharedRefresh {
    leases: Arc<Leases>,
    replica: String,
}

/// The longest a refresh holds its lease (unless the token endpoint's timeout is longer): a
/// replica that died holding it gives it up after this.
const LEASE: Duration = Duration::from_secs(30);
/// How often a replica waiting for another's refresh looks again.
const LEASE_POLL: Duration = Duration::from_millis(100);

impl MarketplaceCredentials {
    pub fn new(app: Arc<MarketplaceApp>, store: Arc<TenantStore>) -> MarketplaceCredentials {
        MarketplaceCredentials { app, store, agencies: Mutex::default(), shared: None }
    }

    /// For replicas sharing the store: each refresh of an owner's token is done under a lease
    /// of `leases` (the shared database's), held as `replica` (this process's name,
    /// [`crate::storage::lease::replica_name`]). Store reads and writes then run on blocking
    /// threads.
    pub fn shared(mut self, leases: Arc<Leases>, replica: impl Into<String>) -> MarketplaceCredentials {
        self.shared = Some(SharedRefresh { leases, replica: replica.into() });
        self
    }

    pub fn app(&self) -> &Arc<MarketplaceApp> {
        &self.app
    }

    /// The credential of an installed tenant.
    pub fn credential(&self, tenant: &Tenant) -> anyhow::Result<HighLevelCredential> {
        let label = format!("location {}", tenant.location_id);
        Ok(match tenant.highlevel {
            HighLevelAuth::PrivateToken => anyhow::bail!("tenant {} uses a private token, not an install", tenant.id),
            HighLevelAuth::LocationInstall => {
                let source = StoredRefresh {
                    app: self.app.clone(),
                    store: self.store.clone(),
                    owner: tenant.owner(),
                    name: names::HIGHLEVEL_REFRESH,
                    user_type: UserType::Location,
                    shared: self.shared.clone(),
                };
                HighLevelCredential::OAuth(Arc::new(OAuthTokens::from_source(source, MARGIN, label)))
            }
            HighLevelAuth::AgencyInstall => {
                let Some(company) = tenant.company_id.clone() else {
                    return Ok(HighLevelCredential::Missing(format!("tenant {} is an agency install without a company id", tenant.id)));
                };
                let agency = self.agency(&company);
                let source = LocationFromAgency { app: self.app.clone(), agency, company_id: company, location_id: tenant.location_id.clone() };
                HighLevelCredential::OAuth(Arc::new(OAuthTokens::from_source(source, MARGIN, label)))
            }
        })
    }

    /// The agency's token, shared by all its locations.
    pub fn agency(&self, company_id: &str) -> Arc<OAuthTokens> {
        let mut agencies = self.agencies.lock().unwrap();
        agencies
            .entry(company_id.to_string())
            .or_insert_with(|| {
                let source = StoredRefresh {
                    app: self.app.clone(),
                    store: self.store.clone(),
                    owner: agency_owner(company_id),
                    name: names::AGENCY_REFRESH,
                    user_type: UserType::Company,
                    shared: self.shared.clone(),
                };
                Arc::new(OAuthTokens::from_source(source, MARGIN, format!("agency {company_id}")))
            })
            .clone()
    }

    /// Forgets an uninstalled agency's token.
    pub fn forget_agency(&self, company_id: &str) {
        self.agencies.lock().unwrap().remove(company_id);
    }
}

/// The refresh-token grant, with the refresh token kept sealed in the store.
struct StoredRefresh {
    app: Arc<MarketplaceApp>,
    store: Arc<TenantStore>,
    owner: String,
    name: &'static str,
    user_type: UserType,
    shared: Option<SharedRefresh>,
}

impl TokenSource for StoredRefresh {
    fn fetch(&self) -> TokenFuture<'_> {
        if let Some(shared) = &self.shared {
            return Box::pin(self.fetch_shared(shared));
        }
        Box::pin(async move {
            let stored = self.store.secret(&self.owner, self.name).map_err(|e| format!("{e:#}"))?;
            let Some(refresh) = stored else {
                return Err(format!("{} has no refresh token: install the app again", self.owner));
            };
            let grant = self.app.refresh(&refresh, self.user_type).await.map_err(|e| e.to_string())?;
            let Some(next) = grant.refresh else { return Err("the token endpoint answered without a refresh token".into()) };
            self.store.set_secret(&self.owner, self.name, &next).map_err(|e| format!("storing the new refresh token failed: {e:#}"))?;
            Ok(FreshToken { access: grant.access, lifetime: grant.expires_in })
        })
    }
}

impl StoredRefresh {
    /// Read, refresh and store under the owner's lease, one replica at a time; the store and
    /// the leases are asked on blocking threads (the PostgreSQL client blocks).
    async fn fetch_shared(&self, shared: &SharedRefresh) -> Result<FreshToken, String> {
        let lease = format!("oauth:{}/{}", self.owner, self.name);
        let ttl = LEASE.max(self.app.timeout + Duration::from_secs(10));
        let _held = HeldLease::take(shared, lease, ttl).await?;
        let (store, owner, name) = (self.store.clone(), self.owner.clone(), self.name);
        let stored = blocking(move || store.secret(&owner, name)).await?;
        let Some(refresh) = stored else {
            return Err(format!("{} has no refresh token: install the app again", self.owner));
        };
        let grant = self.app.refresh(&refresh, self.user_type).await.map_err(|e| e.to_string())?;
        let Some(next) = grant.refresh else { return Err("the token endpoint answered without a refresh token".into()) };
        let (store, owner, name) = (self.store.clone(), self.owner.clone(), self.name);
        blocking(move || store.set_secret(&owner, name, &next)).await.map_err(|e| format!("storing the new refresh token failed: {e}"))?;
        Ok(FreshToken { access: grant.access, lifetime: grant.expires_in })
    }
}

/// Runs a store's or the leases' call on a blocking thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> Result<T, String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done.map_err(|e| format!("{e:#}")),
        Err(e) => Err(format!("the store's task failed: {e}")),
    }
}

/// A lease held for one refresh; released when dropped (the refresh done, failed or given up).
struct HeldLease {
    leases: Arc<Leases>,
    name: String,
    holder: String,
}

impl HeldLease {
    /// Waits for the lease (another replica refreshing the same token holds it), up to its
    /// `ttl` and a little more: a holder that died has given it up by then.
    async fn take(shared: &SharedRefresh, name: String, ttl: Duration) -> Result<HeldLease, String> {
        // One holder per refresh, even within one process (two credentials of one owner).
        static REFRESHES: AtomicU64 = AtomicU64::new(0);
        let holder = format!("{}/oauth-{}", shared.replica, REFRESHES.fetch_add(1, Ordering::Relaxed));
        let give_up = Instant::now() + ttl + LEASE_POLL * 20;
        loop {
            let (leases, lease, who) = (shared.leases.clone(), name.clone(), holder.clone());
            if blocking(move || leases.try_hold(&lease, &who, ttl)).await? {
                return Ok(HeldLease { leases: shared.leases.clone(), name, holder });
            }
            if Instant::now() >= give_up {
                return Err(format!("another replica has been refreshing this token ({name}) for over {} s", ttl.as_secs()));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        let (leases, name, holder) = (self.leases.clone(), std::mem::take(&mut self.name), std::mem::take(&mut self.holder));
        let release = move || {
            // Not released: it runs out after its time instead.
            if let Err(e) = leases.release(&name, &holder) {
                tracing::warn!(target: "oauth", "releasing the lease {name}: {e:#}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}

/// A location's token minted from its agency's; on a 401 the agency's token is refreshed once.
struct LocationFromAgency {
    app: Arc<MarketplaceApp>,
    agency: Arc<OAuthTokens>,
    company_id: String,
    location_id: String,
}

impl TokenSource for LocationFromAgency {
    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let agency: Secret = self.agency.bearer().await?;
            let grant = match self.app.location_token(&agency, &self.company_id, &self.location_id).await {
                Err(ConnectError::Refused { status: 401, .. }) => {
                    let fresh = self.agency.refresh_after(&agency).await?;
                    self.app.location_token(&fresh, &self.company_id, &self.location_id).await
                }
                other => other,
            }
            .map_err(|e| e.to_string())?;
            Ok(FreshToken { access: grant.access, lifetime: grant.expires_in })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::Location;
    use crate::storage::vault::{SecretKey, Vault};

    /// A token endpoint that takes each refresh token once (HighLevel's rotate), and answers
    /// slowly, so that two refreshes asked at once overlap.
    #[derive(Default)]
    struct Endpoint {
        issued: usize,
        given: Vec<String>,
        refused: usize,
    }

    async fn serve_tokens(endpoint: Arc<Mutex<Endpoint>>) -> String {
        let router = axum::Router::new().route(
            "/oauth/token",
            axum::routing::post(move |body: String| {
                let endpoint = endpoint.clone();
                async move {
                    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                    let given = form.get("refresh_token").cloned().unwrap_or_default();
                    let issued = {
                        let mut e = endpoint.lock().unwrap();
                        e.given.push(given.clone());
                        if given == format!("refresh-{}", e.issued) {
                            e.issued += 1;
                            Some(e.issued)
                        } else {
                            e.refused += 1;
                            None
                        }
                    };
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    match issued {
                        Some(n) => (
                            axum::http::StatusCode::OK,
                            serde_json::json!({"access_token": format!("access-{n}"), "refresh_token": format!("refresh-{n}"), "expires_in": 86399, "userType": "Company"})
                                .to_string(),
                        ),
                        None => (axum::http::StatusCode::BAD_REQUEST, r#"{"error":"invalid_grant","error_description":"used up"}"#.to_string()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{address}")
    }

    /// Two replicas (stores and leases of their own on one database) refresh one agency's
    /// token at the same moment: `shared`, one after the other, each with the newest refresh
    /// token; otherwise both send the same one.
    fn two_replicas_refresh_at_once(shared: bool) -> (Endpoint, Vec<Result<Secret, String>>, Option<Secret>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let vault = Arc::new(Vault::new(SecretKey::generate(), Vec::new()));
        let owner = agency_owner("C1");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let endpoint = Arc::new(Mutex::new(Endpoint::default()));
        let api_base = runtime.block_on(serve_tokens(endpoint.clone()));
        let replicas: Vec<MarketplaceCredentials> = ["replica-a", "replica-b"]
            .into_iter()
            .map(|name| {
                let store = Arc::new(TenantStore::open(&path, Some(vault.clone())).unwrap());
                let mut app = MarketplaceApp::new("client", Secret::new("client-secret"), "http://127.0.0.1:9/callback", Vec::new());
                app.api_base = api_base.clone();
                app.timeout = Duration::from_secs(5);
                let credentials = MarketplaceCredentials::new(Arc::new(app), store);
                match shared {
                    true => credentials.shared(Arc::new(Leases::open(&Location::File(path.clone())).unwrap()), name),
                    false => credentials,
                }
            })
            .collect();
        replicas[0].store.set_secret(&owner, names::AGENCY_REFRESH, &Secret::new("refresh-0")).unwrap();
        let (a, b) = (replicas[0].agency("C1"), replicas[1].agency("C1"));
        let tokens = runtime.block_on(async {
            let (a, b) = tokio::join!(a.bearer(), b.bearer());
            vec![a, b]
        });
        let stored = replicas[1].store.secret(&owner, names::AGENCY_REFRESH).unwrap();
        let endpoint = std::mem::take(&mut *endpoint.lock().unwrap());
        (endpoint, tokens, stored)
    }

    #[test]
    fn replicas_sharing_the_store_refresh_one_after_the_other() {
        let (endpoint, tokens, stored) = two_replicas_refresh_at_once(true);
        assert_eq!(endpoint.given, ["refresh-0", "refresh-1"], "the second replica used the refresh token the first stored");
        assert_eq!(endpoint.refused, 0);
        let mut access: Vec<String> = tokens.into_iter().map(|t| t.unwrap().expose().to_string()).collect();
        access.sort();
        assert_eq!(access, ["access-1", "access-2"]);
        assert_eq!(stored.unwrap().expose(), "refresh-2");
    }

    #[test]
    fn without_the_lease_two_replicas_send_one_refresh_token_twice() {
        let (endpoint, tokens, _) = two_replicas_refresh_at_once(false);
        assert_eq!(endpoint.given, ["refresh-0", "refresh-0"]);
        assert_eq!((endpoint.refused, tokens.iter().filter(|t| t.is_err()).count()), (1, 1));
    }
}
