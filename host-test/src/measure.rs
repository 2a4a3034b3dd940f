//! What the bench's parts share: the options, the rows they add to the run's results, the
//! percentiles and units they print, and the mock and settings they measure against.

use crate::ghl_mock::{MockOptions, MockServer, RateLimit};
use crate::support::scratch_dir;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::outbound::RateLimiter;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::{CompiledPlugin, Runtime};
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::settings::Settings;
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const TOKEN: &str = "bench-token";
pub(crate) const LOCATION: &str = "loc-bench";

/// How long the benchmark runs: `quick` takes a few seconds (for a test of the command).
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    pub quick: bool,
    /// The rate-limit window of the burst, standing for HighLevel's 10 s.
    pub burst_window: Duration,
}

/// Requests one fixture made, against the fewest the spec allows for what it must do.
#[derive(Clone, Debug)]
pub struct Workflow {
    pub name: String,
    /// Operation ids, in order.
    pub made: Vec<String>,
    pub minimum: usize,
    pub why: String,
}

/// One line of the summary table.
#[derive(Clone, Debug)]
pub struct Row {
    pub measure: String,
    pub figure: String,
    pub goal: String,
    /// `met`, or how far from it.
    pub verdict: String,
}

/// Everything one run measured.
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub rows: Vec<Row>,
    pub workflows: Vec<Workflow>,
    pub notes: Vec<String>,
}

impl Results {
    pub(crate) fn row(&mut self, measure: &str, figure: String, goal: &str, verdict: String) {
        self.rows.push(Row { measure: measure.into(), figure, goal: goal.into(), verdict });
    }
}

/// p50 and p99 of a sample.
pub(crate) fn percentiles(mut sample: Vec<Duration>) -> (Duration, Duration) {
    sample.sort();
    let at = |q: f64| sample[((sample.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

pub(crate) fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

pub(crate) fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `met`, or the factor by which `value` misses an upper bound.
pub(crate) fn at_most(value: f64, goal: f64) -> String {
    if value <= goal {
        "met".into()
    } else {
        format!("missed: {:.2}× the goal", value / goal)
    }
}

pub(crate) fn settings_for(mock: &MockServer) -> Settings {
    let mut settings = Settings::default();
    settings.set("api_base", mock.base_url());
    settings.set("location_id", LOCATION);
    settings.token = Some(Secret::new(TOKEN));
    // The mock has no limit here; the burst measures the limiter on its own.
    settings.rate_limiter = None;
    settings
}

pub(crate) fn mock() -> anyhow::Result<MockServer> {
    MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() })
}

/// A Dialpad webhook body as the host carries it.
pub(crate) fn webhook(body: Vec<u8>) -> Inbound {
    Inbound::new(Source::DialpadWebhook, body)
}

/// `serve` in-process on a fresh state folder named `name`, with `workers` workers, against a
/// mock that enforces `limit` requests per `window` (answering each after `latency`), the
/// host's limiter set to the same: the mock, and the server.
pub(crate) fn limited_serve(
    plugin: &CompiledPlugin,
    name: &str,
    limit: u32,
    window: Duration,
    latency: Duration,
    workers: usize,
) -> anyhow::Result<(MockServer, Server)> {
    let api =
        MockServer::start(MockOptions { token: Some(TOKEN.into()), rate_limit: Some(RateLimit { max_requests: limit, window }), ..MockOptions::default() })?;
    api.set_latency(latency);
    let mut settings = settings_for(&api);
    settings.rate_limiter = Some(Arc::new(RateLimiter::new(limit, window)));
    let db = scratch_dir(name).join("state.db");
    let runtime = Runtime::new(plugin, settings.runtime_options(true)?, KeyValueStore::open(&db)?)?;
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: "127.0.0.1:0".parse()?,
        workers,
        retry_base: Duration::from_millis(100),
        ..ServeOptions::default()
    };
    let server = Server::start(runtime, &db, DeadLetters::open(&db)?, options)?;
    Ok((api, server))
}
