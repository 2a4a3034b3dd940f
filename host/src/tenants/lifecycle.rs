//! Adding, connecting and removing tenants: what `connect`, the setup page and the Marketplace's
//! INSTALL and UNINSTALL webhooks do. Each step stores what it must remember before it asks
//! the other side to act on it (a webhook secret is sealed before Dialpad is told to sign with
//! it), so a crash between the two leaves nothing that cannot be verified.

use super::store::TenantStore;
use super::{agency_owner, id_for_location, owner, secret_names as names, DialpadAuth, DialpadLink, HighLevelAuth, Tenant};
use crate::capability::secret::Secret;
use crate::connect::dialpad::{DialpadConnection, Registration, Wanted};
use crate::connect::highlevel::{Grant, MarketplaceApp, UserType};
use anyhow::{bail, Context as _};
use serde_json::{Map, Value};
use std::time::Duration;

/// A new random secret (32 bytes, hex): a Dialpad webhook's.
pub fn generate_secret() -> Secret {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Adds (or updates) a tenant reached with a private integration token.
pub fn put_private(store: &TenantStore, id: &str, location_id: &str, token: &Secret, config: Map<String, Value>) -> anyhow::Result<Tenant> {
    let existing = store.get(id)?;
    let tenant = Tenant {
        id: id.to_string(),
        location_id: location_id.to_string(),
        company_id: None,
        name: existing.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
        config,
        highlevel: HighLevelAuth::PrivateToken,
        scopes: Vec::new(),
        dialpad: existing.and_then(|t| t.dialpad),
        created_ms: 0,
        updated_ms: 0,
    };
    tenant.check()?;
    store.set_secret(&tenant.owner(), names::HIGHLEVEL_TOKEN, token)?;
    store.put(&tenant)
}

/// How a tenant reaches Dialpad.
pub struct DialpadCredential {
    pub auth: DialpadAuth,
    /// The API key, or the OAuth access token.
    pub credential: Secret,
    /// With OAuth: the refresh token.
    pub refresh: Option<Secret>,
}

/// Where and how to register at Dialpad.
pub struct DialpadTarget<'a> {
    /// Dialpad's API origin.
    pub api_base: &'a str,
    /// Where Dialpad reaches this host's webhook listener (`https://sync.example.com`).
    pub public_url: &'a str,
    pub call_states: &'a [String],
    pub timeout: Duration,
}

/// Connects a tenant's Dialpad: stores the credential, then registers the webhook (signed with
/// the tenant's secret, made once and kept) and the subscriptions. Connecting again registers
/// nothing twice.
pub async fn connect_dialpad(store: &TenantStore, tenant_id: &str, credential: DialpadCredential, target: DialpadTarget<'_>) -> anyhow::Result<Registration> {
    let Some(mut tenant) = store.get(tenant_id)? else { bail!("no tenant {tenant_id}: add it first (connect --location-id, or install the HighLevel app)") };
    let owner = tenant.owner();
    let secret = match store.secret(&owner, names::WEBHOOK_SECRET)? {
        Some(secret) => secret,
        None => {
            let secret = generate_secret();
            store.set_secret(&owner, names::WEBHOOK_SECRET, &secret)?;
            secret
        }
    };
    match credential.auth {
        DialpadAuth::ApiKey => store.set_secret(&owner, names::DIALPAD_KEY, &credential.credential)?,
        DialpadAuth::OAuth => {
            store.set_secret(&owner, names::DIALPAD_ACCESS, &credential.credential)?;
            if let Some(refresh) = &credential.refresh {
                store.set_secret(&owner, names::DIALPAD_REFRESH, refresh)?;
            }
        }
    }
    let connection = DialpadConnection { api_base: target.api_base.to_string(), credential: credential.credential, timeout: target.timeout };
    let wanted = Wanted { hook_url: hook_url(target.public_url, tenant_id), call_states: target.call_states.to_vec(), sms: true, contacts: true };
    let registration = connection.register(&wanted, &secret).await.context("registering the webhook at Dialpad")?;
    tenant.dialpad = Some(DialpadLink { auth: credential.auth, registration: Some(registration.clone()) });
    store.put(&tenant)?;
    Ok(registration)
}

/// The URL Dialpad posts a tenant's events to.
pub fn hook_url(public_url: &str, tenant_id: &str) -> String {
    format!("{}/webhooks/dialpad/{tenant_id}", public_url.trim_end_matches('/'))
}

/// The tenant's Dialpad connection as stored (`None` when not connected).
pub fn dialpad_connection(store: &TenantStore, tenant: &Tenant, api_base: &str, timeout: Duration) -> anyhow::Result<Option<DialpadConnection>> {
    let name = match tenant.dialpad.as_ref().map(|d| d.auth) {
        Some(DialpadAuth::ApiKey) => names::DIALPAD_KEY,
        Some(DialpadAuth::OAuth) => names::DIALPAD_ACCESS,
        None => return Ok(None),
    };
    Ok(store.secret(&tenant.owner(), name)?.map(|credential| DialpadConnection { api_base: api_base.to_string(), credential, timeout }))
}

/// Removes what was registered at Dialpad for a tenant and forgets its Dialpad credential and
/// webhook secret. False when it was not connected.
pub async fn disconnect_dialpad(store: &TenantStore, tenant_id: &str, api_base: &str, timeout: Duration) -> anyhow::Result<bool> {
    let Some(mut tenant) = store.get(tenant_id)? else { bail!("no tenant {tenant_id}") };
    let Some(link) = tenant.dialpad.clone() else { return Ok(false) };
    if let (Some(connection), Some(registration)) = (dialpad_connection(store, &tenant, api_base, timeout)?, &link.registration) {
        connection.unregister(registration).await.context("removing the webhook and subscriptions at Dialpad")?;
    }
    let owner = tenant.owner();
    for name in [names::DIALPAD_KEY, names::DIALPAD_ACCESS, names::DIALPAD_REFRESH, names::WEBHOOK_SECRET] {
        store.remove_secret(&owner, name)?;
    }
    tenant.dialpad = None;
    store.put(&tenant)?;
    Ok(true)
}

/// Creates the tenants of a Marketplace install from its grant: one for a location install;
/// for an agency install, the agency's refresh token and a tenant per approved (and installed)
/// location. Returns the tenants made or updated.
pub async fn install(store: &TenantStore, app: &MarketplaceApp, grant: Grant) -> anyhow::Result<Vec<Tenant>> {
    match grant.user_type {
        UserType::Location => {
            let Some(location) = grant.location_id.clone() else { bail!("the location install's grant names no location") };
            let Some(refresh) = &grant.refresh else { bail!("the location install's grant has no refresh token") };
            let id = id_for_location(&location);
            store.set_secret(&owner(&id), names::HIGHLEVEL_REFRESH, refresh)?;
            let installed = Installed {
                id: &id,
                location: &location,
                company: grant.company_id.clone(),
                auth: HighLevelAuth::LocationInstall,
                name: None,
                scopes: &grant.scopes,
            };
            Ok(vec![put_installed(store, installed)?])
        }
        UserType::Company => {
            let Some(company) = grant.company_id.clone() else { bail!("the agency install's grant names no company") };
            let Some(refresh) = &grant.refresh else { bail!("the agency install's grant has no refresh token") };
            store.set_secret(&agency_owner(&company), names::AGENCY_REFRESH, refresh)?;
            // The approved locations, and, when the app's id is known, those HighLevel lists as
            // installed (a bulk install may approve more than the grant names).
            let mut locations: Vec<(String, Option<String>)> = grant.approved_locations.iter().map(|l| (l.clone(), None)).collect();
            if app.app_id.is_some() {
                for installed in app.installed_locations(&grant.access, &company).await.context("listing the installed locations")? {
                    match locations.iter_mut().find(|(id, _)| *id == installed.id) {
                        Some(known) => known.1 = Some(installed.name),
                        None if installed.is_installed => locations.push((installed.id, Some(installed.name))),
                        None => {}
                    }
                }
            }
            let mut made = Vec::new();
            for (location, name) in locations {
                let id = id_for_location(&location);
                let installed =
                    Installed { id: &id, location: &location, company: Some(company.clone()), auth: HighLevelAuth::AgencyInstall, name, scopes: &grant.scopes };
                made.push(put_installed(store, installed)?);
            }
            Ok(made)
        }
    }
}

/// An installed location's tenant (its secrets are stored by the caller).
struct Installed<'a> {
    id: &'a str,
    location: &'a str,
    company: Option<String>,
    auth: HighLevelAuth,
    name: Option<String>,
    scopes: &'a [String],
}

fn put_installed(store: &TenantStore, installed: Installed<'_>) -> anyhow::Result<Tenant> {
    let Installed { id, location, company, auth, name, scopes } = installed;
    let existing = store.get(id)?;
    let tenant = Tenant {
        id: id.to_string(),
        location_id: location.to_string(),
        company_id: company,
        name: name.or_else(|| existing.as_ref().map(|t| t.name.clone())).unwrap_or_default(),
        config: existing.as_ref().map(|t| t.config.clone()).unwrap_or_default(),
        highlevel: auth,
        scopes: scopes.to_vec(),
        dialpad: existing.and_then(|t| t.dialpad),
        created_ms: 0,
        updated_ms: 0,
    };
    store.put(&tenant)
}

/// Which install an UNINSTALL removes.
pub enum Uninstalled<'a> {
    Location(&'a str),
    /// The whole agency: every one of its tenants and its own token.
    Agency(&'a str),
}

/// The tenants an uninstall removes: the app's installs only (a location the operator connected
/// with a private integration token is not the app's to remove).
pub fn uninstalled_tenants(store: &TenantStore, which: &Uninstalled<'_>) -> anyhow::Result<Vec<Tenant>> {
    Ok(store
        .list()?
        .into_iter()
        .filter(|t| t.highlevel != HighLevelAuth::PrivateToken)
        .filter(|t| match which {
            Uninstalled::Location(location) => t.location_id == *location,
            Uninstalled::Agency(company) => t.company_id.as_deref() == Some(*company),
        })
        .collect())
}

/// Removes a tenant: its Dialpad registration first (best effort: HighLevel's uninstall must
/// not wait on Dialpad), then the tenant and every secret it had.
pub async fn remove(store: &TenantStore, tenant_id: &str, dialpad_api_base: &str, timeout: Duration) -> anyhow::Result<bool> {
    if let Err(e) = disconnect_dialpad(store, tenant_id, dialpad_api_base, timeout).await {
        tracing::warn!("tenant {tenant_id}: {e:#}; removing it anyway (remove the Dialpad webhook by hand if it is still there)");
    }
    store.remove(tenant_id)
}

/// A location of an agency whose token is stored (an INSTALL webhook for a location added to an
/// agency install later): its tenant, with tokens minted from the agency's. `None` when the
/// agency's token is not stored (the install must be finished through the authorization page).
pub fn add_agency_location(store: &TenantStore, company_id: &str, location_id: &str) -> anyhow::Result<Option<Tenant>> {
    if store.secret(&agency_owner(company_id), names::AGENCY_REFRESH)?.is_none() {
        return Ok(None);
    }
    let id = id_for_location(location_id);
    let scopes = store.get(&id)?.map(|t| t.scopes).unwrap_or_default();
    let installed =
        Installed { id: &id, location: location_id, company: Some(company_id.to_string()), auth: HighLevelAuth::AgencyInstall, name: None, scopes: &scopes };
    Ok(Some(put_installed(store, installed)?))
}

/// What reconciling an agency's installs changes: tenants to add (installed, unknown here) and
/// to remove (known here, no longer installed: an UNINSTALL that never arrived).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InstallsDrift {
    pub added: Vec<String>,
    pub uninstalled: Vec<String>,
}

/// Compares an agency's tenants with `GET /oauth/installedLocations`; adds the missing tenants
/// and returns the ids of those to remove (the caller removes them, cancelling their work).
pub async fn reconcile_agency(
    store: &TenantStore,
    credentials: &super::credentials::MarketplaceCredentials,
    company_id: &str,
) -> anyhow::Result<InstallsDrift> {
    let agency = credentials.agency(company_id);
    let bearer = agency.bearer().await.map_err(|e| anyhow::anyhow!("agency {company_id}: {e}"))?;
    let installed = credentials.app().installed_locations(&bearer, company_id).await.context("listing the installed locations")?;
    let tenants: Vec<Tenant> =
        store.list()?.into_iter().filter(|t| t.company_id.as_deref() == Some(company_id) && t.highlevel == HighLevelAuth::AgencyInstall).collect();
    let mut drift = InstallsDrift::default();
    for location in installed.iter().filter(|l| l.is_installed) {
        if !tenants.iter().any(|t| t.location_id == location.id) {
            if let Some(tenant) = add_agency_location(store, company_id, &location.id)? {
                drift.added.push(tenant.id);
            }
        }
    }
    for tenant in tenants {
        if !installed.iter().any(|l| l.is_installed && l.id == tenant.location_id) {
            drift.uninstalled.push(tenant.id);
        }
    }
    Ok(drift)
}
