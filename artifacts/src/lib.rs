//! Test-only: the paths of the guest components `build.rs` built from this source.

/// The plugin (`plugin/`), stamped with its versions and optimized by binaryen, as `dist` ships it.
pub const PLUGIN_WASM: &str = env!("PLUGIN_WASM");

/// The same plugin before binaryen's optimization, as the Rust toolchain built it (and stamped).
pub const PLUGIN_UNOPTIMIZED_WASM: &str = env!("PLUGIN_UNOPTIMIZED_WASM");

/// A deliberately hostile component (`tests/hostile-plugin/`) the sandbox tests load.
pub const HOSTILE_PLUGIN_WASM: &str = env!("HOSTILE_PLUGIN_WASM");
