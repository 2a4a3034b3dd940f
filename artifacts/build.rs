//! Builds the guest components the tests load and hands their paths over as constants (as
//! wasmtime's `test-programs` artifacts crate does): `cargo test` alone always loads
//! components built from this source. Each guest is built on its own, as the CLI builds the
//! plugin, so that cargo resolves the same features for it and never builds it twice.

fn main() {
    let plugin = plugin_build::build(&["dialpad-ghl-plugin"]);
    let plugin = plugin_build::stamp_plugin(plugin.path("dialpad-ghl-plugin"));
    let hostile = plugin_build::build(&["hostile-plugin"]);
    println!("cargo:rustc-env=PLUGIN_WASM={}", plugin.optimized.display());
    println!("cargo:rustc-env=PLUGIN_UNOPTIMIZED_WASM={}", plugin.unoptimized.display());
    println!("cargo:rustc-env=HOSTILE_PLUGIN_WASM={}", hostile.path("hostile-plugin").display());
}
