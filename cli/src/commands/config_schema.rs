//! `config-schema`: the JSON Schema of the plugin's configuration, or of platform events.

use crate::options::PluginArg;

/// Print the plugin's configuration JSON Schema.
#[derive(clap::Args)]
pub struct Args {
    /// Print the schema of platform task and note events instead.
    #[arg(long)]
    platform_event: bool,
    #[command(flatten)]
    plugin: PluginArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let meta = args.plugin.offline_runtime()?.meta()?;
    let schema: serde_json::Value = serde_json::from_str(if args.platform_event { &meta.platform_event_schema } else { &meta.config_schema })?;
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(())
}
