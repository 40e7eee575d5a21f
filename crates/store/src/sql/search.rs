use super::*;
use sqlx::{QueryBuilder, Row};
use std::collections::{BTreeMap, HashMap};

/// Rows a multi-row statement carries at most (7 binds each for chunks:
/// far below SQLite's 32,766 and PostgreSQL's 65,535 parameters).
const ROWS_PER_STATEMENT: usize = 500;

/// Replaces the chunks of each file given, in a few multi-row statements
/// rather than one per chunk (each statement is a round trip to the
/// database's thread or server). A file given twice keeps its last chunks.
pub(crate) async fn replace_chunks(tx: &mut Tx<'_>, files: &[(i64, &[NewChunk])]) -> Result<()> {
    let mut last: HashMap<i64, &[NewChunk]> = HashMap::with_capacity(files.len());
    for (file_id, chunks) in files {
        last.insert(*file_id, chunks);
    }
    let ids: Vec<i64> = last.keys().copied().collect();
    for group in ids.chunks(ROWS_PER_STATEMENT) {
        let mut b = QueryBuilder::<Db>::new("DELETE FROM chunks WHERE file_id IN ");
        b.push_tuples(group, |mut t, id| {
            t.push_bind(*id);
        });
        b.build().execute(&mut **tx).await?;
    }
    let rows: Vec<(i64, usize, &NewChunk)> = files
        .iter()
        .filter(|(id, chunks)| std::ptr::eq(last[id], *chunks))
        .flat_map(|(id, chunks)| chunks.iter().enumerate().map(move |(i, c)| (*id, i, c)))
        .collect();
    for group in rows.chunks(ROWS_PER_STATEMENT) {
        let mut b = QueryBuilder::<Db>::new(
            "INSERT INTO chunks (file_id, idx, text, heading_path, start_offset, end_offset, tokens) ",
        );
        b.push_values(group, |mut v, (file_id, idx, chunk)| {
            v.push_bind(*file_id)
                .push_bind(*idx as i64)
                .push_bind(chunk.text.as_str())
                .push_bind(
                    serde_json::to_string(&chunk.heading_path).unwrap_or_else(|_| "[]".into()),
                );
            if PG {
                v.push_unseparated("::jsonb");
            }
            v.push_bind(chunk.start as i64)
                .push_bind(chunk.end as i64)
                .push_bind(chunk.tokens as i64);
        });
        b.build().execute(&mut **tx).await?;
    }
    // Each file's count, kept on its row for listings: counted from the
    // chunks just written, in the same transaction.
    for group in ids.chunks(ROWS_PER_STATEMENT) {
        let mut b = QueryBuilder::<Db>::new(
            "UPDATE files SET chunk_count = \
             (SELECT COUNT(*) FROM chunks WHERE chunks.file_id = files.id) WHERE id IN ",
        );
        b.push_tuples(group, |mut t, id| {
            t.push_bind(*id);
        });
        b.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Stores the bodies and Markdown of files, in multi-row statements.
pub(crate) async fn write_contents(
    tx: &mut Tx<'_>,
    contents: &[(i64, &str, Option<&str>)],
) -> Result<()> {
    // One row per file in a statement (PostgreSQL refuses to update a row
    // twice in one): the last given wins.
    let mut last: HashMap<i64, usize> = HashMap::with_capacity(contents.len());
    for (i, (file_id, _, _)) in contents.iter().enumerate() {
        last.insert(*file_id, i);
    }
    let rows: Vec<&(i64, &str, Option<&str>)> = contents
        .iter()
        .enumerate()
        .filter(|(i, (id, _, _))| last[id] == *i)
        .map(|(_, row)| row)
        .collect();
    for group in rows.chunks(ROWS_PER_STATEMENT) {
        let mut b = QueryBuilder::<Db>::new("INSERT INTO file_contents (file_id, body, markdown) ");
        b.push_values(group, |mut v, (file_id, body, markdown)| {
            v.push_bind(*file_id).push_bind(*body).push_bind(*markdown);
        });
        b.push(
            " ON CONFLICT (file_id) DO UPDATE SET body = excluded.body, markdown = excluded.markdown",
        );
        b.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Pages and blog posts by (connection, external id), as `ancestry` read
/// them, with the walks a file's restrictions follow.
#[derive(Default)]
struct Ancestry {
    nodes: HashMap<(String, String), Node>,
    looked_up: std::collections::HashSet<(String, String)>,
}

struct Node {
    is_page: bool,
    parent_id: Option<String>,
    restriction: ReadRestriction,
}

impl Ancestry {
    /// A page's restriction and its ancestors', nearest first, ending with
    /// Unknown when the chain does not reach a root (an ancestor not
    /// stored, or deeper than MAX_DEPTH: a cycle).
    fn page_chain(&self, connection_id: &str, page_id: &str) -> Vec<ReadRestriction> {
        let mut chain = Vec::new();
        let mut current = page_id.to_string();
        for _ in 0..=MAX_DEPTH {
            match self.nodes.get(&(connection_id.to_string(), current)) {
                Some(node) if node.is_page => {
                    chain.push(node.restriction.clone());
                    match &node.parent_id {
                        None => return chain,
                        Some(parent) => current = parent.clone(),
                    }
                }
                _ => break,
            }
        }
        chain.push(ReadRestriction::Unknown);
        chain
    }

    /// What an attachment or comment follows: its blog post's restriction,
    /// or its page's chain.
    fn container_chain(&self, connection_id: &str, container_id: &str) -> Vec<ReadRestriction> {
        match self
            .nodes
            .get(&(connection_id.to_string(), container_id.to_string()))
        {
            None => vec![ReadRestriction::Unknown],
            Some(node) if !node.is_page => vec![node.restriction.clone()],
            Some(_) => self.page_chain(connection_id, container_id),
        }
    }
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// A viewer segment as stored. A condition that does not read would
/// otherwise be "no condition" (everyone passes it): the segment admits
/// nobody instead.
fn segment_from(r: &impl Named) -> Segment {
    let list = |column: &str| {
        r.text_or_null(column)
            .and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok())
    };
    let lists = (
        list("tags"),
        list("or_tags"),
        list("organization_ids"),
        list("group_ids"),
    );
    match lists {
        (Some(tags), Some(or_tags), Some(organization_ids), Some(group_ids)) => Segment {
            id: r.text("id"),
            name: r.text("name"),
            user_type: r.text("user_type"),
            tags,
            or_tags,
            organization_ids,
            group_ids,
        },
        _ => Segment {
            id: r.text("id"),
            name: r.text("name"),
            user_type: "unreadable".into(),
            tags: Vec::new(),
            or_tags: Vec::new(),
            organization_ids: Vec::new(),
            group_ids: Vec::new(),
        },
    }
}

/// A space with what decides who may read it (`Store::scopes`).
fn scope_from(r: &impl Named) -> ScopeRow {
    ScopeRow {
        connection_id: r.text("connection_id"),
        space_id: r.text("space_id"),
        space_key: r.text("space_key"),
        // A value that does not read enforces: fail closed.
        enforce_permissions: r.bool_or_null("enforce_permissions").unwrap_or(true),
        read_principals: r
            .text_or_null("read_principals")
            .and_then(|p| serde_json::from_str(&p).ok()),
        visibility: match r.text("visibility").as_str() {
            "everyone" => Visibility::Everyone,
            _ => Visibility::Segments {
                segment_ids: json_list(&r.text("segment_ids")),
            },
        },
    }
}

/// How deep an ancestor chain is followed before it counts as broken.
const MAX_DEPTH: i64 = 1_000;

impl Store {
    // The index log.

    /// Changes after `after`, in log order. On PostgreSQL only changes of
    /// transactions below the reader's snapshot xmin: every one of those
    /// has ended, so nothing can later appear before what is returned.
    pub async fn index_changes(&self, after: LogPosition, limit: i64) -> Result<Vec<IndexChange>> {
        let rows = if PG {
            query(
                "SELECT seq, tx, file_id, subtree FROM index_log WHERE (tx, seq) > (?, ?) \
                 AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                 ORDER BY tx, seq LIMIT ?",
            )
            .bind(after.tx)
            .bind(after.seq)
        } else {
            query("SELECT seq, tx, file_id, subtree FROM index_log WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(after.seq)
        }
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| IndexChange {
                position: LogPosition {
                    tx: r.col("tx"),
                    seq: r.col("seq"),
                },
                file_id: r.col("file_id"),
                subtree: r.col("subtree"),
            })
            .collect())
    }

    /// A position every change committed so far is at or before (an index
    /// built from the files as they are now has applied the log to here).
    pub async fn index_head(&self) -> Result<LogPosition> {
        if PG {
            let row = query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx")
                .fetch_one(&self.pool)
                .await?;
            return Ok(LogPosition {
                tx: row.col("tx"),
                seq: 0,
            });
        }
        let row = query("SELECT seq FROM sqlite_sequence WHERE name = 'index_log'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(LogPosition {
            tx: 0,
            seq: row.map(|r| r.col::<i64>("seq")).unwrap_or(0),
        })
    }

    /// How many logged changes are after `after` (committed or not yet
    /// readable): an index's lag.
    pub async fn index_pending(&self, after: LogPosition) -> Result<i64> {
        let row = if PG {
            query("SELECT COUNT(*) AS n FROM index_log WHERE (tx, seq) > (?, ?)")
                .bind(after.tx)
                .bind(after.seq)
        } else {
            query("SELECT COUNT(*) AS n FROM index_log WHERE seq > ?").bind(after.seq)
        }
        .fetch_one(&self.pool)
        .await?;
        Ok(row.col("n"))
    }

    /// How far the log has been pruned: an index behind this must rebuild.
    pub async fn index_floor(&self) -> Result<LogPosition> {
        let row = query("SELECT tx, seq FROM index_log_pruned WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| LogPosition {
                tx: r.col("tx"),
                seq: r.col("seq"),
            })
            .unwrap_or_default())
    }

    /// Records where an index replica (a node) has applied the log to.
    pub async fn set_index_cursor(&self, node_id: &str, position: LogPosition) -> Result<()> {
        // In turn with the other writers: outside the queue SQLite's busy
        // handler sleeps and retries, and a catch-up waited 1.5 s here
        // behind a sync's batches while indexing nothing.
        let _writing = self.writer.lock().await;
        query(
            "INSERT INTO index_cursors (node_id, tx, seq, seen_at) VALUES (?, ?, ?, ?::timestamptz) \
             ON CONFLICT (node_id) DO UPDATE SET tx = excluded.tx, seq = excluded.seq, seen_at = excluded.seen_at",
        )
        .bind(node_id)
        .bind(position.tx)
        .bind(position.seq)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the changes every live replica has applied: those at or
    /// before the lowest cursor of the replicas seen within `live`. A
    /// replica silent for longer rebuilds when it returns (its cursor is
    /// then behind the floor). Returns the new floor.
    pub async fn prune_index_log(&self, live: std::time::Duration) -> Result<LogPosition> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let since =
            Ts(Ts::now().0 - chrono::Duration::from_std(live).unwrap_or(chrono::Duration::MAX));
        let row = query(
            "SELECT tx, seq FROM index_cursors WHERE seen_at >= ?::timestamptz ORDER BY tx, seq LIMIT 1",
        )
        .bind(since)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return self.index_floor().await;
        };
        let upto = LogPosition {
            tx: row.col("tx"),
            seq: row.col("seq"),
        };
        if PG {
            query("DELETE FROM index_log WHERE (tx, seq) <= (?, ?)")
                .bind(upto.tx)
                .bind(upto.seq)
        } else {
            query("DELETE FROM index_log WHERE seq <= ?").bind(upto.seq)
        }
        .execute(&mut *tx)
        .await?;
        query(
            "INSERT INTO index_log_pruned (id, tx, seq) VALUES (1, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET tx = excluded.tx, seq = excluded.seq \
             WHERE (excluded.tx, excluded.seq) > (index_log_pruned.tx, index_log_pruned.seq)",
        )
        .bind(upto.tx)
        .bind(upto.seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.index_floor().await
    }

    /// Ids of every file, in id order, `limit` at a time after `after`.
    pub async fn file_ids(&self, after: i64, limit: i64) -> Result<Vec<i64>> {
        let rows = query("SELECT id FROM files WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.col("id")).collect())
    }

    /// The file and everything whose readers follow from it: the pages
    /// below it, and the attachments and comments of all of them.
    pub async fn subtree(&self, file_ids: &[i64]) -> Result<Vec<i64>> {
        // Seeded with many files at once: an index catch-up asks for the
        // subtrees of every page a sync inserted, and one query per page
        // cost more than indexing it.
        let mut out: Vec<i64> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for seeds in file_ids.chunks(500) {
            let placeholders = vec!["?"; seeds.len()].join(",");
            // On PostgreSQL each step is a LATERAL lookup (OFFSET 0 keeps
            // the planner from flattening it into a join): an index probe
            // per node whatever the statistics say. Planned as a join, a
            // table grown since its last ANALYZE (a first sync) was
            // scanned whole for every node: 16 ms a page at 17,000 files,
            // against 0.05.
            let sql = if PG {
                format!(
                    "WITH RECURSIVE tree(id, connection_id, external_id, depth) AS ( \
                       SELECT id, connection_id, external_id, 0 FROM files WHERE id IN ({placeholders}) \
                       UNION \
                       SELECT c.id, c.connection_id, c.external_id, tree.depth + 1 FROM tree CROSS JOIN LATERAL ( \
                         SELECT f.id, f.connection_id, f.external_id FROM files f \
                         WHERE f.connection_id = tree.connection_id AND f.parent_id = tree.external_id \
                           AND f.kind = 'page' OFFSET 0) c \
                       WHERE tree.depth < ? \
                     ) \
                     SELECT id FROM tree \
                     UNION \
                     SELECT c.id FROM tree CROSS JOIN LATERAL ( \
                       SELECT f.id FROM files f WHERE f.connection_id = tree.connection_id \
                         AND f.container_id = tree.external_id OFFSET 0) c"
                )
            } else {
                format!(
                    "WITH RECURSIVE tree(id, connection_id, external_id, depth) AS ( \
                       SELECT id, connection_id, external_id, 0 FROM files WHERE id IN ({placeholders}) \
                       UNION \
                       SELECT f.id, f.connection_id, f.external_id, tree.depth + 1 FROM files f JOIN tree \
                         ON f.connection_id = tree.connection_id AND f.parent_id = tree.external_id \
                         AND f.kind = 'page' WHERE tree.depth < ? \
                     ) \
                     SELECT id FROM tree \
                     UNION \
                     SELECT f.id FROM files f JOIN tree ON f.connection_id = tree.connection_id \
                       AND f.container_id = tree.external_id"
                )
            };
            let sql = dynamic(&sql);
            let mut query = sqlx::query(&sql);
            for id in seeds {
                query = query.bind(id);
            }
            for row in query.bind(MAX_DEPTH).fetch_all(&self.pool).await? {
                let id: i64 = row.col("id");
                if seen.insert(id) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// What the index needs of these files; files that no longer exist
    /// are absent from the answer.
    pub async fn indexable(&self, file_ids: &[i64]) -> Result<Vec<IndexableFile>> {
        let mut out = Vec::with_capacity(file_ids.len());
        for chunk in file_ids.chunks(200) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT f.id, f.connection_id, c.organisation_id, c.enforce_permissions, u.customer_id, \
                 f.kind, f.external_id, f.space_id, f.parent_id, f.container_id, f.title, f.url, f.labels, \
                 f.tags, f.read_restriction FROM files f JOIN connections c ON c.id = f.connection_id \
                 LEFT JOIN end_users u ON u.id = c.end_user_id WHERE f.id IN ({placeholders})"
            );
            let sql = dynamic(&sql);
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut chunks = self.chunks_of(chunk).await?;
            // The pages and blog posts the files' restrictions follow
            // from, read level by level for the whole batch.
            let mut wanted: Vec<(String, String)> = Vec::new();
            for row in &rows {
                let connection_id: String = row.col("connection_id");
                let start = match row.col::<&str>("kind") {
                    crate::kind::PAGE => row.col::<Option<String>>("parent_id"),
                    crate::kind::BLOG_POST => None,
                    _ => row.col::<Option<String>>("container_id"),
                };
                if let Some(start) = start {
                    wanted.push((connection_id, start));
                }
            }
            let tree = self.ancestry(wanted).await?;
            for row in rows {
                let file_id: i64 = row.col("id");
                let connection_id: String = row.col("connection_id");
                let kind: String = row.col("kind");
                let own = ReadRestriction::from_column(row.col("read_restriction"));
                // Pages inherit from their ancestors; attachments and
                // comments read as their container does.
                let restrictions = match kind.as_str() {
                    crate::kind::PAGE => {
                        let mut chain = vec![own];
                        if let Some(parent) = row.col::<Option<String>>("parent_id") {
                            chain.extend(tree.page_chain(&connection_id, &parent));
                        }
                        chain
                    }
                    crate::kind::BLOG_POST => vec![own],
                    _ => match row.col::<Option<String>>("container_id") {
                        Some(container) => tree.container_chain(&connection_id, &container),
                        None => vec![ReadRestriction::Unknown],
                    },
                };
                out.push(IndexableFile {
                    file_id,
                    organisation_id: row.col("organisation_id"),
                    connection_id,
                    customer_id: row.col("customer_id"),
                    kind,
                    external_id: row.col("external_id"),
                    space_id: row.col("space_id"),
                    title: row.col("title"),
                    url: row.col("url"),
                    labels: json_list(row.col("labels")),
                    tags: serde_json::from_str(row.col::<&str>("tags")).unwrap_or_default(),
                    enforce_permissions: row.col("enforce_permissions"),
                    restrictions,
                    chunks: chunks.remove(&file_id).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    async fn chunks_of(&self, file_ids: &[i64]) -> Result<HashMap<i64, Vec<Chunk>>> {
        let placeholders = vec!["?"; file_ids.len()].join(",");
        let sql = format!(
            "SELECT file_id, idx, text, heading_path, vector FROM chunks WHERE file_id IN ({placeholders}) \
             ORDER BY file_id, idx"
        );
        let sql = dynamic(&sql);
        let mut query = sqlx::query(&sql);
        for id in file_ids {
            query = query.bind(id);
        }
        let mut out: HashMap<i64, Vec<Chunk>> = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            out.entry(row.col("file_id")).or_default().push(Chunk {
                idx: row.col("idx"),
                text: row.col("text"),
                heading_path: json_list(row.col("heading_path")),
                vector: row.col::<Option<&[u8]>>("vector").map(vector_from_bytes),
            });
        }
        Ok(out)
    }

    /// One page of the chunks of these files, in file then chunk order,
    /// and how many there are in all.
    pub async fn chunk_page(
        &self,
        file_ids: &[i64],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<(i64, Chunk)>, i64)> {
        let ids = serde_json::to_string(file_ids).unwrap_or_else(|_| "[]".into());
        let count: i64 = query(if PG {
            "SELECT COUNT(*) FROM chunks WHERE file_id IN \
             (SELECT jsonb_array_elements_text(?::jsonb)::bigint)"
        } else {
            "SELECT COUNT(*) FROM chunks WHERE file_id IN (SELECT value FROM json_each(?))"
        })
        .bind(&ids)
        .fetch_one(&self.pool)
        .await?
        .get(0);
        let rows = query(if PG {
            "SELECT file_id, idx, text, heading_path, vector FROM chunks \
             WHERE file_id IN (SELECT jsonb_array_elements_text(?::jsonb)::bigint) \
             ORDER BY file_id, idx LIMIT ? OFFSET ?"
        } else {
            "SELECT file_id, idx, text, heading_path, vector FROM chunks \
             WHERE file_id IN (SELECT value FROM json_each(?)) \
             ORDER BY file_id, idx LIMIT ? OFFSET ?"
        })
        .bind(&ids)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let chunks = rows
            .iter()
            .map(|row| {
                (
                    row.col("file_id"),
                    Chunk {
                        idx: row.col("idx"),
                        text: row.col("text"),
                        heading_path: json_list(row.col("heading_path")),
                        vector: row.col::<Option<&[u8]>>("vector").map(vector_from_bytes),
                    },
                )
            })
            .collect();
        Ok((chunks, count))
    }

    /// What a file holds: its kind, title and media type, the body as
    /// synced (a page's storage format, an attachment's extracted text)
    /// and its Markdown; None for a file that is gone.
    pub async fn file_content(&self, file_id: i64) -> Result<Option<FileContent>> {
        let row = query(
            "SELECT f.connection_id, f.kind, f.external_id, f.title, f.media_type, f.url, f.labels, \
             f.updated_at, s.space_key, s.name AS space_name, c.body, c.markdown \
             FROM files f LEFT JOIN file_contents c ON c.file_id = f.id \
             LEFT JOIN spaces s ON s.connection_id = f.connection_id AND s.space_id = f.space_id \
             WHERE f.id = ?",
        )
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| FileContent {
            connection_id: row.col("connection_id"),
            kind: row.col("kind"),
            external_id: row.col("external_id"),
            title: row.col("title"),
            media_type: row.col("media_type"),
            url: row.col("url"),
            labels: serde_json::from_str(row.col::<&str>("labels")).unwrap_or_default(),
            updated_at: row.col("updated_at"),
            space_key: row.col("space_key"),
            space_name: row.col("space_name"),
            body: row.col("body"),
            markdown: row.col("markdown"),
        }))
    }

    /// The restrictions of a page and its ancestors, the page first. A
    /// link to a page the store does not hold ends the chain in Unknown.
    /// The pages and blog posts these (connection, external id) pairs
    /// name, and all the ancestors of those pages: one query per level of
    /// the tree for all of them, rather than a recursive query per file.
    async fn ancestry(&self, wanted: Vec<(String, String)>) -> Result<Ancestry> {
        let mut tree = Ancestry::default();
        let mut frontier: Vec<(String, String)> = wanted;
        let mut depth = 0;
        while !frontier.is_empty() && depth <= MAX_DEPTH {
            depth += 1;
            frontier.sort();
            frontier.dedup();
            frontier.retain(|key| tree.looked_up.insert(key.clone()));
            let mut next = Vec::new();
            let mut by_connection: HashMap<&str, Vec<&str>> = HashMap::new();
            for (connection, id) in &frontier {
                by_connection.entry(connection).or_default().push(id);
            }
            for (connection, ids) in by_connection {
                for group in ids.chunks(500) {
                    let placeholders = vec!["?"; group.len()].join(",");
                    let sql = dynamic(&format!(
                        "SELECT external_id, kind, parent_id, read_restriction FROM files \
                         WHERE connection_id = ? AND kind IN ('page', 'blogpost') \
                         AND external_id IN ({placeholders})"
                    ));
                    let mut query = sqlx::query(&sql).bind(connection);
                    for id in group {
                        query = query.bind(*id);
                    }
                    for row in query.fetch_all(&self.pool).await? {
                        let node = Node {
                            is_page: row.col::<&str>("kind") == crate::kind::PAGE,
                            parent_id: row.col("parent_id"),
                            restriction: ReadRestriction::from_column(row.col("read_restriction")),
                        };
                        if let (true, Some(parent)) = (node.is_page, &node.parent_id) {
                            next.push((connection.to_string(), parent.clone()));
                        }
                        tree.nodes
                            .insert((connection.to_string(), row.col("external_id")), node);
                    }
                }
            }
            frontier = next;
        }
        Ok(tree)
    }
    /// Stores vectors computed for chunks: (file id, chunk index, vector).
    pub async fn set_vectors(&self, vectors: &[(i64, i64, Vec<f32>)]) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        for (file_id, idx, vector) in vectors {
            query("UPDATE chunks SET vector = ? WHERE file_id = ? AND idx = ?")
                .bind(vector_to_bytes(vector))
                .bind(file_id)
                .bind(idx)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stored chunks of a file.
    pub async fn chunks(&self, file_id: i64) -> Result<Vec<Chunk>> {
        Ok(self
            .chunks_of(&[file_id])
            .await?
            .remove(&file_id)
            .unwrap_or_default())
    }

    /// The id of a file by its Confluence identity.
    pub async fn file_id(
        &self,
        connection_id: &str,
        kind: &str,
        external_id: &str,
    ) -> Result<Option<i64>> {
        let row =
            query("SELECT id FROM files WHERE connection_id = ? AND kind = ? AND external_id = ?")
                .bind(connection_id)
                .bind(kind)
                .bind(external_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.col("id")))
    }

    // Who may read what.

    /// Sets the read restrictions of pages or blog posts where they
    /// differ from what is stored; returns how many changed.
    pub async fn set_read_restrictions(
        &self,
        connection_id: &str,
        kind: &str,
        restrictions: &[(String, ReadRestriction)],
    ) -> Result<u64> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for (external_id, restriction) in restrictions {
            let result = query(
                "UPDATE files SET read_restriction = ?::jsonb WHERE connection_id = ? AND kind = ? \
                 AND external_id = ? AND read_restriction IS DISTINCT FROM ?::jsonb",
            )
            .bind(restriction.to_column())
            .bind(connection_id)
            .bind(kind)
            .bind(external_id)
            .bind(restriction.to_column())
            .execute(&mut *tx)
            .await?;
            changed += result.rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Who holds read in a space (`None`: not known, nobody passes).
    pub async fn set_space_principals(
        &self,
        connection_id: &str,
        space_id: &str,
        principals: Option<&SpacePrincipals>,
    ) -> Result<()> {
        query(
            "UPDATE spaces SET read_principals = ?::jsonb WHERE connection_id = ? AND space_id = ?",
        )
        .bind(principals.map(|p| serde_json::to_string(p).unwrap_or_default()))
        .bind(connection_id)
        .bind(space_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Turns Confluence's permissions on or off for a connection's
    /// searches. Every file is indexed again with (or without) its
    /// restrictions.
    pub async fn set_enforce_permissions(&self, connection_id: &str, enforce: bool) -> Result<()> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        enforce_in(&mut tx, connection_id, enforce).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a space's viewer permissions. Segments must belong to the
    /// connection's organisation; at most 10.
    pub async fn set_space_visibility(
        &self,
        connection_id: &str,
        space_id: &str,
        visibility: &Visibility,
    ) -> Result<()> {
        self.set_space_visibility_as(connection_id, space_id, visibility, None)
            .await
    }

    /// `set_space_visibility`, recorded as an admin's action: one
    /// transaction.
    pub async fn set_space_visibility_as(
        &self,
        connection_id: &str,
        space_id: &str,
        visibility: &Visibility,
        actor: Option<crate::Actor<'_>>,
    ) -> Result<()> {
        let connection = self.connection(connection_id).await?;
        let (name, ids) = match visibility {
            Visibility::Everyone => ("everyone", Vec::new()),
            Visibility::Segments { segment_ids } => {
                if segment_ids.is_empty() || segment_ids.len() > 10 {
                    return Err(Error::Invalid(format!(
                        "a space is visible to 1 to 10 segments, not {}",
                        segment_ids.len()
                    )));
                }
                let known: Vec<String> = self
                    .segments(&connection.organisation_id)
                    .await?
                    .into_iter()
                    .map(|s| s.id)
                    .collect();
                if let Some(unknown) = segment_ids.iter().find(|id| !known.contains(id)) {
                    return Err(Error::NotFound(format!("segment {unknown}")));
                }
                ("segments", segment_ids.clone())
            }
        };
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let result = query(
            "UPDATE spaces SET visibility = ?, segment_ids = ?::jsonb WHERE connection_id = ? AND space_id = ? \
             RETURNING space_key",
        )
        .bind(name)
        .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
        .bind(connection_id)
        .bind(space_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = result else {
            return Err(Error::NotFound(format!("space {space_id}")));
        };
        let key: String = row.col("space_key");
        super::console::record_in(
            &mut tx,
            &connection.organisation_id,
            actor,
            "Set viewing permissions",
            &key,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_segment(
        &self,
        organisation_id: &str,
        segment: &Segment,
    ) -> Result<Segment> {
        self.create_segment_as(organisation_id, segment, None).await
    }

    /// `create_segment`, recorded as an admin's action: one transaction.
    pub async fn create_segment_as(
        &self,
        organisation_id: &str,
        segment: &Segment,
        actor: Option<crate::Actor<'_>>,
    ) -> Result<Segment> {
        if !matches!(segment.user_type.as_str(), "signed_in" | "staff") {
            return Err(Error::Invalid(format!(
                "user_type is signed_in or staff, not {:?}",
                segment.user_type
            )));
        }
        let id = if segment.id.is_empty() {
            new_id("seg")
        } else {
            segment.id.clone()
        };
        let list = |l: &Vec<String>| serde_json::to_string(l).unwrap_or_else(|_| "[]".into());
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        query(
            "INSERT INTO segments (id, organisation_id, name, user_type, tags, or_tags, organization_ids, \
             group_ids, created_at) VALUES (?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb, ?::jsonb, ?)",
        )
        .bind(&id)
        .bind(organisation_id)
        .bind(&segment.name)
        .bind(&segment.user_type)
        .bind(list(&segment.tags))
        .bind(list(&segment.or_tags))
        .bind(list(&segment.organization_ids))
        .bind(list(&segment.group_ids))
        .bind(now())
        .execute(&mut *tx)
        .await?;
        super::console::record_in(
            &mut tx,
            organisation_id,
            actor,
            "Create segment",
            &segment.name,
        )
        .await?;
        tx.commit().await?;
        Ok(Segment {
            id,
            ..segment.clone()
        })
    }

    pub async fn segments(&self, organisation_id: &str) -> Result<Vec<Segment>> {
        const SQL: &str =
            "SELECT * FROM segments WHERE organisation_id = ? ORDER BY created_at, id";
        // Every search asks this: on SQLite, read on the request's thread.
        if let Some(readers) = &self.readers {
            return readers.rows(SQL, [organisation_id], |r| segment_from(&ReadRow(r)));
        }
        let rows = query(SQL)
            .bind(organisation_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(segment_from).collect())
    }

    /// The spaces of an organisation's connections (one customer's only,
    /// when given), with what decides who may read them.
    pub async fn scopes(
        &self,
        organisation_id: &str,
        customer_id: Option<&str>,
    ) -> Result<Vec<ScopeRow>> {
        const SQL: &str = "SELECT s.connection_id, s.space_id, s.space_key, s.read_principals, s.visibility, s.segment_ids, \
             c.enforce_permissions FROM spaces s JOIN connections c ON c.id = s.connection_id \
             LEFT JOIN end_users u ON u.id = c.end_user_id \
             WHERE c.organisation_id = ? AND (? IS NULL OR u.customer_id = ?)";
        // Every search asks this: on SQLite, read on the request's thread.
        if let Some(readers) = &self.readers {
            let params = rusqlite::params![organisation_id, customer_id, customer_id];
            return readers.rows(SQL, params, |r| scope_from(&ReadRow(r)));
        }
        let rows = query(SQL)
            .bind(organisation_id)
            .bind(customer_id)
            .bind(customer_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(scope_from).collect())
    }

    /// The end user (Carbon's customer) of an organisation, created if new.
    pub async fn ensure_end_user(
        &self,
        organisation_id: &str,
        customer_id: &str,
    ) -> Result<String> {
        if let Some(row) =
            query("SELECT id FROM end_users WHERE organisation_id = ? AND customer_id = ?")
                .bind(organisation_id)
                .bind(customer_id)
                .fetch_optional(&self.pool)
                .await?
        {
            return Ok(row.col("id"));
        }
        let id = new_id("usr");
        query(
            "INSERT INTO end_users (id, organisation_id, customer_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (organisation_id, customer_id) DO NOTHING",
        )
        .bind(&id)
        .bind(organisation_id)
        .bind(customer_id)
        .bind(now())
        .bind(now())
        .execute(&self.pool)
        .await?;
        // Another request may have created it first: read back the winner.
        let row = query("SELECT id FROM end_users WHERE organisation_id = ? AND customer_id = ?")
            .bind(organisation_id)
            .bind(customer_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.col("id"))
    }

    pub async fn set_connection_end_user(
        &self,
        connection_id: &str,
        end_user_id: &str,
    ) -> Result<()> {
        query("UPDATE connections SET end_user_id = ? WHERE id = ?")
            .bind(end_user_id)
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets a file's tags (Carbon's key/value tags).
    pub async fn set_file_tags(
        &self,
        file_id: i64,
        tags: &BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let result = query("UPDATE files SET tags = ?::jsonb WHERE id = ?")
            .bind(serde_json::to_string(tags).unwrap_or_else(|_| "{}".into()))
            .bind(file_id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound(format!("file {file_id}")));
        }
        Ok(())
    }

    /// Carbon's files/sync tags: the files of each chosen space, or of each
    /// chosen page's subtree (its descendant pages and their comments and
    /// attachments), get the tags chosen with it, merged over theirs. Files
    /// whose tags would not change are not written (nor re-indexed).
    pub async fn apply_chosen_tags(
        &self,
        connection_id: &str,
        chosen: &BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    ) -> Result<u64> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for (id, tags) in chosen {
            if tags.is_empty() {
                continue;
            }
            let patch = serde_json::to_string(tags).unwrap_or_else(|_| "{}".into());
            let page = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
            let result = if page {
                // Carbon's tags are flat: a merge patch is a merge of keys.
                query(if PG {
                    "WITH RECURSIVE tree(external_id) AS ( \
                       SELECT ?::text \
                       UNION SELECT f.external_id FROM files f JOIN tree \
                         ON f.connection_id = ? AND f.kind = 'page' AND f.parent_id = tree.external_id \
                     ) \
                     UPDATE files SET tags = tags || ?::jsonb \
                     WHERE connection_id = ? AND tags IS DISTINCT FROM tags || ?::jsonb \
                       AND ((kind = 'page' AND external_id IN (SELECT external_id FROM tree)) \
                            OR container_id IN (SELECT external_id FROM tree))"
                } else {
                    "WITH RECURSIVE tree(external_id) AS ( \
                       SELECT ? \
                       UNION SELECT f.external_id FROM files f JOIN tree \
                         ON f.connection_id = ? AND f.kind = 'page' AND f.parent_id = tree.external_id \
                     ) \
                     UPDATE files SET tags = json_patch(tags, ?) \
                     WHERE connection_id = ? AND tags IS DISTINCT FROM json_patch(tags, ?) \
                       AND ((kind = 'page' AND external_id IN (SELECT external_id FROM tree)) \
                            OR container_id IN (SELECT external_id FROM tree))"
                })
                .bind(id)
                .bind(connection_id)
                .bind(&patch)
                .bind(connection_id)
                .bind(&patch)
                .execute(&mut *tx)
                .await?
            } else {
                query(if PG {
                    "UPDATE files SET tags = tags || ?::jsonb \
                     WHERE connection_id = ? AND tags IS DISTINCT FROM tags || ?::jsonb \
                       AND space_id IN (SELECT space_id FROM spaces WHERE connection_id = ? AND space_key = ?)"
                } else {
                    "UPDATE files SET tags = json_patch(tags, ?) \
                     WHERE connection_id = ? AND tags IS DISTINCT FROM json_patch(tags, ?) \
                       AND space_id IN (SELECT space_id FROM spaces WHERE connection_id = ? AND space_key = ?)"
                })
                .bind(&patch)
                .bind(connection_id)
                .bind(&patch)
                .bind(connection_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
            };
            changed += result.rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Sets a connection's data source tags (Carbon's), within its
    /// organisation.
    pub async fn set_data_source_tags(
        &self,
        organisation_id: &str,
        connection_id: &str,
        tags: &BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        let _writing = self.writer.lock().await;
        let result = query(
            "UPDATE connections SET data_source_tags = ?::jsonb, updated_at = ?::timestamptz \
             WHERE id = ? AND organisation_id = ?",
        )
        .bind(serde_json::to_string(tags).unwrap_or_else(|_| "{}".into()))
        .bind(crate::now())
        .bind(connection_id)
        .bind(organisation_id)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound(format!("connection {connection_id}")));
        }
        Ok(())
    }

    /// Removes files by id (and, through the log, from search).
    pub async fn delete_files(&self, connection_id: &str, file_ids: &[i64]) -> Result<u64> {
        let _writing = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for id in file_ids {
            removed += query("DELETE FROM files WHERE connection_id = ? AND id = ?")
                .bind(connection_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Disconnects: the connection and everything synced through it.
    pub async fn delete_connection(&self, connection_id: &str) -> Result<()> {
        let result = query("DELETE FROM connections WHERE id = ?")
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound(format!("connection {connection_id}")));
        }
        Ok(())
    }
}

/// Turns Confluence's permissions on or off inside a transaction (see
/// `Store::set_enforce_permissions`).
pub(crate) async fn enforce_in(tx: &mut Tx<'_>, connection_id: &str, enforce: bool) -> Result<()> {
    let result = query(
        "UPDATE connections SET enforce_permissions = ? WHERE id = ? AND enforce_permissions <> ?",
    )
    .bind(enforce)
    .bind(connection_id)
    .bind(enforce)
    .execute(&mut **tx)
    .await?;
    if result.rows_affected() > 0 && enforce {
        // What was stored while permissions were not enforced may be
        // stale (restrictions change without a new version, and were
        // not swept): unknown until the next sync reads them, so shown
        // to nobody meanwhile, never to everyone.
        query(
            "UPDATE files SET read_restriction = ?::jsonb WHERE connection_id = ? AND kind IN (?, ?)",
        )
        .bind(crate::search::UNKNOWN)
        .bind(connection_id)
        .bind(crate::kind::PAGE)
        .bind(crate::kind::BLOG_POST)
        .execute(&mut **tx)
        .await?;
        query("UPDATE spaces SET read_principals = NULL WHERE connection_id = ?")
            .bind(connection_id)
            .execute(&mut **tx)
            .await?;
    }
    if result.rows_affected() > 0 {
        query("INSERT INTO index_log (file_id, subtree) SELECT id, FALSE FROM files WHERE connection_id = ?")
            .bind(connection_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
