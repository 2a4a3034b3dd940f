//! Planning, pure and free of I/O: event + configuration + known state → the HighLevel
//! operations to send. A plan is a list of steps ([`vocabulary`]); a step's path may refer to
//! an id that an earlier step resolves (the contact found or created, the call's note found),
//! and may run only under a condition on what earlier steps found. The executor runs it; a dry
//! run prints it.
//!
//! The vocabulary stands apart from the planners, which all use it and none of which it uses:
//! [`dialpad`] plans a Dialpad event by its kind ([`call`], [`sms`], both through [`note`],
//! with [`automations`]; [`contact`]), [`platform`] a platform task or note event.

pub mod activity;
pub mod automations;
pub mod call;
pub mod call_entry;
pub mod contact;
pub mod dialpad;
pub mod note;
pub mod owners;
pub mod platform;
pub mod screen_pop;
pub mod sms;
pub mod to_dialpad;
pub mod vocabulary;
