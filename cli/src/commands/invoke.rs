//! `invoke`: run one Contacts API operation through the plugin.

use crate::options::{ApiArgs, Target, TargetOptions};
use anyhow::bail;
use dialpad_ghl_host::report;

/// Run one Contacts API operation through the plugin; prints the API's JSON response.
#[derive(clap::Args)]
pub struct Args {
    /// The operation's id, as `catalog` lists it (e.g. get-contact).
    operation_id: String,
    /// JSON object: path and query parameters by name, the request body under `body`.
    #[arg(long, default_value = "{}")]
    input: String,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::build(TargetOptions { api: args.api, ..TargetOptions::default() })?;
    match target.runtime.invoke(&args.operation_id, &args.input)? {
        Ok(response) => {
            let json: serde_json::Value = serde_json::from_str(&response).unwrap_or(serde_json::Value::String(response));
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(())
        }
        Err(e) => {
            println!("{}", report::error_json(&e));
            bail!("{} failed: {}", args.operation_id, report::error_message(&e))
        }
    }
}
