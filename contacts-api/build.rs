//! Generates the operation tables from the official specs (verbatim copies under `spec/`):
//! every operation's id, API, method, path, scope, success status, summary, query parameters
//! and request-body properties. Nothing about an API is typed in by hand, so a table cannot
//! drift from its spec. One generator and one table shape for every API: HighLevel's Contacts
//! (all 32 operations), and the operations of HighLevel's Conversations and Users and of
//! Dialpad's API that the sync uses (`USED` below names them; the issue that lists every
//! operation of those APIs as an action lifts the filter).

use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

/// (table constant, `Api` variant, spec file, the operations taken: `None` = all).
const TABLES: &[(&str, &str, &str, Option<&[&str]>)] = &[
    ("OPERATIONS", "Contacts", "spec/apps/contacts.json", None),
    (
        "CONVERSATIONS",
        "Conversations",
        "spec/apps/conversations.json",
        Some(&["search-conversation", "create-conversation", "get-messages", "add-an-inbound-message", "add-an-outbound-message", "add-message-attachments"]),
    ),
    ("USERS", "Users", "spec/apps/users.json", Some(&["get-user-by-location"])),
    (
        "DIALPAD",
        "Dialpad",
        "spec/dialpad/dialpad_api_spec.json",
        Some(&[
            "contacts.create",
            "contacts.create_with_uid",
            "contacts.get",
            "contacts.update",
            "contacts.delete",
            "screen_pop.initiate",
            "recording_share_link.create",
            "call.call",
            "users.list",
        ]),
    ),
];

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut out = String::new();
    for (name, api, file, used) in TABLES {
        let spec_path = dir.join(file);
        println!("cargo:rerun-if-changed={}", spec_path.display());
        let spec: Value = serde_json::from_str(&std::fs::read_to_string(&spec_path).unwrap()).expect("the spec is JSON");
        let rows = table(&spec, api, *used);
        writeln!(out, "/// {} operations of the {api} spec, generated from it by `build.rs`.\npub const {name}: &[Operation] = &[", rows.len()).unwrap();
        for row in &rows {
            out.push_str(row);
        }
        out.push_str("];\n");
        if let Some(used) = used {
            assert_eq!(rows.len(), used.len(), "{api}: an operation named in USED is not in the spec");
        }
    }
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("operations.rs");
    std::fs::write(dest, out).unwrap();
}

fn table(spec: &Value, api: &str, used: Option<&[&str]>) -> Vec<String> {
    let schemas = &spec["components"]["schemas"];
    let mut rows = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(id) = op["operationId"].as_str() else { continue };
            if used.is_some_and(|u| !u.contains(&id)) {
                continue;
            }
            let declared = declared_scope(op);
            let scope = match api {
                // Dialpad's scopes are its own credential's; the table records them as text.
                "Dialpad" => "Scope::Dialpad".to_string(),
                // The two bulk Contacts operations declare no security; they write, so they need write.
                _ => format!("Scope::{}", scope_variant(declared.unwrap_or("contacts.write"), id)),
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
            rows.push(format!(
                "    Operation {{ id: {id:?}, api: Api::{api}, method: Method::{}, path: {path:?}, scope: {scope}, scope_declared_in_spec: {}, success_status: {success}, summary: {:?}, deprecated: {}, query: &[{query}], body: {body} }},\n",
                capitalized(method),
                declared.is_some(),
                op["summary"].as_str().unwrap_or(""),
                op["deprecated"].as_bool().unwrap_or(false),
            ));
        }
    }
    rows
}

/// The first scope the operation's `security` names, under any scheme (`bearer`,
/// `Location-Access`, `api_key_in_url`, …).
fn declared_scope(op: &Value) -> Option<&str> {
    op["security"].as_array()?.iter().filter_map(Value::as_object).flat_map(|o| o.values()).find_map(|scopes| scopes[0].as_str())
}

fn scope_variant(scope: &str, id: &str) -> &'static str {
    match scope {
        "contacts.readonly" => "ContactsReadonly",
        "contacts.write" => "ContactsWrite",
        "conversations.readonly" => "ConversationsReadonly",
        "conversations.write" => "ConversationsWrite",
        "conversations/message.readonly" => "ConversationsMessageReadonly",
        "conversations/message.write" => "ConversationsMessageWrite",
        "users.readonly" => "UsersReadonly",
        other => panic!("{id}: unknown scope {other}"),
    }
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
