//! One connection to the host's database, SQLite or PostgreSQL, behind one small API.
//!
//! The stores (inbox, history, records, dead letters, tenants, cursors, ledgers) write their SQL
//! once, in the dialect both engines share (`?N` parameters, `ON CONFLICT`, `RETURNING`,
//! `coalesce`, `WITH RECURSIVE`), and read rows by position. For PostgreSQL the few differences
//! are translated once per statement ([`to_postgres`]): `$N` parameters, SQLite's column types in
//! a `CREATE TABLE`, `INSERT OR IGNORE`, `BEGIN IMMEDIATE`, and `PRAGMA`s (SQLite's file settings,
//! which PostgreSQL does not have). Values cross as [`Value`]s, converted to the type the server
//! asks for, so one store's code runs unchanged on both.
//!
//! Why not `sqlx`'s `Any` driver: it does not translate parameters either, and it is async,
//! while every store here runs on worker threads under a mutex (the plugin's key-value calls are
//! synchronous host calls). `postgres` is tokio-postgres with a blocking face, from the same
//! maintainers; each store holds one connection, as it held one SQLite connection before.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Milliseconds since the epoch, as the stores keep times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Where the data lives: a SQLite file (one machine) or a PostgreSQL database (any number of
/// `serve` replicas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL names a PostgreSQL database; anything else is a
    /// SQLite file (`:memory:` and the empty path: in memory).
    pub fn of(path: &Path) -> Location {
        match path.to_str() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Location::Postgres(url.to_string()),
            _ => Location::File(path.to_path_buf()),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }

    /// For messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::File(path) => path.display().to_string(),
            Location::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) if parsed.password().is_some() => {
                    let _ = parsed.set_password(Some("***"));
                    parsed.to_string()
                }
                _ => url.clone(),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A value going into or coming out of a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What went wrong with a statement.
#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// `query_row` found no row ([`OptionalExtension::optional`] makes it `None`).
    NoRows,
    /// A column held something the caller cannot read as the type it asked for.
    Conversion {
        column: usize,
        wanted: &'static str,
        found: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Sqlite(e) => write!(f, "SQLite: {e}"),
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "PostgreSQL: {}: {}", db.code().code(), db.message()),
                None => write!(f, "PostgreSQL: {e}"),
            },
            Error::NoRows => f.write_str("the query returned no row"),
            Error::Conversion { column, wanted, found } => write!(f, "column {column} holds {found}, not {wanted}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
            e => Error::Sqlite(e),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Postgres(e)
    }
}

impl Error {
    /// Two writers met on one row or key (PostgreSQL's unique violation or serialization
    /// failure, SQLite's busy): the caller may try again.
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::Postgres(e) => e.code().is_some_and(|c| matches!(c.code(), "23505" | "40001" | "40P01")),
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::ConstraintViolation)
            }
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `query_row(…).optional()`: no row is `None`, as with rusqlite.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Integer(*self as i64)
            }
        }
    )*};
}
int_values!(i64, i32, u32, u16, u8, usize, u64);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Integer(*self as i64)
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}
impl ToValue for std::sync::Arc<str> {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

/// The parameters of a statement: `[a, b]`, `params![a, b]`, `[]`, or [`params_from_iter`].
pub trait Params {
    fn values(self) -> Vec<Value>;
}

impl Params for [&dyn ToValue; 0] {
    fn values(self) -> Vec<Value> {
        Vec::new()
    }
}
macro_rules! array_params {
    ($($n:literal)*) => {$(
        impl<T: ToValue> Params for [T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(ToValue::to_value).collect()
            }
        }
    )*};
}
array_params!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
impl Params for &[&dyn ToValue] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
impl<const N: usize> Params for &[&dyn ToValue; N] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
impl Params for Vec<Value> {
    fn values(self) -> Vec<Value> {
        self
    }
}

/// Parameters from an iterator (a filter's conditions).
pub fn params_from_iter<T: ToValue>(values: impl IntoIterator<Item = T>) -> Vec<Value> {
    values.into_iter().map(|v| v.to_value()).collect()
}

/// `params![a, b, c]`, as with rusqlite.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::storage::db::ToValue] };
    ($($v:expr),+ $(,)?) => { &[$(&$v as &dyn $crate::storage::db::ToValue),+] as &[&dyn $crate::storage::db::ToValue] };
}
pub use crate::params;

/// A value read from a column.
pub trait FromValue: Sized {
    const NAME: &'static str;
    fn from_value(value: &Value) -> Option<Self>;
}

macro_rules! int_from_values {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            const NAME: &'static str = stringify!($t);
            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    Value::Integer(i) => <$t>::try_from(*i).ok(),
                    Value::Real(r) => Some(*r as $t),
                    Value::Text(t) => t.parse().ok(),
                    _ => None,
                }
            }
        }
    )*};
}
int_from_values!(i64, i32, u32, u16, u8, usize, u64);

impl FromValue for bool {
    const NAME: &'static str = "bool";
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).map(|i| i != 0)
    }
}
impl FromValue for f64 {
    const NAME: &'static str = "f64";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Integer(i) => Some(*i as f64),
            Value::Real(r) => Some(*r),
            Value::Text(t) => t.parse().ok(),
            _ => None,
        }
    }
}
impl FromValue for String {
    const NAME: &'static str = "text";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone()),
            Value::Blob(b) => String::from_utf8(b.clone()).ok(),
            Value::Integer(i) => Some(i.to_string()),
            Value::Real(r) => Some(r.to_string()),
            Value::Null => None,
        }
    }
}
impl FromValue for Vec<u8> {
    const NAME: &'static str = "bytes";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(t) => Some(t.as_bytes().to_vec()),
            _ => None,
        }
    }
}
impl FromValue for Value {
    const NAME: &'static str = "value";
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}
impl<T: FromValue> FromValue for Option<T> {
    const NAME: &'static str = T::NAME;
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A column's position (rows are read by position).
pub trait RowIndex {
    fn index(&self) -> usize;
}
impl RowIndex for usize {
    fn index(&self) -> usize {
        *self
    }
}

/// One row of a result.
#[derive(Clone, Debug)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub fn get<I: RowIndex, T: FromValue>(&self, index: I) -> Result<T> {
        let column = index.index();
        let value = self.values.get(column).unwrap_or(&Value::Null);
        T::from_value(value).ok_or_else(|| Error::Conversion { column, wanted: T::NAME, found: format!("{value:?}").chars().take(60).collect() })
    }

    pub fn get_ref(&self, column: usize) -> Option<&Value> {
        self.values.get(column)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The rows of a query, read one at a time (`while let Some(row) = rows.next()?`).
pub struct Rows {
    rows: std::vec::IntoIter<Row>,
    current: Option<Row>,
}

impl Rows {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&Row>> {
        self.current = self.rows.next();
        Ok(self.current.as_ref())
    }
}

/// A statement to run (the connection caches its preparation).
pub struct Statement<'a> {
    db: &'a Db,
    sql: String,
}

impl Statement<'_> {
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        self.db.execute(&self.sql, params)
    }

    pub fn query(&mut self, params: impl Params) -> Result<Rows> {
        Ok(Rows { rows: self.db.rows(&self.sql, params.values())?.into_iter(), current: None })
    }

    pub fn query_map<T>(&mut self, params: impl Params, f: impl FnMut(&Row) -> Result<T>) -> Result<std::vec::IntoIter<Result<T>>> {
        Ok(self.db.rows(&self.sql, params.values())?.iter().map(f).collect::<Vec<_>>().into_iter())
    }

    pub fn query_row<T>(&mut self, params: impl Params, f: impl FnOnce(&Row) -> Result<T>) -> Result<T> {
        self.db.query_row(&self.sql, params, f)
    }
}

/// One step of a component's schema ([`Db::migrate`]).
pub enum Step<'a> {
    Sql(&'a str),
    Code(&'a dyn Fn(&Db) -> anyhow::Result<()>),
}

/// One connection.
pub struct Db {
    inner: Inner,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<Pg>>),
}

struct Pg {
    url: String,
    client: Option<postgres::Client>,
    /// Prepared statements by their SQLite text (dropped with a lost connection).
    statements: HashMap<String, postgres::Statement>,
    /// Whether a `BEGIN` of this connection is not yet committed or rolled back.
    open_transaction: bool,
}

/// The advisory lock that serializes schema changes of replicas starting together.
const SCHEMA_LOCK: i64 = 0x6469_616c_7061;

impl Db {
    /// Opens `location` and applies `schema` (statements that are idempotent, such as
    /// `CREATE TABLE IF NOT EXISTS`). A SQLite file is made owner-only and opened for
    /// durability over speed; a PostgreSQL database is connected to without TLS (see
    /// `docs/operating.md#postgresql`).
    pub fn open(location: &Location, schema: &str) -> anyhow::Result<Db> {
        let db = match location {
            Location::File(path) => Db { inner: Inner::Sqlite(open_sqlite(path)?) },
            Location::Postgres(url) => {
                let mut pg = Pg { url: url.clone(), client: None, statements: HashMap::new(), open_transaction: false };
                blocking(|| pg.client().map(drop))?;
                Db { inner: Inner::Postgres(Box::new(RefCell::new(pg))) }
            }
        };
        if !schema.trim().is_empty() {
            db.schema(|db| Ok(db.execute_batch(schema)?))?;
        }
        if let Location::File(path) = location {
            super::private::private_wal(path)?;
        }
        Ok(db)
    }

    /// Runs schema changes alone: on PostgreSQL under an advisory lock, so replicas starting
    /// together do not race to create one table.
    pub fn schema<T>(&self, work: impl FnOnce(&Db) -> anyhow::Result<T>) -> anyhow::Result<T> {
        if self.backend() == Backend::Sqlite {
            return work(self);
        }
        self.execute("SELECT pg_advisory_lock(?1)", [SCHEMA_LOCK]).map(drop)?;
        let done = work(self);
        self.execute("SELECT pg_advisory_unlock(?1)", [SCHEMA_LOCK])?;
        done
    }

    /// Applies `component`'s schema steps that this database has not had yet, in order, each
    /// once, and records how far it got (`schema_versions`), under the schema lock (replicas
    /// starting together take turns). Steps must also be safe on a SQLite file an older host
    /// made before versions were kept, where every step runs again (`IF NOT EXISTS`, a column
    /// added only when missing).
    pub fn migrate(&self, component: &str, steps: &[Step<'_>]) -> anyhow::Result<()> {
        self.schema(|db| {
            db.execute_batch("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)")?;
            let applied: i64 = db.query_row("SELECT version FROM schema_versions WHERE component = ?1", [component], |r| r.get(0)).optional()?.unwrap_or(0);
            for (version, step) in steps.iter().enumerate().skip(applied.max(0) as usize) {
                match step {
                    Step::Sql(sql) => db.execute_batch(sql)?,
                    Step::Code(run) => run(db)?,
                }
                let now = now_ms();
                db.execute(
                    "INSERT INTO schema_versions (component, version, applied_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (component) DO UPDATE SET version = excluded.version, applied_ms = excluded.applied_ms",
                    params![component, version as i64 + 1, now],
                )?;
            }
            Ok(())
        })
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (its file's pragmas).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::Sqlite(db) => Some(db),
            Inner::Postgres(_) => None,
        }
    }

    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        let values = params.values();
        match &self.inner {
            Inner::Sqlite(db) => Ok(db.prepare_cached(sql)?.execute(rusqlite::params_from_iter(values.iter()))?),
            Inner::Postgres(pg) => pg.borrow_mut().run(sql, &values, |client, statement, params| Ok(client.execute(statement, params)? as usize)),
        }
    }

    /// Several statements without parameters (a schema, `BEGIN`, `COMMIT`).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(db) => Ok(db.execute_batch(sql)?),
            Inner::Postgres(pg) => {
                let translated: Vec<String> = split_statements(sql).into_iter().filter_map(|s| to_postgres(&s)).collect();
                if translated.is_empty() {
                    return Ok(());
                }
                let mut pg = pg.borrow_mut();
                let pg: &mut Pg = &mut pg;
                let mut batch = translated.join(";\n");
                // Schema changes one replica at a time (a session lock: it nests, and holds
                // inside a transaction as outside one).
                let ddl = translated.iter().any(|s| {
                    let upper = s.trim_start().to_ascii_uppercase();
                    upper.starts_with("CREATE") || upper.starts_with("ALTER")
                });
                if ddl {
                    batch = format!("SELECT pg_advisory_lock({SCHEMA_LOCK});\n{batch};\nSELECT pg_advisory_unlock({SCHEMA_LOCK})");
                }
                let done: Result<()> = blocking(|| Ok(pg.client()?.batch_execute(&batch)?));
                for statement in &translated {
                    let word = statement.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                    match word.as_str() {
                        "BEGIN" | "START" => pg.open_transaction = done.is_ok(),
                        "COMMIT" | "ROLLBACK" | "END" | "ABORT" => pg.open_transaction = false,
                        _ => {}
                    }
                }
                if ddl && done.is_err() {
                    // The unlock did not run: a failed batch stops at its error.
                    let _ = blocking(|| pg.client().map(|c| c.batch_execute(&format!("SELECT pg_advisory_unlock({SCHEMA_LOCK})"))));
                }
                Ok(done?)
            }
        }
    }

    pub fn query_row<T>(&self, sql: &str, params: impl Params, f: impl FnOnce(&Row) -> Result<T>) -> Result<T> {
        let rows = self.rows(sql, params.values())?;
        f(rows.first().ok_or(Error::NoRows)?)
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement { db: self, sql: sql.to_string() })
    }

    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        self.prepare(sql)
    }

    /// Every row of a query.
    pub fn rows(&self, sql: &str, values: Vec<Value>) -> Result<Vec<Row>> {
        match &self.inner {
            Inner::Sqlite(db) => {
                let mut statement = db.prepare_cached(sql)?;
                let columns = statement.column_count();
                let mut rows = statement.query(rusqlite::params_from_iter(values.iter()))?;
                let mut all = Vec::new();
                while let Some(row) = rows.next()? {
                    let values = (0..columns).map(|i| row.get_ref(i).map(from_sqlite)).collect::<rusqlite::Result<Vec<Value>>>()?;
                    all.push(Row { values });
                }
                Ok(all)
            }
            Inner::Postgres(pg) => pg.borrow_mut().run(sql, &values, |client, statement, params| {
                let rows = client.query(statement, params)?;
                rows.iter()
                    .map(|row| Ok(Row { values: (0..row.len()).map(|i| row.try_get::<_, PgValue>(i).map(|v| v.0)).collect::<Result<_, _>>()? }))
                    .collect()
            }),
        }
    }

    /// The id the last `INSERT` of this connection made.
    pub fn last_insert_rowid(&self) -> i64 {
        match &self.inner {
            Inner::Sqlite(db) => db.last_insert_rowid(),
            Inner::Postgres(_) => self.query_row("SELECT lastval()", [], |r| r.get(0)).unwrap_or_default(),
        }
    }

    /// Whether `table` has `column` (for adding a column to a table an older host made).
    pub fn has_column(&self, table: &str, column: &str) -> Result<bool> {
        match &self.inner {
            Inner::Sqlite(_) => {
                let names = self.rows(&format!("SELECT name FROM pragma_table_info('{table}')"), vec![])?;
                Ok(names.iter().any(|r| r.get::<_, String>(0).is_ok_and(|n| n == column)))
            }
            Inner::Postgres(_) => self.query_row(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?1 AND column_name = ?2",
                [table, column],
                |r| Ok(r.get::<_, i64>(0)? > 0),
            ),
        }
    }

    /// Whether `table` exists.
    pub fn has_table(&self, table: &str) -> Result<bool> {
        let sql = match self.backend() {
            Backend::Sqlite => "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            Backend::Postgres => "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?1",
        };
        self.query_row(sql, [table], |r| Ok(r.get::<_, i64>(0)? > 0))
    }

    /// A transaction: committed by [`Transaction::commit`], rolled back when dropped without.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Transaction { db: self, done: false })
    }

    /// Whether a transaction this connection began is open.
    pub fn in_explicit_transaction(&self) -> bool {
        match &self.inner {
            Inner::Sqlite(db) => !db.is_autocommit(),
            Inner::Postgres(pg) => pg.borrow().open_transaction,
        }
    }

    /// Runs `work` in a transaction (on `&self`, for a connection behind a shared reference):
    /// committed when it returns `Ok`, rolled back otherwise.
    pub fn in_transaction<T, E: From<Error>>(&self, work: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E> {
        if self.in_explicit_transaction() {
            // Part of the caller's transaction (an import that commits many at once).
            return work(self);
        }
        self.execute_batch("BEGIN IMMEDIATE")?;
        match work(self) {
            Ok(value) => {
                self.execute_batch("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                // A lost connection has rolled back already.
                let _ = self.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// See [`Db::transaction`].
pub struct Transaction<'a> {
    db: &'a mut Db,
    done: bool,
}

impl Transaction<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.db.execute_batch("COMMIT")
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.execute_batch("ROLLBACK");
        }
    }
}

fn open_sqlite(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    // Owner-only (it holds personal data); SQLite gives the -wal and -shm files the same mode.
    // An in-memory database (":memory:", "") has no file.
    let on_disk = !path.as_os_str().is_empty() && path != Path::new(":memory:");
    if on_disk {
        super::private::private_new_file(path)?;
    }
    let db = rusqlite::Connection::open(path)?;
    db.set_prepared_statement_cache_capacity(128);
    // Several connections share the file (records, dead letters, the inbox): wait for a
    // writer instead of failing with SQLITE_BUSY.
    db.busy_timeout(std::time::Duration::from_secs(30))?;
    // Pages freed by deletions go back to the file system on `PRAGMA incremental_vacuum`
    // (serve's retention runs it). Takes effect on a new file; serve converts an older one.
    db.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    Ok(db)
}

fn from_sqlite(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl Pg {
    /// The live client, connecting again when the last one was lost (the server restarted).
    fn client(&mut self) -> Result<&mut postgres::Client> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.statements.clear();
            // A lost connection took its transaction with it.
            self.open_transaction = false;
            self.client = Some(postgres::Client::connect(&self.url, postgres::NoTls)?);
        }
        Ok(self.client.as_mut().expect("connected just above"))
    }

    /// Prepares `sql` (once per connection) and runs `run` with its parameters, off any async
    /// worker thread ([`blocking`]).
    fn run<T: Send>(
        &mut self,
        sql: &str,
        values: &[Value],
        run: impl FnOnce(&mut postgres::Client, &postgres::Statement, &[&(dyn postgres::types::ToSql + Sync)]) -> Result<T> + Send,
    ) -> Result<T> {
        blocking(|| self.run_here(sql, values, run))
    }

    fn run_here<T>(
        &mut self,
        sql: &str,
        values: &[Value],
        run: impl FnOnce(&mut postgres::Client, &postgres::Statement, &[&(dyn postgres::types::ToSql + Sync)]) -> Result<T>,
    ) -> Result<T> {
        self.client()?;
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                // A SQLite `PRAGMA` has nothing to do here: a statement with no rows.
                let translated = to_postgres(sql).unwrap_or_else(|| "SELECT 1 WHERE false".into());
                let statement = self.client.as_mut().expect("connected").prepare(&translated)?;
                self.statements.insert(sql.to_string(), statement.clone());
                statement
            }
        };
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = values.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect();
        let client = self.client.as_mut().expect("connected");
        let result = run(client, &statement, &params);
        if client.is_closed() {
            self.statements.clear();
        }
        result
    }
}

/// Runs `work`, which blocks on the `postgres` client's own runtime, where that is allowed.
/// Most callers are worker threads, where it runs as is; a few are async tasks (a handler that
/// reads a count), where blocking on another runtime would panic: there it runs under
/// `block_in_place` (a multi-threaded runtime) or on a thread of its own (a current-thread one).
fn blocking<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Err(_) => work(),
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        Ok(_) => std::thread::scope(|scope| scope.spawn(work).join().expect("a database call panicked")),
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(&self, ty: &postgres::types::Type, out: &mut bytes::BytesMut) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        let text = |s: &str, out: &mut bytes::BytesMut| s.to_sql(&Type::TEXT, out);
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT4) => (*i as f32).to_sql(ty, out),
            (Value::Integer(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Integer(i), _) => text(&i.to_string(), out),
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Value::Real(r), &Type::INT8) => (*r as i64).to_sql(ty, out),
            (Value::Real(r), &Type::INT4) => (*r as i32).to_sql(ty, out),
            (Value::Real(r), _) => text(&r.to_string(), out),
            (Value::Text(t), &Type::INT8) => t.parse::<i64>()?.to_sql(ty, out),
            (Value::Text(t), &Type::INT4) => t.parse::<i32>()?.to_sql(ty, out),
            (Value::Text(t), &Type::BYTEA) => t.as_bytes().to_sql(ty, out),
            (Value::Text(t), _) => text(t, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (Value::Blob(b), _) => text(&String::from_utf8_lossy(b), out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column read from PostgreSQL, whatever its type.
struct PgValue(Value);

impl<'a> postgres::types::FromSql<'a> for PgValue {
    fn from_sql(ty: &postgres::types::Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)? as i64),
            Type::OID => Value::Integer(u32::from_sql(ty, raw)? as i64),
            Type::BOOL => Value::Integer(bool::from_sql(ty, raw)? as i64),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::VOID => Value::Null,
            _ => Value::Text(String::from_sql(&Type::TEXT, raw).or_else(|_| String::from_utf8(raw.to_vec()))?),
        }))
    }

    fn from_sql_null(_: &postgres::types::Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
}

/// PostgreSQL's binary `numeric` (what `sum` of a `bigint` gives): an integer when it has no
/// fraction, a float otherwise. Its layout: digit count, weight, sign, scale, then base-10000
/// digits (`src/backend/utils/adt/numeric.c`).
fn numeric(raw: &[u8]) -> Result<Value, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> Result<i16, Box<dyn std::error::Error + Sync + Send>> {
        raw.get(i * 2..i * 2 + 2).map(|b| i16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "a short numeric".into())
    };
    let (digits, weight, sign, scale) = (word(0)? as usize, word(1)? as i32, word(2)? as u16, word(3)?);
    if sign == 0xC000 {
        return Ok(Value::Null);
    }
    let mut value = 0f64;
    for i in 0..digits {
        value += word(4 + i)? as f64 * 10000f64.powi(weight - i as i32);
    }
    if sign == 0x4000 {
        value = -value;
    }
    Ok(if scale == 0 && value.abs() < 9.0e15 { Value::Integer(value as i64) } else { Value::Real(value) })
}

/// Splits SQL on the `;` that end statements (not those in quotes).
fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => quoted = !quoted,
            ';' if !quoted => {
                statements.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    statements.push(current);
    statements.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// One statement in PostgreSQL's dialect; `None` for what PostgreSQL has no use for (SQLite's
/// `PRAGMA`s).
pub fn to_postgres(sql: &str) -> Option<String> {
    let trimmed = sql.trim();
    let upper = trimmed.to_ascii_uppercase();
    if upper.starts_with("PRAGMA") {
        return None;
    }
    if upper.starts_with("BEGIN") {
        return Some("BEGIN".into());
    }
    // Parameters: `?N` becomes `$N`, a bare `?` the next number; quoted text is left alone.
    let mut out = String::with_capacity(trimmed.len() + 16);
    let mut quoted = false;
    let mut next = 0;
    let mut chars = trimmed.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    while let Some(d) = chars.next_if(|d| d.is_ascii_digit()) {
                        out.push(d);
                    }
                } else {
                    next += 1;
                    out.push_str(&next.to_string());
                }
            }
            _ => out.push(c),
        }
    }
    if upper.starts_with("CREATE TABLE") || upper.starts_with("ALTER TABLE") {
        out = replace_words(&out, &[("AUTOINCREMENT", ""), ("INTEGER", "BIGINT"), ("BLOB", "BYTEA"), ("REAL", "DOUBLE PRECISION")]);
        out = out.replace("BIGINT PRIMARY KEY ", "BIGSERIAL PRIMARY KEY ").replace("BIGINT PRIMARY KEY,", "BIGSERIAL PRIMARY KEY,");
        if upper.starts_with("CREATE TABLE") && !upper.contains("AUTOINCREMENT") {
            // Only SQLite's AUTOINCREMENT asked for a sequence: other integer keys are given.
            out = out.replace("BIGSERIAL PRIMARY KEY", "BIGINT PRIMARY KEY");
        }
        out = out.replace("ADD COLUMN ", "ADD COLUMN IF NOT EXISTS ").replace(" WITHOUT ROWID", "");
    }
    if upper.starts_with("INSERT OR IGNORE") {
        out = format!("INSERT{}", &out["INSERT OR IGNORE".len()..]);
        match out.to_ascii_uppercase().rfind(" RETURNING ") {
            Some(at) => out.insert_str(at, " ON CONFLICT DO NOTHING"),
            None => out.push_str(" ON CONFLICT DO NOTHING"),
        }
    }
    Some(out)
}

/// Replaces whole words (outside quotes is not checked: DDL has no quoted type names).
fn replace_words(sql: &str, words: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let upper = word.to_ascii_uppercase();
        match words.iter().find(|(w, _)| *w == upper) {
            Some((_, with)) => out.push_str(with),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in sql.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_statements_become_postgres_ones() {
        assert_eq!(
            to_postgres("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL, n INTEGER, x REAL)").unwrap(),
            "CREATE TABLE IF NOT EXISTS t (id BIGSERIAL PRIMARY KEY , body BYTEA NOT NULL, n BIGINT, x DOUBLE PRECISION)"
        );
        assert_eq!(to_postgres("CREATE TABLE k (one INTEGER PRIMARY KEY, v TEXT)").unwrap(), "CREATE TABLE k (one BIGINT PRIMARY KEY, v TEXT)");
        assert_eq!(to_postgres("SELECT a FROM t WHERE b = ?2 AND c = '?' AND d = ?1").unwrap(), "SELECT a FROM t WHERE b = $2 AND c = '?' AND d = $1");
        assert_eq!(to_postgres("INSERT OR IGNORE INTO k (a) VALUES (?)").unwrap(), "INSERT INTO k (a) VALUES ($1) ON CONFLICT DO NOTHING");
        assert_eq!(
            to_postgres("ALTER TABLE inbox ADD COLUMN tries INTEGER NOT NULL DEFAULT 0").unwrap(),
            "ALTER TABLE inbox ADD COLUMN IF NOT EXISTS tries BIGINT NOT NULL DEFAULT 0"
        );
        assert_eq!(to_postgres("BEGIN IMMEDIATE"), Some("BEGIN".into()));
        assert_eq!(to_postgres("PRAGMA incremental_vacuum"), None);
        assert_eq!(
            split_statements("CREATE TABLE a (x TEXT DEFAULT ';'); CREATE INDEX i ON a (x);\n"),
            ["CREATE TABLE a (x TEXT DEFAULT ';')", " CREATE INDEX i ON a (x)"]
        );
    }

    #[test]
    fn each_schema_step_runs_once_and_later_steps_run_on_an_older_database() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::File(dir.path().join("state.db"));
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let count = |_: &Db| {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        };
        let first = [Step::Sql("CREATE TABLE t (a TEXT)"), Step::Code(&count)];
        Db::open(&location, "").unwrap().migrate("t", &first).unwrap();
        Db::open(&location, "").unwrap().migrate("t", &first).unwrap();
        assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 1, "a step ran again");
        let later = [Step::Sql("CREATE TABLE t (a TEXT)"), Step::Code(&count), Step::Sql("ALTER TABLE t ADD COLUMN b INTEGER")];
        let db = Db::open(&location, "").unwrap();
        db.migrate("t", &later).unwrap();
        assert!(db.has_column("t", "b").unwrap());
        assert_eq!(db.query_row("SELECT version FROM schema_versions WHERE component = 't'", [], |r| r.get::<_, i64>(0)).unwrap(), 3);
    }

    #[test]
    fn the_same_code_reads_and_writes_sqlite() {
        let mut db =
            Db::open(&Location::File(":memory:".into()), "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, body BLOB, n INTEGER)").unwrap();
        let id: i64 =
            db.query_row("INSERT INTO t (name, body, n) VALUES (?1, ?2, ?3) RETURNING id", params!["a", b"x".to_vec(), None::<i64>], |r| r.get(0)).unwrap();
        assert_eq!(id, 1);
        let tx = db.transaction().unwrap();
        tx.execute("INSERT INTO t (name) VALUES (?1)", ["b"]).unwrap();
        drop(tx);
        let rows = db
            .prepare("SELECT name, body, n FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Option<i64>>(2)?)))
            .unwrap();
        assert_eq!(rows.collect::<Result<Vec<_>>>().unwrap(), [("a".to_string(), b"x".to_vec(), None)]);
        assert!(matches!(db.query_row("SELECT id FROM t WHERE id = 9", [], |r| r.get::<_, i64>(0)).optional(), Ok(None)));
        assert!(matches!(db.query_row("SELECT name FROM t", [], |r| r.get::<_, i64>(0)), Err(Error::Conversion { column: 0, .. })));
        assert!(db.has_column("t", "body").unwrap() && !db.has_column("t", "nope").unwrap());
    }
}
