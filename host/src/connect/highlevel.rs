//! HighLevel's Marketplace OAuth, for the app the sync is installed as: the authorization page
//! an agency or location admin is sent to, the token endpoint (authorization code, refresh),
//! agency token → location token, and the locations the app is installed on.
//!
//! Paths, form fields, query parameters and answers follow HighLevel's official OAuth spec
//! (`apps/oauth.json` of `GoHighLevel/highlevel-api-docs`) and its Authorization page; where
//! the spec is loose (optional fields, an example of the wrong type) the parsing says why it
//! accepts what it accepts.
//!
//! Every request goes through [`super::http::send`], the client the plugin's requests use.
//! Secrets stay [`Secret`]s: they are exposed only into a request, and no error names one.

use super::http::{body, send, Answer, Body};
use super::ConnectError;
use crate::capability::secret::Secret;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// The token endpoint's and the API's origin.
pub const DEFAULT_API_BASE: &str = "https://services.leadconnectorhq.com";
/// Where the authorization page is.
pub const DEFAULT_MARKETPLACE_BASE: &str = "https://marketplace.gohighlevel.com";
/// The authorization page's origin for white-labeled agencies.
pub const WHITE_LABEL_MARKETPLACE_BASE: &str = "https://marketplace.leadconnectorhq.com";
/// The authorization page, as HighLevel's Authorization page gives it for both origins.
pub const AUTHORIZE_PATH: &str = "/v2/oauth/chooselocation";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const LOCATION_TOKEN_PATH: &str = "/oauth/locationToken";
pub const INSTALLED_LOCATIONS_PATH: &str = "/oauth/installedLocations";
/// The only `Version` the spec allows on `locationToken` and `installedLocations`
/// (`/oauth/token` takes none).
pub const API_VERSION: &str = "2021-07-28";

/// Installed locations per page: the spec's default `limit`, which any server accepts, so a
/// shorter page reliably means the last one.
const INSTALLED_PAGE: usize = 20;
/// A server that ignores `skip` would page forever; 20,000 locations is beyond any agency.
const MAX_INSTALLED_PAGES: usize = 1000;

/// A Marketplace app: its credentials, what it asks for, and where HighLevel is.
#[derive(Clone, Debug)]
pub struct MarketplaceApp {
    pub client_id: String,
    pub client_secret: Secret,
    /// One of the app's registered redirect URIs; the code comes back to it.
    pub redirect_uri: String,
    /// The scopes to ask for (`contacts.readonly`, `oauth.write`, …).
    pub scopes: Vec<String>,
    /// The app's id in the Marketplace; `installedLocations` requires it.
    pub app_id: Option<String>,
    /// Origin of the token endpoint and the API, [`DEFAULT_API_BASE`].
    pub api_base: String,
    /// Origin of the authorization page, [`DEFAULT_MARKETPLACE_BASE`] or
    /// [`WHITE_LABEL_MARKETPLACE_BASE`].
    pub marketplace_base: String,
    /// For each request: connect, first byte, between bytes, and in total.
    pub timeout: Duration,
}

/// Whose token: an agency's (`Company`) or a sub-account's (`Location`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserType {
    Company,
    Location,
}

impl UserType {
    /// The spelling of `user_type` and `userType`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Company => "Company",
            UserType::Location => "Location",
        }
    }

    fn parse(value: &str) -> Option<UserType> {
        match value {
            "Company" => Some(UserType::Company),
            "Location" => Some(UserType::Location),
            _ => None,
        }
    }
}

impl fmt::Display for UserType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token request granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub access: Secret,
    /// `None` from `locationToken`: the spec's answer has no refresh token, so a location token
    /// minted from an agency token is minted again, not refreshed.
    pub refresh: Option<Secret>,
    /// Zero when the answer gave none: refresh before use rather than trust a guess.
    pub expires_in: Duration,
    pub user_type: UserType,
    pub company_id: Option<String>,
    pub location_id: Option<String>,
    /// From `scope`, space-separated.
    pub scopes: Vec<String>,
    /// The locations an agency install approved (`approvedLocations`); a location token can be
    /// asked for each.
    pub approved_locations: Vec<String>,
    pub is_bulk_installation: bool,
    /// Who installed the app (`userId`, the one field the spec requires).
    pub user_id: Option<String>,
}

/// A location under the company, as `installedLocations` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledLocation {
    /// `_id`.
    pub id: String,
    pub name: String,
    pub address: String,
    pub is_installed: bool,
}

impl MarketplaceApp {
    /// An app on HighLevel's own origins, with a 30-second timeout and no app id.
    pub fn new(client_id: impl Into<String>, client_secret: Secret, redirect_uri: impl Into<String>, scopes: Vec<String>) -> MarketplaceApp {
        MarketplaceApp {
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            scopes,
            app_id: None,
            api_base: DEFAULT_API_BASE.to_string(),
            marketplace_base: DEFAULT_MARKETPLACE_BASE.to_string(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The page to send the installing admin to. `state` comes back with the code: pass a value
    /// bound to the admin's session and check it on the way back.
    ///
    /// Spaces are `%20`, not `+`: the scopes are space-separated, and `+` is a space only to
    /// form decoders.
    pub fn authorize_url(&self, state: &str) -> String {
        let scope = self.scopes.join(" ");
        let pairs = [
            ("response_type", "code"),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("client_id", self.client_id.as_str()),
            ("scope", scope.as_str()),
            ("state", state),
        ];
        let query: Vec<String> = pairs.iter().map(|(name, value)| format!("{name}={}", query_encode(value))).collect();
        format!("{}{AUTHORIZE_PATH}?{}", self.marketplace_base.trim_end_matches('/'), query.join("&"))
    }

    /// Exchanges the code the redirect brought for tokens of `user_type` (`Company` for an
    /// agency install, whose grant lists the approved locations).
    pub async fn exchange_code(&self, code: &str, user_type: UserType) -> Result<Grant, ConnectError> {
        let answer = self.send(::http::Method::POST, TOKEN_PATH, None, Some(self.code_form(code, user_type)), "token endpoint").await?;
        Grant::from_answer(&success(&answer)?, user_type, None)
    }

    /// A new access token, and a new refresh token: the one presented is used up, so store the
    /// new one before anything else.
    pub async fn refresh(&self, refresh_token: &Secret, user_type: UserType) -> Result<Grant, ConnectError> {
        let answer = self.send(::http::Method::POST, TOKEN_PATH, None, Some(self.refresh_form(refresh_token, user_type)), "token endpoint").await?;
        Grant::from_answer(&success(&answer)?, user_type, None)
    }

    /// A location's access token, minted with the agency's (`oauth.write`). The grant has no
    /// refresh token (see [`Grant::refresh`]); the company and location default to the ones
    /// asked for, since the spec's answer names only the location.
    pub async fn location_token(&self, company_access: &Secret, company_id: &str, location_id: &str) -> Result<Grant, ConnectError> {
        let form = location_token_form(company_id, location_id);
        let answer = self.send(::http::Method::POST, LOCATION_TOKEN_PATH, Some(company_access), Some(form), "locationToken").await?;
        Grant::from_answer(&success(&answer)?, UserType::Location, Some((company_id, location_id)))
    }

    /// The locations of `company_id` the app is installed on, every page, with the agency's
    /// token (`oauth.readonly`). Needs [`MarketplaceApp::app_id`]: the spec requires `appId`.
    pub async fn installed_locations(&self, company_access: &Secret, company_id: &str) -> Result<Vec<InstalledLocation>, ConnectError> {
        let Some(app_id) = self.app_id.as_deref() else {
            return Err(ConnectError::Malformed("installedLocations needs the app's id (appId), and MarketplaceApp::app_id is not set".into()));
        };
        let mut found = Vec::new();
        for page in 0..MAX_INSTALLED_PAGES {
            let path = format!("{INSTALLED_LOCATIONS_PATH}?{}", installed_locations_query(company_id, app_id, page * INSTALLED_PAGE));
            let answer = self.send(::http::Method::GET, &path, Some(company_access), None, "installedLocations").await?;
            let json = success(&answer)?;
            let Some(locations) = json["locations"].as_array() else {
                return Err(ConnectError::Malformed("installedLocations answered without a locations list".into()));
            };
            for location in locations {
                found.push(InstalledLocation::from_answer(location)?);
            }
            let total = json["count"].as_u64().and_then(|n| usize::try_from(n).ok());
            if locations.len() < INSTALLED_PAGE || total.is_some_and(|total| found.len() >= total) {
                return Ok(found);
            }
        }
        Err(ConnectError::Malformed(format!("installedLocations had more than {MAX_INSTALLED_PAGES} pages")))
    }

    fn code_form(&self, code: &str, user_type: UserType) -> String {
        form_string([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose()),
            ("user_type", user_type.as_str()),
            ("redirect_uri", &self.redirect_uri),
        ])
    }

    fn refresh_form(&self, refresh_token: &Secret, user_type: UserType) -> String {
        form_string([
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose()),
            ("user_type", user_type.as_str()),
        ])
    }

    /// One request to the API origin: a form body when there is one, the agency's bearer token
    /// and `Version` when `bearer` is given (the spec's two agency routes need both).
    async fn send(
        &self,
        method: ::http::Method,
        path_and_query: &str,
        bearer: Option<&Secret>,
        form: Option<String>,
        what: &str,
    ) -> Result<Answer, ConnectError> {
        let url = format!("{}{path_and_query}", self.api_base.trim_end_matches('/'));
        let mut request = ::http::Request::builder().method(method).uri(url).header(::http::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.header(::http::header::AUTHORIZATION, format!("Bearer {}", token.expose())).header("Version", API_VERSION);
        }
        let request = match form {
            Some(form) => request.header(::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body(form)),
            None => request.body(empty()),
        };
        // `http::Error` names what is wrong, never the value, so the token cannot leak here.
        let request = request.map_err(|e| ConnectError::Transport(format!("{what}: the request could not be built: {e}")))?;
        Ok(send(request, self.timeout, what).await?)
    }
}

fn empty() -> Body {
    body(bytes::Bytes::new())
}

fn location_token_form(company_id: &str, location_id: &str) -> String {
    form_string([("companyId", company_id), ("locationId", location_id)])
}

/// `isInstalled=true`: the list is of installs, not of every location under the company.
fn installed_locations_query(company_id: &str, app_id: &str, skip: usize) -> String {
    let (skip, limit) = (skip.to_string(), INSTALLED_PAGE.to_string());
    form_string([("companyId", company_id), ("appId", app_id), ("isInstalled", "true"), ("skip", &skip), ("limit", &limit)])
}

fn form_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    form.finish()
}

/// Form encoding, but with `%20` for a space (the serializer's `+` stands for `%2B` only after
/// it, so the swap is exact).
fn query_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The answer's JSON when its status is a success, else [`ConnectError::Refused`] with the
/// answer's error field.
fn success(answer: &Answer) -> Result<Value, ConnectError> {
    if !(200..300).contains(&answer.status) {
        return Err(ConnectError::Refused { status: answer.status, reason: answer.reason() });
    }
    serde_json::from_slice(&answer.body).map_err(|_| ConnectError::Malformed(format!("a {} answer that is not JSON", answer.status)))
}

fn text(json: &Value, name: &str) -> Option<String> {
    json[name].as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

impl Grant {
    /// `requested` stands in for a missing `userType` (`locationToken`'s answer has none);
    /// `asked` (company, location) for a missing `companyId` or `locationId`.
    fn from_answer(json: &Value, requested: UserType, asked: Option<(&str, &str)>) -> Result<Grant, ConnectError> {
        let Some(access) = text(json, "access_token") else {
            return Err(ConnectError::Malformed("no access_token in the answer".into()));
        };
        let user_type = match json["userType"].as_str() {
            None => requested,
            Some(value) => UserType::parse(value).ok_or_else(|| ConnectError::Malformed(format!("userType {value:?} is neither Company nor Location")))?,
        };
        // A number by the spec; a numeric string is taken too, as many token endpoints send one.
        let expires_in = match &json["expires_in"] {
            Value::Null => Duration::ZERO,
            Value::Number(n) => n.as_f64().and_then(seconds).ok_or_else(|| ConnectError::Malformed(format!("expires_in {n} is not a lifetime")))?,
            Value::String(s) => {
                s.trim().parse().ok().and_then(seconds).ok_or_else(|| ConnectError::Malformed(format!("expires_in {s:?} is not a lifetime")))?
            }
            other => return Err(ConnectError::Malformed(format!("expires_in is {other}, not a number"))),
        };
        Ok(Grant {
            access: Secret::new(access),
            refresh: text(json, "refresh_token").map(Secret::new),
            expires_in,
            user_type,
            company_id: text(json, "companyId").or_else(|| asked.map(|(company, _)| company.to_string())),
            location_id: text(json, "locationId").or_else(|| asked.map(|(_, location)| location.to_string())),
            scopes: json["scope"].as_str().unwrap_or_default().split_whitespace().map(str::to_string).collect(),
            approved_locations: json["approvedLocations"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect(),
            // The spec's own example of this boolean is the string "Bearer": anything but `true`
            // is not a bulk installation.
            is_bulk_installation: json["isBulkInstallation"].as_bool().unwrap_or(false),
            user_id: text(json, "userId"),
        })
    }
}

fn seconds(value: f64) -> Option<Duration> {
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value.min(u32::MAX as f64)))
}

impl InstalledLocation {
    /// `_id` is all the sync needs to go on; `name` and `address` are required by the spec too,
    /// but only shown, so a location without them is kept.
    fn from_answer(json: &Value) -> Result<InstalledLocation, ConnectError> {
        let Some(id) = text(json, "_id") else {
            return Err(ConnectError::Malformed("an installed location without _id".into()));
        };
        Ok(InstalledLocation {
            id,
            name: text(json, "name").unwrap_or_default(),
            address: text(json, "address").unwrap_or_default(),
            // Optional in the spec; the list was asked with `isInstalled=true`.
            is_installed: json["isInstalled"].as_bool().unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app() -> MarketplaceApp {
        MarketplaceApp {
            app_id: Some("app-1".into()),
            ..MarketplaceApp::new(
                "client-1",
                Secret::new("s3cret&=+"),
                "https://sync.example/oauth/highlevel?tenant=a b&x=1",
                vec!["contacts.readonly".into(), "conversations/message.write".into(), "oauth.write".into()],
            )
        }
    }

    #[test]
    fn the_authorize_url_follows_the_authorization_page() {
        let url = app().authorize_url("st8 &+/=");
        assert_eq!(
            url,
            "https://marketplace.gohighlevel.com/v2/oauth/chooselocation?response_type=code\
             &redirect_uri=https%3A%2F%2Fsync.example%2Foauth%2Fhighlevel%3Ftenant%3Da%20b%26x%3D1\
             &client_id=client-1\
             &scope=contacts.readonly%20conversations%2Fmessage.write%20oauth.write\
             &state=st8%20%26%2B%2F%3D"
        );
        // Decoded by a standard parser, every value comes back as it was.
        let parsed = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs[1], ("redirect_uri".into(), "https://sync.example/oauth/highlevel?tenant=a b&x=1".into()));
        assert_eq!(pairs[3], ("scope".into(), "contacts.readonly conversations/message.write oauth.write".into()));
        assert_eq!(pairs[4], ("state".into(), "st8 &+/=".into()));

        let white_label = MarketplaceApp { marketplace_base: format!("{WHITE_LABEL_MARKETPLACE_BASE}/"), scopes: vec![], ..app() };
        assert!(white_label.authorize_url("s").starts_with("https://marketplace.leadconnectorhq.com/v2/oauth/chooselocation?response_type=code&"));
        assert!(white_label.authorize_url("s").contains("&scope=&state=s"));
    }

    #[test]
    fn the_form_bodies_are_the_spec_fields() {
        let app = app();
        assert_eq!(
            app.code_form("c0de/+", UserType::Company),
            "grant_type=authorization_code&code=c0de%2F%2B&client_id=client-1&client_secret=s3cret%26%3D%2B&user_type=Company\
             &redirect_uri=https%3A%2F%2Fsync.example%2Foauth%2Fhighlevel%3Ftenant%3Da+b%26x%3D1"
        );
        assert_eq!(
            app.refresh_form(&Secret::new("r e"), UserType::Location),
            "grant_type=refresh_token&refresh_token=r+e&client_id=client-1&client_secret=s3cret%26%3D%2B&user_type=Location"
        );
        assert_eq!(location_token_form("comp 1", "loc&2"), "companyId=comp+1&locationId=loc%262");
        assert_eq!(installed_locations_query("comp-1", "app-1", 40), "companyId=comp-1&appId=app-1&isInstalled=true&skip=40&limit=20");
    }

    #[test]
    fn a_company_grant() {
        let answer = json!({
            "access_token": "at", "token_type": "Bearer", "expires_in": 86399, "refresh_token": "rt",
            "scope": "oauth.readonly  oauth.write", "userType": "Company", "companyId": "comp-1",
            "approvedLocations": ["loc-1", "loc-2", 3], "isBulkInstallation": true, "userId": "user-1",
        });
        let grant = Grant::from_answer(&answer, UserType::Location, None).unwrap();
        assert_eq!(
            grant,
            Grant {
                access: Secret::new("at"),
                refresh: Some(Secret::new("rt")),
                expires_in: Duration::from_secs(86399),
                user_type: UserType::Company,
                company_id: Some("comp-1".into()),
                location_id: None,
                scopes: vec!["oauth.readonly".into(), "oauth.write".into()],
                approved_locations: vec!["loc-1".into(), "loc-2".into()],
                is_bulk_installation: true,
                user_id: Some("user-1".into()),
            }
        );
        assert!(!format!("{grant:?}").contains("at\""), "{grant:?}");
    }

    #[test]
    fn a_location_token_grant_fills_in_what_the_answer_leaves_out() {
        // The spec's example answer of `locationToken`.
        let answer = json!({
            "access_token": "ab12dc0ae1234a7898f9ff06d4f69gh", "token_type": "Bearer", "expires_in": 86399,
            "scope": "conversations/message.readonly conversations/message.write", "locationId": "l1C08ntBrFjLS0elLIYU",
            "planId": "l1C08ntBrFjLS0elLIYU", "userId": "l1C08ntBrFjLS0elLIYU", "appId": "6578278e879ad2646715ba9c",
        });
        let grant = Grant::from_answer(&answer, UserType::Location, Some(("comp-1", "loc-1"))).unwrap();
        assert_eq!(grant.refresh, None);
        assert_eq!(grant.user_type, UserType::Location);
        assert_eq!((grant.company_id.as_deref(), grant.location_id.as_deref()), (Some("comp-1"), Some("l1C08ntBrFjLS0elLIYU")));
        let grant = Grant::from_answer(&json!({ "access_token": "x", "expires_in": "3600.5" }), UserType::Location, Some(("comp-1", "loc-1"))).unwrap();
        assert_eq!((grant.location_id.as_deref(), grant.expires_in), (Some("loc-1"), Duration::from_secs_f64(3600.5)));
    }

    #[test]
    fn loose_and_broken_answers() {
        // The spec's example of the token answer: `isBulkInstallation` is "Bearer".
        let grant = Grant::from_answer(&json!({ "access_token": "x", "isBulkInstallation": "Bearer", "userId": "u" }), UserType::Company, None).unwrap();
        assert!(!grant.is_bulk_installation);
        assert_eq!((grant.user_type, grant.expires_in, grant.scopes.len()), (UserType::Company, Duration::ZERO, 0));

        let malformed = |json: Value| match Grant::from_answer(&json, UserType::Company, None) {
            Err(ConnectError::Malformed(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(malformed(json!({ "refresh_token": "secret-rt" })), "no access_token in the answer");
        assert_eq!(malformed(json!({ "access_token": "" })), "no access_token in the answer");
        assert_eq!(malformed(json!({ "access_token": "x", "userType": "Agency" })), "userType \"Agency\" is neither Company nor Location");
        assert_eq!(malformed(json!({ "access_token": "x", "expires_in": -1 })), "expires_in -1 is not a lifetime");
        assert_eq!(malformed(json!({ "access_token": "x", "expires_in": [] })), "expires_in is [], not a number");

        assert_eq!(
            InstalledLocation::from_answer(&json!({ "_id": "loc-1", "name": "Main" })).unwrap(),
            InstalledLocation { id: "loc-1".into(), name: "Main".into(), address: String::new(), is_installed: true }
        );
        assert!(matches!(InstalledLocation::from_answer(&json!({ "name": "Main" })), Err(ConnectError::Malformed(_))));
    }

    #[test]
    fn refusals_carry_the_error_field_only() {
        let answer = Answer { status: 401, body: bytes::Bytes::from(r#"{"error":"invalid_grant","refresh_token":"leak"}"#) };
        assert_eq!(success(&answer), Err(ConnectError::Refused { status: 401, reason: "invalid_grant".into() }));
        let answer = Answer { status: 422, body: bytes::Bytes::from(r#"{"statusCode":422,"message":["companyId should not be empty"]}"#) };
        assert_eq!(success(&answer), Err(ConnectError::Refused { status: 422, reason: "refused".into() }));
        let answer = Answer { status: 200, body: bytes::Bytes::from("<html>") };
        assert_eq!(success(&answer), Err(ConnectError::Malformed("a 200 answer that is not JSON".into())));
        assert_eq!(ConnectError::from("token endpoint: no answer in 5 ms".to_string()).to_string(), "no answer: token endpoint: no answer in 5 ms");
        assert_eq!(ConnectError::Refused { status: 401, reason: "invalid_grant".into() }.to_string(), "refused (401): invalid_grant");
    }

    #[test]
    fn the_app_never_prints_its_secret() {
        let printed = format!("{:?}", app());
        assert!(printed.contains("client-1") && !printed.contains("s3cret"), "{printed}");
    }

    #[tokio::test]
    async fn installed_locations_needs_the_app_id() {
        let app = MarketplaceApp { app_id: None, api_base: "http://127.0.0.1:9".into(), ..app() };
        let error = app.installed_locations(&Secret::new("t"), "comp-1").await.unwrap_err();
        assert!(matches!(error, ConnectError::Malformed(ref m) if m.contains("appId")), "{error}");
    }
}
