//! Tenants in one `serve`: two locations whose callers share phone numbers never see each
//! other's data or credentials; tenants come and go while `serve` runs.

use e2e_tests::serve::{json_fixture, sign};
use e2e_tests::tenants::{tenant_host, TenantHost, DIALPAD_KEY, PRIVATE_TOKEN};
use host_test::support::loopback_request;
use serde_json::{json, Value};
use std::time::Duration;

const SHARED_CALLER: &str = "+13125550188";

fn post_json(host: &TenantHost, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = loopback_request("POST", &format!("{}{path}", host.server.admin_url()), body.to_string().as_bytes()).unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Two private-token tenants, each with Dialpad connected.
fn two_tenants(host: &TenantHost) {
    for (id, location) in [("north", "locNorth"), ("south", "locSouth")] {
        let (status, answer) = post_json(host, "/api/tenants", json!({"id": id, "location_id": location, "token": PRIVATE_TOKEN}));
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = post_json(host, &format!("/api/tenants/{id}/dialpad"), json!({"api_key": DIALPAD_KEY}));
        assert_eq!(status, 200, "{answer}");
    }
}

fn secret_of(host: &TenantHost, tenant: &str) -> String {
    host.dialpad.registered().webhooks.iter().find(|w| w.hook_url.ends_with(&format!("/{tenant}"))).and_then(|w| w.secret.clone()).unwrap()
}

fn call(call_id: u64, secret: &str) -> Vec<u8> {
    let mut event = json_fixture("call_inbound_hangup_completed.json");
    event["call_id"] = json!(call_id);
    event["external_number"] = json!(SHARED_CALLER);
    event["contact"]["phone"] = json!(SHARED_CALLER);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    event["iat"] = json!(now);
    event["exp"] = json!(now + 300);
    sign(&event, secret)
}

fn deliver(host: &TenantHost, tenant: &str, body: &[u8]) -> (u16, String) {
    loopback_request("POST", &format!("{}/webhooks/dialpad/{tenant}", host.server.webhook_url()), body).unwrap()
}

#[test]
fn tenants_sharing_a_callers_number_keep_their_contacts_records_and_secrets_apart() {
    let host = tenant_host("tenants-isolation");
    two_tenants(&host);
    // The same call id and caller at both: each tenant syncs its own, once.
    for tenant in ["north", "south"] {
        assert_eq!(deliver(&host, tenant, &call(9_000_001, &secret_of(&host, tenant))).0, 200);
        assert_eq!(deliver(&host, tenant, &call(9_000_001, &secret_of(&host, tenant))).0, 200, "a redelivery");
    }
    // One tenant's signed body at the other's URL, an unknown tenant, a tenant id that is a path.
    assert_eq!(deliver(&host, "south", &call(9_000_002, &secret_of(&host, "north"))).0, 401);
    assert_eq!(deliver(&host, "west", &call(9_000_003, &secret_of(&host, "north"))).0, 404);
    assert_eq!(deliver(&host, "north%2F..%2Fsouth", &call(9_000_004, &secret_of(&host, "north"))).0, 404);
    assert!(host.server.wait_idle(Duration::from_secs(30)));
    let contacts = host.ghl.contacts();
    let mut locations: Vec<&str> = contacts.iter().map(|c| c["locationId"].as_str().unwrap()).collect();
    locations.sort();
    assert_eq!(locations, ["locNorth", "locSouth"], "{contacts:#?}");
    assert_eq!(host.ghl.notes().len(), 2, "one note per tenant, the redeliveries changing nothing");
    // Every request to HighLevel named its own tenant's location.
    let requests = host.ghl.requests();
    assert!(requests.iter().all(|r| !(r.path_and_query.contains("locNorth") && r.path_and_query.contains("locSouth"))));
    // The refused delivery is on the monitor, under the tenant it was sent to.
    let events: Value = serde_json::from_str(&loopback_request("GET", &format!("{}/api/events", host.server.admin_url()), b"").unwrap().1).unwrap();
    let refused: Vec<&Value> = events["events"].as_array().unwrap().iter().filter(|e| e["status"] == "refused").collect();
    assert_eq!(refused.len(), 1, "{events:#}");
    assert_eq!(refused[0]["tenant"], "south");
}

#[test]
fn a_removed_tenant_stops_at_once_and_the_other_goes_on() {
    let host = tenant_host("tenants-removal");
    two_tenants(&host);
    let north = secret_of(&host, "north");
    host.ghl.set_latency(Duration::from_millis(1500));
    // North's first delivery waits at HighLevel, the others behind it in its lane; removing
    // north cancels what it had queued.
    for n in 0..3 {
        assert_eq!(deliver(&host, "north", &call(9_100_000 + n, &north)).0, 200);
    }
    let (status, text) = loopback_request("DELETE", &format!("{}/api/tenants/north", host.server.admin_url()), b"").unwrap();
    assert_eq!(status, 200, "{text}");
    host.ghl.set_latency(Duration::ZERO);
    assert_eq!(deliver(&host, "north", &call(9_100_010, &north)).0, 404);
    assert_eq!(deliver(&host, "south", &call(9_100_020, &secret_of(&host, "south"))).0, 200);
    assert!(host.server.wait_idle(Duration::from_secs(30)));
    let events: Value = serde_json::from_str(&loopback_request("GET", &format!("{}/api/events", host.server.admin_url()), b"").unwrap().1).unwrap();
    let cancelled = events["events"].as_array().unwrap().iter().filter(|e| e["outcome"]["error"]["type"] == "tenant-removed").count();
    assert!(cancelled >= 2, "north's queued deliveries end as cancelled: {events:#}");
    assert!(host.ghl.contacts().iter().any(|c| c["locationId"] == "locSouth"));
    assert_eq!(host.dialpad.registered().webhooks.len(), 1, "north's webhook is removed at Dialpad");
    assert!(host.store.secret("tenant:north", "webhook_secret").unwrap().is_none());
    assert!(host.store.secret("tenant:north", "highlevel_token").unwrap().is_none());
}

#[test]
fn dialpad_connects_through_oauth_with_pkce_and_its_token_lists_nothing_twice() {
    let host = tenant_host("tenants-dialpad-oauth");
    let (status, answer) = post_json(&host, "/api/tenants", json!({"id": "north", "location_id": "locNorth", "token": PRIVATE_TOKEN}));
    assert_eq!(status, 200, "{answer}");
    // The admin's browser: to Dialpad's authorize page (the mock approves at once) and back.
    let mut url = format!("{}/oauth/dialpad/start?tenant=north", host.server.admin_url());
    let mut visited = vec![url.clone()];
    for _ in 0..2 {
        for _ in 0..5 {
            let (status, headers, _) = host_test::support::loopback_exchange("GET", &url, b"").unwrap();
            let Some((_, location)) = headers.into_iter().find(|(n, _)| n == "location").filter(|_| (300..400).contains(&status)) else { break };
            url = if location.starts_with("http") { location } else { format!("{}{location}", host.server.admin_url()) };
            visited.push(url.clone());
        }
        // Connecting twice registers nothing twice.
        url = format!("{}/oauth/dialpad/start?tenant=north", host.server.admin_url());
    }
    assert!(visited.iter().any(|u| u.contains("/oauth2/authorize") && u.contains("code_challenge_method=S256")), "{visited:?}");
    assert!(visited.iter().any(|u| u.ends_with("/setup?connected=north")), "{visited:?}");
    let registered = host.dialpad.registered();
    assert_eq!((registered.webhooks.len(), registered.subscriptions.len()), (1, 3), "{registered:?}");
    // The tenant's Dialpad credential is the OAuth token, sealed; no API key was ever given.
    assert!(host.store.secret("tenant:north", "dialpad_access").unwrap().is_some());
    assert!(host.store.secret("tenant:north", "dialpad_key").unwrap().is_none());
    assert_eq!(deliver(&host, "north", &call(9_200_001, &secret_of(&host, "north"))).0, 200);
    assert!(host.server.wait_idle(Duration::from_secs(30)));
    assert_eq!(host.ghl.contacts().len(), 1);
    // A callback nobody started is refused.
    let (status, _) = loopback_request("GET", &format!("{}/oauth/dialpad/callback?code=x&state=forged", host.server.admin_url()), b"").unwrap();
    assert_eq!(status, 400);
}
