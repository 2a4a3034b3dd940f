//! `tenants`: list the tenants, or remove one.

use crate::tenancy::{block_on, ConnectArgs, StoreArgs};
use dialpad_ghl_host::tenants::lifecycle;
use std::time::Duration;

/// List the tenants (no secret is shown), or remove one: its Dialpad webhook and
/// subscriptions, the tenant, and every credential it had.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    connect: ConnectArgs,
    /// Remove this tenant instead of listing.
    #[arg(long, value_name = "ID")]
    remove: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let store = args.store.open()?;
    if let Some(id) = &args.remove {
        let settings = args.connect.settings()?;
        if !block_on(lifecycle::remove(&store, id, &settings.dialpad_api_base(), Duration::from_secs(30)))?? {
            anyhow::bail!("no tenant {id}");
        }
        println!("removed {id} and its credentials (a running serve stops its work within a second)");
        return Ok(());
    }
    let tenants = store.list()?;
    if tenants.is_empty() {
        println!("no tenants yet");
    }
    for t in tenants {
        let dialpad = match &t.dialpad {
            Some(link) => link.registration.as_ref().map_or("connected".to_string(), |r| format!("webhook {} → {}", r.webhook_id, r.hook_url)),
            None => "not connected".into(),
        };
        println!("{}  location {}  {:?}  Dialpad: {dialpad}", t.id, t.location_id, t.highlevel);
    }
    Ok(())
}
