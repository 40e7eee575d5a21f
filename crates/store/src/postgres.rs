//! The shared backend: PostgreSQL, for deployments beyond one machine.
//! Its schema is `migrations/postgres/*.sql`, with PostgreSQL's own types
//! (identity columns, `jsonb`, `bytea`, `timestamptz`, `boolean`).

use crate::dialect::time_text;
use crate::{Cipher, Error, Result};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPoolOptions, PgRow, PgValueFormat};
use sqlx::{Row, TypeInfo, ValueRef};
use std::borrow::Cow;

pub(crate) type Db = sqlx::Postgres;
pub(crate) const PG: bool = true;

// The same source as the other backend's, on purpose (see sql/mod.rs).
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
pub(crate) mod imp;

/// A column as the Rust type the caller reads. Text is read from any
/// column: a `timestamptz` as the store's RFC 3339 text, a `jsonb` as its
/// JSON text, so that both backends answer the same strings.
pub(crate) trait Col<'r>: Sized {
    fn col(row: &'r PgRow, name: &str) -> Self;
}

macro_rules! native {
    ($($t:ty),* $(,)?) => {
        $(impl<'r> Col<'r> for $t {
            fn col(row: &'r PgRow, name: &str) -> Self {
                row.get(name)
            }
        })*
    };
}

native!(
    Option<i64>,
    Option<bool>,
    f64,
    Vec<u8>,
    Option<Vec<u8>>,
    &'r [u8],
    Option<&'r [u8]>,
);

/// NULL reads as 0 and as false, as SQLite's decoding reads it, so that
/// both backends answer alike (a count from an empty subquery, say).
impl<'r> Col<'r> for i64 {
    fn col(row: &'r PgRow, name: &str) -> Self {
        row.get::<Option<i64>, _>(name).unwrap_or(0)
    }
}

impl<'r> Col<'r> for bool {
    fn col(row: &'r PgRow, name: &str) -> Self {
        row.get::<Option<bool>, _>(name).unwrap_or(false)
    }
}

/// A column's text, or `None` when it is NULL; panics, as `Row::get`
/// does, on a column that is not there or not text-like (a bug).
fn text<'r>(row: &'r PgRow, name: &str) -> Option<Cow<'r, str>> {
    let raw = row
        .try_get_raw(name)
        .unwrap_or_else(|e| panic!("column {name}: {e}"));
    if raw.is_null() {
        return None;
    }
    let type_name = raw.type_info().name().to_string();
    Some(match type_name.as_str() {
        "TIMESTAMPTZ" => {
            let at: DateTime<Utc> = row.get(name);
            Cow::Owned(time_text(at))
        }
        "JSONB" => {
            let binary = raw.format() == PgValueFormat::Binary;
            let bytes = raw
                .as_bytes()
                .unwrap_or_else(|e| panic!("column {name}: {e}"));
            // Binary jsonb is a version byte (1) and the text.
            let bytes = if binary { &bytes[1..] } else { bytes };
            Cow::Borrowed(
                std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("column {name}: {e}")),
            )
        }
        _ => Cow::Borrowed(row.get::<&str, _>(name)),
    })
}

impl<'r> Col<'r> for String {
    fn col(row: &'r PgRow, name: &str) -> Self {
        text(row, name)
            .unwrap_or_else(|| panic!("column {name} is NULL"))
            .into_owned()
    }
}

impl<'r> Col<'r> for Option<String> {
    fn col(row: &'r PgRow, name: &str) -> Self {
        text(row, name).map(Cow::into_owned)
    }
}

impl<'r> Col<'r> for &'r str {
    fn col(row: &'r PgRow, name: &str) -> Self {
        match text(row, name).unwrap_or_else(|| panic!("column {name} is NULL")) {
            Cow::Borrowed(text) => text,
            Cow::Owned(_) => panic!("column {name}: read a time as String, not &str"),
        }
    }
}

impl<'r> Col<'r> for Option<&'r str> {
    fn col(row: &'r PgRow, name: &str) -> Self {
        text(row, name).map(|text| match text {
            Cow::Borrowed(text) => text,
            Cow::Owned(_) => panic!("column {name}: read a time as String, not &str"),
        })
    }
}

pub(crate) trait RowExt {
    fn col<'r, T: Col<'r>>(&'r self, name: &str) -> T;
}

impl RowExt for PgRow {
    fn col<'r, T: Col<'r>>(&'r self, name: &str) -> T {
        T::col(self, name)
    }
}

pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "nodes",
        include_str!("../migrations/postgres/0002_nodes.sql"),
    ),
    (
        3,
        "operator",
        include_str!("../migrations/postgres/0003_operator.sql"),
    ),
    (
        4,
        "polling",
        include_str!("../migrations/postgres/0004_polling.sql"),
    ),
    (
        5,
        "counts",
        include_str!("../migrations/postgres/0005_counts.sql"),
    ),
    (
        6,
        "chunk counts",
        include_str!("../migrations/postgres/0006_chunk_counts.sql"),
    ),
    (
        7,
        "parents",
        include_str!("../migrations/postgres/0007_parents.sql"),
    ),
    (
        8,
        "item staging",
        include_str!("../migrations/postgres/0008_item_staging.sql"),
    ),
];

/// Connects to the database at `url` and brings its schema up to this
/// binary's. The secret key comes from `CONFSYNC_SECRET_KEY`: no key file
/// beside a database that several machines share.
pub(crate) async fn open(url: &str) -> Result<imp::Store> {
    let cipher = Cipher::from_env().map_err(Error::Secret)?.ok_or_else(|| {
        Error::Secret(
            "a PostgreSQL store takes its key from CONFSYNC_SECRET_KEY (64 hex digits; \
                 e.g. `openssl rand -hex 32`), the same on every node"
                .into(),
        )
    })?;
    open_with(url, cipher).await
}

pub(crate) async fn open_with(url: &str, cipher: Cipher) -> Result<imp::Store> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(std::time::Duration::from_secs(30))
        .connect(url)
        .await
        .map_err(|e| Error::Unreachable(format!("{}: {e}", redact(url))))?;
    crate::migrator(MIGRATIONS).run(&pool).await?;
    Ok(imp::Store::new(pool, cipher, None))
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparsable database URL)".into(),
    }
}

/// Listens on the index log's channel, nudging on each notification.
pub(crate) fn watch_index_log(
    pool: sqlx::PgPool,
    nudge: std::sync::Arc<dyn Fn() + Send + Sync>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "listening for index changes failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen("confsync_index").await {
                tracing::warn!(%error, "listening for index changes failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                continue;
            }
            nudge();
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => nudge(),
                    // The connection was lost and is re-established by
                    // the next call: what came meanwhile is unknown.
                    Ok(None) => nudge(),
                    Err(error) => {
                        tracing::warn!(%error, "the index notification channel failed; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod migration_tests {
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
        assert_eq!(
            crate::migration_files(dir),
            crate::embedded(super::MIGRATIONS)
        );
    }
}
