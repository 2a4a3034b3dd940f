//! Dialpad: API key or OAuth (PKCE), webhook and subscription registration.
