//! Every operation of both sides as an action: the catalog (each operation with its API, grant
//! and the JSON Schema of its input) and the planning of one invocation. Both read the
//! operations tables (`contacts_api`, generated from the official specs): HighLevel's Contacts,
//! Conversations and Users APIs and Dialpad's API, 261 operations.
//!
//! An action's input is one JSON object: path and query parameters by name, the request body
//! under `body`. It is checked against the operation's shapes before anything is sent, so a
//! whitelist violation is a typed `invalid-input` naming the path, not a 422 from the API.

use crate::click_to_call;
use crate::config::Config;
use crate::error::{Problem, SyncError};
use crate::inbound::event::EventKind;
use crate::plan::vocabulary::{Capture, Plan, Ref, Step};
use contacts_api::shape::{self, Shape};
use contacts_api::{Api, At, Content, Operation, Param};
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
    /// The grants the configuration lacks for it; empty when it is available (or no
    /// configuration was given to judge by).
    pub missing_scopes: Vec<&'static str>,
}

/// Every operation of every API, then the workflow actions; judged against `config`'s grants
/// when there is one.
pub fn catalog(config: Option<&Config>) -> Vec<OperationInfo> {
    let missing = |op: &Operation| config.map(|c| c.missing_scopes(&[op.scope])).unwrap_or_default();
    let mut list: Vec<OperationInfo> = Api::ALL
        .iter()
        .flat_map(|api| api.table())
        .map(|op| OperationInfo { id: op.id, operation: op, input_schema: input_schema(op), missing_scopes: missing(op) })
        .collect();
    let call = contacts_api::op("call.call");
    let mut click_missing = config.map(|c| c.missing_scopes(click_to_call::SCOPES)).unwrap_or_default();
    click_missing.extend(missing(call));
    list.push(OperationInfo { id: click_to_call::ACTION_ID, operation: call, input_schema: click_to_call::input_schema(), missing_scopes: click_missing });
    list
}

/// True when the API's `locationId` (query or body) defaults to the configured location.
fn location_defaults(op: &Operation) -> bool {
    op.api.is_highlevel()
}

/// The JSON Schema of an operation's input, derived from the table's shapes.
pub fn input_schema(op: &Operation) -> Value {
    let pool = op.api.pool();
    let mut defs = Map::new();
    let mut properties = Map::new();
    let mut required: Vec<&str> = Vec::new();
    for p in op.params {
        let mut schema = match (p.at, shape::parse(p.shape)) {
            // Ids travel in the path as text: a number is taken too (Dialpad's ids are int64,
            // beyond what a JavaScript number holds exactly).
            (At::Path, Shape::Integer) => json!({"type": ["integer", "string"], "pattern": "^[0-9]+$"}),
            (At::Path, _) => json!({"type": "string", "minLength": 1}),
            (At::Query, shape) => shape::json_schema(&shape, pool, &mut defs),
        };
        let defaulted = p.name == "locationId" && location_defaults(op);
        schema["description"] = json!(match (p.at, defaulted) {
            (At::Path, _) => "path parameter",
            (At::Query, true) => "query parameter; defaults to the configured location",
            (At::Query, false) => "query parameter",
        });
        if p.required && !defaulted {
            required.push(p.name);
        }
        properties.insert(p.name.into(), schema);
    }
    if let Some(body) = op.body {
        let mut schema = shape::json_schema(&shape::parse(body.shape), pool, &mut defs);
        if !body.schema.is_empty() {
            schema["title"] = json!(body.schema);
        }
        if let Some(list) = schema.get_mut("required").and_then(Value::as_array_mut) {
            if location_defaults(op) {
                list.retain(|name| name != "locationId");
            }
        }
        if body.content == Content::Multipart {
            schema["description"] = json!("sent as multipart/form-data; a file is an extra field {\"filename\", \"content_type\", \"content\"}");
            schema.as_object_mut().map(|o| o.remove("additionalProperties"));
        }
        if body.required {
            required.push("body");
        }
        properties.insert("body".into(), schema);
    }
    if replaces_tags(op) {
        properties.insert(
            REPLACE_TAGS_KEY.into(),
            json!({"type": "boolean", "description": "must be true to send body.tags: it replaces every tag of the contact (add-tags / remove-tags change some)"}),
        );
    }
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": op.id,
        "description": op.summary,
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    });
    if !defs.is_empty() {
        schema["$defs"] = Value::Object(defs);
    }
    schema
}

fn replaces_tags(op: &Operation) -> bool {
    matches!(op.id, "update-contact" | "upsert-contact" | "create-contact")
}

/// Plans one invocation: validates the input, checks the grant, and returns a one-step plan.
pub fn plan_invocation(operation_id: &str, input: &str, config: &Config) -> Result<Plan, SyncError> {
    let op = contacts_api::any_operation(operation_id);
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
    for p in op.params {
        let value = match input.remove(p.name) {
            None if p.name == "locationId" && location_defaults(op) => Some(Value::String(config.location_id.clone())),
            value => value,
        };
        let Some(value) = value else {
            if p.required {
                let at = if p.at == At::Path { "path" } else { "query" };
                problems.push(problem(&format!("/{}", p.name), format!("required {at} parameter")));
            }
            continue;
        };
        match texts(op, p, &value) {
            Err(message) => problems.push(problem(&format!("/{}", p.name), message)),
            Ok(texts) if p.at == At::Path => {
                let text = texts.into_iter().next().unwrap_or_default();
                match p.name {
                    "contactId" => step.contact = Some(Ref::Known(text)),
                    "id" => step.note = Some(Ref::Known(text)),
                    _ => step.other_params.push((p.name, text)),
                }
            }
            Ok(texts) => step.query.extend(texts.into_iter().map(|t| (p.name, t))),
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
            let body_shape = shape::parse(body.shape);
            let declared = body_shape.fields(op.api.pool());
            // The search body is an empty schema in the spec, but the API requires its locationId.
            let takes_location = declared.iter().any(|p| p.name == "locationId") || op.id == "search-contacts-advanced";
            if location_defaults(op) && takes_location && !object.contains_key("locationId") {
                object.insert("locationId".into(), Value::String(config.location_id.clone()));
            }
            // A multipart body may carry files beside its declared fields.
            let files: Vec<String> = match body.content {
                Content::Multipart => object.iter().filter(|(_, v)| is_file(v)).map(|(k, _)| k.clone()).collect(),
                Content::Json => Vec::new(),
            };
            let checked = Value::Object(object.iter().filter(|(k, _)| !files.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect());
            let mut found = Vec::new();
            shape::check(&body_shape, &checked, op.api.pool(), "/body", &mut found);
            for m in found {
                let message = match m.message.strip_suffix(" should not exist") {
                    Some(what) if !body.schema.is_empty() => format!("{what} should not exist ({} does not declare it)", body.schema),
                    _ => m.message,
                };
                problems.push(problem(&m.path, message));
            }
            if replaces_tags(op) && op.id != "create-contact" && object.contains_key("tags") && !replace_tags {
                problems.push(problem(
                    "/body/tags",
                    format!("tags on {} replaces every tag of the contact: use add-tags / remove-tags, or set {REPLACE_TAGS_KEY}: true", op.id),
                ));
            }
            if body.required || !object.is_empty() || declared.is_empty() {
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

/// `{"filename", "content_type"?, "content"}`: a file of a multipart body.
pub fn is_file(value: &Value) -> bool {
    value.get("filename").is_some_and(Value::is_string) && value.get("content").is_some_and(Value::is_string)
}

/// A parameter's value as the texts it travels as (an array query parameter repeats its key).
fn texts(op: &Operation, p: &Param, value: &Value) -> Result<Vec<String>, String> {
    let pool = op.api.pool();
    let shape = shape::parse(p.shape);
    let (item, many) = match shape.resolved(pool) {
        Shape::Array(item) => (*item, true),
        other => (other, false),
    };
    let values: Vec<&Value> = match value {
        Value::Array(items) if many && p.at == At::Query => items.iter().collect(),
        v => vec![v],
    };
    values.into_iter().map(|v| param_text(&item, pool, v).ok_or_else(|| format!("must be {}", shape.describe(pool)))).collect()
}

/// One parameter value as text, if it fits: numbers are accepted as strings and the other
/// way round, as a form would send them, and the text is checked the way the server reads it.
fn param_text(shape: &Shape, pool: shape::Pool, v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let read = match shape.resolved(pool) {
        Shape::Integer => Value::from(text.trim().parse::<i64>().ok()?),
        Shape::Number => Value::Number(serde_json::Number::from_f64(text.trim().parse().ok()?)?),
        Shape::Boolean => Value::Bool(text.parse().ok()?),
        _ => Value::String(text.clone()),
    };
    let mut found = Vec::new();
    shape::check(shape, &read, pool, "", &mut found);
    (found.is_empty() && !text.is_empty()).then_some(text)
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
    fn the_catalog_lists_every_operation_of_both_sides_with_input_schemas() {
        let c = catalog(None);
        assert_eq!(c.len(), 32 + 29 + 7 + 193 + 1);
        assert_eq!(c.last().unwrap().id, "click-to-call");
        let note = c.iter().find(|i| i.operation.id == "create-note").unwrap();
        assert_eq!(note.input_schema["required"], json!(["contactId", "body"]));
        assert_eq!(note.input_schema["properties"]["body"]["required"], json!(["body"]));
        assert_eq!(note.input_schema["properties"]["body"]["additionalProperties"], false);
        let dup = c.iter().find(|i| i.operation.id == "get-duplicate-contact").unwrap();
        assert!(dup.input_schema["properties"]["number"].is_object());
        assert_eq!(dup.input_schema["required"], json!([]), "locationId defaults to the configured one");
        let sms = c.iter().find(|i| i.id == "sms.send").unwrap();
        assert_eq!(sms.operation.api, Api::Dialpad);
        assert!(sms.input_schema["properties"]["body"]["properties"]["text"].is_object(), "{}", sms.input_schema);
        assert!(c.iter().all(|i| i.missing_scopes.is_empty()));
    }

    #[test]
    fn operations_whose_grant_is_missing_are_listed_as_unavailable() {
        let config = Config::from_json(r#"{"location_id":"L","scopes":["contacts.readonly"],"dialpad_scopes":["calls:list"]}"#).unwrap();
        let c = catalog(Some(&config));
        let missing = |id: &str| c.iter().find(|i| i.id == id).unwrap().missing_scopes.clone();
        assert_eq!(missing("get-contact"), Vec::<&str>::new());
        assert_eq!(missing("create-note"), ["contacts.write"]);
        assert_eq!(missing("send-a-new-message"), ["conversations/message.write"]);
        assert_eq!(missing("screen_pop.initiate"), ["screen_pop"]);
        assert_eq!(missing("call.list"), Vec::<&str>::new());
        assert_eq!(missing("contacts.get"), Vec::<&str>::new(), "the Dialpad credential alone");
        assert_eq!(
            plan_invocation("screen_pop.initiate", r#"{"id":1,"body":{"screen_pop_uri":"https://x"}}"#, &config).unwrap_err(),
            SyncError::MissingScope(vec!["screen_pop".into()])
        );
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
        // Dialpad: an int64 id as a number or as text, no location added.
        let plan = plan_invocation("accesscontrolpolicies.get", r#"{"id":5836811270946816}"#, &both()).unwrap();
        assert_eq!(plan.steps[0].display_path(), "/api/v2/accesscontrolpolicies/5836811270946816");
        let plan = plan_invocation("accesscontrolpolicies.get", r#"{"id":"5836811270946816"}"#, &both()).unwrap();
        assert_eq!(plan.steps[0].display_path(), "/api/v2/accesscontrolpolicies/5836811270946816");
    }

    #[test]
    fn bad_input_is_refused_with_paths_before_any_request() {
        let err = plan_invocation("create-note", r#"{"body":{"text":"x"},"colour":1}"#, &both()).unwrap_err();
        let SyncError::InvalidInput(problems) = err else { panic!("{err:?}") };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["/contactId", "/body/text", "/body/body", "/colour"]);
        assert_eq!(problems[1].message, "property text should not exist (NotesDTO does not declare it)");
        assert!(matches!(plan_invocation("no-such-op", "{}", &both()), Err(SyncError::UnknownOperation(_))));
        assert!(matches!(plan_invocation("get-contact", "[1]", &both()), Err(SyncError::InvalidInput(_))));
        let err = plan_invocation("update-task", r#"{"contactId":"c","taskId":"t","body":{"completed":"yes"}}"#, &both()).unwrap_err();
        assert!(matches!(err, SyncError::InvalidInput(ref p) if p[0].path == "/body/completed"), "{err:?}");
        // Nested and enumerated values are checked too.
        let err = plan_invocation("accesscontrolpolicies.get", r#"{"id":"abc"}"#, &both()).unwrap_err();
        assert!(matches!(err, SyncError::InvalidInput(ref p) if p[0].path == "/id" && p[0].message == "must be an integer"), "{err:?}");
        let err = plan_invocation("sms.send", r#"{"body":{"text":"hi","infer_country_code":"yes"}}"#, &both()).unwrap_err();
        assert!(matches!(err, SyncError::InvalidInput(ref p) if p[0].path == "/body/infer_country_code"), "{err:?}");
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
