//! Reading request bodies as the spec's schemas define them: a JSON object of known fields,
//! each of its type (every field is `nullable` in the spec: `null` reads as absent). Anything
//! else is a 400 naming the field, as Dialpad refuses bad input.

use super::reply::{error, Reply};
use axum::http::{header, HeaderMap};
use serde_json::{Map, Value};

/// The body as a JSON object: `application/json` (else 415, the only media type the spec
/// declares) holding an object (else 400).
pub(super) fn object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if !is_json(headers) {
        return Err(error(415, "Content-Type must be application/json"));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(400, "the body must be a JSON object")),
    }
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// Refuses a field the schema does not have (the mock's choice: it catches a client that
/// sends a misspelt or outdated field, which Dialpad might silently ignore).
pub(super) fn known(body: &Map<String, Value>, allowed: &[&str], schema: &str) -> Result<(), Reply> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(error(400, &format!("{unknown} is not a field of {schema} (fields: {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn present<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

pub(super) fn string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, Reply> {
    match present(body, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(error(400, &format!("{name} must be a string, not {other}"))),
    }
}

pub(super) fn boolean(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, Reply> {
    match present(body, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(error(400, &format!("{name} must be a boolean, not {other}"))),
    }
}

/// An int64 field: a JSON integer (the schema's type; a string of digits is refused).
pub(super) fn integer(body: &Map<String, Value>, name: &str) -> Result<Option<i64>, Reply> {
    match present(body, name) {
        None => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(other) => Err(error(400, &format!("{name} must be an integer, not {other}"))),
    }
}

/// A string field restricted to `allowed`.
pub(super) fn one_of(body: &Map<String, Value>, name: &str, allowed: &[&str]) -> Result<Option<String>, Reply> {
    match string(body, name)? {
        Some(value) if !allowed.contains(&value.as_str()) => Err(error(400, &format!("{name} must be one of {}, not {value:?}", allowed.join(", ")))),
        value => Ok(value),
    }
}

/// A list of strings, each restricted to `allowed`.
pub(super) fn list_of(body: &Map<String, Value>, name: &str, allowed: &[&str]) -> Result<Option<Vec<String>>, Reply> {
    let Some(value) = present(body, name) else {
        return Ok(None);
    };
    let items = value.as_array().ok_or_else(|| error(400, &format!("{name} must be a list, not {value}")))?;
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(s) if allowed.contains(&s) => Ok(s.to_string()),
            _ => Err(error(400, &format!("{name} has {item}, which is not one of {}", allowed.join(", ")))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A path id: the spec's path ids are int64.
pub(super) fn path_id(id: &str) -> Result<i64, Reply> {
    id.parse().map_err(|_| error(400, &format!("the id must be an integer, not {id:?}")))
}
