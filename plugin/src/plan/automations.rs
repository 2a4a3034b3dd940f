//! The rules' steps (`config::rules` says when a rule fires): follow-up tasks, tags, and the
//! recap's action items, appended after the note's steps on the note's contact.

use super::activity::CallActivity;
use super::vocabulary::{Capture, KnownState, Plan, Ref, Step, When};
use crate::config::rules::{Facts, ACTION_ITEMS};
use crate::config::Config;
use crate::inbound::dialpad::SmsEvent;
use crate::inbound::time;
use crate::report::Outcome;
use serde_json::json;

/// What a task's placeholders and due date are filled from.
pub struct TaskContext<'a> {
    pub contact_name: Option<&'a str>,
    pub call: Option<&'a CallActivity>,
    pub sms: Option<&'a SmsEvent>,
    pub event_ms: i64,
    /// The call's or message's note marker, also the last line of its rules' tasks, so the
    /// same rule's task on two calls of one contact differ, and a retry recognises its own.
    pub marker: String,
}

/// A rule that newly fired, with the steps it takes (their contact is set by the caller).
pub struct Automation {
    pub name: String,
    steps: Vec<Step>,
}

/// The rules that match the event and have not fired for it yet, in configuration order:
/// tag rules, follow-up rules, then recap action items.
pub fn automations(facts: &Facts, config: &Config, done: &[String], context: &TaskContext) -> Vec<Automation> {
    let new = |name: &String| !done.contains(name);
    let mut fired = Vec::new();
    for rule in config.tag_rules.iter().filter(|r| new(&r.name) && r.when.matches(facts)) {
        let mut steps = Vec::new();
        if !rule.add.is_empty() {
            steps.push(Step { body: Some(json!({ "tags": rule.add })), ..Step::new("add-tags") });
        }
        if !rule.remove.is_empty() {
            steps.push(Step { body: Some(json!({ "tags": rule.remove })), ..Step::new("remove-tags") });
        }
        fired.push(Automation { name: rule.name.clone(), steps });
    }
    for rule in config.follow_up_rules.iter().filter(|r| new(&r.name) && r.when.matches(facts)) {
        let value = |n: &str| task_value(n, &rule.name, context.contact_name, context.call, context.sms);
        let mut body = json!({
            "title": rule.task.title.render(&value),
            "dueDate": rule.task.due.at(context.event_ms, &config.time_zone),
            "completed": false,
        });
        body["body"] = json!(match &rule.task.body {
            Some(text) => format!("{}\n\n{}", text.render(&value), context.marker),
            None => context.marker.clone(),
        });
        if let Some(user) = &rule.task.assigned_to {
            body["assignedTo"] = json!(user);
        }
        fired.push(Automation { name: rule.name.clone(), steps: vec![Step { body: Some(body), ..Step::new("create-task") }] });
    }
    let items = context.call.map(|a| a.recap_action_items.as_slice()).unwrap_or_default();
    if config.action_items.create_tasks && !items.is_empty() && new(&ACTION_ITEMS.to_string()) {
        let call_id = context.call.map(|a| a.call_id.as_str()).unwrap_or_default();
        let steps = items
            .iter()
            .map(|item| {
                let mut body = json!({
                    "title": item,
                    "body": format!("Action item from the Dialpad Ai recap of call {call_id}."),
                    "dueDate": config.action_items.due.at(context.event_ms, &config.time_zone),
                    "completed": false,
                });
                if let Some(user) = &config.action_items.assigned_to {
                    body["assignedTo"] = json!(user);
                }
                Step { body: Some(body), ..Step::new("create-task") }
            })
            .collect();
        fired.push(Automation { name: ACTION_ITEMS.to_string(), steps });
    }
    fired
}

/// Appends the rules' steps after the note's, on the note's contact. A failed step leaves its
/// rule unrecorded, so the next event of the call retries it. Without a durable record, or
/// after a delivery whose write may have landed unseen, the contact's tasks are read first and
/// a task already there is not made again; tags are idempotent.
pub fn add_automations(plan: &mut Plan, fired: Vec<Automation>, config: &Config, known: &KnownState) {
    if matches!(plan.outcome, Outcome::Skipped(_)) || fired.is_empty() {
        return;
    }
    // The note may already say everything (it was written, then a rule's step failed): the
    // rules still to do run on the recorded contact.
    let contact = plan.steps.last().and_then(|s| s.contact.clone()).or_else(|| known.record.as_ref().map(|r| Ref::Known(r.contact_id.clone())));
    let Some(contact) = contact else { return };
    plan.outcome = Outcome::Synced;
    let names: Vec<&str> = fired.iter().map(|a| a.name.as_str()).collect();
    if !names.is_empty() {
        plan.summary = format!("{}; rules: {}", plan.summary, names.join(", "));
    }
    let verify = !config.durable_state || known.uncertain;
    let makes_tasks = fired.iter().flat_map(|a| &a.steps).any(|s| s.operation.id == "create-task");
    if verify && makes_tasks {
        plan.steps.push(Step { contact: Some(contact.clone()), when: When::ContactExisted, capture: Capture::Tasks, ..Step::new("get-all-tasks") });
    }
    for automation in fired {
        for step in automation.steps {
            let when = match (step.operation.id, config.durable_state, verify) {
                ("create-task", _, true) => When::NoSameItem,
                (_, false, _) => When::AutomationNew,
                _ => When::Always,
            };
            plan.steps.push(Step { contact: Some(contact.clone()), when, automation: Some(automation.name.clone()), ..step });
        }
    }
}

/// What a call tells the rules.
pub fn facts_of_call(a: &CallActivity) -> Facts<'_> {
    let recap = [a.recap_summary.clone(), a.recap_outcome.clone()].into_iter().flatten().chain(a.recap_action_items.iter().cloned()).collect::<Vec<_>>();
    Facts {
        sms: false,
        outcome: a.result.as_str(),
        direction: a.direction,
        talk_seconds: a.talk_ms.map(|ms| (ms.max(0) as u64).saturating_add(500) / 1000),
        transcript: a.transcript.as_deref(),
        recap: (!recap.is_empty()).then(|| recap.join("\n")),
        sms_text: None,
        labels: &a.labels,
    }
}

/// What a message tells the rules.
pub fn facts_of_sms(m: &SmsEvent) -> Facts<'_> {
    Facts { sms: true, direction: m.direction, sms_text: m.text.as_deref(), ..Facts::default() }
}

/// The value of a task placeholder for a call or a message.
pub fn task_value(name: &str, rule: &str, contact_name: Option<&str>, call: Option<&CallActivity>, sms: Option<&SmsEvent>) -> Option<String> {
    let phone = call.map(|a| a.external_phone.clone()).or_else(|| sms.and_then(|m| m.external_phone.as_ref().map(|p| p.as_str().to_string())));
    match name {
        "rule" => Some(rule.to_string()),
        "contact_name" => contact_name.map(str::to_string).or(phone),
        "phone" => phone,
        "direction" => call.and_then(|a| a.direction).or(sms.and_then(|m| m.direction)).map(|d| d.as_str().to_string()),
        "outcome" => call.map(|a| a.result.as_str().to_string()),
        "duration" => call.and_then(|a| a.talk_ms).map(time::duration),
        "agent" => call.and_then(|a| a.agent_name.clone()).or_else(|| sms.and_then(|m| m.agent.name.clone())),
        "call_id" => call.map(|a| a.call_id.clone()),
        "recap_summary" => call.and_then(|a| a.recap_summary.clone()),
        "sms_text" => sms.and_then(|m| m.text.clone()),
        _ => None,
    }
}
