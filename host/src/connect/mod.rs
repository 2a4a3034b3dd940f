//! Connecting accounts: HighLevel's Marketplace install (authorization code, location tokens,
//! installed locations) and Dialpad's side (API key or OAuth with PKCE, then the webhook and
//! the subscriptions the sync needs).

pub mod dialpad;
pub mod highlevel;
pub mod http;
