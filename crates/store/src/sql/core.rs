use super::*;
use sqlx::{QueryBuilder, Row};
use std::collections::HashMap;

impl Store {
    pub async fn ensure_organisation(&self, name: &str) -> Result<String> {
        if let Some(row) = query("SELECT id FROM organisations WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(row.col("id"));
        }
        let id = new_id("org");
        query("INSERT INTO organisations (id, name, created_at) VALUES (?, ?, ?)")
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
        query(
            "INSERT INTO connections (id, organisation_id, site_url, auth_kind, account, credentials, \
             allow_personal_spaces, scope, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?::jsonb, 'CONNECTED', ?, ?)",
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

    pub(crate) fn connection_from(row: &DbRow) -> Connection {
        Connection {
            id: row.col("id"),
            organisation_id: row.col("organisation_id"),
            site_url: row.col("site_url"),
            auth_kind: row.col("auth_kind"),
            account: row.col("account"),
            allow_personal_spaces: row.col("allow_personal_spaces"),
            // Null when unreadable: the server's `Scope::of` refuses it
            // (an unreadable scope syncs nothing, never everything).
            scope: serde_json::from_str(row.col::<&str>("scope"))
                .unwrap_or(serde_json::Value::Null),
            status: ConnectionStatus::parse(row.col("status")),
            error: row.col("error"),
            created_at: row.col("created_at"),
            last_synced_at: row.col("last_synced_at"),
            end_user_id: row.col("end_user_id"),
            enforce_permissions: row.col("enforce_permissions"),
            chunk_size: row.col("chunk_size"),
            chunk_overlap: row.col("chunk_overlap"),
            data_source_id: row.col::<Option<i64>>("data_source_id").unwrap_or(0),
            account_label: row.col("account_label"),
            context_path: row.col("context_path"),
            site_link: row.col("site_link"),
            content_kinds: row.col("content_kinds"),
            revoked: row.col("revoked"),
            auto_sync: row.col("auto_sync"),
            next_sync_at: row.col("next_sync_at"),
            polled_at: row.col("polled_at"),
            data_source_tags: serde_json::from_str(row.col::<&str>("data_source_tags"))
                .unwrap_or_default(),
            last_sync_action: row.col("last_sync_action"),
            source_items_synced_at: row.col("source_items_synced_at"),
            updated_at: row
                .col::<Option<String>>("updated_at")
                .unwrap_or_else(|| row.col("created_at")),
        }
    }

    pub async fn connection(&self, id: &str) -> Result<Connection> {
        let row = query("SELECT * FROM connections WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("connection {id}")))?;
        Ok(Self::connection_from(&row))
    }

    pub async fn connections(&self) -> Result<Vec<Connection>> {
        let rows = query("SELECT * FROM connections ORDER BY created_at")
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
        let row = query(
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
        let row = query("SELECT credentials FROM connections WHERE id = ?")
            .bind(connection_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("connection {connection_id}")))?;
        self.cipher
            .open(row.col::<&[u8]>("credentials"))
            .map_err(Error::Secret)
    }

    pub async fn set_credentials(&self, connection_id: &str, plaintext: &[u8]) -> Result<()> {
        let sealed = self.cipher.seal(plaintext).map_err(Error::Secret)?;
        query("UPDATE connections SET credentials = ? WHERE id = ?")
            .bind(sealed)
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_scope(&self, connection_id: &str, scope: &serde_json::Value) -> Result<()> {
        query("UPDATE connections SET scope = ?::jsonb WHERE id = ?")
            .bind(scope.to_string())
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces what a connection syncs, on purpose (the command line's
    /// `--replace-scope`): its scope, personal spaces and content kinds.
    pub async fn replace_scope(
        &self,
        connection_id: &str,
        scope: &serde_json::Value,
        allow_personal_spaces: bool,
        content_kinds: &str,
    ) -> Result<()> {
        query(
            "UPDATE connections SET scope = ?::jsonb, allow_personal_spaces = ?, content_kinds = ?, \
             updated_at = ?::timestamptz WHERE id = ?",
        )
        .bind(scope.to_string())
        .bind(allow_personal_spaces)
        .bind(content_kinds)
        .bind(now())
        .bind(connection_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The kinds of content a connection syncs (see `Connection::content_kinds`).
    pub async fn set_content_kinds(&self, connection_id: &str, kinds: &str) -> Result<()> {
        query("UPDATE connections SET content_kinds = ? WHERE id = ?")
            .bind(kinds)
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Names known for these users or groups (`kind`), by id; those not
    /// known are absent.
    pub async fn principal_names(
        &self,
        connection_id: &str,
        kind: &str,
        ids: &[String],
    ) -> Result<HashMap<String, String>> {
        let mut names = HashMap::new();
        for batch in ids.chunks(500) {
            let placeholders = vec!["?"; batch.len()].join(", ");
            let sql = format!(
                "SELECT principal_id, name FROM principal_names \
                 WHERE connection_id = ? AND kind = ? AND principal_id IN ({placeholders})"
            );
            let sql = dynamic(&sql);
            let mut q = sqlx::query(&sql).bind(connection_id).bind(kind);
            for id in batch {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.pool).await? {
                names.insert(row.col("principal_id"), row.col("name"));
            }
        }
        Ok(names)
    }

    /// Remembers the names of users or groups (a newer name replaces an
    /// older one).
    pub async fn set_principal_names(
        &self,
        connection_id: &str,
        kind: &str,
        names: &[(String, String)],
    ) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        for (id, name) in names {
            query(
                "INSERT INTO principal_names (connection_id, kind, principal_id, name) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (connection_id, kind, principal_id) DO UPDATE SET name = excluded.name",
            )
            .bind(connection_id)
            .bind(kind)
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ids of the groups with this name, in any connection (an operator
    /// searching as a group names it as people do).
    pub async fn group_ids_named(&self, name: &str) -> Result<Vec<String>> {
        let rows = query(
            "SELECT DISTINCT principal_id FROM principal_names WHERE kind = 'group' AND name = ? \
             ORDER BY principal_id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.col("principal_id")).collect())
    }

    pub async fn set_connection_status(
        &self,
        connection_id: &str,
        status: ConnectionStatus,
        error: Option<&str>,
        synced: bool,
    ) -> Result<()> {
        let synced_at = synced.then(now);
        query(
            "UPDATE connections SET status = ?, error = ?, \
             last_synced_at = COALESCE(?::timestamptz, last_synced_at) WHERE id = ?",
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
            query(
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
        let rows = query("SELECT * FROM spaces WHERE connection_id = ? ORDER BY space_key")
            .bind(connection_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| SpaceRow {
                space_id: row.col("space_id"),
                key: row.col("space_key"),
                name: row.col("name"),
                space_type: row.col("space_type"),
                status: row.col("status"),
                homepage_id: row.col("homepage_id"),
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
            query("SELECT space_id FROM spaces WHERE connection_id = ? AND seen_run <> ?")
                .bind(connection_id)
                .bind(run)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.col("space_id"))
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
        let rows = query(
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
            *removed.entry(row.col::<String>("kind")).or_default() += 1;
        }
        query("DELETE FROM spaces WHERE connection_id = ? AND space_id = ?")
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
            let sql = dynamic(&sql);
            let mut query = sqlx::query(&sql).bind(connection_id).bind(kind);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                out.insert(
                    row.col("external_id"),
                    FileState {
                        version: row.col("version"),
                        title: row.col("title"),
                        parent_id: row.col("parent_id"),
                        space_id: row.col("space_id"),
                        container_id: row.col("container_id"),
                        status: row.col("status"),
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
        let mut contents: Vec<(i64, &str, Option<&str>)> = Vec::with_capacity(files.len());
        let mut chunked: Vec<(i64, &[NewChunk])> = Vec::with_capacity(files.len());
        let ids = upsert_files(&mut tx, connection_id, run, at, files).await?;
        for (file, id) in files.iter().zip(ids) {
            // Deleted by the caller: stays deleted until chosen again.
            let Some(file_id) = id else {
                continue;
            };
            if let Some(body) = &file.body {
                contents.push((file_id, body.as_str(), file.markdown.as_deref()));
            }
            if let Some(chunks) = &file.chunks {
                chunked.push((file_id, chunks.as_slice()));
            }
        }
        // Bodies, chunks and what was seen unchanged go in a few multi-row
        // statements: one per row cost a round trip each, most of a
        // sync's time in the store.
        super::search::write_contents(&mut tx, &contents).await?;
        super::search::replace_chunks(&mut tx, &chunked).await?;
        let mut by_kind: HashMap<&str, Vec<&str>> = HashMap::new();
        for (kind, id) in seen {
            by_kind.entry(*kind).or_default().push(id.as_str());
        }
        for (kind, ids) in by_kind {
            for group in ids.chunks(500) {
                let mut b = QueryBuilder::<Db>::new("UPDATE files SET seen_run = ");
                b.push_bind(run)
                    .push(" WHERE connection_id = ")
                    .push_bind(connection_id)
                    .push(" AND kind = ")
                    .push_bind(kind)
                    .push(" AND external_id IN ");
                b.push_tuples(group, |mut t, id| {
                    t.push_bind(*id);
                });
                b.build().execute(&mut *tx).await?;
            }
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
                query(
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
                query("DELETE FROM files WHERE connection_id = ? AND kind = ? AND seen_run <> ?")
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
        let row = query(
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
        let rows = query(
            "SELECT kind, external_id, space_id, parent_id, container_id, title, version, content_hash, labels, \
             status, error FROM files WHERE connection_id = ? ORDER BY kind, external_id",
        )
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| FileRow {
                kind: row.col("kind"),
                external_id: row.col("external_id"),
                space_id: row.col("space_id"),
                parent_id: row.col("parent_id"),
                container_id: row.col("container_id"),
                title: row.col("title"),
                version: row.col("version"),
                content_hash: row.col("content_hash"),
                labels: serde_json::from_str(row.col::<&str>("labels")).unwrap_or_default(),
                status: row.col("status"),
                error: row.col("error"),
            })
            .collect())
    }

    pub async fn file_body(
        &self,
        connection_id: &str,
        kind: &str,
        external_id: &str,
    ) -> Result<Option<String>> {
        let row = query(
            "SELECT c.body FROM files f JOIN file_contents c ON c.file_id = f.id \
             WHERE f.connection_id = ? AND f.kind = ? AND f.external_id = ?",
        )
        .bind(connection_id)
        .bind(kind)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.col("body")))
    }

    /// Files of a connection by kind and status.
    pub async fn counts(&self, connection_id: &str) -> Result<Vec<(String, String, i64)>> {
        let rows = query(
            "SELECT kind, status, COUNT(*) AS n FROM files WHERE connection_id = ? GROUP BY kind, status ORDER BY kind, status",
        )
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.col("kind"), r.col("status"), r.col("n")))
            .collect())
    }

    /// The database's own consistency check: `ok`, or what is wrong.
    pub async fn integrity_check(&self) -> Result<String> {
        // PostgreSQL checks its own pages as it reads them; there is no
        // whole-database check to ask for.
        let row = query(if PG {
            "SELECT 'ok'"
        } else {
            "PRAGMA integrity_check"
        })
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<String, _>(0))
    }

    /// Brings the query planner's statistics up to date after a bulk
    /// change (a first sync, a large delete). PostgreSQL plans by them,
    /// and its autovacuum may be off or a minute behind; SQLite's
    /// `PRAGMA optimize` analyses what its own counters say has changed.
    pub async fn refresh_statistics(&self) -> Result<()> {
        query(if PG {
            "ANALYZE files, chunks, file_contents, index_log, source_items"
        } else {
            "PRAGMA optimize"
        })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // Checkpoints.

    pub async fn checkpoint(&self, connection_id: &str, name: &str) -> Result<Option<String>> {
        let row = query("SELECT value FROM checkpoints WHERE connection_id = ? AND name = ?")
            .bind(connection_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.col("value")))
    }

    pub async fn set_checkpoint(&self, connection_id: &str, name: &str, value: &str) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        set_checkpoint(&mut tx, connection_id, name, value).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn clear_checkpoints(&self, connection_id: &str) -> Result<()> {
        query("DELETE FROM checkpoints WHERE connection_id = ?")
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // Jobs.

    pub async fn start_job(&self, connection_id: &str, kind: &str) -> Result<i64> {
        let row = query(
            "INSERT INTO jobs (connection_id, kind, status, started_at) VALUES (?, ?, 'SYNCING', ?) RETURNING id",
        )
        .bind(connection_id)
        .bind(kind)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.col("id"))
    }

    pub async fn finish_job(
        &self,
        job_id: i64,
        status: &str,
        stats: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<()> {
        query(
            "UPDATE jobs SET status = ?, finished_at = ?::timestamptz, stats = ?::jsonb, error = ? WHERE id = ?",
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

    /// The id of a connection's latest run (its files were seen in it).
    pub async fn last_run(&self, connection_id: &str) -> Result<Option<i64>> {
        let row = query("SELECT MAX(id) AS id FROM jobs WHERE connection_id = ?")
            .bind(connection_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.col("id"))
    }

    pub async fn jobs(&self, connection_id: &str, limit: i64) -> Result<Vec<Job>> {
        let rows = query("SELECT * FROM jobs WHERE connection_id = ? ORDER BY id DESC LIMIT ?")
            .bind(connection_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Job {
                id: r.col("id"),
                kind: r.col("kind"),
                status: r.col("status"),
                started_at: r.col("started_at"),
                finished_at: r.col("finished_at"),
                stats: serde_json::from_str(r.col::<&str>("stats")).unwrap_or_default(),
                error: r.col("error"),
            })
            .collect())
    }
}

async fn set_checkpoint(
    tx: &mut Tx<'_>,
    connection_id: &str,
    name: &str,
    value: &str,
) -> Result<()> {
    query(
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

/// Files a multi-row statement upserts at most (20 binds each).
const FILES_PER_STATEMENT: usize = 250;

/// Inserts or updates files, a few statements a batch rather than one a
/// file (each statement is a round trip to the database's thread or
/// server), and returns each file's id in the order given: `None` for a
/// file the caller deleted (in `deleted_files`, or of a removed space),
/// which stays deleted until chosen again.
///
/// What an update keeps of the stored row depends on two things the file
/// says or not (its read restriction, its labels), so files go in up to
/// four statements, one for each case. A batch naming a file twice is
/// written a file a statement, in order, as each would be alone.
async fn upsert_files(
    tx: &mut Tx<'_>,
    connection_id: &str,
    run: i64,
    at: Ts,
    files: &[FileUpsert],
) -> Result<Vec<Option<i64>>> {
    let mut keys = std::collections::HashSet::with_capacity(files.len());
    let repeated = !files
        .iter()
        .all(|f| keys.insert((f.kind, f.external_id.as_str())));
    let groups: Vec<Vec<&FileUpsert>> = if repeated {
        files.iter().map(|f| vec![f]).collect()
    } else {
        [(false, false), (false, true), (true, false), (true, true)]
            .into_iter()
            .map(|(restriction, labels)| {
                files
                    .iter()
                    .filter(|f| {
                        f.read_restriction.is_some() == restriction && f.labels.is_some() == labels
                    })
                    .collect()
            })
            .collect()
    };
    // A file named twice is the same row: its id is the last write's.
    let mut ids: HashMap<(String, String), i64> = HashMap::with_capacity(files.len());
    for group in &groups {
        for part in group.chunks(FILES_PER_STATEMENT) {
            upsert_group(tx, connection_id, run, at, part, &mut ids).await?;
        }
    }
    Ok(files
        .iter()
        .map(|f| {
            ids.get(&(f.kind.to_string(), f.external_id.clone()))
                .copied()
        })
        .collect())
}

/// One statement upserting files that agree on whether their read
/// restriction and their labels are known (`upsert_files`); the ids
/// written go into `ids` by kind and external id.
async fn upsert_group(
    tx: &mut Tx<'_>,
    connection_id: &str,
    run: i64,
    at: Ts,
    files: &[&FileUpsert],
    ids: &mut HashMap<(String, String), i64>,
) -> Result<()> {
    let Some(first) = files.first() else {
        return Ok(());
    };
    let restriction_known = first.read_restriction.is_some();
    let labels_known = first.labels.is_some();
    let jsonb = if PG { "::jsonb" } else { "" };
    let timestamptz = if PG { "::timestamptz" } else { "" };
    let mut b = QueryBuilder::<Db>::new(
        "INSERT INTO files (connection_id, kind, external_id, space_id, parent_id, container_id, title, url, \
         version, content_hash, media_type, size_bytes, labels, status, error, seen_run, created_at, updated_at, \
         read_restriction, characters) SELECT * FROM (",
    );
    b.push_values(files, |mut v, file| {
        let labels = file
            .labels
            .as_ref()
            .map(|l| serde_json::to_string(l).unwrap_or_else(|_| "[]".into()))
            .unwrap_or_else(|| "[]".into());
        // A new page or blog post without a known restriction is Unknown
        // (nobody passes it); others are open on their own.
        let restriction = match (&file.read_restriction, file.kind) {
            (Some(r), _) => r.to_column(),
            (None, kind::PAGE | kind::BLOG_POST) => ReadRestriction::Unknown.to_column(),
            (None, _) => None,
        };
        v.push_bind(connection_id)
            .push_bind(file.kind)
            .push_bind(file.external_id.as_str())
            .push_bind(file.space_id.as_deref())
            .push_bind(file.parent_id.as_deref())
            .push_bind(file.container_id.as_deref())
            .push_bind(file.title.as_str())
            .push_bind(file.url.as_deref())
            .push_bind(file.version)
            .push_bind(file.content_hash.as_deref())
            .push_bind(file.media_type.as_deref())
            .push_bind(file.size_bytes)
            .push_bind(labels)
            .push_unseparated(jsonb)
            .push_bind(file.status)
            .push_bind(file.error.as_deref())
            .push_bind(run)
            // Confluence's creation time, else when confsync first stored
            // it: set once, never moved by a resync.
            .push("COALESCE(")
            .push_bind_unseparated(file.created_at.as_deref())
            .push_unseparated(format!("{timestamptz}, "))
            .push_bind_unseparated(at)
            .push_unseparated(format!("{timestamptz})"))
            .push_bind(at)
            .push_unseparated(timestamptz)
            .push_bind(restriction)
            .push_unseparated(jsonb)
            // Characters as the API reports them, counted once here
            // rather than by reading every Markdown on each listing.
            .push_bind(file.markdown.as_ref().map(|m| m.chars().count() as i64));
    });
    // The VALUES columns are column1.. in the order above.
    b.push(
        ") AS v WHERE NOT EXISTS (SELECT 1 FROM deleted_files d WHERE d.connection_id = v.column1 \
         AND d.kind = v.column2 AND d.external_id = v.column3) \
         AND NOT EXISTS (SELECT 1 FROM removed_spaces r WHERE r.connection_id = v.column1 \
         AND r.space_id = v.column4) \
         ON CONFLICT (connection_id, kind, external_id) DO UPDATE SET ",
    );
    if restriction_known {
        b.push("read_restriction = excluded.read_restriction, ");
    }
    if labels_known {
        b.push("labels = excluded.labels, ");
    }
    b.push(
        "space_id = excluded.space_id, parent_id = excluded.parent_id, container_id = excluded.container_id, \
         title = excluded.title, url = COALESCE(excluded.url, files.url), version = excluded.version, \
         content_hash = COALESCE(excluded.content_hash, files.content_hash), \
         media_type = COALESCE(excluded.media_type, files.media_type), \
         size_bytes = COALESCE(excluded.size_bytes, files.size_bytes), \
         status = excluded.status, error = excluded.error, seen_run = excluded.seen_run, \
         updated_at = excluded.updated_at, characters = COALESCE(excluded.characters, files.characters) \
         RETURNING id, kind, external_id",
    );
    for row in b.build().fetch_all(&mut **tx).await? {
        ids.insert((row.col("kind"), row.col("external_id")), row.col("id"));
    }
    Ok(())
}
