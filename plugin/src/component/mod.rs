//! The WIT edge: adapts the exported interfaces to the plain-Rust core, and the core's store
//! and transport to `wasi:keyvalue` and `wasi:http` (through waki's bindings). Nothing else here.

mod http;
mod incoming;

wit_bindgen::generate!({
    world: "plugin-core",
    path: "../wit",
    generate_all,
});

use crate::config::{Config, CONFIG_KEY};
use crate::error as core;
use crate::execute::{HttpRequest, HttpResponse, NoAnswer, Transport};
use crate::inbound::event::{EventKind, InboundEvent};
use crate::pipeline;
use crate::report;
use crate::state::Store;
use dialpad_ghl::sync::types as wit;
use exports::dialpad_ghl::sync::{actions, backfill, meta, triggers, views};
use std::time::Duration;
use wasi::keyvalue::store as kv;

struct Component;

impl meta::Guest for Component {
    fn plugin_version() -> String {
        crate::PLUGIN_VERSION.to_string()
    }

    fn api_version() -> String {
        crate::API_VERSION.to_string()
    }

    fn config_schema() -> String {
        crate::config::JSON_SCHEMA.to_string()
    }

    fn validate_config(config: String) -> Vec<wit::Problem> {
        wit_problems(Config::problems(&config))
    }

    fn platform_event_schema() -> String {
        crate::inbound::platform::JSON_SCHEMA.to_string()
    }

    fn trigger_catalog() -> Vec<wit::TriggerInfo> {
        crate::triggers::catalog()
            .into_iter()
            .map(|t| wit::TriggerInfo {
                id: t.id.to_string(),
                source: t.source.to_string(),
                inbound: t.inbound.to_string(),
                kind: kind(t.kind),
                summary: t.summary.to_string(),
                payload_schema: t.payload_schema.to_string(),
                event_schema: t.event_schema.to_string(),
            })
            .collect()
    }
}

impl triggers::Guest for Component {
    /// The door: a signed event's time claims are held to the clock here.
    fn route(event: wit::InboundEvent) -> Result<wit::Routing, wit::SyncError> {
        pipeline::route(&inbound(event), &load_config()?, now()).map(route).map_err(error)
    }

    /// After the door: the signature is verified again, the event's age is not held against it.
    fn handle(event: wit::InboundEvent) -> wit::Handled {
        handle_event(event, false)
    }

    fn plan(event: wit::InboundEvent) -> Result<wit::EventPlan, wit::SyncError> {
        let config = load_config()?;
        let mut store = Bucket::open()?;
        pipeline::plan(&inbound(event), &config, &mut store).map(plan).map_err(error)
    }

    /// Reads the event as `plan` does; opens no key-value bucket and sends nothing.
    fn normalize(event: wit::InboundEvent) -> Result<wit::NormalizedEvent, wit::SyncError> {
        let normalized = crate::triggers::normalize(&inbound(event), &load_config()?).map_err(error)?;
        Ok(wit::NormalizedEvent { trigger: normalized.trigger.to_string(), event: normalized.event.to_string() })
    }
}

/// Handles one event; `arriving` when handling is the door itself (the HTTP handler), so that
/// its time claims are checked as `route` checks them.
fn handle_event(event: wit::InboundEvent, arriving: bool) -> wit::Handled {
    let ready = load_config().and_then(|config| Ok((config, Bucket::open()?)));
    let (config, mut store) = match ready {
        Ok(ready) => ready,
        // Failed before planning: no plan. (The error is already WIT's.)
        Err(e) => return wit::Handled { plan: None, result: Err(e) },
    };
    let event = inbound(event);
    let handled = if arriving {
        pipeline::handle_arriving(&event, now(), &config, &mut store, &mut WasiHttp)
    } else {
        pipeline::handle(&event, &config, &mut store, &mut WasiHttp)
    };
    wit::Handled { plan: handled.plan.map(plan), result: handled.result.map(report).map_err(error) }
}

/// Seconds since 1970, from `wasi:clocks/wall-clock`.
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn inbound(event: wit::InboundEvent) -> InboundEvent {
    match event {
        wit::InboundEvent::DialpadWebhook(body) => InboundEvent::DialpadWebhook(body),
        wit::InboundEvent::PlatformEvent(body) => InboundEvent::PlatformEvent(body),
        wit::InboundEvent::HighlevelWebhook(body) => InboundEvent::HighLevelWebhook(body),
    }
}

impl backfill::Guest for Component {
    fn sync_page(window: backfill::Window, cursor: Option<String>) -> Result<backfill::Page, wit::SyncError> {
        let config = load_config()?;
        let mut store = Bucket::open()?;
        let page = crate::backfill::sync_page(&config, &window_of(window), cursor.as_deref(), &mut store, &mut WasiHttp).map_err(error)?;
        Ok(backfill::Page {
            calls: page.calls.into_iter().map(|(call_id, result)| backfill::SyncedCall { call_id, handled: result.map(report).map_err(error) }).collect(),
            next_cursor: page.next_cursor,
            oldest_started: page.oldest_started,
        })
    }

    fn plan_page(window: backfill::Window, cursor: Option<String>) -> Result<backfill::PlannedPage, wit::SyncError> {
        let config = load_config()?;
        let mut store = Bucket::open()?;
        let page = crate::backfill::plan_page(&config, &window_of(window), cursor.as_deref(), &mut store, &mut WasiHttp).map_err(error)?;
        Ok(backfill::PlannedPage {
            calls: page.calls.into_iter().map(|(call_id, result)| backfill::PlannedCall { call_id, plan: result.map(plan).map_err(error) }).collect(),
            next_cursor: page.next_cursor,
            oldest_started: page.oldest_started,
        })
    }
}

fn window_of(w: backfill::Window) -> crate::backfill::Window {
    crate::backfill::Window { started_after: w.started_after, started_before: w.started_before }
}

impl views::Guest for Component {
    fn get(subject: views::Subject) -> Result<views::ContactView, wit::SyncError> {
        let config = load_config()?;
        let mut store = Bucket::open()?;
        let subject = match subject {
            views::Subject::ContactId(id) => crate::views::Subject::ContactId(id),
            views::Subject::DialpadContact(id) => crate::views::Subject::DialpadContact(id),
            views::Subject::Phone(p) => crate::views::Subject::Phone(p),
        };
        let v = crate::views::get_view(&subject, &config, &mut store, &mut WasiHttp, now()).map_err(error)?;
        Ok(views::ContactView {
            contact_id: v.contact_id,
            contact: v.contact.to_string(),
            tasks: v.tasks.to_string(),
            notes: v.notes.to_string(),
            appointments: v.appointments.to_string(),
            from_cache: v.from_cache,
            age_seconds: v.age_seconds,
            operations: v.operations.into_iter().map(operation).collect(),
        })
    }
}

impl actions::Guest for Component {
    fn catalog() -> Vec<wit::OperationInfo> {
        // Without a configuration there are no grants to judge by: everything is listed as available.
        let config = load_config().ok();
        crate::actions::catalog(config.as_ref())
            .into_iter()
            .map(|info| wit::OperationInfo {
                id: info.id.to_string(),
                api: info.operation.api.as_str().to_string(),
                method: info.operation.method.as_str().to_string(),
                path: info.operation.path.to_string(),
                scope: info.operation.scope.as_str().to_string(),
                summary: info.operation.summary.to_string(),
                deprecated: info.operation.deprecated,
                input_schema: info.input_schema.to_string(),
                missing_scopes: info.missing_scopes.into_iter().map(str::to_string).collect(),
            })
            .collect()
    }

    fn invoke(operation_id: String, input: String) -> Result<String, wit::SyncError> {
        let config = load_config()?;
        let mut store = Bucket::open()?;
        pipeline::invoke_action(&operation_id, &input, &config, &mut store, &mut WasiHttp).map_err(error)
    }
}

export!(Component);
// `wasi:http/incoming-handler` (`incoming.rs`), through the export macro of the bindings waki
// generated for `wasi:http/proxy`: the types are waki's, as the outbound client's are.
waki::bindings::export!(Component with_types_in waki::bindings);

fn wit_problems(problems: Vec<core::Problem>) -> Vec<wit::Problem> {
    problems.into_iter().map(|p| wit::Problem { path: p.path, message: p.message }).collect()
}

fn load_config() -> Result<Config, wit::SyncError> {
    let bad = |message: String| wit::SyncError::BadConfig(vec![wit::Problem { path: String::new(), message }]);
    match wasi::config::store::get(CONFIG_KEY) {
        Ok(Some(text)) => Config::from_store_value(&text).map_err(error),
        Ok(None) => Err(bad(format!("wasi:config has no \"{CONFIG_KEY}\" key: the configuration JSON goes there"))),
        Err(wasi::config::store::Error::Upstream(m) | wasi::config::store::Error::Io(m)) => Err(bad(format!("wasi:config failed: {m}"))),
    }
}

/// The key-value bucket `""`, the only identifier every host accepts.
struct Bucket(kv::Bucket);

impl Bucket {
    fn open() -> Result<Bucket, wit::SyncError> {
        kv::open("").map(Bucket).map_err(|e| wit::SyncError::Storage(kv_error(e)))
    }
}

fn kv_error(e: kv::Error) -> String {
    match e {
        kv::Error::NoSuchStore => "no such store".into(),
        kv::Error::AccessDenied => "access denied".into(),
        kv::Error::Other(m) => m,
    }
}

impl Store for Bucket {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(kv_error)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.set(key, value).map_err(kv_error)
    }

    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, String> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // The answer names each key found; a host may leave out the ones it has not.
        let found = wasi::keyvalue::batch::get_many(&self.0, keys).map_err(kv_error)?;
        let mut found: Vec<(String, Vec<u8>)> = found.into_iter().flatten().collect();
        Ok(keys.iter().map(|key| found.iter().position(|(k, _)| k == key).map(|at| found.swap_remove(at).1)).collect())
    }
}

/// `wasi:http` through the host.
struct WasiHttp;

impl Transport for WasiHttp {
    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, NoAnswer> {
        http::send(request)
    }

    fn send_all(&mut self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, NoAnswer>> {
        http::send_all(requests)
    }

    fn sleep_ms(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

fn kind(k: EventKind) -> wit::EventKind {
    match k {
        EventKind::Call => wit::EventKind::Call,
        EventKind::Contact => wit::EventKind::Contact,
        EventKind::Sms => wit::EventKind::Sms,
        EventKind::AgentStatus => wit::EventKind::AgentStatus,
        EventKind::Task => wit::EventKind::Task,
        EventKind::Note => wit::EventKind::Note,
        EventKind::HighLevelContact => wit::EventKind::HighlevelContact,
    }
}

fn outcome(o: report::Outcome) -> wit::Outcome {
    match o {
        report::Outcome::Synced => wit::Outcome::Synced,
        report::Outcome::Unchanged => wit::Outcome::Unchanged,
        report::Outcome::Skipped(reason) => wit::Outcome::Skipped(reason),
    }
}

fn route(r: report::Route) -> wit::Routing {
    wit::Routing { kind: kind(r.kind), lane: r.lane }
}

fn report(r: report::Report) -> wit::Report {
    wit::Report {
        kind: kind(r.kind),
        event_key: r.event_key,
        outcome: outcome(r.outcome),
        summary: r.summary,
        contact_id: r.contact_id,
        note_id: r.note_id,
        call_entry_id: r.call_entry_id,
        operations: r.operations.into_iter().map(operation).collect(),
    }
}

fn operation(o: report::ExecutedOperation) -> wit::ExecutedOperation {
    wit::ExecutedOperation { operation_id: o.operation_id, method: o.method, path: o.path, status: o.status, attempts: o.attempts }
}

fn plan(p: report::PlanView) -> wit::EventPlan {
    wit::EventPlan {
        kind: kind(p.kind),
        event_key: p.event_key,
        outcome: outcome(p.outcome),
        summary: p.summary,
        operations: p
            .operations
            .into_iter()
            .map(|o| wit::PlannedOperation { operation_id: o.operation_id, method: o.method, path: o.path, body: o.body, condition: o.condition })
            .collect(),
    }
}

fn error(e: core::SyncError) -> wit::SyncError {
    match e {
        core::SyncError::InvalidSignature(m) => wit::SyncError::InvalidSignature(m),
        core::SyncError::MalformedEvent(m) => wit::SyncError::MalformedEvent(m),
        core::SyncError::BadConfig(problems) => wit::SyncError::BadConfig(wit_problems(problems)),
        core::SyncError::InvalidInput(problems) => wit::SyncError::InvalidInput(wit_problems(problems)),
        core::SyncError::UnknownOperation(id) => wit::SyncError::UnknownOperation(id),
        core::SyncError::MissingScope(s) => wit::SyncError::MissingScope(s),
        core::SyncError::RateLimited { operation_id, retry_after_ms } => wit::SyncError::RateLimited(wit::RateLimited { operation_id, retry_after_ms }),
        core::SyncError::Upstream(u) => wit::SyncError::Upstream(wit::UpstreamFailure {
            operation_id: u.operation_id,
            method: u.method,
            path: u.path,
            status: u.status,
            message: u.message,
            body: u.body,
        }),
        core::SyncError::Transport(m) => wit::SyncError::Transport(m),
        core::SyncError::Storage(m) => wit::SyncError::Storage(m),
        core::SyncError::NotFound(m) => wit::SyncError::NotFound(m),
    }
}
