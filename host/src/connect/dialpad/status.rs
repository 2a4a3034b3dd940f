//! The `check` command's view of a registration: whether the webhook still exists and delivers
//! to our URL, signed, and whether each wanted subscription still exists on it, enabled and
//! covering what the sync needs, with a plain "what to do" for each problem.

use super::{DialpadConnection, Events, Registration, SubscriptionKind, Wanted, CONTACT_TYPE, SMS_DIRECTION};
use crate::connect::ConnectError;
use std::collections::BTreeSet;
use std::fmt;

/// Registering again repairs every problem found here without duplicating anything, so that is
/// the usual advice.
const CONNECT_AGAIN: &str = "connect Dialpad again: registering reuses what is there and repairs this";

/// One part of a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Webhook,
    Subscription(SubscriptionKind),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Webhook => f.write_str("webhook"),
            Part::Subscription(kind) => write!(f, "{} subscription", kind.name()),
        }
    }
}

/// Something wrong with one part (which one: its [`PartStatus`]), and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub todo: String,
}

/// One part as found in Dialpad.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartStatus {
    pub part: Part,
    /// Its id in the registration (`None`: a wanted subscription that was never registered).
    pub id: Option<String>,
    /// Whether Dialpad still has it.
    pub exists: bool,
    /// Empty when the part is as the sync needs it.
    pub problems: Vec<Problem>,
}

/// The webhook, then each wanted subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationStatus {
    pub parts: Vec<PartStatus>,
}

impl RegistrationStatus {
    pub fn is_healthy(&self) -> bool {
        self.parts.iter().all(|p| p.problems.is_empty())
    }

    pub fn part(&self, part: Part) -> Option<&PartStatus> {
        self.parts.iter().find(|p| p.part == part)
    }

    /// Every problem, with the part it is about.
    pub fn problems(&self) -> impl Iterator<Item = (Part, &Problem)> {
        self.parts.iter().flat_map(|p| p.problems.iter().map(move |problem| (p.part, problem)))
    }
}

/// One line a part: `webhook 123: ok`, or its problems with what to do.
impl fmt::Display for RegistrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            write!(f, "{} {}: ", part.part, part.id.as_deref().unwrap_or("(none)"))?;
            if part.problems.is_empty() {
                writeln!(f, "ok")?;
            }
            for (i, problem) in part.problems.iter().enumerate() {
                let sep = if i + 1 < part.problems.len() { "; " } else { "\n" };
                write!(f, "{} ({}){sep}", problem.what, problem.todo)?;
            }
        }
        Ok(())
    }
}

fn problem(what: String, todo: &str) -> Problem {
    Problem { what, todo: todo.to_string() }
}

impl DialpadConnection {
    /// Reads back each part of `registration` and checks it against `wanted` (what the sync
    /// needs now, which may have changed since it was registered).
    pub async fn status(&self, registration: &Registration, wanted: &Wanted) -> Result<RegistrationStatus, ConnectError> {
        let mut parts = Vec::new();
        let webhook = self.webhook(&registration.webhook_id).await?;
        let mut problems = Vec::new();
        match &webhook {
            None => problems.push(problem("it no longer exists, so Dialpad delivers nothing".into(), CONNECT_AGAIN)),
            Some(webhook) => {
                if webhook.hook_url != wanted.hook_url {
                    problems.push(problem(format!("it delivers to {}, not to {}", webhook.hook_url, wanted.hook_url), CONNECT_AGAIN));
                }
                if webhook.secret.is_none() {
                    problems.push(problem(
                        "it has no secret, so deliveries are unsigned JSON, which the sync refuses".into(),
                        "connect Dialpad again: registering sets the webhook's secret",
                    ));
                }
            }
        }
        parts.push(PartStatus { part: Part::Webhook, id: Some(registration.webhook_id.clone()), exists: webhook.is_some(), problems });

        for events in wanted.events() {
            let kind = events.kind();
            let part = Part::Subscription(kind);
            let Some(id) = registration.subscription(kind) else {
                let what = format!("no {} subscription is registered, so these events never arrive", kind.name());
                parts.push(PartStatus { part, id: None, exists: false, problems: vec![problem(what, CONNECT_AGAIN)] });
                continue;
            };
            let found = self.subscription(kind, id).await?;
            let problems = match &found {
                None => vec![problem("it no longer exists (deleted in Dialpad?), so these events never arrive".into(), CONNECT_AGAIN)],
                Some(subscription) => {
                    let mut problems = Vec::new();
                    if subscription.webhook_id.as_deref() != Some(registration.webhook_id.as_str()) {
                        let to = subscription.webhook_id.as_deref().map_or("no webhook".to_string(), |w| format!("webhook {w}"));
                        problems.push(problem(format!("it delivers to {to}, not to webhook {}", registration.webhook_id), CONNECT_AGAIN));
                    }
                    if !subscription.enabled {
                        problems.push(problem("it is disabled".into(), "enable it in Dialpad, or connect Dialpad again, which enables it"));
                    }
                    if let Some(target) = &subscription.target {
                        problems.push(problem(format!("it covers only {target}, not the whole company"), CONNECT_AGAIN));
                    }
                    match &events {
                        Events::Calls(states) if !subscription.call_states.iter().any(|s| s == "all") => {
                            let has: BTreeSet<&str> = subscription.call_states.iter().map(String::as_str).collect();
                            let missing: Vec<&str> = states.iter().map(String::as_str).filter(|s| !has.contains(s)).collect();
                            if !missing.is_empty() {
                                problems.push(problem(format!("it lacks the call states {}", missing.join(", ")), CONNECT_AGAIN));
                            }
                        }
                        Events::Sms if subscription.direction.as_deref() != Some(SMS_DIRECTION) => {
                            let direction = subscription.direction.as_deref().unwrap_or("no");
                            problems.push(problem(format!("it delivers {direction} messages only, not both directions"), CONNECT_AGAIN));
                        }
                        Events::Contacts if subscription.contact_type.as_deref() != Some(CONTACT_TYPE) => {
                            let contact_type = subscription.contact_type.as_deref().unwrap_or("no");
                            problems.push(problem(format!("it delivers {contact_type} contacts, not {CONTACT_TYPE} ones"), CONNECT_AGAIN));
                        }
                        _ => {}
                    }
                    problems
                }
            };
            parts.push(PartStatus { part, id: Some(id.to_string()), exists: found.is_some(), problems });
        }
        Ok(RegistrationStatus { parts })
    }
}
