//! No secret in any log: every flow of the product runs here with the host's logging at TRACE
//! level (wasmtime's and hyper's own logs included) captured in memory, and every captured
//! line, every entry of the host's request log, every report and error, every key-value record
//! and every dead letter is searched for the API token, the webhook secret, and the OAuth app's
//! client secret and every refresh token.

// The WIT-generated error is what the tests assert on; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::views::Subject;
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::storage::dead_letters::{deliver, DeadLetters};
use e2e_tests::*;
use host_test::ghl_mock::MockOptions;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Where the tracing subscriber writes: a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn neither_the_token_nor_the_webhook_secret_appears_in_any_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(move || writer.clone()).init();

    let signed = Harness::with(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }, |s| s.set("webhook_secret", FIXTURE_SECRET));
    let mut lines: Vec<String> = Vec::new();
    let mut record = |line: String| lines.push(line);

    // Every kind of webhook, signed; a refused one too.
    record(report::report_line("jwt", &signed.handle(&fixture("call_inbound_hangup_completed.jwt"))).to_string());
    record(report::report_line("unsigned", &signed.handle(&fixture("call_inbound_missed.json"))).to_string());
    let h = Harness::new();
    for name in DAY_OF_EVENTS {
        record(report::report_line(name, &h.handle_fixture(name)).to_string());
    }
    // Actions, views, platform events, a dry run, a configuration error.
    record(format!("{:?}", h.runtime.invoke("get-contacts", "{}").unwrap()));
    record(format!("{:?}", h.runtime.view(&Subject::Phone("+13125550187".into())).unwrap()));
    let event = json!({"id": "e1", "type": "task.created", "contact": {"phone": "+13125550187"}, "task": {"ref": "r", "title": "t", "due": "2026-03-12T09:00:00-05:00"}});
    record(report::report_line("platform", &h.runtime.handle_platform(&event.to_string()).unwrap()).to_string());
    record(report::plan_line("dry run", &h.runtime.plan_webhook(&fixture("call_inbound_missed.json")).unwrap()).to_string());
    record(format!("{:?}", h.runtime.validate_config(r#"{"token": 5}"#).unwrap()));
    // A refused request and a failure kept as a dead letter: errors carry no credential either.
    let dead_letters = DeadLetters::in_memory();
    let down = Harness::with(MockOptions { token: Some("another-token".into()), ..MockOptions::default() }, |_| {});
    record(
        report::report_line(
            "401",
            &deliver(&down.runtime, &dead_letters, "401", &Inbound::new(Source::DialpadWebhook, fixture("call_inbound_missed.json"))).unwrap().result,
        )
        .to_string(),
    );

    // OAuth: the first request gets a token, a revoked one is refreshed on its 401.
    let oauth = e2e_tests::oauth::harness(std::time::Duration::from_secs(86_399), std::time::Duration::from_secs(300));
    record(report::report_line("oauth", &oauth.runtime.handle_webhook(&fixture("call_inbound_missed.json")).unwrap()).to_string());
    oauth.mock.expire_access_tokens();
    record(report::report_line("oauth 401", &oauth.runtime.handle_webhook(&fixture("sms_inbound.json")).unwrap()).to_string());
    for exchange in oauth.runtime.http_log().entries() {
        record(serde_json::to_string(&exchange).unwrap());
    }
    let mut secrets: Vec<String> = vec![TOKEN.into(), FIXTURE_SECRET.into(), "another-token".into(), e2e_tests::oauth::CLIENT_SECRET.into()];
    secrets.extend(oauth.stored.lock().unwrap().iter().cloned());
    secrets.push(e2e_tests::oauth::FIRST_REFRESH_TOKEN.into());
    assert_eq!(oauth.tokens.refresh_count(), 2);

    for harness in [&signed, &h, &down] {
        for exchange in harness.runtime.http_log().entries() {
            record(serde_json::to_string(&exchange).unwrap());
        }
        for key in harness.kv.keys() {
            record(format!("{key}={}", String::from_utf8_lossy(&harness.kv.get(&key).unwrap_or_default())));
        }
    }
    for letter in dead_letters.list().unwrap() {
        record(format!("{} {} {}", letter.name, String::from_utf8_lossy(&letter.body), letter.error));
    }
    let traced = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    lines.extend(traced.lines().map(str::to_string));

    let leaks: Vec<&String> = lines.iter().filter(|l| secrets.iter().any(|s| l.contains(s.as_str()))).collect();
    e2e_tests::figure!(
        "secrets: {} log lines searched ({} from tracing at TRACE level): {} contain one of the {} secrets",
        lines.len(),
        traced.lines().count(),
        leaks.len(),
        secrets.len()
    );
    assert!(traced.lines().count() > 50, "tracing captured the host's logs");
    assert!(leaks.is_empty(), "{leaks:#?}");
}
