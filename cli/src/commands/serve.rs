//! `serve`: the webhook receiver, its inbox and workers, and the monitoring page.

mod access;
mod limits;

use crate::options::{ApiArgs, DatabaseArgs, DialpadArgs, Target, TargetOptions, WebhookArgs};
use crate::tenancy::open_store;
use anyhow::bail;
use dialpad_ghl_host::serve::setup::Setup;
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::storage::vault::{Vault, VaultError};
use dialpad_ghl_host::tenants::registry::Tenants;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Receive Dialpad webhooks (POST /webhooks/dialpad) and platform events (POST
/// /events/platform): each is committed to the SQLite inbox in `--state` before the 200, then
/// handled by workers. The admin address serves the monitoring page, /healthz and /metrics.
#[derive(clap::Args)]
pub struct Args {
    /// Where Dialpad delivers (loopback unless you put a public address here).
    #[arg(long, default_value = "127.0.0.1:8790")]
    listen: SocketAddr,
    /// The monitoring page, /metrics and /healthz; it can replay events: keep it private.
    #[arg(long, default_value = "127.0.0.1:8791")]
    admin_listen: SocketAddr,
    /// Deliveries handled at once (one at a time per lane).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Handlings of a delivery that keeps failing transiently before it is dead-lettered.
    #[arg(long, default_value_t = 5)]
    max_attempts: u32,
    /// First retry delay (doubled per attempt), e.g. 2s or 500ms.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    retry_base: std::time::Duration,
    /// Where the inbox, the plugin's records, the dead letters and the newest OAuth refresh
    /// token are kept (`<dir>/state.db`, SQLite).
    #[arg(long, value_name = "DIR", required = true)]
    state: PathBuf,
    #[command(flatten)]
    database: DatabaseArgs,
    /// With --database: how long a replica's claim on a lane, or on a reconciliation or
    /// retention pass, lasts without its heartbeat. A replica that dies holds its lanes this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    lease_ttl: std::time::Duration,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    webhook: WebhookArgs,
    #[command(flatten)]
    dialpad: DialpadArgs,
    #[command(flatten)]
    access: access::AccessArgs,
    #[command(flatten)]
    limits: limits::LimitArgs,
    /// File holding the secret key that seals tenants' credentials at rest (or
    /// DIALPAD_GHL_SECRET_KEY). With a key, serve hosts tenants (/webhooks/dialpad/<tenant>) and
    /// the setup page; without one, only the location given here.
    #[arg(long, value_name = "FILE")]
    secret_key_file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let state = args.state;
    let access = args.access.options()?;
    // Tenants need a key to seal their credentials; a missing one is said once, plainly.
    let vault = match Vault::from_environment(args.secret_key_file.as_deref(), &[]) {
        Ok(vault) => Some(Arc::new(vault)),
        Err(VaultError::NoKey) if args.secret_key_file.is_none() => None,
        Err(e) => return Err(e.into()),
    };
    let target = Target::build(TargetOptions {
        api: args.api,
        webhook: args.webhook,
        dialpad: args.dialpad,
        state: Some(&state),
        database: args.database.database.as_ref().map(PathBuf::from),
        allow_no_location: vault.is_some(),
    })?;
    if args.database.database.is_some() && target.settings.oauth.is_some() {
        bail!(
            "the host's own OAuth refresh token rotates at each refresh and is kept in --state, one machine's folder: with --database (several replicas), connect the location as a tenant (`connect`), whose tokens live in the database, or give a private integration token"
        );
    }
    if target.reconcile.is_some() && !target.has_dialpad_key && target.has_location {
        bail!("reconcile lists calls through Dialpad's API: give --dialpad-api-key (or DIALPAD_API_KEY, or dialpad_api_key in --config)");
    }
    let options = ServeOptions {
        listen: args.listen,
        admin_listen: args.admin_listen,
        workers: args.workers,
        max_attempts: args.max_attempts,
        retry_base: args.retry_base,
        reconcile: target.reconcile,
        access,
        limits: args.limits.into_limits(),
        card: target.settings.card.clone(),
        alerts: target.settings.alerts.clone(),
        lease_ttl: args.lease_ttl,
    };
    let _mock = target.mock;
    let db = args.database.location(&state);
    let server = match vault {
        // No tenants: HighLevel's contact webhooks for this location are still taken when the
        // app's webhook key is configured to verify them; without it `/webhooks/highlevel`
        // refuses every delivery.
        None if target.settings.connect.marketplace.as_ref().is_some_and(|m| m.webhook_public_key.is_some()) => {
            let setup = Setup::from_settings(&target.settings, None, &db, &format!("http://{}", options.admin_listen))?;
            let tenants = Tenants::new(target.runtime, target.settings.clone(), target.dead_letters, None, Box::new(|_, _| bail!("no tenants here")));
            Server::start_tenants(tenants, &db, options, Some(setup))?
        }
        None => Server::start(target.runtime, &db, target.dead_letters, options)?,
        Some(vault) => {
            let settings = &target.settings;
            let store = open_store(&state, &db, Some(vault))?;
            let default_redirect = format!("http://{}/oauth/highlevel/callback", options.admin_listen);
            if options.admin_listen.port() == 0 && target.settings.connect.marketplace.as_ref().is_some_and(|m| m.redirect_uri.is_none()) {
                bail!("marketplace.redirect_uri is not set and --admin-listen has no fixed port: HighLevel could not send the install back here");
            }
            let (tenants, marketplace) = Tenants::over_store(target.runtime, settings, target.dead_letters, store, &default_redirect);
            let tenants = if target.has_location { tenants } else { tenants.without_single() };
            let setup = Setup::from_settings(settings, marketplace, &db, &format!("http://{}", options.admin_listen))?;
            let server = Server::start_tenants(tenants, &db, options, Some(setup))?;
            println!("tenants: webhooks at {}/webhooks/dialpad/<tenant>; setup page {}/setup", server.webhook_url(), server.admin_url());
            server
        }
    };
    if target.has_location {
        println!("webhooks: {}/webhooks/dialpad (platform events: {}/events/platform)", server.webhook_url(), server.webhook_url());
    }
    if target.settings.connect.marketplace.as_ref().is_some_and(|m| m.webhook_public_key.is_some()) {
        println!("HighLevel webhooks: {}/webhooks/highlevel", server.webhook_url());
    }
    println!("monitor: {}/ (metrics: {}/metrics)", server.admin_url(), server.admin_url());
    let shown = match &args.database.database {
        Some(_) => dialpad_ghl_host::storage::db::Location::of(&db).describe(),
        None => state.display().to_string(),
    };
    println!("state: {shown} ({} queued from before)", server.inbox().queued()?);
    std::io::stdout().flush()?;
    server.run_until_signal()
}
