//! `validate-config`: every problem of a configuration file, as the host and the plugin read it.

use crate::options::PluginArg;
use anyhow::bail;
use dialpad_ghl_host::settings::Settings;
use std::path::PathBuf;

/// Check a configuration file (JSON, or TOML by its .toml extension): prints every problem with
/// its path and exits 1, or says it is valid. The host's own keys are checked as `serve` reads
/// them; the rest is checked by the plugin.
#[derive(clap::Args)]
pub struct Args {
    /// The configuration file.
    file: PathBuf,
    #[command(flatten)]
    plugin: PluginArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // The same reader `serve` uses takes the host's keys out; what is left is the plugin's.
    let settings = Settings::from_file(&args.file)?;
    let document = serde_json::Value::Object(settings.plugin_config.clone());
    let problems = args.plugin.offline_runtime()?.validate_config(&document.to_string())?;
    if problems.is_empty() {
        println!("{}: valid", args.file.display());
        return Ok(());
    }
    for p in &problems {
        println!("{}: {}: {}", args.file.display(), if p.path.is_empty() { "/" } else { &p.path }, p.message);
    }
    bail!("{} problem(s) in {}", problems.len(), args.file.display())
}
