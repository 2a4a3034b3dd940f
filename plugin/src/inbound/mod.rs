//! Inbound parsing: an event's bytes → a typed, normalized event. Reading the bytes (UTF-8,
//! signature, JSON) is the same for every source; see [`read::read`].

pub mod dialpad;
pub mod event;
pub mod highlevel;
pub mod json;
pub mod phone;
pub mod platform;
pub mod read;
pub mod signature;
pub mod time;
