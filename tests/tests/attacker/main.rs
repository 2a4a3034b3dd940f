//! The attacker's suite of issue 14: what someone who is not the operator tries against
//! `serve`, and what must stop them. Every test talks to servers on loopback only (nothing here
//! binds a public address), and each is bounded in the requests it sends and the time it takes.

mod access;
