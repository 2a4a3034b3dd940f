//! HighLevel's Marketplace OAuth: the authorization page, the authorization-code grant and the
//! refresh of the tokens it issues, agency → location tokens, the installed locations, and an
//! uninstall hook; and the tokens' binding to their location, which the API checks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use serde_json::{json, Value};

use super::oauth::{is_form, oauth_error};
use super::rate_limit::whole_seconds_up;
use super::reply::{unauthorized, unprocessable, Reply, MSG_FORBIDDEN, MSG_VERSION};
use super::time::now_iso8601;
use super::validate::{parse_query, query_value};

/// The authorization page, at the path HighLevel's Authorization page gives.
pub(super) const CHOOSE_LOCATION_PATH: &str = "/v2/oauth/chooselocation";
pub(super) const LOCATION_TOKEN_PATH: &str = "/oauth/locationToken";
pub(super) const INSTALLED_LOCATIONS_PATH: &str = "/oauth/installedLocations";

/// The answer to an API request whose token is for another location, or is an agency token.
pub(super) const MSG_LOCATION: &str = "The token does not have access to this location.";
/// The mock's own texts: HighLevel documents none for these.
const MSG_COMPANY: &str = "The token does not have access to this company.";
const MSG_AGENCY_ONLY: &str = "This route needs an agency (Company) access token.";
const MSG_NOT_INSTALLED: &str = "The app is not installed on this location.";
const MSG_APP: &str = "No installation of this app is visible to the token.";
/// Who installed the app, echoed as `userId` (the one field the spec requires in every answer).
const USER_ID: &str = "mock-user-0000000001";

/// HighLevel's Marketplace OAuth for one app and one agency (`company_id`), beside the API.
///
/// - `GET /v2/oauth/chooselocation?response_type=code&client_id=…&redirect_uri=…&scope=…&state=…`
///   approves at once: 302 to `redirect_uri` with `code` (one-time) and `state` added. By default
///   an agency install (`userType` Company) approving every one of `locations`; with
///   `mock_install=Location&mock_location=<id>` a single-location install of `<id>` (any id: it
///   becomes approved). The granted scopes are the requested `scope`. An install approves its
///   locations again after [`super::MockState::uninstall_location`]. Unknown `client_id`, a
///   `response_type` other than `code` or no `redirect_uri`: 400.
/// - `POST /oauth/token`, `grant_type=authorization_code` (`code`, `client_id`, `client_secret`,
///   `redirect_uri`, `user_type` optional but, when given, the install's): the spec's answer,
///   `access_token, token_type, expires_in, refresh_token, scope, userType, companyId,
///   isBulkInstallation, userId`, plus `approvedLocations` (the installed ones) for a Company
///   token and `locationId` for a Location token. A code is used up by its first presentation
///   with the app's credentials, whatever comes of it; unknown, used, or presented with another
///   `redirect_uri`: 401 `invalid_grant`. `grant_type=refresh_token` refreshes either kind,
///   single use, rotating, as [`super::OAuthOptions`] describes; `user_type`, when given, must
///   be the token's (else 400 `invalid_request`).
/// - `POST /oauth/locationToken` (form `companyId`, `locationId`; `Version: 2021-07-28`; an
///   agency token with `oauth.write`): a Location access token for an installed location, with
///   the agency token's scopes and, as in the spec, no refresh token.
/// - `GET /oauth/installedLocations?companyId=…&appId=…` (`Version`; an agency token with
///   `oauth.readonly`; optional `isInstalled`, `locationId`, `query` on the name, `skip`, `limit`
///   as strings): `{locations: [{_id, name, address, isInstalled, installedAt}], count,
///   installToFutureLocations: false}`, `count` the matches before paging. Every location the
///   app was ever approved for is listed, an uninstalled one with `isInstalled: false`; with
///   `isInstalled=true`, only installed ones.
///
/// The two agency routes check, in order: the token (401 `UnauthorizedDTO`), `Version` (400), an
/// agency token (401), the scope (403), the parameters (422), the company (403), then the
/// location (400 when not installed) or the app id (400).
///
/// API requests with a Location token are for its location only: a `locationId` in the query
/// or the body, or a contact of another location, gets 403 `{"statusCode": 403, "message":
/// "The token does not have access to this location."}` after validation, and so does any
/// Contacts request with an agency token. The scope check uses the token's own scopes.
///
/// Token names are deterministic (`mock-code-000001`, `mock-company-access-000002`,
/// `mock-location-refresh-000003`, …). Like `/oauth/token`, these routes are logged (the forms
/// redacted) but are not API requests: no fault, rate limit, gate or latency applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketplaceOptions {
    pub client_id: String,
    pub client_secret: String,
    /// The app's Marketplace id, `installedLocations`' `appId`.
    pub app_id: String,
    /// The agency every install is under.
    pub company_id: String,
    /// The locations an agency install approves.
    pub locations: Vec<String>,
    /// Lifetime of every access token issued (HighLevel's is 24 hours).
    pub access_token_ttl: Duration,
}

/// Whom a token speaks for (its company is always [`MarketplaceOptions::company_id`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Principal {
    Company,
    Location(String),
}

impl Principal {
    fn user_type(&self) -> &'static str {
        match self {
            Principal::Company => "Company",
            Principal::Location(_) => "Location",
        }
    }

    fn is_location(&self, location: &str) -> bool {
        matches!(self, Principal::Location(l) if l == location)
    }
}

/// What a token or code grants.
#[derive(Clone, Debug)]
struct Grant {
    principal: Principal,
    scopes: Vec<String>,
}

struct Access {
    grant: Grant,
    /// `None`: a lifetime beyond `Instant`'s range.
    expires: Option<Instant>,
}

struct Code {
    grant: Grant,
    redirect_uri: String,
}

struct Approval {
    location: String,
    installed: bool,
    installed_at: String,
}

/// The Marketplace's state: codes, tokens, approvals.
#[derive(Default)]
pub(super) struct Marketplace {
    issued: u64,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    /// Live refresh tokens only: a used or revoked one is gone.
    refresh: HashMap<String, Grant>,
    /// In order of first approval.
    approvals: Vec<Approval>,
}

impl Marketplace {
    fn next(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    fn approve(&mut self, location: &str) {
        let now = now_iso8601();
        match self.approvals.iter_mut().find(|a| a.location == location) {
            Some(approval) if approval.installed => {}
            Some(approval) => {
                approval.installed = true;
                approval.installed_at = now;
            }
            None => self.approvals.push(Approval { location: location.to_owned(), installed: true, installed_at: now }),
        }
    }

    pub(super) fn expire_access_tokens(&mut self, now: Instant) {
        for access in self.access.values_mut() {
            access.expires = Some(now);
        }
    }

    fn installed(&self) -> impl Iterator<Item = &str> {
        self.approvals.iter().filter(|a| a.installed).map(|a| a.location.as_str())
    }

    fn is_installed(&self, location: &str) -> bool {
        self.installed().any(|l| l == location)
    }

    /// A new access token for `grant`, and a refresh token when `refreshable`.
    fn issue(&mut self, grant: &Grant, ttl: Duration, refreshable: bool) -> (String, Option<String>) {
        let n = self.next();
        let kind = match grant.principal {
            Principal::Company => "company",
            Principal::Location(_) => "location",
        };
        let access = format!("mock-{kind}-access-{n:06}");
        self.access.insert(access.clone(), Access { grant: grant.clone(), expires: Instant::now().checked_add(ttl) });
        let refresh = refreshable.then(|| {
            let refresh = format!("mock-{kind}-refresh-{n:06}");
            self.refresh.insert(refresh.clone(), grant.clone());
            refresh
        });
        (access, refresh)
    }
}

/// Who an API request's bearer token is, as far as the API's checks go.
pub(super) enum Caller {
    /// The configured token, any token, or an [`super::OAuthOptions`] token: the location's
    /// scopes ([`super::MockOptions::scopes`]), any location.
    Location,
    /// A Marketplace token: its own scopes and principal.
    Marketplace { principal: Principal, scopes: Vec<String> },
}

impl Caller {
    /// The location an API request must be for: `Err` for an agency token, which no Contacts
    /// request accepts; `Ok(None)` for any location.
    pub(super) fn bound_location(&self) -> Result<Option<&str>, Reply> {
        match self {
            Caller::Location => Ok(None),
            Caller::Marketplace { principal: Principal::Company, .. } => Err(location_forbidden()),
            Caller::Marketplace { principal: Principal::Location(location), .. } => Ok(Some(location)),
        }
    }
}

pub(super) fn location_forbidden() -> Reply {
    Reply::error(403, MSG_LOCATION)
}

/// The token of `Authorization: Bearer <token>`, when it is one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn grant_answer(options: &MarketplaceOptions, grant: &Grant, access: &str, refresh: Option<&str>, approved: Vec<String>) -> Value {
    let mut answer = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": whole_seconds_up(options.access_token_ttl),
        "scope": grant.scopes.join(" "),
        "userType": grant.principal.user_type(),
        "companyId": options.company_id,
        "isBulkInstallation": grant.principal == Principal::Company,
        "userId": USER_ID,
    });
    if let Some(refresh) = refresh {
        answer["refresh_token"] = json!(refresh);
    }
    match &grant.principal {
        Principal::Company => answer["approvedLocations"] = json!(approved),
        Principal::Location(location) => answer["locationId"] = json!(location),
    }
    answer
}

impl Marketplace {
    /// The authorization page: `Ok` with the redirect's target, or the refusal.
    pub(super) fn choose_location(&mut self, options: &MarketplaceOptions, path_and_query: &str) -> Result<String, Reply> {
        let query: Vec<(String, String)> = url::form_urlencoded::parse(path_and_query.split_once('?').map_or("", |(_, q)| q).as_bytes()).into_owned().collect();
        let field = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        if field("client_id") != Some(options.client_id.as_str()) {
            return Err(Reply::error(400, "Invalid client_id"));
        }
        if field("response_type") != Some("code") {
            return Err(Reply::error(400, "response_type must be code"));
        }
        let Some(redirect_uri) = field("redirect_uri").filter(|r| !r.is_empty()) else {
            return Err(Reply::error(400, "redirect_uri is required"));
        };
        let (principal, locations) = match (field("mock_install"), field("mock_location")) {
            (None | Some("Company"), _) => (Principal::Company, options.locations.clone()),
            (Some("Location"), Some(location)) if !location.is_empty() => (Principal::Location(location.to_owned()), vec![location.to_owned()]),
            (Some("Location"), _) => return Err(Reply::error(400, "mock_install=Location needs mock_location")),
            (Some(other), _) => return Err(Reply::error(400, format!("mock_install must be Company or Location, not {other}"))),
        };
        let scopes = field("scope").unwrap_or_default().split_whitespace().map(str::to_owned).collect();

        for location in &locations {
            self.approve(location);
        }
        let code = format!("mock-code-{:06}", self.next());
        self.codes.insert(code.clone(), Code { grant: Grant { principal, scopes }, redirect_uri: redirect_uri.to_owned() });
        let mut back = url::form_urlencoded::Serializer::new(String::new());
        back.append_pair("code", &code);
        if let Some(state) = field("state") {
            back.append_pair("state", state);
        }
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        Ok(format!("{redirect_uri}{separator}{}", back.finish()))
    }

    /// `grant_type=authorization_code` at the token endpoint.
    pub(super) fn exchange_code(&mut self, options: &MarketplaceOptions, form: &HashMap<String, String>) -> Reply {
        let field = |name: &str| form.get(name).map(String::as_str);
        if field("client_id") != Some(options.client_id.as_str()) || field("client_secret") != Some(options.client_secret.as_str()) {
            return oauth_error(401, "invalid_client");
        }
        let Some(presented) = field("code") else {
            return oauth_error(400, "invalid_request");
        };
        if field("user_type").is_some_and(|t| t != "Company" && t != "Location") {
            return oauth_error(400, "invalid_request");
        }
        let Some(code) = self.codes.remove(presented) else {
            return oauth_error(401, "invalid_grant");
        };
        if field("redirect_uri") != Some(code.redirect_uri.as_str()) {
            return oauth_error(401, "invalid_grant");
        }
        if field("user_type").is_some_and(|t| t != code.grant.principal.user_type()) {
            return oauth_error(400, "invalid_request");
        }
        let (access, refresh) = self.issue(&code.grant, options.access_token_ttl, true);
        let approved = self.installed().map(str::to_owned).collect();
        Reply::new(200, grant_answer(options, &code.grant, &access, refresh.as_deref(), approved))
    }

    /// Whether `refresh_token` is a live refresh token of the Marketplace's.
    pub(super) fn owns_refresh_token(&self, refresh_token: &str) -> bool {
        self.refresh.contains_key(refresh_token)
    }

    /// `grant_type=refresh_token` for a token the Marketplace issued.
    pub(super) fn refresh(&mut self, options: &MarketplaceOptions, form: &HashMap<String, String>) -> Reply {
        let field = |name: &str| form.get(name).map(String::as_str);
        if field("client_id") != Some(options.client_id.as_str()) || field("client_secret") != Some(options.client_secret.as_str()) {
            return oauth_error(401, "invalid_client");
        }
        let Some(presented) = field("refresh_token") else {
            return oauth_error(400, "invalid_request");
        };
        let Some(grant) = self.refresh.get(presented).cloned() else {
            return oauth_error(401, "invalid_grant");
        };
        if field("user_type").is_some_and(|t| t != grant.principal.user_type()) {
            return oauth_error(400, "invalid_request");
        }
        self.refresh.remove(presented);
        let (access, refresh) = self.issue(&grant, options.access_token_ttl, true);
        let approved = self.installed().map(str::to_owned).collect();
        Reply::new(200, grant_answer(options, &grant, &access, refresh.as_deref(), approved))
    }

    /// The agency token of an agency route, with `scope`: the checks before the parameters.
    fn agency(&self, headers: &HeaderMap, scope: &str) -> Result<Grant, Reply> {
        let grant = bearer(headers).and_then(|token| self.grant_of(token)).ok_or_else(unauthorized)?;
        if headers.get("version").and_then(|v| v.to_str().ok()) != Some(contacts_api::API_VERSION_HEADER) {
            return Err(Reply::error(400, MSG_VERSION));
        }
        if grant.principal != Principal::Company {
            return Err(Reply::error(401, MSG_AGENCY_ONLY));
        }
        if !grant.scopes.iter().any(|s| s == scope) {
            return Err(Reply::new(403, json!({ "statusCode": 403, "message": MSG_FORBIDDEN, "error": "Forbidden" })));
        }
        Ok(grant)
    }

    /// `POST /oauth/locationToken`.
    pub(super) fn location_token(&mut self, options: &MarketplaceOptions, headers: &HeaderMap, body: &[u8]) -> Reply {
        let company = match self.agency(headers, "oauth.write") {
            Ok(company) => company,
            Err(reply) => return reply,
        };
        // The spec takes a form; any other body has none of its fields.
        let form: HashMap<String, String> = if is_form(headers) { url::form_urlencoded::parse(body).into_owned().collect() } else { HashMap::new() };
        let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let problems: Vec<String> =
            ["companyId", "locationId"].iter().filter(|name| field(name).is_none()).map(|name| format!("{name} should not be empty")).collect();
        if !problems.is_empty() {
            return unprocessable(problems);
        }
        if field("companyId") != Some(options.company_id.as_str()) {
            return Reply::error(403, MSG_COMPANY);
        }
        let location = field("locationId").unwrap_or_default();
        if !self.is_installed(location) {
            return Reply::error(400, MSG_NOT_INSTALLED);
        }
        let grant = Grant { principal: Principal::Location(location.to_owned()), scopes: company.scopes };
        let (access, _) = self.issue(&grant, options.access_token_ttl, false);
        Reply::new(
            200,
            json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": whole_seconds_up(options.access_token_ttl),
                "scope": grant.scopes.join(" "),
                "locationId": location,
                "userId": USER_ID,
                "appId": options.app_id,
            }),
        )
    }

    /// `GET /oauth/installedLocations`.
    pub(super) fn installed_locations(&self, options: &MarketplaceOptions, path_and_query: &str, headers: &HeaderMap) -> Reply {
        if let Err(reply) = self.agency(headers, "oauth.readonly") {
            return reply;
        }
        let query = parse_query(path_and_query.split_once('?').map_or("", |(_, q)| q));
        let value = |name: &str| query_value(&query, name).filter(|v| !v.is_empty());
        let mut problems: Vec<String> =
            ["companyId", "appId"].iter().filter(|name| value(name).is_none()).map(|name| format!("{name} should not be empty")).collect();
        let installed = match value("isInstalled") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                problems.push("isInstalled must be a boolean value".to_owned());
                None
            }
        };
        let mut number = |name: &str, default: usize| match value(name).map(str::parse::<usize>) {
            None => default,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                problems.push(format!("{name} must be a number string"));
                default
            }
        };
        let (skip, limit) = (number("skip", 0), number("limit", 20));
        if !problems.is_empty() {
            return unprocessable(problems);
        }
        if value("companyId") != Some(options.company_id.as_str()) {
            return Reply::error(403, MSG_COMPANY);
        }
        if value("appId") != Some(options.app_id.as_str()) {
            return Reply::error(400, MSG_APP);
        }
        let text = value("query").map(str::to_lowercase);
        let matching: Vec<Value> = self
            .approvals
            .iter()
            .filter(|a| installed.is_none_or(|wanted| a.installed == wanted))
            .filter(|a| value("locationId").is_none_or(|l| l == a.location))
            .filter(|a| text.as_deref().is_none_or(|t| location_name(&a.location).to_lowercase().contains(t)))
            .map(|a| {
                json!({
                    "_id": a.location,
                    "name": location_name(&a.location),
                    "address": "1 Mock Street, Springfield",
                    "isInstalled": a.installed,
                    "installedAt": a.installed_at,
                })
            })
            .collect();
        let count = matching.len();
        let page: Vec<Value> = matching.into_iter().skip(skip).take(limit).collect();
        Reply::new(200, json!({ "locations": page, "count": count, "installToFutureLocations": false }))
    }

    /// The grant of an unexpired access token.
    fn grant_of(&self, token: &str) -> Option<Grant> {
        let access = self.access.get(token)?;
        access.expires.is_none_or(|at| Instant::now() < at).then(|| access.grant.clone())
    }

    /// The API caller a token stands for; `None` when `token` is not one of the Marketplace's
    /// that is valid.
    pub(super) fn caller(&self, token: &str) -> Option<Caller> {
        self.grant_of(token).map(|grant| Caller::Marketplace { principal: grant.principal, scopes: grant.scopes })
    }

    /// See [`super::MockState::uninstall_location`].
    pub(super) fn uninstall(&mut self, location_id: &str) {
        if let Some(approval) = self.approvals.iter_mut().find(|a| a.location == location_id) {
            approval.installed = false;
        }
        self.access.retain(|_, a| !a.grant.principal.is_location(location_id));
        self.refresh.retain(|_, g| !g.principal.is_location(location_id));
        self.codes.retain(|_, c| !c.grant.principal.is_location(location_id));
    }

    /// The locations approved so far and whether each is installed, in order of first approval.
    pub(super) fn locations(&self) -> Vec<(String, bool)> {
        self.approvals.iter().map(|a| (a.location.clone(), a.installed)).collect()
    }
}

fn location_name(location: &str) -> String {
    format!("Location {location}")
}
