//! `check`: can each tenant work, and what to do where it cannot.

use crate::options::PluginArg;
use crate::tenancy::{block_on, ConnectArgs, StoreArgs};
use dialpad_ghl_host::serve::inbox::Inbox;
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use dialpad_ghl_host::tenants::check::{check, CheckContext};
use dialpad_ghl_host::tenants::registry::Tenants;
use std::time::Duration;

/// Check each tenant: HighLevel token valid, scopes granted, actions available, location
/// reachable, Dialpad's webhook and subscriptions registered, last event seen; and what to do
/// for each failure. Reads only. Exits with 1 when something needs fixing.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    connect: ConnectArgs,
    /// Check this tenant only.
    #[arg(long)]
    tenant: Option<String>,
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let settings = args.connect.settings()?;
    let db = args.store.database.location(&args.store.state);
    let inbox = Inbox::open(&db)?;
    let single = PluginArg::default().offline_runtime()?;
    let (tenants, _) = Tenants::over_store(single, &settings, DeadLetters::open(&db)?, store.clone(), "");
    let all: Vec<_> = tenants.all().into_iter().filter(|live| args.tenant.as_deref().is_none_or(|id| live.tenant.id == id)).collect();
    if all.is_empty() {
        anyhow::bail!(
            "{}",
            match &args.tenant {
                Some(id) => format!("no tenant {id}"),
                None => "no tenants yet: install the HighLevel app (setup page) or run `connect`".to_string(),
            }
        );
    }
    let (api_base, dialpad_api_base, call_states) = (settings.api_base(), settings.dialpad_api_base(), settings.call_states());
    let mut failing = false;
    let mut reports = Vec::new();
    for live in all {
        let context = CheckContext {
            store: &store,
            api_base: &api_base,
            dialpad_api_base: &dialpad_api_base,
            public_url: settings.connect.public_url.as_deref(),
            call_states: &call_states,
            timeout: Duration::from_secs(20),
            last_event: inbox.last_of_tenant(&live.tenant.id)?,
        };
        let report = block_on(check(&live, &context))?;
        failing |= !report.ok();
        reports.push(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for report in &reports {
            println!("{} (location {}): {}", report.tenant, report.location_id, if report.ok() { "ok" } else { "needs attention" });
            for item in &report.items {
                println!("  {} {}: {}", if item.ok { "✓" } else { "✗" }, item.name, item.detail);
                if !item.fix.is_empty() {
                    println!("      → {}", item.fix);
                }
            }
        }
    }
    if failing {
        std::process::exit(1);
    }
    Ok(())
}
