//! One call as one activity: what every event of a call has told so far, and the note that
//! shows it. Events of a call arrive in pieces (hangup, then voicemail, transcript, AI recap)
//! and possibly twice or out of order; merging them into one record and rendering the note
//! from the whole record makes a redelivery render the same note, and a late piece update it.

use crate::dialpad::{CallEvent, Direction};
use crate::time;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CallResult {
    #[default]
    Ended,
    Completed,
    Missed,
    Voicemail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CallActivity {
    pub call_id: String,
    pub direction: Option<Direction>,
    pub result: CallResult,
    pub external_phone: String,
    pub agent_name: Option<String>,
    pub agent_email: Option<String>,
    pub started_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub recording_urls: Vec<String>,
    pub voicemail_link: Option<String>,
    pub transcript: Option<String>,
    pub recap_summary: Option<String>,
    pub recap_action_items: Vec<String>,
    pub recap_outcome: Option<String>,
    pub review_link: Option<String>,
    pub labels: Vec<String>,
    /// Newest `event_timestamp` merged so far.
    pub last_event_ms: Option<i64>,
}

impl CallActivity {
    /// Folds one event into the activity. An event older than one already merged only fills
    /// gaps, so a late, stale event never overwrites newer facts.
    pub fn merge(&mut self, e: &CallEvent) {
        let newer = match (e.event_ms, self.last_event_ms) {
            (Some(new), Some(seen)) => new >= seen,
            _ => true,
        };
        fn put<T: Clone>(slot: &mut Option<T>, value: &Option<T>, newer: bool) {
            if value.is_some() && (newer || slot.is_none()) {
                *slot = value.clone();
            }
        }
        fn put_list(slot: &mut Vec<String>, value: &[String]) {
            for v in value {
                if !slot.contains(v) {
                    slot.push(v.clone());
                }
            }
        }
        if self.call_id.is_empty() {
            self.call_id = e.call_id.clone();
        }
        if let Some(p) = &e.external_phone {
            if newer || self.external_phone.is_empty() {
                self.external_phone = p.as_str().to_string();
            }
        }
        put(&mut self.direction, &e.direction, newer);
        put(&mut self.agent_name, &e.agent.name, newer);
        put(&mut self.agent_email, &e.agent.email, newer);
        put(&mut self.started_ms, &e.started_ms, newer);
        // A talk time of 0 on a voicemail or recap event says nothing about the call.
        put(&mut self.talk_ms, &e.talk_ms.filter(|&t| t > 0), newer);
        put(&mut self.voicemail_link, &e.voicemail_link, newer);
        put(&mut self.transcript, &e.transcript, newer);
        put(&mut self.recap_summary, &e.recap_summary, newer);
        put(&mut self.recap_outcome, &e.recap_outcome, newer);
        put(&mut self.review_link, &e.review_link, newer);
        put_list(&mut self.recording_urls, &e.recording_urls);
        put_list(&mut self.recap_action_items, &e.recap_action_items);
        put_list(&mut self.labels, &e.labels);
        self.result = self.result.max_with(result_of(e));
        if newer {
            self.last_event_ms = e.event_ms.or(self.last_event_ms);
        }
    }

    /// The HighLevel note body for this call. The last line is the marker by which the
    /// plugin finds the note again when its own records are gone.
    pub fn note_body(&self) -> String {
        let mut lines = Vec::new();
        let direction = self.direction.map(Direction::as_str).unwrap_or("unknown-direction");
        let result = match self.result {
            CallResult::Completed => "completed",
            CallResult::Missed => "missed",
            CallResult::Voicemail => "voicemail",
            CallResult::Ended => "ended",
        };
        lines.push(format!("Dialpad call: {direction}, {result}"));
        let counterpart = match self.direction {
            Some(Direction::Outbound) => "To",
            _ => "From",
        };
        lines.push(format!("{counterpart}: {}", self.external_phone));
        if let Some(ms) = self.started_ms {
            lines.push(format!("When: {}", time::utc_minutes(ms)));
        }
        if let Some(ms) = self.talk_ms {
            lines.push(format!("Duration: {}", time::duration(ms)));
        }
        match (&self.agent_name, &self.agent_email) {
            (Some(n), Some(e)) => lines.push(format!("Agent: {n} <{e}>")),
            (Some(n), None) => lines.push(format!("Agent: {n}")),
            (None, Some(e)) => lines.push(format!("Agent: {e}")),
            (None, None) => {}
        }
        if !self.labels.is_empty() {
            lines.push(format!("Labels: {}", self.labels.join(", ")));
        }
        for url in &self.recording_urls {
            lines.push(format!("Recording: {url}"));
        }
        if let Some(v) = &self.voicemail_link {
            lines.push(format!("Voicemail: {v}"));
        }
        if let Some(r) = &self.review_link {
            lines.push(format!("Call review: {r}"));
        }
        if let Some(t) = &self.transcript {
            lines.push(String::new());
            lines.push("Transcript:".into());
            lines.push(t.clone());
        }
        if self.recap_summary.is_some() || self.recap_outcome.is_some() || !self.recap_action_items.is_empty() {
            lines.push(String::new());
            lines.push("Dialpad Ai recap:".into());
            if let Some(s) = &self.recap_summary {
                lines.push(s.clone());
            }
            if let Some(o) = &self.recap_outcome {
                lines.push(format!("Outcome: {o}"));
            }
            for item in &self.recap_action_items {
                lines.push(format!("- {item}"));
            }
        }
        lines.push(String::new());
        lines.push(note_marker(&self.call_id));
        lines.join("\n")
    }
}

/// The line that identifies a call's note.
pub fn note_marker(call_id: &str) -> String {
    format!("Dialpad call ID: {call_id}")
}

fn result_of(e: &CallEvent) -> CallResult {
    match e.state.as_str() {
        "voicemail" | "voicemail_uploaded" => CallResult::Voicemail,
        "transcription" if e.voicemail_link.is_some() => CallResult::Voicemail,
        "missed" => CallResult::Missed,
        "hangup" if e.connected_ms.is_some() || e.talk_ms.is_some_and(|t| t > 0) => CallResult::Completed,
        "hangup" => CallResult::Missed,
        _ => CallResult::Ended,
    }
}

impl CallResult {
    /// Results only become more specific: a voicemail stays a voicemail when its hangup
    /// arrives late, and a completed call is not turned into a missed one.
    fn max_with(self, other: CallResult) -> CallResult {
        fn rank(r: CallResult) -> u8 {
            match r {
                CallResult::Ended => 0,
                CallResult::Missed => 1,
                CallResult::Completed => 2,
                CallResult::Voicemail => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}
