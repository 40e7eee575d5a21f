//! The API's handlers. Each resolves the caller's organisation (and
//! customer) first, and every lookup by id goes through it: another
//! tenant's id reads as not found, exactly as an id that does not exist.

use crate::connection::{data_source, Scope, Secret};
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::extract::{hash_secret, valid_customer_id, Body, CustomerCaller, OrgCaller};
use crate::jobs::next_run;
use crate::model::*;
use crate::{App, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use store::{Connection, EndUser, Organisation};

// Shared pieces.

/// The most results one page of a list may hold.
pub const MAX_LIMIT: i64 = 250;
/// The most chunks one search may return: the cost of a search grows with
/// k (k = 1000 took seconds under load), and one tenant must not slow the
/// others.
pub const MAX_K: i64 = 100;

pub(crate) fn page(pagination: &Pagination) -> ApiResult<(i64, i64)> {
    if !(1..=MAX_LIMIT).contains(&pagination.limit) {
        return Err(ApiError::field(
            &["pagination", "limit"],
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if pagination.offset < 0 {
        return Err(ApiError::field(
            &["pagination", "offset"],
            "must not be negative",
        ));
    }
    Ok((pagination.limit, pagination.offset))
}

fn check_ids<T>(path: &[&str], ids: &Option<Vec<T>>, max: usize) -> ApiResult<()> {
    if ids.as_ref().is_some_and(|ids| ids.len() > max) {
        return Err(ApiError::field(path, format!("at most {max} values")));
    }
    Ok(())
}

/// The caller's customer, if it exists yet (a customer is created by its
/// first connection).
pub(crate) async fn end_user(app: &App, caller: &CustomerCaller) -> ApiResult<Option<EndUser>> {
    Ok(app
        .store
        .end_user(&caller.organisation.id, &caller.customer_id)
        .await?)
}

/// A path's integer id, or a 422 naming it (axum's own rejection is
/// plain text).
pub(crate) fn path_id(name: &str, value: &str) -> ApiResult<i64> {
    value.parse().map_err(|_| {
        ApiError::Validation(vec![crate::error::FieldError {
            loc: vec![json!("path"), json!(name)],
            msg: "must be an integer".into(),
            kind: "int_parsing",
        }])
    })
}

/// The caller's file as the store lists it, with the caller, or 404
/// (whoever else's it may be).
pub(crate) async fn caller_file(
    app: &App,
    caller: &CustomerCaller,
    file_id: i64,
) -> ApiResult<(EndUser, store::ApiFile)> {
    let user = end_user(app, caller)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let query = store::FileQuery {
        ids: vec![file_id],
        limit: 1,
        ..Default::default()
    };
    let (mut files, _) = app
        .store
        .api_files(&caller.organisation.id, &user.id, &query)
        .await?;
    let file = files.pop().ok_or_else(|| ApiError::not_found("file"))?;
    Ok((user, file))
}

/// The caller's data source, or 404 (whoever else's it may be).
pub(crate) async fn owned_source(
    app: &App,
    caller: &CustomerCaller,
    id: i64,
) -> ApiResult<(EndUser, Connection)> {
    let user = end_user(app, caller)
        .await?
        .ok_or_else(|| ApiError::not_found("data source"))?;
    let connection = app
        .store
        .data_source(&caller.organisation.id, &user.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("data source"))?;
    Ok((user, connection))
}

/// Settings a connect request carries, checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectSettings {
    pub chunk_size: i64,
    pub chunk_overlap: i64,
    pub sync_files_on_connection: bool,
    pub tags: BTreeMap<String, Value>,
    /// `None` when the request did not say: a new connection does not
    /// enforce, an existing one keeps what it has.
    #[serde(default)]
    pub enforce_permissions: Option<bool>,
    /// List the site's item tree after the connect (a picker shows it).
    #[serde(default = "yes")]
    pub sync_source_items: bool,
}

fn yes() -> bool {
    true
}

pub fn check_chunking(
    chunk_size: Option<i64>,
    chunk_overlap: Option<i64>,
) -> ApiResult<(i64, i64)> {
    let size = chunk_size.unwrap_or(1500);
    let overlap = chunk_overlap.unwrap_or(20);
    if !(50..=20_000).contains(&size) {
        return Err(ApiError::field(
            &["chunk_size"],
            "must be between 50 and 20000 tokens",
        ));
    }
    if !(0..=10_000).contains(&overlap) {
        return Err(ApiError::field(
            &["chunk_overlap"],
            "must be between 0 and 10000 tokens",
        ));
    }
    // At most half a chunk less one: more is taken as that, as the
    // document says (a rule between two fields no schema can state).
    Ok((size, overlap.min(size / 2 - 1)))
}

/// New chunk settings for a connection, when a request gives any: what it
/// gives, the rest as the connection has it, checked together.
fn new_chunking(
    connection: &Connection,
    chunk_size: Option<i64>,
    chunk_overlap: Option<i64>,
) -> ApiResult<Option<(i64, i64)>> {
    if chunk_size.is_none() && chunk_overlap.is_none() {
        return Ok(None);
    }
    check_chunking(
        chunk_size.or(Some(connection.chunk_size)),
        chunk_overlap.or(Some(connection.chunk_overlap)),
    )
    .map(Some)
}

pub(crate) fn check_tags(tags: &BTreeMap<String, Value>) -> ApiResult<()> {
    if tags.len() > 50 {
        return Err(ApiError::field(&["tags"], "at most 50 tags"));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 100 {
            return Err(ApiError::field(
                &["tags"],
                "tag keys must be 1 to 100 characters",
            ));
        }
        let long = |v: &Value, max: usize| v.as_str().is_some_and(|t| t.chars().count() > max);
        let bad = match value {
            Value::Array(items) => {
                items.len() > 50
                    || items
                        .iter()
                        .any(|v| long(v, 100) || v.is_array() || v.is_object() || v.is_null())
            }
            Value::Object(_) => true,
            other => long(other, 1000),
        };
        if bad {
            return Err(ApiError::field(
                &["tags", key],
                "a tag value is a string (at most 1000 characters), a number, a boolean, or a list of up to 50 of those (strings at most 100 characters)",
            ));
        }
    }
    Ok(())
}

pub fn connection_settings(
    chunk_size: Option<i64>,
    chunk_overlap: Option<i64>,
    sync_files_on_connection: Option<bool>,
    tags: Option<BTreeMap<String, Value>>,
    enforce_permissions: Option<bool>,
    sync_source_items: Option<bool>,
) -> ApiResult<ConnectSettings> {
    let (chunk_size, chunk_overlap) = check_chunking(chunk_size, chunk_overlap)?;
    let tags = tags.unwrap_or_default();
    check_tags(&tags)?;
    Ok(ConnectSettings {
        chunk_size,
        chunk_overlap,
        sync_files_on_connection: sync_files_on_connection.unwrap_or(true),
        tags,
        enforce_permissions,
        sync_source_items: sync_source_items.unwrap_or(true),
    })
}

fn auth_header(secret: &Secret) -> String {
    use base64::Engine as _;
    match secret {
        Secret::ApiToken { email, api_token } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{email}:{api_token}"))
        ),
        Secret::Pat { pat } => format!("Bearer {pat}"),
        Secret::OAuth { oauth, .. } => format!("Bearer {}", oauth.access_token),
    }
}

/// Who the credentials are: Confluence's current user (its account id,
/// and its email or display name). Wrong credentials are the caller's
/// error (400), an unreachable site a 502.
async fn current_account(
    app: &App,
    site_url: &str,
    context: &str,
    secret: &Secret,
) -> ApiResult<(String, Option<String>)> {
    let url = format!("{site_url}{context}/rest/api/user/current");
    let response = app
        .http
        .get(&url)
        .header("authorization", auth_header(secret))
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|_| {
            ApiError::bad_gateway(
                "confluence_unreachable",
                "the Confluence site could not be reached",
            )
        })?;
    if matches!(response.status().as_u16(), 401 | 403) {
        return Err(ApiError::bad_request(
            "invalid_credentials",
            "Confluence refused these credentials",
        ));
    }
    if !response.status().is_success() {
        return Err(ApiError::bad_gateway(
            "confluence_error",
            format!("Confluence answered {}", response.status()),
        ));
    }
    let user: Value = response.json().await.map_err(|_| {
        ApiError::bad_gateway("confluence_error", "Confluence's answer was not understood")
    })?;
    let account = ["accountId", "userKey", "username"]
        .iter()
        .find_map(|k| user[*k].as_str().filter(|v| !v.is_empty()))
        .ok_or_else(|| {
            ApiError::bad_gateway("confluence_error", "Confluence did not say who the user is")
        })?;
    let label = ["email", "displayName", "publicName"]
        .iter()
        .find_map(|k| user[*k].as_str().filter(|v| !v.trim().is_empty()))
        .map(|v| v.chars().take(255).collect::<String>());
    Ok((account.to_string(), label))
}

/// Whose a new connection is: an API customer's, or the organisation's
/// own (connected by an admin in the console).
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    Customer(&'a str),
    Admin(&'a store::Admin),
}

/// Creates (or updates, when reconnecting) a connection, announces it
/// (ADD, when new and a customer's) and queues its first sync: one store
/// operation, so that a crash leaves all of it or none.
#[allow(clippy::too_many_arguments)] // what a connection is made of, from three different flows
pub async fn finish_connect(
    app: &App,
    organisation: &Organisation,
    owner: Owner<'_>,
    auth_kind: &str,
    site_url: &str,
    context: &str,
    site_link: Option<&str>,
    secret: Secret,
    settings: &ConnectSettings,
    reconnect: Option<i64>,
) -> ApiResult<Connection> {
    let (account, account_label) = current_account(app, site_url, context, &secret).await?;
    let secret_bytes = serde_json::to_vec(&secret).map_err(ApiError::internal)?;
    let (customer, admin) = match owner {
        Owner::Customer(customer) => (Some(customer), None),
        Owner::Admin(admin) => (None, Some(admin)),
    };
    let known = match customer {
        Some(customer) => app.store.end_user(&organisation.id, customer).await?,
        None => None,
    };
    let hours = app.sync_interval_hours(known.as_ref());
    let tags = serde_json::to_value(&settings.tags).map_err(ApiError::internal)?;
    let new_scope = Scope {
        all: settings.sync_files_on_connection,
        ..Scope::default()
    }
    .to_json();
    let connected = app
        .store
        .connect(
            store::Connect {
                organisation_id: &organisation.id,
                customer_id: customer,
                connected_by: admin.map(store::Actor::from),
                // The console's policy: personal spaces are not offered.
                allow_personal_spaces: admin.is_none(),
                site_url,
                context_path: context,
                site_link,
                auth_kind,
                account: &account,
                account_label: account_label.as_deref(),
                credentials: &secret_bytes,
                chunk_size: settings.chunk_size,
                chunk_overlap: settings.chunk_overlap,
                tags: &tags,
                enforce_permissions: settings.enforce_permissions,
                new_scope: &new_scope,
                reconnect,
                list_items: settings.sync_source_items,
                next_sync_at: &next_run(hours),
            },
            |connection, created| match customer {
                // Carbon's events are a customer's: the console's
                // connections have none.
                Some(customer) if created => {
                    vec![events::body(
                        events::EventKind::Add,
                        customer,
                        "DATA_SOURCE",
                        json!(connection.data_source_id),
                        &[("data_source_type", "CONFLUENCE".into())],
                    )]
                }
                _ => Vec::new(),
            },
            Scope::wants_sync,
        )
        .await?;
    if connected.created {
        app.outbox_ready.notify_one();
    }
    if connected.queued || settings.sync_source_items {
        app.jobs_ready.notify_one();
    }
    Ok(connected.connection)
}

// Integrations.

/// POST /integrations/connect: API token, personal access token, or OAuth tokens.
pub async fn connect(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<ConnectRequest>,
) -> ApiResult<Json<ConnectResponse>> {
    let customer = caller.customer_id.clone();
    let auth = &request.authentication;
    if auth.source != "CONFLUENCE" {
        return Err(ApiError::field(
            &["authentication", "source"],
            "only CONFLUENCE is supported",
        ));
    }
    let token = auth.access_token.expose();
    if token.is_empty() || token.chars().count() > 4096 {
        return Err(ApiError::field(
            &["authentication", "access_token"],
            "must be 1 to 4096 characters",
        ));
    }
    let site = app
        .config
        .resolve_site(&auth.subdomain)
        .map_err(|m| ApiError::field(&["authentication", "subdomain"], m))?;
    let options = &request.sync_options;
    let settings = connection_settings(
        options.chunk_size,
        options.chunk_overlap,
        options.sync_files_on_connection,
        options.data_source_tags.clone(),
        options.enforce_permissions,
        options.sync_source_items,
    )?;
    let connection = match (&auth.username, &auth.refresh_token) {
        (Some(email), _) => {
            if email.is_empty() || email.chars().count() > 320 {
                return Err(ApiError::field(&["authentication", "username"], "must be the account's email"));
            }
            let secret = Secret::ApiToken {
                email: email.clone(),
                api_token: token.to_string(),
            };
            finish_connect(
                &app,
                &caller.organisation,
                Owner::Customer(&customer),
                "api_token",
                &site.base_url,
                &site.context_path,
                None,
                secret,
                &settings,
                None,
            )
            .await?
        }
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "use_oauth_url",
                "OAuth connections are made through /integrations/oauth_url, so that confsync holds the refresh token it rotates",
            ))
        }
        (None, None) => {
            if !site.configured {
                return Err(ApiError::field(
                    &["authentication", "username"],
                    "an API token needs the account's email; personal access tokens are for Data Center sites the operator configured",
                ));
            }
            let secret = Secret::Pat {
                pat: token.to_string(),
            };
            finish_connect(
                &app,
                &caller.organisation,
                Owner::Customer(&customer),
                "pat",
                &site.base_url,
                &site.context_path,
                None,
                secret,
                &settings,
                None,
            )
            .await?
        }
    };
    let user = end_user(&app, &caller)
        .await?
        .ok_or_else(|| ApiError::internal("end user vanished"))?;
    Ok(Json(ConnectResponse {
        data_source: data_source(&app.store, &caller.organisation, &user, &connection).await?,
        sync_url: None,
    }))
}

/// POST /integrations/items/sync: queues a listing of the site's spaces
/// and pages (metadata only) for a picker to browse with items/list; the
/// data source's `source_items_synced_at` moves when it is done.
pub async fn items_sync(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DataSourceIdRequest>,
) -> ApiResult<Json<DataSource>> {
    let (user, connection) = owned_source(&app, &caller, request.data_source_id).await?;
    if connection.revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "access_revoked",
            "this data source's access was revoked",
        ));
    }
    app.store
        .enqueue_items(&connection.id, "items/sync")
        .await?;
    app.jobs_ready.notify_one();
    Ok(Json(
        data_source(&app.store, &caller.organisation, &user, &connection).await?,
    ))
}

/// POST /integrations/items/sync/cancel: stops the data source's item
/// listing (a queued one is dropped, a running one stops after the space
/// it is reading); what was listed before stays.
pub async fn items_sync_cancel(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DataSourceIdRequest>,
) -> ApiResult<Json<DataSource>> {
    let (user, connection) = owned_source(&app, &caller, request.data_source_id).await?;
    if let Some(job) = app.store.cancel_items(&connection.id).await? {
        app.cancel_job(job);
    }
    Ok(Json(
        data_source(&app.store, &caller.organisation, &user, &connection).await?,
    ))
}

/// POST /integrations/items/list
pub async fn items_list(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<ItemsListRequest>,
) -> ApiResult<Json<ItemsListResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    let (user, connection) = owned_source(&app, &caller, request.data_source_id).await?;
    let filters = request.filters.unwrap_or_default();
    check_ids(&["filters", "ids"], &filters.ids, 1000)?;
    check_ids(&["filters", "external_ids"], &filters.external_ids, 1000)?;
    let item_types = filters.item_types.unwrap_or_default();
    if let Some(bad) = item_types
        .iter()
        .find(|t| !matches!(t.as_str(), "SPACE" | "PAGE"))
    {
        return Err(ApiError::field(
            &["filters", "item_types"],
            format!("{bad:?} is not SPACE or PAGE"),
        ));
    }
    let query = store::ItemQuery {
        parent_external_id: request.parent_id.clone(),
        name: filters.name.filter(|n| !n.is_empty()),
        item_types,
        external_ids: filters.external_ids.unwrap_or_default(),
        ids: filters.ids.unwrap_or_default(),
        order_by_id: request.order_by == ItemOrderBy::Id,
        descending: request.order_dir == OrderDir::Desc,
        limit,
        offset,
    };
    let (items, count) = app.store.source_items(&connection.id, &query).await?;
    Ok(Json(ItemsListResponse {
        items: items
            .into_iter()
            .map(|item| Item {
                id: item.id,
                external_id: item.external_id,
                source: "CONFLUENCE".into(),
                name: item.name,
                synced_at: item.synced_at.clone(),
                is_selectable: Some(true),
                is_expandable: Some(item.is_expandable),
                organization_id: caller.organisation.number,
                organization_supplied_user_id: user.customer_id.clone(),
                organization_user_id: user.number,
                organization_user_data_source_id: connection.data_source_id,
                organization_user_file_to_sync_id: None,
                parent_external_id: item.parent_external_id,
                item_type: Some(item.item_type),
                root_external_id: item.root_external_id,
                external_url: item.external_url,
                file_format: None,
                created_at: item.created_at,
                updated_at: item.synced_at,
            })
            .collect(),
        count,
    }))
}

/// POST /integrations/files/sync: adds spaces (by key) and pages (by id,
/// with their descendants) to what the data source syncs, and syncs.
pub async fn files_sync(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<FilesSyncRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    if request.ids.is_empty() || request.ids.len() > 1000 {
        return Err(ApiError::field(&["ids"], "give 1 to 1000 ids"));
    }
    if let Some(tags) = &request.tags {
        check_tags(tags)?;
    }
    let (user, connection) = owned_source(&app, &caller, request.data_source_id).await?;
    // Checked before anything is written.
    let chunking = new_chunking(&connection, request.chunk_size, request.chunk_overlap)?;
    if connection.revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "access_revoked",
            "this data source's access was revoked",
        ));
    }
    let mut scope = Scope::of(&connection)
        .map_err(|message| ApiError::new(StatusCode::CONFLICT, "scope_unreadable", message))?;
    let mut chosen = Vec::new();
    for (i, id) in request.ids.iter().enumerate() {
        let id = match id {
            SyncId::Id(id) => id,
            SyncId::WithRoot { id, .. } => id,
        };
        chosen.push(id.clone());
        let index = i.to_string();
        if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_digit()) {
            if !scope.pages.contains(id) {
                scope.pages.push(id.clone());
            }
        } else if !id.is_empty()
            && id.len() <= 255
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '~' | '-'))
        {
            if !scope.spaces.contains(id) {
                scope.spaces.push(id.clone());
            }
        } else {
            return Err(ApiError::field(
                &["ids", &index],
                "not a space key or a page id",
            ));
        }
    }
    app.store
        .choose_scope(
            &caller.organisation.id,
            &connection.id,
            &scope.to_json(),
            &chosen,
            chunking,
            &[events::body(
                events::EventKind::Update,
                &user.customer_id,
                "DATA_SOURCE",
                json!(connection.data_source_id),
                &[],
            )],
            None,
        )
        .await?;
    app.outbox_ready.notify_one();
    app.jobs_ready.notify_one();
    Ok(Json(SuccessResponse { success: true }))
}

/// POST /user_data_sources
pub async fn user_data_sources(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DataSourcesRequest>,
) -> ApiResult<Json<DataSourcesResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    check_ids(&["filters", "ids"], &request.filters.ids, 1000)?;
    let Some(user) = end_user(&app, &caller).await? else {
        return Ok(Json(DataSourcesResponse {
            results: Vec::new(),
            count: 0,
        }));
    };
    if request
        .filters
        .source
        .as_deref()
        .is_some_and(|s| s != "CONFLUENCE")
    {
        return Ok(Json(DataSourcesResponse {
            results: Vec::new(),
            count: 0,
        }));
    }
    let (connections, count) = app
        .store
        .data_sources(
            &caller.organisation.id,
            &user.id,
            request.filters.ids.as_deref().unwrap_or(&[]),
            request.filters.revoked_access,
            request.order_by == CreatedOrUpdated::CreatedAt,
            request.order_dir == OrderDir::Desc,
            limit,
            offset,
        )
        .await?;
    let mut results = Vec::with_capacity(connections.len());
    for connection in &connections {
        results.push(data_source(&app.store, &caller.organisation, &user, connection).await?);
    }
    Ok(Json(DataSourcesResponse { results, count }))
}

/// POST /revoke_access_token: the credentials are erased and syncing
/// stops; synced files stay until deleted (/delete_files_v2).
pub async fn revoke_access_token(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DataSourceIdRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    let (user, connection) = owned_source(&app, &caller, request.data_source_id).await?;
    app.store
        .revoke(
            &caller.organisation.id,
            &connection.id,
            &[events::body(
                events::EventKind::Revoke,
                &user.customer_id,
                "DATA_SOURCE",
                json!(connection.data_source_id),
                &[],
            )],
            None,
        )
        .await?;
    app.outbox_ready.notify_one();
    Ok(Json(SuccessResponse { success: true }))
}

// Files.

pub const STATUSES: [&str; 10] = [
    "DELAYED",
    "QUEUED_FOR_SYNC",
    "SYNCING",
    "READY",
    "SYNC_ERROR",
    "EVALUATING_RESYNC",
    "RATE_LIMITED",
    "SYNC_ABORTED",
    "QUEUED_FOR_OCR",
    "READY_TO_SYNC",
];

pub(crate) fn file_query(filters: &FileFilters) -> ApiResult<Option<store::FileQuery>> {
    check_ids(&["filters", "ids"], &filters.ids, 1000)?;
    check_ids(
        &["filters", "external_file_ids"],
        &filters.external_file_ids,
        1000,
    )?;
    check_ids(
        &["filters", "parent_file_ids"],
        &filters.parent_file_ids,
        1000,
    )?;
    check_ids(
        &["filters", "organization_user_data_source_id"],
        &filters.organization_user_data_source_id,
        1000,
    )?;
    if let Some(tags) = &filters.tags {
        check_tags(tags)?;
    }
    let statuses = filters.sync_statuses.clone().unwrap_or_default();
    if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(ApiError::field(
            &["filters", "sync_statuses"],
            format!("{bad:?} is not a sync status"),
        ));
    }
    // Another source than Confluence matches nothing here.
    let confluence = match &filters.source {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s == "CONFLUENCE",
        Some(Value::Array(list)) => list.iter().any(|s| s == "CONFLUENCE"),
        Some(_) => {
            return Err(ApiError::field(
                &["filters", "source"],
                "a source type or a list of them",
            ))
        }
    };
    // A list given empty matches nothing: `"ids": []` names no file, and
    // must never read as "no filter" (which, in a delete, is every file).
    let empty = |list: &Option<Vec<i64>>| list.as_ref().is_some_and(Vec::is_empty);
    if !confluence
        || empty(&filters.ids)
        || empty(&filters.parent_file_ids)
        || empty(&filters.organization_user_data_source_id)
        || filters
            .external_file_ids
            .as_ref()
            .is_some_and(Vec::is_empty)
        || filters.sync_statuses.as_ref().is_some_and(Vec::is_empty)
    {
        return Ok(None);
    }
    Ok(Some(store::FileQuery {
        ids: filters.ids.clone().unwrap_or_default(),
        external_ids: filters.external_file_ids.clone().unwrap_or_default(),
        statuses,
        data_source_ids: filters
            .organization_user_data_source_id
            .clone()
            .unwrap_or_default(),
        parent_file_ids: filters.parent_file_ids.clone().unwrap_or_default(),
        name: filters.name.clone().filter(|n| !n.is_empty()),
        tags: filters.tags.clone().unwrap_or_default(),
        ..Default::default()
    }))
}

/// A file's status as callers see it: READY only once it is searchable.
fn visible_status(file: &store::ApiFile, pending: &std::collections::HashSet<i64>) -> String {
    if file.status == "READY" && pending.contains(&file.id) {
        "SYNCING".into()
    } else {
        file.status.clone()
    }
}

/// Carbon's FileFormats value for a file: CONFLUENCE for pages, blog posts
/// and comments (Carbon's format for a source's own documents); for an
/// attachment, its media type's (else its extension's) format, or none
/// when Carbon's list has no such format.
pub(crate) fn file_format(
    kind: &str,
    media_type: Option<&str>,
    title: &str,
) -> Option<&'static str> {
    if kind != "attachment" {
        return Some("CONFLUENCE");
    }
    let by_type = match media_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "text/plain" => Some("TXT"),
        "text/csv" => Some("CSV"),
        "text/tab-separated-values" => Some("TSV"),
        "application/pdf" => Some("PDF"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Some("DOCX"),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => Some("PPTX"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some("XLSX"),
        "application/vnd.ms-excel.sheet.macroenabled.12" => Some("XLSM"),
        "text/markdown" => Some("MD"),
        "application/rtf" | "text/rtf" => Some("RTF"),
        "application/json" => Some("JSON"),
        "text/html" => Some("HTML"),
        "image/jpeg" => Some("JPG"),
        "image/png" => Some("PNG"),
        "audio/mpeg" => Some("MP3"),
        "audio/aac" => Some("AAC"),
        "audio/wav" | "audio/x-wav" | "audio/wave" => Some("WAV"),
        "audio/flac" => Some("FLAC"),
        "audio/ogg" => Some("OGG"),
        "audio/opus" => Some("OPUS"),
        "audio/mp4" | "audio/x-m4a" => Some("M4A"),
        "video/mp4" => Some("MP4"),
        "video/mpeg" => Some("MPEG"),
        "video/webm" => Some("WEBM"),
        "video/quicktime" => Some("MOV"),
        "video/x-msvideo" => Some("AVI"),
        "video/x-matroska" => Some("MKV"),
        "video/x-ms-wmv" => Some("WMV"),
        "message/rfc822" => Some("EML"),
        "application/vnd.ms-outlook" => Some("MSG"),
        _ => None,
    };
    by_type.or_else(|| {
        let extension = title.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match extension.as_str() {
            "txt" => "TXT",
            "csv" => "CSV",
            "tsv" => "TSV",
            "pdf" => "PDF",
            "docx" => "DOCX",
            "pptx" => "PPTX",
            "xlsx" => "XLSX",
            "xlsm" => "XLSM",
            "md" => "MD",
            "rtf" => "RTF",
            "json" => "JSON",
            "html" | "htm" => "HTML",
            "jpg" | "jpeg" => "JPG",
            "png" => "PNG",
            "mp3" => "MP3",
            "mp4" => "MP4",
            "wav" => "WAV",
            "eml" => "EML",
            "msg" => "MSG",
            _ => return None,
        })
    })
}

pub(crate) fn user_file(
    file: store::ApiFile,
    status: String,
    organisation: &Organisation,
    user: &EndUser,
) -> UserFile {
    UserFile {
        id: file.id,
        source: "CONFLUENCE".into(),
        organization_id: organisation.number,
        organization_user_id: Some(user.number),
        organization_supplied_user_id: user.customer_id.clone(),
        organization_user_data_source_id: Some(file.data_source_id),
        external_file_id: file.external_id.clone(),
        external_url: file.url.clone(),
        sync_status: status,
        sync_error_message: file.error.clone(),
        last_sync: Some(file.updated_at.clone()),
        tags: Some(file.tags.clone()),
        file_statistics: Some(json!({
            "file_format": file_format(&file.kind, file.media_type.as_deref(), &file.title),
            "file_size": file.size_bytes.unwrap_or(file.characters),
            "num_characters": file.characters,
            "num_embeddings": file.chunks,
            "mime_type": file.media_type,
        })),
        file_metadata: Some(json!({
            "kind": file.kind,
            "title": file.title,
            "version": file.version,
            "media_type": file.media_type,
        })),
        embedding_properties: None,
        chunk_size: Some(file.chunk_size),
        chunk_overlap: Some(file.chunk_overlap),
        chunk_properties: None,
        ocr_properties: json!({}),
        ocr_job_started_at: None,
        name: Some(file.title.clone()),
        parent_id: file.parent_file_id,
        enable_auto_sync: Some(true),
        presigned_url: None,
        parsed_text_url: None,
        additional_presigned_urls: None,
        skip_embedding_generation: false,
        source_created_at: file.created_at.clone(),
        generate_sparse_vectors: Some(false),
        request_id: None,
        upload_id: None,
        sync_properties: json!({}),
        messages_metadata: json!({}),
        file_contents_deleted: false,
        supports_cold_storage: false,
        hot_storage_time_to_live: None,
        embedding_storage_status: "HOT_STORAGE".into(),
        created_at: file
            .created_at
            .clone()
            .unwrap_or_else(|| file.updated_at.clone()),
        updated_at: file.updated_at,
    }
}

/// POST /user_files_v2
pub async fn user_files_v2(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<UserFilesRequest>,
) -> ApiResult<Json<UserFilesResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    let query = file_query(&request.filters)?;
    let (Some(user), Some(mut query)) = (end_user(&app, &caller).await?, query) else {
        return Ok(Json(UserFilesResponse {
            results: Vec::new(),
            count: 0,
        }));
    };
    query.order_by = match request.order_by {
        FileOrderBy::CreatedAt => store::FileOrder::CreatedAt,
        FileOrderBy::UpdatedAt | FileOrderBy::LastSync => store::FileOrder::UpdatedAt,
        FileOrderBy::Name => store::FileOrder::Name,
        FileOrderBy::FileSize => store::FileOrder::FileSize,
        FileOrderBy::Id => store::FileOrder::Id,
    };
    query.descending = request.order_dir == OrderDir::Desc;
    query.limit = limit;
    query.offset = offset;
    let (files, count) = app
        .store
        .api_files(&caller.organisation.id, &user.id, &query)
        .await?;
    let ids: Vec<i64> = files.iter().map(|f| f.id).collect();
    let pending = app
        .store
        .pending_index(&ids, app.index.applied_seq())
        .await?;
    let results = files
        .into_iter()
        .map(|file| {
            let status = visible_status(&file, &pending);
            user_file(file, status, &caller.organisation, &user)
        })
        .collect();
    Ok(Json(UserFilesResponse { results, count }))
}

/// POST /resync_file: the file is fetched again by a sync of its data source.
pub async fn resync_file(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<ResyncFileRequest>,
) -> ApiResult<Json<UserFile>> {
    let user = end_user(&app, &caller)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let connection = app
        .store
        .file_connection(&caller.organisation.id, &user.id, request.file_id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    if connection.revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "access_revoked",
            "this file's data source was revoked",
        ));
    }
    let chunking = new_chunking(&connection, request.chunk_size, request.chunk_overlap)?;
    app.store
        .resync_file(&connection.id, request.file_id, chunking)
        .await?;
    app.jobs_ready.notify_one();
    let (user, file) = caller_file(&app, &caller, request.file_id).await?;
    let status = file.status.clone();
    Ok(Json(user_file(file, status, &caller.organisation, &user)))
}

/// POST /delete_files_v2: removes the matching files and their chunks
/// (gone from search as soon as the index applies the change).
pub async fn delete_files_v2(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DeleteFilesRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    delete_matching(&app, &caller, &request.filters, request.send_webhook).await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// Deletes the caller's files that `filters` match, with their events
/// when asked, in one transaction; answers once search reflects it.
pub(crate) async fn delete_matching(
    app: &App,
    caller: &CustomerCaller,
    filters: &FileFilters,
    send_webhook: bool,
) -> ApiResult<()> {
    let query = file_query(filters)?;
    let f = filters;
    // Filters that narrow nothing (an empty name, no tags, the source,
    // which is always CONFLUENCE here) are no filter.
    let unfiltered = f.ids.is_none()
        && f.external_file_ids.is_none()
        && f.sync_statuses.is_none()
        && f.parent_file_ids.is_none()
        && f.organization_user_data_source_id.is_none()
        && f.name.as_deref().is_none_or(str::is_empty)
        && f.tags.as_ref().is_none_or(BTreeMap::is_empty);
    if unfiltered {
        return Err(ApiError::field(
            &["filters"],
            "give at least one filter (ids, external_file_ids, ...)",
        ));
    }
    let (Some(user), Some(mut query)) = (end_user(app, caller).await?, query) else {
        return Ok(());
    };
    // The customer's connections, by data source id: files are deleted
    // per connection.
    let (connections, _) = app
        .store
        .data_sources(
            &caller.organisation.id,
            &user.id,
            &[],
            None,
            true,
            false,
            10_000,
            0,
        )
        .await?;
    let connection_of: BTreeMap<i64, String> = connections
        .into_iter()
        .map(|c| (c.data_source_id, c.id))
        .collect();
    let mut doomed: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    query.limit = 10_000;
    query.order_by = store::FileOrder::Id;
    loop {
        let (files, _) = app
            .store
            .api_files(&caller.organisation.id, &user.id, &query)
            .await?;
        let n = files.len() as i64;
        for file in files {
            if let Some(connection_id) = connection_of.get(&file.data_source_id) {
                doomed
                    .entry(connection_id.clone())
                    .or_default()
                    .push((file.id, file.data_source_id));
            }
        }
        if n < query.limit {
            break;
        }
        query.offset += n;
    }
    let mut bodies = Vec::new();
    let mut by_connection = Vec::new();
    for (connection_id, files) in &doomed {
        by_connection.push((
            connection_id.clone(),
            files.iter().map(|(id, _)| *id).collect::<Vec<i64>>(),
        ));
        if send_webhook {
            bodies.extend(files.iter().map(|(id, source)| {
                events::body(
                    events::EventKind::FileDeleted,
                    &user.customer_id,
                    "FILE",
                    json!(id),
                    &[("data_source_id", source.to_string())],
                )
            }));
        }
    }
    // The files and their events, in one transaction.
    app.store
        .delete_files_of(&caller.organisation.id, &by_connection, &bodies)
        .await?;
    app.outbox_ready.notify_one();
    searchable_now(app).await
}

/// Waits until the index has applied every change committed so far, so
/// that a delete answered is a delete done in search too. Should the index
/// fail, the store keeps the change and the index applies it when it can;
/// the caller hears that it is not done yet.
async fn searchable_now(app: &App) -> ApiResult<()> {
    app.follower.flush().await.map_err(|error| {
        tracing::error!(%error, "the index could not apply a change");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "index_behind",
            "the change is stored, but search does not reflect it yet; try again shortly",
        )
    })
}

// Users.

fn check_customer_ids(ids: &[String]) -> ApiResult<()> {
    if ids.is_empty() || ids.len() > 100 {
        return Err(ApiError::field(
            &["customer_ids"],
            "give 1 to 100 customer ids",
        ));
    }
    if let Some(i) = ids.iter().position(|id| !valid_customer_id(id)) {
        return Err(ApiError::field(
            &["customer_ids", &i.to_string()],
            "not a valid customer id",
        ));
    }
    Ok(())
}

/// POST /update_users
pub async fn update_users(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<UpdateUsersRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    check_customer_ids(&request.customer_ids)?;
    let sources = match &request.auto_sync_enabled_sources {
        None | Some(Value::Null) => None,
        Some(Value::String(all)) if all == "ALL" => Some(json!("ALL")),
        Some(Value::Array(list)) => {
            let mut names = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let name = item
                    .as_str()
                    .filter(|s| {
                        !s.is_empty()
                            && s.len() <= 64
                            && s.chars()
                                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    })
                    .ok_or_else(|| {
                        ApiError::field(
                            &["auto_sync_enabled_sources", &i.to_string()],
                            "a data source type",
                        )
                    })?;
                names.push(json!(name));
            }
            Some(Value::Array(names))
        }
        Some(_) => {
            return Err(ApiError::field(
                &["auto_sync_enabled_sources"],
                "a list of data source types, or \"ALL\"",
            ))
        }
    };
    if let Some(hours) = request.auto_sync_interval {
        if ![3, 6, 12, 24].contains(&hours) {
            return Err(ApiError::field(
                &["auto_sync_interval"],
                "must be 3, 6, 12 or 24 (hours)",
            ));
        }
    }
    // The settings, and each auto-synced connection's next run under a
    // new interval (counted from its last sync), in one transaction.
    let interval = request.auto_sync_interval;
    app.store
        .update_customers(
            &caller.organisation.id,
            &request.customer_ids,
            sources.as_ref(),
            interval,
            |connection| {
                let hours = interval?;
                if !connection.auto_sync || connection.revoked {
                    return None;
                }
                let from = connection
                    .last_synced_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(chrono::Utc::now);
                Some(
                    (from + chrono::Duration::hours(hours))
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                )
            },
        )
        .await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// A customer's auto-synced sources as Carbon lists them.
fn auto_sync_sources(user: &EndUser) -> Vec<Value> {
    match &user.auto_sync_sources {
        None => vec![json!("ALL")],
        Some(Value::Array(list)) => list.clone(),
        Some(other) => vec![other.clone()],
    }
}

fn user_out(app: &App, organisation: &Organisation, user: EndUser) -> UserOut {
    let sources = auto_sync_sources(&user);
    let interval = app.sync_interval_hours(Some(&user));
    UserOut {
        id: user.number,
        organization_id: organisation.number,
        organization_supplied_user_id: user.customer_id,
        created_at: user.created_at,
        updated_at: user.updated_at,
        deleted_at: None,
        enabled_features: None,
        custom_limits: json!({}),
        auto_sync_enabled_sources: sources,
        auto_sync_interval: interval,
    }
}

/// POST /list_users
pub async fn list_users(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<ListUsersRequest>,
) -> ApiResult<Json<ListUsersResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    check_ids(
        &["filters", "customer_ids"],
        &request.filters.customer_ids,
        1000,
    )?;
    check_ids(
        &["filters", "carbon_user_ids"],
        &request.filters.carbon_user_ids,
        1000,
    )?;
    let query = store::UserQuery {
        customer_ids: request.filters.customer_ids.clone().unwrap_or_default(),
        numbers: request.filters.carbon_user_ids.clone().unwrap_or_default(),
        by_updated: request.order_by == CreatedOrUpdated::UpdatedAt,
        descending: request.order_dir == OrderDir::Desc,
        limit,
        offset,
    };
    let (users, count) = app
        .store
        .list_end_users(&caller.organisation.id, &query)
        .await?;
    Ok(Json(ListUsersResponse {
        users: users
            .into_iter()
            .map(|u| user_out(&app, &caller.organisation, u))
            .collect(),
        count: request.include_count.then_some(count),
    }))
}

/// POST /delete_users: the customers, their connections and everything
/// synced through them.
pub async fn delete_users(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<DeleteUsersRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    check_customer_ids(&request.customer_ids)?;
    let mut deleted = Vec::new();
    for customer in &request.customer_ids {
        if let Some(user) = app
            .store
            .end_user(&caller.organisation.id, customer)
            .await?
        {
            deleted.push(user);
        }
    }
    let customers: Vec<String> = deleted.iter().map(|u| u.customer_id.clone()).collect();
    let bodies: Vec<store::Event> = deleted
        .iter()
        .map(|u| {
            events::body(
                events::EventKind::OrganizationUserDeleted,
                &u.customer_id,
                "ORGANIZATION_USER",
                json!(u.number),
                &[],
            )
        })
        .collect();
    // The customers and their events, in one transaction.
    app.store
        .delete_customers(&caller.organisation.id, &customers, &bodies)
        .await?;
    app.outbox_ready.notify_one();
    searchable_now(&app).await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// GET /auth/v1/access_token: a customer token (an hour) for a browser
/// to call the API as that customer only, with the narrowest viewer.
pub async fn access_token(
    State(app): State<AppState>,
    caller: OrgCaller,
) -> ApiResult<Json<TokenResponse>> {
    mint_token(&app, &caller, None).await
}

/// POST /auth/v1/access_token: the same, for the viewer the organisation
/// names; searches made with the token see at most what it may see.
pub async fn access_token_for_viewer(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<AccessTokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let viewer = parse_viewer(&request.viewer)?;
    mint_token(&app, &caller, viewer.as_ref()).await
}

fn parse_viewer(value: &Option<Value>) -> ApiResult<Option<index::Viewer>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| ApiError::field(&["viewer"], e.to_string())),
    }
}

async fn mint_token(
    app: &App,
    caller: &OrgCaller,
    viewer: Option<&index::Viewer>,
) -> ApiResult<Json<TokenResponse>> {
    let customer = caller.customer()?.to_string();
    let viewer = viewer
        .map(serde_json::to_string)
        .transpose()
        .map_err(ApiError::internal)?;
    let (access, refresh) = {
        let mut rng = rand::thread_rng();
        (
            hex::encode(rng.gen::<[u8; 32]>()),
            hex::encode(rng.gen::<[u8; 32]>()),
        )
    };
    let hour = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let month = (chrono::Utc::now() + chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for (token, kind, expires) in [(&access, "access", &hour), (&refresh, "refresh", &month)] {
        app.store
            .add_customer_token(
                &hash_secret(token),
                &caller.organisation.id,
                &customer,
                kind,
                expires,
                viewer.as_deref(),
            )
            .await?;
    }
    Ok(Json(TokenResponse {
        access_token: SecretText::new(access),
        refresh_token: SecretText::new(refresh),
    }))
}

// What the file picker asks first.

/// GET /whoami: the calling customer (created on first sight, as Carbon's
/// are) and what they have synced.
pub async fn whoami(
    State(app): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<Json<WhoAmIResponse>> {
    let user_id = app
        .store
        .ensure_end_user(&caller.organisation.id, &caller.customer_id)
        .await?;
    let user = app
        .store
        .end_user_by_id(&user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    let totals = app
        .store
        .customer_totals(&caller.organisation.id, &user.id)
        .await?;
    let files: i64 = totals.values().map(|(n, _)| n).sum();
    let characters: i64 = totals.values().map(|(_, c)| c).sum();
    let mut by_format: BTreeMap<&str, i64> = BTreeMap::new();
    for (kind, (n, _)) in &totals {
        let format = if kind == store::kind::ATTACHMENT {
            "RAW_TEXT"
        } else {
            "MD"
        };
        *by_format.entry(format).or_default() += n;
    }
    let sources = auto_sync_sources(&user);
    Ok(Json(WhoAmIResponse {
        id: user.number,
        organization_id: caller.organisation.number,
        organization_supplied_user_id: user.customer_id,
        created_at: user.created_at,
        updated_at: user.updated_at,
        deleted_at: None,
        num_files_synced: files,
        num_characters_synced: characters,
        num_tokens_synced: characters / 4,
        aggregate_file_size: json!({"CONFLUENCE": characters}),
        aggregate_num_characters: json!({"CONFLUENCE": characters}),
        aggregate_num_tokens: json!({"CONFLUENCE": characters / 4}),
        aggregate_num_embeddings: json!({}),
        aggregate_num_files_by_source: json!({"CONFLUENCE": files}),
        aggregate_num_files_by_file_format: json!(by_format),
        unique_file_tags: Vec::new(),
        enabled_features: None,
        custom_limits: json!({}),
        auto_sync_enabled_sources: sources,
        connector_settings: json!({}),
    }))
}

async fn white_labeling_of(
    app: &App,
    organisation: &Organisation,
) -> ApiResult<WhiteLabelingResponse> {
    let own_app = app
        .store
        .oauth_app(&organisation.id, "CONFLUENCE")
        .await?
        .is_some();
    Ok(WhiteLabelingResponse {
        remove_branding: organisation.remove_branding,
        integrations: json!({"CONFLUENCE": own_app}),
        custom_limits: json!({}),
        connector_settings: json!({}),
    })
}

/// GET /auth/v1/white_labeling: whether the picker hides its branding,
/// and which integrations use the organisation's own OAuth app.
pub async fn white_labeling(
    State(app): State<AppState>,
    caller: CustomerCaller,
) -> ApiResult<Json<WhiteLabelingResponse>> {
    Ok(Json(white_labeling_of(&app, &caller.organisation).await?))
}

/// POST /auth/v1/white_labeling: the organisation sets its branding.
pub async fn set_white_labeling(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<WhiteLabelingRequest>,
) -> ApiResult<Json<WhiteLabelingResponse>> {
    app.store
        .set_remove_branding(&caller.organisation.id, request.remove_branding)
        .await?;
    let organisation = app.store.organisation(&caller.organisation.id).await?;
    Ok(Json(white_labeling_of(&app, &organisation).await?))
}

// Search.

/// POST /embeddings: the chunks that best answer a query, among the
/// customer's, as the viewer may see them.
pub async fn embeddings(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<EmbeddingsRequest>,
) -> ApiResult<Json<EmbeddingsResponse>> {
    let customer = caller.customer_id.clone();
    if !(1..=MAX_K).contains(&request.k) {
        return Err(ApiError::field(
            &["k"],
            format!("must be between 1 and {MAX_K}"),
        ));
    }
    if request.query.chars().count() > 10_000 {
        return Err(ApiError::field(&["query"], "at most 10000 characters"));
    }
    if request.query.trim().is_empty() {
        return Err(ApiError::field(&["query"], "must not be blank"));
    }
    check_ids(&["file_ids"], &request.file_ids, 10_000)?;
    check_ids(&["parent_file_ids"], &request.parent_file_ids, 1000)?;
    check_ids(&["data_source_ids"], &request.data_source_ids, 1000)?;
    if let Some(tags) = &request.tags {
        check_tags(tags)?;
    }
    if request
        .query_vector
        .as_ref()
        .is_some_and(|v| v.is_empty() || v.len() > 8192 || v.iter().any(|x| !x.is_finite()))
    {
        return Err(ApiError::field(
            &["query_vector"],
            "1 to 8192 finite numbers",
        ));
    }
    // An API key's caller (the organisation) says who the viewer is; a
    // customer token's viewer was fixed when it was minted, and a search
    // made with it may narrow that viewer, never widen it.
    let viewer = match (&caller.token_viewer, parse_viewer(&request.viewer)?) {
        (None, asked) => asked.unwrap_or_default(),
        (Some(granted), None) => granted.clone(),
        (Some(granted), Some(asked)) if asked.within(granted) => asked,
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "viewer_not_allowed",
                "a customer token searches as the viewer it was minted for, or a narrower one",
            ))
        }
    };
    let hybrid = match (
        request.hybrid_search.unwrap_or(false),
        &request.hybrid_search_tuning_parameters,
    ) {
        (false, _) => None,
        (true, None) => Some(index::HybridWeights::default()),
        // Scaled to sum to 1, as the document says (both 0: the defaults).
        (true, Some(t)) => {
            let sum = t.weight_a + t.weight_b;
            if !(t.weight_a >= 0.0 && t.weight_b >= 0.0 && sum.is_finite()) {
                return Err(ApiError::field(
                    &["hybrid_search_tuning_parameters"],
                    "weight_a and weight_b must be at least 0",
                ));
            }
            Some(if sum > 0.0 {
                index::HybridWeights {
                    weight_a: t.weight_a / sum,
                    weight_b: t.weight_b / sum,
                }
            } else {
                index::HybridWeights::default()
            })
        }
    };
    if hybrid.is_some() && request.query_vector.is_none() && !app.index.has_embedder() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "embeddings_not_configured",
            "hybrid search needs an embedding provider (the server has none configured) or a query_vector",
        ));
    }
    let Some(user) = app
        .store
        .end_user(&caller.organisation.id, &customer)
        .await?
    else {
        return Ok(Json(EmbeddingsResponse {
            documents: Vec::new(),
        }));
    };
    let mut filters = index::Filters {
        tags: request.tags.clone().unwrap_or_default(),
        ..Default::default()
    };
    let mut file_ids: Option<Vec<i64>> = request.file_ids.clone();
    if let Some(parents) = &request.parent_file_ids {
        let mut children = Vec::new();
        for parent in parents {
            // Only the customer's own files are expanded.
            if app
                .store
                .file_connection(&caller.organisation.id, &user.id, *parent)
                .await?
                .is_none()
            {
                continue;
            }
            if request.include_all_children {
                children.extend(
                    app.store
                        .subtree(*parent)
                        .await?
                        .into_iter()
                        .filter(|id| id != parent),
                );
            } else {
                let query = store::FileQuery {
                    parent_file_ids: vec![*parent],
                    limit: 10_000,
                    ..Default::default()
                };
                let (files, _) = app
                    .store
                    .api_files(&caller.organisation.id, &user.id, &query)
                    .await?;
                children.extend(files.iter().map(|f| f.id));
            }
        }
        file_ids = Some(match file_ids {
            Some(ids) => ids.into_iter().filter(|id| children.contains(id)).collect(),
            None => children,
        });
    }
    if let Some(ids) = file_ids {
        if ids.is_empty() {
            return Ok(Json(EmbeddingsResponse {
                documents: Vec::new(),
            }));
        }
        filters.file_ids = ids;
    }
    if let Some(sources) = &request.data_source_ids {
        let (connections, _) = app
            .store
            .data_sources(
                &caller.organisation.id,
                &user.id,
                sources,
                None,
                true,
                false,
                1000,
                0,
            )
            .await?;
        if connections.is_empty() {
            return Ok(Json(EmbeddingsResponse {
                documents: Vec::new(),
            }));
        }
        filters.connection_ids = connections.into_iter().map(|c| c.id).collect();
    }
    let search = index::SearchRequest {
        organisation_id: caller.organisation.id.clone(),
        customer_id: Some(customer.clone()),
        viewer,
        query: request.query.clone(),
        query_vector: request.query_vector.clone(),
        k: request.k as usize,
        filters,
        hybrid,
        include_vectors: request.include_vectors.unwrap_or(false),
    };
    let hits = app
        .index
        .search(&app.store, &search)
        .await
        .map_err(|e| match e {
            index::Error::Invalid(message) => ApiError::bad_request("invalid_search", message),
            index::Error::Embed(message) => ApiError::bad_gateway(
                "embedding_failed",
                format!("the embedding provider failed: {message}"),
            ),
            other => ApiError::internal(other),
        })?;
    let include_tags = request.include_tags.unwrap_or(false);
    let mut tags_of: BTreeMap<i64, Value> = BTreeMap::new();
    if include_tags && !hits.is_empty() {
        let query = store::FileQuery {
            ids: hits.iter().map(|h| h.file_id).collect(),
            limit: 1000,
            ..Default::default()
        };
        let (files, _) = app
            .store
            .api_files(&caller.organisation.id, &user.id, &query)
            .await?;
        tags_of = files.into_iter().map(|f| (f.id, f.tags)).collect();
    }
    let documents = hits
        .into_iter()
        .enumerate()
        .map(|(rank, hit)| Document {
            content: hit.content,
            file_id: hit.file_id,
            parent_file_id: None,
            source: Some(hit.title.clone()),
            source_url: hit.url.clone(),
            source_type: Some("CONFLUENCE".into()),
            presigned_url: None,
            tags: include_tags.then(|| tags_of.get(&hit.file_id).cloned().unwrap_or(json!({}))),
            vector: hit.vector,
            score: Some(hit.score),
            rank: Some(rank as i64 + 1),
            content_metadata: Some(json!({
                "title": hit.title,
                "heading_path": hit.heading_path,
                "space_key": hit.space_key,
                "kind": hit.kind,
                "external_id": hit.external_id,
                "labels": hit.labels,
                "snippet": hit.snippet,
            })),
            chunk_index: Some(hit.chunk_index),
        })
        .collect();
    Ok(Json(EmbeddingsResponse { documents }))
}

// Webhooks.

fn webhook_no_key(organisation: &Organisation, hook: store::WebhookRow) -> WebhookNoKey {
    WebhookNoKey {
        id: hook.id,
        organization_id: organisation.number,
        url: hook.url,
        status: hook.status,
        status_reason: hook.status_reason,
        created_at: hook.created_at,
        updated_at: hook.updated_at,
    }
}

/// POST /add_webhook
pub async fn add_webhook(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<AddWebhookRequest>,
) -> ApiResult<Json<WebhookOut>> {
    if request.url.len() > 2048 {
        return Err(ApiError::field(&["url"], "at most 2048 characters"));
    }
    crate::webhooks::check_target(&request.url, app.config.webhooks.allow_private_targets)
        .await
        .map_err(|refused| {
            ApiError::field(&["url"], format!("the webhook URL {}", refused.reason))
        })?;
    let (_, count) = app
        .store
        .webhooks(&caller.organisation.id, &[], true, false, 1, 0)
        .await?;
    if count as usize >= app.config.webhooks.max_per_organisation {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "webhook_limit",
            format!(
                "an organisation may have {} webhooks; delete one first",
                app.config.webhooks.max_per_organisation
            ),
        ));
    }
    let key = hex::encode(rand::thread_rng().gen::<[u8; 32]>());
    let hook = app
        .store
        .add_webhook(&caller.organisation.id, &request.url, key.as_bytes())
        .await?;
    Ok(Json(WebhookOut {
        id: hook.id,
        organization_id: caller.organisation.number,
        url: hook.url,
        signing_key: SecretText::new(key),
        status: hook.status,
        status_reason: hook.status_reason,
        created_at: hook.created_at,
        updated_at: hook.updated_at,
    }))
}

/// POST /webhooks
pub async fn list_webhooks(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<WebhooksRequest>,
) -> ApiResult<Json<WebhooksResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    check_ids(&["filters", "ids"], &request.filters.ids, 1000)?;
    let (hooks, count) = app
        .store
        .webhooks(
            &caller.organisation.id,
            request.filters.ids.as_deref().unwrap_or(&[]),
            request.order_by == CreatedOrUpdated::CreatedAt,
            request.order_dir == OrderDir::Desc,
            limit,
            offset,
        )
        .await?;
    Ok(Json(WebhooksResponse {
        results: hooks
            .into_iter()
            .map(|h| webhook_no_key(&caller.organisation, h))
            .collect(),
        count,
    }))
}

/// DELETE /delete_webhook/{webhook_id}
pub async fn delete_webhook(
    State(app): State<AppState>,
    caller: OrgCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<SuccessResponse>> {
    let id = path_id("webhook_id", &id)?;
    if !app
        .store
        .delete_webhook(&caller.organisation.id, id)
        .await?
    {
        return Err(ApiError::not_found("webhook"));
    }
    Ok(Json(SuccessResponse { success: true }))
}

// White labels: an organisation's own OAuth app.

fn check_white_label(input: &WhiteLabelInput, at: &str) -> ApiResult<()> {
    if input.data_source_type != "CONFLUENCE" {
        return Err(ApiError::field(
            &[at, "data_source_type"],
            "only CONFLUENCE is supported",
        ));
    }
    let c = &input.credentials;
    if c.client_id.is_empty() || c.client_id.chars().count() > 255 {
        return Err(ApiError::field(
            &[at, "credentials", "client_id"],
            "1 to 255 characters",
        ));
    }
    if c.client_secret
        .as_ref()
        .is_some_and(|s| s.expose().is_empty() || s.expose().chars().count() > 1024)
    {
        return Err(ApiError::field(
            &[at, "credentials", "client_secret"],
            "1 to 1024 characters",
        ));
    }
    let redirect = url::Url::parse(&c.redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if redirect.is_none() || c.redirect_uri.len() > 2048 {
        return Err(ApiError::field(
            &[at, "credentials", "redirect_uri"],
            "an http(s) URL",
        ));
    }
    Ok(())
}

fn white_label_out(organisation: &Organisation, label: store::WhiteLabel) -> WhiteLabelOut {
    WhiteLabelOut {
        id: label.id,
        organization_id: organisation.number,
        data_source_type: label.data_source_type,
        credentials: json!({
            "client_id": label.client_id,
            "redirect_uri": label.redirect_uri,
            "has_client_secret": label.has_client_secret,
        }),
        created_at: label.created_at,
        updated_at: label.updated_at,
    }
}

/// POST /white_label/create (a list of inputs)
pub async fn white_label_create(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(WhiteLabelCreateRequest(inputs)): Body<WhiteLabelCreateRequest>,
) -> ApiResult<Json<Vec<WhiteLabelOut>>> {
    if inputs.is_empty() || inputs.len() > 20 {
        return Err(ApiError::field(&[], "give 1 to 20 white labels"));
    }
    for (i, input) in inputs.iter().enumerate() {
        check_white_label(input, &i.to_string())?;
    }
    let mut out = Vec::new();
    for input in &inputs {
        let label = app
            .store
            .create_white_label(
                &caller.organisation.id,
                &input.data_source_type,
                &input.credentials.client_id,
                &input.credentials.redirect_uri,
                input
                    .credentials
                    .client_secret
                    .as_ref()
                    .map(SecretText::expose),
            )
            .await
            .map_err(|e| match e {
                store::Error::Invalid(m) => {
                    ApiError::new(StatusCode::CONFLICT, "white_label_exists", m)
                }
                other => other.into(),
            })?;
        out.push(white_label_out(&caller.organisation, label));
    }
    Ok(Json(out))
}

/// POST /white_label/list
pub async fn white_label_list(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<WhiteLabelListRequest>,
) -> ApiResult<Json<WhiteLabelListResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    check_ids(&["filters", "ids"], &request.filters.ids, 1000)?;
    check_ids(
        &["filters", "data_source_type"],
        &request.filters.data_source_type,
        100,
    )?;
    let (labels, count) = app
        .store
        .white_labels(
            &caller.organisation.id,
            request.filters.ids.as_deref().unwrap_or(&[]),
            request.filters.data_source_type.as_deref().unwrap_or(&[]),
            request.order_dir == OrderDir::Desc,
            limit,
            offset,
        )
        .await?;
    Ok(Json(WhiteLabelListResponse {
        results: labels
            .into_iter()
            .map(|l| white_label_out(&caller.organisation, l))
            .collect(),
        count,
    }))
}

/// POST /white_label/update
pub async fn white_label_update(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(input): Body<WhiteLabelInput>,
) -> ApiResult<Json<WhiteLabelOut>> {
    check_white_label(&input, "credentials")?;
    let label = app
        .store
        .update_white_label(
            &caller.organisation.id,
            &input.data_source_type,
            &input.credentials.client_id,
            &input.credentials.redirect_uri,
            input
                .credentials
                .client_secret
                .as_ref()
                .map(SecretText::expose),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("white label"))?;
    Ok(Json(white_label_out(&caller.organisation, label)))
}

/// POST /white_label/delete
pub async fn white_label_delete(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<WhiteLabelDeleteRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    if request.ids.is_empty() || request.ids.len() > 100 {
        return Err(ApiError::field(&["ids"], "give 1 to 100 ids"));
    }
    let removed = app
        .store
        .delete_white_labels(&caller.organisation.id, &request.ids)
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found("white label"));
    }
    Ok(Json(SuccessResponse { success: true }))
}
