//! Issue 14, findings 6–9: what a sender can make `serve` hold. Connections and time (idle,
//! slowloris and never-ending bodies do not keep `/healthz` out and are closed), memory
//! (stalled bodies do not grow the process), disk (budgets refuse with 507 and `Retry-After`,
//! retention prunes) and lanes (a hot lane does not delay other callers).
//!
//! The memory test reads this process's own RSS: these tests take one lock so that none of them
//! runs beside it.

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::serve::limits::Limits;
use dialpad_ghl_host::serve::{ServeOptions, Server};
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use e2e_tests::serve::{get_json, json_fixture, loopback_options, mock, LOCATION, TOKEN};
use host_test::support::loopback_request;
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialized() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An in-process `serve` against `api_base`, unsigned bodies accepted.
fn start(name: &str, api_base: &str, options: ServeOptions) -> (Server, std::path::PathBuf) {
    let settings = e2e_tests::quick_settings(api_base, LOCATION, TOKEN);
    let db = host_test::support::scratch_dir(name).join("state.db");
    let runtime = Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    (Server::start(runtime, &db, DeadLetters::open(&db).unwrap(), options).unwrap(), db)
}

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// `GET /healthz`, with how long it took; panics past 5 s.
fn health(url: &str) -> Duration {
    let started = Instant::now();
    let (status, _) = loopback_request("GET", &format!("{url}/healthz"), b"").unwrap();
    assert_eq!(status, 200);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{url}/healthz took {took:?}");
    took
}

/// True when the server has closed `stream` (what it sent before is read and dropped).
fn closed(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// A raw request: status, head and body of the answer.
fn raw(to: SocketAddr, path: &str, body: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(to).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "POST {path} HTTP/1.1\r\nHost: {to}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    let _ = stream.write_all(body);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), head.to_string(), body.to_string())
}

fn metric(admin: &str, line_start: &str) -> f64 {
    let (_, text) = loopback_request("GET", &format!("{admin}/metrics"), b"").unwrap();
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

/// A distinct call from `phone`, padded with a transcript of `pad` bytes.
fn call(n: usize, phone: &str, pad: usize) -> Vec<u8> {
    let mut event = json_fixture("call_inbound_hangup_completed.json");
    event["call_id"] = json!(7_000_000_000u64 + n as u64);
    event["master_call_id"] = json!(7_000_000_000u64 + n as u64);
    event["external_number"] = json!(phone);
    event["contact"]["phone"] = json!(phone);
    if pad > 0 {
        event["transcription_text"] = json!("word ".repeat(pad / 5));
    }
    serde_json::to_vec(&event).unwrap()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap()
}

/// Finding 6: 1,000 idle, slowloris and never-ending-body connections on the webhook listener
/// and 100 idle ones on the admin listener: `/healthz` answers on both throughout, and every
/// one of them is closed once the timeouts pass.
#[test]
fn idle_and_slow_connections_neither_keep_healthz_out_nor_stay_open() {
    let _one = serialized();
    let mock = mock();
    let mut options = loopback_options();
    options.limits =
        Limits { header_timeout: Duration::from_secs(2), body_timeout: Duration::from_secs(3), idle_timeout: Duration::from_secs(4), ..Limits::default() };
    let (server, _) = start("attack-connections", &mock.base_url(), options);
    let (webhook, admin) = (addr(&server.webhook_url()), addr(&server.admin_url()));
    let started = Instant::now();
    let mut idle = Vec::new();
    let mut slow = Vec::new();
    let mut chunked = Vec::new();
    for n in 0..1000 {
        let mut stream = TcpStream::connect(webhook).unwrap();
        match n % 5 {
            0 | 1 => idle.push(stream),
            2 | 3 => {
                let _ = stream.write_all(b"POST /webhooks/dialpad HTTP/1.1\r\nHost: x\r\n");
                slow.push(stream);
            }
            _ => {
                let _ = stream.write_all(b"POST /webhooks/dialpad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
                chunked.push(stream);
            }
        }
    }
    for _ in 0..100 {
        idle.push(TcpStream::connect(admin).unwrap());
    }
    let opened = started.elapsed();
    let all_open = Instant::now();
    let mut slowest = Duration::ZERO;
    // A header byte, and a body chunk, every 500 ms for 8 s after the last one opened: past
    // every timeout.
    while all_open.elapsed() < Duration::from_secs(8) {
        for stream in &mut slow {
            let _ = stream.write_all(b"X");
        }
        for stream in &mut chunked {
            let _ = stream.write_all(b"1\r\nx\r\n");
        }
        slowest = slowest.max(health(&server.webhook_url())).max(health(&server.admin_url()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let open = |streams: &mut Vec<TcpStream>| streams.iter_mut().map(|s| !closed(s) as usize).sum::<usize>();
    let (idle_open, slow_open, chunked_open) = (open(&mut idle), open(&mut slow), open(&mut chunked));
    let (_, metrics) = loopback_request("GET", &format!("{}/metrics", server.admin_url()), b"").unwrap();
    let refusals: Vec<&str> = metrics.lines().filter(|l| l.starts_with("dialpad_ghl_http_refusals_total")).collect();
    host_test::figure!(
        "connections: 1,100 opened in {opened:?}; slowest /healthz over 8 s: {slowest:?}; still open after 8 s: {idle_open} idle, {slow_open} slowloris, {chunked_open} chunked; {refusals:?}"
    );
    assert_eq!((idle_open, slow_open, chunked_open), (0, 0, 0), "connections outlived the timeouts");
}

/// Finding 7: 1,000 connections stall inside 1 MB bodies (half with a Content-Length, half
/// chunked), with the connection caps and the body limit raised (2 MiB) so that only the body
/// budget bounds them. The process's RSS stays bounded during the attack and comes back after.
#[test]
fn stalled_bodies_hold_bounded_memory_that_returns() {
    let _one = serialized();
    let mock = mock();
    let mut options = loopback_options();
    options.limits = Limits {
        webhook_connections: 2000,
        connections_per_client: 2000,
        dialpad_body_bytes: 2 << 20,
        body_timeout: Duration::from_secs(20),
        header_timeout: Duration::from_secs(20),
        ..Limits::default()
    };
    let (server, _) = start("attack-memory", &mock.base_url(), options);
    let webhook = addr(&server.webhook_url());
    health(&server.webhook_url());
    let before = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let megabyte = vec![b'x'; 1 << 20];
    let started = Instant::now();
    let mut streams = Vec::new();
    for n in 0..1000 {
        let mut stream = TcpStream::connect(webhook).unwrap();
        let head = if n % 2 == 0 {
            format!("POST /webhooks/dialpad HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 1 << 20)
        } else {
            "POST /webhooks/dialpad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n".to_string()
        };
        let _ = stream.write_all(head.as_bytes());
        // All but the last byte, as far as the socket takes it without waiting: then stall.
        stream.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while sent < megabyte.len() - 1 {
            match stream.write(&megabyte[sent..megabyte.len() - 1]) {
                Ok(n) if n > 0 => sent += n,
                _ => break,
            }
        }
        streams.push(stream);
    }
    let sent_in = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_kib();
    health(&server.webhook_url());
    drop(streams);
    std::thread::sleep(Duration::from_secs(3));
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let after = rss_kib();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    let refusals = metric(&server.admin_url(), "dialpad_ghl_http_refusals_total{listener=\"webhook\",reason=\"busy\"}");
    let too_large = metric(&server.admin_url(), "dialpad_ghl_http_refusals_total{listener=\"webhook\",reason=\"too-large\"}");
    host_test::figure!(
        "stalled bodies: RSS {} MB before, {} MB during, peak {} MB, {} MB 3 s after; 1,000 bodies sent in {sent_in:?}; refused {too_large} too large, {refusals} over the budget",
        before / 1024,
        during / 1024,
        peak / 1024,
        after / 1024
    );
    assert!(peak < before + 200 * 1024, "RSS grew from {before} KiB to {peak} KiB");
    assert!(after < before + 64 * 1024, "RSS stayed at {after} KiB after the attack (before: {before} KiB)");
}

/// Finding 8: when the queued deliveries fill the inbox's budget, or the dead letters theirs,
/// a delivery is answered 507 with `Retry-After` and counted; the retention prunes finished
/// deliveries and dead letters, after which deliveries are accepted again.
#[test]
fn disk_budgets_refuse_with_507_and_the_retention_prunes() {
    let _one = serialized();
    // Nothing listens on port 9: every handling fails to reach HighLevel.
    let unreachable = "http://127.0.0.1:9";
    let mut options = loopback_options();
    options.retry_base = Duration::from_secs(600);
    options.limits = Limits { inbox_budget_bytes: 100 * 1024, ..Limits::default() };
    let (server, _) = start("attack-inbox-budget", unreachable, options);
    let webhook = addr(&server.webhook_url());
    let mut accepted = 0;
    let refusal = loop {
        let (status, head, body) = raw(webhook, "/webhooks/dialpad", &call(accepted, &format!("+1312555{:04}", accepted), 8000));
        if status != 200 {
            break (status, head, body);
        }
        accepted += 1;
        assert!(accepted < 50, "the inbox's budget never refused");
    };
    assert_eq!(refusal.0, 507, "{refusal:?}");
    assert!(refusal.1.to_ascii_lowercase().contains("retry-after: 60"), "{}", refusal.1);
    assert!(refusal.2.contains("storage-full"), "{}", refusal.2);
    std::thread::sleep(Duration::from_millis(1200));
    let admin = server.admin_url();
    assert_eq!(metric(&admin, "dialpad_ghl_budget_refusals_total{budget=\"inbox\"}"), 1.0);
    let inbox_bytes = metric(&admin, "dialpad_ghl_inbox_bytes");
    // Admitted while under the budget; the workers' records of each try (plans, exchanges)
    // come on top.
    assert!(inbox_bytes > 80.0 * 1024.0, "{inbox_bytes}");
    host_test::figure!("inbox budget 100 KiB: {accepted} deliveries of ~8 KB accepted, then 507 with Retry-After: 60; inbox_bytes {inbox_bytes}");
    drop(server);

    // Dead letters: each delivery fails at once; a small budget and a 2 s retention.
    let mut options = loopback_options();
    options.max_attempts = 1;
    options.limits = Limits {
        dead_letter_budget_bytes: 30 * 1024,
        keep_finished: Duration::from_secs(2),
        keep_dead_letters: Duration::from_secs(2),
        prune_every: Duration::from_millis(500),
        ..Limits::default()
    };
    let (server, db) = start("attack-dead-letters", unreachable, options);
    let (webhook, admin) = (addr(&server.webhook_url()), server.admin_url());
    let mut sent = 0;
    let refusal = loop {
        let (status, head, body) = raw(webhook, "/webhooks/dialpad", &call(100 + sent, &format!("+1415555{:04}", sent), 8000));
        if status != 200 {
            break (status, head, body);
        }
        sent += 1;
        assert!(server.wait_idle(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(sent < 20, "the dead letters' budget never refused");
    };
    assert_eq!(refusal.0, 507, "{refusal:?}");
    assert!(refusal.1.to_ascii_lowercase().contains("retry-after: 60"), "{}", refusal.1);
    let file = || ["", "-wal"].iter().map(|tail| std::fs::metadata(format!("{}{tail}", db.display())).map_or(0, |m| m.len())).sum::<u64>();
    let file_full = file();
    // The retention: 2 s after their last failure every letter and finished delivery is gone.
    let deadline = Instant::now() + Duration::from_secs(15);
    while get_json(&format!("{admin}/healthz"))["dead_letters"].as_u64() != Some(0)
        || !get_json(&format!("{admin}/api/events"))["events"].as_array().unwrap().is_empty()
    {
        assert!(Instant::now() < deadline, "the retention did not prune");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1200));
    let pruned_inbox = metric(&admin, "dialpad_ghl_pruned_rows_total{table=\"inbox\"}");
    let pruned_letters = metric(&admin, "dialpad_ghl_pruned_rows_total{table=\"dead_letters\"}");
    assert!(pruned_inbox >= sent as f64 && pruned_letters >= sent as f64, "{pruned_inbox} {pruned_letters}");
    assert_eq!(metric(&admin, "dialpad_ghl_budget_refusals_total{budget=\"dead_letters\"}"), 1.0);
    assert_eq!(metric(&admin, "dialpad_ghl_dead_letter_bytes"), 0.0);
    let (status, _, _) = raw(webhook, "/webhooks/dialpad", &call(999, "+14155559999", 100));
    assert_eq!(status, 200, "room again after the retention");
    let file_after = file();
    host_test::figure!(
        "dead-letter budget 30 KiB: {sent} failures, then 507; retention pruned {pruned_inbox} deliveries and {pruned_letters} letters; state.db and its log {file_full} → {file_after} bytes"
    );
}

/// Finding 9: 6,000 deliveries queued in one lane before the start, then 50 other callers: they
/// are handled while the hot lane has barely begun.
#[test]
fn a_hot_lane_of_6000_does_not_delay_50_other_callers() {
    let _one = serialized();
    let mock = mock();
    let db = host_test::support::scratch_dir("attack-hot-lane").join("state.db");
    drop(dialpad_ghl_host::serve::inbox::Inbox::open(&db).unwrap());
    {
        let mut sql = rusqlite::Connection::open(&db).unwrap();
        let tx = sql.transaction().unwrap();
        let body = call(0, "+13125550187", 0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for n in 0..6000 {
            tx.execute(
                "INSERT INTO inbox (received_ms, source, name, body, kind, lane, status) VALUES (?1, 'webhook', ?2, ?3, 'call', 'phone:+13125550187', 'queued')",
                rusqlite::params![now, format!("hot #{n}"), body],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let settings = e2e_tests::quick_settings(&mock.base_url(), LOCATION, TOKEN);
    let runtime = Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::open(&db).unwrap()).unwrap();
    let mut options = loopback_options();
    options.workers = 4;
    let server = Server::start(runtime, &db, DeadLetters::open(&db).unwrap(), options).unwrap();
    let ids: Vec<i64> = (0..50)
        .map(|n| {
            let (status, text) =
                loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), &call(1 + n, &format!("+1206555{:04}", n), 0)).unwrap();
            assert_eq!(status, 200, "{text}");
            serde_json::from_str::<Value>(&text).unwrap()["accepted"].as_i64().unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waits = Vec::new();
    for id in &ids {
        loop {
            let event = get_json(&format!("{}/api/events/{id}", server.admin_url()));
            if event["status"] == "done" {
                waits.push(event["finished_ms"].as_i64().unwrap() - event["received_ms"].as_i64().unwrap());
                break;
            }
            assert!(Instant::now() < deadline, "caller #{id} still waits: {event}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let hot_left = server.inbox().queued().unwrap();
    waits.sort();
    host_test::figure!(
        "hot lane of 6,000: 50 other callers waited {} ms at the median, {} ms at most; {hot_left} of the hot lane still queued",
        waits[25],
        waits[49]
    );
    // The old scheduler saw only the first 5,000 queued rows: the others waited for 1,000+
    // hot deliveries.
    assert!(hot_left > 5000, "the others waited for {} hot deliveries", 6000 - hot_left);
}
