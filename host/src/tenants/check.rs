//! `check`: for each tenant, whether it can work, and what to do where it cannot — token valid,
//! scopes granted, location reachable, Dialpad's webhook and subscriptions registered, last
//! event seen. The CLI prints it; the setup page shows it.

use super::lifecycle::{dialpad_connection, hook_url};
use super::registry::LiveTenant;
use super::store::TenantStore;
use crate::connect::dialpad::Wanted;
use crate::connect::http;
use serde::Serialize;
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
