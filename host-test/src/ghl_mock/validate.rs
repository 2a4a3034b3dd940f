//! Request parsing and validation (rules from `contacts_api::OPERATIONS`).

use contacts_api::{Body, Operation, ValueKind};
use serde_json::{Map, Value};

use super::reply::{unprocessable, Reply, MSG_NOT_JSON, MSG_NUMBER};

/// Splits a raw query string into decoded pairs, decoding values like HighLevel does (`+` is a
/// space), so an un-encoded `+1312…` phone number does not match, exactly as in production.
pub(super) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (contacts_api::decode_query_value(key), contacts_api::decode_query_value(value))
        })
        .collect()
}

pub(super) fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// An empty body counts as `{}` (Express's JSON parser does the same), so a missing body reports
/// missing required properties rather than a parse error.
pub(super) fn parse_body(raw: &[u8]) -> Result<Map<String, Value>, Reply> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(_) => Err(unprocessable(vec!["request body must be a JSON object".to_owned()])),
        Err(_) => Err(Reply::error(400, MSG_NOT_JSON)),
    }
}

/// The JSON type of a value, as the table names types; `None` for `null`.
pub(super) fn kind_of(value: &Value) -> Option<ValueKind> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(ValueKind::Boolean),
        Value::Number(_) => Some(ValueKind::Number),
        Value::String(_) => Some(ValueKind::String),
        Value::Array(_) => Some(ValueKind::Array),
        Value::Object(_) => Some(ValueKind::Object),
    }
}

/// class-validator's wording, which HighLevel's NestJS server returns verbatim.
pub(super) fn violation(kind: ValueKind, property: &str) -> String {
    match kind {
        ValueKind::String => format!("{property} must be a string"),
        ValueKind::Boolean => format!("{property} must be a boolean value"),
        ValueKind::Number => format!("{property} {MSG_NUMBER}"),
        ValueKind::Array => format!("{property} must be an array"),
        ValueKind::Object => format!("{property} must be an object"),
    }
}

/// Required query parameters must be non-blank; numeric and boolean ones must parse.
pub(super) fn check_query(op: &Operation, query: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for param in op.query() {
        match query_value(query, param.name).map(str::trim) {
            None | Some("") if param.required => problems.push(format!("{} should not be empty", param.name)),
            None | Some("") => {}
            Some(value) => {
                let Some(kind) = param.kind() else { continue };
                let fits = match kind {
                    ValueKind::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
                    ValueKind::Boolean => matches!(value, "true" | "false"),
                    _ => true,
                };
                if !fits {
                    problems.push(violation(kind, param.name));
                }
            }
        }
    }
    problems
}

/// Path parameters the spec leaves undeclared: `{type}` of the bulk-tags operation is `add` or
/// `remove` (its description and `removeAllTags` say so).
pub(super) fn check_path(op: &Operation, params: &[(&'static str, String)]) -> Vec<String> {
    let bulk_type = params.iter().find(|(name, _)| *name == "type").map(|(_, v)| v.as_str());
    match (op.id, bulk_type) {
        ("create-association", Some("add" | "remove")) => Vec::new(),
        ("create-association", _) => vec!["type must be one of the following values: add, remove".to_owned()],
        _ => Vec::new(),
    }
}

/// Every problem with `body`, one message each, in HighLevel's wording: properties the schema
/// does not list (the server's whitelist), required ones missing or empty, wrong JSON types.
/// An open schema (the spec lists no properties) passes anything.
pub(super) fn check_body(op: &Operation, rules: &Body, body: &Map<String, Value>) -> Vec<String> {
    let properties = rules.properties(op.api);
    if properties.is_empty() {
        return Vec::new();
    }
    let mut problems: Vec<String> =
        body.keys().filter(|key| !properties.iter().any(|p| p.name == key.as_str())).map(|key| format!("property {key} should not exist")).collect();
    for property in &properties {
        let empty = format!("{} should not be empty", property.name);
        match body.get(property.name) {
            None if property.required => problems.push(empty),
            Some(Value::Null) if property.required && !property.nullable() => problems.push(empty),
            Some(Value::String(s)) if property.required && s.is_empty() => problems.push(empty),
            // Optional properties accept null (class-validator's @IsOptional): it clears them.
            None | Some(Value::Null) => {}
            Some(value) => {
                if !kind_of(value).is_some_and(|kind| property.accepts(op.api, kind)) {
                    problems.push(violation(property.kind(op.api).unwrap_or(ValueKind::Object), property.name));
                }
            }
        }
    }
    problems
}
