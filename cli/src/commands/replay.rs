//! `replay`: handle events from files, one JSON line each; exits 1 when any failed.

use crate::options::{ApiArgs, Target, TargetOptions, WebhookArgs};
use anyhow::{bail, Context as _};
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::report;
use dialpad_ghl_host::storage::dead_letters::{deliver, replay_dead_letters};
use std::io::Write as _;
use std::path::PathBuf;

/// Handle events from files (Dialpad webhook bodies, or platform task/note events); prints one
/// JSON line per event and exits 1 when any failed.
#[derive(clap::Args)]
pub struct Args {
    /// Files holding one raw webhook body each (JSON, or a signed JWT), or one platform
    /// task/note event each (a JSON object whose `type` is `task.*` or `note.*`).
    #[arg(required_unless_present = "dead_letters")]
    files: Vec<PathBuf>,
    /// Print each event's plan; send nothing, write nothing.
    #[arg(long, conflicts_with = "dead_letters")]
    dry_run: bool,
    /// Deliver the dead letters of `--state` again (instead of files); those that get through
    /// are removed.
    #[arg(long, requires = "state")]
    dead_letters: bool,
    /// Keep the plugin's records, the dead letters (`<dir>/state.db`, SQLite) and the newest
    /// OAuth refresh token here, so a later run knows what was synced and what failed.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    webhook: WebhookArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let bodies = args
        .files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())).map(|b| (f.display().to_string(), b)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keeps_state = args.state.is_some();
    let target = Target::build(TargetOptions { api: args.api, webhook: args.webhook, state: args.state.as_deref(), ..TargetOptions::default() })?;
    let runtime = &target.runtime;
    let mut stdout = std::io::stdout().lock();
    if args.dead_letters {
        let tally = replay_dead_letters(runtime, &target.dead_letters, |letter, handled| {
            let _ = writeln!(stdout, "{}", report::report_line(&letter.name, handled));
        })?;
        eprintln!("dead letters: {} delivered, {} still failing", tally.succeeded, tally.still_failing);
        if tally.still_failing > 0 {
            bail!("{} dead letters still failing", tally.still_failing);
        }
        return Ok(());
    }
    let mut failed = 0;
    for (name, body) in &bodies {
        // A file is a platform event when its JSON says so; anything else is a webhook body,
        // for the plugin to accept or refuse.
        let event = Inbound::new(Source::sniff(body), body.clone());
        let line = if args.dry_run {
            let result = runtime.plan(&event).with_context(|| format!("plugin trapped on {name}"))?;
            failed += usize::from(result.is_err());
            report::plan_line(name, &result)
        } else {
            let handled = deliver(runtime, &target.dead_letters, name, &event)?;
            failed += usize::from(handled.result.is_err());
            report::report_line(name, &handled.result)
        };
        writeln!(stdout, "{line}")?;
    }
    if failed > 0 {
        let kept = if args.dry_run || !keeps_state { String::new() } else { " (kept as dead letters: replay --dead-letters retries them)".to_string() };
        bail!("{failed} of {} events failed{kept}", bodies.len());
    }
    Ok(())
}
