//! One valid example input for every operation of an OpenAPI 3.0 spec, made from the spec
//! itself. The conformance test `prism_every_operation` invokes every action with one through
//! the real component and host, against Prism serving the spec, to show that every operation of
//! HighLevel's Contacts, Conversations and Users specs and of Dialpad's spec is sent as the spec
//! wants it.
//!
//! An input is in the plugin's action input format: a JSON object of the operation's path and
//! query parameters by name, and its request body under `"body"` (header parameters such as
//! `Version` are the client's business, not the caller's). A `multipart/form-data` body is an
//! object of form fields: a string, an array of strings (the field repeated), or a file
//! `{"filename", "content_type", "content"}`.
//!
//! Each value is made from its schema: the first `enum` member; else the schema's `example` or
//! `default`, when it satisfies the schema (some of the specs' examples do not); else a value
//! made for the type and `format`, within the bounds. Objects are built property by property,
//! optional properties included; `allOf` is merged, and of `oneOf`/`anyOf` the first alternative
//! whose value the whole schema accepts is taken. Every value is checked against its schema by
//! `Spec::accepts`, a validator of the part of JSON Schema these specs use: a keyword outside
//! it panics, so that a spec using one is noticed rather than half-checked. A value nothing can
//! satisfy (a `oneOf` whose alternatives all accept the same objects) leaves an optional property
//! or parameter out, and a required one panics.

use serde_json::{json, Map, Value};

/// For every operation of the spec, in the spec's order: its `operationId` and an input that the
/// spec accepts.
pub fn example_inputs(spec_json: &str) -> Vec<(String, Value)> {
    let spec = Spec::parse(spec_json);
    spec.operations().iter().map(|op| (op.id.to_string(), spec.example_input(op))).collect()
}

/// A parsed spec, and the file HighLevel's specs `$ref` as `../common/common-schemas.json`.
struct Spec {
    root: Value,
    common: Value,
}

struct Operation<'a> {
    id: &'a str,
    /// The path item's parameters, overridden by the operation's own (by name and location).
    params: Vec<Param<'a>>,
    body: Option<Body<'a>>,
}

struct Param<'a> {
    name: &'a str,
    /// `path`, `query` or `header`.
    location: &'a str,
    required: bool,
    schema: Value,
}

struct Body<'a> {
    schema: &'a Value,
    /// `multipart/form-data` rather than `application/json`.
    multipart: bool,
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Keywords [`Spec::accepts`] does not check: a schema using one panics instead.
const UNSUPPORTED: &[&str] = &[
    "pattern",
    "not",
    "multipleOf",
    "patternProperties",
    "propertyNames",
    "dependencies",
    "minProperties",
    "maxProperties",
    "contains",
    "if",
    "discriminator",
];

impl Spec {
    fn parse(spec_json: &str) -> Spec {
        let root = serde_json::from_str(spec_json).unwrap_or_else(|e| panic!("the spec is not JSON: {e}"));
        let common = serde_json::from_str(contacts_api::COMMON_SCHEMAS_JSON).expect("common-schemas.json is JSON");
        Spec { root, common }
    }

    /// What a `$ref` points at: in this spec (`#/…`) or in the common schemas.
    fn lookup(&self, reference: &str) -> &Value {
        let (document, pointer) = match reference.split_once('#') {
            Some(("", pointer)) => (&self.root, pointer),
            Some(("../common/common-schemas.json", pointer)) => (&self.common, pointer),
            _ => panic!("$ref {reference}: only this spec and ../common/common-schemas.json are known"),
        };
        document.pointer(pointer).unwrap_or_else(|| panic!("$ref {reference} points at nothing"))
    }

    /// `value`, or what it refers to if it is a `$ref` (followed to the end).
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            value = self.lookup(reference);
        }
        value
    }

    fn operations(&self) -> Vec<Operation<'_>> {
        let paths = self.root["paths"].as_object().expect("the spec has paths");
        let mut operations = Vec::new();
        for (path, item) in paths {
            let item = self.resolve(item);
            for method in METHODS.iter().copied().filter(|m| item.get(*m).is_some()) {
                let op = &item[method];
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                let mut params: Vec<Param> = Vec::new();
                for declared in item["parameters"].as_array().into_iter().chain(op["parameters"].as_array()).flatten() {
                    let param = self.param(id, self.resolve(declared));
                    params.retain(|p| (p.name, p.location) != (param.name, param.location));
                    params.push(param);
                }
                // Some of HighLevel's operations leave a parameter of their path undeclared
                // (`/users/{userId}`): it is a required string all the same.
                for name in path.split('{').skip(1).filter_map(|rest| rest.split_once('}')).map(|(name, _)| name) {
                    if !params.iter().any(|p| (p.name, p.location) == (name, "path")) {
                        params.push(Param { name, location: "path", required: true, schema: json!({"type": "string", "minLength": 1}) });
                    }
                }
                let body = op.get("requestBody").map(|body| {
                    let content = &self.resolve(body)["content"];
                    match (content.get("application/json"), content.get("multipart/form-data")) {
                        (Some(json), _) => Body { schema: &json["schema"], multipart: false },
                        (None, Some(form)) => Body { schema: &form["schema"], multipart: true },
                        _ => panic!("{id}: a body of {content} is neither application/json nor multipart/form-data"),
                    }
                });
                operations.push(Operation { id, params, body });
            }
        }
        operations
    }

    fn param<'a>(&self, operation_id: &str, declared: &'a Value) -> Param<'a> {
        let name = declared["name"].as_str().unwrap_or_else(|| panic!("{operation_id}: a parameter without a name"));
        let location = declared["in"].as_str().unwrap_or_default();
        assert!(matches!(location, "path" | "query" | "header"), "{operation_id}: parameter {name} is in {location:?}");
        // Other styles serialize differently from what `raw_request` sends (none of the specs has one).
        let style = declared["style"].as_str().unwrap_or(if location == "query" { "form" } else { "simple" });
        let explode = declared["explode"].as_bool().unwrap_or(style == "form");
        assert!(
            declared.get("content").is_none() && (style, explode) == (if location == "query" { ("form", true) } else { ("simple", false) }),
            "{operation_id}: parameter {name} has a style raw_request does not send"
        );
        let mut schema = declared["schema"].clone();
        if let (Some(example), Some(fields)) = (declared.get("example"), schema.as_object_mut()) {
            fields.entry("example").or_insert_with(|| example.clone());
        }
        // An empty segment would not route to the operation at all.
        if location == "path" {
            let min = schema["minLength"].as_u64().unwrap_or(0).max(1);
            if let Some(fields) = schema.as_object_mut() {
                fields.insert("minLength".into(), min.into());
            }
        }
        Param { name, location, required: declared["required"].as_bool().unwrap_or(location == "path"), schema }
    }

    fn example_input(&self, op: &Operation) -> Value {
        let mut input = Map::new();
        for param in op.params.iter().filter(|p| p.location != "header") {
            match self.example(&param.schema, &mut Vec::new()) {
                Some(value) => {
                    input.insert(param.name.to_string(), value);
                }
                None if param.required => panic!("{}: no value satisfies the schema of required parameter {}: {}", op.id, param.name, param.schema),
                // An optional parameter whose schema nothing satisfies (`type: any`) is left out.
                None => {}
            }
        }
        if let Some(body) = &op.body {
            let value = self.example(body.schema, &mut Vec::new()).unwrap_or_else(|| panic!("{}: no value satisfies the body's schema", op.id));
            input.insert("body".into(), if body.multipart { self.form_fields(op.id, body.schema, value) } else { value });
        }
        Value::Object(input)
    }

    /// A body object as form fields: numbers and booleans as text, a `format: binary` string as
    /// a file.
    fn form_fields(&self, operation_id: &str, schema: &Value, body: Value) -> Value {
        let merged = self.merged(schema);
        let Value::Object(fields) = body else { panic!("{operation_id}: a form body is an object") };
        let field = |name: &str, value: Value| match value {
            Value::String(content) if self.resolve(&merged["properties"][name])["format"] == "binary" => {
                json!({"filename": format!("{name}.txt"), "content_type": "text/plain", "content": content})
            }
            Value::String(_) => value,
            Value::Number(_) | Value::Bool(_) => Value::String(value.to_string()),
            _ => panic!("{operation_id}: form field {name} is not a scalar: {value}"),
        };
        Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| {
                    let value = match value {
                        Value::Array(items) => Value::Array(items.into_iter().map(|item| field(&name, item)).collect()),
                        value => field(&name, value),
                    };
                    (name, value)
                })
                .collect(),
        )
    }

    /// A value `schema` accepts, or `None` when none can be made. `seen` holds the `$ref`s being
    /// expanded, so a recursive schema ends (the recursive property is left out).
    fn example(&self, schema: &Value, seen: &mut Vec<String>) -> Option<Value> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if seen.iter().any(|r| r == reference) {
                return None;
            }
            seen.push(reference.to_string());
            let value = self.example(self.lookup(reference), seen);
            seen.pop();
            return value;
        }
        let value = if schema.get("allOf").is_some() {
            self.example(&self.merged(schema), seen)
        } else if let Some(alternatives) = schema.get("oneOf").or_else(|| schema.get("anyOf")) {
            let alternatives = alternatives.as_array().expect("oneOf and anyOf are arrays");
            alternatives.iter().find_map(|alternative| self.example(alternative, seen).filter(|value| self.accepts(schema, value)))
        } else {
            self.made(schema, seen)
        };
        value.filter(|value| self.accepts(schema, value))
    }

    /// [`Spec::example`] of a schema without `$ref`, `allOf`, `oneOf` or `anyOf` at its top.
    fn made(&self, schema: &Value, seen: &mut Vec<String>) -> Option<Value> {
        if let Some(members) = schema.get("enum").and_then(Value::as_array) {
            return members.iter().find(|member| self.accepts(schema, member)).cloned();
        }
        let kind = kind(schema);
        if kind == Some("object") && schema.get("properties").is_some() {
            return self.object(schema, seen);
        }
        // `example: null` says nothing about what a non-null value looks like.
        let given = ["example", "default"].iter().filter_map(|key| schema.get(*key)).find(|value| !value.is_null() && self.accepts(schema, value));
        if let Some(given) = given {
            return Some(given.clone());
        }
        match kind? {
            "object" => Some(json!({})),
            "array" => {
                let item = self.example(schema.get("items")?, seen)?;
                let count = schema["minItems"].as_u64().unwrap_or(1).max(1);
                Some(Value::Array((0..count).map(|_| item.clone()).collect()))
            }
            "string" => Some(Value::String(made_string(schema))),
            "integer" | "number" => Some(made_number(schema)),
            "boolean" => Some(Value::Bool(true)),
            _ => None,
        }
    }

    /// Every property that can be given a value; failing that, only the required ones.
    fn object(&self, schema: &Value, seen: &mut Vec<String>) -> Option<Value> {
        let required: Vec<&str> = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let properties = schema["properties"].as_object().expect("properties is an object");
        let mut every = Map::new();
        for (name, property) in properties {
            let optional = !required.contains(&name.as_str());
            // Declared an object but shown as a scalar (`dateOfBirth: "1990-09-25"`): the spec
            // contradicts itself, and `{}`, though valid, is not what the server takes.
            let resolved = self.resolve(property);
            let contradicted = kind(resolved) == Some("object")
                && resolved.get("properties").is_none()
                && resolved.get("example").is_some_and(|example| !example.is_object() && !example.is_null());
            if optional && contradicted {
                continue;
            }
            match self.example(property, seen) {
                Some(value) => {
                    every.insert(name.clone(), value);
                }
                None if !optional => return None,
                None => {}
            }
        }
        if let Some(missing) = required.iter().find(|name| !every.contains_key(**name)) {
            panic!("required property {missing} is not among the properties of {schema}");
        }
        let every = Value::Object(every);
        if self.accepts(schema, &every) {
            return Some(every);
        }
        let only_required: Map<String, Value> =
            every.as_object()?.iter().filter(|(name, _)| required.contains(&name.as_str())).map(|(n, v)| (n.clone(), v.clone())).collect();
        Some(Value::Object(only_required))
    }

    /// `schema` with its `allOf` members (and theirs) merged in: properties of the same name are
    /// combined with `allOf`, `required` lists joined, other keywords taken from the first that has them.
    fn merged(&self, schema: &Value) -> Value {
        let schema = self.resolve(schema);
        let Some(members) = schema.get("allOf").and_then(Value::as_array) else { return schema.clone() };
        let mut merged = schema.as_object().expect("a schema with allOf is an object").clone();
        merged.remove("allOf");
        for member in members {
            let Value::Object(member) = self.merged(member) else { panic!("an allOf member is not a schema") };
            for (key, value) in member {
                match (key.as_str(), merged.get_mut(&key)) {
                    ("properties", Some(Value::Object(properties))) => {
                        for (name, property) in value.as_object().expect("properties is an object") {
                            let combined = match properties.remove(name) {
                                Some(earlier) => json!({"allOf": [earlier, property]}),
                                None => property.clone(),
                            };
                            properties.insert(name.clone(), combined);
                        }
                    }
                    ("required", Some(Value::Array(required))) => required.extend(value.as_array().expect("required is an array").iter().cloned()),
                    (_, Some(_)) => {}
                    (_, None) => {
                        merged.insert(key, value);
                    }
                }
            }
        }
        Value::Object(merged)
    }

    /// Whether `schema` accepts `value`, as Prism's validator (Ajv, OpenAPI's `nullable`) judges
    /// it, for the keywords these specs use.
    fn accepts(&self, schema: &Value, value: &Value) -> bool {
        // OpenAPI 3.0 ignores the siblings of a `$ref`.
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return self.accepts(self.lookup(reference), value);
        }
        if let Some(keyword) = UNSUPPORTED.iter().find(|k| schema.get(**k).is_some()) {
            panic!("spec_inputs does not check `{keyword}` (in {schema})");
        }
        let all = |key: &str| schema[key].as_array().into_iter().flatten();
        if !all("allOf").all(|member| self.accepts(member, value)) {
            return false;
        }
        if schema.get("anyOf").is_some() && !all("anyOf").any(|member| self.accepts(member, value)) {
            return false;
        }
        if schema.get("oneOf").is_some() && all("oneOf").filter(|member| self.accepts(member, value)).count() != 1 {
            return false;
        }
        if schema.get("enum").is_some() && !all("enum").any(|member| member == value) {
            return false;
        }
        if value.is_null() {
            return schema["nullable"] == true || kind(schema).is_none();
        }
        if !kind(schema).is_none_or(|kind| is_kind(kind, value)) {
            return false;
        }
        match value {
            Value::String(text) => {
                let length = text.chars().count() as u64;
                schema["minLength"].as_u64().is_none_or(|min| length >= min)
                    && schema["maxLength"].as_u64().is_none_or(|max| length <= max)
                    && schema["format"].as_str().is_none_or(|format| string_format(format, text))
            }
            Value::Number(number) => {
                let x = number.as_f64().expect("a JSON number is finite");
                let bound =
                    |key: &str, exclusive: &str, ok: fn(f64, f64) -> bool, strictly: fn(f64, f64) -> bool| match (schema[key].as_f64(), &schema[exclusive]) {
                        (Some(limit), Value::Bool(true)) => strictly(x, limit),
                        (Some(limit), _) => ok(x, limit),
                        (None, Value::Number(limit)) => strictly(x, limit.as_f64().expect("a JSON number is finite")),
                        (None, _) => true,
                    };
                bound("minimum", "exclusiveMinimum", |x, l| x >= l, |x, l| x > l)
                    && bound("maximum", "exclusiveMaximum", |x, l| x <= l, |x, l| x < l)
                    && schema["format"].as_str().is_none_or(|format| number_format(format, x))
            }
            Value::Array(items) => {
                let count = items.len() as u64;
                let unique = schema["uniqueItems"] != true || items.iter().enumerate().all(|(i, item)| !items[..i].contains(item));
                schema["minItems"].as_u64().is_none_or(|min| count >= min)
                    && schema["maxItems"].as_u64().is_none_or(|max| count <= max)
                    && unique
                    && schema.get("items").is_none_or(|item_schema| items.iter().all(|item| self.accepts(item_schema, item)))
            }
            Value::Object(fields) => {
                let properties = schema["properties"].as_object();
                let required = all("required").filter_map(Value::as_str).all(|name| fields.contains_key(name));
                required
                    && fields.iter().all(|(name, field)| match properties.and_then(|p| p.get(name)) {
                        Some(property) => self.accepts(property, field),
                        None => match &schema["additionalProperties"] {
                            Value::Bool(allowed) => *allowed,
                            Value::Object(_) => self.accepts(&schema["additionalProperties"], field),
                            _ => true,
                        },
                    })
            }
            Value::Bool(_) | Value::Null => true,
        }
    }
}

/// The schema's `type`, or the one its keywords imply.
fn kind(schema: &Value) -> Option<&str> {
    schema["type"].as_str().or_else(|| {
        if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
            Some("object")
        } else if schema.get("items").is_some() {
            Some("array")
        } else {
            None
        }
    })
}

/// Whether `value` is of JSON Schema type `kind`; an unknown type name (`any`) accepts nothing.
fn is_kind(kind: &str, value: &Value) -> bool {
    match kind {
        "string" => value.is_string(),
        "integer" => value.as_f64().is_some_and(|x| x.fract() == 0.0),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

fn string_format(format: &str, text: &str) -> bool {
    match format {
        "date-time" => text.split_once(['T', 't']).is_some_and(|(date, time)| is_date(date) && is_time(time)),
        "date" => is_date(text),
        "email" => text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !local.contains(char::is_whitespace) && domain.split('.').count() > 1 && domain.split('.').all(is_dns_label)
        }),
        "uri" => text.split_once(':').is_some_and(|(scheme, rest)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.contains(char::is_whitespace)
        }),
        "byte" => {
            let data = text.trim_end_matches('=');
            text.len().is_multiple_of(4) && text.len() - data.len() <= 2 && data.chars().all(|c| c.is_ascii_alphanumeric() || "+/".contains(c))
        }
        "binary" | "password" => true,
        _ => panic!("spec_inputs does not check string format {format}"),
    }
}

fn number_format(format: &str, x: f64) -> bool {
    match format {
        "int32" => x.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&x),
        // Ajv checks JavaScript's safe integers: beyond 2^53 a number is no longer exact.
        "int64" => x.fract() == 0.0 && x.abs() <= 9_007_199_254_740_991.0,
        "float" | "double" => true,
        _ => panic!("spec_inputs does not check number format {format}"),
    }
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty() && !label.starts_with('-') && !label.ends_with('-') && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `YYYY-MM-DD`, a real day.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts[..] else { return false };
    let digits = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_digit());
    if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
        return false;
    }
    let (year, month, day): (u32, u32, u32) = (year.parse().unwrap_or(0), month.parse().unwrap_or(0), day.parse().unwrap_or(0));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12).contains(&month) && day >= 1 && day <= days[month as usize - 1]
}

/// RFC 3339's `HH:MM:SS[.frac](Z|±HH:MM)`: the offset is required.
fn is_time(text: &str) -> bool {
    let (clock, offset) = match text.find(['Z', 'z', '+', '-']) {
        Some(i) => text.split_at(i),
        None => return false,
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let two_digits = |s: &str, max: u32| s.len() == 2 && s.chars().all(|c| c.is_ascii_digit()) && s.parse::<u32>().is_ok_and(|n| n <= max);
    let hms: Vec<&str> = clock.split(':').collect();
    let offset_ok = matches!(offset, "Z" | "z") || offset[1..].split_once(':').is_some_and(|(hours, minutes)| two_digits(hours, 23) && two_digits(minutes, 59));
    matches!(hms[..], [h, m, s] if two_digits(h, 23) && two_digits(m, 59) && two_digits(s, 60))
        && !fraction.is_empty()
        && fraction.chars().all(|c| c.is_ascii_digit())
        && offset_ok
}

/// A string for the schema's `format`, padded or cut to its length bounds.
fn made_string(schema: &Value) -> String {
    let mut text = match schema["format"].as_str() {
        Some("date-time") => "2026-01-15T09:30:00Z",
        Some("date") => "2026-01-15",
        Some("email") => "ana.lima@example.com",
        Some("uri") => "https://example.com/",
        Some("byte") => "ZXhhbXBsZQ==",
        _ => "example",
    }
    .to_string();
    let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
    while text.chars().count() < min {
        text.push('x');
    }
    if let Some(max) = schema["maxLength"].as_u64() {
        text = text.chars().take(max as usize).collect();
    }
    text
}

/// 1, moved into the schema's bounds (the nearest whole number inside them).
fn made_number(schema: &Value) -> Value {
    let mut x = 1.0_f64;
    if let Some(min) = schema["minimum"].as_f64() {
        x = x.max(if schema["exclusiveMinimum"] == true { min.floor() + 1.0 } else { min.ceil() });
    }
    if let Some(max) = schema["maximum"].as_f64() {
        x = x.min(if schema["exclusiveMaximum"] == true { max.ceil() - 1.0 } else { max.floor() });
    }
    // Whole numbers within ±2^53 are exact in an i64.
    json!(x as i64)
}
