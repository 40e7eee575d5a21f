//! Carbon's older and secondary endpoints that its clients still call for
//! a Confluence integration, each on the same operations as the newer
//! ones: `/delete_files` (the delete Carbon's Confluence guide names),
//! `/user_files` (the v1 listing), tags on files and data sources, and the
//! deprecated `/integrations/confluence/list` and `/sync`.

use crate::connection::data_source;
use crate::error::ApiResult;
use crate::extract::{Body, CustomerCaller};
use crate::model::*;
use crate::routes::{
    caller_file, check_tags, delete_matching, files_sync, owned_source, user_file, user_files_v2,
    STATUSES,
};
use crate::{App, AppState};
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use std::collections::BTreeMap;
use store::SyncState;

/// POST /delete_files
pub async fn delete_files(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DeleteFilesV1Request>,
) -> ApiResult<Json<SuccessResponse>> {
    let mut statuses = request.sync_statuses.clone();
    if request.delete_non_synced_only {
        let all: Vec<String> = STATUSES.iter().map(|s| s.to_string()).collect();
        statuses = Some(
            statuses
                .unwrap_or(all)
                .into_iter()
                .filter(|s| s != "READY")
                .collect(),
        );
    }
    // A delete that names nothing deletes nothing (never everything).
    if request.file_ids.is_none() && statuses.is_none() {
        return Ok(Json(SuccessResponse { success: true }));
    }
    let filters = FileFilters {
        ids: request.file_ids,
        sync_statuses: statuses,
        ..Default::default()
    };
    delete_matching(&app, &caller, &filters, request.send_webhook).await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// POST /user_files: user_files_v2's files, as a bare list.
pub async fn user_files(
    state: State<AppState>,
    caller: CustomerCaller,
    request: Body<UserFilesRequest>,
) -> ApiResult<Json<Vec<UserFile>>> {
    let crate::routes::SizedJson(page, _) = user_files_v2(state, caller, request).await?;
    Ok(Json(page.results))
}

/// The caller's file, as user_files_v2 shows it.
async fn own_file(app: &App, caller: &CustomerCaller, file_id: i64) -> ApiResult<UserFile> {
    let (user, file) = caller_file(app, caller, file_id).await?;
    let status = file.status.clone();
    Ok(user_file(file, status, &caller.organisation, &user))
}

fn tag_map(tags: &Option<Value>) -> BTreeMap<String, Value> {
    tags.as_ref()
        .and_then(Value::as_object)
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// POST /create_user_file_tags: tags added to a file (a key given again
/// takes the new value).
pub async fn create_file_tags(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<FileTagsAddRequest>,
) -> ApiResult<Json<UserFile>> {
    let file = own_file(&app, &caller, request.organization_user_file_id).await?;
    let mut tags = tag_map(&file.tags);
    tags.extend(request.tags);
    check_tags(&tags)?;
    app.store.set_file_tags(file.id, &tags).await?;
    Ok(Json(own_file(&app, &caller, file.id).await?))
}

/// POST /delete_user_file_tags: tags removed from a file by key.
pub async fn delete_file_tags(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<FileTagsRemoveRequest>,
) -> ApiResult<Json<UserFile>> {
    let file = own_file(&app, &caller, request.organization_user_file_id).await?;
    let mut tags = tag_map(&file.tags);
    for key in &request.tags {
        tags.remove(key);
    }
    app.store.set_file_tags(file.id, &tags).await?;
    Ok(Json(own_file(&app, &caller, file.id).await?))
}

/// POST /data_sources/tags/add
pub async fn add_data_source_tags(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DataSourceTagsAddRequest>,
) -> ApiResult<Json<DataSource>> {
    retag_source(&app, &caller, request.data_source_id, |tags| {
        tags.extend(request.tags)
    })
    .await
}

/// POST /data_sources/tags/remove
pub async fn remove_data_source_tags(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DataSourceTagsRemoveRequest>,
) -> ApiResult<Json<DataSource>> {
    retag_source(&app, &caller, request.data_source_id, |tags| {
        if request.remove_all_tags {
            tags.clear();
        }
        for key in &request.tags_to_remove {
            tags.remove(key);
        }
    })
    .await
}

/// Changes a data source's tags and answers the data source.
async fn retag_source(
    app: &App,
    caller: &CustomerCaller,
    data_source_id: i64,
    change: impl FnOnce(&mut BTreeMap<String, Value>),
) -> ApiResult<Json<DataSource>> {
    let (user, connection) = owned_source(app, caller, data_source_id).await?;
    let mut tags = tag_map(&Some(connection.data_source_tags.clone()));
    change(&mut tags);
    check_tags(&tags)?;
    app.store
        .set_data_source_tags(&caller.organisation.id, &connection.id, &tags)
        .await?;
    let connection = app.store.connection(&connection.id).await?;
    Ok(Json(
        data_source(&app.store, &caller.organisation, &user, &connection).await?,
    ))
}

/// POST /integrations/confluence/list: one level of the item tree (the
/// spaces, or a space's or page's children), as Carbon's directory items.
pub async fn confluence_list(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DirectoryListRequest>,
) -> ApiResult<Json<DirectoryListResponse>> {
    let mut data = Vec::new();
    let mut offset = 0;
    // One level at most 10,000 items, in pages of the picker's size.
    while offset < 10_000 {
        let listing = ItemsListRequest {
            data_source_id: request.data_source_id,
            parent_id: request.parent_id.clone(),
            filters: None,
            pagination: Pagination {
                limit: crate::routes::MAX_LIMIT,
                offset,
                starting_id: 0,
            },
            order_by: Default::default(),
            order_dir: Default::default(),
        };
        let Json(page) =
            crate::routes::items_list(State(app.clone()), caller.clone(), Body(listing)).await?;
        let n = page.items.len() as i64;
        data.extend(page.items.into_iter().map(|item| DirectoryItem {
            id: item.external_id,
            name: item.name,
            is_synced: item.organization_user_file_to_sync_id.is_some(),
            has_children: item.is_expandable.unwrap_or(false),
        }));
        offset += n;
        if n < crate::routes::MAX_LIMIT || offset >= page.count {
            break;
        }
    }
    Ok(Json(DirectoryListResponse { data }))
}

/// POST /integrations/confluence/sync: files/sync under its older name.
pub async fn confluence_sync(
    state: State<AppState>,
    caller: CustomerCaller,
    request: Body<FilesSyncRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    files_sync(state, caller, request).await
}
