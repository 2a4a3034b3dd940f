//! The host capabilities the plugin is given, each a unit that owns its state and its linker
//! wiring (as Spin's factors are): the key-value store, the outbound HTTP policy (allowlist,
//! credentials, rate limiter, exchange log) and the configuration. The engine composes them.

pub mod config;
pub mod keyvalue;
pub mod outbound;
pub mod secret;
