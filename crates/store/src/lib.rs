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
mod dialect;
mod ops;
mod postgres;
mod readers;
mod search;
mod secret;
mod sqlite;
pub mod testing;

pub use api::*;
pub use console::*;
pub use ops::*;
pub use postgres::redact as redact_url;
pub use search::{
    vector_from_bytes, vector_to_bytes, Chunk, FileContent, IndexChange, IndexableFile,
    LogPosition, NewChunk, ReadRestriction, ScopeRow, Segment, SpacePrincipals, Visibility,
};
pub use secret::Cipher;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A read on the embedded store's own connections (`readers`).
    #[error("database: {0}")]
    Read(String),
    #[error("database unreachable: {0}")]
    Unreachable(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("secret: {0}")]
    Secret(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid: {0}")]
    Invalid(String),
    /// A node tried to finish a job whose lease it no longer holds.
    #[error("job {0}: its lease ran out and another node took it over")]
    LeaseLost(i64),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        // Text PostgreSQL cannot hold (a NUL character, in text or in a
        // JSON string) is the caller's input, refused, not a fault of the
        // store: SQLite holds it, PostgreSQL's text types do not.
        if let sqlx::Error::Database(db) = &error {
            if matches!(db.code().as_deref(), Some("22021" | "22P05")) {
                return Error::Invalid(
                    "text with a NUL character (U+0000) cannot be stored".into(),
                );
            }
        }
        Error::Database(error)
    }
}

/// The kinds of file a connection holds.
pub mod kind {
    pub const PAGE: &str = "page";
    pub const BLOG_POST: &str = "blogpost";
    pub const ATTACHMENT: &str = "attachment";
    pub const COMMENT: &str = "comment";
    pub const ALL: [&str; 4] = [PAGE, BLOG_POST, ATTACHMENT, COMMENT];
}

fn all_content_kinds() -> String {
    "pages,blogposts,comments,attachments".into()
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
    /// The kinds of content it syncs, comma-separated (pages, blogposts,
    /// comments, attachments).
    #[serde(default = "all_content_kinds")]
    pub content_kinds: String,
    /// Access revoked: kept, but never synced again.
    pub revoked: bool,
    pub auto_sync: bool,
    pub next_sync_at: Option<String>,
    /// Where its last poll for changes looked from.
    #[serde(default)]
    pub polled_at: Option<String>,
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

/// The store: one interface over either backend. `open` gives the
/// embedded SQLite store under a data directory; `open_url` chooses by
/// URL (`sqlite://...` or none: embedded; `postgres://...`: PostgreSQL).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::imp::Store),
    Postgres(postgres::imp::Store),
}

/// Which backend a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl Store {
    /// Opens (creating if needed) the embedded store under `data_dir`: the
    /// database `confsync.db` and the key that encrypts credentials.
    pub async fn open(data_dir: &Path) -> Result<Store> {
        Ok(Store {
            backend: Backend::Sqlite(sqlite::open(data_dir).await?),
        })
    }

    /// Opens the store a database URL names: absent or `sqlite://` the
    /// embedded one under `data_dir` (a path after `sqlite://` names the
    /// directory instead), `postgres://` or `postgresql://` PostgreSQL,
    /// whose schema is brought up to this binary's.
    pub async fn open_url(database_url: Option<&str>, data_dir: &Path) -> Result<Store> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Store::open(data_dir).await,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Store {
                    backend: Backend::Postgres(postgres::open(url).await?),
                })
            }
            Some(url) if url.starts_with("sqlite://") => {
                let path = &url["sqlite://".len()..];
                let dir = if path.is_empty() {
                    data_dir
                } else {
                    Path::new(path)
                };
                Store::open(dir).await
            }
            Some(url) => Err(Error::Invalid(format!(
                "database URL {} is neither sqlite:// nor postgres://",
                postgres::redact(url)
            ))),
        }
    }

    /// PostgreSQL at `url`, sealing with `cipher`.
    pub async fn open_postgres(url: &str, cipher: Cipher) -> Result<Store> {
        Ok(Store {
            backend: Backend::Postgres(postgres::open_with(url, cipher).await?),
        })
    }

    pub fn backend(&self) -> BackendKind {
        match &self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Calls `nudge` whenever another process commits a change to the
    /// index log (PostgreSQL's LISTEN/NOTIFY; reconnecting after a lost
    /// connection, and nudging then, since notifications may have been
    /// missed). `None` on SQLite, where followers poll.
    pub fn watch_index_log(
        &self,
        nudge: std::sync::Arc<dyn Fn() + Send + Sync>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(s) => Some(postgres::watch_index_log(s.pool().clone(), nudge)),
        }
    }

    /// A key for one purpose, derived from the store's secret key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        match &self.backend {
            Backend::Sqlite(s) => s.derive_key(purpose),
            Backend::Postgres(s) => s.derive_key(purpose),
        }
    }
}

/// Each method of `Store`, forwarded to the backend's implementation:
/// as inherent methods, or as the methods of a trait by concern, which a
/// consumer that needs only that concern takes instead of the whole store.
macro_rules! delegate {
    (@forward $self:ident, $name:ident, $($arg:ident),*) => {
        match &$self.backend {
            Backend::Sqlite(s) => s.$name($($arg),*).await,
            Backend::Postgres(s) => s.$name($($arg),*).await,
        }
    };
    (
        $(#[$tmeta:meta])*
        trait $trait:ident {
            $(
                $(#[$meta:meta])*
                async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
    ) => {
        $(#[$tmeta])*
        pub trait $trait: Send + Sync {
            $(
                $(#[$meta])*
                fn $name(&self $(, $arg: $ty)*) -> impl std::future::Future<Output = $ret> + Send;
            )*
        }
        impl $trait for Store {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    delegate!(@forward self, $name, $($arg),*)
                }
            )*
        }
    };
    ($(
        $(#[$meta:meta])*
        async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        impl Store {
            $(
                $(#[$meta])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    delegate!(@forward self, $name, $($arg),*)
                }
            )*
        }
    };
}

delegate! {
    // Connections, spaces, files, checkpoints and the CLI's jobs.
    /// Opens (creating if needed) the store under `data_dir`: the database
    /// `confsync.db` and the key that encrypts credentials.
    async fn ensure_organisation(&self, name: &str) -> Result<String>;
    async fn create_connection(&self, new: NewConnection<'_>) -> Result<Connection>;
    async fn connections(&self) -> Result<Vec<Connection>>;
    async fn find_connection(&self, organisation_id: &str, site_url: &str, account: &str) -> Result<Option<Connection>>;
    /// The decrypted credentials of a connection.
    async fn credentials(&self, connection_id: &str) -> Result<Vec<u8>>;
    async fn set_credentials(&self, connection_id: &str, plaintext: &[u8]) -> Result<()>;
    async fn set_scope(&self, connection_id: &str, scope: &serde_json::Value) -> Result<()>;
    /// Replaces what a connection syncs, on purpose: scope, personal spaces, content kinds.
    async fn replace_scope(&self, connection_id: &str, scope: &serde_json::Value, allow_personal_spaces: bool, content_kinds: &str) -> Result<()>;
    /// Ids of the groups with this name, in any connection.
    async fn group_ids_named(&self, name: &str) -> Result<Vec<String>>;
    /// The kinds of content a connection syncs.
    async fn set_content_kinds(&self, connection_id: &str, kinds: &str) -> Result<()>;
    /// Every file of a connection, ordered by kind and id.
    async fn files(&self, connection_id: &str) -> Result<Vec<FileRow>>;
    async fn file_body(&self, connection_id: &str, kind: &str, external_id: &str) -> Result<Option<String>>;
    /// Files of a connection by kind and status.
    async fn counts(&self, connection_id: &str) -> Result<Vec<(String, String, i64)>>;
    /// The database's own consistency check: `ok`, or what is wrong.
    async fn integrity_check(&self) -> Result<String>;
    async fn jobs(&self, connection_id: &str, limit: i64) -> Result<Vec<Job>>;
    // Tenants, keys and tokens, OAuth states, end users, data sources, the sync queue, webhooks and their outbox, white labels, the item tree.
    /// A new organisation (names need not be unique).
    async fn create_organisation(&self, name: &str) -> Result<Organisation>;
    async fn set_remove_branding(&self, organisation_id: &str, remove: bool) -> Result<()>;
    /// What a customer has synced: files and characters (of their
    /// Markdown or text) by file kind.
    async fn customer_totals(&self, organisation_id: &str, end_user_id: &str) -> Result<BTreeMap<String, (i64, i64)>>;
    async fn organisation(&self, id: &str) -> Result<Organisation>;
    /// Records an API key by its hash.
    async fn add_api_key(&self, organisation_id: &str, key_hash: &str) -> Result<()>;
    /// The organisation of an API key, with its end user for `customer_id`
    /// if it has one: what a request authenticates, in one statement.
    async fn caller_by_key(&self, key_hash: &str, customer_id: Option<&str>) -> Result<Option<(Organisation, Option<EndUser>)>>;
    async fn add_customer_token(&self, token_hash: &str, organisation_id: &str, customer_id: &str, kind: &str, expires_at: &str, viewer: Option<&str>) -> Result<()>;
    /// The organisation, customer (with their end user, if any) and viewer
    /// of an unexpired token.
    async fn customer_token(&self, token_hash: &str, kind: &str) -> Result<Option<CustomerToken>>;
    async fn save_oauth_state(&self, nonce: &str, organisation_id: &str, customer_id: &str, request: &serde_json::Value, expires_at: &str) -> Result<()>;
    /// Consumes a state: the first caller gets it, every later one `Used`.
    async fn consume_oauth_state(&self, nonce: &str) -> Result<StateOutcome>;
    async fn end_user(&self, organisation_id: &str, customer_id: &str) -> Result<Option<EndUser>>;
    async fn end_user_by_id(&self, id: &str) -> Result<Option<EndUser>>;
    async fn list_end_users(&self, organisation_id: &str, query: &UserQuery) -> Result<(Vec<EndUser>, i64)>;
    /// A customer's data source by its number; `None` for anyone else's.
    async fn data_source(&self, organisation_id: &str, end_user_id: &str, data_source_id: i64) -> Result<Option<Connection>>;
    /// A customer's data sources.
    #[allow(clippy::too_many_arguments)] // a query's filters, order and page
    async fn data_sources(&self, organisation_id: &str, end_user_id: &str, ids: &[i64], revoked: Option<bool>, by_created: bool, descending: bool, limit: i64, offset: i64) -> Result<(Vec<Connection>, i64)>;
    async fn set_next_sync(&self, connection_id: &str, at: Option<&str>) -> Result<()>;
    /// Connections whose scheduled sync is due, with their end user.
    async fn due_connections(&self, at: &str) -> Result<Vec<(Connection, Option<EndUser>)>>;
    /// Queues a sync of a connection; a job already queued for it absorbs
    /// this one. Returns the job's id and whether it is new.
    async fn enqueue_sync(&self, connection_id: &str, reason: &str) -> Result<(i64, bool)>;
    /// Claims the oldest queued job of a connection that has none running.
    async fn claim_sync_job(&self, node_id: &str, lease: std::time::Duration) -> Result<Option<SyncJob>>;
    /// Extends a running job's lease; false when this node lost it.
    async fn renew_sync_job(&self, job_id: i64, node_id: &str, lease: std::time::Duration) -> Result<bool>;
    /// Saves a job's file snapshot (what its events are computed against,
    /// kept across a restart) with the events its start causes: one
    /// transaction.
    async fn start_sync_job(&self, job_id: i64, snapshot: &str, organisation_id: &str, events: &[crate::Event]) -> Result<()>;
    /// Finishes a job, writes its webhook events to the outbox and sets
    /// the connection's next scheduled sync, in one transaction: the events
    /// are sent at least once, or the job runs again. The events are taken
    /// as they are written (a first sync of a million files has a million),
    /// and only the first when no webhook is active.
    async fn finish_sync_job(&self, job: &SyncJob, status: crate::JobStatus, error: Option<&str>, organisation_id: &str, events: &mut (dyn Iterator<Item = crate::Event> + Send), next_sync_at: Option<&str>) -> Result<()>;
    /// A connection's sync jobs, newest first: (reason, status).
    async fn sync_jobs(&self, connection_id: &str, limit: i64) -> Result<Vec<(String, String)>>;
    /// Jobs this node (or a version without leases) left RUNNING when it
    /// died are queued again; other nodes' run on under their leases.
    async fn requeue_running_jobs(&self, node_id: &str) -> Result<u64>;
    /// Whether a connection has a job queued, and one running: a sync of
    /// its files or a listing of its items (Carbon's data source is
    /// SYNCING while it lists its source items, and Carbon Connect offers
    /// to cancel that listing only then).
    async fn sync_state(&self, connection_id: &str) -> Result<(bool, bool)>;
    /// Each file of a connection: id, version and status.
    async fn file_versions(&self, connection_id: &str) -> Result<Vec<(i64, i64, String)>>;
    async fn api_files(&self, organisation_id: &str, end_user_id: &str, query: &FileQuery) -> Result<(Vec<ApiFile>, i64)>;
    /// The connection holding a customer's file; `None` for anyone else's.
    async fn file_connection(&self, organisation_id: &str, end_user_id: &str, file_id: i64) -> Result<Option<Connection>>;
    async fn add_webhook(&self, organisation_id: &str, url: &str, signing_key: &[u8]) -> Result<WebhookRow>;
    async fn webhooks(&self, organisation_id: &str, ids: &[i64], by_created: bool, descending: bool, limit: i64, offset: i64) -> Result<(Vec<WebhookRow>, i64)>;
    async fn delete_webhook(&self, organisation_id: &str, id: i64) -> Result<bool>;
    /// Writes events to the outbox of every active webhook of the organisation.
    async fn emit_events(&self, organisation_id: &str, events: &[crate::Event]) -> Result<()>;
    /// Claims due deliveries for a node, oldest first, under a lease.
    async fn claim_deliveries(&self, node_id: &str, limit: i64, lease: std::time::Duration) -> Result<Vec<Delivery>>;
    /// Extends a node's claim on a delivery; false when it lost it.
    async fn renew_delivery(&self, id: i64, node_id: &str, lease: std::time::Duration) -> Result<bool>;
    /// Sync jobs by status, across the store (for metrics).
    async fn sync_job_counts(&self) -> Result<Vec<(String, i64)>>;
    /// Deliveries still owed (neither delivered nor given up on).
    async fn outbox_depth(&self) -> Result<i64>;
    /// Gives back a node's claimed deliveries (it restarted).
    async fn release_deliveries(&self, node_id: &str) -> Result<u64>;
    async fn delivery_succeeded(&self, id: i64) -> Result<()>;
    /// Records a failed attempt: retried at `retry_at`, or given up on.
    async fn delivery_failed(&self, id: i64, error: &str, retry_at: Option<&str>) -> Result<()>;
    /// Delivered and abandoned deliveries older than `before` are removed.
    async fn prune_outbox(&self, before: &str) -> Result<u64>;
    async fn create_white_label(&self, organisation_id: &str, data_source_type: &str, client_id: &str, redirect_uri: &str, client_secret: Option<&str>) -> Result<WhiteLabel>;
    async fn white_labels(&self, organisation_id: &str, ids: &[i64], types: &[String], descending: bool, limit: i64, offset: i64) -> Result<(Vec<WhiteLabel>, i64)>;
    /// Replaces an organisation's app for a source type; `None` if it has none.
    async fn update_white_label(&self, organisation_id: &str, data_source_type: &str, client_id: &str, redirect_uri: &str, client_secret: Option<&str>) -> Result<Option<WhiteLabel>>;
    async fn delete_white_labels(&self, organisation_id: &str, ids: &[i64]) -> Result<u64>;
    /// An organisation's own OAuth app for a source type, secret decrypted.
    async fn oauth_app(&self, organisation_id: &str, data_source_type: &str) -> Result<Option<OAuthAppRow>>;
    /// Replaces a connection's item tree with a new listing.
    async fn source_items(&self, connection_id: &str, query: &ItemQuery) -> Result<(Vec<SourceItem>, i64)>;
    // Domain operations, one transaction each.
    /// Connects (or reconnects) a customer's site: the customer, the
    /// connection with its sealed credentials and settings, the events
    /// `events` gives for it (told whether it is new) and, when `wants_sync`
    /// says so, its first sync: one transaction.
    async fn connect(&self, op: Connect<'_>, events: impl FnOnce(&Connection, bool) -> Vec<Event>, wants_sync: impl FnOnce(&Connection) -> bool) -> Result<Connected>;
    /// Revokes a connection's access (credentials erased, syncing stopped,
    /// queued jobs dropped) with its events: one transaction. What was
    /// synced stays until deleted.
    async fn revoke(&self, organisation_id: &str, connection_id: &str, events: &[Event], actor: Option<Actor<'_>>) -> Result<()>;
    /// Adds to what a connection syncs (its new scope, and chunk settings
    /// if given), with its events and the sync that fetches it: one
    /// transaction.
    #[allow(clippy::too_many_arguments)] // the operation's whole input, from the API and the console
    async fn choose_scope(&self, organisation_id: &str, connection_id: &str, scope: &Value, chosen: &[String], chunking: Option<(i64, i64)>, content_kinds: Option<&str>, events: &[Event], actor: Option<Actor<'_>>) -> Result<()>;
    /// Asks for a file again (chunk settings too, if given) and queues the
    /// sync that fetches it: one transaction.
    async fn resync_file(&self, connection_id: &str, file_id: i64, chunking: Option<(i64, i64)>) -> Result<()>;
    /// Deletes files (by connection) with their events: one transaction.
    /// Returns how many were deleted.
    async fn delete_files_of(&self, organisation_id: &str, files: &[(String, Vec<i64>)], events: &[Event]) -> Result<u64>;
    /// Deletes customers with their connections and everything synced
    /// through them, with their events: one transaction. Returns how many.
    async fn delete_customers(&self, organisation_id: &str, customer_ids: &[String], events: &[Event]) -> Result<u64>;
    /// Queues a listing of a connection's item tree (a queued one absorbs
    /// it). Returns the job's id and whether it is new.
    async fn enqueue_items(&self, connection_id: &str, reason: &str) -> Result<(i64, bool)>;
    /// Queues a poll of every connection whose poll is due and sets its next.
    async fn enqueue_due_polls(&self, at: &str, next_at: &str) -> Result<Vec<String>>;
    /// Queues a poll of a connection now (a pushed event).
    async fn enqueue_poll(&self, connection_id: &str, reason: &str) -> Result<(i64, bool)>;
    /// Forgets the polls that ended before `before`; returns how many.
    async fn prune_polls(&self, before: &str) -> Result<u64>;
    /// Records where a connection's last poll looked from.
    async fn set_polled_at(&self, connection_id: &str, at: &str) -> Result<()>;
    /// Cancels a connection's item listing: a queued one is dropped; the
    /// running one's id is returned, for its worker to stop.
    async fn cancel_items(&self, connection_id: &str) -> Result<Option<i64>>;
    /// Writes one part of an item listing (spaces, or a listing page of
    /// pages) to staging, marked with the listing's start: the tree that
    /// readers see does not change until `finish_source_items`, which
    /// settles each item's `is_expandable` (the value given is not kept).
    async fn write_source_items(&self, connection_id: &str, listing: &str, items: &[crate::NewSourceItem]) -> Result<()>;
    /// Ends a complete item listing in one transaction: pages whose parent
    /// was not listed hang from their space, the listing replaces the tree
    /// (each item expandable when something hangs from it), and the
    /// connection says when its items were listed.
    async fn finish_source_items(&self, connection_id: &str, listing: &str) -> Result<()>;
    /// Sets customers' auto-sync settings (creating customers not seen
    /// yet) and moves each of their connections' next run where
    /// `next_sync` says: one transaction.
    async fn update_customers(&self, organisation_id: &str, customer_ids: &[String], sources: Option<&Value>, interval_hours: Option<i64>, next_sync: impl Fn(&Connection) -> Option<String>) -> Result<()>;
    // The admin console.
    /// A new admin of an organisation. The email is kept in lower case and
    /// names one admin across the server.
    async fn create_admin(&self, organisation_id: &str, email: &str, name: &str, password_hash: Option<&str>) -> Result<Admin>;
    async fn admin(&self, id: &str) -> Result<Admin>;
    /// The admin an email names, with the password hash if one is set.
    async fn admin_by_email(&self, email: &str) -> Result<Option<(Admin, Option<String>)>>;
    /// Sets an admin's password, signing out every other session of theirs.
    async fn set_admin_password(&self, admin_id: &str, password_hash: &str, keep_session: Option<&str>) -> Result<()>;
    async fn add_admin_link(&self, admin_id: &str, token_hash: &str, expires_at: &str) -> Result<()>;
    /// The admin a sign-in link is for, while it is unused and unexpired.
    async fn admin_link(&self, token_hash: &str) -> Result<Option<Admin>>;
    /// Uses a sign-in link once and opens a session with it: one
    /// transaction. `None` when the link is unknown, used or expired.
    async fn use_admin_link(&self, token_hash: &str, session: &NewSession<'_>) -> Result<Option<Admin>>;
    async fn create_admin_session(&self, admin_id: &str, session: &NewSession<'_>) -> Result<()>;
    /// The admin and CSRF token of a live session.
    async fn admin_session(&self, token_hash: &str) -> Result<Option<(Admin, String)>>;
    async fn end_admin_session(&self, token_hash: &str) -> Result<()>;
    /// The organisation's recent console actions, newest first.
    async fn admin_actions(&self, organisation_id: &str, limit: i64) -> Result<Vec<AdminAction>>;
    /// The organisation's own connections (not its API customers'), each
    /// with its spaces and how many pages and blog posts each holds: three
    /// queries, whatever the number of spaces.
    async fn console_sites(&self, organisation_id: &str) -> Result<Vec<ConsoleSite>>;
    /// The connections of an organisation's API customers, by customer.
    async fn customer_connections(&self, organisation_id: &str, limit: i64) -> Result<Vec<(String, Connection)>>;
    /// Spaces a console connection may choose, from its item listing, in
    /// alphabetical order: those whose name or key contains `query`.
    async fn space_options(&self, connection_id: &str, query: &str, limit: i64) -> Result<Vec<SpaceOption>>;
    /// Replaces a console connection's listed spaces (the ones an admin may
    /// choose) with `spaces`: one transaction.
    async fn replace_space_options(&self, connection_id: &str, spaces: &[crate::NewSourceItem]) -> Result<()>;
    /// Queues a sync of a connection now, recorded: one transaction.
    /// Whether a new job was queued (a queued one absorbs it).
    async fn queue_sync(&self, organisation_id: &str, connection_id: &str, reason: &str, actor: Option<Actor<'_>>, target: &str) -> Result<bool>;
    /// Takes one space out of a connection: its new scope, and everything
    /// synced from the space deleted (gone from search once the index
    /// applies the log) and kept out (a sync already running writes none
    /// of it back, until the space is chosen again), recorded: one
    /// transaction. Returns how many files went.
    async fn remove_space(&self, organisation_id: &str, connection_id: &str, space_key: &str, new_scope: &Value, actor: Option<Actor<'_>>) -> Result<u64>;
    /// Removes a connection with everything synced through it (gone from
    /// search once the index applies the log), recorded: one transaction.
    async fn remove_connection(&self, organisation_id: &str, connection_id: &str, actor: Option<Actor<'_>>, target: &str) -> Result<()>;
    /// A connection of an organisation by its data source number: one of
    /// its own (`own`, the console's) or one of its API customers'.
    async fn org_connection(&self, organisation_id: &str, data_source_id: i64, own: bool) -> Result<Option<Connection>>;
    /// An organisation by its id, its Carbon number or its name (`None`
    /// when none, or when the name is shared by several).
    async fn find_organisation(&self, id_or_name: &str) -> Result<Option<crate::Organisation>>;
    /// Every organisation, in the order they were made.
    async fn organisations(&self) -> Result<Vec<crate::Organisation>>;
    // What search needs: chunks, permissions, the index log.
    /// One page of the chunks of these files, in file then chunk order,
    /// and how many there are in all.
    async fn chunk_page(&self, file_ids: &[i64], limit: i64, offset: i64) -> Result<(Vec<(i64, Chunk)>, i64)>;
    /// What a file holds: its kind, title and media type, the body as
    /// synced (a page's storage format, an attachment's extracted text)
    /// and its Markdown; None for a file that is gone.
    async fn file_content(&self, file_id: i64) -> Result<Option<FileContent>>;
    /// The stored chunks of a file.
    async fn chunks(&self, file_id: i64) -> Result<Vec<Chunk>>;
    /// The id of a file by its Confluence identity.
    async fn file_id(&self, connection_id: &str, kind: &str, external_id: &str) -> Result<Option<i64>>;
    /// Turns Confluence's permissions on or off for a connection's
    /// searches. Every file is indexed again with (or without) its
    /// restrictions.
    async fn set_enforce_permissions(&self, connection_id: &str, enforce: bool) -> Result<()>;
    /// Sets a space's viewer permissions. Segments must belong to the
    /// connection's organisation; at most 10.
    async fn set_space_visibility(&self, connection_id: &str, space_id: &str, visibility: &Visibility) -> Result<()>;
    /// `set_space_visibility`, recorded as an admin's action: one
    /// transaction.
    async fn set_space_visibility_as(&self, connection_id: &str, space_id: &str, visibility: &Visibility, actor: Option<crate::Actor<'_>>) -> Result<()>;
    async fn create_segment(&self, organisation_id: &str, segment: &Segment) -> Result<Segment>;
    /// `create_segment`, recorded as an admin's action: one transaction.
    async fn create_segment_as(&self, organisation_id: &str, segment: &Segment, actor: Option<crate::Actor<'_>>) -> Result<Segment>;
    /// The end user (Carbon's customer) of an organisation, created if new.
    async fn ensure_end_user(&self, organisation_id: &str, customer_id: &str) -> Result<String>;
    async fn set_connection_end_user(&self, connection_id: &str, end_user_id: &str) -> Result<()>;
    /// Sets a file's tags (Carbon's key/value tags).
    async fn set_file_tags(&self, file_id: i64, tags: &BTreeMap<String, serde_json::Value>) -> Result<()>;
    /// Carbon's files/sync tags: the files of each chosen space, or of each
    /// chosen page's subtree (its descendant pages and their comments and
    /// attachments), get the tags chosen with it, merged over theirs. Files
    /// whose tags would not change are not written (nor re-indexed).
    async fn apply_chosen_tags(&self, connection_id: &str, chosen: &BTreeMap<String, BTreeMap<String, serde_json::Value>>) -> Result<u64>;
    /// Sets a connection's data source tags (Carbon's), within its
    /// organisation.
    async fn set_data_source_tags(&self, organisation_id: &str, connection_id: &str, tags: &BTreeMap<String, serde_json::Value>) -> Result<()>;
    /// Removes files by id (and, through the log, from search).
    async fn delete_files(&self, connection_id: &str, file_ids: &[i64]) -> Result<u64>;
    /// Disconnects: the connection and everything synced through it.
    async fn delete_connection(&self, connection_id: &str) -> Result<()>;
}

delegate! {
    /// What a sync engine reads and writes: a connection's spaces and
    /// files, its checkpoints and its runs.
    trait SyncState {
        async fn connection(&self, id: &str) -> Result<Connection>;
        /// The id of a connection's latest run.
        async fn last_run(&self, connection_id: &str) -> Result<Option<i64>>;
        /// Names known for these users or groups (`kind`: "user" or
        /// "group"), by id; those not known are absent.
        async fn principal_names(&self, connection_id: &str, kind: &str, ids: &[String]) -> Result<HashMap<String, String>>;
        /// Remembers the names of users or groups.
        async fn set_principal_names(&self, connection_id: &str, kind: &str, names: &[(String, String)]) -> Result<()>;
        async fn set_connection_status(&self, connection_id: &str, status: ConnectionStatus, error: Option<&str>, synced: bool) -> Result<()>;
        async fn upsert_spaces(&self, connection_id: &str, spaces: &[SpaceRow], run: i64) -> Result<()>;
        async fn spaces(&self, connection_id: &str) -> Result<Vec<SpaceRow>>;
        /// Removes spaces not seen in `run`, with everything in them: a space
        /// deleted in Confluence, no longer readable, or no longer chosen.
        /// Returns the number of files removed, by kind.
        async fn delete_unseen_spaces(&self, connection_id: &str, run: i64) -> Result<HashMap<String, u64>>;
        /// Removes one space and everything in it (it is gone from Confluence),
        /// with a checkpoint in the same transaction. Returns files removed by kind.
        async fn delete_space(&self, connection_id: &str, space_id: &str, checkpoint: Option<(&str, &str)>) -> Result<HashMap<String, u64>>;
        /// What the store holds of these files (by external id).
        async fn file_states(&self, connection_id: &str, kind: &str, ids: &[String]) -> Result<HashMap<String, FileState>>;
        /// Writes files, marks them seen in `run`, and moves a checkpoint, all
        /// in one transaction: after a crash, either all of it is there or
        /// none, and the checkpoint never runs ahead of the data.
        async fn write_batch(&self, connection_id: &str, run: i64, files: &[FileUpsert], seen: &[(&str, String)], checkpoint: Option<(&str, &str)>) -> Result<()>;
        /// Deletes the files of `kind` not seen in `run` (within one space when
        /// given), with a checkpoint in the same transaction. Call only after a
        /// listing that ran to its end.
        async fn delete_unseen_files(&self, connection_id: &str, kind: &str, space_id: Option<&str>, run: i64, checkpoint: Option<(&str, &str)>) -> Result<u64>;
        /// Whether the connection holds any file of this kind in this space.
        async fn has_files(&self, connection_id: &str, kind: &str, space_id: &str) -> Result<bool>;
        /// The planner's statistics refreshed after a bulk change.
        async fn refresh_statistics(&self) -> Result<()>;
        async fn checkpoint(&self, connection_id: &str, name: &str) -> Result<Option<String>>;
        async fn set_checkpoint(&self, connection_id: &str, name: &str, value: &str) -> Result<()>;
        async fn clear_checkpoints(&self, connection_id: &str) -> Result<()>;
        async fn start_job(&self, connection_id: &str, kind: &str) -> Result<i64>;
        async fn finish_job(&self, job_id: i64, status: &str, stats: &serde_json::Value, error: Option<&str>) -> Result<()>;
        /// Sets the read restrictions of pages or blog posts where they
        /// differ from what is stored; returns how many changed.
        async fn set_read_restrictions(&self, connection_id: &str, kind: &str, restrictions: &[(String, ReadRestriction)]) -> Result<u64>;
        /// Who holds read in a space (`None`: not known, nobody passes).
        async fn set_space_principals(&self, connection_id: &str, space_id: &str, principals: Option<&SpacePrincipals>) -> Result<()>;
    }
}

delegate! {
    /// Who may read what: the spaces' permissions and visibility, and the
    /// organisation's viewer segments.
    trait Audiences {
        /// The spaces of an organisation's connections (one customer's only,
        /// when given), with what decides who may read them.
        async fn scopes(&self, organisation_id: &str, customer_id: Option<&str>) -> Result<Vec<ScopeRow>>;
        async fn segments(&self, organisation_id: &str) -> Result<Vec<Segment>>;
    }
}

delegate! {
    /// What a search index follows: the log of changed files and what each
    /// file holds for the index.
    trait IndexSource {
        /// Changes after `after`, oldest first.
        async fn index_changes(&self, after: LogPosition, limit: i64) -> Result<Vec<IndexChange>>;
        /// A position every change committed so far is at or before.
        async fn index_head(&self) -> Result<LogPosition>;
        /// How many logged changes come after a position: an index's lag.
        async fn index_pending(&self, after: LogPosition) -> Result<i64>;
        /// How far the log has been pruned: an index behind it rebuilds.
        async fn index_floor(&self) -> Result<LogPosition>;
        /// Records where a node's index replica has applied the log to.
        async fn set_index_cursor(&self, node_id: &str, position: LogPosition) -> Result<()>;
        /// Forgets the changes every replica seen within `live` has
        /// applied; returns the new floor.
        async fn prune_index_log(&self, live: std::time::Duration) -> Result<LogPosition>;
        /// Ids of every file, in id order, `limit` at a time after `after`.
        async fn file_ids(&self, after: i64, limit: i64) -> Result<Vec<i64>>;
        /// The files and everything whose readers follow from them: the
        /// pages below them, and the attachments and comments of all of
        /// them (each id once).
        async fn subtree(&self, file_ids: &[i64]) -> Result<Vec<i64>>;
        /// What the index needs of these files; files that no longer exist
        /// are absent from the answer.
        async fn indexable(&self, file_ids: &[i64]) -> Result<Vec<IndexableFile>>;
        /// Stores vectors computed for chunks: (file id, chunk index, vector).
        async fn set_vectors(&self, vectors: &[(i64, i64, Vec<f32>)]) -> Result<()>;
    }
}

fn migrator(migrations: &'static [(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    Migrator {
        migrations: Cow::Owned(
            migrations
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

/// The migration files in `dir` as (version, description, SQL), as
/// `sqlx::migrate!` reads them.
#[cfg(test)]
fn migration_files(dir: &str) -> Vec<(i64, String, String)> {
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
    files
}

#[cfg(test)]
fn embedded(migrations: &[(i64, &str, &str)]) -> Vec<(i64, String, String)> {
    migrations
        .iter()
        .map(|&(v, d, sql)| (v, d.to_string(), sql.to_string()))
        .collect()
}

pub(crate) use dialect::Ts;

/// Now, as the store writes times.
pub(crate) fn now() -> Ts {
    Ts::now()
}

pub(crate) fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::thread_rng().gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}
