//! The API's operations, declared once: the endpoint table below names
//! each operation's method, path, handler, caller kind and types; the
//! router (`lib.rs::router`) is built from it, and so is the OpenAPI
//! document, with the JSON Schemas schemars derives from the types.

use crate::model::*;
use schemars::gen::{SchemaGenerator, SchemaSettings};
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Auth {
    /// API key with customer-id, or a customer token.
    Customer,
    /// API key; the organisation's own settings. Customer tokens get 403.
    Organisation,
    /// API key with customer-id: the organisation acting on one customer
    /// (minting their token). Customer tokens get 403.
    OrganisationForCustomer,
    /// None (the OAuth callback, the document itself).
    Public,
}

pub struct Endpoint {
    pub method: &'static str,
    /// The handler, routed at `path` for `method` (the router is built
    /// from this table: an operation is declared once).
    pub route: fn() -> axum::routing::MethodRouter<crate::AppState>,
    pub path: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    pub request: Option<fn(&mut SchemaGenerator) -> Schema>,
    pub response: fn(&mut SchemaGenerator) -> Schema,
}

fn s<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn any(_: &mut SchemaGenerator) -> Schema {
    Schema::Bool(true)
}

macro_rules! endpoint {
    ($method:ident, $handler:path, $path:literal, $auth:ident, $summary:literal, $request:ty, $response:ty) => {
        Endpoint {
            method: stringify!($method),
            route: || axum::routing::$method($handler),
            path: $path,
            summary: $summary,
            auth: Auth::$auth,
            request: Some(s::<$request>),
            response: s::<$response>,
        }
    };
    ($method:ident, $handler:path, $path:literal, $auth:ident, $summary:literal, $response:ty) => {
        Endpoint {
            method: stringify!($method),
            route: || axum::routing::$method($handler),
            path: $path,
            summary: $summary,
            auth: Auth::$auth,
            request: None,
            response: s::<$response>,
        }
    };
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint!(
            get,
            crate::routes::access_token,
            "/auth/v1/access_token",
            OrganisationForCustomer,
            "A customer token (an hour) for calls as one customer, searching as the narrowest viewer",
            TokenResponse
        ),
        endpoint!(
            post,
            crate::routes::access_token_for_viewer,
            "/auth/v1/access_token",
            OrganisationForCustomer,
            "A customer token (an hour) for calls as one customer, searching as at most the viewer given",
            AccessTokenRequest,
            TokenResponse
        ),
        endpoint!(
            get,
            crate::routes::whoami,
            "/whoami",
            Customer,
            "The calling customer and what they have synced",
            WhoAmIResponse
        ),
        endpoint!(
            get,
            crate::routes::white_labeling,
            "/auth/v1/white_labeling",
            Customer,
            "What the file picker shows: branding, and integrations with the organisation's own OAuth app",
            WhiteLabelingResponse
        ),
        endpoint!(
            post,
            crate::routes::set_white_labeling,
            "/auth/v1/white_labeling",
            Organisation,
            "Set whether the file picker hides its branding",
            WhiteLabelingRequest,
            WhiteLabelingResponse
        ),
        endpoint!(
            post,
            crate::oauth::oauth_url,
            "/integrations/oauth_url",
            Customer,
            "The URL that starts Atlassian's consent",
            OAuthUrlRequest,
            OAuthUrlResponse
        ),
        Endpoint {
            method: "get",
            route: || axum::routing::get(crate::oauth::callback),
            path: "/integrations/confluence/oauth",
            summary: "OAuth callback: Atlassian redirects the browser here with code and state",
            auth: Auth::Public,
            request: None,
            response: any,
        },
        endpoint!(
            post,
            crate::routes::connect,
            "/integrations/connect",
            Customer,
            "Connect with an API token or a personal access token",
            ConnectRequest,
            ConnectResponse
        ),
        endpoint!(
            post,
            crate::routes::items_sync,
            "/integrations/items/sync",
            Customer,
            "Queue a listing of the site's spaces and pages for a picker (source_items_synced_at moves when it is done)",
            DataSourceIdRequest,
            DataSource
        ),
        endpoint!(
            post,
            crate::routes::items_sync_cancel,
            "/integrations/items/sync/cancel",
            Customer,
            "Stop listing the site's spaces and pages",
            DataSourceIdRequest,
            DataSource
        ),
        endpoint!(
            post,
            crate::routes::items_list,
            "/integrations/items/list",
            Customer,
            "Browse the listed spaces and pages",
            ItemsListRequest,
            ItemsListResponse
        ),
        endpoint!(
            post,
            crate::routes::files_sync,
            "/integrations/files/sync",
            Customer,
            "Sync chosen spaces and pages",
            FilesSyncRequest,
            SuccessResponse
        ),
        endpoint!(
            post,
            crate::routes::user_data_sources,
            "/user_data_sources",
            Customer,
            "The customer's data sources",
            DataSourcesRequest,
            DataSourcesResponse
        ),
        endpoint!(
            post,
            crate::routes::revoke_access_token,
            "/revoke_access_token",
            Customer,
            "Revoke a data source's access",
            DataSourceIdRequest,
            SuccessResponse
        ),
        endpoint!(
            post,
            crate::routes::user_files_v2,
            "/user_files_v2",
            Customer,
            "The customer's files, with sync statuses",
            UserFilesRequest,
            UserFilesResponse
        ),
        endpoint!(
            post,
            crate::compat::delete_files,
            "/delete_files",
            Customer,
            "Carbon's older delete: files by id or status",
            DeleteFilesV1Request,
            SuccessResponse
        ),
        endpoint!(
            post,
            crate::compat::user_files,
            "/user_files",
            Customer,
            "Carbon's v1 listing: user_files_v2's files as a bare list",
            UserFilesRequest,
            Vec<UserFile>
        ),
        endpoint!(
            post,
            crate::compat::create_file_tags,
            "/create_user_file_tags",
            Customer,
            "Add tags to a file",
            FileTagsAddRequest,
            UserFile
        ),
        endpoint!(
            post,
            crate::compat::delete_file_tags,
            "/delete_user_file_tags",
            Customer,
            "Remove tags from a file by key",
            FileTagsRemoveRequest,
            UserFile
        ),
        endpoint!(
            post,
            crate::compat::add_data_source_tags,
            "/data_sources/tags/add",
            Customer,
            "Add tags to a data source",
            DataSourceTagsAddRequest,
            DataSource
        ),
        endpoint!(
            post,
            crate::compat::remove_data_source_tags,
            "/data_sources/tags/remove",
            Customer,
            "Remove tags from a data source (by key, or all)",
            DataSourceTagsRemoveRequest,
            DataSource
        ),
        endpoint!(
            post,
            crate::compat::confluence_list,
            "/integrations/confluence/list",
            Customer,
            "Deprecated in Carbon: one level of the item tree as directory items",
            DirectoryListRequest,
            DirectoryListResponse
        ),
        endpoint!(
            post,
            crate::compat::confluence_sync,
            "/integrations/confluence/sync",
            Customer,
            "Deprecated in Carbon: files/sync under its older name",
            FilesSyncRequest,
            SuccessResponse
        ),
        endpoint!(
            get,
            crate::content::parsed_file,
            "/parsed_file/{file_id}",
            Customer,
            "A link (an hour, no credentials needed) to a file's Markdown, or an attachment's text",
            PresignedUrlResponse
        ),
        endpoint!(
            get,
            crate::content::raw_file,
            "/raw_file/{file_id}",
            Customer,
            "A link (an hour, no credentials needed) to a file's storage-format body, or an attachment's bytes",
            PresignedUrlResponse
        ),
        endpoint!(
            post,
            crate::content::text_chunks,
            "/text_chunks",
            Customer,
            "One file's chunks in order, with their vectors if asked",
            TextChunksRequest,
            ChunksResponse
        ),
        endpoint!(
            post,
            crate::content::list_chunks_and_embeddings,
            "/list_chunks_and_embeddings",
            Customer,
            "The chunks of the files the filters match (at most 10,000 files), with their vectors if asked",
            ChunksRequest,
            ChunksResponse
        ),
        endpoint!(
            post,
            crate::routes::resync_file,
            "/resync_file",
            Customer,
            "Fetch a file again",
            ResyncFileRequest,
            UserFile
        ),
        endpoint!(
            post,
            crate::routes::delete_files_v2,
            "/delete_files_v2",
            Customer,
            "Delete files by filter",
            DeleteFilesRequest,
            SuccessResponse
        ),
        endpoint!(
            post,
            crate::routes::embeddings,
            "/embeddings",
            Customer,
            "Search the customer's chunks",
            EmbeddingsRequest,
            EmbeddingsResponse
        ),
        endpoint!(
            post,
            crate::routes::update_users,
            "/update_users",
            Organisation,
            "Auto-sync settings of up to 100 customers",
            UpdateUsersRequest,
            SuccessResponse
        ),
        endpoint!(
            post,
            crate::routes::list_users,
            "/list_users",
            Organisation,
            "The organisation's customers",
            ListUsersRequest,
            ListUsersResponse
        ),
        endpoint!(
            post,
            crate::routes::delete_users,
            "/delete_users",
            Organisation,
            "Delete customers and everything synced for them",
            DeleteUsersRequest,
            SuccessResponse
        ),
        endpoint!(
            post,
            crate::routes::add_webhook,
            "/add_webhook",
            Organisation,
            "Add a webhook (its signing key is shown once)",
            AddWebhookRequest,
            WebhookOut
        ),
        endpoint!(
            post,
            crate::routes::list_webhooks,
            "/webhooks",
            Organisation,
            "The organisation's webhooks",
            WebhooksRequest,
            WebhooksResponse
        ),
        endpoint!(
            delete,
            crate::routes::delete_webhook,
            "/delete_webhook/{webhook_id}",
            Organisation,
            "Delete a webhook",
            SuccessResponse
        ),
        endpoint!(
            post,
            crate::routes::white_label_create,
            "/white_label/create",
            Organisation,
            "Bring your own OAuth app",
            WhiteLabelCreateRequest,
            WhiteLabelListResponse
        ),
        endpoint!(
            post,
            crate::routes::white_label_list,
            "/white_label/list",
            Organisation,
            "The organisation's OAuth apps",
            WhiteLabelListRequest,
            WhiteLabelListResponse
        ),
        endpoint!(
            post,
            crate::routes::white_label_update,
            "/white_label/update",
            Organisation,
            "Replace an OAuth app",
            WhiteLabelInput,
            WhiteLabelOut
        ),
        endpoint!(
            post,
            crate::routes::white_label_delete,
            "/white_label/delete",
            Organisation,
            "Delete OAuth apps",
            WhiteLabelDeleteRequest,
            SuccessResponse
        ),
    ]
}

fn validation_error() -> Value {
    json!({
        "type": "object",
        "properties": {
            "detail": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["loc", "msg", "type"],
                    "properties": {
                        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                        "msg": {"type": "string"},
                        "type": {"type": "string"}
                    }
                }
            }
        }
    })
}

fn error() -> Value {
    json!({
        "type": "object",
        "required": ["detail", "code"],
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"}}
    })
}

/// Whether a request body must be sent: an empty body reads as `{}`, so
/// it may be left out exactly when `{}` is a valid body.
fn body_required(generator: &SchemaGenerator, schema: &Schema) -> bool {
    let mut value = serde_json::to_value(schema).unwrap_or(Value::Null);
    // Follow one reference into the definitions.
    if let Some(name) = value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
    {
        value = generator
            .definitions()
            .get(name)
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null);
    }
    let is_object = value.get("type").and_then(Value::as_str) == Some("object");
    let required = value
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    !is_object || required
}

/// The JSON Schema of a request type on its own (definitions inline), as
/// the server validates bodies against it: the same schema the document
/// publishes under `components`.
pub fn request_schema<T: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.meta_schema = None;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = serde_json::to_value(schema).unwrap_or(Value::Bool(false));
    bound_integers(&mut value);
    value
}

/// The largest integer a request may carry (ids, counts, offsets) unless
/// its schema says otherwise: 2^31 - 1, far above any id or count confsync
/// hands out, and well inside the range JSON numbers carry exactly (2^53),
/// so that nothing is rounded on its way in.
pub const SAFE_INTEGER: i64 = i32::MAX as i64;

/// Gives every integer schema without bounds the safe range.
fn bound_integers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let integer = match map.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            if integer {
                map.entry("minimum").or_insert(json!(-SAFE_INTEGER));
                map.entry("maximum").or_insert(json!(SAFE_INTEGER));
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

pub fn document() -> Value {
    // OpenAPI 3.1's schemas are JSON Schema: draft 7's output (nullable
    // as `["string", "null"]`) is valid there, and any JSON Schema
    // validator can check responses against it.
    let mut settings = SchemaSettings::draft07();
    settings.definitions_path = "#/components/schemas/".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut paths: Map<String, Value> = Map::new();
    for endpoint in endpoints() {
        let mut operation = json!({
            "summary": endpoint.summary,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": (endpoint.response)(&mut generator)}}
                },
                "422": {
                    "description": "Validation error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}
                },
                "default": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        });
        if let Some(request) = endpoint.request {
            let schema = request(&mut generator);
            // A body whose every field is optional may be left out (it
            // reads as `{}`).
            let required = body_required(&generator, &schema);
            operation["requestBody"] = json!({
                "required": required,
                "content": {"application/json": {"schema": schema}}
            });
        }
        match endpoint.auth {
            Auth::Customer => {
                operation["security"] =
                    json!([{"apiKey": [], "customerId": []}, {"customerToken": []}]);
            }
            Auth::Organisation => operation["security"] = json!([{"apiKey": []}]),
            Auth::OrganisationForCustomer => {
                operation["security"] = json!([{"apiKey": [], "customerId": []}]);
            }
            Auth::Public => operation["security"] = json!([]),
        }
        // Path parameters: ids, integers.
        let parameters: Vec<Value> = endpoint
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer"}}))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        paths
            .entry(endpoint.path.to_string())
            .or_insert_with(|| json!({}))[endpoint.method] = operation;
    }
    let mut schemas: Map<String, Value> = generator
        .take_definitions()
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or_default()))
        .collect();
    let mut paths = Value::Object(paths);
    bound_integers(&mut paths);
    for schema in schemas.values_mut() {
        bound_integers(schema);
    }
    schemas.insert("HTTPValidationError".into(), validation_error());
    schemas.insert("Error".into(), error());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "confsync",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A self-hosted Confluence connector with a Carbon-compatible API: connect a customer's Confluence, sync it, search it."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "The organisation's API key"},
                "customerId": {"type": "apiKey", "in": "header", "name": "customer-id"},
                "customerToken": {"type": "apiKey", "in": "header", "name": "authorization", "description": "Token <customer access token>"}
            }
        }
    })
}
