//! What the `serve` tests share: the webhook secret and token they use, signed bodies, the
//! mock, and a server running in this process.

use crate::plugin;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::settings::Settings;
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use host_test::ghl_mock::{MockOptions, MockServer};
use host_test::support::loopback_request;
use serde_json::Value;
use std::time::Duration;

pub const TOKEN: &str = "serve-test-token-5d2e";
pub const SECRET: &str = "serve-test-webhook-secret-81f0";
pub const LOCATION: &str = "loc-serve";

/// A fixture as JSON, to edit.
pub fn json_fixture(name: &str) -> Value {
    serde_json::from_slice(&crate::fixture(name)).unwrap()
}

/// A compact HS256 JWT whose claims are `claims`, as Dialpad signs with a webhook secret.
pub fn sign(claims: &Value, secret: &str) -> Vec<u8> {
    host_test::jwt::sign(claims.to_string().as_bytes(), secret).into_bytes()
}

/// The mock HighLevel API, requiring [`TOKEN`].
pub fn mock() -> MockServer {
    MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }).unwrap()
}

/// An in-process `serve` against `mock` on loopback ports, with its state in a scratch folder.
pub fn in_process(mock: &MockServer, secret: Option<&str>, options: ServeOptions, name: &str) -> Server {
    in_process_counted(mock, secret, options, name).0
}

/// [`in_process`], and a runtime that shares the server's count of plugin calls.
pub fn in_process_counted(mock: &MockServer, secret: Option<&str>, options: ServeOptions, name: &str) -> (Server, Runtime) {
    in_process_with(
        mock,
        |settings| {
            if let Some(secret) = secret {
                settings.set("webhook_secret", secret);
            }
        },
        options,
        name,
    )
}

/// [`in_process_counted`] with the settings of [`crate::quick_settings`] adjusted.
pub fn in_process_with(mock: &MockServer, adjust: impl FnOnce(&mut Settings), options: ServeOptions, name: &str) -> (Server, Runtime) {
    let mut settings = crate::quick_settings(&mock.base_url(), LOCATION, TOKEN);
    adjust(&mut settings);
    let db = host_test::support::scratch_dir(name).join("state.db");
    let runtime = Runtime::new(plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    let counter = runtime.with_own_log();
    (Server::start(runtime, &db, DeadLetters::open(&db).unwrap(), options).unwrap(), counter)
}

pub fn loopback_options() -> ServeOptions {
    ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        max_attempts: 3,
        retry_base: Duration::from_millis(20),
        reconcile: None,
        access: Default::default(),
        limits: Default::default(),
        card: Default::default(),
        alerts: Default::default(),
    }
}

pub fn get_json(url: &str) -> Value {
    let (status, text) = loopback_request("GET", url, b"").unwrap();
    assert_eq!(status, 200, "{url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// `(state, key)` of each alert a loopback receiver standing for a Slack or Teams incoming
/// webhook got, in order (`{"text", "incident": {"state", "key", …}}`).
pub fn alerts_told(receiver: &host_test::support::Catcher) -> Vec<(String, String)> {
    receiver
        .caught()
        .iter()
        .map(|c| {
            let body: Value = serde_json::from_slice(&c.body).unwrap();
            (body["incident"]["state"].as_str().unwrap().to_string(), body["incident"]["key"].as_str().unwrap().to_string())
        })
        .collect()
}
