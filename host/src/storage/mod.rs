//! What the host keeps on disk: one SQLite file (opened in one way), and the dead letters in it.
//! The inbox and the backfill cursors live beside their users (`serve`, `backfill`) in the
//! same file.

pub mod db;
pub mod dead_letters;
pub mod lease;
pub mod private;
pub mod sqlite;
pub mod vault;
