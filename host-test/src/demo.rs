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

/// A bundled event as Dialpad would deliver it now: a `ringing` event gets the current time as
/// its `event_timestamp` (a screen pop is only sent for a call that is ringing now); any other
/// event is returned as it is.
pub fn as_delivered_now(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut event) if event["state"] == "ringing" => {
            event["event_timestamp"] = (crate::jwt::now() * 1000).into();
            event.to_string().into_bytes()
        }
        _ => body.to_vec(),
    }
}

/// The HighLevel users of the demo's location: the Dialpad agents of the bundled events (id,
/// first and last name, e-mail), so their calls' notes and tasks are assigned to them.
pub const HIGHLEVEL_USERS: [(&str, &str, &str, &str); 2] =
    [("hl-user-maya", "Maya", "Patel", "maya.patel@example.com"), ("hl-user-jordan", "Jordan", "Lee", "jordan.lee@example.com")];

/// Maya Patel's Dialpad user id: she rings on the inbound calls and places the click-to-call.
pub const MAYA_DIALPAD_ID: &str = "5766401227931648";

/// The same caller as the bundled ringing event, calling again (a new call, ringing now).
pub fn ringing_again(call_id: u64) -> Vec<u8> {
    let mut event: serde_json::Value = serde_json::from_slice(EVENTS[0].1).expect("the bundled ringing event is JSON");
    event["call_id"] = call_id.into();
    as_delivered_now(event.to_string().as_bytes())
}

/// The hangup of a call placed by click-to-call: Maya's outbound call `call_id` to `phone`,
/// carrying the `custom_data` that names the HighLevel contact `contact_id`.
pub fn click_to_call_hangup(call_id: &str, phone: &str, contact_id: &str) -> Vec<u8> {
    let mut event: serde_json::Value = serde_json::from_str(HANGUP).expect("the bundled hangup is JSON");
    event["call_id"] = call_id.parse::<u64>().map(Into::into).unwrap_or_else(|_| call_id.into());
    event["direction"] = "outbound".into();
    event["external_number"] = phone.into();
    event["contact"] = serde_json::json!({"id": 4904325631939999_u64, "name": phone, "phone": phone, "email": "", "type": "local"});
    event["custom_data"] = format!("highlevel-contact:{contact_id}").into();
    for key in ["recap_summary", "transcription_text"] {
        event[key] = serde_json::Value::Null;
    }
    event.to_string().into_bytes()
}
