//! Builds the guest components for `wasm32-wasip2` and hands their paths to the host as
//! constants, the way wasmtime's `test-programs` artifacts crate builds its guests: `cargo
//! build` / `cargo test` alone always load components built from this source.
//!
//! - `PLUGIN_WASM`: the plugin (`plugin/`);
//! - `HOSTILE_PLUGIN_WASM`: a deliberately hostile component for the sandbox tests
//!   (`tests/hostile-plugin/`, a few seconds to build).
//!
//! The nested cargo gets its own target directory: the outer cargo holds the lock on its own.

#[path = "src/stamp.rs"]
mod stamp;

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for watched in ["plugin/src", "plugin/Cargo.toml", "tests/hostile-plugin", "wit", "contacts-api/src", "contacts-api/Cargo.toml", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    // OUT_DIR is <target>/<profile>/build/host-test-<hash>/out: put the guest's target next to it.
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_root = out_dir.ancestors().nth(4).map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
    let guest_target = target_root.join("plugin-wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--package", "dialpad-ghl-plugin", "--package", "hostile-plugin", "--target", "wasm32-wasip2", "--profile", "wasm-release"])
        .env("CARGO_TARGET_DIR", &guest_target);
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_PROFILE_RELEASE_DEBUG", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the plugin");
    if !status.success() {
        panic!(
            "building the guests for wasm32-wasip2 failed (see above). If the target is missing, run: rustup target add wasm32-wasip2"
        );
    }
    for (constant, file) in [("PLUGIN_WASM", "dialpad_ghl_plugin.wasm"), ("HOSTILE_PLUGIN_WASM", "hostile_plugin.wasm")] {
        let wasm = guest_target.join("wasm32-wasip2/wasm-release").join(file);
        assert!(wasm.exists(), "the guest build produced no {}", wasm.display());
        let wasm = if constant == "PLUGIN_WASM" { stamp_version(&wasm, &workspace, &guest_target) } else { wasm };
        println!("cargo:rustc-env={constant}={}", wasm.display());
    }
}

/// The component as shipped: the build with a custom section `dialpad-ghl:version` appended
/// (`stamp.rs`), so a host can tell what it is before compiling it (the versions `meta` reports).
fn stamp_version(built: &std::path::Path, workspace: &std::path::Path, guest_target: &std::path::Path) -> PathBuf {
    let wit = std::fs::read_to_string(workspace.join("wit/sync.wit")).expect("reading wit/sync.wit");
    let api = wit
        .lines()
        .find_map(|l| l.trim().strip_prefix("package dialpad-ghl:sync@"))
        .and_then(|v| v.strip_suffix(';'))
        .expect("wit/sync.wit names its package version");
    let plugin = env::var("CARGO_PKG_VERSION").unwrap();
    let mut bytes = std::fs::read(built).expect("reading the built component");
    stamp::append(&mut bytes, &plugin, api);
    let stamped = guest_target.join("dialpad-ghl-plugin.wasm");
    std::fs::write(&stamped, bytes).expect("writing the stamped component");
    println!("cargo:rustc-env=PLUGIN_VERSION={plugin}");
    println!("cargo:rustc-env=PLUGIN_API_VERSION={api}");
    stamped
}

