//! Builds guest components for `wasm32-wasip2` from a build script, the way wasmtime's
//! `test-programs` artifacts crate builds its guests: a nested cargo with its own target
//! directory (the outer cargo holds the lock on its own), and the plugin stamped with its
//! versions. Used by the `dialpad-ghl` binary (which embeds the plugin) and by the test-only
//! `artifacts` crate (the plugin and the hostile test guest); both build into the same folder,
//! so the second build finds everything fresh.

pub mod optimize;
pub mod stamp;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one build produced: each package's component, by package name.
pub struct Built {
    pub components: Vec<(String, PathBuf)>,
}

impl Built {
    pub fn path(&self, package: &str) -> &Path {
        &self.components.iter().find(|(p, _)| p == package).unwrap_or_else(|| panic!("{package} was not built")).1
    }
}

/// The workspace folder, from a member's build script.
pub fn workspace() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut dir = manifest_dir.as_path();
    while !dir.join("wit/sync.wit").exists() {
        dir = dir.parent().expect("a workspace folder holding wit/sync.wit above the crate");
    }
    dir.to_path_buf()
}

/// Builds `packages` (workspace members) for `wasm32-wasip2` with the `wasm-release` profile,
/// from a build script, and tells cargo to run it again when their sources change.
pub fn build(packages: &[&str]) -> Built {
    let workspace = workspace();
    for watched in [
        "plugin/src",
        "plugin/Cargo.toml",
        "plugin/config.schema.json",
        "plugin/platform-event.schema.json",
        "tests/hostile-plugin",
        "wit",
        "contacts-api/src",
        "contacts-api/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out: the guests' target goes beside it.
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_root = out_dir.ancestors().nth(4).map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
    let guest_target = target_root.join("plugin-wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace).args(["build", "--target", "wasm32-wasip2", "--profile", "wasm-release"]).env("CARGO_TARGET_DIR", &guest_target);
    for package in packages {
        cmd.args(["--package", package]);
    }
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_PROFILE_RELEASE_DEBUG", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the guests");
    if !status.success() {
        panic!("building the guests for wasm32-wasip2 failed (see above). If the target is missing, run: rustup target add wasm32-wasip2");
    }
    let components = packages
        .iter()
        .map(|package| {
            let wasm = guest_target.join("wasm32-wasip2/wasm-release").join(format!("{}.wasm", package.replace('-', "_")));
            assert!(wasm.exists(), "the guest build produced no {}", wasm.display());
            (package.to_string(), wasm)
        })
        .collect();
    Built { components }
}

/// The stamped plugin, as [`stamp_plugin`] wrote it.
#[cfg(feature = "optimize")]
pub struct Stamped {
    /// `dialpad-ghl-plugin.wasm`: optimized by binaryen (see [`optimize`]), what the CLI
    /// embeds and `dist` ships.
    pub optimized: PathBuf,
    /// `dialpad-ghl-plugin.unoptimized.wasm`: the same, as the Rust toolchain built it.
    pub unoptimized: PathBuf,
}

/// The plugin as shipped: `built` with the `dialpad-ghl:version` section appended (its crate
/// version and the WIT package version), then its core module optimized for size by binaryen;
/// both written beside it (the optimized one first).
#[cfg(feature = "optimize")]
pub fn stamp_plugin(built: &Path) -> Stamped {
    let workspace = workspace();
    let wit = std::fs::read_to_string(workspace.join("wit/sync.wit")).expect("reading wit/sync.wit");
    let api = wit_version(&wit);
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).expect("reading Cargo.toml");
    let plugin = workspace_version(&manifest);
    let mut bytes = std::fs::read(built).expect("reading the built component");
    stamp::append(&mut bytes, &plugin, &api);
    let dir = built.parent().unwrap().parent().unwrap().parent().unwrap();
    let stamped = Stamped { optimized: dir.join("dialpad-ghl-plugin.wasm"), unoptimized: dir.join("dialpad-ghl-plugin.unoptimized.wasm") };
    let optimized = optimize::optimize(&bytes).unwrap_or_else(|e| panic!("optimizing {}: {e}", built.display()));
    write_whole(&stamped.optimized, &optimized);
    write_whole(&stamped.unoptimized, &bytes);
    stamped
}

/// Writes `bytes` whole, then renames: the CLI's and the tests' builds may stamp at the same
/// time, and a reader must never see half a file.
#[cfg(feature = "optimize")]
fn write_whole(path: &Path, bytes: &[u8]) {
    let partial = path.with_extension(format!("wasm.{}.partial", std::process::id()));
    std::fs::write(&partial, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", partial.display()));
    std::fs::rename(&partial, path).unwrap_or_else(|e| panic!("renaming to {}: {e}", path.display()));
}

/// The package version in a WIT file (`package dialpad-ghl:sync@0.6.0;` → `0.6.0`).
pub fn wit_version(wit: &str) -> String {
    wit.lines()
        .find_map(|l| l.trim().strip_prefix("package dialpad-ghl:sync@"))
        .and_then(|v| v.strip_suffix(';'))
        .expect("wit/sync.wit names its package version")
        .to_string()
}

/// `[workspace.package] version` of the workspace manifest: the plugin's crate version.
#[cfg(feature = "optimize")]
fn workspace_version(manifest: &str) -> String {
    let section = manifest.split("[workspace.package]").nth(1).expect("[workspace.package] in Cargo.toml");
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix("version").map(|v| v.trim().trim_start_matches('=').trim().trim_matches('"').to_string()))
        .expect("a workspace version")
}
