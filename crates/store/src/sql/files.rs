//! Files as the API lists them (`/user_files_v2`, and the deletes and
//! searches that find files by the same filters): the statements are
//! built once, as text with the backend's placeholders and their arguments
//! (`Statement`), and run through sqlx on PostgreSQL or on the embedded
//! store's read connections on SQLite (`crate::readers`), on the
//! request's own thread when the listing's cost is bounded.

use super::*;
use rusqlite::types::{ToSql, ToSqlOutput};

/// A listing's work is bounded, and it runs on the request's thread, when
/// no filter counts the files and the page ends within this many files of
/// the start (an index walk of at most this many entries per connection).
/// Anything else reads on a blocking thread.
const INLINE_DEPTH: i64 = 10_000;

/// One statement's text, with the backend's placeholders, and its
/// arguments.
#[derive(Default)]
struct Statement {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Int(i64),
    Text(String),
}

impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Int(i) => ToSqlOutput::from(*i),
            Arg::Text(s) => ToSqlOutput::from(s.as_str()),
        })
    }
}

impl Statement {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn int(&mut self, value: i64) -> &mut Self {
        self.bind(Arg::Int(value))
    }

    fn text(&mut self, value: &str) -> &mut Self {
        self.bind(Arg::Text(value.to_string()))
    }

    /// The argument's placeholder in the backend's own form (`$n` on
    /// PostgreSQL, `?` on SQLite), written as the text is built: no pass
    /// over the statement to translate it afterwards.
    fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        if PG {
            use std::fmt::Write;
            let _ = write!(self.text, "${}", self.args.len());
        } else {
            self.text.push('?');
        }
        self
    }

    /// `(?, ?, ...)` for `IN`; an empty list matches nothing (`IN ()` is
    /// SQLite's alone).
    fn ints(&mut self, values: &[i64]) -> &mut Self {
        self.list(values, |s, v| {
            s.int(*v);
        })
    }

    fn texts(&mut self, values: &[String]) -> &mut Self {
        self.list(values, |s, v| {
            s.text(v);
        })
    }

    fn list<T>(&mut self, values: &[T], mut each: impl FnMut(&mut Self, &T)) -> &mut Self {
        if values.is_empty() {
            return self.push("(NULL)");
        }
        self.push("(");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            each(self, value);
        }
        self.push(")")
    }

    /// The statement through sqlx.
    async fn fetch_all(&self, pool: &sqlx::Pool<Db>) -> Result<Vec<DbRow>> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::Int(i) => q.bind(*i),
                Arg::Text(s) => q.bind(s.as_str()),
            };
        }
        Ok(q.fetch_all(pool).await?)
    }

    /// The statement on a read connection: each row read in place by `row`.
    fn read<T>(
        &self,
        connection: &rusqlite::Connection,
        mut row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let mut statement = connection.prepare_cached(&self.text)?;
        let mut rows = statement.query(rusqlite::params_from_iter(self.args.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(row(r)?);
        }
        Ok(out)
    }
}

/// A customer's connection, as a listing reads it.
struct Chosen {
    id: String,
    file_count: i64,
    data_source_id: i64,
    chunk_size: i64,
    chunk_overlap: i64,
}

/// What a listed file's row holds: the columns of `files f`, by name, and
/// the expression for each, in the order `ListedRow` reads them; then
/// `pending`.
const FILE_COLUMNS: &[(&str, &str)] = &[
    ("id", "f.id"),
    ("connection_id", "f.connection_id"),
    ("kind", "f.kind"),
    ("external_id", "f.external_id"),
    ("url", "f.url"),
    ("status", "f.status"),
    ("error", "f.error"),
    ("title", "f.title"),
    ("parent_file_id", "f.parent_file_id"),
    ("tags", "f.tags"),
    ("version", "f.version"),
    ("media_type", "f.media_type"),
    ("size_bytes", "f.size_bytes"),
    ("created_at", "f.created_at"),
    ("updated_at", "f.updated_at"),
    ("characters", "CAST(COALESCE(f.characters, 0) AS BIGINT)"),
    ("chunk_count", "CAST(f.chunk_count AS BIGINT)"),
];

/// A listed file's row (`FILE_COLUMNS`, then `pending`).
struct ListedRow {
    id: i64,
    connection_id: String,
    kind: String,
    external_id: String,
    url: Option<String>,
    status: String,
    error: Option<String>,
    title: String,
    parent_file_id: Option<i64>,
    tags: serde_json::Value,
    version: i64,
    media_type: Option<String>,
    size_bytes: Option<i64>,
    created_at: Option<String>,
    updated_at: String,
    characters: i64,
    chunk_count: i64,
    /// The index has a change to the file it has not applied.
    pending: bool,
}

/// Tags as stored (a JSON object's text); a damaged value reads as none.
fn tags_of(text: Option<&str>) -> serde_json::Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()))
}

impl ListedRow {
    /// From sqlx (PostgreSQL), by column name.
    fn from_db(r: &DbRow) -> ListedRow {
        ListedRow {
            id: r.col("id"),
            connection_id: r.col("connection_id"),
            kind: r.col("kind"),
            external_id: r.col("external_id"),
            url: r.col("url"),
            status: r.col("status"),
            error: r.col("error"),
            title: r.col("title"),
            parent_file_id: r.col("parent_file_id"),
            tags: tags_of(r.col::<Option<&str>>("tags")),
            version: r.col("version"),
            media_type: r.col("media_type"),
            size_bytes: r.col("size_bytes"),
            created_at: r.col("created_at"),
            updated_at: r.col("updated_at"),
            characters: r.col("characters"),
            chunk_count: r.col("chunk_count"),
            pending: r.col::<i64>("pending") != 0,
        }
    }

    /// From a read connection (SQLite), by position, in place.
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<ListedRow> {
        Ok(ListedRow {
            id: r.get(0)?,
            connection_id: r.get(1)?,
            kind: r.get(2)?,
            external_id: r.get(3)?,
            url: r.get(4)?,
            status: r.get(5)?,
            error: r.get(6)?,
            title: r.get(7)?,
            parent_file_id: r.get(8)?,
            tags: tags_of(r.get_ref(9)?.as_str_or_null()?),
            version: r.get(10)?,
            media_type: r.get(11)?,
            size_bytes: r.get(12)?,
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
            characters: r.get(15)?,
            chunk_count: r.get(16)?,
            pending: r.get::<_, i64>(17)? != 0,
        })
    }
}

/// Whose files a statement reads: the customer's (through their
/// connections), or one connection's, already known to be theirs (no
/// join: a walk of the files' own index).
#[derive(Clone, Copy)]
enum Scope<'a> {
    Customer,
    Connection(&'a str),
}

/// One listing: the caller's query, with its filters made into SQL's
/// terms once.
struct Listing {
    organisation_id: String,
    end_user_id: String,
    query: FileQuery,
    /// Tag filters: a JSON path (SQLite) or key (PostgreSQL), and the
    /// values as JSON texts.
    tags: Vec<(String, Vec<String>)>,
    /// The name filter as a LIKE pattern.
    name: Option<String>,
}

impl Listing {
    fn new(organisation_id: &str, end_user_id: &str, query: &FileQuery) -> Listing {
        // Tag values are compared as JSON texts, so that a string, a number
        // and a boolean each match only their like; a stored list matches
        // any of its elements; keys are JSON paths built here, never taken
        // raw from the caller.
        let tags = query
            .tags
            .iter()
            .map(|(key, value)| {
                // SQLite reads a JSON path; PostgreSQL takes the key itself.
                let path = if PG {
                    key.clone()
                } else {
                    format!("$.\"{}\"", key.replace(['"', '\\'], ""))
                };
                let values = match value {
                    serde_json::Value::Array(items) => {
                        items.iter().map(ToString::to_string).collect()
                    }
                    other => vec![other.to_string()],
                };
                (path, values)
            })
            .collect();
        let name = query.name.as_deref().map(super::api::contains_pattern);
        Listing {
            organisation_id: organisation_id.to_string(),
            end_user_id: end_user_id.to_string(),
            query: query.clone(),
            tags,
            name,
        }
    }

    /// No filter on the files themselves: the count is the connections'
    /// own, and a page costs its depth in one index walk.
    fn unfiltered(&self) -> bool {
        let q = &self.query;
        q.ids.is_empty()
            && q.external_ids.is_empty()
            && q.statuses.is_empty()
            && q.parent_file_ids.is_empty()
            && self.name.is_none()
            && self.tags.is_empty()
    }

    /// Cheap enough to read on the request's thread.
    fn bounded(&self) -> bool {
        self.unfiltered() && self.query.offset.saturating_add(self.query.limit) <= INLINE_DEPTH
    }

    /// The customer's connections (their data sources, with how many files
    /// each holds, kept by the store's triggers).
    fn connections(&self) -> Statement {
        let mut s = Statement::default();
        s.push(
            "SELECT id, file_count, data_source_id, chunk_size, chunk_overlap \
             FROM connections WHERE organisation_id = ",
        )
        .text(&self.organisation_id)
        .push(" AND end_user_id = ")
        .text(&self.end_user_id);
        if !self.query.data_source_ids.is_empty() {
            s.push(" AND data_source_id IN ")
                .ints(&self.query.data_source_ids);
        }
        s.push(" ORDER BY id");
        s
    }

    fn filtered(&self, s: &mut Statement, select: &str, scope: Scope<'_>) {
        let query = &self.query;
        s.push(select).push(" FROM files f ");
        match scope {
            Scope::Customer => {
                s.push("JOIN connections c ON c.id = f.connection_id WHERE c.organisation_id = ")
                    .text(&self.organisation_id)
                    .push(" AND c.end_user_id = ")
                    .text(&self.end_user_id);
                if !query.data_source_ids.is_empty() {
                    s.push(" AND c.data_source_id IN ")
                        .ints(&query.data_source_ids);
                }
            }
            // The connection was chosen by the data source filter.
            Scope::Connection(connection_id) => {
                s.push("WHERE f.connection_id = ").text(connection_id);
            }
        }
        if !query.ids.is_empty() {
            s.push(" AND f.id IN ").ints(&query.ids);
        }
        if !query.external_ids.is_empty() {
            s.push(" AND f.external_id IN ").texts(&query.external_ids);
        }
        if !query.statuses.is_empty() {
            s.push(" AND f.status IN ").texts(&query.statuses);
        }
        if !query.parent_file_ids.is_empty() {
            s.push(" AND f.parent_file_id IN ")
                .ints(&query.parent_file_ids);
        }
        if let Some(name) = &self.name {
            s.push(" AND LOWER(f.title) LIKE LOWER(")
                .text(name)
                .push(") ESCAPE '\\'");
        }
        for (key, values) in &self.tags {
            // The stored value, or any element of a stored list (as the
            // index matches them), as JSON text.
            if PG {
                s.push(" AND f.tags -> ")
                    .text(key)
                    .push(" IS NOT NULL AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof(f.tags -> ")
                    .text(key)
                    .push(") WHEN 'array' THEN f.tags -> ")
                    .text(key)
                    .push(" ELSE jsonb_build_array(f.tags -> ")
                    .text(key)
                    .push(") END) j(v) WHERE j.v::text IN ");
            } else {
                s.push(" AND EXISTS (SELECT 1 FROM json_each(f.tags, ")
                    .text(key)
                    .push(
                        ") j WHERE (CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                         WHEN 'null' THEN 'null' WHEN 'text' THEN json_quote(j.value) \
                         ELSE CAST(j.value AS TEXT) END) IN ",
                    );
            }
            s.texts(values).push(")");
        }
    }

    /// How many files the filters match, when a filter is given (else the
    /// connections' counts are summed: the same cost at 1,000 files and at
    /// 1,000,000).
    fn count(&self) -> Option<Statement> {
        if self.unfiltered() {
            return None;
        }
        let mut s = Statement::default();
        self.filtered(&mut s, "SELECT COUNT(*)", Scope::Customer);
        Some(s)
    }

    /// The page's files: their ids from each connection's first offset +
    /// limit files in order (for the date orders a walk of an index on the
    /// connection and the date, not a sort of all its files), merged, the
    /// innermost part of a statement that reads those files' rows (their
    /// parent and chunk count are kept on them) and what the index has not
    /// applied, for the page alone. Joined before the limit, the database
    /// computed every file's row before sorting.
    fn page(&self, connections: &[Chosen]) -> Statement {
        let query = &self.query;
        let column = match query.order_by {
            FileOrder::CreatedAt => "f.created_at",
            FileOrder::UpdatedAt => "f.updated_at",
            FileOrder::Name => "f.title",
            FileOrder::FileSize => "f.size_bytes",
            FileOrder::Id => "f.id",
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let order = format!("{column} {direction}, f.id ASC");
        let depth = query.offset.saturating_add(query.limit);
        let mut s = Statement::default();
        s.push("SELECT ");
        for (name, expr) in FILE_COLUMNS {
            s.push(expr).push(" AS ").push(name).push(", ");
        }
        // Whether the index has yet to apply a change to the file: the
        // log's unapplied tail, read once for the page (a subquery without
        // correlation), in the page's own statement and snapshot.
        match query.pending_after {
            Some(after) => {
                s.push("CAST(CASE WHEN f.id IN (SELECT file_id FROM index_log WHERE ");
                if PG {
                    s.push("(tx, seq) > (")
                        .int(after.tx)
                        .push(", ")
                        .int(after.seq)
                        .push(")");
                } else {
                    s.push("seq > ").int(after.seq);
                }
                s.push(") THEN 1 ELSE 0 END AS BIGINT)");
            }
            None => {
                s.push("CAST(0 AS BIGINT)");
            }
        }
        s.push(" AS pending FROM (");
        if let [connection] = connections {
            self.filtered(
                &mut s,
                "SELECT f.id AS id",
                Scope::Connection(&connection.id),
            );
            s.push(&format!(" ORDER BY {order} LIMIT "))
                .int(query.limit)
                .push(" OFFSET ")
                .int(query.offset);
        } else {
            s.push("SELECT id FROM (");
            for (i, connection) in connections.iter().enumerate() {
                if i > 0 {
                    s.push(" UNION ALL ");
                }
                s.push("SELECT * FROM (");
                self.filtered(
                    &mut s,
                    &format!("SELECT f.id AS id, {column} AS k"),
                    Scope::Connection(&connection.id),
                );
                s.push(&format!(" ORDER BY {order} LIMIT "))
                    .int(depth)
                    .push(&format!(") AS s{i}"));
            }
            s.push(&format!(") AS u ORDER BY k {direction}, id ASC LIMIT "))
                .int(query.limit)
                .push(" OFFSET ")
                .int(query.offset);
        }
        s.push(") AS page JOIN files f ON f.id = page.id ORDER BY ")
            .push(&order);
        s
    }

    /// The page's rows as the API's files. The statement keeps to these
    /// connections; a row from any other is never another customer's file
    /// in this answer.
    fn files(rows: Vec<ListedRow>, connections: &[Chosen]) -> Vec<ApiFile> {
        rows.into_iter()
            .filter_map(|row| {
                let connection = connections.iter().find(|c| c.id == row.connection_id)?;
                Some(ApiFile {
                    id: row.id,
                    data_source_id: connection.data_source_id,
                    kind: row.kind,
                    external_id: row.external_id,
                    url: row.url,
                    status: row.status,
                    error: row.error,
                    title: row.title,
                    parent_file_id: row.parent_file_id,
                    tags: row.tags,
                    version: row.version,
                    media_type: row.media_type,
                    size_bytes: row.size_bytes,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                    chunk_size: connection.chunk_size,
                    chunk_overlap: connection.chunk_overlap,
                    characters: row.characters,
                    chunks: row.chunk_count,
                    pending_index: row.pending,
                })
            })
            .collect()
    }

    /// The whole listing on a read connection, in one read transaction:
    /// the count and the page from one snapshot.
    fn read(&self, connection: &rusqlite::Connection) -> rusqlite::Result<(Vec<ApiFile>, i64)> {
        let snapshot = connection.unchecked_transaction()?;
        let connections = self.connections().read(&snapshot, |r| {
            Ok(Chosen {
                id: r.get(0)?,
                file_count: r.get(1)?,
                data_source_id: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                chunk_size: r.get(3)?,
                chunk_overlap: r.get(4)?,
            })
        })?;
        if connections.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let count = match self.count() {
            None => connections.iter().map(|c| c.file_count).sum(),
            Some(count) => count
                .read(&snapshot, |r| r.get::<_, i64>(0))?
                .first()
                .copied()
                .unwrap_or(0),
        };
        let rows = self
            .page(&connections)
            .read(&snapshot, ListedRow::from_sqlite)?;
        snapshot.finish()?;
        Ok((Listing::files(rows, &connections), count))
    }
}

impl Store {
    pub async fn api_files(
        &self,
        organisation_id: &str,
        end_user_id: &str,
        query: &FileQuery,
    ) -> Result<(Vec<ApiFile>, i64)> {
        let listing = Listing::new(organisation_id, end_user_id, query);
        if let Some(readers) = &self.readers {
            if listing.bounded() {
                return readers.read(|c| listing.read(c));
            }
            return readers.read_apart(move |c| listing.read(c)).await;
        }
        let connections: Vec<Chosen> = listing
            .connections()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Chosen {
                id: r.col("id"),
                file_count: r.col("file_count"),
                data_source_id: r.col::<Option<i64>>("data_source_id").unwrap_or(0),
                chunk_size: r.col("chunk_size"),
                chunk_overlap: r.col("chunk_overlap"),
            })
            .collect();
        if connections.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let count = match listing.count() {
            None => connections.iter().map(|c| c.file_count).sum(),
            Some(count) => count
                .fetch_all(&self.pool)
                .await?
                .first()
                .map(|r| sqlx::Row::get::<i64, _>(r, 0))
                .unwrap_or(0),
        };
        let rows = listing.page(&connections).fetch_all(&self.pool).await?;
        let rows = rows.iter().map(ListedRow::from_db).collect();
        Ok((Listing::files(rows, &connections), count))
    }
}
