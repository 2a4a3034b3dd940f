//! HighLevel Marketplace app webhooks (INSTALL, UNINSTALL, and the contact webhooks two-way sync
//! takes): signature, timestamp window, replay check.
//!
//! [`AppWebhookGate::check`] takes a delivery as received and either hands back the event or
//! says why it was refused. It does what HighLevel's official SDK (`@gohighlevel/api-client`)
//! does, the Ed25519 signature and ignoring other apps' events, and what HighLevel's Webhook
//! Authentication guide asks of a receiver on top of it (the SDK leaves it to the app): a
//! `timestamp` within five minutes and no `webhookId` twice.

pub mod event;
pub mod replay;
pub mod signature;

pub use event::{AppEvent, ContactWebhook, EventError, Install, Uninstall, CONTACT_WEBHOOKS};
pub use replay::{MemoryReplayLedger, ReplayLedger, SqliteReplayLedger};
pub use signature::{SignatureRefusal, WebhookKeys, HIGHLEVEL_LEGACY_RSA_KEY, LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER};

use std::fmt;
use std::time::Duration;

/// How far a webhook's `timestamp` may be from now, either way: the guide's "e.g., 5 minutes".
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Checks HighLevel's app webhooks for one Marketplace app.
#[derive(Clone, Debug)]
pub struct AppWebhookGate {
    keys: WebhookKeys,
    app_id: Option<String>,
    window: Duration,
}

impl AppWebhookGate {
    /// Any app's events, a five-minute window.
    pub fn new(keys: WebhookKeys) -> Self {
        AppWebhookGate { keys, app_id: None, window: DEFAULT_WINDOW }
    }

    /// Only this app's INSTALL and UNINSTALL are acted on; another app's come back as
    /// [`AppEvent::Other`], as the SDK lets them pass untouched.
    pub fn for_app(self, app_id: impl Into<String>) -> Self {
        AppWebhookGate { app_id: Some(app_id.into()), ..self }
    }

    pub fn with_window(self, window: Duration) -> Self {
        AppWebhookGate { window, ..self }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Checks one delivery: `header` looks a request header up by its lower-case name, `body`
    /// is the raw body, `now_ms` the receiver's clock.
    ///
    /// In order: the signature (over the raw bytes, before anything is read from them), the
    /// body, then for this app's INSTALL and UNINSTALL, and for contact webhooks, the timestamp
    /// window and the `webhookId`, which is recorded in `seen`. Other webhook types are
    /// verified and passed on without the last two checks, since nothing here acts on them.
    pub fn check(&self, header: impl Fn(&str) -> Option<String>, body: &[u8], now_ms: i64, seen: &mut impl ReplayLedger) -> Result<AppEvent, GateRefusal> {
        self.keys.verify(header, body).map_err(GateRefusal::Signature)?;
        let event = AppEvent::parse(body).map_err(GateRefusal::Event)?;
        let (app_id, webhook_id, timestamp_ms) = match &event {
            AppEvent::Install(i) => (Some(&i.app_id), &i.webhook_id, i.timestamp_ms),
            AppEvent::Uninstall(u) => (Some(&u.app_id), &u.webhook_id, u.timestamp_ms),
            // No `appId` to compare: HighLevel sends contact webhooks to the apps subscribed.
            AppEvent::Contact(c) => (None, &c.webhook_id, c.timestamp_ms),
            AppEvent::Other { .. } => return Ok(event),
        };
        if let (Some(ours), Some(theirs)) = (&self.app_id, app_id) {
            if ours != theirs {
                return Ok(AppEvent::Other { kind: event.kind().to_string() });
            }
        }
        let window_ms = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let age_ms = now_ms.saturating_sub(timestamp_ms);
        if age_ms > window_ms {
            return Err(GateRefusal::Stale { age: Duration::from_millis(age_ms.unsigned_abs()), window: self.window });
        }
        // A clock ahead by more than the window would make the replay ledger forget an id
        // while its copies could still pass: refused as well.
        if -age_ms > window_ms {
            return Err(GateRefusal::Future { ahead: Duration::from_millis(age_ms.unsigned_abs()), window: self.window });
        }
        if !seen.first_time(webhook_id, now_ms).map_err(GateRefusal::Ledger)? {
            return Err(GateRefusal::Replayed { webhook_id: webhook_id.clone() });
        }
        Ok(event)
    }
}

/// HighLevel's client ids are `<appId>-<suffix>`; the SDK takes the app id as the part before
/// the first `-`.
pub fn app_id_of_client_id(client_id: &str) -> &str {
    client_id.split('-').next().unwrap_or(client_id)
}

/// Why an app webhook was refused.
#[derive(Debug)]
pub enum GateRefusal {
    Signature(SignatureRefusal),
    Event(EventError),
    /// Older than the window: perhaps a recording sent again.
    Stale {
        age: Duration,
        window: Duration,
    },
    /// Further ahead of this clock than the window.
    Future {
        ahead: Duration,
        window: Duration,
    },
    /// This `webhookId` was accepted before.
    Replayed {
        webhook_id: String,
    },
    /// The replay ledger could not be read or written: the receiver's fault, not the sender's.
    Ledger(anyhow::Error),
}

impl GateRefusal {
    /// Whether the fault is the receiver's (worth a retry) rather than the delivery's.
    pub fn is_ours(&self) -> bool {
        matches!(self, GateRefusal::Ledger(_) | GateRefusal::Signature(SignatureRefusal::NoKey { .. }))
    }
}

impl fmt::Display for GateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: &Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        match self {
            GateRefusal::Signature(refusal) => refusal.fmt(f),
            GateRefusal::Event(error) => error.fmt(f),
            GateRefusal::Stale { age, window } => write!(f, "the webhook was sent {} ago, more than the {} allowed", secs(age), secs(window)),
            GateRefusal::Future { ahead, window } => {
                write!(f, "the webhook's timestamp is {} ahead of this clock, more than the {} allowed", secs(ahead), secs(window))
            }
            GateRefusal::Replayed { webhook_id } => write!(f, "webhook {webhook_id} was already received: refused as a replay"),
            GateRefusal::Ledger(error) => write!(f, "the record of received webhooks could not be updated: {error:#}"),
        }
    }
}

impl std::error::Error for GateRefusal {}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;

    const NOW: i64 = 1_750_834_626_225; // 2025-06-25T06:57:06.225Z
    const APP: &str = "665c6bb13d4e5364bdec0e2f";

    fn signing_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[42; 32])
    }

    fn gate() -> AppWebhookGate {
        let public = base64::engine::general_purpose::STANDARD.encode(signing_key().verifying_key().as_bytes());
        AppWebhookGate::new(WebhookKeys::ed25519(&public).unwrap()).for_app(APP)
    }

    fn install(app_id: &str, webhook_id: &str, timestamp: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"INSTALL","appId":"{app_id}","versionId":"{app_id}","installType":"Location","locationId":"loc-1","companyId":"co-1","userId":"u-1","timestamp":"{timestamp}","webhookId":"{webhook_id}"}}"#
        )
        .into_bytes()
    }

    fn deliver(gate: &AppWebhookGate, body: &[u8], now_ms: i64, seen: &mut impl ReplayLedger) -> Result<AppEvent, GateRefusal> {
        let signature = base64::engine::general_purpose::STANDARD.encode(signing_key().sign(body).to_bytes());
        gate.check(|name| (name == SIGNATURE_HEADER).then(|| signature.clone()), body, now_ms, seen)
    }

    #[test]
    fn a_signed_fresh_install_is_accepted_once() {
        let mut seen = MemoryReplayLedger::new(DEFAULT_WINDOW);
        let body = install(APP, "w-1", "2025-06-25T06:57:06.225Z");
        let AppEvent::Install(event) = deliver(&gate(), &body, NOW + 1_000, &mut seen).unwrap() else { panic!("not an install") };
        assert_eq!((event.location_id.as_deref(), event.company_id.as_deref(), event.webhook_id.as_str()), (Some("loc-1"), Some("co-1"), "w-1"));
        let replay = deliver(&gate(), &body, NOW + 2_000, &mut seen).unwrap_err();
        assert!(matches!(&replay, GateRefusal::Replayed { webhook_id } if webhook_id == "w-1"), "{replay:?}");
        assert_eq!(replay.to_string(), "webhook w-1 was already received: refused as a replay");
    }

    #[test]
    fn the_signature_is_checked_before_anything_is_read() {
        let mut seen = MemoryReplayLedger::new(DEFAULT_WINDOW);
        let body = install(APP, "w-1", "2025-06-25T06:57:06.225Z");
        let unsigned = gate().check(|_| None, &body, NOW, &mut seen).unwrap_err();
        assert!(matches!(unsigned, GateRefusal::Signature(SignatureRefusal::Missing)), "{unsigned:?}");
        let signature = base64::engine::general_purpose::STANDARD.encode(signing_key().sign(&body).to_bytes());
        let tampered = install(APP, "w-2", "2025-06-25T06:57:06.225Z");
        let refusal = gate().check(|_| Some(signature.clone()), &tampered, NOW, &mut seen).unwrap_err();
        assert!(matches!(refusal, GateRefusal::Signature(SignatureRefusal::Invalid { .. })), "{refusal:?}");
        // Not even garbage gets as far as the JSON reader without a signature.
        assert!(matches!(gate().check(|_| None, b"{not json", NOW, &mut seen), Err(GateRefusal::Signature(_))));
        assert!(matches!(deliver(&gate(), b"{not json", NOW, &mut seen), Err(GateRefusal::Event(EventError::NotJson(_)))));
        assert!(seen.is_empty(), "refused deliveries record nothing");
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_at_the_window_edge() {
        let mut seen = MemoryReplayLedger::new(DEFAULT_WINDOW);
        let body = install(APP, "w-1", "2025-06-25T06:57:06.225Z");
        let five_minutes = 300_000;
        let stale = deliver(&gate(), &body, NOW + five_minutes + 1, &mut seen).unwrap_err();
        assert!(matches!(stale, GateRefusal::Stale { .. }), "{stale:?}");
        assert_eq!(stale.to_string(), "the webhook was sent 5m ago, more than the 5m allowed");
        let future = deliver(&gate(), &body, NOW - five_minutes - 1, &mut seen).unwrap_err();
        assert!(matches!(future, GateRefusal::Future { .. }), "{future:?}");
        assert!(future.to_string().contains("ahead of this clock"), "{future}");
        assert!(seen.is_empty());
        // On the edges themselves it passes (the second time as a replay: the id was recorded).
        assert!(deliver(&gate(), &body, NOW + five_minutes, &mut seen).is_ok());
        assert!(matches!(deliver(&gate(), &body, NOW - five_minutes, &mut seen), Err(GateRefusal::Replayed { .. })));
        // A narrower window is honoured.
        let narrow = gate().with_window(Duration::from_secs(10));
        let later = install(APP, "w-2", "2025-06-25T06:57:06.225Z");
        assert!(matches!(deliver(&narrow, &later, NOW + 10_001, &mut seen), Err(GateRefusal::Stale { .. })));
    }

    #[test]
    fn another_apps_events_pass_as_other_without_being_recorded() {
        let mut seen = MemoryReplayLedger::new(DEFAULT_WINDOW);
        let body = install("someone-elses-app", "w-1", "2025-06-25T06:57:06.225Z");
        assert_eq!(deliver(&gate(), &body, NOW, &mut seen).unwrap(), AppEvent::Other { kind: "INSTALL".into() });
        // Even a stale one: nothing is done with it, so there is nothing to refuse.
        assert_eq!(deliver(&gate(), &body, NOW + 3_600_000, &mut seen).unwrap(), AppEvent::Other { kind: "INSTALL".into() });
        assert!(seen.is_empty());
        // Without an app id configured, every app's events count.
        let any = AppWebhookGate::new(gate().keys.clone());
        assert!(matches!(deliver(&any, &body, NOW, &mut seen), Ok(AppEvent::Install(_))));
        // Other types are verified, then passed on.
        let note = br#"{"type":"NoteCreate","locationId":"loc-1","id":"n-1"}"#;
        assert_eq!(deliver(&gate(), note, NOW, &mut seen).unwrap(), AppEvent::Other { kind: "NoteCreate".into() });
        assert!(gate().check(|_| None, note, NOW, &mut seen).is_err());
        assert_eq!(seen.len(), 1, "only the install counted");
    }

    #[test]
    fn a_contact_webhook_goes_through_the_window_and_the_ledger_whatever_the_app() {
        let mut seen = MemoryReplayLedger::new(DEFAULT_WINDOW);
        let contact = |webhook_id: &str, timestamp: &str| {
            format!(r#"{{"type":"ContactUpdate","locationId":"loc-1","id":"c-1","timestamp":"{timestamp}","webhookId":"{webhook_id}"}}"#).into_bytes()
        };
        let body = contact("w-c1", "2025-06-25T06:57:06.225Z");
        let Ok(AppEvent::Contact(event)) = deliver(&gate(), &body, NOW, &mut seen) else { panic!("not a contact webhook") };
        assert_eq!((event.kind.as_str(), event.location_id.as_str()), ("ContactUpdate", "loc-1"));
        assert!(matches!(deliver(&gate(), &body, NOW + 1_000, &mut seen), Err(GateRefusal::Replayed { .. })));
        let stale = contact("w-c2", "2025-06-25T06:57:06.225Z");
        assert!(matches!(deliver(&gate(), &stale, NOW + 300_001, &mut seen), Err(GateRefusal::Stale { .. })));
        assert!(matches!(gate().check(|_| None, &contact("w-c3", "2025-06-25T06:57:06.225Z"), NOW, &mut seen), Err(GateRefusal::Signature(_))));
        assert_eq!(seen.len(), 1);
        // Forgotten (the receiver could not take it), the same id passes again.
        seen.forget("w-c1").unwrap();
        assert!(matches!(deliver(&gate(), &body, NOW + 2_000, &mut seen), Ok(AppEvent::Contact(_))));
    }

    #[test]
    fn an_uninstall_goes_through_the_same_checks() {
        let mut seen = MemoryReplayLedger::new(DEFAULT_WINDOW);
        let body = format!(r#"{{"type":"UNINSTALL","appId":"{APP}","locationId":"loc-1","timestamp":"2025-06-25T06:57:06Z","webhookId":"w-9"}}"#).into_bytes();
        assert!(matches!(deliver(&gate(), &body, NOW, &mut seen), Ok(AppEvent::Uninstall(u)) if u.location_id.as_deref() == Some("loc-1")));
        assert!(matches!(deliver(&gate(), &body, NOW, &mut seen), Err(GateRefusal::Replayed { .. })));
    }

    #[test]
    fn the_sqlite_ledger_refuses_a_replay_after_a_restart() {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        let body = install(APP, "w-1", "2025-06-25T06:57:06.225Z");
        assert!(deliver(&gate(), &body, NOW, &mut SqliteReplayLedger::open(&path, DEFAULT_WINDOW).unwrap()).is_ok());
        let again = deliver(&gate(), &body, NOW + 60_000, &mut SqliteReplayLedger::open(&path, DEFAULT_WINDOW).unwrap());
        assert!(matches!(again, Err(GateRefusal::Replayed { .. })), "{again:?}");
    }

    #[test]
    fn a_failing_ledger_is_the_receivers_fault() {
        struct Broken;
        impl ReplayLedger for Broken {
            fn first_time(&mut self, _: &str, _: i64) -> anyhow::Result<bool> {
                anyhow::bail!("disk full")
            }
            fn forget(&mut self, _: &str) -> anyhow::Result<()> {
                anyhow::bail!("disk full")
            }
        }
        let refusal = deliver(&gate(), &install(APP, "w-1", "2025-06-25T06:57:06.225Z"), NOW, &mut Broken).unwrap_err();
        assert!(refusal.is_ours() && refusal.to_string().ends_with("disk full"), "{refusal}");
    }

    #[test]
    fn the_app_id_is_the_client_ids_first_part() {
        assert_eq!(app_id_of_client_id("665c6bb13d4e5364bdec0e2f-mbnwxkz4"), "665c6bb13d4e5364bdec0e2f");
        assert_eq!(app_id_of_client_id("plain"), "plain");
    }
}
