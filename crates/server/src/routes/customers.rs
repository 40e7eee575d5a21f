//! Customers (Carbon's users): auto-sync settings, listing and deleting
//! them, their tokens, and what the file picker asks first (who the
//! customer is, the white labeling).

use super::*;

pub(crate) fn check_customer_ids(ids: &[String]) -> ApiResult<()> {
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
pub(crate) fn auto_sync_sources(user: &EndUser) -> Vec<Value> {
    match &user.auto_sync_sources {
        None => vec![json!("ALL")],
        Some(Value::Array(list)) => list.clone(),
        Some(other) => vec![other.clone()],
    }
}

pub(crate) fn user_out(app: &App, organisation: &Organisation, user: EndUser) -> UserOut {
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

pub(crate) fn parse_viewer(value: &Option<Value>) -> ApiResult<Option<index::Viewer>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| ApiError::field(&["viewer"], e.to_string())),
    }
}

pub(crate) async fn mint_token(
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

pub(crate) async fn white_labeling_of(
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
