//! Plans one Dialpad event by its kind: calls, messages, contacts; agent status is skipped.

use super::call::plan_call;
use super::contact::plan_contact;
use super::sms::plan_sms;
use super::vocabulary::{KnownState, Plan, CALL_SYNC_SCOPES};
use crate::config::Config;
use crate::error::SyncError;
use crate::inbound::dialpad::Event;
use crate::inbound::event::EventKind;

/// Plans one event. Pure: the same inputs always give the same plan.
pub fn plan(event: &Event, config: &Config, known: &KnownState) -> Result<Plan, SyncError> {
    // Checked for every kind, so a misconfigured trigger says what is missing on its first event.
    config.require_scopes(CALL_SYNC_SCOPES)?;
    match event {
        Event::Call(call) => plan_call(call, config, known),
        Event::Sms(sms) => plan_sms(sms, config, known),
        Event::Contact(contact) => Ok(plan_contact(contact, config, known)),
        Event::AgentStatus => Ok(Plan::skip(EventKind::AgentStatus, "agent-status".into(), "agent status events have no Contacts API counterpart")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::inbound::dialpad;
    use crate::inbound::phone;
    use crate::report::Outcome;
    use crate::state::NoteRecord;
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    fn event(name: &str) -> Event {
        dialpad::parse(&std::fs::read(format!("{FIXTURES}{name}")).unwrap(), phone::region("US").unwrap()).unwrap()
    }

    fn config(durable: bool) -> Config {
        Config::from_json(&json!({"location_id": "loc-1", "durable_state": durable}).to_string()).unwrap()
    }

    fn ops(plan: &Plan) -> Vec<(&str, String, Option<&'static str>)> {
        plan.steps.iter().map(|s| (s.operation.id, s.display_path(), s.when.describe())).collect()
    }

    #[test]
    fn unknown_caller_is_searched_created_and_noted() {
        let plan = plan(&event("call_inbound_hangup_completed.json"), &config(true), &KnownState::default()).unwrap();
        assert_eq!(plan.outcome, Outcome::Synced);
        assert_eq!(plan.event_key, "call:6011482093420544:hangup");
        assert_eq!(
            ops(&plan),
            vec![
                ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-1&number=%2B13125550187".to_string(), None),
                ("create-contact", "/contacts/".to_string(), Some("if the duplicate search finds no contact")),
                ("create-note", "/contacts/{contactId}/notes".to_string(), None),
            ]
        );
        // The formatted number Dialpad uses as a name is not sent as one.
        assert_eq!(plan.steps[1].body, Some(json!({"locationId": "loc-1", "phone": "+13125550187", "source": "Dialpad"})));
        let body = plan.steps[2].body.as_ref().unwrap()["body"].as_str().unwrap().to_string();
        assert!(body.starts_with("Dialpad call: inbound, completed\nFrom: +13125550187\nWhen: 2026-03-10 15:04 UTC\nDuration: 4m 07s\nAgent: Maya Patel <maya.patel@example.com>"), "{body}");
        assert!(body.ends_with("Dialpad call ID: 6011482093420544"));
    }

    #[test]
    fn a_caller_not_found_by_phone_is_looked_for_by_email() {
        let plan = plan(&event("call_outbound_hangup_recorded.json"), &config(true), &KnownState::default()).unwrap();
        assert_eq!(
            ops(&plan),
            vec![
                ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-1&number=%2B15035550139".to_string(), None),
                (
                    "get-duplicate-contact",
                    "/contacts/search/duplicate?locationId=loc-1&email=kenji.watanabe%40example.net".to_string(),
                    Some("if the duplicate search finds no contact")
                ),
                ("create-contact", "/contacts/".to_string(), Some("if the duplicate search finds no contact")),
                ("create-note", "/contacts/{contactId}/notes".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_known_caller_needs_one_request() {
        let known = KnownState { contact_id: Some("c-9".into()), ..Default::default() };
        let plan = plan(&event("call_outbound_hangup_recorded.json"), &config(true), &known).unwrap();
        assert_eq!(ops(&plan), vec![("create-note", "/contacts/c-9/notes".to_string(), None)]);
        let body = plan.steps[0].body.as_ref().unwrap()["body"].as_str().unwrap();
        assert!(body.contains("Recording: https://dialpad.com/secureblob/recording/EXAMPLErecordingBlobKeyD0001"));
        assert!(body.contains("Dialpad call: outbound, completed\nTo: +15035550139"));
    }

    #[test]
    fn without_durable_state_the_note_is_looked_for_first() {
        let plan = plan(&event("call_inbound_missed.json"), &config(false), &KnownState::default()).unwrap();
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.operation.id).collect();
        assert_eq!(ids, vec!["get-duplicate-contact", "get-duplicate-contact", "create-contact", "get-all-notes", "update-note", "create-note"]);
        assert_eq!(plan.steps[2].body.as_ref().unwrap()["firstName"], "Dana");
        assert_eq!(plan.steps[2].body.as_ref().unwrap()["lastName"], "Whitfield");
    }

    #[test]
    fn in_progress_and_other_kinds_are_skipped_with_a_reason() {
        for f in ["call_inbound_ringing_unknown_number.json", "call_inbound_connected.json"] {
            let p = plan(&event(f), &config(true), &KnownState::default()).unwrap();
            assert!(matches!(p.outcome, Outcome::Skipped(ref r) if r.contains("in progress")), "{f}");
            assert!(p.steps.is_empty());
        }
        let p = plan(&event("agent_status_on_duty.json"), &config(true), &KnownState::default()).unwrap();
        assert!(matches!(p.outcome, Outcome::Skipped(_)));
        assert!(p.steps.is_empty());
    }

    #[test]
    fn a_later_piece_updates_the_note_and_a_redelivery_writes_nothing() {
        let cfg = config(true);
        let first = plan(&event("call_voicemail_uploaded.json"), &cfg, &KnownState::default()).unwrap();
        let activity = first.activity.clone().unwrap();
        let record = NoteRecord { contact_id: "c-1".into(), note_id: "n-1".into(), written_body: activity.note_body(), activity };
        let known = KnownState { contact_id: Some("c-1".into()), record: Some(record.clone()), ..Default::default() };

        let again = plan(&event("call_voicemail_uploaded.json"), &cfg, &known).unwrap();
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert!(again.steps.is_empty());

        let transcript = plan(&event("call_voicemail_transcription.json"), &cfg, &known).unwrap();
        assert_eq!(ops(&transcript), vec![("update-note", "/contacts/c-1/notes/n-1".to_string(), None)]);
        let body = transcript.steps[0].body.as_ref().unwrap()["body"].as_str().unwrap();
        assert!(body.contains("Dialpad call: inbound, voicemail"));
        assert!(body.contains("Transcript:\n"));
    }

    #[test]
    fn an_sms_becomes_one_note_on_its_senders_contact() {
        let first = plan(&event("sms_inbound.json"), &config(true), &KnownState::default()).unwrap();
        assert_eq!(first.event_key, "sms:5287316104912896");
        assert_eq!(
            ops(&first),
            vec![
                ("get-duplicate-contact", "/contacts/search/duplicate?locationId=loc-1&number=%2B13125550187".to_string(), None),
                ("create-contact", "/contacts/".to_string(), Some("if the duplicate search finds no contact")),
                ("create-note", "/contacts/{contactId}/notes".to_string(), None),
            ]
        );
        let body = first.steps[2].body.as_ref().unwrap()["body"].as_str().unwrap().to_string();
        assert_eq!(
            body,
            "Dialpad SMS: inbound\nFrom: +13125550187\nTo: Maya Patel (+14155550142)\nWhen: 2026-03-12 14:02 UTC\n\nHi Maya, it's Priya from Lakeside Dental. Did the annual quote go out yet?\n\nDialpad SMS ID: 5287316104912896"
        );
        // A status update of the same message (pending → success) writes nothing.
        let record = NoteRecord { contact_id: "c".into(), note_id: "n".into(), activity: Default::default(), written_body: body };
        let again =
            plan(&event("sms_inbound.json"), &config(true), &KnownState { contact_id: Some("c".into()), record: Some(record), ..Default::default() }).unwrap();
        assert_eq!(again.outcome, Outcome::Unchanged);
        assert!(again.steps.is_empty());
    }

    #[test]
    fn an_mms_without_text_is_kept_with_its_media() {
        let us = phone::region("US").unwrap();
        let body = br#"{"id":9,"direction":"outbound","from_number":"+14155550142","to_number":["(312) 555-0187"],"text":"","mms":true,
            "mms_url":"https://dialpad.com/mms/abc","target":{"name":"Maya Patel"},"created_date":1773324169183}"#;
        let mms = plan(&dialpad::parse(body, us).unwrap(), &config(true), &KnownState::default()).unwrap();
        let note = mms.steps.last().unwrap().body.as_ref().unwrap()["body"].as_str().unwrap().to_string();
        assert!(note.starts_with("Dialpad MMS: outbound\nFrom: Maya Patel\nTo: +13125550187\n"), "{note}");
        assert!(note.contains("Media: https://dialpad.com/mms/abc\n\n(no text)\n"), "{note}");
    }

    #[test]
    fn no_usable_phone_number_is_a_typed_error() {
        let us = phone::region("US").unwrap();
        for body in [
            r#"{"call_id":1,"state":"hangup","external_number":"blocked-ish 12"}"#,
            r#"{"call_id":1,"state":"hangup","external_number":"","contact":{"phone":"12"}}"#,
            r#"{"id":9,"direction":"inbound","from_number":"call me","to_number":["+14155550142"],"text":"hi"}"#,
        ] {
            let e = dialpad::parse(body.as_bytes(), us).unwrap();
            let err = plan(&e, &config(true), &KnownState::default()).unwrap_err();
            assert!(matches!(err, SyncError::MalformedEvent(ref m) if m.starts_with("no usable phone number")), "{body}: {err:?}");
        }
    }

    #[test]
    fn missing_write_scope_is_refused_before_any_request() {
        let cfg = Config::from_json(r#"{"location_id":"l","scopes":["contacts.readonly"]}"#).unwrap();
        let err = plan(&event("call_inbound_hangup_completed.json"), &cfg, &KnownState::default()).unwrap_err();
        assert_eq!(err, SyncError::MissingScope(vec!["contacts.write".into()]));
    }

    /// A fixture as Dialpad sends it for an anonymous or blocked caller ID: its other party's
    /// number empty, and no phone on its contact.
    pub(crate) fn anonymous(name: &str) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{FIXTURES}{name}")).unwrap()).unwrap();
        let numbers: &[&str] = if v.get("call_id").is_some() { &["external_number"] } else { &["from_number"] };
        for key in numbers {
            v[*key] = json!("");
        }
        if let Some(contact) = v["contact"].as_object_mut() {
            contact.remove("phone");
            contact.remove("phone_number");
        }
        v.to_string().into_bytes()
    }

    #[test]
    fn an_anonymous_caller_or_sender_is_skipped_without_a_request() {
        let us = phone::region("US").unwrap();
        let cases = [
            (anonymous("call_inbound_missed.json"), "anonymous caller: no phone number to match a contact"),
            (anonymous("call_inbound_hangup_completed.json"), "anonymous caller: no phone number to match a contact"),
            (anonymous("call_recap_summary.json"), "anonymous caller: no phone number to match a contact"),
            (br#"{"call_id":1,"state":"hangup","external_number":"","contact":{"phone":""}}"#.to_vec(), "anonymous caller: no phone number to match a contact"),
            (br#"{"call_id":1,"state":"hangup"}"#.to_vec(), "anonymous caller: no phone number to match a contact"),
            (br#"{"call_id":1,"state":"hangup","external_number":"blocked"}"#.to_vec(), "anonymous caller: no phone number to match a contact"),
            (br#"{"call_id":1,"state":"hangup","external_number":" Anonymous "}"#.to_vec(), "anonymous caller: no phone number to match a contact"),
            (
                br#"{"id":9,"direction":"inbound","from_number":"Restricted","to_number":["+14155550142"],"text":"hi"}"#.to_vec(),
                "anonymous sender: no phone number to match a contact",
            ),
            (anonymous("sms_inbound.json"), "anonymous sender: no phone number to match a contact"),
        ];
        for (body, reason) in cases {
            let event = dialpad::parse(&body, us).unwrap();
            for durable in [true, false] {
                let p = plan(&event, &config(durable), &KnownState::default()).unwrap();
                assert_eq!(p.outcome, Outcome::Skipped(reason.to_string()), "{}", String::from_utf8_lossy(&body));
                assert!(p.steps.is_empty());
            }
        }
    }
}
