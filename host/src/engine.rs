//! The wasmtime embedding: compile the component once, link it once (`InstancePre`), then a
//! fresh `Store` per event with a memory cap and an epoch deadline, so a runaway plugin traps
//! instead of hanging the host, and no state leaks from one event to the next except through
//! the key-value store the host chooses to share.

use crate::bindings::exports::dialpad_ghl::sync::{backfill, views};
use crate::bindings::{dialpad_ghl::sync::types as wit, PluginCore, PluginCorePre};
use crate::capability::config as config_capability;
use crate::capability::keyvalue::{self, KeyValueHost, KeyValueStore};
use crate::capability::outbound::{HttpLog, OutboundHooks, OutboundPolicy};
use crate::inbound::Inbound;
use anyhow::Context as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Epoch tick: the deadline's resolution.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The plugin's state inside one store.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    config: WasiConfigVariables,
    kv: KeyValueStore,
    limits: StoreLimits,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// A compiled component and the engine it was compiled for. Compiling takes ~0.2 s in a
/// release build (~2 s in debug): do it once per process and share this.
#[derive(Clone)]
pub struct CompiledPlugin {
    engine: Engine,
    component: Component,
    _ticker: Arc<EpochTicker>,
}

/// How the engine allocates instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Allocation {
    /// A fresh mapping per instance (wasmtime's default).
    #[default]
    OnDemand,
    /// Slots reserved up front and reused: instantiation costs a slot reset, not an mmap.
    Pooling,
}

impl Allocation {
    /// Pooling where the machine's address space allows its reservations (the probe `wasmtime
    /// serve` uses), else on demand. Pooling instantiates 1.4× faster (`bench`).
    pub fn best() -> Allocation {
        if pooling_allocator_fits() {
            Allocation::Pooling
        } else {
            Allocation::OnDemand
        }
    }
}

/// `wasmtime serve`'s probe (`use_pooling_allocator_by_default`): the pooling allocator's
/// default 1,000 slots need about 42 bits of address space, which some machines lack.
pub fn pooling_allocator_fits() -> bool {
    const BITS_TO_TEST: u32 = 42;
    let mut config = Config::new();
    config.wasm_memory64(true);
    config.memory_reservation(1 << BITS_TO_TEST);
    let Ok(engine) = Engine::new(&config) else { return false };
    let mut store = Store::new(&engine, ());
    let ty = wasmtime::MemoryType::new64(0, Some(1 << (BITS_TO_TEST - 16)));
    wasmtime::Memory::new(&mut store, ty).is_ok()
}

/// Concurrent instances the pooling allocator reserves slots for: the workers, the listeners'
/// routing calls and the views, with room to spare.
pub const POOLED_INSTANCES: u32 = 128;

/// Whether a compiled copy was found in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Miss,
}

impl CompiledPlugin {
    pub fn from_file(path: &Path) -> anyhow::Result<CompiledPlugin> {
        let bytes = std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
        CompiledPlugin::from_bytes(&bytes)
    }

    /// Refuses, before compiling, a plugin whose WIT API this host does not speak.
    pub fn from_bytes(wasm: &[u8]) -> anyhow::Result<CompiledPlugin> {
        CompiledPlugin::compile(wasm, Allocation::default(), None).map(|(plugin, _)| plugin)
    }

    /// Compiles with the given allocation strategy; with a `cache_dir`, reuses the machine code
    /// compiled there before for the same bytes and the same engine settings (~0.2 s saved).
    /// The cache is trusted as code: keep it in a directory only this host writes (`--state`).
    pub fn compile(wasm: &[u8], allocation: Allocation, cache_dir: Option<&Path>) -> anyhow::Result<(CompiledPlugin, CacheUse)> {
        crate::version::check(wasm)?;
        let mut config = Config::new();
        config.epoch_interruption(true);
        if allocation == Allocation::Pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(POOLED_INSTANCES)
                .total_core_instances(POOLED_INSTANCES * 8)
                .total_memories(POOLED_INSTANCES * 4)
                .total_tables(POOLED_INSTANCES * 8)
                // Slots are reset with madvise, not kept resident and zeroed: `bench` measured
                // keeping 1 or 4 MiB resident as slower (the memset of what an event touched costs
                // more than faulting it in again).
                .max_memory_size(256 << 20);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)?;
        let (component, cache_use) = match cache_dir {
            Some(dir) => cached_component(&engine, wasm, dir)?,
            None => (Component::new(&engine, wasm).map_err(anyhow::Error::from).context("compiling the plugin component")?, CacheUse::Miss),
        };
        let ticker = Arc::new(EpochTicker::start(engine.clone()));
        Ok((CompiledPlugin { engine, component, _ticker: ticker }, cache_use))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn component(&self) -> &Component {
        &self.component
    }
}

/// The compiled component from `dir`, or compiled now and stored there. The file is named by
/// the SHA-256 of the component and of the engine's compatibility hash (wasmtime version,
/// settings, CPU features), so a stale or foreign copy is never picked up.
fn cached_component(engine: &Engine, wasm: &[u8], dir: &Path) -> anyhow::Result<(Component, CacheUse)> {
    use sha2::Digest as _;
    use std::hash::{Hash as _, Hasher as _};
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut engine_hash);
    let mut key = sha2::Sha256::new();
    key.update(wasm);
    key.update(engine_hash.finish().to_le_bytes());
    let name: String = key.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("plugin-{name}.cwasm"));
    if path.exists() {
        // Owner-only, as everything in the state folder (tightened if an older host made it).
        crate::storage::private::private_dir(dir)?;
        crate::storage::private::private_file(&path)?;
        // SAFETY: the file was written by `Component::serialize` below, for this engine's
        // settings (its name says so), in a directory only this host writes.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok((component, CacheUse::Hit));
        }
    }
    let component = Component::new(engine, wasm).map_err(anyhow::Error::from).context("compiling the plugin component")?;
    crate::storage::private::private_dir(dir)?;
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    crate::storage::private::private_new_file(&partial)?;
    std::fs::write(&partial, component.serialize()?).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path)?;
    Ok((component, CacheUse::Miss))
}

/// Bumps the engine's epoch every tick until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch ticker");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Limits and wiring for running events.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// `wasi:config/store` variables given to the plugin (the `config` key holds its JSON).
    pub config_vars: Vec<(String, String)>,
    pub policy: OutboundPolicy,
    /// Largest linear memory a plugin instance may grow to.
    pub memory_limit_bytes: usize,
    /// Wall-clock budget of one event, enforced through epochs.
    pub deadline: Duration,
}

/// A plugin ready to handle events: compiled, linked, with its host capabilities.
pub struct Runtime {
    plugin: CompiledPlugin,
    pre: PluginCorePre<HostState>,
    options: RuntimeOptions,
    policy: Arc<OutboundPolicy>,
    kv: KeyValueStore,
    log: HttpLog,
    /// Instances made so far: one per call into the plugin. Shared with [`Runtime::with_own_log`].
    calls: Arc<AtomicU64>,
}

/// Why a call into the plugin failed outside the plugin's own typed errors.
pub type HostResult<T> = anyhow::Result<T>;

impl Runtime {
    pub fn new(plugin: &CompiledPlugin, options: RuntimeOptions, kv: KeyValueStore) -> anyhow::Result<Runtime> {
        let mut linker: Linker<HostState> = Linker::new(plugin.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        config_capability::add_to_linker(&mut linker, |s: &mut HostState| WasiConfig::from(&s.config))?;
        keyvalue::add_to_linker(&mut linker, |s: &mut HostState| KeyValueHost { store: &s.kv, table: &mut s.table })?;
        let pre = PluginCorePre::new(linker.instantiate_pre(plugin.component())?)
            .map_err(anyhow::Error::from)
            .context("the component does not export the dialpad-ghl:sync interfaces this host speaks")?;
        let policy = Arc::new(options.policy.clone());
        Ok(Runtime { plugin: plugin.clone(), pre, options, policy, kv, log: HttpLog::default(), calls: Arc::default() })
    }

    /// The same runtime with an HTTP log of its own, for telling what one event sent. Cheap:
    /// the compiled, linked plugin and the stores are shared.
    pub fn with_own_log(&self) -> Runtime {
        Runtime {
            plugin: self.plugin.clone(),
            pre: self.pre.clone(),
            options: self.options.clone(),
            policy: self.policy.clone(),
            kv: self.kv.clone(),
            log: HttpLog::default(),
            calls: self.calls.clone(),
        }
    }

    /// A handle to the same runtime (its log included).
    pub fn clone_shared(&self) -> Runtime {
        Runtime {
            plugin: self.plugin.clone(),
            pre: self.pre.clone(),
            options: self.options.clone(),
            policy: self.policy.clone(),
            kv: self.kv.clone(),
            log: self.log.clone(),
            calls: self.calls.clone(),
        }
    }

    /// The same compiled, linked plugin with other options and another store: a tenant's runtime.
    /// Cheap (no compiling or linking); the call counter is shared.
    pub fn with_options(&self, options: RuntimeOptions, kv: KeyValueStore) -> Runtime {
        let policy = Arc::new(options.policy.clone());
        Runtime { plugin: self.plugin.clone(), pre: self.pre.clone(), options, policy, kv, log: HttpLog::default(), calls: self.calls.clone() }
    }

    /// How many times the plugin was called (an instance each) through this runtime and its
    /// clones: what a test counts to see how often one delivery runs the plugin.
    pub fn plugin_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// One of the plugin's settings as the plugin is given it (`None` when unset): what
    /// `serve` checks before it faces a public address (`webhook_secret`).
    pub fn plugin_setting(&self, key: &str) -> Option<serde_json::Value> {
        let (_, config) = self.options.config_vars.iter().find(|(name, _)| name == "config")?;
        serde_json::from_str::<serde_json::Value>(config).ok()?.get(key).cloned()
    }

    /// The outbound exchanges of every event so far.
    pub fn http_log(&self) -> &HttpLog {
        &self.log
    }

    pub fn keyvalue(&self) -> &KeyValueStore {
        &self.kv
    }

    /// A fresh instance in a fresh store, nothing called yet: what every call starts with
    /// (public for the benchmark of instantiation alone).
    pub fn instantiate(&self) -> anyhow::Result<(Store<HostState>, PluginCore)> {
        run(self.instantiate_async())
    }

    async fn instantiate_async(&self) -> anyhow::Result<(Store<HostState>, PluginCore)> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let state = HostState {
            // No preopened directories, no environment, no sockets, no inherited stdio: the
            // plugin reaches the world only through wasi:http, and that through the policy.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks { policy: self.policy.clone(), log: self.log.clone(), deadline: Some(std::time::Instant::now() + self.options.deadline) },
            config: WasiConfigVariables::from_iter(self.options.config_vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            kv: self.kv.clone(),
            limits: StoreLimitsBuilder::new().memory_size(self.options.memory_limit_bytes).instances(16).trap_on_grow_failure(true).build(),
        };
        let mut store = Store::new(self.plugin.engine(), state);
        store.limiter(|s| &mut s.limits);
        let ticks = (self.options.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let plugin = self.pre.instantiate_async(&mut store).await?;
        Ok((store, plugin))
    }

    /// One call into a fresh instance in a fresh store, driven to its end by one `block_on`.
    fn call<T>(&self, call: impl std::ops::AsyncFnOnce(&mut Store<HostState>, PluginCore) -> wasmtime::Result<T>) -> HostResult<T> {
        run(async {
            let (mut store, plugin) = self.instantiate_async().await?;
            Ok(call(&mut store, plugin).await?)
        })
    }

    /// Checks an event (bytes, signature, shape) and says how to schedule it. Sends nothing.
    /// The outer `Err` is a host failure or a trap; the inner result is the plugin's answer.
    pub fn route(&self, event: &Inbound) -> HostResult<Result<wit::Routing, wit::SyncError>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_triggers().call_route(store, &event.to_wit()).await)
    }

    /// Handles one event: the plan the plugin ran, and its report or typed error.
    pub fn handle(&self, event: &Inbound) -> HostResult<wit::Handled> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_triggers().call_handle(store, &event.to_wit()).await)
    }

    /// [`Runtime::handle`], with a trap (a runaway or crashed plugin) reported as the retryable
    /// transport error it is to whoever delivered the event: the event is kept, not dropped.
    pub fn handle_or_trap(&self, event: &Inbound) -> wit::Handled {
        self.handle(event).unwrap_or_else(|trap| wit::Handled { plan: None, result: Err(wit::SyncError::Transport(format!("the plugin trapped: {trap:#}"))) })
    }

    /// Plans one event as a dry run.
    pub fn plan(&self, event: &Inbound) -> HostResult<Result<wit::EventPlan, wit::SyncError>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_triggers().call_plan(store, &event.to_wit()).await)
    }

    /// Reads one event as `plan` does and says which trigger it is, with the normalized event
    /// the rules and mappings see. Sends and writes nothing.
    pub fn normalize(&self, event: &Inbound) -> HostResult<Result<wit::NormalizedEvent, wit::SyncError>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_triggers().call_normalize(store, &event.to_wit()).await)
    }

    /// Every trigger the plugin handles, with the JSON Schemas of its payload and of its
    /// normalized event.
    pub fn trigger_catalog(&self) -> HostResult<Vec<wit::TriggerInfo>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_meta().call_trigger_catalog(store).await)
    }

    /// The plugin's operations catalog.
    pub fn catalog(&self) -> HostResult<Vec<wit::OperationInfo>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_actions().call_catalog(store).await)
    }

    /// Runs one Contacts API operation through the plugin; returns the API's JSON response.
    pub fn invoke(&self, operation_id: &str, input: &str) -> HostResult<Result<String, wit::SyncError>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_actions().call_invoke(store, operation_id, input).await)
    }

    /// The unified view of a contact (contact, tasks, notes, appointments).
    pub fn view(&self, subject: &views::Subject) -> HostResult<Result<views::ContactView, wit::SyncError>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_views().call_get(store, subject).await)
    }

    /// One page of Dialpad's call history, each call synced (`backfill.sync-page`).
    pub fn backfill_page(&self, window: backfill::Window, cursor: Option<&str>) -> HostResult<Result<backfill::Page, wit::SyncError>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_backfill().call_sync_page(store, window, cursor).await)
    }

    /// The same page as a dry run (`backfill.plan-page`).
    pub fn backfill_plan_page(&self, window: backfill::Window, cursor: Option<&str>) -> HostResult<Result<backfill::PlannedPage, wit::SyncError>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_backfill().call_plan_page(store, window, cursor).await)
    }

    /// Every problem of the configuration this runtime gives the plugin (none when valid).
    pub fn config_problems(&self) -> HostResult<Vec<wit::Problem>> {
        let config = self.options.config_vars.iter().find(|(key, _)| key == "config").map(|(_, value)| value.as_str()).unwrap_or("{}");
        self.validate_config(config)
    }

    /// Every problem of a configuration document, as the plugin sees it.
    pub fn validate_config(&self, config: &str) -> HostResult<Vec<wit::Problem>> {
        self.call(async |store, plugin| plugin.dialpad_ghl_sync_meta().call_validate_config(store, config).await)
    }

    pub fn meta(&self) -> HostResult<PluginMeta> {
        self.call(async |store, plugin| {
            let meta = plugin.dialpad_ghl_sync_meta();
            Ok(PluginMeta {
                plugin_version: meta.call_plugin_version(&mut *store).await?,
                api_version: meta.call_api_version(&mut *store).await?,
                config_schema: meta.call_config_schema(&mut *store).await?,
                platform_event_schema: meta.call_platform_event_schema(&mut *store).await?,
            })
        })
    }
}

/// Runs one call into the plugin to its end on the calling thread: the plugin's async store is
/// driven by one `block_on` for the whole call (on the current runtime when the caller is on
/// one, as `serve`'s blocking tasks are, else on wasmtime-wasi's own), where the synchronous
/// bindings entered the runtime once per `wasi:io` wait.
fn run<T>(call: impl std::future::Future<Output = T>) -> T {
    wasmtime_wasi::runtime::in_tokio(call)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginMeta {
    pub plugin_version: String,
    pub api_version: String,
    pub config_schema: String,
    pub platform_event_schema: String,
}
