//! Request checks of the operations routed through `contacts_api::DIALPAD`: the body against
//! the operation's schema in the table (its fields, the required ones, each one's type), and
//! the typed query parameters. Every problem is a 400 naming the field, as Dialpad refuses bad
//! input; `null` reads as absent (every field of these schemas is nullable).

use axum::http::HeaderMap;
use contacts_api::{Body, Operation, ValueKind};
use serde_json::{Map, Value};

use super::fields::{self, known};
use super::reply::{error, Params, Reply};

/// The body of `op`, checked against its schema.
pub(super) fn body(op: &Operation, headers: &HeaderMap, raw: &[u8]) -> Result<Map<String, Value>, Reply> {
    let body = fields::object(headers, raw)?;
    if let Some(rules) = op.body {
        fits(op, rules, &body)?;
    }
    Ok(body)
}

/// `body` against `rules`: no field outside the schema, the required ones present (and not
/// blank), each of its type. Lists are lists of strings (all of these schemas' lists are).
/// Integers are JSON integers, as the schema types them (a string of digits is refused).
pub(super) fn fits(op: &Operation, rules: &Body, body: &Map<String, Value>) -> Result<(), Reply> {
    let properties = rules.properties(op.api);
    let names: Vec<&str> = properties.iter().map(|p| p.name).collect();
    let schema = rules.schema.rsplit('.').next().unwrap_or(rules.schema);
    known(body, &names, schema)?;
    for property in &properties {
        let name = property.name;
        // A property of several types (or any) is the real server's to judge.
        let Some(kind) = property.kind(op.api) else { continue };
        let value = match body.get(name).filter(|v| !v.is_null()) {
            None if property.required => return Err(error(400, &format!("{name} is required"))),
            Some(Value::String(s)) if property.required && s.trim().is_empty() => return Err(error(400, &format!("{name} is required"))),
            None => continue,
            Some(value) => value,
        };
        let fits = match kind {
            ValueKind::String => value.is_string(),
            ValueKind::Number => value.as_i64().is_some(),
            ValueKind::Boolean => value.is_boolean(),
            ValueKind::Array => value.as_array().is_some_and(|items| items.iter().all(Value::is_string)),
            ValueKind::Object => value.is_object(),
        };
        if !fits {
            let wanted = match kind {
                ValueKind::String => "a string",
                ValueKind::Number => "an integer",
                ValueKind::Boolean => "a boolean",
                ValueKind::Array => "a list of strings",
                ValueKind::Object => "an object",
            };
            return Err(error(400, &format!("{name} must be {wanted}, not {value}")));
        }
    }
    Ok(())
}

/// The query parameters the operation types: booleans and integers must parse.
pub(super) fn query(op: &Operation, params: &Params) -> Result<(), Reply> {
    for param in op.query() {
        let Some(value) = params.get(param.name) else { continue };
        let Some(kind) = param.kind() else { continue };
        let fits = match kind {
            ValueKind::Boolean => matches!(value, "true" | "false"),
            ValueKind::Number => value.parse::<i64>().is_ok(),
            _ => true,
        };
        if !fits {
            return Err(error(400, &format!("{} must be {}, not {value:?}", param.name, kind.json_schema_type())));
        }
    }
    Ok(())
}

/// `+` and 2 to 15 digits, the first not 0: "The phone number must be in e164 format".
pub(super) fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'))
}

/// The "[single-line only]" fields: a line break → 400.
pub(super) fn single_line(body: &Map<String, Value>, names: &[&str]) -> Result<(), Reply> {
    match names.iter().find(|name| body.get(**name).and_then(Value::as_str).is_some_and(|s| s.contains(['\n', '\r']))) {
        Some(name) => Err(error(400, &format!("{name} must be a single line"))),
        None => Ok(()),
    }
}
