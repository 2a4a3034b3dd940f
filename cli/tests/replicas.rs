//! Several `serve` replicas on one PostgreSQL database, as they run in production: separate
//! processes (this binary), each with its own `--state` folder (its compiled-plugin cache), one
//! shared inbox, lanes claimed with leases, and HighLevel's rate limit shared through the database.
//! One replica is SIGKILLed mid-load and started again; later another is stopped with SIGTERM and
//! started again (a rolling deploy). HighLevel is the mock, in this process, enforcing its burst
//! limit (100 requests per 10 s, 429 over it).
//!
//! The load: 102 callers (new to HighLevel), 4 calls each, each call `ringing`, `connected` and
//! `hangup`: 1,224 distinct deliveries, and 798 redeliveries of bodies already sent (the one
//! before, or the fifth before, as Dialpad retries), 2,022 deliveries in all. Ringing,
//! connected and redeliveries make no API request; a caller's first hangup makes 3
//! (search, create contact, create note), the later ones 1 (create note): 612 requests, at
//! least 51 s of HighLevel's limit. Six senders post round-robin over the live replicas,
//! paced over 45 s so that the limit, not the posting, sets the pace and a queue builds up;
//! each caller's deliveries go through one sender, in order, as Dialpad sends a call's events.
//! A sender re-posts anything that did not get a 2xx to the next replica.
//!
//! It asserts nothing lost (every call's note in HighLevel), nothing written twice (HighLevel
//! holds exactly what a single library run of the same bodies holds: contacts, notes, tasks),
//! no 429 from the mock, no dead letter, and a graceful stop that exits 0. About 75 s.

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::engine::Runtime;
use e2e_tests::serve::{json_fixture as fixture, LOCATION, TOKEN};
use e2e_tests::Events as _;
use host_test::ghl_mock::{Holdings, MockOptions, MockServer, RateLimit};
use host_test::support::loopback_request;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dialpad-ghl");
const CALLERS: usize = 102;
const CALLS: usize = 4;
const SENDERS: usize = 6;
/// How long the senders take to post everything.
const POSTING: Duration = Duration::from_secs(45);
const LEASE_TTL: &str = "3s";

/// The deliveries of call `call` of caller `caller`: ringing, connected, hangup.
fn call_events(templates: &[Value; 3], caller: usize, call: usize) -> Vec<Vec<u8>> {
    let number = format!("+1312556{:04}", caller);
    templates
        .iter()
        .map(|template| {
            let mut event = template.clone();
            event["call_id"] = json!(7_300_000_000_000_000u64 + (caller * 100 + call) as u64);
            event["external_number"] = json!(number);
            event["contact"]["phone"] = json!(number);
            event["contact"]["id"] = json!(5_300_000_000_000_000u64 + caller as u64);
            event["contact"]["name"] = json!(format!("Caller {caller}"));
            // Each call an hour after the one before.
            for field in ["date_started", "date_first_rang", "date_connected", "date_ended", "event_timestamp"] {
                if let Some(ms) = event[field].as_u64() {
                    event[field] = json!(ms + call as u64 * 3_600_000);
                }
            }
            event.to_string().into_bytes()
        })
        .collect()
}

/// Per sender, its bodies in posting order: its callers' calls (caller `c` is sender
/// `c % SENDERS`'s), call by call and stage by stage, with redeliveries of the body before
/// (after every third) and of the fifth before (after the next).
fn schedule() -> Vec<Vec<Vec<u8>>> {
    let templates = ["call_inbound_ringing_unknown_number.json", "call_inbound_connected.json", "call_inbound_hangup_completed.json"].map(fixture);
    let events: Vec<Vec<Vec<Vec<u8>>>> = (0..CALLERS).map(|caller| (0..CALLS).map(|call| call_events(&templates, caller, call)).collect()).collect();
    let mut distinct = vec![Vec::new(); SENDERS];
    for call in 0..CALLS {
        for stage in 0..3 {
            for (caller, calls) in events.iter().enumerate() {
                distinct[caller % SENDERS].push(calls[call][stage].clone());
            }
        }
    }
    distinct
        .into_iter()
        .map(|bodies| {
            let mut posts = Vec::new();
            for (i, body) in bodies.iter().enumerate() {
                posts.push(body.clone());
                match i % 3 {
                    0 if i >= 1 => posts.push(bodies[i - 1].clone()),
                    1 if i >= 5 => posts.push(bodies[i - 5].clone()),
                    _ => {}
                }
            }
            posts
        })
        .collect()
}

/// What HighLevel holds after the same bodies are handled one by one, in order, by the library
/// (one process, no crash): the holdings, the requests and the POSTs it took.
fn reference(bodies: &[Vec<u8>]) -> (Holdings, usize, usize) {
    let mock = MockServer::start(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }).unwrap();
    let settings = e2e_tests::quick_settings(&mock.base_url(), LOCATION, TOKEN);
    let runtime = Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::new()).unwrap();
    for body in bodies {
        runtime.handle_webhook(body).unwrap().unwrap();
    }
    let requests = mock.requests();
    (mock.holdings(), requests.len(), requests.iter().filter(|r| r.method == "POST").count())
}

/// One `serve` process. Dropping it kills it.
struct Replica {
    child: Child,
    webhooks: String,
    admin: String,
    log: PathBuf,
}

impl Replica {
    /// Starts replica `name` with its state in `state` (kept across its restarts), logging to
    /// `<state>.<n>.log`, `n` counting its starts.
    fn start(state: &Path, start: usize, api_base: &str, database: Option<&str>) -> Replica {
        let config = state.with_extension("config.json");
        // The client-side limiter stays on (the default: HighLevel's 100 per 10 s); with a
        // database it is shared by the replicas.
        std::fs::write(&config, json!({"location_id": LOCATION, "token": TOKEN}).to_string()).unwrap();
        let log = state.with_extension(format!("{start}.log"));
        let mut command = Command::new(BIN);
        for variable in ["GHL_TOKEN", "DIALPAD_WEBHOOK_SECRET", "DIALPAD_GHL_DATABASE", "DIALPAD_GHL_SECRET_KEY"] {
            command.env_remove(variable);
        }
        command.env("NO_COLOR", "1");
        command.args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--workers", "4", "--retry-base", "200ms"]);
        command.args(["--api-base", api_base, "--config", config.to_str().unwrap(), "--state", state.to_str().unwrap()]);
        if let Some(url) = database {
            command.args(["--database", url, "--lease-ttl", LEASE_TTL]);
        }
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = command.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut webhooks, mut admin) = (None, None);
        let url = |line: &str| line.split_whitespace().nth(1).unwrap().trim_end_matches('/').to_string();
        loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                panic!("serve stopped before its addresses: {}", std::fs::read_to_string(&log).unwrap_or_default());
            };
            if line.starts_with("webhooks: ") {
                webhooks = Some(url(&line).trim_end_matches("/webhooks/dialpad").to_string());
            } else if line.starts_with("monitor: ") {
                admin = Some(url(&line));
            } else if line.starts_with("state: ") {
                break;
            }
        }
        // The rest of its standard output goes to the log (a closed pipe would fail its prints).
        let to = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().append(true).open(to).unwrap();
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        });
        Replica { child, webhooks: webhooks.expect("webhooks: line"), admin: admin.expect("monitor: line"), log }
    }

    fn webhook_url(&self) -> String {
        format!("{}/webhooks/dialpad", self.webhooks)
    }

    fn health(&self) -> Value {
        let (status, text) = loopback_request("GET", &format!("{}/healthz", self.admin), b"").unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Its `dialpad_ghl_events_total` by outcome.
    fn outcomes(&self) -> BTreeMap<String, u64> {
        let (_, text) = loopback_request("GET", &format!("{}/metrics", self.admin), b"").unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("dialpad_ghl_events_total{outcome=\""))
            .filter_map(|rest| rest.split_once("\"} ").map(|(outcome, n)| (outcome.to_string(), n.trim().parse().unwrap_or(0))))
            .collect()
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and its exit: (status, time it took).
    fn terminate(mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(started.elapsed() < Duration::from_secs(60), "SIGTERM: serve did not stop in 60 s; log {}", self.log.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the senders met besides a 2xx, by status or error kind.
type Refusals = Mutex<BTreeMap<String, usize>>;

/// Posts `bodies` in order, paced over [`POSTING`]: the `n`th to replica `(first + n) %
/// replicas`, or, when that one does not answer 2xx, to the next, until one does.
fn send(first: usize, bodies: &[Vec<u8>], urls: &Mutex<Vec<String>>, posted: &AtomicUsize, refusals: &Refusals) {
    let started = Instant::now();
    let interval = POSTING / bodies.len() as u32;
    for (n, body) in bodies.iter().enumerate() {
        if let Some(wait) = (interval * n as u32).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let replicas = urls.lock().unwrap().len();
        let mut target = first + n;
        let since = Instant::now();
        loop {
            let url = urls.lock().unwrap()[target % replicas].clone();
            let refusal = match loopback_request("POST", &url, body) {
                Ok((status, _)) if (200..300).contains(&status) => break,
                Ok((status, text)) => format!("{status} {}", text.chars().take(80).collect::<String>()),
                Err(e) => format!("{:?}", e.kind()),
            };
            let mut seen = refusals.lock().unwrap();
            *seen.entry(refusal).or_default() += 1;
            assert!(since.elapsed() < Duration::from_secs(60), "no replica took a delivery for 60 s: {:?}", seen.clone());
            drop(seen);
            target += 1;
            if (target - first - n).is_multiple_of(replicas) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        posted.fetch_add(1, Ordering::SeqCst);
    }
}

/// The run: `replicas` serve processes on `database` (each on its own SQLite file when
/// `None`: only meaningful with one replica), the load above, a SIGKILL and restart of replica
/// 2 at a third of the posting and a SIGTERM and restart of replica 3 at two thirds (replica 1
/// for both when there is one), then the checks.
fn run_replicas(name: &str, replicas: usize, database: Option<&str>) {
    let schedule = schedule();
    let total: usize = schedule.iter().map(Vec::len).sum();
    let distinct = CALLERS * CALLS * 3;
    let all: Vec<Vec<u8>> = schedule.iter().flatten().cloned().collect();
    let (expected, expected_requests, expected_posts) = reference(&all);
    assert!(total >= 2_000, "{total} deliveries");

    let mock = MockServer::start(MockOptions { token: Some(TOKEN.into()), rate_limit: Some(RateLimit::HIGHLEVEL_BURST), ..MockOptions::default() }).unwrap();
    let dir = host_test::support::scratch_dir(name);
    let states: Vec<PathBuf> = (1..=replicas).map(|r| dir.join(format!("replica{r}"))).collect();
    let started = Instant::now();
    let mut live: Vec<Replica> = states.iter().map(|state| Replica::start(state, 1, &mock.base_url(), database)).collect();
    let startup = started.elapsed();
    let urls = Mutex::new(live.iter().map(Replica::webhook_url).collect::<Vec<_>>());
    let (posted, refusals) = (AtomicUsize::new(0), Refusals::default());
    let (killed, terminated) = (1.min(replicas - 1), 2.min(replicas - 1));
    let mut story = Vec::new();
    let mut outcomes_of_stopped = Vec::new();

    let started = Instant::now();
    std::thread::scope(|scope| {
        let senders: Vec<_> = schedule
            .iter()
            .enumerate()
            .map(|(s, bodies)| {
                let (urls, posted, refusals) = (&urls, &posted, &refusals);
                scope.spawn(move || send(s, bodies, urls, posted, refusals))
            })
            .collect();
        let wait_posted = |n: usize| {
            while posted.load(Ordering::SeqCst) < n {
                // The senders are paced alike: one done this early has failed (its panic says why).
                assert!(!senders.iter().any(|s| s.is_finished()), "a sender stopped after {} deliveries", posted.load(Ordering::SeqCst));
                std::thread::sleep(Duration::from_millis(10));
            }
        };

        wait_posted(total / 3);
        let queued = live[0].health()["queue_depth"].as_u64().unwrap();
        let requests = mock.requests().len();
        let replica = live.remove(killed);
        outcomes_of_stopped.push((format!("replica {} before its SIGKILL", killed + 1), replica.outcomes()));
        replica.kill();
        story.push(format!(
            "SIGKILL replica {} at {:.1} s ({} posted, {queued} queued, {requests} of {expected_requests} requests made)",
            killed + 1,
            started.elapsed().as_secs_f64(),
            posted.load(Ordering::SeqCst)
        ));
        std::thread::sleep(Duration::from_millis(500));
        let restart = Instant::now();
        let replica = Replica::start(&states[killed], 2, &mock.base_url(), database);
        story.push(format!("replica {} back at {:.1} s (started in {} ms)", killed + 1, started.elapsed().as_secs_f64(), restart.elapsed().as_millis()));
        urls.lock().unwrap()[killed] = replica.webhook_url();
        live.insert(killed, replica);

        wait_posted(2 * total / 3);
        let queued = live[0].health()["queue_depth"].as_u64().unwrap();
        let replica = live.remove(terminated);
        outcomes_of_stopped.push((format!("replica {} before its SIGTERM", terminated + 1), replica.outcomes()));
        let log = replica.log.clone();
        let (status, took) = replica.terminate();
        assert!(status.success(), "SIGTERM: replica {} exited with {status}: {}", terminated + 1, std::fs::read_to_string(&log).unwrap_or_default());
        story.push(format!(
            "SIGTERM replica {} at {:.1} s ({queued} queued): exited 0 after {} ms",
            terminated + 1,
            started.elapsed().as_secs_f64() - took.as_secs_f64(),
            took.as_millis()
        ));
        let replica = Replica::start(&states[terminated], 2, &mock.base_url(), database);
        story.push(format!("replica {} back at {:.1} s", terminated + 1, started.elapsed().as_secs_f64()));
        urls.lock().unwrap()[terminated] = replica.webhook_url();
        live.insert(terminated, replica);
    });
    let posting = started.elapsed();

    // The inbox is shared: any replica's depth is the same; each is asked.
    let deadline = Instant::now() + Duration::from_secs(240);
    while live.iter().any(|r| r.health()["queue_depth"] != 0) {
        assert!(Instant::now() < deadline, "the replicas did not drain the inbox in 4 minutes: {:?}", live.iter().map(|r| r.health()).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(50));
    }
    let drained = started.elapsed();

    let requests = mock.requests();
    let rate_limited = mock.rate_limited_count();
    let posts = requests.iter().filter(|r| r.method == "POST").count();
    let held = mock.holdings();
    let outcomes: Vec<(String, BTreeMap<String, u64>)> =
        live.iter().enumerate().map(|(i, r)| (format!("replica {} at the end", i + 1), r.outcomes())).chain(outcomes_of_stopped).collect();
    let healths: Vec<Value> = live.iter().map(Replica::health).collect();
    host_test::figure!(
        "replicas ({name}): {replicas} serve processes{}, {total} deliveries ({distinct} distinct) from {SENDERS} senders; started in {} ms; {}; \
         posted in {:.1} s, drained at {:.1} s; {} API requests ({posts} POSTs; {expected_requests} and {expected_posts} without replicas), \
         {rate_limited} × 429; the senders re-posted after {:?}; handled per replica: {outcomes:?}",
        database.map_or(" on SQLite".to_string(), |_| " on one PostgreSQL database".to_string()),
        startup.as_millis(),
        story.join("; "),
        posting.as_secs_f64(),
        drained.as_secs_f64(),
        requests.len(),
        refusals.lock().unwrap(),
    );

    let mut lost = Vec::new();
    let mut doubled = Vec::new();
    for (phone, want) in &expected {
        match held.get(phone) {
            None => lost.push(format!("{phone}: no contact")),
            Some(got) if got == want => {}
            Some(got) => {
                let (notes, tasks) = (got.1.len() as i64 - want.1.len() as i64, got.2.len() as i64 - want.2.len() as i64);
                let line = format!("{phone}: {} contacts, {notes:+} notes, {tasks:+} tasks ({got:?} vs. {want:?})", got.0);
                if got.0 < 1 || notes < 0 || tasks < 0 {
                    lost.push(line);
                } else {
                    doubled.push(line);
                }
            }
        }
    }
    doubled.extend(held.keys().filter(|phone| !expected.contains_key(*phone)).map(|phone| format!("{phone}: not in the reference")));
    if !lost.is_empty() || !doubled.is_empty() || rate_limited > 0 {
        for r in &requests {
            eprintln!("{} {} {} {:?}", r.method, r.path_and_query, r.status, r.operation_id);
        }
        diagnose(&live[0], lost.iter().chain(&doubled), &dir);
    }
    assert!(lost.is_empty(), "{} callers lost something: {lost:#?}", lost.len());
    assert!(doubled.is_empty(), "{} callers have something twice: {doubled:#?}", doubled.len());
    assert_eq!(rate_limited, 0, "the mock answered 429 {rate_limited} times");
    assert_eq!(held.len(), CALLERS);
    assert!(held.values().all(|(contacts, notes, _)| *contacts == 1 && notes.len() == CALLS), "{held:#?}");
    for health in &healths {
        assert_eq!(health["dead_letters"], 0, "{health}");
    }
    let created = requests.iter().filter(|r| r.method == "POST" && (200..300).contains(&r.status)).count();
    assert_eq!(created, expected_posts, "POSTs that created something: {created}, against {expected_posts} in one process");
}

/// For a failure: the story of each call of the callers in `lines` (phone first), as the
/// console tells it (its deliveries and their tries), and what the replicas logged.
fn diagnose<'a>(replica: &Replica, lines: impl Iterator<Item = &'a String>, dir: &Path) {
    for line in lines {
        let Some(caller) = line.get(8..12).and_then(|n| n.parse::<usize>().ok()) else { continue };
        for call in 0..CALLS {
            let call_id = 7_300_000_000_000_000u64 + (caller * 100 + call) as u64;
            let story = loopback_request("GET", &format!("{}/api/calls/{call_id}", replica.admin), b"").map(|(_, text)| text);
            eprintln!("caller {caller}, call {call_id}: {story:?}");
        }
    }
    let mut logs: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect();
    logs.sort();
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let notable: Vec<&str> = text.lines().filter(|l| l.contains("WARN") || l.contains("ERROR") || l.starts_with("serve:")).collect();
        eprintln!("{}: {} lines, {} notable:\n{}", log.display(), text.lines().count(), notable.len(), notable.join("\n"));
    }
}

#[test]
#[cfg_attr(postgres_missing, ignore = "PostgreSQL is not installed: the replicas share one PostgreSQL database")]
fn three_replicas_on_one_postgres_database_survive_a_sigkill_and_a_rolling_restart_exactly_once() {
    let url = host_test::postgres::database("replicas");
    run_replicas("replicas-postgres", 3, Some(&url));
}

/// The same load through one replica on SQLite: killed and restarted, stopped and restarted.
/// The PostgreSQL test covers more; this one is for comparing the two.
#[test]
#[ignore = "the same load on one SQLite replica (about 75 s); for comparison with the PostgreSQL test"]
fn one_replica_on_sqlite_survives_the_same_load_exactly_once() {
    run_replicas("replicas-sqlite", 1, None);
}
