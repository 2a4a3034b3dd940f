//! The console's history at depth: `serve`'s inbox filled with stored deliveries (a million in
//! the full run), then each query the page makes, timed. Part of `bench`.

use dialpad_ghl_host::inbound::Source;
use dialpad_ghl_host::serve::history::query::{self, Filter};
use dialpad_ghl_host::serve::history::{stats, story};
use dialpad_ghl_host::serve::inbox::{Arrival, Inbox};
use dialpad_ghl_host::settings::LinkTemplates;
use std::time::{Duration, Instant};

/// One timed query: what it is, its median and slowest of the runs, and rows it found.
pub struct Timed {
    pub query: &'static str,
    pub median: Duration,
    pub slowest: Duration,
    pub found: usize,
}

pub struct ConsoleFigures {
    pub rows: u64,
    pub fill: Duration,
    pub file_bytes: u64,
    pub queries: Vec<Timed>,
}

/// Seven, so that every tenant has failures (every 50th) and SMS (every 5th).
const TENANTS: u64 = 7;
/// Rows a day of the stored history spans (received times are spread over it).
const SPAN_MS: i64 = 7 * 24 * 3600 * 1000;

fn body(n: u64) -> String {
    // Each delivery is a call leg of its own call, from its own caller.
    format!(
        r#"{{"call_id": {}, "external_number": "+1{:010}", "state": "hangup", "direction": "inbound", "contact": {{"name": "Caller {n}", "email": "caller{n}@example.com"}}}}"#,
        7_000_000_000_000_000u64 + n,
        2_000_000_000u64 + n
    )
}

/// Fills an inbox in `dir` with `rows` deliveries of 7 tenants over 7 days (2 % failed, the rest
/// synced), then times the page's queries.
pub fn measure(dir: &std::path::Path, rows: u64) -> anyhow::Result<ConsoleFigures> {
    let path = dir.join("console-bench.db");
    let inbox = Inbox::open(&path)?;
    inbox.set_keep_rows(rows + 1);
    let started = Instant::now();
    let bodies: Vec<String> = (0..rows).map(body).collect();
    let tenants: Vec<String> = (0..TENANTS).map(|t| format!("tenant-{t}")).collect();
    for chunk in (0..rows as usize).collect::<Vec<_>>().chunks(20_000) {
        let arrivals: Vec<Arrival<'_>> = chunk
            .iter()
            .map(|&n| Arrival {
                tenant: &tenants[n % TENANTS as usize],
                source: Source::DialpadWebhook,
                name: "Dialpad webhook",
                body: bodies[n].as_bytes(),
                kind: if n % 5 == 0 { "sms" } else { "call" },
                lane: "phone:x",
                replay_of: None,
            })
            .collect();
        inbox.accept_many(&arrivals)?;
    }
    // As handled: most synced, one in fifty failed with a refused token, spread over the span.
    let now = dialpad_ghl_host::serve::inbox::now_ms();
    let start = now - SPAN_MS;
    inbox.with_db(|db| {
        db.execute(
            "UPDATE inbox SET status = CASE WHEN id % 50 = 0 THEN 'failed' ELSE 'done' END,
                 state = CASE WHEN id % 50 = 0 THEN 'failed' ELSE 'synced' END,
                 error = CASE WHEN id % 50 = 0 THEN 'upstream:401' END,
                 words = 'inbound call → note', finished_ms = received_ms,
                 received_ms = ?1 + id * ?2",
            dialpad_ghl_host::storage::db::params![start, SPAN_MS / rows.max(1) as i64],
        )?;
        // Rows changed by hand: the charts' counts are made again from them.
        stats::recount(db)?;
        Ok(())
    })?;
    let fill = started.elapsed();
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or_default();

    let middle = rows as i64 / 2;
    let caller = middle as u64 + 7;
    let phone = format!(
        "({:03}) {:03}-{:04}",
        (2_000_000_000 + caller) / 10_000_000 % 1000,
        (2_000_000_000 + caller) / 10_000 % 1000,
        (2_000_000_000 + caller) % 10_000
    );
    let call_id = (7_000_000_000_000_000u64 + caller).to_string();
    let tenant_of_caller = format!("tenant-{}", caller % TENANTS);
    let hour = (start + SPAN_MS / 2, start + SPAN_MS / 2 + 3600 * 1000);
    let page = |filter: Filter, before: Option<i64>| {
        let filter = filter.clone();
        move |db: &dialpad_ghl_host::storage::db::Db| Ok(query::page(db, &filter, before, 50)?.rows.len())
    };
    let templates = LinkTemplates::default();
    let links = story::LinkContext { templates: &templates, app_url: "https://app.gohighlevel.com", location_id: "loc" };
    let mut queries = Vec::new();
    let mut time = |query: &'static str, run: &dyn Fn(&dialpad_ghl_host::storage::db::Db) -> anyhow::Result<usize>| -> anyhow::Result<()> {
        let mut runs = Vec::new();
        let mut found = 0;
        for _ in 0..21 {
            let at = Instant::now();
            found = inbox.with_db(run)?;
            runs.push(at.elapsed());
        }
        runs.sort();
        queries.push(Timed { query, median: runs[runs.len() / 2], slowest: runs[runs.len() - 1], found });
        Ok(())
    };
    time("newest page (50 rows)", &page(Filter::default(), None))?;
    time("a page half-way down (keyset)", &page(Filter::default(), Some(middle)))?;
    time("one tenant, failed", &page(Filter { tenant: Some("tenant-3".into()), state: Some("failed".into()), ..Filter::default() }, None))?;
    time(
        "one tenant, SMS, one hour",
        &page(Filter { tenant: Some("tenant-3".into()), kind: Some("sms".into()), from: Some(hour.0), to: Some(hour.1), ..Filter::default() }, None),
    )?;
    time("search by phone, as typed", &page(Filter { q: Some(phone.clone()), ..Filter::default() }, None))?;
    time("search by Dialpad call id", &page(Filter { q: Some(call_id.clone()), ..Filter::default() }, None))?;
    time("search by e-mail", &page(Filter { q: Some(format!("caller{caller}@example.com")), ..Filter::default() }, None))?;
    time("a call's story", &|db| Ok(story::story(db, &tenant_of_caller, &call_id, &links)?.map_or(0, |s| s["events"].as_array().map_or(0, Vec::len))))?;
    time("chart: last day, 48 buckets, all tenants", &|db| Ok(stats::stats(db, None, now - 24 * 3600 * 1000, now, 48)?["t"].as_array().map_or(0, Vec::len)))?;
    time("chart: the week, one tenant", &|db| Ok(stats::stats(db, Some("tenant-3"), start, now, 168)?["t"].as_array().map_or(0, Vec::len)))?;
    time("chart: the week, all tenants", &|db| Ok(stats::stats(db, None, start, now, 168)?["t"].as_array().map_or(0, Vec::len)))?;
    time("failed waiting for an operator (count)", &|db| Ok(query::open_failure_count(db)? as usize))?;
    Ok(ConsoleFigures { rows, fill, file_bytes, queries })
}
