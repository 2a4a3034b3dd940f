//! Test-only: the paths of the guest components `build.rs` built from this source.

/// The plugin (`plugin/`), stamped with its versions, as `dist` ships it.
pub const PLUGIN_WASM: &str = env!("PLUGIN_WASM");

/// A deliberately hostile component (`tests/hostile-plugin/`) the sandbox tests load.
pub const HOSTILE_PLUGIN_WASM: &str = env!("HOSTILE_PLUGIN_WASM");
