//! In-memory mock of HighLevel's Contacts API v2 (`Version: 2021-07-28`), and of the parts of
//! the Conversations and Users APIs the sync uses (`conversations.rs`, `users.rs`).
//!
//! The mock exists so the plugin can be exercised end to end without a HighLevel account, and so
//! tests can assert the exact list of requests the plugin made. It aims to be *faithful* rather
//! than convenient: a request the real server would reject must be rejected here too, or the
//! tests would pass against the mock and fail in production.
//!
//! One table keeps it honest instead of a second hand-written description of the API:
//! [`contacts_api::OPERATIONS`], generated from the official spec, gives routing (through
//! [`contacts_api::match_path`]), scopes, success statuses and request validation (required query
//! parameters, the body whitelist, required body properties and their JSON types), so a property
//! the spec does not whitelist gets the same 422 the real NestJS server answers. The only spec
//! text the mock reads itself is the common error schemas, for the 401/422 texts.
//!
//! All 32 operations are implemented, with the response shapes the spec declares. Behaviour the
//! spec does not describe (error texts for 400/403/404, the duplicate-contact 400, the search body,
//! the deprecated list's paging) follows what the real server is reported to do; see
//! `shared/reference/notes/ghl-contacts-api.md`.
//!
//! Three opt-in behaviours make it a hostile server for resilience tests, each in its own file:
//! deterministic fault injection ([`Faults`], `faults.rs`), HighLevel's burst rate limit
//! ([`RateLimit`], `rate_limit.rs`), and the OAuth token endpoint with expiring, rotating tokens
//! ([`OAuthOptions`], `oauth.rs`). Also opt-in, the Marketplace's side of OAuth: an app's
//! install, agency and location tokens, and tokens that reach their own location only
//! ([`MarketplaceOptions`], `marketplace.rs`).
//!
//! The Conversations and Users operations go through the same pipeline, routed through their
//! own tables (`contacts_api::CONVERSATIONS`, `USERS`), each with its API's `Version` header,
//! and answer validation failures with 400 (their specs declare no 422). Contact changes,
//! through the API or [`MockServer::edit_contact`], send signed contact webhooks to the URL of
//! [`MockServer::set_contact_webhook`] (`contact_webhooks.rs`).

mod backstage;
mod connection;
mod contact_webhooks;
mod conversations;
mod data;
mod dispatch;
mod faults;
mod fields;
mod handlers;
mod loopback;
mod marketplace;
mod oauth;
mod options;
mod rate_limit;
mod reply;
mod request_log;
mod search;
mod server;
mod state;
#[cfg(test)]
mod tests;
mod time;
mod users;
mod validate;

pub use crate::outbox::WebhookDelivery;
pub use faults::{FaultKind, Faults};
pub use handlers::router;
pub use loopback::LoopbackServer;
pub use marketplace::MarketplaceOptions;
pub use oauth::OAuthOptions;
pub use options::{MockOptions, DEFAULT_CONVERSATION_PROVIDER_ID};
pub use rate_limit::RateLimit;
pub use request_log::RecordedRequest;
pub use server::{Holdings, MockServer};
pub use state::MockState;
