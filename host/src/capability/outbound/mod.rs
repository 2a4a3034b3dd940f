//! Outbound HTTP policy, applied in `WasiHttpHooks::send_request` to every request the plugin
//! makes (Spin and wasmCloud put theirs in the same place):
//!
//! - fail-closed allowlist: only the configured origins (scheme, host, port) are reachable,
//!   judged from the request URI, never from a `Host` header;
//! - credential injection: the host adds `Authorization` for the origin it belongs to, so the
//!   token never enters the sandbox;
//! - a host-side deadline (wasmtime's default waits up to 600 s);
//! - a rate limiter that keeps each location under HighLevel's burst limit (100 requests per
//!   10 s), so a burst of events waits its turn instead of collecting 429s; the same limiter
//!   keeps Dialpad's limits (1,200 requests a minute, and 100 contact creates a minute per
//!   company: `POST` and `PUT /api/v2/contacts`, a [`RouteLimit`]). Dialpad's screen pops (5 a
//!   minute per user) have no limiter here: the plugin skips a screen pop over that limit
//!   itself, with its reason, as a pop minutes late is no use, so none waits in the host;
//! - a request/response log in which credentials are redacted;
//! - a circuit breaker per origin: an API that stops answering fails requests at once for a
//!   cool-down instead of holding each for its timeout (`breaker`).

mod breaker;
mod client;
mod hooks;
mod limiter;
mod log;
mod policy;

pub use breaker::{BreakerSettings, CircuitBreaker, CircuitState};
pub use hooks::OutboundHooks;
pub use limiter::{RateLimiter, RateSlot};
pub use log::{HttpExchange, HttpLog, BODY_SHOWN_BYTES};
pub use policy::{Origin, OutboundPolicy, RouteLimit};
