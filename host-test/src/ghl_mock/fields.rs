//! Free functions on the stored JSON records: field access, list union and difference,
//! merging, the derived name fields, `dateAdded` in milliseconds.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

pub(super) fn belongs_to(item: &Map<String, Value>, contact_id: &str) -> bool {
    str_field(item, "contactId") == Some(contact_id)
}

pub(super) fn str_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

/// The string items of an array property of a request body (validation has checked it is one).
pub(super) fn string_items(body: &Map<String, Value>, name: &str) -> Vec<Value> {
    body.get(name).and_then(Value::as_array).into_iter().flatten().filter(|v| v.is_string()).cloned().collect()
}

/// A stored list field of a contact (`tags`, `followers`), empty when absent.
pub(super) fn contact_list(contact: &Map<String, Value>, name: &str) -> Vec<Value> {
    match contact.get(name) {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    }
}

/// `old` plus the values of `given` it lacks (each once); returns the union and what was added.
pub(super) fn union(old: &[Value], given: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let mut all = old.to_vec();
    let mut added = Vec::new();
    for value in given {
        if !all.contains(value) {
            all.push(value.clone());
            added.push(value.clone());
        }
    }
    (all, added)
}

/// `old` without the values of `given`; returns what is left and what was removed.
pub(super) fn difference(old: &[Value], given: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let (removed, kept): (Vec<Value>, Vec<Value>) = old.iter().cloned().partition(|v| given.contains(v));
    (kept, removed)
}

/// Appends `value` to the array at `map[key]`, creating it.
pub(super) fn push_to(map: &mut Map<String, Value>, key: &str, value: Value) {
    if let Value::Array(list) = map.entry(key.to_owned()).or_insert_with(|| json!([])) {
        list.push(value);
    }
}

/// Copies `fields` over `target`. A `null` removes the field: the mock never emits nulls, and
/// sending `null` for a nullable property clears it.
pub(super) fn merge(target: &mut Map<String, Value>, fields: Map<String, Value>) {
    for (key, value) in fields {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

/// `name` is first + " " + last (whichever are present; an explicitly sent `name` survives only
/// when neither is set), plus the lowercase copies the real API returns for searching.
pub(super) fn refresh_derived(contact: &mut Map<String, Value>) {
    let first = str_field(contact, "firstName").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let last = str_field(contact, "lastName").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let mut set_or_remove = |key: &str, value: Option<String>| match value {
        Some(v) => {
            contact.insert(key.to_owned(), Value::String(v));
        }
        None => {
            contact.remove(key);
        }
    };
    set_or_remove("firstNameLowerCase", first.as_deref().map(str::to_lowercase));
    set_or_remove("lastNameLowerCase", last.as_deref().map(str::to_lowercase));
    if first.is_some() || last.is_some() {
        let name = [first, last].into_iter().flatten().collect::<Vec<_>>().join(" ");
        contact.insert("name".into(), Value::String(name));
    }
    let full_lower = str_field(contact, "name").map(str::to_lowercase);
    let email_lower = str_field(contact, "email").map(str::to_lowercase);
    match full_lower {
        Some(v) => contact.insert("fullNameLowerCase".into(), Value::String(v)),
        None => contact.remove("fullNameLowerCase"),
    };
    match email_lower {
        Some(v) => contact.insert("emailLowerCase".into(), Value::String(v)),
        None => contact.remove("emailLowerCase"),
    };
}

/// `dateAdded` in epoch milliseconds (0 when missing or unparsable), the deprecated list's
/// `startAfter` and the first element of a search cursor.
pub(super) fn date_added_ms(contact: &Map<String, Value>) -> u64 {
    str_field(contact, "dateAdded")
        .and_then(|d| humantime::parse_rfc3339_weak(d).ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}
