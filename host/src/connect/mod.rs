//! Connecting accounts: HighLevel's Marketplace install (authorization code, location tokens,
//! installed locations) and Dialpad's side (API key or OAuth with PKCE, then the webhook and
//! the subscriptions the sync needs).

pub mod dialpad;
pub mod highlevel;
pub mod http;

use std::fmt;

/// Why a connect step failed: the other side said no, could not be reached, or answered
/// something that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// A non-success answer: its status and the reason the body gives (never a secret).
    Refused { status: u16, reason: String },
    /// No answer: connection, TLS or timeout.
    Transport(String),
    /// A success answer without what it should carry.
    Malformed(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Refused { status, reason } => write!(f, "refused with {status}: {reason}"),
            ConnectError::Transport(e) => write!(f, "no answer: {e}"),
            ConnectError::Malformed(e) => write!(f, "unusable answer: {e}"),
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
