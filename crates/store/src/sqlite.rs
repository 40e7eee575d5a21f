//! The embedded backend: SQLite (WAL) in a file under the data directory,
//! the default. Its schema is `migrations/*.sql`.

use crate::{Cipher, Error, Result};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::Row;
use std::path::Path;
use std::str::FromStr;

pub(crate) type Db = sqlx::Sqlite;
pub(crate) const PG: bool = false;

// The same source as the other backend's, on purpose (see sql/mod.rs).
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
pub(crate) mod imp;

/// A column as the Rust type the caller reads: SQLite's own decoding.
pub(crate) trait Col<'r>: Sized {
    fn col(row: &'r SqliteRow, name: &str) -> Self;
}

impl<'r, T: sqlx::Decode<'r, Db> + sqlx::Type<Db>> Col<'r> for T {
    fn col(row: &'r SqliteRow, name: &str) -> Self {
        row.get(name)
    }
}

pub(crate) trait RowExt {
    fn col<'r, T: Col<'r>>(&'r self, name: &str) -> T;
}

impl RowExt for SqliteRow {
    fn col<'r, T: Col<'r>>(&'r self, name: &str) -> T {
        T::col(self, name)
    }
}

/// The store's migrations, embedded in the binary. `sqlx::migrate!` would
/// embed the same (same versions, descriptions and checksums), but needs
/// sqlx's macros, whose build (a second SQLite among them) cost CI minutes.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "search", include_str!("../migrations/0002_search.sql")),
    (3, "api", include_str!("../migrations/0003_api.sql")),
    (
        4,
        "security",
        include_str!("../migrations/0004_security.sql"),
    ),
    (5, "picker", include_str!("../migrations/0005_picker.sql")),
    (6, "console", include_str!("../migrations/0006_console.sql")),
    (7, "nodes", include_str!("../migrations/0007_nodes.sql")),
    (
        8,
        "operator",
        include_str!("../migrations/0008_operator.sql"),
    ),
    (9, "polling", include_str!("../migrations/0009_polling.sql")),
    (10, "counts", include_str!("../migrations/0010_counts.sql")),
    (
        11,
        "chunk counts",
        include_str!("../migrations/0011_chunk_counts.sql"),
    ),
    (
        12,
        "parents",
        include_str!("../migrations/0012_parents.sql"),
    ),
    (
        13,
        "item staging",
        include_str!("../migrations/0013_item_staging.sql"),
    ),
];

/// Opens (creating if needed) `confsync.db` under `data_dir`, with the key
/// beside it (or `CONFSYNC_SECRET_KEY`).
pub(crate) async fn open(data_dir: &Path) -> Result<imp::Store> {
    std::fs::create_dir_all(data_dir)?;
    let cipher = Cipher::load_or_create(data_dir).map_err(Error::Secret)?;
    let path = data_dir.join("confsync.db");
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL with NORMAL survives a killed process (not a power cut
        // between checkpoints), which is the failure a sync must survive.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(std::time::Duration::from_secs(30))
        // Reads straight from the file's pages, mapped, instead of copying
        // each page a query touches into every connection's own cache
        // (under 200 concurrent listings most of the store's time was
        // those copies); the per-connection cache grows from 2 MB to 16 MB.
        .pragma("mmap_size", "1073741824")
        .pragma("cache_size", "-16000");
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        // A connection to a file in this process does not drop the way a
        // network one can: no ping (a round trip to the connection's
        // thread, as costly as a small statement) before every statement.
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    crate::migrator(MIGRATIONS).run(&pool).await?;
    // Opened after the migrations: they read the schema as it is now.
    let readers = crate::readers::Readers::open(&path)?;
    Ok(imp::Store::new(pool, cipher, Some(readers)))
}

#[cfg(test)]
mod migration_tests {
    /// Every file under migrations/ is embedded, under the version and
    /// description its name gives (as `sqlx::migrate!` reads them).
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        assert_eq!(
            crate::migration_files(dir),
            crate::embedded(super::MIGRATIONS)
        );
    }
}
