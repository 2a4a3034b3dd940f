//! `demo`: the bundled Dialpad events through the plugin, against the embedded mock APIs of
//! HighLevel and Dialpad.

mod tally;
mod workflows;

use crate::options::EMBEDDED_PLUGIN;
use anyhow::bail;
use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::views::Subject;
use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::{CompiledPlugin, Runtime};
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::report;
use dialpad_ghl_host::settings::Settings;
use host_test::demo;
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
use host_test::ghl_mock::{MockOptions, MockServer};
use std::time::Instant;
use tally::Tally;

/// Run the bundled Dialpad events through the plugin against the embedded mock APIs of
/// HighLevel and Dialpad, and show what HighLevel then holds.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    let mock = MockServer::start(MockOptions { token: Some(demo::TOKEN.into()), ..MockOptions::default() })?;
    // Kenji is already a HighLevel contact: his call is attached to him, not duplicated.
    mock.seed_contact(serde_json::json!({
        "locationId": "demo-location", "firstName": "Kenji", "lastName": "Watanabe",
        "email": "kenji.watanabe@example.net", "phone": "+15035550139", "source": "HighLevel", "tags": ["cold-lead"]
    }));
    // The Dialpad agents of the bundled events are HighLevel users too: their tasks are theirs.
    for (id, first, last, email) in demo::HIGHLEVEL_USERS {
        mock.add_user(id, first, last, email);
    }
    let dialpad_key = DialpadMockOptions::default().api_key;
    let dialpad = DialpadMock::start(DialpadMockOptions::default())?;
    println!("Dialpad ⇄ HighLevel sync demo");
    println!("  mock HighLevel API: {} (requires its bearer token; seeded with 1 existing contact and 2 users)", mock.base_url());
    println!("  mock Dialpad API: {} (requires its API key; Maya Patel and Jordan Lee are its users)", dialpad.base_url());

    let started = Instant::now();
    let plugin = CompiledPlugin::from_bytes(EMBEDDED_PLUGIN)?;
    println!("  plugin: embedded in this binary ({} KB), compiled in {} ms", EMBEDDED_PLUGIN.len() / 1024, started.elapsed().as_millis());

    let serde_json::Value::Object(config) = serde_json::from_str(demo::CONFIG)? else { bail!("demo config is not an object") };
    let mut settings = Settings { plugin_config: config, ..Settings::default() };
    settings.set("api_base", mock.base_url());
    settings.token = Some(Secret::new(demo::TOKEN));
    settings.set("dialpad_api_base", dialpad.base_url());
    settings.dialpad_key = Some(Secret::new(dialpad_key.clone()));
    let kv = KeyValueStore::new();
    let runtime = Runtime::new(&plugin, settings.runtime_options(true)?, kv.clone())?;
    let meta = runtime.meta()?;
    println!("  plugin version {}, WIT API {}", meta.plugin_version, meta.api_version);
    println!("  configuration: host-test/demo-events/demo-config.json (time zone America/Chicago; 3 follow-up rules, 4 tag rules, field mapping with a custom field;\n    call log in Conversations, screen pop, task owners, two-way contacts)\n");

    let mut tally = Tally::default();
    println!("Dialpad events (unsigned webhook):");
    for (name, body) in demo::EVENTS {
        let result = runtime.handle(&Inbound::new(Source::DialpadWebhook, demo::as_delivered_now(body)))?.result;
        tally.add(&result);
        println!("  {}", report::human_line(name, &result));
    }

    println!("\nTask and note events from the automation platform (HS256 JWTs signed with its platform_secret):");
    for (name, event) in demo::PLATFORM_EVENTS {
        let result = runtime.handle(&Inbound::new(Source::Platform, demo::signed_platform_event(event)))?.result;
        tally.add(&result);
        println!("  {}", report::human_line(name, &result));
    }

    // Priya has a meeting booked in HighLevel: the view shows it with her tasks and notes.
    if let Some(priya) = mock.contacts().iter().find(|c| c["phone"] == "+13125550187").and_then(|c| c["id"].as_str().map(str::to_string)) {
        mock.seed_appointment(&priya, serde_json::json!({"title": "Annual plan walkthrough", "startTime": "2026-03-17T15:00:00Z"}));
    }
    println!("\nScreen pop (views.get), as when a call rings:");
    let show = |label: &str, subject: &Subject| -> anyhow::Result<()> {
        match runtime.view(subject)? {
            Ok(v) => {
                let count = |json: &str| serde_json::from_str::<serde_json::Value>(json).ok().and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0);
                let reads: Vec<String> =
                    v.operations.iter().map(|o| format!("{} {}", o.operation_id, o.status.map(|s| s.to_string()).unwrap_or_default())).collect();
                println!(
                    "  ✓ {label}: contact {}: {} tasks, {} notes, {} appointments; {}",
                    v.contact_id,
                    count(&v.tasks),
                    count(&v.notes),
                    count(&v.appointments),
                    if v.from_cache {
                        format!("from cache ({} s old), 0 requests", v.age_seconds)
                    } else {
                        format!("{} requests [{}]", v.operations.len(), reads.join(", "))
                    },
                );
            }
            Err(e) => println!("  ✗ {label}: {}", report::error_message(&e)),
        }
        Ok(())
    };
    // The mock holds reads until four are waiting at once (or 3 s pass): a plugin that read
    // one at a time would wait here, and the maximum in flight would say 1.
    mock.reset_in_flight_max();
    mock.hold_reads_until(4);
    show("phone (312) 555-0187", &Subject::Phone("(312) 555-0187".into()))?;
    mock.hold_reads_until(0);
    println!("    the four reads went out together: {} requests were in flight at once on the mock", mock.in_flight_max());
    show("phone (312) 555-0187 again", &Subject::Phone("(312) 555-0187".into()))?;
    let result = runtime.handle(&Inbound::new(Source::Platform, demo::signed_platform_event(demo::PRIYA_NOTE)))?.result;
    tally.add(&result);
    println!("  {}", report::human_line("platform_note_priya.json (a write: drops the cached view)", &result));
    show("phone (312) 555-0187 after the write", &Subject::Phone("(312) 555-0187".into()))?;
    show("Dialpad contact 5908860431927296", &Subject::DialpadContact("5908860431927296".into()))?;
    println!();
    let result = runtime.handle(&Inbound::new(Source::DialpadWebhook, demo::CONTACT_DELETED.to_vec()))?.result;
    tally.add(&result);
    println!("  {}", report::human_line("contact_deleted.json (on_contact_deleted: tag)", &result));

    // The same hangup again, now as Dialpad sends it with a webhook secret: a signed JWT.
    let mut signed_settings = settings.clone();
    signed_settings.set("webhook_secret", demo::WEBHOOK_SECRET);
    let signed = Runtime::new(&plugin, signed_settings.runtime_options(true)?, kv.clone())?;
    let mut wrong_secret_settings = settings.clone();
    wrong_secret_settings.set("webhook_secret", "not-the-secret");
    let wrong = Runtime::new(&plugin, wrong_secret_settings.runtime_options(true)?, kv)?;
    println!("\nDialpad events (signed webhook, HS256):");
    for (label, rt, body) in [
        ("call_inbound_hangup_completed.jwt", &signed, demo::SIGNED_EVENT),
        ("call_inbound_hangup_completed.jwt, wrong secret", &wrong, demo::SIGNED_EVENT),
        ("call_inbound_hangup_completed.json, unsigned while a secret is set", &signed, demo::EVENTS[2].1),
    ] {
        let result = rt.handle(&Inbound::new(Source::DialpadWebhook, body.to_vec()))?.result;
        tally.add(&result);
        println!("  {}", report::human_line(label, &result));
    }

    workflows::Workflows { runtime: &runtime, highlevel: &mock, dialpad: &dialpad, tally: &mut tally }.run()?;

    println!("\nHighLevel now holds:");
    let contacts = mock.contacts();
    let (notes, tasks, users) = (mock.notes(), mock.tasks(), mock.users());
    for c in &contacts {
        let id = c["id"].as_str().unwrap_or("?");
        let name = [c["firstName"].as_str(), c["lastName"].as_str()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let name = if name.is_empty() { "(no name)".to_string() } else { name };
        let tags: Vec<&str> = c["tags"].as_array().map(|t| t.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
        println!(
            "  contact {id}  {}  {name}  email={}  source={}",
            c["phone"].as_str().unwrap_or("-"),
            c["email"].as_str().unwrap_or("-"),
            c["source"].as_str().unwrap_or("-")
        );
        if !tags.is_empty() {
            println!("    tags: {}", tags.join(", "));
        }
        if let Some(fields) = c["customFields"].as_array().filter(|f| !f.is_empty()) {
            println!("    custom fields: {}", serde_json::Value::Array(fields.clone()));
        }
        for t in tasks.iter().filter(|t| t["contactId"].as_str() == Some(id)) {
            let done = if t["completed"].as_bool() == Some(true) { "done" } else { "open" };
            let owner = users.iter().find(|u| t["assignedTo"].as_str().is_some_and(|id| u["id"] == id)).and_then(|u| u["name"].as_str());
            println!(
                "    task {} [{done}] due {}: {}{}",
                t["id"].as_str().unwrap_or("?"),
                t["dueDate"].as_str().unwrap_or("-"),
                t["title"].as_str().unwrap_or(""),
                owner.map(|o| format!(" (assigned to {o})")).unwrap_or_default()
            );
        }
        for n in notes.iter().filter(|n| n["contactId"].as_str() == Some(id)) {
            println!("    note {}:", n["id"].as_str().unwrap_or("?"));
            for line in n["body"].as_str().unwrap_or("").lines() {
                println!("      | {line}");
            }
        }
    }
    let requests = mock.requests();
    let dialpad_requests = dialpad.requests();
    let dialpad_kinds: Vec<String> =
        [("screenpop", "screen pop"), ("recordingsharelink", "share link"), ("/api/v2/contacts", "contact"), ("/api/v2/call", "call")]
            .iter()
            .map(|(path, name)| (name, dialpad_requests.iter().filter(|r| r.path_and_query.contains(path)).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{n} {name}{}", if n == 1 { "" } else { "s" }))
            .collect();
    let log = runtime.http_log().entries();
    let leaked = log.iter().chain(signed.http_log().entries().iter()).any(|e| {
        let line = serde_json::to_string(e).unwrap_or_default();
        line.contains(demo::TOKEN) || line.contains(&dialpad_key)
    });
    let [synced, unchanged, skipped, failed] = tally.0;
    println!(
        "\nSummary: {} events: {synced} synced, {unchanged} unchanged, {skipped} skipped, {failed} failed (as expected: 2 refused signatures); {} HighLevel API requests, {} Dialpad API requests ({}); {} contacts, {} notes, {} tasks, {} call entries; tokens in host logs: {}",
        synced + unchanged + skipped + failed,
        requests.len(),
        dialpad_requests.len(),
        dialpad_kinds.join(", "),
        contacts.len(),
        notes.len(),
        tasks.len(),
        mock.call_entries().len(),
        if leaked { "FOUND" } else { "never" }
    );
    if leaked {
        bail!("a token appeared in the host's request log");
    }
    Ok(())
}
