//! Builds the plugin component (`plugin/`) for `wasm32-wasip2`, stamped with its versions and
//! optimized for size by binaryen, for the binary to embed: `dialpad-ghl` runs anywhere without a separate `.wasm`.
//!
//! And marks the tests of `cli/tests` that need PostgreSQL as ignored, with the reason, when it
//! is not installed (`postgres_missing`, as `tests/build.rs` does; `REQUIRE_POSTGRES=1` in CI
//! makes a missing PostgreSQL fail them instead).

fn main() {
    let built = plugin_build::build(&["dialpad-ghl-plugin"]);
    let plugin = plugin_build::stamp_plugin(built.path("dialpad-ghl-plugin"));
    println!("cargo:rustc-env=EMBEDDED_PLUGIN_WASM={}", plugin.optimized.display());
    // For `dist` to say what binaryen took off.
    let unoptimized = std::fs::metadata(&plugin.unoptimized).expect("the unoptimized plugin").len();
    println!("cargo:rustc-env=EMBEDDED_PLUGIN_UNOPTIMIZED_SIZE={unoptimized}");
    postgres();
}

include!("../tests/postgres/cfg.rs");
