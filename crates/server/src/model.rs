//! Request and response bodies, with Carbon's field names and defaults.
//! Unknown fields are ignored, as Carbon's API does, so that its SDKs'
//! extra fields pass. Their JSON Schemas make the OpenAPI document.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A secret in a request or a response (a token, a key, a client secret):
/// `Debug` prints `[REDACTED]`, so no log line or error can carry it, and
/// the text is read only through `expose`. It serialises as the string it
/// holds: responses that hand a secret out (once) still can.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretText(secrecy::SecretString);

impl SecretText {
    pub fn new(text: String) -> SecretText {
        SecretText(text.into())
    }

    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Serialize for SecretText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl JsonSchema for SecretText {
    fn schema_name() -> String {
        "SecretText".into()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(generator: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(generator)
    }
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Pagination {
    /// 1 to 250.
    #[schemars(schema_with = "schema::limit")]
    pub limit: i64,
    #[schemars(schema_with = "schema::offset")]
    pub offset: i64,
    pub starting_id: i64,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            limit: 10,
            offset: 0,
            starting_id: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum OrderDir {
    #[default]
    Asc,
    Desc,
}

// OAuth and connecting.

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OAuthUrlRequest {
    /// CONFLUENCE (the only source confsync connects).
    #[schemars(schema_with = "schema::confluence_only")]
    pub service: String,
    /// The site: `acme` for https://acme.atlassian.net, or the name of a
    /// site the operator configured.
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_subdomain")]
    pub confluence_subdomain: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_chunk_size")]
    pub chunk_size: Option<i64>,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_chunk_overlap")]
    pub chunk_overlap: Option<i64>,
    /// Sync everything the account can read once connected (default true);
    /// false waits for /integrations/files/sync.
    #[serde(default)]
    pub sync_files_on_connection: Option<bool>,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_tags")]
    pub data_source_tags: Option<BTreeMap<String, Value>>,
    /// Reconnect this data source (its credentials are replaced).
    #[serde(default)]
    pub data_source_id: Option<i64>,
    #[serde(default)]
    pub connecting_new_account: Option<bool>,
    #[serde(default)]
    pub request_id: Option<String>,
    /// confsync: apply Confluence's space permissions and page
    /// restrictions to searches (sync as an account that reads everything).
    #[serde(default)]
    pub enforce_permissions: Option<bool>,
    /// List the site's spaces and pages after the connect, for a picker
    /// (default true).
    #[serde(default)]
    pub sync_source_items: Option<bool>,
    #[serde(default)]
    pub file_sync_config: Option<FileSyncConfigInput>,
}

/// Carbon's `file_sync_config`, of which confsync reads what applies to
/// Confluence; the other fields are accepted and ignored.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct FileSyncConfigInput {
    /// Whether attachments are synced (default: they are). Pages, blog
    /// posts and comments always are.
    pub sync_attachments: Option<bool>,
}

impl FileSyncConfigInput {
    /// The content kinds it asks for, if it says.
    pub fn content_kinds(&self) -> Option<String> {
        let kinds = sync::ContentKinds {
            attachments: self.sync_attachments?,
            ..Default::default()
        };
        Some(kinds.names())
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct OAuthUrlResponse {
    pub oauth_url: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConfluenceAuthentication {
    /// CONFLUENCE.
    #[schemars(schema_with = "schema::confluence_only")]
    pub source: String,
    /// The site, as for /integrations/oauth_url.
    #[schemars(schema_with = "schema::subdomain")]
    pub subdomain: String,
    /// An API token (with `username`), a personal access token (Data
    /// Center), or an OAuth access token (with `refresh_token`).
    #[schemars(schema_with = "schema::access_token")]
    pub access_token: SecretText,
    #[serde(default)]
    pub refresh_token: Option<SecretText>,
    /// The account's email, for an API token.
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_email")]
    pub username: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SyncOptionsInput {
    #[schemars(schema_with = "schema::optional_chunk_size")]
    pub chunk_size: Option<i64>,
    #[schemars(schema_with = "schema::optional_chunk_overlap")]
    pub chunk_overlap: Option<i64>,
    pub sync_files_on_connection: Option<bool>,
    #[schemars(schema_with = "schema::optional_tags")]
    pub data_source_tags: Option<BTreeMap<String, Value>>,
    pub enforce_permissions: Option<bool>,
    /// List the site's spaces and pages after the connect (default true).
    pub sync_source_items: Option<bool>,
    pub file_sync_config: Option<FileSyncConfigInput>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConnectRequest {
    pub authentication: ConfluenceAuthentication,
    #[serde(default)]
    pub sync_options: SyncOptionsInput,
}

/// Carbon's OrganizationUserDataSourceAPI.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DataSource {
    pub id: i64,
    pub data_source_external_id: Option<String>,
    pub data_source_type: String,
    /// Never the credentials: always null.
    pub token: Option<Value>,
    /// QUEUED_FOR_SYNCING, SYNCING, READY or SYNC_ERROR.
    pub sync_status: String,
    pub source_items_synced_at: Option<String>,
    pub organization_user_id: i64,
    pub organization_id: i64,
    pub organization_supplied_user_id: String,
    pub revoked_access: bool,
    pub last_synced_at: String,
    /// ADD, UPDATE, CANCEL or REVOKE.
    pub last_sync_action: String,
    pub enable_auto_sync: Option<bool>,
    pub created_at: String,
    pub updated_at: String,
    pub files_synced_at: Option<String>,
    pub data_source_metadata: Value,
    pub tags: Value,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ConnectResponse {
    pub data_source: DataSource,
    pub sync_url: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DataSourceIdRequest {
    pub data_source_id: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SuccessResponse {
    pub success: bool,
}

// The item tree.

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ItemFilters {
    #[schemars(schema_with = "schema::optional_strings_1000")]
    pub external_ids: Option<Vec<String>>,
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub ids: Option<Vec<i64>>,
    pub name: Option<String>,
    /// SPACE or PAGE.
    #[schemars(schema_with = "schema::optional_item_types")]
    pub item_types: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ItemOrderBy {
    #[default]
    Name,
    Id,
    DirectoriesFirst,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ItemsListRequest {
    pub data_source_id: i64,
    /// The parent's external id (a space key, or a page id); the spaces
    /// when absent.
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub filters: Option<ItemFilters>,
    #[serde(default)]
    pub pagination: Pagination,
    #[serde(default)]
    pub order_by: ItemOrderBy,
    #[serde(default)]
    pub order_dir: OrderDir,
}

/// Carbon's ExternalSourceItem.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Item {
    pub id: i64,
    pub external_id: String,
    pub source: String,
    pub name: String,
    pub synced_at: String,
    pub is_selectable: Option<bool>,
    pub is_expandable: Option<bool>,
    pub organization_id: i64,
    pub organization_supplied_user_id: String,
    pub organization_user_id: i64,
    pub organization_user_data_source_id: i64,
    pub organization_user_file_to_sync_id: Option<i64>,
    pub parent_external_id: Option<String>,
    /// SPACE or PAGE.
    pub item_type: Option<String>,
    pub root_external_id: Option<String>,
    pub external_url: Option<String>,
    pub file_format: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ItemsListResponse {
    pub items: Vec<Item>,
    pub count: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SyncId {
    Id(String),
    WithRoot { id: String, root_id: String },
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FilesSyncRequest {
    pub data_source_id: i64,
    /// Space keys (the whole space) and page ids (the page and its
    /// descendants), as items/list gives them.
    #[schemars(schema_with = "schema::sync_ids")]
    pub ids: Vec<SyncId>,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_tags")]
    pub tags: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_chunk_size")]
    pub chunk_size: Option<i64>,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_chunk_overlap")]
    pub chunk_overlap: Option<i64>,
    /// What kinds of content the data source syncs from now on.
    #[serde(default)]
    pub file_sync_config: Option<FileSyncConfigInput>,
}

// Data sources.

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct DataSourceFilters {
    pub source: Option<String>,
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub ids: Option<Vec<i64>>,
    pub revoked_access: Option<bool>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum CreatedOrUpdated {
    CreatedAt,
    #[default]
    UpdatedAt,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct DataSourcesRequest {
    pub pagination: Pagination,
    pub order_by: CreatedOrUpdated,
    pub order_dir: OrderDir,
    pub filters: DataSourceFilters,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DataSourcesResponse {
    pub results: Vec<DataSource>,
    pub count: i64,
}

// Files.

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct FileFilters {
    /// CONFLUENCE, or a list of source types.
    #[schemars(schema_with = "schema::optional_sources")]
    pub source: Option<Value>,
    pub name: Option<String>,
    #[schemars(schema_with = "schema::optional_tags")]
    pub tags: Option<BTreeMap<String, Value>>,
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub ids: Option<Vec<i64>>,
    #[schemars(schema_with = "schema::optional_strings_1000")]
    pub external_file_ids: Option<Vec<String>>,
    #[schemars(schema_with = "schema::optional_sync_statuses")]
    pub sync_statuses: Option<Vec<String>>,
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub parent_file_ids: Option<Vec<i64>>,
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub organization_user_data_source_id: Option<Vec<i64>>,
    pub include_all_children: bool,
    pub non_synced_only: bool,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum FileOrderBy {
    CreatedAt,
    #[default]
    UpdatedAt,
    Name,
    LastSync,
    FileSize,
    Id,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct UserFilesRequest {
    pub pagination: Pagination,
    pub order_by: FileOrderBy,
    pub order_dir: OrderDir,
    pub filters: FileFilters,
}

// Carbon's older and secondary endpoints (`compat.rs`).

/// Carbon's DeleteFilesQueryInput (its older delete).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct DeleteFilesV1Request {
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub file_ids: Option<Vec<i64>>,
    #[schemars(schema_with = "schema::optional_sync_statuses")]
    pub sync_statuses: Option<Vec<String>>,
    /// Only files that are not READY.
    pub delete_non_synced_only: bool,
    pub send_webhook: bool,
    /// Accepted; a page's comments and attachments are files of their own,
    /// deleted when named.
    pub delete_child_files: bool,
}

/// Carbon's OrganizationUserFileTagCreate.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileTagsAddRequest {
    pub organization_user_file_id: i64,
    #[schemars(schema_with = "schema::tags")]
    pub tags: BTreeMap<String, Value>,
}

/// Carbon's OrganizationUserFileTagsRemove.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileTagsRemoveRequest {
    pub organization_user_file_id: i64,
    pub tags: Vec<String>,
}

/// Carbon's AddDataSourceTagsInput.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DataSourceTagsAddRequest {
    pub data_source_id: i64,
    #[schemars(schema_with = "schema::tags")]
    pub tags: BTreeMap<String, Value>,
}

/// Carbon's RemoveDataSourceTagsInput.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DataSourceTagsRemoveRequest {
    pub data_source_id: i64,
    #[serde(default)]
    pub tags_to_remove: Vec<String>,
    #[serde(default)]
    pub remove_all_tags: bool,
}

/// Carbon's ListRequest (the deprecated per-source listing).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DirectoryListRequest {
    pub data_source_id: i64,
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// Carbon's DirectoryItem.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DirectoryItem {
    pub id: String,
    pub name: String,
    pub is_synced: bool,
    pub has_children: bool,
}

/// Carbon's ListResponse.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DirectoryListResponse {
    pub data: Vec<DirectoryItem>,
}

// Content out of the store, without search.

/// Carbon's PresignedURLResponse: a link that works without credentials
/// until it expires.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PresignedUrlResponse {
    pub presigned_url: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChunkFilters {
    pub user_file_id: i64,
    /// Accepted for Carbon's clients; a file's chunks have one embedding.
    #[serde(default)]
    pub embedding_model: Option<String>,
}

/// Carbon's EmbeddingsAndChunksQueryInput: one file's chunks.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TextChunksRequest {
    #[serde(default)]
    pub pagination: Pagination,
    /// Chunks come in their file's order.
    #[serde(default)]
    pub order_by: Option<String>,
    #[serde(default)]
    pub order_dir: OrderDir,
    pub filters: ChunkFilters,
    #[serde(default)]
    pub include_vectors: bool,
}

/// Carbon's EmbeddingsAndChunksQueryInputV2: the chunks of the files the
/// filters match (as in user_files_v2), in file then chunk order.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChunksRequest {
    #[serde(default)]
    pub pagination: Pagination,
    #[serde(default)]
    pub order_by: Option<String>,
    #[serde(default)]
    pub order_dir: OrderDir,
    pub filters: FileFilters,
    #[serde(default)]
    pub include_vectors: bool,
}

/// Carbon's EmbeddingAndChunk.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChunkOut {
    pub user_file_id: i64,
    pub chunk_index: Option<i64>,
    pub source_content: String,
    pub embedding: Option<Vec<f32>>,
    pub content_metadata: Option<Value>,
}

/// Carbon's EmbeddingsAndChunksResponse.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChunksResponse {
    pub results: Vec<ChunkOut>,
    pub count: i64,
}

/// Carbon's UserFile.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserFile {
    pub id: i64,
    pub source: &'static str,
    pub organization_id: i64,
    pub organization_user_id: Option<i64>,
    pub organization_supplied_user_id: String,
    pub organization_user_data_source_id: Option<i64>,
    pub external_file_id: String,
    pub external_url: Option<String>,
    /// QUEUED_FOR_SYNC, SYNCING, READY or SYNC_ERROR.
    pub sync_status: String,
    pub sync_error_message: Option<String>,
    pub last_sync: Option<String>,
    pub tags: Option<Value>,
    pub file_statistics: Option<FileStatistics>,
    pub file_metadata: Option<FileMetadata>,
    pub embedding_properties: Option<Value>,
    pub chunk_size: Option<i64>,
    pub chunk_overlap: Option<i64>,
    pub chunk_properties: Option<Value>,
    pub ocr_properties: Value,
    pub ocr_job_started_at: Option<String>,
    pub name: Option<String>,
    pub parent_id: Option<i64>,
    pub enable_auto_sync: Option<bool>,
    pub presigned_url: Option<String>,
    pub parsed_text_url: Option<String>,
    pub additional_presigned_urls: Option<Value>,
    pub skip_embedding_generation: bool,
    pub source_created_at: Option<String>,
    pub generate_sparse_vectors: Option<bool>,
    pub request_id: Option<String>,
    pub upload_id: Option<String>,
    pub sync_properties: Value,
    pub messages_metadata: Value,
    pub file_contents_deleted: bool,
    pub supports_cold_storage: bool,
    pub hot_storage_time_to_live: Option<i64>,
    pub embedding_storage_status: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

/// Carbon's FileStatistics, as a type (a listing writes a hundred of them:
/// no intermediate JSON values).
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileStatistics {
    pub file_format: Option<&'static str>,
    pub file_size: i64,
    pub num_characters: i64,
    pub num_embeddings: i64,
    pub mime_type: Option<String>,
}

/// What confsync tells of a file's Confluence item.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileMetadata {
    /// page, blogpost, comment or attachment.
    pub kind: String,
    pub title: String,
    pub version: i64,
    pub media_type: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UserFilesResponse {
    pub results: Vec<UserFile>,
    pub count: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResyncFileRequest {
    pub file_id: i64,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_chunk_size")]
    pub chunk_size: Option<i64>,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_chunk_overlap")]
    pub chunk_overlap: Option<i64>,
    #[serde(default)]
    pub force_embedding_generation: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DeleteFilesRequest {
    #[schemars(schema_with = "schema::delete_filters")]
    pub filters: FileFilters,
    #[serde(default)]
    pub send_webhook: bool,
    #[serde(default)]
    pub preserve_file_record: bool,
}

// Users.

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateUsersRequest {
    /// 1 to 100 customer ids.
    #[schemars(schema_with = "schema::customer_ids")]
    pub customer_ids: Vec<String>,
    /// Source types (CONFLUENCE) or "ALL"; an empty list turns auto-sync off.
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_auto_sync_sources")]
    pub auto_sync_enabled_sources: Option<Value>,
    /// Hours: 3, 6, 12 or 24.
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_interval")]
    pub auto_sync_interval: Option<i64>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ListUsersFilters {
    #[schemars(schema_with = "schema::optional_customer_ids")]
    pub customer_ids: Option<Vec<String>>,
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub carbon_user_ids: Option<Vec<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ListUsersRequest {
    pub pagination: Pagination,
    pub filters: ListUsersFilters,
    pub order_by: CreatedOrUpdated,
    pub order_dir: OrderDir,
    pub include_count: bool,
}

impl Default for ListUsersRequest {
    fn default() -> Self {
        ListUsersRequest {
            pagination: Pagination::default(),
            filters: ListUsersFilters::default(),
            order_by: CreatedOrUpdated::CreatedAt,
            order_dir: OrderDir::Desc,
            include_count: false,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UserOut {
    pub id: i64,
    pub organization_id: i64,
    pub organization_supplied_user_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub enabled_features: Option<Value>,
    pub custom_limits: Value,
    pub auto_sync_enabled_sources: Vec<Value>,
    /// confsync: hours between scheduled syncs.
    pub auto_sync_interval: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListUsersResponse {
    pub users: Vec<UserOut>,
    pub count: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteUsersRequest {
    #[schemars(schema_with = "schema::customer_ids")]
    pub customer_ids: Vec<String>,
}

// Search.

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HybridTuning {
    #[schemars(schema_with = "schema::weight")]
    pub weight_a: f32,
    #[schemars(schema_with = "schema::weight")]
    pub weight_b: f32,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EmbeddingsRequest {
    #[schemars(schema_with = "schema::query")]
    pub query: String,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_vector")]
    pub query_vector: Option<Vec<f32>>,
    /// 1 to 100.
    #[schemars(schema_with = "schema::k")]
    pub k: i64,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_ids_10000")]
    pub file_ids: Option<Vec<i64>>,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub parent_file_ids: Option<Vec<i64>>,
    #[serde(default)]
    pub include_all_children: bool,
    /// Every key must match (a list value: any of its elements).
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_tags")]
    pub tags: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub include_tags: Option<bool>,
    #[serde(default)]
    pub include_vectors: Option<bool>,
    #[serde(default)]
    pub hybrid_search: Option<bool>,
    #[serde(default)]
    pub hybrid_search_tuning_parameters: Option<HybridTuning>,
    /// confsync: who the results are for (audience segments, and the
    /// Confluence account and groups where permissions are enforced):
    /// {"signed_in", "agent", "tags", "organization_ids", "group_ids",
    /// "confluence_account_id", "confluence_groups"}. Anonymous when absent.
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_viewer")]
    pub viewer: Option<Value>,
    /// confsync: only these data sources.
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub data_source_ids: Option<Vec<i64>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Document {
    pub content: String,
    pub file_id: i64,
    pub parent_file_id: Option<i64>,
    pub source: Option<String>,
    pub source_url: Option<String>,
    pub source_type: Option<String>,
    pub presigned_url: Option<String>,
    pub tags: Option<Value>,
    pub vector: Option<Vec<f32>>,
    pub score: Option<f32>,
    pub rank: Option<i64>,
    pub content_metadata: Option<Value>,
    pub chunk_index: Option<i64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EmbeddingsResponse {
    pub documents: Vec<Document>,
}

// Webhooks.

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddWebhookRequest {
    #[schemars(schema_with = "schema::http_url")]
    pub url: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookOut {
    pub id: i64,
    pub organization_id: i64,
    pub url: String,
    /// Shown once, here: it signs every delivery (Carbon-Signature).
    pub signing_key: SecretText,
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookNoKey {
    pub id: i64,
    pub organization_id: i64,
    pub url: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WebhookFilters {
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub ids: Option<Vec<i64>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WebhooksRequest {
    pub pagination: Pagination,
    pub order_by: CreatedOrUpdated,
    pub order_dir: OrderDir,
    pub filters: WebhookFilters,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhooksResponse {
    pub results: Vec<WebhookNoKey>,
    pub count: i64,
}

// White labels.

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WhiteLabelCredentials {
    #[schemars(schema_with = "schema::client_id")]
    pub client_id: String,
    #[schemars(schema_with = "schema::http_url")]
    pub redirect_uri: String,
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_client_secret")]
    pub client_secret: Option<SecretText>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WhiteLabelInput {
    /// CONFLUENCE.
    #[schemars(schema_with = "schema::confluence_only")]
    pub data_source_type: String,
    pub credentials: WhiteLabelCredentials,
}

/// POST /white_label/create: 1 to 20 apps.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct WhiteLabelCreateRequest(pub Vec<WhiteLabelInput>);

impl JsonSchema for WhiteLabelCreateRequest {
    fn schema_name() -> String {
        "WhiteLabelCreateRequest".into()
    }

    fn json_schema(generator: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        let item = serde_json::to_value(generator.subschema_for::<WhiteLabelInput>())
            .unwrap_or(Value::Bool(true));
        serde_json::from_value(serde_json::json!({
            "type": "array", "minItems": 1, "maxItems": 20, "items": item
        }))
        .unwrap_or(schemars::schema::Schema::Bool(true))
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WhiteLabelOut {
    pub id: i64,
    pub organization_id: i64,
    pub data_source_type: String,
    /// The client id and redirect URI; never the secret.
    pub credentials: Value,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WhiteLabelFilters {
    #[schemars(schema_with = "schema::optional_ids_1000")]
    pub ids: Option<Vec<i64>>,
    pub data_source_type: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WhiteLabelListRequest {
    pub pagination: Pagination,
    pub order_dir: OrderDir,
    pub filters: WhiteLabelFilters,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WhiteLabelListResponse {
    pub results: Vec<WhiteLabelOut>,
    pub count: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WhiteLabelDeleteRequest {
    #[schemars(schema_with = "schema::ids_1_to_100")]
    pub ids: Vec<i64>,
}

/// GET /whoami: the customer, with what they have synced (Carbon's
/// UserResponse).
#[derive(Debug, Serialize, JsonSchema)]
pub struct WhoAmIResponse {
    pub id: i64,
    pub organization_id: i64,
    pub organization_supplied_user_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub num_files_synced: i64,
    pub num_characters_synced: i64,
    /// Estimated: a token is about four characters.
    pub num_tokens_synced: i64,
    pub aggregate_file_size: Value,
    pub aggregate_num_characters: Value,
    pub aggregate_num_tokens: Value,
    pub aggregate_num_embeddings: Value,
    pub aggregate_num_files_by_source: Value,
    pub aggregate_num_files_by_file_format: Value,
    pub unique_file_tags: Vec<Value>,
    pub enabled_features: Option<Value>,
    pub custom_limits: Value,
    pub auto_sync_enabled_sources: Vec<Value>,
    pub connector_settings: Value,
}

/// GET /auth/v1/white_labeling: what the file picker shows.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WhiteLabelingResponse {
    pub remove_branding: bool,
    /// Per integration: whether the organisation brings its own OAuth app.
    pub integrations: Value,
    pub custom_limits: Value,
    pub connector_settings: Value,
}

/// POST /auth/v1/white_labeling (confsync's): the organisation's setting.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhiteLabelingRequest {
    pub remove_branding: bool,
}

/// POST /auth/v1/access_token (confsync's): a customer token for a viewer.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessTokenRequest {
    /// Who the token's holder is, as `/embeddings`' `viewer` says it: a
    /// search made with the token sees at most what this viewer may see.
    /// Absent: the narrowest viewer (what everyone may see).
    #[serde(default)]
    #[schemars(schema_with = "schema::optional_viewer")]
    pub viewer: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenResponse {
    pub access_token: SecretText,
    pub refresh_token: SecretText,
}

/// Schemas for constraints serde cannot say: the server validates every
/// body against its type's schema (`extract::parse`), so what these say is
/// what is enforced, and what `/openapi.json` publishes.
pub mod schema {
    use schemars::gen::SchemaGenerator;
    use schemars::schema::Schema;
    use serde_json::{json, Value};

    fn from(value: Value) -> Schema {
        serde_json::from_value(value).unwrap_or(Schema::Bool(true))
    }

    fn nullable(mut value: Value) -> Value {
        json!({"anyOf": [value.take(), {"type": "null"}]})
    }

    /// The data source types confsync serves: CONFLUENCE.
    pub fn confluence_only(_: &mut SchemaGenerator) -> Schema {
        from(json!({"type": "string", "enum": ["CONFLUENCE"]}))
    }

    fn subdomain_value() -> Value {
        json!({"type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
               "description": "The site's subdomain (acme for https://acme.atlassian.net), or the name of a site the operator configured"})
    }

    pub fn subdomain(_: &mut SchemaGenerator) -> Schema {
        from(subdomain_value())
    }

    pub fn optional_subdomain(_: &mut SchemaGenerator) -> Schema {
        let mut value = subdomain_value();
        value["pattern"] = json!("^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)?$");
        from(nullable(value))
    }

    pub fn optional_chunk_size(_: &mut SchemaGenerator) -> Schema {
        from(nullable(
            json!({"type": "integer", "minimum": 50, "maximum": 20000,
            "description": "Tokens per chunk"}),
        ))
    }

    pub fn optional_chunk_overlap(_: &mut SchemaGenerator) -> Schema {
        from(nullable(
            json!({"type": "integer", "minimum": 0, "maximum": 10000,
            "description": "Tokens shared by neighbouring chunks; at most half of chunk_size less one (more is taken as that)"}),
        ))
    }

    fn tags_value() -> Value {
        let scalar = json!({"anyOf": [{"type": "string", "maxLength": 1000}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]});
        json!({"type": "object", "maxProperties": 50,
        "propertyNames": {"minLength": 1, "maxLength": 100},
        "additionalProperties": {"anyOf": [
            scalar,
            {"type": "array", "maxItems": 50, "items": {"anyOf": [{"type": "string", "maxLength": 100}, {"type": "number"}, {"type": "boolean"}]}}
        ]}})
    }

    pub fn optional_tags(_: &mut SchemaGenerator) -> Schema {
        from(nullable(tags_value()))
    }

    pub fn tags(_: &mut SchemaGenerator) -> Schema {
        from(tags_value())
    }

    fn customer_id_value() -> Value {
        json!({"type": "string", "minLength": 1, "maxLength": 255,
               "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"})
    }

    /// 1 to 100 customer ids (printable, not blank, at most 255 characters).
    pub fn customer_ids(_: &mut SchemaGenerator) -> Schema {
        from(json!({"type": "array", "minItems": 1, "maxItems": 100, "items": customer_id_value()}))
    }

    pub fn optional_customer_ids(_: &mut SchemaGenerator) -> Schema {
        from(nullable(
            json!({"type": "array", "maxItems": 1000, "items": customer_id_value()}),
        ))
    }

    pub fn optional_ids_1000(_: &mut SchemaGenerator) -> Schema {
        from(nullable(
            json!({"type": "array", "maxItems": 1000, "items": {"type": "integer"}}),
        ))
    }

    pub fn optional_ids_10000(_: &mut SchemaGenerator) -> Schema {
        from(nullable(
            json!({"type": "array", "maxItems": 10000, "items": {"type": "integer"}}),
        ))
    }

    pub fn optional_strings_1000(_: &mut SchemaGenerator) -> Schema {
        from(nullable(
            json!({"type": "array", "maxItems": 1000, "items": {"type": "string"}}),
        ))
    }

    pub fn ids_1_to_100(_: &mut SchemaGenerator) -> Schema {
        from(json!({"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "integer"}}))
    }

    /// An http(s) URL without credentials in it: a host name (its last
    /// label starting with a letter) or a dotted IPv4 address, a port, a
    /// path.
    pub fn http_url(_: &mut SchemaGenerator) -> Schema {
        let label = "[A-Za-z0-9]+(-[A-Za-z0-9]+)*";
        let last = "[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*";
        let octet = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
        let port =
            "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})";
        let pattern = format!(
            "^[hH][tT][tT][pP][sS]?://(({label}\\.)*{last}|({octet}\\.){{3}}{octet})(:{port})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/?#-]*)?$"
        );
        from(json!({"type": "string", "maxLength": 2048, "pattern": pattern}))
    }

    pub fn text(min: u32, max: u32) -> Value {
        json!({"type": "string", "minLength": min, "maxLength": max})
    }

    pub fn client_id(_: &mut SchemaGenerator) -> Schema {
        from(text(1, 255))
    }

    pub fn optional_client_secret(_: &mut SchemaGenerator) -> Schema {
        from(nullable(text(1, 1024)))
    }

    pub fn access_token(_: &mut SchemaGenerator) -> Schema {
        from(text(1, 4096))
    }

    pub fn optional_email(_: &mut SchemaGenerator) -> Schema {
        from(nullable(text(1, 320)))
    }

    /// A search's viewer (`index::Viewer`).
    pub fn optional_viewer(_: &mut SchemaGenerator) -> Schema {
        let strings = json!({"type": "array", "maxItems": 1000, "items": {"type": "string", "maxLength": 255}});
        from(nullable(json!({
            "type": "object",
            "additionalProperties": false,
            "description": "Who the search is made as: Zendesk's user segments (signed_in, agent, tags, organization_ids, group_ids) and the Confluence identity (confluence_account_id, confluence_groups) for connections that enforce Confluence's permissions",
            "properties": {
                "signed_in": {"type": "boolean"},
                "agent": {"type": "boolean"},
                "tags": strings, "organization_ids": strings, "group_ids": strings,
                "confluence_account_id": {"type": ["string", "null"], "maxLength": 255},
                "confluence_groups": strings,
            }
        })))
    }

    /// A space key (the whole space) or a page id (the page and its
    /// descendants).
    pub fn sync_id(_: &mut SchemaGenerator) -> Schema {
        let key = json!({"type": "string", "pattern": "^[A-Za-z0-9_~-]{1,255}$"});
        from(
            json!({"anyOf": [key.clone(), {"type": "object", "required": ["id", "root_id"],
            "properties": {"id": key, "root_id": {"type": "string"}}}]}),
        )
    }

    pub fn sync_ids(generator: &mut SchemaGenerator) -> Schema {
        let item = serde_json::to_value(sync_id(generator)).unwrap_or(json!(true));
        from(json!({"type": "array", "minItems": 1, "maxItems": 1000, "items": item}))
    }

    pub fn optional_sync_statuses(_: &mut SchemaGenerator) -> Schema {
        from(nullable(json!({"type": "array", "maxItems": 20,
            "items": {"type": "string", "enum": crate::routes::STATUSES}})))
    }

    pub fn optional_item_types(_: &mut SchemaGenerator) -> Schema {
        from(nullable(
            json!({"type": "array", "maxItems": 10, "items": {"type": "string", "enum": ["SPACE", "PAGE"]}}),
        ))
    }

    pub fn optional_sources(_: &mut SchemaGenerator) -> Schema {
        from(
            json!({"anyOf": [{"type": "string"}, {"type": "array", "maxItems": 100}, {"type": "null"}]}),
        )
    }

    /// "ALL", or a list of data source types.
    pub fn optional_auto_sync_sources(_: &mut SchemaGenerator) -> Schema {
        from(json!({"anyOf": [
            {"type": "string", "enum": ["ALL"]},
            {"type": "array", "maxItems": 100, "items": {"type": "string", "pattern": "^[A-Z0-9_]{1,64}$"}},
            {"type": "null"}
        ]}))
    }

    pub fn optional_interval(_: &mut SchemaGenerator) -> Schema {
        from(nullable(json!({"type": "integer", "enum": [3, 6, 12, 24]})))
    }

    pub fn query(_: &mut SchemaGenerator) -> Schema {
        from(
            json!({"type": "string", "maxLength": 10000, "pattern": "\\S",
            "description": "The text searched for (not blank)"}),
        )
    }

    pub fn k(_: &mut SchemaGenerator) -> Schema {
        from(
            json!({"type": "integer", "minimum": 1, "maximum": crate::routes::MAX_K,
            "description": "Number of chunks to return"}),
        )
    }

    pub fn optional_vector(_: &mut SchemaGenerator) -> Schema {
        from(nullable(
            json!({"type": "array", "minItems": 1, "maxItems": 8192,
            "items": {"type": "number", "minimum": -1e30, "maximum": 1e30}}),
        ))
    }

    pub fn weight(_: &mut SchemaGenerator) -> Schema {
        from(json!({"type": "number", "minimum": 0, "maximum": 1,
            "description": "weight_a (semantic) and weight_b (keyword) are scaled to sum to 1"}))
    }

    pub fn limit(_: &mut SchemaGenerator) -> Schema {
        from(
            json!({"type": "integer", "minimum": 1, "maximum": crate::routes::MAX_LIMIT, "default": 10}),
        )
    }

    pub fn offset(_: &mut SchemaGenerator) -> Schema {
        from(json!({"type": "integer", "minimum": 0, "default": 0}))
    }

    /// A delete's filters: at least one that narrows.
    pub fn delete_filters(generator: &mut SchemaGenerator) -> Schema {
        let filters = serde_json::to_value(generator.subschema_for::<super::FileFilters>())
            .unwrap_or(json!(true));
        let present =
            |name: &str, schema: Value| json!({"required": [name], "properties": {name: schema}});
        let list = json!({"type": "array"});
        from(json!({"allOf": [filters, {"anyOf": [
            present("ids", list.clone()),
            present("external_file_ids", list.clone()),
            present("sync_statuses", list.clone()),
            present("parent_file_ids", list.clone()),
            present("organization_user_data_source_id", list),
            present("name", json!({"type": "string", "minLength": 1})),
            present("tags", json!({"type": "object", "minProperties": 1})),
        ]}], "description": "At least one filter that narrows (an empty list matches no file)"}))
    }
}
