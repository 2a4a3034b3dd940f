//! Reads JSON settings, collecting every problem with its JSON path instead of stopping at the
//! first: the configuration, its rules and the platform events are all read through it.

use crate::error::Problem;
use serde_json::{Map, Value};

pub fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem { path: path.to_string(), message: message.into() }
}

/// Reads JSON values, collecting every problem with its path instead of stopping at the first.
#[derive(Default)]
pub struct Reader {
    pub problems: Vec<Problem>,
}

impl Reader {
    pub fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(problem(path, message));
    }

    /// An object whose keys are all in `known` (unknown keys are problems, reported once each).
    pub fn object<'v>(&mut self, value: &'v Value, path: &str, known: &[&str]) -> Option<&'v Map<String, Value>> {
        let Value::Object(obj) = value else {
            self.problem(path, "must be an object");
            return None;
        };
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            self.problem(&format!("{path}/{key}"), format!("unknown setting (known: {})", known.join(", ")));
        }
        Some(obj)
    }

    /// Trimmed text; absent, null and blank are `None`.
    pub fn string(&mut self, value: Option<&Value>, path: &str) -> Option<String> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Some(_) => {
                self.problem(path, "must be a string");
                None
            }
        }
    }

    pub fn strings(&mut self, value: Option<&Value>, path: &str) -> Vec<String> {
        self.list(value, path).into_iter().filter_map(|(path, v)| self.string(Some(v), &path)).collect()
    }

    pub fn uint(&mut self, value: Option<&Value>, path: &str, min: u64, max: u64) -> Option<u64> {
        match value {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    self.problem(path, format!("must be a whole number from {min} to {max}"));
                    None
                }
            },
        }
    }

    pub fn boolean(&mut self, value: Option<&Value>, path: &str) -> Option<bool> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.problem(path, "must be true or false");
                None
            }
        }
    }

    /// The items of a list with their paths; absent and null are an empty list.
    pub fn list<'v>(&mut self, value: Option<&'v Value>, path: &str) -> Vec<(String, &'v Value)> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().enumerate().map(|(i, v)| (format!("{path}/{i}"), v)).collect(),
            Some(_) => {
                self.problem(path, "must be a list");
                Vec::new()
            }
        }
    }
}
