//! A call's story: every delivery of one Dialpad call (its legs: ringing, connected, hangup,
//! the recording, the transcript, the recap) in the order they came, what each changed in
//! HighLevel, and links to the contact, the note and the call entry.

use super::row::{row_json, Detail, COLUMNS};
use crate::settings::{LinkIds, LinkTemplates};
use crate::storage::db::Db as Connection;
use serde_json::{json, Value};

/// Where the links go: the templates, HighLevel's app and the tenant's location.
pub struct LinkContext<'a> {
    pub templates: &'a LinkTemplates,
    pub app_url: &'a str,
    pub location_id: &'a str,
}

/// The story of `call_id` at `tenant`; `None` when no delivery of it is kept.
pub fn story(db: &Connection, tenant: &str, call_id: &str, links: &LinkContext<'_>) -> anyhow::Result<Option<Value>> {
    let mut query = db.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM inbox WHERE id IN (SELECT id FROM inbox_keys WHERE key = ?1) AND tenant = ?2 AND call_id = ?3 ORDER BY id"
    ))?;
    let events: Vec<Value> =
        query.query_map(crate::storage::db::params![format!("call:{call_id}"), tenant, call_id], |r| row_json(r, Detail::Labels))?.collect::<Result<_, _>>()?;
    if events.is_empty() {
        return Ok(None);
    }
    // The newest id each event learned (a later leg may find the contact an earlier one made).
    let last = |key: &str| events.iter().rev().find_map(|e| e[key].as_str().map(str::to_string));
    let (contact_id, note_id, call_entry_id) = (last("contact_id"), last("note_id"), last("call_entry_id"));
    let ids =
        LinkIds { location_id: links.location_id, contact_id: contact_id.as_deref(), note_id: note_id.as_deref(), call_entry_id: call_entry_id.as_deref() };
    let link = |template: &str, id: &Option<String>| id.as_ref().and_then(|_| LinkTemplates::render(template, links.app_url, ids));
    let party = events.iter().rev().map(|e| e["party"].clone()).find(|p| p["phone"].is_string() || p["name"].is_string()).unwrap_or(Value::Null);
    let events: Vec<Value> = events
        .into_iter()
        .map(|mut event| {
            let changes: Vec<Value> = event["outcome"]["operations"]
                .as_array()
                .map(|ops| {
                    ops.iter()
                        .map(|op| json!({"operation_id": op["operation_id"], "method": op["method"], "path": op["path"], "status": op["status"]}))
                        .collect()
                })
                .unwrap_or_default();
            event["changes"] = Value::Array(changes);
            // The leg the body named; else the one the plugin's event key names (`call:<id>:hangup`).
            if event["leg"].is_null() {
                let key = event["outcome"]["event_key"].as_str().unwrap_or_default();
                event["leg"] = key.strip_prefix("call:").and_then(|rest| rest.split_once(':')).map(|(_, leg)| leg.to_string()).into();
            }
            event
        })
        .collect();
    Ok(Some(json!({
        "call_id": call_id,
        "tenant": tenant,
        "party": party,
        "contact_id": contact_id, "note_id": note_id, "call_entry_id": call_entry_id,
        "links": {
            "contact": link(&links.templates.contact, &contact_id),
            "note": link(&links.templates.note, &note_id),
            "call_entry": link(&links.templates.call_entry, &call_entry_id),
        },
        "events": events,
    })))
}
