//! The labels of one handling, from the outcome `serve` stores (`report::report_line`, with
//! `plain` on a failure): the state word, plain words, the error and the HighLevel ids.

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    pub state: String,
    pub words: Option<String>,
    pub error: Option<String>,
    pub contact_id: Option<String>,
    pub note_id: Option<String>,
    pub call_entry_id: Option<String>,
    /// From the event key (`call:<id>:hangup`): a call the body did not label (or could not).
    pub call_id: Option<String>,
}

/// An error as one short tag: its type, with the HTTP status when HighLevel or Dialpad answered.
pub fn error_tag(error: &Value) -> Option<String> {
    let kind = error["type"].as_str()?;
    Some(match error["status"].as_u64() {
        Some(status) => format!("{kind}:{status}"),
        None => kind.to_string(),
    })
}

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

impl Labels {
    /// `status` is the inbox's (`done`, `queued` for a retry, `failed`, `refused`).
    pub fn of(status: &str, outcome: &Value) -> Labels {
        let error = &outcome["error"];
        let state = match (status, outcome["outcome"].as_str()) {
            ("done", Some(word)) => word.to_string(),
            ("done", None) => "synced".into(),
            ("queued", _) => "retrying".into(),
            ("failed", Some("cancelled")) => "cancelled".into(),
            (other, _) => other.to_string(),
        };
        let words = if error.is_object() {
            // A failure's plain words sit beside the outcome; a refusal's inside its error.
            text(&outcome["plain"]).or_else(|| text(&error["plain"])).or_else(|| text(&error["message"]))
        } else {
            // The state's own word is on the badge beside it: not again at the start.
            let summary = text(&outcome["summary"]).map(|s| s.strip_prefix("skipped: ").map(str::to_string).unwrap_or(s));
            summary.map(|summary| match text(&outcome["reason"]) {
                Some(reason) if !summary.contains(&reason) => format!("{summary} ({reason})"),
                _ => summary,
            })
        };
        let call_id = outcome["event_key"].as_str().and_then(|key| key.strip_prefix("call:")).and_then(|rest| rest.split(':').next()).map(str::to_string);
        Labels {
            state,
            words,
            error: error_tag(error),
            contact_id: text(&outcome["contact_id"]),
            note_id: text(&outcome["note_id"]),
            call_entry_id: text(&outcome["call_entry_id"]),
            call_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_synced_call_a_retry_a_failure_and_a_refusal_have_their_labels() {
        let synced = json!({"outcome": "synced", "summary": "inbound call → note", "event_key": "call:601:hangup", "contact_id": "c1", "note_id": "n1", "call_entry_id": null});
        assert_eq!(
            Labels::of("done", &synced),
            Labels {
                state: "synced".into(),
                words: Some("inbound call → note".into()),
                error: None,
                contact_id: Some("c1".into()),
                note_id: Some("n1".into()),
                call_entry_id: None,
                call_id: Some("601".into())
            }
        );
        let skipped = json!({"outcome": "skipped", "summary": "ringing", "reason": "nothing to do"});
        assert_eq!(Labels::of("done", &skipped).words.as_deref(), Some("ringing (nothing to do)"));
        let said = json!({"outcome": "skipped", "summary": "skipped: call still in progress (ringing)", "reason": "call still in progress (ringing)"});
        assert_eq!(Labels::of("done", &said).words.as_deref(), Some("call still in progress (ringing)"));
        let failed = json!({"outcome": "failed", "error": {"type": "upstream", "status": 401, "message": "m"}, "plain": "Reconnect HighLevel."});
        let labels = Labels::of("queued", &failed);
        assert_eq!((labels.state.as_str(), labels.error.as_deref(), labels.words.as_deref()), ("retrying", Some("upstream:401"), Some("Reconnect HighLevel.")));
        assert_eq!(Labels::of("failed", &failed).state, "failed");
        let refused = json!({"outcome": "refused", "error": {"type": "invalid-signature", "message": "bad", "plain": "Refused: not signed."}});
        let labels = Labels::of("refused", &refused);
        assert_eq!(
            (labels.state.as_str(), labels.error.as_deref(), labels.words.as_deref()),
            ("refused", Some("invalid-signature"), Some("Refused: not signed."))
        );
        let cancelled = json!({"outcome": "cancelled", "error": {"type": "tenant-removed", "message": "tenant north was removed"}});
        assert_eq!(Labels::of("failed", &cancelled).state, "cancelled");
    }
}
