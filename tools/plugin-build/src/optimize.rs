//! Binaryen's `wasm-opt -Oz` on the core module inside a component: what `jco opt` does, in
//! the build. A component holds core modules as sections of its own (id 1); the plugin's is by
//! far the biggest (wasm-component-ld adds a shim and a fixup module of a few hundred bytes,
//! which are left alone). That module is optimized and put back in its place; every other
//! section of the component is copied byte for byte, so its imports, exports, types and
//! instantiations are untouched, and so is the `dialpad-ghl:version` stamp.
//!
//! Binaryen itself is behind the `optimize` feature (the build scripts' only); the walk over a
//! component's sections is not.

use std::ops::Range;
use wasmparser::{Chunk, Parser, Payload};
#[cfg(feature = "optimize")]
use wasmparser::{Validator, WasmFeatures};

/// The id of a component's core module section.
pub const COMPONENT_SECTION_MODULE: u8 = 1;

/// A top-level section of a component: where it starts (its id byte) and its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub id: u8,
    /// The whole section, id and size included.
    pub whole: Range<usize>,
    /// Its contents (for a core module section: the module).
    pub contents: Range<usize>,
}

/// The top-level sections of `component`, in order (nested modules and components are not
/// entered).
pub fn sections(component: &[u8]) -> Result<Vec<Section>, String> {
    let mut parser = Parser::new(0);
    let mut pos = 0;
    let mut sections = Vec::new();
    let mut is_component = false;
    loop {
        let (consumed, payload) = match parser.parse(&component[pos..], true).map_err(|e| e.to_string())? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => return Err("the component is cut short".into()),
        };
        let start = pos;
        pos += consumed;
        match &payload {
            Payload::Version { encoding, .. } => is_component = *encoding == wasmparser::Encoding::Component,
            Payload::End(_) => break,
            _ => {}
        }
        let Some((id, contents)) = payload.as_section() else { continue };
        if matches!(payload, Payload::ModuleSection { .. } | Payload::ComponentSection { .. }) {
            // The parser consumed the nested module's header only, and goes on after the
            // module: its bytes are the caller's to step over.
            pos = contents.end;
        }
        if pos != contents.end {
            return Err(format!("section {id} at {start}: its contents end at {}, the parser at {pos}", contents.end));
        }
        sections.push(Section { id, whole: start..contents.end, contents });
    }
    if !is_component {
        return Err("not a component (a core module?)".into());
    }
    Ok(sections)
}

#[cfg(feature = "optimize")]
/// What [`optimize`] did to one core module.
#[derive(Clone, Debug)]
pub struct Optimized {
    /// The optimized component.
    pub component: Vec<u8>,
    /// The core module's size before and after.
    pub module_before: usize,
    pub module_after: usize,
    /// The wasm features the module uses, which binaryen was told about (binaryen's names).
    pub features: Vec<&'static str>,
}

#[cfg(feature = "optimize")]
/// `wasm-opt -Oz` (size, aggressively) on the component's biggest core module; the rest is
/// copied as it is. The result validates as a component and its core module exports the same
/// items (it may import fewer, if binaryen found some unused).
pub fn optimize(component: &[u8]) -> Result<Vec<u8>, String> {
    optimize_with_details(component).map(|o| o.component)
}

#[cfg(feature = "optimize")]
/// [`optimize`], and what it did.
pub fn optimize_with_details(component: &[u8]) -> Result<Optimized, String> {
    let sections = sections(component)?;
    let target = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.id == COMPONENT_SECTION_MODULE)
        .max_by_key(|(_, s)| s.contents.len())
        .map(|(i, _)| i)
        .ok_or("the component holds no core module")?;
    let module = &component[sections[target].contents.clone()];
    let (features, names) = features_used(module)?;
    let optimized = run_binaryen(module, &features)?;
    check_module(module, &optimized)?;
    let replaced = replace_section(component, &sections, target, &optimized);
    Validator::new().validate_all(&replaced).map_err(|e| format!("the optimized component does not validate: {e}"))?;
    Ok(Optimized { component: replaced, module_before: module.len(), module_after: optimized.len(), features: names })
}

/// `component` with the contents of `sections[index]` replaced by `contents` and every other
/// section (and the header) copied byte for byte.
pub fn replace_section(component: &[u8], sections: &[Section], index: usize, contents: &[u8]) -> Vec<u8> {
    let first = sections.first().map_or(component.len(), |s| s.whole.start);
    let mut out = Vec::with_capacity(component.len());
    out.extend_from_slice(&component[..first]);
    for (i, section) in sections.iter().enumerate() {
        if i == index {
            // A section is its id, then its contents' size and the contents.
            out.push(section.id);
            wasm_encoder::Encode::encode(contents, &mut out);
        } else {
            out.extend_from_slice(&component[section.whole.clone()]);
        }
    }
    out
}

#[cfg(feature = "optimize")]
/// The post-MVP features binaryen knows, as wasmparser and binaryen name them.
const FEATURES: &[(WasmFeatures, wasm_opt::Feature, &str)] = {
    use wasm_opt::Feature as B;
    &[
        (WasmFeatures::MUTABLE_GLOBAL, B::MutableGlobals, "mutable-globals"),
        (WasmFeatures::SATURATING_FLOAT_TO_INT, B::TruncSat, "nontrapping-float-to-int"),
        (WasmFeatures::SIGN_EXTENSION, B::SignExt, "sign-ext"),
        (WasmFeatures::REFERENCE_TYPES, B::ReferenceTypes, "reference-types"),
        (WasmFeatures::MULTI_VALUE, B::Multivalue, "multivalue"),
        (WasmFeatures::BULK_MEMORY, B::BulkMemory, "bulk-memory"),
        (WasmFeatures::SIMD, B::Simd, "simd"),
        (WasmFeatures::TAIL_CALL, B::TailCall, "tail-call"),
        (WasmFeatures::EXTENDED_CONST, B::ExtendedConst, "extended-const"),
        (WasmFeatures::MULTI_MEMORY, B::MultiMemory, "multi-memory"),
        (WasmFeatures::THREADS, B::Atomics, "threads"),
        (WasmFeatures::MEMORY64, B::Memory64, "memory64"),
    ]
};

#[cfg(feature = "optimize")]
/// The features `module` uses, found by validation: the module validates with the MVP plus all
/// of [`FEATURES`], and each one it fails without is one it uses. Binaryen is given exactly
/// those: too few and it cannot read the module, more and it may emit instructions the module
/// never had.
fn features_used(module: &[u8]) -> Result<(Vec<wasm_opt::Feature>, Vec<&'static str>), String> {
    let mvp = WasmFeatures::MVP;
    let all = FEATURES.iter().fold(mvp, |acc, (f, _, _)| acc | *f);
    let validates = |features: WasmFeatures| Validator::new_with_features(features).validate_all(module);
    validates(all).map_err(|e| format!("the core module uses a wasm feature the optimizer is not set up for: {e}"))?;
    let used: Vec<_> = FEATURES.iter().filter(|(f, _, _)| validates(all.difference(*f)).is_err()).collect();
    let needed = used.iter().fold(mvp, |acc, (f, _, _)| acc | *f);
    validates(needed).map_err(|e| format!("the core module needs more features than found one by one: {e}"))?;
    Ok((used.iter().map(|(_, b, _)| *b).collect(), used.iter().map(|(_, _, n)| *n).collect()))
}

#[cfg(feature = "optimize")]
/// Binaryen's `-Oz` on `module`, with exactly `features` enabled (it reads and writes files).
fn run_binaryen(module: &[u8], features: &[wasm_opt::Feature]) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("creating a temporary folder: {e}"))?;
    let (input, output) = (dir.path().join("in.wasm"), dir.path().join("out.wasm"));
    std::fs::write(&input, module).map_err(|e| format!("writing {}: {e}", input.display()))?;
    let mut options = wasm_opt::OptimizationOptions::new_optimize_for_size_aggressively();
    options.mvp_features_only();
    for feature in features {
        options.enable_feature(*feature);
    }
    options.run(&input, &output).map_err(|e| format!("wasm-opt: {e}"))?;
    std::fs::read(&output).map_err(|e| format!("reading {}: {e}", output.display()))
}

#[cfg(feature = "optimize")]
/// The optimized module validates on its own (with wasmparser's default features, as wasmtime
/// would load it), exports exactly what the original did, and imports nothing new.
fn check_module(original: &[u8], optimized: &[u8]) -> Result<(), String> {
    Validator::new().validate_all(optimized).map_err(|e| format!("the optimized core module does not validate: {e}"))?;
    let (before, after) = (interface(original)?, interface(optimized)?);
    if before.exports != after.exports {
        return Err(format!("binaryen changed the core module's exports: {:?} → {:?}", before.exports, after.exports));
    }
    if let Some(new) = after.imports.iter().find(|i| !before.imports.contains(i)) {
        return Err(format!("binaryen added an import to the core module: {new:?}"));
    }
    Ok(())
}

/// A core module's imports and exports, by name and kind.
#[derive(Debug, Default)]
pub struct Interface {
    pub imports: Vec<(String, String, String)>,
    pub exports: Vec<(String, String)>,
}

/// The imports (module, name, type: a function's signature) and exports (name, kind) of a core
/// module.
pub fn interface(module: &[u8]) -> Result<Interface, String> {
    let mut interface = Interface::default();
    // Function types by index: an optimizer may renumber them, an import's signature stays.
    let mut types = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    types.extend(group.map_err(|e| e.to_string())?.into_types().map(|t| format!("{:?}", t.composite_type.inner)));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    let ty = match import.ty {
                        wasmparser::TypeRef::Func(index) => types.get(index as usize).cloned().ok_or("an import of an unknown type")?,
                        other => format!("{other:?}"),
                    };
                    interface.imports.push((import.module.to_string(), import.name.to_string(), ty));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    interface.exports.push((export.name.to_string(), format!("{:?}", export.kind)));
                }
            }
            _ => {}
        }
    }
    Ok(interface)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small component in the shape wasm-component-ld writes: a core module using
    /// post-MVP features (bulk memory, sign extension, multi-value, non-trapping float to int),
    /// with dead code for binaryen to remove, lifted as a component export.
    fn component() -> Vec<u8> {
        use wasm_encoder::*;
        let mut module = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], [ValType::I32]);
        types.ty().function([ValType::I32], [ValType::I32, ValType::I32]);
        types.ty().function([ValType::F32], [ValType::I32]);
        module.section(&types);
        let mut functions = FunctionSection::new();
        functions.function(0); // run: exported
        functions.function(1); // pair: multi-value, called by run
        functions.function(2); // dead: never called
        module.section(&functions);
        let mut memories = MemorySection::new();
        memories.memory(MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });
        module.section(&memories);
        let mut exports = ExportSection::new();
        exports.export("memory", ExportKind::Memory, 0);
        exports.export("run", ExportKind::Func, 0);
        module.section(&exports);
        let mut code = CodeSection::new();
        let mut run = Function::new([(2, ValType::I32)]);
        run.instructions()
            .local_get(0)
            .call(1)
            .i32_add()
            .i32_extend8_s()
            .local_set(1)
            // memory.fill(0, 0, 16): bulk memory.
            .i32_const(0)
            .i32_const(0)
            .i32_const(16)
            .memory_fill(0)
            // A computation binaryen folds away.
            .i32_const(3)
            .i32_const(4)
            .i32_mul()
            .local_set(2)
            .local_get(1)
            .local_get(2)
            .i32_sub()
            .local_get(2)
            .i32_add()
            .end();
        code.function(&run);
        let mut pair = Function::new([]);
        pair.instructions().local_get(0).local_get(0).i32_const(1).i32_add().end();
        code.function(&pair);
        let mut dead = Function::new([]);
        dead.instructions().local_get(0).i32_trunc_sat_f32_s().end();
        code.function(&dead);
        module.section(&code);
        module.section(&CustomSection { name: "producers-like".into(), data: b"kept as is".as_slice().into() });

        let mut component = Component::new();
        component.section(&CustomSection { name: "before".into(), data: b"first".as_slice().into() });
        component.section(&ModuleSection(&module));
        let mut instances = InstanceSection::new();
        instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
        component.section(&instances);
        let mut aliases = ComponentAliasSection::new();
        aliases.alias(Alias::CoreInstanceExport { instance: 0, kind: ExportKind::Func, name: "run" });
        aliases.alias(Alias::CoreInstanceExport { instance: 0, kind: ExportKind::Memory, name: "memory" });
        component.section(&aliases);
        let mut types = ComponentTypeSection::new();
        types.function().params([("x", PrimitiveValType::S32)]).result(Some(PrimitiveValType::S32.into()));
        component.section(&types);
        let mut canon = CanonicalFunctionSection::new();
        canon.lift(0, 0, [CanonicalOption::Memory(0)]);
        component.section(&canon);
        let mut exports = ComponentExportSection::new();
        exports.export("run", ComponentExportKind::Func, 0, None);
        component.section(&exports);
        let mut stamped = component.finish();
        crate::stamp::append(&mut stamped, "1.2.3", "0.6.0");
        stamped
    }

    #[test]
    fn sections_cover_the_component() {
        let component = component();
        let sections = sections(&component).unwrap();
        assert_eq!(sections.first().unwrap().whole.start, 8);
        assert_eq!(sections.last().unwrap().whole.end, component.len());
        assert!(sections.windows(2).all(|w| w[0].whole.end == w[1].whole.start));
        assert_eq!(sections.iter().filter(|s| s.id == COMPONENT_SECTION_MODULE).count(), 1);
        // Replacing a section by its own contents gives the component back, byte for byte.
        for (i, section) in sections.iter().enumerate() {
            assert_eq!(replace_section(&component, &sections, i, &component[section.contents.clone()]), component);
        }
        assert!(super::sections(&component[sections[1].contents.clone()]).is_err(), "a core module is no component");
    }

    #[test]
    #[cfg(feature = "optimize")]
    fn optimizes_the_module_and_copies_the_rest() {
        let component = component();
        let details = optimize_with_details(&component).unwrap();
        let optimized = details.component;
        assert!(optimized.len() < component.len(), "{} → {}", component.len(), optimized.len());
        assert!(details.module_after < details.module_before);
        let mut features = details.features.clone();
        features.sort();
        // The dead function's `i32.trunc_sat_f32_s` counts: binaryen must read it before removing it.
        assert_eq!(features, ["bulk-memory", "multivalue", "nontrapping-float-to-int", "sign-ext"]);
        Validator::new().validate_all(&optimized).unwrap();

        let (before, after) = (sections(&component).unwrap(), sections(&optimized).unwrap());
        assert_eq!(before.len(), after.len());
        assert_eq!(component[..8], optimized[..8]);
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.id, a.id);
            if b.id == COMPONENT_SECTION_MODULE {
                let (old, new) = (&component[b.contents.clone()], &optimized[a.contents.clone()]);
                assert_ne!(old, new);
                assert_eq!(interface(old).unwrap().exports, interface(new).unwrap().exports);
                let custom: Vec<_> = Parser::new(0)
                    .parse_all(new)
                    .filter_map(|p| match p.unwrap() {
                        Payload::CustomSection(c) => Some((c.name().to_string(), c.data().to_vec())),
                        _ => None,
                    })
                    .collect();
                assert_eq!(custom, [("producers-like".to_string(), b"kept as is".to_vec())]);
            } else {
                assert_eq!(component[b.whole.clone()], optimized[a.whole.clone()], "section {} changed", b.id);
            }
        }
        // The stamp is still the last section.
        assert!(optimized.ends_with(br#"{"plugin":"1.2.3","api":"0.6.0"}"#));
    }

    #[test]
    #[cfg(feature = "optimize")]
    fn refuses_what_is_not_a_component() {
        assert!(optimize(b"\0asm\x01\0\0\0").is_err());
        assert!(optimize(b"not wasm").is_err());
        let empty = wasm_encoder::Component::new().finish();
        assert_eq!(optimize(&empty).unwrap_err(), "the component holds no core module");
    }
}
