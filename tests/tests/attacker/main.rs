//! The attacker's suite of issue 14: what an outsider can do to `serve` from the network, each
//! attack on loopback only, bounded in count and time. One module per area.

mod resources;
