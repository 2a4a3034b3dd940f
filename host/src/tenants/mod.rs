//! Tenants: one HighLevel location joined to one Dialpad company (or office), with its own
//! plugin configuration, credentials, webhook secret, rate limiters, key-value namespace, inbox
//! lanes and dead letters. One `serve` hosts many; each has its own webhook URL
//! (`/webhooks/dialpad/{tenant}`).
//!
//! - [`Tenant`] is what is kept in plain rows: ids, settings, which credentials it has. Its
//!   secrets (tokens, API keys, the webhook secret) are sealed in the vault's rows
//!   ([`store::TenantStore`]), never beside it.
//! - [`registry::Tenants`] is `serve`'s live view: a runtime per tenant built from the host's
//!   settings with the tenant's own credentials and limiters, rebuilt when the stored tenant
//!   changes (added, changed or removed while `serve` runs, by the admin API or the CLI).
//!
//! The host's single location (`--location-id`, `--token`, the `/webhooks/dialpad` path) stays:
//! it is the tenant with the empty id, and its keys and lanes are unprefixed as before.

pub mod check;
pub mod credentials;
pub mod lifecycle;
pub mod registry;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Settings a tenant may not set in its own configuration: the host owns where requests go and
/// which credential goes with them.
pub const HOST_OWNED_KEYS: [&str; 6] = ["api_base", "dialpad_api_base", "token", "oauth", "dialpad_api_key", "durable_state"];

/// One tenant as stored (no secrets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// `[a-z0-9][a-z0-9-]{0,62}`: it is part of a URL and of every key it stores.
    pub id: String,
    /// HighLevel location (sub-account) id.
    pub location_id: String,
    /// The agency (company), for a Marketplace agency install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// A name for people (the location's name).
    #[serde(default)]
    pub name: String,
    /// Plugin settings over the host's own (`--config`); never a secret or an origin.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// How the host gets this location's HighLevel token.
    pub highlevel: HighLevelAuth,
    /// The scopes the install granted (empty for a private token, whose scopes are not listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Dialpad, once connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialpad: Option<DialpadLink>,
    #[serde(default)]
    pub created_ms: i64,
    #[serde(default)]
    pub updated_ms: i64,
}

/// Where a tenant's HighLevel access token comes from (the secrets themselves are sealed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HighLevelAuth {
    /// A private integration token (secret `highlevel_token`).
    PrivateToken,
    /// A Marketplace install for this location: a rotating refresh token (secret
    /// `highlevel_refresh`).
    LocationInstall,
    /// A Marketplace agency install: location tokens from the agency's token
    /// (`POST /oauth/locationToken`; the agency's refresh token is the agency's secret).
    AgencyInstall,
}

/// Dialpad's side of a tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DialpadLink {
    /// `api_key` (secret `dialpad_key`) or `oauth` (secrets `dialpad_access`, `dialpad_refresh`).
    pub auth: DialpadAuth,
    /// The webhook and subscriptions registered for this tenant (removed on disconnect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<crate::connect::dialpad::Registration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialpadAuth {
    ApiKey,
    OAuth,
}

/// Names of a tenant's sealed secrets.
pub mod secret_names {
    pub const HIGHLEVEL_TOKEN: &str = "highlevel_token";
    pub const HIGHLEVEL_REFRESH: &str = "highlevel_refresh";
    pub const DIALPAD_KEY: &str = "dialpad_key";
    pub const DIALPAD_ACCESS: &str = "dialpad_access";
    pub const DIALPAD_REFRESH: &str = "dialpad_refresh";
    /// The Dialpad webhook's secret: every delivery to this tenant is a JWT signed with it.
    pub const WEBHOOK_SECRET: &str = "webhook_secret";
    /// An agency's refresh token (owner `agency:<company id>`).
    pub const AGENCY_REFRESH: &str = "refresh";
}

/// Why a tenant id or configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTenant(pub String);

impl std::fmt::Display for InvalidTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidTenant {}

/// Checks a tenant id: lowercase letters, digits and dashes, 1 to 63, starting alphanumeric.
pub fn check_id(id: &str) -> Result<(), InvalidTenant> {
    let ok = (1..=63).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(InvalidTenant(format!("tenant id {id:?}: use 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit")))
    }
}

/// A tenant id made from a HighLevel location id (`loc-` and the id, lowercased, other
/// characters dropped): what a Marketplace install names the tenant it creates.
pub fn id_for_location(location_id: &str) -> String {
    let cleaned: String = location_id.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).take(59).collect();
    format!("loc-{cleaned}")
}

impl Tenant {
    /// Checks what a tenant may hold: a valid id, a location, and no host-owned setting.
    pub fn check(&self) -> Result<(), InvalidTenant> {
        check_id(&self.id)?;
        if self.location_id.trim().is_empty() {
            return Err(InvalidTenant(format!("tenant {}: location_id is required", self.id)));
        }
        if let Some(key) = HOST_OWNED_KEYS.iter().find(|k| self.config.contains_key(**k)) {
            return Err(InvalidTenant(format!("tenant {}: {key} is the host's setting, not a tenant's (credentials are sealed separately)", self.id)));
        }
        if self.config.contains_key("location_id") || self.config.contains_key("webhook_secret") {
            return Err(InvalidTenant(format!("tenant {}: location_id and webhook_secret are the tenant's own fields, not config keys", self.id)));
        }
        Ok(())
    }

    /// The owner name of this tenant's sealed secrets.
    pub fn owner(&self) -> String {
        owner(&self.id)
    }
}

/// The owner name of a tenant's sealed secrets.
pub fn owner(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

/// The owner name of an agency's sealed secrets.
pub fn agency_owner(company_id: &str) -> String {
    format!("agency:{company_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_and_key_safe() {
        for good in ["acme", "loc-abc123", "a", "0-x"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "Acme", "a/b", "a b", "../x", &"a".repeat(64)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert_eq!(id_for_location("ve9EPM428h8vShlRW1KT"), "loc-ve9epm428h8vshlrw1kt");
        assert!(check_id(&id_for_location(&"X".repeat(200))).is_ok());
    }

    #[test]
    fn a_tenant_cannot_carry_host_settings_or_secrets() {
        let mut tenant = Tenant {
            id: "acme".into(),
            location_id: "L1".into(),
            company_id: None,
            name: String::new(),
            config: Map::new(),
            highlevel: HighLevelAuth::PrivateToken,
            scopes: Vec::new(),
            dialpad: None,
            created_ms: 0,
            updated_ms: 0,
        };
        assert!(tenant.check().is_ok());
        tenant.config.insert("api_base".into(), "http://evil".into());
        assert!(tenant.check().unwrap_err().0.contains("api_base"));
        tenant.config.clear();
        tenant.config.insert("token".into(), "x".into());
        assert!(tenant.check().is_err());
    }
}
