//! The `alerts` key of the host's configuration file: where alerts go (a webhook, e-mail), the
//! console's address for their links, how often to look, and the rules. Read by the host and
//! never passed to the plugin (see `Settings::from_file`).

use crate::capability::secret::Secret;
use crate::serve::incidents::AlertRules;
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// Where alerts go and when. The default sends nothing and keeps the default rules, which the
/// console's banner uses all the same.
#[derive(Clone)]
pub struct AlertSettings {
    /// `webhook_url`: a JSON POST per message, in the shape Slack's and Microsoft Teams'
    /// incoming webhooks take (`{"text": …}`). Such a URL is a credential: whoever has it posts
    /// to the channel, so it is never printed (see the `Debug` below).
    pub webhook_url: Option<url::Url>,
    /// `smtp`: an e-mail per message.
    pub smtp: Option<SmtpSettings>,
    /// `console_url`: the admin listener as operators reach it, linked from each message.
    pub console_url: Option<String>,
    /// `rules`: what counts as an incident.
    pub rules: AlertRules,
    /// `check_every_seconds`: how often the inbox is looked at (default 15 s).
    pub check_every: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings { webhook_url: None, smtp: None, console_url: None, rules: AlertRules::default(), check_every: DEFAULT_CHECK_EVERY }
    }
}

/// How often `serve` looks for incidents by default: an incident is told within 15 s, and a
/// look costs a few small queries.
pub const DEFAULT_CHECK_EVERY: Duration = Duration::from_secs(15);

impl fmt::Debug for AlertSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertSettings")
            .field("webhook", &self.webhook_url.as_ref().map(webhook_host))
            .field("smtp", &self.smtp)
            .field("console_url", &self.console_url)
            .field("rules", &self.rules)
            .field("check_every", &self.check_every)
            .finish()
    }
}

/// The webhook named without its path, which is its secret: `https://hooks.slack.com/…`.
pub fn webhook_host(url: &url::Url) -> String {
    format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or_default())
}

impl AlertSettings {
    /// Whether any message is sent (a webhook or e-mail is configured).
    pub fn sends(&self) -> bool {
        self.webhook_url.is_some() || self.smtp.is_some()
    }

    /// Reads the `alerts` object (see `docs/configuration.md`).
    pub fn from_json(value: &Value) -> Result<AlertSettings, AlertConfigError> {
        const KEYS: &[&str] = &["webhook_url", "smtp", "console_url", "check_every_seconds", "rules"];
        let given = object(value, "alerts", KEYS)?;
        let mut settings = AlertSettings::default();
        if let Some(url) = text(given, "alerts", "webhook_url")? {
            settings.webhook_url = Some(http_url(&url, "alerts.webhook_url")?);
        }
        if let Some(url) = text(given, "alerts", "console_url")? {
            settings.console_url = Some(http_url(&url, "alerts.console_url")?.as_str().trim_end_matches('/').to_string());
        }
        if let Some(value) = present(given, "check_every_seconds") {
            settings.check_every = seconds(value, "alerts.check_every_seconds", false)?;
        }
        if let Some(smtp) = present(given, "smtp") {
            settings.smtp = Some(SmtpSettings::from_json(smtp)?);
        }
        if let Some(rules) = present(given, "rules") {
            settings.rules = rules_from_json(rules)?;
        }
        Ok(settings)
    }
}

/// An SMTP server to send alerts through (`alerts.smtp`).
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// Its host name (checked against its certificate unless `tls` is `none`).
    pub server: String,
    /// Default: 465 with `tls`, 587 with `starttls`, 25 with `none`.
    pub port: u16,
    pub tls: SmtpTls,
    /// Both or neither: the login, when the server wants one.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The sender, `alerts@example.com` or `Sync alerts <alerts@example.com>`.
    pub from: String,
    /// At least one recipient.
    pub to: Vec<String>,
}

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// Plain first, then STARTTLS, which must succeed before anything else is sent (port 587).
    StartTls,
    /// No encryption: only for a relay on this machine or this network (port 25).
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Tls => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        }
    }
}

impl SmtpSettings {
    fn from_json(value: &Value) -> Result<SmtpSettings, AlertConfigError> {
        const KEYS: &[&str] = &["server", "port", "tls", "username", "password", "from", "to"];
        let given = object(value, "alerts.smtp", KEYS)?;
        let required = |key: &'static str| text(given, "alerts.smtp", key)?.ok_or(AlertConfigError::Missing { key: format!("alerts.smtp.{key}") });
        let server = required("server")?;
        if url::Host::parse(&server).is_err() || server.contains(['/', ':', '@']) {
            return Err(AlertConfigError::BadValue {
                key: "alerts.smtp.server".into(),
                expected: "a host name, such as smtp.example.com (the port goes in port)",
            });
        }
        let tls = match text(given, "alerts.smtp", "tls")?.as_deref() {
            None | Some("starttls") => SmtpTls::StartTls,
            Some("tls") => SmtpTls::Tls,
            Some("none") => SmtpTls::None,
            Some(_) => {
                return Err(AlertConfigError::BadValue { key: "alerts.smtp.tls".into(), expected: "\"tls\" (port 465), \"starttls\" (port 587) or \"none\"" })
            }
        };
        let port = match present(given, "port") {
            None => tls.default_port(),
            Some(port) => port
                .as_u64()
                .filter(|p| (1..=65_535).contains(p))
                .ok_or(AlertConfigError::BadValue { key: "alerts.smtp.port".into(), expected: "a port number, 1 to 65535" })? as u16,
        };
        let username = text(given, "alerts.smtp", "username")?;
        let password = text(given, "alerts.smtp", "password")?.map(Secret::new);
        if username.is_some() != password.is_some() {
            return Err(AlertConfigError::HalfALogin);
        }
        let from = address(&required("from")?, "alerts.smtp.from")?;
        let to = match present(given, "to") {
            None => return Err(AlertConfigError::EmptyTo),
            Some(Value::String(one)) if !one.trim().is_empty() => vec![address(one, "alerts.smtp.to")?],
            Some(Value::Array(list)) if !list.is_empty() => {
                list.iter().map(|a| a.as_str().ok_or(AlertConfigError::EmptyTo).and_then(|a| address(a, "alerts.smtp.to"))).collect::<Result<_, _>>()?
            }
            Some(Value::Array(_)) | Some(Value::String(_)) => return Err(AlertConfigError::EmptyTo),
            Some(_) => return Err(AlertConfigError::BadValue { key: "alerts.smtp.to".into(), expected: "a list of e-mail addresses" }),
        };
        Ok(SmtpSettings { server, port, tls, username, password, from, to })
    }
}

fn rules_from_json(value: &Value) -> Result<AlertRules, AlertConfigError> {
    const KEYS: &[&str] = &["window_seconds", "failure_burst", "credential_streak", "queue_depth", "queue_age_seconds", "dead_letters"];
    let given = object(value, "alerts.rules", KEYS)?;
    let mut rules = AlertRules::default();
    if let Some(value) = present(given, "window_seconds") {
        rules.window = seconds(value, "alerts.rules.window_seconds", false)?;
    }
    if let Some(value) = present(given, "queue_age_seconds") {
        rules.queue_age = seconds(value, "alerts.rules.queue_age_seconds", true)?;
    }
    for (key, field) in [
        ("failure_burst", &mut rules.failure_burst),
        ("credential_streak", &mut rules.credential_streak),
        ("queue_depth", &mut rules.queue_depth),
        ("dead_letters", &mut rules.dead_letters),
    ] {
        if let Some(value) = present(given, key) {
            *field =
                value.as_u64().ok_or(AlertConfigError::BadValue { key: format!("alerts.rules.{key}"), expected: "a whole number (0 turns the rule off)" })?;
        }
    }
    Ok(rules)
}

/// What is wrong with an `alerts` setting, by its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertConfigError {
    /// `alerts`, `alerts.smtp` or `alerts.rules` is not an object.
    NotAnObject { key: &'static str },
    /// A key the section does not take (a typo would otherwise turn a rule silently off).
    UnknownKey { section: &'static str, key: String, known: &'static [&'static str] },
    /// A required key is missing.
    Missing { key: String },
    /// `webhook_url` or `console_url` is not an http(s) URL.
    BadUrl { key: &'static str, reason: String },
    /// A value of the wrong type or out of range.
    BadValue { key: String, expected: &'static str },
    /// `alerts.smtp.to` is missing or empty: the mails would go nowhere.
    EmptyTo,
    /// `from` or a `to` is not an e-mail address.
    BadAddress { key: &'static str, given: String },
    /// `username` without `password`, or the reverse.
    HalfALogin,
}

impl fmt::Display for AlertConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertConfigError::NotAnObject { key } => write!(f, "{key} must be an object"),
            AlertConfigError::UnknownKey { section, key, known } => write!(f, "{section} has no key {key:?} (it takes {})", known.join(", ")),
            AlertConfigError::Missing { key } => write!(f, "{key} is required"),
            AlertConfigError::BadUrl { key, reason } => write!(f, "{key} must be an http(s) URL ({reason})"),
            AlertConfigError::BadValue { key, expected } => write!(f, "{key} must be {expected}"),
            AlertConfigError::EmptyTo => write!(f, "alerts.smtp.to must list at least one e-mail address"),
            AlertConfigError::BadAddress { key, given } => write!(f, "{key} has {given:?}, which is not an e-mail address"),
            AlertConfigError::HalfALogin => write!(f, "alerts.smtp needs both username and password, or neither"),
        }
    }
}

impl std::error::Error for AlertConfigError {}

fn object<'a>(value: &'a Value, key: &'static str, known: &'static [&'static str]) -> Result<&'a Map<String, Value>, AlertConfigError> {
    let Value::Object(given) = value else { return Err(AlertConfigError::NotAnObject { key }) };
    if let Some(unknown) = given.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(AlertConfigError::UnknownKey { section: key, key: unknown.clone(), known });
    }
    Ok(given)
}

/// A key that is there and not null.
fn present<'a>(given: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    given.get(key).filter(|v| !v.is_null())
}

/// A non-empty string, trimmed; `None` when absent or null.
fn text(given: &Map<String, Value>, section: &str, key: &str) -> Result<Option<String>, AlertConfigError> {
    match present(given, key) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(_) => Err(AlertConfigError::BadValue { key: format!("{section}.{key}"), expected: "a non-empty string" }),
    }
}

fn http_url(given: &str, key: &'static str) -> Result<url::Url, AlertConfigError> {
    let url = url::Url::parse(given).map_err(|e| AlertConfigError::BadUrl { key, reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AlertConfigError::BadUrl { key, reason: format!("its scheme is {}", url.scheme()) });
    }
    if url.host().is_none() {
        return Err(AlertConfigError::BadUrl { key, reason: "it has no host".into() });
    }
    Ok(url)
}

/// A number of seconds, at most a day; 0 only where it turns a rule off.
fn seconds(value: &Value, key: &str, zero_allowed: bool) -> Result<Duration, AlertConfigError> {
    let expected = if zero_allowed { "a number of seconds, 0 (off) to 86400" } else { "a number of seconds > 0, at most 86400" };
    value
        .as_f64()
        .filter(|s| (*s > 0.0 || (zero_allowed && *s == 0.0)) && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or(AlertConfigError::BadValue { key: key.to_string(), expected })
}

fn address(given: &str, key: &'static str) -> Result<String, AlertConfigError> {
    let given = given.trim();
    match given.parse::<lettre::message::Mailbox>() {
        Ok(_) => Ok(given.to_string()),
        Err(_) => Err(AlertConfigError::BadAddress { key, given: given.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_alerts_section_is_read_with_its_defaults_filled_in() {
        let settings = AlertSettings::from_json(&json!({
            "webhook_url": "https://hooks.slack.com/services/T0/B0/secret",
            "console_url": "https://admin.example.com/",
            "check_every_seconds": 30,
            "smtp": {"server": "smtp.example.com", "username": "u", "password": "p", "from": "Sync <sync@example.com>", "to": ["ops@example.com"]},
            "rules": {"window_seconds": 300, "failure_burst": 0, "queue_age_seconds": 0}
        }))
        .unwrap();
        assert_eq!(settings.webhook_url.as_ref().unwrap().as_str(), "https://hooks.slack.com/services/T0/B0/secret");
        assert_eq!((settings.console_url.as_deref(), settings.check_every), (Some("https://admin.example.com"), Duration::from_secs(30)));
        let smtp = settings.smtp.as_ref().unwrap();
        assert_eq!(
            (smtp.tls, smtp.port, smtp.from.as_str(), smtp.to.as_slice()),
            (SmtpTls::StartTls, 587, "Sync <sync@example.com>", &["ops@example.com".to_string()][..])
        );
        assert_eq!(smtp.password.as_ref().unwrap().expose(), "p");
        assert_eq!(settings.rules, AlertRules { window: Duration::from_secs(300), failure_burst: 0, queue_age: Duration::ZERO, ..AlertRules::default() });
        let printed = format!("{settings:?}");
        assert!(!printed.contains("secret") && !printed.contains("\"p\""), "{printed}");
        assert!(settings.sends() && !AlertSettings::default().sends());
        assert_eq!(
            AlertSettings::from_json(&json!({"smtp": {"server": "mail", "tls": "tls", "from": "a@b.c", "to": "d@e.f"}})).unwrap().smtp.unwrap().port,
            465
        );
    }

    #[test]
    fn each_bad_value_says_which_key_and_why() {
        let error = |value: Value| AlertSettings::from_json(&value).unwrap_err();
        let smtp = |extra: Value| {
            let mut smtp = json!({"server": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"]});
            smtp.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            json!({ "smtp": smtp })
        };
        assert!(matches!(error(json!({"webhook_url": "hooks.slack.com/x"})), AlertConfigError::BadUrl { key: "alerts.webhook_url", .. }));
        assert!(matches!(error(json!({"webhook_url": "ftp://x.example/"})), AlertConfigError::BadUrl { key: "alerts.webhook_url", .. }));
        assert_eq!(
            error(json!({"webhook": "https://x.example"})),
            AlertConfigError::UnknownKey {
                section: "alerts",
                key: "webhook".into(),
                known: &["webhook_url", "smtp", "console_url", "check_every_seconds", "rules"]
            }
        );
        assert!(matches!(error(json!({"rules": {"failure_bursts": 3}})), AlertConfigError::UnknownKey { section: "alerts.rules", .. }));
        assert_eq!(error(smtp(json!({"to": []}))), AlertConfigError::EmptyTo);
        assert_eq!(error(json!({"smtp": {"server": "s.example", "from": "a@example.com"}})), AlertConfigError::EmptyTo);
        assert_eq!(error(smtp(json!({"to": ["ops"]}))), AlertConfigError::BadAddress { key: "alerts.smtp.to", given: "ops".into() });
        assert_eq!(error(smtp(json!({"username": "u"}))), AlertConfigError::HalfALogin);
        assert_eq!(
            error(smtp(json!({"tls": "ssl"}))),
            AlertConfigError::BadValue { key: "alerts.smtp.tls".into(), expected: "\"tls\" (port 465), \"starttls\" (port 587) or \"none\"" }
        );
        assert!(matches!(error(smtp(json!({"server": "smtp.example.com:587"}))), AlertConfigError::BadValue { .. }));
        assert!(matches!(error(smtp(json!({"port": 0}))), AlertConfigError::BadValue { .. }));
        assert!(matches!(error(json!({"check_every_seconds": 0})), AlertConfigError::BadValue { .. }));
        assert!(matches!(error(json!({"rules": {"dead_letters": -1}})), AlertConfigError::BadValue { .. }));
        assert_eq!(error(json!(["x"])), AlertConfigError::NotAnObject { key: "alerts" });
        assert_eq!(error(json!({"smtp": {"from": "a@example.com", "to": ["b@example.com"]}})), AlertConfigError::Missing { key: "alerts.smtp.server".into() });
        assert_eq!(
            error(json!({"webhook_url": "https://hooks.slack.com/services/secret", "rules": {"queue_depth": "many"}})).to_string(),
            "alerts.rules.queue_depth must be a whole number (0 turns the rule off)"
        );
    }
}
