//! What the mock holds for webhooks and subscriptions, and the ids it hands out.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The first id handed out: large, like Dialpad's, and the same in every run.
const FIRST_ID: i64 = 5_000_000_001;

pub(super) struct StoredWebhook {
    pub(super) hook_url: String,
    pub(super) secret: Option<String>,
}

/// The subscription kinds the mock has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Call,
    Sms,
    Contact,
}

impl Kind {
    pub(super) fn parse(segment: &str) -> Option<Kind> {
        match segment {
            "call" => Some(Kind::Call),
            "sms" => Some(Kind::Sms),
            "contact" => Some(Kind::Contact),
            _ => None,
        }
    }

    /// Its path segment, `/api/v2/subscriptions/{segment}`.
    pub(super) fn segment(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::Sms => "sms",
            Kind::Contact => "contact",
        }
    }
}

#[derive(Clone)]
pub(super) struct StoredSubscription {
    pub(super) kind: Kind,
    pub(super) webhook_id: Option<i64>,
    pub(super) enabled: bool,
    /// The kind's own fields as set (`target_id` as a number).
    pub(super) fields: Map<String, Value>,
}

/// Webhooks and subscriptions, each by id. One counter serves both, so an id of one kind
/// used as the other is a 404.
pub(super) struct Store {
    next_id: i64,
    pub(super) webhooks: BTreeMap<i64, StoredWebhook>,
    pub(super) subscriptions: BTreeMap<i64, StoredSubscription>,
}

impl Store {
    pub(super) fn new() -> Store {
        Store { next_id: FIRST_ID, webhooks: BTreeMap::new(), subscriptions: BTreeMap::new() }
    }

    pub(super) fn new_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}
