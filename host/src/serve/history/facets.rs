//! What the console shows and searches of a delivery before (or without) its handling: the
//! other party's phone, name and e-mail, and the Dialpad call id, read from the body as it was
//! accepted.
//!
//! These are labels for people, never inputs of the sync: the plugin alone decides what a body
//! means (it verified the signature before the body was accepted). The host only peeks at the
//! claims of a signed body (the middle part of a JWT) to label the row, as `Source::sniff` does.

use serde_json::Value;

/// The labels of one delivery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facets {
    /// The other party's number as the body gives it (E.164 from Dialpad).
    pub phone: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub call_id: Option<String>,
    /// A call event's state (`ringing`, `hangup`, `recap_summary`, …): which leg of its call.
    pub leg: Option<String>,
    /// A HighLevel contact id the body names (a HighLevel webhook, a platform event).
    pub contact_id: Option<String>,
}

/// The event a body carries: the JSON itself, or a JWT's claims.
fn event_of(body: &[u8]) -> Option<Value> {
    use base64::Engine as _;
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.starts_with('{') {
        return serde_json::from_str(text).ok();
    }
    if let [_, claims, _] = text.split('.').collect::<Vec<_>>()[..] {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).ok()?;
        return serde_json::from_slice(&claims).ok();
    }
    None
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_text(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| text(&value[*key]).or_else(|| value[*key].as_array().and_then(|list| list.iter().find_map(text))))
}

impl Facets {
    /// The labels of a Dialpad webhook (call, SMS, contact event), a platform event or a
    /// HighLevel contact webhook; empty for anything else.
    pub fn of_body(body: &[u8]) -> Facets {
        let Some(event) = event_of(body) else { return Facets::default() };
        let contact = &event["contact"];
        // A Dialpad call names the other party's number as `external_number`; an SMS as
        // `from_number` (inbound) or its contact; a contact event lists `phones`.
        let phone = first_text(&event, &["external_number"])
            .or_else(|| first_text(contact, &["phone", "phone_number", "primary_phone", "phones"]))
            .or_else(|| (event["direction"] == "inbound").then(|| first_text(&event, &["from_number"])).flatten())
            .or_else(|| first_text(&event, &["to_number", "phone"]));
        let name = first_text(contact, &["display_name", "name"])
            .or_else(|| {
                let parts: Vec<String> = ["first_name", "last_name"].iter().filter_map(|k| text(&contact[*k])).collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
            .or_else(|| {
                // A HighLevel contact webhook carries the contact at the top.
                let parts: Vec<String> = ["firstName", "lastName"].iter().filter_map(|k| text(&event[*k])).collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
            // Dialpad names an unknown caller by the formatted number: that is no name.
            .filter(|name| phone.as_deref().is_none_or(|p| digits(name) != digits(p)) && name.chars().any(char::is_alphabetic));
        let email = first_text(contact, &["email", "primary_email", "emails"]).or_else(|| first_text(&event, &["email"])).map(|e| e.to_lowercase());
        let call_id = first_text(&event, &["call_id"]);
        let leg = call_id.as_ref().and_then(|_| first_text(&event, &["state"]));
        let highlevel_webhook = event["locationId"].is_string() && event["type"].as_str().is_some_and(|t| t.starts_with("Contact"));
        let contact_id = if highlevel_webhook {
            first_text(&event, &["id"])
        } else {
            event["contact"]["id"].as_str().filter(|_| event["task"].is_object() || event["note"].is_object()).map(str::to_string)
        };
        Facets { phone, name, email, call_id, leg, contact_id }
    }

    /// The search keys of these labels (see [`search_keys`]).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(phone) = &self.phone {
            keys.extend(phone_keys(phone));
        }
        if let Some(email) = &self.email {
            keys.push(format!("email:{email}"));
        }
        if let Some(id) = &self.call_id {
            keys.push(format!("call:{id}"));
        }
        if let Some(id) = &self.contact_id {
            keys.push(format!("contact:{id}"));
        }
        keys
    }
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// A number's keys: all its digits, and its last ten (a NANP number typed without its country
/// code, "(312) 555-0187", finds "+13125550187").
fn phone_keys(phone: &str) -> Vec<String> {
    let all = digits(phone);
    if all.len() < 4 {
        return Vec::new();
    }
    let mut keys = vec![format!("tel:{all}")];
    if all.len() > 10 {
        keys.push(format!("tel:{}", &all[all.len() - 10..]));
    }
    keys
}

/// The keys a person's search term may match: a phone number (any format), an e-mail, a
/// HighLevel contact id or a Dialpad call id. The stored keys are made the same way, so a
/// search is one index lookup per key.
pub fn search_keys(term: &str) -> Vec<String> {
    let term = term.trim();
    if term.is_empty() {
        return Vec::new();
    }
    let mut keys = Vec::new();
    if term.contains('@') {
        keys.push(format!("email:{}", term.to_lowercase()));
        return keys;
    }
    let looks_like_number = term.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if looks_like_number {
        let all = digits(term);
        keys.extend(phone_keys(term));
        if all.len() > 10 {
            // Typed with a country code the stored number may lack.
            keys.push(format!("tel:{}", &all[all.len() - 10..]));
        }
        keys.push(format!("call:{all}"));
    }
    keys.push(format!("contact:{term}"));
    keys.push(format!("call:{term}"));
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/dialpad").join(name)).unwrap()
    }

    #[test]
    fn a_call_is_labelled_by_its_other_party_and_call_id() {
        let facets = Facets::of_body(&fixture("call_inbound_hangup_completed.json"));
        // The unknown caller's "name" is the formatted number: no name.
        assert_eq!(
            facets,
            Facets {
                phone: Some("+13125550187".into()),
                name: None,
                email: None,
                call_id: Some("6011482093420544".into()),
                leg: Some("hangup".into()),
                contact_id: None
            }
        );
        assert_eq!(facets.keys(), ["tel:13125550187", "tel:3125550187", "call:6011482093420544"]);
        // The signed form has the same labels.
        assert_eq!(Facets::of_body(&fixture("call_inbound_hangup_completed.jwt")), facets);
    }

    #[test]
    fn sms_contact_events_and_highlevel_webhooks_have_their_labels() {
        let sms = Facets::of_body(&fixture("sms_inbound.json"));
        assert_eq!((sms.phone.as_deref(), sms.call_id), (Some("+13125550187"), None));
        let contact = Facets::of_body(&fixture("contact_updated_new_email.json"));
        assert_eq!(
            (contact.phone.as_deref(), contact.name.as_deref(), contact.email.as_deref()),
            (Some("+12065550174"), Some("Dana Whitfield"), Some("dana@whitfield-logistics.example.org"))
        );
        let highlevel = Facets::of_body(
            br#"{"type":"ContactUpdate","locationId":"L","id":"c9","firstName":"Ana","lastName":"Ruiz","email":"Ana@X.example","phone":"+15550100"}"#,
        );
        assert_eq!(
            highlevel,
            Facets {
                phone: Some("+15550100".into()),
                name: Some("Ana Ruiz".into()),
                email: Some("ana@x.example".into()),
                call_id: None,
                leg: None,
                contact_id: Some("c9".into())
            }
        );
        assert_eq!(Facets::of_body(b"not json"), Facets::default());
    }

    #[test]
    fn a_search_term_gives_the_keys_its_kind_is_stored_under() {
        let stored = Facets { phone: Some("+13125550187".into()), ..Facets::default() }.keys();
        for typed in ["(312) 555-0187", "+1 312 555 0187", "13125550187"] {
            assert!(search_keys(typed).iter().any(|k| stored.contains(k)), "{typed}: {:?}", search_keys(typed));
        }
        assert_eq!(search_keys("Jo@Example.com"), ["email:jo@example.com"]);
        assert!(search_keys("6011482093420544").contains(&"call:6011482093420544".to_string()));
        assert!(search_keys("kX9aBc").contains(&"contact:kX9aBc".to_string()));
        assert!(search_keys("  ").is_empty());
    }
}
