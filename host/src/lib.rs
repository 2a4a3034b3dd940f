//! The production host of the Dialpad ⇄ HighLevel sync plugin: the wasmtime engine, the host
//! capabilities the plugin is given, the webhook receiver (`serve`), backfill, OAuth, storage
//! and settings. No test double is in this crate or in its dependencies: the mocks, the stock
//! host runner and the bench are in `host-test`.
//!
//! The host never interprets Dialpad or HighLevel payloads; the plugin does.

pub mod backfill;
pub mod bindings;
pub mod capability;
pub mod connect;
pub mod engine;
pub mod inbound;
pub mod marketplace;
pub mod oauth;
pub mod report;
pub mod serve;
pub mod settings;
pub mod storage;
pub mod tenants;
pub mod version;
