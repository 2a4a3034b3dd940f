//! The Marketplace's OAuth: the authorization page, the code and refresh grants, location
//! tokens, installed locations, uninstall, and the tokens' binding to their location.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::ghl_mock::MarketplaceOptions;

const COMPANY: &str = "company-0000000000001";
const LOC_B: &str = "loc0000000000000002";
const LOC_C: &str = "loc0000000000000003";
const REDIRECT: &str = "https://app.example/oauth/callback?tenant=t1";
const REDIRECT_ENCODED: &str = "https%3A%2F%2Fapp.example%2Foauth%2Fcallback%3Ftenant%3Dt1";
const SCOPES: &str = "contacts.readonly contacts.write oauth.readonly oauth.write";
const VERSION: (&str, &str) = ("Version", "2021-07-28");

fn options() -> MarketplaceOptions {
    MarketplaceOptions {
        client_id: "mp-client".into(),
        client_secret: "mp-s3cret".into(),
        app_id: "app-0000000000000001".into(),
        company_id: COMPANY.into(),
        locations: vec![LOC.into(), LOC_B.into()],
        access_token_ttl: Duration::from_secs(86_400),
    }
}

fn start_marketplace() -> MockServer {
    MockServer::start(MockOptions { marketplace: Some(options()), ..MockOptions::default() }).unwrap()
}

/// The authorization page with the app's parameters and `extra` (already encoded).
fn choose(server: &MockServer, scope: &str, extra: &str) -> Resp {
    let scope = scope.replace(' ', "%20");
    let target = format!("/v2/oauth/chooselocation?response_type=code&redirect_uri={REDIRECT_ENCODED}&client_id=mp-client&scope={scope}&state=st%26ate{extra}");
    raw(server, "GET", &target, &[], None, false)
}

/// The code of an approved install (checking the redirect on the way).
fn install(server: &MockServer, scope: &str, extra: &str) -> String {
    let r = choose(server, scope, extra);
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.header("location").expect("a Location header").to_owned();
    let query = location.strip_prefix(&format!("{REDIRECT}&")).unwrap_or_else(|| panic!("back to the redirect URI: {location}"));
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    assert_eq!(pairs.len(), 2, "{location}");
    assert_eq!((pairs[0].0.as_str(), pairs[1].0.as_str(), pairs[1].1.as_str()), ("code", "state", "st&ate"));
    pairs[0].1.clone()
}

fn exchange(server: &MockServer, code: &str, user_type: &str) -> Resp {
    token_request(
        server,
        &format!("grant_type=authorization_code&code={code}&client_id=mp-client&client_secret=mp-s3cret&user_type={user_type}&redirect_uri={REDIRECT_ENCODED}"),
    )
}

fn refresh_mp(server: &MockServer, refresh_token: &str, user_type: &str) -> Resp {
    token_request(server, &format!("grant_type=refresh_token&refresh_token={refresh_token}&client_id=mp-client&client_secret=mp-s3cret&user_type={user_type}"))
}

fn location_token(server: &MockServer, token: &str, form: &str) -> Resp {
    let bearer = format!("Bearer {token}");
    raw(server, "POST", "/oauth/locationToken", &[("Authorization", &bearer), VERSION, FORM], Some(form.as_bytes()), false)
}

fn installed(server: &MockServer, token: &str, query: &str) -> Resp {
    get_with(server, token, &format!("/oauth/installedLocations?{query}"))
}

/// A Company install's tokens: (access, refresh).
fn agency(server: &MockServer) -> (String, String) {
    let r = exchange(server, &install(server, SCOPES, ""), "Company");
    (access_token(&r), r.body["refresh_token"].as_str().unwrap().to_owned())
}

fn location_access(server: &MockServer, company_access: &str, location: &str) -> String {
    access_token(&location_token(server, company_access, &format!("companyId={COMPANY}&locationId={location}")))
}

fn call_with(server: &MockServer, token: &str, method: &str, target: &str, body: Option<Value>) -> Resp {
    let bearer = format!("Bearer {token}");
    let body = body.map(|b| b.to_string());
    raw(server, method, target, &[("Authorization", &bearer), VERSION], body.as_deref().map(str::as_bytes), false)
}

fn forbidden_location() -> Value {
    json!({ "statusCode": 403, "message": "The token does not have access to this location." })
}

#[test]
fn an_agency_install_its_tokens_and_its_locations() {
    let server = start_marketplace();
    let code = install(&server, SCOPES, "");
    assert_eq!(code, "mock-code-000001");
    assert_eq!(server.marketplace_locations(), [(LOC.to_owned(), true), (LOC_B.to_owned(), true)]);

    let r = exchange(&server, &code, "Company");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.body,
        json!({
            "access_token": "mock-company-access-000002", "token_type": "Bearer", "expires_in": 86_400,
            "refresh_token": "mock-company-refresh-000002", "scope": SCOPES, "userType": "Company",
            "companyId": COMPANY, "approvedLocations": [LOC, LOC_B], "isBulkInstallation": true,
            "userId": "mock-user-0000000001",
        })
    );
    let company = access_token(&r);
    let r = exchange(&server, &code, "Company");
    assert_eq!((r.status, &r.body), (401, &json!({ "error": "invalid_grant" })), "a code is single use");

    let r = installed(&server, &company, &format!("companyId={COMPANY}&appId=app-0000000000000001&isInstalled=true"));
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["locations"].as_array().unwrap().iter().map(|l| l["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [LOC, LOC_B]);
    let first = &r.body["locations"][0];
    assert_eq!(
        (&first["name"], &first["address"], &first["isInstalled"]),
        (&json!(format!("Location {LOC}")), &json!("1 Mock Street, Springfield"), &json!(true))
    );
    assert!(first["installedAt"].as_str().is_some_and(|at| at.ends_with('Z')), "{first}");
    assert_eq!((&r.body["count"], &r.body["installToFutureLocations"]), (&json!(2), &json!(false)));

    let r = location_token(&server, &company, &format!("companyId={COMPANY}&locationId={LOC_B}"));
    assert_eq!(
        r.body,
        json!({
            "access_token": "mock-location-access-000003", "token_type": "Bearer", "expires_in": 86_400, "scope": SCOPES,
            "locationId": LOC_B, "userId": "mock-user-0000000001", "appId": "app-0000000000000001",
        }),
        "no refresh token, as in the spec"
    );
    let location = access_token(&r);
    let contact = server.seed_contact(json!({ "locationId": LOC_B, "firstName": "Bea" }));
    assert_eq!(call_with(&server, &location, "GET", &format!("/contacts/{contact}"), None).status, 200);

    // The log: every route, no secret.
    let log = server.requests();
    let lines: Vec<(String, String, u16)> = log.iter().map(|r| (r.method.clone(), r.path_and_query.split('?').next().unwrap().to_owned(), r.status)).collect();
    let line = |m: &str, p: &str, s: u16| (m.to_owned(), p.to_owned(), s);
    assert_eq!(
        lines,
        [
            line("GET", "/v2/oauth/chooselocation", 302),
            line("POST", "/oauth/token", 200),
            line("POST", "/oauth/token", 401),
            line("GET", "/oauth/installedLocations", 200),
            line("POST", "/oauth/locationToken", 200),
            line("GET", &format!("/contacts/{contact}"), 200),
        ]
    );
    assert_eq!(
        log[1].body.as_deref(),
        Some(&*format!(
            "grant_type=authorization_code&code=REDACTED&client_id=mp-client&client_secret=REDACTED&user_type=Company&redirect_uri={REDIRECT_ENCODED}"
        ))
    );
    assert_eq!(log[4].body.as_deref(), Some(&*format!("companyId={COMPANY}&locationId={LOC_B}")));
    assert_eq!(log.iter().map(|r| r.authorization_present).collect::<Vec<_>>(), [false, false, false, true, true, true]);
    assert!(log.iter().all(|r| r.operation_id.is_none() || r.path_and_query.starts_with("/contacts/")));
    let logged = serde_json::to_string(&log).unwrap();
    for secret in ["mp-s3cret", code.as_str(), company.as_str(), location.as_str(), "mock-company-refresh-000002"] {
        assert!(!logged.contains(secret), "{secret} leaked into the request log");
    }
}

#[test]
fn company_and_location_refresh_tokens_rotate() {
    let server = start_marketplace();
    let (company, refresh) = agency(&server);
    let r = refresh_mp(&server, &refresh, "Company");
    assert_eq!(r.body["userType"], "Company");
    assert_eq!(r.body["approvedLocations"], json!([LOC, LOC_B]));
    let second = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh_mp(&server, &refresh, "Company").body, json!({ "error": "invalid_grant" }), "single use");
    let r = refresh_mp(&server, &second, "Location");
    assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "a Company token");
    let third = refresh_mp(&server, &second, "Company");
    assert_eq!(third.status, 200, "a refused user_type uses nothing up");
    let fresh = access_token(&third);
    assert_ne!(fresh, company);
    assert_eq!(server.oauth_refresh_count(), 2);
    for token in [&company, &fresh] {
        assert_eq!(installed(&server, token, &format!("companyId={COMPANY}&appId=app-0000000000000001")).status, 200, "valid until it expires");
    }

    // A single-location install: a Location token, refreshable.
    let code = install(&server, "contacts.readonly", &format!("&mock_install=Location&mock_location={LOC_C}"));
    assert_eq!(exchange(&server, &code, "Company").status, 400, "the code is for a Location install");
    let code = install(&server, "contacts.readonly", &format!("&mock_install=Location&mock_location={LOC_C}"));
    let r = exchange(&server, &code, "Location");
    assert_eq!(r.body["userType"], "Location");
    assert_eq!((&r.body["locationId"], &r.body["companyId"], &r.body["isBulkInstallation"]), (&json!(LOC_C), &json!(COMPANY), &json!(false)));
    assert!(r.body.get("approvedLocations").is_none(), "{}", r.body);
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("mock-location-refresh-"), "{refresh}");
    let r = refresh_mp(&server, &refresh, "Location");
    assert_eq!((r.status, &r.body["locationId"], &r.body["scope"]), (200, &json!(LOC_C), &json!("contacts.readonly")));
    assert_eq!(refresh_mp(&server, &refresh, "Location").status, 401);
    assert_eq!(server.marketplace_locations().last(), Some(&(LOC_C.to_owned(), true)));
    assert_eq!(server.oauth_refresh_count(), 3);
}

#[test]
fn the_authorization_page_and_the_code_grant_refuse() {
    let server = start_marketplace();
    let page = |query: &str| raw(&server, "GET", &format!("/v2/oauth/chooselocation?{query}"), &[], None, false);
    let good = format!("response_type=code&redirect_uri={REDIRECT_ENCODED}&client_id=mp-client");
    let r = page(&good.replace("mp-client", "other"));
    assert_eq!((r.status, &r.body), (400, &json!({ "statusCode": 400, "message": "Invalid client_id" })));
    assert_eq!(page(&good.replace("=code", "=token")).status, 400);
    assert_eq!(page("response_type=code&client_id=mp-client").status, 400, "no redirect_uri");
    assert_eq!(page(&format!("{good}&mock_install=Location")).status, 400, "no mock_location");
    assert_eq!(page(&format!("{good}&mock_install=Agency")).status, 400);
    assert_eq!(raw(&server, "POST", "/v2/oauth/chooselocation", &[], Some(b"{}"), false).status, 404);
    let r = page(&good);
    assert_eq!(r.header("location"), Some(&*format!("{REDIRECT}&code=mock-code-000001")), "no state, none back");
    assert!(server.marketplace_locations().iter().all(|(_, installed)| *installed));

    let code = install(&server, SCOPES, "");
    let form = |code: &str, secret: &str, redirect: &str| {
        format!("grant_type=authorization_code&code={code}&client_id=mp-client&client_secret={secret}&redirect_uri={redirect}")
    };
    let r = token_request(&server, &form(&code, "wrong", REDIRECT_ENCODED));
    assert_eq!((r.status, &r.body), (401, &json!({ "error": "invalid_client" })));
    let r = token_request(&server, &form(&code, "mp-s3cret", "https%3A%2F%2Fevil.example%2F"));
    assert_eq!((r.status, &r.body), (401, &json!({ "error": "invalid_grant" })), "another redirect_uri");
    let r = token_request(&server, &form(&code, "mp-s3cret", REDIRECT_ENCODED));
    assert_eq!((r.status, &r.body), (401, &json!({ "error": "invalid_grant" })), "used up by the attempt before");
    let code = install(&server, SCOPES, "");
    let r = token_request(&server, &form(&code, "mp-s3cret", REDIRECT_ENCODED));
    assert_eq!((r.status, &r.body["userType"]), (200, &json!("Company")), "user_type is optional");
    let r = token_request(&server, "grant_type=client_credentials&client_id=mp-client&client_secret=mp-s3cret");
    assert_eq!((r.status, &r.body), (400, &json!({ "error": "unsupported_grant_type" })));
    let r = token_request(&server, "grant_type=authorization_code&client_id=mp-client&client_secret=mp-s3cret");
    assert_eq!((r.status, &r.body), (400, &json!({ "error": "invalid_request" })), "no code");
}

#[test]
fn location_tokens_need_an_agency_token_of_the_company() {
    let server = start_marketplace();
    let (company, _) = agency(&server);
    let good = format!("companyId={COMPANY}&locationId={LOC}");
    let r = location_token(&server, "nobody", &good);
    assert_eq!((r.status, &r.body), (401, &error_texts().unauthorized));
    let r = raw(&server, "POST", "/oauth/locationToken", &[("Authorization", &format!("Bearer {company}")), FORM], Some(good.as_bytes()), false);
    assert_eq!((r.status, &r.body["message"]), (400, &json!("version header must be 2021-07-28")));
    let location = location_access(&server, &company, LOC);
    let r = location_token(&server, &location, &good);
    assert_eq!((r.status, &r.body), (401, &json!({ "statusCode": 401, "message": "This route needs an agency (Company) access token." })));
    let r = location_token(&server, &company, "locationId=");
    assert_eq!((r.status, &r.body["message"]), (422, &json!(["companyId should not be empty", "locationId should not be empty"])));
    let r = raw(
        &server,
        "POST",
        "/oauth/locationToken",
        &[("Authorization", &format!("Bearer {company}")), VERSION],
        Some(json!({ "companyId": COMPANY, "locationId": LOC }).to_string().as_bytes()),
        false,
    );
    assert_eq!(r.status, 422, "form-encoded, as the spec has it");
    let r = location_token(&server, &company, &format!("companyId=other&locationId={LOC}"));
    assert_eq!((r.status, &r.body["message"]), (403, &json!("The token does not have access to this company.")));
    let r = location_token(&server, &company, &format!("companyId={COMPANY}&locationId={LOC_C}"));
    assert_eq!((r.status, &r.body["message"]), (400, &json!("The app is not installed on this location.")));

    // Without oauth.write: 403, the Contacts API's scope answer.
    let code = install(&server, "oauth.readonly", "");
    let readonly = access_token(&exchange(&server, &code, "Company"));
    let r = location_token(&server, &readonly, &good);
    assert_eq!((r.status, &r.body["message"]), (403, &json!("The token is not authorized for this scope.")));
    assert_eq!(installed(&server, &readonly, &format!("companyId={COMPANY}&appId=app-0000000000000001")).status, 200);

    server.expire_access_tokens();
    assert_eq!(location_token(&server, &company, &good).status, 401, "expired");
    assert_eq!(call_with(&server, &location, "GET", "/contacts/x", None).status, 401, "expired");
}

#[test]
fn installed_locations_filter_and_page() {
    let server = start_marketplace();
    let (company, _) = agency(&server);
    let _ = install(&server, SCOPES, &format!("&mock_install=Location&mock_location={LOC_C}"));
    let app = "appId=app-0000000000000001";
    let ids = |r: &Resp| -> Vec<String> { r.body["locations"].as_array().unwrap().iter().map(|l| l["_id"].as_str().unwrap().to_owned()).collect() };

    let r = installed(&server, &company, &format!("companyId={COMPANY}&{app}&skip=1&limit=1"));
    assert_eq!((ids(&r), &r.body["count"]), (vec![LOC_B.to_owned()], &json!(3)));
    let r = installed(&server, &company, &format!("companyId={COMPANY}&{app}&query=000000003"));
    assert_eq!(ids(&r), [LOC_C]);
    let r = installed(&server, &company, &format!("companyId={COMPANY}&{app}&locationId={LOC}"));
    assert_eq!(ids(&r), [LOC]);

    let r = installed(&server, &company, &format!("companyId={COMPANY}&isInstalled=yes&limit=x"));
    let mut messages = messages(&r);
    messages.sort();
    assert_eq!(
        (r.status, messages),
        (422, vec!["appId should not be empty".to_owned(), "isInstalled must be a boolean value".into(), "limit must be a number string".into()])
    );
    let r = installed(&server, &company, &format!("companyId=other&{app}"));
    assert_eq!((r.status, &r.body["message"]), (403, &json!("The token does not have access to this company.")));
    let r = installed(&server, &company, &format!("companyId={COMPANY}&appId=other"));
    assert_eq!(r.status, 400);
    let r = installed(&server, &location_access(&server, &company, LOC), &format!("companyId={COMPANY}&{app}"));
    assert_eq!(r.status, 401, "agency tokens only");
    assert_eq!(raw(&server, "POST", &format!("/oauth/installedLocations?companyId={COMPANY}&{app}"), &[], None, false).status, 404);
}

#[test]
fn uninstalling_a_location_revokes_its_tokens() {
    let server = start_marketplace();
    let (company, _) = agency(&server);
    let minted = location_access(&server, &company, LOC);
    let code = install(&server, SCOPES, &format!("&mock_install=Location&mock_location={LOC}"));
    let r = exchange(&server, &code, "Location");
    let (installed_access, refresh) = (access_token(&r), r.body["refresh_token"].as_str().unwrap().to_owned());
    let other = location_access(&server, &company, LOC_B);
    let contact = server.seed_contact(json!({ "locationId": LOC }));
    let target = format!("/contacts/{contact}");
    assert_eq!(call_with(&server, &minted, "GET", &target, None).status, 200);

    server.uninstall_location(LOC);
    for token in [&minted, &installed_access] {
        assert_eq!(call_with(&server, token, "GET", &target, None).status, 401, "revoked");
    }
    assert_eq!(refresh_mp(&server, &refresh, "Location").body, json!({ "error": "invalid_grant" }));
    let r = location_token(&server, &company, &format!("companyId={COMPANY}&locationId={LOC}"));
    assert_eq!(r.status, 400, "not installed any more");
    let query = format!("companyId={COMPANY}&appId=app-0000000000000001");
    let r = installed(&server, &company, &format!("{query}&isInstalled=true"));
    assert_eq!((r.body["locations"].as_array().unwrap().len(), &r.body["locations"][0]["_id"]), (1, &json!(LOC_B)));
    let r = installed(&server, &company, &query);
    assert_eq!((&r.body["locations"][0]["_id"], &r.body["locations"][0]["isInstalled"]), (&json!(LOC), &json!(false)));
    let r = installed(&server, &company, &format!("{query}&isInstalled=false"));
    assert_eq!((&r.body["count"], &r.body["locations"][0]["_id"]), (&json!(1), &json!(LOC)));
    assert_eq!(call_with(&server, &other, "GET", &format!("/contacts/?locationId={LOC_B}"), None).status, 200, "other locations keep theirs");
    assert_eq!(server.marketplace_locations(), [(LOC.to_owned(), false), (LOC_B.to_owned(), true)]);

    let r = exchange(&server, &install(&server, SCOPES, ""), "Company");
    assert_eq!(r.body["approvedLocations"], json!([LOC, LOC_B]), "a new install approves it again");
    assert_eq!(server.marketplace_locations(), [(LOC.to_owned(), true), (LOC_B.to_owned(), true)]);
    let minted = location_access(&server, &company, LOC);
    assert_eq!(call_with(&server, &minted, "GET", &target, None).status, 200);
}

#[test]
fn tokens_are_bound_to_their_location() {
    let server = start_marketplace();
    let (company, _) = agency(&server);
    let token = location_access(&server, &company, LOC);
    let mine = server.seed_contact(json!({ "locationId": LOC, "phone": "+14155550100" }));
    let theirs = server.seed_contact(json!({ "locationId": LOC_B, "phone": "+14155550199" }));

    let allowed = [
        ("GET", format!("/contacts/{mine}"), None),
        ("GET", format!("/contacts/?locationId={LOC}"), None),
        ("POST", "/contacts/".to_owned(), Some(json!({ "locationId": LOC, "firstName": "Ana" }))),
        ("POST", "/contacts/search".to_owned(), Some(json!({ "locationId": LOC, "page": 1, "pageLimit": 10 }))),
        ("POST", format!("/contacts/{mine}/notes"), Some(json!({ "body": "hi" }))),
    ];
    for (method, target, body) in allowed {
        let r = call_with(&server, &token, method, &target, body);
        assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.body);
    }
    let forbidden = [
        ("GET", format!("/contacts/{theirs}"), None),
        ("PUT", format!("/contacts/{theirs}"), Some(json!({ "firstName": "Eve" }))),
        ("POST", format!("/contacts/{theirs}/notes"), Some(json!({ "body": "hi" }))),
        ("GET", format!("/contacts/?locationId={LOC_B}"), None),
        ("GET", format!("/contacts/search/duplicate?locationId={LOC_B}&number=%2B14155550199"), None),
        ("POST", "/contacts/".to_owned(), Some(json!({ "locationId": LOC_B, "firstName": "Eve" }))),
        ("POST", "/contacts/upsert".to_owned(), Some(json!({ "locationId": LOC_B, "phone": "+14155550199" }))),
        ("POST", "/contacts/search".to_owned(), Some(json!({ "locationId": LOC_B, "page": 1, "pageLimit": 10 }))),
    ];
    for (method, target, body) in &forbidden {
        let r = call_with(&server, &token, method, target, body.clone());
        assert_eq!((r.status, &r.body), (403, &forbidden_location()), "{method} {target}");
    }
    // An agency token reaches no location's contacts.
    for (method, target, body) in [("GET", format!("/contacts/{mine}"), None), ("POST", "/contacts/".to_owned(), Some(json!({ "locationId": LOC })))] {
        let r = call_with(&server, &company, method, &target, body);
        assert_eq!((r.status, &r.body), (403, &forbidden_location()), "{method} {target}");
    }
    // The binding comes after validation, and a contact that does not exist is not found.
    assert_eq!(call_with(&server, &token, "POST", "/contacts/", Some(json!({ "locationId": LOC_B, "foo": 1 }))).status, 422);
    assert_eq!(call_with(&server, &token, "GET", "/contacts/nobody", None).status, 400);
    assert_eq!(server.contacts().len(), 3, "only the allowed create");
    assert_eq!(server.contacts()[1]["firstName"], json!(null), "their contact is untouched");

    // The token's own scopes, not the location's.
    let code = install(&server, "contacts.readonly", &format!("&mock_install=Location&mock_location={LOC}"));
    let readonly = access_token(&exchange(&server, &code, "Location"));
    assert_eq!(call_with(&server, &readonly, "GET", &format!("/contacts/{mine}"), None).status, 200);
    let r = call_with(&server, &readonly, "POST", "/contacts/", Some(json!({ "locationId": LOC })));
    assert_eq!((r.status, &r.body["message"]), (403, &json!("The token is not authorized for this scope.")));
    assert_eq!(call_with(&server, "any-token", "GET", &format!("/contacts/{mine}"), None).status, 401, "issued tokens only");
}

#[test]
fn the_marketplace_beside_oauth_options_and_a_static_token() {
    let server = MockServer::start(MockOptions {
        token: Some("static-token".into()),
        oauth: Some(oauth_options()),
        marketplace: Some(options()),
        ..MockOptions::default()
    })
    .unwrap();
    let theirs = server.seed_contact(json!({ "locationId": LOC_B }));
    let (company, company_refresh) = agency(&server);
    assert_eq!(refresh_mp(&server, &company_refresh, "Company").status, 200);
    let r = refresh(&server, "refresh-0", "s3cret");
    assert_eq!((r.status, &r.body["access_token"]), (200, &json!("mock-access-000001")), "OAuthOptions' refresh token is still served");
    let legacy = access_token(&r);
    assert_eq!(refresh_mp(&server, "mock-refresh-000001", "Company").status, 401, "the Marketplace's credentials are not OAuthOptions'");
    for token in [legacy.as_str(), "static-token"] {
        assert_eq!(call_with(&server, token, "GET", &format!("/contacts/{theirs}"), None).status, 200, "not bound to a location");
    }
    assert_eq!(call_with(&server, &company, "GET", &format!("/contacts/{theirs}"), None).status, 403);
    assert_eq!(server.oauth_refresh_count(), 2);

    // Without the Marketplace, its routes are unknown API paths.
    let plain = start();
    assert_eq!(raw(&plain, "GET", "/v2/oauth/chooselocation?client_id=x", &[], None, false).status, 401);
    let r = call(&plain, "GET", "/oauth/installedLocations?companyId=c&appId=a", None);
    assert_eq!((r.status, &r.body["message"]), (404, &json!("Cannot GET /oauth/installedLocations")));
    let r = token_request(&plain, "grant_type=authorization_code&code=x&client_id=x&client_secret=y");
    assert_eq!(r.status, 404);
}
