//! Shapes: the compact text form in which the tables hold parameter and body schemas (and the
//! plugin its trigger schemas), read here into a [`Shape`], turned into a JSON Schema
//! ([`json_schema`]) or used to check a value ([`check`]).
//!
//! A shape is the request side of a JSON Schema in a few bytes: `{firstName:s,email:s?,
//! tags:[s],locationId!:s,dnd:b,type:<lead|customer>,address:#3}` is an object whose
//! `locationId` is required, `email` may be null, `type` is one of two strings and `address`
//! is the schema at index 3 of the API's pool of named schemas. The grammar:
//!
//! | text | shape |
//! |---|---|
//! | `s` `d` `i` `n` `b` `x` | string, date-time string, integer, number, boolean, anything |
//! | `<a\|b>` | one of these strings |
//! | `[S]` | an array of `S` |
//! | `{name:S,name!:S}` | an object with these properties (`!`: required), no others; `{}`: any object |
//! | `#N` | the pool's schema `N` |
//! | `(S\|T)` | any of these shapes |
//! | `S?` | `S` or null |
//!
//! Names are letters, digits and `_`; enum values hold neither `|` nor `>` (the generator
//! checks both). The tables' shapes are generated, so a malformed one is a bug: it panics.

use serde_json::{json, Map, Value};

/// The JSON type a value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Number,
    Boolean,
    Array,
    Object,
}

impl ValueKind {
    pub const fn json_schema_type(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Number => "number",
            ValueKind::Boolean => "boolean",
            ValueKind::Array => "array",
            ValueKind::Object => "object",
        }
    }
}

/// The named schemas a table's shapes refer to by index: `(name, shape)`.
pub type Pool = &'static [(&'static str, &'static str)];

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    String,
    DateTime,
    Integer,
    Number,
    Boolean,
    Any,
    Enum(Vec<&'static str>),
    Array(Box<Shape>),
    /// No fields: any object.
    Object(Vec<Field>),
    Ref(usize),
    OneOf(Vec<Shape>),
    Nullable(Box<Shape>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub required: bool,
    pub shape: Shape,
}

/// A value that does not fit: where (a JSON pointer under the checked value) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub path: String,
    pub message: String,
}

/// Reads a shape; panics on a malformed one (the tables' shapes are generated and tested).
pub fn parse(text: &'static str) -> Shape {
    let mut reader = Reader { text, at: 0 };
    let shape = reader.shape();
    assert_eq!(reader.at, text.len(), "shape {text:?}: trailing text at {}", reader.at);
    shape
}

struct Reader {
    text: &'static str,
    at: usize,
}

impl Reader {
    fn next(&mut self) -> u8 {
        let b = *self.text.as_bytes().get(self.at).unwrap_or_else(|| panic!("shape {:?} ends early", self.text));
        self.at += 1;
        b
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, b: u8) {
        let got = self.next();
        assert_eq!(got, b, "shape {:?}: expected {:?} at {}", self.text, b as char, self.at - 1);
    }

    /// Text up to (not including) the first byte in `stops`.
    fn until(&mut self, stops: &[u8]) -> &'static str {
        let start = self.at;
        while self.peek().is_some_and(|b| !stops.contains(&b)) {
            self.at += 1;
        }
        &self.text[start..self.at]
    }

    fn shape(&mut self) -> Shape {
        let base = match self.next() {
            b's' => Shape::String,
            b'd' => Shape::DateTime,
            b'i' => Shape::Integer,
            b'n' => Shape::Number,
            b'b' => Shape::Boolean,
            b'x' => Shape::Any,
            b'<' => {
                let mut values = Vec::new();
                loop {
                    values.push(self.until(b"|>"));
                    if self.next() == b'>' {
                        break Shape::Enum(values);
                    }
                }
            }
            b'[' => {
                let item = self.shape();
                self.expect(b']');
                Shape::Array(Box::new(item))
            }
            b'{' => {
                let mut fields = Vec::new();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                } else {
                    loop {
                        let name = self.until(b"!:");
                        let required = self.peek() == Some(b'!');
                        if required {
                            self.at += 1;
                        }
                        self.expect(b':');
                        fields.push(Field { name, required, shape: self.shape() });
                        if self.next() == b'}' {
                            break;
                        }
                    }
                }
                Shape::Object(fields)
            }
            b'#' => {
                let digits = self.until(b"?,}])|");
                Shape::Ref(digits.parse().unwrap_or_else(|_| panic!("shape {:?}: bad reference {digits:?}", self.text)))
            }
            b'(' => {
                let mut options = vec![self.shape()];
                while self.next() == b'|' {
                    options.push(self.shape());
                }
                Shape::OneOf(options)
            }
            other => panic!("shape {:?}: unexpected {:?} at {}", self.text, other as char, self.at - 1),
        };
        if self.peek() == Some(b'?') {
            self.at += 1;
            Shape::Nullable(Box::new(base))
        } else {
            base
        }
    }
}

impl Shape {
    /// The shape a reference or a nullable wraps, resolved against `pool`.
    pub fn resolved(&self, pool: Pool) -> Shape {
        match self {
            Shape::Ref(i) => parse(pool[*i].1).resolved(pool),
            Shape::Nullable(inner) => inner.resolved(pool),
            other => other.clone(),
        }
    }

    /// The fields of an object shape (resolving a reference); empty for anything else.
    pub fn fields(&self, pool: Pool) -> Vec<Field> {
        match self.resolved(pool) {
            Shape::Object(fields) => fields,
            _ => Vec::new(),
        }
    }

    /// The JSON type it asks for, for a parameter or a top-level property: of several, the
    /// first (the one the spec declares, where the generator added its example's type beside
    /// it); `None` for anything.
    pub fn kind(&self, pool: Pool) -> Option<ValueKind> {
        match self.resolved(pool) {
            Shape::String | Shape::DateTime | Shape::Enum(_) => Some(ValueKind::String),
            Shape::Integer | Shape::Number => Some(ValueKind::Number),
            Shape::Boolean => Some(ValueKind::Boolean),
            Shape::Array(_) => Some(ValueKind::Array),
            Shape::Object(_) => Some(ValueKind::Object),
            Shape::OneOf(options) => options.first().and_then(|o| o.kind(pool)),
            Shape::Any | Shape::Ref(_) | Shape::Nullable(_) => None,
        }
    }

    /// "a string", "one of: a, b", … for messages.
    pub fn describe(&self, pool: Pool) -> String {
        match self {
            Shape::String => "a string".into(),
            Shape::DateTime => "a date-time (RFC 3339, e.g. 2026-12-01T10:00:00Z)".into(),
            Shape::Integer => "an integer".into(),
            Shape::Number => "a number".into(),
            Shape::Boolean => "true or false".into(),
            Shape::Any => "anything".into(),
            Shape::Enum(values) => format!("one of: {}", values.join(", ")),
            Shape::Array(_) => "an array".into(),
            Shape::Object(_) => "an object".into(),
            Shape::Ref(i) => parse(pool[*i].1).describe(pool),
            Shape::OneOf(options) => {
                let mut kinds: Vec<String> = Vec::new();
                for kind in options.iter().map(|o| o.describe(pool)) {
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                kinds.join(" or ")
            }
            Shape::Nullable(inner) => format!("{} or null", inner.describe(pool)),
        }
    }
}

/// The JSON Schema of a shape; the pool's schemas it refers to go into `defs` (to be put
/// under `$defs`), each once, so recursive schemas stay finite.
pub fn json_schema(shape: &Shape, pool: Pool, defs: &mut Map<String, Value>) -> Value {
    match shape {
        Shape::String => json!({"type": "string"}),
        Shape::DateTime => json!({"type": "string", "format": "date-time"}),
        Shape::Integer => json!({"type": "integer"}),
        Shape::Number => json!({"type": "number"}),
        Shape::Boolean => json!({"type": "boolean"}),
        Shape::Any => json!({}),
        Shape::Enum(values) => json!({"type": "string", "enum": values}),
        Shape::Array(item) => json!({"type": "array", "items": json_schema(item, pool, defs)}),
        Shape::Object(fields) if fields.is_empty() => json!({"type": "object"}),
        Shape::Object(fields) => {
            let mut properties = Map::new();
            for f in fields {
                properties.insert(f.name.into(), json_schema(&f.shape, pool, defs));
            }
            let required: Vec<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
            json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
        }
        Shape::Ref(i) => {
            let (name, text) = pool[*i];
            if !defs.contains_key(name) {
                defs.insert(name.into(), Value::Null);
                let schema = json_schema(&parse(text), pool, defs);
                defs.insert(name.into(), schema);
            }
            json!({"$ref": format!("#/$defs/{name}")})
        }
        Shape::OneOf(options) => json!({"anyOf": options.iter().map(|o| json_schema(o, pool, defs)).collect::<Vec<_>>()}),
        Shape::Nullable(inner) => {
            let mut schema = json_schema(inner, pool, defs);
            match schema.get("type").and_then(Value::as_str).map(str::to_string) {
                Some(ty) => {
                    schema["type"] = json!([ty, "null"]);
                    if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
                        values.push(Value::Null);
                    }
                    schema
                }
                None => json!({"anyOf": [schema, {"type": "null"}]}),
            }
        }
    }
}

/// Every way `value` does not fit `shape`, each at its path under `path`.
pub fn check(shape: &Shape, value: &Value, pool: Pool, path: &str, out: &mut Vec<Mismatch>) {
    let wrong = |out: &mut Vec<Mismatch>| out.push(Mismatch { path: path.to_string(), message: format!("must be {}", shape.describe(pool)) });
    match (shape, value) {
        (Shape::Any, _) => {}
        (Shape::Nullable(_), Value::Null) => {}
        (Shape::Nullable(inner), _) => check(inner, value, pool, path, out),
        (Shape::Ref(i), _) => check(&parse(pool[*i].1), value, pool, path, out),
        (Shape::String, Value::String(_)) | (Shape::Number, Value::Number(_)) | (Shape::Boolean, Value::Bool(_)) => {}
        (Shape::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        (Shape::DateTime, Value::String(s)) if is_date_time(s) => {}
        (Shape::Enum(values), Value::String(s)) if values.contains(&s.as_str()) => {}
        (Shape::Array(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                check(item, v, pool, &format!("{path}/{i}"), out);
            }
        }
        (Shape::Object(fields), Value::Object(map)) => {
            if fields.is_empty() {
                return;
            }
            for (key, v) in map {
                match fields.iter().find(|f| f.name == key) {
                    Some(f) => check(&f.shape, v, pool, &format!("{path}/{key}"), out),
                    None => out.push(Mismatch { path: format!("{path}/{key}"), message: format!("property {key} should not exist") }),
                }
            }
            for f in fields.iter().filter(|f| f.required && !map.contains_key(f.name)) {
                out.push(Mismatch { path: format!("{path}/{}", f.name), message: "required".into() });
            }
        }
        (Shape::OneOf(options), _) => {
            // None fits: the problems of the option that comes closest, when that is of the
            // value's own type (an object missing a field); else what the options are.
            let mut closest: Option<Vec<Mismatch>> = None;
            for option in options {
                let mut found = Vec::new();
                check(option, value, pool, path, &mut found);
                if found.is_empty() {
                    return;
                }
                if closest.as_ref().is_none_or(|c| found.len() < c.len()) {
                    closest = Some(found);
                }
            }
            match closest {
                Some(found) if found.iter().all(|m| m.path != path) => out.extend(found),
                _ => wrong(out),
            }
        }
        _ => wrong(out),
    }
}

/// RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or `±HH:MM`.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20 || !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)) {
        return false;
    }
    if !(matches!(b[10], b'T' | b't') && digits(11..13) && b[13] == b':' && digits(14..16) && b[16] == b':' && digits(17..19)) {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    let z = rest.as_bytes();
    matches!(rest, "Z" | "z") || (z.len() == 6 && matches!(z[0], b'+' | b'-') && z[3] == b':' && z[1..3].iter().chain(&z[4..6]).all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: Pool = &[("Address", "{city!:s,zip:s?}"), ("Node", "{name:s,children:[#1]}")];

    #[test]
    fn reads_every_form() {
        let shape = parse("{a!:s,b:i?,c:<x y|z/w>,d:[#0],e:(s|{}),f:d,g:x,h:{}}");
        let Shape::Object(fields) = &shape else { panic!("{shape:?}") };
        assert_eq!(fields.len(), 8);
        assert!(fields[0].required && !fields[1].required);
        assert_eq!(fields[1].shape, Shape::Nullable(Box::new(Shape::Integer)));
        assert_eq!(fields[2].shape, Shape::Enum(vec!["x y", "z/w"]));
        assert_eq!(fields[3].shape, Shape::Array(Box::new(Shape::Ref(0))));
        assert_eq!(fields[4].shape, Shape::OneOf(vec![Shape::String, Shape::Object(vec![])]));
    }

    #[test]
    fn checks_with_paths() {
        let shape = parse("{a!:s,b:i?,c:<x|y>,d:[#0],f:d}");
        let mut out = Vec::new();
        let value = json!({"b": 1.5, "c": "q", "d": [{"zip": null}, {"city": 3}], "f": "2026-12-01", "zz": 1});
        check(&shape, &value, POOL, "/body", &mut out);
        let paths: Vec<&str> = out.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["/body/b", "/body/c", "/body/d/0/city", "/body/d/1/city", "/body/f", "/body/zz", "/body/a"]);
        assert_eq!(out[1].message, "must be one of: x, y");
        let mut out = Vec::new();
        check(&shape, &json!({"a": "ok", "b": null, "f": "2026-12-01T10:00:00.5+01:00"}), POOL, "", &mut out);
        assert_eq!(out, []);
    }

    #[test]
    fn json_schema_puts_references_in_defs_once_even_when_recursive() {
        let mut defs = Map::new();
        let schema = json_schema(&parse("{n:#1,m:#1,t:<a|b>?}"), POOL, &mut defs);
        assert_eq!(schema["properties"]["n"], json!({"$ref": "#/$defs/Node"}));
        assert_eq!(schema["properties"]["t"], json!({"type": ["string", "null"], "enum": ["a", "b", null]}));
        assert_eq!(defs["Node"]["properties"]["children"]["items"], json!({"$ref": "#/$defs/Node"}));
        assert_eq!(defs.len(), 1);
    }

    #[test]
    fn a_value_that_fits_no_option_gets_the_closest_options_problems() {
        let shape = parse("[({id!:s,v:s}|{key!:s,v:s})]");
        let mut out = Vec::new();
        check(&shape, &json!([{"v": "x", "id": "1"}, {"v": "x"}, 3]), POOL, "/f", &mut out);
        assert_eq!(
            out,
            [Mismatch { path: "/f/1/id".into(), message: "required".into() }, Mismatch { path: "/f/2".into(), message: "must be an object".into() }]
        );
    }

    #[test]
    fn date_times() {
        assert!(is_date_time("2026-12-01T10:00:00Z"));
        assert!(is_date_time("2026-12-01T10:00:00.123-05:00"));
        assert!(!is_date_time("2026-12-01 10:00:00Z"));
        assert!(!is_date_time("2026-12-01T10:00:00"));
    }
}
