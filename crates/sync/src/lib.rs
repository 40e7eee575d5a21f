//! The sync engine: copies what a connection may read from Confluence into
//! the store, and keeps it equal to Confluence.
//!
//! One algorithm serves the first sync and every later one. Each run lists
//! the chosen spaces, then their pages and blog posts (with bodies on a
//! first sync; metadata only afterwards, fetching bodies in batches of up
//! to 250 for just the pages whose version changed), then attachments and
//! footer comments. Spaces are listed in groups (`space-id=a,b,...`), as
//! many page listings as spaces are synced at once and one for blog posts,
//! so that small spaces do not each pay a partial page and a label lookup.
//! What a completed listing did not return is deleted; a listing that
//! failed or ended early deletes nothing.
//!
//! Every listing page is written in one transaction with the checkpoint that
//! says where to resume, so a process killed at any point starts again where
//! it stopped. Memory holds one listing page at a time.
//!
//! It knows nothing of HTTP serving.

#![forbid(unsafe_code)]

pub mod extract;

use confluence::model::{
    Attachment, Content, FooterComment, RestrictionState, Space, SpacePermission, V1Content,
};
use confluence::Client;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use storage_format::ChunkOptions;
use store::{
    kind, ConnectionStatus, FileState, FileUpsert, NewChunk, ReadRestriction, SpacePrincipals,
    SpaceRow, Store, SyncState,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("confluence: {0}")]
    Confluence(#[from] confluence::Error),
    #[error("store: {0}")]
    Store(#[from] store::Error),
}

impl Error {
    /// Whether running the sync again later could succeed without anyone
    /// acting (new credentials, consent).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Confluence(e) => !e.needs_reauthorization(),
            Error::Store(_) => true,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub const READY: &str = "READY";
pub const SYNC_ERROR: &str = "SYNC_ERROR";

#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// Space keys to sync; empty for every space the account can read.
    pub spaces: Vec<String>,
    /// Page ids to sync with their descendants; with `spaces`, those
    /// spaces are synced whole as well. Empty for whole spaces.
    pub pages: Vec<String>,
    pub allow_personal_spaces: bool,
    /// Attachment downloads in flight at once.
    pub download_concurrency: usize,
    /// Spaces synced at once.
    pub space_concurrency: usize,
    /// The site as people open it, with its context path
    /// (`https://acme.atlassian.net/wiki`), when the API is reached
    /// elsewhere (OAuth goes through Atlassian's gateway): files' URLs and
    /// links in bodies use it. `None`: the client's own address.
    pub link_base: Option<String>,
    /// The kinds of content synced; what a run does not sync is removed.
    pub content: ContentKinds,
}

/// The kinds of content a connection syncs: all four by default. Someone
/// who wants pages only does not pay for the attachments' downloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ContentKinds {
    pub pages: bool,
    pub blogposts: bool,
    /// Footer comments.
    pub comments: bool,
    pub attachments: bool,
}

impl Default for ContentKinds {
    fn default() -> ContentKinds {
        ContentKinds {
            pages: true,
            blogposts: true,
            comments: true,
            attachments: true,
        }
    }
}

impl ContentKinds {
    pub const NAMES: [&'static str; 4] = ["pages", "blogposts", "comments", "attachments"];

    /// A comma-separated list of kinds, as the store keeps it and the
    /// command line takes it.
    pub fn parse(text: &str) -> std::result::Result<ContentKinds, String> {
        let mut kinds = ContentKinds {
            pages: false,
            blogposts: false,
            comments: false,
            attachments: false,
        };
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "pages" | "page" => kinds.pages = true,
                "blogposts" | "blogpost" | "blog" => kinds.blogposts = true,
                "comments" | "comment" => kinds.comments = true,
                "attachments" | "attachment" => kinds.attachments = true,
                _ => {
                    return Err(format!(
                        "unknown kind of content {name:?}: choose from {}",
                        Self::NAMES.join(", ")
                    ))
                }
            }
        }
        if kinds.names().is_empty() {
            return Err(format!(
                "no kind of content: choose from {}",
                Self::NAMES.join(", ")
            ));
        }
        Ok(kinds)
    }

    /// The kinds synced, comma-separated, in a fixed order.
    pub fn names(&self) -> String {
        [self.pages, self.blogposts, self.comments, self.attachments]
            .iter()
            .zip(Self::NAMES)
            .filter(|(on, _)| **on)
            .map(|(_, name)| name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub pages: Counts,
    pub blogposts: Counts,
    pub attachments: Counts,
    pub comments: Counts,
    pub spaces: usize,
    pub requests: u64,
    pub retries: u64,
    pub resumed: bool,
    pub elapsed_ms: u64,
}

impl Counts {
    fn record(&mut self, is_new: bool) {
        if is_new {
            self.added += 1;
        } else {
            self.updated += 1;
        }
    }
}

impl Report {
    /// Every kind's counts summed.
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for counts in [
            &self.pages,
            &self.blogposts,
            &self.attachments,
            &self.comments,
        ] {
            total.add(counts);
        }
        total
    }

    /// Files added, updated or deleted, of every kind.
    pub fn changed(&self) -> u64 {
        [
            &self.pages,
            &self.blogposts,
            &self.attachments,
            &self.comments,
        ]
        .iter()
        .map(|c| c.added + c.updated + c.deleted)
        .sum()
    }
}

/// A run that changed this many files refreshes the store's planner
/// statistics when it ends.
const BULK_CHANGE: u64 = 1_000;

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.failed += other.failed;
    }
}

impl Report {
    fn add(&mut self, other: &Report) {
        self.pages.add(&other.pages);
        self.blogposts.add(&other.blogposts);
        self.attachments.add(&other.attachments);
        self.comments.add(&other.comments);
    }

    fn counts(&mut self, file_kind: &str) -> &mut Counts {
        match file_kind {
            kind::PAGE => &mut self.pages,
            kind::BLOG_POST => &mut self.blogposts,
            kind::ATTACHMENT => &mut self.attachments,
            _ => &mut self.comments,
        }
    }
}

/// What a poll found changed (by id), before anything is written.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// A full sync was unfinished: the poll leaves the change to it.
    pub skipped: bool,
    /// Content modified in the window, changed or not.
    pub candidates: usize,
    pub pages: Vec<String>,
    pub blogposts: Vec<String>,
    /// Requests the finding took.
    pub requests: u64,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty() && self.blogposts.is_empty()
    }
}

/// What a poll for recent changes found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PollReport {
    /// A full sync was unfinished: the poll left the change to it.
    pub skipped: bool,
    /// Content modified in the window, changed or not.
    pub candidates: usize,
    /// Content written because it changed.
    pub changed: usize,
    pub requests: u64,
    pub report: Report,
}

/// What a progress display is told: the run's totals so far, summed over
/// the spaces synced at once (so that a display shows one steady line,
/// not each space's in turn).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// "spaces" (listing them), "content" (their pages and blog posts),
    /// "attachments", "comments".
    pub phase: &'static str,
    pub spaces_done: usize,
    /// The spaces this run syncs, once they are listed.
    pub spaces_total: Option<usize>,
    /// Items listed so far, by kind.
    pub pages: u64,
    pub blogposts: u64,
    pub attachments: u64,
    pub comments: u64,
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Called after every transaction that changed what search shows, so that
/// an index can follow the store as the sync commits.
pub type CommitFn = Arc<dyn Fn() + Send + Sync>;

/// Spaces by id: those a listing covers.
type SpaceMap = HashMap<String, SpaceRow>;

/// Spaces whose pages (or blog posts) one listing covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Group {
    /// Space ids, at most [`SPACES_A_LISTING`].
    spaces: Vec<String>,
    /// No space of the group held this kind when the run planned it: the
    /// listing carries bodies.
    first: bool,
}

/// The v2 documents' cap on `space-id` values in one listing.
const SPACES_A_LISTING: usize = 100;

/// The v2 documents' cap on `keys` in one listing of spaces.
const SPACE_KEYS_A_LISTING: usize = 250;

/// Spaces dealt into as few groups as `streams` listings at once allow,
/// each within [`SPACES_A_LISTING`].
fn split_spaces(ids: Vec<String>, streams: usize) -> Vec<Vec<String>> {
    if ids.is_empty() {
        return Vec::new();
    }
    let n = streams
        .max(1)
        .min(ids.len())
        .max(ids.len().div_ceil(SPACES_A_LISTING));
    let mut groups = vec![Vec::new(); n];
    for (i, id) in ids.into_iter().enumerate() {
        groups[i % n].push(id);
    }
    groups
}

/// Generic over its store: anything that keeps [`SyncState`] (the
/// whole [`Store`] by default).
pub struct Engine<S = Store> {
    client: Client,
    store: S,
    connection_id: String,
    options: SyncOptions,
    progress: Option<ProgressFn>,
    committed: Option<CommitFn>,
    /// Read from the connection at the start of a run.
    settings: parking_lot::Mutex<RunSettings>,
    /// Display names of the accounts bodies mention, as far as this run
    /// knows them (`None`: Confluence does not know the account). Shared
    /// with conversions running on other threads; copied on write.
    names: parking_lot::Mutex<Arc<HashMap<String, Option<String>>>>,
    /// The run's progress so far.
    tally: parking_lot::Mutex<Progress>,
    /// Held while names are looked up, so that spaces synced at once do
    /// not ask for the same accounts.
    learning: tokio::sync::Mutex<()>,
}

#[derive(Clone, Debug, Default)]
struct RunSettings {
    enforce_permissions: bool,
    chunk: ChunkOptions,
}

/// Resolves links in a body to Confluence URLs, from the site's address
/// and the page being converted.
struct SiteResolver<'a> {
    site: &'a str,
    space_key: &'a str,
    page_id: &'a str,
    names: &'a HashMap<String, Option<String>>,
}

/// Converts storage format to Markdown and chunks with a run's site,
/// names and chunk options, on whatever thread holds it.
struct Converter {
    site: String,
    names: Arc<HashMap<String, Option<String>>>,
    chunk: ChunkOptions,
}

impl Converter {
    fn convert(&self, storage: &str, space_key: &str, page_id: &str) -> (String, Vec<NewChunk>) {
        let resolver = SiteResolver {
            site: self.site.trim_end_matches('/'),
            space_key,
            page_id,
            names: &self.names,
        };
        let markdown = storage_format::to_markdown(storage, &resolver).output;
        let chunks = to_chunks(&markdown, &self.chunk);
        (markdown, chunks)
    }
}

fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl storage_format::Resolver for SiteResolver<'_> {
    fn page_url(&self, space_key: Option<&str>, title: &str) -> Option<String> {
        Some(format!(
            "{}/display/{}/{}",
            self.site,
            path_segment(space_key.unwrap_or(self.space_key)),
            path_segment(title)
        ))
    }
    fn attachment_url(&self, page_title: Option<&str>, filename: &str) -> Option<String> {
        match page_title {
            None => Some(format!(
                "{}/download/attachments/{}/{}",
                self.site,
                self.page_id,
                path_segment(filename)
            )),
            Some(_) => None,
        }
    }
    fn space_url(&self, space_key: &str) -> Option<String> {
        Some(format!("{}/spaces/{}", self.site, path_segment(space_key)))
    }
    fn user_name(&self, account_id: &str) -> Option<String> {
        self.names.get(account_id).cloned().flatten()
    }
}

/// The accounts a storage-format body mentions (`ri:account-id`, or
/// `ri:userkey` on Data Center), without parsing it.
fn mentioned_accounts<'a>(storage: &'a str, out: &mut HashSet<&'a str>) {
    for attribute in ["ri:account-id=\"", "ri:userkey=\""] {
        let mut rest = storage;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            if let Some(end) = rest.find('"') {
                let id = &rest[..end];
                if !id.is_empty() && id.len() <= 128 {
                    out.insert(id);
                }
                rest = &rest[end..];
            }
        }
    }
}

fn to_chunks(markdown: &str, options: &ChunkOptions) -> Vec<NewChunk> {
    storage_format::chunk(markdown, options)
        .into_iter()
        .map(|c| NewChunk {
            text: c.text,
            heading_path: c.heading_path,
            start: c.start,
            end: c.end,
            tokens: c.tokens,
        })
        .collect()
}

fn restriction_of(state: RestrictionState) -> ReadRestriction {
    match state {
        RestrictionState::Open => ReadRestriction::Open,
        RestrictionState::Restricted(r) => ReadRestriction::Only {
            users: r.users,
            groups: r.groups,
        },
        RestrictionState::Unknown => ReadRestriction::Unknown,
    }
}

const DONE: &str = "done";
const LISTED: &str = "listed";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl<S: SyncState> Engine<S> {
    pub fn new(client: Client, store: S, connection_id: &str, options: SyncOptions) -> Engine<S> {
        Engine {
            client,
            store,
            connection_id: connection_id.to_string(),
            options,
            progress: None,
            committed: None,
            settings: Default::default(),
            names: Default::default(),
            tally: Default::default(),
            learning: Default::default(),
        }
    }

    /// Calls `committed` after each transaction that search should see.
    pub fn with_commit_hook(mut self, committed: CommitFn) -> Engine<S> {
        self.committed = Some(committed);
        self
    }

    fn committed(&self) {
        if let Some(committed) = &self.committed {
            committed();
        }
    }

    pub fn with_progress(mut self, progress: ProgressFn) -> Engine<S> {
        self.progress = Some(progress);
        self
    }

    /// Updates the run's progress and tells the display, if any.
    fn tell(&self, update: impl FnOnce(&mut Progress)) {
        let now = {
            let mut tally = self.tally.lock();
            update(&mut tally);
            tally.clone()
        };
        if let Some(progress) = &self.progress {
            progress(now);
        }
    }

    /// The connection's settings, read at the start of a run.
    async fn load_settings(&self) -> Result<()> {
        let connection = self.store.connection(&self.connection_id).await?;
        *self.settings.lock() = RunSettings {
            enforce_permissions: connection.enforce_permissions,
            chunk: ChunkOptions {
                chunk_size: connection.chunk_size.max(1) as usize,
                overlap: connection.chunk_overlap.max(0) as usize,
            },
        };
        Ok(())
    }

    /// Looks for pages and blog posts modified in the last `minutes`, and
    /// syncs only those that changed: one CQL request when nothing did
    /// (`lastmodified >= now("-Nm")`, relative to Confluence's own clock, so
    /// that no time zone enters), then one fetch of the changed bodies and
    /// one of their labels a 250. What comes back is compared by version
    /// with the store. New content is taken in the spaces synced whole, and
    /// under pages already held; what a poll cannot see (deletions,
    /// restriction changes, comments and attachments) waits for the full
    /// sync. Does nothing while a full sync is unfinished: it will see the
    /// change, and the two must not write the same files at once.
    pub async fn poll(&self, minutes: u64) -> Result<PollReport> {
        let found = self.find_changes(minutes).await?;
        self.apply_changes(found).await
    }

    /// A poll's first half: what changed in the last `minutes`, without
    /// writing anything (see `poll`).
    pub async fn find_changes(&self, minutes: u64) -> Result<Changes> {
        let conn = self.connection_id.as_str();
        let requests_before = self.client.requests();
        let mut out = Changes::default();
        if self.store.checkpoint(conn, "run").await?.is_some() {
            out.skipped = true;
            return Ok(out);
        }
        let types = match (self.options.content.pages, self.options.content.blogposts) {
            (true, true) => "page, blogpost",
            (true, false) => "page",
            (false, true) => "blogpost",
            (false, false) => return Ok(out),
        };
        let cql = format!(
            "type in ({types}) and lastmodified >= now(\"-{}m\") order by lastmodified",
            minutes.max(1)
        );
        let mut candidates: Vec<(bool, String, i64)> = Vec::new();
        let mut url = Some(self.client.cql_versions_url(&cql));
        while let Some(current) = url {
            let (items, next) = self.client.listing::<V1Content>(&current).await?;
            for item in items {
                let blog = item.kind.as_deref() == Some("blogpost");
                let version = item.version.as_ref().map_or(0, |v| v.number as i64);
                candidates.push((blog, item.id, version));
            }
            url = next;
        }
        out.candidates = candidates.len();
        for blog in [false, true] {
            let file_kind = if blog { kind::BLOG_POST } else { kind::PAGE };
            let ids: Vec<String> = candidates
                .iter()
                .filter(|(b, _, _)| *b == blog)
                .map(|(_, id, _)| id.clone())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let known = self.store.file_states(conn, file_kind, &ids).await?;
            let changed = candidates.iter().filter(|(b, id, version)| {
                *b == blog
                    && known
                        .get(id)
                        .is_none_or(|state| state.version != *version || state.status != READY)
            });
            for (_, id, _) in changed {
                if blog {
                    out.blogposts.push(id.clone());
                } else {
                    out.pages.push(id.clone());
                }
            }
        }
        out.requests = self.client.requests() - requests_before;
        Ok(out)
    }

    /// A poll's second half: fetches what `find_changes` found changed,
    /// with labels and restrictions, and writes it.
    pub async fn apply_changes(&self, found: Changes) -> Result<PollReport> {
        let conn = self.connection_id.as_str();
        let requests_before = self.client.requests();
        let mut out = PollReport {
            skipped: found.skipped,
            candidates: found.candidates,
            requests: found.requests,
            ..Default::default()
        };
        if found.is_empty() {
            return Ok(out);
        }
        self.load_settings().await?;
        let spaces: SpaceMap = self
            .store
            .spaces(conn)
            .await?
            .into_iter()
            .map(|s| (s.space_id.clone(), s))
            .collect();
        let run = self.store.last_run(conn).await?.unwrap_or(0);
        let mut report = Report::default();
        for (blog, changed) in [(false, &found.pages), (true, &found.blogposts)] {
            if changed.is_empty() {
                continue;
            }
            let file_kind = if blog { kind::BLOG_POST } else { kind::PAGE };
            // The changed content with its bodies, by id.
            let mut fetched: Vec<Content> = Vec::new();
            for chunk in changed.chunks(250) {
                let (items, _) = self
                    .client
                    .listing::<Content>(&self.client.content_by_ids_url(blog, chunk, true))
                    .await?;
                fetched.extend(items);
            }
            let ids: Vec<String> = fetched.iter().map(|c| c.id.clone()).collect();
            let known = self.store.file_states(conn, file_kind, &ids).await?;
            let parents: Vec<String> = fetched.iter().filter_map(|c| c.parent_id.clone()).collect();
            let held_parents = self.store.file_states(conn, kind::PAGE, &parents).await?;
            let mut writes: Vec<Content> = Vec::new();
            for item in fetched {
                // Outside the spaces held: the full sync decides.
                let Some(space) = spaces.get(&item.space_id) else {
                    continue;
                };
                let whole =
                    self.options.pages.is_empty() || self.options.spaces.contains(&space.key);
                let under_held = item
                    .parent_id
                    .as_ref()
                    .is_some_and(|p| held_parents.contains_key(p));
                if whole || known.contains_key(&item.id) || under_held {
                    writes.push(item);
                }
            }
            // One write for all spaces: one label lookup per 250 items.
            out.changed += writes.len();
            self.write_content(run, &spaces, file_kind, writes, None, &mut report)
                .await?;
        }
        out.requests += self.client.requests() - requests_before;
        out.report = report;
        Ok(out)
    }

    /// Runs a sync to the end, resuming an unfinished one if there is one.
    pub async fn run(&self) -> Result<Report> {
        let started = Instant::now();
        let requests_before = self.client.requests();
        let retries_before = self.client.retries();
        let conn = self.connection_id.as_str();
        self.load_settings().await?;
        let mut report = Report::default();
        let run = match self.store.checkpoint(conn, "run").await? {
            Some(run) => {
                report.resumed = true;
                run.parse::<i64>().unwrap_or(0)
            }
            None => {
                let run = self.store.start_job(conn, "sync").await?;
                self.store
                    .set_checkpoint(conn, "run", &run.to_string())
                    .await?;
                run
            }
        };
        self.store
            .set_connection_status(conn, ConnectionStatus::Syncing, None, false)
            .await?;
        let outcome = self.run_steps(run, &mut report).await;
        report.requests = self.client.requests() - requests_before;
        report.retries = self.client.retries() - retries_before;
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        let stats = serde_json::to_value(&report).unwrap_or_default();
        match outcome {
            Ok(()) => {
                self.store.clear_checkpoints(conn).await?;
                self.store.finish_job(run, READY, &stats, None).await?;
                if report.changed() >= BULK_CHANGE {
                    if let Err(error) = self.store.refresh_statistics().await {
                        tracing::warn!(%error, "refreshing the store's statistics failed");
                    }
                }
                self.store
                    .set_connection_status(conn, ConnectionStatus::Ready, None, true)
                    .await?;
                Ok(report)
            }
            Err(error) => {
                // The checkpoints stay: the next run resumes from them.
                let message = error.to_string();
                let status = if error.is_retryable() {
                    ConnectionStatus::SyncError
                } else {
                    ConnectionStatus::NeedsReauthorization
                };
                self.store
                    .finish_job(run, status.as_str(), &stats, Some(&message))
                    .await?;
                self.store
                    .set_connection_status(conn, status, Some(&message), false)
                    .await?;
                Err(error)
            }
        }
    }

    async fn run_steps(&self, run: i64, report: &mut Report) -> Result<()> {
        let roots = self.chosen_pages().await?;
        let root_spaces: HashSet<String> = roots.iter().flat_map(|r| r.values().cloned()).collect();
        let spaces = self.sync_spaces(run, &root_spaces, report).await?;
        report.spaces = spaces.len();
        self.tell(|p| {
            p.phase = "content";
            p.spaces_total = Some(spaces.len());
        });
        self.learn_group_names().await?;
        let by_id: SpaceMap = spaces
            .iter()
            .map(|s| (s.space_id.clone(), s.clone()))
            .collect();
        // Chosen spaces are synced whole; other spaces only hold the
        // chosen pages' subtrees (and no blog posts).
        let (whole, scoped): (Vec<&SpaceRow>, Vec<&SpaceRow>) = spaces
            .iter()
            .partition(|s| roots.is_none() || self.options.spaces.contains(&s.key));
        let mut jobs: Vec<futures::future::BoxFuture<'_, Result<(Report, usize)>>> = Vec::new();
        for (blog, wanted) in [
            (false, self.options.content.pages),
            (true, self.options.content.blogposts),
        ] {
            let file_kind = if blog { kind::BLOG_POST } else { kind::PAGE };
            if !wanted {
                for space in &spaces {
                    let mut dropped = Report::default();
                    let step = format!("step:{file_kind}:{}", space.space_id);
                    self.delete_unseen(run, file_kind, Some(space), &step, &mut dropped)
                        .await?;
                    report.add(&dropped);
                }
                continue;
            }
            for group in self.plan(file_kind, &whole).await? {
                // A space is done with its pages (with its blog posts when
                // pages are not synced).
                let done = if blog && self.options.content.pages {
                    0
                } else {
                    group.spaces.len()
                };
                let by_id = &by_id;
                jobs.push(Box::pin(async move {
                    let mut out = Report::default();
                    self.sync_content(run, &group, blog, by_id, &mut out)
                        .await?;
                    Ok((out, done))
                }));
            }
        }
        if let Some(roots) = roots.as_ref().filter(|_| self.options.content.pages) {
            for space in scoped {
                let by_id = &by_id;
                jobs.push(Box::pin(async move {
                    let mut out = Report::default();
                    self.sync_subtrees(run, space, roots, by_id, &mut out)
                        .await?;
                    Ok((out, 1))
                }));
            }
        }
        // Groups are independent: several at a time, so that latency to
        // Confluence is paid in parallel. Each writes its own checkpoints.
        let mut running =
            futures::stream::iter(jobs).buffer_unordered(self.options.space_concurrency.max(1));
        while let Some(done) = running.next().await {
            let (group_report, spaces_done) = done?;
            report.add(&group_report);
            self.tell(|p| p.spaces_done += spaces_done);
        }
        drop(running);
        let total = spaces.len();
        self.tell(|p| p.spaces_done = total);
        self.sync_attachments(run, report).await?;
        self.sync_comments(run, report).await?;
        Ok(())
    }

    /// How a run lists one kind of content of the whole spaces: in groups
    /// of spaces, each group one listing (`space-id=...`), so that a
    /// space's partial last page of 250, and its label lookup, are not
    /// paid for every small space. Pages make as many groups as spaces
    /// are synced at once (the listings run in parallel); blog posts,
    /// fewer, make one. Spaces that hold nothing of the kind yet (their
    /// listing carries bodies) are grouped apart from those that do
    /// (their listing carries metadata, and bodies are fetched for what
    /// changed). The plan is kept in a checkpoint: a resumed run lists
    /// the same groups, whose steps are named after them.
    async fn plan(&self, file_kind: &str, spaces: &[&SpaceRow]) -> Result<Vec<Group>> {
        let conn = self.connection_id.as_str();
        let name = format!("groups:{file_kind}");
        if let Some(text) = self.store.checkpoint(conn, &name).await? {
            if let Ok(groups) = serde_json::from_str::<Vec<Group>>(&text) {
                return Ok(groups);
            }
        }
        let mut new = Vec::new();
        let mut known = Vec::new();
        for space in spaces {
            if self
                .store
                .has_files(conn, file_kind, &space.space_id)
                .await?
            {
                known.push(space.space_id.clone());
            } else {
                new.push(space.space_id.clone());
            }
        }
        let streams = if file_kind == kind::BLOG_POST {
            1
        } else {
            self.options.space_concurrency.max(1)
        };
        let mut groups = Vec::new();
        for (ids, first) in [(new, true), (known, false)] {
            groups.extend(
                split_spaces(ids, streams)
                    .into_iter()
                    .map(|spaces| Group { spaces, first }),
            );
        }
        self.store
            .set_checkpoint(
                conn,
                &name,
                &serde_json::to_string(&groups).unwrap_or_default(),
            )
            .await?;
        Ok(groups)
    }

    /// The chosen pages and their spaces, when the sync is scoped to pages.
    async fn chosen_pages(&self) -> Result<Option<HashMap<String, String>>> {
        if self.options.pages.is_empty() {
            return Ok(None);
        }
        let mut roots = HashMap::new();
        for chunk in self.options.pages.chunks(250) {
            let url = self
                .client
                .v2(&format!("/pages?limit=250&id={}", chunk.join(",")));
            let pages: Vec<Content> = self.client.stream::<Content>(url).try_collect().await?;
            for page in pages {
                roots.insert(page.id, page.space_id);
            }
        }
        Ok(Some(roots))
    }

    /// A space that holds only chosen pages' subtrees: the subtrees come
    /// from one metadata listing of the space (`descendants`), and their
    /// pages are then read by id, 250 a request (with bodies on the
    /// space's first sync; metadata afterwards, and bodies of what
    /// changed), instead of listing the whole space again. A page outside
    /// them is not seen, so removed if held.
    async fn sync_subtrees(
        &self,
        run: i64,
        space: &SpaceRow,
        roots: &HashMap<String, String>,
        spaces: &SpaceMap,
        report: &mut Report,
    ) -> Result<()> {
        let conn = self.connection_id.as_str();
        let step = format!("step:{}:{}", kind::PAGE, space.space_id);
        if self.store.checkpoint(conn, &step).await?.as_deref() == Some(DONE) {
            return Ok(());
        }
        let first = !self
            .store
            .has_files(conn, kind::PAGE, &space.space_id)
            .await?;
        let mut ids: Vec<String> = self.descendants(space, roots).await?.into_iter().collect();
        ids.sort();
        for chunk in ids.chunks(250) {
            let url = self.client.content_by_ids_url(false, chunk, first);
            let (items, _) = self.client.listing::<Content>(&url).await?;
            let listed = items.len() as u64;
            self.write_content(run, spaces, kind::PAGE, items, None, report)
                .await?;
            self.tell(|p| p.pages += listed);
        }
        if !first && self.settings.lock().enforce_permissions {
            self.sweep_restrictions(&[space.key.as_str()], kind::PAGE)
                .await?;
        }
        self.delete_unseen(run, kind::PAGE, Some(space), &step, report)
            .await
    }

    /// The chosen pages of a space with all their descendants, from one
    /// metadata listing of the space (ids and parents only).
    async fn descendants(
        &self,
        space: &SpaceRow,
        roots: &HashMap<String, String>,
    ) -> Result<HashSet<String>> {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        let mut pages = std::pin::pin!(self
            .client
            .stream::<Content>(self.client.space_pages_url(&space.space_id, false)));
        while let Some(page) = pages.next().await {
            let page = page?;
            if let Some(parent) = page.parent_id {
                children.entry(parent).or_default().push(page.id);
            }
        }
        let mut allowed = HashSet::new();
        let mut queue: Vec<String> = roots
            .iter()
            .filter(|(_, s)| **s == space.space_id)
            .map(|(id, _)| id.clone())
            .collect();
        while let Some(id) = queue.pop() {
            if allowed.insert(id.clone()) {
                queue.extend(children.remove(&id).unwrap_or_default());
            }
        }
        Ok(allowed)
    }

    /// Lists the spaces, records the chosen ones, and removes those no
    /// longer chosen or readable, with their content.
    async fn sync_spaces(
        &self,
        run: i64,
        root_spaces: &HashSet<String>,
        report: &mut Report,
    ) -> Result<Vec<SpaceRow>> {
        let conn = self.connection_id.as_str();
        if self.store.checkpoint(conn, "step:spaces").await?.as_deref() == Some(DONE) {
            let ids: HashSet<String> = serde_json::from_str(
                &self
                    .store
                    .checkpoint(conn, "spaces")
                    .await?
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
            let mut spaces = self.store.spaces(conn).await?;
            spaces.retain(|s| ids.contains(&s.space_id));
            return Ok(spaces);
        }
        self.tell(|p| p.phase = "spaces");
        // With pages chosen, the spaces synced are the chosen spaces and
        // the spaces of the chosen pages.
        let by_pages = !self.options.pages.is_empty();
        // `keys` takes at most 250 keys (the documents' maxItems): more
        // chosen spaces are found in the listing of all.
        let keys: &[String] = if by_pages || self.options.spaces.len() > SPACE_KEYS_A_LISTING {
            &[]
        } else {
            &self.options.spaces
        };
        let listed: Vec<Space> = self
            .client
            .stream::<Space>(self.client.spaces_url(keys))
            .try_collect()
            .await?;
        let chosen: Vec<SpaceRow> = listed
            .into_iter()
            .filter(|s| {
                if by_pages {
                    self.options.spaces.contains(&s.key) || root_spaces.contains(&s.id)
                } else {
                    self.options.spaces.is_empty() || self.options.spaces.contains(&s.key)
                }
            })
            .filter(|s| self.options.allow_personal_spaces || s.space_type != "personal")
            .map(|s| SpaceRow {
                space_id: s.id,
                key: s.key,
                name: s.name,
                space_type: s.space_type,
                status: s.status,
                homepage_id: s.homepage_id,
            })
            .collect();
        self.store.upsert_spaces(conn, &chosen, run).await?;
        if self.settings.lock().enforce_permissions {
            for space in &chosen {
                let principals = self.space_principals(&space.space_id).await?;
                self.store
                    .set_space_principals(conn, &space.space_id, Some(&principals))
                    .await?;
            }
        }
        // The listing ran to its end: what it did not return is gone.
        let removed = self.store.delete_unseen_spaces(conn, run).await?;
        self.committed();
        for (file_kind, n) in removed {
            report.counts(&file_kind).deleted += n;
        }
        let ids: Vec<&str> = chosen.iter().map(|s| s.space_id.as_str()).collect();
        self.store
            .set_checkpoint(
                conn,
                "spaces",
                &serde_json::to_string(&ids).unwrap_or_default(),
            )
            .await?;
        self.store.set_checkpoint(conn, "step:spaces", DONE).await?;
        Ok(chosen)
    }

    /// Who holds `read` in a space. Principals that are neither a user nor
    /// a group (roles) are not resolved: nobody passes through them.
    async fn space_principals(&self, space_id: &str) -> Result<SpacePrincipals> {
        let permissions: Vec<SpacePermission> = self
            .client
            .stream::<SpacePermission>(self.client.space_permissions_url(space_id))
            .try_collect()
            .await?;
        let mut principals = SpacePrincipals::default();
        for permission in permissions {
            if permission.operation.key != "read" || permission.operation.target_type != "space" {
                continue;
            }
            match (permission.principal.kind.as_str(), permission.principal.id) {
                ("user", Some(id)) => principals.users.push(id),
                ("group", Some(id)) => principals.groups.push(id),
                ("anonymous", _) => principals.anonymous = true,
                _ => {}
            }
        }
        principals.users.sort();
        principals.users.dedup();
        principals.groups.sort();
        principals.groups.dedup();
        Ok(principals)
    }

    /// Reads the restrictions of every page or blog post of some spaces
    /// (a restriction change makes no new version, so listings do not
    /// show it) and stores those that changed.
    async fn sweep_restrictions(&self, space_keys: &[&str], file_kind: &str) -> Result<u64> {
        let keys: Vec<String> = space_keys
            .iter()
            .map(|k| format!("\"{}\"", k.replace('"', "")))
            .collect();
        let cql = format!("space in ({}) and type = {file_kind}", keys.join(","));
        let mut url = Some(self.client.cql_restrictions_url(&cql));
        let mut changed = 0;
        while let Some(current) = url {
            let (results, next) = self.client.listing::<V1Content>(&current).await?;
            let restrictions: Vec<(String, ReadRestriction)> = results
                .iter()
                .map(|c| (c.id.clone(), restriction_of(c.read_restriction())))
                .collect();
            changed += self
                .store
                .set_read_restrictions(&self.connection_id, file_kind, &restrictions)
                .await?;
            self.committed();
            url = next;
        }
        Ok(changed)
    }

    fn url_of(&self, webui: Option<&str>) -> Option<String> {
        webui.map(|w| match &self.options.link_base {
            // `webui` is relative to the context path (`_links.base`).
            Some(base) if !w.starts_with("http://") && !w.starts_with("https://") => {
                format!("{}{w}", base.trim_end_matches('/'))
            }
            _ => self.client.resolve(w),
        })
    }

    /// Pages or blog posts of a group of spaces, in one listing.
    async fn sync_content(
        &self,
        run: i64,
        group: &Group,
        blog: bool,
        spaces: &SpaceMap,
        report: &mut Report,
    ) -> Result<()> {
        let conn = self.connection_id.as_str();
        let file_kind = if blog { kind::BLOG_POST } else { kind::PAGE };
        let Some(first_space) = group.spaces.first() else {
            return Ok(());
        };
        // A space is in one group of a kind: the first names the step.
        let step = format!("step:{file_kind}:{first_space}");
        // Restrictions of unchanged content are swept unless this is the
        // spaces' first sync (which read every restriction with its labels).
        let mut sweep = true;
        let mut url = match self.store.checkpoint(conn, &step).await?.as_deref() {
            Some(DONE) => return Ok(()),
            Some(LISTED) => None,
            Some(url) => Some(url.to_string()),
            None => {
                // A first sync lists bodies with the pages; later syncs list
                // metadata and fetch only what changed.
                let first = group.first;
                sweep = !first;
                Some(match group.spaces.as_slice() {
                    [one] if blog => self.client.space_blogposts_url(one, first),
                    [one] => self.client.space_pages_url(one, first),
                    many => {
                        let ids: Vec<&str> = many.iter().map(String::as_str).collect();
                        self.client.content_in_spaces_url(blog, &ids, first)
                    }
                })
            }
        };
        let mut processed = 0u64;
        let mut told = 0u64;
        while let Some(current) = url {
            let (items, next) = match self.client.listing::<Content>(&current).await {
                Ok(page) => page,
                // The space went away since the run listed spaces (a run
                // resumed much later): it and its content are gone. (A
                // listing of several spaces just returns nothing of it,
                // and its content goes as unseen.)
                Err(confluence::Error::NotFound(_)) if group.spaces.len() == 1 => {
                    let removed = self
                        .store
                        .delete_space(conn, first_space, Some((&step, DONE)))
                        .await?;
                    self.committed();
                    for (file_kind, n) in removed {
                        report.counts(&file_kind).deleted += n;
                    }
                    return Ok(());
                }
                Err(error) => return Err(error.into()),
            };
            processed += items.len() as u64;
            let mark = next.as_deref().unwrap_or(LISTED);
            self.write_content(run, spaces, file_kind, items, Some((&step, mark)), report)
                .await?;
            let listed = processed - std::mem::replace(&mut told, processed);
            self.tell(|p| {
                if blog {
                    p.blogposts += listed;
                } else {
                    p.pages += listed;
                }
            });
            url = next;
        }
        if sweep && self.settings.lock().enforce_permissions {
            let keys: Vec<&str> = group
                .spaces
                .iter()
                .filter_map(|id| spaces.get(id))
                .map(|s| s.key.as_str())
                .collect();
            self.sweep_restrictions(&keys, file_kind).await?;
        }
        // What the completed listing did not return is gone, space by
        // space; the step is done with the last space's deletion.
        for (i, space_id) in group.spaces.iter().enumerate() {
            let done = (i + 1 == group.spaces.len()).then_some((step.as_str(), DONE));
            let deleted = self
                .store
                .delete_unseen_files(conn, file_kind, Some(space_id), run, done)
                .await?;
            report.counts(file_kind).deleted += deleted;
        }
        self.committed();
        Ok(())
    }

    /// Writes a listing page of content of the `spaces` (content of
    /// other spaces is left out, so not seen).
    async fn write_content(
        &self,
        run: i64,
        spaces: &SpaceMap,
        file_kind: &'static str,
        items: Vec<Content>,
        checkpoint: Option<(&str, &str)>,
        report: &mut Report,
    ) -> Result<()> {
        let conn = self.connection_id.as_str();
        let items: Vec<Content> = items
            .into_iter()
            .filter(|c| spaces.contains_key(&c.space_id))
            .collect();
        let ids: Vec<String> = items.iter().map(|c| c.id.clone()).collect();
        let known = self.store.file_states(conn, file_kind, &ids).await?;
        let mut upserts = Vec::new();
        let mut seen = Vec::new();
        let mut changed: Vec<Content> = Vec::new();
        for item in items {
            match known.get(&item.id) {
                Some(state)
                    if state.version == item.version.number as i64 && state.status == READY =>
                {
                    if moved_or_renamed(state, &item) {
                        report.counts(file_kind).updated += 1;
                        let space = &spaces[&item.space_id];
                        upserts
                            .push(self.content_upsert(file_kind, &item, None, None, None, space));
                    } else {
                        seen.push((file_kind, item.id));
                    }
                }
                _ => changed.push(item),
            }
        }
        if !changed.is_empty() {
            // Retries spent on a retryable error: stop, and resume from the
            // checkpoint later, rather than mark pages failed for a blip.
            let bodies = match self
                .bodies_for(file_kind == kind::BLOG_POST, &changed)
                .await
            {
                Err(error) if error.is_retryable() => return Err(error.into()),
                other => other,
            };
            let labels = match self.labels_for(&changed).await {
                Err(error) if error.is_retryable() => return Err(error.into()),
                other => other,
            };
            if let Ok(bodies) = &bodies {
                self.learn_names(bodies.values().filter_map(Content::storage))
                    .await?;
            }
            let (bodies, mut converted) = match bodies {
                Ok(bodies) => {
                    let (bodies, converted) = self.convert_all(bodies, spaces).await;
                    (Ok(bodies), converted)
                }
                Err(error) => (Err(error), HashMap::new()),
            };
            for item in &changed {
                let space = &spaces[&item.space_id];
                let is_new = !known.contains_key(&item.id);
                // Labels not read keep what is stored; a restriction not
                // read is Unknown, which denies everyone until a sync reads it.
                let (item_labels, restriction) = match &labels {
                    Ok(found) => match found.get(&item.id) {
                        Some((l, r)) => (Some(l.clone()), restriction_of(r.clone())),
                        None => (Some(Vec::new()), ReadRestriction::Unknown),
                    },
                    Err(_) => (None, ReadRestriction::Unknown),
                };
                match &bodies {
                    // Gone between the listing and the fetch: not seen, so
                    // the end of the listing deletes it.
                    Ok(bodies) => {
                        if let Some(full) = bodies.get(&item.id) {
                            report.counts(file_kind).record(is_new);
                            let mut upsert = self.content_upsert(
                                file_kind,
                                full,
                                full.storage().map(str::to_string),
                                converted.remove(&item.id),
                                item_labels,
                                space,
                            );
                            upsert.read_restriction = Some(restriction);
                            upserts.push(upsert);
                        }
                    }
                    Err(error) => {
                        report.counts(file_kind).failed += 1;
                        let mut failed =
                            self.content_upsert(file_kind, item, None, None, None, space);
                        failed.status = SYNC_ERROR;
                        failed.error = Some(error.to_string());
                        // Version 0: the next run tries again.
                        failed.version = 0;
                        upserts.push(failed);
                    }
                }
            }
        }
        self.store
            .write_batch(conn, run, &upserts, &seen, checkpoint)
            .await?;
        self.committed();
        Ok(())
    }

    /// Bodies of changed content: taken from the listing when it carried
    /// them, otherwise fetched by id in one request. A retryable failure
    /// that outlived its retries stops the sync (to resume later); any
    /// other failure is these items' own error.
    async fn bodies_for(
        &self,
        blog: bool,
        items: &[Content],
    ) -> std::result::Result<HashMap<String, Content>, confluence::Error> {
        let mut out: HashMap<String, Content> = HashMap::new();
        let mut missing = Vec::new();
        for item in items {
            if item.storage().is_some() {
                out.insert(item.id.clone(), item.clone());
            } else {
                missing.push(item.id.clone());
            }
        }
        for chunk in missing.chunks(250) {
            let url = self.client.content_by_ids_url(blog, chunk, true);
            let (fetched, _) = self.client.listing::<Content>(&url).await?;
            for content in fetched {
                out.insert(content.id.clone(), content);
            }
        }
        Ok(out)
    }

    /// Labels and read restrictions of content, from CQL `id in (...)`.
    async fn labels_for(
        &self,
        items: &[Content],
    ) -> std::result::Result<HashMap<String, (Vec<String>, RestrictionState)>, confluence::Error>
    {
        let mut out = HashMap::new();
        for chunk in items.chunks(250) {
            let ids: Vec<&str> = chunk.iter().map(|c| c.id.as_str()).collect();
            let cql = format!("id in ({})", ids.join(","));
            let mut url = Some(self.client.cql_labels_url(&cql));
            while let Some(current) = url {
                let (results, next) = self.client.listing::<V1Content>(&current).await?;
                for content in results {
                    out.insert(
                        content.id.clone(),
                        (content.labels(), content.read_restriction()),
                    );
                }
                url = next;
            }
        }
        Ok(out)
    }

    fn content_upsert(
        &self,
        file_kind: &'static str,
        item: &Content,
        body: Option<String>,
        converted: Option<(String, Vec<NewChunk>)>,
        labels: Option<Vec<String>>,
        space: &SpaceRow,
    ) -> FileUpsert {
        let content_hash = body.as_ref().map(|b| sha256_hex(b.as_bytes()));
        let (markdown, chunks) = match (&body, converted) {
            (Some(_), Some((markdown, chunks))) => (Some(markdown), Some(chunks)),
            (Some(storage), None) => {
                let (markdown, chunks) = self.convert(storage, &space.key, &item.id);
                (Some(markdown), Some(chunks))
            }
            (None, _) => (None, None),
        };
        FileUpsert {
            markdown,
            chunks,
            read_restriction: None,
            kind: file_kind,
            external_id: item.id.clone(),
            space_id: Some(space.space_id.clone()),
            parent_id: item.parent_id.clone(),
            container_id: None,
            title: item.title.clone(),
            url: self.url_of(item.links.webui.as_deref()),
            version: item.version.number as i64,
            media_type: None,
            size_bytes: body.as_ref().map(|b| b.len() as i64),
            labels,
            status: READY,
            error: None,
            created_at: item.created_at.clone(),
            body,
            content_hash,
        }
    }

    /// Learns the names of the accounts these bodies mention that this
    /// run does not know yet: from the store's cache, else from
    /// Confluence's user API (100 a request), remembered in the store.
    /// Names are a nicety: a failure is logged and the mention reads
    /// "@user", never failing the sync.
    async fn learn_names<'a>(&self, bodies: impl Iterator<Item = &'a str>) -> Result<()> {
        let mut mentioned = HashSet::new();
        for body in bodies {
            mentioned_accounts(body, &mut mentioned);
        }
        let unknown: Vec<String> = {
            let names = self.names.lock();
            mentioned
                .into_iter()
                .filter(|id| !names.contains_key(*id))
                .map(str::to_string)
                .collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let _learning = self.learning.lock().await;
        // Another space may have learnt them while this one waited.
        let unknown: Vec<String> = {
            let names = self.names.lock();
            unknown
                .into_iter()
                .filter(|id| !names.contains_key(id))
                .collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let cached = self
            .store
            .principal_names(&self.connection_id, "user", &unknown)
            .await?;
        let missing: Vec<String> = unknown
            .iter()
            .filter(|id| !cached.contains_key(*id))
            .cloned()
            .collect();
        let mut found = Vec::new();
        if !missing.is_empty() {
            match self.client.users(&missing).await {
                Ok(users) => {
                    found = users
                        .iter()
                        .filter_map(|u| Some((u.id()?.to_string(), u.name()?.to_string())))
                        .collect();
                }
                Err(error) => {
                    tracing::warn!(%error, accounts = missing.len(), "could not read the names of mentioned accounts; they read as @user");
                }
            }
            self.store
                .set_principal_names(&self.connection_id, "user", &found)
                .await?;
        }
        let mut guard = self.names.lock();
        let names = Arc::make_mut(&mut guard);
        for id in unknown {
            names.insert(id, None);
        }
        names.extend(cached.into_iter().map(|(id, name)| (id, Some(name))));
        names.extend(found.into_iter().map(|(id, name)| (id, Some(name))));
        Ok(())
    }

    /// The names of the site's groups, so that an operator can search as
    /// a group by its name: one listing a run (200 a request), only for a
    /// connection that applies Confluence's permissions. A failure is
    /// logged, never failing the sync.
    async fn learn_group_names(&self) -> Result<()> {
        if !self.settings.lock().enforce_permissions {
            return Ok(());
        }
        let mut groups = Vec::new();
        let mut listing = std::pin::pin!(self
            .client
            .stream::<confluence::model::V1Group>(self.client.v1("/group?limit=200")));
        while let Some(group) = listing.next().await {
            match group {
                Ok(confluence::model::V1Group {
                    id: Some(id),
                    name: Some(name),
                }) => groups.push((id, name)),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "could not list the site's groups; search by group name may miss some");
                    return Ok(());
                }
            }
        }
        self.store
            .set_principal_names(&self.connection_id, "group", &groups)
            .await?;
        Ok(())
    }

    /// A storage-format body to Markdown and chunks.
    fn convert(&self, storage: &str, space_key: &str, page_id: &str) -> (String, Vec<NewChunk>) {
        self.converter().convert(storage, space_key, page_id)
    }

    /// What converting bodies needs, owned, for another thread.
    fn converter(&self) -> Converter {
        Converter {
            site: match &self.options.link_base {
                Some(base) => base.clone(),
                None => self.client.resolve(""),
            },
            names: self.names.lock().clone(),
            chunk: self.settings.lock().chunk.clone(),
        }
    }

    /// Converts the bodies of a batch on a blocking thread, so that the
    /// spaces synced at once convert on both cores while this task's
    /// thread goes on fetching and writing (a run is one task: without
    /// this every conversion took turns on one thread). Returns the
    /// bodies with their Markdown and chunks by id.
    async fn convert_all(
        &self,
        bodies: HashMap<String, Content>,
        spaces: &SpaceMap,
    ) -> (
        HashMap<String, Content>,
        HashMap<String, (String, Vec<NewChunk>)>,
    ) {
        let converter = self.converter();
        let keys: HashMap<String, String> = spaces
            .iter()
            .map(|(id, s)| (id.clone(), s.key.clone()))
            .collect();
        let converted = tokio::task::spawn_blocking(move || {
            let converted = bodies
                .iter()
                .filter_map(|(id, content)| {
                    let storage = content.storage()?;
                    let space_key = keys.get(&content.space_id)?;
                    Some((id.clone(), converter.convert(storage, space_key, id)))
                })
                .collect();
            (bodies, converted)
        })
        .await;
        match converted {
            Ok(done) => done,
            // The converter never panics (its own tests fuzz it); if it
            // did, the run fails as it would have inline.
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }

    /// Text (an attachment's) to chunks; the text is its own Markdown.
    fn text_chunks(&self, text: &str) -> Vec<NewChunk> {
        to_chunks(text, &self.settings.lock().chunk)
    }

    /// The stored pages and blog posts among these ids, with their spaces.
    async fn containers(&self, ids: &[String]) -> Result<HashMap<String, FileState>> {
        let mut out = self
            .store
            .file_states(&self.connection_id, kind::PAGE, ids)
            .await?;
        out.extend(
            self.store
                .file_states(&self.connection_id, kind::BLOG_POST, ids)
                .await?,
        );
        Ok(out)
    }

    /// Removes what this run did not see of a kind (in a space, or in
    /// all) and marks the step done, in one transaction: the end of a
    /// complete listing, or a kind the connection does not sync (nothing
    /// was listed, so all it held goes).
    async fn delete_unseen(
        &self,
        run: i64,
        file_kind: &'static str,
        space: Option<&SpaceRow>,
        step: &str,
        report: &mut Report,
    ) -> Result<()> {
        let deleted = self
            .store
            .delete_unseen_files(
                &self.connection_id,
                file_kind,
                space.map(|s| s.space_id.as_str()),
                run,
                Some((step, DONE)),
            )
            .await?;
        self.committed();
        report.counts(file_kind).deleted += deleted;
        Ok(())
    }

    async fn sync_attachments(&self, run: i64, report: &mut Report) -> Result<()> {
        let conn = self.connection_id.as_str();
        let step = "step:attachments";
        if !self.options.content.attachments {
            return self
                .delete_unseen(run, kind::ATTACHMENT, None, step, report)
                .await;
        }
        let mut url = match self.store.checkpoint(conn, step).await?.as_deref() {
            Some(DONE) => return Ok(()),
            Some(LISTED) => None,
            Some(url) => Some(url.to_string()),
            None => Some(self.client.attachments_url()),
        };
        let mut processed = 0u64;
        let mut told = 0u64;
        let concurrency = self.options.download_concurrency.max(1);
        while let Some(current) = url {
            let (items, next) = self.client.listing::<Attachment>(&current).await?;
            processed += items.len() as u64;
            let container_ids: Vec<String> = items
                .iter()
                .filter_map(|a| a.container_id().map(str::to_string))
                .collect();
            let containers = self.containers(&container_ids).await?;
            let ids: Vec<String> = items.iter().map(|a| a.id.clone()).collect();
            let known = self.store.file_states(conn, kind::ATTACHMENT, &ids).await?;
            let mut seen = Vec::new();
            let mut upserts = Vec::new();
            let mut downloads = Vec::new();
            for attachment in items {
                // Attachments of content this connection does not hold
                // (another space, a page that failed) are not ours.
                let Some(container) = attachment.container_id().and_then(|c| containers.get(c))
                else {
                    continue;
                };
                let space_id = container.space_id.clone();
                match known.get(&attachment.id) {
                    Some(state)
                        if state.version == attachment.version.number as i64
                            && state.status == READY
                            && state.title == attachment.title =>
                    {
                        seen.push((kind::ATTACHMENT, attachment.id.clone()));
                    }
                    state => {
                        let is_new = state.is_none();
                        if extract::carries_text(&attachment.media_type, &attachment.title)
                            && attachment.download_link.is_some()
                        {
                            downloads.push((attachment, space_id, is_new));
                        } else {
                            report.counts(kind::ATTACHMENT).record(is_new);
                            upserts.push(self.attachment_upsert(&attachment, space_id, None, None));
                        }
                    }
                }
            }
            let fetches: Vec<_> = downloads
                .into_iter()
                .map(|(attachment, space_id, is_new)| self.fetch(attachment, space_id, is_new))
                .collect();
            let fetched: Vec<_> = futures::stream::iter(fetches)
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for (attachment, space_id, is_new, result) in fetched {
                match result {
                    Ok(bytes) => {
                        match extract::text_of(&attachment.media_type, &attachment.title, &bytes) {
                            Ok(text) => {
                                report.counts(kind::ATTACHMENT).record(is_new);
                                let hash = sha256_hex(&bytes);
                                upserts.push(self.attachment_upsert(
                                    &attachment,
                                    space_id,
                                    Some(text),
                                    Some(hash),
                                ));
                            }
                            Err(message) => {
                                report.counts(kind::ATTACHMENT).failed += 1;
                                let mut failed = self.attachment_upsert(
                                    &attachment,
                                    space_id,
                                    None,
                                    Some(sha256_hex(&bytes)),
                                );
                                failed.status = SYNC_ERROR;
                                failed.error = Some(message);
                                upserts.push(failed);
                            }
                        }
                    }
                    // Retries are spent on a retryable error: stop here and
                    // resume from the checkpoint next time.
                    Err(error) if error.is_retryable() => return Err(error.into()),
                    Err(error) => {
                        report.counts(kind::ATTACHMENT).failed += 1;
                        let mut failed = self.attachment_upsert(&attachment, space_id, None, None);
                        failed.status = SYNC_ERROR;
                        failed.error = Some(error.to_string());
                        failed.version = 0;
                        upserts.push(failed);
                    }
                }
            }
            let mark = next.as_deref().unwrap_or(LISTED);
            self.store
                .write_batch(conn, run, &upserts, &seen, Some((step, mark)))
                .await?;
            self.committed();
            let listed = processed - std::mem::replace(&mut told, processed);
            self.tell(|p| {
                p.phase = "attachments";
                p.attachments += listed;
            });
            url = next;
        }
        self.delete_unseen(run, kind::ATTACHMENT, None, step, report)
            .await
    }

    /// Downloads an attachment, keeping what the caller needs with it.
    async fn fetch(
        &self,
        attachment: Attachment,
        space_id: Option<String>,
        is_new: bool,
    ) -> (
        Attachment,
        Option<String>,
        bool,
        std::result::Result<bytes::Bytes, confluence::Error>,
    ) {
        let link = self
            .client
            .resolve(attachment.download_link.as_deref().unwrap_or_default());
        let result = self.download(&link, attachment.file_size).await;
        (attachment, space_id, is_new, result)
    }

    /// Downloads a file and checks its size against the metadata: a body
    /// cut short behind a consistent Content-Length is fetched again.
    async fn download(
        &self,
        url: &str,
        expected_size: u64,
    ) -> std::result::Result<bytes::Bytes, confluence::Error> {
        let mut attempt = 0;
        loop {
            let bytes = self.client.get_bytes(url).await?;
            if expected_size == 0 || bytes.len() as u64 == expected_size {
                return Ok(bytes);
            }
            attempt += 1;
            if attempt >= 3 {
                return Err(confluence::Error::Transport(format!(
                    "downloaded {} bytes, the attachment has {expected_size}",
                    bytes.len()
                )));
            }
        }
    }

    fn attachment_upsert(
        &self,
        attachment: &Attachment,
        space_id: Option<String>,
        text: Option<String>,
        hash: Option<String>,
    ) -> FileUpsert {
        let chunks = text.as_deref().map(|t| self.text_chunks(t));
        FileUpsert {
            markdown: text.clone(),
            chunks,
            read_restriction: None,
            kind: kind::ATTACHMENT,
            external_id: attachment.id.clone(),
            space_id,
            parent_id: None,
            container_id: attachment.container_id().map(str::to_string),
            title: attachment.title.clone(),
            url: self.url_of(attachment.webui_link.as_deref()),
            version: attachment.version.number as i64,
            media_type: Some(attachment.media_type.clone()),
            size_bytes: Some(attachment.file_size as i64),
            labels: None,
            status: READY,
            error: None,
            created_at: attachment.created_at.clone(),
            body: text,
            content_hash: hash,
        }
    }

    async fn sync_comments(&self, run: i64, report: &mut Report) -> Result<()> {
        let conn = self.connection_id.as_str();
        let step = "step:comments";
        if !self.options.content.comments {
            return self
                .delete_unseen(run, kind::COMMENT, None, step, report)
                .await;
        }
        let mut url = match self.store.checkpoint(conn, step).await?.as_deref() {
            Some(DONE) => return Ok(()),
            Some(LISTED) => None,
            Some(url) => Some(url.to_string()),
            None => Some(self.client.footer_comments_url()),
        };
        // Read once: comments' links resolve within their page's space.
        let space_keys: HashMap<String, String> = self
            .store
            .spaces(conn)
            .await?
            .into_iter()
            .map(|s| (s.space_id, s.key))
            .collect();
        let mut processed = 0u64;
        let mut told = 0u64;
        while let Some(current) = url {
            let (items, next) = self.client.listing::<FooterComment>(&current).await?;
            processed += items.len() as u64;
            let container_ids: Vec<String> = items
                .iter()
                .filter_map(|c| c.container_id().map(str::to_string))
                .collect();
            let containers = self.containers(&container_ids).await?;
            let ids: Vec<String> = items.iter().map(|c| c.id.clone()).collect();
            let known = self.store.file_states(conn, kind::COMMENT, &ids).await?;
            let mut seen = Vec::new();
            let mut upserts = Vec::new();
            self.learn_names(items.iter().filter_map(FooterComment::storage))
                .await?;
            for comment in items {
                let Some(container) = comment.container_id().and_then(|c| containers.get(c)) else {
                    continue;
                };
                match known.get(&comment.id) {
                    Some(state)
                        if state.version == comment.version.number as i64
                            && state.status == READY =>
                    {
                        seen.push((kind::COMMENT, comment.id.clone()));
                    }
                    state => {
                        report.counts(kind::COMMENT).record(state.is_none());
                        let body = comment.storage().map(str::to_string);
                        let space_key = container
                            .space_id
                            .as_ref()
                            .and_then(|id| space_keys.get(id))
                            .map(String::as_str)
                            .unwrap_or_default();
                        let converted = body.as_deref().map(|b| {
                            self.convert(b, space_key, comment.container_id().unwrap_or_default())
                        });
                        let (markdown, chunks) = match converted {
                            Some((m, c)) => (Some(m), Some(c)),
                            None => (None, None),
                        };
                        upserts.push(FileUpsert {
                            markdown,
                            chunks,
                            read_restriction: None,
                            kind: kind::COMMENT,
                            external_id: comment.id.clone(),
                            space_id: container.space_id.clone(),
                            parent_id: None,
                            container_id: comment.container_id().map(str::to_string),
                            title: comment.title.clone(),
                            url: None,
                            version: comment.version.number as i64,
                            media_type: None,
                            size_bytes: body.as_ref().map(|b| b.len() as i64),
                            labels: None,
                            status: READY,
                            error: None,
                            // Comments carry no creation date of their own:
                            // their first version's is one.
                            created_at: comment
                                .version
                                .created_at
                                .clone()
                                .filter(|_| comment.version.number == 1),
                            content_hash: body.as_ref().map(|b| sha256_hex(b.as_bytes())),
                            body,
                        });
                    }
                }
            }
            let mark = next.as_deref().unwrap_or(LISTED);
            self.store
                .write_batch(conn, run, &upserts, &seen, Some((step, mark)))
                .await?;
            self.committed();
            let listed = processed - std::mem::replace(&mut told, processed);
            self.tell(|p| {
                p.phase = "comments";
                p.comments += listed;
            });
            url = next;
        }
        self.delete_unseen(run, kind::COMMENT, None, step, report)
            .await
    }
}

fn moved_or_renamed(state: &FileState, item: &Content) -> bool {
    state.title != item.title
        || state.parent_id != item.parent_id
        || state.space_id.as_deref() != Some(item.space_id.as_str())
}
