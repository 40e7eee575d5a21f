//! The store's implementation, written once and compiled twice: as
//! `crate::sqlite::imp` over SQLite and as `crate::postgres::imp` over
//! PostgreSQL. Each compilation sees its backend's `Db` (the sqlx
//! database), `PG` (which dialect), `RowExt::col` (a column read as the
//! Rust type the caller wants, whatever the backend's native type) and
//! `Ts` binds; SQL is written with `?` placeholders and translated once
//! per statement by `query` (see `crate::dialect`).
//!
//! Where the dialects differ beyond that, the code says `if PG { .. } else
//! { .. }` at the statement; the schemas are each backend's own
//! (`migrations/` and `migrations/postgres/`), with the same tables and
//! columns.

mod api;
mod console;
mod core;
mod files;
mod ops;
mod search;

use super::{Db, RowExt, PG};
use crate::*;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

pub(crate) type DbRow = <Db as sqlx::Database>::Row;
pub(crate) type Tx<'a> = sqlx::Transaction<'a, Db>;
type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

/// The store over one backend's pool.
#[derive(Clone)]
pub struct Store {
    pool: sqlx::Pool<Db>,
    cipher: Cipher,
    /// Write transactions of this process, one at a time: SQLite has one
    /// writer, and waiting here is fair and prompt where SQLite's busy
    /// handler sleeps and retries (stalls of a second were seen with four
    /// spaces syncing at once while the index read). On PostgreSQL it
    /// keeps one process's writes in the order SQLite gives them (the
    /// index log's sequence among them); several processes on one
    /// database are the multi-node work's.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// The embedded store's connections for reads on the caller's thread
    /// (`crate::readers`); `None` on PostgreSQL.
    readers: Option<Arc<crate::readers::Readers>>,
}

impl Store {
    pub(crate) fn new(
        pool: sqlx::Pool<Db>,
        cipher: Cipher,
        readers: Option<crate::readers::Readers>,
    ) -> Store {
        Store {
            pool,
            cipher,
            writer: Default::default(),
            readers: readers.map(Arc::new),
        }
    }

    /// A key for one purpose, derived from the store's secret key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        self.cipher.derive(purpose)
    }
}

/// A row's columns by name, as the reads that run on either driver see
/// them: sqlx's rows, or the embedded store's read connections
/// (`crate::readers`, the request's own thread). One mapping from a row
/// to a value serves both.
trait Named {
    fn text(&self, name: &str) -> String;
    fn text_or_null(&self, name: &str) -> Option<String>;
    fn int_or_null(&self, name: &str) -> Option<i64>;
    fn bool_or_null(&self, name: &str) -> Option<bool>;
}

impl<R: RowExt> Named for R {
    fn text(&self, name: &str) -> String {
        self.col(name)
    }
    fn text_or_null(&self, name: &str) -> Option<String> {
        self.col(name)
    }
    fn int_or_null(&self, name: &str) -> Option<i64> {
        self.col(name)
    }
    fn bool_or_null(&self, name: &str) -> Option<bool> {
        self.col(name)
    }
}

/// SQLite's values as they are stored (text for times, integers for
/// booleans); a column missing or of another type reads as null (as
/// text: empty), never a panic.
struct ReadRow<'a, 'r>(&'a rusqlite::Row<'r>);

impl Named for ReadRow<'_, '_> {
    fn text(&self, name: &str) -> String {
        self.text_or_null(name).unwrap_or_default()
    }
    fn text_or_null(&self, name: &str) -> Option<String> {
        use rusqlite::types::ValueRef;
        match self.0.get_ref(name).ok()? {
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(r) => Some(r.to_string()),
            ValueRef::Null | ValueRef::Blob(_) => None,
        }
    }
    fn int_or_null(&self, name: &str) -> Option<i64> {
        self.0.get_ref(name).ok()?.as_i64().ok()
    }
    fn bool_or_null(&self, name: &str) -> Option<bool> {
        self.int_or_null(name).map(|i| i != 0)
    }
}

/// A statement of this backend's dialect: `?` placeholders numbered for
/// PostgreSQL, casts dropped for SQLite. Each distinct statement is
/// translated once and kept for the life of the process (there are as
/// many as the code has statements).
fn query<'q>(sql: &'static str) -> Query<'q> {
    sqlx::query(statement(sql))
}

fn statement(sql: &'static str) -> &'static str {
    if !PG && !sql.contains("::") {
        return sql;
    }
    static CACHE: OnceLock<RwLock<HashMap<usize, &'static str>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = sql.as_ptr() as usize ^ (sql.len() << 48);
    if let Some(done) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return done;
    }
    let done: &'static str = Box::leak(crate::dialect::translate(sql, PG).into_boxed_str());
    cache
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, done);
    done
}

/// A statement built at run time (an `IN` list of some length), translated.
fn dynamic(sql: &str) -> String {
    crate::dialect::translate(sql, PG)
}

impl Store {
    #[allow(dead_code)] // used by the PostgreSQL build only (LISTEN)
    pub(crate) fn pool(&self) -> &sqlx::Pool<Db> {
        &self.pool
    }
}
