//! The harness of the Dialpad ⇄ HighLevel sync: what only tests, the demo and the benchmarks
//! need. The production host (`dialpad-ghl-host`) depends on nothing here.
//!
//! - [`ghl_mock`]: HighLevel's Contacts API on loopback, faithful to the official spec, with
//!   fault injection, rate limiting and an OAuth token endpoint;
//! - [`dialpad_mock`]: Dialpad's call listing (backfill), webhooks, event subscriptions and
//!   OAuth with PKCE (connecting);
//! - [`stock_host`]: the plugin served as `wasmtime serve` serves it, in-process;
//! - [`bench`]: the benchmarks ([`bench_scale`]: their rows of tenants, event size, notes and
//!   time to HighLevel);
//! - [`demo`]: the bundled events and configuration of the demo;
//! - [`jwt`]: HS256 JWTs, as Dialpad and the automation platform sign their events;
//! - [`app_webhook`]: HighLevel's app webhooks (INSTALL, UNINSTALL), signed with a test key;
//! - [`contact_webhook`]: HighLevel's contact webhooks (two-way contact sync's input);
//! - [`outbox`]: the webhooks the mocks send out (contact changes), and their deliveries;
//! - [`postgres`]: a throwaway PostgreSQL for the tests of the PostgreSQL backend;
//! - [`support`]: scratch folders, loopback requests, figures printed past the test capture.

pub mod app_webhook;
pub mod bench;
mod bench_scale;
pub mod console_bench;
pub mod contact_webhook;
pub mod demo;
pub mod dialpad_mock;
pub mod ghl_mock;
pub mod jwt;
mod measure;
pub mod outbox;
pub mod postgres;
pub mod stock_host;
pub mod support;
