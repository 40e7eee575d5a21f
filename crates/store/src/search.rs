//! What search needs from the store: chunks, who may read what (read
//! restrictions, space permissions, viewer permissions and segments), and
//! the index log that keeps the search index in step with the store.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A chunk as a sync writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewChunk {
    pub text: String,
    pub heading_path: Vec<String>,
    pub start: usize,
    pub end: usize,
    pub tokens: usize,
}

/// A stored chunk, with its vector once one was computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub idx: i64,
    pub text: String,
    pub heading_path: Vec<String>,
    pub vector: Option<Vec<f32>>,
}

/// What a file holds (see `Store::file_content`).
#[derive(Clone, Debug)]
pub struct FileContent {
    pub connection_id: String,
    pub kind: String,
    pub external_id: String,
    pub title: String,
    pub media_type: Option<String>,
    /// Where a person opens it in Confluence.
    pub url: Option<String>,
    pub labels: Vec<String>,
    /// When the store last changed it (a sync that saw a new version).
    pub updated_at: String,
    pub space_key: Option<String>,
    pub space_name: Option<String>,
    pub body: Option<String>,
    pub markdown: Option<String>,
}

/// A content's own read restriction in Confluence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadRestriction {
    /// No restriction of its own.
    Open,
    /// Only these users (account ids) and members of these groups (ids).
    Only {
        users: Vec<String>,
        groups: Vec<String>,
    },
    /// Not known: nobody passes it.
    Unknown,
}

#[derive(Serialize, Deserialize)]
struct OnlyColumn {
    users: Vec<String>,
    groups: Vec<String>,
}

pub(crate) const UNKNOWN: &str = r#"{"unknown":true}"#;

impl ReadRestriction {
    /// The column's form: NULL for open, JSON otherwise.
    pub(crate) fn to_column(&self) -> Option<String> {
        match self {
            ReadRestriction::Open => None,
            ReadRestriction::Only { users, groups } => Some(
                serde_json::to_string(&OnlyColumn {
                    users: users.clone(),
                    groups: groups.clone(),
                })
                .unwrap_or_else(|_| UNKNOWN.to_string()),
            ),
            ReadRestriction::Unknown => Some(UNKNOWN.to_string()),
        }
    }

    /// Anything unreadable is Unknown: it fails closed.
    pub(crate) fn from_column(column: Option<&str>) -> ReadRestriction {
        match column {
            None => ReadRestriction::Open,
            Some(text) => match serde_json::from_str::<OnlyColumn>(text) {
                Ok(only) => ReadRestriction::Only {
                    users: only.users,
                    groups: only.groups,
                },
                Err(_) => ReadRestriction::Unknown,
            },
        }
    }
}

/// Zendesk's viewer permissions of a space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "visibility", rename_all = "snake_case")]
pub enum Visibility {
    Everyone,
    Segments { segment_ids: Vec<String> },
}

/// A user segment (Zendesk's): who it admits is decided by
/// `index::Viewer::in_segment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub id: String,
    pub name: String,
    /// `signed_in` (every signed-in user) or `staff` (agents and admins).
    pub user_type: String,
    /// All of these tags.
    pub tags: Vec<String>,
    /// At least one of these tags (when any).
    pub or_tags: Vec<String>,
    /// In at least one of these organisations (when any).
    pub organization_ids: Vec<String>,
    /// In at least one of these groups (when any).
    pub group_ids: Vec<String>,
}

/// A space that a search may reach, with what decides who may read it.
#[derive(Clone, Debug)]
pub struct ScopeRow {
    pub connection_id: String,
    pub space_id: String,
    pub space_key: String,
    pub enforce_permissions: bool,
    /// Who holds read in Confluence; `None` while unknown.
    pub read_principals: Option<SpacePrincipals>,
    pub visibility: Visibility,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpacePrincipals {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexChange {
    pub position: LogPosition,
    pub file_id: i64,
    pub subtree: bool,
}

/// A place in the index log: the writing transaction, then the change's
/// sequence number, compared in that order. On SQLite, whose writers take
/// turns, `tx` is always 0 and the sequence is the commit order; on
/// PostgreSQL a reader takes only changes of transactions that have all
/// ended, so no change can later appear behind a position once passed
/// (ARCHITECTURE.md, "The index log").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogPosition {
    pub tx: i64,
    pub seq: i64,
}

/// Everything the index holds of one file.
#[derive(Clone, Debug)]
pub struct IndexableFile {
    pub file_id: i64,
    pub organisation_id: String,
    pub connection_id: String,
    /// Carbon's customer id of the connection's end user, if any.
    pub customer_id: Option<String>,
    pub kind: String,
    pub external_id: String,
    pub space_id: Option<String>,
    pub title: String,
    pub url: Option<String>,
    pub labels: Vec<String>,
    pub tags: BTreeMap<String, serde_json::Value>,
    pub enforce_permissions: bool,
    /// The read restrictions that apply: the file's own (or its
    /// container's) first, then each ancestor's. An ancestor the store
    /// does not hold is `Unknown`.
    pub restrictions: Vec<ReadRestriction>,
    pub chunks: Vec<Chunk>,
}

/// A vector as stored (in the store and in the index): f32 little endian.
pub fn vector_to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn vector_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
