//! Owners: a call's note and follow-up tasks go to the HighLevel user whose e-mail is the
//! Dialpad agent's (HighLevel's call entries have no user field: the API takes none). The user
//! is found in the configured `by_email`, in the store (learned before), or by reading the
//! location's users once (`get-user-by-location`, `users.readonly`); else the fallback.

use super::vocabulary::{Capture, Plan, Step, OWNER_ID};
use crate::config::Config;
use crate::error::SyncError;
use crate::state::owner_key;
use contacts_api::Scope;
use serde_json::json;

/// Puts the agent's HighLevel user on the plan's new notes and tasks (a task a rule assigns
/// keeps its rule's user).
pub fn assign_owner(plan: &mut Plan, agent_email: Option<&str>, known_owner: Option<&str>, config: &Config) -> Result<(), SyncError> {
    let Some(owners) = &config.owners else { return Ok(()) };
    let creates = |s: &Step| matches!(s.operation.id, "create-task" | "create-note");
    if !plan.steps.iter().any(creates) {
        return Ok(());
    }
    let email = agent_email.map(str::to_lowercase);
    let listed = email.as_ref().and_then(|e| owners.by_email.iter().find(|(m, _)| m == e)).map(|(_, u)| u.clone());
    let owner = match (listed.or(known_owner.map(str::to_string)), &email) {
        (Some(user), _) => user,
        (None, Some(email)) if owners.lookup => {
            config.require_scopes(&[Scope::UsersReadonly])?;
            plan.steps.insert(
                0,
                Step {
                    query: vec![("locationId", config.location_id.clone())],
                    capture: Capture::UserWithEmail(email.clone(), owners.fallback_user_id.clone()),
                    ..Step::new("get-user-by-location")
                },
            );
            plan.records.push((owner_key(&config.location_id, email), OWNER_ID.to_string()));
            OWNER_ID.to_string()
        }
        (None, _) => match &owners.fallback_user_id {
            Some(user) => user.clone(),
            None => return Ok(()),
        },
    };
    for step in plan.steps.iter_mut().filter(|s| creates(s)) {
        let key = if step.operation.id == "create-task" { "assignedTo" } else { "userId" };
        if let Some(body) = step.body.as_mut().and_then(|b| b.as_object_mut()) {
            body.entry(key).or_insert_with(|| json!(owner));
        }
    }
    Ok(())
}
