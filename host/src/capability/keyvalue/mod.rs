//! The host's own `wasi:keyvalue/store`: one store shared by every instance, so caches and
//! idempotency records outlive the instance that wrote them; with [`KeyValueStore::open`], in
//! an SQLite file, so they also outlive the process (a restarted host knows what it synced).
//!
//! `wasmtime-wasi-keyvalue` 48 cannot serve here: it hands each `open` a copy of preset data,
//! so writes vanish with the bucket (../shared/design.md §9).
//!
//! Only the bucket identifier `""` exists, as on stock wasmtime, so the plugin stays portable.

pub mod bucket;
mod host;
mod store;

pub use host::{add_to_linker, KeyValueHost};
pub use store::KeyValueStore;
