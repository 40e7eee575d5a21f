//! Data sources: connect with a token, the item tree a picker browses, the
//! scope chosen with files/sync, the customer's data sources and revoking
//! one.

use super::*;

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
        options.file_sync_config.as_ref(),
    )?;
    let connection = match (&auth.username, &auth.refresh_token) {
        (Some(email), _) => {
            if email.is_empty() || email.chars().count() > 320 {
                return Err(ApiError::field(
                    &["authentication", "username"],
                    "must be the account's email",
                ));
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
        // Carbon's Confluence body: OAuth tokens from the organisation's
        // own app.
        (None, Some(refresh)) => {
            crate::oauth::connect_with_tokens(
                &app,
                &caller.organisation,
                &customer,
                token,
                refresh.expose(),
                &site,
                &settings,
            )
            .await?
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
        if let Some(tags) = request.tags.as_ref().filter(|t| !t.is_empty()) {
            scope.tags.insert(id.clone(), tags.clone());
        }
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
            request
                .file_sync_config
                .as_ref()
                .and_then(FileSyncConfigInput::content_kinds)
                .as_deref(),
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
