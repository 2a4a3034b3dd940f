//! `catalog`: every Contacts API operation the plugin offers as an action.

use crate::options::PluginArg;

/// List every Contacts API operation the plugin offers as an action.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON (with each operation's input schema) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    plugin: PluginArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let operations = args.plugin.offline_runtime()?.catalog()?;
    if args.json {
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
    // HighLevel's Contacts operations, then the workflow actions (their scope is Dialpad's).
    let workflows = operations.iter().filter(|o| o.scope == "dialpad").count();
    println!("{} operations, {workflows} workflow action{}", operations.len() - workflows, if workflows == 1 { "" } else { "s" });
    Ok(())
}
