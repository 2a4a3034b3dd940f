//! What the CLI prints: one JSON line per event for machines, a readable summary for people.
//! Both come from the plugin's typed results; the host adds only the event's source name.

use crate::bindings::dialpad_ghl::sync::types as wit;
use crate::bindings::exports::dialpad_ghl::sync::views;
use serde_json::{json, Value};

pub fn kind_name(kind: wit::EventKind) -> &'static str {
    match kind {
        wit::EventKind::Call => "call",
        wit::EventKind::Contact => "contact",
        wit::EventKind::Sms => "sms",
        wit::EventKind::AgentStatus => "agent-status",
        wit::EventKind::Task => "task",
        wit::EventKind::Note => "note",
        wit::EventKind::HighlevelContact => "highlevel-contact",
    }
}

/// `("synced" | "unchanged" | "skipped", reason)`.
pub fn outcome_name(outcome: &wit::Outcome) -> (&'static str, Option<&str>) {
    match outcome {
        wit::Outcome::Synced => ("synced", None),
        wit::Outcome::Unchanged => ("unchanged", None),
        wit::Outcome::Skipped(reason) => ("skipped", Some(reason)),
    }
}

/// The error as `{type, message, …}`.
pub fn error_json(error: &wit::SyncError) -> Value {
    match error {
        wit::SyncError::InvalidSignature(m) => json!({"type": "invalid-signature", "message": m}),
        wit::SyncError::MalformedEvent(m) => json!({"type": "malformed-event", "message": m}),
        wit::SyncError::BadConfig(problems) => json!({
            "type": "bad-config",
            "message": problem_text(problems),
            "problems": problems.iter().map(|p| json!({"path": p.path, "message": p.message})).collect::<Vec<_>>(),
        }),
        wit::SyncError::InvalidInput(problems) => json!({
            "type": "invalid-input",
            "message": problem_text(problems),
            "problems": problems.iter().map(|p| json!({"path": p.path, "message": p.message})).collect::<Vec<_>>(),
        }),
        wit::SyncError::UnknownOperation(id) => {
            json!({"type": "unknown-operation", "message": format!("no Contacts API operation is called \"{id}\" (see `catalog`)")})
        }
        wit::SyncError::MissingScope(scopes) => json!({"type": "missing-scope", "message": format!("missing scope: {}", scopes.join(", ")), "scopes": scopes}),
        wit::SyncError::RateLimited(r) => {
            json!({"type": "rate-limited", "message": format!("rate limited on {}", r.operation_id), "operation_id": r.operation_id, "retry_after_ms": r.retry_after_ms})
        }
        wit::SyncError::Upstream(u) => json!({
            "type": "upstream",
            "message": format!("{} {} {} answered {}: {}", u.operation_id, u.method, u.path, u.status, u.message),
            "operation_id": u.operation_id, "method": u.method, "path": u.path, "status": u.status, "body": u.body,
        }),
        wit::SyncError::Transport(m) => json!({"type": "transport", "message": m}),
        wit::SyncError::Storage(m) => json!({"type": "storage", "message": m}),
        wit::SyncError::NotFound(m) => json!({"type": "not-found", "message": m}),
    }
}

fn problem_text(problems: &[wit::Problem]) -> String {
    problems.iter().map(|p| format!("{}: {}", if p.path.is_empty() { "/" } else { &p.path }, p.message)).collect::<Vec<_>>().join("; ")
}

pub fn error_message(error: &wit::SyncError) -> String {
    error_json(error)["message"].as_str().unwrap_or_default().to_string()
}

/// What went wrong, for a person watching the monitor: what it means and what to do.
pub fn plain_words(error: &wit::SyncError) -> String {
    use wit::SyncError as E;
    match error {
        E::InvalidSignature(m) => format!(
            "Refused: the event is not signed as configured here ({m}). Check that this host and the sender use the same secret (the Dialpad webhook secret, or platform_secret for platform events) and that the sender's clock is right."
        ),
        E::MalformedEvent(m) => format!("Refused: this is not an event the plugin can read ({m})."),
        E::BadConfig(problems) => format!("The plugin's configuration is invalid ({}). Fix it, restart, then replay the event.", problem_text(problems)),
        E::InvalidInput(problems) => format!("The event has missing or wrong fields: {}.", problem_text(problems)),
        E::UnknownOperation(id) => format!("No Contacts API operation is called \"{id}\"."),
        E::MissingScope(scopes) => format!("The HighLevel credential lacks the scope {}. Grant it in HighLevel, then replay the event.", scopes.join(", ")),
        E::RateLimited(r) => format!("HighLevel asked us to slow down (429) on {}. Retried automatically.", r.operation_id),
        E::Upstream(u) if u.status == 401 => format!("HighLevel refused the credential (401) on {}: the token is wrong, expired or revoked.", u.operation_id),
        E::Upstream(u) if u.status >= 500 => format!("HighLevel failed ({}) on {}: {}. Retried automatically; replay it if it ends here.", u.status, u.operation_id, u.message),
        E::Upstream(u) => format!("HighLevel refused {} ({}): {}.", u.operation_id, u.status, u.message),
        E::Transport(m) => format!("HighLevel could not be reached ({m}). Retried automatically; replay it once HighLevel answers."),
        E::Storage(m) => format!("The host's store failed ({m})."),
        E::NotFound(m) => format!("Nothing to attach it to: {m}."),
    }
}

/// A contact view as JSON (its parts parsed back from the JSON strings the plugin returns).
pub fn view_json(view: &views::ContactView) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    json!({
        "contact_id": view.contact_id,
        "contact": parse(&view.contact),
        "tasks": parse(&view.tasks),
        "notes": parse(&view.notes),
        "appointments": parse(&view.appointments),
        "from_cache": view.from_cache,
        "age_seconds": view.age_seconds,
        "operations": view.operations.iter().map(|o| json!({
            "operation_id": o.operation_id, "method": o.method, "path": o.path, "status": o.status, "attempts": o.attempts,
        })).collect::<Vec<_>>(),
    })
}

/// One JSON line for a handled event.
pub fn report_line(source: &str, result: &Result<wit::Report, wit::SyncError>) -> Value {
    match result {
        Ok(r) => {
            let (outcome, reason) = outcome_name(&r.outcome);
            json!({
                "event": source,
                "kind": kind_name(r.kind),
                "event_key": r.event_key,
                "outcome": outcome,
                "reason": reason,
                "summary": r.summary,
                "contact_id": r.contact_id,
                "note_id": r.note_id,
                "call_entry_id": r.call_entry_id,
                "operations": r.operations.iter().map(|o| json!({
                    "operation_id": o.operation_id, "method": o.method, "path": o.path, "status": o.status, "attempts": o.attempts,
                })).collect::<Vec<_>>(),
            })
        }
        Err(e) => json!({"event": source, "outcome": "failed", "error": error_json(e)}),
    }
}

/// One JSON line for a dry run.
pub fn plan_line(source: &str, result: &Result<wit::EventPlan, wit::SyncError>) -> Value {
    match result {
        Ok(p) => plan_json(source, p, true),
        Err(e) => json!({"event": source, "dry_run": true, "outcome": "failed", "error": error_json(e)}),
    }
}

/// A plan as JSON: `dry_run` when nothing was sent, false for the plan `handle` ran.
pub fn plan_json(source: &str, p: &wit::EventPlan, dry_run: bool) -> Value {
    let (outcome, reason) = outcome_name(&p.outcome);
    json!({
        "event": source,
        "dry_run": dry_run,
        "kind": kind_name(p.kind),
        "event_key": p.event_key,
        "outcome": outcome,
        "reason": reason,
        "summary": p.summary,
        "plan": p.operations.iter().map(|o| json!({
            "operation_id": o.operation_id, "method": o.method, "path": o.path,
            "body": o.body.as_deref().and_then(|b| serde_json::from_str::<Value>(b).ok()),
            "condition": o.condition,
        })).collect::<Vec<_>>(),
    })
}

/// A line a person reads: `✓ call_inbound_hangup… synced: inbound call from … (3 requests)`.
pub fn human_line(source: &str, result: &Result<wit::Report, wit::SyncError>) -> String {
    match result {
        Ok(r) => {
            let (outcome, reason) = outcome_name(&r.outcome);
            let requests: Vec<String> =
                r.operations.iter().map(|o| format!("{} {}", o.operation_id, o.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()))).collect();
            let detail = reason.map(str::to_string).unwrap_or_else(|| r.summary.clone());
            let mark = if outcome == "skipped" { "·" } else { "✓" };
            if requests.is_empty() {
                format!("{mark} {source}: {outcome}: {detail}")
            } else {
                format!("{mark} {source}: {outcome}: {detail} [{}]", requests.join(", "))
            }
        }
        Err(e) => format!("✗ {source}: failed: {}", error_message(e)),
    }
}
