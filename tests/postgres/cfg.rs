// Included by `tests/build.rs` and `cli/build.rs` (build scripts share no crate here): the
// `postgres_missing` cfg of the tests that need PostgreSQL.

/// `postgres_missing` unless `initdb` is on `PATH` or under `/usr/lib/postgresql/*/bin` (where
/// `host_test::postgres` looks) or `REQUIRE_POSTGRES=1`.
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
