//! The reference host of the Dialpad ⇄ HighLevel sync plugin: the wasmtime engine, outbound
//! policy, key-value store, settings, the mock Contacts API and the CLI's building blocks.
//! The host never interprets Dialpad or HighLevel payloads; the plugin does.

pub mod bindings {
    //! Host-side bindings of the plugin's world (`wit/sync.wit`, world `plugin-core`).
    //! `wasi:config` is served by `wasmtime-wasi-config`; `wasi:keyvalue` by [`crate::keyvalue`].
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin-core",
        imports: { default: trappable },
        additional_derives: [PartialEq],
        with: { "wasi:keyvalue/store.bucket": crate::keyvalue::BucketHandle },
    });
}

pub mod dead_letters;
pub mod engine;
pub mod keyvalue;
pub mod mock;
pub mod oauth;
pub mod outbound;
pub mod report;
pub mod settings;
pub mod stamp;
pub mod version;

/// Path of the plugin component that `build.rs` built from `plugin/`.
pub const PLUGIN_WASM: &str = env!("PLUGIN_WASM");

/// Path of the deliberately hostile component (`tests/hostile-plugin/`) the sandbox tests load.
pub const HOSTILE_PLUGIN_WASM: &str = env!("HOSTILE_PLUGIN_WASM");

/// A fresh, empty directory for one test or tool run: under the system's temporary directory,
/// named after `name` and this process, emptied first.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}
