//! A tenant's HighLevel token from a Marketplace install, kept fresh by the host:
//! - a location install refreshes its own token (single-use refresh tokens, rotated);
//! - an agency install mints each location's token from the agency's token
//!   (`POST /oauth/locationToken`), which is refreshed and rotated in turn, once for all of the
//!   agency's locations.
//!
//! The store is the source of truth for refresh tokens: each refresh reads the newest one and
//! stores its successor before the new access token is used, so `serve` and a CLI command
//! (`check`) never hold a used-up refresh token for long.

use super::store::TenantStore;
use super::{agency_owner, secret_names as names, HighLevelAuth, Tenant};
use crate::capability::secret::Secret;
use crate::connect::highlevel::{MarketplaceApp, UserType};
use crate::connect::ConnectError;
use crate::oauth::{FreshToken, OAuthTokens, TokenFuture, TokenSource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

impl MarketplaceCredentials {
    pub fn new(app: Arc<MarketplaceApp>, store: Arc<TenantStore>) -> MarketplaceCredentials {
        MarketplaceCredentials { app, store, agencies: Mutex::default() }
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
}

impl TokenSource for StoredRefresh {
    fn fetch(&self) -> TokenFuture<'_> {
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
