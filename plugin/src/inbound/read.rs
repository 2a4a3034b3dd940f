//! The one place an inbound event's source decides how its bytes are read: checked as UTF-8
//! (the same `malformed-event` for every source), then verified (Dialpad's HS256 signature),
//! then parsed and normalized by the source's own parser.

use super::dialpad::{self, Event};
use super::event::InboundEvent;
use super::platform::{self, PlatformEvent};
use super::signature;
use crate::config::Config;
use crate::error::SyncError;

/// An inbound event read: trusted, classified and normalized.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Dialpad(Event),
    Platform(PlatformEvent),
}

/// Reads one inbound event as it arrived.
pub fn read(event: &InboundEvent, config: &Config) -> Result<Inbound, SyncError> {
    match event {
        InboundEvent::DialpadWebhook(body) => {
            utf8(body)?;
            let json = signature::event_json(body, config.webhook_secret.as_deref())?;
            read_trusted_dialpad(&json, config)
        }
        InboundEvent::PlatformEvent(body) => platform::parse(utf8(body)?, config).map(Inbound::Platform),
    }
}

/// Reads a Dialpad event already trusted (verified, or fetched from Dialpad's API).
pub fn read_trusted_dialpad(json: &[u8], config: &Config) -> Result<Inbound, SyncError> {
    dialpad::parse(json, config.default_region).map(Inbound::Dialpad)
}

/// The body as text; the same typed error whichever source sent bytes that are not UTF-8.
fn utf8(body: &[u8]) -> Result<&str, SyncError> {
    std::str::from_utf8(body).map_err(|e| SyncError::malformed(format!("the event body is not UTF-8 text (invalid byte at offset {})", e.valid_up_to())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_json(&format!(r#"{{"location_id":"L"{extra}}}"#)).unwrap()
    }

    #[test]
    fn bytes_that_are_not_utf8_are_the_same_malformed_event_from_every_source() {
        let mut bytes = br#"{"id":"e1","type":"note.created","contact":{"id":"c"},"note":{"ref":"n","body":"caf"#.to_vec();
        bytes.extend_from_slice(&[0xE9, b'"', b'}', b'}']);
        let expected = SyncError::malformed("the event body is not UTF-8 text (invalid byte at offset 83)");
        for cfg in [config(""), config(r#","webhook_secret":"s""#)] {
            assert_eq!(read(&InboundEvent::PlatformEvent(bytes.clone()), &cfg), Err(expected.clone()));
            assert_eq!(read(&InboundEvent::DialpadWebhook(bytes.clone()), &cfg), Err(expected.clone()));
        }
        // Latin-1 text, a lone continuation byte, a truncated sequence: all the same error.
        for bad in [&b"\xff"[..], b"{\"a\":\"\x80\"}", b"{\"a\":\"\xe2\x82\"}"] {
            for event in [InboundEvent::DialpadWebhook(bad.to_vec()), InboundEvent::PlatformEvent(bad.to_vec())] {
                assert!(
                    matches!(read(&event, &config("")), Err(SyncError::MalformedEvent(ref m)) if m.starts_with("the event body is not UTF-8 text")),
                    "{event:?}"
                );
            }
        }
    }

    #[test]
    fn utf8_bodies_keep_their_own_errors() {
        let cfg = config("");
        assert!(
            matches!(read(&InboundEvent::PlatformEvent(b"{".to_vec()), &cfg), Err(SyncError::MalformedEvent(ref m)) if m.starts_with("platform event is not valid JSON"))
        );
        assert!(matches!(read(&InboundEvent::PlatformEvent(b"{}".to_vec()), &cfg), Err(SyncError::InvalidInput(_))));
        assert!(
            matches!(read(&InboundEvent::DialpadWebhook(b"{".to_vec()), &cfg), Err(SyncError::MalformedEvent(ref m)) if m.starts_with("body is not valid JSON"))
        );
        let signed = config(r#","webhook_secret":"s""#);
        assert!(matches!(read(&InboundEvent::DialpadWebhook(b"{}".to_vec()), &signed), Err(SyncError::InvalidSignature(_))));
        // Text that is UTF-8 but not ASCII is read as it is.
        let note = r#"{"id":"e1","type":"note.created","contact":{"id":"c"},"note":{"ref":"n","body":"café ☕"}}"#;
        let Ok(Inbound::Platform(e)) = read(&InboundEvent::PlatformEvent(note.as_bytes().to_vec()), &cfg) else { panic!() };
        assert_eq!(e.fields["body"], "café ☕");
    }
}
