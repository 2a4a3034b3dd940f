//! Dialpad: API key or OAuth (PKCE), webhook and subscription registration.

use serde::{Deserialize, Serialize};

/// What was registered at Dialpad for one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub webhook_id: String,
    pub hook_url: String,
    pub call_subscription: Option<String>,
    pub sms_subscription: Option<String>,
    pub contact_subscription: Option<String>,
}
