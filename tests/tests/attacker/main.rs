//! The attacker's suite of issue 14: what a hostile or broken peer (an API that stops
//! answering, a listing that never ends, …) can do to the host, and that it is bounded.
//! Loopback only, bounded in count and time. Each area is a module.

mod upstream;
