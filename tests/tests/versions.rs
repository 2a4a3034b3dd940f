//! The version stamp of the built plugin, read as the host reads it before compiling.

use dialpad_ghl_host::version::{check, of, stamp, PluginVersions, HOST_API_VERSION};

#[test]
fn the_built_plugin_carries_its_versions_and_a_restamp_replaces_them() {
    let built = std::fs::read(artifacts::PLUGIN_WASM).unwrap();
    let versions = of(&built).unwrap();
    assert_eq!(versions, PluginVersions { plugin: Some(env!("CARGO_PKG_VERSION").into()), api: HOST_API_VERSION.into() });
    let old = stamp(&built, "0.0.9", "0.2.0");
    assert_eq!(of(&old).unwrap().api, "0.2.0");
    assert_eq!(stamp(&old, env!("CARGO_PKG_VERSION"), HOST_API_VERSION), built, "restamping replaces the section");
    let err = check(&old).unwrap_err().to_string();
    assert!(err.contains("dialpad-ghl:sync@0.2.0") && err.contains(HOST_API_VERSION), "{err}");
    // Without the section, the exports' names tell: the hostile plugin has none.
    let hostile = std::fs::read(artifacts::HOSTILE_PLUGIN_WASM).unwrap();
    assert_eq!(of(&hostile).unwrap(), PluginVersions { plugin: None, api: HOST_API_VERSION.into() });
    assert!(check(b"\0asm\x0d\0\x01\0").is_err());
}
