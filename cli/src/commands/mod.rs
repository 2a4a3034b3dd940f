//! One module per command: its arguments (`Args`, with help for every flag) and `run`.

pub mod backfill;
pub mod bench;
pub mod catalog;
pub mod config_schema;
pub mod demo;
pub mod dist;
pub mod invoke;
pub mod mock;
pub mod replay;
pub mod serve;
pub mod validate_config;
pub mod view;
