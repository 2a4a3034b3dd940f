//! The demo's bundled events and configuration (`host-test/demo-events/`): a day of calls,
//! texts and contact edits, platform task and note events, and a signed webhook.

/// The bundled events, in the order a day of calls would deliver them.
pub const EVENTS: &[(&str, &[u8])] = &[
    ("call_inbound_ringing_unknown_number.json", include_bytes!("../demo-events/call_inbound_ringing_unknown_number.json")),
    ("call_inbound_connected.json", include_bytes!("../demo-events/call_inbound_connected.json")),
    ("call_inbound_hangup_completed.json", include_bytes!("../demo-events/call_inbound_hangup_completed.json")),
    ("call_recap_summary.json", include_bytes!("../demo-events/call_recap_summary.json")),
    ("call_outbound_hangup_recorded.json", include_bytes!("../demo-events/call_outbound_hangup_recorded.json")),
    ("call_inbound_missed.json", include_bytes!("../demo-events/call_inbound_missed.json")),
    ("call_voicemail_uploaded.json", include_bytes!("../demo-events/call_voicemail_uploaded.json")),
    ("call_voicemail_transcription.json", include_bytes!("../demo-events/call_voicemail_transcription.json")),
    ("sms_inbound.json", include_bytes!("../demo-events/sms_inbound.json")),
    ("contact_created_shared.json", include_bytes!("../demo-events/contact_created_shared.json")),
    ("contact_updated_new_email.json", include_bytes!("../demo-events/contact_updated_new_email.json")),
    ("agent_status_on_duty.json", include_bytes!("../demo-events/agent_status_on_duty.json")),
    ("call_inbound_hangup_completed.json (redelivered)", include_bytes!("../demo-events/call_inbound_hangup_completed.json")),
];
/// Task and note events from the automation platform, as JSON: the platform sends each as the
/// claims of an HS256 JWT signed with [`PLATFORM_SECRET`] ([`signed_platform_event`]).
pub const PLATFORM_EVENTS: &[(&str, &str)] = &[
    ("platform_task_created.json", include_str!("../demo-events/platform_task_created.json")),
    ("platform_task_updated.json", include_str!("../demo-events/platform_task_updated.json")),
    ("platform_task_completed.json", include_str!("../demo-events/platform_task_completed.json")),
    ("platform_note_created.json", include_str!("../demo-events/platform_note_created.json")),
    ("platform_note_updated.json", include_str!("../demo-events/platform_note_updated.json")),
    ("platform_task_created.json (redelivered)", include_str!("../demo-events/platform_task_created.json")),
];
pub const CONTACT_DELETED: &[u8] = include_bytes!("../demo-events/contact_deleted.json");
pub const PRIYA_NOTE: &str = include_str!("../demo-events/platform_note_priya.json");
pub const SIGNED_EVENT: &[u8] = include_bytes!("../demo-events/call_inbound_hangup_completed.jwt");
/// The demo's no-code configuration: field mapping, tags, follow-up and tag rules.
pub const CONFIG: &str = include_str!("../demo-events/demo-config.json");
pub const WEBHOOK_SECRET: &str = "dialpad-fixture-secret-not-for-production";
/// The platform's secret in [`CONFIG`] (`platform_secret`): platform events are signed with it.
pub const PLATFORM_SECRET: &str = "demo-platform-secret-not-for-production";
pub const TOKEN: &str = "demo-private-integration-token";

/// A hangup, the template the bench varies.
pub const HANGUP: &str = include_str!("../demo-events/call_inbound_hangup_completed.json");

/// A platform event as the platform sends it: an HS256 JWT signed with [`PLATFORM_SECRET`],
/// issued now and valid for an hour.
pub fn signed_platform_event(event: &str) -> Vec<u8> {
    let mut claims: serde_json::Value = serde_json::from_str(event).expect("a demo platform event is JSON");
    let now = crate::jwt::now();
    claims["iat"] = now.into();
    claims["exp"] = (now + 3600).into();
    crate::jwt::sign(claims.to_string().as_bytes(), PLATFORM_SECRET).into_bytes()
}
