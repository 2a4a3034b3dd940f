//! In-memory mock of the parts of Dialpad's API the host uses, after
//! `shared/reference/dialpad/dialpad_api_spec.json`:
//!
//! - `calls`: the call listing, `GET /api/v2/call`, for backfill;
//! - `webhooks`: `GET`/`POST /api/v2/webhooks`, `GET`/`PATCH`/`DELETE /api/v2/webhooks/{id}`;
//! - `subscriptions`: call, SMS and contact event subscriptions, each
//!   `GET`/`POST /api/v2/subscriptions/{kind}` and `GET`/`PATCH`/`DELETE …/{kind}/{id}`;
//! - `oauth`: `GET /oauth2/authorize` (approves at once, with PKCE) and `POST /oauth2/token`;
//! - routed through `contacts_api::DIALPAD` (`operations.rs`), each body checked against the
//!   table's schema (`checks.rs`): `contacts` (create, create-or-update by uid, get, update,
//!   delete), `screen_pop`, `share_links` (recording share links), `click_to_call`
//!   (`POST /api/v2/call`) and `users` (`GET /api/v2/users`, seeded with the fixtures' agents).
//!   Contact changes go out as signed contact events to the contact subscriptions
//!   (`contact_events.rs`); contact creates, screen pops and calls are rate limited as the spec
//!   says (`limits.rs`).
//!
//! Common rules:
//!
//! - **Auth** (every `/api/v2/` path): the API key as `Authorization: Bearer <key>` or as
//!   `?apikey=<key>` (the spec's two security schemes), or an access token the OAuth endpoint
//!   issued and that has not expired, the same two ways. Missing or wrong → 401. The OAuth
//!   endpoints take no key (the spec's global security would demand one; no client has one yet).
//! - **Errors**: `{"error": {"code": <status>, "message": "…"}}` (the OAuth endpoints answer
//!   RFC 6749's `{"error", "error_description"}`). An unknown path → 404 (before auth); a method
//!   the path does not have → 405.
//! - **Ids** come from one counter shared by webhooks and subscriptions (so an id of one kind
//!   used as another is a 404), and are written as strings, as the spec's examples write int64.
//! - **Logging**: every request is recorded, refused ones included ([`DialpadMock::requests`]):
//!   method, path and query as received, status, and the body, with the values of
//!   [`redact::SECRET_FIELDS`] replaced by `REDACTED` in the query and the body.
//!
//! Two fault knobs for resilience tests: [`DialpadMock::fail_with`] (every request gets one
//! status until cleared) and [`DialpadMock::fail_request_number`] (one call-list request gets a
//! 503). Test hooks: [`DialpadMock::registered`] lists the webhooks and subscriptions;
//! [`DialpadMock::add_webhook`], [`DialpadMock::add_subscription`],
//! [`DialpadMock::remove_subscription`] and [`DialpadMock::set_subscription_enabled`] change them
//! behind the client's back. For contacts and the agents' tools (`backstage.rs`):
//! [`DialpadMock::add_user`], [`DialpadMock::edit_contact`] (a person's edit, one `Updated`
//! event), [`DialpadMock::set_rate_limit`], [`DialpadMock::wait_webhooks_delivered`] and
//! [`DialpadMock::contact_event_deliveries`], and readers of the contacts, screen pops, share
//! links and initiated calls.
//!
//! Not implemented: the other endpoints' rate limits, scopes and the admin-key requirement,
//! websockets, agent-status and change-log subscriptions, `/oauth2/deauthorize`.

#[cfg(test)]
mod api_tests;
mod backstage;
mod calls;
mod checks;
mod click_to_call;
#[cfg(test)]
mod connect_tests;
mod contact_events;
mod contacts;
#[cfg(test)]
mod contacts_tests;
#[cfg(test)]
mod desk_tests;
mod fields;
mod limits;
mod oauth;
mod operations;
pub mod redact;
mod reply;
mod screen_pop;
mod server;
mod share_links;
mod store;
mod subscriptions;
#[cfg(test)]
mod tests;
mod users;
mod webhooks;

pub use crate::outbox::WebhookDelivery;
pub use calls::{CALL_LIST_PATH, CONCLUDED_STATE};
pub use click_to_call::InitiatedCall;
pub use limits::DialpadLimit;
pub use oauth::DialpadOAuthClient;
pub use screen_pop::ScreenPop;
pub use server::{DialpadMock, DialpadMockOptions, DialpadRequest, Registered, RegisteredSubscription, RegisteredWebhook};
pub use subscriptions::{CALL_STATES, CONTACT_TYPES, SMS_DIRECTIONS, TARGET_TYPES};
