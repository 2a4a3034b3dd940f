//! In-memory mock of the parts of Dialpad's API the host uses, after
//! `shared/reference/dialpad/dialpad_api_spec.json`:
//!
//! - `calls`: the call listing, `GET /api/v2/call`, for backfill;
//! - `webhooks`: `GET`/`POST /api/v2/webhooks`, `GET`/`PATCH`/`DELETE /api/v2/webhooks/{id}`;
//! - `subscriptions`: call, SMS and contact event subscriptions, each
//!   `GET`/`POST /api/v2/subscriptions/{kind}` and `GET`/`PATCH`/`DELETE …/{kind}/{id}`;
//! - `oauth`: `GET /oauth2/authorize` (approves at once, with PKCE) and `POST /oauth2/token`.
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
//! behind the client's back.
//!
//! Not implemented: rate limits, scopes and the admin-key requirement, websockets, agent-status
//! and change-log subscriptions, `/oauth2/deauthorize`.

mod calls;
#[cfg(test)]
mod connect_tests;
mod fields;
mod oauth;
pub mod redact;
mod reply;
mod server;
mod store;
mod subscriptions;
#[cfg(test)]
mod tests;
mod webhooks;

pub use calls::{CALL_LIST_PATH, CONCLUDED_STATE};
pub use oauth::DialpadOAuthClient;
pub use server::{DialpadMock, DialpadMockOptions, DialpadRequest, Registered, RegisteredSubscription, RegisteredWebhook};
pub use subscriptions::{CALL_STATES, CONTACT_TYPES, SMS_DIRECTIONS, TARGET_TYPES};
