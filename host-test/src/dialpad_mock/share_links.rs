//! Recording share links (operation `recording_share_link.create`): `POST
//! /api/v2/recordingsharelink` `{recording_id, recording_type, privacy}` → the spec's
//! `RecordingShareLink`: `id`, `access_link`, `item_id` (the recording's id), `type` (the
//! recording's type), `privacy`, `date_added`.
//!
//! `recording_type` is one of `callrecording`, `admincallrecording`, `voicemail`; `privacy` one
//! of `admin`, `company`, `owner`, `public`, `owner` by default; else 400. The mock knows no
//! recordings, so any id is shared. Asking again for the same recording and privacy answers
//! the same link. Every link is kept ([`super::DialpadMock::share_links`]).

use serde_json::{json, Map, Value};

use super::fields::one_of;
use super::reply::Reply;

const RECORDING_TYPES: [&str; 3] = ["admincallrecording", "callrecording", "voicemail"];
const PRIVACIES: [&str; 4] = ["admin", "company", "owner", "public"];

/// The links made, in order.
#[derive(Default)]
pub(super) struct ShareLinks(pub(super) Vec<Value>);

impl ShareLinks {
    pub(super) fn create(&mut self, body: &Map<String, Value>, now: &str) -> Reply {
        let (kind, privacy) = match (one_of(body, "recording_type", &RECORDING_TYPES), one_of(body, "privacy", &PRIVACIES)) {
            (Ok(kind), Ok(privacy)) => (kind.unwrap_or_default(), privacy.unwrap_or_else(|| "owner".into())),
            (Err(reply), _) | (_, Err(reply)) => return reply,
        };
        let recording = body.get("recording_id").and_then(Value::as_str).unwrap_or_default();
        if let Some(link) = self.0.iter().find(|l| l["item_id"] == recording && l["type"] == kind.as_str() && l["privacy"] == privacy.as_str()) {
            return Reply::json(200, link.clone());
        }
        let id = format!("srl{:013}", self.0.len() + 1);
        let link = json!({
            "id": id,
            "access_link": format!("https://dialpad.example/r/{id}"),
            "item_id": recording,
            "type": kind,
            "privacy": privacy,
            "date_added": now,
        });
        self.0.push(link.clone());
        Reply::json(200, link)
    }
}
