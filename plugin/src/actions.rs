//! Every Contacts API operation as an action: the catalog (each operation with its scope and
//! the JSON Schema of its input) and the planning of one invocation. Both read the one
//! operations table (`contacts_api::OPERATIONS`, generated from the official spec).
//!
//! An action's input is one JSON object: path and query parameters by name, the request body
//! under `body`. It is checked against the operation before anything is sent, so a whitelist
//! violation is a typed `invalid-input` naming the path, not a 422 from the API.

use crate::click_to_call;
use crate::config::Config;
use crate::error::{Problem, SyncError};
use crate::inbound::event::EventKind;
use crate::plan::vocabulary::{Capture, Plan, Ref, Step};
use contacts_api::{Operation, ValueKind, OPERATIONS};
use serde_json::{json, Map, Value};

/// Input key that acknowledges that `tags` on update/upsert replaces all of a contact's tags.
pub const REPLACE_TAGS_KEY: &str = "replace_all_tags";

/// One catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationInfo {
    /// The action's id: the operation's, or a workflow action's (`click-to-call`).
    pub id: &'static str,
    /// The operation it runs (for a workflow action, its last one).
    pub operation: &'static Operation,
    pub input_schema: Value,
}

/// Every Contacts operation, then the workflow actions.
pub fn catalog() -> Vec<OperationInfo> {
    let mut list: Vec<OperationInfo> = OPERATIONS.iter().map(|op| OperationInfo { id: op.id, operation: op, input_schema: input_schema(op) }).collect();
    list.push(OperationInfo { id: click_to_call::ACTION_ID, operation: contacts_api::op("call.call"), input_schema: click_to_call::input_schema() });
    list
}

/// The JSON Schema of an operation's input.
pub fn input_schema(op: &Operation) -> Value {
    let mut properties = Map::new();
    let mut required: Vec<&str> = Vec::new();
    for name in op.path_params() {
        properties.insert(name.into(), json!({"type": "string", "minLength": 1, "description": "path parameter"}));
        required.push(name);
    }
    for p in op.query {
        let mut schema = json!({"type": p.kind.json_schema_type(), "description": "query parameter"});
        if p.name == "locationId" {
            schema["description"] = json!("query parameter; defaults to the configured location");
        } else if p.required {
            required.push(p.name);
        }
        properties.insert(p.name.into(), schema);
    }
    if let Some(body) = op.body {
        let mut body_schema = json!({"type": "object", "title": body.schema});
        if !body.open {
            let mut props = Map::new();
            let mut body_required = Vec::new();
            for p in body.properties {
                let mut types = vec![p.kind.json_schema_type()];
                if let Some(also) = p.also {
                    types.push(also.json_schema_type());
                }
                if p.nullable {
                    types.push("null");
                }
                let ty = if types.len() == 1 { json!(types[0]) } else { json!(types) };
                props.insert(p.name.into(), json!({ "type": ty }));
                if p.required && p.name != "locationId" {
                    body_required.push(p.name);
                }
            }
            body_schema["properties"] = Value::Object(props);
            body_schema["required"] = json!(body_required);
            body_schema["additionalProperties"] = json!(false);
        }
        if body.required {
            required.push("body");
        }
        properties.insert("body".into(), body_schema);
    }
    if replaces_tags(op) {
        properties.insert(
            REPLACE_TAGS_KEY.into(),
            json!({"type": "boolean", "description": "must be true to send body.tags: it replaces every tag of the contact (add-tags / remove-tags change some)"}),
        );
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": op.id,
        "description": op.summary,
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

fn replaces_tags(op: &Operation) -> bool {
    matches!(op.id, "update-contact" | "upsert-contact" | "create-contact")
}

/// Plans one invocation: validates the input, checks the scope, and returns a one-step plan.
pub fn plan_invocation(operation_id: &str, input: &str, config: &Config) -> Result<Plan, SyncError> {
    let op = contacts_api::operation(operation_id);
    if op.is_none() && operation_id != click_to_call::ACTION_ID {
        return Err(SyncError::UnknownOperation(operation_id.to_string()));
    }
    let input: Value = serde_json::from_str(if input.trim().is_empty() { "{}" } else { input })
        .map_err(|e| SyncError::InvalidInput(vec![problem("", format!("input is not valid JSON: {e}"))]))?;
    let Value::Object(input) = input else {
        return Err(SyncError::InvalidInput(vec![problem("", "input must be a JSON object")]));
    };
    let Some(op) = op else { return click_to_call::plan(&input, config) };
    let step = validate(op, input, config)?;
    config.require_scopes(&[op.scope])?;
    Ok(Plan { summary: format!("{} {}", op.method.as_str(), op.path), steps: vec![step], ..Plan::empty(EventKind::Call, format!("action:{}", op.id)) })
}

fn validate(op: &'static Operation, mut input: Map<String, Value>, config: &Config) -> Result<Step, SyncError> {
    let mut problems = Vec::new();
    let mut step = Step { capture: Capture::Response, ..Step::new(op.id) };
    let replace_tags = match input.remove(REPLACE_TAGS_KEY) {
        None => false,
        Some(Value::Bool(b)) if replaces_tags(op) => b,
        Some(_) if replaces_tags(op) => {
            problems.push(problem(&format!("/{REPLACE_TAGS_KEY}"), "must be true or false"));
            false
        }
        Some(_) => {
            problems.push(problem(&format!("/{REPLACE_TAGS_KEY}"), format!("unknown input: {} has no tags to replace", op.id)));
            false
        }
    };
    for name in op.path_params() {
        match input.remove(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => match name {
                "contactId" => step.contact = Some(Ref::Known(s)),
                "id" => step.note = Some(Ref::Known(s)),
                _ => step.other_params.push((name, s)),
            },
            Some(_) => problems.push(problem(&format!("/{name}"), "must be a non-empty string")),
            None => problems.push(problem(&format!("/{name}"), "required path parameter")),
        }
    }
    for p in op.query {
        let value = match input.remove(p.name) {
            Some(v) => Some(v),
            None if p.name == "locationId" => Some(Value::String(config.location_id.clone())),
            None => None,
        };
        match value {
            Some(v) => match scalar_text(&v, p.kind) {
                Some(text) => step.query.push((p.name, text)),
                None => problems.push(problem(&format!("/{}", p.name), format!("must be a {}", p.kind.json_schema_type()))),
            },
            None if p.required => problems.push(problem(&format!("/{}", p.name), "required query parameter")),
            None => {}
        }
    }
    match (op.body, input.remove("body")) {
        (None, Some(_)) => problems.push(problem("/body", format!("{} takes no request body", op.id))),
        (None, None) => {}
        (Some(body), given) => {
            let mut object = match given {
                Some(Value::Object(m)) => m,
                None => Map::new(),
                Some(_) => {
                    problems.push(problem("/body", "must be a JSON object"));
                    Map::new()
                }
            };
            // The search body is an empty schema in the spec, but the API requires its locationId.
            let takes_location = body.properties.iter().any(|p| p.name == "locationId") || op.id == "search-contacts-advanced";
            if takes_location && !object.contains_key("locationId") {
                object.insert("locationId".into(), Value::String(config.location_id.clone()));
            }
            if !body.open {
                for (key, value) in &object {
                    match body.properties.iter().find(|p| p.name == key) {
                        None => {
                            problems.push(problem(&format!("/body/{key}"), format!("property {key} should not exist ({} does not declare it)", body.schema)))
                        }
                        Some(p) if value.is_null() && p.nullable => {}
                        Some(p) if !kind_of(value).is_some_and(|k| p.accepts(&k)) => {
                            problems.push(problem(&format!("/body/{key}"), format!("must be a {}", p.kind.json_schema_type())))
                        }
                        Some(_) => {}
                    }
                }
                for p in body.properties.iter().filter(|p| p.required && !object.contains_key(p.name)) {
                    problems.push(problem(&format!("/body/{}", p.name), "required"));
                }
            }
            if replaces_tags(op) && op.id != "create-contact" && object.contains_key("tags") && !replace_tags {
                problems.push(problem(
                    "/body/tags",
                    format!("tags on {} replaces every tag of the contact: use add-tags / remove-tags, or set {REPLACE_TAGS_KEY}: true", op.id),
                ));
            }
            if body.required || !object.is_empty() || body.open {
                step.body = Some(Value::Object(object));
            }
        }
    }
    for key in input.keys() {
        problems.push(problem(&format!("/{key}"), format!("unknown input for {}", op.id)));
    }
    if problems.is_empty() {
        Ok(step)
    } else {
        Err(SyncError::InvalidInput(problems))
    }
}

fn kind_of(v: &Value) -> Option<ValueKind> {
    match v {
        Value::String(_) => Some(ValueKind::String),
        Value::Number(_) => Some(ValueKind::Number),
        Value::Bool(_) => Some(ValueKind::Boolean),
        Value::Array(_) => Some(ValueKind::Array),
        Value::Object(_) => Some(ValueKind::Object),
        Value::Null => None,
    }
}

/// A query value as text; numbers are accepted as strings and the other way round, as a form
/// would send them.
fn scalar_text(v: &Value, kind: ValueKind) -> Option<String> {
    match (v, kind) {
        (Value::String(s), ValueKind::String) => Some(s.clone()),
        (Value::String(s), ValueKind::Number) if s.trim().parse::<f64>().is_ok() => Some(s.trim().to_string()),
        (Value::Number(n), ValueKind::Number | ValueKind::String) => Some(n.to_string()),
        (Value::Bool(b), ValueKind::Boolean) => Some(b.to_string()),
        _ => None,
    }
}

/// The response as returned to the caller. HighLevel v2 spells `succeded`; the correct
/// spelling is added beside it so callers can rely on either.
pub fn normalize_response(mut response: Value) -> Value {
    if let Some(obj) = response.as_object_mut() {
        if let Some(v) = obj.get("succeded").cloned() {
            obj.entry("succeeded").or_insert(v);
        }
    }
    response
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem { path: path.to_string(), message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(scopes: &[&str]) -> Config {
        Config::from_json(&json!({"location_id": "L", "scopes": scopes}).to_string()).unwrap()
    }

    fn both() -> Config {
        config(&["contacts.readonly", "contacts.write"])
    }

    #[test]
    fn the_catalog_lists_all_32_operations_with_input_schemas() {
        let c = catalog();
        assert_eq!(c.len(), 33);
        assert_eq!(c[32].id, "click-to-call");
        let note = c.iter().find(|i| i.operation.id == "create-note").unwrap();
        assert_eq!(note.input_schema["required"], json!(["contactId", "body"]));
        assert_eq!(note.input_schema["properties"]["body"]["required"], json!(["body"]));
        assert_eq!(note.input_schema["properties"]["body"]["additionalProperties"], false);
        let dup = c.iter().find(|i| i.operation.id == "get-duplicate-contact").unwrap();
        assert!(dup.input_schema["properties"]["number"].is_object());
        assert_eq!(dup.input_schema["required"], json!([]), "locationId defaults to the configured one");
    }

    #[test]
    fn an_invocation_fills_path_query_and_location() {
        let plan = plan_invocation("get-duplicate-contact", r#"{"number":"+13125550187"}"#, &both()).unwrap();
        assert_eq!(plan.steps[0].display_path(), "/contacts/search/duplicate?locationId=L&number=%2B13125550187");
        let plan = plan_invocation("update-task-completed", r#"{"contactId":"c1","taskId":"t 1","body":{"completed":true}}"#, &both()).unwrap();
        assert_eq!(plan.steps[0].display_path(), "/contacts/c1/tasks/t%201/completed");
        let plan = plan_invocation("create-contact", r#"{"body":{"firstName":"Ana"}}"#, &both()).unwrap();
        assert_eq!(plan.steps[0].body, Some(json!({"firstName": "Ana", "locationId": "L"})));
        let plan = plan_invocation("create-association", r#"{"type":"add","body":{"contacts":["a"],"tags":["x"]}}"#, &both()).unwrap();
        assert_eq!(plan.steps[0].display_path(), "/contacts/bulk/tags/update/add");
    }

    #[test]
    fn bad_input_is_refused_with_paths_before_any_request() {
        let err = plan_invocation("create-note", r#"{"body":{"text":"x"},"colour":1}"#, &both()).unwrap_err();
        let SyncError::InvalidInput(problems) = err else { panic!("{err:?}") };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["/contactId", "/body/text", "/body/body", "/colour"]);
        assert!(matches!(plan_invocation("no-such-op", "{}", &both()), Err(SyncError::UnknownOperation(_))));
        assert!(matches!(plan_invocation("get-contact", "[1]", &both()), Err(SyncError::InvalidInput(_))));
        let err = plan_invocation("update-task", r#"{"contactId":"c","taskId":"t","body":{"completed":"yes"}}"#, &both()).unwrap_err();
        assert!(matches!(err, SyncError::InvalidInput(ref p) if p[0].path == "/body/completed"), "{err:?}");
    }

    #[test]
    fn tags_on_update_must_be_meant() {
        let input = r#"{"contactId":"c","body":{"tags":["vip"]}}"#;
        assert!(matches!(plan_invocation("update-contact", input, &both()), Err(SyncError::InvalidInput(ref p)) if p[0].path == "/body/tags"));
        let meant = r#"{"contactId":"c","replace_all_tags":true,"body":{"tags":["vip"]}}"#;
        assert!(plan_invocation("update-contact", meant, &both()).is_ok());
        assert!(plan_invocation("add-tags", r#"{"contactId":"c","body":{"tags":["vip"]}}"#, &both()).is_ok());
    }

    #[test]
    fn a_missing_scope_is_refused() {
        let read_only = config(&["contacts.readonly"]);
        assert!(plan_invocation("get-contact", r#"{"contactId":"c"}"#, &read_only).is_ok());
        assert_eq!(plan_invocation("delete-contact", r#"{"contactId":"c"}"#, &read_only).unwrap_err(), SyncError::MissingScope(vec!["contacts.write".into()]));
    }

    #[test]
    fn succeded_is_also_spelled_correctly() {
        assert_eq!(normalize_response(json!({"succeded": true})), json!({"succeded": true, "succeeded": true}));
        assert_eq!(normalize_response(json!({"tags": []})), json!({"tags": []}));
    }
}
