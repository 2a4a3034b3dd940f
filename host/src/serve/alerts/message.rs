//! One alert message: an incident that opened, or one that is over, in the words each
//! destination shows (a chat line, an e-mail) and as JSON for a program.

use crate::serve::incidents::clock;
use serde_json::{json, Value};

/// Whether a message opens an incident or says it is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Resolved => "resolved",
        }
    }
}

/// An incident as it is told: what was detected, with when this message is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub state: State,
    pub key: String,
    pub kind: String,
    pub tenant: Option<String>,
    pub location_id: Option<String>,
    pub since_ms: i64,
    pub title: String,
    pub advice: String,
    pub count: u64,
    /// When it was seen open (for an open message) or gone (for a resolution).
    pub at_ms: i64,
    /// The console, linked from the message.
    pub console_url: Option<String>,
}

impl Notice {
    /// One or two lines of plain text: what Slack and Teams show.
    pub fn text(&self) -> String {
        let console = self.console_url.as_ref().map(|url| format!(" Console: {url}")).unwrap_or_default();
        match self.state {
            State::Open => format!("Problem: {}.\n{}{console}", self.title, self.advice),
            State::Resolved => {
                format!("Resolved: {}.\nOver at {}, after {}.{console}", self.title, clock(self.at_ms, self.at_ms), lasted(self.at_ms - self.since_ms))
            }
        }
    }

    /// The webhook's body: `text` for chat, `incident` for a program.
    pub fn json(&self) -> Value {
        json!({
            "text": self.text(),
            "incident": {
                "key": self.key, "kind": self.kind, "tenant": self.tenant, "location_id": self.location_id, "state": self.state.as_str(),
                "since_ms": self.since_ms, "title": self.title, "advice": self.advice, "count": self.count,
            },
        })
    }

    /// The e-mail's subject.
    pub fn subject(&self) -> String {
        match self.state {
            State::Open => format!("Problem: {}", self.title),
            State::Resolved => format!("Resolved: {}", self.title),
        }
    }

    /// The e-mail's body: the text, then what the incident is.
    pub fn email_body(&self) -> String {
        let mut body = self.text();
        body.push_str(&format!("\n\nIncident: {} ({}), since {}", self.key, self.kind, clock(self.since_ms, self.at_ms)));
        if let Some(location) = &self.location_id {
            body.push_str(&format!(", location {location}"));
        }
        body.push_str(&format!(", count {}.\n", self.count));
        if self.state == State::Resolved {
            body.push_str(&format!("What was advised: {}\n", self.advice));
        }
        body
    }
}

/// `under a minute`, `27 min`, `2 h 05 min`.
fn lasted(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    match minutes {
        0 => "under a minute".into(),
        1..=59 => format!("{minutes} min"),
        _ => format!("{} h {:02} min", minutes / 60, minutes % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_and_a_resolved_message_read_as_an_operator_needs_them() {
        // 2026-03-02 12:13 UTC.
        let since = 1_772_453_580_000;
        let mut notice = Notice {
            state: State::Open,
            key: "credentials:".into(),
            kind: "credentials".into(),
            tenant: Some("".into()),
            location_id: Some("loc123".into()),
            since_ms: since,
            title: "Every delivery for location loc123 has failed with HighLevel 401 since 12:13 UTC".into(),
            advice: "Reconnect HighLevel for this location (its token was refused), then replay the failed deliveries.".into(),
            count: 3,
            at_ms: since + 60_000,
            console_url: Some("https://admin.example.com".into()),
        };
        assert_eq!(
            notice.text(),
            "Problem: Every delivery for location loc123 has failed with HighLevel 401 since 12:13 UTC.\n\
             Reconnect HighLevel for this location (its token was refused), then replay the failed deliveries. Console: https://admin.example.com"
        );
        assert_eq!(notice.json()["incident"]["state"], "open");
        notice.state = State::Resolved;
        notice.at_ms = since + 125 * 60_000;
        notice.console_url = None;
        assert_eq!(
            notice.text(),
            "Resolved: Every delivery for location loc123 has failed with HighLevel 401 since 12:13 UTC.\nOver at 14:18 UTC, after 2 h 05 min."
        );
        assert_eq!(notice.subject(), "Resolved: Every delivery for location loc123 has failed with HighLevel 401 since 12:13 UTC");
        assert!(notice.email_body().contains("Incident: credentials: (credentials), since 12:13 UTC, location loc123, count 3."), "{}", notice.email_body());
        assert_eq!(lasted(59_999), "under a minute");
    }
}
