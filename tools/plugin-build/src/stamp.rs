//! The `dialpad-ghl:version` custom section: what a component says it is before it is compiled.
//! Written here when the plugin is built; read by the host (`dialpad_ghl_host::version`).

/// The custom section's name.
pub const SECTION: &str = "dialpad-ghl:version";

/// Appends `{"plugin":"…","api":"…"}` as the section: a component may end with custom sections.
pub fn append(component: &mut Vec<u8>, plugin: &str, api: &str) {
    let data = format!(r#"{{"plugin":"{plugin}","api":"{api}"}}"#);
    let section = wasm_encoder::CustomSection { name: SECTION.into(), data: data.as_bytes().into() };
    component.push(wasm_encoder::Section::id(&section));
    wasm_encoder::Encode::encode(&section, component);
}
