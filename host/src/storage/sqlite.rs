//! The one way the host opens its database (records, dead letters, the inbox, backfill
//! cursors): a SQLite file, or PostgreSQL when the "path" is a `postgres://` URL ([`super::db`]).

use super::db::{Db, Location};
use std::path::Path;

/// The host's database at `path` (a file, or a `postgres://` URL), opened for durability over
/// speed: each write is stored when it returns. `schema` is the first version of `component`'s
/// tables ([`Db::migrate`]; later versions are the component's own steps).
pub fn open_database(path: &Path, component: &str, schema: &str) -> anyhow::Result<Db> {
    let db = Db::open(&Location::of(path), "")?;
    if !schema.is_empty() {
        db.migrate(component, &[super::db::Step::Sql(schema)])?;
    }
    Ok(db)
}

/// Whether `table` has `column` (for adding a column to a table an older host made).
pub fn has_column(db: &Db, table: &str, column: &str) -> anyhow::Result<bool> {
    Ok(db.has_column(table, column)?)
}
