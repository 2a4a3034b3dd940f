//! `bench`'s replicas part: deliveries accepted per second and the time to handle them all,
//! through `serve` processes (this binary, re-executed) on one SQLite file, on one PostgreSQL
//! database, and as three replicas on one PostgreSQL database. HighLevel is the mock, in this
//! process, without a rate limit, and the replicas' own limiter is off: the store is what is
//! measured (the inbox's commits before each 200, the claims of lanes, the plugin's records).

use anyhow::{bail, Context as _};
use dialpad_ghl_host::storage::db::{Db, Location};
use host_test::bench::{Results, Row};
use host_test::ghl_mock::{MockOptions, MockServer};
use host_test::support::{loopback_request, scratch_dir};
use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";
const LOCATION: &str = "loc-bench";
const SENDERS: usize = 8;
const WORKERS: &str = "4";

pub struct Options {
    pub quick: bool,
    /// A PostgreSQL server (`postgres://…/<any database>`): the part makes its own databases
    /// there (`dialpad_ghl_bench_replicas_<n>`, dropped and made again each run).
    pub database_url: Option<String>,
}

/// One configuration measured.
struct Setup {
    name: &'static str,
    replicas: usize,
    postgres: bool,
}

const SETUPS: [Setup; 3] = [
    Setup { name: "1 on SQLite", replicas: 1, postgres: false },
    Setup { name: "1 on PostgreSQL", replicas: 1, postgres: true },
    Setup { name: "3 on PostgreSQL", replicas: 3, postgres: true },
];

struct Figures {
    /// Deliveries over the time from the first post to the last 200.
    accepted_per_second: f64,
    /// From the first post to an empty inbox.
    drain: Duration,
    requests: usize,
}

/// Measures each configuration (the PostgreSQL ones only with a server) and adds two rows to
/// `results`, and a note on the load.
pub fn run(results: &mut Results, options: &Options) -> anyhow::Result<()> {
    let deliveries = if options.quick { 200 } else { 2_000 };
    let callers = deliveries / 4;
    let template: Value = serde_json::from_str(host_test::demo::HANGUP)?;
    // A quarter new callers (3 requests each: search, contact, note), the rest their later calls
    // (1 request: a note).
    let bodies: Vec<Vec<u8>> = (0..deliveries)
        .map(|i| {
            let (caller, call) = (i % callers, i / callers);
            let number = format!("+1628555{:04}", caller % 10_000);
            let mut event = template.clone();
            event["call_id"] = json!(8_400_000_000_000_000u64 + (caller * 100 + call) as u64);
            event["external_number"] = json!(number);
            event["contact"]["phone"] = json!(number);
            event["contact"]["id"] = json!(6_400_000_000_000_000u64 + caller as u64);
            event.to_string().into_bytes()
        })
        .collect();
    let mut figures = Vec::new();
    let mut skipped = None;
    for setup in &SETUPS {
        let database = match (setup.postgres, &options.database_url) {
            (false, _) => None,
            (true, None) => {
                skipped = Some("no PostgreSQL given (`--database-url` or DIALPAD_GHL_BENCH_DATABASE_URL)".to_string());
                figures.push((setup, None));
                continue;
            }
            (true, Some(server)) => match fresh_database(server, &format!("dialpad_ghl_bench_replicas_{}", setup.replicas)) {
                Ok(url) => Some(url),
                Err(e) => {
                    skipped = Some(format!("PostgreSQL at {} could not be used: {e:#}", Location::Postgres(server.clone()).describe()));
                    figures.push((setup, None));
                    continue;
                }
            },
        };
        let measured = measure(setup, database.as_deref(), &bodies, callers).with_context(|| format!("replicas: {}", setup.name))?;
        figures.push((setup, Some(measured)));
    }
    if let Some(reason) = &skipped {
        println!("replicas on PostgreSQL skipped: {reason}");
    }
    let each =
        |f: &dyn Fn(&Figures) -> String| figures.iter().map(|(_, m)| m.as_ref().map_or_else(|| "skipped".to_string(), f)).collect::<Vec<_>>().join(" / ");
    let names = SETUPS.iter().map(|s| s.name).collect::<Vec<_>>().join(" / ");
    results.rows.push(Row {
        measure: format!("`serve` replicas: deliveries accepted per second ({deliveries} posted by {SENDERS} senders, no API limit), {names}"),
        figure: each(&|m| format!("{:.0} /s", m.accepted_per_second)),
        goal: "—".into(),
        verdict: "—".into(),
    });
    results.rows.push(Row {
        measure: format!("`serve` replicas: the same {deliveries} handled (first post to an empty inbox), {names}"),
        figure: each(&|m| format!("{:.1} s ({:.0} /s)", m.drain.as_secs_f64(), deliveries as f64 / m.drain.as_secs_f64())),
        goal: "—".into(),
        verdict: "—".into(),
    });
    let requests = figures.iter().find_map(|(_, m)| m.as_ref().map(|m| m.requests)).unwrap_or_default();
    results.notes.push(format!(
        "`serve` replicas: separate `serve` processes ({WORKERS} workers each, each with its own `--state`), the replicas on one database \
         (`--database`), {SENDERS} senders posting round-robin over them as fast as they are answered; {deliveries} hangups from {callers} \
         callers, a quarter new ({requests} API requests to the mock on loopback, no latency, no rate limit, the replicas' limiter off). \
         Each configuration on a fresh database.{}",
        skipped.map_or_else(String::new, |reason| format!(" PostgreSQL skipped: {reason}."))
    ));
    Ok(())
}

/// `server` with its database replaced by a fresh, empty `name`.
fn fresh_database(server: &str, name: &str) -> anyhow::Result<String> {
    let admin = Db::open(&Location::Postgres(server.to_string()), "")?;
    // One statement each, outside any transaction (PostgreSQL makes databases only there).
    for statement in [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")] {
        admin.execute(&statement, Vec::new())?;
    }
    let mut url = url::Url::parse(server)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

fn measure(setup: &Setup, database: Option<&str>, bodies: &[Vec<u8>], callers: usize) -> anyhow::Result<Figures> {
    let api = MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() })?;
    let dir = scratch_dir(&format!("bench-replicas-{}", setup.name.replace(' ', "-").to_lowercase()));
    let replicas =
        (1..=setup.replicas).map(|r| Replica::start(&dir.join(format!("replica{r}")), &api.base_url(), database)).collect::<anyhow::Result<Vec<_>>>()?;
    let urls: Vec<String> = replicas.iter().map(|r| format!("{}/webhooks/dialpad", r.webhooks)).collect();
    let started = Instant::now();
    let accepted = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let urls = &urls;
                scope.spawn(move || -> anyhow::Result<()> {
                    for (n, body) in bodies.iter().skip(s).step_by(SENDERS).enumerate() {
                        let url = &urls[(s + n) % urls.len()];
                        let (status, answer) = loopback_request("POST", url, body)?;
                        if status != 200 {
                            bail!("{url} answered {status}: {answer}");
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        senders.into_iter().try_for_each(|s| s.join().expect("a sender panicked"))
    });
    accepted?;
    let accepting = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while replicas.iter().map(Replica::queue_depth).sum::<anyhow::Result<u64>>()? > 0 {
        if Instant::now() > deadline {
            bail!("the inbox did not drain in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let drain = started.elapsed();
    let held = api.holdings();
    let notes: usize = held.values().map(|(_, notes, _)| notes.len()).sum();
    if held.len() != callers || held.values().any(|(contacts, _, _)| *contacts != 1) || notes != bodies.len() {
        bail!("HighLevel holds {} contacts and {notes} notes, not {callers} and {}: logs in {}", held.len(), bodies.len(), dir.display());
    }
    Ok(Figures { accepted_per_second: bodies.len() as f64 / accepting.as_secs_f64(), drain, requests: api.requests().len() })
}

/// A `serve` process; dropping it kills it.
struct Replica {
    child: Child,
    webhooks: String,
    admin: String,
}

impl Replica {
    fn start(state: &Path, api_base: &str, database: Option<&str>) -> anyhow::Result<Replica> {
        let config = state.with_extension("config.json");
        std::fs::write(&config, json!({"location_id": LOCATION, "token": TOKEN, "rate_limit": false}).to_string())?;
        let log = state.with_extension("log");
        let mut command = Command::new(std::env::current_exe()?);
        for variable in ["GHL_TOKEN", "DIALPAD_WEBHOOK_SECRET", "DIALPAD_GHL_DATABASE", "DIALPAD_GHL_SECRET_KEY"] {
            command.env_remove(variable);
        }
        command.args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--workers", WORKERS]);
        command.args(["--api-base", api_base]).arg("--config").arg(&config).arg("--state").arg(state);
        if let Some(url) = database {
            command.args(["--database", url]);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(std::fs::File::create(&log)?).spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let (mut webhooks, mut admin) = (None, None);
        let address = |line: &str| line.split_whitespace().nth(1).unwrap_or_default().trim_end_matches('/').to_string();
        loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                bail!("serve stopped before it was ready: {}", std::fs::read_to_string(&log).unwrap_or_default().trim());
            };
            if line.starts_with("webhooks: ") {
                webhooks = Some(address(&line).trim_end_matches("/webhooks/dialpad").to_string());
            } else if line.starts_with("monitor: ") {
                admin = Some(address(&line));
            } else if line.starts_with("state: ") {
                break;
            }
        }
        // The rest of its output to the log: a closed pipe would fail its prints.
        std::thread::spawn(move || {
            if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(log) {
                for line in lines.map_while(Result::ok) {
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        match (webhooks, admin) {
            (Some(webhooks), Some(admin)) => Ok(Replica { child, webhooks, admin }),
            _ => bail!("serve did not print its addresses"),
        }
    }

    fn queue_depth(&self) -> anyhow::Result<u64> {
        let (_, text) = loopback_request("GET", &format!("{}/healthz", self.admin), b"")?;
        let health: Value = serde_json::from_str(&text)?;
        health["queue_depth"].as_u64().with_context(|| format!("/healthz: {health}"))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
