//! The settings of the features that write where HighLevel users and Dialpad agents look:
//! calls as Conversations call entries, screen pops, owners, and two-way contact sync. Each
//! section is off when absent.

use super::reader::Reader;
use super::template::Template;
use serde_json::{Map, Value};

/// `conversations`: calls as call entries in HighLevel Conversations.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversations {
    /// The Conversation Provider (type Call) of the Marketplace app: `conversationProviderId`.
    pub provider_id: String,
    /// `privacy` of Dialpad's recording share links: `admin`, `company`, `owner` or `public`.
    pub recording_privacy: String,
}

/// `screen_pop`: the HighLevel contact on the agent's screen when an inbound call rings.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenPop {
    /// The contact's page; placeholders `{{location_id}}`, `{{contact_id}}`.
    pub url: Template,
    /// What a caller with no HighLevel contact gets: nothing, or this page (`{{location_id}}`,
    /// `{{phone}}`).
    pub unknown_caller_url: Option<Template>,
    /// A ringing event handled later than this after it happened is not popped: the call has
    /// likely been answered or ended.
    pub max_age_seconds: u64,
}

/// HighLevel's contact page, on HighLevel's own domain (white-label domains configure theirs).
pub const DEFAULT_SCREEN_POP_URL: &str = "https://app.gohighlevel.com/v2/location/{{location_id}}/contacts/detail/{{contact_id}}";
pub const SCREEN_POP_NAMES: &[&str] = &["location_id", "contact_id", "phone"];

/// `owners`: a call's note, call entry and tasks go to the HighLevel user of the Dialpad agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Owners {
    /// E-mail (lower case) → HighLevel user id, checked before HighLevel's users are read.
    pub by_email: Vec<(String, String)>,
    /// Read HighLevel's users of the location (`users.readonly`) to match by e-mail.
    pub lookup: bool,
    /// The user when no one matches; none leaves the task unassigned.
    pub fallback_user_id: Option<String>,
}

/// Which side's value of a field wins when both change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    HighLevel,
    Dialpad,
    /// The change that arrives last.
    Newest,
}

/// `two_way_contacts`: HighLevel's contact changes written to Dialpad's contacts.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoWayContacts {
    /// Write local contacts of this Dialpad user instead of shared (company) contacts.
    pub local_owner_id: Option<String>,
    /// Delete the Dialpad contact when its HighLevel contact is deleted.
    pub delete: bool,
    pub default_winner: Winner,
    /// Per field (HighLevel's names: `firstName`, `email`, …).
    pub field_winners: Vec<(String, Winner)>,
}

impl TwoWayContacts {
    pub fn winner(&self, field: &str) -> Winner {
        self.field_winners.iter().find(|(f, _)| f == field).map(|(_, w)| *w).unwrap_or(self.default_winner)
    }
}

/// The fields a conflict rule may name.
pub const TWO_WAY_FIELDS: &[&str] = crate::inbound::highlevel::SYNCED_FIELDS;

pub fn read_conversations(r: &mut Reader, value: Option<&Value>) -> Option<Conversations> {
    let obj = section(r, value, "/conversations", &["provider_id", "recording_privacy"])?;
    let provider_id = r.string(obj.get("provider_id"), "/conversations/provider_id");
    if provider_id.is_none() {
        r.problem("/conversations/provider_id", "required: the conversationProviderId of the app's Conversation Provider (type Call)");
    }
    let recording_privacy = r.string(obj.get("recording_privacy"), "/conversations/recording_privacy").unwrap_or_else(|| "company".into());
    if !["admin", "company", "owner", "public"].contains(&recording_privacy.as_str()) {
        r.problem("/conversations/recording_privacy", "must be \"admin\", \"company\", \"owner\" or \"public\"");
    }
    Some(Conversations { provider_id: provider_id?, recording_privacy })
}

pub fn read_screen_pop(r: &mut Reader, value: Option<&Value>) -> Option<ScreenPop> {
    let obj = section(r, value, "/screen_pop", &["url", "unknown_caller_url", "max_age_seconds"])?;
    let template = |r: &mut Reader, key: &str, names: &[&str]| {
        let text = r.string(obj.get(key), &format!("/screen_pop/{key}"))?;
        if !(text.starts_with("https://") || text.starts_with("http://")) {
            r.problem(&format!("/screen_pop/{key}"), "must be an http(s) URL");
        }
        Template::parse(&text, names).map_err(|e| r.problem(&format!("/screen_pop/{key}"), e)).ok()
    };
    let url = template(r, "url", &SCREEN_POP_NAMES[..2]).unwrap_or_else(|| Template::parse(DEFAULT_SCREEN_POP_URL, SCREEN_POP_NAMES).expect("valid"));
    let unknown_caller_url = template(r, "unknown_caller_url", &["location_id", "phone"]);
    let max_age_seconds = r.uint(obj.get("max_age_seconds"), "/screen_pop/max_age_seconds", 1, 3600).unwrap_or(60);
    Some(ScreenPop { url, unknown_caller_url, max_age_seconds })
}

pub fn read_owners(r: &mut Reader, value: Option<&Value>) -> Option<Owners> {
    let obj = section(r, value, "/owners", &["by_email", "lookup", "fallback_user_id"])?;
    let mut by_email = Vec::new();
    match obj.get("by_email") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (email, user) in map {
                if let Some(user) = r.string(Some(user), &format!("/owners/by_email/{email}")) {
                    by_email.push((email.trim().to_lowercase(), user));
                }
            }
        }
        Some(_) => r.problem("/owners/by_email", "must be an object of e-mail → HighLevel user id"),
    }
    let lookup = r.boolean(obj.get("lookup"), "/owners/lookup").unwrap_or(true);
    let fallback_user_id = r.string(obj.get("fallback_user_id"), "/owners/fallback_user_id");
    Some(Owners { by_email, lookup, fallback_user_id })
}

pub fn read_two_way(r: &mut Reader, value: Option<&Value>) -> Option<TwoWayContacts> {
    let obj = section(r, value, "/two_way_contacts", &["local_owner_id", "on_delete", "conflicts"])?;
    let local_owner_id = r.string(obj.get("local_owner_id"), "/two_way_contacts/local_owner_id");
    let delete = match r.string(obj.get("on_delete"), "/two_way_contacts/on_delete").as_deref() {
        None | Some("delete") => true,
        Some("ignore") => false,
        Some(_) => {
            r.problem("/two_way_contacts/on_delete", "must be \"delete\" or \"ignore\"");
            false
        }
    };
    let mut default_winner = Winner::Newest;
    let mut field_winners = Vec::new();
    if let Some(conflicts) = obj.get("conflicts").filter(|v| !v.is_null()) {
        if let Some(c) = r.object(conflicts, "/two_way_contacts/conflicts", &["default", "fields"]) {
            if let Some(w) = winner(r, c.get("default"), "/two_way_contacts/conflicts/default") {
                default_winner = w;
            }
            match c.get("fields") {
                None | Some(Value::Null) => {}
                Some(Value::Object(fields)) => {
                    for (field, value) in fields {
                        let path = format!("/two_way_contacts/conflicts/fields/{field}");
                        if !TWO_WAY_FIELDS.contains(&field.as_str()) {
                            r.problem(&path, format!("not a synced field (synced: {})", TWO_WAY_FIELDS.join(", ")));
                        } else if let Some(w) = winner(r, Some(value), &path) {
                            field_winners.push((field.clone(), w));
                        }
                    }
                }
                Some(_) => r.problem("/two_way_contacts/conflicts/fields", "must be an object of field → \"highlevel\" | \"dialpad\" | \"newest\""),
            }
        }
    }
    Some(TwoWayContacts { local_owner_id, delete, default_winner, field_winners })
}

fn winner(r: &mut Reader, value: Option<&Value>, path: &str) -> Option<Winner> {
    match r.string(value, path)?.as_str() {
        "highlevel" => Some(Winner::HighLevel),
        "dialpad" => Some(Winner::Dialpad),
        "newest" => Some(Winner::Newest),
        _ => {
            r.problem(path, "must be \"highlevel\", \"dialpad\" or \"newest\"");
            None
        }
    }
}

/// A feature's section: absent or null is off.
fn section<'v>(r: &mut Reader, value: Option<&'v Value>, path: &str, known: &[&str]) -> Option<&'v Map<String, Value>> {
    r.object(value.filter(|v| !v.is_null())?, path, known)
}
