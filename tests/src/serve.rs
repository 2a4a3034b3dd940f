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
use std::path::PathBuf;
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
    in_process_on(Store::Sqlite, mock, adjust, options, name)
}

/// [`in_process_with`], its state on `store` (a fresh SQLite file or PostgreSQL database).
pub fn in_process_on(store: Store, mock: &MockServer, adjust: impl FnOnce(&mut Settings), options: ServeOptions, name: &str) -> (Server, Runtime) {
    let mut settings = crate::quick_settings(&mock.base_url(), LOCATION, TOKEN);
    adjust(&mut settings);
    let db = state_location(store, name);
    let runtime = Runtime::new(plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    let counter = runtime.with_own_log();
    (Server::start(runtime, &db, DeadLetters::open(&db).unwrap(), options).unwrap(), counter)
}

/// Where a test keeps the host's state: the two storage backends, one suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A SQLite file in a scratch folder.
    Sqlite,
    /// A fresh database in this process's throwaway PostgreSQL ([`host_test::postgres`]).
    Postgres,
}

/// A fresh, empty place for the state of the test `name`, as every store takes it
/// (`KeyValueStore::open`, `DeadLetters::open`, `Server::start`…): `<scratch>/state.db`, or the
/// URL of a new PostgreSQL database (`postgres://postgres@127.0.0.1:PORT/<name>_<n>`).
pub fn state_location(store: Store, name: &str) -> PathBuf {
    match store {
        Store::Sqlite => host_test::support::scratch_dir(name).join("state.db"),
        Store::Postgres => PathBuf::from(host_test::postgres::database(name)),
    }
}

/// Two tests of one body taking a [`Store`]: `$sqlite` runs it on SQLite, `$postgres` on
/// PostgreSQL, ignored with the reason when PostgreSQL is not installed (the calling crate's
/// build script sets `postgres_missing`; see `tests/build.rs`).
///
/// ```ignore
/// on_both_stores!(restart_writes_nothing_twice => restart_writes_nothing_twice_on_sqlite, restart_writes_nothing_twice_on_postgres);
/// ```
#[macro_export]
macro_rules! on_both_stores {
    ($(#[$meta:meta])* $body:expr => $sqlite:ident, $postgres:ident) => {
        $(#[$meta])*
        #[test]
        fn $sqlite() {
            ($body)($crate::serve::Store::Sqlite)
        }

        $(#[$meta])*
        #[test]
        #[cfg_attr(postgres_missing, ignore = "PostgreSQL is not installed: apt-get install postgresql")]
        fn $postgres() {
            ($body)($crate::serve::Store::Postgres)
        }
    };
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
        lease_ttl: Duration::from_secs(30),
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
