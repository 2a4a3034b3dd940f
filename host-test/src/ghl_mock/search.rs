//! `POST /contacts/search`: free text, filters, sort order and the search body's validation.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::fields::str_field;
use super::reply::MSG_NUMBER;

const OPERATORS: &[&str] = &["eq", "not_eq", "contains", "not_contains", "exists", "not_exists", "range"];
const MAX_PAGE_LIMIT: u64 = 500;

/// Free text: a case-insensitive substring of the name, first/last name or email, or (when the
/// text has digits and no letters) a digit substring of the phone, so `312 555` finds `+1312555…`.
pub(super) fn matches_text(contact: &Map<String, Value>, text: &str) -> bool {
    let text = text.trim().to_lowercase();
    if text.is_empty() {
        return true;
    }
    let in_fields = ["name", "firstName", "lastName", "email", "phone"].iter().filter_map(|f| str_field(contact, f)).any(|v| v.to_lowercase().contains(&text));
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let phone_digits = || -> String { str_field(contact, "phone").unwrap_or_default().chars().filter(char::is_ascii_digit).collect() };
    in_fields || (!digits.is_empty() && !text.chars().any(char::is_alphabetic) && phone_digits().contains(&digits))
}

/// A contact's value for a filter/sort field: a top-level property, `customFields.<id>` (the
/// custom field's value), or a dotted path into nested objects.
pub(super) fn lookup<'a>(contact: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    if let Some(value) = contact.get(field) {
        return Some(value);
    }
    if let Some(id) = field.strip_prefix("customFields.").or_else(|| field.strip_prefix("customField.")) {
        return contact.get("customFields")?.as_array()?.iter().find(|f| f["id"] == id)?.get("value");
    }
    let mut segments = field.split('.');
    let mut current = contact.get(segments.next()?)?;
    for segment in segments {
        current = current.get(segment)?;
    }
    Some(current)
}

/// Strings compare case-insensitively; numbers and booleans by their JSON text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// Every scalar the field holds: the value itself, or each item of an array (`tags`).
fn scalars(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(value) => scalar_text(value).into_iter().collect(),
        None => Vec::new(),
    }
}

pub(super) fn filter_matches(contact: &Map<String, Value>, filter: &Value) -> bool {
    if let Some(group) = filter.get("group").and_then(Value::as_str) {
        let mut inner = filter["filters"].as_array().into_iter().flatten();
        return if group.eq_ignore_ascii_case("or") { inner.any(|f| filter_matches(contact, f)) } else { inner.all(|f| filter_matches(contact, f)) };
    }
    let field = lookup(contact, filter["field"].as_str().unwrap_or_default());
    let have = scalars(field);
    // A list value (`"value": ["a", "b"]`) matches any of its items.
    let wanted = scalars(filter.get("value"));
    let eq = || have.iter().any(|h| wanted.contains(h));
    let contains = || have.iter().any(|h| wanted.iter().any(|w| h.contains(w.as_str())));
    match filter["operator"].as_str().unwrap_or_default() {
        "eq" => eq(),
        "not_eq" => !eq(),
        "contains" => contains(),
        "not_contains" => !contains(),
        "exists" => is_present(field),
        "not_exists" => !is_present(field),
        "range" => in_range(field, &filter["value"]),
        _ => false,
    }
}

/// `range` takes `{gt|gte|lt|lte: bound}`; numbers compare as numbers, anything else as text
/// (so ISO dates compare chronologically).
fn in_range(field: Option<&Value>, bounds: &Value) -> bool {
    let Some(field) = field.filter(|f| !f.is_null()) else {
        return false;
    };
    [("gt", &[Ordering::Greater][..]), ("gte", &[Ordering::Greater, Ordering::Equal]), ("lt", &[Ordering::Less]), ("lte", &[Ordering::Less, Ordering::Equal])]
        .iter()
        .all(|(name, allowed)| bounds.get(*name).is_none_or(|bound| allowed.contains(&compare_sort_keys(Some(field), Some(bound)))))
}

/// Sort order of two field values: numbers numerically, everything else as lowercase text,
/// numbers before text, missing values last.
pub(super) fn compare_sort_keys(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => {
                let text = |v: &Value| scalar_text(v).unwrap_or_else(|| v.to_string());
                text(a).cmp(&text(b))
            }
        },
    }
}

/// The search body's rules, in class-validator's wording.
pub(super) fn check_search(body: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    match body.get("locationId") {
        None | Some(Value::Null) => problems.push("locationId should not be empty".to_owned()),
        Some(Value::String(s)) if s.is_empty() => problems.push("locationId should not be empty".to_owned()),
        Some(Value::String(_)) => {}
        Some(_) => problems.push("locationId must be a string".to_owned()),
    }
    match body.get("pageLimit") {
        None | Some(Value::Null) => problems.push("pageLimit should not be empty".to_owned()),
        Some(value) => problems.extend(check_integer("pageLimit", value, Some(MAX_PAGE_LIMIT))),
    }
    if let Some(page) = body.get("page").filter(|v| !v.is_null()) {
        problems.extend(check_integer("page", page, None));
    }
    match body.get("query") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => problems.push("query must be a string".to_owned()),
    }
    match body.get("filters") {
        None | Some(Value::Null) => {}
        Some(Value::Array(filters)) => {
            for filter in filters {
                check_filter(filter, &mut problems);
            }
        }
        Some(_) => problems.push("filters must be an array".to_owned()),
    }
    match body.get("sort") {
        None | Some(Value::Null) => {}
        Some(Value::Array(rules)) => {
            for rule in rules {
                if rule["field"].as_str().is_none_or(str::is_empty) {
                    problems.push("sort.field should not be empty".to_owned());
                }
                if !matches!(rule["direction"].as_str(), Some("asc" | "desc")) {
                    problems.push("sort.direction must be one of the following values: asc, desc".to_owned());
                }
            }
        }
        Some(_) => problems.push("sort must be an array".to_owned()),
    }
    match body.get("searchAfter") {
        None | Some(Value::Null) | Some(Value::Array(_)) => {}
        Some(_) => problems.push("searchAfter must be an array".to_owned()),
    }
    problems
}

/// A positive integer, at most `max`.
fn check_integer(name: &str, value: &Value, max: Option<u64>) -> Vec<String> {
    match value.as_f64() {
        None => vec![format!("{name} {MSG_NUMBER}")],
        Some(n) if n.fract() != 0.0 => vec![format!("{name} must be an integer number")],
        Some(n) if n < 1.0 => vec![format!("{name} must not be less than 1")],
        Some(n) if max.is_some_and(|max| n > max as f64) => {
            vec![format!("{name} must not be greater than {}", max.unwrap_or_default())]
        }
        Some(_) => Vec::new(),
    }
}

fn check_filter(filter: &Value, problems: &mut Vec<String>) {
    let Some(filter) = filter.as_object() else {
        problems.push("each value in filters must be an object".to_owned());
        return;
    };
    if let Some(group) = filter.get("group") {
        if !matches!(group.as_str(), Some("AND" | "OR")) {
            problems.push("filters.group must be one of the following values: AND, OR".to_owned());
        }
        match filter.get("filters") {
            Some(Value::Array(inner)) => inner.iter().for_each(|f| check_filter(f, problems)),
            _ => problems.push("filters.filters must be an array".to_owned()),
        }
        return;
    }
    if str_field(filter, "field").is_none_or(str::is_empty) {
        problems.push("filters.field should not be empty".to_owned());
    }
    match str_field(filter, "operator") {
        Some(op) if OPERATORS.contains(&op) => {
            let needs_value = !matches!(op, "exists" | "not_exists");
            if needs_value && filter.get("value").is_none_or(Value::is_null) {
                problems.push("filters.value should not be empty".to_owned());
            }
            if op == "range" && !filter.get("value").is_some_and(Value::is_object) {
                problems.push("filters.value must be an object".to_owned());
            }
        }
        _ => problems.push(format!("filters.operator must be one of the following values: {}", OPERATORS.join(", "))),
    }
}
