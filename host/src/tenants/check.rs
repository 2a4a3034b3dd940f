//! `check`: for each tenant, whether it can work, and what to do where it cannot — token valid,
//! scopes granted, which actions those scopes make available, location reachable, Dialpad's
//! webhook and subscriptions registered, last event seen. The CLI prints it; the setup page
//! shows it.

use super::lifecycle::{dialpad_connection, hook_url};
use super::registry::LiveTenant;
use super::store::TenantStore;
use crate::capability::keyvalue::KeyValueStore;
use crate::connect::dialpad::Wanted;
use crate::connect::http;
use crate::settings::Settings;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One line of a tenant's check.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CheckItem {
    pub name: &'static str,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do (empty when ok).
    pub fix: String,
}

/// A tenant's check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub tenant: String,
    pub location_id: String,
    pub items: Vec<CheckItem>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.items.iter().all(|i| i.ok)
    }
}

/// What a check needs beside the tenant.
pub struct CheckContext<'a> {
    pub store: &'a TenantStore,
    pub api_base: &'a str,
    pub dialpad_api_base: &'a str,
    pub public_url: Option<&'a str>,
    pub call_states: &'a [String],
    pub timeout: Duration,
    /// The newest delivery of the tenant: when, and how it ended.
    pub last_event: Option<(i64, String)>,
}

fn item(name: &'static str, ok: bool, detail: impl Into<String>, fix: impl Into<String>) -> CheckItem {
    CheckItem { name, ok, detail: detail.into(), fix: if ok { String::new() } else { fix.into() } }
}

/// Checks one tenant against HighLevel and Dialpad (reads only: nothing is written anywhere).
pub async fn check(live: &LiveTenant, context: &CheckContext<'_>) -> CheckReport {
    let tenant = &live.tenant;
    let reconnect = "Reconnect HighLevel: install the app again from the setup page (or `connect --token` for a private integration token).";
    let mut items = Vec::new();
    let bearer = match (&live.settings.token, &live.settings.oauth) {
        (Some(token), _) => Ok(token.clone()),
        (None, Some(tokens)) => tokens.bearer().await,
        (None, None) => Err("no HighLevel credential is stored".to_string()),
    };
    match &bearer {
        Ok(_) => items.push(item("HighLevel token", true, "a token is available", "")),
        Err(e) => items.push(item("HighLevel token", false, e.clone(), reconnect)),
    }
    if let Ok(bearer) = &bearer {
        let url = format!(
            "{}/contacts/?locationId={}&limit=1",
            context.api_base.trim_end_matches('/'),
            url::form_urlencoded::byte_serialize(tenant.location_id.as_bytes()).collect::<String>()
        );
        let request = ::http::Request::get(url)
            .header(::http::header::AUTHORIZATION, format!("Bearer {}", bearer.expose()))
            .header("Version", contacts_api::API_VERSION_HEADER)
            .header(::http::header::ACCEPT, "application/json")
            .body(http::body(bytes::Bytes::new()));
        let answer = match request {
            Ok(request) => http::send(request, context.timeout, "HighLevel").await,
            Err(e) => Err(e.to_string()),
        };
        items.push(match answer {
            Ok(a) if a.status == 200 => item("Location reachable", true, format!("location {} answers (contacts readable)", tenant.location_id), ""),
            Ok(a) if a.status == 401 => item("Location reachable", false, "HighLevel refused the token (401): it is invalid or revoked", reconnect),
            Ok(a) if a.status == 403 => item(
                "Location reachable",
                false,
                format!("HighLevel refused access to location {} (403): {}", tenant.location_id, a.reason()),
                "Grant the app contacts.readonly and contacts.write for this location, then install it again.",
            ),
            Ok(a) => item(
                "Location reachable",
                false,
                format!("HighLevel answered {}: {}", a.status, a.reason()),
                "Try again later; if it persists, check HighLevel's status page.",
            ),
            Err(e) => item("Location reachable", false, e, "Check that this host can reach HighLevel (DNS, firewall, proxy)."),
        });
    }
    let missing: Vec<&str> =
        ["contacts.readonly", "contacts.write"].into_iter().filter(|s| !tenant.scopes.is_empty() && !tenant.scopes.iter().any(|g| g == s)).collect();
    items.push(if tenant.scopes.is_empty() {
        item("Scopes granted", true, "not listed for this credential (a private integration token): the reachability check stands for it", "")
    } else if missing.is_empty() {
        item("Scopes granted", true, tenant.scopes.join(" "), "")
    } else {
        item("Scopes granted", false, format!("missing {}", missing.join(", ")), "Add the scopes to the Marketplace app, then install it again.")
    });
    items.push(actions_item(live).await);
    items.push(dialpad_item(live, context).await);
    items.push(match &context.last_event {
        Some((at_ms, status)) => item("Last event seen", true, format!("{} ({status})", iso_time(*at_ms)), ""),
        // Not a failure: a tenant connected a minute ago has seen nothing yet.
        None => item(
            "Last event seen",
            true,
            "none yet: make or take a call in Dialpad, or send a test event from the setup page (if nothing arrives, check the webhook above)",
            "",
        ),
    });
    CheckReport { tenant: tenant.id.clone(), location_id: tenant.location_id.clone(), items }
}

/// How many of the catalog's actions the tenant's grants make available, and what the others
/// need. The plugin judges it (`actions.catalog`), with the tenant's configuration and, when the
/// install listed its scopes, those as `scopes`: the tenant's runtime is not given them, so that
/// HighLevel, not the plugin, answers for a scope it lacks. Informational: the sync's own scopes
/// are "Scopes granted"'s to fail on.
async fn actions_item(live: &LiveTenant) -> CheckItem {
    const NAME: &str = "Actions available";
    let fix = "The plugin could not list its actions: check the tenant's configuration (`validate-config`) and the plugin.";
    let mut settings = Settings { plugin_config: live.settings.plugin_config.clone(), ..Settings::default() };
    if !live.tenant.scopes.is_empty() {
        // The install's grant may name scopes no action needs (`oauth.write`, `locations.readonly`).
        let granted: Vec<&str> = contacts_api::Scope::HIGHLEVEL.iter().map(|s| s.as_str()).filter(|s| live.tenant.scopes.iter().any(|g| g == s)).collect();
        settings.set("scopes", granted);
    }
    // Nothing to send with, and a store of its own: listing the catalog sends and keeps nothing.
    let runtime = match settings.runtime_options(true) {
        Ok(options) => live.runtime.with_options(options, KeyValueStore::new()),
        Err(e) => return item(NAME, false, format!("{e:#}"), fix),
    };
    let catalog = match tokio::task::spawn_blocking(move || runtime.catalog()).await {
        Ok(Ok(catalog)) => catalog,
        Ok(Err(e)) => return item(NAME, false, format!("{e:#}"), fix),
        Err(e) => return item(NAME, false, e.to_string(), fix),
    };
    let assumed = !settings.plugin_config.contains_key("scopes");
    item(NAME, true, availability(catalog.iter().map(|a| a.missing_scopes.as_slice()), assumed), "")
}

/// `226 of 262; 36 unavailable: 11 need conversations/message.write, …`, from each action's
/// missing grants; `assumed` when no HighLevel scopes are listed (every one is then assumed).
fn availability<'a>(missing: impl Iterator<Item = &'a [String]>, assumed: bool) -> String {
    let (mut total, mut needs) = (0, BTreeMap::<String, usize>::new());
    for lacks in missing {
        total += 1;
        if !lacks.is_empty() {
            *needs.entry(lacks.join(" and ")).or_default() += 1;
        }
    }
    let unavailable: usize = needs.values().sum();
    if unavailable == 0 {
        return format!("all {total}{}", if assumed { " (the HighLevel credential's scopes are not listed: all are assumed)" } else { "" });
    }
    let mut groups: Vec<(String, usize)> = needs.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let groups: Vec<String> = groups.into_iter().map(|(scopes, n)| format!("{n} need{} {scopes}", if n == 1 { "s" } else { "" })).collect();
    format!("{} of {total}; {unavailable} unavailable: {}", total - unavailable, groups.join(", "))
}

async fn dialpad_item(live: &LiveTenant, context: &CheckContext<'_>) -> CheckItem {
    let connect = "Connect Dialpad: `dialpad-ghl connect --tenant <id> --dialpad-api-key …`, or from the setup page.";
    let Some(link) = &live.tenant.dialpad else { return item("Dialpad webhook", false, "Dialpad is not connected", connect) };
    let Some(registration) = &link.registration else { return item("Dialpad webhook", false, "nothing is registered at Dialpad", connect) };
    let connection = match dialpad_connection(context.store, &live.tenant, context.dialpad_api_base, context.timeout) {
        Ok(Some(connection)) => connection,
        Ok(None) => return item("Dialpad webhook", false, "no Dialpad credential is stored", connect),
        Err(e) => return item("Dialpad webhook", false, format!("{e:#}"), connect),
    };
    let hook = context.public_url.map(|url| hook_url(url, &live.tenant.id)).unwrap_or_else(|| registration.hook_url.clone());
    let wanted = Wanted { hook_url: hook, call_states: context.call_states.to_vec(), sms: true, contacts: true };
    match connection.status(registration, &wanted).await {
        Ok(status) if status.is_healthy() => {
            item("Dialpad webhook", true, format!("webhook {} and its subscriptions are registered", registration.webhook_id), "")
        }
        Ok(status) => {
            item("Dialpad webhook", false, status.to_string().trim().to_string(), "Connect Dialpad again: it registers what is missing and nothing twice.")
        }
        Err(e) => item("Dialpad webhook", false, format!("Dialpad: {e}"), "Check the Dialpad API key (company admin) or reconnect Dialpad."),
    }
}

/// `2026-11-28T04:12:00Z`.
pub fn iso_time(ms: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lacking(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn availability_counts_the_actions_and_groups_the_others_by_what_they_need() {
        let catalog = [lacking(&[]), lacking(&["users.readonly"]), lacking(&["conversations/message.write"]), lacking(&["conversations/message.write"])];
        assert_eq!(availability(catalog.iter().map(Vec::as_slice), false), "1 of 4; 3 unavailable: 2 need conversations/message.write, 1 needs users.readonly");
        let all = [lacking(&[]), lacking(&[])];
        assert_eq!(availability(all.iter().map(Vec::as_slice), false), "all 2");
        assert_eq!(availability(all.iter().map(Vec::as_slice), true), "all 2 (the HighLevel credential's scopes are not listed: all are assumed)");
    }
}
