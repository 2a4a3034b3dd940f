//! Dialpad ⇄ HighLevel Contacts sync, as a WASI component.
//!
//! The flow of one event (see `../shared/design.md` §4), run by [`pipeline`]:
//!
//! ```text
//! inbound event ─► inbound (UTF-8, HS256 JWT, classify, normalize) ─► state (known) ─► plan (pure)
//!               ─► execute (HTTP through the host) ─► state (records) ─► report (typed)
//! ```
//!
//! Modules by stage: [`inbound`] parsing, [`config`] and its rules, [`plan`] (the vocabulary
//! and the planners), [`state`] (every key-value key and record format), [`execute`], and
//! [`report`]; [`pipeline`] runs one event through them, [`views`], [`actions`] and
//! [`backfill`] are the other entry points. No module imports one that imports it back.
//!
//! Everything but [`component`] is plain Rust with no wasm in it, so the parsers, the planner
//! and the executor (over a fake transport) are unit-tested natively with `cargo test`.

pub mod actions;
pub mod backfill;
pub mod click_to_call;
pub mod clock;
pub mod config;
pub mod error;
pub mod execute;
pub mod inbound;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod state;
pub mod triggers;
pub mod views;

#[cfg(test)]
mod feature_tests;

#[cfg(target_arch = "wasm32")]
mod component;

/// The plugin's own version, stamped from its crate version.
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The version of the WIT package (`wit/sync.wit`) this plugin implements.
pub const API_VERSION: &str = "0.9.0";
