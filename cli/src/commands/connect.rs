//! `connect`: add a location with a private integration token, and connect its Dialpad
//! (register the webhook and subscriptions). Safe to run again: nothing is registered twice.

use crate::tenancy::{block_on, ConnectArgs, StoreArgs};
use anyhow::bail;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::tenants::lifecycle::{self, DialpadCredential, DialpadTarget};
use dialpad_ghl_host::tenants::DialpadAuth;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Add or update a tenant (a HighLevel location with a private integration token) and connect
/// its Dialpad: the webhook (signed with a secret made here) and the call, SMS and contact
/// subscriptions. Marketplace installs make their tenants themselves (the setup page).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    connect: ConnectArgs,
    /// The tenant's id: lowercase letters, digits and dashes (part of its webhook URL).
    #[arg(long)]
    tenant: String,
    /// HighLevel location id, for a new tenant or to change it.
    #[arg(long, value_name = "ID")]
    location_id: Option<String>,
    /// HighLevel private integration token of the location (prefer GHL_TOKEN: a flag is
    /// visible in `ps`).
    #[arg(long, env = "GHL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The tenant's own plugin settings (JSON object), over the host's.
    #[arg(long, value_name = "FILE")]
    tenant_config: Option<PathBuf>,
    /// Dialpad company API key (prefer DIALPAD_API_KEY): connects Dialpad.
    #[arg(long, env = "DIALPAD_API_KEY", hide_env_values = true)]
    dialpad_api_key: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let settings = args.connect.settings()?;
    match (&args.location_id, &args.token) {
        (Some(location), Some(token)) => {
            let config = match &args.tenant_config {
                Some(path) => match dialpad_ghl_host::settings::config_document(path)? {
                    Value::Object(map) => map,
                    _ => bail!("{} must hold an object", path.display()),
                },
                None => store.get(&args.tenant)?.map(|t| t.config).unwrap_or_else(Map::new),
            };
            let tenant = lifecycle::put_private(&store, &args.tenant, location, &Secret::new(token.clone()), config)?;
            println!("tenant {}: HighLevel location {} (private integration token, stored encrypted)", tenant.id, tenant.location_id);
        }
        (None, None) if store.get(&args.tenant)?.is_some() => {}
        (None, None) => bail!("no tenant {}: give --location-id and --token (or GHL_TOKEN) to add it", args.tenant),
        _ => bail!("give both --location-id and --token (or GHL_TOKEN) to add or change the HighLevel side"),
    }
    if let Some(key) = args.dialpad_api_key {
        let Some(public_url) = settings.connect.public_url.clone() else {
            bail!("give --public-url (or public_url in --config): where Dialpad reaches serve's webhook listener");
        };
        let call_states = settings.call_states();
        let target =
            DialpadTarget { api_base: &settings.dialpad_api_base(), public_url: &public_url, call_states: &call_states, timeout: Duration::from_secs(30) };
        let credential = DialpadCredential { auth: DialpadAuth::ApiKey, credential: Secret::new(key), refresh: None };
        let registration = block_on(lifecycle::connect_dialpad(&store, &args.tenant, credential, target))??;
        println!("Dialpad: webhook {} → {}", registration.webhook_id, registration.hook_url);
        for (kind, id) in [("call", &registration.call_subscription), ("SMS", &registration.sms_subscription), ("contact", &registration.contact_subscription)]
        {
            if let Some(id) = id {
                println!("  {kind} subscription {id}");
            }
        }
    }
    Ok(())
}
