//! The attacker's suite of issue 14: what someone who is not the operator, or a hostile or
//! broken peer (an API that stops answering, a listing that never ends), tries against `serve`
//! and the host, and what must stop them. Every test talks to servers on loopback only (nothing
//! here binds a public address), and each is bounded in the requests it sends and the time it
//! takes. One module per area.

mod access;
mod resources;
mod upstream;
