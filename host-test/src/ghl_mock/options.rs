//! How a mock behaves: [`MockOptions`].

use std::time::Duration;

use contacts_api::Scope;

use super::faults::Faults;
use super::marketplace::MarketplaceOptions;
use super::oauth::OAuthOptions;
use super::rate_limit::RateLimit;

/// [`MockOptions::conversation_provider_id`]'s default.
pub const DEFAULT_CONVERSATION_PROVIDER_ID: &str = "mock-call-provider";

/// How a mock behaves; the knobs mirror settings of a real HighLevel location and token.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// The only bearer token accepted; `None` accepts any bearer token. With [`MockOptions::oauth`]
    /// or [`MockOptions::marketplace`] set, the access tokens they issue are accepted too, and
    /// `None` accepts only those.
    pub token: Option<String>,
    /// The location's "Allow Duplicate Contact" setting: when false, creating a contact whose
    /// email or phone is already used in the location fails with 400.
    pub allow_duplicates: bool,
    /// Scopes granted to the token; operations needing another scope answer 403. By default
    /// every scope the sync uses: Contacts, Conversations (the call log) and Users.
    pub scopes: Vec<Scope>,
    /// Artificial latency added to every API request (not the `/__mock/*` routes) before it is
    /// answered, to make benchmarks see something like a network round trip. Zero by default;
    /// [`MockState::set_latency`] changes it at runtime.
    pub latency: Duration,
    /// Faults injected into API requests from the start; `None` (the default) injects none.
    /// [`MockState::set_faults`] changes them at runtime.
    pub faults: Option<Faults>,
    /// A burst rate limit like HighLevel's; `None` (the default) never limits.
    /// [`MockState::set_rate_limit`] changes it at runtime.
    pub rate_limit: Option<RateLimit>,
    /// Serves `POST /oauth/token` and requires the access tokens it issues; `None` (the default)
    /// answers 404 there.
    pub oauth: Option<OAuthOptions>,
    /// Serves the Marketplace's OAuth (the authorization page, the authorization-code grant,
    /// location tokens, installed locations; see [`MarketplaceOptions`]) and accepts the access
    /// tokens it issues, each for its own location only; `None` (the default) serves none of it.
    pub marketplace: Option<MarketplaceOptions>,
    /// The `conversationProviderId` of the location's call provider (the Marketplace app's
    /// Conversation Provider of type Call): call messages naming another are refused with 400.
    /// `None` accepts any. `Some("mock-call-provider")` by default.
    pub conversation_provider_id: Option<String>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            token: None,
            allow_duplicates: false,
            scopes: Scope::HIGHLEVEL.to_vec(),
            latency: Duration::ZERO,
            faults: None,
            rate_limit: None,
            oauth: None,
            marketplace: None,
            conversation_provider_id: Some(DEFAULT_CONVERSATION_PROVIDER_ID.to_owned()),
        }
    }
}
