//! Install and connect for real, against the mocks, as an operator does it: `serve` as its own
//! process hosting three tenants (an agency install approving two locations, and a location
//! with a private integration token), Dialpad connected for each (twice: nothing registered
//! twice), a signed call for each landing in its own location only, a token refresh, an
//! uninstall of one that leaves the others untouched, and no secret in any file of the state
//! or in the logs.

use e2e_tests::serve::{json_fixture, sign};
use host_test::app_webhook;
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
use host_test::ghl_mock::{MarketplaceOptions, MockOptions, MockServer};
use host_test::support::{loopback_request, loopback_response, scratch_dir};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dialpad-ghl");
const CLIENT_ID: &str = "6650f0c1a2b3c4d5e6f70809-lx2k3j4h";
const CLIENT_SECRET: &str = "marketplace-client-secret-93be1";
const APP_ID: &str = "6650f0c1a2b3c4d5e6f70809";
const COMPANY: &str = "agency-company-1";
const PRIVATE_TOKEN: &str = "pit-private-token-77c1d0";
const DIALPAD_KEY: &str = "dialpad-company-key-3f9a";
/// Every tenant's caller: the same person calls all three businesses.
const CALLER: &str = "+13125550147";

/// `serve` as its own process; killed on drop.
struct Serve {
    child: Child,
    admin: String,
    webhooks: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn dialpad_ghl(args: &[&str], key_file: &Path) -> (bool, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_remove("DIALPAD_GHL_SECRET_KEY")
        .env_remove("GHL_TOKEN")
        .env_remove("DIALPAD_API_KEY")
        .args(["--secret-key-file", key_file.to_str().unwrap()])
        .output()
        .unwrap();
    (output.status.success(), format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

fn start_serve(state: &Path, config: &Path, key_file: &Path, port: u16, log: &Path) -> Serve {
    let mut child = Command::new(BIN)
        .args(["-v", "serve", "--listen", &format!("127.0.0.1:{port}"), "--admin-listen", &format!("127.0.0.1:{}", free_port()), "--retry-base", "50ms"])
        .args(["--state", state.to_str().unwrap(), "--config", config.to_str().unwrap(), "--secret-key-file", key_file.to_str().unwrap()])
        .env_remove("DIALPAD_GHL_SECRET_KEY")
        .env_remove("GHL_TOKEN")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut admin, mut webhooks) = (None, None);
    while admin.is_none() {
        let line = lines.next().expect("serve printed its addresses").unwrap();
        if let Some(rest) = line.strip_prefix("tenants: webhooks at ") {
            webhooks = rest.split("/webhooks").next().map(str::to_string);
        }
        if let Some(rest) = line.strip_prefix("monitor: ") {
            admin = rest.split_whitespace().next().map(|u| u.trim_end_matches('/').to_string());
        }
    }
    // Keep draining stdout so serve never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Serve { child, admin: admin.unwrap(), webhooks: webhooks.expect("serve hosts tenants") }
}

/// Follows redirects from `url` as a browser does, until an answer that is not one; returns the
/// URLs visited and the last answer.
fn follow(url: &str) -> (Vec<String>, u16, String) {
    let mut visited = vec![url.to_string()];
    let mut current = url.to_string();
    for _ in 0..10 {
        let (status, headers, body) = loopback_response("GET", &current, &[], b"").unwrap_or_else(|e| panic!("{current}: {e} (after {visited:?})"));
        let Some((_, location)) = headers.iter().find(|(n, _)| n == "location").filter(|_| (300..400).contains(&status)) else {
            return (visited, status, body);
        };
        current = if location.starts_with("http") { location.clone() } else { format!("{}{location}", origin(&current)) };
        visited.push(current.clone());
    }
    panic!("too many redirects: {visited:?}")
}

fn origin(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    format!("http://{}", rest.split('/').next().unwrap())
}

fn wait_drained(serve: &Serve) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = loopback_request("GET", &format!("{}/healthz", serve.admin), b"").unwrap();
        if serde_json::from_str::<Value>(&body).unwrap()["queue_depth"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the inbox did not drain: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A completed inbound call from [`CALLER`], signed with the tenant's webhook secret as Dialpad signs it.
fn signed_call(call_id: u64, secret: &str) -> Vec<u8> {
    let mut event = json_fixture("call_inbound_hangup_completed.json");
    event["call_id"] = json!(call_id);
    event["external_number"] = json!(CALLER);
    event["contact"]["phone"] = json!(CALLER);
    event["contact"]["name"] = json!("Dana Caller");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    event["iat"] = json!(now);
    event["exp"] = json!(now + 300);
    sign(&event, secret)
}

/// The webhook secret Dialpad was given for `tenant`'s URL.
fn secret_of(dialpad: &DialpadMock, tenant: &str) -> String {
    let registered = dialpad.registered();
    let hook = registered
        .webhooks
        .iter()
        .find(|w| w.hook_url.ends_with(&format!("/webhooks/dialpad/{tenant}")))
        .unwrap_or_else(|| panic!("no webhook for {tenant}: {registered:?}"));
    hook.secret.clone().expect("the webhook is signed")
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files(&path));
        } else {
            all.push(path);
        }
    }
    all
}

#[test]
fn an_agency_install_and_a_private_token_location_connect_sync_apart_refresh_and_uninstall_cleanly() {
    let ghl = MockServer::start(MockOptions {
        token: Some(PRIVATE_TOKEN.into()),
        marketplace: Some(MarketplaceOptions {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            app_id: APP_ID.into(),
            company_id: COMPANY.into(),
            locations: vec!["locAlpha01".into(), "locBeta02".into()],
            access_token_ttl: Duration::from_secs(3600),
        }),
        ..MockOptions::default()
    })
    .unwrap();
    let dialpad = DialpadMock::start(DialpadMockOptions { api_key: DIALPAD_KEY.into(), ..DialpadMockOptions::default() }).unwrap();
    let dir = scratch_dir("connect-e2e");
    let (state, key_file, config, log) = (dir.join("state"), dir.join("secret.key"), dir.join("host.json"), dir.join("serve.log"));
    // The operator's key, made by the CLI and kept owner-only.
    let key = Command::new(BIN).args(["secret-key", "generate"]).output().unwrap();
    assert!(key.status.success());
    std::fs::write(&key_file, &key.stdout).unwrap();
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    std::fs::write(
        &config,
        json!({
            "api_base": ghl.base_url(), "dialpad_api_base": dialpad.base_url(), "public_url": public_url, "rate_limit": false,
            "marketplace": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "app_id": APP_ID, "marketplace_base": ghl.base_url(), "webhook_public_key": app_webhook::test_public_key_pem()},
        })
        .to_string(),
    )
    .unwrap();
    let serve = start_serve(&state, &config, &key_file, port, &log);
    let cli_store = ["--state", state.to_str().unwrap(), "--config", config.to_str().unwrap()];

    // 1. The agency installs the app, approving two locations, as a browser follows the redirects.
    let (visited, status, _) = follow(&format!("{}/oauth/highlevel/start?install=agency", serve.admin));
    assert_eq!(status, 200, "{visited:?}");
    assert!(visited.iter().any(|u| u.contains("/v2/oauth/chooselocation")), "{visited:?}");
    assert!(visited.last().unwrap().ends_with("/setup?installed=loc-localpha01,loc-locbeta02"), "{visited:?}");
    // HighLevel's INSTALL webhook for an installed location changes nothing.
    let (status, answer) = ghl.send_install(&format!("{}/webhooks/highlevel", serve.webhooks), "locAlpha01");
    assert_eq!((status, serde_json::from_str::<Value>(&answer).unwrap()["tenants"].clone()), (200, json!(["loc-localpha01"])), "{answer}");
    // 2. A third location with a private integration token, from the CLI while serve runs.
    let (ok, out) =
        dialpad_ghl(&[&["connect", "--tenant", "gamma", "--location-id", "locGamma03", "--token", PRIVATE_TOKEN][..], &cli_store].concat(), &key_file);
    assert!(ok, "{out}");

    // 3. Dialpad for each, twice: through the admin API for the installed two, the CLI for the third.
    for _ in 0..2 {
        for tenant in ["loc-localpha01", "loc-locbeta02"] {
            let (status, body) =
                loopback_request("POST", &format!("{}/api/tenants/{tenant}/dialpad", serve.admin), json!({"api_key": DIALPAD_KEY}).to_string().as_bytes())
                    .unwrap();
            assert_eq!(status, 200, "{tenant}: {body}");
        }
        let (ok, out) = dialpad_ghl(
            &[&["connect", "--tenant", "gamma", "--dialpad-api-key", DIALPAD_KEY, "--public-url", &public_url][..], &cli_store].concat(),
            &key_file,
        );
        assert!(ok, "{out}");
    }
    let registered = dialpad.registered();
    assert_eq!((registered.webhooks.len(), registered.subscriptions.len()), (3, 9), "{registered:?}");

    // 4. The same caller calls each business: each call lands in its own location only.
    let tenants = [("loc-localpha01", "locAlpha01"), ("loc-locbeta02", "locBeta02"), ("gamma", "locGamma03")];
    for (n, (tenant, _)) in tenants.iter().enumerate() {
        let body = signed_call(8_100_000_000 + n as u64, &secret_of(&dialpad, tenant));
        let (status, answer) = loopback_request("POST", &format!("{}/webhooks/dialpad/{tenant}", serve.webhooks), &body).unwrap();
        assert_eq!(status, 200, "{tenant}: {answer}");
    }
    // One tenant's signed call sent to another's URL is refused: its secret is not that tenant's.
    let stolen = signed_call(8_199_999_999, &secret_of(&dialpad, "gamma"));
    let (status, _) = loopback_request("POST", &format!("{}/webhooks/dialpad/loc-localpha01", serve.webhooks), &stolen).unwrap();
    assert_eq!(status, 401);
    wait_drained(&serve);
    let contacts = ghl.contacts();
    let mut locations: Vec<&str> = contacts.iter().filter(|c| c["phone"] == CALLER).map(|c| c["locationId"].as_str().unwrap()).collect();
    locations.sort();
    assert_eq!(locations, ["locAlpha01", "locBeta02", "locGamma03"], "{contacts:?}");
    for (_, location) in tenants {
        let contact = contacts.iter().find(|c| c["locationId"] == location).unwrap();
        let notes: Vec<_> = ghl.notes().into_iter().filter(|n| n["contactId"] == contact["id"]).collect();
        assert_eq!(notes.len(), 1, "{location}: {notes:?}");
    }

    // 5. Every token expires: the next call refreshes the agency's token (rotated, stored) and
    //    mints a new location token.
    let refreshes = ghl.oauth_refresh_count();
    ghl.expire_access_tokens();
    let body = signed_call(8_100_000_100, &secret_of(&dialpad, "loc-localpha01"));
    assert_eq!(loopback_request("POST", &format!("{}/webhooks/dialpad/loc-localpha01", serve.webhooks), &body).unwrap().0, 200);
    wait_drained(&serve);
    assert!(ghl.oauth_refresh_count() > refreshes, "no refresh");
    let alpha_contact = contacts.iter().find(|c| c["locationId"] == "locAlpha01").unwrap();
    assert_eq!(ghl.notes().iter().filter(|n| n["contactId"] == alpha_contact["id"]).count(), 2);

    // 6. Beta uninstalls the app: a signed UNINSTALL removes its tenant, its secrets and its
    //    Dialpad webhook; replayed or tampered, the webhook is refused.
    let beta_secret = secret_of(&dialpad, "loc-locbeta02");
    let app_webhooks = format!("{}/webhooks/highlevel", serve.webhooks);
    let (status, answer) = ghl.send_uninstall(&app_webhooks, "locBeta02");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap()["removed"], json!(["loc-locbeta02"]));
    let again = app_webhook::uninstall_body(APP_ID, Some(COMPANY), Some("locBeta02"), "wh-uninstall-again", &app_webhook::timestamp(app_webhook::now_ms()));
    assert_eq!(app_webhook::post(&app_webhooks, &again).0, 200, "nothing left to remove");
    assert_eq!(app_webhook::post(&app_webhooks, &again).0, 409, "a replay");
    let mut tampered = again.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(loopback_request("POST", &app_webhooks, &tampered).unwrap().0, 401, "no signature");
    let stale = app_webhook::uninstall_body(APP_ID, Some(COMPANY), Some("locAlpha01"), "wh-stale", &app_webhook::timestamp(app_webhook::now_ms() - 3_600_000));
    assert_eq!(app_webhook::post(&app_webhooks, &stale).0, 409, "an hour old");
    // The app's uninstall never removes a location the operator connected with a private token.
    let not_ours = app_webhook::uninstall_body(APP_ID, Some(COMPANY), Some("locGamma03"), "wh-gamma", &app_webhook::timestamp(app_webhook::now_ms()));
    let (status, answer) = app_webhook::post(&app_webhooks, &not_ours);
    assert_eq!((status, serde_json::from_str::<Value>(&answer).unwrap()["removed"].clone()), (200, json!([])), "{answer}");
    let registered = dialpad.registered();
    assert_eq!(registered.webhooks.len(), 2, "{registered:?}");
    assert!(registered.webhooks.iter().all(|w| !w.hook_url.ends_with("loc-locbeta02")));
    let body = signed_call(8_100_000_200, &beta_secret);
    assert_eq!(loopback_request("POST", &format!("{}/webhooks/dialpad/loc-locbeta02", serve.webhooks), &body).unwrap().0, 404);
    // The other two are untouched.
    for (n, tenant) in ["loc-localpha01", "gamma"].into_iter().enumerate() {
        let body = signed_call(8_100_000_300 + n as u64, &secret_of(&dialpad, tenant));
        assert_eq!(loopback_request("POST", &format!("{}/webhooks/dialpad/{tenant}", serve.webhooks), &body).unwrap().0, 200);
    }
    wait_drained(&serve);
    let (ok, out) = dialpad_ghl(&[&["check"][..], &cli_store].concat(), &key_file);
    assert!(ok, "{out}");
    assert!(out.contains("loc-localpha01") && out.contains("gamma") && !out.contains("locbeta"), "{out}");
    // Which actions each tenant's scopes make available: the install granted the app's default
    // scopes (Contacts only), the private token lists none (all are assumed). Not a failure.
    let (ok, out) = dialpad_ghl(&[&["check", "--json"][..], &cli_store].concat(), &key_file);
    assert!(ok, "{out}");
    let reports: Value = serde_json::from_str(&out).unwrap();
    let actions = |tenant: &str| {
        let report = reports.as_array().unwrap().iter().find(|r| r["tenant"] == tenant).unwrap();
        report["items"].as_array().unwrap().iter().find(|i| i["name"] == "Actions available").unwrap().clone()
    };
    assert_eq!(actions("loc-localpha01")["ok"], true);
    assert_eq!(
        actions("loc-localpha01")["detail"],
        "226 of 262; 36 unavailable: 11 need conversations/message.write, 7 need conversations/message.readonly, 6 need conversations.write, \
         4 need conversations.readonly, 4 need users.readonly, 3 need users.write, 1 needs conversations/livechat.write"
    );
    assert_eq!(actions("gamma")["detail"], "all 262 (the HighLevel credential's scopes are not listed: all are assumed)");
    let (ok, out) = dialpad_ghl(&[&["tenants"][..], &cli_store].concat(), &key_file);
    assert!(ok && out.lines().count() == 2, "{out}");
    // Backfill uses the tenant's own Dialpad connection and lands in its location only.
    let mut listed = json_fixture("call_inbound_hangup_completed.json");
    listed["call_id"] = json!(8_200_000_001u64);
    listed["date_started"] = json!(1_773_104_400_000u64);
    listed["date_connected"] = json!(1_773_104_405_000u64);
    listed["date_ended"] = json!(1_773_104_520_000u64);
    listed["external_number"] = json!("+13125550999");
    listed["contact"]["phone"] = json!("+13125550999");
    dialpad.add_call(listed);
    let backfill = ["backfill", "--tenant", "gamma", "--since", "2026-03-10", "--until", "2026-03-11"];
    let (ok, out) = dialpad_ghl(&[&backfill[..], &["--state", state.to_str().unwrap(), "--config", config.to_str().unwrap()]].concat(), &key_file);
    assert!(ok && out.contains("1 synced"), "{out}");
    let backfilled: Vec<Value> = ghl.contacts().into_iter().filter(|c| c["phone"] == "+13125550999").collect();
    assert_eq!(backfilled.len(), 1);
    assert_eq!(backfilled[0]["locationId"], "locGamma03");
    drop(serve);

    // 7. No secret anywhere in the state or the logs: the private token, the API key, the app's
    //    secret, the webhooks' secrets (the uninstalled one's too), and every token the mock issued.
    let mut secrets = vec![PRIVATE_TOKEN.to_string(), DIALPAD_KEY.into(), CLIENT_SECRET.into(), beta_secret];
    secrets.extend(["loc-localpha01", "gamma"].iter().map(|t| secret_of(&dialpad, t)));
    secrets.extend(["mock-company-access-", "mock-company-refresh-", "mock-location-access-", "mock-code-"].map(String::from));
    let mut searched = files(&state);
    searched.push(log.clone());
    let mut hits = Vec::new();
    for file in &searched {
        let bytes = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        hits.extend(secrets.iter().filter(|s| text.contains(s.as_str())).map(|s| format!("{}: {}…", file.display(), &s[..8])));
    }
    host_test::figure!("connect: searched {} files for {} secrets: {} hits", searched.len(), secrets.len(), hits.len());
    assert!(hits.is_empty(), "{hits:?}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("refreshed"), "the log is the serve's own");
}
