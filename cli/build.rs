//! Builds the plugin component (`plugin/`) for `wasm32-wasip2`, stamped with its versions,
//! for the binary to embed: `dialpad-ghl` runs anywhere without a separate `.wasm`.

fn main() {
    let built = plugin_build::build(&["dialpad-ghl-plugin"]);
    let plugin = plugin_build::stamp_plugin(built.path("dialpad-ghl-plugin"));
    println!("cargo:rustc-env=EMBEDDED_PLUGIN_WASM={}", plugin.display());
}
