//! confsync's search: a tantivy index over the store's chunks, searched as
//! a viewer, with keyword (BM25, phrases) and, when an embedding provider
//! is configured, vector and hybrid ranking.
//!
//! The store is the source of truth. The index follows the store's index
//! log (written by triggers in the same transactions as the changes) and
//! records in each commit the last log sequence number it applied; at
//! start-up, or whenever told that the store committed, it applies what
//! came after. An index that is missing, unreadable, of another schema or
//! ahead of its store is rebuilt from the store.
//!
//! Every search is filtered inside the index query: by organisation (and
//! customer), by the spaces the viewer may read (decided from the store
//! at query time) and by the read restrictions indexed with each chunk.
//! Nothing is filtered after a top-k. See `acl` for the rules.
//!
//! It knows nothing of Confluence's wire format or of HTTP serving.

#![forbid(unsafe_code)]

pub mod acl;
mod admit;
pub mod embed;
mod follow;
mod grams;
mod stem;
mod vectors;

pub use acl::Viewer;
pub use embed::{Embedder, OpenAiConfig, OpenAiEmbedder};
pub use follow::{Follower, Nudge};

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::{Audiences, IndexSource, IndexableFile, LogPosition};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    BytesOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
    Value, STORED, STRING,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
    TokenizerManager,
};
use tantivy::{
    doc, DocAddress, Index as TantivyIndex, IndexReader, IndexWriter, ReloadPolicy,
    TantivyDocument, Term,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("store: {0}")]
    Store(#[from] store::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Embed(#[from] embed::EmbedError),
    #[error("invalid search: {0}")]
    Invalid(String),
    #[error("the index is open for writing in another process")]
    ReadOnly,
}

pub type Result<T> = std::result::Result<T, Error>;

/// Bumped whenever the schema or the way documents are built changes: an
/// index of another version is rebuilt.
/// 4: the scope key carries whether the chunk was indexed with its
/// connection's Confluence permissions enforced.
const SCHEMA_VERSION: u32 = 5;
const TOKENIZER: &str = "confsync";
/// Log entries applied per index commit.
const BATCH: i64 = 2_000;
/// How long a catch-up goes between commits while changes keep coming.
const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Memory for the indexing threads (tantivy's arena, split between them).
const WRITER_ARENA: usize = 96_000_000;
/// How often a replica prunes the log (below every live replica's cursor).
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// How often a replica says where it is even when it has not moved: a
/// replica silent for `LIVE` no longer holds back the log's pruning.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);
pub const LIVE: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Clone, Copy)]
struct Fields {
    file_id: Field,
    chunk: Field,
    organisation: Field,
    customer: Field,
    scope: Field,
    org_key: Field,
    customer_key: Field,
    scope_key: Field,
    connection: Field,
    space: Field,
    kind: Field,
    external_id: Field,
    labels: Field,
    tags: Field,
    acl: Field,
    /// The page's title, indexed on its first chunk only: a title match
    /// ranks that chunk, not every chunk of the page alike.
    title: Field,
    /// The title as shown, on every chunk.
    title_shown: Field,
    text: Field,
    heading: Field,
    url: Field,
    vector: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        file_id: builder.add_u64_field(
            "file_id",
            NumericOptions::default()
                .set_indexed()
                .set_fast()
                .set_stored(),
        ),
        chunk: builder.add_u64_field("chunk", NumericOptions::default().set_stored()),
        organisation: builder.add_text_field("organisation", STRING),
        customer: builder.add_text_field("customer", STRING),
        scope: builder.add_text_field("scope", STRING),
        org_key: builder.add_u64_field(admit::ORG_FIELD, NumericOptions::default().set_fast()),
        customer_key: builder
            .add_u64_field(admit::CUSTOMER_FIELD, NumericOptions::default().set_fast()),
        scope_key: builder.add_u64_field(admit::SCOPE_FIELD, NumericOptions::default().set_fast()),
        connection: builder.add_text_field("connection", STRING | STORED),
        space: builder.add_text_field("space", STRING | STORED),
        kind: builder.add_text_field("kind", STRING | STORED),
        external_id: builder.add_text_field("external_id", STRING | STORED),
        labels: builder.add_text_field("labels", STRING | STORED),
        tags: builder.add_text_field("tags", STRING),
        acl: builder.add_text_field("acl", STRING),
        title: builder.add_text_field(
            "title",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
        ),
        title_shown: builder.add_text_field("title_shown", STORED),
        text: builder.add_text_field("text", text),
        heading: builder.add_text_field("heading", STORED),
        url: builder.add_text_field("url", STORED),
        vector: builder.add_bytes_field(vectors::FIELD, BytesOptions::default().set_fast()),
    };
    (builder.build(), fields)
}

/// The analyzer chunks are indexed with.
fn analyzer() -> TextAnalyzer {
    analyzer_with(grams::CommonGrams)
}

/// The analyzer queries are parsed with: the same, except that words a
/// common gram covers give way to the gram.
fn query_analyzer() -> TextAnalyzer {
    analyzer_with(grams::CommonGramsQuery)
}

fn analyzer_with<G: tantivy::tokenizer::TokenFilter>(grams: G) -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(grams)
        .filter(stem::MemoStemmer)
        .build()
}

/// What an index commit records: how far into the store's log it is.
#[derive(Serialize, Deserialize)]
struct Payload {
    schema: u32,
    seq: i64,
    /// The transaction part of the log position (0 on SQLite, and in
    /// indexes written before positions had one).
    #[serde(default)]
    tx: i64,
}

/// The terms of a scope: connection and space.
fn scope_term(connection_id: &str, space_id: &str) -> String {
    format!("{connection_id}/{space_id}")
}

/// The admission key of a scope, which also says whether the chunk was
/// indexed with Confluence's permissions enforced (restriction tokens
/// written). A search reaches only chunks indexed the way their connection
/// is now: when enforcement is switched on, chunks indexed without it are
/// shown to nobody until they are indexed again, instead of to everyone.
fn scope_key(connection_id: &str, space_id: &str, enforced: bool) -> u64 {
    let mode = if enforced { "enforced" } else { "open" };
    admit::key(&format!("{}/{mode}", scope_term(connection_id, space_id)))
}

/// A tag as indexed and filtered: `key=value` (strings bare, other JSON
/// values as JSON; one term per element of an array).
fn tag_terms(key: &str, value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Array(items) => items.iter().flat_map(|v| tag_terms(key, v)).collect(),
        serde_json::Value::String(s) => vec![format!("{key}={s}")],
        other => vec![format!("{key}={other}")],
    }
}

/// How far a catch-up got.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CatchUp {
    pub changes: u64,
    pub files: u64,
    pub chunks: u64,
    pub embedded: u64,
    pub embed_failures: u64,
    pub position: LogPosition,
    pub rebuilt: bool,
}

/// Filters a search may add; every one narrows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default)]
    pub connection_ids: Vec<String>,
    #[serde(default)]
    pub space_keys: Vec<String>,
    #[serde(default)]
    pub file_ids: Vec<i64>,
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Chunks of files with at least one of these labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Chunks of files with every one of these tags (a list value: any
    /// of its elements).
    #[serde(default)]
    pub tags: BTreeMap<String, serde_json::Value>,
}

/// Carbon's hybrid weights: `weight_a` semantic, `weight_b` keyword,
/// summing to 1 (within 0.001).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct HybridWeights {
    pub weight_a: f32,
    pub weight_b: f32,
}

impl Default for HybridWeights {
    fn default() -> Self {
        HybridWeights {
            weight_a: 0.5,
            weight_b: 0.5,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    pub organisation_id: String,
    /// One customer's data only (Carbon's `customer-id`).
    pub customer_id: Option<String>,
    pub viewer: Viewer,
    pub query: String,
    /// A vector for the query, instead of embedding its text.
    pub query_vector: Option<Vec<f32>>,
    pub k: usize,
    pub filters: Filters,
    /// Keyword and vector ranking fused with these weights (needs an
    /// embedder or a query vector).
    pub hybrid: Option<HybridWeights>,
    pub include_vectors: bool,
    /// At most this many chunks of one file (the best ones): `Some(1)`
    /// returns k files, not k chunks of one long page. `None`: no cap
    /// (Carbon's `/embeddings`).
    pub per_file: Option<usize>,
}

/// The spaces of an organisation (one customer's only, when given) that
/// `viewer` may read: what a search and a readability check admit from.
pub async fn readable_scopes(
    store: &impl Audiences,
    organisation_id: &str,
    customer_id: Option<&str>,
    viewer: &Viewer,
) -> Result<Vec<store::ScopeRow>> {
    let segments = store.segments(organisation_id).await?;
    Ok(store
        .scopes(organisation_id, customer_id)
        .await?
        .into_iter()
        .filter(|s| viewer.may_read_space(s, &segments))
        .collect())
}

/// The most candidates a capped search ranks before it settles for fewer
/// than k results.
const MAX_CANDIDATES: usize = 20_000;

/// The ranking with at most `cap` chunks of each file, in order, `k` at most.
fn cap_per_file(
    searcher: &tantivy::Searcher,
    ranked: Vec<(f32, DocAddress)>,
    cap: usize,
    k: usize,
) -> Result<Vec<(f32, DocAddress)>> {
    let mut columns = HashMap::new();
    let mut taken: HashMap<u64, usize> = HashMap::new();
    let mut out = Vec::with_capacity(k);
    for (score, address) in ranked {
        let column = match columns.entry(address.segment_ord) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                searcher
                    .segment_reader(address.segment_ord)
                    .fast_fields()
                    .u64("file_id")?,
            ),
        };
        let file = column.first(address.doc_id).unwrap_or(u64::MAX);
        let count = taken.entry(file).or_default();
        if *count < cap {
            *count += 1;
            out.push((score, address));
            if out.len() == k {
                break;
            }
        }
    }
    Ok(out)
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Hit {
    pub file_id: i64,
    pub chunk_index: i64,
    pub connection_id: String,
    pub space_key: String,
    pub kind: String,
    pub external_id: String,
    pub title: String,
    pub url: Option<String>,
    pub heading_path: Vec<String>,
    pub labels: Vec<String>,
    pub content: String,
    /// The best passage, HTML-escaped, matches in `<mark>`.
    pub snippet: String,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

pub struct Index {
    index: TantivyIndex,
    reader: IndexReader,
    fields: Fields,
    /// `None` when another process holds the writer: this one searches.
    writer: tokio::sync::Mutex<Option<IndexWriter>>,
    vectors: Arc<vectors::VectorCache>,
    embedder: Option<Arc<dyn Embedder>>,
    path: PathBuf,
    query_tokenizers: TokenizerManager,
    /// This replica's name in the store's cursors (kept in the index's
    /// directory, so a node that restarts is the same replica).
    node_id: String,
    /// When this replica last pruned the log, and last told the store
    /// where it is (and where that was).
    pruned_at: std::sync::Mutex<Option<std::time::Instant>>,
    reported: std::sync::Mutex<Option<(std::time::Instant, LogPosition)>>,
    /// The log position searches see (the last commit this process made
    /// or found): changes after it are not searchable yet.
    applied: std::sync::Mutex<LogPosition>,
}

impl Index {
    /// Opens the index under `dir`, creating it if there is none, and
    /// brings it up to date with the store (rebuilding it if it cannot be
    /// read, is of another schema, or is ahead of the store).
    pub async fn open(
        dir: &Path,
        store: &impl IndexSource,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Result<Index> {
        let index = Self::open_only(dir, embedder)?;
        index.catch_up(store).await?;
        Ok(index)
    }

    /// Opens without catching up (for searching while another process,
    /// the one holding the writer, keeps it up to date).
    /// Whether queries can be embedded (hybrid search without a vector).
    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    pub fn open_only(dir: &Path, embedder: Option<Arc<dyn Embedder>>) -> Result<Index> {
        std::fs::create_dir_all(dir)?;
        let node_id = node_id(dir)?;
        let (schema, fields) = schema();
        let index = match Self::open_existing(dir, &schema) {
            Some(index) => index,
            None => {
                // Nothing usable: start empty; the payload-less commit
                // makes the next catch-up rebuild from the store.
                if dir.join("meta.json").exists() {
                    tracing::warn!(dir = %dir.display(), "index unreadable or of another schema; rebuilding");
                    std::fs::remove_dir_all(dir)?;
                    std::fs::create_dir_all(dir)?;
                    std::fs::write(dir.join(NODE_ID_FILE), &node_id)?;
                }
                TantivyIndex::create_in_dir(dir, schema)?
            }
        };
        index.tokenizers().register(TOKENIZER, analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        let writer = match index.writer_with_num_threads::<TantivyDocument>(2, WRITER_ARENA) {
            Ok(writer) => Some(writer),
            Err(tantivy::TantivyError::LockFailure(..)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Index {
            index,
            reader,
            fields,
            writer: tokio::sync::Mutex::new(writer),
            vectors: Arc::default(),
            embedder,
            path: dir.to_path_buf(),
            node_id,
            pruned_at: Default::default(),
            reported: Default::default(),
            applied: Default::default(),
            query_tokenizers: {
                let manager = TokenizerManager::default();
                manager.register(TOKENIZER, query_analyzer());
                manager
            },
        })
    }

    fn open_existing(dir: &Path, schema: &Schema) -> Option<TantivyIndex> {
        if !dir.join("meta.json").exists() {
            return None;
        }
        let index = TantivyIndex::open_in_dir(dir).ok()?;
        if index.schema() != *schema {
            return None;
        }
        Some(index)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_writable(&self) -> bool {
        self.writer.try_lock().map(|w| w.is_some()).unwrap_or(true)
    }

    /// The log position the last commit applied; `None` when the index
    /// has no usable payload (new, or of another schema).
    fn committed_position(&self) -> Result<Option<LogPosition>> {
        let metas = self.index.load_metas()?;
        Ok(metas
            .payload
            .and_then(|p| serde_json::from_str::<Payload>(&p).ok())
            .filter(|p| p.schema == SCHEMA_VERSION)
            .map(|p| LogPosition {
                tx: p.tx,
                seq: p.seq,
            }))
    }

    /// The store's log position that searches reflect: a file with a log
    /// entry after it has changes not yet searchable.
    pub fn applied_position(&self) -> LogPosition {
        *self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This replica's name among the store's index cursors.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Chunks indexed (live documents).
    pub fn num_chunks(&self) -> u64 {
        self.reader.reload().ok();
        self.reader.searcher().num_docs()
    }

    /// Applies the store's log after the last committed sequence number.
    /// Returns what it did; an index open read-only does nothing.
    pub async fn catch_up(&self, store: &impl IndexSource) -> Result<CatchUp> {
        let mut guard = self.writer.lock().await;
        let Some(writer) = guard.as_mut() else {
            return Ok(CatchUp::default());
        };
        let mut report = CatchUp::default();
        let head = store.index_head().await?;
        let floor = store.index_floor().await?;
        let mut position = match self.committed_position()? {
            Some(position) if position <= head && position >= floor => position,
            // New, another schema, ahead of the store (a store restored
            // from a backup), or behind what the log still holds (this
            // replica was away while the others pruned it): rebuild.
            _ => {
                self.rebuild_locked(writer, store, head, &mut report)
                    .await?;
                head
            }
        };
        {
            let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
            *applied = (*applied).max(position);
        }
        let mut last_commit = std::time::Instant::now();
        let mut pending = false;
        loop {
            let changes = store.index_changes(position, BATCH).await?;
            let Some(last) = changes.last() else {
                break;
            };
            let last_position = last.position;
            let mut ids: Vec<i64> = Vec::new();
            let mut seen = HashSet::new();
            for change in &changes {
                if seen.insert(change.file_id) {
                    ids.push(change.file_id);
                }
            }
            // Whose readers changed with these: the subtrees, in one query.
            let roots: Vec<i64> = changes
                .iter()
                .filter(|c| c.subtree)
                .map(|c| c.file_id)
                .collect();
            if !roots.is_empty() {
                for id in store.subtree(&roots).await? {
                    if seen.insert(id) {
                        ids.push(id);
                    }
                }
            }
            report.changes += changes.len() as u64;
            self.reindex(writer, store, &ids, &mut report).await?;
            position = last_position;
            pending = true;
            // A commit waits for the indexing threads to drain and writes
            // new segments: at most one every COMMIT_EVERY while a sync
            // keeps writing (changes become searchable within it), so
            // that the threads index while the next batch is read.
            if last_commit.elapsed() >= COMMIT_EVERY {
                self.commit(writer, position)?;
                last_commit = std::time::Instant::now();
                pending = false;
            }
        }
        if pending {
            self.commit(writer, position)?;
        }
        report.position = position;
        drop(guard);
        // Where this replica is, when it moved (and now and then when it
        // did not: a heartbeat); pruning below every live replica's
        // cursor now and then, not on every catch-up, so as not to contend
        // with a sync's writes.
        let now = std::time::Instant::now();
        let report_due = match *self.reported.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((at, reported)) => reported != position || now - at >= HEARTBEAT,
            None => true,
        };
        if report_due {
            store.set_index_cursor(&self.node_id, position).await?;
            *self.reported.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, position));
        }
        let prune_due = report.rebuilt
            || match *self.pruned_at.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(at) => now - at >= PRUNE_INTERVAL,
                None => true,
            };
        if prune_due {
            store.prune_index_log(LIVE).await?;
            *self.pruned_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        }
        Ok(report)
    }

    /// Prunes the store's log now, below every live replica's cursor
    /// (catch-ups do it only now and then).
    pub async fn prune(&self, store: &impl IndexSource) -> Result<LogPosition> {
        let floor = store.prune_index_log(LIVE).await?;
        *self.pruned_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        Ok(floor)
    }

    /// Waits for the background merges to finish (and reopens the writer):
    /// for a clean shutdown, and for measurements that should not share
    /// the cores with merging.
    pub async fn settle(&self) -> Result<()> {
        let mut guard = self.writer.lock().await;
        if let Some(writer) = guard.take() {
            tokio::task::spawn_blocking(move || writer.wait_merging_threads())
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??;
            *guard = Some(self.index.writer_with_num_threads(2, WRITER_ARENA)?);
        }
        self.reader.reload()?;
        Ok(())
    }

    /// Throws the index away and builds it again from the store.
    pub async fn rebuild(&self, store: &impl IndexSource) -> Result<CatchUp> {
        let mut guard = self.writer.lock().await;
        let Some(writer) = guard.as_mut() else {
            return Err(Error::ReadOnly);
        };
        let mut report = CatchUp::default();
        let head = store.index_head().await?;
        self.rebuild_locked(writer, store, head, &mut report)
            .await?;
        drop(guard);
        // What was logged during the rebuild.
        let more = self.catch_up(store).await?;
        report.changes += more.changes;
        report.files += more.files;
        report.chunks += more.chunks;
        report.position = more.position;
        Ok(report)
    }

    async fn rebuild_locked(
        &self,
        writer: &mut IndexWriter,
        store: &impl IndexSource,
        head: LogPosition,
        report: &mut CatchUp,
    ) -> Result<()> {
        report.rebuilt = true;
        writer.delete_all_documents()?;
        let mut after = 0;
        loop {
            let ids = store.file_ids(after, 1_000).await?;
            let Some(&last) = ids.last() else {
                break;
            };
            self.add_files(writer, store, &ids, report).await?;
            after = last;
        }
        // Everything up to `head` is in: the log before it is not needed.
        self.commit(writer, head)?;
        Ok(())
    }

    fn commit(&self, writer: &mut IndexWriter, position: LogPosition) -> Result<()> {
        let payload = serde_json::to_string(&Payload {
            schema: SCHEMA_VERSION,
            seq: position.seq,
            tx: position.tx,
        })
        .unwrap_or_default();
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        *self.applied.lock().unwrap_or_else(|e| e.into_inner()) = position;
        Ok(())
    }

    async fn reindex(
        &self,
        writer: &mut IndexWriter,
        store: &impl IndexSource,
        ids: &[i64],
        report: &mut CatchUp,
    ) -> Result<()> {
        for id in ids {
            writer.delete_term(Term::from_field_u64(self.fields.file_id, *id as u64));
        }
        self.add_files(writer, store, ids, report).await
    }

    async fn add_files(
        &self,
        writer: &mut IndexWriter,
        store: &impl IndexSource,
        ids: &[i64],
        report: &mut CatchUp,
    ) -> Result<()> {
        for batch in ids.chunks(500) {
            let mut files = store.indexable(batch).await?;
            self.embed_missing(store, &mut files, report).await?;
            for file in &files {
                report.files += 1;
                for document in self.documents(file) {
                    writer.add_document(document)?;
                    report.chunks += 1;
                }
            }
        }
        Ok(())
    }

    /// Computes and stores the vectors that chunks lack. A provider that
    /// fails leaves them without (keyword search still finds them); the
    /// next change to the file, or a rebuild, tries again.
    async fn embed_missing(
        &self,
        store: &impl IndexSource,
        files: &mut [IndexableFile],
        report: &mut CatchUp,
    ) -> Result<()> {
        let Some(embedder) = &self.embedder else {
            return Ok(());
        };
        let mut wanted: Vec<(usize, usize)> = Vec::new();
        for (f, file) in files.iter().enumerate() {
            for (c, chunk) in file.chunks.iter().enumerate() {
                if chunk.vector.is_none() {
                    wanted.push((f, c));
                }
            }
        }
        for group in wanted.chunks(embedder.batch_size().max(1)) {
            let texts: Vec<String> = group
                .iter()
                .map(|&(f, c)| embed_text(&files[f], &files[f].chunks[c]))
                .collect();
            match embedder.embed(&texts).await {
                Ok(vectors) => {
                    let mut rows = Vec::with_capacity(group.len());
                    for (&(f, c), vector) in group.iter().zip(vectors) {
                        rows.push((files[f].file_id, files[f].chunks[c].idx, vector.clone()));
                        files[f].chunks[c].vector = Some(vector);
                    }
                    store.set_vectors(&rows).await?;
                    report.embedded += group.len() as u64;
                }
                Err(error) => {
                    tracing::warn!(%error, "embedding failed; chunks indexed without vectors");
                    report.embed_failures += group.len() as u64;
                }
            }
        }
        Ok(())
    }

    fn documents(&self, file: &IndexableFile) -> Vec<TantivyDocument> {
        let f = self.fields;
        let space = file.space_id.clone().unwrap_or_default();
        let acl = acl::tokens(file.enforce_permissions, &file.restrictions);
        let tags: Vec<String> = file
            .tags
            .iter()
            .flat_map(|(k, v)| tag_terms(k, v))
            .collect();
        file.chunks
            .iter()
            .map(|chunk| {
                let mut document = doc!(
                    f.file_id => file.file_id as u64,
                    f.chunk => chunk.idx as u64,
                    f.organisation => file.organisation_id.as_str(),
                    f.customer => file.customer_id.as_deref().unwrap_or(""),
                    f.scope => scope_term(&file.connection_id, &space),
                    f.org_key => admit::key(&file.organisation_id),
                    f.customer_key => admit::key(file.customer_id.as_deref().unwrap_or("")),
                    f.scope_key => scope_key(&file.connection_id, &space, file.enforce_permissions),
                    f.connection => file.connection_id.as_str(),
                    f.space => space.as_str(),
                    f.kind => file.kind.as_str(),
                    f.external_id => file.external_id.as_str(),
                    f.title_shown => file.title.as_str(),
                    f.text => chunk.text.as_str(),
                    f.heading => chunk.heading_path.join("\u{1f}"),
                );
                if chunk.idx == 0 {
                    document.add_text(f.title, &file.title);
                }
                if let Some(url) = &file.url {
                    document.add_text(f.url, url);
                }
                for label in &file.labels {
                    document.add_text(f.labels, label);
                }
                for tag in &tags {
                    document.add_text(f.tags, tag);
                }
                for token in &acl {
                    document.add_text(f.acl, token);
                }
                if let Some(vector) = &chunk.vector {
                    document.add_bytes(f.vector, &store::vector_to_bytes(vector));
                }
                document
            })
            .collect()
    }

    /// Searches as `request.viewer`: only chunks that viewer may read, of
    /// the organisation (and customer) asked for, can come back.
    pub async fn search(
        &self,
        store: &impl Audiences,
        request: &SearchRequest,
    ) -> Result<Vec<Hit>> {
        if request.k == 0 || request.k > 1_000 {
            return Err(Error::Invalid(format!("k is 1 to 1000, not {}", request.k)));
        }
        if let Some(w) = request.hybrid {
            if !(w.weight_a >= 0.0
                && w.weight_b >= 0.0
                && (w.weight_a + w.weight_b - 1.0).abs() <= 0.001)
            {
                return Err(Error::Invalid(
                    "hybrid weights weight_a and weight_b must be >= 0 and sum to 1".into(),
                ));
            }
        }
        let scopes = readable_scopes(
            store,
            &request.organisation_id,
            request.customer_id.as_deref(),
            &request.viewer,
        )
        .await?;
        let mut space_keys: HashMap<String, String> = HashMap::new();
        let allowed: HashSet<u64> = scopes
            .iter()
            .filter(|s| {
                request.filters.connection_ids.is_empty()
                    || request.filters.connection_ids.contains(&s.connection_id)
            })
            .filter(|s| {
                request.filters.space_keys.is_empty()
                    || request.filters.space_keys.contains(&s.space_key)
            })
            .map(|s| {
                let term = scope_term(&s.connection_id, &s.space_id);
                space_keys.insert(term.clone(), s.space_key.clone());
                scope_key(&s.connection_id, &s.space_id, s.enforce_permissions)
            })
            .collect();
        if allowed.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let admission = Arc::new(admit::Admission::new(
            &searcher,
            &request.organisation_id,
            request.customer_id.as_deref(),
            allowed,
            self.exclusions(&searcher, &request.viewer)?,
        )?);
        let filters = self.caller_filters(&request.filters);
        let text_query = self.text_query(&request.query);
        let wants_vector = request.hybrid.is_some()
            || (request.query.trim().is_empty() && request.query_vector.is_some());
        let query_vector = if wants_vector {
            Some(self.query_vector(request).await?)
        } else {
            None
        };
        let with_filters = |query: Box<dyn Query>| -> Box<dyn Query> {
            match &filters {
                None => query,
                Some(filters) => Box::new(BooleanQuery::new(vec![
                    (Occur::Must, query),
                    (Occur::Must, filters.box_clone()),
                ])),
            }
        };
        // With a cap of chunks per file, more candidates are ranked than
        // are returned, and more again while the cap leaves fewer than k.
        let per_file = request.per_file.filter(|n| *n > 0 && *n < request.k);
        let mut limit = match per_file {
            Some(_) => request.k * 8,
            None => request.k,
        };
        let ranked = loop {
            let candidates = if request.hybrid.is_some() {
                limit * 4
            } else {
                limit
            };
            let keyword: Vec<(f32, DocAddress)> = match &text_query {
                Some(text) => searcher.search(
                    &*with_filters(text.box_clone()),
                    &admit::TopAdmitted {
                        limit: candidates,
                        admission: admission.clone(),
                    },
                )?,
                None => Vec::new(),
            };
            let nearest: Vec<(f32, DocAddress)> = match &query_vector {
                Some(vector) => {
                    let found = searcher.search(
                        &*with_filters(Box::new(AllQuery)),
                        &vectors::Nearest {
                            query: Arc::new(vector.clone()),
                            limit: candidates,
                            cache: self.vectors.clone(),
                            admission: admission.clone(),
                        },
                    )?;
                    let live: HashSet<_> = searcher
                        .segment_readers()
                        .iter()
                        .map(|r| r.segment_id())
                        .collect();
                    self.vectors.retain(&live);
                    found
                }
                None => Vec::new(),
            };
            let exhausted = keyword.len() < candidates && nearest.len() < candidates;
            let ranked: Vec<(f32, DocAddress)> = match request.hybrid {
                Some(weights) if query_vector.is_some() => fuse(&keyword, &nearest, weights, limit),
                _ if !keyword.is_empty() || request.query_vector.is_none() => {
                    keyword.into_iter().take(limit).collect()
                }
                _ => nearest.into_iter().take(limit).collect(),
            };
            let Some(cap) = per_file else {
                break ranked;
            };
            let capped = cap_per_file(&searcher, ranked, cap, request.k)?;
            if capped.len() >= request.k || exhausted || limit >= MAX_CANDIDATES {
                break capped;
            }
            limit = (limit * 4).min(MAX_CANDIDATES);
        };
        let snippets = match &text_query {
            Some(text) => {
                let mut generator = SnippetGenerator::create(&searcher, &**text, self.fields.text)?;
                generator.set_max_num_chars(240);
                Some(generator)
            }
            None => None,
        };
        let mut hits = Vec::with_capacity(ranked.len());
        for (score, address) in ranked {
            let document: TantivyDocument = searcher.doc(address)?;
            hits.push(self.hit(
                &document,
                score,
                snippets.as_ref(),
                &space_keys,
                request.include_vectors,
                &searcher,
                address,
            )?);
        }
        Ok(hits)
    }

    /// Which of these files `viewer` may read, among the organisation's
    /// (one customer's only, when given): those with a chunk that a
    /// search as that viewer could return. A file without chunks is never
    /// readable here.
    pub async fn readable(
        &self,
        store: &impl Audiences,
        organisation_id: &str,
        customer_id: Option<&str>,
        viewer: &Viewer,
        file_ids: &[i64],
    ) -> Result<HashSet<i64>> {
        let mut out = HashSet::new();
        if file_ids.is_empty() {
            return Ok(out);
        }
        let allowed: HashSet<u64> = readable_scopes(store, organisation_id, customer_id, viewer)
            .await?
            .iter()
            .map(|s| scope_key(&s.connection_id, &s.space_id, s.enforce_permissions))
            .collect();
        if allowed.is_empty() {
            return Ok(out);
        }
        let searcher = self.reader.searcher();
        let admission = Arc::new(admit::Admission::new(
            &searcher,
            organisation_id,
            customer_id,
            allowed,
            self.exclusions(&searcher, viewer)?,
        )?);
        for id in file_ids {
            let query = TermQuery::new(
                Term::from_field_u64(self.fields.file_id, *id as u64),
                IndexRecordOption::Basic,
            );
            let found = searcher.search(
                &query,
                &admit::TopAdmitted {
                    limit: 1,
                    admission: admission.clone(),
                },
            )?;
            if !found.is_empty() {
                out.insert(*id);
            }
        }
        Ok(out)
    }

    fn text_query(&self, query: &str) -> Option<Box<dyn Query>> {
        if query.trim().is_empty() {
            return None;
        }
        let mut parser = QueryParser::new(
            self.index.schema(),
            vec![self.fields.title, self.fields.text],
            self.query_tokenizers.clone(),
        );
        parser.set_field_boost(self.fields.title, 2.0);
        // Lenient: whatever a user types is a query, never an error.
        let (query, _errors) = parser.parse_query_lenient(query);
        Some(query)
    }

    async fn query_vector(&self, request: &SearchRequest) -> Result<Vec<f32>> {
        if let Some(vector) = &request.query_vector {
            if vector.is_empty() || vector.iter().any(|x| !x.is_finite()) {
                return Err(Error::Invalid("query_vector must be finite numbers".into()));
            }
            return Ok(embed::normalize(vector.clone()));
        }
        let Some(embedder) = &self.embedder else {
            return Err(Error::Invalid(
                "hybrid search needs an embedding provider or a query vector".into(),
            ));
        };
        let mut vectors = embedder.embed(std::slice::from_ref(&request.query)).await?;
        vectors
            .pop()
            .ok_or_else(|| Error::Invalid("the embedding provider returned no vector".into()))
    }

    /// The caller's own filters (file ids, kinds, labels, tags), as a
    /// query the text must also match; `None` when there are none.
    fn caller_filters(&self, filters: &Filters) -> Option<Box<dyn Query>> {
        let f = self.fields;
        let any_of = |field: Field, values: Vec<String>| -> Box<dyn Query> {
            let terms: Vec<Term> = values
                .iter()
                .map(|v| Term::from_field_text(field, v))
                .collect();
            Box::new(TermSetQuery::new(terms))
        };
        let mut must: Vec<Box<dyn Query>> = Vec::new();
        if !filters.file_ids.is_empty() {
            let terms: Vec<Term> = filters
                .file_ids
                .iter()
                .map(|id| Term::from_field_u64(f.file_id, *id as u64))
                .collect();
            must.push(Box::new(TermSetQuery::new(terms)));
        }
        if !filters.kinds.is_empty() {
            must.push(any_of(f.kind, filters.kinds.clone()));
        }
        if !filters.labels.is_empty() {
            must.push(any_of(f.labels, filters.labels.clone()));
        }
        for (key, value) in &filters.tags {
            must.push(any_of(f.tags, tag_terms(key, value)));
        }
        if must.is_empty() {
            return None;
        }
        Some(Box::new(ConstScoreQuery::new(
            Box::new(BooleanQuery::new(
                must.into_iter().map(|q| (Occur::Must, q)).collect(),
            )),
            0.0,
        )))
    }

    /// The chunks restricted away from a viewer: restricted at a level
    /// that admits none of the viewer's principals. `None` when the index
    /// holds no restricted chunk.
    fn exclusions(
        &self,
        searcher: &tantivy::Searcher,
        viewer: &Viewer,
    ) -> Result<Option<Box<dyn Query>>> {
        let f = self.fields;
        let mut excluded: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for level in 0..acl::MAX_LEVELS {
            let restricted = Term::from_field_text(f.acl, &format!("r{level}"));
            if searcher.doc_freq(&restricted)? == 0 {
                // Levels are filled in order: none deeper either.
                break;
            }
            let restricted: Box<dyn Query> =
                Box::new(TermQuery::new(restricted, IndexRecordOption::Basic));
            let admitted: Vec<Term> = viewer
                .tokens(level)
                .iter()
                .map(|t| Term::from_field_text(f.acl, t))
                .collect();
            let level_excludes: Box<dyn Query> = if admitted.is_empty() {
                restricted
            } else {
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, restricted),
                    (Occur::MustNot, Box::new(TermSetQuery::new(admitted))),
                ]))
            };
            excluded.push((Occur::Should, level_excludes));
        }
        if excluded.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(BooleanQuery::new(excluded))))
    }

    #[allow(clippy::too_many_arguments)] // one hit's inputs; a struct would only rename them
    fn hit(
        &self,
        document: &TantivyDocument,
        score: f32,
        snippets: Option<&SnippetGenerator>,
        space_keys: &HashMap<String, String>,
        include_vector: bool,
        searcher: &tantivy::Searcher,
        address: DocAddress,
    ) -> Result<Hit> {
        let f = self.fields;
        let text = |field: Field| -> String {
            document
                .get_first(field)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let number = |field: Field| {
            document
                .get_first(field)
                .and_then(|v| v.as_u64())
                .unwrap_or(0) as i64
        };
        let connection_id = text(f.connection);
        let space = text(f.space);
        let content = text(f.text);
        let snippet = snippet_of(&content, snippets);
        let heading = text(f.heading);
        let vector = if include_vector {
            let reader = searcher.segment_reader(address.segment_ord);
            let column = reader.fast_fields().bytes(vectors::FIELD)?;
            column.and_then(|c| {
                let ord = c.ords().first(address.doc_id)?;
                let mut bytes = Vec::new();
                c.ord_to_bytes(ord, &mut bytes).ok()?;
                Some(store::vector_from_bytes(&bytes))
            })
        } else {
            None
        };
        Ok(Hit {
            file_id: number(f.file_id),
            chunk_index: number(f.chunk),
            space_key: space_keys
                .get(&scope_term(&connection_id, &space))
                .cloned()
                .unwrap_or_default(),
            connection_id,
            kind: text(f.kind),
            external_id: text(f.external_id),
            title: text(f.title_shown),
            url: document
                .get_first(f.url)
                .and_then(|v| v.as_str().map(str::to_string)),
            heading_path: if heading.is_empty() {
                Vec::new()
            } else {
                heading.split('\u{1f}').map(str::to_string).collect()
            },
            labels: document
                .get_all(f.labels)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            content,
            snippet,
            score,
            vector,
        })
    }
}

/// A chunk's best passage, HTML-escaped, with the query's matches in
/// `<mark>`. Link targets and bare URLs are left out of the text it is cut
/// from, so that nothing is highlighted inside an address; a chunk that
/// matched by its page's title alone shows its beginning.
fn snippet_of(content: &str, generator: Option<&SnippetGenerator>) -> String {
    const CHARS: usize = 240;
    let readable = without_urls(content);
    if let Some(generator) = generator {
        let mut snippet = generator.snippet(&readable);
        if !snippet.fragment().trim().is_empty() {
            snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
            return snippet.to_html();
        }
    }
    let mut end = readable.len().min(CHARS);
    while !readable.is_char_boundary(end) {
        end -= 1;
    }
    if end < readable.len() {
        // Cut at a word's end.
        if let Some(space) = readable[..end].rfind(char::is_whitespace) {
            end = space;
        }
    }
    html_escape(readable[..end].trim())
}

/// Markdown with link targets dropped (`[text](url)` becomes `text`) and
/// bare addresses replaced by "(link)".
fn without_urls(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(at) = rest.find(['(', '<', 'h']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        if from.starts_with('(') && out.ends_with(']') {
            // A link's target: up to its closing parenthesis.
            match from.find(')') {
                Some(close) if !from[..close].contains('\n') => {
                    rest = &from[close + 1..];
                    continue;
                }
                _ => {}
            }
        }
        if let Some(address) = from.strip_prefix('<') {
            if address.starts_with("http://") || address.starts_with("https://") {
                if let Some(close) = address.find('>') {
                    out.push_str("(link)");
                    rest = &address[close + 1..];
                    continue;
                }
            }
        }
        if (from.starts_with("http://") || from.starts_with("https://"))
            && !out.ends_with(|c: char| c.is_alphanumeric())
        {
            let end = from
                .find(|c: char| c.is_whitespace() || matches!(c, ')' | '>' | '"'))
                .unwrap_or(from.len());
            out.push_str("(link)");
            rest = &from[end..];
            continue;
        }
        let step = from.chars().next().map_or(1, char::len_utf8);
        out.push_str(&from[..step]);
        rest = &from[step..];
    }
    out.push_str(rest);
    out
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// The text a chunk is embedded as: its page's title and headings, then
/// the chunk.
fn embed_text(file: &IndexableFile, chunk: &store::Chunk) -> String {
    let mut text = file.title.clone();
    for heading in &chunk.heading_path {
        text.push_str(" > ");
        text.push_str(heading);
    }
    text.push('\n');
    text.push_str(&chunk.text);
    text
}

/// Carbon's weighted fusion: each list's scores scaled to [0, 1] by its
/// best and worst, then `weight_a * semantic + weight_b * keyword`; a
/// chunk absent from a list gets 0 from it.
pub fn fuse(
    keyword: &[(f32, DocAddress)],
    semantic: &[(f32, DocAddress)],
    weights: HybridWeights,
    k: usize,
) -> Vec<(f32, DocAddress)> {
    fn scaled(list: &[(f32, DocAddress)]) -> HashMap<DocAddress, f32> {
        let max = list.iter().map(|x| x.0).fold(f32::MIN, f32::max);
        let min = list.iter().map(|x| x.0).fold(f32::MAX, f32::min);
        let span = max - min;
        list.iter()
            .map(|&(score, address)| {
                let s = if span > f32::EPSILON {
                    (score - min) / span
                } else {
                    1.0
                };
                (address, s)
            })
            .collect()
    }
    let keyword = scaled(keyword);
    let semantic = scaled(semantic);
    let mut all: Vec<(f32, DocAddress)> = keyword
        .keys()
        .chain(semantic.keys())
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|address| {
            let score = weights.weight_a * semantic.get(address).copied().unwrap_or(0.0)
                + weights.weight_b * keyword.get(address).copied().unwrap_or(0.0);
            (score, *address)
        })
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    all.truncate(k);
    all
}

/// The file in an index's directory that names its replica.
const NODE_ID_FILE: &str = "node-id";

/// This replica's name: read from the index's directory, or made once
/// (the host's name and a random part) and kept there.
fn node_id(dir: &Path) -> Result<String> {
    let path = dir.join(NODE_ID_FILE);
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "node".into());
    // RandomState's keys are random per process: enough to tell replicas
    // on one host apart, without a dependency for it.
    use std::hash::{BuildHasher, Hasher};
    let suffix = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32;
    let id = format!("{host}-{suffix:08x}");
    std::fs::write(&path, &id)?;
    Ok(id)
}
