//! `host-test`: run the Dialpad ⇄ HighLevel plugin component.
//!
//! - `demo`: the embedded mock Contacts API, the bundled Dialpad events, a readable summary.
//! - `replay <files…>`: one JSON line per event (outcome, and each HTTP operation).
//! - `mock`: serve the mock Contacts API alone on a loopback port.
//! - `catalog`: every Contacts API operation the plugin offers as an action (`--json`).
//! - `invoke <operationId> --input '<json>'`: run one of them.
//! - `config-schema`: print the plugin's configuration JSON Schema.

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use host_test::engine::{CompiledPlugin, Runtime};
use host_test::keyvalue::KeyValueStore;
use host_test::mock::{MockOptions, MockServer};
use host_test::outbound::Secret;
use host_test::report;
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
        /// Files holding one raw webhook body each (JSON, or a signed JWT).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print each event's plan; send nothing, write nothing.
        #[arg(long)]
        dry_run: bool,
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
    /// Print the plugin's configuration JSON Schema.
    ConfigSchema {
        #[arg(long, default_value = host_test::PLUGIN_WASM)]
        plugin: PathBuf,
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
    /// Start the embedded mock API and target it.
    #[arg(long, conflicts_with = "api_base")]
    mock: bool,
    /// The plugin component to load.
    #[arg(long, default_value = host_test::PLUGIN_WASM)]
    plugin: PathBuf,
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
        Command::Replay { files, dry_run, target } => replay(&files, dry_run, target),
        Command::Mock { listen, token, allow_duplicates } => serve_mock(listen, token, allow_duplicates),
        Command::Catalog { json, plugin } => catalog(&plugin, json),
        Command::Invoke { operation_id, input, target } => invoke(&operation_id, &input, target),
        Command::ConfigSchema { plugin } => config_schema(&plugin),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The runtime that `replay` and `invoke` use, and the embedded mock when `--mock` asked for it.
fn target_runtime(target: TargetArgs) -> anyhow::Result<(Runtime, Option<MockServer>)> {
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
    let plugin = CompiledPlugin::from_file(&target.plugin)?;
    // Only the embedded mock lives exactly as long as this process's key-value store; against
    // any other API the plugin must not trust the store's memory of past events.
    let runtime = Runtime::new(&plugin, settings.runtime_options(mock.is_some())?, KeyValueStore::new())?;
    Ok((runtime, mock))
}

fn replay(files: &[PathBuf], dry_run: bool, target: TargetArgs) -> anyhow::Result<()> {
    let bodies = files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())).map(|b| (f.display().to_string(), b)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (runtime, _mock) = target_runtime(target)?;
    let mut stdout = std::io::stdout().lock();
    let mut failed = 0;
    for (name, body) in &bodies {
        let line = if dry_run {
            let result = runtime.plan(body).with_context(|| format!("plugin trapped on {name}"))?;
            failed += usize::from(result.is_err());
            report::plan_line(name, &result)
        } else {
            let result = runtime.handle(body).with_context(|| format!("plugin trapped on {name}"))?;
            failed += usize::from(result.is_err());
            report::report_line(name, &result)
        };
        writeln!(stdout, "{line}")?;
    }
    if failed > 0 {
        eprintln!("{failed} of {} events failed", bodies.len());
    }
    Ok(())
}

fn invoke(operation_id: &str, input: &str, target: TargetArgs) -> anyhow::Result<()> {
    let (runtime, _mock) = target_runtime(target)?;
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

fn config_schema(plugin: &std::path::Path) -> anyhow::Result<()> {
    let meta = offline_runtime(plugin)?.meta()?;
    let schema: serde_json::Value = serde_json::from_str(&meta.config_schema)?;
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
    ("contact_deleted.json", include_bytes!("../demo-events/contact_deleted.json")),
    ("agent_status_on_duty.json", include_bytes!("../demo-events/agent_status_on_duty.json")),
    ("call_inbound_hangup_completed.json (redelivered)", include_bytes!("../demo-events/call_inbound_hangup_completed.json")),
];
const DEMO_SIGNED_EVENT: &[u8] = include_bytes!("../demo-events/call_inbound_hangup_completed.jwt");
const DEMO_WEBHOOK_SECRET: &str = "dialpad-fixture-secret-not-for-production";
const DEMO_TOKEN: &str = "demo-private-integration-token";

fn demo() -> anyhow::Result<()> {
    let mock = MockServer::start(MockOptions { token: Some(DEMO_TOKEN.into()), ..MockOptions::default() })?;
    // Kenji is already a HighLevel contact: his call is attached to him, not duplicated.
    mock.seed_contact(serde_json::json!({
        "locationId": "demo-location", "firstName": "Kenji", "lastName": "Watanabe",
        "email": "kenji.watanabe@example.net", "phone": "+15035550139", "source": "HighLevel"
    }));
    println!("Dialpad ⇄ HighLevel sync demo");
    println!("  mock Contacts API: {} (requires its bearer token; seeded with 1 existing contact)", mock.base_url());

    let started = Instant::now();
    let plugin = CompiledPlugin::from_file(std::path::Path::new(host_test::PLUGIN_WASM))?;
    let size = std::fs::metadata(host_test::PLUGIN_WASM).map(|m| m.len()).unwrap_or(0);
    println!("  plugin: {} ({} KB), compiled in {} ms", host_test::PLUGIN_WASM, size / 1024, started.elapsed().as_millis());

    let mut settings = Settings::default();
    settings.set("api_base", mock.base_url());
    settings.set("location_id", "demo-location");
    settings.token = Some(Secret::new(DEMO_TOKEN));
    let kv = KeyValueStore::new();
    let runtime = Runtime::new(&plugin, settings.runtime_options(true)?, kv.clone())?;
    let meta = runtime.meta()?;
    println!("  plugin version {}, WIT API {}\n", meta.plugin_version, meta.api_version);

    let mut tally = [0usize; 4]; // synced, unchanged, skipped, failed
    let mut count = |result: &Result<_, _>| {
        let slot = match result {
            Ok(host_test::bindings::dialpad_ghl::sync::types::Report { outcome, .. }) => match report::outcome_name(outcome).0 {
                "synced" => 0,
                "unchanged" => 1,
                _ => 2,
            },
            Err(_) => 3,
        };
        tally[slot] += 1;
    };
    println!("Events (unsigned webhook):");
    for (name, body) in DEMO_EVENTS {
        let result = runtime.handle(body)?;
        count(&result);
        println!("  {}", report::human_line(name, &result));
    }

    // The same hangup again, now as Dialpad sends it with a webhook secret: a signed JWT.
    let mut signed_settings = settings.clone();
    signed_settings.set("webhook_secret", DEMO_WEBHOOK_SECRET);
    let signed = Runtime::new(&plugin, signed_settings.runtime_options(true)?, kv.clone())?;
    let mut wrong_secret_settings = settings.clone();
    wrong_secret_settings.set("webhook_secret", "not-the-secret");
    let wrong = Runtime::new(&plugin, wrong_secret_settings.runtime_options(true)?, kv)?;
    println!("\nEvents (signed webhook, HS256):");
    for (label, rt, body) in [
        ("call_inbound_hangup_completed.jwt", &signed, DEMO_SIGNED_EVENT),
        ("call_inbound_hangup_completed.jwt, wrong secret", &wrong, DEMO_SIGNED_EVENT),
        ("call_inbound_hangup_completed.json, unsigned while a secret is set", &signed, DEMO_EVENTS[2].1),
    ] {
        let result = rt.handle(body)?;
        count(&result);
        println!("  {}", report::human_line(label, &result));
    }

    println!("\nHighLevel now holds:");
    let contacts = mock.contacts();
    let notes = mock.notes();
    for c in &contacts {
        let id = c["id"].as_str().unwrap_or("?");
        let name = [c["firstName"].as_str(), c["lastName"].as_str()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let name = if name.is_empty() { "(no name)".to_string() } else { name };
        println!("  contact {id}  {}  {name}  source={}", c["phone"].as_str().unwrap_or("-"), c["source"].as_str().unwrap_or("-"));
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
    println!(
        "\nSummary: {} events: {} synced, {} unchanged, {} skipped, {} failed (as expected: 2 refused signatures); {} API requests; {} contacts, {} notes; token in host logs: {}",
        DEMO_EVENTS.len() + 3,
        tally[0],
        tally[1],
        tally[2],
        tally[3],
        requests.len(),
        contacts.len(),
        notes.len(),
        if leaked { "FOUND" } else { "never" }
    );
    if leaked {
        bail!("the token appeared in the host's request log");
    }
    Ok(())
}
