//! [`MockServer`]: a running mock, and what the location holds ([`Holdings`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::faults::Faults;
use super::handlers::router;
use super::loopback::LoopbackServer;
use super::options::MockOptions;
use super::rate_limit::RateLimit;
use super::reply::error_texts;
use super::request_log::RecordedRequest;
use super::state::MockState;
use crate::outbox::WebhookDelivery;

/// Per contact phone: how many contacts, their notes' bodies, their tasks' titles.
pub type Holdings = BTreeMap<String, (usize, Vec<String>, Vec<String>)>;

/// A running mock on 127.0.0.1 (random port unless given). Runs on its own thread with its own
/// tokio runtime, so callers can be plain synchronous code. Dropping it shuts the server down.
pub struct MockServer {
    server: LoopbackServer,
    state: Arc<MockState>,
}

impl MockServer {
    /// Starts a mock on `127.0.0.1:0` (a free port chosen by the OS).
    pub fn start(options: MockOptions) -> anyhow::Result<MockServer> {
        MockServer::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options)
    }

    /// Starts a mock on `addr`. The socket is bound before this returns, so the mock accepts
    /// connections as soon as the caller has the [`MockServer`] in hand.
    pub fn start_on(addr: SocketAddr, options: MockOptions) -> anyhow::Result<MockServer> {
        // Parse the embedded error schemas up front so a broken embed fails here, not in a request.
        error_texts();
        let state = Arc::new(MockState::new(options));
        let server = LoopbackServer::start("mock Contacts API", addr, router(Arc::clone(&state)))?;
        Ok(MockServer { server, state })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash, ready to prefix operation paths.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The shared state, for callers that want to inspect it without going through HTTP.
    pub fn state(&self) -> &Arc<MockState> {
        &self.state
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// All contacts, in creation order.
    pub fn contacts(&self) -> Vec<Value> {
        self.state.contacts()
    }

    /// All notes of all contacts, in creation order, each with its `contactId`.
    pub fn notes(&self) -> Vec<Value> {
        self.state.notes()
    }

    /// All tasks of all contacts, in creation order, each with its `contactId`.
    pub fn tasks(&self) -> Vec<Value> {
        self.state.tasks()
    }

    /// All appointments, in seeding order, each with its `contactId`.
    pub fn appointments(&self) -> Vec<Value> {
        self.state.appointments()
    }

    /// What the location holds, without the ids the mock made up: contacts by phone, each with
    /// how many there are, their notes' bodies and their tasks' titles (sorted). Two runs that
    /// synced the same events hold equal values.
    pub fn holdings(&self) -> Holdings {
        let (notes, tasks) = (self.notes(), self.tasks());
        let mut held = Holdings::new();
        for contact in self.contacts() {
            let id = contact["id"].as_str().unwrap_or_default();
            let entry = held.entry(contact["phone"].as_str().unwrap_or("-").to_string()).or_default();
            entry.0 += 1;
            entry.1.extend(notes.iter().filter(|n| n["contactId"] == id).filter_map(|n| n["body"].as_str().map(str::to_string)));
            entry.2.extend(tasks.iter().filter(|t| t["contactId"] == id).filter_map(|t| t["title"].as_str().map(str::to_string)));
            entry.1.sort();
            entry.2.sort();
        }
        held
    }

    /// Seeds a contact directly (no request logged); returns its id.
    pub fn seed_contact(&self, contact: Value) -> String {
        self.state.seed_contact(contact)
    }

    /// Seeds an appointment of `contact_id` (the API cannot create one); returns its id.
    pub fn seed_appointment(&self, contact_id: &str, event: Value) -> String {
        self.state.seed_appointment(contact_id, event)
    }

    /// Seeds a note of `contact_id` directly (no request logged); see [`MockState::seed_note`].
    pub fn seed_note(&self, contact_id: &str, body: &str) -> Option<String> {
        self.state.seed_note(contact_id, body)
    }

    /// Keeps the first `kept` notes only; see [`MockState::truncate_notes`].
    pub fn truncate_notes(&self, kept: usize) {
        self.state.truncate_notes(kept)
    }

    /// Adds a user that `GET /users/` lists for every location; see [`MockState::add_user`].
    pub fn add_user(&self, id: &str, first_name: &str, last_name: &str, email: &str) {
        self.state.add_user(id, first_name, last_name, email)
    }

    /// The users, in seeding order.
    pub fn users(&self) -> Vec<Value> {
        self.state.users()
    }

    /// Every conversation, in creation order.
    pub fn conversations(&self) -> Vec<Value> {
        self.state.conversations()
    }

    /// Every call message, in creation order, with its attachments; see
    /// [`MockState::call_entries`].
    pub fn call_entries(&self) -> Vec<Value> {
        self.state.call_entries()
    }

    /// Sends HighLevel's signed contact webhooks to `url` from now on (`None` stops them); see
    /// [`MockState::set_contact_webhook`].
    pub fn set_contact_webhook(&self, url: Option<String>) {
        self.state.set_contact_webhook(url)
    }

    /// Edits a contact as a person in HighLevel's UI would, firing one `ContactUpdate`; see
    /// [`MockState::edit_contact`].
    pub fn edit_contact(&self, id: &str, fields: Value) -> Value {
        self.state.edit_contact(id, fields)
    }

    /// Every contact webhook sent so far, with the receiver's answer.
    pub fn contact_webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.state.contact_webhook_deliveries()
    }

    /// Waits until every contact webhook queued so far has been delivered; false if `timeout`
    /// passed first.
    pub fn wait_webhooks_delivered(&self, timeout: Duration) -> bool {
        self.state.wait_webhooks_delivered(timeout)
    }

    /// The most API requests that were in flight at once; see [`MockState::in_flight_max`].
    pub fn in_flight_max(&self) -> usize {
        self.state.in_flight_max()
    }

    /// Starts a new measurement of [`MockServer::in_flight_max`].
    pub fn reset_in_flight_max(&self) {
        self.state.reset_in_flight_max()
    }

    /// Holds GETs until `n` are waiting at once; see [`MockState::hold_reads_until`].
    pub fn hold_reads_until(&self, n: usize) {
        self.state.hold_reads_until(n)
    }

    /// Changes the artificial latency of every later API request; see [`MockOptions::latency`].
    pub fn set_latency(&self, latency: Duration) {
        self.state.set_latency(latency)
    }

    /// Replaces the injected faults; see [`MockState::set_faults`].
    pub fn set_faults(&self, faults: Option<Faults>) {
        self.state.set_faults(faults)
    }

    /// Faults injected so far, by kind; see [`MockState::fault_counts`].
    pub fn fault_counts(&self) -> BTreeMap<String, usize> {
        self.state.fault_counts()
    }

    /// Replaces the rate limit; see [`MockState::set_rate_limit`].
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.state.set_rate_limit(limit)
    }

    /// Requests rejected by the rate limit so far; see [`MockState::rate_limited_count`].
    pub fn rate_limited_count(&self) -> usize {
        self.state.rate_limited_count()
    }

    /// Starts or ends a token outage; see [`MockState::refuse_tokens`].
    pub fn refuse_tokens(&self, refused: bool) {
        self.state.refuse_tokens(refused)
    }

    /// Makes every access token issued so far expired; see [`MockState::expire_access_tokens`].
    pub fn expire_access_tokens(&self) {
        self.state.expire_access_tokens()
    }

    /// Successful token refreshes so far; see [`MockState::oauth_refresh_count`].
    pub fn oauth_refresh_count(&self) -> usize {
        self.state.oauth_refresh_count()
    }

    /// The refresh token `/oauth/token` accepts next; see [`MockState::current_refresh_token`].
    pub fn current_refresh_token(&self) -> Option<String> {
        self.state.current_refresh_token()
    }

    /// Uninstalls the Marketplace app from `location_id`; see [`MockState::uninstall_location`].
    pub fn uninstall_location(&self, location_id: &str) {
        self.state.uninstall_location(location_id)
    }

    /// Uninstalls the app from `location_id` and delivers its UNINSTALL webhook to `url`, signed
    /// with the test key ([`crate::app_webhook`]), as HighLevel delivers to an app's webhook URL:
    /// the receiver's `(status, answer)`.
    pub fn send_uninstall(&self, url: &str, location_id: &str) -> (u16, String) {
        self.uninstall_location(location_id);
        let (app, company) = self.marketplace_ids();
        let id = format!("mock-uninstall-{location_id}-{}", crate::app_webhook::now_ms());
        let body =
            crate::app_webhook::uninstall_body(&app, Some(&company), Some(location_id), &id, &crate::app_webhook::timestamp(crate::app_webhook::now_ms()));
        crate::app_webhook::post(url, &body)
    }

    /// Delivers an INSTALL webhook of `location_id` (an agency location) to `url`, signed as
    /// [`MockServer::send_uninstall`] signs.
    pub fn send_install(&self, url: &str, location_id: &str) -> (u16, String) {
        let (app, company) = self.marketplace_ids();
        let id = format!("mock-install-{location_id}-{}", crate::app_webhook::now_ms());
        let body = crate::app_webhook::install_body(&app, &company, Some(location_id), &[], &id, &crate::app_webhook::timestamp(crate::app_webhook::now_ms()));
        crate::app_webhook::post(url, &body)
    }

    /// The app's and the agency's ids (a mock without a Marketplace has none: a panic).
    fn marketplace_ids(&self) -> (String, String) {
        let options = self.state.options.marketplace.as_ref().expect("the mock has a Marketplace (MockOptions::marketplace)");
        (options.app_id.clone(), options.company_id.clone())
    }

    /// The Marketplace's approved locations, installed or not; see
    /// [`MockState::marketplace_locations`].
    pub fn marketplace_locations(&self) -> Vec<(String, bool)> {
        self.state.marketplace_locations()
    }

    /// Blocks the calling thread until the server stops (for the `mock` CLI command). The server
    /// only stops on its own if its accept loop fails, so in practice this runs until the
    /// process is terminated.
    pub fn wait(self) {
        self.server.wait();
    }
}
