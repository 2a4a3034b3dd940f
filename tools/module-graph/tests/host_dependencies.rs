//! `cargo tree -p dialpad-ghl-host` (every kind of dependency, dev included) names no harness
//! crate: the production host is built without mocks, the bench, the stock-host runner or the
//! test guests.

use std::process::Command;

const HARNESS: &[&str] = &["host-test", "artifacts", "e2e-tests", "hostile-plugin"];

#[test]
fn the_production_host_depends_on_no_harness_crate() {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&workspace)
        .args(["tree", "--offline", "-p", "dialpad-ghl-host", "-e", "all", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("running cargo tree");
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: std::collections::BTreeSet<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains("dialpad-ghl-host") && crates.contains("wasmtime"), "cargo tree printed something else:\n{tree}");
    let found: Vec<&&str> = HARNESS.iter().filter(|h| crates.contains(**h)).collect();
    assert!(found.is_empty(), "the production host depends on {found:?}");
    eprintln!("dialpad-ghl-host: {} crates in its tree, none of {HARNESS:?}", crates.len());
}
