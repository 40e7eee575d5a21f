use super::api::{emit, enqueue_in, enqueue_kind_in};
use super::console::record_in;
use super::search::enforce_in;
use super::*;
use serde_json::Value;

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
                query(
                    "INSERT INTO end_users (id, organisation_id, customer_id, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (organisation_id, customer_id) DO NOTHING",
                )
                .bind(crate::new_id("usr"))
                .bind(op.organisation_id)
                .bind(customer_id)
                .bind(at)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                Some(
                    query("SELECT id FROM end_users WHERE organisation_id = ? AND customer_id = ?")
                        .bind(op.organisation_id)
                        .bind(customer_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .col("id"),
                )
            }
            None => {
                // Takes the write lock first (see the module's note).
                query("UPDATE organisations SET name = name WHERE id = ?")
                    .bind(op.organisation_id)
                    .execute(&mut *tx)
                    .await?;
                None
            }
        };
        let existing = match op.reconnect {
            Some(number) => Some(
                query(
                    "SELECT id FROM connections WHERE organisation_id = ? AND end_user_id IS NOT DISTINCT FROM ? \
                     AND data_source_id = ?",
                )
                .bind(op.organisation_id)
                .bind(&user_id)
                .bind(number)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::NotFound("data source".into()))?
                .col::<String>("id"),
            ),
            None => query(
                "SELECT id FROM connections WHERE organisation_id = ? AND end_user_id IS NOT DISTINCT FROM ? \
                 AND site_url = ? AND account = ? ORDER BY data_source_id LIMIT 1",
            )
            .bind(op.organisation_id)
            .bind(&user_id)
            .bind(op.site_url)
            .bind(op.account)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.col::<String>("id")),
        };
        let created = existing.is_none();
        let id = match existing {
            Some(id) => {
                query("UPDATE connections SET credentials = ? WHERE id = ?")
                    .bind(&sealed)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            None => {
                let id = crate::new_id("conn");
                query(
                    "INSERT INTO connections (id, organisation_id, site_url, auth_kind, account, credentials, \
                     allow_personal_spaces, scope, status, connected_by, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?::jsonb, 'CONNECTED', ?, ?, ?)",
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
                .bind(at)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        query(
            "UPDATE connections SET end_user_id = ?, context_path = ?, site_link = ?, chunk_size = ?, \
             chunk_overlap = ?, data_source_tags = ?::jsonb, revoked = FALSE, auto_sync = TRUE, next_sync_at = ?::timestamptz, \
             last_sync_action = 'ADD', account_label = COALESCE(?, account_label), \
             content_kinds = COALESCE(?, content_kinds), updated_at = ?::timestamptz WHERE id = ?",
        )
        .bind(&user_id)
        .bind(op.context_path)
        .bind(op.site_link)
        .bind(op.chunk_size)
        .bind(op.chunk_overlap)
        .bind(op.tags.to_string())
        .bind(op.next_sync_at)
        .bind(op.account_label)
        .bind(op.content_kinds)
        .bind(at)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if let Some(enforce) = op.enforce_permissions {
            enforce_in(&mut tx, &id, enforce).await?;
        }
        let row = query("SELECT * FROM connections WHERE id = ?")
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
        query(
            "UPDATE connections SET credentials = ?, revoked = TRUE, auto_sync = FALSE, next_sync_at = NULL, \
             last_sync_action = 'REVOKE', updated_at = ?::timestamptz WHERE id = ? AND organisation_id = ?",
        )
        .bind(sealed)
        .bind(now())
        .bind(connection_id)
        .bind(organisation_id)
        .execute(&mut *tx)
        .await?;
        query("DELETE FROM sync_jobs WHERE connection_id = ? AND status = 'QUEUED'")
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
    /// and content kinds if given), with its events and the sync that fetches it: one
    /// transaction.
    #[allow(clippy::too_many_arguments)] // the operation's whole input, from the API and the console
    pub async fn choose_scope(
        &self,
        organisation_id: &str,
        connection_id: &str,
        scope: &Value,
        chosen: &[String],
        chunking: Option<(i64, i64)>,
        content_kinds: Option<&str>,
        events: &[Event],
        actor: Option<Actor<'_>>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        query(
            "UPDATE connections SET scope = ?::jsonb, last_sync_action = 'UPDATE', \
             content_kinds = COALESCE(?, content_kinds), updated_at = ?::timestamptz \
             WHERE id = ? AND organisation_id = ?",
        )
        .bind(scope.to_string())
        .bind(content_kinds)
        .bind(now())
        .bind(connection_id)
        .bind(organisation_id)
        .execute(&mut *tx)
        .await?;
        set_chunking_in(&mut tx, connection_id, chunking).await?;
        // Chosen again: deleted pages (by id) and the deleted content of
        // chosen spaces (by key) may come back.
        for id in chosen {
            query("DELETE FROM removed_spaces WHERE connection_id = ? AND space_key = ?")
                .bind(connection_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            query(
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
        query(
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
                query(
                    "INSERT INTO deleted_files (connection_id, kind, external_id, space_id, deleted_at) \
                     SELECT f.connection_id, f.kind, f.external_id, f.space_id, ?::timestamptz FROM files f \
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
                removed += query(
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
            removed += query("DELETE FROM end_users WHERE organisation_id = ? AND customer_id = ?")
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

    /// Queues a poll of every connection whose poll is due (synced, not
    /// revoked, syncing on schedule), and sets its next one: one
    /// transaction, so that of several nodes each due poll is queued once.
    /// Returns the connections queued.
    pub async fn enqueue_due_polls(&self, at: &str, next_at: &str) -> Result<Vec<String>> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        // A connection polled for the first time is polled one interval on.
        query(
            "UPDATE connections SET next_poll_at = ?::timestamptz WHERE next_poll_at IS NULL \
             AND auto_sync = TRUE AND revoked = FALSE AND status = 'READY'",
        )
        .bind(next_at)
        .execute(&mut *tx)
        .await?;
        let rows = query(
            "UPDATE connections SET next_poll_at = ?::timestamptz WHERE id IN (\
             SELECT id FROM connections WHERE auto_sync = TRUE AND revoked = FALSE AND status = 'READY' \
             AND next_poll_at <= ?::timestamptz ORDER BY next_poll_at LIMIT 500) \
             RETURNING id",
        )
        .bind(next_at)
        .bind(at)
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.col("id")).collect();
        for id in &ids {
            enqueue_kind_in(&mut tx, id, JobKind::Poll, "poll").await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Queues a poll of a connection now (a pushed event); a queued poll
    /// absorbs it.
    pub async fn enqueue_poll(&self, connection_id: &str, reason: &str) -> Result<(i64, bool)> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let queued = enqueue_kind_in(&mut tx, connection_id, JobKind::Poll, reason).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Forgets the polls that ended before `before` (a connection is
    /// polled hundreds of times a day); returns how many.
    pub async fn prune_polls(&self, before: &str) -> Result<u64> {
        let _writing = self.writer.lock().await;
        Ok(query(
            "DELETE FROM sync_jobs WHERE kind = 'poll' AND status IN ('DONE', 'FAILED', 'CANCELLED') \
             AND finished_at < ?::timestamptz",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Records where a connection's last poll looked from.
    pub async fn set_polled_at(&self, connection_id: &str, at: &str) -> Result<()> {
        query("UPDATE connections SET polled_at = ?::timestamptz WHERE id = ?")
            .bind(at)
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Cancels a connection's item listing: a queued one is dropped; the
    /// running one's id is returned, for its worker to stop.
    pub async fn cancel_items(&self, connection_id: &str) -> Result<Option<i64>> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        query(
            "UPDATE sync_jobs SET status = 'CANCELLED', finished_at = ?::timestamptz \
             WHERE connection_id = ? AND kind = 'items' AND status = 'QUEUED'",
        )
        .bind(now())
        .bind(connection_id)
        .execute(&mut *tx)
        .await?;
        let running = query(
            "SELECT id FROM sync_jobs WHERE connection_id = ? AND kind = 'items' AND status = 'RUNNING'",
        )
        .bind(connection_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.col::<i64>("id"));
        tx.commit().await?;
        Ok(running)
    }

    /// Writes one part of an item listing (spaces, or a listing page of
    /// pages) to the listing's staging rows, marked with the listing's
    /// start; `finish_source_items` moves a complete listing into the tree.
    pub async fn write_source_items(
        &self,
        connection_id: &str,
        listing: &str,
        items: &[crate::NewSourceItem],
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        for item in items {
            query(
                "INSERT INTO source_item_staging (connection_id, listing, external_id, item_type, name, \
                 parent_external_id, root_external_id, external_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (connection_id, external_id) DO UPDATE SET listing = excluded.listing, \
                 item_type = excluded.item_type, name = excluded.name, \
                 parent_external_id = excluded.parent_external_id, \
                 root_external_id = excluded.root_external_id, external_url = excluded.external_url",
            )
            .bind(connection_id)
            .bind(listing)
            .bind(&item.external_id)
            .bind(item.item_type)
            .bind(&item.name)
            .bind(&item.parent_external_id)
            .bind(&item.root_external_id)
            .bind(&item.external_url)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a complete item listing, in one transaction: a page whose
    /// parent is not a listed page hangs from its space; the listing's
    /// items replace the tree, each expandable when something hangs from
    /// it; what the listing did not see is removed, and so are the staging
    /// rows (an abandoned listing's with them); the connection says when
    /// its items were listed.
    pub async fn finish_source_items(&self, connection_id: &str, listing: &str) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        query(
            "UPDATE source_item_staging SET parent_external_id = root_external_id \
             WHERE connection_id = ? AND listing = ? AND item_type = 'PAGE' \
             AND parent_external_id <> root_external_id \
             AND NOT EXISTS (SELECT 1 FROM source_item_staging p \
             WHERE p.connection_id = source_item_staging.connection_id \
             AND p.external_id = source_item_staging.parent_external_id \
             AND p.listing = source_item_staging.listing AND p.item_type = 'PAGE')",
        )
        .bind(connection_id)
        .bind(listing)
        .execute(&mut *tx)
        .await?;
        query(
            "INSERT INTO source_items (connection_id, external_id, item_type, name, parent_external_id, \
             root_external_id, external_url, is_expandable, synced_at, created_at) \
             SELECT s.connection_id, s.external_id, s.item_type, s.name, s.parent_external_id, \
             s.root_external_id, s.external_url, EXISTS (SELECT 1 FROM source_item_staging c \
             WHERE c.connection_id = s.connection_id AND c.parent_external_id = s.external_id \
             AND c.listing = s.listing), ?::timestamptz, ?::timestamptz \
             FROM source_item_staging s WHERE s.connection_id = ? AND s.listing = ? \
             ON CONFLICT (connection_id, external_id) DO UPDATE SET item_type = excluded.item_type, \
             name = excluded.name, parent_external_id = excluded.parent_external_id, \
             root_external_id = excluded.root_external_id, external_url = excluded.external_url, \
             is_expandable = excluded.is_expandable, synced_at = excluded.synced_at",
        )
        .bind(listing)
        .bind(listing)
        .bind(connection_id)
        .bind(listing)
        .execute(&mut *tx)
        .await?;
        query("DELETE FROM source_items WHERE connection_id = ? AND synced_at <> ?::timestamptz")
            .bind(connection_id)
            .bind(listing)
            .execute(&mut *tx)
            .await?;
        query("DELETE FROM source_item_staging WHERE connection_id = ?")
            .bind(connection_id)
            .execute(&mut *tx)
            .await?;
        query(
            "UPDATE connections SET source_items_synced_at = ?::timestamptz, updated_at = ?::timestamptz WHERE id = ?",
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
            query(
                "INSERT INTO end_users (id, organisation_id, customer_id, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (organisation_id, customer_id) DO NOTHING",
            )
            .bind(crate::new_id("usr"))
            .bind(organisation_id)
            .bind(customer)
            .bind(at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            query(
                "UPDATE end_users SET auto_sync_sources = COALESCE(?::jsonb, auto_sync_sources), \
                 auto_sync_interval = COALESCE(?, auto_sync_interval), updated_at = ?::timestamptz \
                 WHERE organisation_id = ? AND customer_id = ?",
            )
            .bind(sources.map(|s| s.to_string()))
            .bind(interval_hours)
            .bind(at)
            .bind(organisation_id)
            .bind(customer)
            .execute(&mut *tx)
            .await?;
            let rows = query(
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
                    query("UPDATE connections SET next_sync_at = ?::timestamptz WHERE id = ?")
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
    tx: &mut Tx<'_>,
    connection_id: &str,
    chunking: Option<(i64, i64)>,
) -> Result<()> {
    if let Some((size, overlap)) = chunking {
        query(
            "UPDATE connections SET chunk_size = ?, chunk_overlap = ?, updated_at = ?::timestamptz WHERE id = ?",
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
