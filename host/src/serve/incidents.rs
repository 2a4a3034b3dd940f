//! Placeholder of the incidents' input types until the detection lands.

/// What the alerts and the banner look at: the inbox now.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub now_ms: i64,
    pub queue_depth: u64,
    pub oldest_queued_ms: Option<i64>,
    pub failed: u64,
    pub recent: Vec<Recent>,
    pub locations: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct Recent {
    pub id: i64,
    pub tenant: String,
    pub received_ms: i64,
    pub state: String,
    pub error: Option<String>,
    pub kind: Option<String>,
}
