//! Inbound events as the host carries them: where one came from and its body's bytes,
//! untouched. This is the one place the host tells event sources apart; the plugin reads the
//! bytes (UTF-8, JSON, signature), so a bad body gets the same typed error on every path.

use crate::bindings::dialpad_ghl::sync::types::InboundEvent;

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A Dialpad webhook body (JSON, or an HS256 JWT).
    DialpadWebhook,
    /// A task or note event from the automation platform.
    Platform,
    /// A HighLevel webhook (`ContactCreate`, `ContactUpdate`, `ContactDelete`), whose Ed25519
    /// signature, timestamp and `webhookId` the host checked before accepting it: the plugin
    /// trusts these bytes, so nothing else may carry this source.
    HighLevelWebhook,
}

impl Source {
    /// The sources received each at a path of its own and checked by the plugin itself, with
    /// its own secrets. Not HighLevel's webhooks: only the host's gate at `/webhooks/highlevel`
    /// may accept those (see [`Source::HighLevelWebhook`]).
    pub const ALL: [Source; 2] = [Source::DialpadWebhook, Source::Platform];

    /// Every source a delivery or a dead letter may have been stored with.
    pub const STORED: [Source; 3] = [Source::DialpadWebhook, Source::Platform, Source::HighLevelWebhook];

    /// The name stored with a delivery or a dead letter.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::DialpadWebhook => "webhook",
            Source::Platform => "platform",
            Source::HighLevelWebhook => "highlevel",
        }
    }

    /// A stored name back; `None` for a name no version of the host wrote.
    pub fn parse(name: &str) -> Option<Source> {
        match name {
            "webhook" => Some(Source::DialpadWebhook),
            "platform" => Some(Source::Platform),
            "highlevel" => Some(Source::HighLevelWebhook),
            _ => None,
        }
    }

    /// What the source is called on the page and in logs.
    pub fn describe(self) -> &'static str {
        match self {
            Source::DialpadWebhook => "Dialpad webhook",
            Source::Platform => "platform event",
            Source::HighLevelWebhook => "HighLevel webhook",
        }
    }

    /// The HTTP path each source is delivered to.
    pub fn path(self) -> &'static str {
        match self {
            Source::DialpadWebhook => "/webhooks/dialpad",
            Source::Platform => "/events/platform",
            Source::HighLevelWebhook => "/webhooks/highlevel",
        }
    }

    /// The source of an event read from a file, which has no path to tell: a platform event
    /// when its JSON `type` says `task.…` or `note.…` (for a compact JWT, as platform events
    /// are sent, the `type` of its claims, read without verifying: the plugin verifies them
    /// with the source's own secret), else a Dialpad webhook body (for the plugin to accept
    /// or refuse). Never a HighLevel webhook: a file carries no signature for the host to check.
    pub fn sniff(body: &[u8]) -> Source {
        use base64::Engine as _;
        let text = std::str::from_utf8(body).unwrap_or_default().trim();
        let claims = match text.split('.').collect::<Vec<_>>()[..] {
            [_, claims, _] => base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap_or_default(),
            _ => body.to_vec(),
        };
        let kind = serde_json::from_slice::<serde_json::Value>(&claims).ok().and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string));
        match kind {
            Some(k) if k.starts_with("task.") || k.starts_with("note.") => Source::Platform,
            _ => Source::DialpadWebhook,
        }
    }
}

/// One inbound event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    pub source: Source,
    pub body: Vec<u8>,
}

impl Inbound {
    pub fn new(source: Source, body: Vec<u8>) -> Inbound {
        Inbound { source, body }
    }

    /// The event as the plugin's `triggers` take it.
    pub fn to_wit(&self) -> InboundEvent {
        match self.source {
            Source::DialpadWebhook => InboundEvent::DialpadWebhook(self.body.clone()),
            Source::Platform => InboundEvent::PlatformEvent(self.body.clone()),
            Source::HighLevelWebhook => InboundEvent::HighlevelWebhook(self.body.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_files_are_told_apart_by_type() {
        for source in Source::STORED {
            assert_eq!(Source::parse(source.as_str()), Some(source));
        }
        assert!(!Source::ALL.contains(&Source::HighLevelWebhook), "HighLevel's webhooks are received only behind the host's gate");
        assert_eq!(Source::sniff(br#"{"type":"ContactCreate","locationId":"L","id":"c"}"#), Source::DialpadWebhook);
        assert_eq!(Source::sniff(br#"{"type":"task.created"}"#), Source::Platform);
        assert_eq!(Source::sniff(br#"{"type":"call","state":"hangup"}"#), Source::DialpadWebhook);
        assert_eq!(Source::sniff(b"\xff\xfe not utf-8"), Source::DialpadWebhook);
        assert_eq!(Source::sniff(b"eyJhbGciOiJIUzI1NiJ9.e30.sig"), Source::DialpadWebhook);
        // `{"type":"note.created"}` as the claims of a JWT (signed or not: the plugin decides).
        assert_eq!(Source::sniff(b"eyJhbGciOiJIUzI1NiJ9.eyJ0eXBlIjoibm90ZS5jcmVhdGVkIn0.sig\n"), Source::Platform);
    }
}
