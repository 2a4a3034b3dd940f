//! The one place an inbound event's source decides how its bytes are read: checked as UTF-8
//! (the same `malformed-event` for every source), then verified (an HS256 JWT: Dialpad's signed
//! with `webhook_secret`, the platform's with `platform_secret`), then parsed and normalized by
//! the source's own parser. Platform events are off without `platform_secret`.

use super::dialpad::{self, Event};
use super::event::InboundEvent;
use super::highlevel::{self, HighLevelEvent};
use super::platform::{self, PlatformEvent};
use super::signature::{self, Door};
use crate::config::Config;
use crate::error::SyncError;

/// An inbound event read: trusted, classified and normalized.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Dialpad(Event),
    Platform(PlatformEvent),
    HighLevel(HighLevelEvent),
}

/// When an event is read: as it arrives, or after a host accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// At the door (`triggers.route`, the HTTP handler), at `now` (seconds since 1970): a
    /// token's time claims are held to it, with the configured leeway.
    Arriving { now: u64 },
    /// In `handle` and `plan`: accepted at the door before, so never refused for its age (a
    /// retry, a dead letter replayed hours later). The signature is still verified.
    Accepted,
}

/// Reads one inbound event as it arrived.
pub fn read(event: &InboundEvent, config: &Config, moment: Moment) -> Result<Inbound, SyncError> {
    let door = match moment {
        Moment::Arriving { now } => Some(Door { now, leeway: config.jwt_leeway_seconds }),
        Moment::Accepted => None,
    };
    match event {
        InboundEvent::DialpadWebhook(body) => {
            utf8(body)?;
            let json = signature::dialpad_json(body, config.webhook_secret.as_deref(), door)?;
            read_trusted_dialpad(&json, config)
        }
        InboundEvent::PlatformEvent(body) => {
            // Off without its secret, whatever the bytes: an event source nobody configured
            // reads nothing.
            if config.platform_secret.is_some() {
                utf8(body)?;
            }
            let json = signature::platform_json(body, config.platform_secret.as_deref(), door)?;
            platform::parse(utf8(&json)?, config).map(Inbound::Platform)
        }
        // The host verified HighLevel's Ed25519 signature (and the replay window) before
        // handing the body over; the plugin holds the body to its own location.
        InboundEvent::HighLevelWebhook(body) => {
            utf8(body)?;
            let event = highlevel::parse(body, config.default_region)?;
            if let HighLevelEvent::Contact(contact) = &event {
                if contact.location_id != config.location_id {
                    return Err(SyncError::InvalidInput(vec![crate::error::Problem {
                        path: "/locationId".into(),
                        message: format!("the webhook is for location {}, this configuration's is {}", contact.location_id, config.location_id),
                    }]));
                }
            }
            Ok(Inbound::HighLevel(event))
        }
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
    use crate::inbound::signature::tests::{sign, sign_bytes};
    use crate::inbound::signature::PLATFORM_EVENTS_OFF;
    use serde_json::json;

    fn config(extra: &str) -> Config {
        Config::from_json(&format!(r#"{{"location_id":"L"{extra}}}"#)).unwrap()
    }

    const PLATFORM: &str = r#","platform_secret":"p""#;
    /// 2026-03-10 15:00 UTC.
    const NOW: u64 = 1_773_154_800;

    fn platform(claims: &serde_json::Value) -> InboundEvent {
        InboundEvent::PlatformEvent(sign(claims, "p", "HS256").into_bytes())
    }

    #[test]
    fn bytes_that_are_not_utf8_are_the_same_malformed_event_from_every_source() {
        let mut bytes = br#"{"id":"e1","type":"note.created","contact":{"id":"c"},"note":{"ref":"n","body":"caf"#.to_vec();
        bytes.extend_from_slice(&[0xE9, b'"', b'}', b'}']);
        let expected = SyncError::malformed("the event body is not UTF-8 text (invalid byte at offset 83)");
        for cfg in [config(PLATFORM), config(&format!(r#","webhook_secret":"s"{PLATFORM}"#))] {
            assert_eq!(read(&InboundEvent::PlatformEvent(bytes.clone()), &cfg, Moment::Accepted), Err(expected.clone()));
            assert_eq!(read(&InboundEvent::DialpadWebhook(bytes.clone()), &cfg, Moment::Accepted), Err(expected.clone()));
        }
        // Latin-1 text, a lone continuation byte, a truncated sequence: all the same error.
        for bad in [&b"\xff"[..], b"{\"a\":\"\x80\"}", b"{\"a\":\"\xe2\x82\"}"] {
            for event in [InboundEvent::DialpadWebhook(bad.to_vec()), InboundEvent::PlatformEvent(bad.to_vec())] {
                assert!(
                    matches!(read(&event, &config(PLATFORM), Moment::Accepted), Err(SyncError::MalformedEvent(ref m)) if m.starts_with("the event body is not UTF-8 text")),
                    "{event:?}"
                );
            }
        }
    }

    #[test]
    fn utf8_bodies_keep_their_own_errors() {
        let cfg = config(PLATFORM);
        let read = |event: InboundEvent, cfg: &Config| read(&event, cfg, Moment::Accepted);
        let signed_text = |text: &str| InboundEvent::PlatformEvent(sign_bytes(text.as_bytes(), "p").into_bytes());
        assert!(matches!(read(signed_text("{"), &cfg), Err(SyncError::MalformedEvent(ref m)) if m.starts_with("platform event is not valid JSON")));
        assert!(matches!(read(platform(&json!({})), &cfg), Err(SyncError::InvalidInput(_))));
        assert!(
            matches!(read(InboundEvent::DialpadWebhook(b"{".to_vec()), &cfg), Err(SyncError::MalformedEvent(ref m)) if m.starts_with("body is not valid JSON"))
        );
        let signed = config(r#","webhook_secret":"s""#);
        assert!(matches!(read(InboundEvent::DialpadWebhook(b"{}".to_vec()), &signed), Err(SyncError::InvalidSignature(_))));
        // Text that is UTF-8 but not ASCII is read as it is.
        let note = json!({"id":"e1","type":"note.created","contact":{"id":"c"},"note":{"ref":"n","body":"café ☕"}});
        let Ok(Inbound::Platform(e)) = read(platform(&note), &cfg) else { panic!() };
        assert_eq!(e.fields["body"], "café ☕");
    }

    #[test]
    fn platform_events_are_off_without_their_secret_and_carry_their_time_claims() {
        let note = json!({"id": "e1", "type": "note.updated", "note": {"ref": "n", "body": "b"}});
        // Off: refused whatever the body, signed or not.
        for event in [platform(&note), InboundEvent::PlatformEvent(note.to_string().into_bytes()), InboundEvent::PlatformEvent(vec![0xff])] {
            for moment in [Moment::Arriving { now: NOW }, Moment::Accepted] {
                assert_eq!(read(&event, &config(""), moment), Err(SyncError::InvalidSignature(PLATFORM_EVENTS_OFF.into())));
            }
        }
        // On: unsigned is refused; signed is read, its time claims beside the event.
        let cfg = config(PLATFORM);
        let unsigned = InboundEvent::PlatformEvent(note.to_string().into_bytes());
        assert!(matches!(read(&unsigned, &cfg, Moment::Accepted), Err(SyncError::InvalidSignature(_))));
        let mut timed = note.clone();
        timed.as_object_mut().unwrap().extend([("iat".into(), json!(NOW - 10)), ("exp".into(), json!(NOW + 600)), ("nbf".into(), json!(NOW - 10))]);
        let Ok(Inbound::Platform(e)) = read(&platform(&timed), &cfg, Moment::Arriving { now: NOW }) else { panic!() };
        assert_eq!(e.id, "e1");
        // The leeway is the configuration's.
        timed["exp"] = json!(NOW - 100);
        assert!(read(&platform(&timed), &cfg, Moment::Arriving { now: NOW }).is_ok());
        let strict = config(&format!(r#"{PLATFORM},"jwt_leeway_seconds":60"#));
        assert!(
            matches!(read(&platform(&timed), &strict, Moment::Arriving { now: NOW }), Err(SyncError::InvalidSignature(ref m)) if m.starts_with("JWT expired"))
        );
        assert!(read(&platform(&timed), &strict, Moment::Accepted).is_ok());
        // Other claims are the event's and must fit its shape.
        timed["iss"] = json!("crm");
        assert!(matches!(read(&platform(&timed), &cfg, Moment::Accepted), Err(SyncError::InvalidInput(ref p)) if p[0].path == "/iss"));
    }
}
