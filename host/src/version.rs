//! What a plugin component is, before it is compiled: the versions it carries in its
//! `dialpad-ghl:version` custom section (stamped when the plugin is built: `plugin-build`), or, for a component built
//! without it, the version in the names of the interfaces it exports. The host refuses a
//! plugin whose WIT API it does not speak, with a message that says so, instead of wasmtime's
//! linker error about a missing export.

use wasmparser::{Parser, Payload};

pub use plugin_build::stamp::SECTION;

/// The WIT API this host speaks: the package version of the `wit/sync.wit` it was built with.
pub const HOST_API_VERSION: &str = env!("HOST_API_VERSION");

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginVersions {
    /// The plugin's crate version; `None` when only the exports told the API version.
    pub plugin: Option<String>,
    pub api: String,
}

/// The versions a component declares, if it declares any.
pub fn of(component: &[u8]) -> Option<PluginVersions> {
    let mut from_exports = None;
    for payload in Parser::new(0).parse_all(component) {
        match payload.ok()? {
            Payload::CustomSection(section) if section.name() == SECTION => {
                let json: serde_json::Value = serde_json::from_slice(section.data()).ok()?;
                return Some(PluginVersions { plugin: json["plugin"].as_str().map(str::to_string), api: json["api"].as_str()?.to_string() });
            }
            Payload::ComponentExportSection(exports) => {
                for export in exports.into_iter().flatten() {
                    if let Some(version) = export.name.name.strip_prefix("dialpad-ghl:sync/").and_then(|n| n.split_once('@')).map(|(_, v)| v) {
                        from_exports.get_or_insert_with(|| version.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    from_exports.map(|api| PluginVersions { plugin: None, api })
}

/// Semantic versioning of the API: the same major; before 1.0, the same minor.
pub fn compatible(host: &str, plugin: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split(['.', '-', '+']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(host), parts(plugin)) {
        (Some((0, host_minor)), Some((0, plugin_minor))) => host_minor == plugin_minor,
        (Some((host_major, _)), Some((plugin_major, _))) => host_major == plugin_major,
        _ => false,
    }
}

/// Refuses a component whose API this host does not speak, or that declares none.
pub fn check(component: &[u8]) -> anyhow::Result<PluginVersions> {
    let Some(versions) = of(component) else {
        anyhow::bail!("this is not a dialpad-ghl:sync plugin: it has no `{SECTION}` section and exports no dialpad-ghl:sync interface");
    };
    if !compatible(HOST_API_VERSION, &versions.api) {
        anyhow::bail!(
            "the plugin implements dialpad-ghl:sync@{}, and this host speaks @{HOST_API_VERSION}: their APIs are incompatible \
             (a different major version, or minor before 1.0). Use a plugin built against wit/sync.wit {HOST_API_VERSION}, or a host of its version.",
            versions.api
        );
    }
    Ok(versions)
}

/// The component with `versions` stamped in a `dialpad-ghl:version` section at its end (what
/// `build.rs` does), replacing a stamp it already has there.
pub fn stamp(component: &[u8], plugin: &str, api: &str) -> Vec<u8> {
    let mut bytes = unstamped(component).to_vec();
    plugin_build::stamp::append(&mut bytes, plugin, api);
    bytes
}

/// The component without the stamp at its end, if it has one there.
fn unstamped(component: &[u8]) -> &[u8] {
    for payload in Parser::new(0).parse_all(component) {
        if let Ok(Payload::CustomSection(section)) = payload {
            if section.name() == SECTION && section.range().end == component.len() {
                let mut encoded = vec![0u8];
                let reencoded = wasm_encoder::CustomSection { name: SECTION.into(), data: section.data().into() };
                wasm_encoder::Encode::encode(&reencoded, &mut encoded);
                return &component[..component.len() - encoded.len()];
            }
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_compatible_by_major_or_before_1_0_by_minor() {
        assert!(compatible("0.3.0", "0.3.4"));
        assert!(!compatible("0.3.0", "0.2.0"));
        assert!(!compatible("0.3.0", "1.0.0"));
        assert!(compatible("1.2.0", "1.0.7"));
        assert!(!compatible("1.2.0", "2.0.0"));
        assert!(!compatible("0.3.0", "three"));
    }
}
