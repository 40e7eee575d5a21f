//! The embedded store's hot reads, run on the caller's own thread.
//!
//! sqlx runs each SQLite connection on a thread of its own: a statement is
//! a command sent to that thread and rows sent back, two thread hand-offs
//! at least, and each value of each row is copied out of SQLite with two
//! allocations. Under 200 connections listing files, the hand-offs were a
//! fifth of the server's CPU and the copies another tenth (docs/BENCHMARKS.md,
//! "Reads on the request's thread"). These connections, opened on the same
//! file through the same SQLite library (one `libsqlite3-sys` in the
//! build, so SQLite's own bookkeeping of the file's locks covers both),
//! read on the thread that asks, and rows are read in place.
//!
//! They only read (`PRAGMA query_only`): every write stays on sqlx's pool
//! and its one writer. In WAL mode a read sees every transaction
//! committed before it began, whichever connection committed it.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Idle connections kept for reuse; more are opened when more threads read
/// at once, and closed after.
const KEEP: usize = 8;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl Readers {
    /// Opens one connection to `path` (an existing store) at once, so that
    /// a store that cannot be read this way fails when it opens.
    pub(crate) fn open(path: &Path) -> Result<Readers> {
        let first = connect(path)?;
        Ok(Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(vec![first]),
        })
    }

    /// Runs `read` on an idle connection (or a new one), on this thread.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match taken {
            Some(connection) => connection,
            None => connect(&self.path)?,
        };
        let result = read(&connection).map_err(read_error);
        // A connection is put back whatever the statement did: a failed
        // read leaves no transaction open (each statement is its own, or
        // `read` ended its own).
        if connection.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEEP {
                idle.push(connection);
            }
        }
        result
    }

    /// Runs `read` on a blocking thread, for reads whose cost is not
    /// bounded (a runtime thread is never held for long).
    pub(crate) async fn read_apart<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || readers.read(read))
            .await
            .map_err(|e| Error::Read(e.to_string()))?
    }

    /// Every row of `sql` with `params`, each mapped by `map`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        mut map: impl FnMut(&rusqlite::Row<'_>) -> T,
    ) -> Result<Vec<T>> {
        self.read(|c| {
            let mut statement = c.prepare_cached(sql)?;
            let mut rows = statement.query(params)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(map(row));
            }
            Ok(out)
        })
    }
}

fn connect(path: &Path) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    // No mutex of SQLite's own: a connection is used by one thread at a
    // time (taken from `idle`, then put back).
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(read_error)?;
    connection
        .busy_timeout(Duration::from_secs(30))
        .map_err(read_error)?;
    // As the pool's connections (crate::sqlite::open): pages read from the
    // mapped file, a 16 MB cache; and nothing written through these.
    connection
        .execute_batch(
            "PRAGMA query_only = 1; PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -16000;",
        )
        .map_err(read_error)?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

fn read_error(error: rusqlite::Error) -> Error {
    Error::Read(error.to_string())
}
