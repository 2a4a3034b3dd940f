//! `serve`: the webhook receiver a user points Dialpad at.
//!
//! - Two listeners, both loopback by default. The **webhook** listener takes
//!   `POST /webhooks/dialpad` (Dialpad's bodies, JSON or signed JWT) and `POST /events/platform`
//!   (task and note events), plus `GET /healthz`. The **admin** listener serves the monitoring
//!   page (`/`), its JSON API (`/api/…`), `/healthz` and `/metrics`. Keeping them apart lets the
//!   webhook port face the internet while the page, which can replay events, does not. The
//!   admin listener also serves the contact card ([`card`]: `/card`, `/tenants/{tenant}/card`).
//! - On arrival the plugin checks the body (`triggers.route`: signature and shape, nothing
//!   sent): a body that can never succeed is refused at once (401/400) and shown on the page; any
//!   other is committed to the SQLite inbox before the 200 (see [`inbox`]).
//! - Workers drain the inbox through the plugin, one lane at a time, in arrival order. A
//!   transient failure (no answer, 429, 5xx) is retried with exponential backoff; after
//!   `max_attempts`, or at once for a permanent failure, the delivery becomes a dead letter that
//!   the page (or `replay --dead-letters`) can replay.
//! - Everything a sender can make it hold is bounded ([`limits`]): connections, time, body
//!   memory ([`listener`]), disk (the inbox's and dead letters' budgets, [`retention`]).

pub mod access;
pub mod alerts;
pub mod assets;
pub mod card;
pub mod console;
pub mod history;
pub mod inbox;
pub mod incidents;
pub mod limits;
mod listener;
pub mod metrics;
mod retention;
pub mod setup;

use crate::bindings::dialpad_ghl::sync::types::{self as wit, SyncError};
use crate::engine::Runtime;
use crate::inbound::{Inbound, Source};
use crate::report;
use crate::settings::{CardSettings, Reconcile};
use crate::storage::dead_letters::DeadLetters;
use crate::tenants::registry::{LiveTenant, Tenants};
use anyhow::Context as _;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use inbox::{Arrival, Delivery, Handled, Inbox, Status};
use metrics::Metrics;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest Dialpad webhook body accepted by default (`Limits::dialpad_body_bytes`); Dialpad's
/// events are a few KB (a transcript can reach tens of KB).
pub const MAX_BODY_BYTES: usize = limits::DIALPAD_BODY_BYTES;

#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where Dialpad and the platform deliver events.
    pub listen: SocketAddr,
    /// Where the monitoring page, `/metrics` and `/healthz` are served.
    pub admin_listen: SocketAddr,
    pub workers: usize,
    /// Handlings of one delivery before it becomes a dead letter (transient failures only;
    /// a permanent failure is dead-lettered at once).
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, capped at 5 minutes.
    pub retry_base: Duration,
    /// Every `every`, list Dialpad's calls of the last `window` and sync them: a call whose
    /// webhook never came is caught, one already synced changes nothing.
    pub reconcile: Option<Reconcile>,
    /// Who may use the admin side, and which unsafe binds are allowed anyway (see [`access`]).
    pub access: access::AccessOptions,
    /// Connections, timeouts, body sizes and memory, disk budgets and retention.
    pub limits: limits::Limits,
    /// The contact card: its key, who may frame it, where its link goes (host settings).
    pub card: CardSettings,
    /// Where incidents are told, and the rules of what is one (the banner uses the rules too).
    pub alerts: alerts::AlertSettings,
    /// On a shared database: how long a replica's lease on a lane or a pass lasts without its
    /// heartbeat (a replica that dies holds its lanes this long).
    pub lease_ttl: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8790)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8791)),
            workers: 4,
            max_attempts: 5,
            retry_base: Duration::from_secs(2),
            reconcile: None,
            access: access::AccessOptions::default(),
            limits: limits::Limits::default(),
            card: CardSettings::default(),
            alerts: alerts::AlertSettings::default(),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

/// The lease of the replica that tells the incidents; kept while it lives (renewed by its
/// heartbeat), so the alerts stay with one replica.
const ALERTS_LEASE: &str = "alerts";

/// What the listeners and the workers share.
struct Shared {
    /// The host's single location and the stored tenants, each with its runtime.
    tenants: Tenants,
    /// Workers handle deliveries under a read guard; a reconciliation pass takes the write
    /// guard, so it never handles a call at the same moment as that call's webhook (lanes do
    /// this among deliveries; the listing's calls are not in the inbox).
    handling: std::sync::RwLock<()>,
    inbox: Inbox,
    /// Every tenant's dead letters (each tenant records through its own view).
    dead_letters: DeadLetters,
    metrics: Metrics,
    options: ServeOptions,
    /// The listeners' shared bounds (body budget).
    listeners: Arc<listener::Common>,
    /// Bytes of the dead letters, refreshed every second and after each failure.
    dead_letter_bytes: std::sync::atomic::AtomicU64,
    /// Installs and connections (`None`: the single location only).
    setup: Option<setup::Setup>,
}

/// A running `serve`: listeners on a tokio runtime, workers on their own threads.
pub struct Server {
    shared: Arc<Shared>,
    webhook_addr: SocketAddr,
    admin_addr: SocketAddr,
    stop: Arc<tokio::sync::Notify>,
    tokio: Option<tokio::runtime::Runtime>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// On a shared database: the heartbeat that renews this replica's leases, stopped only once
    /// the workers are done (a handling finishing during a stop still holds its lane).
    heartbeat: Option<(Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Server {
    /// Opens the inbox in `state_db` (the same file as the plugin's records and the dead
    /// letters), binds both listeners and starts the workers; deliveries left queued by an
    /// earlier process are handled first.
    pub fn start(runtime: Runtime, state_db: &Path, dead_letters: DeadLetters, options: ServeOptions) -> anyhow::Result<Server> {
        let tenants = Tenants::new(runtime, crate::settings::Settings::default(), dead_letters, None, Box::new(|_, _| anyhow::bail!("no tenants here")));
        Server::start_tenants(tenants, state_db, options, None)
    }

    /// [`Server::start`] for the host's single location and the stored tenants.
    pub fn start_tenants(tenants: Tenants, state_db: &Path, options: ServeOptions, setup: Option<setup::Setup>) -> anyhow::Result<Server> {
        // Before anything is opened or bound: a public address needs its check, or a loud flag.
        // Tenants' webhooks are verified (each has its secret) or refused.
        let single_verified = access::webhooks_verified(&tenants.single().runtime) || !tenants.serves_single();
        for warning in access::check_binds(options.listen, options.admin_listen, &options.access, single_verified)? {
            eprintln!("serve: WARNING: {warning}");
            tracing::warn!("serve: {warning}");
        }
        let inbox = Inbox::open(state_db).with_context(|| format!("opening the inbox in {}", state_db.display()))?;
        inbox.set_budget(options.limits.inbox_budget_bytes);
        inbox.set_keep_rows(options.limits.keep_deliveries);
        inbox.set_lease_ttl(options.lease_ttl);
        if let Some(name) = inbox.replica_name() {
            tracing::info!("serve: replica {name} on a shared database (leases of {:?})", options.lease_ttl);
        }
        // Opened before anything starts, so that a bad destination stops the start cleanly.
        let alerter = options.alerts.sends().then(|| alerts::Alerter::open(state_db, options.alerts.clone())).transpose().context("starting the alerts")?;
        let metrics = Metrics::default();
        let resources = metrics.resources.clone();
        let listeners = listener::Common::new(options.limits.clone(), Arc::new(move |listener, reason| resources.http_refusal(listener, reason)));
        let dead_letters = tenants.single().dead_letters.clone();
        let dead_letter_bytes = std::sync::atomic::AtomicU64::new(dead_letters.bytes());
        let shared = Arc::new(Shared {
            tenants,
            handling: std::sync::RwLock::new(()),
            inbox,
            dead_letters,
            metrics,
            options: options.clone(),
            listeners,
            dead_letter_bytes,
            setup,
        });
        let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("serve-http").enable_all().build()?;
        let stop = Arc::new(tokio::sync::Notify::new());
        let (webhook_listener, admin_listener) = tokio.block_on(async {
            let webhooks = tokio::net::TcpListener::bind(options.listen).await.with_context(|| format!("binding {}", options.listen))?;
            let admin = tokio::net::TcpListener::bind(options.admin_listen).await.with_context(|| format!("binding {}", options.admin_listen))?;
            anyhow::Ok((webhooks, admin))
        })?;
        let webhook_addr = webhook_listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let access = access::Guard::new(&options.access, admin_addr, &options.card);
        let limits = &options.limits;
        let webhooks = listener::Serving {
            name: "webhook",
            router: webhook_router(shared.clone()),
            max_connections: limits.webhook_connections,
            per_client: limits.connections_per_client,
            body_limit: webhook_body_limit,
        };
        let admin = listener::Serving {
            name: "admin",
            router: access.protect(admin_router(shared.clone())),
            max_connections: limits.admin_connections,
            per_client: limits.connections_per_client,
            body_limit: |_, _| limits::OTHER_BODY_BYTES,
        };
        for (listener, serving) in [(webhook_listener, webhooks), (admin_listener, admin)] {
            tokio.spawn(listener::run(listener, serving, shared.listeners.clone(), stop.clone()));
        }
        if shared.setup.as_ref().is_some_and(|s| s.marketplace.is_some()) {
            let (shared, stop) = (shared.clone(), stop.clone());
            tokio.spawn(async move {
                loop {
                    if let Err(e) = setup::reconcile_installs(&*shared).await {
                        tracing::warn!("serve: reconciling the installs: {e:#}");
                    }
                    tokio::select! {
                        _ = stop.notified() => return,
                        _ = tokio::time::sleep(setup::RECONCILE_INSTALLS_EVERY) => {}
                    }
                }
            });
        }
        let mut workers: Vec<std::thread::JoinHandle<()>> = (0..options.workers.max(1))
            .map(|n| {
                let shared = shared.clone();
                std::thread::Builder::new().name(format!("serve-worker-{n}")).spawn(move || shared.work()).expect("spawning a worker")
            })
            .collect();
        {
            let shared = shared.clone();
            workers.push(
                std::thread::Builder::new()
                    .name("serve-housekeeping".into())
                    .spawn(move || {
                        retention::run(retention::Parts {
                            inbox: &shared.inbox,
                            dead_letters: &shared.dead_letters,
                            metrics: &shared.metrics,
                            limits: &shared.options.limits,
                            listeners: &shared.listeners,
                            dead_letter_bytes: &shared.dead_letter_bytes,
                        })
                    })
                    .expect("spawning the housekeeping"),
            );
        }
        let heartbeat = shared.inbox.replica_name().is_some().then(|| {
            let (shared, stop) = (shared.clone(), Arc::new(std::sync::atomic::AtomicBool::new(false)));
            let stopped = stop.clone();
            (stop, std::thread::Builder::new().name("serve-heartbeat".into()).spawn(move || shared.heartbeat(&stopped)).expect("spawning the heartbeat"))
        });
        if let Some(reconcile) = options.reconcile {
            let shared = shared.clone();
            workers.push(
                std::thread::Builder::new()
                    .name("serve-reconcile".into())
                    .spawn(move || shared.reconcile_every(reconcile))
                    .expect("spawning the reconciliation"),
            );
        }
        if let Some(alerter) = alerter {
            let shared = shared.clone();
            workers.push(std::thread::Builder::new().name("serve-alerts".into()).spawn(move || shared.alert_every(alerter)).expect("spawning the alerts"));
        }
        Ok(Server { shared, webhook_addr, admin_addr, stop, tokio: Some(tokio), workers, heartbeat })
    }

    /// `http://<webhook listener>`; Dialpad posts to `<this>/webhooks/dialpad`.
    pub fn webhook_url(&self) -> String {
        format!("http://{}", self.webhook_addr)
    }

    /// `http://<admin listener>`: the monitoring page.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    pub fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }

    /// What is systematically wrong now: the console's banner, and what the alerts tell.
    pub fn incidents(&self) -> anyhow::Result<Vec<incidents::Incident>> {
        self.shared.incidents()
    }

    /// Waits until nothing is queued (true), or `timeout` passes (false).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.shared.inbox.queued().unwrap_or(1) == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops taking deliveries, lets each worker finish the one it holds, and returns.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.notify_waiters();
        self.shared.inbox.stop();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        if let Some((stop, heartbeat)) = self.heartbeat.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = heartbeat.join();
        }
        // Whatever this replica still held is free for the others at once, not after its time.
        if let Some((leases, name, _)) = self.shared.inbox.leases() {
            if let Err(e) = leases.release_all(name) {
                tracing::warn!("serve: releasing this replica's leases: {e:#}");
            }
        }
        if let Some(tokio) = self.tokio.take() {
            tokio.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// Runs until SIGINT or SIGTERM, then shuts down as [`Server::shutdown`] does.
    pub fn run_until_signal(self) -> anyhow::Result<()> {
        let tokio = self.tokio.as_ref().expect("running");
        tokio.block_on(async {
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            tokio::signal::ctrl_c().await?;
            anyhow::Ok(())
        })?;
        eprintln!("serve: stopping; events being handled finish, queued ones wait in the inbox for the next start");
        self.shutdown();
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl Shared {
    /// Checks a delivery for a tenant (`""`: the single location) and, unless it can never
    /// succeed, commits it to the inbox. An unknown tenant's is refused before the plugin runs.
    fn receive(&self, tenant: &str, event: Inbound) -> (StatusCode, Value) {
        let (source, name) = (event.source, event.source.describe());
        let live = match self.tenants.get(tenant) {
            Some(live) if !tenant.is_empty() || self.tenants.serves_single() => live,
            _ => {
                return (StatusCode::NOT_FOUND, json!({"type": "unknown-tenant", "message": format!("no tenant {tenant:?} here; check the webhook URL")}));
            }
        };
        // A tenant's Dialpad webhook is always signed: one without its secret is not connected.
        if !tenant.is_empty() && source == Source::DialpadWebhook && !access::webhooks_verified(&live.runtime) {
            return (
                StatusCode::UNAUTHORIZED,
                json!({"type": "not-connected", "message": format!("tenant {tenant} has no Dialpad webhook secret yet: connect Dialpad first")}),
            );
        }
        match live.runtime.route(&event) {
            Err(trap) => {
                tracing::error!("serve: the plugin trapped while routing: {trap:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"type": "host", "message": "the plugin failed; send again"}))
            }
            Ok(Err(error)) => {
                let status = refusal_status(&error);
                let mut answer = report::error_json(&error);
                answer["plain"] = report::plain_words(&error).into();
                if status.is_client_error() {
                    self.metrics.event("refused");
                    if let Err(e) = self.inbox.refuse(tenant, source, name, &event.body, &answer) {
                        tracing::error!("serve: recording a refusal: {e:#}");
                    }
                }
                (status, answer)
            }
            Ok(Ok(_)) if self.dead_letter_bytes.load(std::sync::atomic::Ordering::Relaxed) >= self.options.limits.dead_letter_budget_bytes => {
                self.metrics.resources.budget_refusal("dead_letters");
                (
                    StatusCode::INSUFFICIENT_STORAGE,
                    json!({"type": "storage-full", "message": "the dead letters fill their budget: replay or remove them; send again later"}),
                )
            }
            Ok(Ok(route)) => match self.inbox.accept(Arrival {
                tenant,
                source,
                name,
                body: &event.body,
                kind: report::kind_name(route.kind),
                lane: &route.lane,
                replay_of: None,
            }) {
                Ok(id) => (StatusCode::OK, json!({"accepted": id, "kind": report::kind_name(route.kind), "lane": route.lane})),
                Err(e) if e.is::<inbox::InboxFull>() => {
                    self.metrics.resources.budget_refusal("inbox");
                    (StatusCode::INSUFFICIENT_STORAGE, json!({"type": "storage-full", "message": format!("{e}; send again later")}))
                }
                Err(e) => {
                    tracing::error!("serve: the inbox refused a delivery: {e:#}");
                    (StatusCode::SERVICE_UNAVAILABLE, json!({"type": "storage", "message": "the delivery could not be stored; send again"}))
                }
            },
        }
    }

    /// A worker: handles deliveries until the inbox stops.
    fn work(&self) {
        loop {
            match self.inbox.claim() {
                Ok(Some(delivery)) => {
                    if let Err(e) = self.handle(&delivery) {
                        // The store failed: the delivery stays queued and is tried again.
                        tracing::error!("serve: delivery #{}: {e:#}", delivery.id);
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!("serve: reading the inbox: {e:#}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn handle(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let _handling = self.handling.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(live) = self.tenants.get(&delivery.tenant) else {
            // Removed (uninstalled) since it was accepted: its work stops here.
            let outcome = json!({"outcome": "cancelled", "error": {"type": "tenant-removed", "message": format!("tenant {} was removed", delivery.tenant)}});
            let handled = Handled { status: Status::Failed, outcome, plan: Value::Null, http: json!([]), duration_ms: 0 };
            self.metrics.event("cancelled");
            return self.inbox.finish(delivery, &handled);
        };
        let runtime = live.runtime.with_own_log();
        let name = format!("inbox #{}", delivery.id);
        let started = Instant::now();
        // One call: the plan shown on the page is the plan the plugin ran.
        let wit::Handled { plan, result } = runtime.handle_or_trap(&Inbound::new(delivery.source, delivery.body.clone()));
        let plan = plan.map_or(Value::Null, |plan| report::plan_json(&name, &plan, false));
        let handling = started.elapsed();
        let exchanges = runtime.http_log().take();
        for exchange in &exchanges {
            self.metrics.request(exchange.status);
        }
        let mut outcome = report::report_line(&name, &result);
        if let Err(error) = &result {
            outcome["plain"] = report::plain_words(error).into();
        }
        let mut handled = Handled { status: Status::Done, outcome, plan, http: serde_json::to_value(&exchanges)?, duration_ms: handling.as_millis() as u64 };
        // Everything this handling counts is counted, and a dead letter it settles removed,
        // before the inbox says it is finished: whoever sees the inbox drained sees the rest.
        let waited = Duration::from_millis((inbox::now_ms() - delivery.received_ms).max(0) as u64);
        self.metrics.handled(waited.as_secs_f64(), handling.as_secs_f64());
        match &result {
            Ok(report) => {
                // A replayed dead letter, or a redelivery of one, got through.
                live.dead_letters.remove_body(&delivery.body)?;
                self.metrics.event(report::outcome_name(&report.outcome).0);
                self.inbox.finish(delivery, &handled)?;
            }
            Err(error) if retryable(error) && delivery.attempts + 1 < self.options.max_attempts => {
                let backoff = self.options.retry_base.saturating_mul(1 << delivery.attempts.min(16)).min(Duration::from_secs(300));
                let asked = match error {
                    SyncError::RateLimited(r) => r.retry_after_ms.map(Duration::from_millis),
                    _ => None,
                };
                handled.status = Status::Queued;
                self.metrics.event("retried");
                self.inbox.retry_later(delivery, &handled, asked.unwrap_or(backoff).max(backoff))?;
            }
            Err(error) => {
                live.dead_letters.record(&name, delivery.source, &delivery.body, error)?;
                self.dead_letter_bytes.store(self.dead_letters.bytes(), std::sync::atomic::Ordering::Relaxed);
                handled.status = Status::Failed;
                self.metrics.event("failed");
                self.inbox.finish(delivery, &handled)?;
            }
        }
        Ok(())
    }

    /// The scheduled reconciliation: until the inbox stops, every `every`, the calls of the
    /// last `window` through `backfill` (no resuming: each pass lists its window afresh).
    fn reconcile_every(&self, reconcile: Reconcile) {
        use crate::bindings::exports::dialpad_ghl::sync::backfill::Window;
        loop {
            if self.inbox.wait_stopped(reconcile.every) {
                return;
            }
            let now = inbox::now_ms() as u64;
            let window = Window { started_after: now.saturating_sub(reconcile.window.as_millis() as u64), started_before: Some(now) };
            // On a shared database one replica reconciles at a time, and the others hold their
            // handlings back meanwhile (they take no lane while another holds this lease).
            if !self.hold_pass(inbox::RECONCILE_LEASE) {
                continue;
            }
            if !self.wait_for_other_replicas() {
                self.release_pass(inbox::RECONCILE_LEASE);
                continue;
            }
            let exclusive = self.handling.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            // The single location (its Dialpad key was checked at the start), then every tenant
            // with Dialpad connected.
            let tenants = self.tenants.all().into_iter().filter(|live| live.settings.dialpad_key.is_some());
            for live in std::iter::once(self.tenants.single().clone()).filter(|_| self.tenants.serves_single()).chain(tenants) {
                self.reconcile_once(&live, window);
            }
            drop(exclusive);
            self.release_pass(inbox::RECONCILE_LEASE);
        }
    }

    /// Takes the lease of a pass only one replica runs at a time; always true without replicas.
    fn hold_pass(&self, name: &str) -> bool {
        let Some((leases, replica, ttl)) = self.inbox.leases() else { return true };
        match leases.try_hold(name, replica, ttl) {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!("serve: taking the {name} lease: {e:#}");
                false
            }
        }
    }

    fn release_pass(&self, name: &str) {
        if let Some((leases, replica, _)) = self.inbox.leases() {
            if let Err(e) = leases.release(name, replica) {
                tracing::warn!("serve: releasing the {name} lease: {e:#}");
            }
        }
    }

    /// Waits until no other replica is handling a delivery (they take none while this one
    /// holds the reconciliation lease), up to the lease's time; false if they still are.
    fn wait_for_other_replicas(&self) -> bool {
        let Some((_, _, ttl)) = self.inbox.leases() else { return true };
        let deadline = Instant::now() + ttl;
        loop {
            match self.inbox.lanes_held_elsewhere() {
                Ok(0) => return true,
                Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Ok(held) => {
                    tracing::warn!("serve: other replicas still hold {held} lanes: reconciliation waits for the next pass");
                    return false;
                }
                Err(e) => {
                    tracing::warn!("serve: looking at the other replicas' lanes: {e:#}");
                    return false;
                }
            }
        }
    }

    /// Renews this replica's leases every third of their time until `stop` (set once the
    /// workers have finished: a stop waits for the handlings under way, which keep their lanes).
    fn heartbeat(&self, stop: &std::sync::atomic::AtomicBool) {
        let every = self.inbox.leases().map_or(Duration::from_secs(10), |(_, _, ttl)| ttl / 3);
        let mut next = Instant::now() + every;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(every));
            if Instant::now() < next {
                continue;
            }
            next = Instant::now() + every;
            if let Err(e) = self.inbox.heartbeat() {
                tracing::warn!("serve: renewing this replica's leases: {e:#}");
            }
        }
    }

    fn reconcile_once(&self, live: &LiveTenant, window: crate::bindings::exports::dialpad_ghl::sync::backfill::Window) {
        let runtime = live.runtime.with_own_log();
        let result = crate::backfill::run(&runtime, None, window, crate::backfill::Mode::Sync, |_, lines| {
            for line in lines {
                self.metrics.reconciled(line["outcome"].as_str().unwrap_or("failed"));
            }
        });
        for exchange in runtime.http_log().take() {
            self.metrics.request(exchange.status);
        }
        let who = if live.tenant.id.is_empty() { "this host's location".to_string() } else { format!("tenant {}", live.tenant.id) };
        match result {
            Ok(Ok(progress)) => tracing::info!("serve: {who}: reconciled {} calls: {} synced, {} failed", progress.fetched, progress.synced, progress.failed),
            Ok(Err((_, error))) => tracing::warn!("serve: {who}: reconciliation stopped: {}", report::error_message(&error)),
            Err(trap) => tracing::error!("serve: {who}: reconciliation failed: {trap:#}"),
        }
    }

    /// The inbox now, as the incidents are detected from: what is queued, what waits for an
    /// operator, and the deliveries of the rules' window (`history::snapshot`).
    fn incident_snapshot(&self) -> anyhow::Result<incidents::Snapshot> {
        let mut locations = std::collections::BTreeMap::new();
        if self.tenants.serves_single() {
            locations.insert(String::new(), self.tenants.single().tenant.location_id.clone());
        }
        for live in self.tenants.all() {
            locations.insert(live.tenant.id.clone(), live.tenant.location_id.clone());
        }
        let window = self.options.alerts.rules.window.as_millis().min(i64::MAX as u128) as i64;
        self.inbox.with_db(|db| history::snapshot::snapshot(db, inbox::now_ms(), window, locations))
    }

    /// What is systematically wrong now, by the configured rules.
    fn incidents(&self) -> anyhow::Result<Vec<incidents::Incident>> {
        Ok(incidents::detect(&self.incident_snapshot()?, &self.options.alerts.rules))
    }

    /// Until the inbox stops, every `check_every`: tells the incidents that opened or closed.
    /// A failed look is logged and made again at the next one.
    fn alert_every(&self, mut alerter: alerts::Alerter) {
        loop {
            if self.inbox.wait_stopped(self.options.alerts.check_every) {
                return;
            }
            // On a shared database one replica tells the incidents (their state is shared), so
            // each is told once, not once per replica.
            if !self.hold_pass(ALERTS_LEASE) {
                continue;
            }
            if let Err(e) = self.incident_snapshot().and_then(|snapshot| alerter.check(&snapshot)) {
                tracing::warn!("serve: checking for incidents: {e:#}");
            }
        }
    }

    fn health(&self) -> (StatusCode, Json<Value>) {
        match self.inbox.queued() {
            Ok(depth) => {
                let letters = self.dead_letters.list_all().map(|l| l.len()).unwrap_or_default();
                (StatusCode::OK, Json(json!({"status": "ok", "queue_depth": depth, "dead_letters": letters, "workers": self.options.workers})))
            }
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "failing", "error": format!("{e:#}")}))),
        }
    }

    fn dead_letter_list(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .dead_letters
            .list_all()?
            .into_iter()
            .map(|letter| {
                json!({
                    "id": letter.id, "tenant": letter.tenant, "name": letter.name, "source": letter.source.as_str(), "failures": letter.failures,
                    "error": letter.error, "plain": plain_from_json(&letter.error),
                })
            })
            .collect())
    }

    /// Queues a dead letter again (`/api/dead-letters/{id}/replay`, the page's older way): the
    /// failed delivery it came from is replayed, linked and logged like the console's replay.
    /// The letter is removed when the new delivery gets through.
    fn replay_letter(&self, id: i64, actor: &str) -> (StatusCode, Value) {
        let letters = match self.dead_letters.list_all() {
            Ok(letters) => letters,
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, json!({"type": "storage", "message": format!("{e:#}")})),
        };
        let Some(letter) = letters.into_iter().find(|l| l.id == id) else {
            return (StatusCode::NOT_FOUND, json!({"type": "not-found", "message": format!("no dead letter #{id}")}));
        };
        let Some(live) = self.tenants.get(&letter.tenant) else {
            return (
                StatusCode::CONFLICT,
                json!({"type": "tenant-removed", "message": format!("tenant {} was removed; its letters cannot be replayed", letter.tenant)}),
            );
        };
        let storage = |e: anyhow::Error| (StatusCode::SERVICE_UNAVAILABLE, json!({"type": "storage", "message": format!("{e:#}")}));
        // Its delivery, failed and not replayed yet, queued again with the kind and lane it was
        // accepted with: it passed the door once, and is not refused now for a signed token's
        // age. Only a letter whose delivery is no longer kept (retention) is routed again.
        let delivery = match self.inbox.with_db(|db| history::query::failed_delivery_of(db, &letter.tenant, &letter.body)) {
            Ok(delivery) => delivery,
            Err(e) => return storage(e),
        };
        let queued = match delivery.map(|from| (from, self.inbox.replay(from))) {
            Some((from, Ok(Ok(to)))) => Ok((Some(from), to)),
            Some((_, Err(e))) => return storage(e),
            Some((_, Ok(Err(_)))) | None => {
                // The kind and lane a kept delivery of the same bytes was accepted with, else
                // the plugin's route now (only a letter whose deliveries were all pruned).
                let kept = self.inbox.route_of(&letter.tenant, &letter.body).ok().flatten();
                let (kind, lane) = match kept {
                    Some(route) => route,
                    None => match live.runtime.route(&Inbound::new(letter.source, letter.body.clone())) {
                        Ok(Ok(route)) => (report::kind_name(route.kind).to_string(), route.lane),
                        Ok(Err(error)) => {
                            let mut answer = report::error_json(&error);
                            answer["plain"] = report::plain_words(&error).into();
                            return (StatusCode::UNPROCESSABLE_ENTITY, answer);
                        }
                        Err(trap) => return (StatusCode::INTERNAL_SERVER_ERROR, json!({"type": "host", "message": format!("{trap:#}")})),
                    },
                };
                let name = format!("replay of dead letter #{id}");
                let arrival =
                    Arrival { tenant: &letter.tenant, source: letter.source, name: &name, body: &letter.body, kind: &kind, lane: &lane, replay_of: None };
                self.inbox.accept(arrival).map(|to| (None, to))
            }
        };
        match queued {
            Ok((from, queued)) => {
                let entry = history::audit::Entry {
                    actor,
                    action: "replay",
                    deliveries: &from.into_iter().collect::<Vec<_>>(),
                    reason: None,
                    detail: json!({"dead_letter": id, "queued": [{"from": from, "to": queued}]}),
                };
                if let Err(e) = self.inbox.with_db(|db| Ok(history::audit::record(db, inbox::now_ms(), &entry)?)) {
                    return storage(e);
                }
                (StatusCode::ACCEPTED, json!({"queued": queued, "replay_of": from}))
            }
            Err(e) => storage(e),
        }
    }
}

impl setup::Host for Shared {
    fn tenants(&self) -> &Tenants {
        &self.tenants
    }

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn setup(&self) -> Option<&setup::Setup> {
        self.setup.as_ref()
    }

    fn receive(&self, tenant: &str, event: Inbound) -> (StatusCode, Value) {
        Shared::receive(self, tenant, event)
    }

    fn count_refusal(&self) {
        self.metrics.event("refused");
    }
}

impl console::Host for Shared {
    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn tenants(&self) -> &Tenants {
        &self.tenants
    }

    fn card(&self) -> &CardSettings {
        &self.options.card
    }

    fn snapshot(&self) -> anyhow::Result<incidents::Snapshot> {
        self.incident_snapshot()
    }

    fn alert_rules(&self) -> &incidents::AlertRules {
        &self.options.alerts.rules
    }

    fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }
}

impl card::Host for Shared {
    fn tenants(&self) -> &Tenants {
        &self.tenants
    }

    fn card(&self) -> &CardSettings {
        &self.options.card
    }

    fn count_request(&self, status: Option<u16>) {
        self.metrics.request(status);
    }
}

/// Failures that may pass on their own: the delivery is tried again later.
fn retryable(error: &SyncError) -> bool {
    match error {
        SyncError::Transport(_) | SyncError::RateLimited(_) | SyncError::Storage(_) => true,
        SyncError::Upstream(u) => u.status >= 500 || u.status == 429,
        _ => false,
    }
}

/// The answer to a sender whose delivery was not accepted: 4xx when sending it again cannot
/// help, 5xx when it can.
fn refusal_status(error: &SyncError) -> StatusCode {
    match error {
        SyncError::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
        SyncError::MalformedEvent(_) | SyncError::InvalidInput(_) | SyncError::NotFound(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Plain words for a stored error (`{type, message, …}`): the message, with what to do.
fn plain_from_json(error: &Value) -> String {
    let message = error["message"].as_str().unwrap_or_default();
    let advice = match error["type"].as_str().unwrap_or_default() {
        "transport" => "HighLevel could not be reached. Replay it once HighLevel answers.",
        "rate-limited" => "HighLevel kept asking us to slow down. Replay it later.",
        "upstream" => "HighLevel did not accept the request.",
        "invalid-signature" => "Check the secret (the Dialpad webhook secret, or platform_secret for platform events) and the sender's clock.",
        "missing-scope" => "Grant the scope in HighLevel, then replay.",
        "not-found" => "Nothing to attach it to.",
        _ => "",
    };
    [message, advice].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" — ")
}

fn webhook_router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for source in Source::ALL {
        router = router
            .route(
                source.path(),
                post(move |State(s): State<Arc<Shared>>, body: axum::body::Bytes| receive(s, String::new(), Inbound::new(source, body.to_vec()))),
            )
            .route(
                &format!("{}/{{tenant}}", source.path()),
                post(move |State(s): State<Arc<Shared>>, UrlPath(tenant): UrlPath<String>, body: axum::body::Bytes| {
                    receive(s, tenant, Inbound::new(source, body.to_vec()))
                }),
            );
    }
    // The listener has read the body within its route's limit (`webhook_body_limit`).
    router
        .merge(setup::webhook_routes::<Shared>())
        .route("/healthz", get(|State(s): State<Arc<Shared>>| async move { s.health() }))
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

/// The largest body each webhook route reads.
fn webhook_body_limit(limits: &limits::Limits, path: &str) -> usize {
    // `/webhooks/dialpad` and `/webhooks/dialpad/{tenant}` alike.
    let route =
        |source: &Source| path == source.path() || path.strip_prefix(source.path()).is_some_and(|rest| rest.starts_with('/') && rest[1..].find('/').is_none());
    if path == Source::HighLevelWebhook.path() {
        return limits::HIGHLEVEL_BODY_BYTES;
    }
    match Source::ALL.into_iter().find(route) {
        Some(Source::DialpadWebhook) => limits.dialpad_body_bytes,
        Some(Source::Platform) => limits.platform_body_bytes,
        Some(Source::HighLevelWebhook) | None => limits::OTHER_BODY_BYTES,
    }
}

async fn receive(shared: Arc<Shared>, tenant: String, event: Inbound) -> Response {
    // Routing runs the plugin and accepting waits for the disk: both off the async threads.
    match tokio::task::spawn_blocking(move || shared.receive(&tenant, event)).await {
        // A full disk budget passes: come back in a minute (Dialpad retries 5xx).
        Ok((status @ StatusCode::INSUFFICIENT_STORAGE, answer)) => (status, [(header::RETRY_AFTER, "60")], Json(answer)).into_response(),
        Ok((status, answer)) => (status, Json(answer)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"type": "host", "message": e.to_string()}))).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct RecentQuery {
    limit: Option<u32>,
}

/// The monitoring page: one static file that reads the JSON API below.
const MONITOR_PAGE: &str = include_str!("monitor.html");

fn admin_router(shared: Arc<Shared>) -> Router {
    setup::admin_routes::<Shared>()
        .merge(card::routes::<Shared>())
        .merge(console::routes::<Shared>())
        .merge(assets::routes())
        .route("/", get(|Extension(nonce): Extension<access::Nonce>| async move { Html(nonce.fill(MONITOR_PAGE)) }))
        .route("/healthz", get(|State(s): State<Arc<Shared>>| async move { s.health() }))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Shared>>| async move {
                let depth = s.inbox.queued().unwrap_or_default();
                let text = s.metrics.render(depth, s.dead_letters.list_all().map(|l| l.len()).unwrap_or_default() as u64);
                ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
            }),
        )
        .route(
            "/api/events",
            get(|State(s): State<Arc<Shared>>, Query(q): Query<RecentQuery>| async move {
                blocking(move || {
                    Ok(json!({
                        "events": s.inbox.recent(q.limit.unwrap_or(100).min(1000))?,
                        "queue_depth": s.inbox.queued()?,
                        "dead_letters": s.dead_letter_list()?,
                    }))
                })
                .await
            }),
        )
        .route(
            "/api/events/{id}",
            get(|State(s): State<Arc<Shared>>, UrlPath(id): UrlPath<i64>| async move {
                blocking(move || s.inbox.get(id)?.ok_or_else(|| anyhow::anyhow!("no event #{id}"))).await
            }),
        )
        .route(
            "/api/dead-letters/{id}/replay",
            post(|State(s): State<Arc<Shared>>, Extension(actor): Extension<access::Actor>, UrlPath(id): UrlPath<i64>| async move {
                match tokio::task::spawn_blocking(move || s.replay_letter(id, &actor.0)).await {
                    Ok((status, answer)) => (status, Json(answer)).into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"type": "host", "message": e.to_string()}))).into_response(),
                }
            }),
        )
        .with_state(shared)
}

/// Runs a store read off the async threads; an error becomes a 404 or 500 with its message.
async fn blocking(read: impl FnOnce() -> anyhow::Result<Value> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(e)) if e.to_string().starts_with("no event") => {
            (StatusCode::NOT_FOUND, Json(json!({"type": "not-found", "message": e.to_string()}))).into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"type": "storage", "message": format!("{e:#}")}))).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"type": "host", "message": e.to_string()}))).into_response(),
    }
}
