//! One module per command: its arguments (`Args`, with help for every flag) and `run`.

pub mod backfill;
pub mod bench;
pub mod catalog;
pub mod check;
pub mod config_schema;
pub mod connect;
pub mod demo;
pub mod dist;
pub mod invoke;
pub mod mock;
pub mod replay;
pub mod secret_key;
pub mod serve;
pub mod tenants;
pub mod validate_config;
pub mod view;
