//! The host's HighLevel Marketplace client (`connect::highlevel`) installs the app against the
//! mock: the authorization page and its redirect, the code exchanged for an agency token, the
//! installed locations, a location token for each, two refreshes (rotation), then a
//! single-location install; the exact requests the mock saw, and every grant.
//!
//! Then the same client against Stoplight Prism serving HighLevel's official OAuth spec with
//! `--errors` (needs `tests/prism/install.sh`; ignored without it unless `REQUIRE_PRISM=1`):
//! every request it sends conforms.

use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::connect::highlevel::{Grant, InstalledLocation, MarketplaceApp, UserType};
use dialpad_ghl_host::connect::http::{body, send};
use dialpad_ghl_host::connect::ConnectError;
use e2e_tests::prism::{response_defects, violations, Prism, RecordingProxy, Spec, VIOLATIONS_HEADER};
use host_test::ghl_mock::{MarketplaceOptions, MockOptions, MockServer};
use host_test::support::loopback_exchange;
use std::time::Duration;

const CLIENT_ID: &str = "6578278e879ad2646715ba9c-mp0client";
const CLIENT_SECRET: &str = "mp-client-secret-3f9a";
const APP_ID: &str = "6578278e879ad2646715ba9c";
const COMPANY: &str = "company-e2e-0000000001";
const LOC_A: &str = "loc-e2e-a";
const LOC_B: &str = "loc-e2e-b";
const LOC_SOLO: &str = "loc-e2e-solo";
const REDIRECT: &str = "https://sync.example/highlevel/callback";
const REDIRECT_ENCODED: &str = "https%3A%2F%2Fsync.example%2Fhighlevel%2Fcallback";
const SCOPES: [&str; 4] = ["contacts.readonly", "contacts.write", "oauth.readonly", "oauth.write"];

fn mock() -> MockServer {
    MockServer::start(MockOptions {
        marketplace: Some(MarketplaceOptions {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            app_id: APP_ID.into(),
            company_id: COMPANY.into(),
            locations: vec![LOC_A.into(), LOC_B.into()],
            access_token_ttl: Duration::from_secs(86_400),
        }),
        ..MockOptions::default()
    })
    .expect("starting the mock")
}

/// The app, with both origins at `base`.
fn app(base: &str) -> MarketplaceApp {
    MarketplaceApp {
        app_id: Some(APP_ID.into()),
        api_base: base.into(),
        marketplace_base: base.into(),
        timeout: Duration::from_secs(10),
        ..MarketplaceApp::new(CLIENT_ID, Secret::new(CLIENT_SECRET), REDIRECT, SCOPES.map(String::from).to_vec())
    }
}

/// Follows the authorization page's redirect as a browser would, as far as the redirect URI:
/// the code, after checking that the state came back (`state`, form-encoded).
fn approve(authorize_url: &str, state: &str) -> String {
    let (status, headers, body) = loopback_exchange("GET", authorize_url, b"").expect("the authorization page answers");
    assert_eq!(status, 302, "{body}");
    let location = headers.iter().find(|(name, _)| name == "location").map(|(_, v)| v.clone()).expect("a Location header");
    let query = location.strip_prefix(&format!("{REDIRECT}?")).unwrap_or_else(|| panic!("back to the redirect URI: {location}"));
    let (code, rest) = query.split_once('&').unwrap_or_else(|| panic!("a code and a state: {location}"));
    assert_eq!(rest, format!("state={state}"));
    code.strip_prefix("code=").unwrap_or_else(|| panic!("the code first: {location}")).to_string()
}

/// A Contacts API GET with `token`, through the host's own sender: `(status, body)`.
async fn api_get(base: &str, token: &Secret, path: &str) -> (u16, serde_json::Value) {
    let request = http::Request::get(format!("{base}{path}"))
        .header("Authorization", format!("Bearer {}", token.expose()))
        .header("Version", "2021-07-28")
        .body(body(bytes::Bytes::new()))
        .unwrap();
    let answer = send(request, Duration::from_secs(10), "contacts").await.unwrap();
    (answer.status, answer.json())
}

fn scopes() -> Vec<String> {
    SCOPES.map(String::from).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_installs_the_app_then_a_single_location_does() {
    let mock = mock();
    let base = mock.base_url();
    let app = app(&base);

    // The agency install.
    let authorize = app.authorize_url("state-1 &x");
    assert_eq!(
        authorize,
        format!(
            "{base}/v2/oauth/chooselocation?response_type=code&redirect_uri={REDIRECT_ENCODED}&client_id={CLIENT_ID}\
             &scope=contacts.readonly%20contacts.write%20oauth.readonly%20oauth.write&state=state-1%20%26x"
        )
    );
    let code = tokio::task::spawn_blocking(move || approve(&authorize, "state-1+%26x")).await.unwrap();
    let company = app.exchange_code(&code, UserType::Company).await.expect("the code exchanged");
    assert_eq!(
        company,
        Grant {
            access: Secret::new("mock-company-access-000002"),
            refresh: Some(Secret::new("mock-company-refresh-000002")),
            expires_in: Duration::from_secs(86_400),
            user_type: UserType::Company,
            company_id: Some(COMPANY.into()),
            location_id: None,
            scopes: scopes(),
            approved_locations: vec![LOC_A.into(), LOC_B.into()],
            is_bulk_installation: true,
            user_id: Some("mock-user-0000000001".into()),
        }
    );
    let reused = app.exchange_code(&code, UserType::Company).await.unwrap_err();
    assert_eq!(reused, ConnectError::Refused { status: 401, reason: "invalid_grant".into() });

    let installed = app.installed_locations(&company.access, COMPANY).await.expect("the installed locations");
    let expected =
        |id: &str| InstalledLocation { id: id.into(), name: format!("Location {id}"), address: "1 Mock Street, Springfield".into(), is_installed: true };
    assert_eq!(installed, [expected(LOC_A), expected(LOC_B)]);

    let contact_a = mock.seed_contact(serde_json::json!({ "locationId": LOC_A, "firstName": "Ana" }));
    let contact_b = mock.seed_contact(serde_json::json!({ "locationId": LOC_B, "firstName": "Bo" }));
    let mut location_tokens = Vec::new();
    for (n, location) in [LOC_A, LOC_B].into_iter().enumerate() {
        let grant = app.location_token(&company.access, COMPANY, location).await.expect("a location token");
        assert_eq!(
            grant,
            Grant {
                access: Secret::new(format!("mock-location-access-{:06}", 3 + n)),
                refresh: None,
                expires_in: Duration::from_secs(86_400),
                user_type: UserType::Location,
                company_id: Some(COMPANY.into()),
                location_id: Some(location.into()),
                scopes: scopes(),
                approved_locations: vec![],
                is_bulk_installation: false,
                user_id: Some("mock-user-0000000001".into()),
            }
        );
        location_tokens.push(grant.access);
    }
    // Each location token reaches its own location's contacts, and only those.
    assert_eq!(api_get(&base, &location_tokens[0], &format!("/contacts/{contact_a}")).await.0, 200);
    let (status, answer) = api_get(&base, &location_tokens[0], &format!("/contacts/{contact_b}")).await;
    assert_eq!((status, answer), (403, serde_json::json!({ "statusCode": 403, "message": "The token does not have access to this location." })));
    assert_eq!(api_get(&base, &location_tokens[1], &format!("/contacts/{contact_b}")).await.0, 200);
    assert_eq!(api_get(&base, &company.access, &format!("/contacts/{contact_a}")).await.0, 403, "an agency token reads no contacts");

    // Two refreshes: each rotates the refresh token, and the one used is dead.
    let first_refresh = company.refresh.clone().unwrap();
    let refreshed = app.refresh(&first_refresh, UserType::Company).await.expect("the first refresh");
    assert_eq!(refreshed.refresh, Some(Secret::new("mock-company-refresh-000005")));
    assert_eq!((refreshed.user_type, &refreshed.approved_locations), (UserType::Company, &company.approved_locations));
    let used = app.refresh(&first_refresh, UserType::Company).await.unwrap_err();
    assert_eq!(used, ConnectError::Refused { status: 401, reason: "invalid_grant".into() });
    let again = app.refresh(refreshed.refresh.as_ref().unwrap(), UserType::Company).await.expect("the second refresh");
    assert_eq!((again.access.expose(), again.refresh.as_ref().map(Secret::expose)), ("mock-company-access-000006", Some("mock-company-refresh-000006")));
    assert_eq!(mock.oauth_refresh_count(), 2);

    // A single-location install: a refreshable Location token.
    let authorize = format!("{}&mock_install=Location&mock_location={LOC_SOLO}", app.authorize_url("state-2"));
    let code = tokio::task::spawn_blocking(move || approve(&authorize, "state-2")).await.unwrap();
    let solo = app.exchange_code(&code, UserType::Location).await.expect("the Location install");
    assert_eq!(
        (solo.user_type, solo.location_id.as_deref(), solo.company_id.as_deref(), solo.is_bulk_installation, solo.approved_locations.len()),
        (UserType::Location, Some(LOC_SOLO), Some(COMPANY), false, 0)
    );
    let solo_refresh = app.refresh(solo.refresh.as_ref().unwrap(), UserType::Location).await.expect("a Location refresh");
    assert_eq!((solo_refresh.location_id.as_deref(), solo_refresh.refresh.is_some()), (Some(LOC_SOLO), true));

    // What the mock saw, in order; the secrets never reached its log.
    let code_form = |user_type: &str| {
        format!(
            "grant_type=authorization_code&code=REDACTED&client_id={CLIENT_ID}&client_secret=REDACTED&user_type={user_type}&redirect_uri={REDIRECT_ENCODED}"
        )
    };
    let refresh_form =
        |user_type: &str| format!("grant_type=refresh_token&refresh_token=REDACTED&client_id={CLIENT_ID}&client_secret=REDACTED&user_type={user_type}");
    let seen: Vec<(String, String, u16, Option<String>)> = mock
        .requests()
        .into_iter()
        .map(|r| {
            let target = if r.path_and_query.starts_with("/v2/oauth/chooselocation") {
                r.path_and_query.split('?').next().unwrap().to_string()
            } else {
                r.path_and_query
            };
            (r.method, target, r.status, r.body)
        })
        .collect();
    let entry = |method: &str, target: &str, status: u16, body: Option<String>| (method.to_string(), target.to_string(), status, body);
    let installed_query = format!("/oauth/installedLocations?companyId={COMPANY}&appId={APP_ID}&isInstalled=true&skip=0&limit=20");
    let location_form = |location: &str| Some(format!("companyId={COMPANY}&locationId={location}"));
    assert_eq!(
        seen,
        [
            entry("GET", "/v2/oauth/chooselocation", 302, None),
            entry("POST", "/oauth/token", 200, Some(code_form("Company"))),
            entry("POST", "/oauth/token", 401, Some(code_form("Company"))),
            entry("GET", &installed_query, 200, None),
            entry("POST", "/oauth/locationToken", 200, location_form(LOC_A)),
            entry("POST", "/oauth/locationToken", 200, location_form(LOC_B)),
            entry("GET", &format!("/contacts/{contact_a}"), 200, None),
            entry("GET", &format!("/contacts/{contact_b}"), 403, None),
            entry("GET", &format!("/contacts/{contact_b}"), 200, None),
            entry("GET", &format!("/contacts/{contact_a}"), 403, None),
            entry("POST", "/oauth/token", 200, Some(refresh_form("Company"))),
            entry("POST", "/oauth/token", 401, Some(refresh_form("Company"))),
            entry("POST", "/oauth/token", 200, Some(refresh_form("Company"))),
            entry("GET", "/v2/oauth/chooselocation", 302, None),
            entry("POST", "/oauth/token", 200, Some(code_form("Location"))),
            entry("POST", "/oauth/token", 200, Some(refresh_form("Location"))),
        ]
    );
    let log = serde_json::to_string(&mock.requests()).unwrap();
    for secret in [CLIENT_SECRET, "mock-company-access", "mock-company-refresh", "mock-location-access", "mock-code-"] {
        assert!(!log.contains(secret), "{secret} reached the mock's log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_failures_are_typed() {
    let mock = mock();
    let base = mock.base_url();
    let authorize = app(&base).authorize_url("s");
    let code = tokio::task::spawn_blocking(move || approve(&authorize, "s")).await.unwrap();

    let wrong_secret = MarketplaceApp { client_secret: Secret::new("not-the-secret"), ..app(&base) };
    let error = wrong_secret.exchange_code(&code, UserType::Company).await.unwrap_err();
    assert_eq!(error, ConnectError::Refused { status: 401, reason: "invalid_client".into() });
    assert!(!error.to_string().contains("not-the-secret"));
    let wrong_redirect = MarketplaceApp { redirect_uri: "https://elsewhere.example/cb".into(), ..app(&base) };
    let error = wrong_redirect.exchange_code(&code, UserType::Company).await.unwrap_err();
    assert_eq!(error, ConnectError::Refused { status: 401, reason: "invalid_grant".into() });

    let authorize = app(&base).authorize_url("s");
    let code = tokio::task::spawn_blocking(move || approve(&authorize, "s")).await.unwrap();
    let company = app(&base).exchange_code(&code, UserType::Company).await.unwrap();
    mock.uninstall_location(LOC_B);
    let error = app(&base).location_token(&company.access, COMPANY, LOC_B).await.unwrap_err();
    assert_eq!(error, ConnectError::Refused { status: 400, reason: "The app is not installed on this location.".into() });
    let installed = app(&base).installed_locations(&company.access, COMPANY).await.unwrap();
    assert_eq!(installed.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), [LOC_A], "isInstalled=true leaves it out");
    let no_app_id = MarketplaceApp { app_id: None, ..app(&base) };
    assert!(matches!(no_app_id.installed_locations(&company.access, COMPANY).await, Err(ConnectError::Malformed(_))));

    // Nothing listens there: no answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere = MarketplaceApp { timeout: Duration::from_secs(2), ..app(&format!("http://{closed}")) };
    let error = nowhere.refresh(&Secret::new("rt"), UserType::Company).await.unwrap_err();
    assert!(matches!(&error, ConnectError::Transport(e) if e.starts_with("token endpoint: ")), "{error:?}");
}

/// Prism answers the token endpoint from the spec's own example, whose `isBulkInstallation` is
/// the string "Bearer" for a boolean: with `--errors` that is a 500 with a violation located in
/// the *response*. The request itself conforms, which is what this test is about.
const TOKEN_EXAMPLE_DEFECT: &str = "Response body property isBulkInstallation must be boolean";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
async fn every_request_of_the_client_conforms_to_the_official_oauth_spec() {
    let prism = tokio::task::spawn_blocking(|| Prism::start_spec(Spec::OAuth)).await.unwrap();
    let proxy = RecordingProxy::start(&prism.base_url);
    let app = app(&proxy.base_url);
    let agency = Secret::new("agency-access-token");

    let exchanged = app.exchange_code("code-from-the-redirect", UserType::Company).await;
    let refreshed = app.refresh(&Secret::new("refresh-token"), UserType::Location).await;
    let minted = app.location_token(&agency, "tDtDnQdgm2LXpyiqYvZ6", "l1C08ntBrFjLS0elLIYU").await;
    let installed = app.installed_locations(&agency, "tDtDnQdgm2LXpyiqYvZ6").await;
    let log = proxy.take();
    for e in &log {
        let verdict = e.response_headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(VIOLATIONS_HEADER)).map_or("-", |(_, v)| v.as_str());
        eprintln!("prism: {} {} → {:?} {verdict}", e.method, e.url, e.status);
    }

    assert_eq!(log.len(), 4, "one request each: {log:#?}");
    let found = violations(&log);
    assert!(found.is_empty(), "Prism found request(s) that break the official OAuth spec:\n{}", found.join("\n"));
    for e in &log {
        assert!(!matches!(e.status, Some(400 | 401 | 422)), "{} {} → {:?}", e.method, e.url, e.status);
    }
    // The token endpoint: the spec's example defect, and nothing else.
    let defects = response_defects(&log);
    assert_eq!(defects.len(), 2, "{defects:#?}");
    assert!(defects.iter().all(|d| d.contains("/oauth/token → 500: ") && d.ends_with(TOKEN_EXAMPLE_DEFECT)), "{defects:#?}");
    for result in [exchanged, refreshed] {
        assert_eq!(result.unwrap_err(), ConnectError::Refused { status: 500, reason: "refused".into() });
    }
    // The others: the spec's examples, parsed.
    let minted = minted.expect("locationToken answered from the spec's example");
    assert_eq!(
        (minted.access.expose(), minted.refresh.is_none(), minted.location_id.as_deref(), minted.company_id.as_deref(), minted.expires_in),
        ("ab12dc0ae1234a7898f9ff06d4f69gh", true, Some("l1C08ntBrFjLS0elLIYU"), Some("tDtDnQdgm2LXpyiqYvZ6"), Duration::from_secs(86_399))
    );
    assert_eq!(minted.scopes, ["conversations/message.readonly", "conversations/message.write"]);
    let installed = installed.expect("installedLocations answered from the spec's example");
    assert_eq!(
        installed,
        [InstalledLocation {
            id: "0IHuJvc2ofPAAA8GzTRi".into(),
            name: "John Deo".into(),
            address: "47 W 13th St, New York, NY 10011, USA".into(),
            is_installed: true
        }]
    );

    // Not vacuous: the same judge refuses a request without the agency token or `Version`.
    let broken =
        prism.send_raw("POST", "/oauth/locationToken", &[("Content-Type", "application/x-www-form-urlencoded")], Some("companyId=c&locationId=l")).unwrap();
    assert_eq!(broken.status, 401, "{broken:?}");
    assert!(broken.header(VIOLATIONS_HEADER).is_some_and(|v| v.to_ascii_lowercase().contains("version")), "{broken:?}");
}
