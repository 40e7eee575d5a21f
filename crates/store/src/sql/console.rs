use super::api::enqueue_in;
use super::*;
use serde_json::Value;

fn admin_from(row: &DbRow) -> Admin {
    Admin {
        id: row.col("id"),
        organisation_id: row.col("organisation_id"),
        email: row.col("email"),
        name: row.col("name"),
        created_at: row.col("created_at"),
    }
}

/// Records an action inside the transaction that does it.
pub(crate) async fn record_in(
    tx: &mut Tx<'_>,
    organisation_id: &str,
    actor: Option<Actor<'_>>,
    action: &str,
    target: &str,
) -> Result<()> {
    if let Some(actor) = actor {
        query(
            "INSERT INTO admin_actions (organisation_id, admin_id, admin_name, action, target, at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(organisation_id)
        .bind(actor.admin_id)
        .bind(actor.admin_name)
        .bind(action)
        .bind(target)
        .bind(now())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// A new admin of an organisation. The email is kept in lower case and
    /// names one admin across the server.
    pub async fn create_admin(
        &self,
        organisation_id: &str,
        email: &str,
        name: &str,
        password_hash: Option<&str>,
    ) -> Result<Admin> {
        let email = email.trim().to_lowercase();
        if email.is_empty() || !email.contains('@') || email.len() > 320 {
            return Err(Error::Invalid(format!("{email:?} is not an email address")));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::Invalid("a name is 1 to 200 characters".into()));
        }
        let id = crate::new_id("adm");
        let _writing = self.writer.lock().await;
        let inserted = query(
            "INSERT INTO admins (id, organisation_id, email, name, password_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
        )
        .bind(&id)
        .bind(organisation_id)
        .bind(&email)
        .bind(name)
        .bind(password_hash)
        .bind(now())
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(Error::Invalid(format!(
                "an admin with email {email} exists"
            )));
        }
        self.admin(&id).await
    }

    pub async fn admin(&self, id: &str) -> Result<Admin> {
        query("SELECT * FROM admins WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| admin_from(&r))
            .ok_or_else(|| Error::NotFound(format!("admin {id}")))
    }

    /// The admin an email names, with the password hash if one is set.
    pub async fn admin_by_email(&self, email: &str) -> Result<Option<(Admin, Option<String>)>> {
        Ok(query("SELECT * FROM admins WHERE email = ?")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| (admin_from(&r), r.col("password_hash"))))
    }

    /// Sets an admin's password, signing out every other session of theirs.
    pub async fn set_admin_password(
        &self,
        admin_id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        query("UPDATE admins SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(admin_id)
            .execute(&mut *tx)
            .await?;
        query("DELETE FROM admin_sessions WHERE admin_id = ? AND token_hash IS DISTINCT FROM ?")
            .bind(admin_id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_admin_link(
        &self,
        admin_id: &str,
        token_hash: &str,
        expires_at: &str,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        query("INSERT INTO admin_links (token_hash, admin_id, expires_at) VALUES (?, ?, ?::timestamptz)")
            .bind(token_hash)
            .bind(admin_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The admin a sign-in link is for, while it is unused and unexpired.
    pub async fn admin_link(&self, token_hash: &str) -> Result<Option<Admin>> {
        Ok(query(
            "SELECT a.* FROM admin_links l JOIN admins a ON a.id = l.admin_id \
             WHERE l.token_hash = ? AND l.used_at IS NULL AND l.expires_at > ?::timestamptz",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?
        .map(|r| admin_from(&r)))
    }

    /// Uses a sign-in link once and opens a session with it: one
    /// transaction. `None` when the link is unknown, used or expired.
    pub async fn use_admin_link(
        &self,
        token_hash: &str,
        session: &NewSession<'_>,
    ) -> Result<Option<Admin>> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let at = now();
        let used = query(
            "UPDATE admin_links SET used_at = ?::timestamptz WHERE token_hash = ? AND used_at IS NULL \
             AND expires_at > ?::timestamptz RETURNING admin_id",
        )
        .bind(at)
        .bind(token_hash)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = used else {
            return Ok(None);
        };
        let admin_id: String = row.col("admin_id");
        insert_session(&mut tx, &admin_id, session).await?;
        tx.commit().await?;
        self.admin(&admin_id).await.map(Some)
    }

    pub async fn create_admin_session(
        &self,
        admin_id: &str,
        session: &NewSession<'_>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        insert_session(&mut tx, admin_id, session).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The admin and CSRF token of a live session.
    pub async fn admin_session(&self, token_hash: &str) -> Result<Option<(Admin, String)>> {
        Ok(query(
            "SELECT a.*, s.csrf FROM admin_sessions s JOIN admins a ON a.id = s.admin_id \
             WHERE s.token_hash = ? AND s.expires_at > ?::timestamptz",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?
        .map(|r| (admin_from(&r), r.col("csrf"))))
    }

    pub async fn end_admin_session(&self, token_hash: &str) -> Result<()> {
        let _writing = self.writer.lock().await;
        query("DELETE FROM admin_sessions WHERE token_hash = ? OR expires_at <= ?::timestamptz")
            .bind(token_hash)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The organisation's recent console actions, newest first.
    pub async fn admin_actions(
        &self,
        organisation_id: &str,
        limit: i64,
    ) -> Result<Vec<AdminAction>> {
        let rows = query(
            "SELECT admin_name, action, target, at FROM admin_actions WHERE organisation_id = ? \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(organisation_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AdminAction {
                admin_name: r.col("admin_name"),
                action: r.col("action"),
                target: r.col("target"),
                at: r.col("at"),
            })
            .collect())
    }

    /// The organisation's own connections (not its API customers'), each
    /// with its spaces and how many pages and blog posts each holds: three
    /// queries, whatever the number of spaces.
    pub async fn console_sites(&self, organisation_id: &str) -> Result<Vec<ConsoleSite>> {
        let connections = query(
            "SELECT c.*, a.name AS connected_by_name FROM connections c \
             LEFT JOIN admins a ON a.id = c.connected_by \
             WHERE c.organisation_id = ? AND c.end_user_id IS NULL ORDER BY c.created_at, c.id",
        )
        .bind(organisation_id)
        .fetch_all(&self.pool)
        .await?;
        let mut sites: Vec<ConsoleSite> = connections
            .iter()
            .map(|r| ConsoleSite {
                connection: Store::connection_from(r),
                connected_by: r.col("connected_by_name"),
                spaces: Vec::new(),
                listed_names: Vec::new(),
            })
            .collect();
        let spaces = query(
            "SELECT s.connection_id, s.space_id, s.space_key, s.name, \
             (SELECT COUNT(*) FROM files f WHERE f.connection_id = s.connection_id \
              AND f.space_id = s.space_id AND f.kind IN ('page', 'blogpost')) AS items \
             FROM spaces s JOIN connections c ON c.id = s.connection_id \
             WHERE c.organisation_id = ? AND c.end_user_id IS NULL ORDER BY LOWER(s.name), s.space_key",
        )
        .bind(organisation_id)
        .fetch_all(&self.pool)
        .await?;
        let listed = query(
            "SELECT i.connection_id, i.external_id, i.name FROM source_items i \
             JOIN connections c ON c.id = i.connection_id \
             WHERE c.organisation_id = ? AND c.end_user_id IS NULL AND i.item_type = 'SPACE'",
        )
        .bind(organisation_id)
        .fetch_all(&self.pool)
        .await?;
        let position: std::collections::HashMap<String, usize> = sites
            .iter()
            .enumerate()
            .map(|(i, s)| (s.connection.id.clone(), i))
            .collect();
        for row in &spaces {
            if let Some(&i) = position.get(row.col::<&str>("connection_id")) {
                sites[i].spaces.push(ConsoleSpace {
                    space_id: row.col("space_id"),
                    key: row.col("space_key"),
                    name: row.col("name"),
                    items: row.col("items"),
                });
            }
        }
        for row in &listed {
            if let Some(&i) = position.get(row.col::<&str>("connection_id")) {
                sites[i]
                    .listed_names
                    .push((row.col("external_id"), row.col("name")));
            }
        }
        Ok(sites)
    }

    /// The connections of an organisation's API customers, by customer.
    pub async fn customer_connections(
        &self,
        organisation_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, Connection)>> {
        let rows = query(
            "SELECT c.*, u.customer_id AS owner FROM connections c JOIN end_users u ON u.id = c.end_user_id \
             WHERE c.organisation_id = ? ORDER BY u.customer_id, c.data_source_id LIMIT ?",
        )
        .bind(organisation_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.col("owner"), Store::connection_from(r)))
            .collect())
    }

    /// Spaces a console connection may choose, from its item listing, in
    /// alphabetical order: those whose name or key contains `query`.
    pub async fn space_options(
        &self,
        connection_id: &str,
        text: &str,
        limit: i64,
    ) -> Result<Vec<SpaceOption>> {
        let pattern = format!(
            "%{}%",
            text.trim()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows = query(
            "SELECT external_id, name FROM source_items WHERE connection_id = ? AND item_type = 'SPACE' \
             AND (LOWER(name) LIKE LOWER(?) ESCAPE '\\' OR LOWER(external_id) LIKE LOWER(?) ESCAPE '\\') \
             ORDER BY LOWER(name), external_id LIMIT ?",
        )
        .bind(connection_id)
        .bind(&pattern)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| SpaceOption {
                key: r.col("external_id"),
                name: r.col("name"),
            })
            .collect())
    }

    /// Replaces a console connection's listed spaces (the ones an admin may
    /// choose) with `spaces`: one transaction.
    pub async fn replace_space_options(
        &self,
        connection_id: &str,
        spaces: &[crate::NewSourceItem],
    ) -> Result<()> {
        let listing = now().to_string();
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        super::api::upsert_source_items(&mut tx, connection_id, &listing, spaces).await?;
        query(
            "DELETE FROM source_items WHERE connection_id = ? AND item_type = 'SPACE' AND synced_at <> ?::timestamptz",
        )
        .bind(connection_id)
        .bind(&listing)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues a sync of a connection now, recorded: one transaction.
    /// Whether a new job was queued (a queued one absorbs it).
    pub async fn queue_sync(
        &self,
        organisation_id: &str,
        connection_id: &str,
        reason: &str,
        actor: Option<Actor<'_>>,
        target: &str,
    ) -> Result<bool> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let owned = query(
            "UPDATE connections SET updated_at = ?::timestamptz WHERE id = ? AND organisation_id = ? AND revoked = FALSE",
        )
        .bind(now())
        .bind(connection_id)
        .bind(organisation_id)
        .execute(&mut *tx)
        .await?;
        if owned.rows_affected() == 0 {
            return Err(Error::NotFound(format!("connection {connection_id}")));
        }
        let (_, queued) = enqueue_in(&mut tx, connection_id, reason).await?;
        record_in(&mut tx, organisation_id, actor, "Sync again", target).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Takes one space out of a connection: its new scope, and everything
    /// synced from the space deleted (gone from search once the index
    /// applies the log) and kept out (a sync already running writes none
    /// of it back, until the space is chosen again), recorded: one
    /// transaction. Returns how many files went.
    pub async fn remove_space(
        &self,
        organisation_id: &str,
        connection_id: &str,
        space_key: &str,
        new_scope: &Value,
        actor: Option<Actor<'_>>,
    ) -> Result<u64> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let owned = query(
            "UPDATE connections SET scope = ?::jsonb, updated_at = ?::timestamptz WHERE id = ? AND organisation_id = ?",
        )
        .bind(new_scope.to_string())
        .bind(now())
        .bind(connection_id)
        .bind(organisation_id)
        .execute(&mut *tx)
        .await?;
        if owned.rows_affected() == 0 {
            return Err(Error::NotFound(format!("connection {connection_id}")));
        }
        let space_ids: Vec<String> =
            query("SELECT space_id FROM spaces WHERE connection_id = ? AND space_key = ?")
                .bind(connection_id)
                .bind(space_key)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.col("space_id"))
                .collect();
        let mut removed = 0;
        for space_id in &space_ids {
            query(
                "INSERT INTO removed_spaces (connection_id, space_id, space_key, removed_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (connection_id, space_id) DO NOTHING",
            )
            .bind(connection_id)
            .bind(space_id)
            .bind(space_key)
            .bind(now())
            .execute(&mut *tx)
            .await?;
            removed += query("DELETE FROM files WHERE connection_id = ? AND space_id = ?")
                .bind(connection_id)
                .bind(space_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            query("DELETE FROM spaces WHERE connection_id = ? AND space_id = ?")
                .bind(connection_id)
                .bind(space_id)
                .execute(&mut *tx)
                .await?;
        }
        record_in(&mut tx, organisation_id, actor, "Remove space", space_key).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Removes a connection with everything synced through it (gone from
    /// search once the index applies the log), recorded: one transaction.
    pub async fn remove_connection(
        &self,
        organisation_id: &str,
        connection_id: &str,
        actor: Option<Actor<'_>>,
        target: &str,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let removed = query("DELETE FROM connections WHERE id = ? AND organisation_id = ?")
            .bind(connection_id)
            .bind(organisation_id)
            .execute(&mut *tx)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(Error::NotFound(format!("connection {connection_id}")));
        }
        record_in(&mut tx, organisation_id, actor, "Remove connection", target).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_session(tx: &mut Tx<'_>, admin_id: &str, session: &NewSession<'_>) -> Result<()> {
    query(
        "INSERT INTO admin_sessions (token_hash, admin_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?::timestamptz)",
    )
    .bind(session.token_hash)
    .bind(admin_id)
    .bind(session.csrf)
    .bind(now())
    .bind(session.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// A connection of an organisation by its data source number: one of
    /// its own (`own`, the console's) or one of its API customers'.
    pub async fn org_connection(
        &self,
        organisation_id: &str,
        data_source_id: i64,
        own: bool,
    ) -> Result<Option<Connection>> {
        Ok(query(
            "SELECT * FROM connections WHERE organisation_id = ? AND data_source_id = ? \
             AND (end_user_id IS NULL) = ?",
        )
        .bind(organisation_id)
        .bind(data_source_id)
        .bind(own)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| Store::connection_from(&r)))
    }
}

impl Store {
    /// An organisation by its id, its Carbon number or its name (`None`
    /// when none, or when the name is shared by several).
    pub async fn find_organisation(&self, id_or_name: &str) -> Result<Option<crate::Organisation>> {
        if let Ok(found) = self.organisation(id_or_name).await {
            return Ok(Some(found));
        }
        let rows = query("SELECT id FROM organisations WHERE name = ? OR CAST(number AS TEXT) = ?")
            .bind(id_or_name)
            .bind(id_or_name)
            .fetch_all(&self.pool)
            .await?;
        match rows.as_slice() {
            [one] => self.organisation(one.col::<&str>("id")).await.map(Some),
            _ => Ok(None),
        }
    }
}
