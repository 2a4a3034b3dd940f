//! The WIT API version this host speaks, read from `wit/sync.wit` (the file its bindings are
//! generated from), as `HOST_API_VERSION`.

fn main() {
    let wit = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../wit/sync.wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let text = std::fs::read_to_string(&wit).expect("reading wit/sync.wit");
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("package dialpad-ghl:sync@"))
        .and_then(|v| v.strip_suffix(';'))
        .expect("wit/sync.wit names its package version");
    println!("cargo:rustc-env=HOST_API_VERSION={version}");
}
