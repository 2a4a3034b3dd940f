//! Connecting accounts: HighLevel's Marketplace install (authorization code, location tokens,
//! installed locations) and Dialpad's side (API key or OAuth with PKCE, then the webhook and
//! the subscriptions the sync needs).

pub mod dialpad;
pub mod highlevel;
pub mod http;

use std::fmt;

/// Why a request of the connect clients failed. No variant carries a secret: a refusal's
/// reason is the error field of the answer, never the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The server answered with an error status; `reason` is its error field (`invalid_grant`).
    Refused { status: u16, reason: String },
    /// No answer: connection, timeout, TLS.
    Transport(String),
    /// An answer of success that is not what the API documents (a missing `access_token`).
    Malformed(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Refused { status, reason } => write!(f, "refused ({status}): {reason}"),
            ConnectError::Transport(e) => write!(f, "no answer: {e}"),
            ConnectError::Malformed(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// [`http::send`]'s errors are transport errors.
impl From<String> for ConnectError {
    fn from(e: String) -> Self {
        ConnectError::Transport(e)
    }
}
