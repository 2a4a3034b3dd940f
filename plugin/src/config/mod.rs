//! The plugin's configuration: a JSON document read from `wasi:config/store` under the key
//! `config`, validated with every problem reported at its JSON path. Its JSON Schema is
//! published through `meta.config-schema` so an automation platform can render it as a form.

pub mod features;
pub mod reader;
pub mod rules;
pub mod template;
pub mod zone;

use crate::error::{Problem, SyncError};
use crate::inbound::dialpad::CONTACT_FIELDS;
use crate::inbound::phone::{self, Region};
use contacts_api::Scope;
use reader::{problem, Reader};
use rules::{ActionItems, FollowUpRule, TagRule};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use template::Template;
use zone::Zone;

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
    /// The automation platform's own secret: its events are HS256 JWTs signed with it. Absent,
    /// platform events are off.
    pub platform_secret: Option<String>,
    /// Leeway, in seconds, when a JWT's `exp`, `nbf` and `iat` are checked at the door.
    pub jwt_leeway_seconds: u64,
    /// Scopes granted to the token.
    pub scopes: BTreeSet<Scope>,
    /// Region for numbers Dialpad sends without a country code.
    pub default_region: &'static Region,
    /// `source` written on contacts the plugin creates.
    pub contact_source: String,
    /// Attempts per request on 429 / 5xx / no answer (1 = no retry).
    pub max_attempts: u32,
    /// First retry's wait; each next one doubles, up to 8 s. What the API asks for wins.
    pub retry_base_delay_ms: u64,
    /// True when the host's key-value store outlives one event (the reference host's does).
    /// When false (e.g. `wasmtime serve`, whose store is a fresh copy per request), the plugin
    /// checks HighLevel's notes before writing a call's note, so a redelivery cannot duplicate it.
    pub durable_state: bool,
    /// Time zone of task due dates.
    pub time_zone: Zone,
    /// How long a contact view is served from the key-value cache (0: never cached).
    pub view_cache_ttl_seconds: u64,
    /// Dialpad contact field → HighLevel contact field.
    pub field_mapping: Vec<FieldMap>,
    /// Tags added to every contact synced from a Dialpad contact event.
    pub contact_tags: Vec<String>,
    pub on_contact_deleted: OnDelete,
    pub deleted_tag: String,
    pub follow_up_rules: Vec<FollowUpRule>,
    pub tag_rules: Vec<TagRule>,
    pub action_items: ActionItems,
    /// Origin of Dialpad's API, for the backfill's call listing.
    pub dialpad_api_base: String,
    /// Dialpad API key. Normally absent: the host injects it for Dialpad's origin.
    pub dialpad_api_key: Option<String>,
    /// Calls as Conversations call entries (off when absent).
    pub conversations: Option<features::Conversations>,
    /// Screen pops on inbound ringing (off when absent).
    pub screen_pop: Option<features::ScreenPop>,
    /// Owners by e-mail (off when absent).
    pub owners: Option<features::Owners>,
    /// HighLevel → Dialpad contact sync (off when absent).
    pub two_way_contacts: Option<features::TwoWayContacts>,
}

/// What a contact deleted in Dialpad does to its HighLevel contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    Ignore,
    Tag,
    Delete,
}

/// One entry of the field mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMap {
    pub target: Target,
    pub value: Template,
}

/// Where a mapped value goes on the HighLevel contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A standard field of `create-contact` (`firstName`, `companyName`, …).
    Field(&'static str),
    /// A custom field by its id, its key (`contact.job_title`), or both. The official spec
    /// requires `id` on every custom field written; HighLevel's server also takes `key` alone.
    Custom { id: Option<String>, key: Option<String> },
}

const KNOWN_KEYS: &[&str] = &[
    "api_base",
    "location_id",
    "token",
    "webhook_secret",
    "platform_secret",
    "jwt_leeway_seconds",
    "scopes",
    "dialpad_scopes",
    "default_region",
    "contact_source",
    "max_attempts",
    "retry_base_delay_ms",
    "durable_state",
    "time_zone",
    "view_cache_ttl_seconds",
    "field_mapping",
    "contact_tags",
    "on_contact_deleted",
    "deleted_tag",
    "follow_up_rules",
    "tag_rules",
    "recap_action_items",
    "dialpad_api_base",
    "dialpad_api_key",
    "conversations",
    "screen_pop",
    "owners",
    "two_way_contacts",
];

/// The leeway of a JWT's time claims when the configuration names none: five minutes, as
/// common JWT libraries allow for clocks that disagree.
pub const DEFAULT_JWT_LEEWAY_SECONDS: u64 = 300;

/// Dialpad's API origin when the configuration names none.
pub const DEFAULT_DIALPAD_API_BASE: &str = "https://dialpad.com";

/// The mapping used when the configuration has none.
const DEFAULT_MAPPING: &[(&str, &str)] = &[
    ("firstName", "first_name"),
    ("lastName", "last_name"),
    ("email", "primary_email"),
    ("phone", "primary_phone"),
    ("companyName", "company_name"),
    ("website", "url"),
];

impl Config {
    /// Parses and validates the configuration JSON. Every problem is reported, each at its path.
    pub fn from_json(text: &str) -> Result<Config, SyncError> {
        let value: Value = serde_json::from_str(text).map_err(|e| SyncError::BadConfig(vec![problem("", format!("configuration is not valid JSON: {e}"))]))?;
        let mut r = Reader::default();
        let Some(obj) = r.object(&value, "", KNOWN_KEYS) else {
            return Err(SyncError::BadConfig(r.problems));
        };
        // The path is written only for a key that is there: most are absent, and this runs on
        // every event (a fresh instance each).
        let text = |r: &mut Reader, key: &str| obj.get(key).and_then(|value| r.string(Some(value), &format!("/{key}")));
        let api_base = text(&mut r, "api_base").unwrap_or_else(|| contacts_api::DEFAULT_API_BASE.to_string());
        let location_id = text(&mut r, "location_id");
        let token = text(&mut r, "token");
        let webhook_secret = text(&mut r, "webhook_secret");
        let platform_secret = text(&mut r, "platform_secret");
        let jwt_leeway_seconds = r.uint(obj.get("jwt_leeway_seconds"), "/jwt_leeway_seconds", 0, 3600).unwrap_or(DEFAULT_JWT_LEEWAY_SECONDS);
        let region_code = text(&mut r, "default_region").unwrap_or_else(|| "US".into());
        let contact_source = text(&mut r, "contact_source").unwrap_or_else(|| "Dialpad".into());
        let zone_name = text(&mut r, "time_zone").unwrap_or_else(|| "UTC".into());
        let delete_action = text(&mut r, "on_contact_deleted");
        let deleted_tag = text(&mut r, "deleted_tag").unwrap_or_else(|| "dialpad-deleted".into());
        let dialpad_api_base = text(&mut r, "dialpad_api_base").unwrap_or_else(|| DEFAULT_DIALPAD_API_BASE.to_string()).trim_end_matches('/').to_string();
        let dialpad_api_key = text(&mut r, "dialpad_api_key");
        if !(dialpad_api_base.starts_with("https://") || dialpad_api_base.starts_with("http://")) || dialpad_api_base.len() < "http://x".len() {
            r.problem("/dialpad_api_base", "must be an http(s) origin such as https://dialpad.com");
        }

        let api_base = api_base.trim_end_matches('/').to_string();
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) || api_base.len() < "http://x".len() {
            r.problem("/api_base", "must be an http(s) origin such as https://services.leadconnectorhq.com");
        }
        if location_id.is_none() {
            r.problem("/location_id", "required: the HighLevel location (sub-account) id");
        }
        let default_region = phone::region(&region_code);
        if default_region.is_none() {
            let known: Vec<&str> = phone::REGIONS.iter().map(|r| r.code).collect();
            r.problem("/default_region", format!("unknown region \"{region_code}\" (known: {})", known.join(", ")));
        }
        let scopes = parse_scopes(obj, &mut r);
        let max_attempts = r.uint(obj.get("max_attempts"), "/max_attempts", 1, 10).unwrap_or(3) as u32;
        let retry_base_delay_ms = r.uint(obj.get("retry_base_delay_ms"), "/retry_base_delay_ms", 0, 10_000).unwrap_or(250);
        let durable_state = r.boolean(obj.get("durable_state"), "/durable_state").unwrap_or(false);
        let time_zone = zone::zone(&zone_name);
        if time_zone.is_none() {
            r.problem("/time_zone", format!("unknown time zone \"{zone_name}\": use an offset such as \"-05:00\" or one of {}", zone::ZONE_NAMES.join(", ")));
        }
        let view_cache_ttl_seconds = r.uint(obj.get("view_cache_ttl_seconds"), "/view_cache_ttl_seconds", 0, 86_400).unwrap_or(60);
        let field_mapping = read_mapping(&mut r, obj.get("field_mapping"));
        let contact_tags = r.strings(obj.get("contact_tags"), "/contact_tags");
        let on_contact_deleted = match delete_action.as_deref() {
            None | Some("ignore") => OnDelete::Ignore,
            Some("tag") => OnDelete::Tag,
            Some("delete") => OnDelete::Delete,
            Some(_) => {
                r.problem("/on_contact_deleted", "must be \"ignore\", \"tag\" or \"delete\"");
                OnDelete::Ignore
            }
        };
        let follow_up_rules = rules::read_follow_up_rules(&mut r, obj.get("follow_up_rules"), "/follow_up_rules");
        let tag_rules = rules::read_tag_rules(&mut r, obj.get("tag_rules"), "/tag_rules");
        let action_items = rules::read_action_items(&mut r, obj.get("recap_action_items"), "/recap_action_items");
        let conversations = features::read_conversations(&mut r, obj.get("conversations"));
        let screen_pop = features::read_screen_pop(&mut r, obj.get("screen_pop"));
        let owners = features::read_owners(&mut r, obj.get("owners"));
        let two_way_contacts = features::read_two_way(&mut r, obj.get("two_way_contacts"));
        if !r.problems.is_empty() {
            return Err(SyncError::BadConfig(r.problems));
        }
        Ok(Config {
            api_base,
            location_id: location_id.unwrap_or_default(),
            token,
            webhook_secret,
            platform_secret,
            jwt_leeway_seconds,
            scopes,
            default_region: default_region.expect("checked above"),
            contact_source,
            max_attempts,
            retry_base_delay_ms,
            durable_state,
            time_zone: time_zone.expect("checked above"),
            view_cache_ttl_seconds,
            field_mapping,
            contact_tags,
            on_contact_deleted,
            deleted_tag,
            follow_up_rules,
            tag_rules,
            action_items,
            dialpad_api_base,
            dialpad_api_key,
            conversations,
            screen_pop,
            owners,
            two_way_contacts,
        })
    }

    /// The configuration as the `config` key of `wasi:config` holds it: the JSON itself, or
    /// `base64:` and the JSON in base64 (standard alphabet, padded), for hosts whose command
    /// line cannot carry the JSON: `wasmtime serve -Sconfig-var=config=…` cuts its value at
    /// every comma.
    pub fn from_store_value(value: &str) -> Result<Config, SyncError> {
        use base64::Engine as _;
        let Some(encoded) = value.trim_start().strip_prefix("base64:") else {
            return Config::from_json(value);
        };
        let bad = |message: &str| SyncError::BadConfig(vec![problem("", format!("configuration after `base64:` {message}"))]);
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad("is not valid base64"))?;
        Config::from_json(&String::from_utf8(bytes).map_err(|_| bad("does not decode to UTF-8 text"))?)
    }

    /// Every problem of a configuration document, each with its path; empty when it is valid.
    pub fn problems(text: &str) -> Vec<Problem> {
        match Config::from_json(text) {
            Err(SyncError::BadConfig(problems)) => problems,
            _ => Vec::new(),
        }
    }

    /// The scopes of `needed` that the configuration does not grant.
    pub fn missing_scopes(&self, needed: &[Scope]) -> Vec<&'static str> {
        needed.iter().filter(|s| !self.scopes.contains(s)).map(|s| s.as_str()).collect()
    }

    /// Fails with the scopes `needed` that the configuration does not grant.
    pub fn require_scopes(&self, needed: &[Scope]) -> Result<(), SyncError> {
        let missing: Vec<String> = self.missing_scopes(needed).into_iter().map(str::to_string).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SyncError::MissingScope(missing))
        }
    }
}

/// The standard HighLevel contact fields a mapping may write: the string properties of
/// `create-contact`'s body in the operations table (the plugin sets `locationId` itself).
fn mappable_fields() -> impl Iterator<Item = &'static str> {
    let op = contacts_api::op("create-contact");
    op.body_properties().into_iter().filter(|p| p.kind(op.api) == Some(contacts_api::ValueKind::String) && p.name != "locationId").map(|p| p.name)
}

fn read_mapping(r: &mut Reader, value: Option<&Value>) -> Vec<FieldMap> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        // Built as it is, not checked against the tables on every event: a unit test holds
        // both sides of every entry to the tables.
        return DEFAULT_MAPPING.iter().map(|(to, from)| FieldMap { target: Target::Field(to), value: Template::placeholder(from) }).collect();
    };
    // Read from the table's shape once per configuration, not once per mapping entry.
    let fields: Vec<&'static str> = mappable_fields().collect();
    let mut mapping = Vec::new();
    for (path, item) in r.list(Some(value), "/field_mapping") {
        let Some(entry) = r.object(item, &path, &["to", "custom_field", "from", "template"]) else { continue };
        let target = match (entry.get("to"), entry.get("custom_field")) {
            (Some(to), None) => {
                let name = r.string(Some(to), &format!("{path}/to"));
                let field = name.as_deref().and_then(|n| fields.iter().copied().find(|f| *f == n));
                if field.is_none() {
                    r.problem(
                        &format!("{path}/to"),
                        format!("not a HighLevel contact field (known: {}); use custom_field for custom fields", fields.join(", ")),
                    );
                }
                field.map(Target::Field)
            }
            (None, Some(custom)) => {
                let at = format!("{path}/custom_field");
                r.object(custom, &at, &["key", "id"]).and_then(|c| {
                    let id = r.string(c.get("id"), &format!("{at}/id"));
                    let key = r.string(c.get("key"), &format!("{at}/key"));
                    if id.is_none() && key.is_none() {
                        r.problem(&at, "give the custom field's id (the official spec requires it), its key, or both");
                        return None;
                    }
                    Some(Target::Custom { id, key })
                })
            }
            _ => {
                r.problem(&path, "give either \"to\" (a contact field) or \"custom_field\" ({\"key\": …} or {\"id\": …})");
                None
            }
        };
        let source = match (entry.get("from"), entry.get("template")) {
            (Some(from), None) => r.string(Some(from), &format!("{path}/from")).map(|f| (format!("{{{{{f}}}}}"), "from")),
            (None, Some(t)) => r.string(Some(t), &format!("{path}/template")).map(|t| (t, "template")),
            _ => {
                r.problem(&path, "give either \"from\" (a Dialpad contact field) or \"template\"");
                None
            }
        };
        let value = source.and_then(|(source, key)| {
            Template::parse(&source, CONTACT_FIELDS)
                .map_err(|e| {
                    r.problem(
                        &format!("{path}/{key}"),
                        if key == "from" { format!("not a Dialpad contact field (known: {})", CONTACT_FIELDS.join(", ")) } else { e },
                    )
                })
                .ok()
        });
        if let (Some(target), Some(value)) = (target, value) {
            mapping.push(FieldMap { target, value });
        }
    }
    mapping
}

/// The grants: HighLevel's scopes from `scopes`, Dialpad's from `dialpad_scopes`, and
/// Dialpad's credential itself (whether the host holds one is the host's to say).
fn parse_scopes(obj: &Map<String, Value>, r: &mut Reader) -> BTreeSet<Scope> {
    let mut scopes = BTreeSet::from([Scope::Dialpad]);
    for (key, known) in [("scopes", Scope::HIGHLEVEL), ("dialpad_scopes", Scope::DIALPAD)] {
        match obj.get(key) {
            // Not stated (a private token, an API key): every scope is assumed, and the API's
            // 401/403 says otherwise.
            None | Some(Value::Null) => scopes.extend(known.iter().copied()),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().and_then(|s| known.iter().copied().find(|k| k.as_str() == s)) {
                        Some(s) => {
                            scopes.insert(s);
                        }
                        None => r.problem(
                            &format!("/{key}/{i}"),
                            format!("unknown scope (known: {})", known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
                        ),
                    }
                }
            }
            Some(_) => r.problem(&format!("/{key}"), "must be a list of scopes"),
        }
    }
    scopes
}

/// The configuration's JSON Schema (draft 2020-12), kept as a file beside the code so it is
/// published as written; a unit test holds it to the settings this module reads.
pub const JSON_SCHEMA: &str = include_str!("../../config.schema.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_mapping_is_what_a_written_mapping_of_the_same_entries_reads() {
        let written: Vec<Value> = DEFAULT_MAPPING.iter().map(|(to, from)| serde_json::json!({"to": to, "from": from})).collect();
        let written = Config::from_json(&serde_json::json!({"location_id": "loc1", "field_mapping": written}).to_string()).unwrap();
        let default = Config::from_json(r#"{"location_id":"loc1"}"#).unwrap();
        assert_eq!(default.field_mapping, written.field_mapping);
        assert_eq!(default.field_mapping.len(), 6);
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_json(r#"{"location_id":"loc1"}"#).unwrap();
        assert_eq!(c.api_base, "https://services.leadconnectorhq.com");
        assert_eq!(c.default_region.code, "US");
        assert_eq!(c.scopes.len(), contacts_api::Scope::ALL.len());
        assert_eq!(c.max_attempts, 3);
        assert!(!c.durable_state);
        assert_eq!((c.platform_secret.as_deref(), c.jwt_leeway_seconds), (None, 300));
    }

    #[test]
    fn the_platform_secret_and_the_jwt_leeway_are_read_and_checked() {
        let c = Config::from_json(r#"{"location_id":"L","platform_secret":" p-s3cret ","jwt_leeway_seconds":0}"#).unwrap();
        assert_eq!((c.platform_secret.as_deref(), c.jwt_leeway_seconds), (Some("p-s3cret"), 0));
        let c = Config::from_json(r#"{"location_id":"L","platform_secret":"","jwt_leeway_seconds":3600}"#).unwrap();
        assert_eq!((c.platform_secret, c.jwt_leeway_seconds), (None, 3600), "a blank secret is no secret: platform events stay off");
        let problems = Config::problems(r#"{"location_id":"L","platform_secret":42,"jwt_leeway_seconds":3601}"#);
        let found: Vec<(&str, &str)> = problems.iter().map(|p| (p.path.as_str(), p.message.as_str())).collect();
        assert_eq!(found, [("/platform_secret", "must be a string"), ("/jwt_leeway_seconds", "must be a whole number from 0 to 3600")]);
        for bad in ["-1", "1.5", "\"300\"", "true"] {
            let problems = Config::problems(&format!(r#"{{"location_id":"L","jwt_leeway_seconds":{bad}}}"#));
            assert_eq!(problems.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["/jwt_leeway_seconds"], "{bad}");
        }
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
    fn the_published_schema_matches_what_is_read() {
        let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
        let keys: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut known = KNOWN_KEYS.to_vec();
        known.sort();
        assert_eq!(keys, known);
        let strings = |v: &Value| -> Vec<String> { v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect() };
        let regions: Vec<String> = phone::REGIONS.iter().map(|r| r.code.to_string()).collect();
        assert_eq!(strings(&schema["properties"]["default_region"]["enum"]), regions);
        let names = |scopes: &[Scope]| scopes.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>();
        assert_eq!(strings(&schema["properties"]["scopes"]["items"]["enum"]), names(Scope::HIGHLEVEL));
        assert_eq!(strings(&schema["properties"]["dialpad_scopes"]["items"]["enum"]), names(Scope::DIALPAD));
        assert_eq!(strings(&schema["properties"]["time_zone"]["anyOf"][0]["enum"]), zone::ZONE_NAMES.iter().map(|z| z.to_string()).collect::<Vec<_>>());
        assert_eq!(strings(&schema["$defs"]["field_map"]["properties"]["to"]["enum"]), mappable_fields().map(str::to_string).collect::<Vec<_>>());
        assert_eq!(strings(&schema["$defs"]["contact_field"]["enum"]), CONTACT_FIELDS.iter().map(|z| z.to_string()).collect::<Vec<_>>());
        let placeholders = schema["$defs"]["task_text"]["description"].as_str().unwrap();
        assert!(rules::TASK_PLACEHOLDERS.iter().all(|p| placeholders.contains(&format!("{{{{{p}}}}}"))));
    }

    #[test]
    fn rule_and_mapping_problems_carry_their_paths() {
        let err = Config::from_json(
            r#"{"location_id":"L","time_zone":"Mars/Base","view_cache_ttl_seconds":-1,"on_contact_deleted":"shred",
                "field_mapping":[{"to":"favouriteColour","from":"first_name"},{"custom_field":{"key":"contact.x"},"from":"middle_name"}],
                "follow_up_rules":[{"name":"cb","when":{"outcomes":["missed"]},"task":{"title":"Call {{contact}} back","due":{"next_day_at":"9am"}}}],
                "tag_rules":[{"name":"hot","when":{"keywords":["pricing"]}}]}"#,
        )
        .unwrap_err();
        let SyncError::BadConfig(problems) = err else { panic!() };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/time_zone",
                "/view_cache_ttl_seconds",
                "/field_mapping/0/to",
                "/field_mapping/1/from",
                "/on_contact_deleted",
                "/follow_up_rules/0/task/title",
                "/follow_up_rules/0/task/due/next_day_at",
                "/tag_rules/0"
            ]
        );
        assert!(problems[5].message.contains("unknown placeholder {{contact}}"), "{}", problems[5].message);
    }

    #[test]
    fn the_store_value_may_be_base64_for_command_lines_that_split_at_commas() {
        use base64::Engine as _;
        let json = r#"{"location_id":"loc1","token":"t","durable_state":false}"#;
        let encoded = format!("base64:{}\n", base64::engine::general_purpose::STANDARD.encode(json));
        assert!(!encoded.contains(','));
        assert_eq!(Config::from_store_value(&encoded).unwrap(), Config::from_json(json).unwrap());
        assert_eq!(Config::from_store_value(json).unwrap().token.as_deref(), Some("t"));
        let Err(SyncError::BadConfig(problems)) = Config::from_store_value("base64:not base64!") else { panic!() };
        assert_eq!(problems[0].message, "configuration after `base64:` is not valid base64");
    }

    #[test]
    fn missing_scopes_are_named() {
        let c = Config::from_json(r#"{"location_id":"l","scopes":["contacts.readonly"]}"#).unwrap();
        assert_eq!(c.require_scopes(&[Scope::ContactsReadonly, Scope::ContactsWrite]), Err(SyncError::MissingScope(vec!["contacts.write".into()])));
    }
}
