//! HighLevel contact webhooks → Dialpad's contacts (two-way contact sync).

use super::vocabulary::Plan;
use crate::config::Config;
use crate::inbound::event::EventKind;
use crate::inbound::highlevel::HighLevelEvent;

/// Plans one HighLevel webhook. Pure.
pub fn plan(event: &HighLevelEvent, _config: &Config) -> Plan {
    match event {
        HighLevelEvent::Other(kind) => Plan::skip(EventKind::HighLevelContact, format!("highlevel:{kind}"), format!("HighLevel webhook {kind} is not synced")),
        HighLevelEvent::Contact(c) => Plan::skip(EventKind::HighLevelContact, format!("highlevel-contact:{}:{}", c.id, c.change.as_str()), "two-way contact sync is off"),
    }
}
