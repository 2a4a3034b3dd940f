//! Generates the operations table from HighLevel's official Contacts spec
//! (`spec/apps/contacts.json`, a verbatim copy): every operation's id, method, path, scope,
//! success status, summary, query parameters and request-body properties. Nothing about the
//! API is typed in by hand, so the table cannot drift from the spec.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let spec_path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("spec/apps/contacts.json");
    println!("cargo:rerun-if-changed={}", spec_path.display());
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&spec_path).unwrap()).expect("the spec is JSON");
    let schemas = &spec["components"]["schemas"];
    let mut out = String::from("/// All 32 operations of the spec, generated from it by `build.rs`.\npub const OPERATIONS: &[Operation] = &[\n");
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let declared = op["security"][0]["bearer"][0].as_str();
            // The two bulk operations declare no security; they write, so they need write.
            let scope = match declared.unwrap_or("contacts.write") {
                "contacts.readonly" => "ContactsReadonly",
                "contacts.write" => "ContactsWrite",
                other => panic!("{id}: unknown scope {other}"),
            };
            let success: u16 = op["responses"].as_object().unwrap().keys().find(|c| c.starts_with('2')).unwrap().parse().unwrap();
            let mut query = String::new();
            for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query") {
                write!(
                    query,
                    "Param {{ name: {:?}, required: {}, kind: {} }}, ",
                    p["name"].as_str().unwrap(),
                    p["required"].as_bool().unwrap_or(false),
                    kind(&p["schema"]),
                )
                .unwrap();
            }
            let body = match op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() {
                None => "None".to_string(),
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap();
                    let schema = &schemas[name];
                    let required: Vec<&str> = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    let mut props = String::new();
                    for (prop, def) in schema["properties"].as_object().into_iter().flatten() {
                        // A property whose example has another JSON type than it declares
                        // (`dateOfBirth`: object, example "1990-09-25") is sent as the example.
                        let example_kind = match &def["example"] {
                            Value::String(_) => Some("ValueKind::String"),
                            _ => None,
                        };
                        let declared_kind = kind(def);
                        let also = match example_kind {
                            Some(k) if k != declared_kind => format!("Some({k})"),
                            _ => "None".to_string(),
                        };
                        write!(
                            props,
                            "Property {{ name: {prop:?}, kind: {declared_kind}, also: {also}, nullable: {}, required: {} }}, ",
                            def["nullable"].as_bool().unwrap_or(false),
                            required.contains(&prop.as_str()),
                        )
                        .unwrap();
                    }
                    let open = schema["properties"].as_object().is_none_or(|p| p.is_empty());
                    format!(
                        "Some(&Body {{ schema: {name:?}, required: {}, open: {open}, properties: &[{props}] }})",
                        op["requestBody"]["required"].as_bool().unwrap_or(false)
                    )
                }
            };
            writeln!(
                out,
                "    Operation {{ id: {id:?}, method: Method::{}, path: {path:?}, scope: Scope::{scope}, scope_declared_in_spec: {}, success_status: {success}, summary: {:?}, deprecated: {}, query: &[{query}], body: {body} }},",
                capitalized(method),
                declared.is_some(),
                op["summary"].as_str().unwrap_or(""),
                op["deprecated"].as_bool().unwrap_or(false),
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("operations.rs");
    std::fs::write(dest, out).unwrap();
}

fn kind(schema: &Value) -> &'static str {
    match schema["type"].as_str() {
        Some("string") => "ValueKind::String",
        Some("number") | Some("integer") => "ValueKind::Number",
        Some("boolean") => "ValueKind::Boolean",
        Some("array") => "ValueKind::Array",
        Some("object") => "ValueKind::Object",
        // `$ref` / `allOf` to an object schema.
        _ => "ValueKind::Object",
    }
}

fn capitalized(method: &str) -> String {
    let mut c = method.chars();
    c.next().unwrap().to_uppercase().chain(c.flat_map(char::to_lowercase)).collect()
}
