//! A host holding OAuth location tokens (no static token) against the mock's token endpoint.

use crate::{plugin, LOCATION};
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::oauth::{OAuthSettings, OAuthTokens};
use dialpad_ghl_host::settings::Settings;
use host_test::ghl_mock::{MockOptions, MockServer, OAuthOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CLIENT_ID: &str = "app-client-id";
pub const CLIENT_SECRET: &str = "app-client-secret-5c1d";
pub const FIRST_REFRESH_TOKEN: &str = "refresh-token-0-a8e2";

pub struct OAuthHarness {
    pub mock: MockServer,
    pub tokens: Arc<OAuthTokens>,
    /// Every refresh token the host stored, in order.
    pub stored: Arc<Mutex<Vec<String>>>,
    pub runtime: Runtime,
}

pub fn harness(access_token_ttl: Duration, refresh_margin: Duration) -> OAuthHarness {
    let mock = MockServer::start(MockOptions {
        oauth: Some(OAuthOptions {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            refresh_token: FIRST_REFRESH_TOKEN.into(),
            access_token_ttl,
            location_id: LOCATION.into(),
        }),
        ..MockOptions::default()
    })
    .expect("starting the mock");
    let stored = Arc::new(Mutex::new(Vec::new()));
    let keep = stored.clone();
    let tokens = Arc::new(OAuthTokens::new(
        OAuthSettings {
            token_url: format!("{}/oauth/token", mock.base_url()),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            refresh_token: Secret::new(FIRST_REFRESH_TOKEN),
            refresh_margin,
            timeout: Duration::from_secs(5),
        },
        move |token| {
            keep.lock().unwrap().push(token.expose().to_string());
            Ok(())
        },
    ));
    let mut settings = Settings::default();
    settings.set("api_base", mock.base_url());
    settings.set("location_id", LOCATION);
    settings.oauth = Some(tokens.clone());
    let runtime = Runtime::new(plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::new()).unwrap();
    OAuthHarness { mock, tokens, stored, runtime }
}
