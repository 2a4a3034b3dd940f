//! Generates the operation tables from the official specs (verbatim copies under `spec/`):
//! every operation of HighLevel's Contacts (32), Conversations (29) and Users (7) APIs and of
//! Dialpad's API (193), each with its id, API, method, path, scope, success status, summary,
//! parameters and request body. Nothing about an API is typed in by hand, so a table cannot
//! drift from its spec. One generator and one table shape for every API.
//!
//! Parameter and body schemas are written as *shapes* (`src/shape.rs` reads them): a compact
//! text form of the request side of a JSON Schema, with each named schema a body refers to
//! written once per API in a pool and referred to by index. The component carries these few
//! bytes per operation and derives JSON Schemas from them when the catalog is asked for,
//! instead of carrying the specs' JSON.

use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (table constant, `Api` variant, spec file).
const TABLES: &[(&str, &str, &str)] = &[
    ("OPERATIONS", "Contacts", "spec/apps/contacts.json"),
    ("CONVERSATIONS", "Conversations", "spec/apps/conversations.json"),
    ("USERS", "Users", "spec/apps/users.json"),
    ("DIALPAD", "Dialpad", "spec/dialpad/dialpad_api_spec.json"),
];

/// The error schemas HighLevel's specs refer to as `../common/common-schemas.json`.
const COMMON: &str = "spec/common/common-schemas.json";

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let common = read(&dir, COMMON);
    let mut out = String::new();
    let mut scopes: BTreeSet<(String, bool)> = BTreeSet::new();
    for (name, api, file) in TABLES {
        let spec = read(&dir, file);
        let mut gen = Generator { spec: &spec, common: &common, pool: Vec::new(), pooled: HashMap::new() };
        let rows = gen.table(api, &mut scopes);
        writeln!(out, "/// The {} operations of the {api} spec, generated from it by `build.rs`.\npub static {name}: &[Operation] = &[", rows.len()).unwrap();
        for row in &rows {
            out.push_str(row);
        }
        out.push_str("];\n");
        writeln!(
            out,
            "/// The named schemas the {api} operations' shapes refer to (`#<index>`).\npub static {}_SHAPES: &[(&str, &str)] = &[",
            api.to_uppercase()
        )
        .unwrap();
        for (schema, shape) in &gen.pool {
            writeln!(out, "    ({schema:?}, {shape:?}),").unwrap();
        }
        out.push_str("];\n");
    }
    out.push_str(&scope_enum(&scopes));
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("operations.rs");
    std::fs::write(dest, out).unwrap();
}

fn read(dir: &Path, file: &str) -> Value {
    let path = dir.join(file);
    println!("cargo:rerun-if-changed={}", path.display());
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("the spec is JSON")
}

struct Generator<'a> {
    spec: &'a Value,
    common: &'a Value,
    /// (schema name, shape), in index order.
    pool: Vec<(String, String)>,
    /// `$ref` → index in `pool`.
    pooled: HashMap<String, usize>,
}

impl<'a> Generator<'a> {
    fn table(&mut self, api: &str, scopes: &mut BTreeSet<(String, bool)>) -> Vec<String> {
        let mut rows = Vec::new();
        for (path, ops) in self.spec["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let Some(id) = op["operationId"].as_str() else { continue };
                let declared = declared_scope(op);
                let scope = match (api, declared) {
                    ("Dialpad", None) => "dialpad".to_string(),
                    (_, Some(s)) => s.to_string(),
                    // Operations whose spec entry has no `security` block (the two bulk Contacts
                    // operations, seven of Conversations'): the scope of their family, as
                    // HighLevel's scope table lists it (`docs/Scopes.md`): read for GET, else write.
                    (_, None) => format!("{}.{}", family(path), if method == "get" { "readonly" } else { "write" }),
                };
                scopes.insert((scope.clone(), api == "Dialpad"));
                let success: u16 = op["responses"].as_object().unwrap().keys().find(|c| c.starts_with('2')).expect("a success status").parse().unwrap();
                let mut params = String::new();
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let at = match p["in"].as_str() {
                        Some("path") => "Path",
                        Some("query") => "Query",
                        // `Version` (HighLevel's): the client sends it for every operation.
                        _ => continue,
                    };
                    let shape = self.shape(&p["schema"]);
                    write!(
                        params,
                        "Param {{ name: {:?}, at: At::{at}, required: {}, shape: {shape:?} }}, ",
                        p["name"].as_str().unwrap(),
                        p["required"].as_bool().unwrap_or(at == "Path"),
                    )
                    .unwrap();
                }
                // A `{param}` of the path that the spec's entry does not declare (five do not)
                // is a required string: the path cannot be written without it.
                for name in path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                    let declared = op["parameters"].as_array().into_iter().flatten().any(|p| p["in"] == "path" && p["name"] == name);
                    if !declared {
                        write!(params, "Param {{ name: {name:?}, at: At::Path, required: true, shape: \"s\" }}, ").unwrap();
                    }
                }
                let body = match op["requestBody"]["content"].as_object().and_then(|c| c.iter().next()) {
                    None => "None".to_string(),
                    Some((content_type, media)) => {
                        let content = match content_type.as_str() {
                            "application/json" => "Json",
                            "multipart/form-data" => "Multipart",
                            other => panic!("{id}: request body of type {other}"),
                        };
                        let schema = &media["schema"];
                        let name = schema["$ref"].as_str().map_or("", |r| r.rsplit('/').next().unwrap());
                        // The body's own object is written out, not referred to: the client reads
                        // its top-level properties on every invocation.
                        let shape = self.inline(schema);
                        format!(
                            "Some(&Body {{ schema: {name:?}, required: {}, content: Content::{content}, shape: {shape:?} }})",
                            op["requestBody"]["required"].as_bool().unwrap_or(false)
                        )
                    }
                };
                rows.push(format!(
                    "    Operation {{ id: {id:?}, api: Api::{api}, method: Method::{}, path: {path:?}, scope: Scope::{}, scope_declared_in_spec: {}, success_status: {success}, summary: {:?}, deprecated: {}, params: &[{params}], body: {body} }},\n",
                    capitalized(method),
                    variant(&scope, api == "Dialpad"),
                    declared.is_some(),
                    op["summary"].as_str().unwrap_or("").trim(),
                    op["deprecated"].as_bool().unwrap_or(false),
                ));
            }
        }
        rows
    }

    /// The schema a `$ref` names, with the document it is in.
    fn resolve(&self, reference: &str) -> &'a Value {
        let (doc, pointer) = match reference.split_once('#') {
            Some(("", pointer)) => (self.spec, pointer),
            Some((file, pointer)) if file.ends_with("common-schemas.json") => (self.common, pointer),
            _ => panic!("unresolvable $ref {reference}"),
        };
        doc.pointer(pointer).unwrap_or_else(|| panic!("unresolvable $ref {reference}"))
    }

    /// A schema's shape with a top-level `$ref` (or one-item `allOf`) written out.
    fn inline(&mut self, schema: &Value) -> String {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let target = self.resolve(reference);
                self.shape(target)
            }
            None => self.shape(schema),
        }
    }

    fn shape(&mut self, schema: &Value) -> String {
        let base = self.base(schema);
        if schema["nullable"].as_bool() == Some(true) && !base.ends_with('?') {
            format!("{base}?")
        } else {
            base
        }
    }

    fn base(&mut self, schema: &Value) -> String {
        if let Some(reference) = schema["$ref"].as_str() {
            return self.reference(reference);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema[key].as_array() {
                let shapes = options.iter().map(|o| self.shape(o)).collect();
                return union(shapes);
            }
        }
        if let Some(parts) = schema["allOf"].as_array() {
            if parts.len() == 1 {
                return self.shape(&parts[0]);
            }
            let mut merged = Map::new();
            let mut required = Vec::new();
            for part in parts {
                let part = part["$ref"].as_str().map_or(part, |r| self.resolve(r));
                merged.extend(part["properties"].as_object().cloned().unwrap_or_default());
                required.extend(part["required"].as_array().cloned().unwrap_or_default());
            }
            return self.object(&Value::Object(Map::from_iter([("properties".into(), Value::Object(merged)), ("required".into(), Value::Array(required))])));
        }
        if let Some(values) = schema["enum"].as_array() {
            if values.iter().all(Value::is_string) {
                let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                for v in &values {
                    assert!(!v.contains(['|', '>']), "enum value {v:?} holds a shape delimiter");
                }
                return format!("<{}>", values.join("|"));
            }
        }
        match schema["type"].as_str() {
            Some("string") if schema["format"] == "date-time" => "d".into(),
            Some("string") => "s".into(),
            Some("integer") => "i".into(),
            Some("number") => "n".into(),
            Some("boolean") => "b".into(),
            Some("array") => match schema.get("items") {
                Some(items) => format!("[{}]", self.shape(items)),
                None => "[x]".into(),
            },
            Some("object") => {
                let declared = self.object(schema);
                // A property declared an object whose example is a string (`dateOfBirth`,
                // example "1990-09-25") is sent as a string: HighLevel's server takes either.
                if schema["example"].is_string() {
                    format!("({declared}|s)")
                } else {
                    declared
                }
            }
            None if schema.get("properties").is_some() => self.object(schema),
            // No type, or one JSON Schema does not have (`any`, `custom`): anything goes.
            _ => "x".into(),
        }
    }

    /// `{name!:shape,…}` (`!` = required); `{}` for an object that declares no properties.
    fn object(&mut self, schema: &Value) -> String {
        let mut required: Vec<&str> = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        // HighLevel's custom-field DTOs (`TextField`, …) require `id` beside an optional `key`,
        // but the API takes a field by either, as its documentation says: neither is required.
        if schema["properties"].get("key").is_some() && schema["properties"].get("field_value").is_some() {
            required.retain(|name| *name != "id");
        }
        let mut fields = Vec::new();
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "property name {name:?} needs escaping");
            let mark = if required.contains(&name.as_str()) { "!" } else { "" };
            fields.push(format!("{name}{mark}:{}", self.shape(property)));
        }
        format!("{{{}}}", fields.join(","))
    }

    /// `#<index>` into the API's pool; the schema is written there once.
    fn reference(&mut self, reference: &str) -> String {
        if let Some(index) = self.pooled.get(reference) {
            return format!("#{index}");
        }
        let index = self.pool.len();
        self.pooled.insert(reference.to_string(), index);
        let name = reference.rsplit('/').next().unwrap().to_string();
        self.pool.push((name, String::new()));
        let target = self.resolve(reference);
        let shape = self.shape(target);
        self.pool[index].1 = shape;
        format!("#{index}")
    }
}

fn union(mut options: Vec<String>) -> String {
    options.dedup();
    if options.len() == 1 {
        options.pop().unwrap()
    } else {
        format!("({})", options.join("|"))
    }
}

/// The scope family of an operation that declares none: its path's first segment, and
/// `conversations/message` for the messages of Conversations.
fn family(path: &str) -> &'static str {
    if path.starts_with("/conversations/messages") {
        "conversations/message"
    } else if path.starts_with("/conversations") {
        "conversations"
    } else if path.starts_with("/users") {
        "users"
    } else {
        "contacts"
    }
}

/// The first scope the operation's `security` names, under any scheme (`bearer`,
/// `Location-Access`, `api_key_in_url`, …).
fn declared_scope(op: &Value) -> Option<&str> {
    op["security"].as_array()?.iter().filter_map(Value::as_object).flat_map(|o| o.values()).find_map(|scopes| scopes[0].as_str())
}

/// `contacts.readonly` → `ContactsReadonly`; Dialpad's `calls:list` → `DialpadCallsList`.
fn variant(scope: &str, dialpad: bool) -> String {
    let mut name = String::from(if dialpad && scope != "dialpad" { "Dialpad" } else { "" });
    for word in scope.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        name.push_str(&capitalized(word));
    }
    name
}

fn scope_enum(scopes: &BTreeSet<(String, bool)>) -> String {
    let mut out = String::from(
        "/// A grant an operation needs: one of HighLevel's OAuth scopes, one of Dialpad's, or (`Scope::Dialpad`)\n\
         /// just Dialpad's credential. Generated from every scope the specs name.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Scope {\n",
    );
    for (scope, dialpad) in scopes {
        writeln!(out, "    /// `{scope}`\n    {},", variant(scope, *dialpad)).unwrap();
    }
    out.push_str("}\n\nimpl Scope {\n    /// Every scope, HighLevel's first.\n    pub const ALL: &[Scope] = &[");
    let ordered = scopes.iter().filter(|(_, d)| !d).chain(scopes.iter().filter(|(_, d)| *d));
    for (scope, dialpad) in ordered {
        write!(out, "Scope::{}, ", variant(scope, *dialpad)).unwrap();
    }
    out.push_str("];\n    /// Every HighLevel scope, for parsing and listing.\n    pub const HIGHLEVEL: &[Scope] = &[");
    for (scope, _) in scopes.iter().filter(|(_, d)| !d) {
        write!(out, "Scope::{}, ", variant(scope, false)).unwrap();
    }
    out.push_str("];\n    /// Dialpad's OAuth scopes (an API key has them all).\n    pub const DIALPAD: &[Scope] = &[");
    for (scope, _) in scopes.iter().filter(|(s, d)| *d && s != "dialpad") {
        write!(out, "Scope::{}, ", variant(scope, true)).unwrap();
    }
    out.push_str("];\n\n    /// The scope's name, as its API spells it.\n    pub const fn as_str(self) -> &'static str {\n        match self {\n");
    for (scope, dialpad) in scopes {
        writeln!(out, "            Scope::{} => {scope:?},", variant(scope, *dialpad)).unwrap();
    }
    out.push_str("        }\n    }\n\n    /// True for Dialpad's grants (its scopes, and its bare credential).\n    pub const fn is_dialpad(self) -> bool {\n        matches!(self, ");
    let dialpad: Vec<String> = scopes.iter().filter(|(_, d)| *d).map(|(s, _)| format!("Scope::{}", variant(s, true))).collect();
    out.push_str(&dialpad.join(" | "));
    out.push_str(")\n    }\n}\n");
    out
}

fn capitalized(word: &str) -> String {
    let mut c = word.chars();
    c.next().unwrap().to_uppercase().chain(c.flat_map(char::to_lowercase)).collect()
}
