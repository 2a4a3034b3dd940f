//! `host-test`: run the Dialpad ⇄ HighLevel plugin component.
//!
//! - `demo`: the embedded mock Contacts API, the bundled Dialpad events, a readable summary.
//! - `replay <files…>`: one JSON line per event (outcome, and each HTTP operation).
//! - `mock`: serve the mock Contacts API alone on a loopback port.
//! - `catalog`: every Contacts API operation the plugin offers as an action (`--json`).
//! - `invoke <operationId> --input '<json>'`: run one of them.
//! - `config-schema`: print the plugin's configuration JSON Schema.
//! - `validate-config <file>`: every problem of a configuration (JSON or TOML), with its path.
//! - `view`: the unified view of a contact (contact, tasks, notes, appointments).
//! - `serve`: the webhook receiver: durable inbox, workers, monitoring page, `/metrics`.

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use host_test::bindings::exports::dialpad_ghl::sync::views::Subject;
use host_test::dead_letters::{deliver, replay_dead_letters, DeadLetters, EventSource};
use host_test::engine::{Allocation, CompiledPlugin, Runtime};
use host_test::keyvalue::KeyValueStore;
use host_test::mock::{MockOptions, MockServer};
use host_test::outbound::Secret;
use host_test::report;
use host_test::serve::{ServeOptions, Server};
use host_test::settings::Settings;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "host-test", version, about = "Reference host for the Dialpad ⇄ HighLevel sync plugin")]
struct Cli {
    /// Log every outbound request (to stderr).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled Dialpad events through the plugin against the embedded mock API.
    Demo,
    /// Handle Dialpad webhook bodies from files; prints one JSON line per event.
    Replay {
        /// Files holding one raw webhook body each (JSON, or a signed JWT), or one platform
        /// task/note event each (a JSON object whose `type` is `task.*` or `note.*`).
        #[arg(required_unless_present = "dead_letters")]
        files: Vec<PathBuf>,
        /// Print each event's plan; send nothing, write nothing.
        #[arg(long, conflicts_with = "dead_letters")]
        dry_run: bool,
        /// Deliver the dead letters of `--state` again (instead of files); those that get
        /// through are removed.
        #[arg(long, requires = "state")]
        dead_letters: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Serve the mock Contacts API on a loopback port until interrupted.
    Mock {
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Bearer token the mock requires (any token when absent).
        #[arg(long, env = "MOCK_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Let the mock create contacts that share a phone or e-mail.
        #[arg(long)]
        allow_duplicates: bool,
    },
    /// List every Contacts API operation the plugin offers as an action.
    Catalog {
        /// Print JSON (with each operation's input schema) instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = host_test::PLUGIN_WASM)]
        plugin: PathBuf,
    },
    /// Run one Contacts API operation through the plugin; prints the API's JSON response.
    Invoke {
        /// The operation's id, as `catalog` lists it (e.g. get-contact).
        operation_id: String,
        /// JSON object: path and query parameters by name, the request body under `body`.
        #[arg(long, default_value = "{}")]
        input: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Print the plugin's configuration JSON Schema (`--platform-event`: the schema of platform
    /// task and note events instead).
    ConfigSchema {
        #[arg(long)]
        platform_event: bool,
        #[arg(long, default_value = host_test::PLUGIN_WASM)]
        plugin: PathBuf,
    },
    /// Check a configuration file (JSON, or TOML by its .toml extension): prints every problem
    /// with its path and exits 1, or says it is valid.
    ValidateConfig {
        file: PathBuf,
        #[arg(long, default_value = host_test::PLUGIN_WASM)]
        plugin: PathBuf,
    },
    /// Write the release artifact: `<out>/dialpad-ghl-plugin-<version>.wasm`, its `.sha256`,
    /// and the WIT it implements (`dialpad-ghl-sync-<api>.wit`).
    Dist {
        #[arg(long, default_value = "dist")]
        out: PathBuf,
        #[arg(long, default_value = host_test::PLUGIN_WASM)]
        plugin: PathBuf,
    },
    /// Receive Dialpad webhooks (POST /webhooks/dialpad) and platform events (POST
    /// /events/platform): each is committed to the SQLite inbox in `--state` before the 200,
    /// then handled by workers. The admin address serves the monitoring page, /healthz and
    /// /metrics.
    Serve {
        /// Where Dialpad delivers (loopback unless you put a public address here).
        #[arg(long, default_value = "127.0.0.1:8790")]
        listen: SocketAddr,
        /// The monitoring page, /metrics and /healthz; it can replay events: keep it private.
        #[arg(long, default_value = "127.0.0.1:8791")]
        admin_listen: SocketAddr,
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Handlings of a delivery that keeps failing transiently before it is dead-lettered.
        #[arg(long, default_value_t = 5)]
        max_attempts: u32,
        /// First retry delay (doubled per attempt), e.g. 2s or 500ms.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        retry_base: std::time::Duration,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Bring Dialpad's concluded calls of a period over (GET /api/v2/call), each synced as its
    /// hangup webhook would be: a call already synced changes nothing. The paging cursor and
    /// the counts are kept in --state after every page: an interrupted backfill resumes there.
    Backfill {
        /// First day (2026-03-01) or instant (RFC 3339) of the calls' start, exclusive.
        #[arg(long)]
        since: String,
        /// Last day or instant, exclusive (default: now).
        #[arg(long)]
        until: Option<String>,
        /// Print each call's plan; send nothing to HighLevel, keep no progress.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Measure the plugin against its goals (instantiation, overhead, the stock host, the view,
    /// requests per workflow, a rate-limited burst, size, cold start); prints a Markdown table.
    Bench {
        /// A short run (seconds), for checking the command itself.
        #[arg(long)]
        quick: bool,
        /// The burst's rate-limit window, standing for HighLevel's 10 s.
        #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
        burst_window: std::time::Duration,
        /// Also write the results, with the machine and the command, to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the unified view of a HighLevel contact (contact, tasks, notes, appointments) as JSON.
    View {
        /// A phone number in any format Dialpad sends.
        #[arg(long, group = "subject")]
        phone: Option<String>,
        /// A HighLevel contact id.
        #[arg(long, group = "subject")]
        contact_id: Option<String>,
        /// A Dialpad contact id the plugin has synced.
        #[arg(long, group = "subject")]
        dialpad_contact: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// Which Contacts API to target, and how.
#[derive(Args)]
struct TargetArgs {
    /// JSON configuration file (the plugin's settings, plus `token` for the host).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Contacts API origin, e.g. http://127.0.0.1:8787 (default: HighLevel's).
    #[arg(long)]
    api_base: Option<String>,
    /// Bearer token, injected by the host into requests to the API origin only.
    #[arg(long, env = "GHL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long)]
    location_id: Option<String>,
    /// Dialpad webhook secret: bodies must then be HS256 JWTs.
    #[arg(long, env = "DIALPAD_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Dialpad API key (company admin, scope calls:list), injected by the host into requests to
    /// Dialpad's origin only: `backfill` and `serve`'s reconciliation list calls with it.
    #[arg(long, env = "DIALPAD_API_KEY", hide_env_values = true)]
    dialpad_api_key: Option<String>,
    /// Dialpad API origin (default https://dialpad.com).
    #[arg(long)]
    dialpad_api_base: Option<String>,
    /// Start the embedded mock API and target it.
    #[arg(long, conflicts_with = "api_base")]
    mock: bool,
    /// The plugin component to load.
    #[arg(long, default_value = host_test::PLUGIN_WASM)]
    plugin: PathBuf,
    /// Keep the plugin's records, the dead letters (`<dir>/state.db`, SQLite) and the newest
    /// OAuth refresh token here, so a later run knows what was synced and what failed.
    #[arg(long)]
    state: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let level = if cli.verbose { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .init();
    let result = match cli.command {
        Command::Demo => demo(),
        Command::Replay { files, dry_run, dead_letters, target } => replay(&files, dry_run, dead_letters, target),
        Command::Mock { listen, token, allow_duplicates } => serve_mock(listen, token, allow_duplicates),
        Command::Catalog { json, plugin } => catalog(&plugin, json),
        Command::Invoke { operation_id, input, target } => invoke(&operation_id, &input, target),
        Command::ConfigSchema { plugin, platform_event } => config_schema(&plugin, platform_event),
        Command::ValidateConfig { file, plugin } => validate_config(&file, &plugin),
        Command::Dist { out, plugin } => dist(&out, &plugin),
        Command::View { phone, contact_id, dialpad_contact, target } => view(phone, contact_id, dialpad_contact, target),
        Command::Bench { quick, burst_window, out } => bench(quick, burst_window, out),
        Command::Backfill { since, until, dry_run, target } => backfill(&since, until.as_deref(), dry_run, target),
        Command::Serve { listen, admin_listen, workers, max_attempts, retry_base, target } => {
            serve(ServeOptions { listen, admin_listen, workers, max_attempts, retry_base, reconcile: None }, target)
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The runtime that `replay`, `view` and `invoke` use, the embedded mock when `--mock` asked
/// for it, and where failed events go.
/// What `target_runtime` sets up.
struct Target {
    runtime: Runtime,
    /// The embedded mock, alive as long as this.
    _mock: Option<MockServer>,
    dead_letters: DeadLetters,
    reconcile: Option<host_test::settings::Reconcile>,
    /// Whether a Dialpad API key was given (flag, environment or configuration).
    has_dialpad_key: bool,
}

fn target_runtime(target: TargetArgs) -> anyhow::Result<Target> {
    let state = target.state.as_deref();
    let mut settings = match &target.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    if let Some(token) = target.token {
        settings.token = Some(Secret::new(token));
    }
    if let Some(location) = target.location_id {
        settings.set("location_id", location);
    }
    if let Some(secret) = target.webhook_secret {
        settings.set("webhook_secret", secret);
    }
    if let Some(key) = target.dialpad_api_key {
        settings.dialpad_key = Some(Secret::new(key));
    }
    if let Some(base) = target.dialpad_api_base {
        settings.set("dialpad_api_base", base);
    }
    let mock = if target.mock { Some(MockServer::start(MockOptions::default())?) } else { None };
    if let Some(m) = &mock {
        settings.set("api_base", m.base_url());
        settings.token.get_or_insert_with(|| Secret::new("mock-token"));
        if !settings.plugin_config.contains_key("location_id") {
            settings.set("location_id", "mock-location");
        }
    } else if let Some(base) = target.api_base {
        settings.set("api_base", base);
    }
    settings.start_oauth(state)?;
    let wasm = std::fs::read(&target.plugin).with_context(|| format!("reading plugin {}", target.plugin.display()))?;
    // With a state directory, the compiled plugin is kept there: a restart skips the compile.
    let (plugin, _) = CompiledPlugin::compile(&wasm, Allocation::best(), state.map(|dir| dir.join("compiled")).as_deref())?;
    let (kv, dead_letters, durable) = match state {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let db = dir.join("state.db");
            (KeyValueStore::open(&db)?, DeadLetters::open(&db)?, true)
        }
        // Only the embedded mock lives exactly as long as this process's memory; against any
        // other API, without --state, the plugin must not trust the store's memory of past events.
        None => (KeyValueStore::new(), DeadLetters::in_memory(), mock.is_some()),
    };
    let runtime = Runtime::new(&plugin, settings.runtime_options(durable)?, kv)?;
    Ok(Target { runtime, _mock: mock, dead_letters, reconcile: settings.reconcile, has_dialpad_key: settings.dialpad_key.is_some() })
}

fn replay(files: &[PathBuf], dry_run: bool, from_dead_letters: bool, target: TargetArgs) -> anyhow::Result<()> {
    let keeps_state = target.state.is_some();
    let bodies = files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())).map(|b| (f.display().to_string(), b)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let Target { runtime, _mock, dead_letters, .. } = target_runtime(target)?;
    let mut stdout = std::io::stdout().lock();
    if from_dead_letters {
        let tally = replay_dead_letters(&runtime, &dead_letters, |letter, result| {
            let _ = writeln!(stdout, "{}", report::report_line(&letter.name, result));
        })?;
        eprintln!("dead letters: {} delivered, {} still failing", tally.succeeded, tally.still_failing);
        return Ok(());
    }
    let mut failed = 0;
    for (name, body) in &bodies {
        let platform = platform_event(body);
        let line = if dry_run {
            let result = match platform {
                Some(event) => runtime.plan_platform_event(event),
                None => runtime.plan(body),
            }
            .with_context(|| format!("plugin trapped on {name}"))?;
            failed += usize::from(result.is_err());
            report::plan_line(name, &result)
        } else {
            let source = if platform.is_some() { EventSource::Platform } else { EventSource::Webhook };
            let result = deliver(&runtime, &dead_letters, name, source, body)?;
            failed += usize::from(result.is_err());
            report::report_line(name, &result)
        };
        writeln!(stdout, "{line}")?;
    }
    if failed > 0 {
        let kept = if dry_run || !keeps_state { String::new() } else { " (kept as dead letters: replay --dead-letters retries them)".to_string() };
        eprintln!("{failed} of {} events failed{kept}", bodies.len());
    }
    Ok(())
}

/// The body as a platform task/note event, when it is one (`"type": "task.…" | "note.…"`).
fn platform_event(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let kind = value.get("type")?.as_str()?;
    (kind.starts_with("task.") || kind.starts_with("note.")).then_some(text)
}

fn bench(quick: bool, burst_window: std::time::Duration, out: Option<PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    let results = host_test::bench::run(host_test::bench::BenchOptions { quick, burst_window })?;
    let table = host_test::bench::markdown(&results);
    println!("{table}");
    let machine = host_test::bench::machine();
    println!("machine: {machine}; {} s in all", started.elapsed().as_secs());
    if let Some(out) = out {
        let command = format!("cargo run --release -- bench{}{}", if quick { " --quick" } else { "" }, format_args!(" --burst-window {}", humantime::format_duration(burst_window)));
        let document = format!(
            "# Benchmarks\n\nOne run of `{command} --out {}`, on {machine}, {} s in all. The figures are\nthis machine's; rerun the command to measure yours.\n\n{table}",
            out.display(),
            started.elapsed().as_secs()
        );
        std::fs::write(&out, document).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

fn backfill(since: &str, until: Option<&str>, dry_run: bool, mut target: TargetArgs) -> anyhow::Result<()> {
    use host_test::backfill::{parse_instant_ms, Backfills, Mode};
    use host_test::bindings::exports::dialpad_ghl::sync::backfill::Window;
    let started_after = parse_instant_ms(since)?;
    let started_before = match until {
        Some(until) => parse_instant_ms(until)?,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64,
    };
    if started_before <= started_after {
        bail!("--until must come after --since");
    }
    let state = target.state.get_or_insert_with(|| PathBuf::from(SERVE_STATE_DIR)).clone();
    let Target { runtime, _mock, has_dialpad_key, .. } = target_runtime(target)?;
    if !has_dialpad_key {
        bail!("backfill lists calls through Dialpad's API: give --dialpad-api-key (or DIALPAD_API_KEY, or dialpad_api_key in --config)");
    }
    let backfills = Backfills::open(&state.join("state.db"))?;
    let window = Window { started_after, started_before: Some(started_before) };
    let span = (started_before - started_after) / 1000;
    let bar = indicatif::ProgressBar::new(span.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {percent}% of the period, eta {eta} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let mode = if dry_run { Mode::DryRun } else { Mode::Sync };
    let result = host_test::backfill::run(&runtime, Some(&backfills), window, mode, |progress, lines| {
        for line in lines {
            let _ = writeln!(stdout, "{line}");
        }
        // Newest first: the period is covered from its end back to its start.
        let covered = progress.oldest_started.map_or(0, |oldest| started_before.saturating_sub(oldest) / 1000);
        bar.set_position(if progress.done { span } else { covered.min(span) });
        bar.set_message(format!("fetched {}, synced {}, unchanged {}, skipped {}, failed {}", progress.fetched, progress.synced, progress.unchanged, progress.skipped, progress.failed));
    })?;
    bar.finish_and_clear();
    let (progress, error) = match result {
        Ok(progress) => (progress, None),
        Err((progress, error)) => (progress, Some(error)),
    };
    eprintln!(
        "backfill{}: {} pages, {} calls fetched: {} synced, {} unchanged, {} skipped, {} failed, in {:.1} s",
        if dry_run { " (dry run)" } else { "" },
        progress.pages,
        progress.fetched,
        progress.synced,
        progress.unchanged,
        progress.skipped,
        progress.failed,
        started.elapsed().as_secs_f64()
    );
    if let Some(error) = error {
        bail!("stopped: {} (run the same command again to resume from page {})", report::error_message(&error), progress.pages + 1);
    }
    if progress.failed > 0 {
        eprintln!("{} calls failed (their lines above say why): run the same command again to retry them; the others change nothing", progress.failed);
    }
    Ok(())
}

/// Where `serve` keeps its inbox and records when `--state` is not given.
const SERVE_STATE_DIR: &str = "dialpad-ghl-state";

fn serve(mut options: ServeOptions, mut target: TargetArgs) -> anyhow::Result<()> {
    let state = target.state.get_or_insert_with(|| PathBuf::from(SERVE_STATE_DIR)).clone();
    let Target { runtime, _mock, dead_letters, reconcile, has_dialpad_key } = target_runtime(target)?;
    if reconcile.is_some() && !has_dialpad_key {
        bail!("reconcile lists calls through Dialpad's API: give --dialpad-api-key (or DIALPAD_API_KEY, or dialpad_api_key in --config)");
    }
    options.reconcile = reconcile;
    let problems = runtime.config_problems()?;
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", if p.path.is_empty() { "/" } else { &p.path }, p.message)).collect();
        bail!("the configuration is invalid:\n  {}", list.join("\n  "));
    }
    let server = Server::start(runtime, &state.join("state.db"), dead_letters, options)?;
    println!("webhooks: {}/webhooks/dialpad (platform events: {}/events/platform)", server.webhook_url(), server.webhook_url());
    println!("monitor: {}/ (metrics: {}/metrics)", server.admin_url(), server.admin_url());
    println!("state: {} ({} queued from before)", state.display(), server.inbox().queued()?);
    std::io::stdout().flush()?;
    server.run_until_signal()
}

fn view(phone: Option<String>, contact_id: Option<String>, dialpad_contact: Option<String>, target: TargetArgs) -> anyhow::Result<()> {
    let subject = match (phone, contact_id, dialpad_contact) {
        (Some(p), _, _) => Subject::Phone(p),
        (_, Some(c), _) => Subject::ContactId(c),
        (_, _, Some(d)) => Subject::DialpadContact(d),
        _ => bail!("say whose view: --phone, --contact-id or --dialpad-contact"),
    };
    let Target { runtime, _mock, .. } = target_runtime(target)?;
    match runtime.view(&subject)? {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&report::view_json(&v))?);
            Ok(())
        }
        Err(e) => {
            println!("{}", report::error_json(&e));
            bail!("view failed: {}", report::error_message(&e))
        }
    }
}

fn validate_config(file: &std::path::Path, plugin: &std::path::Path) -> anyhow::Result<()> {
    let document = host_test::settings::config_document(file)?;
    let problems = offline_runtime(plugin)?.validate_config(&document.to_string())?;
    if problems.is_empty() {
        println!("{}: valid", file.display());
        return Ok(());
    }
    for p in &problems {
        println!("{}: {}: {}", file.display(), if p.path.is_empty() { "/" } else { &p.path }, p.message);
    }
    bail!("{} problem(s) in {}", problems.len(), file.display())
}

/// The WIT package the plugin implements, as shipped beside it.
const SYNC_WIT: &str = include_str!("../../wit/sync.wit");

fn dist(out: &std::path::Path, plugin: &std::path::Path) -> anyhow::Result<()> {
    use sha2::Digest as _;
    let bytes = std::fs::read(plugin).with_context(|| format!("reading {}", plugin.display()))?;
    let versions = host_test::version::check(&bytes)?;
    let Some(plugin_version) = versions.plugin else { bail!("{} carries no `{}` section: build it with this workspace", plugin.display(), host_test::version::SECTION) };
    // Loads and answers `meta` the same: the stamp tells the truth.
    let meta = offline_runtime(plugin)?.meta()?;
    if (meta.plugin_version.as_str(), meta.api_version.as_str()) != (plugin_version.as_str(), versions.api.as_str()) {
        bail!("the section says {plugin_version} / {}, but meta says {} / {}", versions.api, meta.plugin_version, meta.api_version);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let name = format!("dialpad-ghl-plugin-{plugin_version}.wasm");
    let digest: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(out.join(&name), &bytes)?;
    std::fs::write(out.join(format!("{name}.sha256")), format!("{digest}  {name}\n"))?;
    let wit = format!("dialpad-ghl-sync-{}.wit", versions.api);
    std::fs::write(out.join(&wit), SYNC_WIT)?;
    println!("{}: {} bytes, sha256 {digest}", out.join(&name).display(), bytes.len());
    println!("{}: the WIT it implements (dialpad-ghl:sync@{}; its WASI dependencies are the standard packages it names)", out.join(&wit).display(), versions.api);
    Ok(())
}

fn invoke(operation_id: &str, input: &str, target: TargetArgs) -> anyhow::Result<()> {
    let Target { runtime, _mock, .. } = target_runtime(target)?;
    match runtime.invoke(operation_id, input)? {
        Ok(response) => {
            let json: serde_json::Value = serde_json::from_str(&response).unwrap_or(serde_json::Value::String(response));
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(())
        }
        Err(e) => {
            println!("{}", report::error_json(&e));
            bail!("{operation_id} failed: {}", report::error_message(&e))
        }
    }
}

/// A runtime good for what needs no API: the catalog and the schema.
fn offline_runtime(plugin: &std::path::Path) -> anyhow::Result<Runtime> {
    let plugin = CompiledPlugin::from_file(plugin)?;
    let mut settings = Settings::default();
    settings.set("location_id", "-");
    Runtime::new(&plugin, settings.runtime_options(false)?, KeyValueStore::new())
}

fn catalog(plugin: &std::path::Path, as_json: bool) -> anyhow::Result<()> {
    let operations = offline_runtime(plugin)?.catalog()?;
    if as_json {
        let list: Vec<serde_json::Value> = operations
            .iter()
            .map(|o| {
                serde_json::json!({
                    "id": o.id, "method": o.method, "path": o.path, "scope": o.scope, "summary": o.summary,
                    "deprecated": o.deprecated,
                    "input_schema": serde_json::from_str::<serde_json::Value>(&o.input_schema).unwrap_or_default(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let width = operations.iter().map(|o| o.id.len()).max().unwrap_or(0);
    let path_width = operations.iter().map(|o| o.path.len()).max().unwrap_or(0);
    println!("{:<width$}  {:<6}  {:<path_width$}  {:<17}  SUMMARY", "OPERATION", "METHOD", "PATH", "SCOPE");
    for o in &operations {
        let summary = if o.deprecated { format!("{} (deprecated)", o.summary) } else { o.summary.clone() };
        println!("{:<width$}  {:<6}  {:<path_width$}  {:<17}  {summary}", o.id, o.method, o.path, o.scope);
    }
    println!("{} operations", operations.len());
    Ok(())
}

fn serve_mock(listen: SocketAddr, token: Option<String>, allow_duplicates: bool) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!("the mock serves on loopback only; {listen} is not a loopback address");
    }
    let require_token = token.is_some();
    let server = MockServer::start_on(listen, MockOptions { token, allow_duplicates, ..MockOptions::default() })?;
    println!("mock Contacts API on {} (token {}; debug state at {}/__mock/state)", server.base_url(), if require_token { "required" } else { "any" }, server.base_url());
    server.wait();
    Ok(())
}

fn config_schema(plugin: &std::path::Path, platform_event: bool) -> anyhow::Result<()> {
    let meta = offline_runtime(plugin)?.meta()?;
    let schema: serde_json::Value = serde_json::from_str(if platform_event { &meta.platform_event_schema } else { &meta.config_schema })?;
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(())
}

/// The bundled events, in the order a day of calls would deliver them.
const DEMO_EVENTS: &[(&str, &[u8])] = &[
    ("call_inbound_ringing_unknown_number.json", include_bytes!("../demo-events/call_inbound_ringing_unknown_number.json")),
    ("call_inbound_connected.json", include_bytes!("../demo-events/call_inbound_connected.json")),
    ("call_inbound_hangup_completed.json", include_bytes!("../demo-events/call_inbound_hangup_completed.json")),
    ("call_recap_summary.json", include_bytes!("../demo-events/call_recap_summary.json")),
    ("call_outbound_hangup_recorded.json", include_bytes!("../demo-events/call_outbound_hangup_recorded.json")),
    ("call_inbound_missed.json", include_bytes!("../demo-events/call_inbound_missed.json")),
    ("call_voicemail_uploaded.json", include_bytes!("../demo-events/call_voicemail_uploaded.json")),
    ("call_voicemail_transcription.json", include_bytes!("../demo-events/call_voicemail_transcription.json")),
    ("sms_inbound.json", include_bytes!("../demo-events/sms_inbound.json")),
    ("contact_created_shared.json", include_bytes!("../demo-events/contact_created_shared.json")),
    ("contact_updated_new_email.json", include_bytes!("../demo-events/contact_updated_new_email.json")),
    ("agent_status_on_duty.json", include_bytes!("../demo-events/agent_status_on_duty.json")),
    ("call_inbound_hangup_completed.json (redelivered)", include_bytes!("../demo-events/call_inbound_hangup_completed.json")),
];
/// Task and note events from the automation platform.
const DEMO_PLATFORM_EVENTS: &[(&str, &str)] = &[
    ("platform_task_created.json", include_str!("../demo-events/platform_task_created.json")),
    ("platform_task_updated.json", include_str!("../demo-events/platform_task_updated.json")),
    ("platform_task_completed.json", include_str!("../demo-events/platform_task_completed.json")),
    ("platform_note_created.json", include_str!("../demo-events/platform_note_created.json")),
    ("platform_note_updated.json", include_str!("../demo-events/platform_note_updated.json")),
    ("platform_task_created.json (redelivered)", include_str!("../demo-events/platform_task_created.json")),
];
const DEMO_CONTACT_DELETED: &[u8] = include_bytes!("../demo-events/contact_deleted.json");
const DEMO_PRIYA_NOTE: &str = include_str!("../demo-events/platform_note_priya.json");
const DEMO_SIGNED_EVENT: &[u8] = include_bytes!("../demo-events/call_inbound_hangup_completed.jwt");
/// The demo's no-code configuration: field mapping, tags, follow-up and tag rules.
const DEMO_CONFIG: &str = include_str!("../demo-events/demo-config.json");
const DEMO_WEBHOOK_SECRET: &str = "dialpad-fixture-secret-not-for-production";
const DEMO_TOKEN: &str = "demo-private-integration-token";

/// Counts outcomes: synced, unchanged, skipped, failed.
#[derive(Default)]
struct Tally([usize; 4]);

impl Tally {
    fn add(&mut self, result: &Result<host_test::bindings::dialpad_ghl::sync::types::Report, host_test::bindings::dialpad_ghl::sync::types::SyncError>) {
        let slot = match result {
            Ok(r) => match report::outcome_name(&r.outcome).0 {
                "synced" => 0,
                "unchanged" => 1,
                _ => 2,
            },
            Err(_) => 3,
        };
        self.0[slot] += 1;
    }
}

fn demo() -> anyhow::Result<()> {
    let mock = MockServer::start(MockOptions { token: Some(DEMO_TOKEN.into()), ..MockOptions::default() })?;
    // Kenji is already a HighLevel contact: his call is attached to him, not duplicated.
    mock.seed_contact(serde_json::json!({
        "locationId": "demo-location", "firstName": "Kenji", "lastName": "Watanabe",
        "email": "kenji.watanabe@example.net", "phone": "+15035550139", "source": "HighLevel", "tags": ["cold-lead"]
    }));
    println!("Dialpad ⇄ HighLevel sync demo");
    println!("  mock Contacts API: {} (requires its bearer token; seeded with 1 existing contact)", mock.base_url());

    let started = Instant::now();
    let plugin = CompiledPlugin::from_file(std::path::Path::new(host_test::PLUGIN_WASM))?;
    let size = std::fs::metadata(host_test::PLUGIN_WASM).map(|m| m.len()).unwrap_or(0);
    println!("  plugin: {} ({} KB), compiled in {} ms", host_test::PLUGIN_WASM, size / 1024, started.elapsed().as_millis());

    let serde_json::Value::Object(config) = serde_json::from_str(DEMO_CONFIG)? else { bail!("demo config is not an object") };
    let mut settings = Settings { plugin_config: config, ..Settings::default() };
    settings.set("api_base", mock.base_url());
    settings.token = Some(Secret::new(DEMO_TOKEN));
    let kv = KeyValueStore::new();
    let runtime = Runtime::new(&plugin, settings.runtime_options(true)?, kv.clone())?;
    let meta = runtime.meta()?;
    println!("  plugin version {}, WIT API {}", meta.plugin_version, meta.api_version);
    println!("  configuration: host-test/demo-events/demo-config.json (time zone America/Chicago; 3 follow-up rules, 4 tag rules, field mapping with a custom field)\n");

    let mut tally = Tally::default();
    println!("Dialpad events (unsigned webhook):");
    for (name, body) in DEMO_EVENTS {
        let result = runtime.handle(body)?;
        tally.add(&result);
        println!("  {}", report::human_line(name, &result));
    }

    println!("\nTask and note events from the automation platform:");
    for (name, event) in DEMO_PLATFORM_EVENTS {
        let result = runtime.handle_platform_event(event)?;
        tally.add(&result);
        println!("  {}", report::human_line(name, &result));
    }

    // Priya has a meeting booked in HighLevel: the view shows it with her tasks and notes.
    if let Some(priya) = mock.contacts().iter().find(|c| c["phone"] == "+13125550187").and_then(|c| c["id"].as_str().map(str::to_string)) {
        mock.seed_appointment(&priya, serde_json::json!({"title": "Annual plan walkthrough", "startTime": "2026-03-17T15:00:00Z"}));
    }
    println!("\nScreen pop (views.get), as when a call rings:");
    let show = |label: &str, subject: &Subject| -> anyhow::Result<()> {
        match runtime.view(subject)? {
            Ok(v) => {
                let count = |json: &str| serde_json::from_str::<serde_json::Value>(json).ok().and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0);
                let reads: Vec<String> = v.operations.iter().map(|o| format!("{} {}", o.operation_id, o.status.map(|s| s.to_string()).unwrap_or_default())).collect();
                println!(
                    "  ✓ {label}: contact {}: {} tasks, {} notes, {} appointments; {}",
                    v.contact_id,
                    count(&v.tasks),
                    count(&v.notes),
                    count(&v.appointments),
                    if v.from_cache { format!("from cache ({} s old), 0 requests", v.age_seconds) } else { format!("{} requests [{}]", v.operations.len(), reads.join(", ")) },
                );
            }
            Err(e) => println!("  ✗ {label}: {}", report::error_message(&e)),
        }
        Ok(())
    };
    // The mock holds reads until four are waiting at once (or 3 s pass): a plugin that read
    // one at a time would wait here, and the maximum in flight would say 1.
    mock.reset_in_flight_max();
    mock.hold_reads_until(4);
    show("phone (312) 555-0187", &Subject::Phone("(312) 555-0187".into()))?;
    mock.hold_reads_until(0);
    println!("    the four reads went out together: {} requests were in flight at once on the mock", mock.in_flight_max());
    show("phone (312) 555-0187 again", &Subject::Phone("(312) 555-0187".into()))?;
    let result = runtime.handle_platform_event(DEMO_PRIYA_NOTE)?;
    tally.add(&result);
    println!("  {}", report::human_line("platform_note_priya.json (a write: drops the cached view)", &result));
    show("phone (312) 555-0187 after the write", &Subject::Phone("(312) 555-0187".into()))?;
    show("Dialpad contact 5908860431927296", &Subject::DialpadContact("5908860431927296".into()))?;
    println!();
    let result = runtime.handle(DEMO_CONTACT_DELETED)?;
    tally.add(&result);
    println!("  {}", report::human_line("contact_deleted.json (on_contact_deleted: tag)", &result));

    // The same hangup again, now as Dialpad sends it with a webhook secret: a signed JWT.
    let mut signed_settings = settings.clone();
    signed_settings.set("webhook_secret", DEMO_WEBHOOK_SECRET);
    let signed = Runtime::new(&plugin, signed_settings.runtime_options(true)?, kv.clone())?;
    let mut wrong_secret_settings = settings.clone();
    wrong_secret_settings.set("webhook_secret", "not-the-secret");
    let wrong = Runtime::new(&plugin, wrong_secret_settings.runtime_options(true)?, kv)?;
    println!("\nDialpad events (signed webhook, HS256):");
    for (label, rt, body) in [
        ("call_inbound_hangup_completed.jwt", &signed, DEMO_SIGNED_EVENT),
        ("call_inbound_hangup_completed.jwt, wrong secret", &wrong, DEMO_SIGNED_EVENT),
        ("call_inbound_hangup_completed.json, unsigned while a secret is set", &signed, DEMO_EVENTS[2].1),
    ] {
        let result = rt.handle(body)?;
        tally.add(&result);
        println!("  {}", report::human_line(label, &result));
    }

    println!("\nHighLevel now holds:");
    let contacts = mock.contacts();
    let (notes, tasks) = (mock.notes(), mock.tasks());
    for c in &contacts {
        let id = c["id"].as_str().unwrap_or("?");
        let name = [c["firstName"].as_str(), c["lastName"].as_str()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let name = if name.is_empty() { "(no name)".to_string() } else { name };
        let tags: Vec<&str> = c["tags"].as_array().map(|t| t.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
        println!("  contact {id}  {}  {name}  email={}  source={}", c["phone"].as_str().unwrap_or("-"), c["email"].as_str().unwrap_or("-"), c["source"].as_str().unwrap_or("-"));
        if !tags.is_empty() {
            println!("    tags: {}", tags.join(", "));
        }
        if let Some(fields) = c["customFields"].as_array().filter(|f| !f.is_empty()) {
            println!("    custom fields: {}", serde_json::Value::Array(fields.clone()));
        }
        for t in tasks.iter().filter(|t| t["contactId"].as_str() == Some(id)) {
            let done = if t["completed"].as_bool() == Some(true) { "done" } else { "open" };
            println!("    task {} [{done}] due {}: {}", t["id"].as_str().unwrap_or("?"), t["dueDate"].as_str().unwrap_or("-"), t["title"].as_str().unwrap_or(""));
        }
        for n in notes.iter().filter(|n| n["contactId"].as_str() == Some(id)) {
            println!("    note {}:", n["id"].as_str().unwrap_or("?"));
            for line in n["body"].as_str().unwrap_or("").lines() {
                println!("      | {line}");
            }
        }
    }
    let requests = mock.requests();
    let log = runtime.http_log().entries();
    let leaked = log.iter().chain(signed.http_log().entries().iter()).any(|e| serde_json::to_string(e).unwrap_or_default().contains(DEMO_TOKEN));
    let [synced, unchanged, skipped, failed] = tally.0;
    println!(
        "\nSummary: {} events: {synced} synced, {unchanged} unchanged, {skipped} skipped, {failed} failed (as expected: 2 refused signatures); {} API requests; {} contacts, {} notes, {} tasks; token in host logs: {}",
        synced + unchanged + skipped + failed,
        requests.len(),
        contacts.len(),
        notes.len(),
        tasks.len(),
        if leaked { "FOUND" } else { "never" }
    );
    if leaked {
        bail!("the token appeared in the host's request log");
    }
    Ok(())
}
