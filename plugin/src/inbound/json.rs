//! A JSON document borrowed from the bytes it was read from: what the Dialpad parser reads an
//! event into. `serde_json::Value` allocates every key and every string and keeps objects in
//! B-trees; an event is read once and only a few of its fields are used, so here strings point
//! into the body (copied only when they hold escapes) and an object is a list of its members.
//! Reading the bundled hangup this way takes 40% of the time `Value` takes (`bench` measures
//! the whole event). Parsing is serde_json's own, so what it refuses, and its messages, are
//! unchanged.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON value whose strings borrow from the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Members<'a>),
}

/// An object's members in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Members<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Members<'a> {
    /// The member named `key`; of several, the last, as `serde_json::Map` keeps it.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Json<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

/// Reads `bytes` as one JSON document, with serde_json's errors.
pub fn parse(bytes: &[u8]) -> Result<Json<'_>, serde_json::Error> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = AnyValue.deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

struct AnyValue;

impl<'de> DeserializeSeed<'de> for AnyValue {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyValue {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        // JSON text has no NaN or infinity, so this is always a number (as in `Value`).
        Ok(serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_string())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Json<'de>, A::Error> {
        let mut list = Vec::new();
        while let Some(item) = items.next_element_seed(AnyValue)? {
            list.push(item);
        }
        Ok(Json::Array(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Json<'de>, A::Error> {
        let mut list = Vec::new();
        while let Some(key) = members.next_key_seed(Key)? {
            list.push((key, members.next_value_seed(AnyValue)?));
        }
        Ok(Json::Object(Members(list)))
    }
}

/// A member's name, borrowed unless it holds escapes (`Cow<str>`'s own `Deserialize` always
/// copies).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same document read both ways: every value, and every refusal's message, alike.
    #[test]
    fn reads_what_value_reads_and_refuses_what_it_refuses() {
        fn same(json: &Json, value: &serde_json::Value) {
            match (json, value) {
                (Json::Null, serde_json::Value::Null) => {}
                (Json::Bool(a), serde_json::Value::Bool(b)) => assert_eq!(a, b),
                (Json::Number(a), serde_json::Value::Number(b)) => assert_eq!(a, b),
                (Json::String(a), serde_json::Value::String(b)) => assert_eq!(a, b),
                (Json::Array(a), serde_json::Value::Array(b)) => {
                    assert_eq!(a.len(), b.len());
                    a.iter().zip(b).for_each(|(a, b)| same(a, b));
                }
                (Json::Object(a), serde_json::Value::Object(b)) => {
                    for (key, value) in b {
                        same(a.get(key).expect(key), value);
                    }
                    assert!(a.0.iter().all(|(k, _)| b.contains_key(k.as_ref())));
                }
                (a, b) => panic!("{a:?} read where Value reads {b:?}"),
            }
        }
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");
        let mut read = 0;
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(&path).unwrap();
                same(&parse(&bytes).unwrap(), &serde_json::from_slice(&bytes).unwrap());
                read += 1;
            }
        }
        assert!(read >= 10, "{read} fixtures");
        let tricky = br#"{"a":"esc\"aped \u00e9","a":2,"n":[-1,1.5e3,18446744073709551615,184467440737095516150],"o":{},"e":[]}"#;
        let doc = parse(tricky).unwrap();
        same(&doc, &serde_json::from_slice(tricky).unwrap());
        let Json::Object(members) = &doc else { panic!() };
        assert_eq!(members.get("a"), Some(&Json::Number(2.into())), "the last of two members wins");
        for bad in [&b"{"[..], b"{\"a\":}", b"[1,]", b"{} x", b"", b"\"\\q\""] {
            assert_eq!(parse(bad).unwrap_err().to_string(), serde_json::from_slice::<serde_json::Value>(bad).unwrap_err().to_string());
        }
    }
}
