//! The plugin's configuration: a JSON document read from `wasi:config/store` under the key
//! `config`, validated with every problem reported at its JSON path. Its JSON Schema is
//! published through `meta.config-schema` so an automation platform can render it as a form.

use crate::error::{Problem, SyncError};
use crate::phone::{self, Region};
use contacts_api::Scope;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The `wasi:config/store` key holding the configuration JSON.
pub const CONFIG_KEY: &str = "config";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Origin of the Contacts API, without a trailing slash.
    pub api_base: String,
    /// The HighLevel location (sub-account) every contact belongs to.
    pub location_id: String,
    /// Bearer token. Normally absent: the host injects the credential into allowlisted
    /// requests so it never enters the sandbox.
    pub token: Option<String>,
    /// Dialpad webhook secret; when set, only HS256-signed bodies are accepted.
    pub webhook_secret: Option<String>,
    /// Scopes granted to the token.
    pub scopes: BTreeSet<Scope>,
    /// Region for numbers Dialpad sends without a country code.
    pub default_region: &'static Region,
    /// `source` written on contacts the plugin creates.
    pub contact_source: String,
    /// Attempts per request on 429 / 5xx / no answer (1 = no retry).
    pub max_attempts: u32,
    /// True when the host's key-value store outlives one event (the reference host's does).
    /// When false (e.g. `wasmtime serve`, whose store is a fresh copy per request), the plugin
    /// checks HighLevel's notes before writing a call's note, so a redelivery cannot duplicate it.
    pub durable_state: bool,
}

const KNOWN_KEYS: &[&str] =
    &["api_base", "location_id", "token", "webhook_secret", "scopes", "default_region", "contact_source", "max_attempts", "durable_state"];

impl Config {
    /// Parses and validates the configuration JSON. Every problem is reported, each at its path.
    pub fn from_json(text: &str) -> Result<Config, SyncError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| SyncError::BadConfig(vec![problem("", format!("configuration is not valid JSON: {e}"))]))?;
        let Value::Object(obj) = value else {
            return Err(SyncError::BadConfig(vec![problem("", "configuration must be a JSON object")]));
        };
        let mut problems = Vec::new();
        for key in obj.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            problems.push(problem(&format!("/{key}"), format!("unknown setting (known: {})", KNOWN_KEYS.join(", "))));
        }
        let mut text = |key: &str| -> Option<String> {
            match obj.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.trim().to_string()),
                Some(_) => {
                    problems.push(problem(&format!("/{key}"), "must be a string"));
                    None
                }
            }
        };
        let api_base = text("api_base").unwrap_or_else(|| contacts_api::DEFAULT_API_BASE.to_string());
        let location_id = text("location_id");
        let token = text("token");
        let webhook_secret = text("webhook_secret");
        let region_code = text("default_region").unwrap_or_else(|| "US".into());
        let contact_source = text("contact_source").unwrap_or_else(|| "Dialpad".into());

        let api_base = api_base.trim_end_matches('/').to_string();
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) || api_base.len() < "http://x".len() {
            problems.push(problem("/api_base", "must be an http(s) origin such as https://services.leadconnectorhq.com"));
        }
        if location_id.is_none() {
            problems.push(problem("/location_id", "required: the HighLevel location (sub-account) id"));
        }
        let default_region = phone::region(&region_code);
        if default_region.is_none() {
            let known: Vec<&str> = phone::REGIONS.iter().map(|r| r.code).collect();
            problems.push(problem("/default_region", format!("unknown region \"{region_code}\" (known: {})", known.join(", "))));
        }
        let scopes = parse_scopes(&obj, &mut problems);
        let max_attempts = match obj.get("max_attempts") {
            None | Some(Value::Null) => 3,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=10) => n as u32,
                _ => {
                    problems.push(problem("/max_attempts", "must be a whole number from 1 to 10"));
                    3
                }
            },
        };
        let durable_state = match obj.get("durable_state") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                problems.push(problem("/durable_state", "must be true or false"));
                false
            }
        };
        if !problems.is_empty() {
            return Err(SyncError::BadConfig(problems));
        }
        Ok(Config {
            api_base,
            location_id: location_id.unwrap_or_default(),
            token,
            webhook_secret,
            scopes,
            default_region: default_region.expect("checked above"),
            contact_source,
            max_attempts,
            durable_state,
        })
    }

    /// Fails with the scopes `needed` that the configuration does not grant.
    pub fn require_scopes(&self, needed: &[Scope]) -> Result<(), SyncError> {
        let missing: Vec<String> = needed.iter().filter(|s| !self.scopes.contains(s)).map(|s| s.as_str().to_string()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SyncError::MissingScope(missing))
        }
    }
}

fn parse_scopes(obj: &Map<String, Value>, problems: &mut Vec<Problem>) -> BTreeSet<Scope> {
    match obj.get("scopes") {
        None | Some(Value::Null) => [Scope::ContactsReadonly, Scope::ContactsWrite].into(),
        Some(Value::Array(items)) => {
            let mut scopes = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(Scope::parse) {
                    Some(s) => {
                        scopes.insert(s);
                    }
                    None => problems.push(problem(&format!("/scopes/{i}"), "must be \"contacts.readonly\" or \"contacts.write\"")),
                }
            }
            scopes
        }
        Some(_) => {
            problems.push(problem("/scopes", "must be a list of scopes"));
            BTreeSet::new()
        }
    }
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem { path: path.to_string(), message: message.into() }
}

/// The configuration's JSON Schema (draft 2020-12).
pub fn json_schema() -> Value {
    let regions: Vec<&str> = phone::REGIONS.iter().map(|r| r.code).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Dialpad ⇄ HighLevel sync configuration",
        "type": "object",
        "additionalProperties": false,
        "required": ["location_id"],
        "properties": {
            "api_base": {"type": "string", "format": "uri", "default": contacts_api::DEFAULT_API_BASE,
                "description": "Origin of HighLevel's Contacts API."},
            "location_id": {"type": "string", "minLength": 1,
                "description": "HighLevel location (sub-account) id."},
            "token": {"type": "string", "writeOnly": true,
                "description": "Bearer token (Private Integration or OAuth location token). Leave empty when the host injects it."},
            "webhook_secret": {"type": "string", "writeOnly": true,
                "description": "Dialpad webhook secret. When set, only HS256-signed bodies are accepted."},
            "scopes": {"type": "array", "uniqueItems": true,
                "items": {"enum": ["contacts.readonly", "contacts.write"]},
                "default": ["contacts.readonly", "contacts.write"],
                "description": "Scopes granted to the token. Call sync needs both."},
            "default_region": {"enum": regions, "default": "US",
                "description": "Region for phone numbers sent without a country code."},
            "contact_source": {"type": "string", "default": "Dialpad",
                "description": "Source written on contacts the plugin creates."},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3,
                "description": "Attempts per request on 429, 5xx or no answer."},
            "durable_state": {"type": "boolean", "default": false,
                "description": "Set by hosts whose wasi:keyvalue store outlives one event; otherwise the plugin reads HighLevel's notes to stay exactly-once."}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_json(r#"{"location_id":"loc1"}"#).unwrap();
        assert_eq!(c.api_base, "https://services.leadconnectorhq.com");
        assert_eq!(c.default_region.code, "US");
        assert_eq!(c.scopes.len(), 2);
        assert_eq!(c.max_attempts, 3);
        assert!(!c.durable_state);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let err = Config::from_json(
            r#"{"api_base":"ftp://x","scopes":["contacts.write","contacts.everything"],"default_region":"ZZ","max_attempts":0,"colour":"red"}"#,
        )
        .unwrap_err();
        let SyncError::BadConfig(problems) = err else { panic!() };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["/colour", "/api_base", "/location_id", "/default_region", "/scopes/1", "/max_attempts"]);
        assert!(matches!(Config::from_json("{"), Err(SyncError::BadConfig(p)) if p[0].path.is_empty()));
    }

    #[test]
    fn missing_scopes_are_named() {
        let c = Config::from_json(r#"{"location_id":"l","scopes":["contacts.readonly"]}"#).unwrap();
        assert_eq!(
            c.require_scopes(&[Scope::ContactsReadonly, Scope::ContactsWrite]),
            Err(SyncError::MissingScope(vec!["contacts.write".into()]))
        );
    }
}
