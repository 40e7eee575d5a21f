//! Domain operations: what the API and the admin console do, one
//! transaction each. Each writes its change, the webhook events it causes
//! and the sync it queues together, so that a crash leaves the operation
//! whole or absent, never a change without its event or its job.
//!
//! Each begins by writing (an upsert or an update), so that it holds
//! SQLite's write lock from its first statement: a transaction that reads
//! first can fail outright when another connection commits in between.

use crate::Connection;
use serde_json::Value;

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
    /// Looks for recent changes and syncs only those.
    Poll,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Sync => "sync",
            JobKind::Items => "items",
            JobKind::Poll => "poll",
        }
    }

    pub fn parse(text: &str) -> JobKind {
        match text {
            "items" => JobKind::Items,
            "poll" => JobKind::Poll,
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
    /// The kinds of content it syncs (`Connection::content_kinds`);
    /// `None`: all of them for a new connection, unchanged for an existing one.
    pub content_kinds: Option<&'a str>,
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
