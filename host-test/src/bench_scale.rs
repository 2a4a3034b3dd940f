//! The bench's scale rows, run at the end of [`crate::bench::run`]:
//!
//! - flat cost per tenant: per-event time and host memory with 1, 100 and 1,000 tenants in one
//!   host, each tenant built by `serve`'s own registry ([`Tenants`]);
//! - cost that grows honestly: per-event time against the size of a transcript, and against the
//!   notes a contact already has on a host without durable state (the plugin reads them back
//!   to find the call's note);
//! - time to HighLevel: from a delivery's arrival at `serve` to its last write in the mock,
//!   under 50 concurrent senders, 50 ms of API latency and an enforced rate limit.

use crate::measure::{at_most, limited_serve, micros, millis, mock, percentiles, settings_for, webhook, BenchOptions, Results, TOKEN};
use crate::support::{loopback_request, scratch_dir};
use anyhow::{bail, ensure, Context as _};
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::{CompiledPlugin, Runtime};
use dialpad_ghl_host::inbound::Inbound;
use dialpad_ghl_host::storage::dead_letters::DeadLetters;
use dialpad_ghl_host::storage::vault::{SecretKey, Vault};
use dialpad_ghl_host::tenants::registry::Tenants;
use dialpad_ghl_host::tenants::store::TenantStore;
use dialpad_ghl_host::tenants::{lifecycle, owner, secret_names};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every scale row, in the order of the goals.
pub fn run(plugin: &CompiledPlugin, options: BenchOptions, results: &mut Results) -> anyhow::Result<()> {
    tenants(plugin, options, results).context("the tenants' rows")?;
    event_size(plugin, options, results).context("the event-size row")?;
    notes_read_back(plugin, options, results).context("the notes row")?;
    time_to_highlevel(plugin, options, results).context("the time-to-HighLevel row")?;
    Ok(())
}

/// `1,000` for 1000.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// The demo's hangup from caller `n` (a fresh number), call `call`.
fn hangup(template: &Value, n: usize, call: usize) -> Value {
    let mut event = template.clone();
    let number = phone(n);
    event["call_id"] = json!(8_300_000_000_000_000u64 + (n * 1_000 + call) as u64);
    event["external_number"] = json!(number);
    event["contact"]["phone"] = json!(number);
    event["contact"]["id"] = json!(6_300_000_000_000_000u64 + n as u64);
    event
}

fn phone(n: usize) -> String {
    format!("+1415556{:04}", n % 10_000)
}

/// The plugin's answer, or its error as the host's.
fn handled(runtime: &Runtime, event: &Inbound) -> anyhow::Result<()> {
    runtime.handle(event)?.result.map(drop).map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// This process's resident memory (`/proc/self/statm`, resident pages of 4 KiB).
fn resident_bytes() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).context("/proc/self/statm has no resident field")?.parse()?;
    Ok(pages * 4096)
}

// ------------------------------------------------------------------------------------------------
// 4. Flat cost per tenant
// ------------------------------------------------------------------------------------------------

/// What one tenant count measured.
struct TenantStage {
    tenants: usize,
    p50: Duration,
    p99: Duration,
    /// Resident memory grown since before its host's first tenant: with the runtimes built, and
    /// after one event each.
    built: u64,
    after_event: u64,
}

/// A host per tenant count, each with its tenants added to `serve`'s registry over a tenant
/// store (as `serve` and `connect` make them: a private token and a webhook secret each,
/// sealed), each tenant with its first event (a new caller: 3 requests); then redeliveries of
/// those events, round-robin over each host's tenants and the hosts in turns, each tenant
/// looked up as `serve` looks up a delivery's tenant.
fn tenants(plugin: &CompiledPlugin, options: BenchOptions, results: &mut Results) -> anyhow::Result<()> {
    let counts: &[usize] = if options.quick { &[1, 10, 50] } else { &[1, 100, 1_000] };
    let reps = if options.quick { 300 } else { 5_000 };
    let template: Value = serde_json::from_str(crate::demo::HANGUP)?;
    let api = mock()?;
    let base = settings_for(&api);
    // One host per tenant count, each on its state folder, all alive at once: their
    // redeliveries are then timed in turns, so that this machine's drift falls on all alike.
    let mut hosts = Vec::new();
    for &count in counts {
        let db = scratch_dir(&format!("bench-tenants-{count}")).join("state.db");
        let single = Runtime::new(plugin, base.runtime_options(true)?, KeyValueStore::open(&db)?)?;
        // The host's own location warms the engine, its pool, the key-value store and the mock
        // before the first reading, so that the readings count tenants, not the first event.
        let warm = webhook(hangup(&template, 9_999, 0).to_string().into_bytes());
        for _ in 0..50 {
            handled(&single, &warm)?;
        }
        let store = Arc::new(TenantStore::open(&db, Some(Arc::new(Vault::new(SecretKey::generate(), vec![]))))?);
        let (registry, _) = Tenants::over_store(single, &base, DeadLetters::open(&db)?, store.clone(), "");
        let registry = registry.without_single();
        let before = resident_bytes()?;
        let mut tenants = Vec::new();
        for i in 0..count {
            let id = format!("bench-{i:04}");
            let secret = lifecycle::generate_secret();
            lifecycle::put_private(&store, &id, &format!("loc-bench-{i:04}"), &Secret::new(TOKEN), Default::default())?;
            store.set_secret(&owner(&id), secret_names::WEBHOOK_SECRET, &secret)?;
            // Signed with the tenant's own secret, as Dialpad signs a tenant's webhooks.
            tenants.push((id, webhook(crate::jwt::sign(hangup(&template, i, 0).to_string().as_bytes(), secret.expose()).into_bytes())));
        }
        ensure!(registry.all().len() == count, "the registry holds {} tenants, not {count}", registry.all().len());
        let built = resident_bytes()?.saturating_sub(before);
        for (id, event) in &tenants {
            let live = registry.get(id).with_context(|| format!("tenant {id}"))?;
            handled(&live.runtime.with_own_log(), event).with_context(|| format!("tenant {id}'s first event"))?;
        }
        let after_event = resident_bytes()?.saturating_sub(before);
        hosts.push((registry, tenants, built, after_event));
    }
    // Redeliveries: no request. One round untimed, then `reps` timed, the hosts taking turns.
    let requests = api.requests().len();
    let redeliver = |(registry, tenants, ..): &(Tenants, Vec<(String, Inbound)>, u64, u64), k: usize| -> anyhow::Result<Duration> {
        let (id, event) = &tenants[k % tenants.len()];
        let started = Instant::now();
        let live = registry.get(id).with_context(|| format!("tenant {id}"))?;
        let outcome = live.runtime.with_own_log().handle(event)?;
        let elapsed = started.elapsed();
        outcome.result.map_err(|e| anyhow::anyhow!("tenant {id}: {e:?}"))?;
        Ok(elapsed)
    };
    for host in &hosts {
        for k in 0..host.1.len().max(20) {
            redeliver(host, k)?;
        }
    }
    let mut samples = vec![Vec::with_capacity(reps); hosts.len()];
    for k in 0..reps {
        for (host, sample) in hosts.iter().zip(&mut samples) {
            sample.push(redeliver(host, k)?);
        }
    }
    ensure!(api.requests().len() == requests, "a redelivery made {} API requests", api.requests().len() - requests);
    let stages: Vec<TenantStage> = hosts
        .iter()
        .zip(samples)
        .map(|((_, tenants, built, after_event), sample)| {
            let (p50, p99) = percentiles(sample);
            TenantStage { tenants: tenants.len(), p50, p99, built: *built, after_event: *after_event }
        })
        .collect();
    let (first, last) = (&stages[0], &stages[stages.len() - 1]);
    let ratio = last.p50.as_secs_f64() / first.p50.as_secs_f64();
    results.row(&format!(
            "Per event with {} tenants in one host (redelivery of a known hangup, no API request, round-robin over the tenants, tenant looked up as `serve` does; the hosts measured in turns) p50 / p99",
            stages.iter().map(|s| count(s.tenants)).collect::<Vec<_>>().join(" / ")
        ),
        format!(
            "{} ({:.2}× the 1-tenant p50)",
            stages.iter().map(|s| format!("{}: {} / {}", count(s.tenants), micros(s.p50), micros(s.p99))).collect::<Vec<_>>().join("; "),
            ratio
        ),
        &format!("{}-tenant p50 ≤ 1.10× the 1-tenant p50", count(last.tenants)),
        at_most(ratio, 1.10),
    );
    // The 1-tenant stage's growth is one tenant's: below the resident figure's resolution.
    let per_tenant = |stage: &TenantStage, bytes: u64| bytes as f64 / stage.tenants as f64;
    let largest = stages.iter().rev().find(|s| s.tenants > 1).unwrap_or(last);
    let bound = 64.0 * 1024.0;
    results.row(
        "Host memory per tenant (resident memory grown since before the host's first tenant, ÷ tenants): runtime built; after its first event (a new caller)",
        stages
            .iter()
            .filter(|s| s.tenants > 1)
            .map(|s| format!("{} tenants: {}; {}", count(s.tenants), kib(per_tenant(s, s.built)), kib(per_tenant(s, s.after_event))))
            .collect::<Vec<_>>()
            .join(" — "),
        "≤ 64 KiB per tenant after its first event",
        at_most(per_tenant(largest, largest.after_event), bound),
    );
    results.notes.push(format!(
        "Tenants: each is stored as `connect` stores one (a private token and a webhook secret, sealed in the vault) and built by `serve`'s registry \
         (`Tenants::over_store`: `Runtime::with_options` over the one compiled, linked plugin, its own settings, limiters and key-value namespace, \
         SQLite-backed as under `serve`); its events are JWTs signed with its own secret. The resident memory after the first events includes \
         the in-process mock's records of them (a contact, a note and 3 logged requests per tenant) and SQLite's page cache; the runtime alone \
         is the first figure. {} redeliveries per tenant count, {} tenants at most.",
        count(reps),
        count(last.tenants)
    ));
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// 5a. Event size
// ------------------------------------------------------------------------------------------------

/// About `bytes` of transcript: words, as a voicemail's transcript reads; `variant` changes the
/// last word.
fn transcript(bytes: usize, variant: usize) -> String {
    const WORDS: &str =
        "hi this is carlos from hill country roofing calling about replacing our phone system before april for around twenty users please call me back ";
    let mut text = String::with_capacity(bytes + 16);
    while text.len() + WORDS.len() <= bytes {
        text.push_str(WORDS);
    }
    text.push_str(&WORDS[..bytes - text.len()]);
    text.push_str(&format!(" v{variant}"));
    text
}

/// A voicemail's transcription of ~0 to 24 KB (`transcription_text`), on a call whose note
/// exists: its redelivery (the note already says it: no request), and the transcript changing
/// every time (one `update-note` carrying the whole note).
fn event_size(plugin: &CompiledPlugin, options: BenchOptions, results: &mut Results) -> anyhow::Result<()> {
    let sizes_kb = [0usize, 1, 4, 12, 24];
    let reps = if options.quick { 100 } else { 2_000 };
    let updates = if options.quick { 20 } else { 300 };
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo-events");
    let uploaded: Value = serde_json::from_slice(&std::fs::read(fixtures.join("call_voicemail_uploaded.json"))?)?;
    let transcription: Value = serde_json::from_slice(&std::fs::read(fixtures.join("call_voicemail_transcription.json"))?)?;
    let api = mock()?;
    let runtime = Runtime::new(plugin, settings_for(&api).runtime_options(true)?, KeyValueStore::new())?;
    let mut figures = Vec::new();
    for (i, &kb) in sizes_kb.iter().enumerate() {
        let call_id = 8_400_000_000_000_000u64 + i as u64;
        let event = |template: &Value, text: Option<String>| {
            let mut event = template.clone();
            event["call_id"] = json!(call_id);
            if let Some(text) = text {
                event["transcription_text"] = json!(text);
            }
            webhook(event.to_string().into_bytes())
        };
        handled(&runtime, &event(&uploaded, None))?;
        let texts = [transcript(kb * 1024, 0), transcript(kb * 1024, 1)];
        let same = event(&transcription, Some(texts[0].clone()));
        handled(&runtime, &same)?;
        let requests = api.requests().len();
        for _ in 0..20 {
            handled(&runtime, &same)?;
        }
        let redelivery = percentiles(
            (0..reps)
                .map(|_| {
                    let started = Instant::now();
                    handled(&runtime, &same)?;
                    Ok(started.elapsed())
                })
                .collect::<anyhow::Result<_>>()?,
        )
        .0;
        ensure!(api.requests().len() == requests, "a redelivered transcription made a request");
        let changing = [event(&transcription, Some(texts[1].clone())), same];
        let update = percentiles(
            (0..updates)
                .map(|k| {
                    let started = Instant::now();
                    handled(&runtime, &changing[k % 2])?;
                    Ok(started.elapsed())
                })
                .collect::<anyhow::Result<_>>()?,
        )
        .0;
        let writes = api.requests()[requests..].iter().filter(|r| r.operation_id == Some("update-note")).count();
        ensure!(writes == updates && api.requests().len() == requests + updates, "a changed transcription made other than one update-note");
        figures.push((kb, redelivery, update));
    }
    let (_, base, _) = figures[0];
    let (_, at12, _) = figures[3];
    let (_, at24, _) = figures[4];
    // At most linear: the 24 KB event within 10% of the line through 0 and 12 KB.
    let linear = base.as_secs_f64() + 2.0 * (at12.as_secs_f64() - base.as_secs_f64()).max(0.0);
    let per_kb = (at24.as_secs_f64() - base.as_secs_f64()) / 24.0;
    results.row("Per event against the transcript's size (voicemail transcription, `transcription_text` of 0 / 1 / 4 / 12 / 24 KB): redelivery (no request) p50; changed each time (one update-note) p50",
        format!(
            "{} ({:.1} µs per KB redelivered)",
            figures.iter().map(|(kb, r, u)| format!("{kb} KB: {} / {}", micros(*r), micros(*u))).collect::<Vec<_>>().join("; "),
            per_kb * 1e6
        ),
        "at most linear: 24 KB redelivered ≤ 1.10× the line through 0 and 12 KB",
        at_most(at24.as_secs_f64(), linear * 1.10),
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// 5b. A contact's notes, read back by a host without durable state
// ------------------------------------------------------------------------------------------------

/// A new call from a known contact with 10, 100 and 1,000 notes, on a host without durable
/// state (a key-value store that does not outlive the event, as under `wasmtime serve`): the plugin searches the contact (`get-duplicate-contact`), lists its notes
/// (`get-all-notes`, which HighLevel does not page) to find the call's own, and creates it.
/// The mock forgets the created note after each event, so the count stays put.
fn notes_read_back(plugin: &CompiledPlugin, options: BenchOptions, results: &mut Results) -> anyhow::Result<()> {
    let counts = [10usize, 100, 1_000];
    let reps = if options.quick { 10 } else { 200 };
    let template: Value = serde_json::from_str(crate::demo::HANGUP)?;
    let api = mock()?;
    let stateless = settings_for(&api).runtime_options(false)?;
    let runtime = Runtime::new(plugin, stateless.clone(), KeyValueStore::new())?;
    // The caller's first call makes the contact and a note as the plugin writes them: the
    // seeded notes are copies of it, each for a call of its own.
    let first = hangup(&template, 1, 0);
    handled(&runtime, &webhook(first.to_string().into_bytes()))?;
    let (contacts, notes) = (api.contacts(), api.notes());
    ensure!(contacts.len() == 1 && notes.len() == 1, "the first call made {} contacts and {} notes", contacts.len(), notes.len());
    let contact = contacts[0]["id"].as_str().context("the contact's id")?.to_string();
    let body = notes[0]["body"].as_str().context("the note's body")?.to_string();
    let call_id = first["call_id"].to_string();
    ensure!(body.contains(&call_id), "the note does not name its call: {body}");
    let mut figures = Vec::new();
    for &count in &counts {
        api.truncate_notes(0);
        for n in 0..count {
            api.seed_note(&contact, &body.replace(&call_id, &(7_000_000_000_000_000u64 + n as u64).to_string())).context("seeding a note")?;
        }
        let mut sample = Vec::with_capacity(reps);
        let mut read = 0usize;
        for rep in 0..reps + 3 {
            let event = webhook(hangup(&template, 1, 1 + rep).to_string().into_bytes());
            let requests = api.requests().len();
            // A store that does not outlive the event, as under `wasmtime serve`.
            let runtime = runtime.with_options(stateless.clone(), KeyValueStore::new());
            let started = Instant::now();
            handled(&runtime, &event)?;
            let elapsed = started.elapsed();
            let made: Vec<_> = api.requests()[requests..].iter().map(|r| r.operation_id.unwrap_or("?")).collect();
            ensure!(made == ["get-duplicate-contact", "get-all-notes", "create-note"], "a new call from a known contact made {made:?}");
            ensure!(api.notes().len() == count + 1, "the contact has {} notes, not {}", api.notes().len(), count + 1);
            api.truncate_notes(count);
            let listed =
                runtime.http_log().take().into_iter().find(|e| e.url.ends_with("/notes") && e.method == "GET").context("no get-all-notes in the log")?;
            read = listed
                .response_headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.parse().ok())
                .context("get-all-notes' answer has no content-length")?;
            // The first three warm up.
            if rep >= 3 {
                sample.push(elapsed);
            }
        }
        figures.push((count, percentiles(sample), read));
    }
    let (_, (at10, _), _) = figures[0];
    let (_, (at100, _), _) = figures[1];
    let (_, (at1000, _), read1000) = figures[2];
    let slope = (at100.as_secs_f64() - at10.as_secs_f64()).max(0.0) / 90.0;
    let linear = at10.as_secs_f64() + slope * 990.0;
    let per_note = read1000 as f64 / 1000.0;
    let cap = 8 << 20;
    results.row("New call from a known contact with 10 / 100 / 1,000 notes, host without durable state (search, get-all-notes, create-note) p50 / p99, and the bytes get-all-notes read",
        format!(
            "{} ({:.1} µs per note read, from 100 to 1,000)",
            figures.iter().map(|(n, (p50, p99), read)| format!("{} notes: {} / {}, {}", count(*n), millis(*p50), millis(*p99), kib(*read as f64))).collect::<Vec<_>>().join("; "),
            (at1000.as_secs_f64() - at100.as_secs_f64()) / 900.0 * 1e6
        ),
        &format!(
            "linear in the notes (1,000 within 1.25× the line through 10 and 100); bounded by the plugin's 8 MiB response cap, as HighLevel does not page get-all-notes (≈ {} notes of {:.0} bytes)",
            count((cap as f64 / per_note) as usize),
            per_note
        ),
        at_most(at1000.as_secs_f64(), linear * 1.25),
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// 6. Time to HighLevel
// ------------------------------------------------------------------------------------------------

/// Requests a new caller's hangup needs: get-duplicate-contact, create-contact, create-note.
const ROUND_TRIPS: u32 = 3;

/// Hangups from new callers posted to `serve` by 50 senders at once, paced to half the rate the
/// limit allows (100 requests per `burst_window`, standing for HighLevel's 10 s: 3 requests an
/// event), against a mock that answers every request after 50 ms and enforces the same limit;
/// each timed from its post to the mock's answer to its `create-note`.
fn time_to_highlevel(plugin: &CompiledPlugin, options: BenchOptions, results: &mut Results) -> anyhow::Result<()> {
    const LIMIT: u32 = 100;
    const SENDERS: usize = 50;
    const WORKERS: usize = 16;
    const LATENCY: Duration = Duration::from_millis(50);
    let per_sender = if options.quick { 1 } else { 10 };
    let events = SENDERS * per_sender;
    let (api, server) = limited_serve(plugin, "bench-time-to-highlevel", LIMIT, options.burst_window, LATENCY, WORKERS)?;
    // Half the limit's rate: 100 requests a window is 33 events a window.
    let rate = f64::from(LIMIT) / f64::from(ROUND_TRIPS) / options.burst_window.as_secs_f64() * 0.5;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let template: Value = serde_json::from_str(crate::demo::HANGUP)?;
    let url = format!("{}/webhooks/dialpad", server.webhook_url());
    let posted: Mutex<HashMap<String, Instant>> = Mutex::new(HashMap::new());
    let started = Instant::now() + Duration::from_millis(50);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let (url, posted, template) = (&url, &posted, &template);
                scope.spawn(move || -> anyhow::Result<()> {
                    for k in 0..per_sender {
                        // Event `n` goes at `n` gaps from the start: the senders take turns.
                        let n = k * SENDERS + sender;
                        let body = hangup(template, 5_000 + n, 0).to_string().into_bytes();
                        if let Some(wait) = (started + gap * n as u32).checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let at = Instant::now();
                        posted.lock().unwrap().insert(phone(5_000 + n), at);
                        let (status, answer) = loopback_request("POST", url, &body)?;
                        ensure!(status == 200, "serve answered {status}: {answer}");
                    }
                    Ok(())
                })
            })
            .collect();
        for sender in senders {
            sender.join().map_err(|_| anyhow::anyhow!("a sender panicked"))??;
        }
        Ok(())
    })?;
    if !server.wait_idle(Duration::from_secs(600)) {
        bail!("the deliveries did not drain");
    }
    let drained = started.elapsed();
    let requests = api.requests();
    let phones: HashMap<String, String> =
        api.contacts().iter().filter_map(|c| Some((c["id"].as_str()?.to_string(), c["phone"].as_str()?.to_string()))).collect();
    let posted = posted.into_inner().unwrap();
    let mut sample = Vec::with_capacity(events);
    for request in requests.iter().filter(|r| r.operation_id == Some("create-note") && (200..300).contains(&r.status)) {
        let contact = request.path_and_query.trim_start_matches("/contacts/").split('/').next().unwrap_or_default();
        let phone = phones.get(contact).with_context(|| format!("a note on an unknown contact {contact}"))?;
        let at = posted.get(phone).with_context(|| format!("a note for {phone}, which no sender posted"))?;
        sample.push(request.at.duration_since(*at));
    }
    ensure!(sample.len() == events, "{} of {events} events wrote their note", sample.len());
    ensure!(requests.len() == events * ROUND_TRIPS as usize, "{} requests for {events} new callers", requests.len());
    let rate_limited = api.rate_limited_count();
    let (p50, p99) = percentiles(sample);
    let needed = LATENCY * ROUND_TRIPS;
    let (p50_goal, p99_goal) = (needed + Duration::from_millis(20), needed * 2);
    let verdict = match (p50 <= p50_goal, p99 <= p99_goal) {
        (true, true) => "met".to_string(),
        (p50_met, p99_met) => format!(
            "missed: {}",
            [
                (!p50_met).then(|| format!("p50 {:.2}× its goal", p50.as_secs_f64() / p50_goal.as_secs_f64())),
                (!p99_met).then(|| format!("p99 {:.2}× its goal", p99.as_secs_f64() / p99_goal.as_secs_f64()))
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        ),
    };
    results.row(&format!(
            "Time to HighLevel: {} new callers' hangups from {SENDERS} concurrent senders through `serve` ({WORKERS} workers), from the post to the mock's answer to the create-note, 50 ms per API request, {:.0} events/s (half of 100 requests / {})",
            count(events),
            rate,
            millis(options.burst_window)
        ),
        format!("{} / {} (the plan's round trips: {}; {rate_limited} 429s; drained in {})", millis(p50), millis(p99), millis(needed), millis(drained)),
        "p50 ≤ the round trips + 20 ms (170 ms), p99 ≤ 2× them (300 ms)",
        verdict,
    );
    server.shutdown();
    Ok(())
}
