//! Dialpad ⇄ HighLevel Contacts sync, as a WASI component.
//!
//! The flow of one event (see `../shared/design.md` §4):
//!
//! ```text
//! raw body ─► signature (HS256 JWT) ─► dialpad (classify, normalize) ─► plan (pure)
//!          ─► execute (HTTP through the host) ─► report (typed)
//! ```
//!
//! Everything but [`component`] is plain Rust with no wasm in it, so the parsers, the planner
//! and the executor (over a fake transport) are unit-tested natively with `cargo test`.

pub mod actions;
pub mod activity;
pub mod backfill;
pub mod config;
pub mod contact_sync;
pub mod dialpad;
pub mod error;
pub mod execute;
pub mod phone;
pub mod plan;
pub mod platform;
pub mod rules;
pub mod signature;
pub mod sync;
pub mod template;
pub mod time;
pub mod views;
pub mod zone;

#[cfg(target_arch = "wasm32")]
mod component;

/// The plugin's own version, stamped from its crate version.
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The version of the WIT package (`wit/sync.wit`) this plugin implements.
pub const API_VERSION: &str = "0.5.0";
