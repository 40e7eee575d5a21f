//! confsync's persistent model: organisations, end users, connections
//! (with encrypted credentials), spaces, files (pages, blog posts,
//! attachments, comments) and their content, sync checkpoints and jobs.
//!
//! `Store` is the one interface the rest of confsync uses. Today it runs on
//! SQLite, embedded under a data directory, with its migrations embedded and
//! run at open. The SQL is kept portable so that the PostgreSQL backend can
//! carry the same statements; nothing outside this crate sees SQL.
//!
//! It knows nothing of HTTP or of Confluence's wire format.

#![forbid(unsafe_code)]

mod api;
mod console;
mod ops;
mod search;
mod secret;

pub use api::*;
pub use console::*;
pub use ops::*;
pub use search::{
    vector_from_bytes, vector_to_bytes, Chunk, FileContent, IndexChange, IndexableFile, NewChunk,
    ReadRestriction, ScopeRow, Segment, SpacePrincipals, Visibility,
};
pub use secret::Cipher;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("secret: {0}")]
    Secret(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The kinds of file a connection holds.
pub mod kind {
    pub const PAGE: &str = "page";
    pub const BLOG_POST: &str = "blogpost";
    pub const ATTACHMENT: &str = "attachment";
    pub const COMMENT: &str = "comment";
    pub const ALL: [&str; 4] = [PAGE, BLOG_POST, ATTACHMENT, COMMENT];
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Connection {
    pub id: String,
    pub organisation_id: String,
    pub site_url: String,
    pub auth_kind: String,
    pub account: String,
    pub allow_personal_spaces: bool,
    pub scope: serde_json::Value,
    pub status: ConnectionStatus,
    pub error: Option<String>,
    pub created_at: String,
    pub last_synced_at: Option<String>,
    /// The end user (Carbon's customer) it belongs to, if any.
    pub end_user_id: Option<String>,
    /// Whether search applies Confluence's own permissions.
    pub enforce_permissions: bool,
    pub chunk_size: i64,
    pub chunk_overlap: i64,
    /// Carbon's integer `data_source_id`.
    /// The account as a person reads it (email or display name).
    pub account_label: Option<String>,
    pub data_source_id: i64,
    /// The API's context path (`/wiki` on Cloud, often empty on Data Center).
    pub context_path: String,
    /// The site as a person opens it, when the API is reached elsewhere
    /// (OAuth connections go through Atlassian's gateway).
    pub site_link: Option<String>,
    /// Access revoked: kept, but never synced again.
    pub revoked: bool,
    pub auto_sync: bool,
    pub next_sync_at: Option<String>,
    pub data_source_tags: serde_json::Value,
    pub last_sync_action: String,
    pub source_items_synced_at: Option<String>,
    pub updated_at: String,
}

pub struct NewConnection<'a> {
    pub organisation_id: &'a str,
    pub site_url: &'a str,
    pub auth_kind: &'a str,
    pub account: &'a str,
    /// Plaintext secrets (JSON); encrypted before they are written.
    pub credentials: &'a [u8],
    pub allow_personal_spaces: bool,
    pub scope: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpaceRow {
    pub space_id: String,
    pub key: String,
    pub name: String,
    pub space_type: String,
    pub status: String,
    pub homepage_id: Option<String>,
}

/// What the store knows of a file, to decide whether it changed.
#[derive(Clone, Debug, PartialEq)]
pub struct FileState {
    pub version: i64,
    pub title: String,
    pub parent_id: Option<String>,
    pub space_id: Option<String>,
    pub container_id: Option<String>,
    pub status: String,
}

/// A file as a sync writes it. `body` and `labels` of `None` keep what is
/// stored (a metadata-only update); `content_hash` goes with `body`.
#[derive(Clone, Debug, Default)]
pub struct FileUpsert {
    pub kind: &'static str,
    pub external_id: String,
    pub space_id: Option<String>,
    pub parent_id: Option<String>,
    pub container_id: Option<String>,
    pub title: String,
    pub url: Option<String>,
    pub version: i64,
    pub media_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub labels: Option<Vec<String>>,
    pub status: &'static str,
    pub error: Option<String>,
    pub created_at: Option<String>,
    pub body: Option<String>,
    pub content_hash: Option<String>,
    /// The Markdown (or text) of `body`, and its chunks; written with it.
    pub markdown: Option<String>,
    pub chunks: Option<Vec<NewChunk>>,
    /// The file's own read restriction; `None` keeps what is stored (a
    /// new page or blog post without one is `Unknown`: nobody passes it).
    pub read_restriction: Option<ReadRestriction>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FileRow {
    pub kind: String,
    pub external_id: String,
    pub space_id: Option<String>,
    pub parent_id: Option<String>,
    pub container_id: Option<String>,
    pub title: String,
    pub version: i64,
    pub content_hash: Option<String>,
    pub labels: Vec<String>,
    pub status: String,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub stats: serde_json::Value,
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    cipher: Cipher,
    /// Write transactions of this process, one at a time: SQLite has one
    /// writer, and waiting here is fair and prompt where SQLite's busy
    /// handler sleeps and retries (stalls of a second were seen with four
    /// spaces syncing at once while the index read).
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// The store's migrations, embedded in the binary. `sqlx::migrate!` would
/// embed the same (same versions, descriptions and checksums), but needs
/// sqlx's macros, whose build (a second SQLite among them) cost CI minutes.
const MIGRATIONS: &[(i64, &str, &str)] = &[
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
];

fn migrator() -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    Migrator {
        migrations: Cow::Owned(
            MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        sql.starts_with("-- no-transaction"),
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::thread_rng().gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir`: the database
    /// `confsync.db` and the key that encrypts credentials.
    pub async fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir)?;
        let cipher = Cipher::load_or_create(data_dir).map_err(Error::Secret)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(data_dir.join("confsync.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL survives a killed process (not a power cut
            // between checkpoints), which is the failure a sync must survive.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        migrator().run(&pool).await?;
        Ok(Store {
            pool,
            cipher,
            writer: Default::default(),
        })
    }

    /// A key for one purpose, derived from the data directory's secret key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        self.cipher.derive(purpose)
    }

    pub async fn ensure_organisation(&self, name: &str) -> Result<String> {
        if let Some(row) = sqlx::query("SELECT id FROM organisations WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(row.get("id"));
        }
        let id = new_id("org");
        sqlx::query(
            "INSERT INTO organisations (id, name, created_at, number) \
             VALUES (?, ?, ?, NULL)",
        )
        .bind(&id)
        .bind(name)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn create_connection(&self, new: NewConnection<'_>) -> Result<Connection> {
        let id = new_id("conn");
        let sealed = self.cipher.seal(new.credentials).map_err(Error::Secret)?;
        sqlx::query(
            "INSERT INTO connections (id, organisation_id, site_url, auth_kind, account, credentials, \
             allow_personal_spaces, scope, status, created_at, updated_at, data_source_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'CONNECTED', ?, ?, \
             NULL)",
        )
        .bind(&id)
        .bind(new.organisation_id)
        .bind(new.site_url)
        .bind(new.auth_kind)
        .bind(new.account)
        .bind(sealed)
        .bind(new.allow_personal_spaces)
        .bind(new.scope.to_string())
        .bind(now())
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.connection(&id).await
    }

    fn connection_from(row: &sqlx::sqlite::SqliteRow) -> Connection {
        Connection {
            id: row.get("id"),
            organisation_id: row.get("organisation_id"),
            site_url: row.get("site_url"),
            auth_kind: row.get("auth_kind"),
            account: row.get("account"),
            allow_personal_spaces: row.get("allow_personal_spaces"),
            // Null when unreadable: the server's `Scope::of` refuses it
            // (an unreadable scope syncs nothing, never everything).
            scope: serde_json::from_str(row.get::<&str, _>("scope"))
                .unwrap_or(serde_json::Value::Null),
            status: ConnectionStatus::parse(row.get("status")),
            error: row.get("error"),
            created_at: row.get("created_at"),
            last_synced_at: row.get("last_synced_at"),
            end_user_id: row.get("end_user_id"),
            enforce_permissions: row.get("enforce_permissions"),
            chunk_size: row.get("chunk_size"),
            chunk_overlap: row.get("chunk_overlap"),
            data_source_id: row.get::<Option<i64>, _>("data_source_id").unwrap_or(0),
            account_label: row.get("account_label"),
            context_path: row.get("context_path"),
            site_link: row.get("site_link"),
            revoked: row.get("revoked"),
            auto_sync: row.get("auto_sync"),
            next_sync_at: row.get("next_sync_at"),
            data_source_tags: serde_json::from_str(row.get::<&str, _>("data_source_tags"))
                .unwrap_or_default(),
            last_sync_action: row.get("last_sync_action"),
            source_items_synced_at: row.get("source_items_synced_at"),
            updated_at: row
                .get::<Option<String>, _>("updated_at")
                .unwrap_or_else(|| row.get("created_at")),
        }
    }

    pub async fn connection(&self, id: &str) -> Result<Connection> {
        let row = sqlx::query("SELECT * FROM connections WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("connection {id}")))?;
        Ok(Self::connection_from(&row))
    }

    pub async fn connections(&self) -> Result<Vec<Connection>> {
        let rows = sqlx::query("SELECT * FROM connections ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Self::connection_from).collect())
    }

    pub async fn find_connection(
        &self,
        organisation_id: &str,
        site_url: &str,
        account: &str,
    ) -> Result<Option<Connection>> {
        let row = sqlx::query(
            "SELECT * FROM connections WHERE organisation_id = ? AND site_url = ? AND account = ?",
        )
        .bind(organisation_id)
        .bind(site_url)
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Self::connection_from))
    }

    /// The decrypted credentials of a connection.
    pub async fn credentials(&self, connection_id: &str) -> Result<Vec<u8>> {
        let row = sqlx::query("SELECT credentials FROM connections WHERE id = ?")
            .bind(connection_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("connection {connection_id}")))?;
        self.cipher
            .open(row.get::<&[u8], _>("credentials"))
            .map_err(Error::Secret)
    }

    pub async fn set_credentials(&self, connection_id: &str, plaintext: &[u8]) -> Result<()> {
        let sealed = self.cipher.seal(plaintext).map_err(Error::Secret)?;
        sqlx::query("UPDATE connections SET credentials = ? WHERE id = ?")
            .bind(sealed)
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_scope(&self, connection_id: &str, scope: &serde_json::Value) -> Result<()> {
        sqlx::query("UPDATE connections SET scope = ? WHERE id = ?")
            .bind(scope.to_string())
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_connection_status(
        &self,
        connection_id: &str,
        status: ConnectionStatus,
        error: Option<&str>,
        synced: bool,
    ) -> Result<()> {
        let synced_at = synced.then(now);
        sqlx::query(
            "UPDATE connections SET status = ?, error = ?, \
             last_synced_at = COALESCE(?, last_synced_at) WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(synced_at)
        .bind(connection_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // Spaces.

    pub async fn upsert_spaces(
        &self,
        connection_id: &str,
        spaces: &[SpaceRow],
        run: i64,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        for space in spaces {
            sqlx::query(
                "INSERT INTO spaces (connection_id, space_id, space_key, name, space_type, status, homepage_id, seen_run) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (connection_id, space_id) DO UPDATE SET space_key = excluded.space_key, \
                 name = excluded.name, space_type = excluded.space_type, status = excluded.status, \
                 homepage_id = excluded.homepage_id, seen_run = excluded.seen_run",
            )
            .bind(connection_id)
            .bind(&space.space_id)
            .bind(&space.key)
            .bind(&space.name)
            .bind(&space.space_type)
            .bind(&space.status)
            .bind(&space.homepage_id)
            .bind(run)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn spaces(&self, connection_id: &str) -> Result<Vec<SpaceRow>> {
        let rows = sqlx::query("SELECT * FROM spaces WHERE connection_id = ? ORDER BY space_key")
            .bind(connection_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| SpaceRow {
                space_id: row.get("space_id"),
                key: row.get("space_key"),
                name: row.get("name"),
                space_type: row.get("space_type"),
                status: row.get("status"),
                homepage_id: row.get("homepage_id"),
            })
            .collect())
    }

    /// Removes spaces not seen in `run`, with everything in them: a space
    /// deleted in Confluence, no longer readable, or no longer chosen.
    /// Returns the number of files removed, by kind.
    pub async fn delete_unseen_spaces(
        &self,
        connection_id: &str,
        run: i64,
    ) -> Result<HashMap<String, u64>> {
        let gone: Vec<String> =
            sqlx::query("SELECT space_id FROM spaces WHERE connection_id = ? AND seen_run <> ?")
                .bind(connection_id)
                .bind(run)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.get("space_id"))
                .collect();
        let mut removed: HashMap<String, u64> = HashMap::new();
        for space_id in &gone {
            for (kind, n) in self.delete_space(connection_id, space_id, None).await? {
                *removed.entry(kind).or_default() += n;
            }
        }
        Ok(removed)
    }

    /// Removes one space and everything in it (it is gone from Confluence),
    /// with a checkpoint in the same transaction. Returns files removed by kind.
    pub async fn delete_space(
        &self,
        connection_id: &str,
        space_id: &str,
        checkpoint: Option<(&str, &str)>,
    ) -> Result<HashMap<String, u64>> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "DELETE FROM files WHERE connection_id = ? AND (space_id = ? OR container_id IN \
             (SELECT external_id FROM files WHERE connection_id = ? AND space_id = ?)) RETURNING kind",
        )
        .bind(connection_id)
        .bind(space_id)
        .bind(connection_id)
        .bind(space_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut removed: HashMap<String, u64> = HashMap::new();
        for row in rows {
            *removed.entry(row.get::<String, _>("kind")).or_default() += 1;
        }
        sqlx::query("DELETE FROM spaces WHERE connection_id = ? AND space_id = ?")
            .bind(connection_id)
            .bind(space_id)
            .execute(&mut *tx)
            .await?;
        if let Some((name, value)) = checkpoint {
            set_checkpoint(&mut tx, connection_id, name, value).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    // Files.

    /// What the store holds of these files (by external id).
    pub async fn file_states(
        &self,
        connection_id: &str,
        kind: &str,
        ids: &[String],
    ) -> Result<HashMap<String, FileState>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT external_id, version, title, parent_id, space_id, container_id, status FROM files \
                 WHERE connection_id = ? AND kind = ? AND external_id IN ({placeholders})"
            );
            let mut query = sqlx::query(&sql).bind(connection_id).bind(kind);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                out.insert(
                    row.get("external_id"),
                    FileState {
                        version: row.get("version"),
                        title: row.get("title"),
                        parent_id: row.get("parent_id"),
                        space_id: row.get("space_id"),
                        container_id: row.get("container_id"),
                        status: row.get("status"),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Writes files, marks them seen in `run`, and moves a checkpoint, all
    /// in one transaction: after a crash, either all of it is there or
    /// none, and the checkpoint never runs ahead of the data.
    pub async fn write_batch(
        &self,
        connection_id: &str,
        run: i64,
        files: &[FileUpsert],
        seen: &[(&str, String)],
        checkpoint: Option<(&str, &str)>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let at = now();
        for file in files {
            let labels = file
                .labels
                .as_ref()
                .map(|l| serde_json::to_string(l).unwrap_or_else(|_| "[]".into()));
            // A new page or blog post without a known restriction is
            // Unknown (nobody passes it); others are open on their own.
            let restriction = match (&file.read_restriction, file.kind) {
                (Some(r), _) => r.to_column(),
                (None, kind::PAGE | kind::BLOG_POST) => ReadRestriction::Unknown.to_column(),
                (None, _) => None,
            };
            let row = sqlx::query(
                "INSERT INTO files (connection_id, kind, external_id, space_id, parent_id, container_id, title, url, \
                 version, content_hash, media_type, size_bytes, labels, status, error, seen_run, created_at, updated_at, \
                 read_restriction) \
                 SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?, '[]'), ?, ?, ?, COALESCE(?, ?), ?, ? \
                 WHERE NOT EXISTS (SELECT 1 FROM deleted_files d WHERE d.connection_id = ? \
                 AND d.kind = ? AND d.external_id = ?) \
                 AND NOT EXISTS (SELECT 1 FROM removed_spaces r WHERE r.connection_id = ? AND r.space_id = ?) \
                 ON CONFLICT (connection_id, kind, external_id) DO UPDATE SET \
                 read_restriction = CASE WHEN ? THEN excluded.read_restriction ELSE files.read_restriction END, \
                 space_id = excluded.space_id, parent_id = excluded.parent_id, container_id = excluded.container_id, \
                 title = excluded.title, url = COALESCE(excluded.url, files.url), version = excluded.version, \
                 content_hash = COALESCE(?, files.content_hash), media_type = COALESCE(excluded.media_type, files.media_type), \
                 size_bytes = COALESCE(excluded.size_bytes, files.size_bytes), labels = COALESCE(?, files.labels), \
                 status = excluded.status, error = excluded.error, seen_run = excluded.seen_run, \
                 updated_at = excluded.updated_at \
                 RETURNING id",
            )
            .bind(connection_id)
            .bind(file.kind)
            .bind(&file.external_id)
            .bind(&file.space_id)
            .bind(&file.parent_id)
            .bind(&file.container_id)
            .bind(&file.title)
            .bind(&file.url)
            .bind(file.version)
            .bind(&file.content_hash)
            .bind(&file.media_type)
            .bind(file.size_bytes)
            .bind(&labels)
            .bind(file.status)
            .bind(&file.error)
            .bind(run)
            // Confluence's creation time, else when confsync first stored
            // it: set once, never moved by a resync.
            .bind(&file.created_at)
            .bind(&at)
            .bind(&at)
            .bind(restriction)
            .bind(connection_id)
            .bind(file.kind)
            .bind(&file.external_id)
            .bind(connection_id)
            .bind(&file.space_id)
            .bind(file.read_restriction.is_some())
            .bind(&file.content_hash)
            .bind(&labels)
            .fetch_optional(&mut *tx)
            .await?;
            // Deleted by the caller: stays deleted until chosen again.
            let Some(row) = row else {
                continue;
            };
            let file_id: i64 = row.get("id");
            if let Some(body) = &file.body {
                sqlx::query(
                    "INSERT INTO file_contents (file_id, body, markdown) VALUES (?, ?, ?) \
                     ON CONFLICT (file_id) DO UPDATE SET body = excluded.body, markdown = excluded.markdown",
                )
                .bind(file_id)
                .bind(body)
                .bind(&file.markdown)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(chunks) = &file.chunks {
                search::replace_chunks(&mut tx, file_id, chunks).await?;
            }
        }
        for (kind, id) in seen {
            sqlx::query("UPDATE files SET seen_run = ? WHERE connection_id = ? AND kind = ? AND external_id = ?")
                .bind(run)
                .bind(connection_id)
                .bind(*kind)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((name, value)) = checkpoint {
            set_checkpoint(&mut tx, connection_id, name, value).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the files of `kind` not seen in `run` (within one space when
    /// given), with a checkpoint in the same transaction. Call only after a
    /// listing that ran to its end.
    pub async fn delete_unseen_files(
        &self,
        connection_id: &str,
        kind: &str,
        space_id: Option<&str>,
        run: i64,
        checkpoint: Option<(&str, &str)>,
    ) -> Result<u64> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let result = match space_id {
            Some(space) => {
                sqlx::query(
                    "DELETE FROM files WHERE connection_id = ? AND kind = ? AND space_id = ? AND seen_run <> ?",
                )
                .bind(connection_id)
                .bind(kind)
                .bind(space)
                .bind(run)
                .execute(&mut *tx)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM files WHERE connection_id = ? AND kind = ? AND seen_run <> ?")
                    .bind(connection_id)
                    .bind(kind)
                    .bind(run)
                    .execute(&mut *tx)
                    .await?
            }
        };
        if let Some((name, value)) = checkpoint {
            set_checkpoint(&mut tx, connection_id, name, value).await?;
        }
        tx.commit().await?;
        Ok(result.rows_affected())
    }

    /// Whether the connection holds any file of this kind in this space.
    pub async fn has_files(&self, connection_id: &str, kind: &str, space_id: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM files WHERE connection_id = ? AND kind = ? AND space_id = ? LIMIT 1",
        )
        .bind(connection_id)
        .bind(kind)
        .bind(space_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Every file of a connection, ordered by kind and id.
    pub async fn files(&self, connection_id: &str) -> Result<Vec<FileRow>> {
        let rows = sqlx::query(
            "SELECT kind, external_id, space_id, parent_id, container_id, title, version, content_hash, labels, \
             status, error FROM files WHERE connection_id = ? ORDER BY kind, external_id",
        )
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| FileRow {
                kind: row.get("kind"),
                external_id: row.get("external_id"),
                space_id: row.get("space_id"),
                parent_id: row.get("parent_id"),
                container_id: row.get("container_id"),
                title: row.get("title"),
                version: row.get("version"),
                content_hash: row.get("content_hash"),
                labels: serde_json::from_str(row.get::<&str, _>("labels")).unwrap_or_default(),
                status: row.get("status"),
                error: row.get("error"),
            })
            .collect())
    }

    pub async fn file_body(
        &self,
        connection_id: &str,
        kind: &str,
        external_id: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT c.body FROM files f JOIN file_contents c ON c.file_id = f.id \
             WHERE f.connection_id = ? AND f.kind = ? AND f.external_id = ?",
        )
        .bind(connection_id)
        .bind(kind)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get("body")))
    }

    /// Files of a connection by kind and status.
    pub async fn counts(&self, connection_id: &str) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT kind, status, COUNT(*) AS n FROM files WHERE connection_id = ? GROUP BY kind, status ORDER BY kind, status",
        )
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("kind"), r.get("status"), r.get("n")))
            .collect())
    }

    /// SQLite's own consistency check: `ok`, or what is wrong.
    pub async fn integrity_check(&self) -> Result<String> {
        let row = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<String, _>(0))
    }

    // Checkpoints.

    pub async fn checkpoint(&self, connection_id: &str, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM checkpoints WHERE connection_id = ? AND name = ?")
            .bind(connection_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("value")))
    }

    pub async fn set_checkpoint(&self, connection_id: &str, name: &str, value: &str) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        set_checkpoint(&mut tx, connection_id, name, value).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn clear_checkpoints(&self, connection_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM checkpoints WHERE connection_id = ?")
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // Jobs.

    pub async fn start_job(&self, connection_id: &str, kind: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO jobs (connection_id, kind, status, started_at) VALUES (?, ?, 'SYNCING', ?) RETURNING id",
        )
        .bind(connection_id)
        .bind(kind)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get("id"))
    }

    pub async fn finish_job(
        &self,
        job_id: i64,
        status: &str,
        stats: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = ?, finished_at = ?, stats = ?, error = ? WHERE id = ?",
        )
        .bind(status)
        .bind(now())
        .bind(stats.to_string())
        .bind(error)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn jobs(&self, connection_id: &str, limit: i64) -> Result<Vec<Job>> {
        let rows =
            sqlx::query("SELECT * FROM jobs WHERE connection_id = ? ORDER BY id DESC LIMIT ?")
                .bind(connection_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|r| Job {
                id: r.get("id"),
                kind: r.get("kind"),
                status: r.get("status"),
                started_at: r.get("started_at"),
                finished_at: r.get("finished_at"),
                stats: serde_json::from_str(r.get::<&str, _>("stats")).unwrap_or_default(),
                error: r.get("error"),
            })
            .collect())
    }
}

async fn set_checkpoint(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    connection_id: &str,
    name: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO checkpoints (connection_id, name, value) VALUES (?, ?, ?) \
         ON CONFLICT (connection_id, name) DO UPDATE SET value = excluded.value",
    )
    .bind(connection_id)
    .bind(name)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod migration_tests {
    /// Every file under migrations/ is embedded, under the version and
    /// description its name gives (as `sqlx::migrate!` reads them).
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<(i64, String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "sql"))
            .map(|path| {
                let name = path.file_stem().unwrap().to_str().unwrap().to_string();
                let (version, description) = name.split_once('_').unwrap();
                (
                    version.parse().unwrap(),
                    description.replace('_', " "),
                    std::fs::read_to_string(&path).unwrap(),
                )
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String, String)> = super::MIGRATIONS
            .iter()
            .map(|&(v, d, sql)| (v, d.to_string(), sql.to_string()))
            .collect();
        assert_eq!(files, embedded);
    }
}
