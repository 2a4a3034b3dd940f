//! Host settings: the plugin's configuration (given to it through `wasi:config`) and what the
//! host keeps to itself (the API credential, limits). The credential is taken out of the
//! configuration before the plugin sees it and injected by the outbound policy instead.

use crate::engine::RuntimeOptions;
use crate::outbound::{Origin, OutboundPolicy, Secret};
use anyhow::{bail, Context as _};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Settings {
    /// The plugin configuration JSON object (see `meta.config-schema`), without the token.
    pub plugin_config: Map<String, Value>,
    /// Bearer token for the Contacts API, injected by the host.
    pub token: Option<Secret>,
    /// Per-request deadline of the outbound policy.
    pub request_timeout: Duration,
    pub memory_limit_bytes: usize,
    /// Budget of one event.
    pub event_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            plugin_config: Map::new(),
            token: None,
            request_timeout: Duration::from_secs(20),
            memory_limit_bytes: 64 << 20,
            event_deadline: Duration::from_secs(60),
        }
    }
}

/// A configuration file as JSON: JSON as written, or TOML (by its `.toml` extension) converted.
pub fn config_document(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))
    } else {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    }
}

impl Settings {
    /// Reads a configuration file (JSON, or TOML when it ends in `.toml`): the plugin's
    /// settings, plus `token` for the host.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let Value::Object(map) = config_document(path)? else { bail!("{} must hold an object (a table)", path.display()) };
        let mut settings = Settings { plugin_config: map, ..Settings::default() };
        if let Some(token) = settings.plugin_config.remove("token") {
            match token {
                Value::String(t) if !t.is_empty() => settings.token = Some(Secret::new(t)),
                Value::Null => {}
                Value::String(_) => {}
                _ => bail!("{}: token must be a string", path.display()),
            }
        }
        Ok(settings)
    }

    /// Sets one plugin setting (the CLI's `--api-base`, `--location-id`, …).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.plugin_config.insert(key.to_string(), value.into());
    }

    pub fn api_base(&self) -> String {
        self.plugin_config
            .get("api_base")
            .and_then(Value::as_str)
            .unwrap_or(contacts_api::DEFAULT_API_BASE)
            .trim_end_matches('/')
            .to_string()
    }

    /// The runtime options: the plugin's config var, an allowlist of exactly the API origin,
    /// and the credential bound to that origin.
    pub fn runtime_options(&self, durable_state: bool) -> anyhow::Result<RuntimeOptions> {
        let origin = Origin::parse(&self.api_base()).context("api_base")?;
        let mut config = self.plugin_config.clone();
        config.insert("durable_state".into(), Value::Bool(durable_state));
        Ok(RuntimeOptions {
            config_vars: vec![("config".into(), Value::Object(config).to_string())],
            policy: OutboundPolicy {
                allowed: vec![origin.clone()],
                credentials: self.token.iter().map(|t| (origin.clone(), t.clone())).collect(),
                timeout: self.request_timeout,
            },
            memory_limit_bytes: self.memory_limit_bytes,
            deadline: self.event_deadline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_stays_with_the_host() {
        let dir = std::env::temp_dir().join(format!("settings-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.json");
        std::fs::write(&path, r#"{"location_id":"L","token":"pit-secret","api_base":"http://127.0.0.1:9/"}"#).unwrap();
        let s = Settings::from_file(&path).unwrap();
        let options = s.runtime_options(true).unwrap();
        assert!(!options.config_vars[0].1.contains("pit-secret"));
        assert!(options.config_vars[0].1.contains("\"durable_state\":true"));
        assert_eq!(options.policy.allowed, vec![Origin::parse("http://127.0.0.1:9").unwrap()]);
        assert_eq!(options.policy.credentials[0].1.expose(), "pit-secret");

        let toml = dir.join("c.toml");
        std::fs::write(&toml, "location_id = \"L\"\ntime_zone = \"America/Chicago\"\n\n[[tag_rules]]\nname = \"hot\"\nadd = [\"hot\"]\nwhen = { keywords = [\"pricing\"] }\n").unwrap();
        let s = Settings::from_file(&toml).unwrap();
        assert_eq!(s.plugin_config["tag_rules"][0]["when"]["keywords"][0], "pricing");
        assert_eq!(s.plugin_config["time_zone"], "America/Chicago");
    }
}
