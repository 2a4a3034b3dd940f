//! `/metrics`: what `serve` did, in the Prometheus (OpenMetrics) text format, through the
//! `prometheus-client` crate.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    events: Family<Labels, Counter>,
    requests: Family<Labels, Counter>,
    reconciled: Family<Labels, Counter>,
    queue_depth: Gauge,
    dead_letters: Gauge,
    latency: Histogram,
    handling: Histogram,
    /// The bounds on what senders hold (see `limits`).
    pub resources: Resources,
}

/// The metrics of `serve`'s bounds: refusals at each, and the bytes each budget holds.
#[derive(Clone, Default)]
pub struct Resources {
    pub http_refusals: Family<Labels, Counter>,
    pub budget_refusals: Family<Labels, Counter>,
    pub pruned_rows: Family<Labels, Counter>,
    pub inbox_bytes: Gauge,
    pub dead_letter_bytes: Gauge,
    pub bodies_in_flight_bytes: Gauge,
}

impl Resources {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_refusals",
            "Requests and connections refused by the listeners' bounds, by listener and reason: connections (closed at a cap), evicted (idle or slow, closed to make room), too-large, busy (body budget), timeout, broken",
            self.http_refusals.clone(),
        );
        registry.register(
            "budget_refusals",
            "Deliveries answered 507 because a disk budget was full, by budget (inbox, dead_letters)",
            self.budget_refusals.clone(),
        );
        registry.register("pruned_rows", "Rows removed by the retention or to make room, by table (inbox, dead_letters)", self.pruned_rows.clone());
        registry.register("inbox_bytes", "Bytes of the inbox's rows (queued and kept), against --inbox-budget", self.inbox_bytes.clone());
        registry.register("dead_letter_bytes", "Bytes of the dead letters, against --dead-letter-budget", self.dead_letter_bytes.clone());
        registry.register("bodies_in_flight_bytes", "Request body bytes held in memory now, against --body-budget", self.bodies_in_flight_bytes.clone());
    }

    pub fn http_refusal(&self, listener: &str, reason: &str) {
        self.http_refusals.get_or_create(&vec![("listener", listener.to_string()), ("reason", reason.to_string())]).inc();
    }

    pub fn budget_refusal(&self, budget: &str) {
        self.budget_refusals.get_or_create(&vec![("budget", budget.to_string())]).inc();
    }

    pub fn pruned(&self, table: &str, rows: u64) {
        self.pruned_rows.get_or_create(&vec![("table", table.to_string())]).inc_by(rows);
    }
}

/// The content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dialpad_ghl");
        let events = Family::<Labels, Counter>::default();
        registry.register(
            "events",
            "Deliveries by outcome: synced, unchanged, skipped, failed (dead-lettered), retried (put back after a transient failure), refused (on arrival)",
            events.clone(),
        );
        let requests = Family::<Labels, Counter>::default();
        registry.register("api_requests", "Contacts API requests by status (\"none\" when no answer came)", requests.clone());
        let reconciled = Family::<Labels, Counter>::default();
        registry.register("reconciled_calls", "Calls listed by the scheduled reconciliation, by outcome (synced: its webhook never came)", reconciled.clone());
        let queue_depth = Gauge::default();
        registry.register("queue_depth", "Deliveries accepted and not yet handled", queue_depth.clone());
        let dead_letters = Gauge::default();
        registry.register("dead_letters", "Deliveries that failed and wait for a replay", dead_letters.clone());
        // 5 ms … ~164 s.
        let latency = Histogram::new(exponential_buckets(0.005, 2.0, 16));
        registry.register("event_latency_seconds", "From acceptance to the end of handling", latency.clone());
        let handling = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("event_handling_seconds", "Time in the plugin for one handling, HTTP included", handling.clone());
        let resources = Resources::default();
        resources.register(&mut registry);
        Metrics { registry, events, requests, reconciled, queue_depth, dead_letters, latency, handling, resources }
    }
}

impl Metrics {
    pub fn event(&self, outcome: &str) {
        self.events.get_or_create(&vec![("outcome", outcome.to_string())]).inc();
    }

    pub fn reconciled(&self, outcome: &str) {
        self.reconciled.get_or_create(&vec![("outcome", outcome.to_string())]).inc();
    }

    pub fn request(&self, status: Option<u16>) {
        let status = status.map_or_else(|| "none".to_string(), |s| s.to_string());
        self.requests.get_or_create(&vec![("status", status)]).inc();
    }

    pub fn handled(&self, latency_seconds: f64, handling_seconds: f64) {
        self.latency.observe(latency_seconds);
        self.handling.observe(handling_seconds);
    }

    /// The exposition, with the gauges read now.
    pub fn render(&self, queue_depth: u64, dead_letters: u64) -> String {
        self.queue_depth.set(queue_depth as i64);
        self.dead_letters.set(dead_letters as i64);
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_gauges_show_in_the_exposition() {
        let metrics = Metrics::default();
        metrics.event("synced");
        metrics.event("synced");
        metrics.request(Some(201));
        metrics.request(None);
        metrics.handled(0.02, 0.01);
        let text = metrics.render(3, 1);
        for line in [
            "dialpad_ghl_events_total{outcome=\"synced\"} 2",
            "dialpad_ghl_api_requests_total{status=\"201\"} 1",
            "dialpad_ghl_api_requests_total{status=\"none\"} 1",
            "dialpad_ghl_queue_depth 3",
            "dialpad_ghl_dead_letters 1",
            "dialpad_ghl_event_latency_seconds_count 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
    }
}
