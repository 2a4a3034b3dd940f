//! `bench`: the benchmarks, as a Markdown table.

mod replicas;

use crate::options::PluginArg;
use anyhow::Context as _;
use host_test::bench;
use std::path::PathBuf;
use std::time::Instant;

/// Measure the plugin against its goals (instantiation, overhead, the stock host, the view,
/// requests per workflow, a rate-limited burst, size, cold start); prints a Markdown table.
#[derive(clap::Args)]
pub struct Args {
    /// A short run (seconds), for checking the command itself.
    #[arg(long)]
    quick: bool,
    /// The burst's rate-limit window, standing for HighLevel's 10 s.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    burst_window: std::time::Duration,
    /// Also write the results, with the machine and the command, to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// A PostgreSQL server for the replicas part (postgres://user@host:port/db); it makes and
    /// drops its own databases there (dialpad_ghl_bench_replicas_*). Without one that part
    /// measures SQLite only.
    #[arg(long, value_name = "URL", env = "DIALPAD_GHL_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    #[command(flatten)]
    plugin: PluginArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Args { quick, burst_window, out, database_url, plugin } = args;
    let (wasm, _) = plugin.bytes()?;
    let started = Instant::now();
    let mut results = bench::run(&wasm, bench::BenchOptions { quick, burst_window })?;
    replicas::run(&mut results, &replicas::Options { quick, database_url: database_url.clone() })?;
    let table = bench::markdown(&results);
    println!("{table}");
    let machine = bench::machine();
    println!("machine: {machine}; {} s in all", started.elapsed().as_secs());
    if let Some(out) = out {
        let command = format!(
            "cargo run --release -- bench{}{}{}",
            if quick { " --quick" } else { "" },
            format_args!(" --burst-window {}", humantime::format_duration(burst_window)),
            database_url.map_or_else(String::new, |url| format!(" --database-url {}", dialpad_ghl_host::storage::db::Location::Postgres(url).describe()))
        );
        let document = format!(
            "# Benchmarks\n\nOne run of `{command} --out {}`, on {machine}, {} s in all. The figures are\nthis machine's; rerun the command to measure yours.\n\n{table}",
            out.display(),
            started.elapsed().as_secs()
        );
        std::fs::write(&out, document).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
