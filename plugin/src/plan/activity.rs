//! One call as one activity: what every event of a call has told so far, and the note that
//! shows it. Events of a call arrive in pieces (hangup, then voicemail, transcript, AI recap)
//! and possibly twice or out of order; merging them into one record and rendering the note
//! from the whole record makes a redelivery render the same note, and a late piece update it.

use crate::inbound::dialpad::{CallEvent, Direction};
use crate::inbound::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallResult {
    #[default]
    Ended,
    Completed,
    Missed,
    Voicemail,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// Names of the rules (follow-up tasks, tags, recap action items) that fired for this call:
    /// each fires once per call. Shown on the note, so a stateless host reads them back too.
    pub automations: Vec<String>,
    /// Newest `event_timestamp` merged so far.
    pub last_event_ms: Option<i64>,
    /// The call's entry in HighLevel Conversations (its `messageId`), named on the note so a
    /// host without the plugin's records finds it too.
    pub call_entry_id: Option<String>,
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
        lines.push(format!("Dialpad call: {direction}, {}", self.result.as_str()));
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
        if let Some(id) = &self.call_entry_id {
            lines.push(format!("{CALL_ENTRY_LINE}{id}"));
        }
        if let Some(line) = automations_line(&self.automations) {
            lines.push(line);
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

impl CallActivity {
    /// Reads back a note that [`CallActivity::note_body`] wrote, so that a host without the
    /// plugin's records (a stateless store) can still merge a late event into the note without
    /// losing what earlier events put there. `None` when the text is not such a note.
    pub fn from_note_body(body: &str) -> Option<CallActivity> {
        let (rest, marker) = body.rsplit_once('\n')?;
        let call_id = marker.strip_prefix("Dialpad call ID: ")?.trim().to_string();
        let rest = rest.strip_suffix('\n').unwrap_or(rest);
        let (header, sections) = match rest.split_once("\n\n") {
            Some((h, s)) => (h, s),
            None => (rest, ""),
        };
        let mut lines = header.lines();
        let (direction, result) = lines.next()?.strip_prefix("Dialpad call: ")?.split_once(", ")?;
        let mut a = CallActivity {
            call_id,
            direction: match direction {
                "inbound" => Some(Direction::Inbound),
                "outbound" => Some(Direction::Outbound),
                _ => None,
            },
            result: match result {
                "completed" => CallResult::Completed,
                "missed" => CallResult::Missed,
                "voicemail" => CallResult::Voicemail,
                _ => CallResult::Ended,
            },
            ..CallActivity::default()
        };
        for line in lines {
            let (key, value) = line.split_once(": ")?;
            match key {
                "From" | "To" => a.external_phone = value.to_string(),
                "When" => a.started_ms = time::parse_utc_minutes(value),
                "Duration" => a.talk_ms = time::parse_duration(value),
                "Agent" => match value.strip_suffix('>').and_then(|v| v.rsplit_once(" <")) {
                    Some((name, email)) => (a.agent_name, a.agent_email) = (Some(name.into()), Some(email.into())),
                    None if value.contains('@') && !value.contains(' ') => a.agent_email = Some(value.into()),
                    None => a.agent_name = Some(value.into()),
                },
                "Labels" => a.labels = value.split(", ").map(str::to_string).collect(),
                "Recording" => a.recording_urls.push(value.to_string()),
                "Voicemail" => a.voicemail_link = Some(value.to_string()),
                "Call review" => a.review_link = Some(value.to_string()),
                "HighLevel call entry" => a.call_entry_id = Some(value.to_string()),
                "Automations" => a.automations = value.split(", ").map(str::to_string).collect(),
                _ => return None,
            }
        }
        let (transcript, recap) = match sections.rsplit_once("Dialpad Ai recap:\n") {
            Some((before, recap)) if before.is_empty() || before.ends_with("\n\n") => (before.strip_suffix("\n\n").unwrap_or(before), Some(recap)),
            _ => (sections, None),
        };
        if let Some(t) = transcript.strip_prefix("Transcript:\n") {
            a.transcript = Some(t.to_string());
        } else if !transcript.is_empty() {
            return None;
        }
        if let Some(recap) = recap {
            let mut recap_lines: Vec<&str> = recap.lines().collect();
            while let Some(item) = recap_lines.last().and_then(|l| l.strip_prefix("- ")) {
                a.recap_action_items.insert(0, item.to_string());
                recap_lines.pop();
            }
            if let Some(outcome) = recap_lines.last().and_then(|l| l.strip_prefix("Outcome: ")) {
                a.recap_outcome = Some(outcome.to_string());
                recap_lines.pop();
            }
            if !recap_lines.is_empty() {
                a.recap_summary = Some(recap_lines.join("\n"));
            }
        }
        Some(a)
    }
}

/// `Automations: a, b`, the note line naming the rules that fired.
pub fn automations_line(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| format!("Automations: {}", names.join(", ")))
}

/// The rules a note written by the plugin says have fired.
pub fn automations_in(note: &str) -> Vec<String> {
    note.lines().find_map(|l| l.strip_prefix("Automations: ")).map(|v| v.split(", ").map(str::to_string).collect()).unwrap_or_default()
}

/// The start of the note line naming the call's entry in Conversations.
pub const CALL_ENTRY_LINE: &str = "HighLevel call entry: ";

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
    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Completed => "completed",
            CallResult::Missed => "missed",
            CallResult::Voicemail => "voicemail",
            CallResult::Ended => "ended",
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::dialpad::{self, Event};
    use crate::inbound::phone;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    fn merged(names: &[&str]) -> CallActivity {
        let mut a = CallActivity::default();
        for name in names {
            let body = std::fs::read(format!("{FIXTURES}{name}")).unwrap();
            let Event::Call(call) = dialpad::parse(&body, phone::region("US").unwrap()).unwrap() else { panic!() };
            a.merge(&call);
        }
        a
    }

    #[test]
    fn a_note_reads_back_as_the_activity_it_shows() {
        for names in [
            &["call_inbound_hangup_completed.json", "call_recap_summary.json"][..],
            &["call_outbound_hangup_recorded.json"],
            &["call_inbound_missed.json"],
            &["call_voicemail_uploaded.json", "call_voicemail_transcription.json"],
        ] {
            let activity = merged(names);
            let parsed = CallActivity::from_note_body(&activity.note_body()).expect("reads back");
            assert_eq!(parsed.note_body(), activity.note_body(), "{names:?}");
            // Times read back at the precision the note shows them: minutes, and seconds.
            let shown = CallActivity {
                last_event_ms: None,
                started_ms: activity.started_ms.map(|ms| ms - ms.rem_euclid(60_000)),
                talk_ms: activity.talk_ms.map(|ms| (ms + 500) / 1000 * 1000),
                ..activity
            };
            assert_eq!(shown, parsed, "{names:?}");
        }
        let mut tricky = merged(&["call_inbound_hangup_completed.json"]);
        tricky.transcript = Some("line one\n\nline three after a blank".into());
        tricky.agent_name = None;
        tricky.automations = vec!["missed call".into(), "recap action items".into()];
        assert_eq!(CallActivity::from_note_body(&tricky.note_body()).unwrap().note_body(), tricky.note_body());
        assert_eq!(CallActivity::from_note_body("a note a person wrote"), None);
    }

    #[test]
    fn a_late_stale_event_only_fills_gaps() {
        let mut a = merged(&["call_inbound_hangup_completed.json", "call_recap_summary.json"]);
        let body = std::fs::read(format!("{FIXTURES}call_inbound_connected.json")).unwrap();
        let Event::Call(connected) = dialpad::parse(&body, phone::region("US").unwrap()).unwrap() else { panic!() };
        let before = a.clone();
        a.merge(&connected);
        assert_eq!(a.result, CallResult::Completed);
        assert_eq!(a.talk_ms, before.talk_ms);
        assert_eq!(a.recap_summary, before.recap_summary);
    }
}
