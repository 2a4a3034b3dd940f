//! The options several commands share, in groups, so that each command shows only the flags
//! it uses, and the one place that turns them into a runtime.

use anyhow::Context as _;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::{Allocation, CompiledPlugin, Runtime};
use dialpad_ghl_host::settings::{Reconcile, Settings};
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use host_test::ghl_mock::{MockOptions, MockServer};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The plugin this binary was built with (`plugin/`, stamped with its versions).
pub const EMBEDDED_PLUGIN: &[u8] = include_bytes!(env!("EMBEDDED_PLUGIN_WASM"));

/// Which plugin component to load.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PluginArg {
    /// The plugin component (.wasm) to load instead of the one built into this binary.
    #[arg(long, value_name = "FILE")]
    pub plugin: Option<PathBuf>,
}

impl PluginArg {
    /// The component's bytes and a name for it.
    pub fn bytes(&self) -> anyhow::Result<(Cow<'static, [u8]>, String)> {
        match &self.plugin {
            Some(path) => Ok((Cow::Owned(std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?), path.display().to_string())),
            None => Ok((Cow::Borrowed(EMBEDDED_PLUGIN), "the embedded plugin".to_string())),
        }
    }

    /// A runtime for what needs no API: the catalog, the schemas, configuration checks.
    pub fn offline_runtime(&self) -> anyhow::Result<Runtime> {
        let (wasm, _) = self.bytes()?;
        let plugin = CompiledPlugin::from_bytes(&wasm)?;
        let mut settings = Settings::default();
        settings.set("location_id", "-");
        Runtime::new(&plugin, settings.runtime_options(false)?, KeyValueStore::new())
    }
}

/// Which HighLevel API to target, and with which credential.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ApiArgs {
    /// Configuration file, JSON or TOML (see `config-schema`): the plugin's settings plus the
    /// host's own keys (`token`, `oauth`, `rate_limit`, `circuit_breaker`,
    /// `connect_timeout_seconds`, `dialpad_api_key`, `reconcile`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HighLevel API origin, e.g. http://127.0.0.1:8787 (default: HighLevel's).
    #[arg(long, value_name = "URL")]
    pub api_base: Option<String>,
    /// HighLevel bearer token (a private integration token), injected by the host into
    /// requests to the API origin only. A flag's value is visible to other users in `ps`:
    /// prefer GHL_TOKEN, or `token` in an owner-only --config file.
    #[arg(long, env = "GHL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// HighLevel location (sub-account) id.
    #[arg(long, value_name = "ID")]
    pub location_id: Option<String>,
    /// Start the embedded mock HighLevel API and target it.
    #[arg(long, conflicts_with = "api_base")]
    pub mock: bool,
    #[command(flatten)]
    pub plugin: PluginArg,
}

/// How Dialpad's webhooks are authenticated.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct WebhookArgs {
    /// Dialpad webhook secret: bodies must then be HS256 JWTs signed with it. Visible to other
    /// users in `ps` as a flag: prefer DIALPAD_WEBHOOK_SECRET, or `webhook_secret` in an
    /// owner-only --config file.
    #[arg(long, env = "DIALPAD_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
}

/// Dialpad's API, for listing calls.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DialpadArgs {
    /// Dialpad API key (company admin, scope calls:list), injected by the host into requests
    /// to Dialpad's origin only. Visible to other users in `ps` as a flag: prefer
    /// DIALPAD_API_KEY, or `dialpad_api_key` in an owner-only --config file.
    #[arg(long, env = "DIALPAD_API_KEY", hide_env_values = true)]
    pub dialpad_api_key: Option<String>,
    /// Dialpad API origin (default https://dialpad.com).
    #[arg(long, value_name = "URL")]
    pub dialpad_api_base: Option<String>,
}

/// Where the data lives when it is not `<state>/state.db`: PostgreSQL, for several `serve`
/// replicas sharing one inbox, one key-value store, lanes and rate limits.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DatabaseArgs {
    /// PostgreSQL instead of `<state>/state.db`: postgres://user:password@host:port/database (or
    /// DIALPAD_GHL_DATABASE). Every replica given the same URL shares its inbox, records, dead
    /// letters, tenants and rate limits.
    #[arg(long, value_name = "URL", env = "DIALPAD_GHL_DATABASE", value_parser = parse_database)]
    pub database: Option<String>,
}

impl DatabaseArgs {
    /// The database: the URL, or the SQLite file in `state`.
    pub fn location(&self, state: &Path) -> PathBuf {
        match &self.database {
            Some(url) => PathBuf::from(url),
            None => state.join("state.db"),
        }
    }
}

fn parse_database(url: &str) -> Result<String, String> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") && parsed.host_str().is_some() => Ok(url.to_string()),
        Ok(parsed) => Err(format!("a PostgreSQL URL is postgres://user:password@host:port/database, not {}://…", parsed.scheme())),
        Err(e) => Err(format!("not a URL ({e}): give postgres://user:password@host:port/database")),
    }
}

/// What a runtime is built from: the groups a command uses.
#[derive(Default)]
pub struct TargetOptions<'a> {
    pub api: ApiArgs,
    pub webhook: WebhookArgs,
    pub dialpad: DialpadArgs,
    /// Where records, dead letters and OAuth tokens are kept; in memory when none.
    pub state: Option<&'a Path>,
    /// The database, when not `<state>/state.db` ([`DatabaseArgs::location`]).
    pub database: Option<PathBuf>,
    /// `serve` with tenants: the host may have no location of its own.
    pub allow_no_location: bool,
}

/// A runtime ready for events, and what came with it.
pub struct Target {
    pub runtime: Runtime,
    /// The embedded mock, alive as long as this.
    pub mock: Option<MockServer>,
    pub dead_letters: DeadLetters,
    pub reconcile: Option<Reconcile>,
    /// Whether a Dialpad API key was given (flag, environment or configuration).
    pub has_dialpad_key: bool,
    /// The settings the runtime was built from: what each tenant's are built from.
    pub settings: Settings,
    /// Whether a location was given (flag or configuration); without one, a runtime is still
    /// built (for tenants to share) but serves no location of its own.
    pub has_location: bool,
}

impl Target {
    /// Settings from the flags and the configuration file, the runtime, and its stores. Fails
    /// once, before any event, when the plugin's configuration is invalid.
    pub fn build(options: TargetOptions<'_>) -> anyhow::Result<Target> {
        let TargetOptions { api, webhook, dialpad, state, database, allow_no_location } = options;
        let mut settings = match &api.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        if let Some(token) = api.token {
            settings.token = Some(Secret::new(token));
        }
        if let Some(location) = api.location_id {
            settings.set("location_id", location);
        }
        if let Some(secret) = webhook.webhook_secret {
            settings.set("webhook_secret", secret);
        }
        if let Some(key) = dialpad.dialpad_api_key {
            settings.dialpad_key = Some(Secret::new(key));
        }
        if let Some(base) = dialpad.dialpad_api_base {
            settings.set("dialpad_api_base", base);
        }
        let mock = if api.mock { Some(MockServer::start(MockOptions::default())?) } else { None };
        if let Some(m) = &mock {
            settings.set("api_base", m.base_url());
            settings.token.get_or_insert_with(|| Secret::new("mock-token"));
            if !settings.plugin_config.contains_key("location_id") {
                settings.set("location_id", "mock-location");
            }
        } else if let Some(base) = api.api_base {
            settings.set("api_base", base);
        }
        let has_location = settings.plugin_config.get("location_id").and_then(|v| v.as_str()).is_some_and(|l| !l.is_empty());
        if !has_location && allow_no_location {
            // Only the tenants have locations: the host's own runtime is their template.
            settings.set("location_id", "-");
        }
        // The state folder holds personal data and credentials: owner-only (0700), made so
        // before anything is written in it (the OAuth token, the compiled plugin, state.db).
        if let Some(dir) = state {
            dialpad_ghl_host::storage::private::private_dir(dir)?;
        }
        settings.start_oauth(state)?;
        // On a shared database the rate limits (and the tenants' OAuth refreshes) are shared with
        // the other replicas.
        settings.shared_store = database.as_deref().map(dialpad_ghl_host::storage::db::Location::of).filter(|l| l.is_shared());
        let (wasm, _) = api.plugin.bytes()?;
        // With a state directory, the compiled plugin is kept there: a restart skips the compile.
        let (plugin, _) = CompiledPlugin::compile(&wasm, Allocation::best(), state.map(|dir| dir.join("compiled")).as_deref())?;
        let (kv, dead_letters, durable) = match state {
            Some(dir) => {
                let db = database.unwrap_or_else(|| dir.join("state.db"));
                (KeyValueStore::open(&db)?, DeadLetters::open(&db)?, true)
            }
            // Only the embedded mock lives exactly as long as this process's memory; against any
            // other API, without a state folder, the plugin must not trust the store's memory of
            // past events.
            None => (KeyValueStore::new(), DeadLetters::in_memory(), mock.is_some()),
        };
        let runtime = Runtime::new(&plugin, settings.runtime_options(durable)?, kv)?;
        let problems = runtime.config_problems()?;
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", if p.path.is_empty() { "/" } else { &p.path }, p.message)).collect();
            anyhow::bail!("the configuration is invalid:\n  {}", list.join("\n  "));
        }
        Ok(Target { runtime, mock, dead_letters, reconcile: settings.reconcile, has_dialpad_key: settings.dialpad_key.is_some(), settings, has_location })
    }
}
