//! `catalog`: every operation the plugin offers as an action (HighLevel's Contacts,
//! Conversations and Users APIs, Dialpad's API) and its workflow actions, each with whether the
//! configuration's grants make it available.

use crate::options::PluginArg;
use anyhow::bail;
use dialpad_ghl_host::bindings::dialpad_ghl::sync::types::OperationInfo;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::settings::Settings;
use std::path::PathBuf;

/// A longer summary is cut here, so that one long line does not widen the whole table.
const SUMMARY_WIDTH: usize = 60;

/// List every operation the plugin offers as an action, and its workflow actions, with what
/// each needs and whether the grants make it available (without `--scopes`, `--dialpad-scopes`
/// or a configuration that lists them, every grant is assumed).
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON (with each action's input schema and missing scopes) instead of a table.
    #[arg(long)]
    json: bool,
    /// List the triggers instead: every inbound event the plugin handles, with (in `--json`)
    /// the JSON Schemas of its payload and of its normalized event.
    #[arg(long, conflicts_with_all = ["api", "scopes", "dialpad_scopes"])]
    triggers: bool,
    /// Only this API's actions: highlevel-contacts, highlevel-conversations, highlevel-users or
    /// dialpad.
    #[arg(long, value_name = "NAME")]
    api: Option<String>,
    /// Configuration file, JSON or TOML (see `config-schema`): its `scopes` and
    /// `dialpad_scopes` say what is available.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HighLevel scopes granted, comma-separated (e.g. contacts.readonly,contacts.write);
    /// replaces the configuration's `scopes`.
    #[arg(long, value_name = "SCOPES", value_delimiter = ',')]
    scopes: Option<Vec<String>>,
    /// Dialpad OAuth scopes granted, comma-separated (e.g. calls:list,screen_pop); replaces
    /// the configuration's `dialpad_scopes`. An API key has them all.
    #[arg(long, value_name = "SCOPES", value_delimiter = ',')]
    dialpad_scopes: Option<Vec<String>>,
    #[command(flatten)]
    plugin: PluginArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.triggers {
        return triggers(&args);
    }
    let mut actions = runtime(&args)?.catalog()?;
    if let Some(api) = &args.api {
        let mut known: Vec<&str> = Vec::new();
        for a in &actions {
            if !known.contains(&a.api.as_str()) {
                known.push(&a.api);
            }
        }
        if !known.contains(&api.as_str()) {
            bail!("no API {api}: the catalog's are {}", known.join(", "));
        }
        actions.retain(|a| &a.api == api);
    }
    let workflow = workflow_actions(&actions);
    if args.json {
        let list: Vec<serde_json::Value> = actions
            .iter()
            .map(|o| {
                serde_json::json!({
                    "id": o.id, "api": o.api, "method": o.method, "path": o.path, "scope": o.scope, "summary": o.summary,
                    "deprecated": o.deprecated, "missing_scopes": o.missing_scopes,
                    "input_schema": serde_json::from_str::<serde_json::Value>(&o.input_schema).unwrap_or_default(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let rows: Vec<[String; 7]> = actions
        .iter()
        .map(|o| {
            let summary = if o.deprecated { format!("{} (deprecated)", o.summary) } else { o.summary.clone() };
            [o.api.clone(), o.id.clone(), o.method.clone(), o.path.clone(), o.scope.clone(), availability(o), truncated(&summary, SUMMARY_WIDTH)]
        })
        .collect();
    let header = ["API", "ACTION", "METHOD", "PATH", "SCOPE", "AVAILABILITY", "SUMMARY"].map(String::from);
    let mut widths = [0; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    println!();
    // The totals: each API's operations in the catalog's order, then the workflow actions.
    let available = |picked: &[&OperationInfo]| picked.iter().filter(|o| o.missing_scopes.is_empty()).count();
    let mut apis: Vec<&str> = Vec::new();
    for (o, _) in actions.iter().zip(&workflow).filter(|(_, w)| !**w) {
        if !apis.contains(&o.api.as_str()) {
            apis.push(&o.api);
        }
    }
    let name_width = apis.iter().map(|a| a.len()).chain(["workflow actions".len()]).max().unwrap_or(0);
    for api in apis {
        let operations: Vec<&OperationInfo> = actions.iter().zip(&workflow).filter(|(o, w)| !**w && o.api == api).map(|(o, _)| o).collect();
        println!("{api:<name_width$}  {:>3} operations ({} available)", operations.len(), available(&operations));
    }
    let workflows: Vec<&OperationInfo> = actions.iter().zip(&workflow).filter(|(_, w)| **w).map(|(o, _)| o).collect();
    if !workflows.is_empty() {
        println!("{:<name_width$}  {:>3} ({} available)", "workflow actions", workflows.len(), available(&workflows));
    }
    println!("{} actions, {} available", actions.len(), actions.iter().filter(|o| o.missing_scopes.is_empty()).count());
    Ok(())
}

/// `catalog --triggers`: the trigger catalog, as a table with totals per source, or as JSON.
fn triggers(args: &Args) -> anyhow::Result<()> {
    let triggers = runtime(args)?.trigger_catalog()?;
    if args.json {
        let list: Vec<serde_json::Value> = triggers
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id, "source": t.source, "inbound": t.inbound, "summary": t.summary,
                    "payload_schema": serde_json::from_str::<serde_json::Value>(&t.payload_schema).unwrap_or_default(),
                    "event_schema": serde_json::from_str::<serde_json::Value>(&t.event_schema).unwrap_or_default(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let id_width = triggers.iter().map(|t| t.id.len()).max().unwrap_or(0).max("TRIGGER".len());
    let inbound_width = triggers.iter().map(|t| t.inbound.len()).max().unwrap_or(0).max("ARRIVES AS".len());
    println!("{:<id_width$}  {:<inbound_width$}  SUMMARY", "TRIGGER", "ARRIVES AS");
    for t in &triggers {
        println!("{:<id_width$}  {:<inbound_width$}  {}", t.id, t.inbound, t.summary);
    }
    println!();
    let mut sources: Vec<&str> = Vec::new();
    for t in &triggers {
        if !sources.contains(&t.source.as_str()) {
            sources.push(&t.source);
        }
    }
    for source in sources {
        println!("{source:<9}  {:>2} triggers", triggers.iter().filter(|t| t.source == source).count());
    }
    println!("{} triggers", triggers.len());
    Ok(())
}

/// The embedded (or `--plugin`) component with the configuration whose grants judge the
/// catalog: the file's, with `--scopes` and `--dialpad-scopes` over it.
fn runtime(args: &Args) -> anyhow::Result<Runtime> {
    let mut settings = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    // The plugin reads no configuration without a location, and would then judge nothing.
    if !settings.plugin_config.contains_key("location_id") {
        settings.set("location_id", "-");
    }
    if let Some(scopes) = &args.scopes {
        settings.set("scopes", scopes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>());
    }
    if let Some(scopes) = &args.dialpad_scopes {
        settings.set("dialpad_scopes", scopes.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>());
    }
    let runtime = args.plugin.offline_runtime()?.with_options(settings.runtime_options(false)?, KeyValueStore::new());
    // An invalid configuration (an unknown scope among them) would list everything as available.
    let problems = runtime.config_problems()?;
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", if p.path.is_empty() { "/" } else { &p.path }, p.message)).collect();
        bail!("the configuration is invalid:\n  {}", list.join("\n  "));
    }
    Ok(runtime)
}

/// Which entries are workflow actions: those whose id is no operation of the tables
/// (`click-to-call`, built on Dialpad's `call.call`).
fn workflow_actions(actions: &[OperationInfo]) -> Vec<bool> {
    actions.iter().map(|o| contacts_api::any_operation(&o.id).is_none()).collect()
}

/// `available`, or the grants it lacks.
fn availability(o: &OperationInfo) -> String {
    if o.missing_scopes.is_empty() {
        "available".to_string()
    } else {
        format!("needs {}", o.missing_scopes.join(", "))
    }
}

fn truncated(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(width - 1).collect::<String>())
    }
}
