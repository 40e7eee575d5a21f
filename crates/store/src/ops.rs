//! Domain operations: what the API and the admin console do, one
//! transaction each. Each writes its change, the webhook events it causes
//! and the sync it queues together, so that a crash leaves the operation
//! whole or absent, never a change without its event or its job.
//!
//! Each begins by writing (an upsert or an update), so that it holds
//! SQLite's write lock from its first statement: a transaction that reads
//! first can fail outright when another connection commits in between.

use crate::api::{emit, enqueue_in, enqueue_kind_in};
use crate::console::record_in;
use crate::search::enforce_in;
use crate::Actor;
use crate::{now, Connection, Error, Result, Store};
use serde_json::Value;
use sqlx::Row;

/// The webhook events confsync sends (Carbon's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Add,
    Update,
    Cancel,
    Revoke,
    FilesCreated,
    FileSyncing,
    FileReady,
    FileError,
    FileDeleted,
    DataSourceReady,
    OrganizationUserDeleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Add => "ADD",
            EventKind::Update => "UPDATE",
            EventKind::Cancel => "CANCEL",
            EventKind::Revoke => "REVOKE",
            EventKind::FilesCreated => "FILES_CREATED",
            EventKind::FileSyncing => "FILE_SYNCING",
            EventKind::FileReady => "FILE_READY",
            EventKind::FileError => "FILE_ERROR",
            EventKind::FileDeleted => "FILE_DELETED",
            EventKind::DataSourceReady => "DATA_SOURCE_READY",
            EventKind::OrganizationUserDeleted => "ORGANIZATION_USER_DELETED",
        }
    }
}

/// One event for the outbox: its kind, and the exact body that will be
/// signed and sent (the HTTP API's format, which the server writes).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub body: String,
}

/// Where a connection is, as its last sync left it (or its queue says).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionStatus {
    /// Connected, never synced.
    Connected,
    QueuedForSyncing,
    Syncing,
    Ready,
    SyncError,
    /// The credentials or the OAuth grant were refused: a person must act.
    NeedsReauthorization,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "CONNECTED",
            ConnectionStatus::QueuedForSyncing => "QUEUED_FOR_SYNCING",
            ConnectionStatus::Syncing => "SYNCING",
            ConnectionStatus::Ready => "READY",
            ConnectionStatus::SyncError => "SYNC_ERROR",
            ConnectionStatus::NeedsReauthorization => "NEEDS_REAUTHORIZATION",
        }
    }

    /// A stored status; one that does not read is an error (never READY).
    pub fn parse(text: &str) -> ConnectionStatus {
        match text {
            "CONNECTED" => ConnectionStatus::Connected,
            "QUEUED_FOR_SYNCING" => ConnectionStatus::QueuedForSyncing,
            "SYNCING" => ConnectionStatus::Syncing,
            "READY" => ConnectionStatus::Ready,
            "NEEDS_REAUTHORIZATION" => ConnectionStatus::NeedsReauthorization,
            _ => ConnectionStatus::SyncError,
        }
    }
}

impl std::fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job of the queue does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Syncs the connection's files.
    Sync,
    /// Lists the site's item tree (spaces and pages) for a picker.
    Items,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Sync => "sync",
            JobKind::Items => "items",
        }
    }

    pub fn parse(text: &str) -> JobKind {
        match text {
            "items" => JobKind::Items,
            _ => JobKind::Sync,
        }
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    /// Stopped by the caller (an item listing cancelled).
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "QUEUED",
            JobStatus::Running => "RUNNING",
            JobStatus::Done => "DONE",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
        }
    }

    /// A stored status; an unknown one reads as failed (never as running
    /// or queued, which would run it).
    pub fn parse(text: &str) -> JobStatus {
        match text {
            "QUEUED" => JobStatus::Queued,
            "RUNNING" => JobStatus::Running,
            "DONE" => JobStatus::Done,
            "CANCELLED" => JobStatus::Cancelled,
            _ => JobStatus::Failed,
        }
    }
}

/// A connect (or reconnect) of a customer's site, as the API makes it.
pub struct Connect<'a> {
    pub organisation_id: &'a str,
    /// The API customer it is for; `None`: the organisation's own
    /// (the admin console's).
    pub customer_id: Option<&'a str>,
    /// The admin who connects it (the console's), recorded.
    pub connected_by: Option<crate::Actor<'a>>,
    /// Whether a new connection syncs personal spaces (the console's
    /// policy is not to).
    pub allow_personal_spaces: bool,
    pub site_url: &'a str,
    pub context_path: &'a str,
    /// The site as a person opens it, where the API goes through a gateway.
    pub site_link: Option<&'a str>,
    pub auth_kind: &'a str,
    pub account: &'a str,
    /// The account's email or display name, where Confluence said it.
    pub account_label: Option<&'a str>,
    /// Plaintext secrets (JSON); sealed before they are written.
    pub credentials: &'a [u8],
    pub chunk_size: i64,
    pub chunk_overlap: i64,
    pub tags: &'a Value,
    /// `None`: a new connection does not enforce, an existing one keeps
    /// what it has.
    pub enforce_permissions: Option<bool>,
    /// The scope of a new connection (an existing one keeps its own).
    pub new_scope: &'a Value,
    /// The data source to reconnect; else the customer's connection to the
    /// same site as the same account, or a new one.
    pub reconnect: Option<i64>,
    /// Also queue a listing of the site's item tree (for a picker).
    pub list_items: bool,
    pub next_sync_at: &'a str,
}

/// What a connect did.
#[derive(Debug)]
pub struct Connected {
    pub connection: Connection,
    pub created: bool,
    pub queued: bool,
}

impl Store {
    /// Connects (or reconnects) a customer's site: the customer, the
    /// connection with its sealed credentials and settings, the events
    /// `events` gives for it (told whether it is new) and, when `wants_sync`
    /// says so, its first sync: one transaction.
    pub async fn connect(
        &self,
        op: Connect<'_>,
        events: impl FnOnce(&Connection, bool) -> Vec<Event>,
        wants_sync: impl FnOnce(&Connection) -> bool,
    ) -> Result<Connected> {
        let sealed = self.cipher.seal(op.credentials).map_err(Error::Secret)?;
        let at = now();
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let user_id: Option<String> = match op.customer_id {
            Some(customer_id) => {
                sqlx::query(
                    "INSERT INTO end_users (id, organisation_id, customer_id, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (organisation_id, customer_id) DO NOTHING",
                )
                .bind(crate::new_id("usr"))
                .bind(op.organisation_id)
                .bind(customer_id)
                .bind(&at)
                .bind(&at)
                .execute(&mut *tx)
                .await?;
                Some(
                    sqlx::query(
                        "SELECT id FROM end_users WHERE organisation_id = ? AND customer_id = ?",
                    )
                    .bind(op.organisation_id)
                    .bind(customer_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .get("id"),
                )
            }
            None => {
                // Takes the write lock first (see the module's note).
                sqlx::query("UPDATE organisations SET name = name WHERE id = ?")
                    .bind(op.organisation_id)
                    .execute(&mut *tx)
                    .await?;
                None
            }
        };
        let existing = match op.reconnect {
            Some(number) => Some(
                sqlx::query(
                    "SELECT id FROM connections WHERE organisation_id = ? AND end_user_id IS ? \
                     AND data_source_id = ?",
                )
                .bind(op.organisation_id)
                .bind(&user_id)
                .bind(number)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::NotFound("data source".into()))?
                .get::<String, _>("id"),
            ),
            None => sqlx::query(
                "SELECT id FROM connections WHERE organisation_id = ? AND end_user_id IS ? \
                 AND site_url = ? AND account = ? ORDER BY data_source_id LIMIT 1",
            )
            .bind(op.organisation_id)
            .bind(&user_id)
            .bind(op.site_url)
            .bind(op.account)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get::<String, _>("id")),
        };
        let created = existing.is_none();
        let id = match existing {
            Some(id) => {
                sqlx::query("UPDATE connections SET credentials = ? WHERE id = ?")
                    .bind(&sealed)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            None => {
                let id = crate::new_id("conn");
                sqlx::query(
                    "INSERT INTO connections (id, organisation_id, site_url, auth_kind, account, credentials, \
                     allow_personal_spaces, scope, status, connected_by, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'CONNECTED', ?, ?, ?)",
                )
                .bind(&id)
                .bind(op.organisation_id)
                .bind(op.site_url)
                .bind(op.auth_kind)
                .bind(op.account)
                .bind(&sealed)
                .bind(op.allow_personal_spaces)
                .bind(op.new_scope.to_string())
                .bind(op.connected_by.map(|a| a.admin_id))
                .bind(&at)
                .bind(&at)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        sqlx::query(
            "UPDATE connections SET end_user_id = ?, context_path = ?, site_link = ?, chunk_size = ?, \
             chunk_overlap = ?, data_source_tags = ?, revoked = 0, auto_sync = 1, next_sync_at = ?, \
             last_sync_action = 'ADD', account_label = COALESCE(?, account_label), updated_at = ? WHERE id = ?",
        )
        .bind(&user_id)
        .bind(op.context_path)
        .bind(op.site_link)
        .bind(op.chunk_size)
        .bind(op.chunk_overlap)
        .bind(op.tags.to_string())
        .bind(op.next_sync_at)
        .bind(op.account_label)
        .bind(&at)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if let Some(enforce) = op.enforce_permissions {
            enforce_in(&mut tx, &id, enforce).await?;
        }
        let row = sqlx::query("SELECT * FROM connections WHERE id = ?")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
        let connection = Store::connection_from(&row);
        emit(&mut tx, op.organisation_id, &events(&connection, created)).await?;
        let queued = wants_sync(&connection);
        if queued {
            enqueue_in(&mut tx, &id, "connect").await?;
        }
        if op.list_items {
            enqueue_kind_in(&mut tx, &id, JobKind::Items, "connect").await?;
        }
        let site = op.site_link.unwrap_or(op.site_url);
        let action = if created { "Connect" } else { "Reconnect" };
        record_in(&mut tx, op.organisation_id, op.connected_by, action, site).await?;
        tx.commit().await?;
        let connection = self.connection(&id).await?;
        Ok(Connected {
            connection,
            created,
            queued,
        })
    }

    /// Revokes a connection's access (credentials erased, syncing stopped,
    /// queued jobs dropped) with its events: one transaction. What was
    /// synced stays until deleted.
    pub async fn revoke(
        &self,
        organisation_id: &str,
        connection_id: &str,
        events: &[Event],
        actor: Option<Actor<'_>>,
    ) -> Result<()> {
        let sealed = self.cipher.seal(b"{}").map_err(Error::Secret)?;
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE connections SET credentials = ?, revoked = 1, auto_sync = 0, next_sync_at = NULL, \
             last_sync_action = 'REVOKE', updated_at = ? WHERE id = ? AND organisation_id = ?",
        )
        .bind(sealed)
        .bind(now())
        .bind(connection_id)
        .bind(organisation_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sync_jobs WHERE connection_id = ? AND status = 'QUEUED'")
            .bind(connection_id)
            .execute(&mut *tx)
            .await?;
        emit(&mut tx, organisation_id, events).await?;
        record_in(
            &mut tx,
            organisation_id,
            actor,
            "Revoke access",
            connection_id,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds to what a connection syncs (its new scope, and chunk settings
    /// if given), with its events and the sync that fetches it: one
    /// transaction.
    #[allow(clippy::too_many_arguments)] // the operation's whole input, from the API and the console
    pub async fn choose_scope(
        &self,
        organisation_id: &str,
        connection_id: &str,
        scope: &Value,
        chosen: &[String],
        chunking: Option<(i64, i64)>,
        events: &[Event],
        actor: Option<Actor<'_>>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE connections SET scope = ?, last_sync_action = 'UPDATE', updated_at = ? \
             WHERE id = ? AND organisation_id = ?",
        )
        .bind(scope.to_string())
        .bind(now())
        .bind(connection_id)
        .bind(organisation_id)
        .execute(&mut *tx)
        .await?;
        set_chunking_in(&mut tx, connection_id, chunking).await?;
        // Chosen again: deleted pages (by id) and the deleted content of
        // chosen spaces (by key) may come back.
        for id in chosen {
            sqlx::query("DELETE FROM removed_spaces WHERE connection_id = ? AND space_key = ?")
                .bind(connection_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM deleted_files WHERE connection_id = ? AND (external_id = ? OR space_id IN \
                 (SELECT space_id FROM spaces WHERE connection_id = ? AND space_key = ?))",
            )
            .bind(connection_id)
            .bind(id)
            .bind(connection_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        emit(&mut tx, organisation_id, events).await?;
        enqueue_in(&mut tx, connection_id, "files").await?;
        if !chosen.is_empty() {
            record_in(
                &mut tx,
                organisation_id,
                actor,
                "Add content",
                &chosen.join(", "),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Asks for a file again (chunk settings too, if given) and queues the
    /// sync that fetches it: one transaction.
    pub async fn resync_file(
        &self,
        connection_id: &str,
        file_id: i64,
        chunking: Option<(i64, i64)>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE files SET version = -1, status = 'QUEUED_FOR_SYNC' WHERE id = ? AND connection_id = ?",
        )
        .bind(file_id)
        .bind(connection_id)
        .execute(&mut *tx)
        .await?;
        set_chunking_in(&mut tx, connection_id, chunking).await?;
        enqueue_in(&mut tx, connection_id, "resync_file").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes files (by connection) with their events: one transaction.
    /// Returns how many were deleted.
    pub async fn delete_files_of(
        &self,
        organisation_id: &str,
        files: &[(String, Vec<i64>)],
        events: &[Event],
    ) -> Result<u64> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for (connection_id, ids) in files {
            for id in ids {
                // Remembered, so that no sync brings it back unasked.
                sqlx::query(
                    "INSERT INTO deleted_files (connection_id, kind, external_id, space_id, deleted_at) \
                     SELECT f.connection_id, f.kind, f.external_id, f.space_id, ? FROM files f \
                     JOIN connections c ON c.id = f.connection_id \
                     WHERE f.id = ? AND f.connection_id = ? AND c.organisation_id = ? \
                     ON CONFLICT (connection_id, kind, external_id) DO NOTHING",
                )
                .bind(now())
                .bind(id)
                .bind(connection_id)
                .bind(organisation_id)
                .execute(&mut *tx)
                .await?;
                removed += sqlx::query(
                    "DELETE FROM files WHERE id = ? AND connection_id = ? AND connection_id IN \
                     (SELECT id FROM connections WHERE organisation_id = ?)",
                )
                .bind(id)
                .bind(connection_id)
                .bind(organisation_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        emit(&mut tx, organisation_id, events).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Deletes customers with their connections and everything synced
    /// through them, with their events: one transaction. Returns how many.
    pub async fn delete_customers(
        &self,
        organisation_id: &str,
        customer_ids: &[String],
        events: &[Event],
    ) -> Result<u64> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for customer in customer_ids {
            removed +=
                sqlx::query("DELETE FROM end_users WHERE organisation_id = ? AND customer_id = ?")
                    .bind(organisation_id)
                    .bind(customer)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
        }
        emit(&mut tx, organisation_id, events).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Queues a listing of a connection's item tree (a queued one absorbs
    /// it). Returns the job's id and whether it is new.
    pub async fn enqueue_items(&self, connection_id: &str, reason: &str) -> Result<(i64, bool)> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let queued = enqueue_kind_in(&mut tx, connection_id, JobKind::Items, reason).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Cancels a connection's item listing: a queued one is dropped; the
    /// running one's id is returned, for its worker to stop.
    pub async fn cancel_items(&self, connection_id: &str) -> Result<Option<i64>> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE sync_jobs SET status = 'CANCELLED', finished_at = ? \
             WHERE connection_id = ? AND kind = 'items' AND status = 'QUEUED'",
        )
        .bind(now())
        .bind(connection_id)
        .execute(&mut *tx)
        .await?;
        let running = sqlx::query(
            "SELECT id FROM sync_jobs WHERE connection_id = ? AND kind = 'items' AND status = 'RUNNING'",
        )
        .bind(connection_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.get::<i64, _>("id"));
        tx.commit().await?;
        Ok(running)
    }

    /// Writes one part of an item listing (a space and its pages), marked
    /// with the listing's start so that `finish_source_items` can tell what
    /// it did not see.
    pub async fn write_source_items(
        &self,
        connection_id: &str,
        listing: &str,
        items: &[crate::NewSourceItem],
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        crate::api::upsert_source_items(&mut tx, connection_id, listing, items).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a complete item listing: what it did not see is removed, and
    /// the connection says when its items were listed.
    pub async fn finish_source_items(&self, connection_id: &str, listing: &str) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM source_items WHERE connection_id = ? AND synced_at <> ?")
            .bind(connection_id)
            .bind(listing)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE connections SET source_items_synced_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(now())
        .bind(now())
        .bind(connection_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets customers' auto-sync settings (creating customers not seen
    /// yet) and moves each of their connections' next run where
    /// `next_sync` says: one transaction.
    pub async fn update_customers(
        &self,
        organisation_id: &str,
        customer_ids: &[String],
        sources: Option<&Value>,
        interval_hours: Option<i64>,
        next_sync: impl Fn(&Connection) -> Option<String>,
    ) -> Result<()> {
        let at = now();
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        for customer in customer_ids {
            sqlx::query(
                "INSERT INTO end_users (id, organisation_id, customer_id, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (organisation_id, customer_id) DO NOTHING",
            )
            .bind(crate::new_id("usr"))
            .bind(organisation_id)
            .bind(customer)
            .bind(&at)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE end_users SET auto_sync_sources = COALESCE(?, auto_sync_sources), \
                 auto_sync_interval = COALESCE(?, auto_sync_interval), updated_at = ? \
                 WHERE organisation_id = ? AND customer_id = ?",
            )
            .bind(sources.map(|s| s.to_string()))
            .bind(interval_hours)
            .bind(&at)
            .bind(organisation_id)
            .bind(customer)
            .execute(&mut *tx)
            .await?;
            let rows = sqlx::query(
                "SELECT c.* FROM connections c JOIN end_users u ON u.id = c.end_user_id \
                 WHERE u.organisation_id = ? AND u.customer_id = ?",
            )
            .bind(organisation_id)
            .bind(customer)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let connection = Store::connection_from(row);
                if let Some(next) = next_sync(&connection) {
                    sqlx::query("UPDATE connections SET next_sync_at = ? WHERE id = ?")
                        .bind(next)
                        .bind(&connection.id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// New chunk settings for a connection, if given.
async fn set_chunking_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    connection_id: &str,
    chunking: Option<(i64, i64)>,
) -> Result<()> {
    if let Some((size, overlap)) = chunking {
        sqlx::query(
            "UPDATE connections SET chunk_size = ?, chunk_overlap = ?, updated_at = ? WHERE id = ?",
        )
        .bind(size)
        .bind(overlap)
        .bind(now())
        .bind(connection_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
