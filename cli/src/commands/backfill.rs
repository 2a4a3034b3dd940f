//! `backfill`: Dialpad's concluded calls of a period, each synced as its hangup webhook would be.

use crate::options::{ApiArgs, DialpadArgs, Target, TargetOptions};
use anyhow::bail;
use dialpad_ghl_host::backfill::{self, parse_instant_ms, Backfills, Mode};
use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::backfill::Window;
use dialpad_ghl_host::report;
use dialpad_ghl_host::storage::db::Location;
use dialpad_ghl_host::storage::lease::Leases;
use dialpad_ghl_host::tenants::registry::Tenants;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// Bring Dialpad's concluded calls of a period over (GET /api/v2/call), each synced as its
/// hangup webhook would be: a call already synced changes nothing. The paging cursor and the
/// counts are kept in --state after every page: an interrupted backfill resumes there.
#[derive(clap::Args)]
pub struct Args {
    /// First day (2026-03-01) or instant (RFC 3339) of the calls' start, exclusive.
    #[arg(long)]
    since: String,
    /// Last day or instant, exclusive (default: now).
    #[arg(long)]
    until: Option<String>,
    /// Print each call's plan; send nothing to HighLevel, keep no progress.
    #[arg(long)]
    dry_run: bool,
    /// Where the progress, the plugin's records and the dead letters are kept
    /// (`<dir>/state.db`); needed unless --dry-run.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// The shared database of `serve --database` (needs --state as well).
    #[command(flatten)]
    database: crate::options::DatabaseArgs,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    dialpad: DialpadArgs,
    /// Backfill this tenant (its location, its Dialpad connection, its records) instead of the
    /// location given by the flags; needs --state and the secret key.
    #[arg(long, value_name = "ID", requires = "state")]
    tenant: Option<String>,
    /// File holding the secret key that seals the tenants' credentials (or DIALPAD_GHL_SECRET_KEY).
    #[arg(long, value_name = "FILE", requires = "tenant")]
    secret_key_file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (since, until, dry_run) = (args.since.as_str(), args.until.as_deref(), args.dry_run);
    let started_after = parse_instant_ms(since)?;
    let started_before = match until {
        Some(until) => parse_instant_ms(until)?,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64,
    };
    if started_before <= started_after {
        bail!("--until must come after --since");
    }
    // A dry run keeps nothing: no state folder unless one is named.
    let state = args.state;
    let allow_no_location = args.tenant.is_some();
    if args.database.database.is_some() && state.is_none() {
        bail!("--database needs --state too (the machine's folder for the compiled plugin)");
    }
    let db = state.as_deref().map(|dir| args.database.location(dir));
    let target = Target::build(TargetOptions {
        api: args.api,
        dialpad: args.dialpad,
        state: state.as_deref(),
        database: args.database.database.as_ref().map(PathBuf::from),
        allow_no_location,
        ..TargetOptions::default()
    })?;
    // A tenant's runtime: its location, its credentials, its Dialpad connection, its records.
    let (runtime, has_dialpad_key) = match (&args.tenant, &state) {
        (Some(id), Some(dir)) => {
            let vault = dialpad_ghl_host::storage::vault::Vault::from_environment(args.secret_key_file.as_deref(), &[])?;
            let store = crate::tenancy::open_store(dir, db.as_deref().unwrap_or(dir), Some(std::sync::Arc::new(vault)))?;
            let (tenants, _) = Tenants::over_store(target.runtime.clone_shared(), &target.settings, target.dead_letters.clone(), store, "");
            let Some(live) = tenants.get(id).filter(|_| !id.is_empty()) else { bail!("no tenant {id}") };
            (live.runtime.clone_shared(), live.settings.dialpad_key.is_some())
        }
        _ => (target.runtime.clone_shared(), target.has_dialpad_key),
    };
    let runtime = &runtime;
    if !has_dialpad_key {
        bail!("backfill lists calls through Dialpad's API: give --dialpad-api-key (or DIALPAD_API_KEY, or dialpad_api_key in --config), or connect the tenant's Dialpad");
    }
    let backfills = match (&db, dry_run) {
        (Some(db), _) => Some(match &args.tenant {
            Some(id) => Backfills::for_tenant(db, id)?,
            None => Backfills::open(db)?,
        }),
        (None, true) => None,
        (None, false) => bail!("backfill keeps its progress in a state folder: give --state DIR (or --dry-run)"),
    };
    // On a shared database one backfill of a location runs at a time, whichever machine starts it.
    let _lease = match db.as_deref().map(Location::of).filter(|l| l.is_shared()) {
        Some(location) if !dry_run => Some(BackfillLease::take(&location, args.tenant.as_deref().unwrap_or("-"))?),
        _ => None,
    };
    let window = Window { started_after, started_before: Some(started_before) };
    let span = (started_before - started_after) / 1000;
    let bar = indicatif::ProgressBar::new(span.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {percent}% of the period, eta {eta} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let mode = if dry_run { Mode::DryRun } else { Mode::Sync };
    let result = backfill::run(runtime, backfills.as_ref(), window, mode, |progress, lines| {
        for line in lines {
            let _ = writeln!(stdout, "{line}");
        }
        // Newest first: the period is covered from its end back to its start.
        let covered = progress.oldest_started.map_or(0, |oldest| started_before.saturating_sub(oldest) / 1000);
        bar.set_position(if progress.done { span } else { covered.min(span) });
        bar.set_message(format!(
            "fetched {}, synced {}, unchanged {}, skipped {}, failed {}",
            progress.fetched, progress.synced, progress.unchanged, progress.skipped, progress.failed
        ));
    })?;
    bar.finish_and_clear();
    let (progress, error) = match result {
        Ok(progress) => (progress, None),
        Err((progress, error)) => (progress, Some(error)),
    };
    eprintln!(
        "backfill{}: {} pages, {} calls fetched: {} synced, {} unchanged, {} skipped, {} failed, in {:.1} s",
        if dry_run { " (dry run)" } else { "" },
        progress.pages,
        progress.fetched,
        progress.synced,
        progress.unchanged,
        progress.skipped,
        progress.failed,
        started.elapsed().as_secs_f64()
    );
    if let Some(error) = error {
        if backfill::stuck_listing(&error) {
            bail!(
                "stopped: {}. The progress is kept, but running the same command again would repeat that cursor: \
                 Dialpad's listing is at fault (try a shorter period with --since/--until)",
                report::error_message(&error)
            );
        }
        bail!("stopped: {} (run the same command again to resume from page {})", report::error_message(&error), progress.pages + 1);
    }
    if progress.failed > 0 {
        eprintln!("{} calls failed (their lines above say why): run the same command again to retry them; the others change nothing", progress.failed);
    }
    Ok(())
}

/// The lease of a backfill on a shared database, renewed while it runs and given back when
/// dropped.
struct BackfillLease {
    leases: std::sync::Arc<Leases>,
    name: String,
    holder: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BackfillLease {
    const TTL: std::time::Duration = std::time::Duration::from_secs(60);

    fn take(location: &Location, tenant: &str) -> anyhow::Result<BackfillLease> {
        let leases = std::sync::Arc::new(Leases::open(location)?);
        let (name, holder) = (format!("backfill:{tenant}"), dialpad_ghl_host::storage::lease::replica_name());
        if !leases.try_hold(&name, &holder, Self::TTL)? {
            let other = leases.holder(&name)?.unwrap_or_default();
            bail!("another backfill of this location is running ({other}); it holds the lease for up to {} s after it stops", Self::TTL.as_secs());
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (renewing, renewer, stopped) = (leases.clone(), holder.clone(), stop.clone());
        std::thread::spawn(move || {
            // Renewed every 20 s (a third of its time), looking for the stop twice a second.
            for tick in 1u64.. {
                std::thread::sleep(std::time::Duration::from_millis(500));
                if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                if tick % 40 == 0 {
                    let _ = renewing.renew_all(&renewer, Self::TTL);
                }
            }
        });
        Ok(BackfillLease { leases, name, holder, stop })
    }
}

impl Drop for BackfillLease {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.leases.release(&self.name, &self.holder);
    }
}
