//! Builds the plugin component (`plugin/`) for `wasm32-wasip2`, stamped with its versions,
//! for the binary to embed: `dialpad-ghl` runs anywhere without a separate `.wasm`.
//!
//! And marks the tests of `cli/tests` that need PostgreSQL as ignored, with the reason, when it
//! is not installed (`postgres_missing`, as `tests/build.rs` does; `REQUIRE_POSTGRES=1` in CI
//! makes a missing PostgreSQL fail them instead).

fn main() {
    let built = plugin_build::build(&["dialpad-ghl-plugin"]);
    let plugin = plugin_build::stamp_plugin(built.path("dialpad-ghl-plugin"));
    println!("cargo:rustc-env=EMBEDDED_PLUGIN_WASM={}", plugin.display());
    postgres();
}

/// `postgres_missing` unless `initdb` is on `PATH` or under `/usr/lib/postgresql/*/bin` (where
/// `host_test::postgres` looks) or `REQUIRE_POSTGRES=1`. (`tests/build.rs` has the same.)
fn postgres() {
    println!("cargo::rustc-check-cfg=cfg(postgres_missing)");
    println!("cargo::rerun-if-env-changed=REQUIRE_POSTGRES");
    let on_path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let debian: Vec<_> = std::fs::read_dir("/usr/lib/postgresql").map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect()).unwrap_or_default();
    let found = on_path.into_iter().chain(debian).map(|dir| dir.join("initdb")).find(|initdb| initdb.is_file());
    // Where it was found, or (not found) a path that does not exist, which makes cargo run this
    // again each build, so installing PostgreSQL later is noticed.
    let watched = found.clone().unwrap_or_else(|| "/usr/lib/postgresql/15/bin/initdb".into());
    println!("cargo::rerun-if-changed={}", watched.display());
    let required = std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v.trim() == "1");
    if found.is_none() && !required {
        println!("cargo::rustc-cfg=postgres_missing");
    }
}
