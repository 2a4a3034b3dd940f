//! `serve`'s live tenants: a runtime per tenant, built from the host's settings with the
//! tenant's own configuration, credentials, limiters and key-value namespace, and rebuilt when
//! the stored tenant changes.

use super::credentials::{HighLevelCredential, MarketplaceCredentials};
use super::store::TenantStore;
use super::{secret_names as names, DialpadAuth, HighLevelAuth, Tenant};
use crate::capability::keyvalue::KeyValueStore;
use crate::capability::outbound::CircuitBreaker;
use crate::capability::secret::Secret;
use crate::engine::Runtime;
use crate::settings::Settings;
use crate::storage::dead_letters::DeadLetters;
use anyhow::Context as _;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One tenant, ready for its events.
pub struct LiveTenant {
    pub tenant: Tenant,
    pub runtime: Runtime,
    pub dead_letters: DeadLetters,
    /// The settings its runtime was built from (its reconciliation, its limiters).
    pub settings: Settings,
}

/// A tenant's credentials, opened from the vault.
pub struct Credentials {
    pub highlevel: HighLevelCredential,
    pub dialpad_key: Option<Secret>,
    pub webhook_secret: Option<Secret>,
}

/// Makes a tenant's HighLevel credential from the store (OAuth tokens need the Marketplace app).
pub type CredentialSource = dyn Fn(&Tenant, &TenantStore) -> anyhow::Result<HighLevelCredential> + Send + Sync;

/// The host's single location (the empty id) and the stored tenants, as runtimes.
pub struct Tenants {
    /// The compiled, linked plugin every tenant's runtime shares.
    template: Runtime,
    base: Settings,
    kv: KeyValueStore,
    dead_letters: DeadLetters,
    store: Option<Arc<TenantStore>>,
    oauth: Box<CredentialSource>,
    single: Arc<LiveTenant>,
    /// Whether the single location is served (see [`Tenants::serves_single`]).
    single_served: bool,
    live: RwLock<Live>,
}

#[derive(Default)]
struct Live {
    generation: i64,
    by_id: HashMap<String, Arc<LiveTenant>>,
}

impl Tenants {
    /// `single` is the host's own location (`--location-id`), built by the caller from `base`.
    /// Without a store, it is the only tenant.
    pub fn new(single: Runtime, base: Settings, dead_letters: DeadLetters, store: Option<Arc<TenantStore>>, oauth: Box<CredentialSource>) -> Tenants {
        let kv = single.keyvalue().clone();
        let single = Arc::new(LiveTenant {
            tenant: Tenant {
                id: String::new(),
                location_id: single.plugin_setting("location_id").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
                company_id: None,
                name: "this host's location".into(),
                config: Default::default(),
                highlevel: HighLevelAuth::PrivateToken,
                scopes: Vec::new(),
                dialpad: None,
                created_ms: 0,
                updated_ms: 0,
            },
            runtime: single,
            dead_letters: dead_letters.clone(),
            settings: base.clone(),
        });
        let single_served = !single.tenant.location_id.is_empty();
        Tenants {
            template: single.runtime.clone_shared(),
            base,
            kv,
            dead_letters,
            store,
            oauth,
            single,
            single_served,
            live: RwLock::new(Live { generation: -1, ..Live::default() }),
        }
    }

    /// Tenants over `store`, each built from `base` with its own credentials; a Marketplace
    /// install's tokens come from the configured app (its code coming back to
    /// `default_redirect` when the configuration names no redirect URI).
    pub fn over_store(
        single: Runtime,
        base: &Settings,
        dead_letters: DeadLetters,
        store: Arc<TenantStore>,
        default_redirect: &str,
    ) -> (Tenants, Option<Arc<MarketplaceCredentials>>) {
        let marketplace = base.connect.marketplace.as_ref().map(|m| {
            let credentials = MarketplaceCredentials::new(Arc::new(m.app(&base.api_base(), default_redirect, base.request_timeout)), store.clone());
            // Replicas on one database refresh a token one at a time (HighLevel rotates the
            // refresh token: two refreshing with the same one would lose the tenant).
            match base.shared_store.as_ref().map(crate::storage::lease::Leases::open) {
                Some(Ok(leases)) => Arc::new(credentials.shared(Arc::new(leases), crate::storage::lease::replica_name())),
                Some(Err(e)) => {
                    tracing::error!("tenants: the OAuth refresh leases could not be opened ({e:#}); replicas may refresh one token at once");
                    Arc::new(credentials)
                }
                None => Arc::new(credentials),
            }
        });
        let credentials = marketplace.clone();
        let source: Box<CredentialSource> = Box::new(move |tenant, _| match &credentials {
            Some(marketplace) => marketplace.credential(tenant),
            None => Ok(HighLevelCredential::Missing("no Marketplace app is configured (marketplace in the configuration)".into())),
        });
        (Tenants::new(single, base.clone(), dead_letters, Some(store), source), marketplace)
    }

    /// The host has no location of its own: only tenants' paths are served.
    pub fn without_single(mut self) -> Tenants {
        self.single_served = false;
        self
    }

    /// Whether the host has a single location of its own (`--location-id`), served on the paths
    /// without a tenant id.
    pub fn serves_single(&self) -> bool {
        self.single_served
    }

    pub fn store(&self) -> Option<&Arc<TenantStore>> {
        self.store.as_ref()
    }

    /// The host's single location.
    pub fn single(&self) -> &Arc<LiveTenant> {
        &self.single
    }

    /// A tenant by id (`""`: the host's single location); reloads first when the store changed.
    pub fn get(&self, id: &str) -> Option<Arc<LiveTenant>> {
        if id.is_empty() {
            return Some(self.single.clone());
        }
        if let Err(e) = self.refresh() {
            tracing::error!("tenants: reloading: {e:#}");
        }
        self.live.read().unwrap().by_id.get(id).cloned()
    }

    /// The tenant whose HighLevel location is `location_id`: the single location when it is
    /// served and is that location, else the stored tenant of that location (the first by id,
    /// should two name the same location).
    pub fn for_location(&self, location_id: &str) -> Option<Arc<LiveTenant>> {
        if location_id.is_empty() {
            return None;
        }
        if self.single_served && self.single.tenant.location_id == location_id {
            return Some(self.single.clone());
        }
        self.all().into_iter().find(|live| live.tenant.location_id == location_id)
    }

    /// Every stored tenant's live form (not the single location).
    pub fn all(&self) -> Vec<Arc<LiveTenant>> {
        if let Err(e) = self.refresh() {
            tracing::error!("tenants: reloading: {e:#}");
        }
        let live = self.live.read().unwrap();
        let mut all: Vec<_> = live.by_id.values().cloned().collect();
        all.sort_by(|a, b| a.tenant.id.cmp(&b.tenant.id));
        all
    }

    /// Rebuilds what changed in the store since the last look: new and changed tenants get a
    /// new runtime (with limiters of their own), removed ones are dropped. Cheap when nothing
    /// changed (one read of the generation).
    pub fn refresh(&self) -> anyhow::Result<()> {
        let Some(store) = &self.store else { return Ok(()) };
        let generation = store.generation()?;
        if self.live.read().unwrap().generation == generation {
            return Ok(());
        }
        let mut live = self.live.write().unwrap();
        if live.generation == generation {
            return Ok(());
        }
        let mut by_id = HashMap::new();
        for tenant in store.list()? {
            // An unchanged tenant keeps its runtime: its limiters' windows and OAuth tokens go on.
            let kept = live.by_id.get(&tenant.id).filter(|l| l.tenant == tenant).cloned();
            let runtime = match kept {
                Some(kept) => kept,
                None => match self.build(store, &tenant) {
                    Ok(built) => Arc::new(built),
                    Err(e) => {
                        tracing::error!("tenant {}: {e:#}", tenant.id);
                        continue;
                    }
                },
            };
            by_id.insert(tenant.id.clone(), runtime);
        }
        *live = Live { generation, by_id };
        Ok(())
    }

    fn build(&self, store: &TenantStore, tenant: &Tenant) -> anyhow::Result<LiveTenant> {
        let owner = tenant.owner();
        let highlevel = match tenant.highlevel {
            HighLevelAuth::PrivateToken => match store.secret(&owner, names::HIGHLEVEL_TOKEN)? {
                Some(token) => HighLevelCredential::Token(token),
                None => HighLevelCredential::Missing("no HighLevel token is stored".into()),
            },
            HighLevelAuth::LocationInstall | HighLevelAuth::AgencyInstall => (self.oauth)(tenant, store)?,
        };
        let dialpad_key = match tenant.dialpad.as_ref().map(|d| d.auth) {
            Some(DialpadAuth::ApiKey) => store.secret(&owner, names::DIALPAD_KEY)?,
            Some(DialpadAuth::OAuth) => store.secret(&owner, names::DIALPAD_ACCESS)?,
            None => None,
        };
        let credentials = Credentials { highlevel, dialpad_key, webhook_secret: store.secret(&owner, names::WEBHOOK_SECRET)? };
        let settings = tenant_settings(&self.base, tenant, credentials);
        let runtime = self.template.with_options(settings.runtime_options(true).context("the tenant's settings")?, self.kv.namespaced(&tenant.id));
        Ok(LiveTenant { tenant: tenant.clone(), runtime, dead_letters: self.dead_letters.for_tenant(&tenant.id), settings })
    }
}

/// One tenant's settings: the host's, with the tenant's configuration over them, its location,
/// webhook secret and credentials, and rate limiters and circuit breakers of its own (HighLevel
/// counts its limits per app and location).
pub fn tenant_settings(base: &Settings, tenant: &Tenant, credentials: Credentials) -> Settings {
    let mut settings = base.clone();
    for (key, value) in &tenant.config {
        settings.plugin_config.insert(key.clone(), value.clone());
    }
    settings.set("location_id", tenant.location_id.clone());
    settings.plugin_config.remove("webhook_secret");
    if let Some(secret) = &credentials.webhook_secret {
        settings.set("webhook_secret", secret.expose());
    }
    settings.token = None;
    settings.oauth = None;
    settings.oauth_app = None;
    match credentials.highlevel {
        HighLevelCredential::Token(token) => settings.token = Some(token),
        HighLevelCredential::OAuth(tokens) => settings.oauth = Some(tokens),
        HighLevelCredential::Missing(_) => {}
    }
    settings.dialpad_key = credentials.dialpad_key;
    settings.rate_limiter = base.rate_limiter.as_ref().map(|l| Arc::new(l.same_limit()));
    settings.dialpad_rate_limiter = base.dialpad_rate_limiter.as_ref().map(|l| Arc::new(l.same_limit()));
    settings.dialpad_contact_limiter = base.dialpad_contact_limiter.as_ref().map(|l| Arc::new(l.same_limit()));
    settings.api_breaker = base.api_breaker.as_ref().map(|b| Arc::new(CircuitBreaker::new(b.settings())));
    settings.dialpad_breaker = base.dialpad_breaker.as_ref().map(|b| Arc::new(CircuitBreaker::new(b.settings())));
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::outbound::Origin;
    use crate::tenants::{DialpadLink, HighLevelAuth};

    #[test]
    fn a_tenants_credentials_go_each_to_its_own_origin_with_limiters_of_its_own() {
        let mut base = Settings::default();
        base.set("api_base", "https://services.leadconnectorhq.com");
        base.set("dialpad_api_base", "https://dialpad.com");
        // The host's own location's credentials, which no tenant may inherit.
        base.token = Some(Secret::new("the-hosts-token"));
        base.dialpad_key = Some(Secret::new("the-hosts-dialpad-key"));
        let tenant = Tenant {
            id: "north".into(),
            location_id: "locNorth".into(),
            company_id: None,
            name: String::new(),
            config: Default::default(),
            highlevel: HighLevelAuth::PrivateToken,
            scopes: Vec::new(),
            dialpad: Some(DialpadLink { auth: DialpadAuth::ApiKey, registration: None }),
            created_ms: 0,
            updated_ms: 0,
        };
        let credentials = Credentials {
            highlevel: HighLevelCredential::Token(Secret::new("north-token")),
            dialpad_key: Some(Secret::new("north-dialpad-key")),
            webhook_secret: None,
        };
        let settings = tenant_settings(&base, &tenant, credentials);
        let policy = settings.runtime_options(true).unwrap().policy;
        let (highlevel, dialpad) = (Origin::parse("https://services.leadconnectorhq.com").unwrap(), Origin::parse("https://dialpad.com").unwrap());
        let bound: Vec<(&Origin, &str)> = policy.credentials.iter().map(|(o, secret)| (o, secret.expose())).collect();
        assert_eq!(bound, [(&highlevel, "north-token"), (&dialpad, "north-dialpad-key")]);
        let own = |mine: &Option<Arc<crate::capability::outbound::RateLimiter>>, hosts: &Option<Arc<crate::capability::outbound::RateLimiter>>| {
            !Arc::ptr_eq(mine.as_ref().unwrap(), hosts.as_ref().unwrap())
        };
        assert!(own(&settings.dialpad_contact_limiter, &base.dialpad_contact_limiter), "a tenant counts its own contact creates");
        assert!(own(&settings.rate_limiter, &base.rate_limiter) && own(&settings.dialpad_rate_limiter, &base.dialpad_rate_limiter));
        assert!(Arc::ptr_eq(&policy.route_limits[0].limiter, settings.dialpad_contact_limiter.as_ref().unwrap()));
        // Without Dialpad connected, the tenant cannot reach Dialpad, whatever the host has.
        let unconnected = tenant_settings(
            &base,
            &Tenant { dialpad: None, ..tenant },
            Credentials { highlevel: HighLevelCredential::Token(Secret::new("north-token")), dialpad_key: None, webhook_secret: None },
        );
        assert_eq!(unconnected.runtime_options(true).unwrap().policy.allowed, [highlevel]);
    }
}
