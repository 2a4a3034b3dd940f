//! An inbound call's ringing event pops the caller's HighLevel contact on the agent's screen in
//! Dialpad (`POST /api/v2/users/{id}/screenpop`).
//!
//! Not popped, each with its reason: a call that rings a call center or a group (no one
//! user's screen), a call that has ended, a ringing event older than `max_age_seconds` (the
//! call was most likely answered or hung up: a stale pop would open the wrong contact over
//! the agent's work), a sixth pop for the same user within a minute (Dialpad allows five),
//! and a redelivery (the same call pops once). A caller with no contact gets the configured
//! new-contact page, or nothing.

use super::vocabulary::{Capture, KnownState, Plan, Ref, Step, When, CONTACT_ID};
use crate::config::Config;
use crate::inbound::dialpad::CallEvent;
use crate::inbound::event::EventKind;
use crate::inbound::phone::E164;
use crate::state::screen_pop_key;
use serde_json::json;

/// The end of a screen pop's event key.
pub const SCREEN_POP_SUFFIX: &str = ":screen-pop";

/// Dialpad's screen-pop limit: pops per user per minute.
pub const POPS_PER_MINUTE: usize = 5;
const MINUTE_MS: i64 = 60_000;

/// Plans the pop of a ringing inbound call, or says why there is none. `None` when the
/// feature is off or the event is not an inbound ringing.
pub fn plan_screen_pop(call: &CallEvent, phone: &E164, config: &Config, known: &KnownState) -> Option<Plan> {
    let settings = config.screen_pop.as_ref()?;
    if call.state != "ringing" || call.direction != Some(crate::inbound::dialpad::Direction::Inbound) {
        return None;
    }
    let key = format!("{}{SCREEN_POP_SUFFIX}", call.event_key());
    let skip = |reason: String| Some(Plan::skip(EventKind::Call, key.clone(), reason));
    let Some(user) = &call.agent.user_id else {
        return skip("screen pop: the call rings a call center or a group, not one user's screen".into());
    };
    if known.call_ended {
        return skip("screen pop: the call has already ended".into());
    }
    if let Some(at) = call.event_ms.or(call.started_ms) {
        let age = known.now_ms - at;
        if age > settings.max_age_seconds as i64 * 1000 {
            return skip(format!("screen pop: the call rang {}s ago (more than {}s): a late pop would be stale", age / 1000, settings.max_age_seconds));
        }
    }
    let recent: Vec<(i64, &str)> = known.screen_pop_entries().filter(|(at, _)| known.now_ms - at < MINUTE_MS).collect();
    if recent.iter().any(|(_, id)| *id == call.call_id) {
        let plan = Plan::empty(EventKind::Call, key);
        return Some(plan.unchanged(format!("screen pop for call {} already sent to user {user}", call.call_id)));
    }
    if recent.len() >= POPS_PER_MINUTE {
        return skip(format!("screen pop: user {user} already had {POPS_PER_MINUTE} in the last minute, Dialpad's limit"));
    }
    let mut plan = Plan::empty(EventKind::Call, key);
    let location = config.location_id.clone();
    let contact_url = |contact: &str| settings.url.render(&|n| Some(if n == "location_id" { location.clone() } else { contact.to_string() }));
    let contact = call.custom_contact_id().map(str::to_string).or_else(|| known.contact_id.clone());
    match contact {
        Some(id) => plan.steps.push(pop_step(user, contact_url(&id), When::Always, Some(Ref::Known(id)))),
        None => {
            plan.steps.push(Step {
                query: vec![("locationId", config.location_id.clone()), ("number", phone.as_str().to_string())],
                capture: Capture::Contact,
                ..Step::new("get-duplicate-contact")
            });
            plan.steps.push(pop_step(user, contact_url(CONTACT_ID), When::ContactExisted, None));
            if let Some(unknown) = &settings.unknown_caller_url {
                let url = unknown.render(&|n| Some(if n == "location_id" { location.clone() } else { phone.as_str().to_string() }));
                plan.steps.push(pop_step(user, url, When::NoContactFound, None));
            }
        }
    }
    // The pops of the last minute, this one included (`now` is when it goes out).
    let mut times: Vec<String> = recent.iter().map(|(at, id)| format!("{at}:{id}")).collect();
    times.push(format!("{}:{}", known.now_ms, call.call_id));
    plan.records.push((screen_pop_key(&config.location_id, user), times.join(",")));
    plan.summary = format!("inbound call from {phone} ringing → screen pop for Dialpad user {user}");
    Some(plan)
}

fn pop_step(user: &str, url: String, when: When, contact: Option<Ref>) -> Step {
    Step { other_params: vec![("id", user.to_string())], body: Some(json!({ "screen_pop_uri": url })), when, contact, ..Step::new("screen_pop.initiate") }
}
