//! Shared harness of the end-to-end tests: the real plugin component (built from source by
//! the `artifacts` crate), compiled once per test process, run by the real host against the
//! real mock Contacts API on loopback.

// The WIT-generated error is what the tests assert on; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use dialpad_ghl_host::bindings::dialpad_ghl::sync::types as wit;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::HostResult;
use dialpad_ghl_host::engine::{CompiledPlugin, Runtime, RuntimeOptions};
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::settings::Settings;
use host_test::ghl_mock::{MockOptions, MockServer};
use std::sync::OnceLock;

pub mod oauth;
pub mod prism;
pub mod prism_dialpad;
pub mod serve;
pub mod spec_inputs;
pub mod tenants;
pub use dialpad_ghl_host::report;
pub use wit::{Outcome, Report, SyncError};

/// Dialpad's webhook fixtures, read where CI lays `../shared` beside the clone.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");
pub const FIXTURE_SECRET: &str = "dialpad-fixture-secret-not-for-production";
pub const TOKEN: &str = "pit-e2e-token-6b1f0c";
/// The platform's own secret (`platform_secret`), set on every harness: its events are signed.
pub const PLATFORM_SECRET: &str = "platform-e2e-secret-9d4a71";
pub const LOCATION: &str = "loc-e2e";

/// The fixtures in the order a day of calls delivers them.
pub const DAY_OF_EVENTS: &[&str] = &[
    "call_inbound_ringing_unknown_number.json",
    "call_inbound_connected.json",
    "call_inbound_hangup_completed.json",
    "call_recap_summary.json",
    "call_outbound_hangup_recorded.json",
    "call_inbound_missed.json",
    "call_voicemail_uploaded.json",
    "call_voicemail_transcription.json",
    "sms_inbound.json",
    "contact_created_shared.json",
    "contact_updated_new_email.json",
    "contact_deleted.json",
    "agent_status_on_duty.json",
];

/// One invocation of every operation, in an order that works on a fresh location: `{C}`, `{N}`
/// and `{T}` stand for the contact, note and task the earlier steps created.
pub const EVERY_OPERATION: &[(&str, &str)] = &[
    ("create-contact", r#"{"body":{"firstName":"Ana","lastName":"Lima","email":"ana@example.com","phone":"+14155550100","tags":["lead"]}}"#),
    ("get-contact", r#"{"contactId":"{C}"}"#),
    ("update-contact", r#"{"contactId":"{C}","body":{"city":"Austin"}}"#),
    ("upsert-contact", r#"{"body":{"email":"ana@example.com","phone":"+14155550100","companyName":"Lima Co"}}"#),
    ("get-duplicate-contact", r#"{"number":"+14155550100"}"#),
    ("search-contacts-advanced", r#"{"body":{"page":1,"pageLimit":20,"query":"Ana"}}"#),
    ("get-contacts", r#"{"limit":10}"#),
    ("add-tags", r#"{"contactId":"{C}","body":{"tags":["vip"]}}"#),
    ("remove-tags", r#"{"contactId":"{C}","body":{"tags":["lead"]}}"#),
    ("create-note", r#"{"contactId":"{C}","body":{"body":"First call went well."}}"#),
    ("get-all-notes", r#"{"contactId":"{C}"}"#),
    ("get-note", r#"{"contactId":"{C}","id":"{N}"}"#),
    ("update-note", r#"{"contactId":"{C}","id":"{N}","body":{"body":"First call went very well."}}"#),
    ("create-task", r#"{"contactId":"{C}","body":{"title":"Call back","dueDate":"2026-12-01T10:00:00Z","completed":false}}"#),
    ("get-all-tasks", r#"{"contactId":"{C}"}"#),
    ("get-task", r#"{"contactId":"{C}","taskId":"{T}"}"#),
    ("update-task", r#"{"contactId":"{C}","taskId":"{T}","body":{"title":"Call back today"}}"#),
    ("update-task-completed", r#"{"contactId":"{C}","taskId":"{T}","body":{"completed":true}}"#),
    ("get-appointments-for-contact", r#"{"contactId":"{C}"}"#),
    ("add-followers-contact", r#"{"contactId":"{C}","body":{"followers":["user-1"]}}"#),
    ("remove-followers-contact", r#"{"contactId":"{C}","body":{"followers":["user-1"]}}"#),
    ("add-contact-to-campaign", r#"{"contactId":"{C}","campaignId":"campaign-1","body":{}}"#),
    ("remove-contact-from-campaign", r#"{"contactId":"{C}","campaignId":"campaign-1"}"#),
    ("remove-contact-from-every-campaign", r#"{"contactId":"{C}"}"#),
    ("add-contact-to-workflow", r#"{"contactId":"{C}","workflowId":"workflow-1","body":{"eventStartTime":"2026-12-01T10:00:00+01:00"}}"#),
    ("delete-contact-from-workflow", r#"{"contactId":"{C}","workflowId":"workflow-1","body":{}}"#),
    ("create-association", r#"{"type":"add","body":{"contacts":["{C}"],"tags":["bulk"]}}"#),
    ("add-remove-contact-from-business", r#"{"body":{"ids":["{C}"],"businessId":"business-1"}}"#),
    ("get-contacts-by-businessId", r#"{"businessId":"business-1"}"#),
    ("delete-note", r#"{"contactId":"{C}","id":"{N}"}"#),
    ("delete-task", r#"{"contactId":"{C}","taskId":"{T}"}"#),
    ("delete-contact", r#"{"contactId":"{C}"}"#),
];

/// [`EVERY_OPERATION`]'s input for one step, with the ids filled in.
pub fn operation_input(template: &str, contact: &str, note: &str, task: &str) -> String {
    template.replace("{C}", contact).replace("{N}", note).replace("{T}", task)
}

/// A fixture with some fields changed: `edit` gets the event as JSON.
pub fn fixture_with(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut event: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    edit(&mut event);
    serde_json::to_vec(&event).unwrap()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e} (is ../shared beside the clone?)"))
}

/// The component, compiled once per process (a debug wasmtime takes ~2 s per compile).
pub fn plugin() -> &'static CompiledPlugin {
    static PLUGIN: OnceLock<CompiledPlugin> = OnceLock::new();
    PLUGIN.get_or_init(|| CompiledPlugin::from_file(std::path::Path::new(artifacts::PLUGIN_WASM)).expect("compiling the plugin"))
}

/// A mock API, and a host runtime targeting it.
pub struct Harness {
    pub mock: MockServer,
    pub settings: Settings,
    pub kv: KeyValueStore,
    pub runtime: Runtime,
}

impl Harness {
    /// Mock requiring [`TOKEN`]; host injecting it; durable key-value store.
    pub fn new() -> Harness {
        Harness::with(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }, |_| {})
    }

    /// Like [`Harness::new`], with the mock's options and the settings adjusted.
    pub fn with(mock_options: MockOptions, adjust: impl FnOnce(&mut Settings)) -> Harness {
        let mock = MockServer::start(mock_options).expect("starting the mock");
        let mut settings = Settings::default();
        settings.set("api_base", mock.base_url());
        settings.set("location_id", LOCATION);
        settings.set("platform_secret", PLATFORM_SECRET);
        settings.token = Some(Secret::new(TOKEN));
        adjust(&mut settings);
        let kv = KeyValueStore::new();
        let runtime = Runtime::new(plugin(), settings.runtime_options(true).unwrap(), kv.clone()).unwrap();
        Harness { mock, settings, kv, runtime }
    }

    /// A second runtime on the same mock and store with other options (a restarted host, a
    /// stateless host, …).
    pub fn runtime_with(&self, options: RuntimeOptions, kv: KeyValueStore) -> Runtime {
        Runtime::new(plugin(), options, kv).unwrap()
    }

    pub fn handle(&self, body: &[u8]) -> Result<Report, SyncError> {
        self.runtime.handle_webhook(body).expect("the plugin must not trap")
    }

    pub fn handle_fixture(&self, name: &str) -> Result<Report, SyncError> {
        self.handle(&fixture(name))
    }

    /// `METHOD path?query → status` of every request the mock received.
    pub fn requests(&self) -> Vec<String> {
        self.mock.requests().iter().map(|r| format!("{} {} → {}", r.method, r.path_and_query, r.status)).collect()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

pub use host_test::figure;

/// The plugin's answers to one event of each source, in the shapes the tests assert on. Every
/// call goes through the host's one dispatch ([`Inbound`] into `Runtime::handle`/`plan`).
pub trait Events {
    /// A Dialpad webhook body: its report or typed error.
    fn handle_webhook(&self, body: &[u8]) -> HostResult<Result<Report, SyncError>>;
    /// A platform task or note event, signed with [`PLATFORM_SECRET`] as the platform sends it.
    fn handle_platform(&self, event: &str) -> HostResult<Result<Report, SyncError>>;
    /// A Dialpad webhook body, planned as a dry run.
    fn plan_webhook(&self, body: &[u8]) -> HostResult<Result<wit::EventPlan, SyncError>>;
}

impl Events for Runtime {
    fn handle_webhook(&self, body: &[u8]) -> HostResult<Result<Report, SyncError>> {
        Ok(self.handle(&Inbound::new(Source::DialpadWebhook, body.to_vec()))?.result)
    }

    fn handle_platform(&self, event: &str) -> HostResult<Result<Report, SyncError>> {
        Ok(self.handle(&Inbound::new(Source::Platform, signed_platform_event(event)))?.result)
    }

    fn plan_webhook(&self, body: &[u8]) -> HostResult<Result<wit::EventPlan, SyncError>> {
        self.plan(&Inbound::new(Source::DialpadWebhook, body.to_vec()))
    }
}

/// A platform event's body as the platform sends it: a compact HS256 JWT whose claims are
/// `event` (as they are: a hostile event need not be JSON), signed with [`PLATFORM_SECRET`].
pub fn signed_platform_event(event: &str) -> Vec<u8> {
    host_test::jwt::sign(event.as_bytes(), PLATFORM_SECRET).into_bytes()
}

/// Host settings for tests against a mock at `api_base`: its location and token, the platform
/// secret, retries without waiting, and no client-side rate limit (the mocks have none unless a
/// test sets one).
pub fn quick_settings(api_base: &str, location: &str, token: &str) -> Settings {
    let mut settings = Settings::default();
    settings.set("api_base", api_base);
    settings.set("location_id", location);
    settings.set("platform_secret", PLATFORM_SECRET);
    settings.set("retry_base_delay_ms", 1);
    settings.token = Some(Secret::new(token));
    settings.rate_limiter = None;
    settings
}

/// Operation ids and statuses of a report.
pub fn operations(report: &Report) -> Vec<(String, Option<u16>)> {
    report.operations.iter().map(|o| (o.operation_id.clone(), o.status)).collect()
}
