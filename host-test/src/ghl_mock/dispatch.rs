//! How [`MockState`] answers a request, minus HTTP: auth, version, route (through
//! `contacts_api::OPERATIONS`, `CONVERSATIONS` and `USERS`), scope, validation, a Marketplace
//! token's location, then the operation on the data; and the token endpoint and the
//! Marketplace's routes.

use std::collections::HashMap;
use std::time::Instant;

use axum::http::{header, HeaderMap};
use contacts_api::{Api, Method, Operation, API_VERSION_HEADER, CONVERSATIONS, OPERATIONS, USERS};
use serde_json::{json, Map, Value};

use super::contact_webhooks::change_of;
use super::conversations::{self, Context};
use super::data::Child;
use super::fields::str_field;
use super::marketplace::{bearer, location_forbidden, Caller, MarketplaceOptions, CHOOSE_LOCATION_PATH, INSTALLED_LOCATIONS_PATH, LOCATION_TOKEN_PATH};
use super::oauth::{is_form, oauth_error, OAuthOptions, OAUTH_TOKEN_PATH};
use super::rate_limit::whole_seconds_up;
use super::reply::{invalid_for, unauthorized, unprocessable, version_message, Reply, MSG_FORBIDDEN};
use super::request_log::RecordedRequest;
use super::state::MockState;
use super::time::now_iso8601;
use super::users;
use super::validate::{check_body, check_path, check_query, parse_body, parse_query, query_value};

impl MockState {
    /// Answers one API request and records it in the request log. This is the whole mock minus
    /// HTTP: `method` and `path_and_query` as on the request line, `body` the raw bytes.
    /// Returns the status and the JSON body.
    ///
    /// Faults and the rate limit are HTTP-level behaviours and do not apply here; OAuth access
    /// tokens do ([`MockOptions::oauth`]).
    pub fn handle(&self, method: &str, path_and_query: &str, headers: &HeaderMap, body: &[u8]) -> (u16, Value) {
        let (operation_id, reply) = self.answer(method, path_and_query, headers, body);
        self.log(RecordedRequest::new(method, path_and_query, headers, operation_id, reply.status));
        (reply.status, reply.body)
    }

    /// [`MockState::handle`] without the logging: the operation the request routes to, and the reply.
    pub(super) fn answer(&self, method: &str, path_and_query: &str, headers: &HeaderMap, body: &[u8]) -> (Option<&'static str>, Reply) {
        let matched = operation_of(method, path_and_query);
        let reply = self.respond(method, path_and_query, headers, matched.as_ref(), body);
        (matched.map(|m| m.operation.id), reply)
    }

    pub(super) fn log(&self, request: RecordedRequest) {
        self.lock().requests.push(request);
    }

    /// The checks, always in this order (so a test can predict which error wins):
    /// auth, version (the operation's API's; the Contacts one for an unknown path), route,
    /// scope, then request validation, then a Marketplace token's location, then the
    /// operation itself.
    fn respond(&self, method: &str, path_and_query: &str, headers: &HeaderMap, matched: Option<&contacts_api::Matched>, raw_body: &[u8]) -> Reply {
        let Some(caller) = self.caller(headers) else {
            return unauthorized();
        };
        let version = matched.map_or(Some(API_VERSION_HEADER), |m| m.operation.api.version_header());
        if let Some(version) = version.filter(|v| headers.get("version").and_then(|h| h.to_str().ok()) != Some(*v)) {
            return Reply::error(400, version_message(version));
        }
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let Some(matched) = matched else {
            return Reply::error(404, format!("Cannot {method} {path}"));
        };
        let op = matched.operation;
        let granted = match &caller {
            Caller::Location => self.options.scopes.contains(&op.scope),
            Caller::Marketplace { scopes, .. } => scopes.iter().any(|s| s == op.scope.as_str()),
        };
        if !granted {
            return Reply::new(403, json!({ "statusCode": 403, "message": MSG_FORBIDDEN, "error": "Forbidden" }));
        }

        let query = parse_query(query);
        // The body is parsed before it is validated, like Express's body parser runs before
        // Nest's ValidationPipe: malformed JSON is a 400, never a 422.
        let body = match op.body {
            Some(_) => match parse_body(raw_body) {
                Ok(body) => body,
                Err(reply) => return invalid_for(op.api, reply),
            },
            None => Map::new(),
        };
        let mut problems = check_query(op, &query);
        problems.extend(check_path(op, &matched.params));
        if let Some(rules) = op.body {
            problems.extend(check_body(op, rules, &body));
        }
        if op.api == Api::Conversations {
            problems.extend(conversations::check(op, &body));
        }
        if !problems.is_empty() {
            return invalid_for(op.api, unprocessable(problems));
        }
        let bound = match caller.bound_location() {
            Ok(bound) => bound,
            Err(reply) => return reply,
        };
        if let Some(location) = bound {
            let named = [query_value(&query, "locationId"), str_field(&body, "locationId")];
            if named.into_iter().flatten().any(|named| named != location) {
                return location_forbidden();
            }
        }

        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        match op.api {
            Api::Contacts => self.dispatch(op, &matched.params, &query, body, &format!("http://{host}"), bound),
            Api::Conversations => self.converse(op, &matched.params, &query, &body, bound),
            Api::Users => Reply::new(op.success_status, users::listed(&self.lock().users, query_value(&query, "locationId").unwrap_or_default())),
            // `operation_of` never routes to Dialpad's table.
            Api::Dialpad => Reply::error(404, format!("Cannot {method} {path}")),
        }
    }

    /// A Conversations operation, on the conversations and (read only) the contacts.
    fn converse(
        &self,
        op: &'static Operation,
        params: &[(&'static str, String)],
        query: &[(String, String)],
        body: &Map<String, Value>,
        bound: Option<&str>,
    ) -> Reply {
        let id = params.first().map_or("", |(_, v)| v.as_str());
        let now = now_iso8601();
        let mut data = self.lock();
        let data = &mut *data;
        let cx = Context { contacts: &data.contacts, provider: self.options.conversation_provider_id.as_deref(), bound, now: &now };
        data.conversations.answer(op, id, query, body, &cx)
    }

    /// `Authorization: Bearer <token>` with a non-empty token, equal to the configured one if any.
    /// With OAuth or the Marketplace configured, an unexpired access token they issued is
    /// accepted too, and no token is accepted just for being a token. `None`: the 401.
    fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let token = bearer(headers)?;
        if self.tokens_refused.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        if self.options.marketplace.is_some() {
            if let Some(caller) = self.marketplace_lock().caller(token) {
                return Some(caller);
            }
        }
        let accepted = match (&self.options.oauth, &self.options.marketplace) {
            (None, None) => self.options.token.as_deref().is_none_or(|expected| expected == token),
            _ => self.options.token.as_deref() == Some(token) || self.access_token_valid(token),
        };
        accepted.then_some(Caller::Location)
    }

    /// `origin` is `http://<Host header>`, for the absolute `nextPageUrl` of the deprecated list.
    /// With `bound`, a contact of another location is forbidden (checked under the same lock
    /// as the operation).
    fn dispatch(
        &self,
        op: &'static Operation,
        params: &[(&'static str, String)],
        query: &[(String, String)],
        body: Map<String, Value>,
        origin: &str,
        bound: Option<&str>,
    ) -> Reply {
        let param = |name: &str| params.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str());
        let contact = param("contactId");
        let ok = op.success_status;
        let now = now_iso8601();
        let mut data = self.lock();
        if let Some(location) = bound {
            let owner = data.contact_index(contact).and_then(|i| str_field(&data.contacts[i], "locationId"));
            if owner.is_some_and(|owner| owner != location) {
                return location_forbidden();
            }
        }
        let deleted = (op.id == "delete-contact").then(|| data.contact_index(contact).map(|i| data.contacts[i].clone())).flatten();
        let reply = match op.id {
            // Contacts
            "create-contact" => data.create_contact(body, self.options.allow_duplicates, ok, &now),
            "upsert-contact" => data.upsert_contact(body, self.options.allow_duplicates, ok, &now),
            "get-contact" => data.get_contact(contact, ok),
            "update-contact" => data.update_contact(contact, body, ok, &now),
            "delete-contact" => data.delete_contact(contact, ok),
            // Search and lists
            "get-duplicate-contact" => data.duplicate_contact(query, ok),
            "search-contacts-advanced" => data.search(&body, ok),
            "get-contacts" => data.list_contacts(query, origin, ok),
            "get-contacts-by-businessId" => data.business_contacts(param("businessId"), query, ok),
            // Bulk
            "add-remove-contact-from-business" => data.bulk_business(&body, ok, &now),
            "create-association" => data.bulk_tags(param("type"), &body, ok, &now),
            // Tags
            "add-tags" => data.add_tags(contact, &body, ok, &now),
            "remove-tags" => data.remove_tags(contact, &body, ok, &now),
            // Notes
            "create-note" => data.create_note(contact, body, ok, &now),
            "get-all-notes" => data.all_children(Child::Note, contact, ok),
            "get-note" => data.get_child(Child::Note, contact, param("id"), ok),
            "update-note" => data.update_child(Child::Note, contact, param("id"), body, ok),
            "delete-note" => data.delete_child(Child::Note, contact, param("id"), ok),
            // Tasks
            "get-all-tasks" => data.all_children(Child::Task, contact, ok),
            "create-task" => data.create_task(contact, body, ok),
            "get-task" => data.get_child(Child::Task, contact, param("taskId"), ok),
            "update-task" | "update-task-completed" => data.update_child(Child::Task, contact, param("taskId"), body, ok),
            "delete-task" => data.delete_child(Child::Task, contact, param("taskId"), ok),
            // Appointments
            "get-appointments-for-contact" => data.appointments_of(contact, ok),
            // Followers
            "add-followers-contact" => data.add_followers(contact, &body, ok, &now),
            "remove-followers-contact" => data.remove_followers(contact, &body, ok, &now),
            // Campaigns
            "add-contact-to-campaign" => data.add_to_campaign(contact, param("campaignId"), ok),
            "remove-contact-from-campaign" => data.remove_from_campaigns(contact, Some(param("campaignId")), ok),
            "remove-contact-from-every-campaign" => data.remove_from_campaigns(contact, None, ok),
            // Workflows
            "add-contact-to-workflow" => data.add_to_workflow(contact, param("workflowId"), &body, ok),
            "delete-contact-from-workflow" => data.remove_from_workflow(contact, param("workflowId"), ok),
            // Only reachable if the spec (and so the table) grows an operation the mock lacks.
            other => Reply::error(501, format!("mock: {other} is not implemented yet")),
        };
        // Queued under the lock, so webhooks go out in the order the changes were made.
        if reply.status == ok {
            if let Some((change, contact)) = change_of(op.id, &reply, deleted) {
                self.webhooks.announce(change, &contact);
            }
        }
        reply
    }
}

/// The operation `method` and `path_and_query` route to, if any, in HighLevel's tables (their
/// paths never overlap: `/contacts…`, `/conversations…`, `/users…`).
pub(super) fn operation_of(method: &str, path_and_query: &str) -> Option<contacts_api::Matched> {
    let path = path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path);
    let method = Method::parse(method)?;
    [OPERATIONS, CONVERSATIONS, USERS].into_iter().find_map(|table| contacts_api::match_path_in(table, method, path))
}

// ------------------------------------------------------------------------------------------------
// OAuth
// ------------------------------------------------------------------------------------------------

impl MockState {
    /// The token endpoint, as [`OAuthOptions`] and [`MarketplaceOptions`] describe it: an
    /// authorization code and a refresh token the Marketplace issued go to the Marketplace,
    /// any other refresh token to [`OAuthOptions`].
    pub(super) fn oauth_token(&self, method: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        if method != "POST" || (self.options.oauth.is_none() && self.options.marketplace.is_none()) {
            return Reply::error(404, format!("Cannot {method} {OAUTH_TOKEN_PATH}"));
        }
        if !is_form(headers) {
            return oauth_error(400, "invalid_request");
        }
        let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str);
        match (field("grant_type"), &self.options.marketplace) {
            (Some("authorization_code"), Some(marketplace)) => return self.marketplace_lock().exchange_code(marketplace, &form),
            (Some("refresh_token"), _) => {}
            (Some(_), _) => return oauth_error(400, "unsupported_grant_type"),
            (None, _) => return oauth_error(400, "invalid_request"),
        }
        match (&self.options.oauth, &self.options.marketplace) {
            (Some(options), Some(marketplace)) => match field("refresh_token") {
                Some(token) if self.marketplace_lock().owns_refresh_token(token) => self.marketplace_refresh(marketplace, &form),
                _ => self.location_refresh(options, &form),
            },
            (Some(options), None) => self.location_refresh(options, &form),
            (None, Some(marketplace)) => self.marketplace_refresh(marketplace, &form),
            (None, None) => unreachable!("answered 404 above"),
        }
    }

    /// The Marketplace's refresh-token grant, counted with the others.
    fn marketplace_refresh(&self, options: &MarketplaceOptions, form: &HashMap<String, String>) -> Reply {
        let reply = self.marketplace_lock().refresh(options, form);
        // Never while holding the Marketplace's lock.
        if reply.status == 200 {
            self.oauth_lock().refreshes += 1;
        }
        reply
    }

    /// The authorization page ([`MarketplaceOptions`]): `Ok` with the redirect's target.
    pub(super) fn choose_location(&self, method: &str, path_and_query: &str) -> Result<String, Reply> {
        match self.options.marketplace.as_ref().filter(|_| method == "GET") {
            Some(options) => self.marketplace_lock().choose_location(options, path_and_query),
            None => Err(Reply::error(404, format!("Cannot {method} {CHOOSE_LOCATION_PATH}"))),
        }
    }

    /// `POST /oauth/locationToken` ([`MarketplaceOptions`]).
    pub(super) fn location_token(&self, method: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        match self.options.marketplace.as_ref().filter(|_| method == "POST") {
            Some(options) => self.marketplace_lock().location_token(options, headers, body),
            None => Reply::error(404, format!("Cannot {method} {LOCATION_TOKEN_PATH}")),
        }
    }

    /// `GET /oauth/installedLocations` ([`MarketplaceOptions`]).
    pub(super) fn installed_locations(&self, method: &str, path_and_query: &str, headers: &HeaderMap) -> Reply {
        match self.options.marketplace.as_ref().filter(|_| method == "GET") {
            Some(options) => self.marketplace_lock().installed_locations(options, path_and_query, headers),
            None => Reply::error(404, format!("Cannot {method} {INSTALLED_LOCATIONS_PATH}")),
        }
    }

    /// The refresh-token grant of [`OAuthOptions`].
    fn location_refresh(&self, options: &OAuthOptions, form: &HashMap<String, String>) -> Reply {
        let field = |name: &str| form.get(name).map(String::as_str);
        if field("client_id") != Some(options.client_id.as_str()) || field("client_secret") != Some(options.client_secret.as_str()) {
            return oauth_error(401, "invalid_client");
        }
        if field("user_type").is_some_and(|t| t != "Location") {
            return oauth_error(400, "invalid_request");
        }
        let Some(presented) = field("refresh_token") else {
            return oauth_error(400, "invalid_request");
        };

        let mut tokens = self.oauth_lock();
        if tokens.refresh_token.as_deref() != Some(presented) {
            return oauth_error(401, "invalid_grant");
        }
        tokens.issued += 1;
        let access_token = format!("mock-access-{:06}", tokens.issued);
        let refresh_token = format!("mock-refresh-{:06}", tokens.issued);
        tokens.access.insert(access_token.clone(), Instant::now().checked_add(options.access_token_ttl));
        tokens.refresh_token = Some(refresh_token.clone());
        tokens.refreshes += 1;
        let scope = self.options.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        Reply::new(
            200,
            json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": whole_seconds_up(options.access_token_ttl),
                "refresh_token": refresh_token,
                "scope": scope,
                "userType": "Location",
                "locationId": options.location_id,
            }),
        )
    }
}
