//! [`MockState`], the state every request shares, and its methods (but the request pipeline's,
//! in `dispatch.rs`): instrumentation, the read gate, latency, seeding and inspection, and the
//! controls of the faults, the rate limit and the OAuth tokens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::contact_webhooks::ContactWebhooks;
use super::data::Data;
use super::faults::{FaultKind, FaultPlan, Faults};
use super::fields::{push_to, str_field};
use super::marketplace::Marketplace;
use super::oauth::OAuthTokens;
use super::options::MockOptions;
use super::rate_limit::{Admission, Limiter, RateLimit};
use super::request_log::RecordedRequest;
use super::time::{micros, now_iso8601};

/// How long a GET held by the read gate ([`MockState::hold_reads_until`]) waits for the rest of
/// its batch before it proceeds alone: a client that never sends the batch is slow, not stuck.
const GATE_FALLBACK: Duration = Duration::from_secs(3);

/// The mock's shared state: options plus the Mutex-protected data. Handlers never hold the lock
/// across an `.await`; every operation is a short synchronous critical section.
///
/// Besides the data it carries concurrency instrumentation, so a test can prove that a client
/// issued requests concurrently without asserting anything about timing: the number of API
/// requests in flight and its maximum ([`MockState::in_flight_max`]), and a read gate
/// ([`MockState::hold_reads_until`]) that holds GETs until a whole batch is waiting at once.
pub struct MockState {
    pub(super) options: MockOptions,
    data: Mutex<Data>,
    /// API requests between entering the handler and producing their response, including the
    /// time spent held by the read gate or sleeping the artificial latency.
    pub(super) in_flight: AtomicUsize,
    /// The largest `in_flight` seen since creation or the last [`MockState::reset_in_flight_max`].
    in_flight_max: AtomicUsize,
    /// The artificial latency, in microseconds.
    latency_micros: AtomicU64,
    gate: Mutex<Gate>,
    /// Carries [`Gate::generation`]: a held GET waits for it to change.
    gate_released: watch::Sender<u64>,
    /// The faults to inject and their counters (section "Fault injection").
    faults: Mutex<FaultPlan>,
    /// The rate limit and its window (section "Rate limit").
    limiter: Mutex<Limiter>,
    /// Refresh and access tokens (section "OAuth").
    oauth: Mutex<OAuthTokens>,
    /// The Marketplace's codes, tokens and installs (`marketplace.rs`).
    marketplace: Mutex<Marketplace>,
    /// Where contact webhooks go, and the ones sent (`contact_webhooks.rs`).
    pub(super) webhooks: ContactWebhooks,
    /// While set, every API token is refused (401), as when a location's app is disconnected
    /// or its private token revoked: a token outage.
    pub(super) tokens_refused: std::sync::atomic::AtomicBool,
}

/// The read gate's state. Every GET that arrives while `batch > 0` counts itself in `waiting`;
/// the one that brings `waiting` to `batch` releases the whole batch by bumping `generation`.
pub(super) struct Gate {
    /// How many GETs must be waiting at once to be released; 0 disables the gate.
    pub(super) batch: usize,
    /// GETs currently held.
    pub(super) waiting: usize,
    /// Batches released so far (also by [`MockState::hold_reads_until`] lowering `batch`).
    pub(super) generation: u64,
    /// How long a held GET waits before it proceeds alone ([`GATE_FALLBACK`]; shorter in tests).
    pub(super) fallback: Duration,
}

/// Counts one API request in flight for as long as it lives.
pub(super) struct InFlight<'a>(&'a MockState);

impl<'a> InFlight<'a> {
    pub(super) fn enter(state: &'a MockState) -> InFlight<'a> {
        let now = state.in_flight.fetch_add(1, AtomicOrdering::SeqCst) + 1;
        state.in_flight_max.fetch_max(now, AtomicOrdering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
    }
}

/// A GET held by the read gate. Dropping it (released, timed out, or cancelled because the
/// client went away) takes it out of the waiting count unless its batch was released, so a
/// straggler never counts towards a later batch.
struct GateTicket<'a> {
    state: &'a MockState,
    generation: u64,
}

impl Drop for GateTicket<'_> {
    fn drop(&mut self) {
        let mut gate = self.state.gate_lock();
        if gate.generation == self.generation {
            gate.waiting = gate.waiting.saturating_sub(1);
        }
    }
}

impl Gate {
    /// Lets every held GET proceed and re-arms the gate for the next batch.
    fn release(&mut self, released: &watch::Sender<u64>) {
        self.waiting = 0;
        self.generation += 1;
        released.send_replace(self.generation);
    }
}

impl MockState {
    pub fn new(options: MockOptions) -> MockState {
        let latency_micros = AtomicU64::new(micros(options.latency));
        MockState {
            data: Mutex::new(Data::default()),
            in_flight: AtomicUsize::new(0),
            in_flight_max: AtomicUsize::new(0),
            latency_micros,
            gate: Mutex::new(Gate { batch: 0, waiting: 0, generation: 0, fallback: GATE_FALLBACK }),
            gate_released: watch::Sender::new(0),
            faults: Mutex::new(FaultPlan::new(options.faults.clone())),
            limiter: Mutex::new(Limiter::new(options.rate_limit)),
            oauth: Mutex::new(OAuthTokens::new(options.oauth.as_ref())),
            marketplace: Mutex::new(Marketplace::default()),
            webhooks: ContactWebhooks::default(),
            tokens_refused: std::sync::atomic::AtomicBool::new(false),
            options,
        }
    }

    /// The options the mock was started with. `latency`, `faults` and `rate_limit` are the
    /// initial values only; see [`MockState::latency`], [`MockState::faults`] and
    /// [`MockState::rate_limit`] for the current ones.
    pub fn options(&self) -> &MockOptions {
        &self.options
    }

    /// The most API requests that were in flight at once (entered the handler, response not yet
    /// built) since the mock started or [`MockState::reset_in_flight_max`] was last called. A
    /// request held by the read gate or sleeping the artificial latency counts as in flight; the
    /// `/__mock/*` debug routes never count.
    ///
    /// With [`MockState::hold_reads_until`]`(n)`, a value of `n` proves that the client had `n`
    /// GETs outstanding at once, whatever the timing.
    pub fn in_flight_max(&self) -> usize {
        self.in_flight_max.load(AtomicOrdering::SeqCst)
    }

    /// Starts a new measurement: the maximum becomes the number of requests in flight right now
    /// (0 when the mock is idle).
    pub fn reset_in_flight_max(&self) {
        self.in_flight_max.store(self.in_flight.load(AtomicOrdering::SeqCst), AtomicOrdering::SeqCst);
    }

    /// Arms the read gate: from now on every API GET waits until `n` GETs are waiting at once,
    /// then the whole batch proceeds together and the gate re-arms for the next `n`. A GET whose
    /// batch is not complete within 3 seconds proceeds alone, so a client that sends fewer than
    /// `n` GETs at once is slow but never stuck (and its [`MockState::in_flight_max`] stays
    /// below `n`). `0` disables the gate; lowering `n` releases the waiting GETs if there are
    /// now enough of them (all of them for `0`). Other methods and the `/__mock/*` routes are
    /// never held.
    pub fn hold_reads_until(&self, n: usize) {
        let mut gate = self.gate_lock();
        gate.batch = n;
        if gate.waiting > 0 && (n == 0 || gate.waiting >= n) {
            gate.release(&self.gate_released);
        }
    }

    /// The artificial latency currently added to every API request.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(AtomicOrdering::Relaxed))
    }

    /// Changes the artificial latency of every API request that has not started sleeping yet
    /// (microsecond resolution).
    pub fn set_latency(&self, latency: Duration) {
        self.latency_micros.store(micros(latency), AtomicOrdering::Relaxed);
    }

    /// The read gate, as [`MockState::hold_reads_until`] describes it.
    pub(super) async fn pass_read_gate(&self) {
        let (generation, fallback) = {
            let mut gate = self.gate_lock();
            if gate.batch == 0 {
                return;
            }
            gate.waiting += 1;
            if gate.waiting >= gate.batch {
                gate.release(&self.gate_released);
                return;
            }
            (gate.generation, gate.fallback)
        };
        let _ticket = GateTicket { state: self, generation };
        // `wait_for` looks at the current value first, so a release between unlocking and
        // subscribing is not missed. The sender lives in `self`, so the channel never closes.
        let mut released = self.gate_released.subscribe();
        let _ = tokio::time::timeout(fallback, released.wait_for(|g| *g != generation)).await;
    }

    pub(super) fn gate_lock(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// All contacts, in creation order.
    pub fn contacts(&self) -> Vec<Value> {
        self.lock().contacts.iter().cloned().map(Value::Object).collect()
    }

    /// All notes, in creation order, each with its `contactId`.
    pub fn notes(&self) -> Vec<Value> {
        self.lock().notes.iter().cloned().map(Value::Object).collect()
    }

    /// All tasks, in creation order, each with its `contactId` (`TaskSchema` shape).
    pub fn tasks(&self) -> Vec<Value> {
        self.lock().tasks.iter().cloned().map(Value::Object).collect()
    }

    /// All appointments (seeded with [`MockState::seed_appointment`]), in seeding order.
    pub fn appointments(&self) -> Vec<Value> {
        self.lock().appointments.iter().cloned().map(Value::Object).collect()
    }

    /// Everything the mock holds, as `GET /__mock/state` shows it: `contacts`, `notes`, `tasks`,
    /// `appointments`, plus `followers`, `campaigns` and `workflows`, each an object keyed by
    /// contact id (contacts without any are left out), `conversations`, `callEntries` (the call
    /// messages), `users`, and the counters `inFlightMax`
    /// ([`MockState::in_flight_max`]), `faults` ([`MockState::fault_counts`]), `rateLimited`
    /// ([`MockState::rate_limited_count`]) and `oauthRefreshes`
    /// ([`MockState::oauth_refresh_count`]).
    pub fn snapshot(&self) -> Value {
        // The counters have their own locks; take them before (never while) holding the data.
        let (faults, rate_limited, refreshes) = (self.fault_counts(), self.rate_limited_count(), self.oauth_refresh_count());
        let data = self.lock();
        let objects = |list: &[Map<String, Value>]| Value::Array(list.iter().cloned().map(Value::Object).collect());
        let mut followers = Map::new();
        for contact in &data.contacts {
            if let (Some(id), Some(Value::Array(list))) = (str_field(contact, "id"), contact.get("followers")) {
                if !list.is_empty() {
                    followers.insert(id.to_owned(), Value::Array(list.clone()));
                }
            }
        }
        let mut campaigns = Map::new();
        for (contact_id, campaign_id) in &data.campaigns {
            push_to(&mut campaigns, contact_id, Value::String(campaign_id.clone()));
        }
        let mut workflows = Map::new();
        for (contact_id, enrolment) in &data.workflows {
            push_to(&mut workflows, contact_id, Value::Object(enrolment.clone()));
        }
        json!({
            "contacts": objects(&data.contacts),
            "notes": objects(&data.notes),
            "tasks": objects(&data.tasks),
            "appointments": objects(&data.appointments),
            "followers": followers,
            "campaigns": campaigns,
            "workflows": workflows,
            "conversations": objects(&data.conversations.conversations),
            "callEntries": objects(&data.conversations.messages),
            "users": objects(&data.users),
            "inFlightMax": self.in_flight_max(),
            "faults": faults,
            "rateLimited": rate_limited,
            "oauthRefreshes": refreshes,
        })
    }

    /// Stores a contact as if it had been created earlier; returns its id. An `id` in `contact`
    /// is kept, otherwise the next deterministic id is used. Missing `dateAdded`/`dateUpdated`
    /// are set to now, `tags` and `customFields` default to `[]`, and the derived fields (`name`,
    /// `*LowerCase`) are filled in like for a created contact. `customFields` may be given in
    /// either the write shape (`{id|key, field_value}`) or the read shape (`{id, value}`).
    /// Nothing is logged.
    ///
    /// Panics if `contact` is not a JSON object: seeding is test setup, so that is a bug.
    pub fn seed_contact(&self, contact: Value) -> String {
        let Value::Object(mut fields) = contact else {
            panic!("seed_contact takes a JSON object, got {contact}");
        };
        let id = match fields.remove("id") {
            Some(Value::String(id)) => Some(id),
            _ => None,
        };
        if let Some(Value::Array(entries)) = fields.get_mut("customFields") {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                if !entry.contains_key("field_value") {
                    if let Some(value) = entry.remove("value") {
                        entry.insert("field_value".into(), value);
                    }
                }
            }
        }
        let now = now_iso8601();
        let mut data = self.lock();
        let index = data.insert_contact(id, fields, &now);
        data.contacts[index]["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Stores an appointment of `contact_id` (the API has no way to create one); returns its id.
    /// `event` is kept as given (`GetEventSchema` fields), plus `id` (the next `event…` id unless
    /// one is given) and `contactId`; `locationId` is copied from the contact when missing. The
    /// contact does not have to exist. Nothing is logged.
    ///
    /// Panics if `event` is not a JSON object: seeding is test setup, so that is a bug.
    pub fn seed_appointment(&self, contact_id: &str, event: Value) -> String {
        let Value::Object(mut event) = event else {
            panic!("seed_appointment takes a JSON object, got {event}");
        };
        let mut data = self.lock();
        let id = match event.remove("id") {
            Some(Value::String(id)) => id,
            _ => data.next_event_id(),
        };
        event.insert("id".into(), Value::String(id.clone()));
        event.insert("contactId".into(), Value::String(contact_id.to_owned()));
        if !event.contains_key("locationId") {
            let location = data.contact_index(contact_id).and_then(|i| data.contacts[i].get("locationId").cloned());
            if let Some(location) = location {
                event.insert("locationId".into(), location);
            }
        }
        data.appointments.push(event);
        id
    }

    /// Stores a note of `contact_id` with `body`, as if `create-note` had made it earlier;
    /// returns its id (`None` when the contact does not exist). Nothing is logged.
    pub fn seed_note(&self, contact_id: &str, body: &str) -> Option<String> {
        let mut fields = Map::new();
        fields.insert("body".into(), Value::String(body.to_owned()));
        let reply = self.lock().create_note(contact_id, fields, 201, &now_iso8601());
        reply.body["note"]["id"].as_str().map(str::to_owned)
    }

    /// Forgets every note but the first `kept`, in creation order: how a benchmark keeps a
    /// contact's notes at one count while it writes more.
    pub fn truncate_notes(&self, kept: usize) {
        self.lock().notes.truncate(kept);
    }

    /// A panic in one handler must not wedge every later request, so poisoning is ignored: the
    /// data is plain values and stays consistent enough for a mock.
    pub(super) fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ------------------------------------------------------------------------------------------------
// Fault injection
// ------------------------------------------------------------------------------------------------

impl MockState {
    /// Replaces the injected faults (`None` stops them) and restarts the sequence numbering at
    /// 0, so the requests after this call meet exactly [`Faults::fault_for`]`(0)`, `(1)`, ….
    /// Requests already past their draw are not affected.
    pub fn set_faults(&self, faults: Option<Faults>) {
        let mut plan = self.faults_lock();
        plan.faults = faults;
        plan.next = 0;
    }

    /// The faults currently injected.
    pub fn faults(&self) -> Option<Faults> {
        self.faults_lock().faults.clone()
    }

    /// How many faults of each kind were injected since the mock started, keyed by
    /// [`FaultKind::name`]; every kind is present, with 0 if it never occurred.
    pub fn fault_counts(&self) -> BTreeMap<String, usize> {
        self.faults_lock().counts.clone()
    }

    /// Draws the fault of the next API request, and counts it.
    pub(super) fn next_fault(&self) -> Option<FaultKind> {
        let mut plan = self.faults_lock();
        let n = plan.next;
        let fault = plan.faults.as_ref()?.fault_for(n).cloned();
        plan.next += 1;
        if let Some(fault) = &fault {
            *plan.counts.entry(fault.name().to_owned()).or_default() += 1;
        }
        fault
    }

    fn faults_lock(&self) -> MutexGuard<'_, FaultPlan> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ------------------------------------------------------------------------------------------------
// Rate limit
// ------------------------------------------------------------------------------------------------

impl MockState {
    /// Replaces the rate limit (`None` removes it) and starts a fresh window: no slot is taken.
    /// [`MockState::rate_limited_count`] is not reset.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        let mut limiter = self.limiter_lock();
        limiter.limit = limit;
        limiter.admitted.clear();
    }

    /// The rate limit currently enforced.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.limiter_lock().limit
    }

    /// Requests rejected by the rate limit since the mock started (not counting the 429s of
    /// [`FaultKind::RateLimited`], which [`MockState::fault_counts`] counts).
    pub fn rate_limited_count(&self) -> usize {
        self.limiter_lock().rejected
    }

    pub(super) fn admit(&self) -> Admission {
        self.limiter_lock().admit(Instant::now())
    }

    fn limiter_lock(&self) -> MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ------------------------------------------------------------------------------------------------
// OAuth
// ------------------------------------------------------------------------------------------------

impl MockState {
    /// Starts (`true`) or ends a token outage: meanwhile every API request gets HighLevel's 401.
    pub fn refuse_tokens(&self, refused: bool) {
        self.tokens_refused.store(refused, AtomicOrdering::SeqCst);
    }

    /// Makes every access token issued so far (by `/oauth/token` and the Marketplace routes)
    /// expire now; later requests with them get 401. Tokens issued afterwards are not affected.
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for expiry in self.oauth_lock().access.values_mut() {
            *expiry = Some(now);
        }
        self.marketplace_lock().expire_access_tokens(now);
    }

    /// Successful refreshes at `/oauth/token` so far, of either kind of token.
    pub fn oauth_refresh_count(&self) -> usize {
        self.oauth_lock().refreshes
    }

    /// The refresh token `/oauth/token` accepts next; `None` without [`MockOptions::oauth`].
    pub fn current_refresh_token(&self) -> Option<String> {
        self.oauth_lock().refresh_token.clone()
    }

    /// Whether `token` was issued by `/oauth/token` and has not expired.
    pub(super) fn access_token_valid(&self, token: &str) -> bool {
        self.oauth_lock().access.get(token).is_some_and(|expiry| expiry.is_none_or(|at| Instant::now() < at))
    }

    pub(super) fn oauth_lock(&self) -> MutexGuard<'_, OAuthTokens> {
        self.oauth.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `location_id` uninstalled and revokes its Location tokens (access and refresh) and
    /// its pending codes. Agency tokens stay valid, but can no longer get a token for it, and
    /// `installedLocations` lists it as not installed. A later install approves it again.
    pub fn uninstall_location(&self, location_id: &str) {
        self.marketplace_lock().uninstall(location_id)
    }

    /// The locations the Marketplace approved so far and whether each is installed, in order of
    /// first approval.
    pub fn marketplace_locations(&self) -> Vec<(String, bool)> {
        self.marketplace_lock().locations()
    }

    pub(super) fn marketplace_lock(&self) -> MutexGuard<'_, Marketplace> {
        self.marketplace.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
