use super::*;
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeMap;

fn end_user_from(row: &DbRow) -> EndUser {
    end_user_named(row, "")
}

/// An end user joined to another row (`user_columns!`), `None` where the
/// join found none.
fn joined_end_user(row: &impl Named) -> Option<EndUser> {
    row.text_or_null("user_id")?;
    Some(end_user_named(row, "user_"))
}

/// The end user's columns selected with the prefix `user_` (the names of
/// `end_user_from`'s), for a statement's text (`concat!`).
macro_rules! user_columns {
    () => {
        "u.id AS user_id, u.number AS user_number, \
         u.organisation_id AS user_organisation_id, u.customer_id AS user_customer_id, \
         u.created_at AS user_created_at, u.updated_at AS user_updated_at, \
         u.auto_sync_sources AS user_auto_sync_sources, \
         u.auto_sync_interval AS user_auto_sync_interval"
    };
}

fn end_user_named(row: &impl Named, prefix: &str) -> EndUser {
    // Unprefixed names are used as they are: `end_user_from` allocates
    // nothing for its names.
    let name = |column: &'static str| -> std::borrow::Cow<'static, str> {
        if prefix.is_empty() {
            column.into()
        } else {
            format!("{prefix}{column}").into()
        }
    };
    EndUser {
        id: row.text(&name("id")),
        number: row.int_or_null(&name("number")).unwrap_or(0),
        organisation_id: row.text(&name("organisation_id")),
        customer_id: row.text(&name("customer_id")),
        created_at: row.text(&name("created_at")),
        updated_at: row
            .text_or_null(&name("updated_at"))
            .unwrap_or_else(|| row.text(&name("created_at"))),
        auto_sync_sources: row
            .text_or_null(&name("auto_sync_sources"))
            .and_then(|s| serde_json::from_str(&s).ok()),
        auto_sync_interval: row.int_or_null(&name("auto_sync_interval")),
    }
}

fn organisation_from(row: &impl Named) -> Organisation {
    Organisation {
        id: row.text("id"),
        number: row.int_or_null("number").unwrap_or(0),
        name: row.text("name"),
        created_at: row.text("created_at"),
        remove_branding: row.bool_or_null("remove_branding").unwrap_or(false),
    }
}

fn webhook_from(row: &DbRow) -> WebhookRow {
    WebhookRow {
        id: row.col("id"),
        organisation_id: row.col("organisation_id"),
        url: row.col("url"),
        status: row.col("status"),
        status_reason: row.col("status_reason"),
        created_at: row.col("created_at"),
        updated_at: row.col("updated_at"),
    }
}

fn white_label_from(row: &DbRow) -> WhiteLabel {
    WhiteLabel {
        id: row.col("id"),
        organisation_id: row.col("organisation_id"),
        data_source_type: row.col("data_source_type"),
        client_id: row.col("client_id"),
        redirect_uri: row.col("redirect_uri"),
        has_client_secret: row.col::<Option<Vec<u8>>>("client_secret").is_some(),
        created_at: row.col("created_at"),
        updated_at: row.col("updated_at"),
    }
}

fn item_from(row: &DbRow) -> SourceItem {
    SourceItem {
        id: row.col("id"),
        external_id: row.col("external_id"),
        item_type: row.col("item_type"),
        name: row.col("name"),
        parent_external_id: row.col("parent_external_id"),
        root_external_id: row.col("root_external_id"),
        external_url: row.col("external_url"),
        is_expandable: row.col("is_expandable"),
        synced_at: row.col("synced_at"),
        created_at: row.col("created_at"),
    }
}

/// A LIKE pattern (with `ESCAPE '\\'`) matching text that contains `text`.
pub(super) fn contains_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// `(a, b, c)` of binds, for `IN`.
fn push_in<'a, T>(builder: &mut QueryBuilder<'a, Db>, values: &'a [T])
where
    T: 'a + sqlx::Encode<'a, Db> + sqlx::Type<Db> + Sync,
    &'a T: sqlx::Encode<'a, Db> + sqlx::Type<Db>,
{
    // An empty list matches nothing (`IN ()` is SQLite's alone).
    if values.is_empty() {
        builder.push("(NULL)");
        return;
    }
    builder.push("(");
    let mut separated = builder.separated(", ");
    for value in values {
        separated.push_bind(value);
    }
    separated.push_unseparated(")");
}

impl Store {
    /// Counts the rows `filtered` selects, then reads one page of them
    /// (`columns`, in `order`): the shape of every list the API answers.
    async fn page_of<'a, T>(
        &self,
        filtered: impl Fn(&str) -> QueryBuilder<'a, Db>,
        columns: &str,
        order: &str,
        limit: i64,
        offset: i64,
        map: impl Fn(&DbRow) -> T,
    ) -> Result<(Vec<T>, i64)> {
        let count: i64 = filtered("SELECT COUNT(*)")
            .build()
            .fetch_one(&self.pool)
            .await?
            .get(0);
        let mut b = filtered(&format!("SELECT {columns}"));
        b.push(" ORDER BY ");
        b.push(order);
        b.push(" LIMIT ");
        b.push_bind(limit);
        b.push(" OFFSET ");
        b.push_bind(offset);
        let rows = b.build().fetch_all(&self.pool).await?;
        Ok((rows.iter().map(map).collect(), count))
    }

    // Organisations and their keys.

    /// A new organisation (names need not be unique).
    pub async fn create_organisation(&self, name: &str) -> Result<Organisation> {
        let _writing = self.writer.lock().await;
        let id = new_id("org");
        query("INSERT INTO organisations (id, name, created_at) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(name)
            .bind(now())
            .execute(&self.pool)
            .await?;
        drop(_writing);
        self.organisation(&id).await
    }

    pub async fn set_remove_branding(&self, organisation_id: &str, remove: bool) -> Result<()> {
        let _writing = self.writer.lock().await;
        query("UPDATE organisations SET remove_branding = ? WHERE id = ?")
            .bind(remove)
            .bind(organisation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What a customer has synced: files and characters (of their
    /// Markdown or text) by file kind.
    pub async fn customer_totals(
        &self,
        organisation_id: &str,
        end_user_id: &str,
    ) -> Result<BTreeMap<String, (i64, i64)>> {
        let rows = query(
            "SELECT f.kind, COUNT(*) AS files, \
             CAST(COALESCE(SUM(f.characters), 0) AS BIGINT) AS characters \
             FROM files f JOIN connections c ON c.id = f.connection_id \
             WHERE c.organisation_id = ? AND c.end_user_id = ? GROUP BY f.kind",
        )
        .bind(organisation_id)
        .bind(end_user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.col("kind"), (r.col("files"), r.col("characters"))))
            .collect())
    }

    pub async fn organisation(&self, id: &str) -> Result<Organisation> {
        let row = query("SELECT * FROM organisations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("organisation {id}")))?;
        Ok(organisation_from(&row))
    }

    /// Every organisation, in the order they were made.
    pub async fn organisations(&self) -> Result<Vec<Organisation>> {
        let rows = query("SELECT * FROM organisations ORDER BY number")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(organisation_from).collect())
    }

    /// Records an API key by its hash.
    pub async fn add_api_key(&self, organisation_id: &str, key_hash: &str) -> Result<()> {
        query("INSERT INTO api_keys (organisation_id, key_hash, created_at) VALUES (?, ?, ?)")
            .bind(organisation_id)
            .bind(key_hash)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The organisation of an API key, with its end user for `customer_id`
    /// if it has one: what a request authenticates, in one statement.
    pub async fn caller_by_key(
        &self,
        key_hash: &str,
        customer_id: Option<&str>,
    ) -> Result<Option<(Organisation, Option<EndUser>)>> {
        const SQL: &str = concat!(
            "SELECT o.*, ",
            user_columns!(),
            " FROM api_keys k JOIN organisations o ON o.id = k.organisation_id \
             LEFT JOIN end_users u ON u.organisation_id = o.id AND u.customer_id = ? \
             WHERE k.key_hash = ? AND k.revoked_at IS NULL"
        );
        // Every request with a key asks this: on SQLite, one indexed
        // lookup read on the request's thread.
        if let Some(readers) = &self.readers {
            return readers.read(|c| {
                let mut statement = c.prepare_cached(SQL)?;
                let mut rows = statement.query(rusqlite::params![customer_id, key_hash])?;
                Ok(rows.next()?.map(|r| {
                    let r = ReadRow(r);
                    (organisation_from(&r), joined_end_user(&r))
                }))
            });
        }
        let row = query(SQL)
            .bind(customer_id)
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .as_ref()
            .map(|r| (organisation_from(r), joined_end_user(r))))
    }

    pub async fn add_customer_token(
        &self,
        token_hash: &str,
        organisation_id: &str,
        customer_id: &str,
        kind: &str,
        expires_at: &str,
        viewer: Option<&str>,
    ) -> Result<()> {
        query(
            "INSERT INTO customer_tokens (token_hash, organisation_id, customer_id, kind, expires_at, viewer) \
             VALUES (?, ?, ?, ?, ?::timestamptz, ?::jsonb)",
        )
        .bind(token_hash)
        .bind(organisation_id)
        .bind(customer_id)
        .bind(kind)
        .bind(expires_at)
        .bind(viewer)
        .execute(&self.pool)
        .await?;
        // Expired tokens go as new ones come.
        query("DELETE FROM customer_tokens WHERE expires_at < ?::timestamptz")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The organisation, customer and viewer of an unexpired token.
    pub async fn customer_token(
        &self,
        token_hash: &str,
        kind: &str,
    ) -> Result<Option<CustomerToken>> {
        const SQL: &str = concat!(
            "SELECT o.*, t.customer_id AS token_customer, t.viewer AS token_viewer, ",
            user_columns!(),
            " FROM customer_tokens t JOIN organisations o ON o.id = t.organisation_id \
             LEFT JOIN end_users u ON u.organisation_id = o.id AND u.customer_id = t.customer_id \
             WHERE t.token_hash = ? AND t.kind = ? AND t.expires_at > ?::timestamptz"
        );
        // Every request with a customer token asks this: on SQLite, one
        // indexed lookup read on the request's thread (as `caller_by_key`).
        if let Some(readers) = &self.readers {
            let at = now().to_string();
            return readers.read(|c| {
                let mut statement = c.prepare_cached(self::statement(SQL))?;
                let mut rows = statement.query(rusqlite::params![token_hash, kind, at])?;
                Ok(rows.next()?.map(|r| {
                    let r = ReadRow(r);
                    CustomerToken {
                        organisation: organisation_from(&r),
                        customer_id: r.text("token_customer"),
                        viewer: r.text_or_null("token_viewer"),
                        end_user: joined_end_user(&r),
                    }
                }))
            });
        }
        let row = query(SQL)
            .bind(token_hash)
            .bind(kind)
            .bind(now())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| CustomerToken {
            organisation: organisation_from(&r),
            customer_id: r.col("token_customer"),
            viewer: r.col("token_viewer"),
            end_user: joined_end_user(&r),
        }))
    }

    // OAuth states.

    pub async fn save_oauth_state(
        &self,
        nonce: &str,
        organisation_id: &str,
        customer_id: &str,
        request: &serde_json::Value,
        expires_at: &str,
    ) -> Result<()> {
        query(
            "INSERT INTO oauth_states (nonce, organisation_id, customer_id, request, expires_at) \
             VALUES (?, ?, ?, ?::jsonb, ?::timestamptz)",
        )
        .bind(nonce)
        .bind(organisation_id)
        .bind(customer_id)
        .bind(request.to_string())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        // States a day past their expiry are of no use, even to tell
        // "expired" from "unknown".
        let day_ago = (chrono::Utc::now() - chrono::Duration::days(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        query("DELETE FROM oauth_states WHERE expires_at < ?::timestamptz")
            .bind(day_ago)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Consumes a state: the first caller gets it, every later one `Used`.
    pub async fn consume_oauth_state(&self, nonce: &str) -> Result<StateOutcome> {
        let at = now();
        let claimed = query(
            "UPDATE oauth_states SET used_at = ?::timestamptz WHERE nonce = ? AND used_at IS NULL AND expires_at > ?::timestamptz \
             RETURNING organisation_id, customer_id, request",
        )
        .bind(at)
        .bind(nonce)
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = claimed {
            return Ok(StateOutcome::Valid {
                organisation_id: row.col("organisation_id"),
                customer_id: row.col("customer_id"),
                request: serde_json::from_str(row.col::<&str>("request")).unwrap_or_default(),
            });
        }
        let row = query("SELECT used_at FROM oauth_states WHERE nonce = ?")
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => StateOutcome::Unknown,
            Some(r) if r.col::<Option<String>>("used_at").is_some() => StateOutcome::Used,
            Some(_) => StateOutcome::Expired,
        })
    }

    // End users.

    pub async fn end_user(
        &self,
        organisation_id: &str,
        customer_id: &str,
    ) -> Result<Option<EndUser>> {
        let row = query("SELECT * FROM end_users WHERE organisation_id = ? AND customer_id = ?")
            .bind(organisation_id)
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(end_user_from))
    }

    pub async fn end_user_by_id(&self, id: &str) -> Result<Option<EndUser>> {
        let row = query("SELECT * FROM end_users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(end_user_from))
    }

    pub async fn list_end_users(
        &self,
        organisation_id: &str,
        query: &UserQuery,
    ) -> Result<(Vec<EndUser>, i64)> {
        fn filtered<'a>(
            select: &str,
            organisation_id: &'a str,
            query: &'a UserQuery,
        ) -> QueryBuilder<'a, Db> {
            let mut b = QueryBuilder::new(select);
            b.push(" FROM end_users WHERE organisation_id = ");
            b.push_bind(organisation_id);
            if !query.customer_ids.is_empty() {
                b.push(" AND customer_id IN ");
                push_in(&mut b, &query.customer_ids);
            }
            if !query.numbers.is_empty() {
                b.push(" AND number IN ");
                push_in(&mut b, &query.numbers);
            }
            b
        }
        self.page_of(
            |select| filtered(select, organisation_id, query),
            "*",
            &format!(
                "{} {}, number ASC",
                if query.by_updated {
                    "updated_at"
                } else {
                    "created_at"
                },
                if query.descending { "DESC" } else { "ASC" }
            ),
            query.limit,
            query.offset,
            end_user_from,
        )
        .await
    }

    // Connections as data sources.

    /// A customer's data source by its number; `None` for anyone else's.
    pub async fn data_source(
        &self,
        organisation_id: &str,
        end_user_id: &str,
        data_source_id: i64,
    ) -> Result<Option<Connection>> {
        let row = query(
            "SELECT * FROM connections WHERE organisation_id = ? AND end_user_id = ? AND data_source_id = ?",
        )
        .bind(organisation_id)
        .bind(end_user_id)
        .bind(data_source_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Self::connection_from))
    }

    /// A customer's data sources.
    #[allow(clippy::too_many_arguments)] // a query's filters, order and page
    pub async fn data_sources(
        &self,
        organisation_id: &str,
        end_user_id: &str,
        ids: &[i64],
        revoked: Option<bool>,
        by_created: bool,
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Connection>, i64)> {
        fn filtered<'a>(
            select: &str,
            organisation_id: &'a str,
            end_user_id: &'a str,
            ids: &'a [i64],
            revoked: Option<bool>,
        ) -> QueryBuilder<'a, Db> {
            let mut b = QueryBuilder::new(select);
            b.push(" FROM connections WHERE organisation_id = ");
            b.push_bind(organisation_id);
            b.push(" AND end_user_id = ");
            b.push_bind(end_user_id);
            if !ids.is_empty() {
                b.push(" AND data_source_id IN ");
                push_in(&mut b, ids);
            }
            if let Some(revoked) = revoked {
                b.push(" AND revoked = ");
                b.push_bind(revoked);
            }
            b
        }
        self.page_of(
            |select| filtered(select, organisation_id, end_user_id, ids, revoked),
            "*",
            &format!(
                "{} {}, data_source_id ASC",
                if by_created {
                    "created_at"
                } else {
                    "COALESCE(updated_at, created_at)"
                },
                if descending { "DESC" } else { "ASC" }
            ),
            limit,
            offset,
            Self::connection_from,
        )
        .await
    }

    pub async fn set_next_sync(&self, connection_id: &str, at: Option<&str>) -> Result<()> {
        query("UPDATE connections SET next_sync_at = ?::timestamptz WHERE id = ?")
            .bind(at)
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Connections whose scheduled sync is due, with their end user.
    pub async fn due_connections(&self, at: &str) -> Result<Vec<(Connection, Option<EndUser>)>> {
        let rows = query(
            "SELECT * FROM connections WHERE auto_sync = TRUE AND revoked = FALSE AND next_sync_at IS NOT NULL \
             AND next_sync_at <= ?::timestamptz ORDER BY next_sync_at LIMIT 500",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let connection = Self::connection_from(row);
            let user = match &connection.end_user_id {
                Some(id) => self.end_user_by_id(id).await?,
                None => None,
            };
            out.push((connection, user));
        }
        Ok(out)
    }

    // The sync queue.

    /// Queues a sync of a connection; a job already queued for it absorbs
    /// this one. Returns the job's id and whether it is new.
    pub async fn enqueue_sync(&self, connection_id: &str, reason: &str) -> Result<(i64, bool)> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let queued = enqueue_in(&mut tx, connection_id, reason).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Claims the oldest queued job of a connection that has none running.
    pub async fn claim_sync_job(
        &self,
        node_id: &str,
        lease: std::time::Duration,
    ) -> Result<Option<SyncJob>> {
        let _writing = self.writer.lock().await;
        // The oldest job that is queued for a connection with nothing
        // running, or running under a lease that ran out (its node died:
        // the job resumes from its checkpoints here). SKIP LOCKED lets
        // nodes claim side by side; the unique index on running jobs
        // settles two claims for one connection (the loser claims nothing
        // this time).
        macro_rules! claim {
            ($lock:literal) => {
                concat!(
                    "UPDATE sync_jobs SET status = 'RUNNING', started_at = COALESCE(started_at, ?::timestamptz), \
                     locked_by = ?, locked_until = ?::timestamptz WHERE id = (\
                     SELECT j.id FROM sync_jobs j WHERE (j.status = 'QUEUED' AND NOT EXISTS (\
                     SELECT 1 FROM sync_jobs r WHERE r.connection_id = j.connection_id AND r.status = 'RUNNING')) \
                     OR (j.status = 'RUNNING' AND j.locked_until < ?::timestamptz) \
                     ORDER BY j.id LIMIT 1",
                    $lock,
                    ") RETURNING *"
                )
            };
        }
        let claimed = query(if PG {
            claim!(" FOR UPDATE SKIP LOCKED")
        } else {
            claim!("")
        })
        .bind(now())
        .bind(node_id)
        .bind(Ts::after(lease))
        .bind(now())
        .fetch_optional(&self.pool)
        .await;
        let row = match claimed {
            Ok(row) => row,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => None,
            Err(e) => return Err(e.into()),
        };
        Ok(row.map(|r| SyncJob {
            id: r.col("id"),
            connection_id: r.col("connection_id"),
            kind: crate::JobKind::parse(r.col("kind")),
            reason: r.col("reason"),
            status: crate::JobStatus::parse(r.col("status")),
            snapshot: r.col("snapshot"),
            locked_by: r.col("locked_by"),
        }))
    }

    /// Extends a running job's lease; false when the node no longer holds
    /// it (it ran out and another node took the job over).
    pub async fn renew_sync_job(
        &self,
        job_id: i64,
        node_id: &str,
        lease: std::time::Duration,
    ) -> Result<bool> {
        let result = query(
            "UPDATE sync_jobs SET locked_until = ?::timestamptz \
             WHERE id = ? AND status = 'RUNNING' AND locked_by = ?",
        )
        .bind(Ts::after(lease))
        .bind(job_id)
        .bind(node_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Saves a job's file snapshot (what its events are computed against,
    /// kept across a restart) with the events its start causes: one
    /// transaction.
    pub async fn start_sync_job(
        &self,
        job_id: i64,
        snapshot: &str,
        organisation_id: &str,
        events: &[crate::Event],
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        query("UPDATE sync_jobs SET snapshot = ? WHERE id = ?")
            .bind(snapshot)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        emit(&mut tx, organisation_id, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Finishes a job, writes its webhook events to the outbox and sets
    /// the connection's next scheduled sync, in one transaction: the events
    /// are sent at least once, or the job runs again.
    pub async fn finish_sync_job(
        &self,
        job: &SyncJob,
        status: crate::JobStatus,
        error: Option<&str>,
        organisation_id: &str,
        events: &mut (dyn Iterator<Item = crate::Event> + Send),
        next_sync_at: Option<&str>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        // Only under the lease it was claimed with: a node whose lease ran
        // out finishes nothing (the node that took the job over will).
        let finished = query(
            "UPDATE sync_jobs SET status = ?, error = ?, finished_at = ?::timestamptz, snapshot = NULL, \
             locked_by = NULL, locked_until = NULL WHERE id = ? AND locked_by IS NOT DISTINCT FROM ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(now())
        .bind(job.id)
        .bind(&job.locked_by)
        .execute(&mut *tx)
        .await?;
        if finished.rows_affected() == 0 {
            return Err(Error::LeaseLost(job.id));
        }
        if let Some(at) = next_sync_at {
            query("UPDATE connections SET next_sync_at = ?::timestamptz WHERE id = ?")
                .bind(at)
                .bind(&job.connection_id)
                .execute(&mut *tx)
                .await?;
        }
        emit(&mut tx, organisation_id, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A connection's sync jobs, newest first: (reason, status).
    pub async fn sync_jobs(
        &self,
        connection_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>> {
        let rows = query(
            "SELECT reason, status FROM sync_jobs WHERE connection_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(connection_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.col("reason"), r.col("status")))
            .collect())
    }

    /// Jobs left RUNNING by a process that died are queued again.
    pub async fn requeue_running_jobs(&self, node_id: &str) -> Result<u64> {
        let _writing = self.writer.lock().await;
        Ok(query(
            "UPDATE sync_jobs SET status = 'QUEUED', locked_by = NULL, locked_until = NULL \
                 WHERE status = 'RUNNING' AND (locked_by IS NULL OR locked_by = ?)",
        )
        .bind(node_id)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Whether a connection has a job queued, and one running: a sync of
    /// its files or a listing of its items (Carbon's data source is
    /// SYNCING while it lists its source items, and Carbon Connect offers
    /// to cancel that listing only then).
    pub async fn sync_state(&self, connection_id: &str) -> Result<(bool, bool)> {
        // Polls are the background's: a data source is not "syncing" every
        // few minutes because it is looked at.
        let rows = query(
            "SELECT DISTINCT status FROM sync_jobs WHERE connection_id = ? \
             AND status IN ('QUEUED', 'RUNNING') AND kind <> 'poll'",
        )
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await?;
        let has = |s: &str| rows.iter().any(|r| r.col::<&str>("status") == s);
        Ok((has("QUEUED"), has("RUNNING")))
    }

    /// Each file of a connection: id, version and status. On SQLite read
    /// in place on a read connection, on a blocking thread: a million
    /// files through sqlx held a million rows of its own at once.
    pub async fn file_versions(&self, connection_id: &str) -> Result<Vec<(i64, i64, String)>> {
        const SQL: &str =
            "SELECT id, version, status FROM files WHERE connection_id = ? ORDER BY id";
        if let Some(readers) = &self.readers {
            let connection_id = connection_id.to_string();
            return readers
                .read_apart(move |c| {
                    c.prepare_cached(SQL)?
                        .query_map([connection_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .await;
        }
        let rows = query(SQL).bind(connection_id).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| (r.col("id"), r.col("version"), r.col("status")))
            .collect())
    }

    /// The connection holding a customer's file; `None` for anyone else's.
    pub async fn file_connection(
        &self,
        organisation_id: &str,
        end_user_id: &str,
        file_id: i64,
    ) -> Result<Option<Connection>> {
        let row = query(
            "SELECT c.* FROM files f JOIN connections c ON c.id = f.connection_id \
             WHERE f.id = ? AND c.organisation_id = ? AND c.end_user_id = ?",
        )
        .bind(file_id)
        .bind(organisation_id)
        .bind(end_user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Self::connection_from))
    }

    // Webhooks.

    pub async fn add_webhook(
        &self,
        organisation_id: &str,
        url: &str,
        signing_key: &[u8],
    ) -> Result<WebhookRow> {
        let sealed = self.cipher.seal(signing_key).map_err(Error::Secret)?;
        let at = now();
        let row = query(
            "INSERT INTO webhooks (organisation_id, url, signing_key, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(organisation_id)
        .bind(url)
        .bind(sealed)
        .bind(at)
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        Ok(webhook_from(&row))
    }

    pub async fn webhooks(
        &self,
        organisation_id: &str,
        ids: &[i64],
        by_created: bool,
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<WebhookRow>, i64)> {
        fn filtered<'a>(
            select: &str,
            organisation_id: &'a str,
            ids: &'a [i64],
        ) -> QueryBuilder<'a, Db> {
            let mut b = QueryBuilder::new(select);
            b.push(" FROM webhooks WHERE organisation_id = ");
            b.push_bind(organisation_id);
            if !ids.is_empty() {
                b.push(" AND id IN ");
                push_in(&mut b, ids);
            }
            b
        }
        self.page_of(
            |select| filtered(select, organisation_id, ids),
            "*",
            &format!(
                "{} {}, id ASC",
                if by_created {
                    "created_at"
                } else {
                    "updated_at"
                },
                if descending { "DESC" } else { "ASC" }
            ),
            limit,
            offset,
            webhook_from,
        )
        .await
    }

    pub async fn delete_webhook(&self, organisation_id: &str, id: i64) -> Result<bool> {
        Ok(
            query("DELETE FROM webhooks WHERE organisation_id = ? AND id = ?")
                .bind(organisation_id)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Writes events to the outbox of every active webhook of the organisation.
    pub async fn emit_events(&self, organisation_id: &str, events: &[crate::Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        emit(&mut tx, organisation_id, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deliveries due now, oldest first.
    /// Claims up to `limit` due deliveries for `node_id` for `lease`: no
    /// other node takes them until the lease runs out (a node that dies
    /// mid-delivery leaves them to another: at least once, not exactly).
    pub async fn claim_deliveries(
        &self,
        node_id: &str,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>> {
        let _writing = self.writer.lock().await;
        macro_rules! claim {
            ($lock:literal) => {
                concat!(
                    "UPDATE webhook_outbox SET locked_by = ?, locked_until = ?::timestamptz WHERE id IN (\
                     SELECT id FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL \
                     AND next_attempt_at <= ?::timestamptz AND (locked_until IS NULL OR locked_until < ?::timestamptz) \
                     ORDER BY id LIMIT ?",
                    $lock,
                    ") RETURNING id"
                )
            };
        }
        let claimed = query(if PG {
            claim!(" FOR UPDATE SKIP LOCKED")
        } else {
            claim!("")
        })
        .bind(node_id)
        .bind(Ts::after(lease))
        .bind(now())
        .bind(now())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        drop(_writing);
        let ids: Vec<i64> = claimed.iter().map(|r| r.col("id")).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = QueryBuilder::<Db>::new(
            "SELECT o.id, o.webhook_id, o.body, o.attempts, w.url, w.signing_key FROM webhook_outbox o \
             JOIN webhooks w ON w.id = o.webhook_id WHERE o.id IN ",
        );
        push_in(&mut b, &ids);
        b.push(" ORDER BY o.id");
        let rows = b.build().fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key = self
                .cipher
                .open(r.col::<&[u8]>("signing_key"))
                .map_err(Error::Secret)?;
            out.push(Delivery {
                id: r.col("id"),
                webhook_id: r.col("webhook_id"),
                url: r.col("url"),
                signing_key: key,
                body: r.col("body"),
                attempts: r.col("attempts"),
            });
        }
        Ok(out)
    }

    /// Extends a node's claim on a delivery it is about to send; false
    /// when the claim ran out and another node holds it (or it is done).
    pub async fn renew_delivery(
        &self,
        id: i64,
        node_id: &str,
        lease: std::time::Duration,
    ) -> Result<bool> {
        let result = query(
            "UPDATE webhook_outbox SET locked_until = ?::timestamptz \
             WHERE id = ? AND locked_by = ? AND delivered_at IS NULL AND failed_at IS NULL",
        )
        .bind(Ts::after(lease))
        .bind(id)
        .bind(node_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sync jobs by status, across the whole store (for metrics).
    pub async fn sync_job_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = query("SELECT status, COUNT(*) AS n FROM sync_jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.col("status"), r.col("n"))).collect())
    }

    /// Deliveries still owed (neither delivered nor given up on).
    pub async fn outbox_depth(&self) -> Result<i64> {
        let row = query(
            "SELECT COUNT(*) AS n FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.col("n"))
    }

    /// Gives back the deliveries a node had claimed (it restarted: what it
    /// was sending when it stopped is due again now, not when its leases
    /// run out).
    pub async fn release_deliveries(&self, node_id: &str) -> Result<u64> {
        let _writing = self.writer.lock().await;
        Ok(query(
            "UPDATE webhook_outbox SET locked_by = NULL, locked_until = NULL \
             WHERE locked_by = ? AND delivered_at IS NULL AND failed_at IS NULL",
        )
        .bind(node_id)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    pub async fn delivery_succeeded(&self, id: i64) -> Result<()> {
        query(
            "UPDATE webhook_outbox SET delivered_at = ?::timestamptz, attempts = attempts + 1, \
             locked_by = NULL, locked_until = NULL WHERE id = ?",
        )
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up on.
    pub async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<&str>,
    ) -> Result<()> {
        query(
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?, locked_by = NULL, locked_until = NULL, \
             next_attempt_at = COALESCE(?::timestamptz, next_attempt_at), failed_at = CASE WHEN ?::timestamptz IS NULL THEN ? END \
             WHERE id = ?",
        )
        .bind(error)
        .bind(retry_at)
        .bind(retry_at)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delivered and abandoned deliveries older than `before` are removed.
    pub async fn prune_outbox(&self, before: &str) -> Result<u64> {
        Ok(query(
            "DELETE FROM webhook_outbox WHERE (delivered_at IS NOT NULL AND delivered_at < ?::timestamptz) \
             OR (failed_at IS NOT NULL AND failed_at < ?::timestamptz)",
        )
        .bind(before)
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    // Organisations' own OAuth apps.

    pub async fn create_white_label(
        &self,
        organisation_id: &str,
        data_source_type: &str,
        client_id: &str,
        redirect_uri: &str,
        client_secret: Option<&str>,
    ) -> Result<WhiteLabel> {
        let sealed = client_secret
            .map(|s| self.cipher.seal(s.as_bytes()))
            .transpose()
            .map_err(Error::Secret)?;
        let at = now();
        let row = query(
            "INSERT INTO white_labels (organisation_id, data_source_type, client_id, redirect_uri, client_secret, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (organisation_id, data_source_type) DO NOTHING RETURNING *",
        )
        .bind(organisation_id)
        .bind(data_source_type)
        .bind(client_id)
        .bind(redirect_uri)
        .bind(sealed)
        .bind(at)
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(white_label_from).ok_or_else(|| {
            Error::Invalid(format!(
                "a white label for {data_source_type} exists already"
            ))
        })
    }

    pub async fn white_labels(
        &self,
        organisation_id: &str,
        ids: &[i64],
        types: &[String],
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<WhiteLabel>, i64)> {
        fn filtered<'a>(
            select: &str,
            organisation_id: &'a str,
            ids: &'a [i64],
            types: &'a [String],
        ) -> QueryBuilder<'a, Db> {
            let mut b = QueryBuilder::new(select);
            b.push(" FROM white_labels WHERE organisation_id = ");
            b.push_bind(organisation_id);
            if !ids.is_empty() {
                b.push(" AND id IN ");
                push_in(&mut b, ids);
            }
            if !types.is_empty() {
                b.push(" AND data_source_type IN ");
                push_in(&mut b, types);
            }
            b
        }
        self.page_of(
            |select| filtered(select, organisation_id, ids, types),
            "*",
            &format!(
                "created_at {}, id ASC",
                if descending { "DESC" } else { "ASC" }
            ),
            limit,
            offset,
            white_label_from,
        )
        .await
    }

    /// Replaces an organisation's app for a source type; `None` if it has none.
    pub async fn update_white_label(
        &self,
        organisation_id: &str,
        data_source_type: &str,
        client_id: &str,
        redirect_uri: &str,
        client_secret: Option<&str>,
    ) -> Result<Option<WhiteLabel>> {
        let sealed = client_secret
            .map(|s| self.cipher.seal(s.as_bytes()))
            .transpose()
            .map_err(Error::Secret)?;
        let row = query(
            "UPDATE white_labels SET client_id = ?, redirect_uri = ?, client_secret = COALESCE(?, client_secret), \
             updated_at = ?::timestamptz WHERE organisation_id = ? AND data_source_type = ? RETURNING *",
        )
        .bind(client_id)
        .bind(redirect_uri)
        .bind(sealed)
        .bind(now())
        .bind(organisation_id)
        .bind(data_source_type)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(white_label_from))
    }

    pub async fn delete_white_labels(&self, organisation_id: &str, ids: &[i64]) -> Result<u64> {
        let mut removed = 0;
        for id in ids {
            removed += query("DELETE FROM white_labels WHERE organisation_id = ? AND id = ?")
                .bind(organisation_id)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }

    /// An organisation's own OAuth app for a source type, secret decrypted.
    pub async fn oauth_app(
        &self,
        organisation_id: &str,
        data_source_type: &str,
    ) -> Result<Option<OAuthAppRow>> {
        let row = query(
            "SELECT client_id, redirect_uri, client_secret FROM white_labels \
             WHERE organisation_id = ? AND data_source_type = ?",
        )
        .bind(organisation_id)
        .bind(data_source_type)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let secret = match row.col::<Option<Vec<u8>>>("client_secret") {
            Some(sealed) => Some(
                String::from_utf8(self.cipher.open(&sealed).map_err(Error::Secret)?)
                    .map_err(|e| Error::Secret(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Some(OAuthAppRow {
            client_id: row.col("client_id"),
            redirect_uri: row.col("redirect_uri"),
            client_secret: secret,
        }))
    }

    // The item tree.

    /// Replaces a connection's item tree with a new listing.
    pub async fn source_items(
        &self,
        connection_id: &str,
        query: &ItemQuery,
    ) -> Result<(Vec<SourceItem>, i64)> {
        fn filtered<'a>(
            select: &str,
            connection_id: &'a str,
            query: &'a ItemQuery,
            name: &'a Option<String>,
        ) -> QueryBuilder<'a, Db> {
            let mut b = QueryBuilder::new(select);
            b.push(" FROM source_items WHERE connection_id = ");
            b.push_bind(connection_id);
            // Without a parent, the roots (spaces); a filter by ids or
            // names searches the whole tree.
            match &query.parent_external_id {
                Some(parent) => {
                    b.push(" AND parent_external_id = ");
                    b.push_bind(parent);
                }
                None if query.external_ids.is_empty() && query.ids.is_empty() && name.is_none() => {
                    b.push(" AND parent_external_id IS NULL");
                }
                None => {}
            }
            if let Some(name) = name {
                b.push(" AND LOWER(name) LIKE LOWER(");
                b.push_bind(name);
                b.push(")");
                b.push(" ESCAPE '\\'");
            }
            if !query.item_types.is_empty() {
                b.push(" AND item_type IN ");
                push_in(&mut b, &query.item_types);
            }
            if !query.external_ids.is_empty() {
                b.push(" AND external_id IN ");
                push_in(&mut b, &query.external_ids);
            }
            if !query.ids.is_empty() {
                b.push(" AND id IN ");
                push_in(&mut b, &query.ids);
            }
            b
        }
        let name = query.name.as_deref().map(contains_pattern);
        self.page_of(
            |select| filtered(select, connection_id, query, &name),
            "*",
            &format!(
                "{} {}, id ASC",
                if query.order_by_id { "id" } else { "name" },
                if query.descending { "DESC" } else { "ASC" }
            ),
            query.limit,
            query.offset,
            item_from,
        )
        .await
    }
}

/// Outbox rows for every active webhook of the organisation, in the
/// events' order. The first event is written alone, first (so the
/// transaction never has to upgrade a read), and what it wrote says how
/// many webhooks are active: with none, nothing more is written. The rest
/// go in multi-row statements: a first sync of a million files has a
/// million FILE_READY events, and a statement each held the store's one
/// writer for 15 s with no webhook to send them to (docs/BENCHMARKS.md,
/// "Every target on one machine, and a million files").
pub(crate) async fn emit<E: std::borrow::Borrow<crate::Event>>(
    tx: &mut Tx<'_>,
    organisation_id: &str,
    events: impl IntoIterator<Item = E, IntoIter: Send>,
) -> Result<()> {
    let mut events = events.into_iter();
    let Some(first) = events.next() else {
        return Ok(());
    };
    let first = first.borrow();
    let at = now();
    let active = query(
        "INSERT INTO webhook_outbox (webhook_id, body, next_attempt_at) \
         SELECT id, ?, ?::timestamptz FROM webhooks WHERE organisation_id = ? AND status = 'ACTIVE' \
         ORDER BY id",
    )
    .bind(&first.body)
    .bind(at)
    .bind(organisation_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if active == 0 {
        return Ok(());
    }
    // Each event's position in a VALUES list (its first column; the body
    // is the second, `column2` on both backends), crossed with the
    // webhooks, in order: deliveries are claimed by id.
    loop {
        let group: Vec<E> = events.by_ref().take(500).collect();
        if group.is_empty() {
            break;
        }
        let mut b = QueryBuilder::<Db>::new(
            "INSERT INTO webhook_outbox (webhook_id, body, next_attempt_at) SELECT w.id, e.column2, ",
        );
        b.push_bind(at);
        if PG {
            b.push("::timestamptz");
        }
        b.push(" FROM (");
        b.push_values(group.iter().enumerate(), |mut v, (i, event)| {
            v.push(i.to_string())
                .push_bind(event.borrow().body.as_str());
        });
        b.push(") AS e, webhooks w WHERE w.organisation_id = ")
            .push_bind(organisation_id)
            .push(" AND w.status = 'ACTIVE' ORDER BY e.column1, w.id");
        b.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Queues a sync inside a transaction (see `Store::enqueue_sync`). Writes
/// first, in one statement: a transaction that reads and then writes can
/// fail outright (SQLITE_BUSY_SNAPSHOT) when another connection commits in
/// between; one that starts by writing holds the lock.
pub(crate) async fn enqueue_in(
    tx: &mut Tx<'_>,
    connection_id: &str,
    reason: &str,
) -> Result<(i64, bool)> {
    enqueue_kind_in(tx, connection_id, crate::JobKind::Sync, reason).await
}

/// Queues a job of a kind; a queued job of the same kind absorbs it.
pub(crate) async fn enqueue_kind_in(
    tx: &mut Tx<'_>,
    connection_id: &str,
    kind: crate::JobKind,
    reason: &str,
) -> Result<(i64, bool)> {
    let at = now();
    let inserted = query(
        "INSERT INTO sync_jobs (connection_id, kind, reason, status, created_at) \
         SELECT ?, ?, ?, 'QUEUED', ?::timestamptz WHERE NOT EXISTS \
         (SELECT 1 FROM sync_jobs WHERE connection_id = ? AND kind = ? AND status = 'QUEUED') RETURNING id",
    )
    .bind(connection_id)
    .bind(kind.as_str())
    .bind(reason)
    .bind(at)
    .bind(connection_id)
    .bind(kind.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if kind == crate::JobKind::Sync {
        query(
            "UPDATE connections SET status = 'QUEUED_FOR_SYNCING', updated_at = ?::timestamptz WHERE id = ? AND status <> 'SYNCING'",
        )
        .bind(at)
        .bind(connection_id)
        .execute(&mut **tx)
        .await?;
    }
    match inserted {
        Some(row) => Ok((row.col("id"), true)),
        None => {
            let row = query(
                "SELECT id FROM sync_jobs WHERE connection_id = ? AND kind = ? AND status = 'QUEUED'",
            )
            .bind(connection_id)
            .bind(kind.as_str())
            .fetch_optional(&mut **tx)
            .await?;
            Ok((row.map(|r| r.col("id")).unwrap_or(0), false))
        }
    }
}

/// Upserts item-tree rows marked with the listing they came from.
pub(crate) async fn upsert_source_items(
    tx: &mut Tx<'_>,
    connection_id: &str,
    listing: &str,
    items: &[NewSourceItem],
) -> Result<()> {
    for item in items {
        query(
            "INSERT INTO source_items (connection_id, external_id, item_type, name, parent_external_id, \
             root_external_id, external_url, is_expandable, synced_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?::timestamptz, ?::timestamptz) \
             ON CONFLICT (connection_id, external_id) DO UPDATE SET item_type = excluded.item_type, \
             name = excluded.name, parent_external_id = excluded.parent_external_id, \
             root_external_id = excluded.root_external_id, external_url = excluded.external_url, \
             is_expandable = excluded.is_expandable, synced_at = excluded.synced_at",
        )
        .bind(connection_id)
        .bind(&item.external_id)
        .bind(item.item_type)
        .bind(&item.name)
        .bind(&item.parent_external_id)
        .bind(&item.root_external_id)
        .bind(&item.external_url)
        .bind(item.is_expandable)
        .bind(listing)
        .bind(listing)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
