//! What the HTTP API keeps: organisations with their API keys, customer
//! tokens, OAuth states, end users' sync settings, the sync queue and its
//! schedule, webhooks and their outbox, organisations' own OAuth apps, the
//! item tree, and the queries the API answers (files, data sources, users).
//!
//! Every query that answers a caller takes the organisation (and, where the
//! data is a customer's, the end user) and filters by it in SQL: an id
//! that belongs to someone else reads as not found.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Organisation {
    pub id: String,
    /// Carbon's integer `organization_id`.
    pub number: i64,
    pub name: String,
    pub created_at: String,
    /// The file picker hides its branding.
    pub remove_branding: bool,
}

/// A customer token as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerToken {
    pub organisation: Organisation,
    pub customer_id: String,
    /// The viewer the token was minted for, as JSON (`None`: the narrowest).
    pub viewer: Option<String>,
    /// The customer's end user, read with the token (`None`: not one yet).
    pub end_user: Option<EndUser>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EndUser {
    pub id: String,
    /// Carbon's integer `organization_user_id`.
    pub number: i64,
    pub organisation_id: String,
    pub customer_id: String,
    pub created_at: String,
    pub updated_at: String,
    /// A list of source types, or "ALL"; `None`: every source (the default).
    pub auto_sync_sources: Option<serde_json::Value>,
    /// Hours; `None`: the organisation's default.
    pub auto_sync_interval: Option<i64>,
}

/// What checking an OAuth state found.
#[derive(Debug, PartialEq)]
pub enum StateOutcome {
    /// Valid, and now consumed.
    Valid {
        organisation_id: String,
        customer_id: String,
        request: serde_json::Value,
    },
    Used,
    Expired,
    Unknown,
}

#[derive(Clone, Debug)]
pub struct SyncJob {
    pub id: i64,
    pub connection_id: String,
    pub kind: crate::JobKind,
    pub reason: String,
    pub status: crate::JobStatus,
    pub snapshot: Option<String>,
    /// The node whose lease the job runs under.
    pub locked_by: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WebhookRow {
    pub id: i64,
    pub organisation_id: String,
    pub url: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One delivery due: its body and the key that signs it (decrypted).
#[derive(Clone)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub signing_key: Vec<u8>,
    pub body: String,
    pub attempts: i64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WhiteLabel {
    pub id: i64,
    pub organisation_id: String,
    pub data_source_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub has_client_secret: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// An organisation's own OAuth app, with its secret (decrypted).
#[derive(Clone)]
pub struct OAuthAppRow {
    pub client_id: String,
    pub redirect_uri: String,
    pub client_secret: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SourceItem {
    pub id: i64,
    pub external_id: String,
    pub item_type: String,
    pub name: String,
    pub parent_external_id: Option<String>,
    pub root_external_id: Option<String>,
    pub external_url: Option<String>,
    pub is_expandable: bool,
    pub synced_at: String,
    pub created_at: String,
}

/// An item as items/sync lists it.
pub struct NewSourceItem {
    pub external_id: String,
    pub item_type: &'static str,
    pub name: String,
    pub parent_external_id: Option<String>,
    pub root_external_id: Option<String>,
    pub external_url: Option<String>,
    pub is_expandable: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ItemQuery {
    pub parent_external_id: Option<String>,
    pub name: Option<String>,
    pub item_types: Vec<String>,
    pub external_ids: Vec<String>,
    pub ids: Vec<i64>,
    pub order_by_id: bool,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// A file as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ApiFile {
    pub id: i64,
    pub data_source_id: i64,
    pub kind: String,
    pub external_id: String,
    pub url: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub title: String,
    pub parent_file_id: Option<i64>,
    pub tags: serde_json::Value,
    pub version: i64,
    pub media_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub created_at: Option<String>,
    pub updated_at: String,
    pub chunk_size: i64,
    pub chunk_overlap: i64,
    pub characters: i64,
    pub chunks: i64,
    /// The index has a change to this file it has not applied (asked for
    /// with `FileQuery::pending_after`; false otherwise).
    pub pending_index: bool,
}

#[derive(Clone, Debug, Default)]
pub struct FileQuery {
    pub ids: Vec<i64>,
    pub external_ids: Vec<String>,
    pub statuses: Vec<String>,
    pub data_source_ids: Vec<i64>,
    pub parent_file_ids: Vec<i64>,
    /// Substring of the title.
    pub name: Option<String>,
    /// Every key must match (a list value: any of its elements).
    pub tags: BTreeMap<String, serde_json::Value>,
    pub order_by: FileOrder,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
    /// Say of each file whether the index log holds a change to it after
    /// this position (the index's applied one): `ApiFile::pending_index`.
    pub pending_after: Option<crate::LogPosition>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum FileOrder {
    CreatedAt,
    #[default]
    UpdatedAt,
    Name,
    FileSize,
    Id,
}

#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    pub customer_ids: Vec<String>,
    pub numbers: Vec<i64>,
    pub by_updated: bool,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}
