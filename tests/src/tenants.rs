//! An in-process `serve` hosting tenants, against the HighLevel mock with its Marketplace and the
//! Dialpad mock: what the setup page's browser test and the tenants' tests start from.

use crate::serve::loopback_options;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::serve::setup::Setup;
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::settings::{DialpadOAuthSettings, MarketplaceSettings};
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use dialpad_ghl_host::storage::vault::{SecretKey, Vault};
use dialpad_ghl_host::tenants::registry::Tenants;
use dialpad_ghl_host::tenants::store::TenantStore;
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions, DialpadOAuthClient};
use host_test::ghl_mock::{MarketplaceOptions, MockOptions, MockServer};
use std::sync::Arc;
use std::time::Duration;

pub const CLIENT_ID: &str = "tenant-test-app-client";
pub const CLIENT_SECRET: &str = "tenant-test-client-secret";
pub const APP_ID: &str = "tenant-test-app";
pub const COMPANY: &str = "tenantTestAgency";
pub const LOCATIONS: [&str; 2] = ["tenantLocA", "tenantLocB"];
/// The private integration token the HighLevel mock accepts.
pub const PRIVATE_TOKEN: &str = "pit-tenant-test-0a9";
pub const DIALPAD_KEY: &str = "dialpad-tenant-test-key";
/// The Dialpad OAuth app the mock knows.
pub const DIALPAD_CLIENT_ID: &str = "dialpad-tenant-test-app";
pub const DIALPAD_CLIENT_SECRET: &str = "dialpad-tenant-test-app-secret";

/// The mocks and a `serve` with tenants on loopback ports.
pub struct TenantHost {
    pub ghl: MockServer,
    pub dialpad: DialpadMock,
    pub server: Server,
    pub store: Arc<TenantStore>,
    /// The state file (inbox, dead letters, tenants, the plugin's records).
    pub db: std::path::PathBuf,
}

/// Starts the mocks and a `serve` with no location of its own, hosting tenants.
pub fn tenant_host(name: &str) -> TenantHost {
    tenant_host_with(name, |_| {})
}

/// [`tenant_host`] with `serve`'s options adjusted (its limits, its retries).
pub fn tenant_host_with(name: &str, adjust: impl FnOnce(&mut ServeOptions)) -> TenantHost {
    let ghl = MockServer::start(MockOptions {
        token: Some(PRIVATE_TOKEN.into()),
        marketplace: Some(MarketplaceOptions {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            app_id: APP_ID.into(),
            company_id: COMPANY.into(),
            locations: LOCATIONS.map(String::from).to_vec(),
            access_token_ttl: Duration::from_secs(3600),
        }),
        ..MockOptions::default()
    })
    .unwrap();
    let dialpad = DialpadMock::start(DialpadMockOptions { api_key: DIALPAD_KEY.into(), ..DialpadMockOptions::default() }).unwrap();
    let db = host_test::support::scratch_dir(name).join("state.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut settings = crate::quick_settings(&ghl.base_url(), "-", "unused");
    settings.token = None;
    settings.set("dialpad_api_base", dialpad.base_url());
    settings.connect.public_url = Some(format!("http://127.0.0.1:{port}"));
    settings.connect.marketplace = Some(MarketplaceSettings {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        app_id: Some(APP_ID.into()),
        redirect_uri: None,
        scopes: dialpad_ghl_host::settings::DEFAULT_SCOPES.map(String::from).to_vec(),
        marketplace_base: Some(ghl.base_url()),
        webhook_public_key: Some(host_test::app_webhook::test_public_key_pem()),
        legacy_webhook_key: None,
    });
    let store = Arc::new(TenantStore::open(&db, Some(Arc::new(Vault::new(SecretKey::generate(), vec![])))).unwrap());
    let single = Runtime::new(crate::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    let redirect = format!("http://127.0.0.1:{admin_port}/oauth/highlevel/callback");
    let (tenants, marketplace) = Tenants::over_store(single, &settings, DeadLetters::open(&db).unwrap(), store.clone(), &redirect);
    settings.connect.dialpad_oauth = Some(DialpadOAuthSettings {
        client_id: DIALPAD_CLIENT_ID.into(),
        client_secret: Secret::new(DIALPAD_CLIENT_SECRET),
        redirect_uri: None,
        scopes: vec!["recordings_export".into()],
    });
    dialpad.add_oauth_client(DialpadOAuthClient {
        client_id: DIALPAD_CLIENT_ID.into(),
        client_secret: DIALPAD_CLIENT_SECRET.into(),
        redirect_uris: vec![format!("http://127.0.0.1:{admin_port}/oauth/dialpad/callback")],
        access_token_ttl: Duration::from_secs(3600),
    });
    let setup = Setup::from_settings(&settings, marketplace, &db, &format!("http://127.0.0.1:{admin_port}")).unwrap();
    let mut options = ServeOptions {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        admin_listen: format!("127.0.0.1:{admin_port}").parse().unwrap(),
        ..loopback_options()
    };
    adjust(&mut options);
    let server = Server::start_tenants(tenants.without_single(), &db, options, Some(setup)).unwrap();
    TenantHost { ghl, dialpad, server, store, db }
}
