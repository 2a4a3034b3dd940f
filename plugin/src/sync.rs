//! One event end to end: verify → classify → normalize → load known state → plan → execute →
//! record → report. Generic over the store and the transport, so the whole pipeline runs in
//! native unit tests as it runs in the component.

use crate::config::Config;
use crate::dialpad::{self, Event};
use crate::error::{Outcome, PlanView, Report, SyncError};
use crate::execute::{execute, Transport};
use crate::plan::{self, NoteRecord, KnownState, Plan};
use crate::signature;

/// Key-value storage as the sync needs it (`wasi:keyvalue/store` in the component).
pub trait Store {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String>;
}

/// Plans one raw webhook body without sending or writing anything.
pub fn plan_body(body: &[u8], config: &Config, store: &mut dyn Store) -> Result<PlanView, SyncError> {
    let (event, known) = understand(body, config, store)?;
    Ok(plan::plan(&event, config, &known)?.view())
}

/// Handles one raw webhook body.
pub fn handle_body(body: &[u8], config: &Config, store: &mut dyn Store, transport: &mut dyn Transport) -> Result<Report, SyncError> {
    let (event, known) = understand(body, config, store)?;
    let plan = plan::plan(&event, config, &known)?;
    let mut report = Report {
        kind: plan.kind,
        event_key: plan.event_key.clone(),
        outcome: plan.outcome.clone(),
        summary: plan.summary.clone(),
        contact_id: known.record.as_ref().map(|c| c.contact_id.clone()).or(known.contact_id.clone()),
        note_id: known.record.as_ref().map(|c| c.note_id.clone()),
        operations: Vec::new(),
    };
    if plan.steps.is_empty() {
        // Nothing to write, but a leg may name legs not linked yet (its call is recorded).
        if known.record.is_some() {
            record_aliases(&plan, store)?;
        }
        return Ok(report);
    }
    let run = execute(&plan, config, transport);
    report.operations = run.operations.clone();
    report.contact_id = run.contact_id.clone().or(report.contact_id);
    report.note_id = run.note_id.clone().or(report.note_id);
    // Record what was learned even when a later step failed: a contact created before the
    // failure is linked, so the retry finds it instead of creating another.
    record(&plan, &run, store, run.error.is_none())?;
    if let Some(error) = run.error {
        return Err(error);
    }
    if let Some(contact) = &report.contact_id {
        report.summary = format!("{} → note {} on contact {contact}", report.summary, report.note_id.as_deref().unwrap_or("?"));
    }
    if report.operations.iter().all(|o| o.method == "GET") {
        report.outcome = Outcome::Unchanged;
    }
    Ok(report)
}

/// Runs one Contacts API operation as an action; returns the API's JSON response.
pub fn invoke_action(operation_id: &str, input: &str, config: &Config, transport: &mut dyn Transport) -> Result<String, SyncError> {
    let plan = crate::actions::plan_invocation(operation_id, input, config)?;
    let run = execute(&plan, config, transport);
    if let Some(error) = run.error {
        return Err(error);
    }
    Ok(crate::actions::normalize_response(run.response.unwrap_or(serde_json::Value::Null)).to_string())
}

/// Verify, parse, and read what the store knows about the event's caller and call.
fn understand(body: &[u8], config: &Config, store: &mut dyn Store) -> Result<(Event, KnownState), SyncError> {
    let json = signature::event_json(body, config.webhook_secret.as_deref())?;
    let event = dialpad::parse(&json, config.default_region)?;
    let mut known = KnownState::default();
    if let Event::Call(call) = &event {
        for id in call.all_call_ids() {
            if let Some(activity_id) = read_text(store, &plan::call_alias_key(&config.location_id, id))? {
                known.call_activity_id = Some(activity_id);
                break;
            }
        }
    }
    let (phone_key, record_key) = plan::state_keys(&event, config, known.call_activity_id.as_deref());
    if let Some(key) = phone_key {
        known.contact_id = read_text(store, &key)?;
    }
    if let Some(key) = record_key {
        if let Some(bytes) = store.get(&key).map_err(SyncError::Storage)? {
            known.record = NoteRecord::decode(&bytes);
        }
    }
    Ok((event, known))
}

fn record(plan: &Plan, run: &crate::execute::Execution, store: &mut dyn Store, complete: bool) -> Result<(), SyncError> {
    let storage = SyncError::Storage;
    if let (Some(key), Some(contact)) = (&plan.phone_key, &run.contact_id) {
        store.set(key, contact.as_bytes()).map_err(storage)?;
    }
    // What was written: a call merged into its found note, else the plan's own body.
    let activity = run.merged_activity.as_ref().or(plan.activity.as_ref()).cloned().unwrap_or_default();
    let written_body = run.merged_activity.as_ref().map(|a| a.note_body()).or_else(|| plan.note_body.clone());
    if let (true, Some(key), Some(contact), Some(note), Some(written_body)) = (complete, &plan.record_key, &run.contact_id, &run.note_id, written_body) {
        let record = NoteRecord { contact_id: contact.clone(), note_id: note.clone(), activity, written_body };
        store.set(key, &record.encode()).map_err(storage)?;
        record_aliases(plan, store)?;
    }
    Ok(())
}

/// Links each id a call leg names to the id its call is recorded under.
fn record_aliases(plan: &Plan, store: &mut dyn Store) -> Result<(), SyncError> {
    for (alias, activity_id) in &plan.aliases {
        store.set(alias, activity_id.as_bytes()).map_err(SyncError::Storage)?;
    }
    Ok(())
}

fn read_text(store: &mut dyn Store, key: &str) -> Result<Option<String>, SyncError> {
    Ok(store.get(key).map_err(SyncError::Storage)?.and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::{HttpRequest, HttpResponse, NoAnswer};
    use serde_json::json;
    use std::collections::{HashMap, VecDeque};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/dialpad/");

    #[derive(Default)]
    struct MemStore(HashMap<String, Vec<u8>>);
    impl Store for MemStore {
        fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(key).cloned())
        }
        fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
            self.0.insert(key.into(), value.into());
            Ok(())
        }
    }

    /// Answers from a script, records every request and every sleep.
    #[derive(Default)]
    struct Scripted {
        answers: VecDeque<Result<HttpResponse, NoAnswer>>,
        sent: Vec<(String, String)>,
        slept: Vec<u64>,
    }
    impl Scripted {
        fn answer(mut self, status: u16, body: serde_json::Value) -> Self {
            self.answers.push_back(Ok(HttpResponse { status, headers: vec![], body: body.to_string().into_bytes() }));
            self
        }
        fn answer_with(mut self, status: u16, headers: &[(&str, &str)]) -> Self {
            let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            self.answers.push_back(Ok(HttpResponse { status, headers, body: b"{}".to_vec() }));
            self
        }
    }
    impl Transport for Scripted {
        fn send(&mut self, r: &HttpRequest) -> Result<HttpResponse, NoAnswer> {
            self.sent.push((r.method.as_str().to_string(), r.url.clone()));
            self.answers.pop_front().expect("unexpected request")
        }
        fn sleep_ms(&mut self, ms: u64) {
            self.slept.push(ms);
        }
    }

    fn config() -> Config {
        Config::from_json(&json!({"location_id": "L", "api_base": "http://api.test", "durable_state": true}).to_string()).unwrap()
    }

    fn body(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    #[test]
    fn hangup_then_recap_then_redelivery() {
        let cfg = config();
        let mut store = MemStore::default();
        let mut api = Scripted::default()
            .answer(200, json!({"contact": null}))
            .answer(201, json!({"contact": {"id": "c1"}}))
            .answer(201, json!({"note": {"id": "n1"}}));
        let r = handle_body(&body("call_inbound_hangup_completed.json"), &cfg, &mut store, &mut api).unwrap();
        assert_eq!(r.outcome, Outcome::Synced);
        assert_eq!((r.contact_id.as_deref(), r.note_id.as_deref()), (Some("c1"), Some("n1")));
        assert_eq!(
            api.sent,
            vec![
                ("GET".into(), "http://api.test/contacts/search/duplicate?locationId=L&number=%2B13125550187".into()),
                ("POST".into(), "http://api.test/contacts/".into()),
                ("POST".into(), "http://api.test/contacts/c1/notes".into()),
            ]
        );

        let mut api = Scripted::default().answer(200, json!({"note": {"id": "n1"}}));
        let r = handle_body(&body("call_recap_summary.json"), &cfg, &mut store, &mut api).unwrap();
        assert_eq!(api.sent, vec![("PUT".into(), "http://api.test/contacts/c1/notes/n1".into())]);
        assert_eq!(r.outcome, Outcome::Synced);

        let mut api = Scripted::default();
        let r = handle_body(&body("call_recap_summary.json"), &cfg, &mut store, &mut api).unwrap();
        assert_eq!(r.outcome, Outcome::Unchanged);
        assert!(api.sent.is_empty());
    }

    #[test]
    fn duplicate_refusal_yields_the_existing_contact() {
        let mut api = Scripted::default()
            .answer(200, json!({"contact": null}))
            .answer(200, json!({"contact": null}))
            .answer(400, json!({"statusCode": 400, "message": "This location does not allow duplicated contacts.", "meta": {"contactId": "existing", "matchingField": "phone"}}))
            .answer(201, json!({"note": {"id": "n"}}));
        let r = handle_body(&body("call_inbound_missed.json"), &config(), &mut MemStore::default(), &mut api).unwrap();
        assert_eq!(r.contact_id.as_deref(), Some("existing"));
        assert_eq!(api.sent[3].1, "http://api.test/contacts/existing/notes");
    }

    #[test]
    fn rate_limits_are_waited_out_and_other_errors_reported() {
        let mut store = MemStore::default();
        let mut api = Scripted::default()
            .answer_with(429, &[("Retry-After", "2")])
            .answer(200, json!({"contact": {"id": "c"}}))
            .answer(422, json!({"statusCode": 422, "message": ["property foo should not exist"], "error": "Unprocessable Entity"}));
        let err = handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).unwrap_err();
        assert_eq!(api.slept, vec![2000]);
        let SyncError::Upstream(f) = err else { panic!("{err:?}") };
        assert_eq!((f.operation_id.as_str(), f.status, f.message.as_str()), ("create-note", 422, "property foo should not exist"));
        // The contact found before the failure is remembered: the retry needs no search.
        let mut api = Scripted::default().answer(201, json!({"note": {"id": "n"}}));
        handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).unwrap();
        assert_eq!(api.sent, vec![("POST".into(), "http://api.test/contacts/c/notes".into())]);
    }

    #[test]
    fn a_post_is_not_retried_after_no_answer() {
        let mut store = MemStore::default();
        store.set(&crate::plan::phone_key("L", "+12065550174"), b"c").unwrap();
        let mut api = Scripted::default();
        api.answers.push_back(Err(NoAnswer::Failed("connection reset".into())));
        let err = handle_body(&body("call_inbound_missed.json"), &config(), &mut store, &mut api).unwrap_err();
        assert!(matches!(err, SyncError::Transport(_)));
        assert_eq!(api.sent.len(), 1);
    }

    #[test]
    fn dry_run_plans_without_requests_or_writes() {
        let mut store = MemStore::default();
        let view = plan_body(&body("call_inbound_hangup_completed.json"), &config(), &mut store).unwrap();
        assert_eq!(view.operations.len(), 3);
        assert!(store.0.is_empty());
    }
}
